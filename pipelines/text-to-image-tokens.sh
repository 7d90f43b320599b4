#!/usr/bin/env bash
# A text prompt -> AnyGPT image tokens (32 SEED codes) in a file; --help for options.
exec "$(dirname "$0")/lib/text-to-tokens.sh" image "$@"

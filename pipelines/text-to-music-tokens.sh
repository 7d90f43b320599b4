#!/usr/bin/env bash
# A text prompt -> AnyGPT music tokens (Encodec, 4 codebooks, 50 Hz) in a file; --help for options.
exec "$(dirname "$0")/lib/text-to-tokens.sh" music "$@"

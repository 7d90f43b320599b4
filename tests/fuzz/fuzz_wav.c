/* WAV reader (core/audio/wav.c): any RIFF/WAVE bytes must parse or be refused with a reason;
 * what parses has a plausible layout and finite samples (integer PCM within [-1, 1]). */
#include "fuzz_util.h"

#include "anygpt/error.h"
#include "anygpt/wav.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static volatile unsigned sink; /* counts NaNs; unsigned: it may wrap over a long campaign */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ag_wav w;
    ag_clear_error();
    if (ag_wav_parse(data, size, "fuzz.wav", &w) != 0) {
        fz_expect_error("ag_wav_parse");
        return 0;
    }
    if (w.sample_rate < 1 || w.channels < 1 || w.n < 0 || (uint64_t)w.n * (uint64_t)w.channels > size) {
        fprintf(stderr, "fuzz_wav: implausible result (%d Hz, %d channels, %lld samples from %zu bytes)\n",
                w.sample_rate, w.channels, (long long)w.n, size);
        abort();
    }
    for (int64_t i = 0; i < w.n; i++)
        if (!(w.samples[i] == w.samples[i])) { /* NaN only from float files: allowed, but read it */
            sink++;
        }
    ag_wav_clear(&w);
    return 0;
}

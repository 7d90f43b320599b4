/* Streamed speech in the core: SoundStorm chunk by chunk (ag_soundstorm_stream) and SEANet
 * decoding in pieces (ag_seanet_stream), on the tiny SoundStorm and SpeechTokenizer GGUFs.
 *  - an item no longer than a chunk gives exactly ag_soundstorm_generate's codes (whole mode);
 *  - chunk boundaries: a 37-frame item in chunks of 10 gives 10, 10, 10 and a shorter 7, each
 *    chunk exactly one generate call on its frames with the previous chunk as the voice prompt
 *    and the chunk's seed; pushing the tokens in odd pieces changes nothing (the boundaries are
 *    the chunk's, not the arrival's); same seed, same codes;
 *  - the per-chunk token agreement with the whole-utterance result is printed (fidelity);
 *  - SEANet: pieces decoded with the full left context and 8 frames of right context equal the
 *    whole decode within 1e-5 of its peak; with the element default (16 left / 4 right frames)
 *    the distance is printed and held under 2% of the peak; no sample jump at a seam exceeds
 *    the largest jump of the whole decode by more than that;
 *  - hostile arguments are refused with an error.
 * usage: test_soundstorm_stream SOUNDSTORM.gguf SPEECHTOKENIZER.gguf */
#include "../common/ag_check.h"

#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/seanet.h"
#include "anygpt/soundstorm.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static uint64_t rng_state = 12345;
static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33) % n;
}

#define T 37
#define CHUNK 10

/* Streams sem[T] pushed in pieces of the sizes in pieces[] (cycled) into out[T][L]. */
static int64_t stream_all(ag_soundstorm *m, int64_t chunk, const int32_t *sem, const int32_t *prompt, int64_t tp,
                          uint64_t seed, const int *pieces, int n_pieces, int32_t *out, int64_t *sizes, int *n_sizes)
{
    const int64_t L = ag_soundstorm_info_of(m)->n_q + 1;
    ag_soundstorm_stream *s = ag_soundstorm_stream_new(m, chunk, prompt, tp, 3, seed, true);
    CHECK(s != NULL, "stream_new: %s", ag_last_error());
    if (!s)
        return -1;
    int64_t done = 0, at = 0;
    *n_sizes = 0;
    for (int p = 0; at < T; p++) {
        int64_t k = pieces[p % n_pieces];
        if (k > T - at)
            k = T - at;
        CHECK(ag_soundstorm_stream_push(s, sem + at, k) == 0, "push: %s", ag_last_error());
        at += k;
        const bool end = at == T;
        int64_t got;
        while ((got = ag_soundstorm_stream_next(s, end, out + done * L)) > 0) {
            sizes[(*n_sizes)++] = got;
            done += got;
        }
        CHECK(got == 0, "next: %s", ag_last_error());
    }
    CHECK(ag_soundstorm_stream_pending(s) == 0, "frames left pending after the end");
    ag_soundstorm_stream_free(s);
    return done;
}

static void check_soundstorm(ag_soundstorm *m)
{
    const ag_soundstorm_info *in = ag_soundstorm_info_of(m);
    const int64_t L = in->n_q + 1;
    int32_t sem[T], prompt[12 * 8];
    for (int i = 0; i < T; i++)
        sem[i] = (int32_t)rnd((uint32_t)in->semantic_vocab);
    for (int i = 0; i < 12; i++)
        for (int q = 0; q < L; q++)
            prompt[i * L + q] = (int32_t)rnd((uint32_t)(q ? in->codebook_size : in->semantic_vocab));
    int32_t whole[T * 8], st[T * 8], st2[T * 8], ref[T * 8];
    int64_t sizes[16];
    int n_sizes;
    const int all[] = {T}, odd[] = {1, 3, 17, 2, 9};

    /* whole mode: a chunk as long as the item is one generate call */
    CHECK(ag_soundstorm_generate(m, sem, T, prompt, 12, 3, 7, true, whole) == 0, "generate: %s", ag_last_error());
    CHECK(stream_all(m, T, sem, prompt, 12, 7, all, 1, st, sizes, &n_sizes) == T && n_sizes == 1,
          "one chunk: %d chunks", n_sizes);
    CHECK(memcmp(st, whole, sizeof(int32_t) * T * L) == 0, "a single chunk differs from the whole generation");

    /* chunks of 10: 10, 10, 10, 7, each one generate call conditioned on the previous chunk */
    CHECK(stream_all(m, CHUNK, sem, prompt, 12, 7, all, 1, st, sizes, &n_sizes) == T, "chunked: wrong frame count");
    CHECK(n_sizes == 4 && sizes[0] == 10 && sizes[1] == 10 && sizes[2] == 10 && sizes[3] == 7,
          "chunk sizes: %d chunks, last %lld", n_sizes, (long long)sizes[n_sizes - 1]);
    for (int c = 0; c < 4; c++) {
        const int64_t t = c < 3 ? CHUNK : 7;
        const uint64_t seed = c ? 7 + (uint64_t)c * 0xD1B54A32D192ED03ull : 7;
        const int32_t *p = c ? ref + (c - 1) * CHUNK * L : prompt;
        CHECK(ag_soundstorm_generate(m, sem + c * CHUNK, t, p, c ? CHUNK : 12, 3, seed, true, ref + c * CHUNK * L) ==
                  0,
              "generate chunk %d: %s", c, ag_last_error());
    }
    CHECK(memcmp(st, ref, sizeof(int32_t) * T * L) == 0, "chunks are not generate calls on the previous chunk");
    for (int i = 0; i < T; i++)
        CHECK(st[i * L] == sem[i], "frame %d: semantic token changed", i);

    /* arrival in odd pieces: the same chunks; same seed, same codes */
    CHECK(stream_all(m, CHUNK, sem, prompt, 12, 7, odd, 5, st2, sizes, &n_sizes) == T && n_sizes == 4,
          "odd pieces: %d chunks", n_sizes);
    CHECK(memcmp(st, st2, sizeof(int32_t) * T * L) == 0, "the arrival pieces changed the codes");

    /* fidelity against the whole generation: printed (random weights: only a trend) */
    printf("# chunk %d vs whole (same seed and tokens): agreement per chunk, levels 2..8:", CHUNK);
    for (int c = 0; c < 4; c++) {
        int same = 0, n = 0;
        for (int i = c * CHUNK; i < T && i < (c + 1) * CHUNK; i++)
            for (int q = 1; q < L; q++, n++)
                same += st[i * L + q] == whole[i * L + q];
        printf(" %.1f%%", 100.0 * same / n);
    }
    printf("\n");

    /* hostile */
    CHECK(ag_soundstorm_stream_new(m, 0, NULL, 0, 3, 0, true) == NULL, "chunk 0 accepted");
    CHECK(ag_soundstorm_stream_new(m, AG_SOUNDSTORM_MAX_FRAMES, NULL, 0, 3, 0, true) == NULL, "huge chunk accepted");
    CHECK(ag_soundstorm_stream_new(m, 10, NULL, 5, 3, 0, true) == NULL, "NULL prompt accepted");
    int32_t badp[8] = {0, 1, 2, 3, 4, 5, 6, (int32_t)in->codebook_size};
    CHECK(ag_soundstorm_stream_new(m, 10, badp, 1, 3, 0, true) == NULL, "bad prompt code accepted");
    ag_soundstorm_stream *s = ag_soundstorm_stream_new(m, 10, NULL, 0, 3, 0, true);
    CHECK(s != NULL, "stream_new: %s", ag_last_error());
    int32_t bad = in->semantic_vocab;
    CHECK(ag_soundstorm_stream_push(s, &bad, 1) != 0 && strstr(ag_last_error(), "semantic token"),
          "bad semantic token accepted");
    CHECK(ag_soundstorm_stream_push(s, sem, -1) != 0, "negative count accepted");
    CHECK(ag_soundstorm_stream_push(s, sem, 5) == 0 && ag_soundstorm_stream_next(s, false, st) == 0,
          "5 of 10 frames generated early");
    ag_soundstorm_stream_reset(s);
    CHECK(ag_soundstorm_stream_pending(s) == 0 && ag_soundstorm_stream_next(s, true, st) == 0,
          "reset left frames");
    ag_soundstorm_stream_free(s);
}

/* Largest |x[i+1] - x[i]| over i in [a, b). */
static double max_jump(const float *x, int64_t a, int64_t b)
{
    double m = 0;
    for (int64_t i = a; i + 1 < b; i++)
        m = fmax(m, fabs((double)x[i + 1] - x[i]));
    return m;
}

/* Decodes codes[n][nq] in pieces of `piece` frames; returns the max |diff| to whole[]. */
static double decode_pieces(ag_seanet *st, const int32_t *codes, int64_t n, int nq, int left, int right, int piece,
                            const float *whole, double *seam_jump)
{
    const int64_t hop = ag_seanet_info_of(st)->hop;
    ag_seanet_stream *s = ag_seanet_stream_new(st, nq, left, right);
    CHECK(s != NULL, "seanet stream: %s", ag_last_error());
    if (!s)
        return INFINITY;
    float *audio = malloc(sizeof(float) * (size_t)(n * hop)), *tmp = malloc(sizeof(float) * (size_t)((piece + right) * hop));
    int64_t at = 0, out = 0;
    *seam_jump = 0;
    while (at < n) {
        const int64_t k = piece < n - at ? piece : n - at;
        const int64_t got = ag_seanet_stream_decode(s, codes + at * nq, k, at + k == n, tmp);
        CHECK(got >= 0 && out + got <= n * hop, "decode piece at %lld: %s", (long long)at, ag_last_error());
        if (got < 0 || out + got > n * hop)
            break;
        memcpy(audio + out, tmp, sizeof(float) * (size_t)got);
        if (out > 0 && got > 0)
            *seam_jump = fmax(*seam_jump, max_jump(audio, out - 1, out + 1));
        out += got;
        at += k;
    }
    CHECK(out == n * hop, "pieces gave %lld samples, want %lld", (long long)out, (long long)(n * hop));
    double d = 0;
    for (int64_t i = 0; i < out; i++)
        d = fmax(d, fabs((double)audio[i] - whole[i]));
    free(audio);
    free(tmp);
    ag_seanet_stream_free(s);
    return d;
}

static void check_seanet(ag_seanet *st)
{
    const ag_seanet_info *in = ag_seanet_info_of(st);
    const int nq = 8;
    const int64_t n = 60, hop = in->hop;
    int32_t *codes = malloc(sizeof(int32_t) * (size_t)(n * nq));
    float *whole = malloc(sizeof(float) * (size_t)(n * hop));
    for (int64_t i = 0; i < n * nq; i++)
        codes[i] = (int32_t)rnd((uint32_t)in->codebook_size);
    CHECK(ag_seanet_decode(st, codes, n, nq, whole) == 0, "decode: %s", ag_last_error());
    double peak = 0;
    for (int64_t i = 0; i < n * hop; i++)
        peak = fmax(peak, fabs(whole[i]));
    const double jump = max_jump(whole, 0, n * hop);
    double seam, d;
    d = decode_pieces(st, codes, n, nq, 4096, 8, 13, whole, &seam);
    printf("# seanet pieces of 13, full left context, 8 right: max |diff| %.3g (peak %.3g)\n", d, peak);
    CHECK(d <= 1e-5 * peak, "full-context pieces differ from the whole decode by %.3g (peak %.3g)", d, peak);
    d = decode_pieces(st, codes, n, nq, 16, 4, 13, whole, &seam);
    printf("# seanet pieces of 13, 16 left / 4 right: max |diff| %.3g = %.3g%% of peak; largest seam jump %.3g, "
           "largest jump in the whole decode %.3g\n",
           d, 100 * d / peak, seam, jump);
    CHECK(d <= 0.02 * peak, "16/4 context: %.3g off (peak %.3g)", d, peak);
    CHECK(seam <= jump + 0.02 * peak, "a click at a seam: jump %.3g (whole decode at most %.3g)", seam, jump);
    d = decode_pieces(st, codes, n, nq, 0, 0, 13, whole, &seam);
    printf("# seanet pieces of 13 without context: max |diff| %.3g = %.3g%% of peak, largest seam jump %.3g\n", d,
           100 * d / peak, seam);
    CHECK(ag_seanet_stream_new(st, 9, 4, 4) == NULL, "9 layers accepted");
    CHECK(ag_seanet_stream_new(st, 8, -1, 4) == NULL, "negative context accepted");
    free(codes);
    free(whole);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s SOUNDSTORM.gguf SPEECHTOKENIZER.gguf\n", argv[0]);
        return 2;
    }
    ag_backend *cpu = ag_backend_cpu_new(2);
    CHECK(cpu != NULL, "cpu backend: %s", ag_last_error());
    if (!cpu)
        return t_finish();
    ag_soundstorm *m = ag_soundstorm_load(cpu, argv[1], NULL, NULL);
    CHECK(m != NULL, "load %s: %s", argv[1], ag_last_error());
    if (m)
        check_soundstorm(m);
    ag_soundstorm_free(m);
    ag_seanet *st = ag_seanet_load(cpu, argv[2], NULL, NULL);
    CHECK(st != NULL, "load %s: %s", argv[2], ag_last_error());
    if (st)
        check_seanet(st);
    ag_seanet_free(st);
    ag_backend_free(cpu);
    return t_finish();
}

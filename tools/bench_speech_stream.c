/* anygpt-bench-speech-stream SOUNDSTORM.gguf SPEECHTOKENIZER.gguf [--frames N] [--prompt N]
 *                            [--chunks 10,25,50] [--context 16] [--threads N] [--seed S]
 *
 * Streamed speech against the whole utterance, on the same semantic tokens and seed: SoundStorm
 * generates the item whole (one call) and in chunks (ag_soundstorm_stream: each chunk
 * conditioned on the previous one), the SpeechTokenizer decoder turns both into audio (chunks:
 * ag_seanet_stream with --context frames on the left, 4 on the right). Printed per chunk size:
 *  - time to the first audio of the SoundStorm + decode stage (whole: everything; stream: the
 *    first chunk) and the total time;
 *  - fidelity: agreement of the acoustic tokens (levels 2..8) with the whole result, per chunk
 *    and overall, and the audio distance: SNR of the streamed audio against the whole one, in
 *    dB (higher is closer), over the item and over the 20 ms around each chunk edge;
 *    (baseline printed: the whole result with random levels 2..8);
 *  - the decoder's own seams: the whole item's tokens decoded in chunk-sized pieces, max |diff|
 *    to the whole decode (no context: the clicks that context removes).
 * The semantic tokens are random (seeded) unless the models are real; a voice prompt of --prompt
 * random frames (default 0) is used for the whole call and the first chunk. Not run by meson test. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/seanet.h"
#include "anygpt/soundstorm.h"

#define RIGHT 4

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rs = 88172645463325252ull;
static uint32_t rnd(uint32_t n)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (uint32_t)(rs % n);
}

/* 10 log10(sum ref^2 / sum (x - ref)^2) over [a, b) */
static double snr_db(const float *x, const float *ref, int64_t a, int64_t b)
{
    double s = 0, e = 0;
    for (int64_t i = a; i < b; i++) {
        s += (double)ref[i] * ref[i];
        e += ((double)x[i] - ref[i]) * ((double)x[i] - ref[i]);
    }
    return e > 0 ? 10 * log10(s / e) : INFINITY;
}

/* decode codes [n][8] in pieces of `piece` with ag_seanet_stream(left, right); returns the time
 * to the first output and the total in *first / *total */
static int decode_pieces(ag_seanet *st, const int32_t *codes, int64_t n, int64_t piece, int left, int right,
                         float *audio, double *first, double *total)
{
    const int64_t hop = ag_seanet_info_of(st)->hop;
    ag_seanet_stream *s = ag_seanet_stream_new(st, 8, left, right);
    float *tmp = malloc(sizeof(float) * (size_t)((piece + right) * hop));
    if (!s || !tmp) {
        ag_seanet_stream_free(s);
        free(tmp);
        return -1;
    }
    int64_t at = 0, out = 0;
    const double t0 = now_s();
    *first = -1;
    while (at < n) {
        const int64_t k = piece < n - at ? piece : n - at;
        const int64_t got = ag_seanet_stream_decode(s, codes + at * 8, k, at + k == n, tmp);
        if (got < 0)
            break;
        if (got > 0 && *first < 0)
            *first = now_s() - t0;
        memcpy(audio + out, tmp, sizeof(float) * (size_t)got);
        out += got;
        at += k;
    }
    *total = now_s() - t0;
    ag_seanet_stream_free(s);
    free(tmp);
    return out == n * hop ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *ss_path = NULL, *st_path = NULL, *chunks = "10,25,50";
    int64_t frames = 250, tp = 0;
    int threads = 2, context = 16;
    uint64_t seed = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--frames") && v)
            frames = atoll(argv[++i]);
        else if (!strcmp(a, "--prompt") && v)
            tp = atoll(argv[++i]);
        else if (!strcmp(a, "--chunks") && v)
            chunks = argv[++i];
        else if (!strcmp(a, "--context") && v)
            context = atoi(argv[++i]);
        else if (!strcmp(a, "--threads") && v)
            threads = atoi(argv[++i]);
        else if (!strcmp(a, "--seed") && v)
            seed = strtoull(argv[++i], NULL, 10);
        else if (a[0] != '-' && !ss_path)
            ss_path = a;
        else if (a[0] != '-' && !st_path)
            st_path = a;
        else {
            fprintf(stderr, "usage: %s SOUNDSTORM.gguf SPEECHTOKENIZER.gguf [--frames N] [--prompt N] "
                            "[--chunks 10,25,50] [--context 16] [--threads N] [--seed S]\n", argv[0]);
            return 2;
        }
    }
    if (!ss_path || !st_path || frames < 1 || frames > 8000 || tp < 0 || tp > 4000) {
        fprintf(stderr, "%s: two model files, 1..8000 frames and 0..4000 prompt frames wanted\n", argv[0]);
        return 2;
    }
    ag_backend *be = ag_backend_cpu_new(threads);
    ag_soundstorm *ss = be ? ag_soundstorm_load(be, ss_path, NULL, NULL) : NULL;
    ag_seanet *st = ss ? ag_seanet_load(be, st_path, NULL, NULL) : NULL;
    if (!st) {
        fprintf(stderr, "error: %s\n", ag_last_error());
        return 1;
    }
    const ag_soundstorm_info *in = ag_soundstorm_info_of(ss);
    const int64_t L = in->n_q + 1, hop = ag_seanet_info_of(st)->hop, ns = frames * hop;
    if (L != 8 || ag_seanet_info_of(st)->codebook_size != in->codebook_size) {
        fprintf(stderr, "error: the models do not fit (SoundStorm %lld levels of %d, tokenizer codebook %d)\n",
                (long long)L, in->codebook_size, ag_seanet_info_of(st)->codebook_size);
        return 1;
    }
    int32_t *sem = malloc(sizeof(int32_t) * (size_t)frames), *prompt = malloc(sizeof(int32_t) * (size_t)((tp + 1) * L));
    int32_t *whole = malloc(sizeof(int32_t) * (size_t)(frames * L)), *str = malloc(sizeof(int32_t) * (size_t)(frames * L));
    float *aw = malloc(sizeof(float) * (size_t)ns), *as = malloc(sizeof(float) * (size_t)ns),
          *ap = malloc(sizeof(float) * (size_t)ns);
    for (int64_t i = 0; i < frames; i++)
        sem[i] = (int32_t)rnd((uint32_t)in->semantic_vocab);
    for (int64_t i = 0; i < tp * L; i++)
        prompt[i] = (int32_t)rnd((uint32_t)(i % L ? in->codebook_size : in->semantic_vocab));
    printf("# %lld frames (%.2f s), prompt %lld frames, %d threads, seed %llu, decoder context %d left / %d right\n",
           (long long)frames, frames / 50.0, (long long)tp, ag_backend_cpu_n_threads(be), (unsigned long long)seed,
           context, RIGHT);
    double t0 = now_s();
    if (ag_soundstorm_generate(ss, sem, frames, tp ? prompt : NULL, tp, 3, seed, true, whole) != 0) {
        fprintf(stderr, "error: %s\n", ag_last_error());
        return 1;
    }
    const double w_ss = now_s() - t0;
    t0 = now_s();
    if (ag_seanet_decode(st, whole, frames, 8, aw) != 0) {
        fprintf(stderr, "error: %s\n", ag_last_error());
        return 1;
    }
    const double w_dec = now_s() - t0;
    printf("whole: soundstorm %.3f s + decode %.3f s = first audio after %.3f s\n", w_ss, w_dec, w_ss + w_dec);
    printf("| chunk | first audio s | total s | token agreement | per chunk (first 8) | SNR dB | SNR at edges dB | "
           "decoder seams, no context: max diff / with context |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (const char *c = chunks; c && *c;) {
        const int64_t chunk = atoll(c);
        c = strchr(c, ',');
        c = c ? c + 1 : NULL;
        if (chunk < 1 || chunk > AG_SOUNDSTORM_MAX_FRAMES / 2)
            continue;
        ag_soundstorm_stream *s = ag_soundstorm_stream_new(ss, chunk, tp ? prompt : NULL, tp, 3, seed, true);
        ag_seanet_stream *d = ag_seanet_stream_new(st, 8, context, RIGHT);
        float *tmp = malloc(sizeof(float) * (size_t)((chunk + RIGHT) * hop));
        if (!s || !d || !tmp || ag_soundstorm_stream_push(s, sem, frames) != 0) {
            fprintf(stderr, "error: %s\n", ag_last_error());
            return 1;
        }
        /* the tokens are all there: this times SoundStorm + decode as if they had just arrived */
        int64_t done = 0, out = 0, k;
        double first = -1;
        t0 = now_s();
        while ((k = ag_soundstorm_stream_next(s, true, str + done * L)) > 0) {
            const int64_t got = ag_seanet_stream_decode(d, str + done * L, k, done + k == frames, tmp);
            if (got < 0)
                break;
            if (got > 0 && first < 0)
                first = now_s() - t0;
            memcpy(as + out, tmp, sizeof(float) * (size_t)got);
            out += got;
            done += k;
        }
        const double total = now_s() - t0;
        if (k < 0 || done != frames || out != ns) {
            fprintf(stderr, "error: chunk %lld: %s\n", (long long)chunk, ag_last_error());
            return 1;
        }
        int64_t same = 0;
        char per[256] = "";
        for (int64_t c0 = 0; c0 < frames; c0 += chunk) {
            int64_t cs = 0, cn = 0;
            for (int64_t i = c0; i < frames && i < c0 + chunk; i++)
                for (int64_t q = 1; q < L; q++, cn++)
                    cs += str[i * L + q] == whole[i * L + q];
            same += cs;
            if (c0 / chunk < 8)
                snprintf(per + strlen(per), sizeof per - strlen(per), "%s%.0f", c0 ? " " : "", 100.0 * cs / cn);
        }
        double se = 0, ee = 0;
        for (int64_t e = chunk; e < frames; e += chunk)
            for (int64_t i = (e - 1) * hop; i < (e + 1) * hop; i++) {
                se += (double)aw[i] * aw[i];
                ee += ((double)as[i] - aw[i]) * ((double)as[i] - aw[i]);
            }
        double f1, t1, dn = 0, dc = 0;
        decode_pieces(st, whole, frames, chunk, 0, 0, ap, &f1, &t1);
        for (int64_t i = 0; i < ns; i++)
            dn = fmax(dn, fabs((double)ap[i] - aw[i]));
        decode_pieces(st, whole, frames, chunk, context, RIGHT, ap, &f1, &t1);
        for (int64_t i = 0; i < ns; i++)
            dc = fmax(dc, fabs((double)ap[i] - aw[i]));
        printf("| %lld | %.3f | %.3f | %.1f%% | %s | %.1f | %.1f | %.3g / %.3g |\n", (long long)chunk, first, total,
               100.0 * same / (frames * (L - 1)), per, snr_db(as, aw, 0, ns),
               ee > 0 ? 10 * log10(se / ee) : INFINITY, dn, dc);
        ag_soundstorm_stream_free(s);
        ag_seanet_stream_free(d);
        free(tmp);
    }
    double peak = 0;
    for (int64_t i = 0; i < ns; i++)
        peak = fmax(peak, fabs(aw[i]));
    /* what the SNR means here: the same semantic level with random acoustic levels */
    for (int64_t i = 0; i < frames * L; i++)
        str[i] = i % L ? (int32_t)rnd((uint32_t)in->codebook_size) : whole[i];
    if (ag_seanet_decode(st, str, frames, 8, as) == 0)
        printf("# whole audio peak %.3g; baseline: levels 2..8 replaced by random codes give SNR %.1f dB\n", peak,
               snr_db(as, aw, 0, ns));
    free(sem);
    free(prompt);
    free(whole);
    free(str);
    free(aw);
    free(as);
    free(ap);
    ag_seanet_free(st);
    ag_soundstorm_free(ss);
    ag_backend_free(be);
    return 0;
}

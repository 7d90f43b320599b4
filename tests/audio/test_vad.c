/* Energy VAD on synthesized signals: speech-like bursts (amplitude-modulated harmonic tones of
 * 0.8 s) separated by 1 s of low noise give one START/END pair per burst, starts within one
 * frame of the true onset, whatever the feeding chunk size; noise alone, clicks shorter than
 * min-speech, a silence gap shorter than silence-ms and NaN input are handled; bad configs are
 * refused. */
#include "../common/ag_check.h"

#include "anygpt/error.h"
#include "anygpt/vad.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define SR 16000

static uint32_t rng = 12345;
static float noise(float amp)
{
    rng = rng * 1664525u + 1013904223u;
    return amp * ((float)(rng >> 8) / (float)(1u << 24) * 2.0f - 1.0f);
}

/* A burst at t (s): 3 harmonics of f0 under a 4 Hz envelope that never reaches zero. */
static float burst(double t, double f0)
{
    double env = 0.6 + 0.4 * sin(2 * M_PI * 4 * t);
    return (float)(0.2 * env * (sin(2 * M_PI * f0 * t) + 0.5 * sin(4 * M_PI * f0 * t) + 0.25 * sin(6 * M_PI * f0 * t)));
}

/* lead s of noise, then n bursts of len s each followed by gap s of noise */
static float *make_signal(double lead, int n, double len, double gap, size_t *n_out)
{
    size_t total = (size_t)((lead + n * (len + gap)) * SR);
    float *x = malloc(total * sizeof *x);
    for (size_t i = 0; i < total; i++) {
        double t = (double)i / SR - lead;
        double in_cycle = t - floor(t / (len + gap)) * (len + gap);
        x[i] = noise(0.003f);
        if (t >= 0 && in_cycle < len)
            x[i] += burst(in_cycle, 140.0 + 20 * floor(t / (len + gap)));
    }
    *n_out = total;
    return x;
}

static int run(ag_vad *v, const float *x, size_t n, size_t chunk, ag_vad_event *ev, int max)
{
    int got = 0;
    for (size_t off = 0; off < n; off += chunk) {
        size_t m = n - off < chunk ? n - off : chunk;
        ag_vad_event tmp[4096];
        int k = ag_vad_process(v, x + off, m, tmp, sizeof tmp / sizeof tmp[0]);
        if (k < 0)
            return -1;
        for (int i = 0; i < k && got < max; i++)
            ev[got++] = tmp[i];
    }
    return got;
}

static void test_bursts(size_t chunk)
{
    size_t n;
    const double lead = 0.5, len = 0.8, gap = 1.0;
    float *x = make_signal(lead, 4, len, gap, &n);
    ag_vad_config cfg = ag_vad_config_default(SR);
    ag_vad *v = ag_vad_new(&cfg);
    ag_vad_event ev[32];
    int k = run(v, x, n, chunk, ev, 32);
    int frame = ag_vad_frame_len(v);
    CHECK(k == 8, "chunk %zu: %d events, want 8 (4 bursts)", chunk, k);
    for (int b = 0; b < 4 && b * 2 + 1 < k; b++) {
        int64_t want_start = (int64_t)((lead + b * (len + gap)) * SR);
        int64_t want_end = want_start + (int64_t)(len * SR);
        CHECK(ev[2 * b].kind == AG_VAD_START && llabs(ev[2 * b].pos - want_start) <= frame,
              "burst %d start %lld want %lld (frame %d)", b, (long long)ev[2 * b].pos, (long long)want_start, frame);
        CHECK(ev[2 * b + 1].kind == AG_VAD_END && llabs(ev[2 * b + 1].pos - want_end) <= frame,
              "burst %d end %lld want %lld", b, (long long)ev[2 * b + 1].pos, (long long)want_end);
    }
    ag_vad_free(v);
    free(x);
}

static void test_noise_and_clicks(void)
{
    ag_vad_config cfg = ag_vad_config_default(SR);
    ag_vad *v = ag_vad_new(&cfg);
    size_t n = 3 * SR;
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = noise(0.003f);
    /* two 50 ms clicks: louder than the floor but shorter than min-speech-ms (200) */
    for (size_t i = SR; i < SR + SR / 20; i++)
        x[i] += burst((double)i / SR, 200);
    for (size_t i = 2 * SR; i < 2 * SR + SR / 20; i++)
        x[i] += burst((double)i / SR, 200);
    ag_vad_event ev[8];
    CHECK(run(v, x, n, 777, ev, 8) == 0, "noise with short clicks gave events");
    CHECK(!ag_vad_in_speech(v), "in speech after noise");
    ag_vad_free(v);
    free(x);
}

static void test_short_gap_joins(void)
{
    /* gap 0.3 s < silence 600 ms: two bursts are one utterance */
    size_t n;
    float *x = make_signal(0.5, 2, 0.8, 0.3, &n);
    ag_vad_config cfg = ag_vad_config_default(SR);
    ag_vad *v = ag_vad_new(&cfg);
    ag_vad_event ev[8];
    int k = run(v, x, n, 4096, ev, 8);
    CHECK(k == 1 && ev[0].kind == AG_VAD_START, "short gap: %d events, want 1 START (END only after 600 ms)", k);
    CHECK(ag_vad_in_speech(v), "should still be in speech at the end");
    ag_vad_free(v);
    free(x);
}

static void test_hostile(void)
{
    ag_vad_config cfg = ag_vad_config_default(SR);
    cfg.on_db = 3;
    cfg.off_db = 6;
    CHECK(ag_vad_new(&cfg) == NULL && strstr(ag_last_error(), "vad") != NULL, "on < off accepted");
    cfg = ag_vad_config_default(0);
    CHECK(ag_vad_new(&cfg) == NULL, "rate 0 accepted");
    cfg = ag_vad_config_default(SR);
    cfg.off_db = NAN;
    CHECK(ag_vad_new(&cfg) == NULL, "NaN threshold accepted");

    cfg = ag_vad_config_default(SR);
    ag_vad *v = ag_vad_new(&cfg);
    float x[1600];
    for (int i = 0; i < 1600; i++)
        x[i] = (i % 7) ? NAN : INFINITY;
    ag_vad_event ev[1];
    CHECK(ag_vad_process(v, x, 1600, ev, 1) == -1, "too small event array not refused");
    ag_vad_event ev2[16];
    CHECK(ag_vad_process(v, x, 1600, ev2, 16) == 0, "non-finite input gave events");
    CHECK(ag_vad_process(v, x, 0, ev2, 0) == 0, "empty input");
    ag_vad_free(v);
}

int main(void)
{
    test_bursts(160);
    test_bursts(1000);
    test_bursts(16000 * 8);
    test_noise_and_clicks();
    test_short_gap_joins();
    test_hostile();
    return t_finish();
}

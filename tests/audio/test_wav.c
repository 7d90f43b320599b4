/* WAV reader: files built byte by byte from the RIFF/WAVE layout with known sample values
 * (closed form), every prefix of a valid file, malformed chunks, and a write/read round trip. */
#include "../common/ag_check.h"
#include "anygpt/error.h"
#include "anygpt/limits.h"
#include "anygpt/wav.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t put(uint8_t *b, size_t at, uint32_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        b[at + (size_t)i] = (uint8_t)(v >> (8 * i));
    return at + (size_t)bytes;
}

/* header + fmt (tag, channels, rate, bits; extensible when ext) + optional LIST chunk + data */
static size_t make_wav(uint8_t *b, int tag, int ch, int rate, int bits, int ext, int list, const uint8_t *pcm,
                       size_t pcm_len)
{
    size_t p = 0;
    memcpy(b, "RIFF", 4), p = put(b, 4, 0, 4), memcpy(b + p, "WAVE", 4), p += 4;
    memcpy(b + p, "fmt ", 4), p += 4;
    p = put(b, p, ext ? 40 : 16, 4);
    p = put(b, p, ext ? 0xFFFE : (uint32_t)tag, 2), p = put(b, p, (uint32_t)ch, 2), p = put(b, p, (uint32_t)rate, 4);
    p = put(b, p, (uint32_t)(rate * ch * bits / 8), 4), p = put(b, p, (uint32_t)(ch * bits / 8), 2);
    p = put(b, p, (uint32_t)bits, 2);
    if (ext) {
        p = put(b, p, 22, 2), p = put(b, p, (uint32_t)bits, 2), p = put(b, p, 3, 4);
        p = put(b, p, (uint32_t)tag, 2);
        memset(b + p, 0xAB, 14), p += 14; /* rest of the GUID */
    }
    if (list) { /* an odd-sized chunk the reader must skip, with its pad byte */
        memcpy(b + p, "LIST", 4), p += 4, p = put(b, p, 3, 4), memcpy(b + p, "abc", 3), p += 3, b[p++] = 0;
    }
    memcpy(b + p, "data", 4), p += 4, p = put(b, p, (uint32_t)pcm_len, 4);
    memcpy(b + p, pcm, pcm_len), p += pcm_len;
    put(b, 4, (uint32_t)(p - 8), 4);
    return p;
}

static void check_close(const ag_wav *w, const double *want, int64_t n, double tol, const char *what)
{
    double err = 0;
    for (int64_t i = 0; i < n && i < w->n; i++)
        err = fmax(err, fabs(w->samples[i] - want[i]));
    CHECK(w->n == n && err <= tol, "%s: %lld samples (want %lld), max err %.3g", what, (long long)w->n,
          (long long)n, err);
}

int main(void)
{
    uint8_t buf[4096], pcm[1024];
    ag_wav w;

    /* 16-bit stereo 16 kHz: left/right averaged */
    const int16_t s16[] = {0, 0, 32767, -32768, -16384, 16384, 1000, 3000, -32768, -32768};
    for (int i = 0; i < 10; i++)
        put(pcm, (size_t)i * 2, (uint16_t)s16[i], 2);
    size_t n = make_wav(buf, 1, 2, 16000, 16, 0, 1, pcm, 20);
    const double want16[] = {0, (32767 - 32768) / 65536.0, 0, 4000 / 65536.0, -1};
    CHECK(ag_wav_parse(buf, n, "s16", &w) == 0 && w.sample_rate == 16000 && w.channels == 2, "s16 parsed: %s",
          ag_last_error());
    check_close(&w, want16, 5, 1e-7, "s16 stereo");
    ag_wav_clear(&w);

    /* 24-bit mono, extensible */
    const int32_t s24[] = {8388607, -8388608, 1, -1, 4194304};
    for (int i = 0; i < 5; i++)
        put(pcm, (size_t)i * 3, (uint32_t)s24[i] & 0xffffff, 3);
    n = make_wav(buf, 1, 1, 32000, 24, 1, 0, pcm, 15);
    double want24[5];
    for (int i = 0; i < 5; i++)
        want24[i] = s24[i] / 8388608.0;
    CHECK(ag_wav_parse(buf, n, "s24", &w) == 0 && w.sample_rate == 32000, "s24 parsed: %s", ag_last_error());
    check_close(&w, want24, 5, 1e-7, "s24 extensible");
    ag_wav_clear(&w);

    /* 8-bit unsigned, float32, float64 */
    const uint8_t u8[] = {0, 128, 255, 64};
    n = make_wav(buf, 1, 1, 8000, 8, 0, 0, u8, 4);
    const double want8[] = {-1, 0, 127 / 128.0, -0.5};
    CHECK(ag_wav_parse(buf, n, "u8", &w) == 0, "u8 parsed");
    check_close(&w, want8, 4, 1e-7, "u8");
    ag_wav_clear(&w);
    const float f32[] = {0.25f, -0.75f, 1.5f};
    n = make_wav(buf, 3, 1, 16000, 32, 0, 0, (const uint8_t *)f32, sizeof f32);
    const double wantf[] = {0.25, -0.75, 1.5};
    CHECK(ag_wav_parse(buf, n, "f32", &w) == 0, "f32 parsed");
    check_close(&w, wantf, 3, 0, "f32");
    ag_wav_clear(&w);
    const double f64[] = {0.125, -0.5};
    n = make_wav(buf, 3, 1, 16000, 64, 0, 0, (const uint8_t *)f64, sizeof f64);
    CHECK(ag_wav_parse(buf, n, "f64", &w) == 0, "f64 parsed");
    check_close(&w, f64, 2, 0, "f64");
    ag_wav_clear(&w);

    /* a data size larger than the file (a truncated download) reads what is there */
    n = make_wav(buf, 1, 2, 16000, 16, 0, 0, pcm, 20);
    put(buf, 40, 1u << 30, 4);
    CHECK(ag_wav_parse(buf, n - 6, "short", &w) == 0 && w.n == 3, "oversized data chunk: %lld frames", (long long)w.n);
    ag_wav_clear(&w);

    /* every prefix of a valid file: an error or fewer samples, never a crash */
    n = make_wav(buf, 1, 2, 16000, 16, 0, 1, pcm, 20);
    int bad = 0;
    for (size_t k = 0; k < n; k++) {
        if (ag_wav_parse(buf, k, "prefix", &w) == 0) {
            if (w.n > 5)
                bad++;
            ag_wav_clear(&w);
        } else if (!strstr(ag_last_error(), "prefix"))
            bad++;
    }
    CHECK(bad == 0, "all %zu prefixes rejected or short, errors name the file (%d bad)", n, bad);

    /* malformed: compressed format, zero channels, 12-bit, fmt size past the end, no fmt */
    struct {
        int tag, ch, bits;
        const char *want;
    } cases[] = {{2, 1, 16, "not PCM"}, {1, 0, 16, "unsupported"}, {1, 1, 12, "unsupported"}, {3, 1, 16, "unsupported"}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        n = make_wav(buf, cases[c].tag, cases[c].ch, 16000, cases[c].bits, 0, 0, pcm, 4);
        int rc = ag_wav_parse(buf, n, "bad", &w);
        CHECK(rc == -1 && strstr(ag_last_error(), cases[c].want), "case %zu refused: %s", c, ag_last_error());
    }
    n = make_wav(buf, 1, 1, 16000, 16, 0, 0, pcm, 4);
    put(buf, 16, 0x7fffffff, 4);
    CHECK(ag_wav_parse(buf, n, "bad", &w) == -1 && strstr(ag_last_error(), "fmt"), "huge fmt: %s", ag_last_error());
    memcpy(buf + 12, "junk", 4);
    CHECK(ag_wav_parse(buf, n, "bad", &w) == -1, "no fmt chunk: %s", ag_last_error());
    CHECK(ag_wav_parse("RIFX", 4, "bad", &w) == -1 && strstr(ag_last_error(), "RIFF"), "not RIFF");
    CHECK(ag_wav_read("/nonexistent/x.wav", &w) == -1 && strstr(ag_last_error(), "/nonexistent/x.wav"),
          "missing file named: %s", ag_last_error());

    /* over-long inputs (anygpt/limits.h): a header claiming 2 hours over a short body is read up
     * to the end of the file (the documented truncation); a bound is enforced before decoding */
    n = make_wav(buf, 1, 1, 16000, 16, 0, 0, pcm, 8);
    put(buf, n - 8 - 4, 2u * 3600 * 16000 * 2, 4);
    CHECK(ag_wav_parse(buf, n, "claims-2h", &w) == 0 && w.n == 4, "2 h header, 4 samples: %lld (%s)",
          (long long)w.n, ag_last_error());
    ag_wav_clear(&w);
    CHECK(ag_wav_parse_max(buf, n, "prompt", 3, &w) == -1 && strstr(ag_last_error(), "prompt: 4 samples") &&
              strstr(ag_last_error(), "more than the 3"),
          "caller's bound: %s", ag_last_error());
    {
        /* 8-bit mono: AG_MAX_WAV_SAMPLES + 1 bytes of data (a 134 MB buffer, never decoded) */
        size_t big = (size_t)AG_MAX_WAV_SAMPLES + 1;
        uint8_t *h = calloc(64 + big, 1);
        size_t hn = make_wav(h, 1, 1, 16000, 8, 0, 0, pcm, 0);
        CHECK(ag_wav_parse(h, hn + big, "long.wav", &w) == -1 && strstr(ag_last_error(), "long.wav") &&
                  strstr(ag_last_error(), "accepted"),
              "more than AG_MAX_WAV_SAMPLES: %s", ag_last_error());
        free(h);
    }

    /* write/read round trip */
    const char *dir = getenv("AG_BUILD_ROOT");
    char path[4096];
    snprintf(path, sizeof path, "%s/test_wav_roundtrip.wav", dir ? dir : ".");
    float x[257];
    double xd[257];
    for (int i = 0; i < 257; i++)
        x[i] = (float)sin(i * 0.1), xd[i] = x[i];
    CHECK(ag_wav_write_f32(path, x, 257, 16000) == 0, "write: %s", ag_last_error());
    CHECK(ag_wav_read(path, &w) == 0 && w.sample_rate == 16000 && w.channels == 1, "read back: %s", ag_last_error());
    check_close(&w, xd, 257, 0, "round trip");
    ag_wav_clear(&w);
    remove(path);
    return t_finish();
}

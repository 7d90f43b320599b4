/* RIFF/WAVE reading and float writing: see anygpt/wav.h. */
#include "anygpt/wav.h"
#include "anygpt/error.h"
#include "anygpt/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | rd16(p + 2) << 16; }

/* one sample of the given format at p, as float */
static double sample_at(const uint8_t *p, int is_float, int bits)
{
    if (is_float) {
        if (bits == 32) {
            float f;
            memcpy(&f, p, 4);
            return f;
        }
        double d;
        memcpy(&d, p, 8);
        return d;
    }
    switch (bits) {
    case 8: return ((int)p[0] - 128) / 128.0; /* 8-bit PCM is unsigned */
    case 16: return (int16_t)rd16(p) / 32768.0;
    case 24: {
        int32_t v = (int32_t)((uint32_t)p[0] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 24) >> 8;
        return v / 8388608.0;
    }
    default: return (int32_t)rd32(p) / 2147483648.0;
    }
}

int ag_wav_parse_max(const void *data, size_t size, const char *label, int64_t max_samples, ag_wav *out)
{
    const uint8_t *b = data;
    memset(out, 0, sizeof *out);
    if (!label)
        label = "wav";
    if (size < 12 || memcmp(b, "RIFF", 4) || memcmp(b + 8, "WAVE", 4)) {
        ag_set_error("%s: not a RIFF/WAVE file", label);
        return -1;
    }
    int have_fmt = 0, is_float = 0, bits = 0, channels = 0;
    uint32_t rate = 0;
    const uint8_t *pcm = NULL;
    size_t pcm_size = 0;
    size_t pos = 12;
    while (pos + 8 <= size) {
        uint32_t len = rd32(b + pos + 4);
        const uint8_t *body = b + pos + 8;
        size_t avail = size - pos - 8;
        if (!memcmp(b + pos, "fmt ", 4)) {
            if (len < 16 || len > avail) {
                ag_set_error("%s: fmt chunk of %u bytes is malformed or runs past the end", label, len);
                return -1;
            }
            uint32_t tag = rd16(body);
            channels = (int)rd16(body + 2);
            rate = rd32(body + 4);
            bits = (int)rd16(body + 14);
            if (tag == 0xFFFE) { /* WAVE_FORMAT_EXTENSIBLE: the sub-format GUID starts with the tag */
                if (len < 40) {
                    ag_set_error("%s: extensible fmt chunk too short (%u bytes)", label, len);
                    return -1;
                }
                tag = rd16(body + 24);
            }
            if (tag == 3)
                is_float = 1;
            else if (tag != 1) {
                ag_set_error("%s: sample format %u is not PCM or IEEE float (compressed WAV is not supported)",
                             label, tag);
                return -1;
            }
            have_fmt = 1;
        } else if (!memcmp(b + pos, "data", 4)) {
            pcm = body;
            /* a streaming writer may leave the size at 0 or 0xFFFFFFFF: take what the file has */
            pcm_size = len == 0 || len == 0xFFFFFFFFu || len > avail ? avail : len;
            break;
        }
        if (len > avail)
            break;
        pos += 8 + (size_t)len + (len & 1); /* chunks are padded to even sizes */
    }
    if (!have_fmt) {
        ag_set_error("%s: no fmt chunk before the data", label);
        return -1;
    }
    if (!pcm) {
        ag_set_error("%s: no data chunk", label);
        return -1;
    }
    if (channels < 1 || channels > 64 || rate < 1 || rate > 1000000 ||
        (is_float ? (bits != 32 && bits != 64) : (bits != 8 && bits != 16 && bits != 24 && bits != 32))) {
        ag_set_error("%s: unsupported layout (%d channels, %u Hz, %d-bit %s)", label, channels, rate, bits,
                     is_float ? "float" : "integer");
        return -1;
    }
    size_t frame = (size_t)channels * (size_t)(bits / 8);
    int64_t n = (int64_t)(pcm_size / frame);
    if (n > max_samples) {
        ag_set_error("%s: %lld samples (%.1f s at %u Hz), more than the %lld (%.1f s) accepted", label, (long long)n,
                     (double)n / rate, rate, (long long)max_samples, (double)max_samples / rate);
        return -1;
    }
    float *s = malloc(n ? (size_t)n * sizeof *s : 1);
    if (!s) {
        ag_set_error("%s: out of memory for %lld samples", label, (long long)n);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        double acc = 0;
        for (int c = 0; c < channels; c++)
            acc += sample_at(pcm + (size_t)i * frame + (size_t)c * (size_t)(bits / 8), is_float, bits);
        s[i] = (float)(acc / channels);
    }
    out->sample_rate = (int32_t)rate;
    out->channels = channels;
    out->n = n;
    out->samples = s;
    return 0;
}

int ag_wav_parse(const void *data, size_t size, const char *label, ag_wav *out)
{
    return ag_wav_parse_max(data, size, label, AG_MAX_WAV_SAMPLES, out);
}

int ag_wav_read_max(const char *path, int64_t max_samples, ag_wav *out)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ag_set_error("%s: cannot open%s%s", path, fd < 0 ? ": " : " as a regular file", fd < 0 ? strerror(errno) : "");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    void *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (map == MAP_FAILED) {
        ag_set_error("%s: cannot map %zu bytes: %s", path, size, strerror(errno));
        return -1;
    }
    static const uint8_t empty[1];
    int rc = ag_wav_parse_max(map ? map : empty, size, path, max_samples, out);
    if (map)
        munmap(map, size);
    return rc;
}

int ag_wav_read(const char *path, ag_wav *out)
{
    return ag_wav_read_max(path, AG_MAX_WAV_SAMPLES, out);
}

void ag_wav_clear(ag_wav *w)
{
    free(w->samples);
    memset(w, 0, sizeof *w);
}

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xffff), put16(p + 2, v >> 16); }

int ag_wav_write_f32(const char *path, const float *samples, int64_t n, int32_t sample_rate)
{
    if (n < 0 || (uint64_t)n * 4 > 0xFFFFFFFFull - 64 || sample_rate <= 0) {
        ag_set_error("%s: cannot write %lld samples at %d Hz as WAV", path, (long long)n, sample_rate);
        return -1;
    }
    uint8_t h[44];
    uint32_t data = (uint32_t)n * 4;
    memcpy(h, "RIFF", 4), put32(h + 4, 36 + data), memcpy(h + 8, "WAVEfmt ", 8);
    put32(h + 16, 16), put16(h + 20, 3), put16(h + 22, 1), put32(h + 24, (uint32_t)sample_rate);
    put32(h + 28, (uint32_t)sample_rate * 4), put16(h + 32, 4), put16(h + 34, 32);
    memcpy(h + 36, "data", 4), put32(h + 40, data);
    size_t plen = strlen(path) + 5;
    char *tmp = malloc(plen);
    if (!tmp) {
        ag_set_error("%s: out of memory", path);
        return -1;
    }
    snprintf(tmp, plen, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(h, 1, 44, f) == 44 && (n == 0 || fwrite(samples, 4, (size_t)n, f) == (size_t)n);
    if (f && fclose(f))
        ok = 0;
    if (!ok || rename(tmp, path)) {
        remove(tmp);
        free(tmp);
        ag_set_error("%s: cannot write", path);
        return -1;
    }
    free(tmp);
    return 0;
}

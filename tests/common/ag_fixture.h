/* Fixture helpers shared by the model tests that run anygpt-convert on reference checkpoints
 * (tests/music, tests/speech, tests/soundstorm): read a binary fixture, run the converter, compare
 * files and float arrays, load a SEANet codec fixture set. Include as "../common/ag_fixture.h". */
#ifndef AG_TEST_FIXTURE_H
#define AG_TEST_FIXTURE_H

#include "ag_check.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The whole file (malloc'd, *n bytes); NULL (and *n 0) if unreadable. */
static inline void *ag_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(sz > 0 ? (size_t)sz : 1);
    if (p && fread(p, 1, (size_t)sz, f) != (size_t)sz) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return p;
}

/* Both files readable, non-empty and byte-identical. */
static inline bool ag_same_file(const char *a, const char *b)
{
    size_t na, nb;
    void *pa = ag_read_file(a, &na), *pb = ag_read_file(b, &nb);
    bool same = pa && pb && na == nb && na > 0 && memcmp(pa, pb, na) == 0;
    free(pa);
    free(pb);
    return same;
}

static inline double ag_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* max |got - ref| over n floats; *peak = max |ref|. */
static inline double ag_max_abs_err(const float *got, const float *ref, size_t n, double *peak)
{
    double err = 0;
    *peak = 0;
    for (size_t i = 0; i < n; i++) {
        *peak = fmax(*peak, fabs(ref[i]));
        err = fmax(err, fabs((double)got[i] - ref[i]));
    }
    return err;
}

/* Run `CONVERT KIND DIR/INPUT OUT --quiet --dtype DTYPE`; its exit status, stderr+stdout in msg. */
static inline int ag_run_convert(const char *convert_bin, const char *kind, const char *dir, const char *input,
                                 const char *out, const char *dtype, char *msg, size_t msg_len)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' %s '%s/%s' '%s' --quiet --dtype %s 2>&1", convert_bin, kind, dir, input, out,
             dtype);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(msg, 1, msg_len - 1, p);
    msg[n] = 0;
    return pclose(p);
}

/* The converter must refuse DIR/INPUT with a message containing expect. */
static inline void ag_check_refused(const char *convert_bin, const char *kind, const char *dir, const char *input,
                                    const char *out, const char *expect)
{
    char msg[4096];
    int rc = ag_run_convert(convert_bin, kind, dir, input, out, "f32", msg, sizeof msg);
    CHECK(rc != 0 && strstr(msg, expect) != NULL, "%s: rc %d, message '%s' (want '%s')", input, rc, msg, expect);
    if (rc != 0)
        printf("# refused %s: %s", input, msg);
}

/* A SEANet codec reference run (tests/reference/{encodec,speechtokenizer}_ref.py): DIR/NAME.in.f32
 * (audio), .codes.i32 (t frames x n_q), .gap.f32 (per code: relative distance gap to the runner-up),
 * .dec.f32 (t x hop decoded samples). */
typedef struct {
    float *in, *dec, *gap;
    int32_t *codes;
    int64_t n, t;
} ag_codec_fixture;

static inline int ag_codec_fixture_load(const char *dir, const char *name, int n_q, int hop, ag_codec_fixture *fx)
{
    char p[4096];
    size_t n1, n2, n3, n4;
    snprintf(p, sizeof p, "%s/%s.in.f32", dir, name);
    fx->in = ag_read_file(p, &n1);
    snprintf(p, sizeof p, "%s/%s.codes.i32", dir, name);
    fx->codes = ag_read_file(p, &n2);
    snprintf(p, sizeof p, "%s/%s.gap.f32", dir, name);
    fx->gap = ag_read_file(p, &n3);
    snprintf(p, sizeof p, "%s/%s.dec.f32", dir, name);
    fx->dec = ag_read_file(p, &n4);
    if (!fx->in || !fx->codes || !fx->gap || !fx->dec)
        return -1;
    fx->n = (int64_t)(n1 / 4);
    fx->t = (int64_t)(n2 / 4 / (size_t)n_q);
    return n3 == n2 && n4 == (size_t)fx->t * (size_t)hop * 4 ? 0 : -1;
}

static inline void ag_codec_fixture_free(ag_codec_fixture *fx)
{
    free(fx->in);
    free(fx->dec);
    free(fx->gap);
    free(fx->codes);
}

#endif

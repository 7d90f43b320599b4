/* anygpt-convert: one entry per KIND. Each returns 0, or -1 with ag_last_error() set. */
#ifndef AG_CONVERT_CONVERT_H
#define AG_CONVERT_CONVERT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "anygpt/tensor.h"

typedef struct {
    ag_type wtype; /* type of 2-D weights: F32 or F16; 1-D tensors stay F32 */
    bool quiet;    /* no per-tensor progress on stderr */
    int64_t chunk_elems; /* scratch size in elements; 0 = default (tests use tiny values) */
} convert_opts;

int convert_llm(const char *input, const char *output, const convert_opts *o);
int convert_speechtokenizer(const char *input, const char *output, const convert_opts *o);
int convert_soundstorm(const char *input, const char *output, const convert_opts *o);
int convert_encodec(const char *input, const char *output, const convert_opts *o);
int convert_seed_tokenizer(const char *input, const char *output, const convert_opts *o);

/* snprintf without -Wformat-truncation noise: names are short and bounded by construction */
static inline void cv_nm(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline void cv_nm(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

#endif

/* Streaming GGUF v3 writer for converters: KVs and tensor descriptors first, then the header is
 * written and each tensor's bytes are streamed in declaration order, so a 7B model is never held
 * in memory (the core writer, anygpt/gguf.h, references all tensor data until it writes).
 * Writes to OUT.tmp and renames on success. */
#ifndef AG_CONVERT_GGUF_STREAM_H
#define AG_CONVERT_GGUF_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anygpt/tensor.h"

typedef struct gs_writer gs_writer;

gs_writer *gs_new(void);
void gs_free(gs_writer *w); /* removes the temporary file if not finished */

int gs_set_u32(gs_writer *w, const char *key, uint32_t v);
int gs_set_i32(gs_writer *w, const char *key, int32_t v);
int gs_set_f32(gs_writer *w, const char *key, float v);
int gs_set_f64(gs_writer *w, const char *key, double v);
int gs_set_bool(gs_writer *w, const char *key, bool v);
int gs_set_str(gs_writer *w, const char *key, const char *v);
/* type is an ag_gguf_type of fixed size (u8..f64 except string/array). */
int gs_set_arr(gs_writer *w, const char *key, int type, const void *data, uint64_t n);
int gs_set_arr_str(gs_writer *w, const char *key, const char *const *strs, uint64_t n);

/* Declare a tensor (ne in ggml order, innermost first; any core type, ne[0] a multiple of its
 * block); returns its index or -1. */
int gs_add_tensor(gs_writer *w, const char *name, ag_type type, int n_dims, const int64_t *ne);
size_t gs_tensor_nbytes(const gs_writer *w, int idx);

/* Open path.tmp and write header, KVs and the tensor table. */
int gs_begin(gs_writer *w, const char *path);
/* Tensor data, in declaration order; size must be gs_tensor_nbytes. */
int gs_write_tensor(gs_writer *w, int idx, const void *data, size_t size);
/* The same in consecutive pieces (so a converter needs only a chunk of a tensor in memory). */
int gs_write_part(gs_writer *w, int idx, const void *data, size_t size);
/* Check that every tensor was written, close and rename. */
int gs_finish(gs_writer *w);

#endif

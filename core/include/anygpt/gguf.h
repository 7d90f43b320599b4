/* anygpt core: GGUF v3 reader (mmap, every count/offset/size validated before use) and writer.
 * Format: ggml's docs/gguf.md. Little-endian hosts only. */
#ifndef ANYGPT_GGUF_H
#define ANYGPT_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "anygpt/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ag_gguf_type {
    AG_GGUF_UINT8 = 0,
    AG_GGUF_INT8 = 1,
    AG_GGUF_UINT16 = 2,
    AG_GGUF_INT16 = 3,
    AG_GGUF_UINT32 = 4,
    AG_GGUF_INT32 = 5,
    AG_GGUF_FLOAT32 = 6,
    AG_GGUF_BOOL = 7,
    AG_GGUF_STRING = 8,
    AG_GGUF_ARRAY = 9,
    AG_GGUF_UINT64 = 10,
    AG_GGUF_INT64 = 11,
    AG_GGUF_FLOAT64 = 12
} ag_gguf_type;

#define AG_GGUF_DEFAULT_ALIGNMENT 32

typedef struct ag_gguf ag_gguf;

/* ---------------- reading ---------------- */
/* Open and validate a file (mmap'd read-only). NULL with ag_last_error() naming the file and the
 * problem. Tensor types other than F32/F16/Q4_0/Q8_0/I32 are rejected. */
ag_gguf *ag_gguf_open(const char *path);
/* Same on a memory image (not copied; must outlive the handle). */
ag_gguf *ag_gguf_open_memory(const void *data, size_t size, const char *label);
void ag_gguf_close(ag_gguf *f);

uint32_t ag_gguf_version(const ag_gguf *f);
size_t ag_gguf_alignment(const ag_gguf *f);

int64_t ag_gguf_n_kv(const ag_gguf *f);
int64_t ag_gguf_find_key(const ag_gguf *f, const char *key); /* -1 if absent */
const char *ag_gguf_key(const ag_gguf *f, int64_t i);
ag_gguf_type ag_gguf_kv_type(const ag_gguf *f, int64_t i);
/* For arrays: element type and count. */
ag_gguf_type ag_gguf_arr_type(const ag_gguf *f, int64_t i);
uint64_t ag_gguf_arr_n(const ag_gguf *f, int64_t i);
/* Pointer to the packed array data (non-string arrays), inside the mapping. */
const void *ag_gguf_arr_data(const ag_gguf *f, int64_t i);
/* String array element j: pointer (not NUL-terminated) and length. */
const char *ag_gguf_arr_str(const ag_gguf *f, int64_t i, uint64_t j, uint64_t *len);

/* Typed getters: return false (and set the error) when the key is absent or of another type.
 * Integer getters accept any integer KV type whose value fits. */
bool ag_gguf_get_u32(const ag_gguf *f, const char *key, uint32_t *out);
bool ag_gguf_get_i32(const ag_gguf *f, const char *key, int32_t *out);
bool ag_gguf_get_u64(const ag_gguf *f, const char *key, uint64_t *out);
bool ag_gguf_get_f32(const ag_gguf *f, const char *key, float *out);
/* f64 or f32 (widened exactly); for values that must survive unrounded (scheduler betas). */
bool ag_gguf_get_f64(const ag_gguf *f, const char *key, double *out);
bool ag_gguf_get_bool(const ag_gguf *f, const char *key, bool *out);
/* The string value as a NUL-terminated copy owned by the handle (valid until close). */
const char *ag_gguf_get_str(const ag_gguf *f, const char *key);

int64_t ag_gguf_n_tensors(const ag_gguf *f);
int64_t ag_gguf_find_tensor(const ag_gguf *f, const char *name); /* -1 if absent */
const char *ag_gguf_tensor_name(const ag_gguf *f, int64_t i);
ag_type ag_gguf_tensor_type(const ag_gguf *f, int64_t i);
int ag_gguf_tensor_n_dims(const ag_gguf *f, int64_t i);
void ag_gguf_tensor_ne(const ag_gguf *f, int64_t i, int64_t ne[AG_MAX_DIMS]); /* missing dims = 1 */
size_t ag_gguf_tensor_size(const ag_gguf *f, int64_t i);
/* Absolute offset in the file / pointer into the mapping. */
size_t ag_gguf_tensor_file_offset(const ag_gguf *f, int64_t i);
const void *ag_gguf_tensor_data(const ag_gguf *f, int64_t i);
/* The whole mapping (for zero-copy weight buffers) and the data section. */
const void *ag_gguf_mapping(const ag_gguf *f, size_t *size);
size_t ag_gguf_data_offset(const ag_gguf *f);

/* ---------------- writing ---------------- */
typedef struct ag_gguf_writer ag_gguf_writer;
ag_gguf_writer *ag_gguf_writer_new(void);
void ag_gguf_writer_free(ag_gguf_writer *w);
/* KVs are written in insertion order; a key set twice is an error. */
int ag_gguf_set_u32(ag_gguf_writer *w, const char *key, uint32_t v);
int ag_gguf_set_i32(ag_gguf_writer *w, const char *key, int32_t v);
int ag_gguf_set_u64(ag_gguf_writer *w, const char *key, uint64_t v);
int ag_gguf_set_f32(ag_gguf_writer *w, const char *key, float v);
int ag_gguf_set_f64(ag_gguf_writer *w, const char *key, double v);
int ag_gguf_set_bool(ag_gguf_writer *w, const char *key, bool v);
int ag_gguf_set_str(ag_gguf_writer *w, const char *key, const char *v);
/* Arrays of a plain type (copied), and string arrays (copied). */
int ag_gguf_set_arr(ag_gguf_writer *w, const char *key, ag_gguf_type type, const void *data, uint64_t n);
int ag_gguf_set_arr_str(ag_gguf_writer *w, const char *key, const char *const *strs, uint64_t n);
/* Copy every KV of a reader (e.g. when quantizing a file), skipping keys already set. */
int ag_gguf_copy_kvs(ag_gguf_writer *w, const ag_gguf *src);
/* Tensors: data is referenced, not copied, and must stay valid until ag_gguf_writer_write.
 * ne has n_dims entries. */
int ag_gguf_add_tensor(ag_gguf_writer *w, const char *name, ag_type type, int n_dims, const int64_t *ne,
                       const void *data, size_t size);
/* Write the file (temporary name, then rename, so a failed write never leaves half a file). */
int ag_gguf_writer_write(ag_gguf_writer *w, const char *path);

#ifdef __cplusplus
}
#endif
#endif

/* A checkpoint: named tensors (dtype, shape, element strides, pointer into an mmap'd file)
 * gathered from one or more files (PyTorch zip .bin/.pt/.pth, .safetensors). Readers validate
 * every offset against the file; tensor data is never copied until asked for. */
#ifndef AG_CONVERT_CKPT_H
#define AG_CONVERT_CKPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CKPT_MAX_DIMS 8

typedef enum { CKPT_F32, CKPT_F16, CKPT_BF16, CKPT_F64, CKPT_I64, CKPT_I32, CKPT_I8, CKPT_U8, CKPT_BOOL } ckpt_dtype;

typedef struct {
    char *name;
    ckpt_dtype dtype;
    int n_dims;
    int64_t shape[CKPT_MAX_DIMS];   /* outermost first (torch order) */
    int64_t strides[CKPT_MAX_DIMS]; /* in elements */
    const uint8_t *data;            /* first element (storage offset applied) */
    const char *file;               /* source file (owned by the ckpt) */
} ckpt_tensor;

typedef struct ckpt_map {
    char *path;
    void *base;
    size_t size;
} ckpt_map;

typedef struct {
    ckpt_tensor *t;
    size_t n, cap;
    ckpt_map *maps;
    size_t n_maps, cap_maps;
    size_t *slots;    /* name hash table: tensor index + 1, 0 empty (ckpt_add / ckpt_find) */
    size_t n_slots;
} ckpt;

void ckpt_init(ckpt *c);
void ckpt_free(ckpt *c);

/* mmap a file read-only and keep it alive as long as c; NULL with error set. */
const ckpt_map *ckpt_map_file(ckpt *c, const char *path);
/* Add a tensor (name copied). A name already present is an error naming both files. */
int ckpt_add(ckpt *c, const ckpt_tensor *t);
const ckpt_tensor *ckpt_find(const ckpt *c, const char *name);

/* Load one file by content (zip magic -> torch, else safetensors), appending its tensors. */
int ckpt_load_file(ckpt *c, const char *path);
int torchzip_load(ckpt *c, const char *path);
int safetensors_load(ckpt *c, const char *path);

size_t ckpt_dtype_size(ckpt_dtype d);
const char *ckpt_dtype_name(ckpt_dtype d);
int64_t ckpt_numel(const ckpt_tensor *t);
/* Check that every addressed element lies in [lo, lo+size) of the mapping. */
int ckpt_check_extent(const ckpt_tensor *t, const uint8_t *lo, size_t size, const char *what);
/* Whether t has exactly n_dims dims of these sizes (torch order). */
bool ckpt_has_shape(const ckpt_tensor *t, int n_dims, const int64_t *shape);
/* -1 with error "unexpected tensor 'NAME' in the checkpoint (not part of WHAT)" for the first
 * tensor that is neither used[i] nor ignorable (NULL: none is); 0 otherwise. */
int ckpt_check_used(const ckpt *c, const bool *used, bool (*ignorable)(const char *name), const char *what);
/* Copy the tensor into out (numel floats, row-major over shape), from F32/F16/BF16/F64
 * with any strides. -1 with error for other dtypes. */
int ckpt_to_f32(const ckpt_tensor *t, float *out);
/* Rows [row0, row0 + n_rows) of the outermost dimension, as ckpt_to_f32. */
int ckpt_rows_to_f32(const ckpt_tensor *t, int64_t row0, int64_t n_rows, float *out);
/* Hint that a tensor's bytes are no longer needed (drops its pages from the mapping). */
void ckpt_release(const ckpt_tensor *t);

/* bf16 -> f32 is exact (bits shifted up). */
static inline float ckpt_bf16_to_f32(uint16_t h)
{
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}

#endif

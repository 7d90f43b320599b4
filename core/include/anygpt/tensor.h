/* anygpt core: element types and tensor descriptors.
 *
 * Layout follows ggml so GGUF files interoperate with llama.cpp: ne[0] is the innermost
 * (contiguous) dimension, nb[i] are byte strides. Quantized types store rows of blocks;
 * a row of a quantized tensor is always contiguous. Plain C17, no GLib. */
#ifndef ANYGPT_TENSOR_H
#define ANYGPT_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AG_MAX_DIMS 4
#define AG_MAX_SRC 6
#define AG_MAX_OP_PARAMS 16 /* int32 slots; floats are stored bit-cast */
#define AG_MAX_NAME 64

/* The numeric values are ggml's type ids, so they can be written to GGUF as they are. */
typedef enum ag_type {
    AG_TYPE_F32 = 0,
    AG_TYPE_F16 = 1,
    AG_TYPE_Q4_0 = 2,
    AG_TYPE_Q8_0 = 8,
    AG_TYPE_I32 = 26,
    AG_TYPE_COUNT = 40 /* upper bound of the id space, not a type */
} ag_type;

/* ggml block layouts, byte for byte. */
#define AG_QK4_0 32
#define AG_QK8_0 32
typedef uint16_t ag_fp16;
typedef struct {
    ag_fp16 d;              /* scale */
    uint8_t qs[AG_QK4_0 / 2]; /* low nibbles: elements 0..15, high nibbles: 16..31; value = (q - 8) * d */
} ag_block_q4_0;
typedef struct {
    ag_fp16 d;           /* scale */
    int8_t qs[AG_QK8_0]; /* value = q * d */
} ag_block_q8_0;
_Static_assert(sizeof(ag_block_q4_0) == 18, "q4_0 block must be 18 bytes");
_Static_assert(sizeof(ag_block_q8_0) == 34, "q8_0 block must be 34 bytes");

/* Is this a type the core knows? (ids outside the set above are rejected by GGUF loading.) */
bool ag_type_valid(int type);
const char *ag_type_name(ag_type type);
/* Elements per block (1 for plain types) and bytes per block. */
int64_t ag_type_block_elems(ag_type type);
size_t ag_type_block_size(ag_type type);
bool ag_type_is_quantized(ag_type type);
/* Bytes of a row of n elements; n must be a multiple of the block size (returns 0 if not). */
size_t ag_row_size(ag_type type, int64_t n);

struct ag_buffer;

/* Operations. The exact semantics of each op are written next to its constructor in graph.h. */
typedef enum ag_op {
    AG_OP_NONE = 0, /* leaf: weight or input */
    AG_OP_VIEW,     /* reshape / permute / slice: no computation, shares src[0]'s storage */
    AG_OP_CPY,
    AG_OP_ADD,
    AG_OP_MUL,
    AG_OP_SCALE,
    AG_OP_RMS_NORM,
    AG_OP_LAYER_NORM,
    AG_OP_GROUP_NORM,
    AG_OP_SOFTMAX,
    AG_OP_ROPE,
    AG_OP_UNARY,
    AG_OP_SNAKE,
    AG_OP_GLU,
    AG_OP_MUL_MAT,
    AG_OP_CONV1D,
    AG_OP_CONV_TRANSPOSE1D,
    AG_OP_CONV2D,
    AG_OP_PAD,
    AG_OP_UPSAMPLE,
    AG_OP_GET_ROWS,
    AG_OP_CONCAT,
    AG_OP_LSTM,
    AG_OP_VQ_ARGMIN,
    AG_OP_ATTENTION,
    AG_OP_ARGMAX,
    AG_OP_COUNT
} ag_op;

typedef enum ag_unary_op {
    AG_UNARY_SILU = 0,
    AG_UNARY_GELU, /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
    AG_UNARY_ELU,  /* alpha 1 */
    AG_UNARY_TANH,
    AG_UNARY_SIGMOID,
    AG_UNARY_RELU,
    AG_UNARY_COUNT
} ag_unary_op;

typedef enum ag_glu_mode {
    AG_GLU_SIGMOID = 0, /* a[:n] * sigmoid(a[n:]) */
    AG_GLU_GELU = 1     /* a[:n] * gelu(a[n:]), exact erf GELU (GEGLU) */
} ag_glu_mode;

typedef enum ag_rope_mode {
    AG_ROPE_INTERLEAVED = 0, /* pairs (2i, 2i+1): original LLaMA / llama.cpp "normal" */
    AG_ROPE_NEOX = 2         /* pairs (i, i + n_dims/2) */
} ag_rope_mode;

typedef enum ag_pad_mode {
    AG_PAD_ZERO = 0,
    AG_PAD_REFLECT = 1 /* PyTorch 'reflect': edge not repeated; pad must be < dim size */
} ag_pad_mode;

enum ag_tensor_flags {
    AG_FLAG_INPUT = 1 << 0,  /* filled by the caller before compute */
    AG_FLAG_OUTPUT = 1 << 1, /* read by the caller after compute: never reused by the allocator */
    AG_FLAG_PARAM = 1 << 2   /* weight: lives in a weight buffer, never planned */
};

typedef struct ag_tensor {
    ag_type type;
    int64_t ne[AG_MAX_DIMS]; /* elements per dimension */
    size_t nb[AG_MAX_DIMS];  /* byte strides: nb[0] = block size, nb[1] = row size, ... */

    ag_op op;
    int32_t op_params[AG_MAX_OP_PARAMS];
    struct ag_tensor *src[AG_MAX_SRC];

    /* Views share storage with view_src at byte offset view_offs. */
    struct ag_tensor *view_src;
    size_t view_offs;

    /* Storage: buffer + offset, assigned by the allocator or the weight loader. data is the
     * host address when the buffer is host-visible (cpu backend), else NULL. */
    struct ag_buffer *buffer;
    size_t offset;
    void *data;

    int flags;
    char name[AG_MAX_NAME];
} ag_tensor;

int64_t ag_nelements(const ag_tensor *t);
int64_t ag_nrows(const ag_tensor *t); /* ne1*ne2*ne3 */
size_t ag_nbytes(const ag_tensor *t); /* span of the storage the tensor touches */
bool ag_is_contiguous(const ag_tensor *t);
bool ag_same_shape(const ag_tensor *a, const ag_tensor *b);
int ag_n_dims(const ag_tensor *t); /* highest dim with ne > 1, plus one (at least 1) */

/* op_params helpers (floats are stored bit-cast in int32 slots). */
static inline float ag_op_param_f32(const ag_tensor *t, int i) {
    union { int32_t i; float f; } u;
    u.i = t->op_params[i];
    return u.f;
}
static inline int32_t ag_op_param_i32(const ag_tensor *t, int i) { return t->op_params[i]; }

/* F16 <-> F32 (IEEE binary16, round to nearest even, inf/nan preserved). */
float ag_fp16_to_fp32(ag_fp16 h);
ag_fp16 ag_fp32_to_fp16(float f);

#ifdef __cplusplus
}
#endif
#endif

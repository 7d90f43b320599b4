/* anygpt core: building computation graphs.
 *
 * A context owns tensor descriptors (no tensor data). Models create leaves (weights, inputs)
 * and call op constructors; each constructor checks shapes/types and returns a new tensor, or
 * NULL with ag_last_error() set. A graph is the list of nodes reachable from its outputs, in an
 * order where every node comes after its sources. Backends execute whole graphs.
 *
 * Conventions shared by every op (both backends implement exactly this):
 *  - Results are F32 and contiguous unless stated.
 *  - Sources must be contiguous unless stated (use ag_cont after ag_permute/ag_view_*).
 *  - Shapes are written [ne0, ne1, ne2, ne3], ne0 innermost. Missing trailing dims are 1.
 */
#ifndef ANYGPT_GRAPH_H
#define ANYGPT_GRAPH_H

#include "anygpt/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ag_ctx ag_ctx;
typedef struct ag_graph ag_graph;

/* A context for up to max_tensors descriptors. */
ag_ctx *ag_ctx_new(size_t max_tensors);
void ag_ctx_free(ag_ctx *ctx);
/* Forget every tensor of the context (graphs built from them become invalid). */
void ag_ctx_reset(ag_ctx *ctx);
size_t ag_ctx_n_tensors(const ag_ctx *ctx);
ag_tensor *ag_ctx_tensor(ag_ctx *ctx, size_t i);
ag_tensor *ag_ctx_find(ag_ctx *ctx, const char *name);

/* Leaves. ne has n_dims entries (1..4); the rest are 1. Quantized types need ne0 % 32 == 0. */
ag_tensor *ag_new_tensor(ag_ctx *ctx, ag_type type, int n_dims, const int64_t *ne);
ag_tensor *ag_new_1d(ag_ctx *ctx, ag_type type, int64_t ne0);
ag_tensor *ag_new_2d(ag_ctx *ctx, ag_type type, int64_t ne0, int64_t ne1);
ag_tensor *ag_new_3d(ag_ctx *ctx, ag_type type, int64_t ne0, int64_t ne1, int64_t ne2);
ag_tensor *ag_new_4d(ag_ctx *ctx, ag_type type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3);
void ag_set_name(ag_tensor *t, const char *fmt, ...);
void ag_set_input(ag_tensor *t);
void ag_set_output(ag_tensor *t);

/* ---- views (no computation; share storage) ---- */
/* Reshape a contiguous tensor to a new shape with the same number of elements. */
ag_tensor *ag_reshape(ag_ctx *ctx, ag_tensor *a, int n_dims, const int64_t *ne);
ag_tensor *ag_reshape_2d(ag_ctx *ctx, ag_tensor *a, int64_t ne0, int64_t ne1);
ag_tensor *ag_reshape_3d(ag_ctx *ctx, ag_tensor *a, int64_t ne0, int64_t ne1, int64_t ne2);
ag_tensor *ag_reshape_4d(ag_ctx *ctx, ag_tensor *a, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3);
/* Arbitrary strided view at byte offset offs (ne/nb of n_dims entries; nb[0] is the element size). */
ag_tensor *ag_view(ag_ctx *ctx, ag_tensor *a, int n_dims, const int64_t *ne, const size_t *nb, size_t offs);
/* Permute: source dim i becomes result dim axes[i] (ggml semantics). */
ag_tensor *ag_permute(ag_ctx *ctx, ag_tensor *a, int ax0, int ax1, int ax2, int ax3);
/* Swap dims 0 and 1. */
ag_tensor *ag_transpose(ag_ctx *ctx, ag_tensor *a);

/* ---- ops ---- */
/* CPY: elementwise copy of a (F32/F16/I32 any strides) into b (F32/F16/I32, any strides, e.g. a
 * view into a KV cache), converting the type; same ne required. Returns b's view node. */
ag_tensor *ag_cpy(ag_ctx *ctx, ag_tensor *a, ag_tensor *b);
/* A contiguous copy of a (any strides) in type `type` (F32/F16). */
ag_tensor *ag_cont(ag_ctx *ctx, ag_tensor *a);
ag_tensor *ag_cast(ag_ctx *ctx, ag_tensor *a, ag_type type);

/* ADD / MUL: out = a (+|*) b with broadcast: for each dim, b.ne[i] == a.ne[i] or b.ne[i] == 1.
 * a, b F32; b may be a weight. */
ag_tensor *ag_add(ag_ctx *ctx, ag_tensor *a, ag_tensor *b);
ag_tensor *ag_mul(ag_ctx *ctx, ag_tensor *a, ag_tensor *b);
/* SCALE: out = a * s + bias. params: f32 s, f32 bias. */
ag_tensor *ag_scale(ag_ctx *ctx, ag_tensor *a, float s, float bias);

/* RMS_NORM over ne0: x / sqrt(mean(x^2) + eps). params: f32 eps. */
ag_tensor *ag_rms_norm(ag_ctx *ctx, ag_tensor *a, float eps);
/* LAYER_NORM over ne0, no affine: (x - mean) / sqrt(var + eps), biased var. params: f32 eps. */
ag_tensor *ag_layer_norm(ag_ctx *ctx, ag_tensor *a, float eps);
/* GROUP_NORM: a viewed as [ne0*ne1, C = ne2, ne3]; channels split into n_groups contiguous
 * groups (C % n_groups == 0); each (group, ne3 index) normalised over its ne0*ne1*C/n_groups
 * values, biased var, no affine. params: i32 n_groups, f32 eps. */
ag_tensor *ag_group_norm(ag_ctx *ctx, ag_tensor *a, int n_groups, float eps);
/* GROUP_NORM with its affine and activation fused (one pass instead of four, and no full-size
 * temporaries: what the UNet and VAE resnets need): out = act(group_norm(a) * weight[c] + bias[c])
 * with c the channel (dim 2) of the element; weight, bias F32 contiguous with C elements (any
 * shape), each optional (NULL: 1 / 0); silu: act = SiLU, else identity.
 * params: i32 n_groups, f32 eps, i32 silu. src: a, weight, bias. */
ag_tensor *ag_group_norm_affine(ag_ctx *ctx, ag_tensor *a, int n_groups, float eps, ag_tensor *weight,
                                ag_tensor *bias, bool silu);

/* SOFTMAX along ne0 of (a * scale + mask). a [N, M, A2, A3]; mask optional F32 [N, M] (or
 * [N, M, A2, 1]), added after scaling. causal: in row m (0-based, of M rows) column n is
 * masked (-inf) when n > m + (N - M). A row with every entry -inf yields zeros.
 * params: f32 scale, i32 causal. src: a, mask. */
ag_tensor *ag_softmax(ag_ctx *ctx, ag_tensor *a, ag_tensor *mask, float scale, bool causal);

/* ROPE: a [D, H, T, B] (head dim innermost), pos I32 [T]. For i < n_dims/2:
 * theta = pos[t] * freq_scale * freq_base^(-2i/n_dims); the pair (x0, x1) is (2i, 2i+1) in
 * INTERLEAVED mode and (i, i + n_dims/2) in NEOX mode; out0 = x0 cos - x1 sin,
 * out1 = x0 sin + x1 cos. Dims >= n_dims pass through. params: i32 n_dims, i32 mode,
 * f32 freq_base, f32 freq_scale. src: a, pos. */
ag_tensor *ag_rope(ag_ctx *ctx, ag_tensor *a, ag_tensor *pos, int n_dims, ag_rope_mode mode, float freq_base,
                   float freq_scale);

/* UNARY elementwise. params: i32 op. */
ag_tensor *ag_unary(ag_ctx *ctx, ag_tensor *a, ag_unary_op op);
ag_tensor *ag_silu(ag_ctx *ctx, ag_tensor *a);
ag_tensor *ag_gelu(ag_ctx *ctx, ag_tensor *a);
ag_tensor *ag_elu(ag_ctx *ctx, ag_tensor *a);
ag_tensor *ag_tanh(ag_ctx *ctx, ag_tensor *a);
ag_tensor *ag_sigmoid(ag_ctx *ctx, ag_tensor *a);
ag_tensor *ag_relu(ag_ctx *ctx, ag_tensor *a);

/* SNAKE: a [T, C, B] (time innermost), alpha F32 with C elements (any shape, e.g. [1, C]):
 * out = x + sin(alpha_c x)^2 / (alpha_c + 1e-9). */
ag_tensor *ag_snake(ag_ctx *ctx, ag_tensor *a, ag_tensor *alpha);
/* GLU along ne0: a [2n, ...] -> [n, ...], out = a[:n] * sigmoid(a[n:]). params: i32 mode = 0. */
ag_tensor *ag_glu(ag_ctx *ctx, ag_tensor *a);
/* GEGLU (diffusers' GEGLU: hidden, gate = a.chunk(2)): out = a[:n] * gelu(a[n:]) with the exact
 * erf GELU. The GLU op with params: i32 mode = 1. */
ag_tensor *ag_geglu(ag_ctx *ctx, ag_tensor *a);

/* MUL_MAT: a [K, N, A2, A3] (F32/F16/Q8_0/Q4_0, typically a weight), b F32 [K, M, B2, B3] with
 * B2 % A2 == 0, B3 % A3 == 0 -> out [N, M, B2, B3]:
 * out[n,m,i2,i3] = sum_k a[k, n, i2 / (B2/A2), i3 / (B3/A3)] * b[k, m, i2, i3]. */
ag_tensor *ag_mul_mat(ag_ctx *ctx, ag_tensor *a, ag_tensor *b);

/* CONV1D (no padding inside: use ag_pad): x F32 [T, Cin, B], w F32/F16 [K, Cin/groups, Cout]
 * (PyTorch's (Cout, Cin/g, K)), Cout % groups == 0 -> out [Tout, Cout, B],
 * Tout = (T - dilation*(K-1) - 1) / stride + 1 (>= 1 required). No bias (add it after).
 * params: i32 stride, i32 dilation, i32 groups. */
ag_tensor *ag_conv1d(ag_ctx *ctx, ag_tensor *x, ag_tensor *w, int stride, int dilation, int groups);
/* CONV_TRANSPOSE1D: x F32 [T, Cin, B], w F32/F16 [K, Cout, Cin] (PyTorch's (Cin, Cout, K)) ->
 * out [(T-1)*stride + K, Cout, B], nothing trimmed. params: i32 stride. */
ag_tensor *ag_conv_transpose1d(ag_ctx *ctx, ag_tensor *x, ag_tensor *w, int stride);
/* CONV2D: x F32 [W, H, Cin, N], w F32/F16 [KW, KH, Cin, Cout] (PyTorch's (Cout, Cin, KH, KW)),
 * zero padding p0 (W) / p1 (H) on both sides -> out [Wo, Ho, Cout, N],
 * Wo = (W + 2 p0 - d0 (KW-1) - 1) / s0 + 1. params: i32 s0, s1, p0, p1, d0, d1. */
ag_tensor *ag_conv2d(ag_ctx *ctx, ag_tensor *x, ag_tensor *w, int s0, int s1, int p0, int p1, int d0, int d1);

/* PAD dims 0 and 1: out [l0 + ne0 + r0, l1 + ne1 + r1, ne2, ne3]. ZERO or REFLECT (PyTorch
 * reflect: out[-1] = x[1]; each pad < that dim's size). params: i32 l0, r0, l1, r1, mode. */
ag_tensor *ag_pad(ag_ctx *ctx, ag_tensor *a, int l0, int r0, int l1, int r1, ag_pad_mode mode);
/* UPSAMPLE nearest by integer factors on dims 0 and 1: out[i0, i1] = a[i0 / f0, i1 / f1].
 * params: i32 f0, f1. */
ag_tensor *ag_upsample(ag_ctx *ctx, ag_tensor *a, int f0, int f1);

/* GET_ROWS: table [D, V] (any type), ids I32 [n] -> out F32 [D, n]; ids out of range are an
 * error at compute time on cpu and clamp-free undefined on vulkan: callers validate ids. */
ag_tensor *ag_get_rows(ag_ctx *ctx, ag_tensor *table, ag_tensor *ids);
/* CONCAT along dim: all other dims equal, F32. params: i32 dim. */
ag_tensor *ag_concat(ag_ctx *ctx, ag_tensor *a, ag_tensor *b, int dim);

/* LSTM recurrence over a sequence: gx F32 [4H, T] holds W_ih x_t + b_ih + b_hh for every t
 * (gate order i, f, g, o as PyTorch), whh F32/F16 [H, 4H] (PyTorch weight_hh (4H, H)).
 * h_0 = c_0 = 0. reverse: process t = T-1 .. 0 (the backward half of a BiLSTM).
 * out [H, T] = h_t. params: i32 reverse. */
ag_tensor *ag_lstm(ag_ctx *ctx, ag_tensor *gx, ag_tensor *whh, bool reverse);
/* A full LSTM layer: x F32 [Cin, T], w_ih [Cin, 4H], w_hh [H, 4H], b_ih, b_hh F32 [4H] ->
 * [H, T]; built from mul_mat + add + ag_lstm. */
ag_tensor *ag_lstm_layer(ag_ctx *ctx, ag_tensor *x, ag_tensor *w_ih, ag_tensor *w_hh, ag_tensor *b_ih,
                         ag_tensor *b_hh, bool reverse);

/* VQ_ARGMIN: x F32 [D, T], codebook F32 [D, K] -> I32 [T]: argmin_k ||x_t - c_k||^2, ties to
 * the lowest k. */
ag_tensor *ag_vq_argmin(ag_ctx *ctx, ag_tensor *x, ag_tensor *codebook);

/* ATTENTION without materialising the score matrix (online softmax):
 * q F32 [D, Nq, H], k F32/F16 [D, Nk, Hkv], v F32/F16 [Dv, Nk, Hkv] with H % Hkv == 0
 * (query head h uses kv head h / (H/Hkv)); q, k, v may be strided views (nb0 = element size).
 * mask optional F32 [Nk, Nq], added to the scaled scores; causal: query i sees keys
 * j <= i + (Nk - Nq). out F32 [Dv, H, Nq] (so a reshape to [Dv*H, Nq] feeds the output
 * projection). params: f32 scale, i32 causal. src: q, k, v, mask. */
ag_tensor *ag_attention(ag_ctx *ctx, ag_tensor *q, ag_tensor *k, ag_tensor *v, ag_tensor *mask, float scale,
                        bool causal);

/* ARGMAX along ne0: a F32 [N, M] -> I32 [M], ties to the lowest index. */
ag_tensor *ag_argmax(ag_ctx *ctx, ag_tensor *a);

/* ---- graphs ---- */
ag_graph *ag_graph_new(ag_ctx *ctx, size_t max_nodes);
void ag_graph_free(ag_graph *g);
/* Add t and everything it depends on (post-order, duplicates skipped). t becomes an output. */
int ag_graph_expand(ag_graph *g, ag_tensor *t);
size_t ag_graph_n_nodes(const ag_graph *g);
ag_tensor *ag_graph_node(const ag_graph *g, size_t i);
/* Leaves (op NONE) reached by the graph. */
size_t ag_graph_n_leafs(const ag_graph *g);
ag_tensor *ag_graph_leaf(const ag_graph *g, size_t i);

const char *ag_op_name(ag_op op);

#ifdef __cplusplus
}
#endif
#endif

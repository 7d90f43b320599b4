/* SEANet encoder/decoder + residual VQ on the graph API (SpeechTokenizer, Encodec 32 kHz).
 * Activations are [T, C] (time innermost, PyTorch's (C, T) in memory) for the convolutions and
 * transposed to [C, T] for the LSTMs and the quantizer. Padding follows the reference exactly:
 * reflect pad of (k-1)*d-(s-1) split right = total/2 plus the extra right pad that makes the
 * last window complete; ConvTranspose trims k-s (right (k-s)/2). */
#include "anygpt/seanet.h"
#include "anygpt/error.h"
#include "anygpt/limits.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEANET_MAX_RATIOS 8
#define SEANET_MAX_TENSORS 8192

/* snprintf without -Wformat-truncation noise: names are short and bounded by construction */
static void nm(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void nm(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}


struct ag_seanet {
    ag_backend *be;
    ag_weights *w;
    ag_seanet_info info;
    int32_t n_filters, n_ratios, lstm_layers, kernel, last_kernel, res_kernel, compress;
    int32_t ratios[SEANET_MAX_RATIOS];
    bool bidir, conv_shortcut;
    ag_ctx *ctx;
    ag_allocator *alloc;
};

/* ---- weights (looked up while building, shape-checked) ---- */

static ag_tensor *wget(ag_seanet *m, int n_dims, const int64_t *ne, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ag_tensor *wget(ag_seanet *m, int n_dims, const int64_t *ne, const char *fmt, ...)
{
    char name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return ag_weights_get_shaped(m->w, name, n_dims, ne);
}

/* ---- building blocks ---- */

static int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

/* Contiguous transpose of a contiguous 2-D x [A, B] -> [B, A]. CPY wants dim 0 unit-strided,
 * so the transposed view gets a leading dim of 1: [1, B, A] with strides (4, 4A, 4). */
static ag_tensor *transpose_copy(ag_ctx *ctx, ag_tensor *x)
{
    if (!x)
        return NULL;
    const int64_t a = x->ne[0], b = x->ne[1];
    ag_tensor *v = ag_view(ctx, x, 3, (const int64_t[]){1, b, a}, (const size_t[]){x->nb[0], x->nb[1], x->nb[0]}, 0);
    ag_tensor *c = v ? ag_cont(ctx, v) : NULL;
    return c ? ag_reshape_2d(ctx, c, b, a) : NULL;
}

/* PyTorch reflect pad of dim 0; zero-extends first when the signal is not longer than the pad. */
static ag_tensor *reflect_pad(ag_ctx *ctx, ag_tensor *x, int left, int right)
{
    if (!x || (left == 0 && right == 0))
        return x;
    const int64_t len = x->ne[0];
    const int mx = left > right ? left : right;
    int extra = 0;
    if (len <= mx) {
        extra = (int)(mx - len + 1);
        x = ag_pad(ctx, x, 0, extra, 0, 0, AG_PAD_ZERO);
    }
    ag_tensor *y = ag_pad(ctx, x, left, right, 0, 0, AG_PAD_REFLECT);
    if (!y || extra == 0)
        return y;
    y = ag_view(ctx, y, 2, (const int64_t[]){y->ne[0] - extra, y->ne[1]}, (const size_t[]){y->nb[0], y->nb[1]}, 0);
    return ag_cont(ctx, y);
}

/* Weight-folded conv: GGUF prefix name, x [T, Cin] -> [Tout, Cout]. */
static ag_tensor *conv(ag_seanet *m, ag_tensor *x, const char *name, int64_t cin, int64_t cout, int k, int stride,
                       int dil)
{
    if (!x)
        return NULL;
    ag_ctx *ctx = m->ctx;
    ag_tensor *w = wget(m, 3, (const int64_t[]){k, cin, cout}, "%s.weight", name);
    ag_tensor *b = wget(m, 2, (const int64_t[]){1, cout}, "%s.bias", name);
    if (!w || !b)
        return NULL;
    const int64_t total = (int64_t)(k - 1) * dil - (stride - 1), len = x->ne[0];
    const int64_t frames = ceil_div(len - k + total, stride) + 1;
    const int64_t extra = (frames - 1) * stride + (k - total) - len;
    const int64_t right = total / 2, left = total - right;
    if (total < 0 || extra < 0) {
        ag_set_error("seanet: %s: unsupported padding (kernel %d, stride %d)", name, k, stride);
        return NULL;
    }
    x = reflect_pad(ctx, x, (int)left, (int)(right + extra));
    return ag_add(ctx, ag_conv1d(ctx, x, w, stride, dil, 1), b);
}

static ag_tensor *conv_tr(ag_seanet *m, ag_tensor *x, const char *name, int64_t cin, int64_t cout, int k, int stride)
{
    if (!x)
        return NULL;
    ag_ctx *ctx = m->ctx;
    ag_tensor *w = wget(m, 3, (const int64_t[]){k, cout, cin}, "%s.weight", name);
    ag_tensor *b = wget(m, 2, (const int64_t[]){1, cout}, "%s.bias", name);
    if (!w || !b)
        return NULL;
    const int64_t t = x->ne[0];
    ag_tensor *y = ag_conv_transpose1d(ctx, x, w, stride);
    if (!y)
        return NULL;
    const int64_t total = k - stride, right = total / 2, left = total - right;
    (void)right;
    y = ag_view(ctx, y, 2, (const int64_t[]){t * stride, cout}, (const size_t[]){y->nb[0], y->nb[1]},
                (size_t)left * y->nb[0]);
    return ag_add(ctx, ag_cont(ctx, y), b);
}

static ag_tensor *act(ag_seanet *m, ag_tensor *x, const char *name, int64_t ch)
{
    if (!x)
        return NULL;
    if (!m->info.snake)
        return ag_elu(m->ctx, x);
    ag_tensor *alpha = wget(m, 2, (const int64_t[]){1, ch}, "%s.alpha", name);
    return alpha ? ag_snake(m->ctx, x, alpha) : NULL;
}

/* y = shortcut(x) + conv1x1(act(conv_k(act(x)))) */
static ag_tensor *resblock(ag_seanet *m, ag_tensor *x, const char *name, int64_t ch)
{
    char n[96];
    const int64_t h = ch / m->compress;
    nm(n, sizeof n, "%s.block.0", name);
    ag_tensor *y = act(m, x, n, ch);
    nm(n, sizeof n, "%s.block.1", name);
    y = conv(m, y, n, ch, h, m->res_kernel, 1, 1);
    nm(n, sizeof n, "%s.block.2", name);
    y = act(m, y, n, h);
    nm(n, sizeof n, "%s.block.3", name);
    y = conv(m, y, n, h, ch, 1, 1, 1);
    ag_tensor *s = x;
    if (m->conv_shortcut) {
        nm(n, sizeof n, "%s.shortcut", name);
        s = conv(m, x, n, ch, ch, 1, 1, 1);
    }
    return y && s ? ag_add(m->ctx, s, y) : NULL;
}

/* Stacked (Bi)LSTM with skip, x [T, C] -> [T, C * dirs] (skip tiled once per direction). */
static ag_tensor *lstm(ag_seanet *m, ag_tensor *x, const char *name, int64_t h, bool bidir)
{
    if (!x)
        return NULL;
    ag_ctx *ctx = m->ctx;
    ag_tensor *xc = transpose_copy(ctx, x); /* [C, T] */
    ag_tensor *in = xc;
    const int dirs = bidir ? 2 : 1;
    for (int l = 0; l < m->lstm_layers; l++) {
        const int64_t cin = l == 0 ? h : h * dirs;
        ag_tensor *out = NULL;
        for (int d = 0; d < dirs; d++) {
            const char *suf = d ? "_reverse" : "";
            ag_tensor *wih = wget(m, 2, (const int64_t[]){cin, 4 * h}, "%s.lstm.weight_ih_l%d%s", name, l, suf);
            ag_tensor *whh = wget(m, 2, (const int64_t[]){h, 4 * h}, "%s.lstm.weight_hh_l%d%s", name, l, suf);
            ag_tensor *bih = wget(m, 1, (const int64_t[]){4 * h}, "%s.lstm.bias_ih_l%d%s", name, l, suf);
            ag_tensor *bhh = wget(m, 1, (const int64_t[]){4 * h}, "%s.lstm.bias_hh_l%d%s", name, l, suf);
            if (!wih || !whh || !bih || !bhh || !in)
                return NULL;
            ag_tensor *o = ag_lstm_layer(ctx, in, wih, whh, bih, bhh, d == 1);
            out = d == 0 ? o : ag_concat(ctx, out, o, 0);
        }
        in = out;
    }
    ag_tensor *skip = bidir ? ag_concat(ctx, xc, xc, 0) : xc;
    ag_tensor *y = ag_add(ctx, in, skip);
    return y ? transpose_copy(ctx, y) : NULL;
}

/* audio [L, 1] -> latent [T, dimension] */
static ag_tensor *encoder(ag_seanet *m, ag_tensor *x)
{
    char n[32];
    const int R = m->n_ratios;
    int64_t ch = m->n_filters;
    x = conv(m, x, "enc.0", 1, ch, m->kernel, 1, 1);
    for (int i = 0; i < R; i++) {
        const int r = m->ratios[R - 1 - i], idx = 3 * i + 1;
        nm(n, sizeof n, "enc.%d", idx);
        x = resblock(m, x, n, ch);
        nm(n, sizeof n, "enc.%d", idx + 1);
        x = act(m, x, n, ch);
        nm(n, sizeof n, "enc.%d", idx + 2);
        x = conv(m, x, n, ch, 2 * ch, 2 * r, r, 1);
        ch *= 2;
    }
    nm(n, sizeof n, "enc.%d", 3 * R + 1);
    x = lstm(m, x, n, ch, m->bidir);
    const int64_t lo = m->bidir ? 2 * ch : ch;
    nm(n, sizeof n, "enc.%d", 3 * R + 2);
    x = act(m, x, n, lo);
    nm(n, sizeof n, "enc.%d", 3 * R + 3);
    return conv(m, x, n, lo, m->info.dimension, m->last_kernel, 1, 1);
}

/* latent [T, dimension] -> audio [hop * T, 1] */
static ag_tensor *decoder(ag_seanet *m, ag_tensor *x)
{
    char n[32];
    const int R = m->n_ratios;
    int64_t ch = (int64_t)m->n_filters << R;
    x = conv(m, x, "dec.0", m->info.dimension, ch, m->kernel, 1, 1);
    x = lstm(m, x, "dec.1", ch, false);
    x = act(m, x, "dec.2", ch);
    for (int i = 0; i < R; i++) {
        const int r = m->ratios[i], idx = 3 * i + 3;
        nm(n, sizeof n, "dec.%d", idx);
        x = conv_tr(m, x, n, ch, ch / 2, 2 * r, r);
        ch /= 2;
        nm(n, sizeof n, "dec.%d", idx + 1);
        x = resblock(m, x, n, ch);
        nm(n, sizeof n, "dec.%d", idx + 2);
        x = act(m, x, n, ch);
    }
    nm(n, sizeof n, "dec.%d", 3 * R + 3);
    return conv(m, x, n, ch, 1, m->last_kernel, 1, 1);
}

static ag_tensor *codebook(ag_seanet *m, int q)
{
    return wget(m, 2, (const int64_t[]){m->info.dimension, m->info.codebook_size}, "vq.%d.embed", q);
}

/* Graph for encoding n samples; codes_out[q] = I32 [T]. */
static int build_encode(ag_seanet *m, ag_graph *g, ag_tensor **in, int64_t n, int n_q, ag_tensor **codes_out)
{
    ag_ctx *ctx = m->ctx;
    *in = ag_new_2d(ctx, AG_TYPE_F32, n, 1);
    if (!*in)
        return -1;
    ag_set_name(*in, "audio");
    ag_set_input(*in);
    ag_tensor *e = encoder(m, *in);
    ag_tensor *res = e ? transpose_copy(ctx, e) : NULL; /* [D, T] */
    for (int q = 0; q < n_q; q++) {
        ag_tensor *cb = codebook(m, q);
        if (!cb || !res)
            return -1;
        ag_tensor *idx = ag_vq_argmin(ctx, res, cb);
        if (!idx)
            return -1;
        ag_set_output(idx);
        codes_out[q] = idx;
        if (ag_graph_expand(g, idx) != 0)
            return -1;
        if (q + 1 < n_q)
            res = ag_add(ctx, res, ag_scale(ctx, ag_get_rows(ctx, cb, idx), -1.0f, 0.0f));
    }
    return 0;
}

static ag_tensor *build_decode(ag_seanet *m, ag_graph *g, int64_t t, int n_q, ag_tensor **ids)
{
    ag_ctx *ctx = m->ctx;
    ag_tensor *sum = NULL;
    for (int q = 0; q < n_q; q++) {
        ids[q] = ag_new_1d(ctx, AG_TYPE_I32, t);
        ag_tensor *cb = codebook(m, q);
        if (!ids[q] || !cb)
            return NULL;
        ag_set_name(ids[q], "codes.%d", q);
        ag_set_input(ids[q]);
        ag_tensor *e = ag_get_rows(ctx, cb, ids[q]); /* [D, T] */
        sum = q == 0 ? e : ag_add(ctx, sum, e);
    }
    ag_tensor *x = sum ? transpose_copy(ctx, sum) : NULL;
    ag_tensor *y = x ? decoder(m, x) : NULL;
    if (!y || ag_graph_expand(g, y) != 0)
        return NULL;
    ag_set_output(y);
    return y;
}

/* ---- hyper-parameters ---- */

static bool get_u32(const ag_gguf *f, const char *arch, const char *key, int32_t *out, int32_t lo, int32_t hi,
                    const char *path)
{
    char k[96];
    uint32_t v;
    nm(k, sizeof k, "%s.%s", arch, key);
    if (!ag_gguf_get_u32(f, k, &v) || v < (uint32_t)lo || v > (uint32_t)hi) {
        ag_set_error("%s: missing or invalid hyper-parameter '%s'", path, k);
        return false;
    }
    *out = (int32_t)v;
    return true;
}

static int read_hparams(ag_seanet *m, const char *path)
{
    const ag_gguf *f = ag_weights_gguf(m->w);
    const char *arch = ag_gguf_get_str(f, "general.architecture");
    if (!arch || (strcmp(arch, "speechtokenizer") != 0 && strcmp(arch, "encodec") != 0)) {
        ag_set_error("%s: architecture '%s' is not a SEANet codec (speechtokenizer, encodec)", path,
                     arch ? arch : "(none)");
        return -1;
    }
    ag_seanet_info *in = &m->info;
    if (!get_u32(f, arch, "sample_rate", &in->sample_rate, 1, AG_MAX_MODEL_DIM, path) ||
        !get_u32(f, arch, "n_filters", &m->n_filters, 1, 4096, path) ||
        !get_u32(f, arch, "dimension", &in->dimension, 1, 65536, path) ||
        !get_u32(f, arch, "lstm_layers", &m->lstm_layers, 1, 16, path) ||
        !get_u32(f, arch, "kernel_size", &m->kernel, 1, 63, path) ||
        !get_u32(f, arch, "last_kernel_size", &m->last_kernel, 1, 63, path) ||
        !get_u32(f, arch, "residual_kernel_size", &m->res_kernel, 1, 63, path) ||
        !get_u32(f, arch, "compress", &m->compress, 1, 64, path) ||
        !get_u32(f, arch, "codebook_size", &in->codebook_size, 1, AG_MAX_MODEL_DIM, path) ||
        !get_u32(f, arch, "n_q", &in->n_q, 1, 64, path))
        return -1;
    char k[96];
    int32_t cdim;
    if (!get_u32(f, arch, "codebook_dim", &cdim, 1, 65536, path))
        return -1;
    if (cdim != in->dimension) {
        ag_set_error("%s: codebook_dim %d != dimension %d (projections are not supported)", path, cdim,
                     in->dimension);
        return -1;
    }
    nm(k, sizeof k, "%s.ratios", arch);
    const int64_t ki = ag_gguf_find_key(f, k);
    if (ki < 0 || ag_gguf_arr_type(f, ki) != AG_GGUF_INT32 || ag_gguf_arr_n(f, ki) < 1 ||
        ag_gguf_arr_n(f, ki) > SEANET_MAX_RATIOS) {
        ag_set_error("%s: '%s' missing or not an int32 array of 1..%d", path, k, SEANET_MAX_RATIOS);
        return -1;
    }
    m->n_ratios = (int32_t)ag_gguf_arr_n(f, ki);
    int32_t r[SEANET_MAX_RATIOS];
    /* array data inside the file mapping need not be 4-byte aligned */
    memcpy(r, ag_gguf_arr_data(f, ki), (size_t)m->n_ratios * sizeof r[0]);
    in->hop = 1;
    for (int i = 0; i < m->n_ratios; i++) {
        if (r[i] < 1 || r[i] > 64) {
            ag_set_error("%s: ratio %d out of range", path, r[i]);
            return -1;
        }
        m->ratios[i] = r[i];
        in->hop *= r[i];
    }
    if (((int64_t)m->n_filters << m->n_ratios) > 65536 || in->hop > AG_MAX_MODEL_DIM || m->res_kernel % 2 == 0) {
        ag_set_error("%s: unsupported SEANet shape", path);
        return -1;
    }
    nm(k, sizeof k, "%s.encoder_bidirectional", arch);
    if (!ag_gguf_get_bool(f, k, &m->bidir)) {
        ag_set_error("%s: missing '%s'", path, k);
        return -1;
    }
    nm(k, sizeof k, "%s.shortcut", arch);
    const char *sc = ag_gguf_get_str(f, k);
    nm(k, sizeof k, "%s.activation", arch);
    const char *ac = ag_gguf_get_str(f, k);
    if (!sc || (strcmp(sc, "conv") && strcmp(sc, "identity")) || !ac || (strcmp(ac, "elu") && strcmp(ac, "snake"))) {
        ag_set_error("%s: '%s.shortcut' must be conv|identity and '%s.activation' elu|snake", path, arch, arch);
        return -1;
    }
    m->conv_shortcut = !strcmp(sc, "conv");
    in->snake = !strcmp(ac, "snake");
    /* Encodec files state the padding scheme; only SEANet's non-causal reflect one is built here */
    bool causal = false;
    nm(k, sizeof k, "%s.causal", arch);
    if (ag_gguf_find_key(f, k) >= 0 && (!ag_gguf_get_bool(f, k, &causal) || causal)) {
        ag_set_error("%s: '%s' must be false (causal SEANet is not supported)", path, k);
        return -1;
    }
    nm(k, sizeof k, "%s.pad_mode", arch);
    const char *pm = ag_gguf_get_str(f, k);
    if (ag_gguf_find_key(f, k) >= 0 && (!pm || strcmp(pm, "reflect") != 0)) {
        ag_set_error("%s: '%s' must be \"reflect\"", path, k);
        return -1;
    }
    ag_clear_error();
    return 0;
}

ag_seanet *ag_seanet_load(ag_backend *be, const char *path, ag_progress_fn progress, void *user)
{
    ag_seanet *m = calloc(1, sizeof *m);
    if (!m) {
        ag_set_error("out of memory");
        return NULL;
    }
    m->be = be;
    m->w = ag_weights_load(be, path, NULL, progress, user);
    if (!m->w || read_hparams(m, path) != 0)
        goto fail;
    m->ctx = ag_ctx_new(SEANET_MAX_TENSORS);
    m->alloc = ag_allocator_new(be);
    if (!m->ctx || !m->alloc)
        goto fail;
    /* validate every weight now: build (not run) both graphs for one frame */
    ag_graph *g = ag_graph_new(m->ctx, SEANET_MAX_TENSORS);
    ag_tensor *in, *codes[64], *ids[64];
    int ok = g && build_encode(m, g, &in, m->info.hop, m->info.n_q, codes) == 0 &&
             build_decode(m, g, 1, m->info.n_q, ids) != NULL;
    ag_graph_free(g);
    ag_ctx_reset(m->ctx);
    if (!ok)
        goto fail;
    return m;
fail:
    ag_seanet_free(m);
    return NULL;
}

void ag_seanet_free(ag_seanet *m)
{
    if (!m)
        return;
    ag_allocator_free(m->alloc);
    ag_ctx_free(m->ctx);
    ag_weights_free(m->w);
    free(m);
}

const ag_seanet_info *ag_seanet_info_of(const ag_seanet *m) { return &m->info; }

int64_t ag_seanet_n_frames(const ag_seanet *m, int64_t n) { return n <= 0 ? 0 : (n + m->info.hop - 1) / m->info.hop; }

int ag_seanet_encode(ag_seanet *m, const float *audio, int64_t n, int n_q, int32_t *codes)
{
    if (!audio || !codes || n < 1 || n > ((int64_t)1 << 31) / 64) {
        ag_set_error("seanet: cannot encode %lld samples", (long long)n);
        return -1;
    }
    if (n_q < 1 || n_q > m->info.n_q) {
        ag_set_error("seanet: %d codebooks requested, the model has %d", n_q, m->info.n_q);
        return -1;
    }
    const int64_t t = ag_seanet_n_frames(m, n);
    ag_ctx_reset(m->ctx);
    ag_graph *g = ag_graph_new(m->ctx, SEANET_MAX_TENSORS);
    int rc = -1;
    ag_tensor *in, *out[64];
    int32_t *tmp = NULL;
    if (!g || build_encode(m, g, &in, n, n_q, out) != 0 || ag_allocator_alloc_graph(m->alloc, g) != 0 ||
        ag_tensor_set(in, audio, 0, (size_t)n * sizeof(float)) != 0 || ag_backend_compute(m->be, g) != 0)
        goto out;
    if (out[0]->ne[0] != t) {
        ag_set_error("seanet: encoder produced %lld frames, expected %lld", (long long)out[0]->ne[0], (long long)t);
        goto out;
    }
    tmp = malloc((size_t)t * sizeof *tmp);
    if (!tmp) {
        ag_set_error("out of memory");
        goto out;
    }
    for (int q = 0; q < n_q; q++) {
        if (ag_tensor_get(out[q], tmp, 0, (size_t)t * sizeof *tmp) != 0)
            goto out;
        for (int64_t i = 0; i < t; i++)
            codes[i * n_q + q] = tmp[i];
    }
    rc = 0;
out:
    free(tmp);
    ag_graph_free(g);
    return rc;
}

int ag_seanet_decode(ag_seanet *m, const int32_t *codes, int64_t t, int n_q, float *audio)
{
    if (!codes || !audio || t < 1 || t > ((int64_t)1 << 31) / (64 * (int64_t)m->info.hop)) {
        ag_set_error("seanet: cannot decode %lld frames", (long long)t);
        return -1;
    }
    if (n_q < 1 || n_q > m->info.n_q) {
        ag_set_error("seanet: %d codebooks given, the model has %d", n_q, m->info.n_q);
        return -1;
    }
    for (int64_t i = 0; i < t * n_q; i++) {
        if (codes[i] < 0 || codes[i] >= m->info.codebook_size) {
            ag_set_error("seanet: code %d (frame %lld, layer %d) outside the codebook (%d)", codes[i],
                         (long long)(i / n_q), (int)(i % n_q) + 1, m->info.codebook_size);
            return -1;
        }
    }
    ag_ctx_reset(m->ctx);
    ag_graph *g = ag_graph_new(m->ctx, SEANET_MAX_TENSORS);
    int rc = -1;
    ag_tensor *ids[64];
    int32_t *tmp = malloc((size_t)t * sizeof *tmp);
    ag_tensor *y = g && tmp ? build_decode(m, g, t, n_q, ids) : NULL;
    if (!tmp)
        ag_set_error("out of memory");
    if (!y || ag_allocator_alloc_graph(m->alloc, g) != 0)
        goto out;
    for (int q = 0; q < n_q; q++) {
        for (int64_t i = 0; i < t; i++)
            tmp[i] = codes[i * n_q + q];
        if (ag_tensor_set(ids[q], tmp, 0, (size_t)t * sizeof *tmp) != 0)
            goto out;
    }
    if (ag_backend_compute(m->be, g) != 0 ||
        ag_tensor_get(y, audio, 0, (size_t)t * (size_t)m->info.hop * sizeof(float)) != 0)
        goto out;
    rc = 0;
out:
    free(tmp);
    ag_graph_free(g);
    return rc;
}

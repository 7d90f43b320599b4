"""Float64 numpy reference of every op in core/include/anygpt/graph.h, written from that header's
text. Arrays are 4-D numpy arrays in C order = ggml shape reversed: ggml [ne0, ne1, ne2, ne3]
is numpy shape (ne3, ne2, ne1, ne0). Comments quote the semantics being implemented.
"""

import math

import numpy as np


def as4(x):
    x = np.asarray(x, dtype=np.float64)
    while x.ndim < 4:
        x = x[None]
    return x


def strided_view(base_flat, itemsize, ne, nb, offs):
    """A ggml view (ne/nb in ggml order, nb and offs in bytes) of a flat array, as numpy 4-D."""
    for s in list(nb) + [offs]:
        assert s % itemsize == 0
    shape = tuple(reversed(ne))
    strides = tuple(reversed([s // itemsize * base_flat.strides[0] for s in nb]))
    start = offs // itemsize
    return np.lib.stride_tricks.as_strided(base_flat[start:], shape=shape, strides=strides)


def permute_view(ne, nb, axes):
    """ggml permute: source dim i becomes result dim axes[i]."""
    rne, rnb = [0] * 4, [0] * 4
    for i in range(4):
        rne[axes[i]] = ne[i]
        rnb[axes[i]] = nb[i]
    return rne, rnb


# ---- elementwise and normalisation ----

def add(a, b):
    return as4(a) + as4(b)


def mul(a, b):
    return as4(a) * as4(b)


def scale(a, s, bias):
    return as4(a) * s + bias


def rms_norm(x, eps):
    # x / sqrt(mean(x^2) + eps) over ne0
    x = as4(x)
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)


def layer_norm(x, eps):
    # (x - mean) / sqrt(var + eps), biased var, over ne0
    x = as4(x)
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps)


def group_norm(x, n_groups, eps):
    # a viewed as [ne0*ne1, C=ne2, ne3]; contiguous channel groups; each (group, ne3) normalised
    x = as4(x)
    n3, c, n1, n0 = x.shape
    g = x.reshape(n3, n_groups, (c // n_groups) * n1 * n0)
    mu = g.mean(axis=-1, keepdims=True)
    var = ((g - mu) ** 2).mean(axis=-1, keepdims=True)
    return ((g - mu) / np.sqrt(var + eps)).reshape(x.shape)


def group_norm_affine(x, n_groups, eps, w, b, silu):
    # act(group_norm(x) * w[c] + b[c]) with c the channel (dim 2 = numpy axis 1); w, b optional
    y = group_norm(x, n_groups, eps)
    c = y.shape[1]
    if w is not None:
        y = y * np.asarray(w, np.float64).reshape(1, c, 1, 1)
    if b is not None:
        y = y + np.asarray(b, np.float64).reshape(1, c, 1, 1)
    return y / (1.0 + np.exp(-y)) if silu else y


def softmax(a, mask, scale_, causal):
    # softmax along ne0 of (a * scale + mask); causal: row m masks column n > m + (N - M);
    # a row with every entry -inf yields zeros.
    a = as4(a)
    z = a * scale_
    if mask is not None:
        z = z + as4(mask)  # [N, M] or [N, M, A2, 1] broadcasts over A2/A3
    n_cols, n_rows = a.shape[3], a.shape[2]
    if causal:
        m = np.arange(n_rows)[:, None]
        n = np.arange(n_cols)[None, :]
        z = np.where(n > m + (n_cols - n_rows), -np.inf, z)
    mx = z.max(axis=-1, keepdims=True)
    dead = np.isneginf(mx)
    e = np.exp(z - np.where(dead, 0.0, mx))
    s = e.sum(axis=-1, keepdims=True)
    return np.where(dead, 0.0, e / np.where(dead, 1.0, s))


def rope(x, pos, n_dims, mode, freq_base, freq_scale):
    # x [D, H, T, B]; theta = pos[t] * freq_scale * freq_base^(-2i/n_dims), i < n_dims/2;
    # pairs (2i, 2i+1) interleaved (mode 0) or (i, i + n_dims/2) neox (mode 2); rest passes.
    x = as4(x)
    out = x.copy()
    half = n_dims // 2
    i = np.arange(half)
    theta = np.asarray(pos, np.float64)[:, None] * freq_scale * freq_base ** (-2.0 * i / n_dims)  # (T, half)
    c = np.cos(theta)[None, :, None, :]
    s = np.sin(theta)[None, :, None, :]
    if mode == 0:
        i0, i1 = 2 * i, 2 * i + 1
    else:
        i0, i1 = i, i + half
    x0, x1 = x[..., i0], x[..., i1]
    out[..., i0] = x0 * c - x1 * s
    out[..., i1] = x0 * s + x1 * c
    return out


def _erf(v):
    return np.vectorize(math.erf)(v)


def unary(x, op):
    x = as4(x)
    if op == 0:  # silu
        return x / (1.0 + np.exp(-x))
    if op == 1:  # gelu, exact
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))
    if op == 2:  # elu, alpha 1
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))
    if op == 3:
        return np.tanh(x)
    if op == 4:
        return 1.0 / (1.0 + np.exp(-x))
    if op == 5:
        return np.maximum(x, 0.0)
    raise ValueError(op)


UNARY_NAMES = ["silu", "gelu", "elu", "tanh", "sigmoid", "relu"]


def snake(x, alpha):
    # a [T, C, B]: out = x + sin(alpha_c x)^2 / (alpha_c + 1e-9)
    x = as4(x)
    a = np.asarray(alpha, np.float64).reshape(1, 1, -1, 1)
    return x + np.sin(a * x) ** 2 / (a + 1e-9)


def glu(x):
    x = as4(x)
    n = x.shape[-1] // 2
    return x[..., :n] * (1.0 / (1.0 + np.exp(-x[..., n:])))


def geglu(x):
    # a[:n] * gelu(a[n:]), exact erf gelu
    x = as4(x)
    n = x.shape[-1] // 2
    return x[..., :n] * unary(x[..., n:], 1)


# ---- matmul and convolutions ----

def mul_mat(a, b):
    # a [K, N, A2, A3], b [K, M, B2, B3] -> [N, M, B2, B3];
    # out[n,m,i2,i3] = sum_k a[k, n, i2 / (B2/A2), i3 / (B3/A3)] * b[k, m, i2, i3]
    a, b = as4(a), as4(b)
    r3, r2 = b.shape[0] // a.shape[0], b.shape[1] // a.shape[1]
    ab = np.repeat(np.repeat(a, r3, axis=0), r2, axis=1)
    return np.einsum("ijnk,ijmk->ijmn", ab, b)


def conv1d(x, w, stride, dilation, groups):
    # x [T, Cin, B] = numpy (1, B, Cin, T); w [K, Cin/g, Cout] = numpy (1, Cout, Cin/g, K)
    x, w = as4(x)[0], as4(w)[0]
    B, cin, T = x.shape
    cout, cpg, K = w.shape
    tout = (T - dilation * (K - 1) - 1) // stride + 1
    opg = cout // groups
    out = np.zeros((B, cout, tout))
    for g in range(groups):
        xs = x[:, g * cpg:(g + 1) * cpg, :]
        ws = w[g * opg:(g + 1) * opg]
        for k in range(K):
            start = k * dilation
            taps = xs[:, :, start:start + stride * (tout - 1) + 1:stride]  # (B, cpg, tout)
            out[:, g * opg:(g + 1) * opg, :] += np.einsum("oc,bct->bot", ws[:, :, k], taps)
    return out[None]


def conv_transpose1d(x, w, stride):
    # x [T, Cin, B]; w [K, Cout, Cin] = numpy (1, Cin, Cout, K); out [(T-1)*stride + K, Cout, B]
    x, w = as4(x)[0], as4(w)[0]
    B, cin, T = x.shape
    _, cout, K = w.shape
    out = np.zeros((B, cout, (T - 1) * stride + K))
    for t in range(T):
        out[:, :, t * stride:t * stride + K] += np.einsum("bc,cok->bok", x[:, :, t], w)
    return out[None]


def conv2d(x, w, s0, s1, p0, p1, d0, d1):
    # x [W, H, Cin, N] = numpy (N, Cin, H, W); w [KW, KH, Cin, Cout] = numpy (Cout, Cin, KH, KW)
    x, w = as4(x), as4(w)
    N, cin, H, W = x.shape
    cout, _, KH, KW = w.shape
    xp = np.zeros((N, cin, H + 2 * p1, W + 2 * p0))
    xp[:, :, p1:p1 + H, p0:p0 + W] = x
    ho = (H + 2 * p1 - d1 * (KH - 1) - 1) // s1 + 1
    wo = (W + 2 * p0 - d0 * (KW - 1) - 1) // s0 + 1
    out = np.zeros((N, cout, ho, wo))
    for kh in range(KH):
        for kw in range(KW):
            patch = xp[:, :, kh * d1:kh * d1 + s1 * (ho - 1) + 1:s1, kw * d0:kw * d0 + s0 * (wo - 1) + 1:s0]
            out += np.einsum("oc,nchw->nohw", w[:, :, kh, kw], patch)
    return out


# ---- data movement ----

def pad(a, l0, r0, l1, r1, mode):
    a = as4(a)
    widths = ((0, 0), (0, 0), (l1, r1), (l0, r0))
    return np.pad(a, widths, mode="constant" if mode == 0 else "reflect")  # numpy reflect = PyTorch reflect


def upsample(a, f0, f1):
    # out[i0, i1] = a[i0 / f0, i1 / f1]
    return np.repeat(np.repeat(as4(a), f0, axis=3), f1, axis=2)


def get_rows(table, ids):
    t = as4(table)[0, 0]  # (V, D)
    return t[np.asarray(ids, np.int64)][None, None]


def concat(a, b, dim):
    return np.concatenate([as4(a), as4(b)], axis=3 - dim)


# ---- sequence ops ----

def _sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def lstm(gx, whh, reverse):
    # gx [4H, T] = numpy (T, 4H); whh [H, 4H] = numpy (4H, H) (PyTorch weight_hh); gates i, f, g, o
    gx = as4(gx)[0, 0]
    whh = as4(whh)[0, 0]
    T, h4 = gx.shape
    H = h4 // 4
    h = np.zeros(H)
    c = np.zeros(H)
    out = np.zeros((T, H))
    order = range(T - 1, -1, -1) if reverse else range(T)
    for t in order:
        z = gx[t] + whh @ h
        i, f, g, o = _sig(z[:H]), _sig(z[H:2 * H]), np.tanh(z[2 * H:3 * H]), _sig(z[3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        out[t] = h
    return out[None, None]


def vq_argmin(x, cb):
    # x [D, T], codebook [D, K] -> argmin_k ||x_t - c_k||^2, ties to lowest k
    x = as4(x)[0, 0]
    cb = as4(cb)[0, 0]
    dist = ((x[:, None, :] - cb[None, :, :]) ** 2).sum(axis=2)
    return np.argmin(dist, axis=1), dist


def attention(q, k, v, mask, scale_, causal):
    # q [D, Nq, H] = numpy (H, Nq, D); k [D, Nk, Hkv]; v [Dv, Nk, Hkv]; head h uses kv h / (H/Hkv);
    # mask [Nk, Nq] added to scaled scores; causal: query i sees keys j <= i + (Nk - Nq);
    # out [Dv, H, Nq] = numpy (Nq, H, Dv)
    q, k, v = as4(q)[0], as4(k)[0], as4(v)[0]
    H, Nq, _ = q.shape
    Hkv, Nk, Dv = v.shape
    rep = H // Hkv
    out = np.zeros((Nq, H, Dv))
    for h in range(H):
        s = q[h] @ k[h // rep].T * scale_  # (Nq, Nk)
        if mask is not None:
            s = s + as4(mask)[0, 0]
        if causal:
            i = np.arange(Nq)[:, None]
            j = np.arange(Nk)[None, :]
            s = np.where(j > i + (Nk - Nq), -np.inf, s)
        s = s - s.max(axis=1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=1, keepdims=True)
        out[:, h, :] = p @ v[h // rep]
    return out[None]


def argmax(a):
    return np.argmax(as4(a)[0, 0], axis=1)

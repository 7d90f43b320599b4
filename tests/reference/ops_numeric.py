"""Number formats for the op fixtures, written from the block definitions in
core/include/anygpt/tensor.h and quant.h (not from any C code):

  Q8_0 block (34 bytes): f16 d, int8 qs[32];             value = q * d
  Q4_0 block (18 bytes): f16 d, uint8 qs[16];             value = (q - 8) * d
                         low nibble of qs[j] is element j, high nibble is element j + 16.

Arrays use numpy's C order, i.e. the ggml shape reversed: a ggml tensor [ne0, ne1, ne2, ne3] is
a numpy array of shape (ne3, ne2, ne1, ne0).
"""

import numpy as np

QK = 32
EPS32 = float(np.finfo(np.float32).eps)  # 2^-23


def f16_round(x):
    """Values exactly representable in F16 (round to nearest even), as float64."""
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float64)


def f32_round(x):
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def _round_half_away(v):
    # C roundf(): halves go away from zero (np.round would go to even)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def quantize_q8_0(x):
    """x: float array whose last dim is a multiple of 32. Returns (raw bytes, dequantized f64)."""
    x = np.asarray(x, dtype=np.float32)
    rows = x.reshape(-1, QK)
    amax = np.max(np.abs(rows), axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    q = _round_half_away((rows * idv[:, None]).astype(np.float32)).astype(np.int8)
    d16 = d.astype(np.float16)
    blocks = np.zeros(rows.shape[0], dtype=[("d", "<f2"), ("qs", "i1", (QK,))])
    blocks["d"] = d16
    blocks["qs"] = q
    deq = q.astype(np.float64) * d16.astype(np.float64)[:, None]
    return blocks.tobytes(), deq.reshape(x.shape)


def quantize_q4_0(x):
    """Returns (raw bytes, dequantized f64)."""
    x = np.asarray(x, dtype=np.float32)
    rows = x.reshape(-1, QK)
    # the element of largest magnitude, sign kept (first one on ties)
    imax = np.argmax(np.abs(rows), axis=1)
    vmax = rows[np.arange(rows.shape[0]), imax]
    d = (vmax / np.float32(-8)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    t = (rows * idv[:, None] + np.float32(8.5)).astype(np.float32)
    q = np.minimum(15, np.trunc(t)).astype(np.uint8)  # (int8) cast truncates; t >= 0.5 here
    d16 = d.astype(np.float16)
    packed = (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)
    blocks = np.zeros(rows.shape[0], dtype=[("d", "<f2"), ("qs", "u1", (16,))])
    blocks["d"] = d16
    blocks["qs"] = packed
    deq = (q.astype(np.float64) - 8.0) * d16.astype(np.float64)[:, None]
    return blocks.tobytes(), deq.reshape(x.shape)


def dequantize(raw, ttype, shape):
    """Decode bytes of a tensor (independent check of the packers above)."""
    if ttype == "q8_0":
        b = np.frombuffer(raw, dtype=[("d", "<f2"), ("qs", "i1", (QK,))])
        v = b["qs"].astype(np.float64) * b["d"].astype(np.float64)[:, None]
    elif ttype == "q4_0":
        b = np.frombuffer(raw, dtype=[("d", "<f2"), ("qs", "u1", (16,))])
        lo = (b["qs"] & 15).astype(np.float64)
        hi = (b["qs"] >> 4).astype(np.float64)
        v = (np.concatenate([lo, hi], axis=1) - 8.0) * b["d"].astype(np.float64)[:, None]
    else:
        raise ValueError(ttype)
    return v.reshape(shape)


def encode(x, ttype):
    """(raw bytes, the exact values those bytes hold as float64) for a tensor of type ttype."""
    if ttype == "f32":
        a = np.asarray(x, dtype=np.float32)
        return a.tobytes(), a.astype(np.float64)
    if ttype == "f16":
        a = np.asarray(x, dtype=np.float32).astype(np.float16)
        return a.tobytes(), a.astype(np.float64)
    if ttype == "i32":
        a = np.asarray(x, dtype=np.int32)
        return a.tobytes(), a.astype(np.float64)
    if ttype == "q8_0":
        return quantize_q8_0(x)
    if ttype == "q4_0":
        return quantize_q4_0(x)
    raise ValueError(ttype)


ITEMSIZE = {"f32": 4, "f16": 2, "i32": 4}


def q8_activation_bound(w, b):
    """Error bound for a matmul whose activations b (M, K) are quantized to Q8_0 blocks before an
    integer dot with weights w (N, K) (what ggml-style kernels do; a backend may also use b as is).
    Each activation element is off by a rounding error in [-d/2, d/2] (d = block amax / 127, about
    uniform and independent), plus the F16 rounding of d (relative, shared by the block).
    Returns (M, N) array: a 5-sigma bound on the difference from the exact product."""
    M, K = b.shape
    nb = K // QK
    bb = b.reshape(M, nb, QK)
    d = np.abs(bb).max(axis=2) / 127.0                      # (M, nb)
    ww = w.reshape(w.shape[0], nb, QK)                       # (N, nb, QK)
    w2 = (ww ** 2).sum(axis=2)                              # (N, nb)
    var_round = (d ** 2) @ w2.T / 12.0                      # (M, N)
    dots = np.einsum("mbk,nbk->mnb", bb, ww)                # per-block partial dots
    var_scale = ((dots * 2.0 ** -11) ** 2).sum(axis=2) / 3.0
    return 5.0 * np.sqrt(var_round + var_scale)


def q8_activation_product(w, b):
    """The product as a ggml-style kernel computes it: activations quantized to Q8_0 first."""
    _, bq = quantize_q8_0(b)
    return bq @ w.T

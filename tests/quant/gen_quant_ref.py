#!/usr/bin/env python3
"""Reference data for the quant tests, written from the ggml block format definitions
(tensor.h / quant.h comments, ggml's reference quantizers), not from the C code.

Q8_0 block (34 bytes): f16 d, then 32 int8 q;     value = q * d
    d = amax / 127 (float32), id = 1/d (0 if d == 0), q = round(x * id), halves away from zero.
Q4_0 block (18 bytes): f16 d, then 16 bytes;      value = (q - 8) * d
    byte j holds element j in its low nibble and element j + 16 in its high nibble;
    m = the element of largest |x| (first one on ties, sign kept), d = m / -8, id = 1/d,
    q = min(15, trunc(x * id + 8.5)).
All float arithmetic is float32, as in the C reference; d is stored rounded to nearest-even half.

Output (little-endian raw file, read by test_quant.c):
  b"AGQREF01", u32 ncases, then per case:
  char name[32], u32 n, u32 nrows,
  f32 w[nrows*n], f32 a[n],
  u8 q8w[nrows*n/32*34], f32 q8w_deq[nrows*n],
  u8 q4w[nrows*n/32*18], f32 q4w_deq[nrows*n],
  u16 f16w[nrows*n], u8 q8a[n/32*34],
  f64 dot[4][nrows], f64 sabs[4][nrows]     (order: F32, F16, Q8_0, Q4_0 weights;
      F32/F16 against a, Q8_0/Q4_0 against q8a; float64 sums of the quantized values)
"""
import struct
import sys

import numpy as np

F32 = np.float32


def round_half_away(v):
    v = v.astype(np.float64)  # exact for float32 values; floor(|v| + 0.5) in float64 is exact too
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def quant_q8(x):
    b = x.reshape(-1, 32).astype(F32)
    amax = np.max(np.abs(b), axis=1)
    d = (amax / F32(127)).astype(F32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, F32(1) / d, F32(0)).astype(F32)
    s = (b * idv[:, None]).astype(F32)
    q = round_half_away(s).astype(np.int8)
    dh = d.astype(np.float16)
    raw = bytearray()
    for i in range(b.shape[0]):
        raw += dh[i].tobytes() + q[i].tobytes()
    deq = (q.astype(F32) * dh.astype(F32)[:, None]).astype(F32).reshape(-1)
    return bytes(raw), deq, q.astype(np.int64), dh.astype(np.float64)


def quant_q4(x):
    b = x.reshape(-1, 32).astype(F32)
    idx = np.argmax(np.abs(b), axis=1)  # first index of the largest magnitude
    m = b[np.arange(b.shape[0]), idx]
    # the search starts from max = +0.0 and only a strictly larger magnitude replaces it, so an
    # all-zero block keeps +0.0 (and d = +0.0 / -8 = -0.0, stored as 0x8000)
    m = np.where(np.abs(m) > 0, m, F32(0.0)).astype(F32)
    d = (m / F32(-8)).astype(F32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, F32(1) / d, F32(0)).astype(F32)
    s = (b * idv[:, None]).astype(F32)
    t = (s + F32(8.5)).astype(F32)
    q = np.minimum(15, np.trunc(t.astype(np.float64))).astype(np.int64)
    dh = d.astype(np.float16)
    raw = bytearray()
    for i in range(b.shape[0]):
        packed = (q[i, :16] | (q[i, 16:] << 4)).astype(np.uint8)
        raw += dh[i].tobytes() + packed.tobytes()
    deq = ((q - 8).astype(F32) * dh.astype(F32)[:, None]).astype(F32).reshape(-1)
    return bytes(raw), deq, q - 8, dh.astype(np.float64)


def edge_blocks(rng):
    blocks = []
    blocks.append(np.zeros(32, F32))                                   # all zeros
    b = (rng.standard_normal(32) * 0.01).astype(F32); b[5] = 1000.0    # one large value
    blocks.append(b)
    b = rng.uniform(-1, 1, 32).astype(F32); b[17] = -3.0               # negative max
    blocks.append(b)
    # Q8_0 ties: amax 127 -> d = 1, id = 1, so x * id is exactly k + 0.5
    b = np.array([127, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5, 63.5, -63.5, 0.49999997, -0.49999997,
                  3.5, -3.5, 100.5, 7, -7, 0, 1, -1, 10.5, -10.5, 11.5, -11.5, 0.25, -0.75, 99.5, -99.5, 2, 4.5, -127],
                 F32)
    blocks.append(b)
    # Q4_0 truncation edges: max -8 -> d = 1, id = 1, x + 8.5 lands on integers
    b = np.array([-8, -0.5, 0.5, 6.5, 7.5, 7, -7.5, -7, 1.5, -1.5, 0, 2.5, -2.5, 3.49, 5.5, -5.5,
                  6.99, -6.5, 4.5, -4.5, 0.49, -0.51, 1, -1, 7.4, 7.6, -8, 3.5, -3.5, 2, -2, 0.5], F32)
    blocks.append(b)
    b = rng.uniform(-1000, 1000, 32).astype(F32); b[0] = -65504.0; b[9] = 65504.0   # +-65504, first wins
    blocks.append(b)
    blocks.append((rng.standard_normal(32) * 1e-20).astype(F32))      # tiny: d underflows to 0 in half
    blocks.append((rng.standard_normal(32) * 1e-4).astype(F32))       # d is a subnormal half
    b = rng.uniform(-1, 1, 32).astype(F32); b[3] = 2.0; b[20] = -2.0  # equal magnitudes, positive first
    blocks.append(b)
    blocks.append(np.full(32, -0.75, F32))                            # constant negative block
    return blocks


def make_case(name, w, a):
    nrows, n = w.shape
    q8w, q8w_deq, qw8, dw8 = quant_q8(w.reshape(-1))
    q4w, q4w_deq, qw4, dw4 = quant_q4(w.reshape(-1))
    f16w = w.astype(np.float16)
    q8a, _, qa, da = quant_q8(a)
    nb = n // 32
    dots = np.zeros((4, nrows))
    sabs = np.zeros((4, nrows))
    a64 = a.astype(np.float64)
    qa = qa.reshape(nb, 32)
    for r in range(nrows):
        t = w[r].astype(np.float64) * a64
        dots[0, r], sabs[0, r] = t.sum(), np.abs(t).sum()
        t = f16w[r].astype(np.float64) * a64
        dots[1, r], sabs[1, r] = t.sum(), np.abs(t).sum()
        for k, (qw, dw) in ((2, (qw8, dw8)), (3, (qw4, dw4))):
            qwr = qw.reshape(nrows, nb, 32)[r]
            dwr = dw.reshape(nrows, nb)[r]
            isum = (qwr * qa).sum(axis=1).astype(np.float64)
            blk = dwr * da * isum
            dots[k, r] = blk.sum()
            sabs[k, r] = (np.abs(dwr * da) * np.abs(qwr * qa).sum(axis=1)).sum()  # Q4_0 scales may be negative
    out = bytearray()
    out += name.encode().ljust(32, b"\0") + struct.pack("<II", n, nrows)
    out += w.astype("<f4").tobytes() + a.astype("<f4").tobytes()
    out += q8w + q8w_deq.astype("<f4").tobytes()
    out += q4w + q4w_deq.astype("<f4").tobytes()
    out += f16w.astype("<f2").tobytes() + q8a
    out += dots.astype("<f8").tobytes() + sabs.astype("<f8").tobytes()
    return bytes(out)


def main():
    rng = np.random.default_rng(20240611)
    cases = []
    edges = edge_blocks(rng)
    ew = np.stack([np.concatenate(edges), np.concatenate(edges[::-1]), -np.concatenate(edges)]).astype(F32)
    cases.append(make_case("edge", ew, rng.standard_normal(ew.shape[1]).astype(F32)))
    for n in (32, 64, 4096 + 32, 11008):
        nrows = 7
        scale = np.exp(rng.uniform(-4, 3, (nrows, 1)))
        w = (rng.standard_normal((nrows, n)) * scale).astype(F32)
        a = rng.standard_normal(n).astype(F32)
        cases.append(make_case(f"random{n}", w, a))
    with open(sys.argv[1], "wb") as f:
        f.write(b"AGQREF01" + struct.pack("<I", len(cases)))
        for c in cases:
            f.write(c)


if __name__ == "__main__":
    main()

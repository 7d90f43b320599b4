#!/usr/bin/env python3
"""Reference data for the packed row group tests (test_packed.c), written from the layout that
quant.h describes, not from the C code.

A group is 16 consecutive weight rows (the last one padded with zero rows). Per 32-element block
column b it stores the 16 rows' f16 scales (32 bytes), then 64-byte chunks, lane j (4 bytes) of
chunk c belonging to row j:
  Q4_0: 4 chunks, chunk c = the file block's qs[4c..4c+3]   (padding rows: 0x88, scale 0)
  Q8_0: 8 chunks, chunk c = q[4c..4c+3] + 128 as bytes      (padding rows: 0x80, scale 0)
F16 / F32 rows: per column k the 16 rows' values (padding rows 0); activations are the F32 rows
as they are, and out[m, n] = sum over k of w * x in float64.
An activation row (Q8_0 / Q4_0 weights): the Q8_0 quantization of x (gen_quant_ref.quant_q8), as K int8 quants, then
K/32 f32 scales (the f16 scale, widened), then K/32 int32 corrections -off * sum(q) per block
(off 8 for Q4_0 weights, 128 for Q8_0).
out[m, n] = sum over blocks of dw * da * (integer dot of the quants), in float64.

Output (little-endian): b"AGPKREF1", u32 ncases, then per case:
  char name[32], u32 type (0 Q4_0, 1 Q8_0, 2 F16, 3 F32), u32 K, u32 N, u32 M,
  u8 rows[N * rowbytes] (file format), u8 packed[ngroups * 16 * rowbytes],
  f32 x[M * K], u8 act[M * (K + K/4)] (quantized types only), f64 out[M * N], f64 sabs[M * N]
"""
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_quant_ref import F32, edge_blocks, quant_q4, quant_q8  # noqa: E402


def pack(rows_raw, N, K, q4):
    nb = K // 32
    bsz = 18 if q4 else 34
    raw = np.frombuffer(rows_raw, np.uint8).reshape(N, nb, bsz)
    groups = (N + 15) // 16
    out = bytearray()
    for g in range(groups):
        for b in range(nb):
            scales = bytearray()
            chunks = [bytearray(64) for _ in range(4 if q4 else 8)]
            for j in range(16):
                n = g * 16 + j
                if n < N:
                    blk = raw[n, b]
                    scales += blk[:2].tobytes()
                    qs = blk[2:]
                    for c in range(len(chunks)):
                        piece = qs[4 * c:4 * c + 4]
                        if not q4:
                            piece = ((piece.astype(np.int16) + 256) % 256).astype(np.uint8) ^ 0x80
                        chunks[c][4 * j:4 * j + 4] = piece.tobytes()
                else:
                    scales += b"\0\0"
                    for c in range(len(chunks)):
                        chunks[c][4 * j:4 * j + 4] = bytes([0x88 if q4 else 0x80]) * 4
            out += scales
            for c in chunks:
                out += c
    return bytes(out)


def pack_float(w, es_dtype):
    N, K = w.shape
    groups = (N + 15) // 16
    padded = np.zeros((groups * 16, K), es_dtype)
    padded[:N] = w.astype(es_dtype)
    # group g: [K][16]
    return padded.reshape(groups, 16, K).transpose(0, 2, 1).astype(es_dtype).tobytes()


def make_float_case(name, f16, w, x):
    N, K = w.shape
    M = x.shape[0]
    dt = np.dtype("<f2") if f16 else np.dtype("<f4")
    wq = w.astype(dt)
    w64 = wq.astype(np.float64)
    out = x.astype(np.float64) @ w64.T
    sabs = np.abs(x.astype(np.float64)) @ np.abs(w64).T
    blob = bytearray()
    blob += name.encode().ljust(32, b"\0") + struct.pack("<IIII", 2 if f16 else 3, K, N, M)
    blob += wq.tobytes() + pack_float(wq, dt)
    blob += x.astype("<f4").tobytes()
    blob += out.astype("<f8").tobytes() + sabs.astype("<f8").tobytes()
    return bytes(blob)


def make_case(name, q4, w, x):
    N, K = w.shape
    M = x.shape[0]
    nb = K // 32
    if q4:
        rows, _, qw, dw = quant_q4(w.reshape(-1))
    else:
        rows, _, qw, dw = quant_q8(w.reshape(-1))
    qw = qw.reshape(N, nb, 32)
    dw = dw.reshape(N, nb)
    off = 8 if q4 else 128
    act = bytearray()
    out = np.zeros((M, N))
    sabs = np.zeros((M, N))
    for m in range(M):
        _, _, qa, da = quant_q8(x[m])
        qa = qa.reshape(nb, 32)
        act += qa.astype(np.int8).tobytes() + da.astype("<f4").tobytes()
        act += (-off * qa.sum(axis=1)).astype("<i4").tobytes()
        isum = (qw * qa[None]).sum(axis=2).astype(np.float64)  # [N, nb]
        out[m] = (dw * da[None] * isum).sum(axis=1)
        sabs[m] = (np.abs(dw * da[None]) * np.abs(qw * qa[None]).sum(axis=2)).sum(axis=1)
    blob = bytearray()
    blob += name.encode().ljust(32, b"\0") + struct.pack("<IIII", 0 if q4 else 1, K, N, M)
    blob += rows + pack(rows, N, K, q4)
    blob += x.astype("<f4").tobytes() + bytes(act)
    blob += out.astype("<f8").tobytes() + sabs.astype("<f8").tobytes()
    return bytes(blob)


def main():
    rng = np.random.default_rng(20250113)
    cases = []
    edges = np.concatenate(edge_blocks(rng))  # zeros, one large value, negative max, constant
    for q4 in (True, False):
        t = "q4_0" if q4 else "q8_0"
        for K, N, M in ((32, 16, 1), (96, 37, 3), (256, 5, 13), (4128, 48, 9), (11008, 16, 1), (320, 33, 20),
                        # AMX: two whole tiles of 16 activation rows, then 5 rows on VNNI
                        (1024, 40, 37),
                        # matvecs (M = 1) whose groups go two at a time: a partial second group,
                        # one with an empty second half (AVX2), whole pairs, a pair then a single
                        (96, 37, 1), (160, 40, 1), (64, 64, 1), (64, 24, 1), (64, 56, 1),
                        # four at a time (AVX-512): fours then a pair and a partial single, fours
                        # then a single, three groups (not four)
                        (64, 100, 1), (96, 144, 1), (64, 48, 1)):
            scale = np.exp(rng.uniform(-3, 2, (N, 1)))
            w = (rng.standard_normal((N, K)) * scale).astype(F32)
            x = rng.standard_normal((M, K)).astype(F32)
            if K == 320:  # the edge blocks in weights and activations
                w[1] = edges
                w[7] = -edges
                x[2] = edges
                x[3] = 0
            cases.append(make_case(f"{t} K={K} N={N} M={M}", q4, w, x))
    for f16 in (True, False):
        t = "f16" if f16 else "f32"
        # K past one and two blocks of 256 (the kernels add block sums), ragged N and M tiles
        for K, N, M in ((7, 16, 1), (96, 37, 3), (300, 5, 13), (600, 48, 14), (1024, 33, 25)):
            w = rng.standard_normal((N, K)).astype(F32)
            x = rng.standard_normal((M, K)).astype(F32)
            cases.append(make_float_case(f"{t} K={K} N={N} M={M}", f16, w, x))
    with open(sys.argv[1], "wb") as f:
        f.write(b"AGPKREF1" + struct.pack("<I", len(cases)))
        for c in cases:
            f.write(c)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes the op test fixture (GGUF) read by tests/ops/test_ops.c.

Every expectation is computed in float64 numpy (ops_ref.py, from graph.h's text) on the exact
values the input bytes hold (F16 / Q8_0 / Q4_0 inputs are decoded first). Tolerances come from
the arithmetic each op needs in F32 (and, for quantized matmuls, from the Q8_0 activation
quantization a backend may apply), kept tight enough that an indexing mistake fails.

usage: op_cases.py OUTPUT.gguf
"""

import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ops_numeric as nm  # noqa: E402
import ops_ref as R  # noqa: E402
from ops_fixture import Fixture, Src, ViewOf  # noqa: E402

EPS = nm.EPS32
rng = np.random.default_rng(20240221)


def randn(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def uniform(lo, hi, *shape):
    return rng.uniform(lo, hi, shape).astype(np.float32)


def dot_tol(absprod):
    """atol for sums of products computed in F32: absprod = the sum of |terms| per output."""
    return 1e-6 * float(np.max(absprod)) + 1e-7


# ----------------------------------------------------------------------------------------------
def cpy_cases(fx):
    a = randn(3, 5, 37, scale=3)
    s = Src(a)
    exp = nm.f16_round(s.exact)
    fx.case("cpy f32->f16 [37,5,3]", "cpy", [s], exp, 0, 0, dst_type="f16")
    s = Src(a, "f16")
    fx.case("cpy f16->f32 [37,5,3]", "cpy", [s], s.exact, 0, 0, dst_type="f32")
    for axes in ([0, 2, 1, 3], [0, 2, 3, 1], [0, 3, 1, 2]):
        b = randn(2, 3, 4, 6)
        s = Src(b)
        v = s.permute(axes)
        fx.case(f"cpy f32 permuted {''.join(map(str, axes))} ->f32", "cpy", [s], v.copy(), 0, 0, dst_type="f32")
    b = randn(2, 3, 4, 6)
    s = Src(b, "f16")
    v = s.permute([0, 2, 1, 3])
    fx.case("cpy f16 permuted 0213 ->f32", "cpy", [s], v.copy(), 0, 0, dst_type="f32")
    s = Src(b)
    v = s.permute([0, 2, 1, 3])
    fx.case("cpy f32 permuted 0213 ->f16", "cpy", [s], nm.f16_round(v), 0, 0, dst_type="f16")
    # strided slice: columns 2..6 of rows 1..4 of a [10, 6] matrix
    b = randn(6, 10)
    s = Src(b)
    v = s.view([5, 4], [4, 40], 4 * (2 + 10 * 1))
    fx.case("cpy f32 strided slice ->f16", "cpy", [s], nm.f16_round(v), 0, 0, dst_type="f16")
    ids = rng.integers(-1000, 1000, (3, 4, 5)).astype(np.int32)
    s = Src(ids, "i32")
    v = s.permute([0, 2, 1, 3])
    fx.case("cpy i32 permuted 0213", "cpy", [s], v.astype(np.int64).copy(), 0, 0, dst_type="i32")
    # cont / cast
    s = Src(randn(4, 3, 7))
    v = s.permute([0, 2, 1, 3])
    fx.case("cont f32 permuted 0213", "cont", [s], v.copy(), 0, 0)
    s = Src(randn(4, 3, 7), "f16")
    v = s.permute([0, 3, 1, 2])
    fx.case("cont f16 permuted 0312", "cont", [s], v.copy(), 0, 0)
    # a transpose of the two inner dims written as the view [1, B, A, N] of [A, B, N] (rows of
    # single elements: the cpu copies them as a tiled transpose; the UNet's tokens <-> NCHW)
    for A, B, N in [(70, 45, 2), (5, 33, 1), (64, 1, 3)]:
        s = Src(randn(N, B, A))
        v = s.view([1, B, A, N], [4, 4 * A, 4, 4 * A * B], 0)
        fx.case(f"cont f32 transpose view [1,{B},{A},{N}]", "cont", [s], v.copy(), 0, 0)
    s = Src(randn(4, 9, 3))
    fx.case("cast f32->f16", "cast", [s], nm.f16_round(s.exact), 0, 0, dst_type="f16")
    s = Src(randn(4, 9, 3), "f16")
    fx.case("cast f16->f32", "cast", [s], s.exact, 0, 0, dst_type="f32")
    # copy into a view of a KV cache: k cache f16 [D, Nmax], new keys at positions p..p+n-1
    D, nmax, n, p = 16, 12, 3, 5
    knew = Src(randn(n, D))
    cache = Src(randn(nmax, D), "f16")
    cache.view([D, n], [2, 2 * D], 2 * D * p)
    out = cache.exact.copy()
    out[p:p + n] = nm.f16_round(knew.exact)
    fx.case("cpy f32 into f16 k-cache view", "cpy", [knew, cache], out, 0, 0, result_src=1)
    # transposed v cache [Nmax, D] (time innermost): new values given as [n, D]
    vnew = Src(randn(D, n))
    cache = Src(randn(D, nmax), "f16")
    cache.view([n, D], [2, 2 * nmax], 2 * p)
    out = cache.exact.copy()
    out[:, p:p + n] = nm.f16_round(vnew.exact)
    fx.case("cpy f32 into transposed f16 v-cache view", "cpy", [vnew, cache], out, 0, 0, result_src=1)
    # f32 destination view with 3 dims, permuted source
    src = Src(randn(2, 3, 4))  # ggml [4, 3, 2]
    sv = src.permute([0, 2, 1, 3])  # ggml [4, 2, 3]
    dst = Src(randn(3, 5, 4))  # ggml [4, 5, 3]
    dst.view([4, 2, 3], [4, 16, 80], 16 * 2)
    out = dst.exact.copy()
    out[:, 2:4, :] = sv[0]
    fx.case("cpy f32 permuted into f32 3-d view", "cpy", [src, dst], out, 0, 0, result_src=1)


def binary_cases(fx):
    shape = (2, 3, 5, 7)  # ggml [7, 5, 3, 2]
    a = randn(*shape)
    for bshape in [(1, 1, 1, 7), (1, 1, 5, 1), (1, 3, 1, 1), (2, 1, 1, 1), shape, (1, 1, 1, 1), (1, 3, 1, 7),
                   (2, 1, 5, 1)]:
        b = randn(*bshape)
        sa, sb = Src(a), Src(b)
        ne = "x".join(map(str, reversed(bshape)))
        fx.case(f"add b[{ne}]", "add", [sa, sb], R.add(sa.exact, sb.exact), 0, 1e-6)
        # one correctly rounded F32 operation per element: relative to the result
        fx.case(f"mul b[{ne}]", "mul", [sa, sb], R.mul(sa.exact, sb.exact), 0, 1e-6)
    # add with cancellation: rounding relative to the operands, not the result
    x = randn(4, 33)
    y = (-x + randn(4, 33, scale=1e-3)).astype(np.float32)
    sa, sb = Src(x), Src(y)
    fx.case("add cancellation", "add", [sa, sb], R.add(sa.exact, sb.exact), 0, 1e-6)
    for s_, b_ in [(0.125, 0.0), (-3.0, 1.5), (1.0, -0.25)]:
        sa = Src(randn(3, 5, 11, scale=2))
        exp = R.scale(sa.exact, s_, b_)
        atol = 2 * EPS * (np.max(np.abs(sa.exact * s_)) + abs(b_))
        fx.case(f"scale s={s_} bias={b_}", "scale", [sa], exp, atol, 1e-6, s=s_, bias=b_)


def norm_cases(fx):
    for shape, eps, off in [((3, 4096), 1e-5, 0.0), ((5, 37), 1e-6, 0.0), ((2, 3, 64), 1e-5, 0.5), ((1, 1), 1e-5, 0)]:
        sa = Src(randn(*shape) + off)
        fx.case(f"rms_norm [{','.join(map(str, reversed(shape)))}] eps={eps}", "rms_norm", [sa],
                R.rms_norm(sa.exact, eps), 1e-6, 1e-5, eps=eps)
    for shape, eps, off in [((3, 1024), 1e-5, 0.0), ((5, 37), 1e-6, 4.0), ((2, 3, 64), 1e-5, 0.0), ((2, 2), 1e-5, 0.0)]:
        sa = Src(randn(*shape) + off)
        fx.case(f"layer_norm [{','.join(map(str, reversed(shape)))}] offset={off}", "layer_norm", [sa],
                R.layer_norm(sa.exact, eps), 2e-6, 2e-5, eps=eps)
    for shape, g in [((2, 8, 3, 5), 4), ((1, 6, 2, 7), 1), ((2, 6, 4, 3), 6), ((1, 32, 8, 8), 32), ((1, 16, 9, 11), 8)]:
        sa = Src(randn(*shape) * 2 + 1)
        fx.case(f"group_norm [{','.join(map(str, reversed(shape)))}] groups={g}", "group_norm", [sa],
                R.group_norm(sa.exact, g, 1e-5), 2e-6, 2e-5, n_groups=g, eps=1e-5)
    # the fused affine + SiLU variant (UNet/VAE resnets), on NCHW [W, H, C, N] with N = 2
    for shape, g, aff, silu in [((2, 64, 5, 6), 32, "wb", 1), ((2, 64, 5, 6), 32, "wb", 0), ((1, 12, 4, 3), 3, "w", 1),
                                ((2, 8, 3, 5), 4, "b", 0), ((2, 8, 3, 5), 2, "", 1), ((1, 32, 9, 9), 8, "wb", 1)]:
        sa = Src(randn(*shape) * 2 + 1)
        c = shape[1]
        srcs, w, b, mask = [sa], None, None, 0
        if "w" in aff:
            sw = Src(randn(c, scale=1.5))
            srcs.append(sw)
            w = sw.exact
            mask |= 1 << (len(srcs) - 1)
        if "b" in aff:
            sb = Src(randn(c))
            srcs.append(sb)
            b = sb.exact
            mask |= 1 << (len(srcs) - 1)
        amax = float(np.max(np.abs(w))) if w is not None else 1.0
        fx.case(f"group_norm_affine [{','.join(map(str, reversed(shape)))}] groups={g} {aff or 'none'} silu={silu}",
                "group_norm_affine", srcs, R.group_norm_affine(sa.exact, g, 1e-6, w, b, silu), 4e-6 * amax, 2e-5,
                weights=mask, n_groups=g, eps=1e-6, silu=silu, has_w=int(w is not None), has_b=int(b is not None))


def softmax_cases(fx):
    def add_case(name, a, mask, scale, causal):
        sa = Src(a)
        srcs = [sa]
        m = None
        if mask is not None:
            sm = Src(mask)
            srcs.append(sm)
            m = sm.exact
        exp = R.softmax(sa.exact, m, scale, causal)
        fx.case(name, "softmax", srcs, exp, 1e-6, 1e-5, scale=scale, causal=int(causal))

    add_case("softmax [37,5]", randn(5, 37), None, 1.0, False)
    add_case("softmax [1000,3] scale=0.125 large", randn(3, 1000, scale=80), None, 0.125, False)
    add_case("softmax [1,4]", randn(4, 1), None, 1.0, False)
    mask = randn(6, 9)
    mask[mask < -0.5] = -np.inf
    mask[3, :] = -np.inf  # a fully masked row -> zeros
    add_case("softmax mask [9,6] with -inf and a dead row", randn(2, 6, 9), mask, 0.5, False)
    add_case("softmax mask per-head [9,6,2]", randn(2, 6, 9), randn(2, 6, 9), 1.0, False)
    add_case("softmax causal [8,8,2,2]", randn(2, 2, 8, 8), None, 1.0, True)
    add_case("softmax causal Nq<Nk [10,3,2]", randn(2, 3, 10), None, 0.3, True)
    add_case("softmax causal Nq<Nk + mask [17,5]", randn(5, 17, scale=3), randn(5, 17), 0.7, True)


def rope_cases(fx):
    def add_case(name, shape, n_dims, mode, base, fscale, pos):
        sa = Src(randn(*shape))
        sp = Src(np.asarray(pos, np.int32), "i32")
        exp = R.rope(sa.exact, pos, n_dims, mode, base, fscale)
        # angle error of an F32 implementation grows with |pos| (freq rounded to ~16 ulp)
        amax = float(np.max(np.abs(sa.exact)))
        atol = 2e-6 * amax + 1e-6 * max(abs(p) for p in pos) * fscale * amax * 1.5
        fx.case(name, "rope", [sa, sp], exp, atol, 1e-5, n_dims=n_dims, mode=mode, freq_base=base,
                freq_scale=fscale)

    add_case("rope interleaved D=64 H=4 T=5", (1, 5, 4, 64), 64, 0, 10000.0, 1.0, [0, 1, 2, 3, 4])
    add_case("rope neox D=64 H=4 T=5", (1, 5, 4, 64), 64, 2, 10000.0, 1.0, [0, 1, 2, 3, 4])
    add_case("rope interleaved n_dims=32 D=64", (1, 3, 2, 64), 32, 0, 10000.0, 1.0, [7, 0, 19])
    add_case("rope neox n_dims=32 D=64", (1, 3, 2, 64), 32, 2, 10000.0, 1.0, [7, 0, 19])
    add_case("rope interleaved D=128 large pos", (1, 5, 2, 128), 128, 0, 10000.0, 1.0, [4000, 4095, 1, 0, 3999])
    add_case("rope neox D=128 large pos", (1, 5, 2, 128), 128, 2, 10000.0, 1.0, [4000, 4095, 1, 0, 3999])
    add_case("rope interleaved B=2 freq_scale=0.5 base=500000", (2, 3, 3, 32), 32, 0, 500000.0, 0.5, [10, 11, 12])
    add_case("rope neox n_dims=16 D=40 B=2", (2, 4, 3, 40), 16, 2, 10000.0, 1.0, [3, 2, 1, 100])


def unary_cases(fx):
    special = np.array([0.0, 1e-7, -1e-7, 1e-3, -1e-3, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0, 8.0, -8.0, 20.0, -20.0,
                        30.0, -30.0, 60.0, -60.0, 100.0, -100.0], np.float32)
    x = np.concatenate([special, randn(3 * 64 - len(special), scale=3)]).reshape(3, 64)
    for op, nm_ in enumerate(R.UNARY_NAMES):
        sa = Src(x)
        fx.case(f"unary {nm_}", "unary", [sa], R.unary(sa.exact, op), 1e-6, 1e-5, unary_op=op)
    sa = Src(randn(2, 3, 1001, scale=2))
    fx.case("unary gelu [1001,3,2]", "unary", [sa], R.unary(sa.exact, 1), 1e-6, 1e-5, unary_op=1)


def snake_glu_cases(fx):
    for T, C, B in [(50, 6, 2), (1, 3, 1), (257, 16, 1)]:
        sa = Src(randn(B, C, T, scale=2))
        al = Src(uniform(0.05, 2.0, C).reshape(1, C))
        exp = R.snake(sa.exact, al.exact.reshape(-1))
        fx.case(f"snake [{T},{C},{B}]", "snake", [sa, al], exp, 2e-6, 1e-5)
    for shape in [(3, 5, 16), (1, 2), (2, 7, 130)]:
        sa = Src(randn(*shape, scale=2))
        fx.case(f"glu [{','.join(map(str, reversed(shape)))}]", "glu", [sa], R.glu(sa.exact), 1e-6, 1e-5)
    # GEGLU (diffusers' feed-forward): the gate's gelu is exact (erf); shapes as [2*ff, tokens, batch]
    for shape in [(3, 5, 16), (1, 2), (2, 7, 130), (2, 19, 2 * 160)]:
        sa = Src(randn(*shape, scale=2))
        # GLSL has no erf: its approximation (abs error <= 1.5e-7) is scaled by |gate| |hidden| / 2
        n = shape[-1] // 2
        hg = np.abs(sa.exact[..., :n]) * np.abs(sa.exact[..., n:])
        fx.case(f"geglu [{','.join(map(str, reversed(shape)))}]", "geglu", [sa], R.geglu(sa.exact),
                1e-6 + 1e-7 * float(hg.max()), 1e-5)


def mul_mat_tol(a, b, ttype):
    """(atol, rtol) for R.mul_mat(a, b) where a holds exact weight values of type ttype."""
    absprod = R.mul_mat(np.abs(a), np.abs(b))
    atol = dot_tol(absprod)
    if ttype in ("q8_0", "q4_0"):
        a4, b4 = R.as4(a), R.as4(b)
        r3, r2 = b4.shape[0] // a4.shape[0], b4.shape[1] // a4.shape[1]
        worst = 0.0
        for i3 in range(b4.shape[0]):
            for i2 in range(b4.shape[1]):
                w = a4[i3 // r3, i2 // r2]
                x = b4[i3, i2]
                bound = nm.q8_activation_bound(w, x)
                # the bound must cover what a ggml-style kernel really gets on this data
                actual = np.abs(nm.q8_activation_product(w, x) - x @ w.T)
                worst = max(worst, float(bound.max()), 1.5 * float(actual.max()))
        atol += worst
    return atol, 1e-6


def mul_mat_cases(fx):
    def add_case(name, ttype, a_shape, b_shape, a_scale=1.0):
        sa = Src(randn(*a_shape, scale=a_scale), ttype)
        sb = Src(randn(*b_shape))
        exp = R.mul_mat(sa.exact, sb.exact)
        atol, rtol = mul_mat_tol(sa.exact, sb.exact, ttype)
        fx.case(name, "mul_mat", [sa, sb], exp, atol, rtol, weights=1)

    for t in ("f32", "f16", "q8_0", "q4_0"):
        ks = [32, 96, 4128] + ([33, 100] if t in ("f32", "f16") else [])
        for K in ks:
            for N in (1, 37):
                for M in (1, 7, 65):
                    if K == 4128 and M == 65 and N == 1:
                        continue  # keep the fixture small; N=37 covers the batched large-K path
                    add_case(f"mul_mat {t} K={K} N={N} M={M}", t, (N, K), (M, K))
        # broadcast over dims 2 and 3
        add_case(f"mul_mat {t} broadcast a[64,5,2,3] b[64,3,4,3]", t, (3, 2, 5, 64), (3, 4, 3, 64))
        add_case(f"mul_mat {t} broadcast a[64,5,1,1] b[64,2,3,2]", t, (1, 1, 5, 64), (2, 3, 2, 64))
    # wider tiles: N and M beyond one GPU tile, both odd
    add_case("mul_mat f32 K=96 N=129 M=67", "f32", (129, 96), (67, 96))
    add_case("mul_mat f16 K=256 N=130 M=33", "f16", (130, 256), (33, 256))
    add_case("mul_mat q8_0 K=256 N=129 M=67", "q8_0", (129, 256), (67, 256))
    add_case("mul_mat q4_0 K=512 N=131 M=20", "q4_0", (131, 512), (20, 512))
    # whole row groups of 16 (the cpu backend packs such weights for its matmul kernels), from
    # decode's single row to GEMM tiles with a ragged last one
    for t in ("q8_0", "q4_0"):
        for M in (1, 3, 5, 9, 70):
            add_case(f"mul_mat {t} K=320 N=48 M={M}", t, (48, 320), (M, 320))


def conv1d_cases(fx):
    def add_case(name, T, cin, cout, K, stride, dil, groups, B=1, wtype="f32"):
        sx = Src(randn(B, cin, T))
        sw = Src(randn(cout, cin // groups, K, scale=1.0 / math.sqrt(cin // groups * K)), wtype)
        exp = R.conv1d(sx.exact, sw.exact, stride, dil, groups)
        absprod = R.conv1d(np.abs(sx.exact), np.abs(sw.exact), stride, dil, groups)
        fx.case(name, "conv1d", [sx, sw], exp, dot_tol(absprod), 1e-6, weights=2, stride=stride, dilation=dil,
                groups=groups)

    add_case("conv1d k=1 pointwise", 11, 8, 5, 1, 1, 1, 1, B=2)
    add_case("conv1d k=3", 20, 5, 6, 3, 1, 1, 1, B=2)
    add_case("conv1d k=7 dilation=3", 40, 4, 4, 7, 1, 3, 1)
    add_case("conv1d k=16 stride=8", 64, 6, 12, 16, 8, 1, 1)
    add_case("conv1d k=4 stride=2 f16", 31, 6, 8, 4, 2, 1, 1, wtype="f16")
    add_case("conv1d depthwise groups=8 k=7", 30, 8, 8, 7, 1, 1, 8, B=2)
    add_case("conv1d groups=2 k=3", 15, 6, 4, 3, 1, 1, 2)
    add_case("conv1d groups=2 k=3 stride=2 dilation=2", 17, 6, 4, 3, 2, 2, 2)
    add_case("conv1d minimal T=span k=7 dil=2", 13, 3, 4, 7, 1, 2, 1)
    add_case("conv1d minimal T=span+stride-1 k=16 s=8", 23, 3, 4, 16, 8, 1, 1)
    add_case("conv1d T=1 k=1", 1, 5, 3, 1, 1, 1, 1)
    add_case("conv1d Cin=128 Cout=64 k=3", 50, 128, 64, 3, 1, 1, 1, wtype="f16")


def conv_t_cases(fx):
    def add_case(name, T, cin, cout, K, stride, B=1, wtype="f32"):
        sx = Src(randn(B, cin, T))
        sw = Src(randn(cin, cout, K, scale=1.0 / math.sqrt(cin)), wtype)
        exp = R.conv_transpose1d(sx.exact, sw.exact, stride)
        absprod = R.conv_transpose1d(np.abs(sx.exact), np.abs(sw.exact), stride)
        fx.case(name, "conv_transpose1d", [sx, sw], exp, dot_tol(absprod), 1e-6, weights=2, stride=stride)

    add_case("conv_transpose1d s=2 k=4", 7, 6, 4, 4, 2, B=2)
    add_case("conv_transpose1d s=5 k=10", 5, 4, 3, 10, 5)
    add_case("conv_transpose1d s=8 k=16", 6, 8, 4, 16, 8)
    add_case("conv_transpose1d s=8 k=16 T=1", 1, 8, 4, 16, 8)
    add_case("conv_transpose1d s=3 k=2 (k<s)", 5, 3, 2, 2, 3)
    add_case("conv_transpose1d s=4 k=8 Cin=64 Cout=32 f16", 9, 64, 32, 8, 4, wtype="f16")


def conv2d_cases(fx):
    def add_case(name, N, cin, H, W, cout, KH, KW, s0, s1, p0, p1, d0, d1, wtype="f32"):
        sx = Src(randn(N, cin, H, W))
        sw = Src(randn(cout, cin, KH, KW, scale=1.0 / math.sqrt(cin * KH * KW)), wtype)
        args = (s0, s1, p0, p1, d0, d1)
        exp = R.conv2d(sx.exact, sw.exact, *args)
        absprod = R.conv2d(np.abs(sx.exact), np.abs(sw.exact), *args)
        fx.case(name, "conv2d", [sx, sw], exp, dot_tol(absprod), 1e-6, weights=2, s0=s0, s1=s1, p0=p0, p1=p1,
                d0=d0, d1=d1)

    add_case("conv2d 3x3 s1 p1", 2, 3, 7, 9, 4, 3, 3, 1, 1, 1, 1, 1, 1)
    add_case("conv2d 3x3 s2 p1", 1, 4, 9, 8, 5, 3, 3, 2, 2, 1, 1, 1, 1)
    add_case("conv2d 1x1", 2, 6, 5, 4, 3, 1, 1, 1, 1, 0, 0, 1, 1)
    add_case("conv2d 3x3 dilation 2 p2", 1, 3, 10, 11, 2, 3, 3, 1, 1, 2, 2, 2, 2)
    add_case("conv2d 3x3 s0=2 s1=1 p0=0 p1=1", 1, 2, 6, 9, 3, 3, 3, 2, 1, 0, 1, 1, 1)
    add_case("conv2d 3x3 Cin=32 Cout=16 f16", 1, 32, 10, 12, 16, 3, 3, 1, 1, 1, 1, 1, 1, wtype="f16")
    add_case("conv2d 14x14 s14 patch embed", 1, 3, 28, 42, 8, 14, 14, 14, 14, 0, 0, 1, 1)
    # one image whose column tiles start inside an output row (threads split its positions)
    add_case("conv2d 3x3 s1 p1 odd width", 1, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1, 1, 1)
    add_case("conv2d 3x3 s0=2 p0=2 d0=2 odd width", 1, 4, 9, 13, 3, 3, 3, 2, 1, 2, 0, 2, 1)
    # big enough for the cpu's Winograd F(2x2,3x3) path (3x3, stride 1, pad 1, >= 256 pixels,
    # >= 16 channels): odd sides (clipped edge tiles), two images, f16 weights
    add_case("conv2d 3x3 s1 p1 17x19 Cin=16 Cout=24 (winograd)", 1, 16, 17, 19, 24, 3, 3, 1, 1, 1, 1, 1, 1)
    add_case("conv2d 3x3 s1 p1 16x20 N=2 Cin=32 Cout=16 f16 (winograd)", 2, 32, 16, 20, 16, 3, 3, 1, 1, 1, 1, 1, 1,
             wtype="f16")
    add_case("conv2d 3x3 s1 p1 257x1 Cin=16 Cout=16 (winograd, one column)", 1, 16, 257, 1, 16, 3, 3, 1, 1, 1, 1, 1, 1)
    add_case("conv2d 3x3 s1 p1 129x2 Cin=16 Cout=16 (winograd, two columns)", 1, 16, 129, 2, 16, 3, 3, 1, 1, 1, 1, 1, 1)


def data_movement_cases(fx):
    a = randn(2, 3, 5, 7)  # ggml [7, 5, 3, 2]
    for (l0, r0, l1, r1, mode) in [(2, 3, 1, 0, 0), (0, 0, 2, 2, 0), (6, 6, 0, 0, 1), (3, 1, 4, 2, 1), (1, 2, 0, 0, 1)]:
        sa = Src(a)
        fx.case(f"pad {'reflect' if mode else 'zero'} ({l0},{r0},{l1},{r1})", "pad", [sa],
                R.pad(sa.exact, l0, r0, l1, r1, mode), 0, 0, l0=l0, r0=r0, l1=l1, r1=r1, mode=mode)
    sa = Src(randn(3, 4, 20))
    fx.case("pad reflect (19,19) [20,4,3]", "pad", [sa], R.pad(sa.exact, 19, 19, 0, 0, 1), 0, 0, l0=19, r0=19,
            l1=0, r1=0, mode=1)
    for f0, f1, shape in [(2, 1, (3, 5)), (2, 2, (2, 3, 4, 5)), (3, 2, (1, 4, 3)), (1, 4, (2, 3))]:
        sa = Src(randn(*shape))
        fx.case(f"upsample f0={f0} f1={f1}", "upsample", [sa], R.upsample(sa.exact, f0, f1), 0, 0, f0=f0, f1=f1)
    for t, D in [("f32", 37), ("f16", 37), ("q8_0", 64), ("q4_0", 96)]:
        st = Src(randn(50, D), t)
        ids = np.array([3, 0, 49, 3, 3, 17, 48, 1], np.int32)
        si = Src(ids, "i32")
        fx.case(f"get_rows {t} D={D}", "get_rows", [st, si], R.get_rows(st.exact, ids), 0, 0, weights=1)
    for bad in (50, -1):  # ids out of range: the cpu backend must refuse at compute time
        st = Src(randn(50, 32))
        ids = np.array([0, bad, 1], np.int32)
        fx.case(f"get_rows id {bad} out of range (error expected)", "get_rows", [st, Src(ids, "i32")],
                np.zeros((3, 32), np.float32), 0, 0, weights=1, expect_error=1)
    st = Src(randn(1000, 128), "q8_0")
    ids = np.array([999], np.int32)
    fx.case("get_rows q8_0 one id", "get_rows", [st, Src(ids, "i32")], R.get_rows(st.exact, ids), 0, 0, weights=1)
    base = (2, 3, 4, 5)
    for dim in range(4):
        bs = list(base)
        bs[3 - dim] = 2
        sa, sb = Src(randn(*base)), Src(randn(*bs))
        fx.case(f"concat dim={dim}", "concat", [sa, sb], R.concat(sa.exact, sb.exact, dim), 0, 0, dim=dim)


def lstm_cases(fx):
    for H, T, rev, wt in [(8, 1, 0, "f32"), (8, 37, 1, "f32"), (64, 37, 0, "f32"), (64, 37, 1, "f16"),
                          (64, 1, 1, "f16"), (8, 37, 0, "f16")]:
        sg = Src(randn(T, 4 * H, scale=1.0))
        sw = Src(randn(4 * H, H, scale=1.0 / math.sqrt(H)), wt)
        exp = R.lstm(sg.exact, sw.exact, rev)
        fx.case(f"lstm H={H} T={T} {'reverse' if rev else 'forward'} whh {wt}", "lstm", [sg, sw], exp, 2e-6, 1e-5,
                weights=2, reverse=rev)
    # a whole layer (mul_mat + add + lstm), as SEANet's BiLSTM halves use it
    H, T, cin = 16, 9, 12
    sx = Src(randn(T, cin))
    swi = Src(randn(4 * H, cin, scale=0.3))
    swh = Src(randn(4 * H, H, scale=0.25))
    sbi, sbh = Src(randn(4 * H, scale=0.1)), Src(randn(4 * H, scale=0.1))
    gx = sx.exact @ swi.exact.T + sbi.exact + sbh.exact
    for rev in (0, 1):
        exp = R.lstm(gx, swh.exact, rev)
        fx.case(f"lstm_layer H={H} T={T} Cin={cin} {'reverse' if rev else 'forward'}", "lstm_layer",
                [sx, swi, swh, sbi, sbh], exp, 2e-6, 1e-5, weights=2 | 4 | 8 | 16, reverse=rev)


def vq_cases(fx):
    for D, K, T in [(32, 16, 10), (128, 1024, 12), (1024, 128, 6), (256, 1024, 16)]:
        cb = randn(K, D)
        # exact ties: duplicated codewords; row 0 is nearest to a pair whose copy sits at the lower
        # index, row 2 to a pair whose original does; the lowest index must win both times
        lo0, hi0, lo2, hi2 = 1, K // 2 + 1, 3, K - 2
        cb[lo0] = cb[hi0]
        cb[hi2] = cb[lo2]
        x = np.empty((T, D), np.float32)
        for t in range(T):
            while True:
                if t == 0 or t == 2:
                    x[t] = cb[hi0 if t == 0 else lo2] + randn(D, scale=0.3)
                elif t % 2 == 0:
                    x[t] = cb[rng.integers(K)] + randn(D, scale=0.3)
                else:
                    x[t] = randn(D)
                _, dist = R.vq_argmin(x[t:t + 1], cb)
                d = np.sort(dist[0])
                gap = 2 if t in (0, 2) else 1  # the runner-up after the exact tie must be clear
                if d[gap] - d[gap - 1] > 1e-4 * d[0] + 1e-3 and (t not in (0, 2) or d[1] == d[0]):
                    break
        sx, sc = Src(x), Src(cb)
        idx, dist = R.vq_argmin(sx.exact, sc.exact)
        assert idx[0] == lo0 and idx[2] == lo2
        fx.case(f"vq_argmin D={D} K={K} T={T} (ties)", "vq_argmin", [sx, sc], idx.astype(np.int64), 0, 0)


def attention_tol(q, k, v, scale):
    """Scores carry F32 rounding of about eps * scale * sum_d |q_d k_d| (a few ulp); a relative
    error e in a softmax weight moves the output by at most e * max|v|."""
    q, k = R.as4(q)[0], R.as4(k)[0]
    rep = q.shape[0] // k.shape[0]
    sabs = max(float((np.abs(q[h]) @ np.abs(k[h // rep]).T).max()) for h in range(q.shape[0])) * abs(scale)
    vmax = float(np.max(np.abs(v)))
    return 1e-7 + 8 * EPS * (sabs + 4) * vmax


def attention_cases(fx):
    def add_case(name, D, Dv, Nq, Nk, H, Hkv, scale, causal, mask=None, kvtype="f32"):
        sq = Src(randn(H, Nq, D))
        sk = Src(randn(Hkv, Nk, D), kvtype)
        sv = Src(randn(Hkv, Nk, Dv), kvtype)
        srcs = [sq, sk, sv]
        m = None
        if mask is not None:
            sm = Src(mask)
            srcs.append(sm)
            m = sm.exact
        exp = R.attention(sq.exact, sk.exact, sv.exact, m, scale, causal)
        atol = attention_tol(sq.exact, sk.exact, sv.exact, scale)
        fx.case(name, "attention", srcs, exp, atol, 1e-5, scale=scale, causal=int(causal))

    add_case("attention D=64 Nq=7 Nk=13 H=2", 64, 64, 7, 13, 2, 2, 0.125, False)
    add_case("attention D=128 Nq=Nk=5 causal", 128, 128, 5, 5, 1, 1, 1 / math.sqrt(128), True)
    add_case("attention GQA H=8 Hkv=2 Nq=3 Nk=11 causal", 64, 64, 3, 11, 8, 2, 0.125, True)
    mask = randn(9, 9)
    mask[mask < -1.0] = -np.inf
    np.fill_diagonal(mask, 0.0)  # every query keeps at least one key
    add_case("attention mask D=64 Nq=Nk=9 H=2", 64, 64, 9, 9, 2, 2, 0.125, False, mask=mask)
    add_case("attention causal + mask Nq=4 Nk=10", 64, 64, 4, 10, 2, 1, 0.125, True, mask=randn(4, 10))
    add_case("attention f16 kv D=128 Nq=1 Nk=33 H=4", 128, 128, 1, 33, 4, 4, 1 / math.sqrt(128), False, kvtype="f16")
    add_case("attention f16 kv GQA D=64 Nq=5 Nk=19 H=8 Hkv=2 causal", 64, 64, 5, 19, 8, 2, 0.125, True,
             kvtype="f16")
    add_case("attention Dv=32 D=64 Nq=6 Nk=7", 64, 32, 6, 7, 3, 1, 0.125, False)
    # decoding (Nq <= 4: the direct path) over several key tiles of 256, so the running max and
    # sum are rescaled; V rows summed in register chunks (64 or 128 floats) plus a tail
    add_case("attention f16 kv decode GQA D=128 Nq=1 Nk=600 H=4 Hkv=2 causal", 128, 128, 1, 600, 4, 2,
             1 / math.sqrt(128), True, kvtype="f16")
    add_case("attention f16 kv decode Dv=136 D=64 Nq=2 Nk=300 H=2 + mask", 64, 136, 2, 300, 2, 1, 0.125, False,
             mask=randn(2, 300), kvtype="f16")
    add_case("attention Nq=Nk=1", 64, 64, 1, 1, 2, 2, 0.125, False)
    add_case("attention D=64 H=2 Nq=70 Nk=130", 64, 64, 70, 130, 2, 2, 0.125, False)
    add_case("attention D=64 H=2 Nq=70 Nk=130 causal", 64, 64, 70, 130, 2, 2, 0.125, True)
    add_case("attention D=88 (EVA-ViT-g) H=2 Nq=33 Nk=257", 88, 88, 33, 257, 2, 2, 1 / math.sqrt(88), False)

    # strided views of a fused QKV projection [D*(H+2Hkv), N]
    D, H, Hkv, N = 64, 4, 2, 10
    row = D * (H + 2 * Hkv)
    qkv = Src(randn(N, row))
    q = qkv.view([D, N, H], [4, 4 * row, 4 * D], 0)
    k = ViewOf(0, qkv, [D, N, Hkv], [4, 4 * row, 4 * D], 4 * D * H)
    v = ViewOf(0, qkv, [D, N, Hkv], [4, 4 * row, 4 * D], 4 * D * (H + Hkv))
    exp = R.attention(q, k.exact, v.exact, None, 0.125, True)
    fx.case("attention fused qkv views H=4 Hkv=2 N=10 causal", "attention", [qkv, k, v], exp,
            attention_tol(q, k.exact, v.exact, 0.125), 1e-5, scale=0.125, causal=1)
    # the UNet's cross-attention: heads are strided views of [H*D, tokens] projections (head
    # stride D, token stride H*D), 77 context keys, SD 2.1's 5 heads of 64
    D, H, Nq, Nk = 64, 5, 96, 77
    sq = Src(randn(Nq, H * D))
    q = sq.view([D, Nq, H], [4, 4 * H * D, 4 * D], 0)
    sk, sv = Src(randn(Nk, H * D)), Src(randn(Nk, H * D))
    k = sk.view([D, Nk, H], [4, 4 * H * D, 4 * D], 0)
    v = sv.view([D, Nk, H], [4, 4 * H * D, 4 * D], 0)
    exp = R.attention(q, k, v, None, 0.125, False)
    fx.case("attention cross D=64 H=5 Nq=96 Nk=77 strided heads", "attention", [sq, sk, sv], exp,
            attention_tol(q, k, v, 0.125), 1e-5, scale=0.125, causal=0)
    # f16 KV cache [D, Nmax, Hkv] of which the first Nk positions are used
    D, H, Hkv, nmax, Nk, Nq = 64, 8, 2, 40, 23, 4
    sq = Src(randn(H, Nq, D))
    kc = Src(randn(Hkv, nmax, D), "f16")
    vc = Src(randn(Hkv, nmax, D), "f16")
    kv_ = kc.view([D, Nk, Hkv], [2, 2 * D, 2 * D * nmax], 0)
    vv_ = vc.view([D, Nk, Hkv], [2, 2 * D, 2 * D * nmax], 0)
    exp = R.attention(sq.exact, kv_, vv_, None, 0.125, True)
    fx.case("attention f16 kv-cache views Nq=4 Nk=23 of 40 GQA causal", "attention", [sq, kc, vc], exp,
            attention_tol(sq.exact, kv_, vv_, 0.125), 1e-5, scale=0.125, causal=1)
    # the long case is generated and checked in C (sampled rows against a double-precision
    # reference) so the fixture stays small
    fx.case("attention long Nq=Nk=9216 D=64 H=1 (C reference, sampled rows)", "attention_long", [],
            np.zeros(1, np.float32), 1e-5, 1e-5, n=9216, d=64, seed=1234, samples=12)
    fx.case("attention long keys Nq=16 Nk=9216 D=64 H=1 (C reference, all rows)", "attention_long", [],
            np.zeros(1, np.float32), 1e-5, 1e-5, n=9216, nq=16, d=64, seed=99, samples=16)


def argmax_cases(fx):
    for N, M in [(100, 7), (40000, 2), (1, 3), (3000, 5)]:
        a = randn(M, N)
        # ties: copies of the maximum placed before and after it
        for m in range(M):
            if N < 3:
                continue
            j = int(np.argmax(a[m]))
            if m % 2 == 0:
                a[m, (j + N // 2) % N] = a[m, j]
            else:
                a[m, 0 if j else N - 1] = a[m, j]
        sa = Src(a)
        fx.case(f"argmax [{N},{M}] (ties)", "argmax", [sa], R.argmax(sa.exact).astype(np.int64), 0, 0)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: op_cases.py OUTPUT.gguf")
    fx = Fixture()
    for gen in (cpy_cases, binary_cases, norm_cases, softmax_cases, rope_cases, unary_cases, snake_glu_cases,
                mul_mat_cases, conv1d_cases, conv_t_cases, conv2d_cases, data_movement_cases, lstm_cases, vq_cases,
                attention_cases, argmax_cases):
        gen(fx)
    fx.write(sys.argv[1])
    print(f"{fx.n} cases, {fx.bytes / 1e6:.1f} MB of tensors -> {sys.argv[1]}")


if __name__ == "__main__":
    main()

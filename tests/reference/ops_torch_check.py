#!/usr/bin/env python3
"""Second opinion on the numpy reference (ops_ref.py): the ops whose index conventions are easy
to get wrong are recomputed with torch.nn.functional (float64) and must agree to 1e-10.
Also decodes the Q8_0/Q4_0 bytes written by ops_numeric independently of the packer.
Exits 77 (meson: skipped) when torch is not installed."""

import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ops_numeric as nm  # noqa: E402
import ops_ref as R  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("# torch not available: SKIP")
    sys.exit(77)

rng = np.random.default_rng(7)
passed = failed = 0


def check(name, ours, theirs, tol=1e-10):
    global passed, failed
    ours = np.asarray(ours, np.float64)
    theirs = np.asarray(theirs, np.float64)
    if ours.shape != theirs.shape:
        print(f"not ok {name}: shape {ours.shape} vs torch {theirs.shape}")
        failed += 1
        return
    err = float(np.max(np.abs(ours - theirs))) if ours.size else 0.0
    if err <= tol * max(1.0, float(np.max(np.abs(theirs)))):
        print(f"ok {name} (max diff {err:.1e})")
        passed += 1
    else:
        print(f"not ok {name}: max diff {err:.3e}")
        failed += 1


def T(x):
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))


def r(*shape):
    return rng.standard_normal(shape)


# conv1d: numpy (1, B, Cin, T) and weight (1, Cout, Cin/g, K)
for (B, cin, cout, T_, K, s, d, g) in [(2, 6, 4, 20, 3, 2, 2, 2), (1, 8, 8, 30, 7, 1, 3, 8), (1, 5, 7, 40, 16, 8, 1, 1)]:
    x, w = r(B, cin, T_), r(cout, cin // g, K)
    check(f"conv1d s={s} d={d} g={g} k={K}", R.conv1d(x, w, s, d, g)[0],
          F.conv1d(T(x), T(w), stride=s, dilation=d, groups=g).numpy())

# conv_transpose1d: weight (Cin, Cout, K)
for (B, cin, cout, T_, K, s) in [(2, 6, 4, 7, 4, 2), (1, 4, 3, 5, 10, 5), (1, 8, 4, 1, 16, 8), (1, 3, 2, 5, 2, 3)]:
    x, w = r(B, cin, T_), r(cin, cout, K)
    check(f"conv_transpose1d s={s} k={K}", R.conv_transpose1d(x, w, s)[0],
          F.conv_transpose1d(T(x), T(w), stride=s).numpy())

# conv2d: NCHW, weight (Cout, Cin, KH, KW); (s0, p0, d0) are along W
for (s0, s1, p0, p1, d0, d1) in [(1, 1, 1, 1, 1, 1), (2, 1, 0, 1, 1, 1), (1, 2, 2, 1, 2, 1), (2, 2, 1, 1, 1, 1)]:
    x, w = r(2, 3, 9, 11), r(4, 3, 3, 3)
    check(f"conv2d s=({s0},{s1}) p=({p0},{p1}) d=({d0},{d1})", R.conv2d(x, w, s0, s1, p0, p1, d0, d1),
          F.conv2d(T(x), T(w), stride=(s1, s0), padding=(p1, p0), dilation=(d1, d0)).numpy())

# norms
x = r(2, 8, 3, 5)
check("group_norm", R.group_norm(x, 4, 1e-5), F.group_norm(T(x), 4, eps=1e-5).numpy())
gw, gb = r(8), r(8)
check("group_norm affine silu", R.group_norm_affine(x, 4, 1e-6, gw, gb, 1),
      F.silu(F.group_norm(T(x), 4, T(gw), T(gb), eps=1e-6)).numpy())
x = r(3, 37)
check("layer_norm", R.layer_norm(x, 1e-5)[0, 0], F.layer_norm(T(x), (37,), eps=1e-5).numpy())
check("rms_norm", R.rms_norm(x, 1e-6)[0, 0], (T(x) * torch.rsqrt(T(x).pow(2).mean(-1, keepdim=True) + 1e-6)).numpy())

# unary / glu / softmax / pad / upsample
x = np.concatenate([r(50) * 4, [0.0, 1e-7, -30.0, 30.0]])
tt = T(x)
for op, ref in enumerate([F.silu(tt), F.gelu(tt), F.elu(tt), torch.tanh(tt), torch.sigmoid(tt), F.relu(tt)]):
    check(f"unary {R.UNARY_NAMES[op]}", R.unary(x, op).reshape(-1), ref.numpy())
x = r(3, 16)
check("glu", R.glu(x)[0, 0], F.glu(T(x), dim=-1).numpy())
check("geglu", R.geglu(x)[0, 0], (T(x)[..., :8] * F.gelu(T(x)[..., 8:])).numpy())
x, m = r(2, 5, 9), r(5, 9)
check("softmax mask", R.softmax(x, m, 0.5, False)[0], torch.softmax(T(x) * 0.5 + T(m), -1).numpy())
cm = np.where(np.arange(9)[None, :] > np.arange(5)[:, None] + 4, -np.inf, 0.0)
check("softmax causal Nq<Nk", R.softmax(x, None, 1.0, True)[0], torch.softmax(T(x) + T(cm), -1).numpy())
x = r(2, 3, 5, 7)
check("pad reflect", R.pad(x, 3, 1, 4, 2, 1), F.pad(T(x), (3, 1, 4, 2), mode="reflect").numpy())
check("pad zero", R.pad(x, 2, 3, 1, 0, 0), F.pad(T(x), (2, 3, 1, 0)).numpy())
check("upsample nearest", R.upsample(x, 3, 2), F.interpolate(T(x), scale_factor=(2, 3), mode="nearest").numpy())

# lstm: torch.nn.LSTM with zero input weights, the gate inputs given as biases per step
for H, T_, rev in [(8, 5, False), (16, 9, True)]:
    gx, whh = r(T_, 4 * H), r(4 * H, H) / math.sqrt(H)
    cell = torch.nn.LSTMCell(1, H).double()
    with torch.no_grad():
        cell.weight_ih.zero_()
        cell.weight_hh.copy_(T(whh))
        cell.bias_hh.zero_()
    h = torch.zeros(1, H, dtype=torch.float64)
    c = torch.zeros(1, H, dtype=torch.float64)
    out = np.zeros((T_, H))
    for t in (range(T_ - 1, -1, -1) if rev else range(T_)):
        with torch.no_grad():
            cell.bias_ih.copy_(T(gx[t]))
            h, c = cell(torch.zeros(1, 1, dtype=torch.float64), (h, c))
        out[t] = h.numpy()[0]
    check(f"lstm H={H} T={T_} reverse={rev}", R.lstm(gx, whh, rev)[0, 0], out)

# attention: torch softmax(q k^T * scale + bias) v with GQA expanded by repeat_interleave; causal with Nq < Nk
for (D, Nq, Nk, H, Hkv, causal, use_mask) in [(16, 3, 11, 8, 2, True, False), (8, 5, 5, 2, 2, False, True),
                                               (8, 4, 10, 2, 1, True, True)]:
    q, k, v = r(H, Nq, D), r(Hkv, Nk, D), r(Hkv, Nk, D)
    mask = r(Nq, Nk) if use_mask else None
    bias = np.zeros((Nq, Nk)) if mask is None else mask.copy()
    if causal:
        bias = np.where(np.arange(Nk)[None, :] > np.arange(Nq)[:, None] + (Nk - Nq), -np.inf, bias)
    rep = H // Hkv
    kk, vv = T(k).repeat_interleave(rep, dim=0), T(v).repeat_interleave(rep, dim=0)
    ref = torch.softmax(T(q) @ kk.transpose(-1, -2) * 0.3 + T(bias), dim=-1) @ vv
    check(f"attention D={D} Nq={Nq} Nk={Nk} H={H} Hkv={Hkv} causal={causal} mask={use_mask}",
          R.attention(q, k, v, mask, 0.3, causal)[0], ref.numpy().transpose(1, 0, 2))

# mul_mat broadcast: torch.matmul with the weight repeated over dims 2/3
a, b = r(3, 2, 5, 64), r(3, 4, 3, 64)
ta = T(a).repeat_interleave(2, dim=1)
check("mul_mat broadcast", R.mul_mat(a, b), torch.matmul(T(b), ta.transpose(-1, -2)).numpy())

# quantized blocks: decode the written bytes without the packer's bookkeeping
x = (rng.standard_normal((4, 96)) * 3).astype(np.float32)
for t in ("q8_0", "q4_0"):
    raw, deq = nm.encode(x, t)
    check(f"{t} bytes decode to the packer's values", nm.dequantize(raw, t, x.shape), deq, 0.0)
    step = np.abs(x).reshape(-1, 32).max(axis=1) / (127.0 if t == "q8_0" else 8.0)
    err = np.abs(deq - x).reshape(-1, 32).max(axis=1) / step
    # half a step (+ the F16 rounding of d: 127 * 2^-11 steps), except Q4_0's clamp (q <= 15),
    # which may cost a whole step at +8
    lim = (0.5 + 127 / 2048 if t == "q8_0" else 1.0 + 8 / 2048) + 1e-6
    check(f"{t} round-trip error within {lim:.3f} step", np.minimum(err, lim), err, 0.0)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)

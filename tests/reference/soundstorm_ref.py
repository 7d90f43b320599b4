#!/usr/bin/env python3
"""Independent PyTorch SoundStorm (conformer masked LM over SpeechTokenizer RVQ levels 2..8),
written from /work/shared/specs/audio.md section C, with the published key names.

usage:
  soundstorm_ref.py OUTDIR STAMP          tiny random fixtures for tests/soundstorm
  soundstorm_ref.py bench OUTDIR          real-sized random checkpoint + PyTorch timing
  soundstorm_ref.py demo OUT.pt           the tiny random checkpoint (AnyGPT naming, K 1024) only,
                                          for the demo model set (tools/make-demo-models.sh)

Fixtures (OUTDIR):
  anygpt/speechtokenizer_soundstorm_mls.pt   AnyGPT naming (conv.net1 / ds_conv / net2)
  orig/SoundStorm_best_dev.pt                same weights, original naming (conv.net.N)
  fwd.tok.i32 [N][7], fwd.cond.i32 [N], fwd.logits.f32 [N][7][K]   one forward pass
  gen_<case>.{sem.i32 [T], prompt.i32 [P][8], out.i32 [T][8], args.txt}  whole generations
  sched.i32   (steps, N, counts[steps+1]) rows of the cosine mask schedule (float32 as torch)
  with_buffers.pt                            AnyGPT naming plus non-persistent buffers (dropped)
  bad_missing.pt, bad_unknown.pt, bad_shape.pt, bad_trunc.pt   files the converter must refuse

Sampling noise comes from the generator documented in core/include/anygpt/soundstorm.h
(splitmix64, counter based, 24-bit uniforms), re-implemented here so C and PyTorch draw the
same numbers; everything else follows the spec (AnyGPT's generate, quirks included).
"""
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

TINY = dict(dim=32, depth=2, heads=8, dim_head=8, ff_mult=4, conv_exp=2, kernel=31, K=1024, nq=7, sem=1024)
REAL = dict(dim=1024, depth=12, heads=8, dim_head=128, ff_mult=4, conv_exp=2, kernel=31, K=1024, nq=7, sem=1024)
TOPK_THRES = 0.7


# ---- weights in the AnyGPT naming ----

def make_weights(c, gen, std_logit=1.0):
    d, ff, inner, ci = c["dim"], c["dim"] * c["ff_mult"], c["heads"] * c["dim_head"], c["dim"] * c["conv_exp"]

    def rn(*s, scale=1.0):
        return torch.randn(*s, generator=gen) * scale

    def lin(o, i, bias=True):
        w = rn(o, i, scale=1.0 / math.sqrt(i))
        return (w, rn(o, scale=0.1)) if bias else (w, None)

    def ln(n):
        return 1.0 + rn(n, scale=0.1), rn(n, scale=0.1)

    sd = {}
    for l in range(c["depth"]):
        p = f"net.conformer.layers.{l}."
        for ffn in ("ff1", "ff2"):
            sd[p + ffn + ".fn.norm.weight"], sd[p + ffn + ".fn.norm.bias"] = ln(d)
            sd[p + ffn + ".fn.fn.net.0.weight"], sd[p + ffn + ".fn.fn.net.0.bias"] = lin(ff, d)
            sd[p + ffn + ".fn.fn.net.3.weight"], sd[p + ffn + ".fn.fn.net.3.bias"] = lin(d, ff)
        sd[p + "attn.norm.weight"], sd[p + "attn.norm.bias"] = ln(d)
        sd[p + "attn.fn.to_q.weight"] = lin(inner, d, False)[0]
        sd[p + "attn.fn.to_kv.weight"] = lin(2 * inner, d, False)[0]
        sd[p + "attn.fn.to_out.weight"], sd[p + "attn.fn.to_out.bias"] = lin(d, inner)
        sd[p + "conv.net1.0.weight"], sd[p + "conv.net1.0.bias"] = ln(d)
        w, b = lin(2 * ci, d)
        sd[p + "conv.net1.2.weight"], sd[p + "conv.net1.2.bias"] = w[:, :, None], b
        sd[p + "conv.ds_conv.conv.weight"] = rn(ci, 1, c["kernel"], scale=1.0 / math.sqrt(c["kernel"]))
        sd[p + "conv.ds_conv.conv.bias"] = rn(ci, scale=0.1)
        sd[p + "conv.net2.1.gamma"] = 1.0 + rn(1, ci, 1, scale=0.1)
        w, b = lin(d, ci)
        sd[p + "conv.net2.2.weight"], sd[p + "conv.net2.2.bias"] = w[:, :, None], b
        sd[p + "post_norm.weight"], sd[p + "post_norm.bias"] = ln(d)
    sd["net.code_embeds.weight"] = rn(c["nq"] * (c["K"] + 1), d)
    sd["net.heads.0.weight"], sd["net.heads.0.bias"] = lin(c["nq"] * d, d)
    sd["net.to_logits.0.weight"], sd["net.to_logits.0.bias"] = ln(d)
    sd["net.to_logits.2.weight"] = rn(c["nq"], d, c["K"], scale=std_logit / math.sqrt(d))
    sd["net.to_logits.2.bias"] = rn(1, 1, c["nq"], c["K"], scale=0.1)
    sd["semantic_token_emb.weight"] = rn(c["sem"], d)
    return sd


ORIG_MAP = [("conv.net1.0.", "conv.net.0."), ("conv.net1.2.", "conv.net.2."),
            ("conv.ds_conv.conv.", "conv.net.4.conv."), ("conv.net2.1.gamma", "conv.net.6.gamma"),
            ("conv.net2.2.", "conv.net.7.")]


def to_orig(sd):
    out = {}
    for k, v in sd.items():
        for a, b in ORIG_MAP:
            if a in k:
                k = k.replace(a, b)
        out[k] = v
    return out


# ---- forward, from the spec ----

def rotary(x, n):
    # x (H, N, Dh): NeoX halves, inv_freq = 10000^(-arange(0,Dh,2)/Dh), angles cat(f, f)
    dh = x.shape[-1]
    inv = 1.0 / (10000 ** (torch.arange(0, dh, 2).float() / dh))
    f = torch.arange(n).float()[:, None] * inv[None]
    ang = torch.cat([f, f], -1)
    rot = torch.cat([-x[..., dh // 2:], x[..., :dh // 2]], -1)
    return x * ang.cos() + rot * ang.sin()


def block(sd, p, x, c):
    d = c["dim"]
    H, Dh = c["heads"], c["dim_head"]
    n = x.shape[0]

    def ln(t, name, eps=1e-5):
        return F.layer_norm(t, (t.shape[-1],), sd[name + ".weight"], sd[name + ".bias"], eps)

    def ffn(t, name):
        h = F.linear(ln(t, p + name + ".fn.norm"), sd[p + name + ".fn.fn.net.0.weight"], sd[p + name + ".fn.fn.net.0.bias"])
        h = h * torch.sigmoid(h)
        return F.linear(h, sd[p + name + ".fn.fn.net.3.weight"], sd[p + name + ".fn.fn.net.3.bias"])

    x = x + 0.5 * ffn(x, "ff1")
    h = ln(x, p + "attn.norm")
    q = F.linear(h, sd[p + "attn.fn.to_q.weight"])
    kv = F.linear(h, sd[p + "attn.fn.to_kv.weight"])
    k, v = kv[:, :H * Dh], kv[:, H * Dh:]
    q, k, v = (t.reshape(n, H, Dh).transpose(0, 1) for t in (q, k, v))
    q, k = rotary(q, n), rotary(k, n)
    att = torch.softmax(q @ k.transpose(1, 2) * Dh ** -0.5, -1) @ v  # full bidirectional
    x = x + F.linear(att.transpose(0, 1).reshape(n, H * Dh), sd[p + "attn.fn.to_out.weight"], sd[p + "attn.fn.to_out.bias"])
    # conv module, channels-first (C, N)
    h = ln(x, p + "conv.net1.0").T
    h = torch.einsum("oi,in->on", sd[p + "conv.net1.2.weight"][:, :, 0], h) + sd[p + "conv.net1.2.bias"][:, None]
    ci = h.shape[0] // 2
    h = h[:ci] * torch.sigmoid(h[ci:])
    kz = c["kernel"]
    h = F.conv1d(F.pad(h[None], (kz // 2, kz // 2)), sd[p + "conv.ds_conv.conv.weight"], sd[p + "conv.ds_conv.conv.bias"], groups=ci)[0]
    h = h * torch.sigmoid(h)
    mean = h.mean(0, keepdim=True)
    var = ((h - mean) ** 2).mean(0, keepdim=True)
    h = (h - mean) * var.clamp(min=1e-6).rsqrt() * sd[p + "conv.net2.1.gamma"][0]
    h = torch.einsum("oi,in->on", sd[p + "conv.net2.2.weight"][:, :, 0], h) + sd[p + "conv.net2.2.bias"][:, None]
    x = x + h.T
    x = x + 0.5 * ffn(x, "ff2")
    return ln(x, p + "post_norm")


def forward(sd, c, tok, cond):
    """tok (N, nq) long with K = mask, cond (N,) semantic ids -> logits (N, nq, K)."""
    K1 = c["K"] + 1
    off = torch.arange(c["nq"]) * K1
    x = sd["net.code_embeds.weight"][tok + off[None]].sum(1) + sd["semantic_token_emb.weight"][cond]
    for l in range(c["depth"]):
        x = block(sd, f"net.conformer.layers.{l}.", x, c)
    e = F.linear(x, sd["net.heads.0.weight"], sd["net.heads.0.bias"]).reshape(x.shape[0], c["nq"], c["dim"])
    e = F.layer_norm(e, (c["dim"],), sd["net.to_logits.0.weight"], sd["net.to_logits.0.bias"], 1e-5)
    return torch.einsum("nqd,qdl->nql", e, sd["net.to_logits.2.weight"]) + sd["net.to_logits.2.bias"][0]


# ---- the generator of soundstorm.h: splitmix64 over a counter ----

class Rng:
    M = (1 << 64) - 1

    def __init__(self, seed):
        self.seed, self.i = np.uint64(seed & self.M), 0

    def uniform(self, n):
        with np.errstate(over="ignore"):
            z = self.seed + (np.arange(self.i + 1, self.i + n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
        self.i += n
        return ((z >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24))


def schedule(steps, n):
    times = torch.linspace(0.0, 1.0, steps + 1)
    return (torch.cos(times * math.pi / 2) * torch.tensor([n])).long().tolist()


def top_k_filter(logits, thres):
    k = math.ceil((1 - thres) * logits.shape[-1])
    val, ind = logits.topk(k, dim=-1)
    out = torch.full_like(logits, float("-inf"))
    out.scatter_(-1, ind, val)
    return out


def generate(sd, c, sem, prompt=None, steps=3, seed=0, greedy=True):
    """sem (T,), prompt (P, 8) or None -> (T, 8). AnyGPT's generate, spec section C."""
    nq, K = c["nq"], c["K"]
    T = sem.shape[0]
    P = 0 if prompt is None else prompt.shape[0]
    N = P + T
    cond = sem if prompt is None else torch.cat([prompt[:, 0], sem])
    grid = torch.full((N, nq), K, dtype=torch.long)
    mask = torch.ones((N, nq), dtype=torch.bool)
    if P:
        grid[:P] = prompt[:, 1:]
        mask[:P] = False
    can_mask = mask.clone()  # prompt frames are never masked again
    rng = Rng(seed)
    counts = schedule(steps, N)
    for q in range(nq):
        passes = counts if q == 0 else [0]
        for i, count in enumerate(passes):
            logits = forward(sd, c, grid, cond)
            temp = i / steps
            if greedy and (q > 0 or count == 0):
                ids = logits.argmax(-1)
            else:
                logits = top_k_filter(logits, TOPK_THRES)
                if temp <= 0:
                    ids = logits.argmax(-1)
                else:
                    u = torch.from_numpy(rng.uniform(logits.numel())).reshape(logits.shape)
                    g = -torch.log(-torch.log(u + 1e-10) + 1e-10)
                    ids = (logits / temp + g).argmax(-1)
            if q > 0:
                grid[:, q:] = ids[:, q:]  # every frame, the prompt's too
                continue
            grid = torch.where(mask, ids, grid)
            if count == 0:
                continue
            probs = logits.softmax(-1).gather(-1, ids[..., None])[..., 0]
            scores = (1 - probs).flatten()
            # highest score (least confident) first; ties to the lower index
            order = torch.sort(scores, descending=True, stable=True).indices
            mask = torch.zeros(N * nq, dtype=torch.bool)
            mask[order[:count]] = True
            mask = mask.reshape(N, nq)
            mask[:, 1:] = True
            mask &= can_mask
            grid = grid.masked_fill(mask, K)
    return torch.cat([sem[:, None], grid[P:]], 1)


def save(path, sd):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(sd, path)


def w(path, arr, dtype):
    np.ascontiguousarray(arr, dtype=dtype).tofile(path)


def demo(path):
    save(path, make_weights(TINY, torch.Generator().manual_seed(7), std_logit=2.0))


def fixtures(out, stamp):
    c = TINY
    gen = torch.Generator().manual_seed(7)
    sd = make_weights(c, gen, std_logit=2.0)
    save(os.path.join(out, "anygpt", "speechtokenizer_soundstorm_mls.pt"), sd)
    save(os.path.join(out, "orig", "SoundStorm_best_dev.pt"), to_orig(sd))
    K = c["K"]
    with torch.no_grad():
        # one forward pass on a half-masked grid
        N = 17
        tok = torch.randint(0, K, (N, c["nq"]), generator=gen)
        tok[torch.rand(N, c["nq"], generator=gen) < 0.5] = K
        tok[-3:, 2:] = K
        cond = torch.randint(0, c["sem"], (N,), generator=gen)
        w(os.path.join(out, "fwd.tok.i32"), tok.numpy(), np.int32)
        w(os.path.join(out, "fwd.cond.i32"), cond.numpy(), np.int32)
        w(os.path.join(out, "fwd.logits.f32"), forward(sd, c, tok, cond).numpy(), np.float32)
        cases = [("plain", 14, 0, 3, 1234, True), ("prompt", 11, 6, 3, 99, True),
                 ("sampled", 9, 5, 4, 2024, False), ("steps1", 8, 0, 1, 5, True),
                 # long enough for the C side's threaded host decoding (>= 2^18 logits a pass)
                 ("sampled_long", 40, 5, 3, 77, False)]
        for name, T, P, steps, seed, greedy in cases:
            sem = torch.randint(0, c["sem"], (T,), generator=gen)
            prompt = torch.randint(0, K, (P, 8), generator=gen) if P else None
            res = generate(sd, c, sem, prompt, steps, seed, greedy)
            base = os.path.join(out, "gen_" + name)
            w(base + ".sem.i32", sem.numpy(), np.int32)
            w(base + ".prompt.i32", prompt.numpy() if P else np.zeros(0), np.int32)
            w(base + ".out.i32", res.numpy(), np.int32)
            with open(base + ".args.txt", "w") as f:
                f.write(f"{T} {P} {steps} {seed} {int(greedy)}\n")
    rows = []
    for steps in range(1, 13):
        for n in (1, 2, 7, 12, 17, 100, 150, 250, 400, 401, 999):
            cts = schedule(steps, n)
            rows += [steps, n] + cts
    w(os.path.join(out, "sched.i32"), np.array(rows), np.int32)
    # non-persistent buffers an export may carry: dropped by the converter
    extra = {"net.conformer.rotary_emb.inv_freq": 1.0 / (10000 ** (torch.arange(0, c["dim_head"], 2).float() / c["dim_head"])),
             "net.quantizer_offsets": torch.arange(c["nq"]) * (K + 1),
             "net.mask_tokens": torch.arange(c["nq"]) * (K + 1) + K + 1}
    save(os.path.join(out, "with_buffers.pt"), dict(sd, **extra))
    # files the converter must refuse
    bad = dict(sd)
    del bad["net.conformer.layers.1.attn.fn.to_kv.weight"]
    save(os.path.join(out, "bad_missing.pt"), bad)
    bad = dict(sd)
    bad["net.conformer.layers.0.attn.fn.rel_pos.weight"] = torch.zeros(3)
    save(os.path.join(out, "bad_unknown.pt"), bad)
    bad = dict(sd)
    bad["net.conformer.layers.0.conv.ds_conv.conv.weight"] = torch.zeros(2 * c["dim"], 1, 30)
    save(os.path.join(out, "bad_shape.pt"), bad)
    with open(os.path.join(out, "anygpt", "speechtokenizer_soundstorm_mls.pt"), "rb") as f:
        blob = f.read()
    with open(os.path.join(out, "bad_trunc.pt"), "wb") as f:
        f.write(blob[: len(blob) * 2 // 3])
    with open(stamp, "w") as f:
        f.write("ok\n")


def bench(out):
    """Real-sized random checkpoint (AnyGPT naming) + the timing of this reference's generate
    for a 3 s prompt + 5 s target (150 + 250 frames, steps 3, greedy) on 2 threads."""
    torch.set_num_threads(2)
    c = REAL
    gen = torch.Generator().manual_seed(1)
    sd = make_weights(c, gen)
    path = os.path.join(out, "speechtokenizer_soundstorm_mls.pt")
    if not os.path.exists(path):
        save(path, sd)
    sem = torch.randint(0, c["sem"], (250,), generator=gen)
    prompt = torch.randint(0, c["K"], (150, 8), generator=gen)
    w(os.path.join(out, "sem.i32"), sem.numpy(), np.int32)
    w(os.path.join(out, "prompt.i32"), prompt.numpy(), np.int32)
    with torch.no_grad():
        t0 = time.time()
        generate(sd, c, sem, prompt, steps=3, seed=1, greedy=True)
        dt = time.time() - t0
    with open(os.path.join(out, "torch_seconds.txt"), "w") as f:
        f.write(f"{dt:.3f}\n")
    print(f"pytorch reference: {dt:.2f} s (10 passes, N=400, 2 threads)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "bench":
        bench(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "demo":
        demo(sys.argv[2])
    elif len(sys.argv) == 3:
        fixtures(sys.argv[1], sys.argv[2])
    else:
        sys.exit(__doc__)

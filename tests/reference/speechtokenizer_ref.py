#!/usr/bin/env python3
"""Independent PyTorch SpeechTokenizer (SEANet encoder/decoder + residual VQ), written from
/work/shared/specs/audio.md section A, under the published key names, with tiny random weights.

usage: speechtokenizer_ref.py OUTDIR STAMP
       speechtokenizer_ref.py --demo OUTDIR   one ELU checkpoint with the published codebook size
                                              1024 (n_q 8) in OUTDIR, for the demo model set
                                              (tools/make-demo-models.sh)
       speechtokenizer_ref.py --real OUTDIR   one ELU checkpoint at the published shapes (n_filters
                                              64, dimension 1024, ~111M params, random weights):
                                              speed benchmarks of a whole voice turn
For each variant V in (elu, snake):
  OUTDIR/V/config.json + OUTDIR/V/ckpt.dev   the checkpoint in the published layout (weight-normed)
  OUTDIR/V.S.in.f32     test signal S (float32 samples)
  OUTDIR/V.S.codes.i32  reference codes [T][n_q]
  OUTDIR/V.S.gap.f32    relative distance gap (2nd best - best) / best per [T][n_q]
  OUTDIR/V.S.dec.f32    decoder output for the reference's own codes, 320*T samples
Broken checkpoints the converter must refuse: OUTDIR/bad_missing, bad_unknown, bad_shape.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import weight_norm

OUT, STAMP = sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else sys.exit(__doc__)
CFG = {"n_filters": 4, "strides": [8, 5, 4, 2], "dimension": 32, "semantic_dimension": 16,
       "bidirectional": True, "dilation_base": 2, "residual_kernel_size": 3, "n_residual_layers": 1,
       "lstm_layers": 2, "activation": "ELU", "codebook_size": 64, "n_q": 8, "sample_rate": 16000}


class Snake(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.alpha = nn.Parameter(torch.rand(1, c, 1) + 0.5)

    def forward(self, x):
        return x + (1.0 / (self.alpha + 1e-9)) * torch.sin(self.alpha * x) ** 2


def act(c, snake):
    return Snake(c) if snake else nn.ELU(alpha=1.0)


def reflect_pad(x, left, right):
    # zero-pad first when the signal is not longer than the larger pad (PyTorch reflect limit)
    length = x.shape[-1]
    mx = max(left, right)
    extra = 0
    if length <= mx:
        extra = mx - length + 1
        x = F.pad(x, (0, extra))
    y = F.pad(x, (left, right), mode="reflect")
    return y[..., :y.shape[-1] - extra]


class Conv(nn.Module):  # key: <name>.conv.conv.*
    def __init__(self, cin, cout, k, stride=1, dil=1):
        super().__init__()
        self.conv = nn.Module()
        self.conv.conv = weight_norm(nn.Conv1d(cin, cout, k, stride, dilation=dil))
        self.k, self.s, self.d = k, stride, dil

    def forward(self, x):
        k, s, d = self.k, self.s, self.d
        total = (k - 1) * d - (s - 1)
        L = x.shape[-1]
        n_frames = (L - k + total) / s + 1
        extra = (math.ceil(n_frames) - 1) * s + (k - total) - L
        right = total // 2
        left = total - right
        return self.conv.conv(reflect_pad(x, left, right + extra))


class ConvTr(nn.Module):  # key: <name>.convtr.convtr.*
    def __init__(self, cin, cout, k, stride):
        super().__init__()
        self.convtr = nn.Module()
        self.convtr.convtr = weight_norm(nn.ConvTranspose1d(cin, cout, k, stride))
        self.k, self.s = k, stride

    def forward(self, x):
        y = self.convtr.convtr(x)
        total = self.k - self.s
        right = total // 2
        left = total - right
        return y[..., left:y.shape[-1] - right]


class Res(nn.Module):
    def __init__(self, dim, snake):
        super().__init__()
        h = dim // 2
        self.block = nn.Sequential(act(dim, snake), Conv(dim, h, 3), act(h, snake), Conv(h, dim, 1))
        self.shortcut = Conv(dim, dim, 1)

    def forward(self, x):
        return self.shortcut(x) + self.block(x)


class SLSTM(nn.Module):
    def __init__(self, dim, layers, bidir):
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, layers, bidirectional=bidir)
        self.bidir = bidir

    def forward(self, x):  # x (B, C, T)
        x = x.permute(2, 0, 1)
        y, _ = self.lstm(x)
        if self.bidir:
            x = x.repeat(1, 1, 2)
        return (y + x).permute(1, 2, 0)


def build_encoder(c, snake):
    nf, mods, mult = c["n_filters"], [], 1
    mods.append(Conv(1, nf, 7))
    for r in reversed(c["strides"]):
        mods += [Res(mult * nf, snake), act(mult * nf, snake), Conv(mult * nf, mult * nf * 2, 2 * r, r)]
        mult *= 2
    mods += [SLSTM(mult * nf, c["lstm_layers"], True), act(2 * mult * nf, snake), Conv(2 * mult * nf, c["dimension"], 7)]
    m = nn.Module()
    m.model = nn.Sequential(*mods)
    return m


def build_decoder(c, snake):
    nf = c["n_filters"]
    mult = 2 ** len(c["strides"])
    mods = [Conv(c["dimension"], mult * nf, 7), SLSTM(mult * nf, c["lstm_layers"], False), act(mult * nf, snake)]
    for r in c["strides"]:
        mods += [ConvTr(mult * nf, mult * nf // 2, 2 * r, r), Res(mult * nf // 2, snake), act(mult * nf // 2, snake)]
        mult //= 2
    mods += [Conv(nf, 1, 7)]
    m = nn.Module()
    m.model = nn.Sequential(*mods)
    return m


class Codebook(nn.Module):
    def __init__(self, k, d):
        super().__init__()
        self.register_buffer("inited", torch.ones(1))
        self.register_buffer("cluster_size", torch.zeros(k))
        self.register_buffer("embed", torch.randn(k, d))
        self.register_buffer("embed_avg", torch.randn(k, d))


class Layer(nn.Module):
    def __init__(self, k, d):
        super().__init__()
        self._codebook = Codebook(k, d)


class Model(nn.Module):
    def __init__(self, c, snake):
        super().__init__()
        self.encoder = build_encoder(c, snake)
        self.decoder = build_decoder(c, snake)
        self.quantizer = nn.Module()
        self.quantizer.vq = nn.Module()
        self.quantizer.vq.layers = nn.ModuleList(Layer(c["codebook_size"], c["dimension"]) for _ in range(c["n_q"]))
        self.transform = nn.Linear(c["dimension"], c["semantic_dimension"])

    def encode(self, x):  # x (1, 1, L) -> codes (T, n_q), gaps
        e = self.encoder.model(x)[0].T.double()  # (T, D)
        res = e.clone()
        codes, gaps = [], []
        for layer in self.quantizer.vq.layers:
            emb = layer._codebook.embed.double()
            dist = ((res[:, None, :] - emb[None]) ** 2).sum(-1)
            top = torch.topk(dist, 2, largest=False)
            idx = top.indices[:, 0]
            gaps.append((top.values[:, 1] - top.values[:, 0]) / top.values[:, 0].clamp_min(1e-30))
            codes.append(idx)
            res = res - emb[idx]
        return torch.stack(codes, 1).int(), torch.stack(gaps, 1).float(), e

    def decode(self, codes):  # codes (T, n_q)
        q = sum(layer._codebook.embed[codes[:, i].long()] for i, layer in enumerate(self.quantizer.vq.layers))
        return self.decoder.model(q.T[None])[0, 0]


def signals():
    rng = np.random.default_rng(5)
    sr = 16000
    n = int(0.37 * sr)
    t = np.arange(n) / sr
    chirp = 0.5 * np.sin(2 * np.pi * (200 * t + 2000 * t * t)) + 0.05 * rng.standard_normal(n)
    mult = 0.3 * np.sin(2 * np.pi * 330 * np.arange(320 * 9) / sr) + 0.05 * rng.standard_normal(320 * 9)
    short = 0.4 * rng.standard_normal(5)
    return {"chirp": chirp.astype(np.float32), "mult": mult.astype(np.float32), "short": short.astype(np.float32)}


def save_ckpt(folder, sd, cfg):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    torch.save(sd, os.path.join(folder, "ckpt.dev"))


def fit_codebooks(m, x, k):
    # random codebooks at half each layer's residual scale: codes spread over the book and the
    # residual shrinks slowly, so deep layers stay well conditioned (a codebook fitted to the
    # residual would shrink it ~1000x by layer 8 and turn float rounding into code flips)
    res = m.encoder.model(x)[0].T
    for layer in m.quantizer.vq.layers:
        cb = layer._codebook
        pick = torch.randint(0, res.shape[0], (k,))
        cb.embed.copy_(0.5 * res.std() * torch.randn_like(cb.embed) + res[pick])
        d = ((res[:, None, :] - cb.embed[None]) ** 2).sum(-1)
        res = res - cb.embed[d.argmin(1)]


def random_ckpt(out, cfg, seed):
    """one ELU checkpoint with random weights and codebooks fitted to the chirp"""
    torch.manual_seed(seed)
    m = Model(cfg, False).eval()
    with torch.no_grad():
        fit_codebooks(m, torch.from_numpy(signals()["chirp"])[None, None], cfg["codebook_size"])
        save_ckpt(out, m.state_dict(), cfg)


# the published config (specs/audio.md section A)
REAL = dict(CFG, n_filters=64, dimension=1024, semantic_dimension=768, codebook_size=1024)


def main():
    os.makedirs(OUT, exist_ok=True)
    sigs = signals()
    for variant in ("elu", "snake"):
        torch.manual_seed(11 if variant == "elu" else 12)
        m = Model(CFG, variant == "snake").eval()
        with torch.no_grad():
            fit_codebooks(m, torch.from_numpy(sigs["chirp"])[None, None], CFG["codebook_size"])
            sd = m.state_dict()
            assert len(sd) == (192 if variant == "snake" else 166), len(sd)
            save_ckpt(os.path.join(OUT, variant), sd, dict(CFG, activation="Snake" if variant == "snake" else "ELU"))
            for name, s in sigs.items():
                codes, gaps, _ = m.encode(torch.from_numpy(s)[None, None])
                T = codes.shape[0]
                assert T == math.ceil(len(s) / 320), (T, len(s))
                dec = m.decode(codes)
                assert dec.shape[0] == 320 * T
                base = os.path.join(OUT, f"{variant}.{name}")
                s.tofile(base + ".in.f32")
                codes.numpy().astype(np.int32).tofile(base + ".codes.i32")
                gaps.numpy().astype(np.float32).tofile(base + ".gap.f32")
                dec.numpy().astype(np.float32).tofile(base + ".dec.f32")
            if variant == "elu":
                bad = dict(sd)
                del bad["decoder.model.4.block.1.conv.conv.weight_v"]
                save_ckpt(os.path.join(OUT, "bad_missing"), bad, CFG)
                bad = dict(sd)
                bad["encoder.model.99.conv.conv.bias"] = torch.zeros(3)
                save_ckpt(os.path.join(OUT, "bad_unknown"), bad, CFG)
                bad = dict(sd)
                bad["quantizer.vq.layers.3._codebook.embed"] = torch.zeros(64, 31)
                save_ckpt(os.path.join(OUT, "bad_shape"), bad, CFG)
    with open(STAMP, "w") as f:
        f.write("ok\n")


if __name__ == "__main__":
    if OUT == "--demo":
        random_ckpt(STAMP, dict(CFG, codebook_size=1024), 13)
    elif OUT == "--real":
        random_ckpt(STAMP, REAL, 14)
    else:
        main()

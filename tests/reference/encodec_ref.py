#!/usr/bin/env python3
"""Independent PyTorch Encodec 32 kHz (SEANet encoder/decoder + residual VQ), written from
/work/shared/specs/audio.md section B (HF transformers layout: encoder.layers.N, decoder.layers.N,
quantizer.layers.Q.codebook), with tiny random weights; does not import transformers.

usage: encodec_ref.py OUTDIR STAMP            fixtures for tests/music
       encodec_ref.py --demo OUTDIR           demo model (tools/make-demo-models.sh): the tiny
                                              config with the published codebook size 2048, so
                                              every music code the LLM can write decodes
       encodec_ref.py --bench OUTDIR SECONDS [REPS]  real-sized random checkpoint (facebook/encodec_32khz
                                     config) in OUTDIR, prints best-of-REPS 'encode_s X' / 'decode_s Y'
Fixtures (tiny config, hop 640, 4 codebooks x 64, latent 16):
  OUTDIR/hf_st_g   config.json + model.safetensors, weight norm as weight_g / weight_v
  OUTDIR/hf_st_p   config.json + model.safetensors, parametrizations.weight.original0/1
  OUTDIR/hf_bin_g  config.json + pytorch_model.bin, weight_g / weight_v
  OUTDIR/hf_bin_p  config.json + pytorch_model.bin, parametrizations (config says
                   use_conv_shortcut true like an old hub revision; the keys decide)
  OUTDIR/ac        audiocraft names (encoder.model.N.conv.conv..., quantizer.vq.layers.Q._codebook)
                   in state_dict.bin wrapped as {'best_state': ...}, with the tiny config.json
  OUTDIR/S.in.f32 / S.codes.i32 [T][4] / S.gap.f32 [T][4] / S.dec.f32 [640*T]  per test signal S
  Broken inputs: bad_missing, bad_unknown, bad_shape, bad_causal, bad_norm, bad_trunc, and
  ac_noconfig (tiny weights without config.json: judged against the published config).
"""
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import weight_norm

TINY = {"model_type": "encodec", "architectures": ["EncodecModel"], "audio_channels": 1,
        "sampling_rate": 32000, "num_filters": 4, "upsampling_ratios": [8, 5, 4, 4], "hidden_size": 16,
        "codebook_dim": 16, "codebook_size": 64, "target_bandwidths": [2.2], "num_lstm_layers": 2,
        "num_residual_layers": 1, "kernel_size": 7, "last_kernel_size": 7, "residual_kernel_size": 3,
        "dilation_growth_rate": 2, "compress": 2, "norm_type": "weight_norm", "use_causal_conv": False,
        "pad_mode": "reflect", "trim_right_ratio": 1.0, "use_conv_shortcut": False, "normalize": False,
        "chunk_length_s": None, "overlap": None}
REAL = dict(TINY, num_filters=64, hidden_size=128, codebook_dim=128, codebook_size=2048)


def reflect_pad(x, left, right):
    # PyTorch reflect needs pad < length: zero-extend first, drop the extension after
    length = x.shape[-1]
    extra = max(left, right) - length + 1 if length <= max(left, right) else 0
    if extra:
        x = F.pad(x, (0, extra))
    y = F.pad(x, (left, right), mode="reflect")
    return y[..., :y.shape[-1] - extra]


class Conv(nn.Module):
    """Non-causal conv: reflect pad (k_eff - stride) split right = total // 2, plus the extra right
    padding that completes the last window."""

    def __init__(self, cin, cout, k, stride=1, dil=1):
        super().__init__()
        self.conv = weight_norm(nn.Conv1d(cin, cout, k, stride, dilation=dil))
        self.k, self.s = (k - 1) * dil + 1, stride

    def forward(self, x):
        k, s = self.k, self.s
        total = k - s
        n_frames = (x.shape[-1] - k + total) / s + 1
        extra = (math.ceil(n_frames) - 1) * s + k - total - x.shape[-1]
        right = total // 2
        return self.conv(reflect_pad(x, total - right, right + extra))


class ConvTr(nn.Module):
    def __init__(self, cin, cout, k, stride):
        super().__init__()
        self.conv = weight_norm(nn.ConvTranspose1d(cin, cout, k, stride))
        self.total = k - stride

    def forward(self, x):
        y = self.conv(x)
        right = self.total // 2
        return y[..., self.total - right:y.shape[-1] - right]


class Res(nn.Module):
    def __init__(self, c, dim):
        super().__init__()
        h = dim // c["compress"]
        self.block = nn.ModuleList([nn.ELU(), Conv(dim, h, c["residual_kernel_size"], dil=1), nn.ELU(), Conv(h, dim, 1)])

    def forward(self, x):
        y = x
        for m in self.block:
            y = m(y)
        return x + y  # identity shortcut


class LSTM(nn.Module):
    def __init__(self, c, dim):
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, c["num_lstm_layers"])

    def forward(self, x):  # (B, C, T), unidirectional with skip
        x = x.permute(2, 0, 1)
        return (self.lstm(x)[0] + x).permute(1, 2, 0)


class Seq(nn.Module):
    def __init__(self, mods):
        super().__init__()
        self.layers = nn.ModuleList(mods)

    def forward(self, x):
        for m in self.layers:
            x = m(x)
        return x


def encoder(c):
    nf, mult = c["num_filters"], 1
    mods = [Conv(1, nf, c["kernel_size"])]
    for r in reversed(c["upsampling_ratios"]):
        mods += [Res(c, mult * nf), nn.ELU(), Conv(mult * nf, 2 * mult * nf, 2 * r, r)]
        mult *= 2
    mods += [LSTM(c, mult * nf), nn.ELU(), Conv(mult * nf, c["hidden_size"], c["last_kernel_size"])]
    return Seq(mods)


def decoder(c):
    nf, mult = c["num_filters"], 2 ** len(c["upsampling_ratios"])
    mods = [Conv(c["hidden_size"], mult * nf, c["kernel_size"]), LSTM(c, mult * nf)]
    for r in c["upsampling_ratios"]:
        mods += [nn.ELU(), ConvTr(mult * nf, mult * nf // 2, 2 * r, r), Res(c, mult * nf // 2)]
        mult //= 2
    mods += [nn.ELU(), Conv(nf, 1, c["last_kernel_size"])]
    return Seq(mods)


class Codebook(nn.Module):
    def __init__(self, k, d):
        super().__init__()
        self.register_buffer("inited", torch.ones(1))
        self.register_buffer("cluster_size", torch.zeros(k))
        self.register_buffer("embed", torch.randn(k, d))
        self.register_buffer("embed_avg", torch.randn(k, d))


class VQ(nn.Module):
    def __init__(self, k, d):
        super().__init__()
        self.codebook = Codebook(k, d)


def n_quantizers(c):
    frame_rate = math.ceil(c["sampling_rate"] / np.prod(c["upsampling_ratios"]))
    return int(1000 * c["target_bandwidths"][-1] // (frame_rate * 10))


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.encoder = encoder(c)
        self.decoder = decoder(c)
        self.quantizer = nn.Module()
        self.quantizer.layers = nn.ModuleList(VQ(c["codebook_size"], c["codebook_dim"]) for _ in range(n_quantizers(c)))

    def encode(self, x, exact=True):  # (1, 1, L) -> codes (T, n_q), relative gaps
        e = self.encoder(x)[0].T
        if not exact:  # timing: float32 distances by matmul, as the published model does
            codes = []
            for layer in self.quantizer.layers:
                emb = layer.codebook.embed
                idx = (emb.pow(2).sum(1)[None] - 2 * e @ emb.T).argmin(1)
                codes.append(idx)
                e = e - emb[idx]
            return torch.stack(codes, 1).int(), None
        e = e.double()
        res, codes, gaps = e.clone(), [], []
        for layer in self.quantizer.layers:
            emb = layer.codebook.embed.double()
            dist = ((res[:, None, :] - emb[None]) ** 2).sum(-1)
            top = torch.topk(dist, 2, largest=False)
            idx = top.indices[:, 0]
            gaps.append((top.values[:, 1] - top.values[:, 0]) / top.values[:, 0].clamp_min(1e-30))
            codes.append(idx)
            res = res - emb[idx]
        return torch.stack(codes, 1).int(), torch.stack(gaps, 1).float()

    def decode(self, codes):  # (T, n_q) -> (640 T,)
        q = sum(layer.codebook.embed[codes[:, i].long()] for i, layer in enumerate(self.quantizer.layers))
        return self.decoder(q.T[None])[0, 0]


# ---- file layouts ----

def save_safetensors(path, sd):
    """The safetensors format by hand: u64 header size, JSON header, raw little-endian data."""
    header, blobs, off = {}, [], 0
    for k, v in sd.items():
        a = v.detach().contiguous().float().numpy().astype("<f4")
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def param_names(sd):
    """weight_g/weight_v -> parametrizations.weight.original0/1 (torch >= 2.1 naming)."""
    out = {}
    for k, v in sd.items():
        if k.endswith(".weight_g"):
            k = k[:-len("weight_g")] + "parametrizations.weight.original0"
        elif k.endswith(".weight_v"):
            k = k[:-len("weight_v")] + "parametrizations.weight.original1"
        out[k] = v
    return out


def audiocraft_names(sd, c):
    """HF names -> audiocraft's compression model names."""
    n_res = 3 * len(c["upsampling_ratios"]) + 3
    convtr = {3 * i + 3 for i in range(len(c["upsampling_ratios"]))}
    out = {}
    for k, v in sd.items():
        p = k.split(".")
        if p[0] == "quantizer":  # quantizer.layers.Q.codebook.X
            k = f"quantizer.vq.layers.{p[2]}._codebook.{p[4]}"
        elif p[3] == "lstm":
            k = f"{p[0]}.model.{p[2]}.lstm.{p[4]}"
        elif p[3] == "block":  # X.layers.N.block.J.conv.W
            k = f"{p[0]}.model.{p[2]}.block.{p[4]}.conv.conv.{p[6]}"
        else:  # X.layers.N.conv.W
            i = int(p[2])
            assert i <= n_res
            mod = "convtr.convtr" if p[0] == "decoder" and i in convtr else "conv.conv"
            k = f"{p[0]}.model.{i}.{mod}.{p[4]}"
        out[k] = v
    return out


def write_folder(folder, cfg, sd, fmt):
    os.makedirs(folder, exist_ok=True)
    if cfg is not None:
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
    if fmt == "st":
        save_safetensors(os.path.join(folder, "model.safetensors"), sd)
    elif fmt == "bin":
        torch.save(sd, os.path.join(folder, "pytorch_model.bin"))
    else:
        torch.save({"best_state": sd}, os.path.join(folder, "state_dict.bin"))


def signals():
    rng = np.random.default_rng(7)
    sr = 32000
    n = int(0.37 * sr)
    t = np.arange(n) / sr
    chirp = 0.5 * np.sin(2 * np.pi * (200 * t + 4000 * t * t)) + 0.05 * rng.standard_normal(n)
    mult = 0.3 * np.sin(2 * np.pi * 440 * np.arange(640 * 9) / sr) + 0.05 * rng.standard_normal(640 * 9)
    short = 0.4 * rng.standard_normal(5)
    return {"chirp": chirp.astype(np.float32), "mult": mult.astype(np.float32), "short": short.astype(np.float32)}


def fit_codebooks(m, x, k):
    """Random codebooks around each layer's residual (half its spread): codes spread over the book
    and deep layers stay well conditioned, so float rounding rarely flips a code."""
    res = m.encoder(x)[0].T
    for layer in m.quantizer.layers:
        cb = layer.codebook
        pick = torch.randint(0, res.shape[0], (k,))
        cb.embed.copy_(0.5 * res.std() * torch.randn_like(cb.embed) + res[pick])
        d = ((res[:, None, :] - cb.embed[None]) ** 2).sum(-1)
        res = res - cb.embed[d.argmin(1)]


def demo(out):
    """Tiny random Encodec with 4 codebooks of 2048 (the published size): noise-making demo model."""
    torch.manual_seed(23)
    cfg = dict(TINY, codebook_size=2048)
    m = Model(cfg).eval()
    with torch.no_grad():
        fit_codebooks(m, torch.from_numpy(signals()["chirp"])[None, None], cfg["codebook_size"])
        write_folder(out, cfg, m.state_dict(), "st")


def fixtures(out, stamp):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(21)
    m = Model(TINY).eval()
    sigs = signals()
    with torch.no_grad():
        fit_codebooks(m, torch.from_numpy(sigs["chirp"])[None, None], TINY["codebook_size"])
        sd = m.state_dict()
        assert len(sd) == 116, len(sd)  # the published key count
        for name, s in sigs.items():
            codes, gaps = m.encode(torch.from_numpy(s)[None, None])
            T = codes.shape[0]
            assert T == math.ceil(len(s) / 640), (T, len(s))
            dec = m.decode(codes)
            assert dec.shape[0] == 640 * T
            s.tofile(os.path.join(out, f"{name}.in.f32"))
            codes.numpy().astype(np.int32).tofile(os.path.join(out, f"{name}.codes.i32"))
            gaps.numpy().astype(np.float32).tofile(os.path.join(out, f"{name}.gap.f32"))
            dec.numpy().astype(np.float32).tofile(os.path.join(out, f"{name}.dec.f32"))
    write_folder(os.path.join(out, "hf_st_g"), TINY, sd, "st")
    write_folder(os.path.join(out, "hf_st_p"), TINY, param_names(sd), "st")
    write_folder(os.path.join(out, "hf_bin_g"), TINY, sd, "bin")
    write_folder(os.path.join(out, "hf_bin_p"), dict(TINY, use_conv_shortcut=True), param_names(sd), "bin")
    write_folder(os.path.join(out, "ac"), TINY, audiocraft_names(sd, TINY), "ac")
    # no config.json: the converter falls back to the published 32 kHz config (shapes then differ)
    write_folder(os.path.join(out, "ac_noconfig"), None, audiocraft_names(sd, TINY), "ac")
    bad = dict(sd)
    del bad["decoder.layers.7.block.1.conv.weight_v"]
    write_folder(os.path.join(out, "bad_missing"), TINY, bad, "st")
    bad = dict(sd)
    bad["encoder.layers.16.conv.bias"] = torch.zeros(3)
    write_folder(os.path.join(out, "bad_unknown"), TINY, bad, "st")
    bad = dict(sd)
    bad["quantizer.layers.2.codebook.embed"] = torch.zeros(64, 15)
    write_folder(os.path.join(out, "bad_shape"), TINY, bad, "st")
    write_folder(os.path.join(out, "bad_causal"), dict(TINY, use_causal_conv=True), sd, "st")
    write_folder(os.path.join(out, "bad_norm"), dict(TINY, norm_type="time_group_norm"), sd, "st")
    write_folder(os.path.join(out, "bad_trunc"), TINY, sd, "st")
    p = os.path.join(out, "bad_trunc", "model.safetensors")
    with open(p, "r+b") as f:
        f.truncate(os.path.getsize(p) - 1000)
    with open(stamp, "w") as f:
        f.write("ok\n")


def bench(out, seconds, reps):
    """Real-sized random model: write it for the converter, time PyTorch encode and decode."""
    torch.manual_seed(1)
    torch.set_num_threads(int(os.environ.get("AG_BENCH_THREADS", "2")))
    m = Model(REAL).eval()
    x = torch.from_numpy((0.3 * np.random.default_rng(1).standard_normal(int(seconds * 32000))).astype(np.float32))
    with torch.no_grad():
        if not os.path.exists(os.path.join(out, "model.safetensors")):  # reused across runs
            write_folder(out, REAL, m.state_dict(), "st")
        m.encode(x[None, None, :6400], False)  # warm-up
        t_enc = t_dec = float("inf")
        for _ in range(reps):  # best of reps: the machine is shared
            t0 = time.perf_counter()
            codes, _ = m.encode(x[None, None], False)
            t_enc = min(t_enc, time.perf_counter() - t0)
            t0 = time.perf_counter()
            m.decode(codes)
            t_dec = min(t_dec, time.perf_counter() - t0)
    print(f"encode_s {t_enc:.4f}\ndecode_s {t_dec:.4f}")


if __name__ == "__main__":
    if sys.argv[1] == "--bench":
        bench(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    elif sys.argv[1] == "--demo":
        demo(sys.argv[2])
    else:
        fixtures(sys.argv[1], sys.argv[2])

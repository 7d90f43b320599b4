#!/usr/bin/env python3
"""Independent float32 PyTorch UNet2DConditionModel and AutoencoderKL decoder, written from
diffusers' published semantics (models/unets/unet_2d_condition.py + unet_2d_blocks.py, resnet.py,
transformers/transformer_2d.py + attention.py + attention_processor.py, embeddings.py,
autoencoders/autoencoder_kl.py + vae.py, upsampling.py, downsampling.py, image_processor.py) with
diffusers' state-dict key names, for the tests of core/models/unet.c and vae.c and their converter
plans (tools/convert/unclip_{unet,vae}_plan.c). Functional style: a state dict of random weights
and a forward pass that reads it, so every key name is spelled out here.

usage:
  unclip_unet_ref.py OUTDIR STAMP       tiny random diffusers folders + expected outputs (tests)
  unclip_unet_ref.py --bench OUTDIR     SD 2.1 unCLIP's real shapes: random fp16 unet/ and vae/
                                        folders in OUTDIR, and PyTorch float32 timings of one
                                        UNet evaluation (batch 2, 96x96) and one VAE decode
                                        (96x96 -> 768x768) on the current torch thread count

Fixtures (OUTDIR/<case>/): config.json, diffusion_pytorch_model[.fp16].{safetensors,bin} (the
diffusers folder layout), meta.txt ("unet B H W T CTX_LEN CLASS_DIM" or "vae H W"), and raw
little-endian arrays: x.f32 [B][C][H][W], cls.f32 [B][CLASS_DIM], ctx.f32 [B][CTX_LEN][CROSS],
out.f32 (the UNet output [B][C][H][W]); lat.f32 [C][H][W], img.f32 [3][8H][8W] (decoder output),
img.u8 [8H][8W][3] (diffusers' postprocess to PIL: (x / 2 + 0.5).clamp(0, 1), numpy float32 * 255,
.round(), uint8), ties.txt (how many pixels sit within 1e-3 of a .5 rounding tie).
Refusal fixtures: bad_<what>/ folders the plans must refuse, with expect.txt holding the text the
error must contain.
"""
import copy
import json
import math
import os
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# configs as diffusers resolves them (defaults of UNet2DConditionModel.__init__ / AutoencoderKL)

UNET_DEFAULTS = dict(
    sample_size=None, in_channels=4, out_channels=4, center_input_sample=False, flip_sin_to_cos=True,
    freq_shift=0,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    mid_block_type="UNetMidBlock2DCrossAttn",
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    only_cross_attention=False, block_out_channels=[320, 640, 1280, 1280], layers_per_block=2,
    downsample_padding=1, mid_block_scale_factor=1.0, act_fn="silu", norm_num_groups=32, norm_eps=1e-5,
    cross_attention_dim=1280, transformer_layers_per_block=1, attention_head_dim=8, use_linear_projection=False,
    class_embed_type=None, projection_class_embeddings_input_dim=None, upcast_attention=False,
    time_embedding_dim=None, conv_in_kernel=3, conv_out_kernel=3)

VAE_DEFAULTS = dict(
    in_channels=3, out_channels=3, up_block_types=["UpDecoderBlock2D"], block_out_channels=[64], layers_per_block=1,
    act_fn="silu", latent_channels=4, norm_num_groups=32, scaling_factor=0.18215, shift_factor=None,
    use_post_quant_conv=True, mid_block_add_attention=True)


def per_block(v, n):
    return list(v) if isinstance(v, (list, tuple)) else [v] * n


def unet_plan(cfg):
    """The module tree UNet2DConditionModel builds for cfg: a list of blocks with channel counts."""
    c = dict(UNET_DEFAULTS)
    c.update(cfg)
    bo = c["block_out_channels"]
    n = len(bo)
    # diffusers: num_attention_heads = num_attention_heads or attention_head_dim (the naming quirk)
    heads = per_block(c.get("num_attention_heads") or c["attention_head_dim"], n)
    layers = per_block(c["layers_per_block"], n)
    tlayers = per_block(c["transformer_layers_per_block"], n)
    cross = per_block(c["cross_attention_dim"], n)
    p = dict(cfg=c, time_dim=c["time_embedding_dim"] or bo[0] * 4, down=[], up=[])
    out_ch = bo[0]
    for i, kind in enumerate(c["down_block_types"]):
        in_ch, out_ch = out_ch, bo[i]
        p["down"].append(dict(kind=kind, cin=in_ch, cout=out_ch, layers=layers[i], heads=heads[i], tl=tlayers[i],
                              cross=cross[i], down=i != n - 1))
    p["mid"] = dict(ch=bo[-1], heads=heads[-1], tl=tlayers[-1], cross=cross[-1])
    rbo, rheads, rlayers, rtl, rcross = bo[::-1], heads[::-1], layers[::-1], tlayers[::-1], cross[::-1]
    out_ch = rbo[0]
    for i, kind in enumerate(c["up_block_types"]):
        prev, out_ch = out_ch, rbo[i]
        in_ch = rbo[min(i + 1, n - 1)]
        nl = rlayers[i] + 1
        res = []
        for j in range(nl):
            skip = in_ch if j == nl - 1 else out_ch
            rin = prev if j == 0 else out_ch
            res.append((rin + skip, out_ch))
        p["up"].append(dict(kind=kind, res=res, cout=out_ch, heads=rheads[i], tl=rtl[i], cross=rcross[i],
                            up=i != n - 1))
    return p


# ---------------------------------------------------------------------------------------------
# random weights under diffusers' key names

class Maker:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)
        self.sd = {}

    def rn(self, *s, scale=1.0):
        return torch.randn(*s, generator=self.g) * scale

    def conv(self, k, cin, cout, ks, bias=True):
        self.sd[k + ".weight"] = self.rn(cout, cin, ks, ks, scale=1.0 / math.sqrt(cin * ks * ks))
        if bias:
            self.sd[k + ".bias"] = self.rn(cout, scale=0.1)

    def lin(self, k, cin, cout, bias=True):
        self.sd[k + ".weight"] = self.rn(cout, cin, scale=1.0 / math.sqrt(cin))
        if bias:
            self.sd[k + ".bias"] = self.rn(cout, scale=0.1)

    def norm(self, k, ch):
        self.sd[k + ".weight"] = 1.0 + self.rn(ch, scale=0.2)
        self.sd[k + ".bias"] = self.rn(ch, scale=0.2)


def make_resnet(m, k, cin, cout, temb):
    m.norm(k + ".norm1", cin)
    m.conv(k + ".conv1", cin, cout, 3)
    if temb:
        m.lin(k + ".time_emb_proj", temb, cout)
    m.norm(k + ".norm2", cout)
    m.conv(k + ".conv2", cout, cout, 3)
    if cin != cout:
        m.conv(k + ".conv_shortcut", cin, cout, 1)


def make_transformer(m, k, ch, heads, tl, cross, linear):
    inner = heads * (ch // heads)
    m.norm(k + ".norm", ch)
    if linear:
        m.lin(k + ".proj_in", ch, inner)
    else:
        m.conv(k + ".proj_in", ch, inner, 1)
    for t in range(tl):
        b = f"{k}.transformer_blocks.{t}"
        for a, kv_dim in (("attn1", inner), ("attn2", cross)):
            m.lin(f"{b}.{a}.to_q", inner, inner, bias=False)
            m.lin(f"{b}.{a}.to_k", kv_dim, inner, bias=False)
            m.lin(f"{b}.{a}.to_v", kv_dim, inner, bias=False)
            m.lin(f"{b}.{a}.to_out.0", inner, inner)
        for nrm in ("norm1", "norm2", "norm3"):
            m.norm(f"{b}.{nrm}", inner)
        m.lin(f"{b}.ff.net.0.proj", inner, inner * 4 * 2)
        m.lin(f"{b}.ff.net.2", inner * 4, inner)
    if linear:
        m.lin(k + ".proj_out", inner, ch)
    else:
        m.conv(k + ".proj_out", inner, ch, 1)


def make_unet(cfg, seed):
    p = unet_plan(cfg)
    c, td = p["cfg"], p["time_dim"]
    m = Maker(seed)
    bo = c["block_out_channels"]
    lin = c["use_linear_projection"]
    m.conv("conv_in", c["in_channels"], bo[0], c["conv_in_kernel"])
    m.lin("time_embedding.linear_1", bo[0], td)
    m.lin("time_embedding.linear_2", td, td)
    if c["class_embed_type"] == "projection":
        m.lin("class_embedding.linear_1", c["projection_class_embeddings_input_dim"], td)
        m.lin("class_embedding.linear_2", td, td)
    for i, d in enumerate(p["down"]):
        for j in range(d["layers"]):
            make_resnet(m, f"down_blocks.{i}.resnets.{j}", d["cin"] if j == 0 else d["cout"], d["cout"], td)
            if d["kind"] == "CrossAttnDownBlock2D":
                make_transformer(m, f"down_blocks.{i}.attentions.{j}", d["cout"], d["heads"], d["tl"], d["cross"], lin)
        if d["down"]:
            m.conv(f"down_blocks.{i}.downsamplers.0.conv", d["cout"], d["cout"], 3)
    mid = p["mid"]
    make_resnet(m, "mid_block.resnets.0", mid["ch"], mid["ch"], td)
    make_transformer(m, "mid_block.attentions.0", mid["ch"], mid["heads"], mid["tl"], mid["cross"], lin)
    make_resnet(m, "mid_block.resnets.1", mid["ch"], mid["ch"], td)
    for i, u in enumerate(p["up"]):
        for j, (cin, cout) in enumerate(u["res"]):
            make_resnet(m, f"up_blocks.{i}.resnets.{j}", cin, cout, td)
            if u["kind"] == "CrossAttnUpBlock2D":
                make_transformer(m, f"up_blocks.{i}.attentions.{j}", cout, u["heads"], u["tl"], u["cross"], lin)
        if u["up"]:
            m.conv(f"up_blocks.{i}.upsamplers.0.conv", u["cout"], u["cout"], 3)
    m.norm("conv_norm_out", bo[0])
    m.conv("conv_out", bo[0], c["out_channels"], c["conv_out_kernel"])
    return m.sd


def vae_plan(cfg):
    c = dict(VAE_DEFAULTS)
    c.update(cfg)
    return c


def make_vae(cfg, seed, old_attn_names=False):
    c = vae_plan(cfg)
    m = Maker(seed)
    bo, lc, n = c["block_out_channels"], c["latent_channels"], len(c["block_out_channels"])
    # a stand-in for the encoder half (its keys must be recognised and dropped by the plan)
    m.conv("encoder.conv_in", c["in_channels"], bo[0], 3)
    make_resnet(m, "encoder.down_blocks.0.resnets.0", bo[0], bo[0], None)
    m.norm("encoder.mid_block.attentions.0.group_norm", bo[-1])
    m.norm("encoder.conv_norm_out", bo[-1])
    m.conv("encoder.conv_out", bo[-1], 2 * lc, 3)
    m.conv("quant_conv", 2 * lc, 2 * lc, 1)
    if c["use_post_quant_conv"]:
        m.conv("post_quant_conv", lc, lc, 1)
    ch = bo[-1]
    m.conv("decoder.conv_in", lc, ch, 3)
    make_resnet(m, "decoder.mid_block.resnets.0", ch, ch, None)
    if c["mid_block_add_attention"]:
        a = "decoder.mid_block.attentions.0"
        m.norm(a + ".group_norm", ch)
        names = ("query", "key", "value", "proj_attn") if old_attn_names else ("to_q", "to_k", "to_v", "to_out.0")
        for nm in names:
            m.lin(f"{a}.{nm}", ch, ch)
    make_resnet(m, "decoder.mid_block.resnets.1", ch, ch, None)
    rbo = bo[::-1]
    out_ch = rbo[0]
    for i in range(n):
        prev, out_ch = out_ch, rbo[i]
        for j in range(c["layers_per_block"] + 1):
            make_resnet(m, f"decoder.up_blocks.{i}.resnets.{j}", prev if j == 0 else out_ch, out_ch, None)
        if i != n - 1:
            m.conv(f"decoder.up_blocks.{i}.upsamplers.0.conv", out_ch, out_ch, 3)
    m.norm("decoder.conv_norm_out", bo[0])
    m.conv("decoder.conv_out", bo[0], c["out_channels"], 3)
    return m.sd


# ---------------------------------------------------------------------------------------------
# forward passes

def gn(sd, k, x, groups, eps):
    return F.group_norm(x, groups, sd[k + ".weight"], sd[k + ".bias"], eps)


def conv(sd, k, x, stride=1, padding=None):
    w = sd[k + ".weight"]
    pad = (w.shape[-1] - 1) // 2 if padding is None else padding
    return F.conv2d(x, w, sd.get(k + ".bias"), stride=stride, padding=pad)


def linear(sd, k, x):
    return F.linear(x, sd[k + ".weight"], sd.get(k + ".bias"))


def resnet(sd, k, x, temb, groups, eps, out_scale=1.0):
    # ResnetBlock2D, time_embedding_norm "default": h = conv1(silu(norm1(x))) + proj(silu(temb));
    # h = conv2(silu(norm2(h))); (shortcut(x) + h) / output_scale_factor
    h = conv(sd, k + ".conv1", F.silu(gn(sd, k + ".norm1", x, groups, eps)))
    if temb is not None:
        h = h + linear(sd, k + ".time_emb_proj", F.silu(temb))[:, :, None, None]
    h = conv(sd, k + ".conv2", F.silu(gn(sd, k + ".norm2", h, groups, eps)))
    if k + ".conv_shortcut.weight" in sd:
        x = conv(sd, k + ".conv_shortcut", x)
    return (x + h) / out_scale


def attention(q, k, v, heads):
    # (B, N, inner) -> heads of inner / heads; softmax(q k^T / sqrt(d)) v, in float32; one
    # (batch, head) at a time so 9216-token scores stay at 340 MB
    b, n, inner = q.shape
    d = inner // heads
    q = q.reshape(b, n, heads, d).transpose(1, 2)
    k = k.reshape(b, k.shape[1], heads, d).transpose(1, 2)
    v = v.reshape(b, v.shape[1], heads, d).transpose(1, 2)
    out = torch.empty_like(q)
    for i in range(b):
        for h in range(heads):
            s = torch.softmax((q[i, h] @ k[i, h].transpose(0, 1)) * (d ** -0.5), dim=-1)
            out[i, h] = s @ v[i, h]
    return out.transpose(1, 2).reshape(b, n, inner)


def transformer(sd, k, x, ctx, heads, tl, groups):
    # Transformer2DModel (continuous input): GroupNorm eps 1e-6, proj_in (linear or 1x1 conv),
    # BasicTransformerBlocks (LayerNorm eps 1e-5), proj_out, + residual
    b, ch, hh, ww = x.shape
    h = F.group_norm(x, groups, sd[k + ".norm.weight"], sd[k + ".norm.bias"], 1e-6)
    pw = sd[k + ".proj_in.weight"]
    if pw.dim() == 4:
        h = F.conv2d(h, pw, sd[k + ".proj_in.bias"])
        inner = h.shape[1]
        h = h.permute(0, 2, 3, 1).reshape(b, hh * ww, inner)
    else:
        h = linear(sd, k + ".proj_in", h.permute(0, 2, 3, 1).reshape(b, hh * ww, ch))
        inner = h.shape[-1]
    for t in range(tl):
        p = f"{k}.transformer_blocks.{t}"
        ln = lambda nm, y: F.layer_norm(y, (inner,), sd[f"{p}.{nm}.weight"], sd[f"{p}.{nm}.bias"], 1e-5)  # noqa
        n1 = ln("norm1", h)
        a = attention(linear(sd, p + ".attn1.to_q", n1), linear(sd, p + ".attn1.to_k", n1),
                      linear(sd, p + ".attn1.to_v", n1), heads)
        h = linear(sd, p + ".attn1.to_out.0", a) + h
        n2 = ln("norm2", h)
        a = attention(linear(sd, p + ".attn2.to_q", n2), linear(sd, p + ".attn2.to_k", ctx),
                      linear(sd, p + ".attn2.to_v", ctx), heads)
        h = linear(sd, p + ".attn2.to_out.0", a) + h
        n3 = ln("norm3", h)
        hid, gate = linear(sd, p + ".ff.net.0.proj", n3).chunk(2, dim=-1)
        h = linear(sd, p + ".ff.net.2", hid * F.gelu(gate)) + h
    pw = sd[k + ".proj_out.weight"]
    if pw.dim() == 4:
        h = F.conv2d(h.reshape(b, hh, ww, inner).permute(0, 3, 1, 2), pw, sd[k + ".proj_out.bias"])
    else:
        h = linear(sd, k + ".proj_out", h).reshape(b, hh, ww, ch).permute(0, 3, 1, 2)
    return h + x


def timestep_embedding(t, dim, flip, shift, batch):
    # get_timestep_embedding in float32: exp(-ln(10000) * i / (half - shift)) * t, [sin, cos]
    half = dim // 2
    ex = -math.log(10000) * torch.arange(0, half, dtype=torch.float32) / (half - shift)
    emb = torch.tensor([t] * batch, dtype=torch.float64)[:, None].float() * torch.exp(ex)[None, :]
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
    if flip:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1, 0, 0))
    return emb


@torch.no_grad()
def unet_forward(cfg, sd, x, t, ctx, cls):
    p = unet_plan(cfg)
    c = p["cfg"]
    g, eps = c["norm_num_groups"], c["norm_eps"]
    lin = lambda k, y: linear(sd, k, y)  # noqa
    if c["center_input_sample"]:
        x = 2 * x - 1.0
    temb = timestep_embedding(t, c["block_out_channels"][0], c["flip_sin_to_cos"], c["freq_shift"], x.shape[0])
    emb = lin("time_embedding.linear_2", F.silu(lin("time_embedding.linear_1", temb)))
    if c["class_embed_type"] == "projection":
        emb = emb + lin("class_embedding.linear_2", F.silu(lin("class_embedding.linear_1", cls)))
    h = conv(sd, "conv_in", x)
    skips = [h]
    for i, d in enumerate(p["down"]):
        for j in range(d["layers"]):
            h = resnet(sd, f"down_blocks.{i}.resnets.{j}", h, emb, g, eps)
            if d["kind"] == "CrossAttnDownBlock2D":
                h = transformer(sd, f"down_blocks.{i}.attentions.{j}", h, ctx, d["heads"], d["tl"], g)
            skips.append(h)
        if d["down"]:
            pad = c["downsample_padding"]
            if pad == 0:
                h = F.pad(h, (0, 1, 0, 1))
            h = conv(sd, f"down_blocks.{i}.downsamplers.0.conv", h, stride=2, padding=pad)
            skips.append(h)
    mid = p["mid"]
    msf = c["mid_block_scale_factor"]
    h = resnet(sd, "mid_block.resnets.0", h, emb, g, eps, msf)
    h = transformer(sd, "mid_block.attentions.0", h, ctx, mid["heads"], mid["tl"], g)
    h = resnet(sd, "mid_block.resnets.1", h, emb, g, eps, msf)
    for i, u in enumerate(p["up"]):
        for j in range(len(u["res"])):
            h = torch.cat([h, skips.pop()], dim=1)
            h = resnet(sd, f"up_blocks.{i}.resnets.{j}", h, emb, g, eps)
            if u["kind"] == "CrossAttnUpBlock2D":
                h = transformer(sd, f"up_blocks.{i}.attentions.{j}", h, ctx, u["heads"], u["tl"], g)
        if u["up"]:
            h = conv(sd, f"up_blocks.{i}.upsamplers.0.conv", F.interpolate(h, scale_factor=2.0, mode="nearest"))
    h = F.silu(gn(sd, "conv_norm_out", h, g, eps))
    return conv(sd, "conv_out", h)


@torch.no_grad()
def vae_decode(cfg, sd, lat):
    # AutoencoderKL.decode(latents / scaling_factor (+ shift_factor)); every decoder norm eps 1e-6
    c = vae_plan(cfg)
    g, eps = c["norm_num_groups"], 1e-6
    z = lat / c["scaling_factor"]
    if c["shift_factor"] is not None:
        z = z + c["shift_factor"]
    if c["use_post_quant_conv"]:
        z = conv(sd, "post_quant_conv", z)
    h = conv(sd, "decoder.conv_in", z)
    h = resnet(sd, "decoder.mid_block.resnets.0", h, None, g, eps)
    if c["mid_block_add_attention"]:
        a = "decoder.mid_block.attentions.0"
        b, ch, hh, ww = h.shape
        old = a + ".query.weight" in sd
        nq, nk, nv, no = ("query", "key", "value", "proj_attn") if old else ("to_q", "to_k", "to_v", "to_out.0")
        y = gn(sd, a + ".group_norm", h, g, eps).reshape(b, ch, hh * ww).transpose(1, 2)
        o = attention(linear(sd, f"{a}.{nq}", y), linear(sd, f"{a}.{nk}", y), linear(sd, f"{a}.{nv}", y), 1)
        h = linear(sd, f"{a}.{no}", o).transpose(1, 2).reshape(b, ch, hh, ww) + h
    h = resnet(sd, "decoder.mid_block.resnets.1", h, None, g, eps)
    n = len(c["block_out_channels"])
    for i in range(n):
        for j in range(c["layers_per_block"] + 1):
            h = resnet(sd, f"decoder.up_blocks.{i}.resnets.{j}", h, None, g, eps)
        if i != n - 1:
            h = conv(sd, f"decoder.up_blocks.{i}.upsamplers.0.conv", F.interpolate(h, scale_factor=2.0,
                                                                                   mode="nearest"))
    h = F.silu(gn(sd, "decoder.conv_norm_out", h, g, eps))
    return conv(sd, "decoder.conv_out", h)


def postprocess_u8(img):
    # VaeImageProcessor.postprocess(output_type="pil"): (x * 0.5 + 0.5).clamp(0, 1) in torch,
    # permute to HWC, numpy float32 * 255, .round() (half to even), astype uint8
    v = (img * 0.5 + 0.5).clamp(0, 1).permute(1, 2, 0).float().numpy()
    s = v * np.float32(255)
    ties = int(np.sum(np.abs(s - np.floor(s) - 0.5) < 1e-3))
    return s.round().astype(np.uint8), ties


# ---------------------------------------------------------------------------------------------
# writing diffusers folders

ST_DT = {torch.float32: "F32", torch.float16: "F16"}


def save_safetensors(sd, path):
    header, blobs, off = {}, [], 0
    for k in sorted(sd):
        t = sd[k].contiguous()
        b = t.numpy().tobytes()
        header[k] = {"dtype": ST_DT[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_folder(d, cfg, sd, fmt="safetensors", half=False, class_name="UNet2DConditionModel", keep=False):
    if keep and os.path.exists(os.path.join(d, "config.json")):
        return  # --bench again: the same seeds, the folder is already there
    os.makedirs(d, exist_ok=True)
    full = {"_class_name": class_name, "_diffusers_version": "0.15.0.dev0"}
    full.update(cfg)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(full, f, indent=2)
    sd = {k: (v.half() if half else v.float()).contiguous() for k, v in sd.items()}
    name = "diffusion_pytorch_model" + (".fp16" if half else "")
    if fmt == "safetensors":
        save_safetensors(sd, os.path.join(d, name + ".safetensors"))
    else:
        torch.save(sd, os.path.join(d, name + ".bin"))


def f32(path, t):
    np.ascontiguousarray(t.detach().float().numpy()).astype("<f4").tofile(path)


# ---------------------------------------------------------------------------------------------
# test cases

TINY_UNET = dict(  # as diffusers' own UNet2DConditionModel tests, plus the unCLIP class projection
    sample_size=16, block_out_channels=[32, 64], layers_per_block=2,
    down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"], up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
    cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32, use_linear_projection=True,
    class_embed_type="projection", projection_class_embeddings_input_dim=24, upcast_attention=False)

SD21_SHAPED = dict(  # SD 2.1 unCLIP's config (as diffusers' converter writes it), channels shrunk
    sample_size=16, in_channels=4, out_channels=4, block_out_channels=[32, 64, 64, 64], layers_per_block=2,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    mid_block_type="UNetMidBlock2DCrossAttn", cross_attention_dim=48, attention_head_dim=[2, 4, 4, 4],
    use_linear_projection=True, class_embed_type="projection", projection_class_embeddings_input_dim=64,
    flip_sin_to_cos=True, freq_shift=0, act_fn="silu", norm_num_groups=32, norm_eps=1e-5, downsample_padding=1,
    center_input_sample=False, dual_cross_attention=False, only_cross_attention=False, num_class_embeds=None,
    resnet_time_scale_shift="default", upcast_attention=True, mid_block_scale_factor=1, transformer_layers_per_block=1)

VARIANT_UNET = dict(  # the other options the core builds: conv projections, no class embedding,
    # sin-first timestep embedding with a shift, two transformer layers, pad-0 downsampling,
    # a mid-block output scale, centred input, eps 1e-6, time_embedding_dim
    sample_size=8, block_out_channels=[32, 64], layers_per_block=[1, 2],
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D"], cross_attention_dim=16,
    attention_head_dim=[2, 4], norm_num_groups=16, norm_eps=1e-6, use_linear_projection=False,
    flip_sin_to_cos=False, freq_shift=1, transformer_layers_per_block=[2, 1], downsample_padding=0,
    mid_block_scale_factor=0.5, center_input_sample=True, time_embedding_dim=96, upcast_attention=True)

REAL_UNET = dict(  # stabilityai/stable-diffusion-2-1-unclip unet/config.json (diffusers' converter)
    sample_size=96, in_channels=4, out_channels=4, block_out_channels=[320, 640, 1280, 1280], layers_per_block=2,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    mid_block_type="UNetMidBlock2DCrossAttn", cross_attention_dim=1024, attention_head_dim=[5, 10, 20, 20],
    use_linear_projection=True, class_embed_type="projection", projection_class_embeddings_input_dim=2048,
    flip_sin_to_cos=True, freq_shift=0, act_fn="silu", norm_num_groups=32, norm_eps=1e-5, downsample_padding=1,
    center_input_sample=False, dual_cross_attention=False, only_cross_attention=False, num_class_embeds=None,
    resnet_time_scale_shift="default", upcast_attention=False, mid_block_scale_factor=1)

TINY_VAE = dict(block_out_channels=[32, 64], layers_per_block=1, latent_channels=4, norm_num_groups=32,
                up_block_types=["UpDecoderBlock2D"] * 2, down_block_types=["DownEncoderBlock2D"] * 2,
                sample_size=32, scaling_factor=0.18215, in_channels=3, out_channels=3, act_fn="silu")

WIDE_VAE = dict(block_out_channels=[32, 64, 256], layers_per_block=2, latent_channels=4, norm_num_groups=32,
                up_block_types=["UpDecoderBlock2D"] * 3, down_block_types=["DownEncoderBlock2D"] * 3,
                sample_size=32, scaling_factor=0.18215, in_channels=3, out_channels=3, act_fn="silu")

PLAIN_VAE = dict(block_out_channels=[32, 32], layers_per_block=1, latent_channels=8, norm_num_groups=16,
                 up_block_types=["UpDecoderBlock2D"] * 2, down_block_types=["DownEncoderBlock2D"] * 2,
                 scaling_factor=0.5, shift_factor=0.25, use_post_quant_conv=False, mid_block_add_attention=False)

REAL_VAE = dict(block_out_channels=[128, 256, 512, 512], layers_per_block=2, latent_channels=4, norm_num_groups=32,
                up_block_types=["UpDecoderBlock2D"] * 4, down_block_types=["DownEncoderBlock2D"] * 4,
                sample_size=768, scaling_factor=0.18215, in_channels=3, out_channels=3, act_fn="silu")


def unet_case(out, name, cfg, seed, batch, h, w, t, ctx_len, variants=()):
    sd = make_unet(cfg, seed)
    c = unet_plan(cfg)["cfg"]
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch, c["in_channels"], h, w, generator=g)
    ctx = torch.randn(batch, ctx_len, per_block(c["cross_attention_dim"], 1)[0], generator=g)
    cdim = c["projection_class_embeddings_input_dim"] if c["class_embed_type"] == "projection" else 0
    cls = torch.randn(batch, cdim, generator=g) if cdim else None
    y = unet_forward(cfg, sd, x, t, ctx, cls)
    d = os.path.join(out, name)
    write_folder(d, cfg, sd)
    with open(os.path.join(d, "meta.txt"), "w") as f:
        f.write(f"unet {batch} {h} {w} {t!r} {ctx_len} {cdim}\n")
    f32(os.path.join(d, "x.f32"), x)
    f32(os.path.join(d, "ctx.f32"), ctx)
    if cls is not None:
        f32(os.path.join(d, "cls.f32"), cls)
    f32(os.path.join(d, "out.f32"), y)
    for v, fmt, half in variants:
        write_folder(os.path.join(out, f"{name}_{v}"), cfg, sd, fmt, half)
    print(f"{name}: out peak {float(y.abs().max()):.3g}")
    return sd


def vae_case(out, name, cfg, seed, h, w, old=False, fmt="safetensors"):
    sd = make_vae(cfg, seed, old)
    c = vae_plan(cfg)
    g = torch.Generator().manual_seed(seed + 1)
    lat = torch.randn(1, c["latent_channels"], h, w, generator=g) * c["scaling_factor"]
    img = vae_decode(cfg, sd, lat)[0]
    u8, ties = postprocess_u8(img)
    d = os.path.join(out, name)
    write_folder(d, cfg, sd, fmt, class_name="AutoencoderKL")
    with open(os.path.join(d, "meta.txt"), "w") as f:
        f.write(f"vae {h} {w}\n")
    f32(os.path.join(d, "lat.f32"), lat[0])
    f32(os.path.join(d, "img.f32"), img)
    u8.tofile(os.path.join(d, "img.u8"))
    with open(os.path.join(d, "ties.txt"), "w") as f:
        f.write(f"{ties}\n")
    print(f"{name}: image peak {float(img.abs().max()):.3g}, {ties} values near a rounding tie")
    return sd


def refusal(out, name, cfg, sd, expect, class_name="UNet2DConditionModel"):
    d = os.path.join(out, "bad_" + name)
    write_folder(d, cfg, sd, class_name=class_name)
    with open(os.path.join(d, "expect.txt"), "w") as f:
        f.write(expect)


def fixtures(out, stamp):
    torch.set_num_threads(1)
    os.makedirs(out, exist_ok=True)
    sd = unet_case(out, "unet_tiny", TINY_UNET, 11, 2, 16, 16, 951.0, 77,
                   variants=[("bin", "bin", False), ("fp16_st", "safetensors", True), ("fp16_bin", "bin", True)])
    unet_case(out, "unet_sd21", SD21_SHAPED, 12, 2, 16, 24, 501.0, 77)
    unet_case(out, "unet_variant", VARIANT_UNET, 13, 2, 8, 8, 1.0, 9)
    vsd = vae_case(out, "vae_tiny", TINY_VAE, 21, 8, 12)
    write_folder(os.path.join(out, "vae_tiny_bin"), TINY_VAE, vsd, "bin", class_name="AutoencoderKL")
    wsd = vae_case(out, "vae_wide_old", WIDE_VAE, 22, 6, 5, old=True, fmt="bin")
    # the same weights under the current attention names: the plan must write the same GGUF
    ren = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}
    a = "decoder.mid_block.attentions.0."
    new = {}
    for k, v in wsd.items():
        if k.startswith(a) and k[len(a):].split(".")[0] in ren:
            nm, rest = k[len(a):].split(".", 1)
            k = a + ren[nm] + "." + rest
        new[k] = v
    write_folder(os.path.join(out, "vae_wide_new"), WIDE_VAE, new, "safetensors", class_name="AutoencoderKL")
    vae_case(out, "vae_plain", PLAIN_VAE, 23, 7, 6)

    # what the plans must refuse, by name
    bad = dict(sd)
    del bad["down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k.weight"]
    refusal(out, "unet_missing", TINY_UNET, bad, "down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k.weight")
    bad = dict(sd)
    bad["down_blocks.0.attentions.0.extra.weight"] = torch.zeros(3)
    refusal(out, "unet_unknown", TINY_UNET, bad, "down_blocks.0.attentions.0.extra.weight")
    bad = dict(sd)
    bad["up_blocks.1.resnets.2.conv1.weight"] = torch.zeros(32, 63, 3, 3)
    refusal(out, "unet_shape", TINY_UNET, bad, "up_blocks.1.resnets.2.conv1.weight")
    for opt, val in [("resnet_time_scale_shift", "scale_shift"), ("class_embed_type", "timestep"),
                     ("addition_embed_type", "text"), ("dual_cross_attention", True),
                     ("only_cross_attention", True), ("time_cond_proj_dim", 8), ("attention_type", "gated"),
                     ("mid_block_type", "UNetMidBlock2DSimpleCrossAttn"), ("act_fn", "gelu"),
                     ("some_future_option", 1)]:
        cfg = copy.deepcopy(TINY_UNET)
        cfg[opt] = val
        refusal(out, "unet_opt_" + opt, cfg, sd, opt)
    cfg = copy.deepcopy(TINY_UNET)
    cfg["up_block_types"] = ["UpBlock2D", "SimpleCrossAttnUpBlock2D"]
    refusal(out, "unet_block_type", cfg, sd, "SimpleCrossAttnUpBlock2D")
    bad = dict(vsd)
    del bad["decoder.up_blocks.1.resnets.1.norm2.bias"]
    refusal(out, "vae_missing", TINY_VAE, bad, "decoder.up_blocks.1.resnets.1.norm2.bias", "AutoencoderKL")
    bad = dict(vsd)
    bad["decoder.mid_block.attentions.0.to_q.weight"] = torch.zeros(64, 32)
    refusal(out, "vae_shape", TINY_VAE, bad, "decoder.mid_block.attentions.0.to_q.weight", "AutoencoderKL")
    bad = dict(vsd)
    bad["decoder.up_blocks.0.attentions.0.weight"] = torch.zeros(2)
    refusal(out, "vae_unknown", TINY_VAE, bad, "decoder.up_blocks.0.attentions.0.weight", "AutoencoderKL")
    cfg = copy.deepcopy(TINY_VAE)
    cfg["up_block_types"] = ["UpDecoderBlock2D", "AttnUpDecoderBlock2D"]
    refusal(out, "vae_block_type", cfg, vsd, "AttnUpDecoderBlock2D", "AutoencoderKL")
    with open(stamp, "w") as f:
        f.write("ok\n")


# ---------------------------------------------------------------------------------------------
# real-size benchmark

def bench(out):
    os.makedirs(out, exist_ok=True)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    t0 = time.time()
    sd = make_unet(REAL_UNET, 1)
    print(f"# unet: {sum(v.numel() for v in sd.values()) / 1e6:.1f} M parameters (random, {time.time() - t0:.0f} s)")
    write_folder(os.path.join(out, "unet"), REAL_UNET, sd, half=True, keep=True)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 96, 96, generator=g)
    ctx = torch.randn(2, 77, 1024, generator=g)
    cls = torch.randn(2, 2048, generator=g)
    for fn, arr in (("x.f32", x), ("ctx.f32", ctx), ("cls.f32", cls)):
        f32(os.path.join(out, fn), arr)
    sd = {k: v.half().float() for k, v in sd.items()}  # what the fp16 file holds, computed in float32
    t0, c0 = time.time(), time.process_time()
    y = unet_forward(REAL_UNET, sd, x, 951.0, ctx, cls)
    tu, cu = time.time() - t0, time.process_time() - c0
    f32(os.path.join(out, "unet_out.f32"), y)
    print(f"pytorch unet_s {tu:.2f} cpu_s {cu:.1f}", flush=True)
    del sd
    vsd = make_vae(REAL_VAE, 3)
    write_folder(os.path.join(out, "vae"), REAL_VAE, vsd, half=True, class_name="AutoencoderKL", keep=True)
    vsd = {k: v.half().float() for k, v in vsd.items()}
    lat = torch.randn(1, 4, 96, 96, generator=g) * 0.18215
    f32(os.path.join(out, "lat.f32"), lat[0])
    t0, c0 = time.time(), time.process_time()
    img = vae_decode(REAL_VAE, vsd, lat)
    tv, cv = time.time() - t0, time.process_time() - c0
    f32(os.path.join(out, "img.f32"), img[0])
    print(f"pytorch vae_s {tv:.2f} cpu_s {cv:.1f}", flush=True)
    print(f"pytorch peak_rss_mb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}", flush=True)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--bench":
        bench(sys.argv[2])
    elif len(sys.argv) == 3:
        fixtures(sys.argv[1], sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Independent float32 PyTorch SEED image tokenizer (AnyGPT's image tokenizer), written from
/work/shared/specs/seed-image.md sections 1-3 and checked against the upstream architecture
(AILab-CVC/SEED MultiModalLLM/src/tokenizer/qformer, OpenMOSS/AnyGPT seed2/seed_qformer):
EVA-CLIP ViT-g/14 (BLIP-2 packaging: the 40-block file, the first depth = blocks - 1 run) ->
ln_vision (eps 1e-5) -> causal Q-Former (LayerNorm eps 1e-12 on the query embeddings, post-LN
layers, self-attention with BERT's additive -10000 causal mask, cross-attention to every image
token on the layers that have it, the query FFN) -> encode_task_layer -> nearest codeword.
Random weights; the module tree mirrors upstream's so state_dict() gives the published key names.
Upstream runs all of it in fp16 on a GPU; this reference is float32 (distances in float64).

usage:
  seed_tokenizer_ref.py OUTDIR STAMP        tiny fixtures for tests/seed
  seed_tokenizer_ref.py --demo OUTDIR       a tiny tokenizer (both published files) for the demo
                                            model set (tools/make-demo-models.sh)
  seed_tokenizer_ref.py --micro OUTDIR STAMP a much smaller tokenizer (56x56 input, one head each, 32
                                            queries, 8192 codes) for the element tests, with resize.*
                                            for it
  seed_tokenizer_ref.py --codes tiny|demo|micro DIR IMAGE OUT.i32
                                            the codes of an image file (PIL: convert("RGB"), bicubic
                                            resize, CLIP normalisation) with the tokenizer in DIR
                                            (eva_vit_g.pth + seed_quantizer.pt of that config); the
                                            top-2 gaps go to OUT.i32 with .gap.f32 for .i32
  seed_tokenizer_ref.py --bench OUTDIR      real-sized random checkpoint files (reused when present)
                                            + the timing of this reference's encode of one
                                            224x224 image on 2 threads (AG_BENCH_THREADS)

Fixtures (OUTDIR), tiny config (ViT width 352 = 4 heads of 88, 2 of 3 blocks run, MLP 1536;
Q-Former hidden 192 = 3 heads, 4 layers with cross-attention on 0 and 2, FFN 768; 224x224 input,
patch 14 -> 257 tokens; 32 queries; codebook 8192 x 32):
  tiny/eva_vit_g.pth, tiny/seed_quantizer.pt   the published layout and dtypes (ViT fp16, SEED fp32),
        with the keys encoding ignores: the ViT's last block; the Q-Former's text branch
        (word/position embeddings, position_ids int64, intermediate/output, cls head), the
        recon blocks, and the decode side (decode_task_layer, pos_embed_image, blocks_image,
        image_down, distill_image_proj)
  swapped/   the same weights with the dtypes swapped (ViT fp32, SEED fp16)
  img{i}.pix.f32 [3][224][224] normalised planar pixels, for i in 0..N_IMAGES-1, and for the
        float32 weights of tiny/: img{i}.vit.f32 [257][352] (ViT output, before ln_vision),
        img{i}.qf.f32 [32][192] (Q-Former output), img{i}.z.f32 [32][32], img{i}.codes.i32 [32],
        img{i}.gap.f32 [32] (relative distance gap (2nd - best) / best)
  h16.img{i}.*   the same outputs with the weights our f16 files hold (every >= 2-D weight but the
        codebook rounded to fp16)
  q8.img{i}.*    ... with the weights our q8_0 files hold (the f16 ones, matrices through Q8_0)
  q8a.img{i}.*   ... and the activations in front of those matrices through Q8_0 too, as the cpu
        backend's quantized dot products do
  q16/ + q16.img0.*   a tokenizer with 16 queries (bidirectional: upstream is causal only at 32),
        run on img0
  resize.rgb (u8 [240][320][3]) + resize.codes.i32: PIL bicubic resize to 224 + CLIP
        normalisation + encode, for the test of encode_image
  real_vit_keys.txt, real_seed_keys.txt: 'name dtype d0,d1,...' of the upstream modules'
        state_dict() at the real size (meta tensors: nothing allocated)
  bad_*/     folders the converter must refuse
"""
import math
import os
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

EVA_HEAD_DIM = 88
QF_HEAD_DIM = 64
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

TINY = dict(img=224, patch=14, vit_width=352, vit_blocks=3, vit_mlp=1536, qf_hidden=192, qf_layers=4, qf_ffn=768,
            cross_freq=2, n_query=32, n_embed=8192, code_dim=32, vocab=64, max_pos=48, img_feat=64, recon_depth=1,
            decode_depth=1, text=True)
# the demo's decode side stays usable by seed-unclip (blocks_image: 12 heads, so hidden 192)
DEMO = dict(TINY, vit_width=176, vit_blocks=2, vit_mlp=768, qf_layers=2, qf_ffn=384, img_feat=1024, recon_depth=0,
            decode_depth=2, text=False)
# the element tests' tokenizer: 56x56 input (17 ViT tokens), one head each, so an encode is cheap
# enough for valgrind; still 32 causal queries and AnyGPT's 8192 x 32 codebook
MICRO = dict(TINY, img=56, vit_width=88, vit_blocks=2, vit_mlp=352, qf_hidden=64, qf_layers=2, qf_ffn=256,
             img_feat=64, recon_depth=0, decode_depth=1, text=False)
# eva_vit_g: 1408 wide, 40 blocks in the file (39 run), mlp_ratio 4.3637 -> 6144; bert-base
REAL = dict(img=224, patch=14, vit_width=1408, vit_blocks=40, vit_mlp=6144, qf_hidden=768, qf_layers=12, qf_ffn=3072,
            cross_freq=2, n_query=32, n_embed=8192, code_dim=32, vocab=30523, max_pos=512, img_feat=1024,
            recon_depth=4, decode_depth=4, text=False)
N_IMAGES = 4

_ACT_Q8 = False  # emulate the cpu backend's Q8_0 activations in front of Q8_0 weights


def q8_0(x):
    """ggml Q8_0 round trip along the last dim (blocks of 32): d = amax / 127 stored as fp16,
    q = roundf(x / d) (halves away from zero) -> q * d."""
    b = x.reshape(-1, 32)
    d = b.abs().max(1, keepdim=True).values / 127.0
    v = b * torch.where(d != 0, 1.0 / d, torch.zeros_like(d))
    q = (torch.sign(v) * torch.floor(v.abs() + 0.5)).clamp(-127, 127)
    return (q * d.half().float()).reshape(x.shape)


def lin(x, weight, bias=None):
    if _ACT_Q8 and x.shape[-1] % 32 == 0:
        x = q8_0(x)
    return F.linear(x, weight, bias)

_DEV = None  # "meta" while listing the real-size keys


def param(*shape):
    return nn.Parameter(torch.zeros(*shape, device=_DEV))


def linear(i, o, bias=True):
    return nn.Linear(i, o, bias=bias, device=_DEV)


def layer_norm(n, eps):
    return nn.LayerNorm(n, eps=eps, device=_DEV)


# ---- EVA ViT-g as BLIP-2 packages it (eva_vit_g.pth keys) ----

class Mlp(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.fc1 = linear(d, hidden)
        self.fc2 = linear(hidden, d)


class EvaAttention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.q_bias = param(d)
        self.v_bias = param(d)
        self.qkv = linear(d, 3 * d, bias=False)
        self.proj = linear(d, d)


class EvaBlock(nn.Module):
    def __init__(self, d, mlp):
        super().__init__()
        self.norm1 = layer_norm(d, 1e-6)
        self.attn = EvaAttention(d)
        self.norm2 = layer_norm(d, 1e-6)
        self.mlp = Mlp(d, mlp)


class PatchEmbed(nn.Module):
    def __init__(self, d, p):
        super().__init__()
        self.proj = nn.Conv2d(3, d, kernel_size=p, stride=p, device=_DEV)


class EvaViT(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, n = c["vit_width"], (c["img"] // c["patch"]) ** 2
        self.cls_token = param(1, 1, d)
        self.pos_embed = param(1, n + 1, d)
        self.patch_embed = PatchEmbed(d, c["patch"])
        self.blocks = nn.ModuleList([EvaBlock(d, c["vit_mlp"]) for _ in range(c["vit_blocks"])])


def vit_forward(vit, img, depth):
    """img (3, S, S) -> (T, D): patches row-major after CLS, + pos, pre-LN blocks 0..depth-1."""
    d = vit.cls_token.shape[-1]
    heads = d // EVA_HEAD_DIM
    pe = vit.patch_embed.proj
    x = F.conv2d(img[None], pe.weight, pe.bias, stride=pe.stride)[0]  # (D, g, g)
    x = x.flatten(1).T
    x = torch.cat([vit.cls_token[0], x]) + vit.pos_embed[0]
    t = x.shape[0]
    for blk in vit.blocks[:depth]:
        h = F.layer_norm(x, (d,), blk.norm1.weight, blk.norm1.bias, 1e-6)
        a = blk.attn
        bias = torch.cat([a.q_bias, torch.zeros_like(a.q_bias), a.v_bias])  # K has no bias
        q, k, v = lin(h, a.qkv.weight, bias).reshape(t, 3, heads, EVA_HEAD_DIM).permute(1, 2, 0, 3)
        o = torch.softmax((q * EVA_HEAD_DIM ** -0.5) @ k.transpose(1, 2), -1) @ v
        x = x + lin(o.transpose(0, 1).reshape(t, d), a.proj.weight, a.proj.bias)
        h = F.layer_norm(x, (d,), blk.norm2.weight, blk.norm2.bias, 1e-6)
        x = x + lin(F.gelu(lin(h, blk.mlp.fc1.weight, blk.mlp.fc1.bias)), blk.mlp.fc2.weight, blk.mlp.fc2.bias)
    return x


# ---- the causal Q-Former (BertLMHeadModel of qformer_causual.py) and the SEED head ----

class BertSelf(nn.Module):
    def __init__(self, h, kv_width):
        super().__init__()
        self.query = linear(h, h)
        self.key = linear(kv_width, h)
        self.value = linear(kv_width, h)


class BertOut(nn.Module):
    def __init__(self, i, h):
        super().__init__()
        self.dense = linear(i, h)
        self.LayerNorm = layer_norm(h, 1e-12)


class BertAttention(nn.Module):
    def __init__(self, h, kv_width):
        super().__init__()
        setattr(self, "self", BertSelf(h, kv_width))
        self.output = BertOut(h, h)


class BertDense(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.dense = linear(i, o)


class BertLayer(nn.Module):
    def __init__(self, c, i):
        super().__init__()
        h = c["qf_hidden"]
        self.attention = BertAttention(h, h)
        if i % c["cross_freq"] == 0:
            self.crossattention = BertAttention(h, c["vit_width"])
        if c["text"]:  # the text branch: in the published file, unused by encoding
            self.intermediate = BertDense(h, c["qf_ffn"])
            self.output = BertOut(c["qf_ffn"], h)
        self.intermediate_query = BertDense(h, c["qf_ffn"])
        self.output_query = BertOut(c["qf_ffn"], h)


class BertEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["qf_hidden"]
        if c["text"]:
            self.word_embeddings = nn.Embedding(c["vocab"], h, device=_DEV)
            self.position_embeddings = nn.Embedding(c["max_pos"], h, device=_DEV)
        self.LayerNorm = layer_norm(h, 1e-12)
        self.register_buffer("position_ids", torch.arange(c["max_pos"], device=_DEV).expand((1, -1)))


class BertEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(c, i) for i in range(c["qf_layers"])])


class BertModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = BertEmbeddings(c)
        self.encoder = BertEncoder(c)


class Transform(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.dense = linear(h, h)
        self.LayerNorm = layer_norm(h, 1e-12)


class Predictions(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transform = Transform(c["qf_hidden"])
        self.decoder = linear(c["qf_hidden"], c["vocab"])
        self.bias = self.decoder.bias  # tied, saved under both names as BERT does


class Cls(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.predictions = Predictions(c)


class QformerLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bert = BertModel(c)
        if c["text"]:
            self.cls = Cls(c)


class VitBlock(nn.Module):  # vit.py Block: the recon / decode-side blocks (ignored here)
    def __init__(self, d):
        super().__init__()
        self.norm1 = layer_norm(d, 1e-6)
        self.attn = nn.Module()
        self.attn.qkv = linear(d, 3 * d)
        self.attn.proj = linear(d, d)
        self.norm2 = layer_norm(d, 1e-6)
        self.mlp = Mlp(d, 4 * d)


class Quantize(nn.Module):
    def __init__(self, n, d):
        super().__init__()
        self.embedding = nn.Embedding(n, d, device=_DEV)


class SeedQuantizer(nn.Module):
    """Blip2QformerQuantizer without its visual_encoder (seed_quantizer.pt does not hold it)."""

    def __init__(self, c):
        super().__init__()
        h, q = c["qf_hidden"], c["n_query"]
        self.ln_vision = layer_norm(c["vit_width"], 1e-5)
        self.Qformer = QformerLM(c)
        self.query_tokens = param(1, q, h)
        self.quantize = Quantize(c["n_embed"], c["code_dim"])
        self.encode_task_layer = nn.Sequential(linear(h, h), nn.Tanh(), linear(h, c["code_dim"]))
        self.decode_task_layer = nn.Sequential(linear(c["code_dim"], c["code_dim"]), nn.Tanh(),
                                               linear(c["code_dim"], h))
        self.pos_embed = param(1, q, h)
        self.blocks = nn.ModuleList([VitBlock(h) for _ in range(c["recon_depth"])])
        self.pos_embed_image = param(1, q, h)
        self.blocks_image = nn.ModuleList([VitBlock(h) for _ in range(c["decode_depth"])])
        self.image_down = nn.Sequential(linear(h, 256, False), nn.ReLU(), linear(256, 128, False), nn.ReLU(),
                                        linear(128, 32, False))
        self.distill_image_proj = linear(q * 32, c["img_feat"])


def bert_attention(m, h, kv, mask):
    """BertAttention: scores / sqrt(64) (+ additive mask), softmax, context, post-LN residual."""
    s = getattr(m, "self")
    n, hid = h.shape[0], h.shape[1]
    heads = hid // QF_HEAD_DIM

    def split(t):
        return t.reshape(t.shape[0], heads, QF_HEAD_DIM).transpose(0, 1)

    q, k, v = (split(lin(x, m.weight, m.bias)) for x, m in ((h, s.query), (kv, s.key), (kv, s.value)))
    sc = q @ k.transpose(1, 2) / math.sqrt(QF_HEAD_DIM)
    if mask is not None:
        sc = sc + mask
    ctx = (torch.softmax(sc, -1) @ v).transpose(0, 1).reshape(n, hid)
    o = lin(ctx, m.output.dense.weight, m.output.dense.bias)
    return F.layer_norm(o + h, (hid,), m.output.LayerNorm.weight, m.output.LayerNorm.bias, 1e-12)


def qformer_forward(sq, img_embeds):
    """img_embeds (T, Dv) after ln_vision -> (Q, H)."""
    e = sq.Qformer.bert.embeddings
    hq = sq.query_tokens[0]
    hid = hq.shape[1]
    h = F.layer_norm(hq, (hid,), e.LayerNorm.weight, e.LayerNorm.bias, 1e-12)
    nq = h.shape[0]
    # BERT's extended causal mask; qformer_causual.py makes the queries causal only when there
    # are exactly 32 of them (is_casual = query_embeds.shape[1] == 32)
    mask = (1.0 - torch.tril(torch.ones(nq, nq))) * -10000.0 if nq == 32 else None
    for layer in sq.Qformer.bert.encoder.layer:
        h = bert_attention(layer.attention, h, h, mask)
        if hasattr(layer, "crossattention"):
            h = bert_attention(layer.crossattention, h, img_embeds, None)  # all-ones mask -> 0
        up, down = layer.intermediate_query.dense, layer.output_query.dense
        f = lin(F.gelu(lin(h, up.weight, up.bias)), down.weight, down.bias)
        ln = layer.output_query.LayerNorm
        h = F.layer_norm(f + h, (hid,), ln.weight, ln.bias, 1e-12)
    return h


def encode(vit, sq, depth, pix):
    """pix (3, S, S) normalised -> dict of intermediates, codes, relative top-2 gaps."""
    with torch.no_grad():
        feats = vit_forward(vit, pix, depth)
        img = F.layer_norm(feats, (feats.shape[1],), sq.ln_vision.weight, sq.ln_vision.bias, 1e-5)
        h = qformer_forward(sq, img)
        t = sq.encode_task_layer
        z = lin(torch.tanh(lin(h, t[0].weight, t[0].bias)), t[2].weight, t[2].bias)
        cb = sq.quantize.embedding.weight.double()
        dist = ((z.double()[:, None, :] - cb[None]) ** 2).sum(-1)
        top = torch.topk(dist, 2, largest=False)  # ties: topk on equal values keeps index order
        codes = top.indices[:, 0]
        gap = (top.values[:, 1] - top.values[:, 0]) / top.values[:, 0].clamp_min(1e-30)
    return dict(vit=feats, qf=h, z=z, codes=codes, gap=gap)


# ---- random weights ----

def init_random(module, gen, c):
    """Linear/conv ~ N(0, 1/fan_in); norms 1 +- 0.1; biases, tokens, positions modest; the
    codebook at the scale of z so nearest codewords are spread over the book."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or "LayerNorm.weight" in name or \
                    name.startswith("ln_vision.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif p.dim() >= 2 and name not in ("cls_token", "pos_embed", "query_tokens", "pos_embed_image"):
                # Q-Former query/key 2x: sharper attention, so the 32 queries (and codes) differ
                # more, while the network stays smooth enough for 8-bit weights
                gain = 2.0 if name.endswith("self.query.weight") or name.endswith("self.key.weight") else 1.0
                p.copy_(torch.randn(p.shape, generator=gen) * (gain / math.sqrt(p[0].numel())))
            elif name in ("cls_token", "pos_embed", "pos_embed_image", "query_tokens"):
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            else:  # biases, q_bias / v_bias, LayerNorm biases
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        if isinstance(module, SeedQuantizer):
            # random directions at z's typical norm (|z| ~ 0.65 sqrt(32)): equal norms keep a few
            # short codewords from being everyone's nearest
            cb = module.quantize.embedding.weight
            d = torch.randn(cb.shape, generator=gen)
            norm = 0.65 * math.sqrt(cb.shape[1]) * (1.0 + 0.05 * torch.randn(cb.shape[0], 1, generator=gen))
            cb.copy_(d / d.norm(dim=1, keepdim=True) * norm)


def make_models(c, seed):
    gen = torch.Generator().manual_seed(seed)
    vit, sq = EvaViT(c).eval(), SeedQuantizer(c).eval()
    init_random(vit, gen, c)
    init_random(sq, gen, c)
    # the ViT is published in fp16: keep values fp16-exact so both dtypes hold the same model
    with torch.no_grad():
        for p in vit.parameters():
            p.copy_(p.half().float())
    return vit, sq


def save_state(path, sd, dtype):
    """A flat state dict as torch.save writes it; float tensors in dtype, int buffers kept."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    out = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in sd.items()}
    torch.save(out, path)


def write_pair(folder, vit, sq, vit_dtype=torch.float16, seed_dtype=torch.float32, vit_extra=None, seed_extra=None,
               drop=()):
    vsd, ssd = dict(vit.state_dict()), dict(sq.state_dict())
    for k in drop:
        vsd.pop(k, None)
        ssd.pop(k, None)
    vsd.update(vit_extra or {})
    ssd.update(seed_extra or {})
    save_state(os.path.join(folder, "eva_vit_g.pth"), vsd, vit_dtype)
    save_state(os.path.join(folder, "seed_quantizer.pt"), ssd, seed_dtype)


def f16_rounded(vit, sq):
    """The model our f16 files hold: every >= 2-D weight except the codebook rounded to fp16."""
    import copy
    v2, s2 = copy.deepcopy(vit), copy.deepcopy(sq)
    with torch.no_grad():
        for m in (v2, s2):
            for name, p in m.named_parameters():
                if name.endswith("weight") and p.dim() >= 2 and name != "quantize.embedding.weight":
                    p.copy_(p.half().float())
    return v2, s2


def q8_rounded(vit, sq):
    """The model our q8_0 files hold (anygpt-quantize of the f16 file): the f16 model with every
    2-D weight whose rows are whole 32-blocks round-tripped through Q8_0."""
    v2, s2 = f16_rounded(vit, sq)
    with torch.no_grad():
        for m in (v2, s2):
            for name, p in m.named_parameters():
                if name.endswith("weight") and p.dim() == 2 and p.shape[1] % 32 == 0 and \
                        name != "quantize.embedding.weight":
                    p.copy_(q8_0(p))
    return v2, s2


def test_images(c, n):
    """n uint8 RGB images (S, S, 3): noise, a smooth gradient with stripes, blocks, a soft blob."""
    s = c["img"]
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
    imgs = [rng.integers(0, 256, (s, s, 3))]
    imgs.append(np.stack([255 * xx, 255 * yy, 127 + 120 * np.sin(12 * xx + 5 * yy)], -1))
    blocks = np.kron(rng.integers(0, 256, (7, 7, 3)), np.ones((32, 32, 1)))
    imgs.append(blocks)
    blob = np.exp(-((xx - 0.4) ** 2 + (yy - 0.6) ** 2) / 0.05)
    imgs.append(np.stack([200 * blob + 30, 90 + 80 * xx, 255 * (1 - blob)], -1))
    return [np.clip(np.round(i), 0, 255).astype(np.uint8) for i in imgs[:n]]


def normalise(rgb):
    """uint8 (H, W, 3) -> planar float32 (3, H, W) as ToTensor + Normalize."""
    x = torch.from_numpy(rgb.astype(np.float32) / np.float32(255.0)).permute(2, 0, 1)
    return (x - torch.tensor(CLIP_MEAN)[:, None, None]) / torch.tensor(CLIP_STD)[:, None, None]


def w(path, arr, dtype):
    np.ascontiguousarray(arr, dtype=dtype).tofile(path)


def write_outputs(base, r):
    w(base + ".vit.f32", r["vit"].numpy(), np.float32)
    w(base + ".qf.f32", r["qf"].numpy(), np.float32)
    w(base + ".z.f32", r["z"].numpy(), np.float32)
    w(base + ".codes.i32", r["codes"].numpy(), np.int32)
    w(base + ".gap.f32", r["gap"].numpy(), np.float32)


DTYPE_NAMES = {torch.float32: "f32", torch.float16: "f16", torch.int64: "i64"}


def list_keys(path, sd, float_dtype):
    with open(path, "w") as f:
        for k, v in sd.items():
            dt = DTYPE_NAMES[float_dtype if v.is_floating_point() else v.dtype]
            f.write(f"{k} {dt} {','.join(str(s) for s in v.shape)}\n")


def real_keys(out):
    """Names and shapes of the upstream state dicts at the real size, on the meta device."""
    global _DEV
    _DEV = "meta"
    try:
        list_keys(os.path.join(out, "real_vit_keys.txt"), EvaViT(REAL).state_dict(), torch.float16)
        list_keys(os.path.join(out, "real_seed_keys.txt"), SeedQuantizer(REAL).state_dict(), torch.float32)
    finally:
        _DEV = None


def fixtures(out, stamp):
    c = TINY
    depth = c["vit_blocks"] - 1
    vit, sq = make_models(c, 5)
    write_pair(os.path.join(out, "tiny"), vit, sq)
    write_pair(os.path.join(out, "swapped"), vit, sq, torch.float32, torch.float16)
    global _ACT_Q8
    v16, s16 = f16_rounded(vit, sq)
    v8, s8 = q8_rounded(vit, sq)
    for i, rgb in enumerate(test_images(c, N_IMAGES)):
        pix = normalise(rgb)
        w(os.path.join(out, f"img{i}.pix.f32"), pix.numpy(), np.float32)
        write_outputs(os.path.join(out, f"img{i}"), encode(vit, sq, depth, pix))
        write_outputs(os.path.join(out, f"h16.img{i}"), encode(v16, s16, depth, pix))
        write_outputs(os.path.join(out, f"q8.img{i}"), encode(v8, s8, depth, pix))
        _ACT_Q8 = True
        write_outputs(os.path.join(out, f"q8a.img{i}"), encode(v8, s8, depth, pix))
        _ACT_Q8 = False
    # 16 queries: upstream's Q-Former is then not causal (is_casual needs exactly 32)
    cq = dict(c, n_query=16)
    vq, sqq = make_models(cq, 6)
    write_pair(os.path.join(out, "q16"), vq, sqq)
    write_outputs(os.path.join(out, "q16.img0"), encode(vq, sqq, depth, normalise(test_images(c, 1)[0])))
    # an odd-sized frame through PIL's bicubic resize, for encode_image
    resize_fixture(out, c, vit, sq)
    real_keys(out)
    bad_folders(out, vit, sq)
    with open(stamp, "w") as f:
        f.write("ok\n")


def resize_fixture(out, c, vit, sq):
    """resize.rgb: a 320x240 frame; resize.codes.i32 / .gap.f32: its codes through PIL's
    bicubic resize to the model's input size."""
    from PIL import Image
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:240, 0:320].astype(np.float32)
    src = np.stack([xx * 0.8, yy, 128 + 100 * np.sin(xx / 9.0) * np.cos(yy / 13.0)], -1) + rng.normal(0, 12, (240, 320, 3))
    src = np.clip(np.round(src), 0, 255).astype(np.uint8)
    src.tofile(os.path.join(out, "resize.rgb"))
    small = np.asarray(Image.fromarray(src, "RGB").resize((c["img"], c["img"]), Image.BICUBIC))
    r = encode(vit, sq, c["vit_blocks"] - 1, normalise(small))
    w(os.path.join(out, "resize.codes.i32"), r["codes"].numpy(), np.int32)
    w(os.path.join(out, "resize.gap.f32"), r["gap"].numpy(), np.float32)


def micro(out, stamp):
    """The element tests' tokenizer (MICRO) in the published layout, with resize.* for it."""
    vit, sq = make_models(MICRO, 12)
    write_pair(out, vit, sq)
    resize_fixture(out, MICRO, vit, sq)
    with open(stamp, "w") as f:
        f.write("ok\n")


def bad_folders(out, vit, sq):
    """Inputs the converter must refuse, each naming what is wrong."""
    write_pair(os.path.join(out, "bad_missing"), vit, sq, drop=["Qformer.bert.encoder.layer.1.attention.self.key.bias"])
    write_pair(os.path.join(out, "bad_cross"), vit, sq,
               drop=["Qformer.bert.encoder.layer.2.crossattention.self.value.weight"])
    write_pair(os.path.join(out, "bad_unknown"), vit, sq,
               seed_extra={"Qformer.bert.encoder.layer.0.attention.self.distance_embedding.weight": torch.zeros(3, 4)})
    write_pair(os.path.join(out, "bad_unknown_vit"), vit, sq,
               vit_extra={"blocks.0.attn.relative_position_bias_table": torch.zeros(5, 4)})
    d = vit.cls_token.shape[-1]
    write_pair(os.path.join(out, "bad_shape"), vit, sq, vit_extra={"blocks.1.mlp.fc1.weight": torch.zeros(100, d)})
    write_pair(os.path.join(out, "bad_width"), vit, sq,
               seed_extra={"Qformer.bert.encoder.layer.0.crossattention.self.key.weight": torch.zeros(192, 300)})
    write_pair(os.path.join(out, "bad_trunc"), vit, sq)
    path = os.path.join(out, "bad_trunc", "eva_vit_g.pth")
    with open(path, "rb") as f:
        blob = f.read()
    with open(path, "wb") as f:
        f.write(blob[: len(blob) * 2 // 3])
    os.makedirs(os.path.join(out, "bad_nofile"), exist_ok=True)
    shutil.copy(os.path.join(out, "tiny", "eva_vit_g.pth"), os.path.join(out, "bad_nofile", "eva_vit_g.pth"))


def demo(out):
    """The demo set's tokenizer: published key layout, ViT fp16; the SEED file in fp16 too (the
    converters take either dtype) to keep it small."""
    vit, sq = make_models(DEMO, 9)
    write_pair(out, vit, sq, torch.float16, torch.float16)


def image_codes(config, folder, image, out):
    """The reference's whole path for one image file: PIL opens it and converts to RGB, resizes
    straight to the input size (bicubic), ToTensor + Normalize, encode with the weights of the
    two published files in folder."""
    from PIL import Image
    c = {"tiny": TINY, "demo": DEMO, "micro": MICRO}[config]
    vit, sq = EvaViT(c).eval(), SeedQuantizer(c).eval()
    for m, name in ((vit, "eva_vit_g.pth"), (sq, "seed_quantizer.pt")):
        sd = torch.load(os.path.join(folder, name), map_location="cpu")
        m.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()}, strict=True)
    rgb = np.asarray(Image.open(image).convert("RGB").resize((c["img"], c["img"]), Image.BICUBIC))
    r = encode(vit, sq, c["vit_blocks"] - 1, normalise(rgb))
    w(out, r["codes"].numpy(), np.int32)
    w(out[:-4] + ".gap.f32" if out.endswith(".i32") else out + ".gap.f32", r["gap"].numpy(), np.float32)


def bench(out):
    """Real-sized random files for the converter (written once), then this reference's encode of
    one 224x224 image on 2 threads, best of 2 after a warm-up; prints 'torch_s X', writes
    bench.pix.f32 / bench.codes.i32 / bench.gap.f32 for a cross-check of the codes."""
    torch.set_num_threads(int(os.environ.get("AG_BENCH_THREADS", "2")))
    c = REAL
    t0 = time.perf_counter()
    vit, sq = make_models(c, 1)
    if not os.path.exists(os.path.join(out, "seed_quantizer.pt")):
        write_pair(out, vit, sq)
    print(f"random real-size model ready in {time.perf_counter() - t0:.1f} s", flush=True)
    pix = normalise(test_images(c, 2)[1])
    w(os.path.join(out, "bench.pix.f32"), pix.numpy(), np.float32)
    depth = c["vit_blocks"] - 1
    encode(vit, sq, depth, pix)  # warm-up
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        r = encode(vit, sq, depth, pix)
        best = min(best, time.perf_counter() - t0)
    w(os.path.join(out, "bench.codes.i32"), r["codes"].numpy(), np.int32)
    w(os.path.join(out, "bench.gap.f32"), r["gap"].numpy(), np.float32)
    print(f"torch_s {best:.4f}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--bench":
        bench(sys.argv[2])
    elif len(sys.argv) == 6 and sys.argv[1] == "--codes":
        image_codes(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "--micro":
        micro(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "--demo":
        demo(sys.argv[2])
    elif len(sys.argv) == 3:
        fixtures(sys.argv[1], sys.argv[2])
    else:
        sys.exit(__doc__)

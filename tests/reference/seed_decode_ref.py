#!/usr/bin/env python3
"""Independent PyTorch SEED decode MLP, written from AnyGPT seed2/seed_qformer/qformer_quantizer.py
(Blip2QformerQuantizer.get_codebook_entry with blocks_for_image and without use_qformer_image) and
seed2/seed_qformer/vit.py (Block), as /work/shared/specs/seed-image.md section 4 describes:

  codes -> quantize.embedding (codebook) -> decode_task_layer Linear -> tanh -> Linear
  -> + pos_embed_image -> blocks_image (pre-LN: x += proj(attn(norm1 x)); x += fc2(gelu(fc1(norm2 x)));
     12 heads (fixed in the reference code), fused qkv with bias, LayerNorm eps 1e-6, exact GELU,
     bidirectional, no final norm)
  -> image_down Linear(no bias) ReLU Linear(no bias) ReLU Linear(no bias)
  -> reshape token-major -> distill_image_proj Linear

Weights are random, under seed_quantizer.pt's key names, together with a sample of the keys of the
rest of that file (encoder side, Q-Former, recon branch) that a converter must ignore. Used by
make_unclip_fixtures.py; not a command of its own.
"""
import math

import torch
import torch.nn.functional as F

HEADS = 12
EPS = 1e-6

# shapes: the published file has n 32, codebook 8192 x 32, dim 768 (Q-Former hidden), depth 4,
# down 256/128/32, embed 1024; the fixtures use a small model of the same structure
TINY = dict(n=32, K=512, cd=32, dim=96, depth=2, ff=384, down=(48, 24, 8), embed=32)


def weights(c, gen):
    def rn(*s, scale=1.0, shift=0.0):
        return torch.randn(*s, generator=gen) * scale + shift

    def lin(o, i):
        return rn(o, i, scale=1.0 / math.sqrt(i))

    d, sd = c["dim"], {}
    sd["quantize.embedding.weight"] = rn(c["K"], c["cd"], scale=0.5)
    sd["decode_task_layer.0.weight"], sd["decode_task_layer.0.bias"] = lin(c["cd"], c["cd"]), rn(c["cd"], scale=0.1)
    sd["decode_task_layer.2.weight"], sd["decode_task_layer.2.bias"] = lin(d, c["cd"]), rn(d, scale=0.1)
    sd["pos_embed_image"] = rn(1, c["n"], d, scale=0.2)
    for i in range(c["depth"]):
        p = f"blocks_image.{i}."
        for n in ("norm1", "norm2"):
            sd[p + n + ".weight"], sd[p + n + ".bias"] = rn(d, scale=0.1, shift=1.0), rn(d, scale=0.1)
        sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"] = lin(3 * d, d), rn(3 * d, scale=0.1)
        sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"] = lin(d, d), rn(d, scale=0.1)
        sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"] = lin(c["ff"], d), rn(c["ff"], scale=0.1)
        sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"] = lin(d, c["ff"]), rn(d, scale=0.1)
    dims = (d,) + tuple(c["down"])
    for j in range(3):
        sd[f"image_down.{2 * j}.weight"] = lin(dims[j + 1], dims[j])
    sd["distill_image_proj.weight"] = lin(c["embed"], c["n"] * dims[3])
    sd["distill_image_proj.bias"] = rn(c["embed"], scale=0.1)
    return sd


def ignored_keys(c, gen):
    """A sample of what else seed_quantizer.pt holds (or what SEED's training model saves), small
    shapes: the converter must skip these by its explicit list."""
    d = c["dim"]
    r = lambda *s: torch.randn(*s, generator=gen)
    q = "Qformer.bert."
    return {q + "embeddings.LayerNorm.weight": r(d), q + "embeddings.word_embeddings.weight": r(7, d),
            q + "embeddings.position_ids": torch.arange(5)[None],
            q + "encoder.layer.0.attention.self.query.weight": r(d, d),
            q + "encoder.layer.0.crossattention.self.key.weight": r(d, 16),
            q + "encoder.layer.0.intermediate_query.dense.bias": r(8), q + "encoder.layer.0.output.LayerNorm.bias": r(d),
            "Qformer.cls.predictions.bias": r(7), "query_tokens": r(1, c["n"], d), "ln_vision.weight": r(16),
            "encode_task_layer.0.weight": r(d, d), "encode_task_layer.2.bias": r(c["cd"]),
            "pos_embed": r(1, c["n"], d), "blocks.0.norm1.weight": r(d), "blocks.3.mlp.fc2.bias": r(d),
            "pos_embed_text": r(1, c["n"], d), "blocks_text.0.attn.qkv.weight": r(3 * d, d),
            "distill_text_proj.weight": r(8, d), "vision_proj.weight": r(8, d), "text_proj.bias": r(8),
            "itm_head.weight": r(2, d), "temp": r(1)}


def block(sd, p, x):
    n, d = x.shape
    dh = d // HEADS
    h = F.layer_norm(x, (d,), sd[p + "norm1.weight"], sd[p + "norm1.bias"], EPS)
    qkv = F.linear(h, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"]).reshape(n, 3, HEADS, dh).permute(1, 2, 0, 3)
    q, k, v = qkv[0], qkv[1], qkv[2]
    a = torch.softmax((q @ k.transpose(-2, -1)) * dh ** -0.5, -1) @ v
    x = x + F.linear(a.transpose(0, 1).reshape(n, d), sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
    h = F.layer_norm(x, (d,), sd[p + "norm2.weight"], sd[p + "norm2.bias"], EPS)
    h = F.gelu(F.linear(h, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"]))
    return x + F.linear(h, sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])


def forward(sd, codes):
    """codes (n,) -> the image embedding (embed,), float32."""
    z = sd["quantize.embedding.weight"][torch.tensor(codes, dtype=torch.long)]
    h = torch.tanh(F.linear(z, sd["decode_task_layer.0.weight"], sd["decode_task_layer.0.bias"]))
    h = F.linear(h, sd["decode_task_layer.2.weight"], sd["decode_task_layer.2.bias"])
    x = h + sd["pos_embed_image"][0]
    i = 0
    while f"blocks_image.{i}.norm1.weight" in sd:
        x = block(sd, f"blocks_image.{i}.", x)
        i += 1
    r = torch.relu(F.linear(x, sd["image_down.0.weight"]))
    r = torch.relu(F.linear(r, sd["image_down.2.weight"]))
    r = F.linear(r, sd["image_down.4.weight"])
    return F.linear(r.reshape(-1), sd["distill_image_proj.weight"], sd["distill_image_proj.bias"])

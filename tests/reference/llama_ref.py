"""Independent LLaMA reference (PyTorch, float64) on a checkpoint in the published HF layout.

Written from the LLaMA paper and the HF checkpoint layout: RMSNorm, rotary embeddings applied the
HF way (rotate_half on the unpermuted q/k projections), grouped-query attention, SwiGLU. It reads
the HF folder directly, so comparing it with our GGUF run checks the converter's Q/K permutation
and our interleaved rotary together.

usage: llama_ref.py HF_DIR OUT.bin --prompt ID,ID,... --greedy N [--weights-as f16|q8_0|q4_0]

--weights-as rounds the matrices to what a GGUF of that type stores (f16: every 2-D tensor, as
anygpt-convert --dtype f16; q8_0/q4_0: every 2-D tensor whose rows are whole 32-blocks, as
anygpt-quantize), with the independent numpy block quantizers of ops_numeric.py. Rows are
quantized along the input dimension, so the converter's Q/K row permutation does not change the
values. What remains between this and our run is our own arithmetic (for quantized weights:
the Q8_0 rounding of activations).
OUT.bin (little-endian): u32 n_vocab, u32 n_prompt, u32 n_greedy, f32 logits[n_prompt][n_vocab]
(every prompt position), i32 greedy[n_greedy] (continuation of the prompt, argmax each step).
"""

import argparse
import json
import math
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ops_numeric import encode  # noqa: E402


def load_state_dict(folder):
    idx_bin = os.path.join(folder, "pytorch_model.bin.index.json")
    idx_st = os.path.join(folder, "model.safetensors.index.json")
    files = []
    if os.path.exists(idx_bin):
        files = sorted(set(json.load(open(idx_bin))["weight_map"].values()))
    elif os.path.exists(os.path.join(folder, "pytorch_model.bin")):
        files = ["pytorch_model.bin"]
    elif os.path.exists(idx_st) or os.path.exists(os.path.join(folder, "model.safetensors")):
        raise SystemExit("llama_ref.py reads torch .bin checkpoints (the safetensors variant holds the same values)")
    sd = {}
    for f in files:
        sd.update(torch.load(os.path.join(folder, f), map_location="cpu"))
    return {k: v.to(torch.float64) for k, v in sd.items()}


def round_weights(sd, kind):
    out = {}
    for k, v in sd.items():
        if v.dim() == 2 and (kind == "f16" or v.shape[1] % 32 == 0):
            v = torch.from_numpy(encode(v.numpy().astype("float32"), kind)[1]).reshape(v.shape)
        out[k] = v
    return out


class Llama:
    def __init__(self, folder, weights_as=None):
        cfg = json.load(open(os.path.join(folder, "config.json")))
        self.n_layer = cfg["num_hidden_layers"]
        self.n_head = cfg["num_attention_heads"]
        self.n_head_kv = cfg.get("num_key_value_heads", self.n_head)
        self.dim = cfg["hidden_size"]
        self.eps = cfg["rms_norm_eps"]
        self.theta = cfg.get("rope_theta", 10000.0)
        self.hd = self.dim // self.n_head
        self.w = load_state_dict(folder)
        if weights_as:
            self.w = round_weights(self.w, weights_as)

    def rms(self, x, w):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + self.eps) * w

    def rotary(self, x, pos):
        # x [T, H, hd]; HF convention: angle for dims i and i + hd/2 share frequency i
        half = self.hd // 2
        inv = self.theta ** (-torch.arange(0, half, dtype=torch.float64) * 2.0 / self.hd)
        ang = pos[:, None].to(torch.float64) * inv[None, :]          # [T, half]
        cos = torch.cat([ang.cos(), ang.cos()], -1)[:, None, :]
        sin = torch.cat([ang.sin(), ang.sin()], -1)[:, None, :]
        rot = torch.cat([-x[..., half:], x[..., :half]], -1)
        return x * cos + rot * sin

    def forward(self, ids):
        """All positions' logits for the whole sequence (no cache: recomputed from scratch)."""
        w = self.w
        T = len(ids)
        x = w["model.embed_tokens.weight"][torch.tensor(ids)]
        pos = torch.arange(T)
        causal = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
        rep = self.n_head // self.n_head_kv
        for i in range(self.n_layer):
            p = f"model.layers.{i}."
            h = self.rms(x, w[p + "input_layernorm.weight"])
            q = (h @ w[p + "self_attn.q_proj.weight"].T).view(T, self.n_head, self.hd)
            k = (h @ w[p + "self_attn.k_proj.weight"].T).view(T, self.n_head_kv, self.hd)
            v = (h @ w[p + "self_attn.v_proj.weight"].T).view(T, self.n_head_kv, self.hd)
            q, k = self.rotary(q, pos), self.rotary(k, pos)
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
            s = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(self.hd) + causal
            a = torch.einsum("hqk,khd->qhd", torch.softmax(s, -1), v).reshape(T, self.dim)
            x = x + a @ w[p + "self_attn.o_proj.weight"].T
            h = self.rms(x, w[p + "post_attention_layernorm.weight"])
            g = h @ w[p + "mlp.gate_proj.weight"].T
            u = h @ w[p + "mlp.up_proj.weight"].T
            x = x + (torch.nn.functional.silu(g) * u) @ w[p + "mlp.down_proj.weight"].T
        x = self.rms(x, w["model.norm.weight"])
        head = w["lm_head.weight"] if "lm_head.weight" in w else w["model.embed_tokens.weight"]
        return x @ head.T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hf_dir")
    ap.add_argument("out")
    ap.add_argument("--prompt", required=True)
    ap.add_argument("--greedy", type=int, default=64)
    ap.add_argument("--weights-as", choices=["f16", "q8_0", "q4_0"])
    a = ap.parse_args()
    prompt = [int(t) for t in a.prompt.split(",")]
    m = Llama(a.hf_dir, a.weights_as)
    with torch.no_grad():
        logits = m.forward(prompt)
        seq = list(prompt)
        greedy = []
        last = logits[-1]
        for _ in range(a.greedy):
            nxt = int(torch.argmax(last))
            greedy.append(nxt)
            seq.append(nxt)
            last = m.forward(seq)[-1]
    n_vocab = logits.shape[1]
    with open(a.out, "wb") as f:
        f.write(struct.pack("<III", n_vocab, len(prompt), len(greedy)))
        f.write(logits.to(torch.float32).numpy().astype("<f4").tobytes())
        f.write(struct.pack(f"<{len(greedy)}i", *greedy))
    print(f"llama_ref: {len(prompt)} prompt tokens, {n_vocab} vocab, greedy {greedy[:8]}...", file=sys.stderr)


if __name__ == "__main__":
    main()

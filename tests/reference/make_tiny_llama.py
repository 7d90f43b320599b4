#!/usr/bin/env python3
"""Tiny random AnyGPT-style LLaMA checkpoints in the published HF layout, plus the expected GGUF
content computed independently in numpy (llama.cpp's documented Q/K permutation, its vocabulary
rules), plus broken variants the converter must refuse.

usage: make_tiny_llama.py OUTDIR STAMP
       make_tiny_llama.py --demo OUTDIR   one well-conditioned chat checkpoint whose vocab has
                                          AnyGPT's full added-token set (1024 speech, 8192 image,
                                          8192 music codes) in OUTDIR: the demo model set's LLM
                                          (tools/make-demo-models.sh), random weights
OUTDIR/<variant>/...            the HF folders
OUTDIR/<variant>.expected.bin   tensors: per record u32 name_len, name, u32 n_dims, u64 ne[] (ggml
                                order), f32 data, then (2-D only) the f16 bits numpy rounds to
                                (general.file_type depends on --dtype: the test checks it)
OUTDIR/<variant>.expected.json  {"kv": {...}, "tokens": [...], "scores": [...], "types": [...]}
"""
import io
import json
import os
import shutil
import struct
import sys
import zipfile

import numpy as np
import sentencepiece as spm
import torch

if len(sys.argv) != 3:
    sys.exit(__doc__)
DEMO = sys.argv[1] == "--demo"
OUT = sys.argv[2] if DEMO else sys.argv[1]
STAMP = None if DEMO else sys.argv[2]
# codes per modality in the vocab: the test fixtures keep 6 (small files); the demo model has the
# published counts so every code the speech / image / music models produce has a token
N_IMAGE, N_SPEECH, N_MUSIC = (8192, 1024, 8192) if DEMO else (6, 6, 6)
CTX = 4096 if DEMO else 512  # the demo's voice turns and music items need more than 512

DIM, FF, LAYERS, HEADS = 64, 172, 2, 4
rng = np.random.default_rng(1234)
torch.manual_seed(1234)

# ---- a small SentencePiece BPE model (byte fallback like LLaMA's) ----
SYL = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ve", "an", "el", "is", "or", "um", "the", "ing"]


def corpus():
    r = np.random.default_rng(7)
    for _ in range(3000):
        words = ["".join(r.choice(SYL, size=r.integers(1, 4))) for _ in range(r.integers(3, 12))]
        yield " ".join(words) + "."


def train_spm(vocab_size):
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=corpus(), model_writer=buf, vocab_size=vocab_size, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, user_defined_symbols=["<ud>"],
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2)
    return buf.getvalue()


SPM_BYTES = train_spm(400)
SP = spm.SentencePieceProcessor(model_proto=SPM_BYTES)
N_SPM = SP.vocab_size()

ADDED = ["[Human]", "[MMGPT]", "<eoh>", "<eos>", "<eom>", "<-Ins->", "<-Res->", "<eot>"]
ADDED += [f"<👀{i}>" for i in range(N_IMAGE)] + ["<soim>", "<eoim>"]
ADDED += [f"<🗣️{i}>" for i in range(N_SPEECH)] + ["<sosp>", "<eosp>"]
ADDED += [f"<🎶{i}>" for i in range(N_MUSIC)] + ["<somu>", "<eomu>"]
VOCAB = N_SPM + len(ADDED)


def permute(w, n_head):
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute, written out in numpy."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def hf_weights(n_kv):
    hd = DIM // HEADS
    shapes = {"model.embed_tokens.weight": (VOCAB, DIM)}
    for l in range(LAYERS):
        p = f"model.layers.{l}."
        shapes.update({
            p + "input_layernorm.weight": (DIM,),
            p + "self_attn.q_proj.weight": (DIM, DIM),
            p + "self_attn.k_proj.weight": (n_kv * hd, DIM),
            p + "self_attn.v_proj.weight": (n_kv * hd, DIM),
            p + "self_attn.o_proj.weight": (DIM, DIM),
            p + "post_attention_layernorm.weight": (DIM,),
            p + "mlp.gate_proj.weight": (FF, DIM),
            p + "mlp.up_proj.weight": (FF, DIM),
            p + "mlp.down_proj.weight": (DIM, FF),
        })
    shapes["model.norm.weight"] = (DIM,)
    shapes["lm_head.weight"] = (VOCAB, DIM)
    return {k: torch.randn(*s, dtype=torch.float32) * (0.5 if len(s) == 2 else 1.0) + (1.0 if len(s) == 1 else 0.0)
            for k, s in shapes.items()}


GGUF_NAMES = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
              "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
              "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
              "mlp.down_proj": "ffn_down"}


def gguf_name(hf):
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    parts = hf.split(".")
    return f"blk.{parts[2]}.{GGUF_NAMES['.'.join(parts[3:-1])]}.weight"


def write_expected(name, tensors, n_kv):
    """tensors: the weights AS STORED (after dtype rounding), as torch tensors."""
    with open(os.path.join(OUT, name + ".expected.bin"), "wb") as f:
        for hf, t in tensors.items():
            a = t.float().numpy().astype(np.float32)
            if hf.endswith("q_proj.weight"):
                a = permute(a, HEADS)
            elif hf.endswith("k_proj.weight"):
                a = permute(a, n_kv)
            a = np.ascontiguousarray(a)
            g = gguf_name(hf).encode()
            f.write(struct.pack("<I", len(g)) + g + struct.pack("<I", a.ndim))
            for d in reversed(a.shape):
                f.write(struct.pack("<Q", d))
            f.write(a.tobytes())
            if a.ndim == 2:  # what --dtype f16 must give: numpy's round-to-nearest-even
                f.write(a.astype(np.float16).tobytes())


def expected_vocab(decoder=False):
    tokens, scores, types = [], [], []
    for i in range(N_SPM):
        tokens.append(SP.IdToPiece(i))
        scores.append(float(SP.GetScore(i)))
        if SP.IsUnknown(i):
            t = 2
        elif SP.IsControl(i):
            t = 3
        elif SP.IsUnused(i):
            t = 5
        elif SP.IsByte(i):
            t = 6
        else:
            t = 1
        types.append(t)
    for a in ADDED:  # llama.cpp: added_tokens.json -> USER_DEFINED, score -1000
        tokens.append(a)
        scores.append(-1000.0)
        types.append(4)
    if decoder:
        for i in range(3):
            scores[i], types[i] = -1000.0, 3
    return tokens, scores, types


def save_torch_zip(path, sd):
    torch.save(sd, path)  # zip format, stored entries


def write_folder(name, weights, n_kv, fmt, dtypes, gen_config=True, noncontig=None, decoder=False):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "bos_token_id": 1, "eos_token_id": 2,
           "pad_token_id": 0, "hidden_act": "silu", "hidden_size": DIM, "initializer_range": 0.02,
           "intermediate_size": FF, "max_position_embeddings": CTX, "num_attention_heads": HEADS,
           "num_hidden_layers": LAYERS, "num_key_value_heads": n_kv, "rms_norm_eps": 1e-05,
           "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "float32", "vocab_size": VOCAB}
    if n_kv == HEADS:
        del cfg["num_key_value_heads"]  # LLaMA-2-7B style configs may omit it
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if gen_config:
        with open(os.path.join(d, "generation_config.json"), "w") as f:
            json.dump({"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "temperature": 0.9,
                       "top_p": 0.6, "transformers_version": "4.31.0"}, f)
    with open(os.path.join(d, "tokenizer.model"), "wb") as f:
        f.write(SPM_BYTES)
    with open(os.path.join(d, "added_tokens.json"), "w", encoding="utf-8") as f:
        json.dump({a: N_SPM + i for i, a in enumerate(ADDED)}, f, ensure_ascii=False)
    with open(os.path.join(d, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}, f)
    tc = {"add_bos_token": True, "add_eos_token": False, "bos_token": {"content": "<s>"},
          "eos_token": "</s>", "unk_token": "<unk>", "model_max_length": CTX, "tokenizer_class": "LlamaTokenizer"}
    if decoder:  # newer transformers write these; llama.cpp turns special ones into CONTROL, score -1000
        tc["legacy"] = False
        tc["added_tokens_decoder"] = {str(i): {"content": SP.IdToPiece(i), "special": True} for i in range(3)}
        tc["added_tokens_decoder"][str(N_SPM + 1)] = {"content": ADDED[1], "special": False}
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(tc, f)
    # dtype per shard; shard 1 holds the embedding and layer 0, shard 2 the rest.
    names = list(weights)
    shard_of = {k: (0 if (k.startswith("model.embed") or ".layers.0." in k) else 1) for k in names}
    stored = {}
    for k in names:
        stored[k] = weights[k].to(dtypes[shard_of[k]])
    for nc in noncontig or []:  # saved as a transposed view: the reader must honour strides
        stored[nc] = stored[nc].t().contiguous().t()
        assert not stored[nc].is_contiguous()
    ext = ".safetensors" if fmt == "safetensors" else ".bin"
    base = "model" if fmt == "safetensors" else "pytorch_model"
    files = [f"{base}-0000{i + 1}-of-00002{ext}" for i in range(2)]
    for s in range(2):
        sd = {k: stored[k] for k in names if shard_of[k] == s}
        if fmt == "safetensors":
            write_safetensors(os.path.join(d, files[s]), sd)
        else:
            save_torch_zip(os.path.join(d, files[s]), sd)
    index = {"metadata": {"total_size": 0}, "weight_map": {k: files[shard_of[k]] for k in names}}
    with open(os.path.join(d, f"{base}{ext}.index.json"), "w") as f:
        json.dump(index, f, indent=2)
    return stored


ST_DT = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def write_safetensors(path, sd):
    """By hand: u64 header length, JSON header, data (offsets relative to the data start)."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for k, t in sd.items():
        t = t.contiguous()
        raw = t.view(torch.uint8 if t.element_size() == 1 else torch.int16 if t.element_size() == 2 else torch.int32)
        b = raw.numpy().tobytes()
        header[k] = {"dtype": ST_DT[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_kv_json(name, variant, n_kv, gen_config=True, decoder=False):
    tokens, scores, types = expected_vocab(decoder)
    kv = {"general.architecture": "llama", "general.type": "model", "general.quantization_version": 2,
          "general.name": name,
          "llama.vocab_size": VOCAB, "llama.context_length": 512, "llama.embedding_length": DIM,
          "llama.block_count": LAYERS, "llama.feed_forward_length": FF, "llama.rope.dimension_count": DIM // HEADS,
          "llama.attention.head_count": HEADS, "llama.attention.head_count_kv": n_kv,
          "llama.attention.layer_norm_rms_epsilon": 1e-05, "llama.rope.freq_base": 10000.0,
          "tokenizer.ggml.model": "llama", "tokenizer.ggml.pre": "default",
          "tokenizer.ggml.bos_token_id": SP.bos_id(), "tokenizer.ggml.eos_token_id": SP.eos_id(),
          "tokenizer.ggml.unknown_token_id": SP.unk_id(), "tokenizer.ggml.padding_token_id": 0,
          "tokenizer.ggml.add_bos_token": True, "tokenizer.ggml.add_eos_token": False,
          "anygpt.variant": variant, "anygpt.added_tokens.first_id": N_SPM,
          "anygpt.added_tokens.count": len(ADDED),
          # HF's "legacy" (absent = true in transformers 4.34): dummy prefix after added tokens
          "anygpt.tokenizer.hf_legacy": not decoder}
    with open(os.path.join(OUT, name + ".expected.json"), "w", encoding="utf-8") as f:
        json.dump({"kv": kv, "n_tensors": 3 + 9 * LAYERS, "generation_config": gen_config,
                   "tokens": tokens, "scores": scores, "types": types}, f, ensure_ascii=False)


def conditioned(seed):
    """weights ~ N(0, 1/fan_in), norm gains ~ 1 + N(0, 0.01)"""
    gen = torch.Generator().manual_seed(seed)
    return {k: (torch.randn(*v.shape, generator=gen) / v.shape[1] ** 0.5 if v.dim() == 2
                else 1.0 + 0.1 * torch.randn(*v.shape, generator=gen))
            for k, v in hf_weights(HEADS).items()}


if DEMO:
    os.makedirs(OUT, exist_ok=True)
    write_folder("AnyGPT-chat-demo", conditioned(4321), HEADS, "bin", (torch.float32, torch.float32))
    sys.exit(0)

os.makedirs(OUT, exist_ok=True)
VARIANTS = [
    # name, variant, n_kv, format, shard dtypes, --dtype, non-contiguous tensor
    ("AnyGPT-chat-f32", "chat", HEADS, "bin", (torch.float32, torch.float32), "f32", None),
    ("AnyGPT-base-bf16", "base", HEADS, "bin", (torch.bfloat16, torch.float16), "f16",
     ["model.layers.1.self_attn.q_proj.weight", "model.layers.0.mlp.down_proj.weight", "model.embed_tokens.weight"]),
    ("tiny-gqa-safetensors", "unknown", 2, "safetensors", (torch.float16, torch.bfloat16), "f16", None),
]
for name, variant, n_kv, fmt, dts, wtype, nc in VARIANTS:
    w = hf_weights(n_kv)
    dec = fmt == "safetensors"
    stored = write_folder(name, w, n_kv, fmt, dts, noncontig=nc, decoder=dec)
    write_expected(name, stored, n_kv)
    write_kv_json(name, variant, n_kv, decoder=dec)


def repack_zip64(path):
    """Rewrite a stored zip so its central directory uses ZIP64 fields (saturated 32-bit sizes and
    offsets, extra field 0x0001, ZIP64 end records), as torch writes shards over 4 GiB."""
    with zipfile.ZipFile(path) as z:
        items = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    out, central = bytearray(), bytearray()
    for n, b in items:
        nb = n.encode()
        crc = zipfile.crc32(b) & 0xFFFFFFFF
        off = len(out)
        pad = (-(len(out) + 30 + len(nb) + 4)) % 64  # align data like torch (extra field padding)
        extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, len(b), len(b), len(nb), len(extra))
        out += nb + extra + b
        z64 = struct.pack("<HHQQQ", 1, 24, len(b), len(b), off)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF,
                               0xFFFFFFFF, len(nb), len(z64), 0, 0, 0, 0, 0xFFFFFFFF) + nb + z64
    cd_off = len(out)
    out += central
    e64 = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(items), len(items), len(central), cd_off)
    out += struct.pack("<IIQI", 0x07064B50, 0, e64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    open(path, "wb").write(bytes(out))


# The f32 model again, shard 1 in ZIP64 form: same expected content.
Z64 = os.path.join(OUT, "AnyGPT-chat-zip64")
shutil.rmtree(Z64, ignore_errors=True)
shutil.copytree(os.path.join(OUT, "AnyGPT-chat-f32"), Z64)
repack_zip64(os.path.join(Z64, "pytorch_model-00001-of-00002.bin"))
assert torch.load(os.path.join(Z64, "pytorch_model-00001-of-00002.bin"), weights_only=True)


# ---- broken inputs: each a copy of the f32 folder with one defect ----
SRC = os.path.join(OUT, "AnyGPT-chat-f32")


def broken(tag):
    d = os.path.join(OUT, "bad-" + tag)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(SRC, d)
    return d


def shard_path(d, i):
    return os.path.join(d, f"pytorch_model-0000{i}-of-00002.bin")


def load_shard(d, i):
    return torch.load(shard_path(d, i), weights_only=True)


d = broken("truncated")
p = shard_path(d, 2)
data = open(p, "rb").read()
open(p, "wb").write(data[: len(data) // 2])


class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + os.path.join(OUT, "PWNED"),))


d = broken("forbidden-global")
sd = load_shard(d, 1)
sd["evil"] = Evil()
torch.save(sd, shard_path(d, 1))

d = broken("missing-tensor")
sd = load_shard(d, 2)
del sd["model.norm.weight"]
torch.save(sd, shard_path(d, 2))
ip = os.path.join(d, "pytorch_model.bin.index.json")
idx = json.load(open(ip))
del idx["weight_map"]["model.norm.weight"]
json.dump(idx, open(ip, "w"))

d = broken("wrong-shape")
sd = load_shard(d, 2)
sd["model.layers.1.mlp.up_proj.weight"] = torch.zeros(FF, DIM + 1)
torch.save(sd, shard_path(d, 2))

d = broken("compressed")
p = shard_path(d, 1)
with zipfile.ZipFile(p) as zin:
    items = [(i.filename, zin.read(i.filename)) for i in zin.infolist()]
with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zout:
    for n, b in items:
        zout.writestr(n, b)

d = broken("extra-tensor")
sd = load_shard(d, 2)
sd["model.layers.1.self_attn.q_proj.bias"] = torch.zeros(DIM)
torch.save(sd, shard_path(d, 2))
ip = os.path.join(d, "pytorch_model.bin.index.json")
idx = json.load(open(ip))
idx["weight_map"]["model.layers.1.self_attn.q_proj.bias"] = "pytorch_model-00002-of-00002.bin"
json.dump(idx, open(ip, "w"))

d = broken("token-gap")
ap = os.path.join(d, "added_tokens.json")
at = json.load(open(ap, encoding="utf-8"))
del at["<somu>"]  # leaves id VOCAB-2 without a token
json.dump(at, open(ap, "w", encoding="utf-8"), ensure_ascii=False)

# not broken: the last embedding row has no token -> llama.cpp-style "[PAD<id>]" padding
d = broken("pad-tail").replace("bad-pad-tail", "pad-tail")
shutil.rmtree(d, ignore_errors=True)
shutil.move(os.path.join(OUT, "bad-pad-tail"), d)
ap = os.path.join(d, "added_tokens.json")
at = json.load(open(ap, encoding="utf-8"))
del at["<eomu>"]
json.dump(at, open(ap, "w", encoding="utf-8"), ensure_ascii=False)

d = broken("index-mismatch")
ip = os.path.join(d, "pytorch_model.bin.index.json")
idx = json.load(open(ip))
idx["weight_map"]["model.norm.weight"] = "pytorch_model-00001-of-00002.bin"
json.dump(idx, open(ip, "w"))

# ---- a well-conditioned variant (weights ~ N(0, 1/fan_in), norm gains ~ 1 + N(0, 0.01)) for
# the LLM test's quantization bounds: the variants above are chaotic by design (std 0.5 at width
# 64, attention logits in the tens), where any rounding is amplified. Own generator, drawn last,
# so the fixtures above do not change.
write_folder("AnyGPT-chat-conditioned", conditioned(4321), HEADS, "bin", (torch.float32, torch.float32))

with open(STAMP, "w") as f:
    f.write(f"vocab {VOCAB} spm {N_SPM}\n")

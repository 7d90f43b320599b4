#!/usr/bin/env python3
"""Independent PyTorch CLIP text encoder, written from transformers' CLIPTextModel semantics
(modeling_clip.py: token + position embeddings, pre-LN encoder layers with a causal mask,
hidden_act gelu (erf) or quick_gelu (x * sigmoid(1.702 x)), final_layer_norm; the output is
last_hidden_state), plus the published tokenizer files of SD 2.x in a tiny form. Does not import
transformers. Used by make_unclip_fixtures.py; not a command of its own.

The empty prompt as StableUnCLIPImg2ImgPipeline encodes it: CLIPTokenizer("") is bos, eos;
padding="max_length" to tokenizer.model_max_length appends the tokenizer's pad token (its id from
the tokenizer files, not text_encoder/config.json's pad_token_id); no attention mask is passed
(text_encoder.config.use_attention_mask is absent), so the pad positions are attended causally.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def config(hidden, layers, heads, inter, vocab, act, max_pos=77, eps=1e-5):
    """text_encoder/config.json as transformers writes it (the SD 2.x file's fields; its special
    token ids 0/2/1 are CLIPTextConfig defaults that do not match the tokenizer)."""
    return {"_name_or_path": "tiny", "architectures": ["CLIPTextModel"], "attention_dropout": 0.0,
            "bos_token_id": 0, "dropout": 0.0, "eos_token_id": 2, "hidden_act": act, "hidden_size": hidden,
            "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": inter,
            "layer_norm_eps": eps, "max_position_embeddings": max_pos, "model_type": "clip_text_model",
            "num_attention_heads": heads, "num_hidden_layers": layers, "pad_token_id": 1, "projection_dim": 512,
            "torch_dtype": "float32", "transformers_version": "4.25.0.dev0", "vocab_size": vocab}


def weights(cfg, gen, half_exact=True):
    """Random weights under transformers' key names; rounded through fp16 when half_exact so an
    fp16 copy of the checkpoint holds exactly the same values."""
    d, ff = cfg["hidden_size"], cfg["intermediate_size"]

    def rn(*s, scale=1.0, shift=0.0):
        t = torch.randn(*s, generator=gen) * scale + shift
        return t.half().float() if half_exact else t

    sd = {"text_model.embeddings.token_embedding.weight": rn(cfg["vocab_size"], d),
          "text_model.embeddings.position_embedding.weight": rn(cfg["max_position_embeddings"], d, scale=0.5)}
    for l in range(cfg["num_hidden_layers"]):
        p = f"text_model.encoder.layers.{l}."
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            sd[p + f"self_attn.{n}.weight"] = rn(d, d, scale=1.0 / math.sqrt(d))
            sd[p + f"self_attn.{n}.bias"] = rn(d, scale=0.1)
        for n in ("layer_norm1", "layer_norm2"):
            sd[p + n + ".weight"] = rn(d, scale=0.1, shift=1.0)
            sd[p + n + ".bias"] = rn(d, scale=0.1)
        sd[p + "mlp.fc1.weight"] = rn(ff, d, scale=1.0 / math.sqrt(d))
        sd[p + "mlp.fc1.bias"] = rn(ff, scale=0.1)
        sd[p + "mlp.fc2.weight"] = rn(d, ff, scale=1.0 / math.sqrt(ff))
        sd[p + "mlp.fc2.bias"] = rn(d, scale=0.1)
    sd["text_model.final_layer_norm.weight"] = rn(d, scale=0.1, shift=1.0)
    sd["text_model.final_layer_norm.bias"] = rn(d, scale=0.1)
    return sd


def act(x, name):
    if name == "gelu":
        return F.gelu(x)
    if name == "quick_gelu":
        return x * torch.sigmoid(1.702 * x)
    raise ValueError(name)


def forward(sd, cfg, ids):
    """ids (T,) -> last_hidden_state (T, hidden), float32."""
    d, h = cfg["hidden_size"], cfg["num_attention_heads"]
    dh, eps, t = d // h, cfg["layer_norm_eps"], len(ids)
    ids = torch.tensor(ids, dtype=torch.long)
    x = sd["text_model.embeddings.token_embedding.weight"][ids] + \
        sd["text_model.embeddings.position_embedding.weight"][torch.arange(t)]
    causal = torch.full((t, t), float("-inf")).triu(1)
    for l in range(cfg["num_hidden_layers"]):
        p = f"text_model.encoder.layers.{l}."

        def lin(v, n):
            return F.linear(v, sd[p + n + ".weight"], sd[p + n + ".bias"])

        r = x
        y = F.layer_norm(x, (d,), sd[p + "layer_norm1.weight"], sd[p + "layer_norm1.bias"], eps)
        q, k, v = (lin(y, "self_attn." + n).reshape(t, h, dh).transpose(0, 1) for n in ("q_proj", "k_proj", "v_proj"))
        a = torch.softmax(q @ k.transpose(1, 2) * dh ** -0.5 + causal, -1) @ v
        x = r + lin(a.transpose(0, 1).reshape(t, d), "self_attn.out_proj")
        r = x
        y = F.layer_norm(x, (d,), sd[p + "layer_norm2.weight"], sd[p + "layer_norm2.bias"], eps)
        x = r + lin(act(lin(y, "mlp.fc1"), cfg["hidden_act"]), "mlp.fc2")
    return F.layer_norm(x, (d,), sd["text_model.final_layer_norm.weight"], sd["text_model.final_layer_norm.bias"], eps)


def added(content):
    return {"__type": "AddedToken", "content": content, "lstrip": False, "normalized": True, "rstrip": False,
            "single_word": False}


def write_tokenizer(folder, style):
    """A tiny CLIP tokenizer folder in the published format. style "sd2": SD 2.x files (pad "!"
    = 0, specials 49406/49407 in vocab.json, AddedToken dicts); "sd1": pad "<|endoftext|>", a
    1000-entry vocabulary with the specials at 998/999, the newer added_tokens_decoder form.
    Returns the empty prompt's ids padded to model_max_length (77)."""
    os.makedirs(folder, exist_ok=True)
    pieces = [chr(c) for c in range(33, 127)] + [chr(c) + "</w>" for c in range(97, 123)] + ["th</w>", "the</w>"]
    if style == "sd2":
        vocab = {p: i for i, p in enumerate(pieces)}
        vocab.update({BOS: 49406, EOS: 49407})
        pad = "!"
        cfg = {"add_prefix_space": False, "bos_token": added(BOS), "do_lower_case": True, "eos_token": added(EOS),
               "errors": "replace", "model_max_length": 77, "name_or_path": "stabilityai/stable-diffusion-2",
               "pad_token": pad, "special_tokens_map_file": "./special_tokens_map.json",
               "tokenizer_class": "CLIPTokenizer", "unk_token": added(EOS)}
        smap = {"bos_token": added(BOS), "eos_token": added(EOS), "pad_token": pad, "unk_token": added(EOS)}
    else:
        vocab = {p: i for i, p in enumerate(pieces)}
        vocab.update({f"tok{i}</w>": i for i in range(len(pieces), 998)})
        vocab.update({BOS: 998, EOS: 999})
        pad = EOS
        dec = {str(vocab[s]): {"content": s, "lstrip": False, "normalized": True, "rstrip": False,
                               "single_word": False, "special": True} for s in (BOS, EOS)}
        cfg = {"add_prefix_space": False, "added_tokens_decoder": dec, "bos_token": BOS, "clean_up_tokenization_spaces": True,
               "do_lower_case": True, "eos_token": EOS, "errors": "replace", "model_max_length": 77, "pad_token": pad,
               "tokenizer_class": "CLIPTokenizer", "unk_token": EOS}
        smap = {"bos_token": {"content": BOS, "lstrip": False, "normalized": True, "rstrip": False,
                              "single_word": False},
                "eos_token": {"content": EOS, "lstrip": False, "normalized": True, "rstrip": False,
                              "single_word": False},
                "pad_token": EOS, "unk_token": EOS}
    with open(os.path.join(folder, "vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(folder, "merges.txt"), "w") as f:
        f.write("#version: 0.2\nt h</w>\nth e</w>\n")
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(folder, "special_tokens_map.json"), "w") as f:
        json.dump(smap, f, indent=2)
    max_len = cfg["model_max_length"]
    return [vocab[BOS], vocab[EOS]] + [vocab[pad]] * (max_len - 2)

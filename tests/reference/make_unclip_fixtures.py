#!/usr/bin/env python3
"""Fixtures for anygpt-convert seed-unclip and the SEED decode MLP (tests/unclip): tiny random
models in the published formats, with the expected numbers from the independent PyTorch
references clip_text_ref.py and seed_decode_ref.py.

usage: make_unclip_fixtures.py OUTDIR STAMP
       make_unclip_fixtures.py --real OUTDIR   the published shapes with random weights: SEED
           decode side of seed_quantizer.pt (fp32) and SD 2.1's text encoder (23 layers, 1024
           wide, as .fp16.safetensors), the expected context real.ctx.f32 and one SEED case
           (real.codes.i32, real.embed.f32), with PyTorch's times; for timing the converter

A converter INPUT is a folder holding seed_quantizer.pt and stable-diffusion-2-1-unclip/ (the
diffusers folder as published: model_index.json, text_encoder/, tokenizer/, scheduler/,
image_noising_scheduler/, image_normalizer/, unet/, vae/, plus feature_extractor/ and
image_encoder/ which the converter does not need). unet/ and vae/ come from the UNet/VAE
reference through diffusion_parts() when it exists (see there).

OUTDIR:
  good/        text encoder gelu with SD 2.x tokenizer files (pad "!" = 0, config.json says
               pad_token_id 1), model.safetensors and diffusion_pytorch_model.safetensors (fp32),
               PNDM skip_prk_steps as published
  bin/         the same weights as pytorch_model.bin / diffusion_pytorch_model.bin (the text
               encoder with the position_ids buffer older exports carry); seed_quantizer.pt
               in seed-tokenizer-2/
  fp16/        the same weights, only the .fp16.safetensors variants
  fp16bin/     the same weights, only the .fp16.bin variants
  both/        fp32 files plus .fp16. files holding OTHER values: the fp32 ones must be chosen
  ddim/        the diffusers folder itself is the INPUT (seed_quantizer.pt inside it); DDIM
               scheduler (trailing spacing, clip_sample), text encoder quick_gelu with a 1000-token
               vocabulary and SD 1.x style tokenizer files (pad "<|endoftext|>" = 999)
  good.ctx.f32 / ddim.ctx.f32   expected empty-prompt contexts [77][hidden]
  seed.codes.i32 [S][32], seed.embed.f32 [S][embed]   SEED decode cases
  norm.mean.f32 / norm.std.f32   the image normaliser's values
  bad_*/       inputs the converter must refuse (see BAD below); they link to good/'s files
"""
import copy
import json
import os
import shutil
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_text_ref  # noqa: E402
import seed_decode_ref  # noqa: E402

SD = "stable-diffusion-2-1-unclip"
TEXT_HIDDEN = 32
EMBED = seed_decode_ref.TINY["embed"]

MODEL_INDEX = {"_class_name": "StableUnCLIPImg2ImgPipeline", "_diffusers_version": "0.14.0.dev0",
               "feature_extractor": ["transformers", "CLIPImageProcessor"],
               "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
               "image_noising_scheduler": ["diffusers", "DDPMScheduler"],
               "image_normalizer": ["stable_diffusion", "StableUnCLIPImageNormalizer"],
               "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
               "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
               "vae": ["diffusers", "AutoencoderKL"]}
PNDM = {"_class_name": "PNDMScheduler", "_diffusers_version": "0.14.0.dev0", "beta_end": 0.012,
        "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False, "num_train_timesteps": 1000,
        "prediction_type": "v_prediction", "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
        "trained_betas": None}
DDIM = {"_class_name": "DDIMScheduler", "_diffusers_version": "0.19.0", "beta_end": 0.012,
        "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": True, "clip_sample_range": 1.5,
        "dynamic_thresholding_ratio": 0.995, "num_train_timesteps": 1000, "prediction_type": "v_prediction",
        "rescale_betas_zero_snr": False, "sample_max_value": 1.0, "set_alpha_to_one": False,
        "skip_prk_steps": True, "steps_offset": 1, "thresholding": False, "timestep_spacing": "trailing",
        "trained_betas": None}
DDPM = {"_class_name": "DDPMScheduler", "_diffusers_version": "0.14.0.dev0", "beta_end": 0.02,
        "beta_schedule": "squaredcos_cap_v2", "beta_start": 0.0001, "clip_sample": True,
        "num_train_timesteps": 1000, "prediction_type": "epsilon", "trained_betas": None,
        "variance_type": "fixed_small"}

ST_DT = {torch.float32: "F32", torch.float16: "F16", torch.int64: "I64"}


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)


def write_safetensors(path, sd):
    """By hand: u64 header length, JSON header, little-endian data."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for k, t in sd.items():
        b = t.contiguous().numpy().tobytes()
        header[k] = {"dtype": ST_DT[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def half(sd):
    return {k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}


def write_weights(folder, sd, kind, text):
    """kind: st | bin | fp16 | fp16bin; text: transformers file names (model / pytorch_model)."""
    os.makedirs(folder, exist_ok=True)
    st, pt = ("model", "pytorch_model") if text else ("diffusion_pytorch_model", "diffusion_pytorch_model")
    if kind == "st":
        write_safetensors(os.path.join(folder, st + ".safetensors"), sd)
    elif kind == "bin":
        torch.save(sd, os.path.join(folder, pt + ".bin"))
    elif kind == "fp16":
        write_safetensors(os.path.join(folder, st + ".fp16.safetensors"), half(sd))
    elif kind == "fp16bin":
        torch.save(half(sd), os.path.join(folder, pt + ".fp16.bin"))


def diffusion_weights():
    """(unet config, unet state dict, vae config, vae state dict) of the tiny UNet/VAE the folders
    hold (the same every call), or None without the UNet/VAE reference."""
    try:
        import unclip_unet_ref as u
    except ImportError:
        return None
    if not all(hasattr(u, n) for n in ("make_unet", "make_vae", "write_folder", "TINY_UNET", "TINY_VAE")):
        return None
    cfg = dict(u.TINY_UNET, cross_attention_dim=TEXT_HIDDEN, projection_class_embeddings_input_dim=2 * EMBED)
    return cfg, u.make_unet(cfg, 5), u.TINY_VAE, u.make_vae(u.TINY_VAE, 6)


def diffusion_parts(folder):
    """Hook: unet/ and vae/ (config.json + weights) from the UNet/VAE reference of the unet work
    (tests/reference/unclip_unet_ref.py: make_unet / make_vae / write_folder / TINY_UNET /
    TINY_VAE), a tiny UNet matching this folder (cross_attention_dim = the text hidden size, class
    projection input = 2 x the image embedding). Without that reference only their config.json is
    written (the folder is complete in shape; the converter's own tests do not read them)."""
    parts = diffusion_weights()
    if parts is not None:
        import unclip_unet_ref as u
        ucfg, usd, vcfg, vsd = parts
        u.write_folder(os.path.join(folder, "unet"), ucfg, usd)
        u.write_folder(os.path.join(folder, "vae"), vcfg, vsd, class_name="AutoencoderKL")
        return
    write_json(os.path.join(folder, "unet", "config.json"),
               {"_class_name": "UNet2DConditionModel", "cross_attention_dim": TEXT_HIDDEN,
                "class_embed_type": "projection", "projection_class_embeddings_input_dim": 2 * EMBED,
                "sample_size": 32})
    write_json(os.path.join(folder, "vae", "config.json"), {"_class_name": "AutoencoderKL"})


def write_folder(root, text, norm, kind="st", sched=PNDM, tok_style="sd2", extra_text=None):
    """The diffusers folder at root."""
    write_json(os.path.join(root, "model_index.json"),
               dict(MODEL_INDEX, scheduler=["diffusers", sched["_class_name"]]))
    cfg, sd = text
    write_json(os.path.join(root, "text_encoder", "config.json"), cfg)
    tsd = dict(sd, **(extra_text or {}))
    if kind == "both":
        write_weights(os.path.join(root, "text_encoder"), tsd, "st", True)
        write_weights(os.path.join(root, "text_encoder"), {k: -v if v.is_floating_point() else v
                                                            for k, v in tsd.items()}, "fp16", True)
    else:
        write_weights(os.path.join(root, "text_encoder"), tsd, kind, True)
    ids = clip_text_ref.write_tokenizer(os.path.join(root, "tokenizer"), tok_style)
    write_json(os.path.join(root, "scheduler", "scheduler_config.json"), sched)
    write_json(os.path.join(root, "image_noising_scheduler", "scheduler_config.json"), DDPM)
    write_json(os.path.join(root, "image_normalizer", "config.json"),
               {"_class_name": "StableUnCLIPImageNormalizer", "_diffusers_version": "0.14.0.dev0",
                "embedding_dim": EMBED})
    if kind == "both":
        write_weights(os.path.join(root, "image_normalizer"), norm, "st", False)
        write_weights(os.path.join(root, "image_normalizer"), {k: v * 2 for k, v in norm.items()}, "fp16", False)
    else:
        write_weights(os.path.join(root, "image_normalizer"), norm, kind, False)
    write_json(os.path.join(root, "feature_extractor", "preprocessor_config.json"),
               {"crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
                "feature_extractor_type": "CLIPFeatureExtractor", "image_processor_type": "CLIPImageProcessor",
                "size": 224})
    write_json(os.path.join(root, "image_encoder", "config.json"), {"architectures": ["CLIPVisionModelWithProjection"]})
    diffusion_parts(root)
    return ids


def link_variant(out, name, replace):
    """bad_NAME/: good/'s seed_quantizer.pt and components as symlinks, except the entries of
    replace: {relative path: callable(path) writing it}."""
    base = os.path.join(out, name)
    shutil.rmtree(base, ignore_errors=True)
    good = os.path.join(out, "good")
    os.makedirs(os.path.join(base, SD))
    tops = {p.split("/")[0] for p in replace}
    if "seed_quantizer.pt" not in tops:
        os.symlink(os.path.join(good, "seed_quantizer.pt"), os.path.join(base, "seed_quantizer.pt"))
    comps = {p.split("/")[1] for p in replace if p.startswith(SD + "/")}
    for e in sorted(os.listdir(os.path.join(good, SD))):
        if e in comps:
            continue
        os.symlink(os.path.join(good, SD, e), os.path.join(base, SD, e))
    for e in comps:  # a replaced component: its other files linked, the replaced ones written
        src = os.path.join(good, SD, e)
        if os.path.isdir(src) and SD + "/" + e not in replace:
            os.makedirs(os.path.join(base, SD, e))
            for f in sorted(os.listdir(src)):
                os.symlink(os.path.join(src, f), os.path.join(base, SD, e, f))
    for p, fn in replace.items():
        path = os.path.join(base, p)
        if os.path.lexists(path):
            os.remove(path)
        if fn is not None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fn(path)


def main():
    out, stamp = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(20240611)

    # SEED decode side of seed_quantizer.pt + the keys a converter skips
    c = seed_decode_ref.TINY
    seed_sd = seed_decode_ref.weights(c, gen)
    seed_all = dict(seed_sd, **seed_decode_ref.ignored_keys(c, gen))
    codes = [torch.randint(0, c["K"], (c["n"],), generator=gen).tolist() for _ in range(3)]
    codes[1][0], codes[1][-1] = 0, c["K"] - 1
    codes[2] = [c["K"] - 1 - (7 * i) % c["K"] for i in range(c["n"])]
    with torch.no_grad():
        emb = [seed_decode_ref.forward(seed_sd, cs).numpy() for cs in codes]
    np.asarray(codes, dtype="<i4").tofile(os.path.join(out, "seed.codes.i32"))
    np.asarray(emb, dtype="<f4").tofile(os.path.join(out, "seed.embed.f32"))

    # text encoders and image normaliser (values exact in fp16, so every variant holds the same)
    gelu_cfg = clip_text_ref.config(TEXT_HIDDEN, 2, 4, 37, 49408, "gelu")
    gelu_sd = clip_text_ref.weights(gelu_cfg, gen)
    quick_cfg = clip_text_ref.config(TEXT_HIDDEN, 3, 2, 48, 1000, "quick_gelu", eps=1e-6)
    quick_sd = clip_text_ref.weights(quick_cfg, gen)
    norm = {"mean": (torch.randn(1, EMBED, generator=gen) * 0.3).half().float(),
            "std": (1.0 + torch.rand(1, EMBED, generator=gen)).half().float()}
    norm["mean"].numpy().astype("<f4").tofile(os.path.join(out, "norm.mean.f32"))
    norm["std"].numpy().astype("<f4").tofile(os.path.join(out, "norm.std.f32"))

    variants = {"good": dict(kind="st"), "bin": dict(kind="bin"), "fp16": dict(kind="fp16"),
                "fp16bin": dict(kind="fp16bin"), "both": dict(kind="both")}
    for name, v in variants.items():
        base = os.path.join(out, name)
        shutil.rmtree(base, ignore_errors=True)
        os.makedirs(base)
        extra = {"text_model.embeddings.position_ids": torch.arange(77)[None]} if v["kind"] == "bin" else None
        ids = write_folder(os.path.join(base, SD), (gelu_cfg, gelu_sd), norm, kind=v["kind"], extra_text=extra)
        if name == "good":
            torch.save(seed_all, os.path.join(base, "seed_quantizer.pt"))
        elif name == "bin":  # where the seed-tokenizer-2 download puts it
            os.makedirs(os.path.join(base, "seed-tokenizer-2"))
            os.symlink(os.path.join(out, "good", "seed_quantizer.pt"),
                       os.path.join(base, "seed-tokenizer-2", "seed_quantizer.pt"))
        else:
            os.symlink(os.path.join(out, "good", "seed_quantizer.pt"), os.path.join(base, "seed_quantizer.pt"))
    with torch.no_grad():
        ctx = clip_text_ref.forward(gelu_sd, gelu_cfg, ids).numpy()
    ctx.astype("<f4").tofile(os.path.join(out, "good.ctx.f32"))

    base = os.path.join(out, "ddim")
    shutil.rmtree(base, ignore_errors=True)
    ids = write_folder(base, (quick_cfg, quick_sd), norm, sched=DDIM, tok_style="sd1")
    os.symlink(os.path.join(out, "good", "seed_quantizer.pt"), os.path.join(base, "seed_quantizer.pt"))
    with torch.no_grad():
        ctx = clip_text_ref.forward(quick_sd, quick_cfg, ids).numpy()
    ctx.astype("<f4").tofile(os.path.join(out, "ddim.ctx.f32"))

    # inputs to refuse
    def seed_without(key):
        return lambda p: torch.save({k: v for k, v in seed_all.items() if k != key}, p)

    def seed_with(key, val):
        return lambda p: torch.save(dict(seed_all, **{key: val}), p)

    def js(obj):
        return lambda p: write_json(p, obj)

    def text_weights(sd):
        return lambda p: write_safetensors(p, sd)

    te = SD + "/text_encoder/"
    BAD = {
        "bad_seed_missing": {"seed_quantizer.pt": seed_without("blocks_image.1.attn.proj.bias")},
        "bad_seed_unknown": {"seed_quantizer.pt": seed_with("image_up.0.weight", torch.zeros(4, 4))},
        "bad_seed_shape": {"seed_quantizer.pt": seed_with("distill_image_proj.weight", torch.zeros(EMBED, 100))},
        "bad_seed_absent": {"seed_quantizer.pt": None},
        "bad_no_text_encoder": {SD + "/text_encoder": None},
        "bad_no_sched_config": {SD + "/scheduler/scheduler_config.json": None},
        "bad_no_weights": {SD + "/image_normalizer/diffusion_pytorch_model.safetensors": None},
        "bad_text_missing": {te + "model.safetensors": text_weights(
            {k: v for k, v in gelu_sd.items() if k != "text_model.final_layer_norm.weight"})},
        "bad_text_unknown": {te + "model.safetensors": text_weights(
            dict(gelu_sd, **{"text_model.encoder.layers.0.self_attn.rel_bias": torch.zeros(4)}))},
        "bad_text_shape": {te + "config.json": js(dict(gelu_cfg, intermediate_size=40))},
        "bad_text_act": {te + "config.json": js(dict(gelu_cfg, hidden_act="gelu_new"))},
        "bad_text_mask": {te + "config.json": js(dict(gelu_cfg, use_attention_mask=True))},
        "bad_tok_pad": {SD + "/tokenizer/special_tokens_map.json": js(
            {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"})},
        "bad_tok_unknown_pad": {SD + "/tokenizer/tokenizer_config.json": js(
            {"model_max_length": 77, "pad_token": "<pad>", "bos_token": "<|startoftext|>",
             "eos_token": "<|endoftext|>"}), SD + "/tokenizer/special_tokens_map.json": None},
        "bad_sched_trained_betas": {SD + "/scheduler/scheduler_config.json": js(dict(PNDM, trained_betas=[0.1] * 1000))},
        "bad_sched_thresholding": {SD + "/scheduler/scheduler_config.json": js(dict(DDIM, thresholding=True)),
                                   SD + "/model_index.json": js(dict(MODEL_INDEX, scheduler=["diffusers", "DDIMScheduler"]))},
        "bad_sched_class": {SD + "/scheduler/scheduler_config.json": js(dict(PNDM, _class_name="EulerDiscreteScheduler")),
                            SD + "/model_index.json": js(dict(MODEL_INDEX, scheduler=["diffusers", "EulerDiscreteScheduler"]))},
        "bad_sched_mismatch": {SD + "/scheduler/scheduler_config.json": js(dict(DDIM))},
        "bad_sched_option": {SD + "/scheduler/scheduler_config.json": js(dict(PNDM, use_karras_sigmas=True))},
        "bad_sched_spacing": {SD + "/scheduler/scheduler_config.json": js(dict(PNDM, timestep_spacing="middle"))},
        "bad_noise_sigmoid": {SD + "/image_noising_scheduler/scheduler_config.json": js(dict(DDPM, beta_schedule="sigmoid"))},
        "bad_noise_zero_snr": {SD + "/image_noising_scheduler/scheduler_config.json": js(dict(DDPM, rescale_betas_zero_snr=True))},
        "bad_model_index": {SD + "/model_index.json": js(dict(MODEL_INDEX, _class_name="StableDiffusionPipeline"))},
        "bad_norm_shape": {SD + "/image_normalizer/config.json": js(
            {"_class_name": "StableUnCLIPImageNormalizer", "embedding_dim": 16})},
    }
    for name, rep in BAD.items():
        link_variant(out, name, rep)
    with open(stamp, "w") as f:
        f.write("ok\n")


def real(out):
    """Real shapes (unet/ and vae/ as the hook provides them)."""
    import time
    torch.set_num_threads(os.cpu_count() or 1)
    gen = torch.Generator().manual_seed(7)
    c = dict(n=32, K=8192, cd=32, dim=768, depth=4, ff=3072, down=(256, 128, 32), embed=1024)
    seed_sd = seed_decode_ref.weights(c, gen)
    shutil.rmtree(os.path.join(out, "real"), ignore_errors=True)
    os.makedirs(os.path.join(out, "real"))
    torch.save(dict(seed_sd, **seed_decode_ref.ignored_keys(c, gen)), os.path.join(out, "real", "seed_quantizer.pt"))
    codes = torch.randint(0, c["K"], (c["n"],), generator=gen).tolist()
    t0 = time.time()
    with torch.no_grad():
        emb = seed_decode_ref.forward(seed_sd, codes).numpy()
    print(f"# torch seed decode: {time.time() - t0:.3f} s")
    np.asarray(codes, dtype="<i4").tofile(os.path.join(out, "real.codes.i32"))
    emb.astype("<f4").tofile(os.path.join(out, "real.embed.f32"))
    cfg = clip_text_ref.config(1024, 23, 16, 4096, 49408, "gelu")
    cfg["projection_dim"] = 512
    tsd = clip_text_ref.weights(cfg, gen)
    norm = {"mean": torch.zeros(1, 1024), "std": torch.ones(1, 1024)}
    root = os.path.join(out, "real", SD)
    global TEXT_HIDDEN, EMBED
    TEXT_HIDDEN, EMBED = 1024, 1024
    ids = write_folder(root, (cfg, tsd), norm, kind="fp16")
    t0 = time.time()
    with torch.no_grad():
        ctx = clip_text_ref.forward(tsd, cfg, ids).numpy()
    print(f"# torch text encoder on the empty prompt: {time.time() - t0:.3f} s")
    ctx.astype("<f4").tofile(os.path.join(out, "real.ctx.f32"))


if __name__ == "__main__":
    if sys.argv[1] == "--real":
        real(sys.argv[2])
    else:
        main()

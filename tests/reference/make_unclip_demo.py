#!/usr/bin/env python3
"""A tiny random-weight SEED unCLIP set in the published layout, for the demo model set
(tools/make-demo-models.sh) and the seeddiffuse element tests: what anygpt-convert seed-unclip
reads as INPUT, the folder make_unclip_fixtures.py writes (SD 2.1 unCLIP's diffusers folder,
PNDM skip_prk_steps as published), except that
  - seed_quantizer.pt has AnyGPT's codebook of 8192 codes (32 per image), so every image item
    anygptllm or seedtokenize makes decodes;
  - the UNet's sample_size (the latent side) and the VAE's depth are chosen here: the image side
    is latent * 2^(VAE levels - 1).

usage: make_unclip_demo.py OUTDIR [--latent N] [--vae-levels 2|3]
  OUTDIR/seed_quantizer.pt + OUTDIR/stable-diffusion-2-1-unclip/  (anygpt-convert seed-unclip OUTDIR)
defaults: latent 16, 3 VAE levels: 64x64 images (the demo: 20 steps with guidance in ~0.8 s on
one cpu thread, ~1 min on lavapipe; a 32 latent, 128x128, takes 4.2 s: the UNet's attention over
the latent pixels dominates); the element tests use --latent 8 --vae-levels 2 (16x16: a few ms
per UNet evaluation, so valgrind can run it).
"""
import argparse
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_text_ref  # noqa: E402
import make_unclip_fixtures as mf  # noqa: E402
import seed_decode_ref  # noqa: E402
import unclip_unet_ref as ur  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--latent", type=int, default=16)
    ap.add_argument("--vae-levels", type=int, default=3, choices=(2, 3))
    a = ap.parse_args()
    if a.latent < 2 or a.latent % 2:
        sys.exit("--latent must be even (the UNet halves it once)")
    gen = torch.Generator().manual_seed(20240805)
    c = dict(seed_decode_ref.TINY, K=8192)
    seed_sd = dict(seed_decode_ref.weights(c, gen), **seed_decode_ref.ignored_keys(c, gen))
    text_cfg = clip_text_ref.config(mf.TEXT_HIDDEN, 2, 4, 37, 49408, "gelu")
    text_sd = clip_text_ref.weights(text_cfg, gen)
    e = c["embed"]
    norm = {"mean": (torch.randn(1, e, generator=gen) * 0.3).half().float(),
            "std": (1.0 + torch.rand(1, e, generator=gen)).half().float()}

    shutil.rmtree(a.out, ignore_errors=True)
    root = os.path.join(a.out, mf.SD)
    os.makedirs(root)
    torch.save(seed_sd, os.path.join(a.out, "seed_quantizer.pt"))
    mf.write_folder(root, (text_cfg, text_sd), norm, kind="st")
    # unet/ and vae/ at the chosen sizes (write_folder put the fixtures' 16x16 ones there)
    ucfg = dict(ur.TINY_UNET, sample_size=a.latent, cross_attention_dim=mf.TEXT_HIDDEN,
                projection_class_embeddings_input_dim=2 * e)
    levels = a.vae_levels
    vcfg = dict(ur.TINY_VAE, block_out_channels=[32, 64, 64][:levels],
                up_block_types=["UpDecoderBlock2D"] * levels, down_block_types=["DownEncoderBlock2D"] * levels,
                sample_size=a.latent * 2 ** (levels - 1))
    for d in ("unet", "vae"):
        shutil.rmtree(os.path.join(root, d))
    ur.write_folder(os.path.join(root, "unet"), ucfg, ur.make_unet(ucfg, 5))
    ur.write_folder(os.path.join(root, "vae"), vcfg, ur.make_vae(vcfg, 6), class_name="AutoencoderKL")
    side = a.latent * 2 ** (levels - 1)
    print(f"SEED unCLIP demo set in {a.out}: 32 codes of 8192 -> {side}x{side} images")


if __name__ == "__main__":
    main()

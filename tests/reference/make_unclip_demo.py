#!/usr/bin/env python3
"""A tiny random-weight SEED unCLIP set in the published layout, for the demo model set
(tools/make-demo-models.sh) and the seeddiffuse element tests: what anygpt-convert seed-unclip
reads as INPUT, the folder make_unclip_fixtures.py writes (SD 2.1 unCLIP's diffusers folder,
PNDM skip_prk_steps as published), except that
  - seed_quantizer.pt has AnyGPT's codebook of 8192 codes (32 per image), so every image item
    anygptllm or seedtokenize makes decodes;
  - the UNet's sample_size (the latent side), the level its attention runs at and the VAE's depth
    are chosen here: the image side is latent * 2^(VAE levels - 1).

usage: make_unclip_demo.py OUTDIR [--latent N] [--vae-levels 2|3|4] [--unet demo|tiny]
  OUTDIR/seed_quantizer.pt + OUTDIR/stable-diffusion-2-1-unclip/  (anygpt-convert seed-unclip OUTDIR)
defaults: the published image size, 768x768: a 96x96 latent (as SD 2.1 unCLIP's), 4 VAE levels of
8/16/32/32 channels (GroupNorm over 8 groups: widths that keep a 768x768 decode cheap) and
--unet demo: 3 levels of 32/64/64 channels with attention on the last only (24x24 = 576 tokens; at
the full latent it would attend over 9216 pixels and dominate the demo's time). --unet tiny is
diffusers' own test UNet (2 levels, attention at the full latent): the element tests use it with
--latent 8 --vae-levels 2 (16x16 images: a few ms per UNet evaluation, so valgrind can run it).
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
    ap.add_argument("--latent", type=int, default=96)
    ap.add_argument("--vae-levels", type=int, default=4, choices=(2, 3, 4))
    ap.add_argument("--unet", default="demo", choices=("demo", "tiny"))
    ap.add_argument("--render", nargs=5, metavar=("CODES", "SEED", "STEPS", "GUIDANCE", "OUT.png"),
                    help="also draw the image of CODES (a file of 32 ints) with the float32 PyTorch "
                         "reference of unclip_pipeline_ref.py, as seeddiffuse seed=SEED steps=STEPS "
                         "guidance-scale=GUIDANCE noise-level=0 would")
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
    ids = mf.write_folder(root, (text_cfg, text_sd), norm, kind="st")
    # unet/ and vae/ at the chosen sizes (write_folder put the fixtures' 16x16 ones there)
    ucfg = dict(ur.TINY_UNET, sample_size=a.latent, cross_attention_dim=mf.TEXT_HIDDEN,
                projection_class_embeddings_input_dim=2 * e)
    if a.unet == "demo":
        if a.latent % 4:
            sys.exit("--latent must be a multiple of 4 for --unet demo (it halves it twice)")
        ucfg.update(block_out_channels=[32, 64, 64], down_block_types=["DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"],
                    up_block_types=["CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"])
    levels = a.vae_levels
    widths, groups = ([8, 16, 32, 32], 8) if levels == 4 else ([32, 64, 64][:levels], 32)
    vcfg = dict(ur.TINY_VAE, block_out_channels=widths, norm_num_groups=groups,
                up_block_types=["UpDecoderBlock2D"] * levels, down_block_types=["DownEncoderBlock2D"] * levels,
                sample_size=a.latent * 2 ** (levels - 1))
    for d in ("unet", "vae"):
        shutil.rmtree(os.path.join(root, d))
    ur.write_folder(os.path.join(root, "unet"), ucfg, ur.make_unet(ucfg, 5))
    ur.write_folder(os.path.join(root, "vae"), vcfg, ur.make_vae(vcfg, 6), class_name="AutoencoderKL")
    side = a.latent * 2 ** (levels - 1)
    print(f"SEED unCLIP demo set in {a.out}: 32 codes of 8192 -> {side}x{side} images")
    if a.render:
        render(a.render, seed_sd, (text_cfg, text_sd, ids), norm, (ucfg, vcfg))


def render(args, seed_sd, text, norm, cfgs):
    """The reference image of unclip_pipeline_ref.Model.generate on this set's weights (rebuilt
    from the same seeds as the ones written, not read back: the converter's input is not trusted)."""
    import numpy as np
    from PIL import Image
    import unclip_pipeline_ref as pr
    codes_path, seed, steps, guidance, out = args
    codes = [int(x) for x in open(codes_path).read().split()]
    if len(codes) != 32:
        sys.exit(f"{codes_path}: {len(codes)} codes, an image has 32")
    torch.set_num_threads(2)
    m = pr.Model.__new__(pr.Model)
    m.seed_sd, m.norm = seed_sd, norm
    text_cfg, text_sd, ids = text
    m.ucfg, m.vcfg = cfgs
    m.usd, m.vsd = ur.make_unet(m.ucfg, 5), ur.make_vae(m.vcfg, 6)
    with torch.no_grad():
        m.ctx = clip_text_ref.forward(text_sd, text_cfg, ids)[None]
    ts, _, _, _, u8, ties = m.generate(mf.PNDM, codes, int(seed), int(steps), float(guidance), 0)
    Image.fromarray(np.ascontiguousarray(u8)).save(out)
    print(f"reference image {out}: {u8.shape[1]}x{u8.shape[0]}, {len(ts)} evaluations, {ties} near a rounding tie")


if __name__ == "__main__":
    main()

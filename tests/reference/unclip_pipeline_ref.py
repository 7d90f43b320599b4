#!/usr/bin/env python3
"""Independent float32 PyTorch reference of the whole unCLIP image de-tokenizer (core/models/unclip.c):
32 SEED codes -> image, built from the existing references (seed_decode_ref: the decode MLP;
clip_text_ref: the empty-prompt context; sched_ref: the schedulers and DDPM add_noise;
unclip_unet_ref: UNet, VAE decoder, timestep embedding, uint8 post-processing) plus the pipeline
logic of diffusers' StableUnCLIPImg2ImgPipeline.__call__ with image_embeds given, written here:

  g = torch.Generator('cpu').manual_seed(seed)
  latents = randn([1, C, s, s], g) * scheduler.init_noise_sigma (1 for PNDM and DDIM)
  noise = randn([1, E], g)
  e = decode(codes)
  noise_image_embeddings: x = (e - mean) * 1.0 / std; x = DDPM(image_noising_scheduler).add_noise(x,
      noise, noise_level); x = x * std + mean; class = cat(x, get_timestep_embedding(noise_level,
      E, flip_sin_to_cos=True, downscale_freq_shift=0))
  guidance_scale > 1: class = cat(zeros_like(class), class) (the whole 2E row is zero in the
      unconditional branch: zeros_like is taken after the timestep embedding is appended), and
      the context cat(ctx(""), ctx("")) (negative prompt and prompt are both "");
  for t in scheduler.timesteps: v = unet(cat([latents] * 2), t, ctx, class)  (scale_model_input
      is the identity for PNDM and DDIM); v = v_u + g * (v_c - v_u); latents = scheduler.step(v, t,
      latents) (DDIM: eta 0, so the generator draws nothing more)
  image = postprocess(vae.decode(latents / scaling_factor))  (uint8, round half to even)

Where AnyGPT (seed2/seed_llama_tokenizer.py + its copy of the pipeline) differs, and what we do:
  - it runs everything in float16 on the GPU; this reference and the core compute in float32;
  - it draws latents [1,4,96,96] (then an unused noise [1,1024]) ONCE from the global RNG when the
    tokenizer is built, in float16, and passes them to every call, while the embedding noise is
    drawn inside each call from the global RNG (fresh every image). We take one seed per image
    and draw latents, then the embedding noise, from one generator in float32: the same order
    as AnyGPT's initialisation (latents first). diffusers' own pipeline, given no latents, draws
    the embedding noise first (in _encode_image) and the latents after; ours is the AnyGPT order.
  - its pipeline copy accepts negative_image_embeds (noised at level 0 if given); no caller
    passes them, so the unconditional class input is all zeros, as here.

usage: unclip_pipeline_ref.py OUTDIR STAMP
       unclip_pipeline_ref.py --real OUTDIR   OUTDIR/real/: a converter INPUT at the published shapes
           with random weights (SEED decode side and SD 2.1's text encoder from
           make_unclip_fixtures.py --real, the UNet and VAE of unclip_unet_ref.py's REAL_UNET /
           REAL_VAE as .fp16.safetensors), for anygpt-bench-unclip

OUTDIR:
  pndm/            anygpt-convert seed-unclip INPUT: seed_quantizer.pt + stable-diffusion-2-1-unclip/
                   (PNDM skip_prk_steps as published)
  ddim/            the diffusers folder itself with seed_quantizer.pt inside (DDIM: trailing
                   spacing, clip_sample 1.5)
  codes.i32        [3][32] SEED codes
  embed.f32        [3][E] their image embeddings (the decode MLP)
  cases.txt        one line per case: name folder code_index seed steps guidance noise_level vulkan(0/1)
  <name>.ts.txt    the scheduler's timesteps
  <name>.class.f32 the conditional class input [2E]
  <name>.lat.f32   the latents: initial, then after every scheduler step [(evals + 1)][C][s][s]
  <name>.img.f32   the decoder output [3][8s][8s] (before post-processing)
  <name>.img.u8    the image [8s][8s][3]
"""
import os
import shutil
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_text_ref  # noqa: E402
import make_unclip_fixtures as mf  # noqa: E402
import sched_ref  # noqa: E402
import seed_decode_ref  # noqa: E402
import unclip_unet_ref as ur  # noqa: E402

# name, folder, code index, seed, steps, guidance, noise level, also on vulkan
CASES = [
    ("pndm_s0_20_g10", "pndm", 0, 0, 20, 10.0, 0, 1),  # AnyGPT's settings
    ("pndm_s42_5_g10", "pndm", 1, 42, 5, 10.0, 0, 1),
    ("pndm_s7_20_g1", "pndm", 2, 7, 20, 1.0, 0, 0),
    ("pndm_s123456789_5_g1_n250", "pndm", 0, 123456789, 5, 1.0, 250, 1),
    ("pndm_big_20_g10_n500", "pndm", 1, 2**63 - 1, 20, 10.0, 500, 0),
    ("pndm_s3_5_g7.5_n10", "pndm", 2, 3, 5, 7.5, 10, 0),
    ("ddim_s0_20_g10", "ddim", 0, 0, 20, 10.0, 0, 0),
    ("ddim_s9_5_g1_n100", "ddim", 1, 9, 5, 1.0, 100, 1),
    ("ddim_s11_5_g10_n999", "ddim", 2, 11, 5, 10.0, 999, 0),
]


def sched_cfg(js):
    """scheduler_config.json -> sched_ref's config dict, with the classes' __init__ defaults."""
    kind = {"PNDMScheduler": "pndm", "DDIMScheduler": "ddim", "DDPMScheduler": "ddpm"}[js["_class_name"]]
    return dict(kind=kind, betas=js.get("beta_schedule", "linear"), beta_start=js.get("beta_start", 0.0001),
                beta_end=js.get("beta_end", 0.02), N=js.get("num_train_timesteps", 1000),
                pred=js.get("prediction_type", "epsilon"), offset=js.get("steps_offset", 0),
                set_one=js.get("set_alpha_to_one", kind == "ddim"), skip_prk=js.get("skip_prk_steps", False),
                spacing=js.get("timestep_spacing", "leading"), clip=js.get("clip_sample", kind != "pndm"),
                clip_range=js.get("clip_sample_range", 1.0))


class Model:
    def __init__(self, gen):
        c = seed_decode_ref.TINY
        self.seed_sd = seed_decode_ref.weights(c, gen)
        self.seed_all = dict(self.seed_sd, **seed_decode_ref.ignored_keys(c, gen))
        self.text_cfg = clip_text_ref.config(mf.TEXT_HIDDEN, 2, 4, 37, 49408, "gelu")
        self.text_sd = clip_text_ref.weights(self.text_cfg, gen)
        e = mf.EMBED
        self.norm = {"mean": (torch.randn(1, e, generator=gen) * 0.3).half().float(),
                     "std": (1.0 + torch.rand(1, e, generator=gen)).half().float()}
        parts = mf.diffusion_weights()
        assert parts is not None, "unclip_unet_ref.py is needed"
        self.ucfg, self.usd, self.vcfg, self.vsd = parts
        self.ctx = None

    def write(self, out):
        """pndm/ and ddim/ converter inputs; the context from the tokenizer ids they hold."""
        for name, sched in (("pndm", mf.PNDM), ("ddim", mf.DDIM)):
            base = os.path.join(out, name)
            shutil.rmtree(base, ignore_errors=True)
            sd_dir = os.path.join(base, mf.SD) if name == "pndm" else base
            os.makedirs(sd_dir)
            ids = mf.write_folder(sd_dir, (self.text_cfg, self.text_sd), self.norm, kind="st", sched=sched)
            torch.save(self.seed_all, os.path.join(base, "seed_quantizer.pt"))
        with torch.no_grad():
            self.ctx = clip_text_ref.forward(self.text_sd, self.text_cfg, ids)[None]  # [1, 77, hidden]

    @torch.no_grad()
    def generate(self, sched_json, codes, seed, steps, guidance, noise_level):
        """-> timesteps, class input [2E], latents per step, decoder output, uint8 image"""
        e = mf.EMBED
        side = ur.unet_plan(self.ucfg)["cfg"]["sample_size"]
        ch = ur.unet_plan(self.ucfg)["cfg"]["in_channels"]
        g = torch.Generator("cpu").manual_seed(seed)
        latents = torch.randn([1, ch, side, side], generator=g)
        noise = torch.randn([1, e], generator=g)
        emb = seed_decode_ref.forward(self.seed_sd, codes)[None]
        # noise_image_embeddings
        x = (emb - self.norm["mean"]) * 1.0 / self.norm["std"]
        x = sched_ref.add_noise(sched_cfg(mf.DDPM), x, noise, noise_level)
        x = x * self.norm["std"] + self.norm["mean"]
        cls = torch.cat((x, ur.timestep_embedding(noise_level, e, True, 0, 1)), 1)
        cond = cls[0].clone()
        ctx = self.ctx
        do_cfg = guidance > 1.0
        if do_cfg:
            cls = torch.cat([torch.zeros_like(cls), cls])
            ctx = torch.cat([ctx, ctx])
        s = sched_ref.sampler(sched_cfg(sched_json), steps)
        latents = latents * 1.0  # init_noise_sigma of PNDM and DDIM
        lats = [latents.clone()]
        for t in s.ts:
            inp = torch.cat([latents] * 2) if do_cfg else latents
            v = ur.unet_forward(self.ucfg, self.usd, inp, float(t), ctx, cls)
            if do_cfg:
                v_u, v_c = v.chunk(2)
                v = v_u + guidance * (v_c - v_u)
            latents = s.step(v, int(t), latents)
            lats.append(latents.clone())
        img = ur.vae_decode(self.vcfg, self.vsd, latents)[0]
        u8, ties = ur.postprocess_u8(img)
        return s.ts, cond, torch.stack(lats), img, u8, ties


def f32(path, t):
    np.ascontiguousarray(t.detach().float().numpy()).astype("<f4").tofile(path)


def main():
    out, stamp = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(20240720)
    m = Model(gen)
    m.write(out)
    k = seed_decode_ref.TINY["K"]
    codes = [torch.randint(0, k, (seed_decode_ref.TINY["n"],), generator=gen).tolist() for _ in range(3)]
    codes[1][0], codes[1][-1] = 0, k - 1
    np.asarray(codes, dtype="<i4").tofile(os.path.join(out, "codes.i32"))
    with torch.no_grad():
        f32(os.path.join(out, "embed.f32"), torch.stack([seed_decode_ref.forward(m.seed_sd, c) for c in codes]))
    scheds = {"pndm": mf.PNDM, "ddim": mf.DDIM}
    with open(os.path.join(out, "cases.txt"), "w") as man:
        for name, folder, ci, seed, steps, guidance, level, vk in CASES:
            ts, cond, lats, img, u8, ties = m.generate(scheds[folder], codes[ci], seed, steps, guidance, level)
            with open(os.path.join(out, name + ".ts.txt"), "w") as f:
                f.write(" ".join(str(int(t)) for t in ts) + "\n")
            f32(os.path.join(out, name + ".class.f32"), cond)
            f32(os.path.join(out, name + ".lat.f32"), lats)
            f32(os.path.join(out, name + ".img.f32"), img)
            u8.tofile(os.path.join(out, name + ".img.u8"))
            man.write(f"{name} {folder} {ci} {seed} {steps} {guidance!r} {level} {vk}\n")
            print(f"{name}: {len(ts)} evaluations, latents peak {float(lats[-1].abs().max()):.3g}, "
                  f"image mean {u8.mean():.1f} std {u8.std():.1f}, {int((u8 == 0).sum() + (u8 == 255).sum())} "
                  f"of {u8.size} clipped, {ties} near a rounding tie")
    with open(stamp, "w") as f:
        f.write("ok\n")


def real(out):
    mf.real(out)  # seed_quantizer.pt and the diffusers folder with a real-size text encoder
    sd = os.path.join(out, "real", mf.SD)
    for part, cfg, make, cls in (("unet", ur.REAL_UNET, ur.make_unet, "UNet2DConditionModel"),
                                 ("vae", ur.REAL_VAE, ur.make_vae, "AutoencoderKL")):
        shutil.rmtree(os.path.join(sd, part), ignore_errors=True)
        ur.write_folder(os.path.join(sd, part), cfg, make(cfg, 1), half=True, class_name=cls)
        print(f"# {part}: real shapes written", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--real":
        real(sys.argv[2])
    else:
        main()

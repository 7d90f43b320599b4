#!/usr/bin/env python3
"""Independent reference for the unCLIP schedulers (tests/diffusion/test_unclip_sched.c), written
from diffusers' published semantics (schedulers/scheduling_pndm.py, scheduling_ddim.py,
scheduling_ddpm.py as of diffusers 0.3x; see the notes below) with the same dtypes: betas and
alphas_cumprod are float32 torch tensors, the per-step coefficients 0-dim float32 tensors, the
sample arithmetic float32 tensor ops in the order diffusers writes them, the timestep lists numpy
int64 computed as diffusers computes them. diffusers itself is not installed here.

usage: sched_ref.py OUTDIR STAMP

What the C side must reproduce (diffusers behaviour, quirks included):
  betas   linear: torch.linspace(start, end, N, float32); scaled_linear: torch.linspace(
          sqrt(start), sqrt(end), N, float32) ** 2 (sqrt in Python double); squaredcos_cap_v2:
          betas_for_alpha_bar in Python double, min(1 - abar(t2)/abar(t1), 0.999), then a float32
          tensor. alphas = 1 - betas (float32), alphas_cumprod = torch.cumprod (float32 tensor).
  spacing leading: arange(n) * (N // n) + steps_offset; trailing: round(arange(N, 0, -N/n)) - 1;
          linspace: round(linspace(0, N-1, n)).
  PNDM    skip_prk_steps: list = ts[:-1], ts[-2], ts[-1] reversed (the second timestep repeated);
          evaluation 0 keeps its output e0 and sample; evaluation 1 (counter 1) steps from the
          kept sample with (e1 + e0)/2 from t+ratio to t and does not store e1; then AB2/AB3/AB4 on
          the stored outputs. v_prediction is turned into epsilon inside _get_prev_sample.
          Without skip_prk_steps: 12 Runge-Kutta evaluations over the last 4 leading timesteps,
          then AB4.
  DDIM    eta 0: x0 = f(prediction), optional clamp, prev = sqrt(a_prev) x0 + sqrt(1 - a_prev) eps.
  DDPM    add_noise: sqrt(abar_t) x + sqrt(1 - abar_t) noise.

Files (OUTDIR):
  ts_cases.txt   kind spacing offset steps -> count t_0 ... (count -1: refused as invalid)
  run_cases.txt  one line per run: config fields, steps, n, evals
  run_<i>.bin    float32: x_T [n], then per evaluation the model output [n] and the output [n]
  noise.txt / noise.bin   add_noise cases (config, t) with x, noise, out [n] each
  abar_<name>.bin float32 sqrt(abar_t) and sqrt(1 - abar_t) for t = 0..N-1 (add_noise of 1, 0 / 0, 1)
"""
import math
import os
import sys

import numpy as np
import torch

F32 = torch.float32


# ---------------------------------------------------------------- schedule tables

def alpha_bar_cosine(t):
    return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2


def make_betas(schedule, start, end, n_train):
    if schedule == "linear":
        return torch.linspace(start, end, n_train, dtype=F32)
    if schedule == "scaled_linear":
        return torch.linspace(start ** 0.5, end ** 0.5, n_train, dtype=F32) ** 2
    if schedule == "squaredcos_cap_v2":
        vals = []
        for i in range(n_train):
            lo, hi = i / n_train, (i + 1) / n_train
            vals.append(min(1 - alpha_bar_cosine(hi) / alpha_bar_cosine(lo), 0.999))
        return torch.tensor(vals, dtype=F32)
    raise ValueError(schedule)


def alphas_cumprod(cfg):
    betas = make_betas(cfg["betas"], cfg["beta_start"], cfg["beta_end"], cfg["N"])
    return torch.cumprod(1.0 - betas, dim=0)


def leading_etc(spacing, n_train, steps, offset):
    """diffusers' ascending timestep grid before the scheduler-specific ordering"""
    if spacing == "leading":
        ratio = n_train // steps
        return (np.arange(0, steps) * ratio).round().astype(np.int64) + offset
    if spacing == "trailing":
        ratio = n_train / steps
        return np.round(np.arange(n_train, 0, -ratio))[::-1].astype(np.int64) - 1
    if spacing == "linspace":
        return np.linspace(0, n_train - 1, steps).round().astype(np.int64)
    raise ValueError(spacing)


def timesteps(cfg, steps):
    grid = leading_etc(cfg["spacing"], cfg["N"], steps, cfg["offset"])
    if cfg["kind"] == "ddim":
        return grid[::-1].copy()
    if cfg["skip_prk"]:
        return np.concatenate([grid[:-1], grid[-2:-1], grid[-1:]])[::-1].copy()
    half = cfg["N"] // steps // 2
    prk = np.array(grid[-4:]).repeat(2) + np.tile(np.array([0, half]), 4)
    prk = prk[:-1].repeat(2)[1:-1][::-1]
    return np.concatenate([prk, grid[:-3][::-1]]).astype(np.int64)


# ---------------------------------------------------------------- samplers (float32 tensors)

class Plms:
    """PNDMScheduler.step as diffusers runs it (PRK warm-up when skip_prk is false)."""

    def __init__(self, cfg, steps):
        self.cfg, self.steps = cfg, steps
        self.ac = alphas_cumprod(cfg)
        self.final = torch.tensor(1.0) if cfg["set_one"] else self.ac[0]
        self.ts = timesteps(cfg, steps)
        self.n_prk = 0 if cfg["skip_prk"] else 12
        self.ratio = cfg["N"] // steps
        self.ets, self.counter, self.cur_sample, self.acc = [], 0, None, 0

    def index_pairs(self):
        """(t, prev) indices every evaluation reads, for validity checks"""
        out = []
        for c, t in enumerate(self.ts):
            t = int(t)
            if c < self.n_prk:
                diff = 0 if c % 2 else self.ratio // 2
                out.append((int(self.ts[c // 4 * 4]), t - diff))
            elif c == 1 and self.n_prk == 0:
                out.append((t + self.ratio, t))
            else:
                out.append((t, t - self.ratio))
        return out

    def prev_sample(self, x, t, prev, eps):
        a_t = self.ac[t]
        a_p = self.ac[prev] if prev >= 0 else self.final
        b_t = 1 - a_t
        b_p = 1 - a_p
        if self.cfg["pred"] == "v_prediction":
            eps = (a_t ** 0.5) * eps + (b_t ** 0.5) * x
        coef = (a_p / a_t) ** 0.5
        denom = a_t * b_p ** 0.5 + (a_t * b_t * a_p) ** 0.5
        return coef * x - (a_p - a_t) * eps / denom

    def step(self, out, t, x):
        c = self.counter
        if c < self.n_prk:
            diff = 0 if c % 2 else self.ratio // 2
            prev = t - diff
            t_base = int(self.ts[c // 4 * 4])
            if c % 4 == 0:
                self.acc = self.acc + 1 / 6 * out
                self.ets.append(out)
                self.cur_sample = x
            elif c % 4 in (1, 2):
                self.acc += 1 / 3 * out
            else:
                out = self.acc + 1 / 6 * out
                self.acc = 0
            res = self.prev_sample(self.cur_sample, t_base, prev, out)
        else:
            prev = t - self.ratio
            if c != 1:
                self.ets = self.ets[-3:] + [out]
            else:
                prev, t = t, t + self.ratio
            e = self.ets
            if len(e) == 1 and c == 0:
                self.cur_sample = x
            elif len(e) == 1 and c == 1:
                out = (out + e[-1]) / 2
                x, self.cur_sample = self.cur_sample, None
            elif len(e) == 2:
                out = (3 * e[-1] - e[-2]) / 2
            elif len(e) == 3:
                out = (23 * e[-1] - 16 * e[-2] + 5 * e[-3]) / 12
            else:
                out = (1 / 24) * (55 * e[-1] - 59 * e[-2] + 37 * e[-3] - 9 * e[-4])
            res = self.prev_sample(x, t, prev, out)
        self.counter += 1
        return res


class Ddim:
    """DDIMScheduler.step with eta 0."""

    def __init__(self, cfg, steps):
        self.cfg, self.steps = cfg, steps
        self.ac = alphas_cumprod(cfg)
        self.final = torch.tensor(1.0) if cfg["set_one"] else self.ac[0]
        self.ts = timesteps(cfg, steps)
        self.ratio = cfg["N"] // steps

    def index_pairs(self):
        return [(int(t), int(t) - self.ratio) for t in self.ts]

    def step(self, out, t, x):
        prev = t - self.ratio
        a_t = self.ac[t]
        a_p = self.ac[prev] if prev >= 0 else self.final
        b_t = 1 - a_t
        pred = self.cfg["pred"]
        if pred == "epsilon":
            x0 = (x - b_t ** 0.5 * out) / a_t ** 0.5
            eps = out
        elif pred == "sample":
            x0 = out
            eps = (x - a_t ** 0.5 * x0) / b_t ** 0.5
        else:
            x0 = (a_t ** 0.5) * x - (b_t ** 0.5) * out
            eps = (a_t ** 0.5) * out + (b_t ** 0.5) * x
        if self.cfg["clip"]:
            x0 = x0.clamp(-self.cfg["clip_range"], self.cfg["clip_range"])
        b_p = 1 - a_p
        variance = (b_p / b_t) * (1 - a_t / a_p)
        std = 0.0 * variance ** 0.5
        direction = (1 - a_p - std ** 2) ** 0.5 * eps
        return a_p ** 0.5 * x0 + direction


def add_noise(cfg, x, noise, t):
    ac = alphas_cumprod(cfg).to(dtype=x.dtype)
    tt = torch.tensor([t])
    sa = (ac[tt] ** 0.5).flatten()
    sb = ((1 - ac[tt]) ** 0.5).flatten()
    while sa.dim() < x.dim():
        sa, sb = sa.unsqueeze(-1), sb.unsqueeze(-1)
    return sa * x + sb * noise


# ---------------------------------------------------------------- cases

UNCLIP = dict(kind="pndm", betas="scaled_linear", beta_start=0.00085, beta_end=0.012, N=1000,
              pred="v_prediction", offset=1, set_one=False, skip_prk=True, spacing="leading",
              clip=False, clip_range=1.0)
NOISING = dict(kind="ddpm", betas="squaredcos_cap_v2", beta_start=0.0001, beta_end=0.02, N=1000,
               pred="epsilon", offset=0, set_one=False, skip_prk=True, spacing="leading",
               clip=False, clip_range=1.0)


def cfg(**kw):
    c = dict(UNCLIP)
    c.update(kw)
    return c


RUNS = [
    (UNCLIP, 20), (UNCLIP, 5), (UNCLIP, 1), (UNCLIP, 50), (UNCLIP, 2),
    (cfg(pred="epsilon"), 20),
    (cfg(pred="epsilon", betas="linear", beta_start=0.0001, beta_end=0.02, offset=0, set_one=True,
         spacing="trailing"), 25),
    (cfg(spacing="linspace"), 20),
    (cfg(spacing="trailing", betas="squaredcos_cap_v2"), 30),
    (cfg(skip_prk=False, pred="epsilon", offset=0, betas="linear", beta_start=0.0001, beta_end=0.02), 50),
    (cfg(skip_prk=False), 10),
    (cfg(skip_prk=False), 4),
    (cfg(kind="ddim"), 20),
    (cfg(kind="ddim", pred="epsilon", set_one=True, offset=0, clip=True), 50),
    (cfg(kind="ddim", pred="epsilon", clip=True, clip_range=0.5, spacing="trailing"), 30),
    (cfg(kind="ddim", pred="sample", spacing="linspace", betas="linear", beta_start=0.0001,
         beta_end=0.02), 7),
    (cfg(kind="ddim", betas="squaredcos_cap_v2", set_one=True), 1),
]

TS_STEPS = list(range(1, 61)) + [64, 99, 100, 101, 128, 250, 333, 499, 500, 501, 999, 1000, 1001]
TS_KINDS = [("pndm", True), ("pndm", False), ("ddim", True)]


def sampler(c, steps):
    return Ddim(c, steps) if c["kind"] == "ddim" else Plms(c, steps)


def valid(c, steps):
    """False where diffusers would fail or index out of range (the C side refuses those)"""
    if steps < 1 or steps > c["N"]:
        return False
    if c["kind"] == "pndm" and not c["skip_prk"] and steps < 4:
        return False
    s = sampler(c, steps)
    for t, prev in s.index_pairs():
        if not 0 <= t < c["N"] or prev >= c["N"]:
            return False
    return all(0 <= int(t) < c["N"] for t in s.ts)


def cfg_line(c):
    return (f"{c['kind']} {c['betas']} {c['beta_start']!r} {c['beta_end']!r} {c['N']} {c['pred']} "
            f"{c['offset']} {int(c['set_one'])} {int(c['skip_prk'])} {c['spacing']} {int(c['clip'])} "
            f"{c['clip_range']!r}")


def main():
    out, stamp = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator("cpu").manual_seed(20240531)

    with open(os.path.join(out, "ts_cases.txt"), "w") as f:
        for kind, skip in TS_KINDS:
            for spacing in ("leading", "trailing", "linspace"):
                for offset in (0, 1):
                    c = cfg(kind=kind, skip_prk=skip, spacing=spacing, offset=offset)
                    for steps in TS_STEPS:
                        ts = timesteps(c, steps) if valid(c, steps) else None
                        body = "-1" if ts is None else f"{len(ts)} " + " ".join(str(int(t)) for t in ts)
                        f.write(f"{cfg_line(c)} {steps} {body}\n")

    n = 4 * 16 * 16
    with open(os.path.join(out, "run_cases.txt"), "w") as man:
        for i, (c, steps) in enumerate(RUNS):
            assert valid(c, steps), (c, steps)
            s = sampler(c, steps)
            x = torch.randn(n, generator=gen)
            chunks = [x.numpy().copy()]
            for t in s.ts:
                mo = torch.randn(n, generator=gen)
                x = s.step(mo, int(t), x)
                assert x.dtype == F32
                chunks += [mo.numpy(), x.numpy().copy()]
            np.concatenate(chunks).astype(np.float32).tofile(os.path.join(out, f"run_{i}.bin"))
            man.write(f"{cfg_line(c)} {steps} {n} {len(s.ts)}\n")

    with open(os.path.join(out, "noise.txt"), "w") as man, open(os.path.join(out, "noise.bin"), "wb") as fb:
        for c in (NOISING, UNCLIP):
            for t in (0, 1, 10, 100, 500, 999):
                x = torch.randn(1, 1024, generator=gen) * 3
                noise = torch.randn(1, 1024, generator=gen)
                y = add_noise(c, x, noise, t)
                fb.write(x.numpy().tobytes() + noise.numpy().tobytes() + y.numpy().tobytes())
                man.write(f"{cfg_line(c)} {t} 1024\n")

    for name, c in (("noising", NOISING), ("unclip", UNCLIP),
                    ("linear", cfg(betas="linear", beta_start=0.0001, beta_end=0.02))):
        one, zero = torch.ones(1, 1), torch.zeros(1, 1)
        sa = [float(add_noise(c, one, zero, t)) for t in range(c["N"])]
        sb = [float(add_noise(c, zero, one, t)) for t in range(c["N"])]
        np.array(sa + sb, dtype=np.float32).tofile(os.path.join(out, f"abar_{name}.bin"))

    with open(stamp, "w") as f:
        f.write("ok\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Reference draws of the installed PyTorch for tests/diffusion/test_torch_rng.c:
g = torch.Generator('cpu').manual_seed(S); then torch.randn(n_1, generator=g),
torch.randn(n_2, generator=g), ... (float32), for several seeds and size sequences.

usage: torch_rng_ref.py OUTDIR STAMP

PyTorch picks its CPU kernels once per process from the CPU and ATEN_CPU_CAPABILITY, so the
script runs itself twice: once as PyTorch runs by default on this machine (AVX2 on x86-64 with
AVX2 or AVX-512) and once with ATEN_CPU_CAPABILITY=default (the kernels without AVX2).

Files (OUTDIR):
  rng_cases.txt       one line per case: seed n_1,n_2,...
  rng_<kind>.bin      float32 draws, cases and calls concatenated, kind = native | default
  rng_<kind>.txt      the CPU capability PyTorch reported for that run (AVX2, AVX512, NO AVX ...)
"""
import os
import subprocess
import sys

import numpy as np
import torch

SEEDS = [0, 1, 42, 2**32 - 1, 2**32 + 5, 2**63 - 1, 2**64 - 1, 123456789]
SIZES = [
    [1], [2], [15], [16], [17], [31], [33], [1024], [4 * 96 * 96], [4 * 13 * 17],
    [4 * 96 * 96, 1024],        # the unCLIP pipeline: latents [1,4,96,96], then noise [1,1024]
    [1, 1, 16, 3, 20, 1],       # the scalar path's cached second normal across calls
    [5, 1, 7],
    [100003],
]


def capability():
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage" in line:
            return line.split(":", 1)[1].strip()
    return "unknown"


def draw(out, kind):
    with open(os.path.join(out, f"rng_{kind}.bin"), "wb") as f:
        for seed in SEEDS:
            for sizes in SIZES:
                g = torch.Generator("cpu").manual_seed(seed)
                for n in sizes:
                    x = torch.randn(n, generator=g)
                    assert x.dtype == torch.float32
                    f.write(x.numpy().tobytes())
    with open(os.path.join(out, f"rng_{kind}.txt"), "w") as f:
        f.write(capability() + "\n")


def main():
    if sys.argv[1] == "--draw":
        draw(sys.argv[2], sys.argv[3])
        return
    out, stamp = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "rng_cases.txt"), "w") as f:
        for seed in SEEDS:
            for sizes in SIZES:
                f.write(f"{seed} {','.join(str(n) for n in sizes)}\n")
    env = dict(os.environ)
    env.pop("ATEN_CPU_CAPABILITY", None)
    subprocess.run([sys.executable, __file__, "--draw", out, "native"], env=env, check=True)
    env["ATEN_CPU_CAPABILITY"] = "default"
    subprocess.run([sys.executable, __file__, "--draw", out, "default"], env=env, check=True)
    with open(stamp, "w") as f:
        f.write("ok\n")


if __name__ == "__main__":
    main()

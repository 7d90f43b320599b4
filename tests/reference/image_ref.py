#!/usr/bin/env python3
"""Reference outputs for the image preprocessing tests (tests/image): PIL's own
Image.resize((w, h), Image.BICUBIC) and torchvision's own ToTensor + Normalize.

usage: image_ref.py OUTDIR STAMP

Source images are not stored: both sides synthesise them from the integer hash below
(test_image.c has the same function), so a 4000x3000 case costs no fixture space.
  pattern 0 "noise":  every byte is hash(index) & 255
  pattern 1 "edges":  8x4-pixel blocks at 0 or 255 per channel (hard edges in both directions)
  pattern 2 "smooth": a diagonal ramp plus a little noise (realistic content, no clipping)

Files (OUTDIR):
  resize_cases.txt   one line per case: src_w src_h dst_w dst_h pattern seed
  resize_out.bin     the PIL results, RGB bytes, cases concatenated in that order
  norm_cases.txt     one line per case: w h pattern seed mean0 mean1 mean2 std0 std1 std2 resize_w resize_h
  norm_out.bin       float32 [3][h][w] per case (torchvision, after the optional PIL resize)
"""
import os
import sys

import numpy as np
from PIL import Image
import torch
from torchvision import transforms

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def hash32(v):
    """lowbias32 (Chris Wellons) on uint32 arrays, wrapping like C."""
    v = v.astype(np.uint32)
    v ^= v >> np.uint32(16)
    v *= np.uint32(0x7FEB352D)
    v ^= v >> np.uint32(15)
    v *= np.uint32(0x846CA68B)
    v ^= v >> np.uint32(16)
    return v


def synth(w, h, pattern, seed):
    """h x w x 3 uint8, the same bytes as synth_rgb() in tests/image/test_image.c."""
    y = np.arange(h, dtype=np.uint32)[:, None, None]
    x = np.arange(w, dtype=np.uint32)[None, :, None]
    c = np.arange(3, dtype=np.uint32)[None, None, :]
    salt = np.uint32((seed * 0x9E3779B9) & 0xFFFFFFFF)
    with np.errstate(over="ignore"):
        if pattern == 0:
            v = hash32((y * np.uint32(w) + x) * np.uint32(3) + c + salt) & np.uint32(255)
        elif pattern == 1:
            blk = (y >> np.uint32(2)) * np.uint32(65536) + (x >> np.uint32(3))
            v = np.where(hash32(blk * np.uint32(3) + c + salt) & np.uint32(1), 255, 0)
        else:
            ramp = ((x * np.uint32(7) + y * np.uint32(5) + c * np.uint32(60)) >> np.uint32(2)) & np.uint32(255)
            noise = hash32((y * np.uint32(w) + x) * np.uint32(3) + c + salt) & np.uint32(15)
            v = np.minimum(ramp + noise, 255)
    return np.broadcast_to(v, (h, w, 3)).astype(np.uint8)


RESIZE_CASES = [
    # src_w, src_h, dst_w, dst_h, pattern, seed
    (1, 1, 224, 224, 0, 1),
    (224, 224, 1, 1, 0, 2),
    (1, 300, 224, 224, 0, 3),
    (300, 1, 224, 224, 0, 4),
    (1, 57, 1, 13, 0, 5),
    (7, 300, 224, 224, 0, 6),
    (300, 7, 224, 224, 1, 7),
    (4000, 3000, 224, 224, 0, 8),
    (4000, 3000, 224, 224, 1, 9),
    (223, 225, 224, 224, 0, 10),
    (225, 223, 224, 224, 1, 11),
    (224, 224, 224, 224, 0, 12),
    (224, 224, 224, 100, 1, 13),
    (224, 224, 100, 224, 1, 14),
    (100, 80, 224, 224, 1, 15),
    (50, 50, 300, 200, 2, 16),
    (3, 3, 1000, 2, 0, 17),
    (1920, 1080, 224, 224, 2, 18),
    (640, 480, 224, 224, 1, 19),
    (33, 17, 5, 3, 0, 20),
    (17, 33, 1000, 999, 1, 21),
    (999, 1001, 224, 224, 0, 22),
    (2, 2, 3, 3, 1, 23),
]

NORM_CASES = [
    # w, h, pattern, seed, mean, std, resize (0 = none)
    (16, 16, -1, 0, CLIP_MEAN, CLIP_STD, (0, 0)),   # every byte value in every channel
    (37, 23, 0, 31, CLIP_MEAN, CLIP_STD, (0, 0)),
    (16, 16, -1, 0, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), (0, 0)),
    (640, 480, 2, 32, CLIP_MEAN, CLIP_STD, (224, 224)),  # the SEED transform end to end
]


def all_bytes_image():
    v = np.arange(256, dtype=np.uint8).reshape(16, 16)
    return np.stack([v, v[::-1], v.T], axis=-1).copy()


def main():
    out, stamp = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "resize_cases.txt"), "w") as man, \
         open(os.path.join(out, "resize_out.bin"), "wb") as res:
        for sw, sh, dw, dh, pat, seed in RESIZE_CASES:
            im = Image.fromarray(synth(sw, sh, pat, seed), "RGB")
            r = np.asarray(im.resize((dw, dh), Image.BICUBIC))
            assert r.shape == (dh, dw, 3)
            res.write(r.tobytes())
            man.write(f"{sw} {sh} {dw} {dh} {pat} {seed}\n")
    with open(os.path.join(out, "norm_cases.txt"), "w") as man, \
         open(os.path.join(out, "norm_out.bin"), "wb") as res:
        for w, h, pat, seed, mean, std, (rw, rh) in NORM_CASES:
            arr = all_bytes_image() if pat < 0 else synth(w, h, pat, seed)
            steps = []
            if rw:
                steps.append(transforms.Resize((rh, rw), interpolation=transforms.InterpolationMode.BICUBIC))
            steps += [transforms.ToTensor(), transforms.Normalize(mean, std)]
            t = transforms.Compose(steps)(Image.fromarray(arr, "RGB"))
            assert t.dtype == torch.float32
            res.write(t.contiguous().numpy().tobytes())
            man.write(f"{w} {h} {pat} {seed} " + " ".join(repr(float(m)) for m in mean) + " "
                      + " ".join(repr(float(s)) for s in std) + f" {rw} {rh}\n")
    with open(stamp, "w") as f:
        f.write("ok\n")


if __name__ == "__main__":
    main()

"""Independent reference for the generation session's greedy decoding (PyTorch float64, the model
of llama_ref.py run from scratch on the HF folder at every step).

Each job is one reply: greedy (argmax) continuation of a prompt with HF generate()'s repetition
penalty over prompt + generated ids and min_new_tokens (end ids masked while fewer tokens were
generated), where the (penalty, min_new) pair in force is the one of the span the sequence is in
(text, or inside <sosp>.., <soim>.., <somu>..: a start tag opens a span, its end tag closes it;
tags in the prompt count). The reply stops at an end id (included in the output) or max_new.
With CONSTRAIN = 1, inside a span only the modality's code tokens (read from the checkpoint's
added_tokens.json: "<🗣️N>", "<👀N>", "<🎶N>") and the span's end tag may be chosen.

usage: session_ref.py HF_DIR --tags S1,E1,S2,E2,S3,E3 --ends ID,... < JOBS > OUT
JOBS: one line per job: "MAX_NEW|P0,M0;P1,M1;P2,M2;P3,M3|ID,ID,...|CONSTRAIN" (spans text,
speech, image, music). OUT: one line per job, the generated ids separated by spaces.
"""

import argparse
import json
import os
import re
import sys

import torch

from llama_ref import Llama


PREFIX = {1: "<\U0001F5E3\uFE0F", 2: "<\U0001F440", 3: "<\U0001F3B6"}


def code_ids(hf_dir):
    """modality -> ids of its code tokens"""
    added = json.load(open(os.path.join(hf_dir, "added_tokens.json"), encoding="utf-8"))
    out = {m: [] for m in PREFIX}
    for s, i in added.items():
        for m, p in PREFIX.items():
            if s.startswith(p) and re.fullmatch(r"\d+>", s[len(p):]):
                out[m].append(i)
    return out


def reply(m, prompt, max_new, cfg, starts, ends_of, end_ids, allowed=None):
    span = 0
    for t in prompt:
        if span == 0 and t in starts:
            span = starts[t]
        elif span and t == ends_of[span]:
            span = 0
    seq = list(prompt)
    out = []
    while len(out) < max_new:
        logits = m.forward(seq)[-1].clone()
        pen, min_new = cfg[span]
        if allowed and span:
            keep = torch.tensor(allowed[span] + [ends_of[span]])
            masked = torch.full_like(logits, float("-inf"))
            masked[keep] = logits[keep]
            logits = masked
        elif allowed:  # outside spans: no bare modality codes (start tags stay allowed)
            logits[torch.tensor([c for k in allowed for c in allowed[k]])] = float("-inf")
        if pen != 1.0:
            ids = torch.tensor(sorted(set(seq)))
            v = logits[ids]
            logits[ids] = torch.where(v > 0, v / pen, v * pen)
        if len(out) < min_new:
            logits[torch.tensor(end_ids)] = float("-inf")
        t = int(torch.argmax(logits))
        out.append(t)
        seq.append(t)
        if t in end_ids:
            break
        if span == 0 and t in starts:
            span = starts[t]
        elif span and t == ends_of[span]:
            span = 0
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hf_dir")
    ap.add_argument("--tags", required=True)
    ap.add_argument("--ends", required=True)
    a = ap.parse_args()
    tags = [int(x) for x in a.tags.split(",")]
    starts = {tags[2 * i]: i + 1 for i in range(3) if tags[2 * i] >= 0}
    ends_of = {i + 1: tags[2 * i + 1] for i in range(3)}
    end_ids = [int(x) for x in a.ends.split(",")]
    torch.set_num_threads(1)  # tiny shapes: threads only contend on a shared machine
    codes = code_ids(a.hf_dir)
    m = Llama(a.hf_dir)
    with torch.no_grad():
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            max_new, cfgs, ids, constrain = line.split("|")
            cfg = [(float(p.split(",")[0]), int(p.split(",")[1])) for p in cfgs.split(";")]
            prompt = [int(x) for x in ids.split(",")]
            out = reply(m, prompt, int(max_new), cfg, starts, ends_of, end_ids, codes if constrain == "1" else None)
            print(" ".join(str(t) for t in out), flush=True)


if __name__ == "__main__":
    main()

"""Measurement behind session.h's beam-search decision (not a test): mean per-token log-prob
(under the model itself, float64) of replies made by greedy decoding, 5-beam search, HF's 5-beam
sampling (what the AnyGPT chat reference runs for text replies: generate_config.json has
do_sample true and num_beams 5) and plain sampling at temperature 1 (text_generate_config) and at the temperatures given (sampled with the same
seeds, the log-prob still taken at temperature 1).

Beam sampling is written from HF transformers' documented beam_sample: per beam log_softmax plus
the beam's running score, softmax over all beams x vocab, 2 * beams candidates drawn without
replacement, best-scoring beams kept; the reply is the best final beam (equal lengths here).

usage: beam_measure.py HF_DIR N_NEW SEEDS [T,T,...] < PROMPTS (one comma-separated id list per line)
"""

import sys

import torch

from llama_ref import Llama


def logp_next(m, seq):
    return torch.log_softmax(m.forward(seq)[-1], -1)


def greedy(m, prompt, n):
    seq, tot = list(prompt), 0.0
    for _ in range(n):
        lp = logp_next(m, seq)
        t = int(torch.argmax(lp))
        tot += float(lp[t])
        seq.append(t)
    return tot / n


def sample(m, prompt, n, gen, temp=1.0):
    seq, tot = list(prompt), 0.0
    for _ in range(n):
        lp = logp_next(m, seq)
        t = int(torch.multinomial(torch.softmax(lp / temp, -1), 1, generator=gen))
        tot += float(lp[t])
        seq.append(t)
    return tot / n


def beams(m, prompt, n, nb, gen=None):
    """Beam search (gen None) or beam sampling; returns the best beam's mean log-prob."""
    live = [(list(prompt), 0.0)]
    for _ in range(n):
        lps = [logp_next(m, s) for s, _ in live]
        V = lps[0].shape[0]
        scores = torch.cat([lp + sc for lp, (_, sc) in zip(lps, live)])
        if gen is None:
            cand = torch.topk(scores, 2 * nb).indices
        else:
            cand = torch.multinomial(torch.softmax(scores, -1), 2 * nb, replacement=False, generator=gen)
            cand = cand[torch.argsort(scores[cand], descending=True)]
        live = [(live[int(c) // V][0] + [int(c) % V], float(scores[c])) for c in cand[:nb]]
    return max(sc for _, sc in live) / n


def main():
    hf, n, n_seeds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    temps = [float(t) for t in sys.argv[4].split(",")] if len(sys.argv) > 4 else []
    torch.set_num_threads(1)
    m = Llama(hf)
    rows = []
    with torch.no_grad():
        for line in sys.stdin:
            p = [int(x) for x in line.strip().split(",") if x]
            if not p:
                continue
            gens = [torch.Generator().manual_seed(s) for s in range(n_seeds)]
            r = {"greedy": greedy(m, p, n), "beam5": beams(m, p, n, 5),
                 "beam5-sample": sum(beams(m, p, n, 5, g) for g in gens) / n_seeds,
                 "sample": sum(sample(m, p, n, g) for g in gens) / n_seeds}
            for t in temps:
                r[f"sample-t{t}"] = sum(sample(m, p, n, g, t) for g in gens) / n_seeds
            rows.append(r)
            print(" ".join(f"{k} {v:.3f}" for k, v in r.items()), flush=True)
    print("mean  " + " ".join(f"{k} {sum(r[k] for r in rows) / len(rows):.3f}" for k in rows[0]))


if __name__ == "__main__":
    main()

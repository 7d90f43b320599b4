#!/usr/bin/env python3
"""The helper of tools/soak.sh (standard library only).

  soak-report.py loop IN.wav OUT.wav SECONDS
      OUT.wav = IN.wav repeated (whole copies, at least one) to last about SECONDS; prints the
      number of copies.
  soak-report.py report --out DIR --modes queue,half --warmup S --interval S --history N
                        --utterances N --llm MODEL.gguf --gguf-info PATH [--check]
      Reads what soak.sh left in DIR per mode (MODE.rss: "seconds<TAB>VmRSS kB" samples;
      MODE.err: anygpt-run's stderr, each line stamped "seconds<TAB>"; MODE.msg: every element
      message; MODE.rc: the exit status), prints the RSS / latency series per minute and the
      summary, writes DIR/soak.png with gnuplot (when installed) and, with --check, exits 1
      when a criterion fails (see soak.sh).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import wave


def loop(src, dst, seconds):
    with wave.open(src, "rb") as w:
        params, frames = w.getparams(), w.readframes(w.getnframes())
    copies = max(1, round(seconds * params.framerate / params.nframes))
    with wave.open(dst, "wb") as w:
        w.setparams(params)
        for _ in range(copies):
            w.writeframes(frames)
    print(copies)


def unescape(b):
    """A string field as gst_structure_to_string wrote it (octal and backslash escapes)."""
    return re.sub(rb"\\([0-7]{3}|.)",
                  lambda m: bytes([int(m.group(1), 8)]) if len(m.group(1)) == 3 else m.group(1), b)


def field(line, key, kind):
    if kind == "string":
        m = re.search(rb" " + key + rb'=\(string\)"((?:[^"\\]|\\.)*)"', line)
        return unescape(m.group(1)).decode("utf-8", "replace") if m else None
    m = re.search(rb" " + key + rb"=\(" + kind + rb"\)([^,;]*)", line)
    return m.group(1).decode() if m else None


def percentile(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100.0
    i = int(k)
    return xs[i] if i + 1 >= len(xs) else xs[i] + (xs[i + 1] - xs[i]) * (k - i)


def median(xs):
    return percentile(xs, 50)


def context_length(gguf_info, llm):
    """The LLM's context length from its GGUF metadata (anygpt-gguf-info), None if unknown."""
    try:
        text = subprocess.run([gguf_info, llm], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    m = re.search(r"llama\.context_length = \w+ (\d+)", text)
    return int(m.group(1)) if m else None


class Run:
    """What one mode's process left behind."""

    def __init__(self, out, mode):
        self.mode = mode
        self.rss = []                       # (seconds, kB)
        for line in open(os.path.join(out, mode + ".rss")):
            t, kb = line.split()
            self.rss.append((float(t), int(kb)))
        self.rc = open(os.path.join(out, mode + ".rc")).read().strip()
        self.turns = []                     # (seconds, latency or None when dropped, wait)
        self.warnings, self.errors = [], []
        turn_re = re.compile(r"^turn \d+: end of speech -> first audio ([0-9.]+) s.*wait (-?[0-9.]+)\)")
        for line in open(os.path.join(out, mode + ".err"), errors="replace"):
            t, _, text = line.rstrip("\n").partition("\t")
            m = turn_re.match(text)
            if m:
                self.turns.append((float(t), float(m.group(1)), float(m.group(2))))
            elif re.match(r"^turn \d+: utterance dropped", text):
                self.turns.append((float(t), None, None))
            elif text.startswith("WARNING from element"):
                self.warnings.append(text)
            elif text.startswith("ERROR"):
                self.errors.append(text)
        self.utterances = self.answered = self.cancelled = self.dropped = self.audio = 0
        self.max_turns_in_prompt = self.max_tokens = 0
        self.prompt_tokens = []
        for line in open(os.path.join(out, mode + ".msg"), "rb"):
            if line.startswith(b"speechtokenize, "):
                self.utterances += 1
            elif line.startswith(b"anygptllm-dropped, "):
                self.dropped += 1
            elif line.startswith(b"encodecdecode, "):
                self.audio += 1
            elif line.startswith(b"anygptllm, "):
                if field(line, b"cancelled", b"boolean") == "true":
                    self.cancelled += 1
                    continue
                self.answered += 1
                prompt = field(line, b"prompt", "string") or ""
                n_prompt = int(field(line, b"prompt-tokens", b"int") or 0)
                n_gen = int(field(line, b"generated-tokens", b"int") or 0)
                self.prompt_tokens.append(n_prompt)
                self.max_turns_in_prompt = max(self.max_turns_in_prompt, prompt.count("[Human]: "))
                # the KV cache: the prompt and every generated token but the last (never fed)
                self.max_tokens = max(self.max_tokens, n_prompt + max(n_gen - 1, 0))
        # a request the LLM refuses (a prompt that cannot fit) is dropped with a warning
        self.refused = sum("Request dropped" in w for w in self.warnings)

    def rss_after(self, warmup):
        return [kb for t, kb in self.rss if t >= warmup]

    def latencies(self, lo, hi, work=False):
        """End of speech -> first audio of the turns answered in [lo, hi); work=True: without
        the wait (queueing behind earlier turns), the time the stages themselves took."""
        return [lat - (wait if work else 0) for t, lat, wait in self.turns
                if lat is not None and lo <= t < hi]


def report(a):
    runs = [Run(a.out, m) for m in a.modes.split(",")]
    n_ctx = context_length(a.gguf_info, a.llm)
    end = max([t for r in runs for t, _ in r.rss] + [0.0])
    window = min(600.0, end / 3)
    failures = []

    def need(ok, what):
        if not ok:
            failures.append(what)

    # the series, one row a minute
    print("minute  " + "  ".join(f"{r.mode + ' RSS MB':>13} {'turns':>5} {'drop':>4} {'lat p50':>7}"
                                for r in runs))
    for minute in range(int(end // 60) + 1):
        cols = []
        for r in runs:
            kb = [k for t, k in r.rss if minute * 60 <= t < minute * 60 + 60]
            ts = [lat for t, lat, _ in r.turns if minute * 60 <= t < minute * 60 + 60]
            done = [x for x in ts if x is not None]
            cols.append(f"{(kb[-1] / 1024 if kb else float('nan')):13.1f} {len(done):5d} "
                        f"{len(ts) - len(done):4d} {median(done):7.3f}")
        print(f"{minute:6d}  " + "  ".join(cols))

    print(f"\nsummary ({end:.0f} s, RSS warm-up {a.warmup} s, latency windows: first and last "
          f"{window:.0f} s; context {n_ctx} tokens, history {a.history} turns)")
    for r in runs:
        after = r.rss_after(a.warmup)
        start_kb, end_kb = median(after[:3]), median(after[-3:])
        growth = (end_kb - start_kb) / start_kb * 100 if after else float("nan")
        first, last = r.latencies(0, window), r.latencies(end - window, end + 1)
        wfirst, wlast = r.latencies(0, window, True), r.latencies(end - window, end + 1, True)
        print(f"{r.mode}: exit {r.rc}; RSS start {start_kb / 1024:.1f} MB, end {end_kb / 1024:.1f} MB "
              f"({growth:+.2f} %), peak {max(kb for _, kb in r.rss) / 1024:.1f} MB; "
              f"{r.utterances} utterances: {r.answered} answered, {r.dropped} dropped (busy), "
              f"{r.refused} refused, {r.cancelled} cancelled; {r.audio} audio replies")
        print(f"{r.mode}: latency p50 / p95 first {median(first):.3f} / {percentile(first, 95):.3f} s "
              f"({len(first)} turns), last {median(last):.3f} / {percentile(last, 95):.3f} s "
              f"({len(last)} turns); without the wait (the stages alone): first "
              f"{median(wfirst):.3f} / {percentile(wfirst, 95):.3f} s, last {median(wlast):.3f} / "
              f"{percentile(wlast, 95):.3f} s")
        print(f"{r.mode}: prompt tokens max {max(r.prompt_tokens, default=0)}, "
              f"KV positions max {r.max_tokens}, at most {max(r.max_turns_in_prompt - 1, 0)} "
              f"earlier turns in a prompt")
        m = r.mode
        need(r.rc == "0", f"{m}: exit status {r.rc}")
        need(not r.errors, f"{m}: {r.errors[:1]}")
        need(len(after) >= 6, f"{m}: {len(after)} RSS samples after the warm-up (6 needed)")
        need(abs(growth) <= 5.0, f"{m}: RSS changed {growth:+.2f} % after the warm-up (5 % allowed)")
        need(r.utterances == a.utterances,
             f"{m}: {r.utterances} utterances tokenized, the input has {a.utterances}")
        need(r.answered + r.dropped + r.refused + r.cancelled == r.utterances,
             f"{m}: {r.utterances} utterances but {r.answered} answered + {r.dropped} dropped + "
             f"{r.refused} refused + {r.cancelled} cancelled")
        need(r.audio == r.answered, f"{m}: {r.answered} answers but {r.audio} audio replies")
        need(len(r.turns) == r.utterances,
             f"{m}: {len(r.turns)} turn lines from anygpt-run for {r.utterances} utterances")
        if m == "queue":
            need(r.dropped == 0 and r.refused == 0, f"{m}: utterances dropped in queue mode")
        need(r.max_turns_in_prompt - 1 <= a.history,
             f"{m}: a prompt holds {r.max_turns_in_prompt - 1} earlier turns (history {a.history})")
        need(n_ctx is None or r.max_tokens <= n_ctx,
             f"{m}: prompt + reply take {r.max_tokens} positions, the context holds {n_ctx}")
    if os.path.exists(os.path.join(a.out, "HANG")):
        failures.append("a run did not end in time")
    plot(a.out, runs)
    for f in failures:
        print("FAIL:", f)
    print("soak:", "FAILED" if failures else "all criteria held")
    return 1 if failures and a.check else 0


def plot(out, runs):
    for r in runs:
        with open(os.path.join(out, r.mode + ".rss.dat"), "w") as f:
            f.writelines(f"{t / 60:.3f} {kb / 1024:.3f}\n" for t, kb in r.rss)
        with open(os.path.join(out, r.mode + ".lat.dat"), "w") as f:
            f.writelines(f"{t / 60:.3f} {lat:.4f} {lat - wait:.4f}\n" for t, lat, wait in r.turns
                         if lat is not None)
    if not shutil.which("gnuplot"):
        print("(no gnuplot: no plot; tools/setup-deps.sh installs gnuplot-nox)")
        return
    rss = ", ".join(f"'{r.mode}.rss.dat' using 1:2 with lines title '{r.mode}'" for r in runs)
    lat = ", ".join(f"'{r.mode}.lat.dat' using 1:2 with points pt 7 ps 0.3 title '{r.mode}', "
                    f"'{r.mode}.lat.dat' using 1:3 with points pt 1 ps 0.3 title '{r.mode}, stages "
                    "alone (no wait)'" for r in runs)
    script = f"""set terminal pngcairo size 1000,700
set output 'soak.png'
set multiplot layout 2,1 title 'voice assistant soak'
set xlabel 'minutes'
set ylabel 'VmRSS, MB'
set grid
plot {rss}
set ylabel 'end of speech -> first audio, s'
set logscale y
plot {lat}
unset multiplot
"""
    res = subprocess.run(["gnuplot"], input=script, text=True, cwd=out, capture_output=True)
    print(f"plot: {os.path.join(out, 'soak.png')}" if res.returncode == 0 else
          "plot failed: " + res.stderr.strip())


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "loop":
        loop(sys.argv[2], sys.argv[3], float(sys.argv[4]))
        return 0
    p = argparse.ArgumentParser(usage=__doc__)
    p.add_argument("cmd", choices=["report"])
    p.add_argument("--out", required=True)
    p.add_argument("--modes", required=True)
    p.add_argument("--warmup", type=float, required=True)
    p.add_argument("--interval", type=float, default=10)
    p.add_argument("--history", type=int, required=True)
    p.add_argument("--utterances", type=int, required=True)
    p.add_argument("--llm", required=True)
    p.add_argument("--gguf-info", required=True)
    p.add_argument("--check", action="store_true")
    return report(p.parse_args())


if __name__ == "__main__":
    sys.exit(main())

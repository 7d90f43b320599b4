#!/usr/bin/env python3
"""Writes a speech-like test recording: 16 kHz mono 16-bit WAV with N voiced "utterances"
(a harmonic source with a wandering pitch, shaped into syllables at ~4 Hz) separated by 1.2 s of
near-silence, so a voice activity detector finds exactly N utterances. It is not speech: it has
the level and rhythm of speech, which is what the pipelines' VAD needs. Standard library only.

usage: make-utterances.py OUT.wav [N (default 2)] [SEED (default 1)] [SECONDS (default 1.0)]
Utterance k lasts SECONDS + 0.3 k.
"""
import math
import random
import struct
import sys
import wave

RATE = 16000


def utterance(rng, seconds):
    n = int(seconds * RATE)
    f0 = rng.uniform(110, 190)
    phase = 0.0
    out = []
    for i in range(n):
        t = i / RATE
        f = f0 * (1 + 0.08 * math.sin(2 * math.pi * 1.3 * t))
        phase += 2 * math.pi * f / RATE
        s = sum(math.sin(k * phase) / k for k in range(1, 12))
        syll = max(0.0, math.sin(math.pi * 4.0 * t)) ** 0.5  # ~4 syllables a second
        edge = min(1.0, t / 0.05, (seconds - t) / 0.05)
        out.append(0.25 * syll * edge * s / 2.0)
    return out


def silence(rng, seconds):
    return [rng.gauss(0, 3e-4) for _ in range(int(seconds * RATE))]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    first = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
    x = silence(rng, 0.5)
    for k in range(count):
        x += utterance(rng, first + 0.3 * k)
        x += silence(rng, 1.2)
    with wave.open(sys.argv[1], "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"".join(struct.pack("<h", max(-32767, min(32767, int(v * 32767)))) for v in x))


if __name__ == "__main__":
    main()

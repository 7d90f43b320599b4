#!/usr/bin/env python3
"""Input and expected output of anygpt-quantize, built with the independent Python GGUF writer and
the numpy block quantizers of gen_quant_ref.py.

    gen_quantize_ref.py IN.gguf EXPECTED_Q8_0.gguf EXPECTED_Q4_0.gguf

The tool is run with --keep '*.kept.*'. Expected rules: 2-D+ F32/F16 "*weight" tensors with rows
of whole 32-blocks are quantized; 1-D tensors become F32; the rest is copied unchanged; KVs are
copied and general.file_type (Q8_0: 7, Q4_0: 2) and general.quantization_version = 2 are set."""
import os
import sys

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
from gen_quant_ref import quant_q4, quant_q8  # noqa: E402
from gguf_writer import GGUFWriter  # noqa: E402

rng = np.random.default_rng(7)


def f32(*shape):  # shape in numpy order (rows..., ne0)
    return (rng.standard_normal(shape) * 0.5).astype(np.float32)


# name, ggml ne, stored type, data (numpy, numpy order), what the tool should do
TENSORS = [
    ("blk.0.attn_q.weight", [64, 3], "f32", f32(3, 64), "quant"),
    ("blk.0.ffn_up.weight", [96, 2, 2], "f16", f32(2, 2, 96).astype(np.float16), "quant"),
    ("blk.0.attn_norm.weight", [64], "f16", f32(64).astype(np.float16), "to_f32"),
    ("output_norm.bias", [64], "f32", f32(64), "copy"),
    ("pos.weight", [40, 2], "f32", f32(2, 40), "copy"),          # rows not whole blocks
    ("ids", [5], "i32", np.arange(5, dtype=np.int32) * 7, "copy"),
    ("blk.0.kept.weight", [32, 2], "f32", f32(2, 32), "copy"),   # --keep
    ("something_else", [32, 2], "f32", f32(2, 32), "copy"),      # not a weight
]


def base_kvs(w):
    w.add("general.architecture", "llama")
    w.add("general.name", "quantize test")
    w.add("llama.context_length", 4096, kind="u32")
    w.add("tokenizer.ggml.tokens", ["<s>", "</s>", "hello"])
    w.add("tokenizer.ggml.scores", [0.0, -1.5, 2.25], kind="f32")


def main():
    inp = GGUFWriter()
    base_kvs(inp)
    inp.add("general.file_type", 1, kind="u32")
    for name, ne, ty, data, _ in TENSORS:
        inp.tensor(name, ty, ne, data)
    inp.write(sys.argv[1])

    for path, qname, quant, ftype in ((sys.argv[2], "q8_0", quant_q8, 7), (sys.argv[3], "q4_0", quant_q4, 2)):
        out = GGUFWriter()
        out.add("general.file_type", ftype, kind="u32")
        out.add("general.quantization_version", 2, kind="u32")
        base_kvs(out)
        for name, ne, ty, data, what in TENSORS:
            if what == "quant":
                raw = quant(data.astype(np.float32).reshape(-1))[0]
                out.tensor(name, qname, ne, raw)
            elif what == "to_f32":
                out.tensor(name, "f32", ne, data.astype(np.float32))
            else:
                out.tensor(name, ty, ne, data)
        out.write(path)


if __name__ == "__main__":
    main()

"""Seed inputs for the fuzz targets (tests/fuzz), from a test build's fixtures plus hand-made edge
cases. tools/fuzz.sh runs it before a campaign; the campaign's corpus is then minimised into
tests/fuzz/corpus/TARGET (libFuzzer -merge=1), which is what gets committed.

usage: make_seeds.py BUILD_DIR OUT_DIR    (BUILD_DIR: a build whose tests have run once, so the
                                          fixtures exist; OUT_DIR/TARGET/ is filled)
Model files are cut to their GGUF header: the model targets pad the weights with zeros.
"""

import glob
import io
import os
import struct
import sys
import zipfile

SPLIT = b"\n#--8<--#\n"  # fuzz_util.h FZ_SPLIT


def gguf_header_len(b):
    """Bytes up to the (aligned) start of the tensor data of a well-formed GGUF."""
    nt, nkv = struct.unpack_from("<QQ", b, 8)
    p, align = 24, 32
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def skip_str(p):
        n, = struct.unpack_from("<Q", b, p)
        return p + 8 + n

    for _ in range(nkv):
        kl, = struct.unpack_from("<Q", b, p)
        key = b[p + 8:p + 8 + kl]
        p += 8 + kl
        t, = struct.unpack_from("<I", b, p)
        p += 4
        if t == 8:
            p = skip_str(p)
        elif t == 9:
            et, n = struct.unpack_from("<IQ", b, p)
            p += 12
            if et == 8:
                for _ in range(n):
                    p = skip_str(p)
            else:
                p += n * sizes[et]
        else:
            if key == b"general.alignment":
                align, = struct.unpack_from("<I", b, p)
            p += sizes[t]
    for _ in range(nt):
        p = skip_str(p)
        nd, = struct.unpack_from("<I", b, p)
        p += 4 + 8 * nd + 4 + 8
    return (p + align - 1) // align * align


class Seeds:
    def __init__(self, out):
        self.out = out
        self.n = {}

    def add(self, target, name, data):
        d = os.path.join(self.out, target)
        os.makedirs(d, exist_ok=True)
        k = self.n.get(target, 0)
        self.n[target] = k + 1
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[-60:]
        with open(os.path.join(d, "%03d-%s" % (k, safe)), "wb") as f:
            f.write(data)


def read(p):
    with open(p, "rb") as f:
        return f.read()


def rel(build, p):
    return os.path.relpath(p, build)


def gguf_seeds(s, build):
    for p in sorted(glob.glob(os.path.join(build, "tests", "**", "*.gguf"), recursive=True)):
        if not os.path.isfile(p):
            continue
        b = read(p)
        name = rel(build, p)
        if len(b) <= 64 << 10:
            s.add("gguf", name, b)
        try:
            h = b[:gguf_header_len(b)]
        except (struct.error, KeyError):
            continue  # a deliberately broken fixture: only the whole-file seed above
        if len(h) > 64 << 10:
            continue
        low = name.lower()
        if "/llm/" in low or "llama" in low or "spm" in low:
            s.add("llama", name, h)
            s.add("vocab", name, h)
        if "/speech/" in low or "/music/" in low or "encodec" in low or "speechtokenizer" in low:
            s.add("seanet", name, h)
        if "soundstorm" in low or "/ss-" in low:
            s.add("soundstorm", name, h)
        if "/seed/" in low or "seed-tokenizer" in low or "seed-micro" in low:
            s.add("seed_tokenizer", name, h)
        if "seed_unclip" in low or "/unclip/" in low:
            s.add("unclip", name, h)


def ckpt_seeds(s, build):
    for p in sorted(glob.glob(os.path.join(build, "tests", "**", "*.*"), recursive=True)):
        if not os.path.isfile(p) or os.path.getsize(p) > 400 << 10:
            continue
        b = read(p)
        name = rel(build, p)
        if b[:4] == b"PK\x03\x04":
            s.add("torchzip", name, b)
        elif p.endswith(".safetensors"):
            s.add("safetensors", name, b)
            n, = struct.unpack_from("<Q", b, 0)
            s.add("json", name + ".header", b[8:8 + n])
        elif p.endswith(".json") and len(b) <= 32 << 10:
            s.add("json", name, b)
            base = os.path.basename(p)
            if base in ("config.json", "scheduler_config.json"):
                s.add("config", name, bytes([20]) + b)


def torch_seeds(s):
    """Hand-made torch.save files: dtypes, strides, views, nesting, wrappers, parameters."""
    try:
        import torch
    except ImportError:
        return
    from collections import OrderedDict
    g = torch.Generator().manual_seed(0)
    base = torch.randn(4, 6, generator=g)
    cases = {
        "dtypes": {"f32": torch.ones(3), "f16": torch.ones(2, 2, dtype=torch.float16),
                   "bf16": torch.ones(2, dtype=torch.bfloat16), "f64": torch.ones(1, dtype=torch.float64),
                   "i64": torch.arange(3), "i32": torch.arange(2, dtype=torch.int32),
                   "i8": torch.zeros(2, dtype=torch.int8), "u8": torch.zeros(2, dtype=torch.uint8),
                   "b": torch.zeros(2, dtype=torch.bool)},
        "views": OrderedDict([("w", base), ("t", base.t()), ("s", base[1:, ::2]), ("e", base[0, 0]),
                              ("z", torch.zeros(0, 3))]),
        "nested": {"state_dict": {"enc": {"a": torch.ones(2)}, "dec.b": torch.ones(1, 1, 1, 1)}, "epoch": 3},
        "param": {"model": torch.nn.Linear(3, 2).state_dict(), "p": torch.nn.Parameter(torch.ones(2))},
        "shared": {"a": base, "b": base.view(-1)},
    }
    for name, obj in cases.items():
        buf = io.BytesIO()
        torch.save(obj, buf)
        s.add("torchzip", name + ".pt", buf.getvalue())


def safetensors_bytes(tensors, meta=None):
    import json
    hdr, data = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if meta:
        hdr["__metadata__"] = meta
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def safetensors_seeds(s):
    s.add("safetensors", "all-dtypes", safetensors_bytes({
        "f32": ("F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)), "f16": ("F16", [2], b"\x00\x3c\x00\x40"),
        "bf16": ("BF16", [1], b"\x80\x3f"), "f64": ("F64", [1], struct.pack("<d", 1)),
        "i64": ("I64", [1], struct.pack("<q", 7)), "i32": ("I32", [], struct.pack("<i", 7)),
        "i8": ("I8", [1], b"\x01"), "u8": ("U8", [0], b""), "bool": ("BOOL", [1], b"\x01")},
        {"format": "pt"}))
    s.add("safetensors", "empty", safetensors_bytes({}))


def spm_seeds(s, build):
    for p in sorted(glob.glob(os.path.join(build, "tests", "**", "tokenizer.model"), recursive=True))[:1]:
        b = read(p)
        # keep the trainer / normalizer messages and the first pieces (field 1) only
        out, i, pieces = b"", 0, 0
        while i < len(b):
            j, key = varint(b, i)
            field, wt = key >> 3, key & 7
            if wt == 2:
                j, n = varint(b, j)
                end = j + n
            elif wt == 0:
                end, _ = varint(b, j)
            elif wt == 1:
                end = j + 8
            else:
                end = j + 4
            if field == 3 and wt == 2:  # normalizer: without its precompiled_charsmap (~240 KB)
                sub = strip_field(b[j:end], 2)
                out += bytes([key]) + enc_varint(len(sub)) + sub
            elif field != 1 or pieces < 300:
                out += b[i:end]
            pieces += field == 1
            i = end
        s.add("spm", "tokenizer.model.head", out)
        return out
    return b""


def enc_varint(v):
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return out + bytes([v])


def strip_field(b, drop):
    """A protobuf message without the length-delimited field `drop`."""
    out, i = b"", 0
    while i < len(b):
        j, key = varint(b, i)
        wt = key & 7
        if wt == 2:
            j, n = varint(b, j)
            end = j + n
        elif wt == 0:
            end, _ = varint(b, j)
        else:
            end = j + (8 if wt == 1 else 4)
        if not (wt == 2 and key >> 3 == drop):
            out += b[i:end]
        i = end
    return out


def varint(b, i):
    v = sh = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << sh
        sh += 7
        if c < 0x80:
            return i, v


def folder_seeds(s, build, spm_head):
    files = ["tokenizer.model", "added_tokens.json", "tokenizer_config.json", "tokenizer.json",
             "special_tokens_map.json", "config.json"]
    for d in sorted(glob.glob(os.path.join(build, "tests", "convert", "tiny_llama", "*", ""))):
        parts = []
        for f in files:
            p = os.path.join(d, f)
            parts.append(spm_head if f == "tokenizer.model" and os.path.exists(p)
                         else read(p) if os.path.exists(p) and os.path.getsize(p) < 64 << 10 else b"")
        vocab = 300 + len(parts[1]) // 40
        s.add("hf_tokenizer", rel(build, d), struct.pack("<H", vocab - 1) + SPLIT.join(parts))
    names = ["vocab.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"]
    for d in sorted(glob.glob(os.path.join(build, "tests", "**", "tokenizer", ""), recursive=True)):
        if not os.path.exists(os.path.join(d, "vocab.json")):
            continue
        parts = [read(os.path.join(d, f)) if os.path.exists(os.path.join(d, f)) else b"" for f in names]
        s.add("clip_tokens", rel(build, d), SPLIT.join(parts))


def wav(fmt_tag, channels, rate, bits, frames, extensible=False, extra_chunks=b"", data_len=None):
    block = channels * bits // 8
    body = bytes((i * 37) & 0xFF for i in range(frames * block))
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else fmt_tag, channels, rate, rate * block, block, bits)
    if extensible:
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", fmt_tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunks
    chunks += b"data" + struct.pack("<I", len(body) if data_len is None else data_len) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def wav_seeds(s):
    for tag, bits in ((1, 8), (1, 16), (1, 24), (1, 32), (3, 32), (3, 64)):
        s.add("wav", "fmt%d-%d" % (tag, bits), wav(tag, 1, 16000, bits, 8))
    s.add("wav", "stereo-ext", wav(1, 2, 44100, 16, 5, extensible=True))
    s.add("wav", "list-odd", wav(3, 1, 16000, 32, 3, extra_chunks=b"LIST\x03\x00\x00\x00abc\x00"))
    s.add("wav", "streaming-size", wav(1, 1, 16000, 16, 4, data_len=0xFFFFFFFF))
    s.add("wav", "claims-2h", wav(1, 1, 16000, 16, 4, data_len=2 * 3600 * 16000 * 2))


def image_seeds(s):
    import random
    r = random.Random(1)
    for k in range(12):
        s.add("image", "params-%d" % k, bytes(r.randrange(256) for _ in range(40 + 16 * k)))


def text_seeds(s):
    texts = ["Hello world", " leading and  double  spaces", "caf\u00e9 \u2581 12345",
             "[Human]: <sosp><\U0001F5E3\uFE0F12><eosp><eoh>", "<soim><\U0001F44003><eoim> what is this?",
             "\t\n\r", "\U0001F600 emoji and \u4e2d\u6587"]
    for k, t in enumerate(texts):
        s.add("text", "text-%d" % k, bytes([k % 8]) + t.encode())
    s.add("text", "bad-utf8", b"\x00\xff\xfe\xc0\x80 \xed\xa0\x80 \xf4\x90\x80\x80")
    s.add("config", "empty-object", b"\x14{}")


def element_seeds(s):
    """fuzz_gst_elements: element, options, split, caps bytes, then the data (see its header)."""
    def ids(vals):
        return b"".join(struct.pack("<i", v) for v in vals)
    s.add("gst_elements", "encodecdecode-8", bytes([0, 0, 0, 0, 7, 0]) + ids([i % 64 for i in range(40)]))
    s.add("gst_elements", "encodecdecode-bad-ids", bytes([0, 0, 0, 0, 0, 0]) + ids([63, 64, -1, 5]))
    s.add("gst_elements", "soundstorm", bytes([1, 0, 0, 0, 0, 1]) + ids([i * 37 % 1024 for i in range(6)]))
    s.add("gst_elements", "llm-asr", bytes([2, 1, 0, 0, 0, 1]) + ids([i * 37 % 1024 for i in range(10)]))
    s.add("gst_elements", "llm-caption", bytes([2, 3, 0, 1, 0, 3]) + ids([i * 97 % 8192 for i in range(32)]))
    s.add("gst_elements", "llm-music", bytes([2, 6, 0, 2, 3, 2]) + ids([i % 2048 for i in range(16)]))
    s.add("gst_elements", "llm-chat", bytes([3, 0, 5]) + "Hello there, how are you? <sosp>".encode())
    s.add("gst_elements", "llm-tts", bytes([3, 2, 0]) + b"Say hi")
    s.add("gst_elements", "seedtokenize-rgb", bytes([4, 0, 0, 0, 3, 2]) + bytes(range(36)))
    s.add("gst_elements", "seedtokenize-rgbx", bytes([4, 0, 0, 2, 1, 1]) + bytes(range(16)))
    s.add("gst_tokens", "speech-8", bytes([0, 0, 2, 8, 0, 0, 0, 2, 0, 4, 0, 0, 2, 0x32, 0, 0, 0, 1, 0, 0, 0]) +
          ids([1, 2]))


def main():
    build, out = sys.argv[1], sys.argv[2]
    s = Seeds(out)
    gguf_seeds(s, build)
    ckpt_seeds(s, build)
    torch_seeds(s)
    safetensors_seeds(s)
    head = spm_seeds(s, build)
    folder_seeds(s, build, head)
    wav_seeds(s)
    image_seeds(s)
    text_seeds(s)
    element_seeds(s)
    for t in sorted(s.n):
        print("%-16s %d seeds" % (t, s.n[t]))


if __name__ == "__main__":
    main()

"""A small GGUF v3 writer written from the format description (ggml docs/gguf.md), independent of
the C code under test. Used to make test fixtures and to check that the C reader accepts files it
did not write itself. Standard library only (numpy arrays are accepted if numpy is present).

    w = GGUFWriter()
    w.add("general.architecture", "llama")          # type inferred: str, bool, int (i32/u64), float (f32)
    w.add("some.u32", 7, kind="u32")                 # explicit kind: u8 i8 u16 i16 u32 i32 f32 bool str u64 i64 f64
    w.add("tokens", ["a", "b"])                      # list of str -> string array
    w.add("scores", [0.5, 1.0], kind="f32")          # typed array
    w.tensor("x", "f32", [ne0, ne1], raw_bytes)      # ne in ggml order (ne0 innermost)
    w.write(path)
"""

import struct

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3

VALUE_TYPES = {
    "u8": (0, "<B"), "i8": (1, "<b"), "u16": (2, "<H"), "i16": (3, "<h"),
    "u32": (4, "<I"), "i32": (5, "<i"), "f32": (6, "<f"), "bool": (7, "<?"),
    "str": (8, None), "arr": (9, None), "u64": (10, "<Q"), "i64": (11, "<q"), "f64": (12, "<d"),
}

# ggml tensor type ids and (block elements, block bytes)
TENSOR_TYPES = {"f32": (0, 1, 4), "f16": (1, 1, 2), "q4_0": (2, 32, 18), "q8_0": (8, 32, 34), "i32": (26, 1, 4)}


def _str(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


def _infer_kind(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "i32" if -2**31 <= v < 2**31 else "u64"
    if isinstance(v, float):
        return "f32"
    if isinstance(v, (str, bytes)):
        return "str"
    raise TypeError(f"cannot infer GGUF type of {v!r}")


def _value(kind, v):
    if kind == "str":
        return _str(v)
    return struct.pack(VALUE_TYPES[kind][1], v)


class GGUFWriter:
    def __init__(self, alignment=32):
        self.kvs = []       # (key, bytes of type + value)
        self.tensors = []   # (name, type id, ne list, data bytes)
        self.alignment = alignment
        if alignment != 32:
            self.add("general.alignment", alignment, kind="u32")

    def add(self, key, value, kind=None):
        if isinstance(value, (list, tuple)):
            elems = list(value)
            if kind is None:
                kind = _infer_kind(elems[0]) if elems else "i32"
            body = struct.pack("<IQ", VALUE_TYPES[kind][0], len(elems))
            body += b"".join(_value(kind, e) for e in elems)
            self.kvs.append((key, struct.pack("<I", VALUE_TYPES["arr"][0]) + body))
        else:
            if kind is None:
                kind = _infer_kind(value)
            self.kvs.append((key, struct.pack("<I", VALUE_TYPES[kind][0]) + _value(kind, value)))

    def tensor(self, name, ttype, ne, data):
        if hasattr(data, "tobytes"):
            data = data.tobytes()
        tid, be, bs = TENSOR_TYPES[ttype]
        n = 1
        for d in ne:
            n *= d
        if ne[0] % be:
            raise ValueError(f"{name}: row of {ne[0]} is not whole {ttype} blocks")
        expect = n // be * bs
        if len(data) != expect:
            raise ValueError(f"{name}: {len(data)} bytes, expected {expect}")
        self.tensors.append((name, tid, list(ne), bytes(data)))

    def to_bytes(self):
        a = self.alignment
        out = bytearray(GGUF_MAGIC)
        out += struct.pack("<IQQ", GGUF_VERSION, len(self.tensors), len(self.kvs))
        for key, body in self.kvs:
            out += _str(key) + body
        offset = 0
        offsets = []
        for name, tid, ne, data in self.tensors:
            offsets.append(offset)
            offset += (len(data) + a - 1) // a * a
        for (name, tid, ne, data), off in zip(self.tensors, offsets):
            out += _str(name) + struct.pack("<I", len(ne))
            out += b"".join(struct.pack("<Q", d) for d in ne)
            out += struct.pack("<IQ", tid, off)
        out += b"\0" * ((-len(out)) % a)
        for (name, tid, ne, data), off in zip(self.tensors, offsets):
            out += data
            out += b"\0" * ((-len(data)) % a)
        return bytes(out)

    def write(self, path):
        with open(path, "wb") as f:
            f.write(self.to_bytes())

"""The content of the GGUF test fixtures, shared by the fixture generator and the writer check.
The C side (fixture_data.h) computes the same tensor bytes from the same formulas."""

import struct


def f16(x):
    return struct.pack("<e", x)


def tensor_bytes():
    """(name, type, ne, bytes) for one tensor of every supported type, 1..4 dims."""
    out = []
    out.append(("f32.vec", "f32", [7], b"".join(struct.pack("<f", i * 0.5 - 1.25) for i in range(7))))
    out.append(("f32.mat", "f32", [5, 3], b"".join(struct.pack("<f", (i % 11) * 0.125 - 0.5) for i in range(15))))
    out.append(("f16.cube", "f16", [4, 3, 2], b"".join(f16(i * 0.25 - 3.0) for i in range(24))))
    q8 = b""
    for b in range(4):  # ne [64, 2] = 4 blocks
        q8 += f16((b + 1) * 0.0625) + bytes((j * 37 + b * 11) % 256 for j in range(32))
    out.append(("q8_0.w", "q8_0", [64, 2], q8))
    q4 = b""
    for b in range(6):  # ne [32, 3, 1, 2] = 6 blocks
        q4 += f16((b + 1) * 0.5) + bytes((j * 29 + b * 7) & 0xFF for j in range(16))
    out.append(("q4_0.w", "q4_0", [32, 3, 1, 2], q4))
    out.append(("i32.ids", "i32", [6], b"".join(struct.pack("<i", i * 1000 - 2500) for i in range(6))))
    return out


# Every value kind as a scalar and as an array (reference fixture: written by gguf_writer.py).
SCALARS = [
    ("general.architecture", "str", "test-arch"),
    ("t.u8", "u8", 200), ("t.i8", "i8", -100), ("t.u16", "u16", 60000), ("t.i16", "i16", -30000),
    ("t.u32", "u32", 4000000000), ("t.i32", "i32", -2000000000), ("t.f32", "f32", 1.5),
    ("t.bool", "bool", True), ("t.str", "str", "h\u00e9llo w\u00f6rld \u2713"), ("t.u64", "u64", 2**63 + 5),
    ("t.i64", "i64", -2**62 - 3), ("t.f64", "f64", 3.141592653589793), ("t.empty_str", "str", ""),
]
ARRAYS = [
    ("a.u8", "u8", [0, 1, 255]), ("a.i8", "i8", [-128, 0, 127]), ("a.u16", "u16", [0, 65535]),
    ("a.i16", "i16", [-32768, 32767]), ("a.u32", "u32", [1, 2, 3, 4000000000]), ("a.i32", "i32", [-1, 0, 1]),
    ("a.f32", "f32", [0.5, -2.25]), ("a.bool", "bool", [True, False, True]),
    ("a.str", "str", ["a", "", "\u00fcn\u00ef", "tab\t"]), ("a.u64", "u64", [2**64 - 1]),
    ("a.i64", "i64", [-2**63, 2**63 - 1]), ("a.f64", "f64", [1e300, -0.0]), ("a.empty", "i32", []),
]

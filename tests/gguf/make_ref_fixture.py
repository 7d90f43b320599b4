"""Build-time fixture generator: GGUF files written by the independent reference writer
(tests/reference/gguf_writer.py), read back by test_gguf_reference.c and anygpt-gguf-info.
usage: make_ref_fixture.py OUT_DEFAULT_ALIGN.gguf OUT_ALIGN64.gguf OUT_WRITER_SUBSET.gguf"""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "reference"))
sys.path.insert(0, here)

from gguf_writer import GGUFWriter  # noqa: E402
import fixture_content as fc  # noqa: E402


def full(alignment):
    w = GGUFWriter(alignment=alignment)
    for key, kind, v in fc.SCALARS:
        w.add(key, v, kind=kind)
    for key, kind, v in fc.ARRAYS:
        w.add(key, v, kind=kind)
    for name, ttype, ne, data in fc.tensor_bytes():
        w.tensor(name, ttype, ne, data)
    return w


def writer_subset():
    """What gguf_write_fixture.c writes through the C writer API (scalar kinds it can set, every
    array kind, every tensor type, alignment 64), in the same order."""
    w = GGUFWriter(alignment=64)
    w.add("general.architecture", "test-arch", kind="str")
    w.add("t.u32", 4000000000, kind="u32")
    w.add("t.i32", -2000000000, kind="i32")
    w.add("t.u64", 2**63 + 5, kind="u64")
    w.add("t.f32", 1.5, kind="f32")
    w.add("t.bool", True, kind="bool")
    w.add("t.str", "h\u00e9llo w\u00f6rld \u2713", kind="str")
    for key, kind, v in fc.ARRAYS:
        w.add(key, v, kind=kind)
    for name, ttype, ne, data in fc.tensor_bytes():
        w.tensor(name, ttype, ne, data)
    return w


if __name__ == "__main__":
    full(32).write(sys.argv[1])
    full(64).write(sys.argv[2])
    writer_subset().write(sys.argv[3])

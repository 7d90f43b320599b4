"""anygpt-gguf-info on the reference fixture: every KV and tensor listed with the right type,
shape, offset and size (offsets found independently in the file bytes); a bad file exits 1.
usage: check_info.py ANYGPT_GGUF_INFO FIXTURE_ALIGN64.gguf OUT_DIR"""

import os
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)

import fixture_content as fc  # noqa: E402

passed = failed = 0


def check(cond, msg):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL", msg)


tool, fixture, out_dir = sys.argv[1:4]
blob = open(fixture, "rb").read()
r = subprocess.run([tool, fixture], capture_output=True, text=True)
check(r.returncode == 0, f"exit {r.returncode}: {r.stderr}")
out = r.stdout
lines = [ln.strip() for ln in out.splitlines()]
check(f"file: {fixture} ({len(blob)} bytes)" in lines, "file line")
check("version: 3" in lines, "version line")
check("alignment: 64" in lines, "alignment line")
check(f"key-values: {1 + len(fc.SCALARS) + len(fc.ARRAYS)}" in lines, "kv count")
expect_kv = [
    "general.alignment = u32 64", 'general.architecture = str "test-arch"', "t.u8 = u8 200", "t.i8 = i8 -100",
    "t.u16 = u16 60000", "t.i16 = i16 -30000", "t.u32 = u32 4000000000", "t.i32 = i32 -2000000000",
    "t.f32 = f32 1.5", "t.bool = bool true", 't.str = str "h\\xc3\\xa9llo w\\xc3\\xb6rld \\xe2\\x9c\\x93"',
    f"t.u64 = u64 {2**63 + 5}", f"t.i64 = i64 {-2**62 - 3}", "t.f64 = f64 3.1415926535897931",
    't.empty_str = str ""', "a.u8 = arr[u8, 3] [0, 1, 255]", "a.i16 = arr[i16, 2] [-32768, 32767]",
    "a.u32 = arr[u32, 4] [1, 2, 3, 4000000000]", "a.f32 = arr[f32, 2] [0.5, -2.25]",
    "a.bool = arr[bool, 3] [true, false, true]", 'a.str = arr[str, 4] ["a", "", "\\xc3\\xbcn\\xc3\\xaf", "tab\\x09"]',
    f"a.u64 = arr[u64, 1] [{2**64 - 1}]", f"a.i64 = arr[i64, 2] [{-2**63}, {2**63 - 1}]", "a.empty = arr[i32, 0] []",
]
for e in expect_kv:
    check(e in lines, f"missing KV line: {e}")
check(f"tensors: {len(fc.tensor_bytes())}" in lines, "tensor count")
elems = nbytes = 0
for name, ttype, ne, data in fc.tensor_bytes():
    off = blob.find(data, 24)
    n = 1
    for d in ne:
        n *= d
    elems += n
    nbytes += len(data)
    want = f"{name:<40} {ttype:<5} [{', '.join(map(str, ne))}] offset {off} bytes {len(data)}"
    check(want in lines, f"missing tensor line: {want}")
check(any(ln.startswith(f"total: 6 tensors, {elems} elements, {nbytes} bytes of tensor data") for ln in lines),
      "totals line")

# A truncated copy and a missing file: exit 1 with the reader's message.
bad = os.path.join(out_dir, "info_truncated.gguf")
with open(bad, "wb") as f:
    f.write(blob[: len(blob) - 41])  # the last tensor is followed by 40 bytes of padding
r = subprocess.run([tool, bad], capture_output=True, text=True)
check(r.returncode == 1, f"truncated file: exit {r.returncode}")
check(bad in r.stderr and "past the end of the file" in r.stderr, f"truncated file message: {r.stderr!r}")
r = subprocess.run([tool, os.path.join(out_dir, "nope.gguf")], capture_output=True, text=True)
check(r.returncode == 1 and "cannot open" in r.stderr, f"missing file: {r.returncode} {r.stderr!r}")
r = subprocess.run([tool], capture_output=True, text=True)
check(r.returncode == 2 and "usage" in r.stderr, "usage")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)

"""Our C writer against the independent Python writer: gguf_write_fixture (C) and
make_ref_fixture.writer_subset() (Python) describe the same file; they must agree byte for byte.
usage: check_writer.py GGUF_WRITE_FIXTURE_EXE OUT_DIR"""

import os
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "reference"))
sys.path.insert(0, here)

import make_ref_fixture  # noqa: E402

passed = failed = 0


def check(cond, msg):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL", msg)


exe, out_dir = sys.argv[1], sys.argv[2]
path = os.path.join(out_dir, "c_writer_fixture.gguf")
r = subprocess.run([exe, path], capture_output=True, text=True)
check(r.returncode == 0, f"writer exited {r.returncode}: {r.stderr}")
check(not os.path.exists(path + ".tmp"), "temporary file left behind")
expect = make_ref_fixture.writer_subset().to_bytes()
got = open(path, "rb").read() if os.path.exists(path) else b""
check(len(got) == len(expect), f"size {len(got)}, reference writer {len(expect)}")
diff = next((i for i in range(min(len(got), len(expect))) if got[i] != expect[i]), None)
check(diff is None, f"first differing byte at offset {diff}")
print(f"# compared {len(expect)} bytes with the reference writer")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)

"""Writing op test cases into a GGUF fixture (the format tests/ops/test_ops.c reads).

Per case i (keys prefixed `case.<i>.`):
  name (str)        label printed by the test, e.g. "mul_mat q4_0 K=4128 M=1"
  op (str)          which graph the C side builds (see test_ops.c: build_op)
  n_src (i32)       number of inputs; tensors `case.<i>.src<j>` hold them in their own type
  atol, rtol (f32)  pass when |got - expect| <= atol + rtol * |expect| for every element
  weights (i32)     bitmask of inputs loaded as weights (own buffer, AG_FLAG_PARAM)
  result_src (i32)  optional: compare input j's storage after compute (copy into a view) instead
                    of the op's result
  expect_error (i32) optional: the inputs break the op's contract; cpu must fail at compute time
  src<j>.perm       optional i32[4]: the op reads ag_permute(src j, perm)
  src<j>.view_ne, src<j>.view_nb (bytes), src<j>.view_offs (bytes)
                    optional: the op reads ag_view(src j, ...)
  src<j>.same_as    optional: input j is a view of input `same_as`'s tensor (no own data)
  ...               op parameters under their graph.h names (stride, eps, causal, ...)
and the tensor `case.<i>.expect` (F32 or I32) in the result's shape. Op "attention_long" has no
tensors: test_ops.c generates its inputs from `seed` and checks rows in double precision.
"""

import numpy as np

import ops_numeric as nm
from gguf_writer import GGUFWriter


def ggml_ne(shape):
    ne = list(reversed(shape))
    while len(ne) > 1 and ne[-1] == 1:
        ne.pop()
    return ne or [1]


def _view(keys, exact, ttype, ne, nb, offs):
    from ops_ref import strided_view
    ne = list(ne) + [1] * (4 - len(ne))
    nb = list(nb)
    while len(nb) < 4:
        nb.append(nb[-1] * ne[len(nb) - 1])
    keys["view_ne"] = ne
    keys["view_nb"] = nb
    keys["view_offs"] = offs
    return strided_view(exact.reshape(-1), nm.ITEMSIZE[ttype], ne, nb, offs)


class Src:
    """An input tensor: its GGUF type, ggml shape, bytes, the exact values they hold, and how the
    op sees it (view/permute)."""

    def __init__(self, values, ttype="f32"):
        values = np.asarray(values)
        self.ttype = ttype
        self.ne = ggml_ne(values.shape)
        self.raw, self.exact = nm.encode(values, ttype)
        self.exact = self.exact.reshape(values.shape)
        self.keys = {}
        self.same_as = None

    def view(self, ne, nb, offs):
        """Op sees ag_view(self, ne, nb bytes, offs bytes); returns the numpy view of exact values."""
        return _view(self.keys, self.exact, self.ttype, ne, nb, offs)

    def permute(self, axes):
        """Op sees ag_permute(self, axes); returns the numpy view of exact values."""
        from ops_ref import permute_view, strided_view
        ne = self.ne + [1] * (4 - len(self.ne))
        isz = nm.ITEMSIZE[self.ttype]
        nb = [isz]
        for i in range(1, 4):
            nb.append(nb[-1] * ne[i - 1])
        rne, rnb = permute_view(ne, nb, axes)
        self.keys["perm"] = list(axes)
        return strided_view(self.exact.reshape(-1), isz, rne, rnb, 0)


class ViewOf:
    """An input that is a view of an earlier input's tensor (e.g. q, k, v of one fused buffer)."""

    def __init__(self, index, base, ne, nb, offs):
        self.same_as = index
        self.keys = {}
        self.exact = _view(self.keys, base.exact, base.ttype, ne, nb, offs)


class Fixture:
    def __init__(self):
        self.w = GGUFWriter()
        self.n = 0
        self.names = set()
        self.bytes = 0

    def _kv(self, key, v):
        if isinstance(v, bool):
            self.w.add(key, int(v), kind="i32")
        elif isinstance(v, (int, np.integer)):
            self.w.add(key, int(v), kind="i32")
        elif isinstance(v, (float, np.floating)):
            self.w.add(key, float(v), kind="f32")
        elif isinstance(v, str):
            self.w.add(key, v)
        elif isinstance(v, (list, tuple)):
            self.w.add(key, [int(e) for e in v], kind="i32")
        else:
            raise TypeError(f"{key}: {v!r}")

    def case(self, name, op, srcs, expect, atol, rtol, weights=0, result_src=None, **params):
        assert name not in self.names, f"duplicate case name {name}"
        self.names.add(name)
        expect = np.asarray(expect)
        assert np.all(np.isfinite(expect)), f"{name}: non-finite expectation"
        i = self.n
        self.n += 1
        p = f"case.{i}."
        self._kv(p + "name", name)
        self._kv(p + "op", op)
        self._kv(p + "n_src", len(srcs))
        self._kv(p + "atol", float(atol))
        self._kv(p + "rtol", float(rtol))
        self._kv(p + "weights", int(weights))
        if result_src is not None:
            self._kv(p + "result_src", result_src)
        for k, v in params.items():
            self._kv(p + k, v)
        for j, s in enumerate(srcs):
            for k, v in s.keys.items():
                self._kv(f"{p}src{j}.{k}", v)
            if s.same_as is not None:
                self._kv(f"{p}src{j}.same_as", s.same_as)
                continue
            self.w.tensor(f"{p}src{j}", s.ttype, s.ne, s.raw)
            self.bytes += len(s.raw)
        if np.issubdtype(expect.dtype, np.integer):
            ex = expect.astype(np.int32)
            self.w.tensor(p + "expect", "i32", ggml_ne(ex.shape), ex)
        else:
            ex = expect.astype(np.float32)
            self.w.tensor(p + "expect", "f32", ggml_ne(ex.shape), ex)
        self.bytes += ex.nbytes

    def write(self, path):
        self._kv("ops.n_cases", self.n)
        self.w.write(path)

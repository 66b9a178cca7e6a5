#!/usr/bin/env python3
"""Recipe fixtures of the PyTorch tensors that have no real file in fixtures/torch-real:
quantized (per tensor, per channel), sparse (COO, CSR) and nested tensors.

    /work/main/.venv/bin/python scripts/fixtures_torch_tensors.py   # rewrites fixtures/torch-recipes/

torch is not installable here, so each file is a zip checkpoint written by the recipe of
scripts/fixtures_torch.py (miniz layout, FORMATS.md §4.1) whose data.pkl is the pickle
`torch._tensor.Tensor._reduce_ex_internal` (torch 2.11) makes for the tensor:

* quantized:  torch._utils._rebuild_qtensor(storage, offset, size, stride, quantizer_params,
              requires_grad, OrderedDict()), the storage a torch.QUInt8Storage/QInt8Storage
              persistent id, quantizer_params (torch.per_tensor_affine, scale, zero_point) or
              (torch.per_channel_affine, scales, zero_points, axis) with scales (float64) and
              zero points (int64) tensors of their own;
* sparse:     torch._utils._rebuild_sparse_tensor(layout, (indices, values, torch.Size(size),
              is_coalesced)) for torch.sparse_coo and (layout, (crow_indices, col_indices, values,
              torch.Size(size))) for torch.sparse_csr, the layout pickled as
              torch.serialization._get_layout('torch.sparse_coo') (torch/serialization.py registers
              that reduction for torch.layout with copyreg);
* nested:     torch._utils._rebuild_nested_tensor(values, nested_sizes, nested_strides,
              storage_offsets), all four plain tensors;
* state:      torch._tensor._rebuild_from_type_v2(_rebuild_tensor_v2, torch.Tensor, v2_args,
              {'note': 'x'}), what Tensor.__reduce_ex__ returns for a tensor with attributes.

Every plain tensor inside is `_rebuild_tensor_v2` exactly as fixtures_torch.tensor() writes
it; the generator checks that opcode sequence against the first tensor of the real
fixtures/torch-real/views.pt (memo opcodes aside). Storage keys are numbered in the order
the pickler meets them, as torch.save does. The expected arrays (descriptor, shape, sha256 of
the data) come from numpy and are written to fixtures/torch-recipes/expected.json, which
tests/torch_recipes.rs compares with what `pkinspect extract` writes.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickletools
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures_torch import checkpoint, int_, ordered_dict, small_tuple, storage_pid, tensor  # noqa: E402
from pickle_emit import Emitter  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "torch-recipes"
REAL = ROOT / "fixtures" / "torch-real" / "views.pt"

# numpy dtype -> torch storage class of its torch dtype.
STORAGE = {"<f4": "FloatStorage", "<f8": "DoubleStorage", "<i8": "LongStorage", "|u1": "QUInt8Storage",
           "|i1": "QInt8Storage"}


class Pickle:
    """A data.pkl under construction: the emitter, the storages met so far, the expected arrays."""

    def __init__(self) -> None:
        self.e = Emitter().proto(2)
        self.storages: dict[str, bytes] = {}
        self.expected: dict[str, dict] = {}

    def storage(self, a: np.ndarray) -> str:
        key = str(len(self.storages))
        self.storages[key] = np.ascontiguousarray(a).tobytes()
        return key

    def expect(self, path: str, a: np.ndarray) -> None:
        a = np.ascontiguousarray(a)
        self.expected[path] = {"dtype": a.dtype.str, "shape": list(a.shape),
                               "sha256": hashlib.sha256(a.tobytes()).hexdigest()}

    def dense(self, path: str, a: np.ndarray) -> None:
        """A contiguous tensor through _rebuild_tensor_v2."""
        key = self.storage(a)
        stride = [s // a.itemsize for s in a.strides]
        tensor(self.e, STORAGE[a.dtype.str], key, a.size, 0, a.shape, stride)
        self.expect(path, a)

    def torch_size(self, shape) -> None:
        """torch.Size(shape): torch.Size.__reduce__ is (torch.Size, (tuple(self),))."""
        self.e.global_("torch", "Size")
        small_tuple(self.e, shape)
        self.e.tuple1().reduce()

    def done(self) -> bytes:
        return self.e.setitems().stop().bytes()


def binfloat(e: Emitter, x: float) -> None:
    e.raw(b"G" + struct.pack(">d", x))


def qtensor(p: Pickle, path: str, q: np.ndarray, params) -> None:
    """_rebuild_qtensor(storage, 0, size, stride, quantizer_params, False, OrderedDict())."""
    e = p.e
    e.global_("torch._utils", "_rebuild_qtensor").mark()
    key = p.storage(q)
    storage_pid(e, STORAGE[q.dtype.str], key, q.size, legacy=False)
    int_(e, 0)
    small_tuple(e, q.shape)
    small_tuple(e, [s // q.itemsize for s in q.strides])
    params(e)
    e.newfalse()
    ordered_dict(e)
    e.tuple_().reduce()
    p.expect(path, q)


def quantized_per_tensor() -> Pickle:
    p = Pickle()
    ordered_dict(p.e)
    p.e.mark().binunicode("q")
    q = (np.arange(16, dtype=np.uint8) * 3).reshape(4, 4)

    def params(e: Emitter) -> None:
        e.global_("torch", "per_tensor_affine")
        binfloat(e, 0.1)
        int_(e, 10)
        e.tuple3()
    qtensor(p, "q", q, params)
    return p


def quantized_per_channel() -> Pickle:
    p = Pickle()
    ordered_dict(p.e)
    p.e.mark().binunicode("q")
    q = np.array([[-3, -2, -1, 0], [1, 2, 3, 4], [100, -100, 127, -128]], dtype=np.int8)
    scales = np.array([0.1, 0.2, 0.3], dtype="<f8")
    zero_points = np.array([0, 1, -1], dtype="<i8")

    def params(e: Emitter) -> None:
        e.mark().global_("torch", "per_channel_affine")
        p.dense("q.scales", scales)
        p.dense("q.zero_points", zero_points)
        int_(e, 0)
        e.tuple_()
    qtensor(p, "q", q, params)
    return p


def sparse(layout: str, name: str, parts: list[tuple[str, np.ndarray]], shape, coalesced=None) -> Pickle:
    p = Pickle()
    ordered_dict(p.e)
    p.e.mark().binunicode(name)
    p.e.global_("torch._utils", "_rebuild_sparse_tensor")
    # copyreg.pickle(torch.layout, lambda obj: (_get_layout, (str(obj),))) in torch/serialization.py.
    p.e.global_("torch.serialization", "_get_layout").binunicode(f"torch.{layout}").tuple1().reduce()
    p.e.mark()
    for part, a in parts:
        p.dense(f"{name}.{part}", a)
    p.torch_size(shape)
    if coalesced is not None:
        p.e.newtrue() if coalesced else p.e.newfalse()
    p.e.tuple_().tuple2().reduce()
    return p


def sparse_coo() -> Pickle:
    # make_corpus.py's case: sparse_coo_tensor([[0, 1, 1], [2, 0, 2]], [3., 4., 5.], (2, 3)), plus ones(2).
    p = sparse("sparse_coo", "sparse_coo", [("indices", np.array([[0, 1, 1], [2, 0, 2]], dtype="<i8")),
                                            ("values", np.array([3.0, 4.0, 5.0], dtype="<f4"))], (2, 3), False)
    p.e.binunicode("dense")
    p.dense("dense", np.ones(2, dtype="<f4"))
    return p


def sparse_csr() -> Pickle:
    # [[1, 0, 2], [0, 3, 0]] in CSR form.
    return sparse("sparse_csr", "csr", [("crow_indices", np.array([0, 2, 3], dtype="<i8")),
                                        ("col_indices", np.array([0, 2, 1], dtype="<i8")),
                                        ("values", np.array([1.0, 2.0, 3.0], dtype="<f4"))], (2, 3))


def nested_tensor() -> Pickle:
    # make_corpus.py's case: nested_tensor([ones(2, 3), zeros(4, 3)]).
    p = Pickle()
    ordered_dict(p.e)
    p.e.mark().binunicode("nested")
    p.e.global_("torch._utils", "_rebuild_nested_tensor").mark()
    p.dense("nested.values", np.concatenate([np.ones(6), np.zeros(12)]).astype("<f4"))
    p.dense("nested.nested_sizes", np.array([[2, 3], [4, 3]], dtype="<i8"))
    p.dense("nested.nested_strides", np.array([[3, 1], [3, 1]], dtype="<i8"))
    p.dense("nested.storage_offsets", np.array([0, 6], dtype="<i8"))
    p.e.tuple_().reduce()
    return p


def tensor_with_state() -> Pickle:
    """t = torch.ones(3); t.note = 'x': Tensor.__reduce_ex__ returns
    (_rebuild_from_type_v2, (_rebuild_tensor_v2, torch.Tensor, v2_args, {'note': 'x'}))."""
    p = Pickle()
    ordered_dict(p.e)
    p.e.mark().binunicode("t")
    p.e.global_("torch._tensor", "_rebuild_from_type_v2").mark()
    p.e.global_("torch._utils", "_rebuild_tensor_v2").global_("torch", "Tensor")
    a = np.ones(3, dtype="<f4")
    p.e.mark()
    storage_pid(p.e, "FloatStorage", p.storage(a), 3, legacy=False)
    int_(p.e, 0)
    small_tuple(p.e, (3,))
    small_tuple(p.e, (1,))
    p.e.newfalse()
    ordered_dict(p.e)
    p.e.tuple_()
    p.e.empty_dict().binunicode("note").binunicode("x").setitem()
    p.e.tuple_().reduce()
    p.expect("t", a)
    return p


def shape_of_ops(data: bytes, start: int) -> list[str]:
    """Opcode names of the `_rebuild_tensor_v2` call at `start` up to its REDUCE, memo ops
    dropped and memo gets taken as the value they fetch would be written (any push)."""
    names, depth = [], 0
    for op, _arg, pos in pickletools.genops(io.BytesIO(data)):
        if pos < start or op.name in ("BINPUT", "LONG_BINPUT", "MEMOIZE"):
            continue
        names.append("PUSH" if op.name in ("BINGET", "LONG_BINGET", "BINUNICODE", "BININT1", "BININT2",
                                           "BININT") else op.name)
        depth += op.name == "REDUCE"
        if depth == 2:            # the OrderedDict() hooks, then the tensor itself
            return names
    raise ValueError("no REDUCE")


def check_against_real() -> None:
    """Our _rebuild_tensor_v2 has the real file's opcode structure."""
    with zipfile.ZipFile(REAL) as z:
        real = z.read("views/data.pkl")
    at = real.index(b"c" + b"torch._utils\n_rebuild_tensor_v2\n")
    e = Emitter().proto(2)
    tensor(e, "FloatStorage", "0", 60, 0, (6, 10), (10, 1))
    ours = e.stop().bytes()
    assert shape_of_ops(real, at) == shape_of_ops(ours, 2), (shape_of_ops(real, at), shape_of_ops(ours, 2))


def main() -> None:
    check_against_real()
    OUT.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, make in [("quantized_per_tensor", quantized_per_tensor), ("qtensor_per_channel", quantized_per_channel),
                       ("sparse_coo", sparse_coo), ("sparse_csr", sparse_csr), ("nested_tensor", nested_tensor),
                       ("tensor_state", tensor_with_state)]:
        p = make()
        data = checkpoint(name, p.done(), p.storages)
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            assert z.testzip() is None
            pickletools.dis(z.read(f"{name}/data.pkl"), out=io.StringIO())
        (OUT / f"{name}.pt").write_bytes(data)
        expected[f"{name}.pt"] = p.expected
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(expected)} fixtures to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

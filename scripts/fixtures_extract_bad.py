#!/usr/bin/env python3
"""Bad-input fixtures for `pkinspect extract`, written opcode by opcode.

    python3 scripts/fixtures_extract_bad.py     # rewrites fixtures/extract_bad/ (stdlib only)

Each file is a small model-like pickle (a dict or an object state) with one
broken value next to good ones, so the tests can check that the broken value
becomes an error (or a finding) and everything else is still extracted:

* shape_mismatch.pkl     a numpy array whose shape needs more bytes than its data
* impossible_dtype.pkl   an array whose dtype is 'f3' (no such numpy type)
* path_attr.pkl          an attribute named '../../etc/x' holding an array
* memo_bomb.pkl          a list of 1000 references to a list of 1000 references to
                         one array: 10^6 uses of one value (must stay a DAG)
* deep_nesting.pkl       collections.OrderedDict objects nested 12,000 deep
* os_system.pkl          posix.system('echo pkinspect-fixture') as an attribute
                         value next to a good array (extracting shows the call)
* empty_object_huge.pkl  an empty object array of shape (10**12, 0): numpy would
                         nest 10**12 empty lists
* wrapper_bad_dtype.joblib  a joblib file whose second array's wrapper has dtype 'f3'
                         (joblib's reader skips 3-byte items; extract refuses the
                         array and must still skip its payload to reach the rest)
* storage_offset.pt      a PyTorch zip checkpoint whose tensor starts past its storage
* stride_zero.pt         a tensor of 10**9 elements viewing one float (stride 0): a
                         4 GB array from a 1 KB file

The arrays use numpy's protocol 2-4 `_reconstruct` + BUILD layout (FORMATS.md
§2.1) with numpy 2.x names, in protocol 3 streams. Deterministic; nothing here unpickles anything.
SAFETY: the only payload is `echo pkinspect-fixture`.
"""

from __future__ import annotations

import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pickle_emit import Emitter  # noqa: E402
import fixtures_torch as ft  # noqa: E402
from fixtures_hostile import E  # noqa: E402
from fixtures_joblib_hostile import _padding, _wrapper  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "extract_bad")


def dtype(e: Emitter, code: str) -> None:
    """numpy.dtype(code, False, True) + BUILD((3, '<', None, None, None, -1, -1, 0))."""
    e.global_("numpy", "dtype").binunicode(code).newfalse().newtrue().tuple3().reduce()
    e.mark().binint1(3).binunicode("<").none().none().none().binint(-1).binint(-1).binint1(0).tuple_().build()


def array(e: Emitter, code: str, shape: tuple[int, ...], data: bytes) -> None:
    """_reconstruct(ndarray, (0,), b'b') + BUILD((1, shape, dtype, False, data))."""
    e.global_("numpy._core.multiarray", "_reconstruct")
    e.global_("numpy", "ndarray").binint1(0).tuple1().short_binbytes(b"b").tuple3().reduce()
    e.mark().binint1(1)
    e.mark()
    for d in shape:
        e.binint(d)
    e.tuple_()
    dtype(e, code)
    e.newfalse().binbytes(data).tuple_().build()


def model(attrs) -> bytes:
    """An object of a made-up class whose BUILD state holds `attrs`:
    [(name, writer)], each writer emitting one value."""
    e = Emitter().proto(3)
    e.global_("sklearn.linear_model._logistic", "LogisticRegression").empty_tuple().newobj()
    e.empty_dict().mark()
    for name, write in attrs:
        e.binunicode(name)
        write(e)
    e.setitems().build().stop()
    return e.bytes()


GOOD = struct.pack("<3d", 1.0, 2.0, 3.0)


def good(e: Emitter) -> None:
    array(e, "f8", (3,), GOOD)


def build() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    files["shape_mismatch.pkl"] = model([
        ("coef_", good),
        ("bad_", lambda e: array(e, "f8", (4, 5), GOOD)),
        ("_sklearn_version", lambda e: e.binunicode("1.9.1")),
    ])
    files["impossible_dtype.pkl"] = model([
        ("coef_", good),
        ("bad_", lambda e: array(e, "f3", (3,), b"\0" * 9)),
    ])
    files["path_attr.pkl"] = model([
        ("coef_", good),
        ("../../etc/x", good),
        ("/abs/path", good),
    ])

    def bomb(e: Emitter) -> None:
        good(e)
        e.binput(1)
        e.empty_list().binput(2).mark()
        for _ in range(1000):
            e.binget(1)
        e.appends()
        e.empty_list().mark()
        for _ in range(1000):
            e.binget(2)
        e.appends()

    files["memo_bomb.pkl"] = model([("coef_", bomb)])

    def deep(e: Emitter) -> None:
        # OrderedDict({'k': OrderedDict({'k': ...})}) 12,000 deep: objects recurse, up to
        # MAX_EXTRACT_DEPTH (10,000); containers (lists 10,000 deep: fixtures/deep) do not.
        for _ in range(12000):
            e.global_("collections", "OrderedDict").empty_tuple().reduce().short_binunicode("k")
        e.none()
        for _ in range(12000):
            e.setitem()

    files["deep_nesting.pkl"] = model([("coef_", good), ("deep", deep)])

    def system(e: Emitter) -> None:
        e.global_("posix", "system").binunicode("echo pkinspect-fixture").tuple1().reduce()

    files["os_system.pkl"] = model([("coef_", good), ("hook", system)])

    def empty_object(e: Emitter) -> None:
        """_reconstruct + BUILD((1, (10**12, 0), dtype('O8'), False, []))."""
        e.global_("numpy._core.multiarray", "_reconstruct")
        e.global_("numpy", "ndarray").binint1(0).tuple1().short_binbytes(b"b").tuple3().reduce()
        e.mark().binint1(1)
        e.raw(b"\x8a\x06" + (10**12).to_bytes(6, "little")).binint1(0).tuple2()
        e.global_("numpy", "dtype").binunicode("O8").newfalse().newtrue().tuple3().reduce()
        e.mark().binint1(3).binunicode("|").none().none().none().binint(-1).binint(-1).binint1(63).tuple_().build()
        e.newfalse().empty_list().tuple_().build()

    files["empty_object_huge.pkl"] = model([("coef_", good), ("bad_", empty_object)])

    # A tensor of 3 floats that starts at element 5 of a 4-element storage.
    e = Emitter().proto(2)
    ft.ordered_dict(e)
    e.mark().binunicode("good")
    ft.tensor(e, "FloatStorage", "0", 4, 0, (4,), (1,))
    e.binunicode("bad")
    ft.tensor(e, "FloatStorage", "1", 4, 5, (3,), (1,))
    e.setitems().stop()
    j = E().proto(4).empty_dict().mark().short_binunicode("good")
    _wrapper(j, (3,), code="f8")
    j.raw(_padding(len(j))).raw(GOOD)
    j.short_binunicode("bad")
    _wrapper(j, (2,), code="f3")
    j.raw(_padding(len(j))).raw(b"\0" * 6)
    j.short_binunicode("after").short_binunicode("still read")
    j.setitems().stop()
    files["wrapper_bad_dtype.joblib"] = j.bytes()

    z = Emitter().proto(2)
    ft.ordered_dict(z)
    z.mark().binunicode("good")
    ft.tensor(z, "FloatStorage", "0", 4, 0, (4,), (1,))
    z.binunicode("bad")
    ft.tensor(z, "FloatStorage", "1", 1, 0, (10**9,), (0,))
    z.setitems().stop()
    files["stride_zero.pt"] = ft.checkpoint("stride_zero", z.bytes(), {"0": ft.f32(1, 2, 3, 4), "1": ft.f32(5)})
    files["storage_offset.pt"] = ft.checkpoint(
        "storage_offset", e.bytes(), {"0": ft.f32(1, 2, 3, 4), "1": ft.f32(5, 6, 7, 8)}
    )
    return files


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    files = build()
    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(sorted(files), f, indent=1)
        f.write("\n")
    print(f"wrote {len(files)} files to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()

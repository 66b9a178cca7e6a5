#!/usr/bin/env python3
"""Interop test for `pkinspect extract`: compare its output with what the real libraries load.

Usage
-----
    .venv/bin/python scripts/interop_extract.py --pkinspect target/debug/pkinspect \\
        [--fixtures fixtures/extract fixtures/benign fixtures/joblib fixtures/real] [--keep DIR] [-v]

For every TRUSTED fixture (files this project generated from its own benign
objects; see "Which files" below) it runs

    PKINSPECT extract FILE -o TMPDIR          (exit status 0 or 1 accepted: 1 = findings)

reads the document TMPDIR/*.json (docs/extract.md, schema_version 1), loads
the same FILE with the real library (pickle.load / joblib.load /
numpy.load(allow_pickle=True)) and checks the document against the loaded
object.  It prints a summary (files, arrays, attributes, the distinct
scikit-learn estimator classes covered, every failure as `file: path:
reason`) and exits 1 on any failure (or if fewer than --min-estimators
estimator classes were covered), 0 otherwise.  It uses only the venv's
packages (numpy, joblib, scikit-learn, scipy, pandas).

Which files
-----------
A fixture folder's manifest.json decides.  `loader` (fixtures/extract) says
how to load a file: "pickle", "joblib", "npz" or "torch_zip" (compared with
the manifest's expected tensors, since torch is not installed).  Folders
without `loader` (fixtures/benign, fixtures/joblib, fixtures/containers):
entries whose `kind` is "hostile" or whose `expect_rules` is non-empty are
skipped, files naming a `torch` global are skipped (not loadable without
torch), and the loader follows the suffix (.pkl -> pickle, .joblib[.z|.gz|
...] -> joblib, .npz/.npy -> numpy.load; anything else is skipped).  A path
with a folder named `hostile` or `legacy_hostile` is refused outright: those
files must never be loaded by Python.

Checks
------
(a) arrays.  For every entry of the document's "arrays" list:
    - its file is inside TMPDIR, loads with numpy.load(allow_pickle=False),
      and the entry's dtype/shape/order/nbytes describe that file;
    - its "path" is navigable in the document from pickles[k].root (the
      pickle the entry names with "pickle"/"member" if present, else the
      first) and ends at the ndarray/tensor node that names the same file;
    - the path is followed from the REAL root object (the resolver below)
      and the value found there is compared with the .npy: dtype equal
      (numpy descr incl. byte order, structured names/titles/offsets/
      itemsize and subarrays), shape equal, and
      np.ascontiguousarray(a).tobytes() equal.  One documented exception:
      joblib.load byte-swaps non-native arrays (NumpyArrayWrapper
      ensure_native_byte_order), so for loader "joblib" a '>' dtype in the
      .npy matches a native real array when the values are equal after
      astype(real dtype).
(b) attributes.  The document's root value is walked in parallel with the
    loaded root ("the walker").  Every scalar (None, bool, int incl. the
    {"type":"int"} form beyond 2^53, float incl. nan/inf/-0.0, str, bytes,
    bytearray, numpy scalars: dtype descr + value) is decoded and compared
    with the Python value; containers must have the same type (list /
    tuple / dict / set) and length.  For every "object" node whose state is
    a dict, the set of state keys must equal the keys of the state the real
    object pickles (its __reduce_ex__(4) state): that is set(vars(obj))
    for plain objects and set(vars(obj)) | {"_sklearn_version"} for
    scikit-learn estimators (BaseEstimator.__getstate__ adds the version,
    __setstate__ pops it); pandas objects pickle a different dict than
    their __dict__ and are compared against that dict.  The object's class
    must be a class the real object is an instance of.  ndarray nodes must
    match dtype/shape/class, object-array items are walked element by
    element, "global" nodes must name the real object, "dtype" nodes its
    descr.
(c) torch.  For loader "torch_zip" the manifest lists every tensor (path,
    torch_dtype, dtype, shape, sha256 of the C-contiguous bytes); each must
    be an arrays entry with that path, its .npy must have that dtype, shape
    and sha256, and the tensor node at that path in the document must carry
    the same torch_dtype/dtype/shape/file and requires_grad false.
    `values` (path -> plain value) are compared too.

The resolver (path -> real object)
----------------------------------
Steps are taken with the document as a guide: the node at each step says
what kind of step it is.
    list / tuple / object-ndarray items   int  -> obj[i]
    dict ("items" or "pairs")             key  -> obj[key]
    object node, key in its state dict    str  -> vars(obj)[key], else the
        state the object pickles (obj.__reduce_ex__(4)[2], e.g. sklearn's
        Tree keeps nodes/values there, pandas' DataFrame keeps _mgr), else
        getattr(obj, key), else obj.__getstate__()[key]
    object node with a tuple state        int  -> obj.__reduce_ex__(4)[2][i]
        (e.g. KDTree's 12-tuple, a pandas NDArrayBacked state)
    object node, int step not in state    int  -> constructor args: the
        __reduce_ex__(4) args (without the class for copyreg.__newobj__),
        e.g. Tree(n_features, n_classes, n_outputs)
    call node                             int  -> obj.__reduce_ex__(4)[1][i]
        (pandas: BlockManager(blocks, axes) -> _unpickle_block(values,
        placement, ndim); Index -> _new_Index(cls, {"data": ...}))
    pkinspect's pseudo-steps (src/extract/mod.rs; docs/extract.md does
    not list them yet), into an object or call node:
        "__args__"   -> its "args": the __reduce_ex__ args (for an object
                        made by copyreg.__newobj__, without the class;
                        for a call, exactly the REDUCE args)
        "__kwargs__" -> its "kwargs" (copyreg.__newobj_ex__)
        "__state__"  -> its "state" when that is not a dict (a dict state,
                        or a (dict, slots) pair, is stepped into directly,
                        by key or by 0/1): __reduce_ex__(4)[2]
        "__items__"  -> "listitems"/"setitems" (APPEND/ADDITEMS): list(obj)
        "__func__"   -> a call's "func": __reduce_ex__(4)[0]
    and keys of an object's "dictitems" (SETITEMS on e.g. an OrderedDict)
    are stepped into as dict keys: obj[key].
__reduce_ex__ is called with the file's pickle protocol from its manifest
(objects pickle as copyreg._reconstructor below protocol 2).
If the document cannot guide a step, the same lookups are tried in the
order dict key, vars, pickled state, getattr, __getstate__, reduce args
(and a failure is recorded for the document).  For .npz files the root is
{member name: array} (a step may name the member with or without ".npy").
"""

from __future__ import annotations

import argparse
import collections
import copyreg
import enum
import hashlib
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import joblib
import numpy as np
from numpy.lib.format import descr_to_dtype, dtype_to_descr

try:
    from sklearn.base import BaseEstimator
except ImportError:                                   # pragma: no cover
    BaseEstimator = None

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FIXTURES = ["fixtures/extract", "fixtures/benign", "fixtures/joblib", "fixtures/real",
                    "fixtures/joblib-legacy"]
REFUSED_DIRS = {"hostile", "legacy_hostile"}
JOBLIB_SUFFIXES = (".joblib", ".joblib.z", ".joblib.gz", ".joblib.bz2", ".joblib.xz", ".joblib.lzma",
                   ".joblib.lz4")
MAX_DEPTH = 400
SAFE_INT = 2 ** 53


class ResolveError(Exception):
    pass


def qualname(obj) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def norm_descr(descr):
    """A descr as JSON would carry it (tuples -> lists)."""
    return json.loads(json.dumps(descr))


def descr_of(dt: np.dtype):
    return norm_descr(dtype_to_descr(dt))


def to_dtype(descr) -> np.dtype:
    """The JSON descr (lists) back to a numpy dtype."""
    def tup(d):
        if isinstance(d, list):
            out = []
            for f in d:
                name = tuple(f[0]) if isinstance(f[0], list) else f[0]
                rest = [tup(x) if isinstance(x, list) and i == 0 else (tuple(x) if isinstance(x, list) else x)
                        for i, x in enumerate(f[1:])]
                out.append((name, *rest))
            return out
        return d
    return descr_to_dtype(tup(descr))


def dtype_equal(a: np.dtype, b: np.dtype) -> bool:
    """Equal including byte order, field names, titles, offsets, itemsize and subarrays."""
    if a != b or a.itemsize != b.itemsize or a.str != b.str:
        return False
    if (a.fields is None) != (b.fields is None):
        return False
    if a.fields is not None:
        if a.names != b.names:
            return False
        for k in a.fields:
            fa, fb = a.fields[k], b.fields.get(k)
            if fb is None or fa[1:] != fb[1:] or not dtype_equal(fa[0], fb[0]):
                return False
    if (a.subdtype is None) != (b.subdtype is None):
        return False
    if a.subdtype is not None:
        return a.subdtype[1] == b.subdtype[1] and dtype_equal(a.subdtype[0], b.subdtype[0])
    return True


PROTOCOL = [4]        # the protocol of the file being checked (objects reduce differently below 2)


def reduce_of(py):
    # What pickle itself uses first: copyreg's dispatch table (re.Pattern -> re._compile).
    reducer = copyreg.dispatch_table.get(type(py))
    if reducer is not None:
        return reducer(py)
    rv = py.__reduce_ex__(max(PROTOCOL[0], 2) if isinstance(py, (list, dict, set)) else PROTOCOL[0])
    if not isinstance(rv, tuple):
        raise ResolveError(f"__reduce_ex__(4) of {qualname(py)} is {rv!r}")
    return rv


def pickled_state(py):
    """The state the object pickles (what BUILD receives)."""
    rv = reduce_of(py)
    return rv[2] if len(rv) > 2 else None


def state_dict(py) -> dict | None:
    st = pickled_state(py)
    if isinstance(st, dict):
        return st
    if isinstance(st, tuple) and len(st) == 2 and all(x is None or isinstance(x, dict) for x in st):
        merged = dict(st[0] or {})
        merged.update(st[1] or {})
        return merged
    return None


def reduce_args(py) -> tuple:
    rv = reduce_of(py)
    f, args = rv[0], rv[1]
    if f is copyreg.__newobj__:
        return tuple(args[1:])
    if f is getattr(copyreg, "__newobj_ex__", None):
        return tuple(args[1])
    return tuple(args)          # REDUCE args, incl. copyreg._reconstructor(cls, base, state)


def state_value(py, key, sd=None):
    """A named attribute: the state the object pickles (what BUILD received; for sklearn
    estimators and most objects this is vars(obj) plus '_sklearn_version', for pandas objects
    the dict their __getstate__ builds, e.g. DataFrame '_flags' is a plain dict there), then
    vars(obj), then getattr, then __getstate__()."""
    if isinstance(py, Mapping) and key in py:
        return py[key]
    if sd is None:
        try:
            sd = state_dict(py)
        except Exception:                              # noqa: BLE001
            sd = None
    if sd is not None and key in sd:
        return sd[key]
    d = getattr(py, "__dict__", None)
    if isinstance(d, dict) and key in d:
        return d[key]
    try:
        return getattr(py, key)
    except AttributeError:
        pass
    gs = getattr(py, "__getstate__", None)
    if gs is not None:
        st = gs()
        if isinstance(st, dict) and key in st:
            return st[key]
    raise ResolveError(f"{qualname(py)} has no attribute/state key {key!r}")


def py_step(py, step):
    """Python-only resolution (no document guidance)."""
    if isinstance(step, str) and step in ("__args__", "__state__", "__func__") and not isinstance(py, Mapping):
        return {"__args__": reduce_args, "__state__": pickled_state, "__func__": lambda x: reduce_of(x)[0]}[step](py)
    if isinstance(step, int) and not isinstance(step, bool):
        if isinstance(py, (list, tuple, np.ndarray)):
            return py[step]
        if isinstance(py, Mapping) and step in py:
            return py[step]
        st = pickled_state(py)
        if isinstance(st, (tuple, list)):
            return st[step]
        return reduce_args(py)[step]
    if isinstance(py, Mapping):
        if step in py:
            return py[step]
        if isinstance(step, str) and step.endswith(".npy") and step[:-4] in py:
            return py[step[:-4]]
    return state_value(py, step)


def fmt_path(path) -> str:
    return json.dumps(path, ensure_ascii=False, default=str)


# ---------------------------------------------------------------------------
# Document helpers
# ---------------------------------------------------------------------------
def _bad_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def load_document(path: Path):
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=_bad_constant)


def is_node(j) -> bool:
    return isinstance(j, dict) and "type" in j


def collect_ids(doc) -> dict:
    ids: dict = {}
    stack = [doc]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            if "id" in x and x.get("type") != "ref":
                ids[x["id"]] = x
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return ids


class Ctx:
    def __init__(self, file: Path, loader: str, outdir: Path, ids: dict, verbose: bool):
        self.file, self.loader, self.outdir, self.ids, self.verbose = file, loader, outdir, ids, verbose
        self.failures: list[tuple[str, str, str]] = []
        self.arrays = 0
        self.attrs = 0
        self.keysets = 0
        self.masked = 0
        self.companions = 0
        self.py2 = False
        self.skipped: dict[str, int] = {}
        self.visited: set = set()
        self.json_classes: set[str] = set()
        self.owner: dict | None = None

    def fail(self, path, reason: str) -> None:
        self.failures.append((self.file.name, fmt_path(path) if isinstance(path, list) else str(path), reason))

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1

    def deref(self, j):
        if is_node(j) and j.get("type") == "ref":
            if j.get("id") not in self.ids:
                raise ResolveError(f"ref to unknown id {j.get('id')!r}")
            return self.ids[j["id"]]
        return j


def decode_key(j):
    """A dict key / set element from the document as a hashable Python value (or raise)."""
    if j is None or isinstance(j, (bool, int, float, str)):
        return j
    if is_node(j):
        t = j["type"]
        if t == "int":
            return int(j["value"])
        if t == "float":
            return float(j["value"])
        if t == "bytes":
            return bytes.fromhex(j["hex"])
        if t == "tuple":
            return tuple(decode_key(x) for x in j["items"])
        if t == "frozenset":
            return frozenset(decode_key(x) for x in j["items"])
    raise ValueError(f"cannot decode key {j!r}")


def json_child(ctx: Ctx, j, step):
    """One document step: (child node, kind) where kind tells the Python side how to step."""
    j = ctx.deref(j)
    isint = isinstance(step, int) and not isinstance(step, bool)
    if isinstance(j, list):
        if isint and -len(j) <= step < len(j):
            return j[step], "seq"
        raise ResolveError(f"index {step!r} not in a list of {len(j)}")
    if not is_node(j):
        raise ResolveError(f"cannot step into scalar {j!r}")
    t = j["type"]
    if t in ("object", "call") and isinstance(step, str) and step in PSEUDO_STEPS:
        key = PSEUDO_STEPS[step]
        if key == "items":
            key = "listitems" if "listitems" in j else "setitems"
        if key in j:
            if key == "state" and "state" not in j and j.get("states"):
                return j["states"][-1], "pseudo_state"
            return j[key], f"pseudo_{key}" if t == "object" or key != "args" else "pseudo_call_args"
        raise ResolveError(f"{t} node has no {key!r} for path step {step!r}")
    if t == "masked_array":
        if step in MASKED_PARTS and step in j:
            return j[step], "masked"
        raise ResolveError(f"{step!r} is not a part of a masked array")
    if t in ("list", "tuple") or (t == "ndarray" and "items" in j):
        items = j["items"]
        if isint and isinstance(items, list) and -len(items) <= step < len(items):
            return items[step], "seq"
        raise ResolveError(f"index {step!r} not in {t} items")
    if t == "dict":
        if "items" in j:
            if step in j["items"]:
                return j["items"][step], "key"
        else:
            for k, v in j.get("pairs", []):
                try:
                    if decode_key(k) == step:
                        return v, "key"
                except ValueError:
                    continue
        raise ResolveError(f"key {step!r} not in dict")
    if t == "object":
        st = j.get("state", j["states"][-1] if j.get("states") else None)
        st = ctx.deref(st)
        if is_node(st) and st["type"] == "dict":
            try:
                return json_child(ctx, st, step)[0], "state"
            except ResolveError:
                pass
        if is_node(st) and st["type"] == "tuple" and len(st["items"]) == 2:
            for part in st["items"]:
                part = ctx.deref(part)
                if is_node(part) and part["type"] == "dict":
                    try:
                        return json_child(ctx, part, step)[0], "state"
                    except ResolveError:
                        pass
        if isint and is_node(st) and st["type"] in ("tuple", "list"):
            if -len(st["items"]) <= step < len(st["items"]):
                return st["items"][step], "state_idx"
        if isint and isinstance(st, list) and -len(st) <= step < len(st):
            return st[step], "state_idx"
        if isint and j.get("args") and -len(j["args"]) <= step < len(j["args"]):
            return j["args"][step], "args"
        if "dictitems" in j:              # SETITEM(S) applied to the object (OrderedDict, defaultdict)
            try:
                return json_child(ctx, j["dictitems"], step)[0], "key"
            except ResolveError:
                pass
        raise ResolveError(f"{step!r} is neither a state key nor an argument of object {j.get('class')}")
    if t == "call":
        st = ctx.deref(j.get("state"))
        if is_node(st) and st["type"] == "dict":
            try:
                return json_child(ctx, st, step)[0], "state"
            except ResolveError:
                pass
        if isint and -len(j.get("args", [])) <= step < len(j.get("args", [])):
            return j["args"][step], "call_args"
        if "dictitems" in j:
            try:
                return json_child(ctx, j["dictitems"], step)[0], "key"
            except ResolveError:
                pass
        raise ResolveError(f"cannot step {step!r} into call of {j.get('func')}")
    raise ResolveError(f"cannot step {step!r} into a {t} node")


def py_child(py, step, kind):
    if kind in ("seq", "key"):
        if isinstance(py, Mapping) and isinstance(step, str) and step not in py and step.endswith(".npy"):
            return py[step[:-4]]
        return py[step]
    if kind == "masked":
        return MASKED_PARTS[step](py)
    if kind == "state":
        return state_value(py, step)
    if kind == "state_idx":
        st = pickled_state(py)
        return st[step]
    if kind == "args":
        return reduce_args(py)[step]
    if kind == "call_args":
        return reduce_of(py)[1][step]
    if kind == "pseudo_state":
        return pickled_state(py)
    if kind == "pseudo_args":
        return reduce_args(py)
    if kind == "pseudo_call_args":
        return tuple(reduce_of(py)[1])
    if kind == "pseudo_kwargs":
        rv = reduce_of(py)
        return rv[1][2] if rv[0] is getattr(copyreg, "__newobj_ex__", None) else {}
    if kind == "pseudo_func":
        return reduce_of(py)[0]
    if kind in ("pseudo_listitems", "pseudo_setitems"):
        return list(py)
    raise ResolveError(kind)


# A masked_array node's parts (docs/extract.md): numpy.ma's own accessors. The fill value
# is the stored 0-d array (the fill_value property gives a scalar of it).
MASKED_PARTS = {"data": lambda m: np.ma.getdata(m), "mask": lambda m: np.ma.getmaskarray(m),
                "fill_value": lambda m: m._fill_value}


# pkinspect's pseudo-steps into object/call nodes (src/extract/mod.rs; not in docs/extract.md)
PSEUDO_STEPS = {"__args__": "args", "__kwargs__": "kwargs", "__state__": "state", "__items__": "items",
                "__func__": "func"}


def resolve(ctx: Ctx, root_j, root_py, path):
    """Follow `path` in the document and in the real object together.
    Returns (json node or None, python value, document error or None)."""
    j, py, doc_err = root_j, root_py, None
    for i, step in enumerate(path):
        kind = None
        if doc_err is None:
            try:
                j, kind = json_child(ctx, j, step)
            except ResolveError as e:
                doc_err = f"path step {i} ({step!r}) not navigable in the document: {e}"
                j = None
        try:
            py = py_child(py, step, kind) if kind else py_step(py, step)
        except (ResolveError, KeyError, IndexError, AttributeError, TypeError) as e:
            if kind:          # the document guided us somewhere Python cannot follow: try without it
                try:
                    py = py_step(py, step)
                    continue
                except (ResolveError, KeyError, IndexError, AttributeError, TypeError):
                    pass
            raise ResolveError(f"step {i} ({step!r}) not resolvable on the real object "
                               f"({qualname(py)}): {type(e).__name__}: {e}") from None
    return (ctx.deref(j) if j is not None else None), py, doc_err


# ---------------------------------------------------------------------------
# Scalar comparison
# ---------------------------------------------------------------------------
def _float_eq(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1, a) == math.copysign(1, b)


def decode_float(j):
    if isinstance(j, float):
        return j
    if is_node(j) and j.get("type") == "float":
        v = j.get("value")
        if v in ("nan", "inf", "-inf"):
            return float(v)
        raise ValueError(f"bad float node value {v!r}")
    raise ValueError(f"expected a float, got {json.dumps(j)[:80]}")


def decode_int(j):
    if isinstance(j, int) and not isinstance(j, bool):
        return j
    if is_node(j) and j.get("type") == "int":
        return int(j["value"])
    raise ValueError(f"expected an int, got {json.dumps(j)[:80]}")


def read_blob(ctx: Ctx, j) -> bytes:
    p = (ctx.outdir / j["file"]).resolve()
    if ctx.outdir.resolve() not in p.parents:
        raise ValueError(f"blob file {j['file']!r} outside the output folder")
    data = p.read_bytes()
    if "nbytes" in j and j["nbytes"] != len(data):
        raise ValueError(f"blob nbytes {j['nbytes']} != file size {len(data)}")
    return data


def compare_np_scalar(ctx: Ctx, j, py: np.generic, path) -> None:
    if not (is_node(j) and j["type"] == "scalar"):
        ctx.fail(path, f"numpy scalar {qualname(py)}({py!r}) written as {json.dumps(j)[:100]}")
        return
    want = descr_of(py.dtype)
    if j.get("dtype") != want:
        ctx.fail(path, f"scalar dtype {j.get('dtype')!r} != {want!r}")
        return
    v = j.get("value")
    k = py.dtype.kind
    try:
        if k == "b":
            ok = v is bool(py)
        elif k in "iu":
            ok = decode_int(v) == int(py)
        elif k == "f":
            f = decode_float(v)
            # accepted: the value as a double, or the shortest repr of the narrower type
            ok = _float_eq(f, float(py)) or (np.isfinite(f) and py.dtype.type(f) == py)
        elif k == "c":
            ok = (isinstance(v, list) and len(v) == 2 and _float_eq(decode_float(v[0]), float(py.real))
                  and _float_eq(decode_float(v[1]), float(py.imag)))
        else:
            # docs/extract.md: 'others "hex"': accepted as {"hex": ..} next to dtype or as "value": {"hex": ..}
            hx = j.get("hex", v.get("hex") if isinstance(v, dict) else None)
            ok = isinstance(hx, str) and bytes.fromhex(hx) == py.tobytes()
            v = hx
    except (ValueError, TypeError) as e:
        ctx.fail(path, f"scalar {py.dtype}: {e}")
        return
    if not ok:
        ctx.fail(path, f"scalar {py.dtype} value {json.dumps(v)[:80]} != {py!r}")


def compare_scalar(ctx: Ctx, j, py, path) -> None:
    """py is None/bool/int/float/complex/str/bytes/bytearray/numpy scalar."""
    ctx.attrs += 1
    if isinstance(py, np.generic):
        compare_np_scalar(ctx, j, py, path)
        return
    try:
        if py is None:
            ok, what = j is None, "None"
        elif isinstance(py, bool):
            ok, what = j is py, repr(py)
        elif isinstance(py, int):
            if abs(py) <= SAFE_INT:
                ok = isinstance(j, int) and not isinstance(j, bool) and j == py
            else:
                ok = is_node(j) and j.get("type") == "int" and j.get("value") == str(py)
            what = repr(py)
        elif isinstance(py, float):
            if math.isfinite(py):
                ok = isinstance(j, float) and _float_eq(j, py)
                if isinstance(j, int) and not isinstance(j, bool) and j == py:
                    ctx.fail(path, f"float {py!r} written without fraction/exponent ({j})")
                    return
            else:
                ok = is_node(j) and j.get("type") == "float" and _float_eq(decode_float(j), py)
            what = repr(py)
        elif isinstance(py, str):
            if is_node(j) and j.get("type") == "str":
                ok = read_blob(ctx, j).decode("utf-8", "surrogatepass") == py
            else:
                ok = isinstance(j, str) and j == py
            what = repr(py)[:80]
        elif isinstance(py, (bytes, bytearray)):
            t = "bytes" if isinstance(py, bytes) else "bytearray"
            if is_node(j) and j.get("type") == t:
                data = bytes.fromhex(j["hex"]) if "hex" in j else read_blob(ctx, j)
                ok = data == bytes(py)
            elif ctx.py2 and isinstance(j, str):
                # A Python 2 str is bytes: the file holds text where Python 3 pickles bytes.
                ok = j.encode("latin1", "replace") == bytes(py)
            else:
                ok = False
            what = f"{t} of {len(py)}"
        elif isinstance(py, complex):
            # builtins.complex(re, im): a call/object node; compare its args when present
            args = j.get("args") if is_node(j) else None
            ok = (isinstance(args, list) and len(args) == 2 and _float_eq(decode_float(args[0]), py.real)
                  and _float_eq(decode_float(args[1]), py.imag))
            what = repr(py)
        else:
            raise TypeError(type(py))
    except (ValueError, KeyError, TypeError, OSError) as e:
        ctx.fail(path, f"{qualname(py)}: {e}")
        return
    if not ok:
        ctx.fail(path, f"{qualname(py)} {what} written as {json.dumps(j)[:120]}")


SCALAR_TYPES = (type(None), bool, int, float, complex, str, bytes, bytearray, np.generic)


# ---------------------------------------------------------------------------
# The walker: document value vs real value
# ---------------------------------------------------------------------------
def resolve_global(module: str, name: str):
    """module.name from already-imported modules only (never imports anything)."""
    mod = sys.modules.get(module)
    if mod is None:
        raise LookupError(f"module {module} not imported")
    obj = mod
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def resolve_class(cls: str):
    parts = cls.split(".")
    for i in range(len(parts) - 1, 0, -1):
        mod = ".".join(parts[:i])
        if mod in sys.modules:
            try:
                return resolve_global(mod, ".".join(parts[i:]))
            except AttributeError:
                continue
    raise LookupError(cls)


def walk(ctx: Ctx, j, py, path, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        ctx.skip("depth limit")
        return
    if is_node(j) and j["type"] == "ref":
        if j.get("id") not in ctx.ids:
            ctx.fail(path, f"ref to unknown id {j.get('id')!r}")
        return
    if is_node(j) and "id" in j:
        if j["id"] in ctx.visited:
            return
        ctx.visited.add(j["id"])
    # An enum member is an int (IntEnum, IntFlag) but pickles as its class called with a value.
    if isinstance(py, SCALAR_TYPES) and not isinstance(py, enum.Enum):
        if isinstance(py, complex) and not isinstance(py, np.generic) and is_node(j) and \
                j["type"] in ("call", "object"):
            compare_scalar(ctx, j, py, path)
        else:
            compare_scalar(ctx, j, py, path)
        return
    jt = "list" if isinstance(j, list) else (j["type"] if is_node(j) else type(j).__name__)
    try:
        if jt == "list":
            items = j if isinstance(j, list) else j["items"]
            if not isinstance(py, list):
                ctx.fail(path, f"document has a list, real value is {qualname(py)}")
                return
            walk_seq(ctx, items, py, path, depth)
        elif jt == "tuple":
            if not isinstance(py, tuple):
                ctx.fail(path, f"document has a tuple, real value is {qualname(py)}")
                return
            walk_seq(ctx, j["items"], py, path, depth)
        elif jt in ("set", "frozenset"):
            want = frozenset if jt == "frozenset" else set
            if type(py) is not want:
                ctx.fail(path, f"document has a {jt}, real value is {qualname(py)}")
                return
            try:
                got = {decode_key(x) for x in j["items"]}
            except ValueError:
                ctx.skip("set with undecodable items")
                return
            ctx.attrs += 1
            if got != set(py):
                ctx.fail(path, f"{jt} items {sorted(map(repr, got))[:10]} != {sorted(map(repr, py))[:10]}")
        elif jt == "dict":
            if not isinstance(py, Mapping):
                ctx.fail(path, f"document has a dict, real value is {qualname(py)}")
                return
            walk_dict(ctx, j, py, path, depth)
        elif jt == "object":
            walk_object(ctx, j, py, path, depth)
        elif jt == "call":
            walk_call(ctx, j, py, path, depth)
        elif jt == "ndarray":
            walk_ndarray(ctx, j, py, path, depth)
        elif jt == "masked_array":
            walk_masked(ctx, j, py, path, depth)
        elif jt == "dtype":
            ctx.attrs += 1
            if not isinstance(py, np.dtype):
                ctx.fail(path, f"dtype node, real value is {qualname(py)}")
            elif j.get("descr") != descr_of(py):
                ctx.fail(path, f"dtype descr {j.get('descr')!r} != {descr_of(py)!r}")
        elif jt == "global":
            ctx.attrs += 1
            try:
                target = resolve_global(j["module"], j["name"])
            except (LookupError, AttributeError):
                ctx.skip("global not resolvable without importing")
                return
            if target is not py:
                ctx.fail(path, f"global {j['module']}.{j['name']} is not the real value {py!r}"[:200])
        elif jt in ("tensor", "persistent", "external_buffer", "unknown"):
            ctx.skip(f"{jt} node")
            if jt == "unknown":
                ctx.fail(path, f"document says unknown ({j.get('why')}) for a real {qualname(py)}")
        elif jt == "scalar":
            ctx.fail(path, f"numpy scalar node, real value is {qualname(py)}")
        else:
            ctx.fail(path, f"document has {jt} ({json.dumps(j)[:80]}), real value is {qualname(py)}")
    except ResolveError as e:
        ctx.fail(path, f"checker could not follow the real object: {e}")
    except Exception as e:                              # noqa: BLE001 - report, keep going
        ctx.fail(path, f"checker error {type(e).__name__}: {e}")


def walk_seq(ctx, items, py, path, depth) -> None:
    if len(items) != len(py):
        ctx.fail(path, f"length {len(items)} != {len(py)}")
        return
    for i, (a, b) in enumerate(zip(items, py)):
        walk(ctx, a, b, path + [i], depth + 1)


def walk_dict(ctx, j, py, path, depth) -> None:
    if "items" in j:
        pairs = list(j["items"].items())
    else:
        pairs = []
        for k, v in j.get("pairs", []):
            try:
                pairs.append((decode_key(k), v))
            except ValueError:
                ctx.skip("dict key not decodable")
                return
    keys = [k for k, _ in pairs]
    ctx.keysets += 1
    if set(keys) != set(py.keys()) or len(keys) != len(py):
        missing = [k for k in py if k not in set(keys)]
        extra = [k for k in keys if k not in py]
        ctx.fail(path, f"dict keys differ: missing {missing[:10]!r}, extra {extra[:10]!r}")
    for k, v in pairs:
        if k in py:
            walk(ctx, v, py[k], path + [k], depth + 1)


def expected_state_keys(py) -> tuple[set | None, str]:
    sd = state_dict(py)
    if sd is not None:
        return set(sd), "pickled state"
    d = getattr(py, "__dict__", None)
    if isinstance(d, dict):
        return set(d), "vars"
    return None, ""


def walk_object(ctx, j, py, path, depth) -> None:
    cls = j.get("class")
    ctx.json_classes.add(str(cls))
    ctx.attrs += 1
    try:
        target = resolve_class(cls)
        if isinstance(target, type) and not isinstance(py, target):
            ctx.fail(path, f"object class {cls} but the real value is a {qualname(py)}")
            return
    except (LookupError, AttributeError, TypeError):
        ctx.skip("object class not resolvable")
    st = j.get("state")
    if "states" in j and st is None:
        st = j["states"][-1]
        ctx.skip("several BUILD states (last one compared)")
    if "dictitems" in j:                # SETITEM(S) on the object, e.g. collections.OrderedDict
        if isinstance(py, Mapping):
            walk(ctx, j["dictitems"], dict(py), path, depth + 1)
        else:
            ctx.fail(path, f"dictitems on an object whose real value is a {qualname(py)}")
    for key, want in (("listitems", list), ("setitems", set)):
        if key in j:
            if want is list and isinstance(py, collections.deque):       # APPENDS into a deque
                py = list(py)
            if isinstance(py, want):
                if want is list:
                    walk_seq(ctx, j[key], list(py), path + ["__items__"], depth + 1)
                else:
                    walk(ctx, {"type": "set", "items": j[key]}, set(py), path + ["__items__"], depth + 1)
            else:
                ctx.fail(path, f"{key} on an object whose real value is a {qualname(py)}")
    if st is not None:
        stn = ctx.deref(st)
        real_state = pickled_state(py)
        if is_node(stn) and stn["type"] == "dict" and "items" in stn:
            want, how = expected_state_keys(py)
            got = set(stn["items"])
            if want is not None:
                ctx.keysets += 1
                if got != want:
                    ctx.fail(path, f"state keys differ from the real object's {how}: "
                                   f"missing {sorted(want - got)}, extra {sorted(got - want)}")
                sd = state_dict(py)
                for k, v in stn["items"].items():
                    if k in want:
                        walk(ctx, v, state_value(py, k, sd), path + [k], depth + 1)
            else:
                ctx.skip("object without __dict__ or dict state")
        elif real_state is not None:
            walk(ctx, st, real_state, path + ["<state>"], depth + 1)
        else:
            ctx.fail(path, f"document has a state for {cls}, the real object pickles none")
    args = j.get("args")
    if args:
        try:
            real_args = reduce_args(py)
        except ResolveError:
            real_args = None
        if real_args is not None and len(real_args) == len(args):
            for i, (a, b) in enumerate(zip(args, real_args)):
                walk(ctx, a, b, path + ["<args>", i], depth + 1)
        else:
            ctx.skip("object args not comparable")


def walk_call(ctx, j, py, path, depth) -> None:
    rv = reduce_of(py)
    f = rv[0]
    func = ctx.deref(j.get("func"))
    if is_node(func) and func.get("type") == "global":
        name = getattr(f, "__qualname__", getattr(f, "__name__", None))
        mod = getattr(f, "__module__", None)
        ctx.attrs += 1
        if (mod, name) != (func["module"], func["name"]):
            try:
                same = resolve_global(func["module"], func["name"]) is f
            except (LookupError, AttributeError):
                same = False
            if not same:
                ctx.skip("call whose function differs from the real __reduce__")
                return
    args = j.get("args", [])
    if len(args) != len(rv[1]):
        ctx.fail(path, f"call has {len(args)} args, the real __reduce__ gives {len(rv[1])}")
        return
    for i, (a, b) in enumerate(zip(args, rv[1])):
        walk(ctx, a, b, path + [i], depth + 1)
    if "state" in j:                    # a BUILD applied to the call's result
        real_state = rv[2] if len(rv) > 2 else None
        if real_state is None:
            ctx.fail(path, "document has a state for the call's result, the real object pickles none")
        else:
            walk(ctx, j["state"], real_state, path + ["<state>"], depth + 1)


def walk_ndarray(ctx, j, py, path, depth) -> None:
    if not isinstance(py, np.ndarray):
        ctx.fail(path, f"ndarray node, real value is {qualname(py)}")
        return
    ctx.attrs += 1
    cls = j.get("class")
    try:                                   # the name the file gives the class (numpy.matrix) may be an alias
        same = resolve_class(cls) is type(py)
    except (LookupError, AttributeError, TypeError):
        same = False
    if cls != qualname(py) and not same and not (ctx.loader == "joblib" and type(py) is np.ndarray):
        ctx.fail(path, f"ndarray class {cls} != {qualname(py)}")
    want = descr_of(py.dtype)
    if j.get("dtype") != want and not (ctx.loader == "joblib" and _byteswapped(j.get("dtype"), py.dtype)):
        ctx.fail(path, f"ndarray dtype {j.get('dtype')!r} != {want!r}")
    if j.get("shape") != list(py.shape):
        ctx.fail(path, f"ndarray shape {j.get('shape')} != {list(py.shape)}")
    if "items" in j:
        if py.dtype != object:
            ctx.fail(path, f"ndarray with items but real dtype is {py.dtype}")
            return
        walk_object_items(ctx, j["items"], py, path, depth)
    elif "file" not in j:
        ctx.fail(path, "ndarray node with neither file nor items")
    elif py.dtype.hasobject:
        ctx.fail(path, "object array written to a file")


def walk_masked(ctx, j, py, path, depth) -> None:
    """A masked array: class, dtype and shape, then its data and full mask (numpy.ma.getdata,
    numpy.ma.getmaskarray) as arrays, and the fill value when the pickle stored one (None
    stands for numpy's default, which loading fills in)."""
    if not isinstance(py, np.ma.MaskedArray):
        ctx.fail(path, f"masked_array node, real value is {qualname(py)}")
        return
    ctx.attrs += 1
    ctx.masked += 1
    try:
        target = resolve_class(j.get("class"))
        if not (isinstance(target, type) and isinstance(py, target)):
            ctx.fail(path, f"masked_array class {j.get('class')} but the real value is a {qualname(py)}")
    except (LookupError, AttributeError, TypeError):
        ctx.fail(path, f"masked_array class {j.get('class')} not resolvable")
    if j.get("dtype") != descr_of(py.dtype):
        ctx.fail(path, f"masked_array dtype {j.get('dtype')!r} != {descr_of(py.dtype)!r}")
    if j.get("shape") != list(py.shape):
        ctx.fail(path, f"masked_array shape {j.get('shape')} != {list(py.shape)}")
    for part in ("data", "mask"):
        if part not in j:
            ctx.fail(path, f"masked_array without {part}")
            continue
        walk(ctx, j[part], MASKED_PARTS[part](py), path + [part], depth + 1)
    mask = ctx.deref(j.get("mask"))
    if not (is_node(mask) and "file" in mask):
        ctx.fail(path, "masked_array mask is not written as an array")
    if j.get("fill_value") is not None:
        walk(ctx, j["fill_value"], py._fill_value, path + ["fill_value"], depth + 1)


def walk_object_items(ctx, items, arr, path, depth) -> None:
    if arr.ndim == 0:
        walk(ctx, items, arr[()], path, depth + 1)
        return
    if not isinstance(items, list) or len(items) != arr.shape[0]:
        ctx.fail(path, f"object items do not have length {arr.shape[0]}")
        return
    for i, it in enumerate(items):
        if arr.ndim == 1:
            walk(ctx, it, arr[i], path + [i], depth + 1)
        else:
            walk_object_items(ctx, it, arr[i], path + [i], depth + 1)


def _byteswapped(descr, real: np.dtype) -> bool:
    try:
        d = to_dtype(descr)
    except Exception:                                  # noqa: BLE001
        return False
    return dtype_equal(d.newbyteorder(), real) or dtype_equal(d.newbyteorder("="), real)


# ---------------------------------------------------------------------------
# (a) arrays
# ---------------------------------------------------------------------------
def load_npy(ctx: Ctx, entry) -> np.ndarray | None:
    f = entry.get("file")
    if not isinstance(f, str):
        ctx.fail(entry.get("path", "?"), f"arrays entry without a file: {entry}")
        return None
    p = (ctx.outdir / f).resolve()
    if ctx.outdir.resolve() not in p.parents:
        ctx.fail(entry.get("path", "?"), f"array file {f!r} is outside the output folder")
        return None
    try:
        a = np.load(p, allow_pickle=False)
    except Exception as e:                             # noqa: BLE001
        ctx.fail(entry.get("path", "?"), f"numpy.load({f}) failed: {type(e).__name__}: {e}")
        return None
    path = entry.get("path", "?")
    if entry.get("dtype") != descr_of(a.dtype):
        ctx.fail(path, f"arrays entry dtype {entry.get('dtype')!r} != file's {descr_of(a.dtype)!r}")
    if entry.get("shape") != list(a.shape):
        ctx.fail(path, f"arrays entry shape {entry.get('shape')} != file's {list(a.shape)}")
    if "nbytes" in entry and entry["nbytes"] != a.nbytes:
        ctx.fail(path, f"arrays entry nbytes {entry['nbytes']} != {a.nbytes}")
    order = "F" if (a.ndim > 1 and a.flags.f_contiguous and not a.flags.c_contiguous) else "C"
    if entry.get("order", order) != order and a.ndim > 1:       # 0-d/1-d: C and F are the same
        ctx.fail(path, f"arrays entry order {entry.get('order')!r} but the file is {order}-ordered")
    return a


def compare_arrays(ctx: Ctx, path, got: np.ndarray, real) -> None:
    ctx.arrays += 1
    if not isinstance(real, np.ndarray):
        ctx.fail(path, f"the real value is a {qualname(real)}, not an ndarray")
        return
    if real.dtype.hasobject:
        ctx.fail(path, "an object array was written as a numeric .npy")
        return
    gd, rd = got.dtype, real.dtype
    if not dtype_equal(gd, rd):
        if ctx.loader == "joblib" and (dtype_equal(gd.newbyteorder(), rd) or dtype_equal(gd.newbyteorder("="), rd)):
            got = got.astype(rd)            # joblib.load made it native; compare values
        else:
            ctx.fail(path, f"dtype {descr_of(gd)!r} != real {descr_of(rd)!r}")
            return
    if got.shape != real.shape:
        ctx.fail(path, f"shape {got.shape} != real {real.shape}")
        return
    if real.ndim > 1 and real.flags.f_contiguous and not real.flags.c_contiguous and not (
            got.flags.f_contiguous and not got.flags.c_contiguous):
        ctx.fail(path, "the pickle stored Fortran-ordered data but the .npy is not fortran_order")
    gb = np.frombuffer(np.ascontiguousarray(got).tobytes(), dtype=np.uint8)
    rb = np.frombuffer(np.ascontiguousarray(real).tobytes(), dtype=np.uint8)
    if gb.shape != rb.shape:
        ctx.fail(path, f"data sizes differ ({gb.size} != {rb.size} bytes)")
        return
    diff = gb != rb
    if rd.fields is not None and diff.any() and real.size:
        # padding bytes of structured dtypes are not data: the real object's copy (e.g. sklearn
        # Tree.__getstate__ builds a new nodes array) has arbitrary bytes there
        diff &= np.tile(field_mask(rd), real.size)
    if diff.any():
        first = int(np.argmax(diff))
        ctx.fail(path, f"data bytes differ (first difference at byte {first} of {rb.size}, "
                       f"{int(diff.sum())} bytes differ)")


def field_mask(dt: np.dtype) -> np.ndarray:
    """True for the bytes of one item of dt that belong to a field (not padding)."""
    mask = np.zeros(dt.itemsize, dtype=bool)
    if dt.fields is None:
        if dt.subdtype is not None:
            base, shape = dt.subdtype
            n = int(np.prod(shape))
            return np.tile(field_mask(base), n) if base.fields is not None else np.ones(dt.itemsize, bool)
        mask[:] = True
        return mask
    for name in dt.names:
        fdt, off = dt.fields[name][:2]
        mask[off:off + fdt.itemsize] |= field_mask(fdt)
    return mask


def file_owner(doc) -> dict:
    """arrays file -> index of the pickle whose value tree names it."""
    owner = {}
    for i, p in enumerate(doc.get("pickles") or []):
        stack = [p.get("root")]
        while stack:
            x = stack.pop()
            if isinstance(x, dict):
                if x.get("type") in ("ndarray", "tensor") and isinstance(x.get("file"), str):
                    owner.setdefault(x["file"], i)
                stack.extend(x.values())
            elif isinstance(x, list):
                stack.extend(x)
    return owner


def root_for(ctx: Ctx, doc, entry, roots_py):
    """(document root, real root) for an arrays entry.  An entry does not say which pickle its
    path starts from (docs/extract.md); it is the pickle whose tree names its file, else (a plain
    .npz member, or an array outside any pickle) the file's members."""
    pickles = doc.get("pickles") or []
    if ctx.owner is None:
        ctx.owner = file_owner(doc)
    if entry.get("file") in ctx.owner and "pickle" not in entry and "member" not in entry:
        i = ctx.owner[entry["file"]]
        return pickles[i].get("root"), roots_py(pickles[i])
    idx = entry.get("pickle")
    if isinstance(idx, int) and 0 <= idx < len(pickles):
        return pickles[idx].get("root"), roots_py(pickles[idx])
    member = entry.get("member")
    if member is not None:
        for p in pickles:
            if p.get("member") == member:
                return p.get("root"), roots_py(p)
    if ctx.loader == "npz":
        return None, roots_py(None)
    if not pickles:
        return None, roots_py(None)
    return pickles[0].get("root"), roots_py(pickles[0])


def check_arrays(ctx: Ctx, doc, roots_py) -> None:
    for entry in doc.get("arrays", []):
        path = entry.get("path")
        if not isinstance(path, list):
            ctx.fail("?", f"arrays entry without a path list: {entry}")
            continue
        got = load_npy(ctx, entry)
        if got is None:
            continue
        jroot, proot = root_for(ctx, doc, entry, roots_py)
        try:
            if jroot is None:
                node, real, doc_err = None, proot, None
                for step in path:
                    real = py_step(real, step)
            else:
                node, real, doc_err = resolve(ctx, jroot, proot, path)
        except (ResolveError, KeyError, IndexError, AttributeError, TypeError) as e:
            ctx.fail(path, f"cannot resolve on the real object: {e}")
            continue
        if doc_err:
            ctx.fail(path, doc_err)
        elif node is not None:
            if not (is_node(node) and node.get("type") in ("ndarray", "tensor")):
                ctx.fail(path, f"path leads to a {json.dumps(node)[:60]} node, not an ndarray")
            elif node.get("file") != entry.get("file"):
                ctx.fail(path, f"ndarray node names file {node.get('file')!r}, arrays entry {entry.get('file')!r}")
        compare_arrays(ctx, path, got, real)


def check_files_listed(ctx: Ctx, doc) -> None:
    """Every ndarray/tensor node with a file has an arrays entry, and the files exist."""
    listed = {e.get("file") for e in doc.get("arrays", [])}
    stack = [p.get("root") for p in doc.get("pickles", [])]
    seen = 0
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            if x.get("type") in ("ndarray", "tensor") and "file" in x:
                seen += 1
                if x["file"] not in listed:
                    ctx.fail("?", f"{x['type']} node file {x['file']!r} has no arrays entry")
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    names = [e.get("file", "") for e in doc.get("arrays", [])]
    lower = [n.lower() for n in names]
    if len(set(lower)) != len(lower):
        ctx.fail("?", "two arrays entries share a file name (case-insensitively)")
    for n in names:
        if not n.startswith("arrays/") or "/" in n[len("arrays/"):] or not n.endswith(".npy"):
            ctx.fail("?", f"array file name {n!r} is not arrays/<name>.npy")


# ---------------------------------------------------------------------------
# (c) torch
# ---------------------------------------------------------------------------
def check_torch(ctx: Ctx, doc, manifest_entry) -> None:
    by_path = {tuple(e.get("path", [])): e for e in doc.get("arrays", [])}
    root = (doc.get("pickles") or [{}])[0].get("root")
    for t in manifest_entry.get("tensors", []):
        path = t["path"]
        e = by_path.get(tuple(path))
        if e is None:
            ctx.fail(path, "tensor has no arrays entry with this path")
            continue
        a = load_npy(ctx, e)
        if a is None:
            continue
        ctx.arrays += 1
        if descr_of(a.dtype) != t["dtype"]:
            ctx.fail(path, f"tensor .npy dtype {descr_of(a.dtype)!r} != expected {t['dtype']!r}")
        if list(a.shape) != t["shape"]:
            ctx.fail(path, f"tensor .npy shape {list(a.shape)} != expected {t['shape']}")
        sha = hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
        if sha != t["sha256"]:
            ctx.fail(path, f"tensor data sha256 {sha[:16]}... != expected {t['sha256'][:16]}... "
                           f"(storage {t['storage']}, offset {t['storage_offset']}, stride {t['stride']})")
        try:
            node = root
            for step in path:
                node, _ = json_child(ctx, node, step)
            node = ctx.deref(node)
        except ResolveError as err:
            ctx.fail(path, f"tensor path not navigable in the document: {err}")
            continue
        if not (is_node(node) and node.get("type") == "tensor"):
            ctx.fail(path, f"document node at the tensor path is {json.dumps(node)[:80]}")
            continue
        ctx.attrs += 1
        for k in ("torch_dtype", "dtype", "shape", "requires_grad"):
            if node.get(k) != t[k]:
                ctx.fail(path, f"tensor node {k} {node.get(k)!r} != expected {t[k]!r}")
        if node.get("file") != e.get("file"):
            ctx.fail(path, f"tensor node file {node.get('file')!r} != arrays entry {e.get('file')!r}")
    for v in manifest_entry.get("values", []):
        try:
            node = root
            for step in v["path"]:
                node, _ = json_child(ctx, node, step)
        except ResolveError as err:
            ctx.fail(v["path"], f"value path not navigable in the document: {err}")
            continue
        walk(ctx, node, v["value"], v["path"])


# ---------------------------------------------------------------------------
# Real objects
# ---------------------------------------------------------------------------
def iter_objects(root, limit: int = 200_000):
    """Every object reachable from root through containers, object arrays and pickled state."""
    seen: set[int] = set()
    stack = [root]
    while stack and len(seen) < limit:
        x = stack.pop()
        if id(x) in seen or isinstance(x, SCALAR_TYPES) or isinstance(x, type):
            continue
        seen.add(id(x))
        yield x
        if isinstance(x, Mapping):
            stack.extend(x.values())
        elif isinstance(x, (list, tuple, set, frozenset)):
            stack.extend(x)
        elif isinstance(x, np.ndarray):
            if x.dtype.hasobject:
                stack.extend(x.ravel(order="K").tolist())
        else:
            d = getattr(x, "__dict__", None)
            if isinstance(d, dict):
                stack.extend(d.values())
            try:
                st = pickled_state(x)
            except Exception:                          # noqa: BLE001
                st = None
            if st is not None:
                stack.append(st)


def estimator_classes(root) -> set[str]:
    if BaseEstimator is None:
        return set()
    return {qualname(o) for o in iter_objects(root) if isinstance(o, BaseEstimator)}


def companion_nodes(j, path, out, depth=0):
    """(path, node) of every array node written from a joblib < 0.10 companion file."""
    if depth > MAX_DEPTH:
        return out
    if isinstance(j, list):
        for i, x in enumerate(j):
            companion_nodes(x, path + [i], out, depth + 1)
    elif is_node(j):
        if "companion" in j:
            out.append((path, j))
        for k, v in j.items():
            if isinstance(v, (list, dict)):
                companion_nodes(v, path + [k], out, depth + 1)
    return out


def check_companions(ctx: Ctx, doc) -> None:
    """Each array written from a companion file against that file read on its own: numpy.load
    (encoding latin1 for Python 2 object arrays) for NDArrayWrapper's .npy, joblib's
    read_zfile for ZNDArrayWrapper's .npy.z (raw bytes in the node's dtype and shape)."""
    from joblib.numpy_pickle_compat import read_zfile
    for p in doc.get("pickles", []):
        for path, node in companion_nodes(p.get("root"), [], []):
            comp = ctx.file.parent / node["companion"]
            if comp.name.endswith(".z"):
                with open(comp, "rb") as f:
                    real = np.frombuffer(read_zfile(f), dtype=to_dtype(node["dtype"])).reshape(node["shape"])
            else:
                real = np.load(comp, allow_pickle=True, encoding="latin1")
            ctx.companions += 1
            if "file" in node:
                got = load_npy(ctx, {"file": node["file"], "path": path, "dtype": node["dtype"],
                                     "shape": node["shape"]})
                if got is not None:
                    compare_arrays(ctx, path + ["<companion>"], got, real)
            else:
                walk_ndarray(ctx, node, real, path + ["<companion>"], 0)


def joblib_test_list():
    """What every file of joblib's shipped test data holds (fixtures/joblib-legacy): the list
    joblib/test/data/create_numpy_pickle.py dumps, as joblib's own test states it
    (test_numpy_pickle.py, test_joblib_pickle_across_python_versions). The arrays are what
    loading gives: numpy.matrix stays a matrix when built here."""
    return [np.arange(5, dtype=np.dtype("<i8")), np.arange(5, dtype=np.dtype("<f8")),
            np.array([1, "abc", {"a": 1, "b": 2}], dtype="O"), np.arange(256, dtype=np.uint8).tobytes(),
            np.matrix([0, 1, 2], dtype=np.dtype("<i8")), "C'est l'\xe9t\xe9 !"]


def load_real(path: Path, loader: str):
    if loader == "joblib_py2":
        # joblib.load refuses files written under Python 2 ("You may be trying to read with
        # python 3 a joblib pickle generated with python 2"): compared with what joblib's test
        # says they hold, and their companion .npy files with numpy.load (check_companions).
        return joblib_test_list(), True
    # Files written under Python 2 (numpy's and joblib's shipped test data) hold str as
    # bytes: their own tests load them with encoding="latin1", as done here when ASCII fails.
    try:
        return _load_real(path, loader, "ASCII"), False
    except UnicodeError:
        return _load_real(path, loader, "latin1"), True


def _load_real(path: Path, loader: str, encoding: str):
    if loader == "pickle":
        with open(path, "rb") as f:
            return pickle.load(f, encoding=encoding)
    if loader == "joblib":
        return joblib.load(path)
    if loader == "npz":
        with np.load(path, allow_pickle=True, encoding=encoding) as z:
            return {k: z[k] for k in z.files}
    if loader == "npy":
        return np.load(path, allow_pickle=True, encoding=encoding)
    raise ValueError(loader)


# ---------------------------------------------------------------------------
# Fixture selection
# ---------------------------------------------------------------------------
def infer_loader(name: str) -> str | None:
    if name.endswith(".pkl") or name.endswith(".pickle"):
        return "pickle"
    if name.endswith(JOBLIB_SUFFIXES):
        return "joblib"
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(".npy"):
        return "npy"
    return None


def select(folder: Path) -> tuple[list[tuple[Path, str, dict]], list[str]]:
    if REFUSED_DIRS & set(folder.resolve().parts):
        raise SystemExit(f"refusing {folder}: hostile fixtures must never be loaded by Python")
    mf = folder / "manifest.json"
    if not mf.is_file():
        raise SystemExit(f"{folder} has no manifest.json: cannot tell which files are trusted")
    chosen, skipped = [], []
    for m in json.loads(mf.read_text(encoding="utf-8")):
        name = m["file"]
        p = folder / name
        if REFUSED_DIRS & set(Path(name).parts):
            skipped.append(f"{folder.name}/{name}: hostile folder")
            continue
        if m.get("companion_of"):
            skipped.append(f"{folder.name}/{name}: companion of {m['companion_of']} (read through it)")
            continue
        loader = m.get("loader")
        if loader is None:
            if m.get("kind") == "hostile" or m.get("expect_rules"):
                skipped.append(f"{folder.name}/{name}: not benign")
                continue
            if any(str(g).split(".")[0] == "torch" for g in m.get("globals", [])):
                skipped.append(f"{folder.name}/{name}: torch globals (torch not installed)")
                continue
            loader = infer_loader(name)
            if loader is None:
                skipped.append(f"{folder.name}/{name}: no loader for this kind of file")
                continue
        if not p.is_file():
            skipped.append(f"{folder.name}/{name}: missing")
            continue
        chosen.append((p, loader, m))
    return chosen, skipped


# ---------------------------------------------------------------------------
# One file
# ---------------------------------------------------------------------------
def check_schema(ctx: Ctx, doc) -> bool:
    ok = True
    if doc.get("schema_version") != 1:
        ctx.fail("<document>", f"schema_version {doc.get('schema_version')!r} != 1")
        ok = False
    for key in ("pickles", "arrays", "findings", "errors"):
        if not isinstance(doc.get(key), list):
            ctx.fail("<document>", f"{key!r} is missing or not a list")
            ok = False
    if not isinstance(doc.get("source"), dict):
        ctx.fail("<document>", "'source' is missing")
    for e in doc.get("errors") or []:
        ctx.fail("<document>", f"extract error at offset {e.get('offset')} member {e.get('member')}: "
                               f"{e.get('message')}")
    return ok


def run_extract(pk: str, file: Path, outdir: Path, timeout: int):
    return subprocess.run([pk, "extract", str(file), "-o", str(outdir)], capture_output=True,
                          timeout=timeout)


def check_file(pk: str, file: Path, loader: str, manifest_entry: dict, work: Path, args) -> tuple[Ctx, set]:
    outdir = work / file.name.replace(".", "_")
    if outdir.exists():
        shutil.rmtree(outdir)
    outdir.mkdir(parents=True)
    ctx = Ctx(file, loader, outdir, {}, args.verbose)
    PROTOCOL[0] = manifest_entry.get("protocol") if isinstance(manifest_entry.get("protocol"), int) else 4
    # the real object first: the estimator coverage does not depend on pkinspect's result
    real, ctx.py2 = (None, False) if loader == "torch_zip" else load_real(file, loader)
    if loader == "joblib_py2":
        ctx.loader = loader = "joblib"
    estimators = set() if real is None else estimator_classes(real)
    try:
        proc = run_extract(pk, file, outdir, args.timeout)
    except subprocess.TimeoutExpired:
        ctx.fail("<run>", f"pkinspect extract timed out after {args.timeout}s")
        return ctx, estimators
    if proc.returncode not in (0, 1):
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        ctx.fail("<run>", f"pkinspect extract exited {proc.returncode}: {err[-1] if err else ''}")
        return ctx, estimators
    docs = sorted(outdir.glob("*.json"))
    if not docs:
        ctx.fail("<run>", "no document (*.json) written")
        return ctx, estimators
    stem_doc = [d for d in docs if d.stem in (file.stem, file.name.split(".")[0], file.name)]
    docpath = (stem_doc or docs)[0]
    try:
        doc = load_document(docpath)
    except ValueError as e:
        ctx.fail("<document>", f"invalid JSON: {e}")
        return ctx, estimators
    ctx.ids = collect_ids(doc)
    if not check_schema(ctx, doc):
        return ctx, estimators
    check_files_listed(ctx, doc)

    if loader == "torch_zip":
        check_torch(ctx, doc, manifest_entry)
        return ctx, set()

    if loader == "npz":
        def roots_py(p):
            if p is None:
                return real
            m = p.get("member") or ""
            key = m[:-4] if m.endswith(".npy") else m
            return real.get(key, real)
    else:
        def roots_py(p):
            return real

    # (b) the walker, root by root
    pickles = doc.get("pickles", [])
    if loader == "npz":
        for p in pickles:
            walk(ctx, p.get("root"), roots_py(p), [], 0)
    elif len(pickles) != 1:
        ctx.fail("<document>", f"{len(pickles)} pickles, expected 1 for a single {loader} file")
    else:
        walk(ctx, pickles[0].get("root"), real, [], 0)
    # (a) the arrays
    check_arrays(ctx, doc, roots_py)
    check_companions(ctx, doc)
    return ctx, estimators


# (file name, formatted path) of values pkinspect cannot write losslessly.
KNOWN_LOSSY = {
    ("py_str_lone_surrogate_p0.pkl", "[1]"),
    ("py_str_lone_surrogate_p4.pkl", "[1]"),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pkinspect", required=True, help="path of the pkinspect binary")
    ap.add_argument("--fixtures", nargs="+", default=DEFAULT_FIXTURES,
                    help=f"fixture folders with a manifest.json (default: {' '.join(DEFAULT_FIXTURES)})")
    ap.add_argument("--only", nargs="*", default=None, help="only files whose name contains one of these")
    ap.add_argument("--keep", default=None, help="write the extract output here and keep it")
    ap.add_argument("--min-estimators", type=int, default=25,
                    help="fail unless at least this many distinct sklearn estimator classes were checked")
    ap.add_argument("--timeout", type=int, default=120)
    ap.add_argument("-v", "--verbose", action="store_true", help="print each file's counts")
    args = ap.parse_args()

    pk = shutil.which(args.pkinspect) or args.pkinspect
    if not os.path.isfile(pk):
        print(f"pkinspect binary not found: {args.pkinspect}", file=sys.stderr)
        return 2

    files, skipped = [], []
    for f in args.fixtures:
        folder = Path(f) if Path(f).is_absolute() else (Path.cwd() / f if (Path.cwd() / f).exists() else ROOT / f)
        c, s = select(folder)
        files += c
        skipped += s
    if args.only:
        files = [x for x in files if any(o in x[0].name for o in args.only)]

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="pkinspect-interop-"))
    work.mkdir(parents=True, exist_ok=True)
    failures, n_arrays, n_attrs, n_keysets, n_masked, n_comp, skipped_nodes = [], 0, 0, 0, 0, 0, {}
    estimators: set[str] = set()
    json_classes: set[str] = set()
    try:
        for path, loader, m in files:
            ctx, est = check_file(pk, path, loader, m, work, args)
            failures += ctx.failures
            n_arrays += ctx.arrays
            n_attrs += ctx.attrs
            n_keysets += ctx.keysets
            n_masked += ctx.masked
            n_comp += ctx.companions
            estimators |= est
            json_classes |= ctx.json_classes
            for k, v in ctx.skipped.items():
                skipped_nodes[k] = skipped_nodes.get(k, 0) + v
            if args.verbose:
                print(f"{'FAIL' if ctx.failures else 'ok  '} {path.relative_to(ROOT) if ROOT in path.parents else path}"
                      f"  arrays={ctx.arrays} attrs={ctx.attrs} keysets={ctx.keysets} "
                      f"failures={len(ctx.failures)}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    matched = sorted(e for e in estimators if e in json_classes)
    print()
    print(f"files checked:        {len(files)} (skipped: {len(skipped)})")
    print(f"arrays compared:      {n_arrays}")
    print(f"attributes compared:  {n_attrs} scalars/nodes, {n_keysets} key sets")
    print(f"masked arrays:        {n_masked} (data and mask compared with numpy.ma)")
    print(f"joblib < 0.10 companions: {n_comp} (also compared with the companion file read alone)")
    print(f"sklearn estimator classes covered: {len(estimators)} "
          f"({len(matched)} of them seen as object nodes in the documents)")
    for e in sorted(estimators):
        print(f"    {e}{'' if e in json_classes else '   (no object node in any document)'}")
    if skipped_nodes:
        print("not compared: " + ", ".join(f"{k} x{v}" for k, v in sorted(skipped_nodes.items())))
    if args.verbose:
        for s in skipped:
            print(f"skipped file: {s}")
    # Known, documented limitation (docs/extract.md):
    # pkinspect keeps strings as Rust strings, so a lone surrogate is written
    # as U+FFFD. Listed exactly (file, path) so any other mismatch still fails.
    known = [f for f in failures if (f[0], f[1]) in KNOWN_LOSSY and "\\ufffd" in f[2]]
    failures = [f for f in failures if f not in known]
    for file, p, reason in known:
        print(f"  KNOWN {file}: {p}: {reason}")
    print(f"failures:             {len(failures)}")
    for file, p, reason in failures:
        print(f"  FAIL {file}: {p}: {reason}")
    rc = 0
    if failures:
        rc = 1
    if len(estimators) < args.min_estimators:
        print(f"FAIL: only {len(estimators)} sklearn estimator classes covered (< {args.min_estimators})")
        rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())

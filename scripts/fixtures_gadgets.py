#!/usr/bin/env python3
"""Gadget fixtures: hostile pickles built ONLY from names on pkinspect's allowlist.

    python3 scripts/fixtures_gadgets.py      # rewrites fixtures/gadgets/ (stdlib only)

Every global these files import is on src/policy/allowlist.txt (or, for the
partial launderer, src/policy/conditional.txt), except the `os.system` /
`posix.system` / `subprocess.Popen` of the "denylisted-via-launderer" family,
which checks that a call laundered through an allowlisted helper is still
reported as a dangerous call.  Each file does harm when loaded through a
*use* of an allowlisted global that real files never make (docs/uses.md):
numpy.memmap called with a path and mode 'w+' (truncates a file) or 'r+'
(opens one for writing), pandas' Expr parsing source text, DictWrapper's
BUILD reaching pandas.set_option (imports a module named by the file),
pandas readers fetching a URL or creating files, sklearn's Parallel running
the tasks it is called with, and the launderers that call one of their own
arguments (numpy.random._pickle.__*_ctor, copyreg.__newobj__/__newobj_ex__/
_reconstructor, sklearn newObj, pandas _new_Index, functools.partial,
Cython __pyx_unpickle_*).

SAFETY: built opcode by opcode with pickle_emit.Emitter; no malicious object
is ever pickled and nothing here is ever unpickled.  The payloads are
harmless: paths are /tmp/pkinspect-fixture-*, code is a print, the module
name is pkinspect_fixture_mod, the URL is http://127.0.0.1:9/pkinspect-fixture
(the discard port on the loopback), shell commands are `echo
pkinspect-fixture`.  The self-check reads every file with zlib/gzip/zipfile
and pickletools.genops only (static: nothing is imported or called) and
asserts that every path/URL argument is one of those.  Never load these files
with pickle, joblib, torch or numpy.

Deterministic: no clocks (zip times 0, gzip mtime 0), no hash-order
dependence; two runs give byte-identical files.

manifest.json: a list of {file, family, route, encoding, protocol,
expect_rules, description}.  expect_rules holds the rule codes a scanner
MUST report (it may report more): PK112 gadget-use for a use of an
allowlisted global that is a known gadget, PK113 unlisted-use for an
allowlisted global used in a way real files don't that is not a known
gadget, PK101/PK102 where a denylisted global is imported/called (also when
the call is laundered).
"""

from __future__ import annotations

import hashlib
import io
import json
import pickletools
import struct
import sys
import zipfile
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pickle_emit import Emitter  # noqa: E402
from fixtures_torch import STATE_DATA, STATE_TENSORS, checkpoint, state_dict_pickle  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "gadgets"

# -- harmless payloads ---------------------------------------------------------
MM_PATH = "/tmp/pkinspect-fixture-memmap"
MM_ARGS = (MM_PATH, "uint8", "w+", 0, (16,))           # memmap(filename, dtype, mode, offset, shape)
MM_KW = {"dtype": "uint8", "mode": "w+", "shape": (16,)}
CODE = "print('pkinspect-fixture')"
MOD = "pkinspect_fixture_mod"
URL = "http://127.0.0.1:9/pkinspect-fixture"
XLSX = "/tmp/pkinspect-fixture.xlsx"
H5 = "/tmp/pkinspect-fixture.h5"
ECHO = "echo pkinspect-fixture"
SAFE_PREFIXES = ("/tmp/pkinspect-fixture", URL)

GADGET = ["PK112"]
UNLISTED = ["PK113"]
DANGER = ["PK101", "PK102"]

SEEDSEQ_CHECKSUM = 65708578   # __pyx_unpickle_SeedSequence's checksum (fixtures/benign numpy_default_rng_p4)


# -----------------------------------------------------------------------------
# A tiny tree of pickle operations, emitted at protocol 0, 1, 2 or 4
# -----------------------------------------------------------------------------
class Node:
    memo = True                   # memoize the result (as a pickler would)

    def emit(self, c: "Ctx") -> None:
        raise NotImplementedError


class G(Node):
    """A global: GLOBAL (protocol < 4) or STACK_GLOBAL (protocol 4)."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def emit(self, c):
        if c.proto >= 4:
            c.value(self.module)
            c.value(self.name)
            c.e.stack_global()
        else:
            c.e.global_(self.module, self.name)


class Call(Node):
    """f(*args) by REDUCE."""

    def __init__(self, f, *args) -> None:
        self.f, self.args = f, tuple(args)

    def emit(self, c):
        c.value(self.f)
        c.value(self.args)
        c.e.reduce()


class Inst(Node):
    """MARK args INST module name (protocol 0/1: import and call in one opcode)."""

    def __init__(self, module, name, *args) -> None:
        self.module, self.name, self.args = module, name, args

    def emit(self, c):
        c.e.mark()
        for a in self.args:
            c.value(a)
        c.e.inst(self.module, self.name)


class Obj(Node):
    """MARK cls args OBJ."""

    def __init__(self, cls, *args) -> None:
        self.cls, self.args = cls, args

    def emit(self, c):
        c.e.mark()
        c.value(self.cls)
        for a in self.args:
            c.value(a)
        c.e.obj()


class NewObj(Node):
    def __init__(self, cls, *args) -> None:
        self.cls, self.args = cls, tuple(args)

    def emit(self, c):
        c.value(self.cls)
        c.value(self.args)
        c.e.newobj()


class NewObjEx(Node):
    def __init__(self, cls, args, kwargs) -> None:
        self.cls, self.args, self.kwargs = cls, tuple(args), dict(kwargs)

    def emit(self, c):
        c.value(self.cls)
        c.value(self.args)
        c.value(self.kwargs)
        c.e.newobj_ex()


class Build(Node):
    memo = False

    def __init__(self, obj, state) -> None:
        self.obj, self.state = obj, state

    def emit(self, c):
        c.value(self.obj)
        c.value(self.state)
        c.e.build()


class SetItems(Node):
    """SETITEM(S) on an arbitrary object: its __setitem__ runs."""
    memo = False

    def __init__(self, obj, pairs) -> None:
        self.obj, self.pairs = obj, list(pairs)

    def emit(self, c):
        c.value(self.obj)
        if c.proto == 0 or len(self.pairs) == 1:
            for k, v in self.pairs:
                c.value(k)
                c.value(v)
                c.e.setitem()
        else:
            c.e.mark()
            for k, v in self.pairs:
                c.value(k)
                c.value(v)
            c.e.setitems()


class JoblibArray(Node):
    """joblib.numpy_pickle.NumpyArrayWrapper of an int64 vector, then its raw
    payload right after the BUILD (FORMATS.md §1.1: padding-length byte P,
    P x 0xFF, data 16-aligned in the uncompressed stream).  Protocol 2 only
    (no frames to close before the payload)."""
    memo = False

    def __init__(self, values) -> None:
        self.values = list(values)

    def emit(self, c):
        assert c.proto == 2
        dtype = Build(Call(G("numpy", "dtype"), "i8", False, True), (3, "<", None, None, None, -1, -1, 0))
        state = {"subclass": G("numpy", "ndarray"), "shape": (len(self.values),), "order": "C",
                 "dtype": dtype, "allow_mmap": True, "numpy_array_alignment_bytes": 16}
        c.value(Build(NewObj(G("joblib.numpy_pickle", "NumpyArrayWrapper")), state))
        pos = len(c.e)
        pad = 16 - (pos + 1) % 16
        c.e.raw(bytes([pad]) + b"\xff" * pad)
        assert len(c.e) % 16 == 0
        start = len(c.e)
        c.e.raw(struct.pack(f"<{len(self.values)}q", *self.values))
        c.payloads.append((start - 1 - pad, len(c.e)))


class Ctx:
    """Emits literal values and nodes; memoizes like a pickler (PUT/BINPUT/MEMOIZE, reuse by GET)."""

    def __init__(self, proto: int, e: Emitter | None = None, p0_string: bool = False) -> None:
        self.proto = proto
        self.e = e if e is not None else Emitter()
        self.n = 0
        self.memo: dict = {}
        self.p0_string = p0_string    # protocol 0 str as STRING (py2 style) instead of UNICODE
        self.payloads: list[tuple[int, int]] = []

    def _put(self, key) -> None:
        i = self.n
        self.n += 1
        if key is not None:
            self.memo[key] = i
        if self.proto == 0:
            self.e.put(i)
        elif self.proto >= 4:
            self.e.memoize()
        elif i < 256:
            self.e.binput(i)
        else:
            self.e.long_binput(i)

    def _get(self, i: int) -> None:
        if self.proto == 0:
            self.e.get(i)
        elif i < 256:
            self.e.binget(i)
        else:
            self.e.long_binget(i)

    def value(self, v) -> None:
        e = self.e
        if isinstance(v, Node):
            key = ("G", v.module, v.name) if isinstance(v, G) else ("N", id(v))
            if key in self.memo:
                self._get(self.memo[key])
                return
            v.emit(self)
            if v.memo:
                self._put(key)
        elif v is None:
            e.none()
        elif isinstance(v, bool):
            if self.proto < 2:
                e.raw(b"I01\n" if v else b"I00\n")
            else:
                e.newtrue() if v else e.newfalse()
        elif isinstance(v, int):
            if self.proto == 0:
                e.int_(v)
            elif 0 <= v < 256:
                e.binint1(v)
            elif 0 <= v < 65536:
                e.binint2(v)
            else:
                e.binint(v)
        elif isinstance(v, float):
            e.raw(b"F" + repr(v).encode() + b"\n" if self.proto == 0 else b"G" + struct.pack(">d", v))
        elif isinstance(v, str):
            key = ("S", v)
            if self.proto >= 4 and key in self.memo:
                self._get(self.memo[key])
                return
            if self.proto == 0:
                e.string(v) if self.p0_string else e.unicode_nl(v)
            elif self.proto >= 4 and len(v.encode()) < 256:
                e.short_binunicode(v)
            else:
                e.binunicode(v)
            if self.proto >= 4:
                self._put(key)
        elif isinstance(v, tuple):
            if self.proto >= 2 and len(v) <= 3:
                for x in v:
                    self.value(x)
                [e.empty_tuple, e.tuple1, e.tuple2, e.tuple3][len(v)]()
            elif self.proto >= 1 and not v:
                e.empty_tuple()
            else:
                e.mark()
                for x in v:
                    self.value(x)
                e.tuple_()
        elif isinstance(v, list):
            if self.proto == 0:
                e.mark()
                for x in v:
                    self.value(x)
                e.list_()
                return
            e.empty_list()
            self._put(None)
            if len(v) == 1:
                self.value(v[0])
                e.append()
            elif v:
                e.mark()
                for x in v:
                    self.value(x)
                e.appends()
        elif isinstance(v, dict):
            if self.proto == 0:
                e.mark()
                for k, x in v.items():
                    self.value(k)
                    self.value(x)
                e.dict_()
                return
            e.empty_dict()
            self._put(None)
            if len(v) == 1:
                for k, x in v.items():
                    self.value(k)
                    self.value(x)
                e.setitem()
            elif v:
                e.mark()
                for k, x in v.items():
                    self.value(k)
                    self.value(x)
                e.setitems()
        else:
            raise TypeError(v)


def pickle_of(root, proto: int, p0_string: bool = False) -> tuple[bytes, list]:
    c = Ctx(proto, p0_string=p0_string)
    if proto >= 2:
        c.e.proto(proto)
    if proto >= 4:
        c.e.begin_frame()
    c.value(root)
    c.e.stop()
    if proto >= 4:
        c.e.end_frame()
    return c.e.bytes(), c.payloads


# -----------------------------------------------------------------------------
# Containers (joblib's compressors, FORMATS.md §1.2/§1.3; torch zip §4.3)
# -----------------------------------------------------------------------------
def joblib_zlib(data: bytes) -> bytes:
    """joblib BinaryZlibFile, compress=True (zlib level 3, wbits 15): starts 78 5e."""
    c = zlib.compressobj(3, zlib.DEFLATED, 15, zlib.DEF_MEM_LEVEL, 0)
    return c.compress(data) + c.flush()


def joblib_gzip(data: bytes) -> bytes:
    """joblib BinaryGzipFile (.gz, level 3, wbits 31): 1f 8b 08 00 00000000 00 03."""
    c = zlib.compressobj(3, zlib.DEFLATED, 31, zlib.DEF_MEM_LEVEL, 0)
    return c.compress(data) + c.flush()


def joblib_zf(data: bytes) -> bytes:
    """joblib <= 0.9 compressed file: b'ZF' + hex(len).ljust(19) + zlib stream (level 3)."""
    return b"ZF" + hex(len(data)).encode("ascii").ljust(19) + zlib.compress(data, 3)


def torch_zip(arch: str, node) -> bytes:
    """A torch >= 1.6 zip checkpoint: a state dict with one real tensor 'w' and key 'x' = node."""
    def extra(e: Emitter) -> None:
        e.binunicode("x")
        c = Ctx(2, e)
        c.n = 100                 # fixtures_torch's pickle uses no memo; stay clear anyway
        c.value(node)
    return checkpoint(arch, state_dict_pickle(STATE_TENSORS[:1], extra=extra), {"0": STATE_DATA["0"]})


# -----------------------------------------------------------------------------
# Gadget building blocks
# -----------------------------------------------------------------------------
def memmap():
    return G("numpy", "memmap")


def expr_cls():
    return G("pandas.core.computation.expr", "Expr")


def dictwrapper():
    return G("pandas._config.config", "DictWrapper")


def logreg():
    return G("sklearn.linear_model._logistic", "LogisticRegression")


def parallel():
    return G("sklearn.utils.parallel", "Parallel")


def npr(name: str):
    return G("numpy.random._pickle", name)


def partial():
    return G("functools", "partial")


def reconstructor():
    return G("copyreg", "_reconstructor")


MM_CALL = lambda: Call(memmap(), *MM_ARGS)                                     # noqa: E731
EXPR_CALL = lambda: Call(expr_cls(), CODE)                                      # noqa: E731
# DictWrapper state: __dict__ part sets d and prefix directly, slot part goes through
# setattr -> DictWrapper.__setattr__ -> set_option('plotting.backend', MOD) -> import MOD.
DW_STATE = ({"d": {"backend": "matplotlib"}, "prefix": "plotting"}, {"backend": MOD})
PAYLOAD_BYTES = [(i, b) for i, b in enumerate(b"PKINSPECT")]                    # memmap[i] = byte


def estimator(coef):
    """A LogisticRegression made by NEWOBJ + BUILD whose state carries `coef` as coef_."""
    return Build(NewObj(logreg()), {"penalty": "l2", "C": 1.0, "fit_intercept": True, "classes_": [0, 1],
                                     "coef_": coef, "n_iter_": [7], "_sklearn_version": "1.9.1"})


# -----------------------------------------------------------------------------
# The fixture set
# -----------------------------------------------------------------------------
ENC_SUFFIX = {"pickle": ".pkl", "estimator-state": ".pkl", "joblib-raw": ".joblib", "joblib-zlib": ".joblib.z",
              "joblib-zf": ".joblib.zf", "gzip": ".joblib.gz", "torch-zip": ".pt",
              "estimator-state+joblib-zlib": ".joblib.z", "joblib-raw+wrapper": ".joblib"}


def build() -> list[dict]:
    out: list[dict] = []

    def add(stem: str, family: str, route: str, encoding: str, proto: int, root, rules, desc: str,
            p0_string: bool = False) -> None:
        if encoding == "torch-zip":
            data, payloads = torch_zip(stem, root), []
            proto = 2
        else:
            raw, payloads = pickle_of(root, proto, p0_string)
            data = {"pickle": raw, "estimator-state": raw, "joblib-raw": raw, "joblib-raw+wrapper": raw,
                    "joblib-zlib": joblib_zlib(raw), "estimator-state+joblib-zlib": joblib_zlib(raw),
                    "joblib-zf": joblib_zf(raw) if encoding == "joblib-zf" else None,
                    "gzip": joblib_gzip(raw)}[encoding]
        out.append({"file": stem + ENC_SUFFIX[encoding], "family": family, "route": route, "encoding": encoding,
                    "protocol": proto, "expect_rules": list(rules), "description": desc,
                    "_data": data, "_payloads": payloads})

    mm = "numpy.memmap('/tmp/pkinspect-fixture-memmap', 'uint8', 'w+', 0, (16,))"
    trunc = "creates/truncates the file to 16 zero bytes on load"

    # == 1. file overwrite: numpy.memmap ====================================
    F = "file-overwrite"
    add("memmap_reduce_p0", F, "reduce", "pickle", 0, MM_CALL(), GADGET,
        f"Protocol 0: GLOBAL 'numpy memmap', MARK, UNICODE/INT args, TUPLE, REDUCE: {mm} {trunc}.")
    add("memmap_reduce_p0_string", F, "reduce", "pickle", 0, MM_CALL(), GADGET,
        f"The issue's minimal form (protocol 0, STRING args, no memo besides PUT): {mm}; {trunc}.",
        p0_string=True)
    add("memmap_inst_p0", F, "inst", "pickle", 0, Inst("numpy", "memmap", *MM_ARGS), GADGET,
        f"Protocol 0: MARK args INST 'numpy memmap' (import + call in one opcode): {mm}.")
    add("memmap_obj_p1", F, "obj", "pickle", 1, Obj(memmap(), *MM_ARGS), GADGET,
        f"Protocol 1 (no PROTO): MARK, GLOBAL numpy.memmap, args, OBJ: {mm}.")
    add("memmap_reduce_p2", F, "reduce", "pickle", 2, MM_CALL(), GADGET,
        f"Protocol 2: GLOBAL, BINUNICODE/BININT1 args, TUPLE, REDUCE, BINPUT memo: {mm}.")
    add("memmap_reduce_p4", F, "reduce", "pickle", 4, MM_CALL(), GADGET,
        f"Protocol 4: FRAME, STACK_GLOBAL, MEMOIZE: {mm}.")
    e = Emitter().proto(2).global_("numpy", "memmap").binput(0).pop()
    e.empty_list().binput(1).binint1(1).append().pop()
    c = Ctx(2, e)
    c.n = 2
    e.binget(0)
    c.value(MM_ARGS)
    e.reduce().stop()
    out.append({"file": "memmap_memo_put_pop_get_p2.pkl", "family": F, "route": "reduce", "encoding": "pickle",
                "protocol": 2, "expect_rules": GADGET,
                "description": f"Memo trick: GLOBAL numpy.memmap, BINPUT 0, POP; noise; BINGET 0, args, REDUCE: {mm}.",
                "_data": e.bytes(), "_payloads": []})
    for p in (0, 2, 4):
        add(f"memmap_reconstructor_setitems_p{p}", F, "reconstructor", "pickle", p,
            SetItems(Call(reconstructor(), memmap(), memmap(), MM_PATH), PAYLOAD_BYTES), GADGET,
            f"Protocol {p}: copyreg._reconstructor(numpy.memmap, numpy.memmap, '{MM_PATH}') runs "
            "memmap.__new__(memmap, path) (mode 'r+': opens an existing file read-write, no truncation), then "
            "SETITEM(S) on the result write the bytes of 'PKINSPECT' into it (an `items` use of memmap too).")
    for p in (2, 4):
        add(f"memmap_newobj_p{p}", F, "newobj", "pickle", p, NewObj(memmap(), *MM_ARGS), GADGET,
            f"Protocol {p}: NEWOBJ numpy.memmap with args: memmap.__new__(memmap, *args) does the work: {mm}.")
    add("memmap_newobj_ex_p4", F, "newobj_ex", "pickle", 4, NewObjEx(memmap(), (MM_PATH,), MM_KW), GADGET,
        f"Protocol 4: NEWOBJ_EX numpy.memmap, args ('{MM_PATH}',), kwargs {MM_KW}: {trunc}.")
    add("memmap_newobj_ex_kwonly_p4", F, "newobj_ex", "pickle", 4,
        NewObjEx(memmap(), (), dict(filename=MM_PATH, **MM_KW)), GADGET,
        "Protocol 4: NEWOBJ_EX numpy.memmap with empty args and every argument as a keyword (filename=...): "
        "keywords alone make it a `call`, not a `new`.")
    for p in (2, 4):
        add(f"memmap_copyreg_newobj_p{p}", F, "copyreg.__newobj__", "pickle", p,
            Call(G("copyreg", "__newobj__"), memmap(), *MM_ARGS), GADGET,
            f"Protocol {p}: copyreg.__newobj__(numpy.memmap, *args) = memmap.__new__(memmap, *args): {mm}.")
    for p in (4,):
        add(f"memmap_copyreg_newobj_ex_p{p}", F, "copyreg.__newobj_ex__", "pickle", p,
            Call(G("copyreg", "__newobj_ex__"), memmap(), (MM_PATH,), MM_KW), GADGET,
            f"Protocol {p}: copyreg.__newobj_ex__(numpy.memmap, ('{MM_PATH}',), {MM_KW}): {trunc}.")

    # == 2. code execution: pandas Expr =====================================
    F = "code-exec"
    ex = f"pandas.core.computation.expr.Expr({CODE!r}) parses, and so evaluates, the source text"
    for p in (0, 2, 4):
        add(f"expr_reduce_p{p}", F, "reduce", "pickle", p, EXPR_CALL(), GADGET, f"Protocol {p}, REDUCE: {ex}.")
    add("expr_inst_p0", F, "inst", "pickle", 0, Inst("pandas.core.computation.expr", "Expr", CODE), GADGET,
        f"Protocol 0, MARK arg INST: {ex}.")
    for p in (0, 2, 4):
        add(f"expr_reconstructor_p{p}", F, "reconstructor", "pickle", p,
            Call(reconstructor(), expr_cls(), expr_cls(), CODE), GADGET,
            f"Protocol {p}: copyreg._reconstructor(Expr, Expr, source) runs Expr.__new__ then Expr.__init__(obj, "
            f"source): {ex}.")
    add("expr_newobj_p2", F, "newobj", "pickle", 2, NewObj(expr_cls(), CODE), GADGET,
        "Protocol 2: NEWOBJ Expr with (source,): by docs/uses.md a NEWOBJ with arguments is a `call`. Uncertain: "
        "NEWOBJ runs only Expr.__new__ (object.__new__), not __init__, so loading it evaluates nothing; a judge "
        "keyed on the use reports PK112, one keyed on the effect could say PK113.")

    # == 3. BUILD reaching pandas.set_option: DictWrapper ===================
    F = "set-option-import"
    dw = (f"BUILD ({{'d': {{'backend': 'matplotlib'}}, 'prefix': 'plotting'}}, {{'backend': {MOD!r}}}): the slot "
          f"state goes through setattr -> DictWrapper.__setattr__ -> pandas.set_option('plotting.backend', {MOD!r}), "
          "whose validator imports that module")
    for p in (2, 4):
        add(f"dictwrapper_newobj_build_p{p}", F, "newobj", "pickle", p, Build(NewObj(dictwrapper()), DW_STATE), GADGET,
            f"Protocol {p}: NEWOBJ pandas._config.config.DictWrapper with (), then {dw}.")
    add("dictwrapper_copyreg_newobj_build_p2", F, "copyreg.__newobj__", "pickle", 2,
        Build(Call(G("copyreg", "__newobj__"), dictwrapper()), DW_STATE), GADGET,
        f"Protocol 2: copyreg.__newobj__(DictWrapper) (a `new`), then {dw}.")
    add("dictwrapper_reconstructor_object_build_p0", F, "reconstructor", "pickle", 0,
        Build(Call(reconstructor(), dictwrapper(), G("builtins", "object"), None), DW_STATE), GADGET,
        f"Protocol 0: copyreg._reconstructor(DictWrapper, builtins.object, None) (a `new`), then {dw}.")
    add("dictwrapper_reduce_build_p4", F, "reduce", "pickle", 4,
        Build(Call(dictwrapper(), {"backend": "matplotlib"}, "plotting"), (None, {"backend": MOD})), GADGET,
        f"Protocol 4: DictWrapper({{'backend': 'matplotlib'}}, 'plotting') by REDUCE, then BUILD (None, "
        f"{{'backend': {MOD!r}}}): set_option imports the module.")

    # == 4. readers fetching a URL / creating files =========================
    F = "reader-url-file"
    for p in (2, 4):
        add(f"excelfile_url_reduce_p{p}", F, "reduce", "pickle", p, Call(G("pandas", "ExcelFile"), URL), GADGET,
            f"Protocol {p}: pandas.ExcelFile({URL!r}) fetches the URL when loaded.")
    add("excelfile_url_reconstructor_p2", F, "reconstructor", "pickle", 2,
        Call(reconstructor(), G("pandas", "ExcelFile"), G("pandas", "ExcelFile"), URL), GADGET,
        f"Protocol 2: copyreg._reconstructor(ExcelFile, ExcelFile, {URL!r}) runs ExcelFile.__init__(url).")
    for p in (0, 2):
        add(f"excelwriter_reduce_p{p}", F, "reduce", "pickle", p, Call(G("pandas", "ExcelWriter"), XLSX), GADGET,
            f"Protocol {p}: pandas.ExcelWriter({XLSX!r}) creates/opens the file for writing.")
    for p in (2, 4):
        add(f"hdfstore_reduce_p{p}", F, "reduce", "pickle", p, Call(G("pandas", "HDFStore"), H5), GADGET,
            f"Protocol {p}: pandas.HDFStore({H5!r}) (mode 'a') creates the file.")

    # == 5. task runner: sklearn.utils.parallel.Parallel ====================
    F = "task-runner"
    task_mm = [(memmap(), MM_ARGS, {})]
    pinv = "the instance is then called (REDUCE whose callable is the instance: `invoke`) with [(numpy.memmap, " \
           "(path, 'uint8', 'w+', 0, (16,)), {})]: Parallel runs each (callable, args, kwargs) task"
    for p in (2, 4):
        add(f"parallel_invoke_memmap_p{p}", F, "invoke", "pickle", p, Call(Call(parallel()), task_mm), GADGET,
            f"Protocol {p}: sklearn.utils.parallel.Parallel() by REDUCE; {pinv}.")
    add("parallel_reconstructor_invoke_memmap_p2", F, "invoke", "pickle", 2,
        Call(Call(reconstructor(), parallel(), parallel(), 1), task_mm), GADGET,
        f"Protocol 2: copyreg._reconstructor(Parallel, Parallel, 1) = Parallel(n_jobs=1), then {pinv}.")
    add("parallel_newobj_invoke_expr_p4", F, "invoke", "pickle", 4,
        Call(NewObj(parallel()), [(expr_cls(), (CODE,), {})]), GADGET,
        "Protocol 4: NEWOBJ Parallel with () (a `new`: no __init__, so at load __call__ would likely fail on "
        "missing attributes), then invoked with [(Expr, (source,), {})]. Statically an invoke of a Parallel.")
    add("funcwrapper_invoke_memmap_p2", F, "invoke", "pickle", 2,
        Call(Call(G("sklearn.utils.parallel", "_FuncWrapper"), memmap()), *MM_ARGS), GADGET,
        "Protocol 2: sklearn.utils.parallel._FuncWrapper(numpy.memmap) (an allowed `call`), then the wrapper "
        "instance is invoked with the memmap args: _FuncWrapper.__call__ calls the function it holds. "
        "Uncertain: PK112 if the invoke (or the laundered memmap call) is known as a gadget, PK113 otherwise.")

    # == 6. launderers ======================================================
    F = "launderer"
    for name, p in (("__generator_ctor", 2), ("__generator_ctor", 4), ("__randomstate_ctor", 2)):
        add(f"{name.strip('_')}_memmap_p{p}", F, name, "pickle", p, Call(npr(name), MM_PATH, memmap()), GADGET,
            f"Protocol {p}: numpy.random._pickle.{name}('{MM_PATH}', numpy.memmap) calls "
            "memmap(path) (mode 'r+': opens an existing file read-write).")
    for name, p in (("__generator_ctor", 2), ("__randomstate_ctor", 4)):
        add(f"{name.strip('_')}_expr_p{p}", F, name, "pickle", p, Call(npr(name), CODE, expr_cls()), GADGET,
            f"Protocol {p}: numpy.random._pickle.{name}(source, Expr) calls Expr(source): {ex}.")
    add("bit_generator_ctor_memmap_p2", F, "__bit_generator_ctor", "pickle", 2,
        Call(npr("__bit_generator_ctor"), memmap()), GADGET,
        "Protocol 2: numpy.random._pickle.__bit_generator_ctor(numpy.memmap) calls memmap() with no arguments "
        "(a `call` of memmap through the launderer). At load it raises TypeError (no filename), so PK112 comes "
        "from the use, not an observed effect.")
    add("bit_generator_ctor_parallel_invoke_p4", F, "__bit_generator_ctor", "pickle", 4,
        Call(Call(npr("__bit_generator_ctor"), parallel()), task_mm), GADGET,
        f"Protocol 4: __bit_generator_ctor(Parallel) returns Parallel() (result made by Parallel); {pinv}.")
    for mod in ("sklearn.neighbors._kd_tree", "sklearn.neighbors._ball_tree"):
        short = mod.rsplit(".", 1)[1].strip("_")
        add(f"newobj_{short}_dictwrapper_build_p4", F, "newObj", "pickle", 4,
            Build(Call(G(mod, "newObj"), dictwrapper()), DW_STATE), GADGET,
            f"Protocol 4: scikit-learn {mod}.newObj(DictWrapper) = DictWrapper.__new__(DictWrapper) (a `new` of "
            f"the class), then {dw}.")
    add("newobj_dist_metrics_memmap_p2", F, "newObj", "pickle", 2,
        Call(G("sklearn.metrics._dist_metrics", "newObj"), memmap()), UNLISTED,
        "Protocol 2: sklearn.metrics._dist_metrics.newObj(numpy.memmap) = memmap.__new__(memmap): a `new` of "
        "memmap, which no real file makes; at load it raises TypeError (no filename), no effect. Uncertain: "
        "PK113 unless the hunt lists `new` of memmap as a gadget.")
    for modname in ("pandas.core.indexes.base", "pandas.core.indexes.api"):
        add(f"new_index_{modname.rsplit('.', 1)[1]}_memmap_p2", F, "_new_Index", "pickle", 2,
            Call(G(modname, "_new_Index"), memmap(), {"filename": MM_PATH, "mode": "w+", "shape": (16,),
                                                      "dtype": "uint8"}), GADGET,
            f"Protocol 2: {modname}._new_Index(numpy.memmap, {{'filename': path, 'mode': 'w+', 'shape': (16,), "
            "'dtype': 'uint8'}) = memmap.__new__(memmap, **d): a `call` of memmap with keywords through the "
            "launderer. (At load pandas adds d['copy'] = False, which memmap.__new__ rejects with TypeError "
            "before opening the file; the use is still a memmap call.)")
    for p in (2, 4):
        add(f"partial_memmap_call_p{p}", F, "partial", "pickle", p,
            Call(Call(partial(), memmap(), *MM_ARGS)), GADGET,
            f"Protocol {p}: functools.partial(numpy.memmap, *args) by REDUCE, then REDUCE calling the partial "
            f"with (): {mm}.")
    add("partial_newobj_ex_memmap_kw_p4", F, "partial", "pickle", 4,
        Call(NewObjEx(partial(), (memmap(), MM_PATH), MM_KW)), GADGET,
        f"Protocol 4: NEWOBJ_EX functools.partial, args (numpy.memmap, path), kwargs {MM_KW} "
        "(partial.__new__ does the work), then the partial is called with (): truncates the file.")
    add("partial_int_build_memmap_p2", F, "partial-build", "pickle", 2,
        Call(Build(Call(partial(), G("builtins", "int")), (memmap(), MM_ARGS, {}, None))), GADGET,
        "Protocol 2: functools.partial(builtins.int) (harmless), then BUILD with state (numpy.memmap, "
        "(path, 'uint8', 'w+', 0, (16,)), {}, None): partial.__setstate__ replaces func and args; then the "
        "partial is called with (): memmap(...) truncates the file.")
    add("partial_int_build_memmap_kw_p4", F, "partial-build", "pickle", 4,
        Call(Build(Call(partial(), G("builtins", "int")), (memmap(), (MM_PATH,), MM_KW, None))), GADGET,
        f"Protocol 4: functools.partial(builtins.int), then BUILD (numpy.memmap, (path,), {MM_KW}, None): "
        "keywords installed by BUILD; then called with ().")
    add("partial_int_build_expr_p2", F, "partial-build", "pickle", 2,
        Call(Build(Call(partial(), G("builtins", "int")), (expr_cls(), (CODE,), {}, None))), GADGET,
        f"Protocol 2: functools.partial(int), BUILD (Expr, (source,), {{}}, None), called: {ex}.")
    add("pyx_unpickle_seedsequence_dictwrapper_build_p4", F, "__pyx_unpickle", "pickle", 4,
        Build(Call(G("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"), dictwrapper(),
                   SEEDSEQ_CHECKSUM, None), DW_STATE), GADGET,
        "Protocol 4: Cython numpy.random.bit_generator.__pyx_unpickle_SeedSequence(DictWrapper, <real "
        f"checksum {SEEDSEQ_CHECKSUM}>, None): a `new` of the type argument (result made by DictWrapper), then "
        f"{dw}. (At load Cython's SeedSequence.__new__(DictWrapper) would raise TypeError, not a subtype; "
        "statically it is the build gadget.)")
    add("pyx_unpickle_ndarraybacked_memmap_p2", F, "__pyx_unpickle", "pickle", 2,
        SetItems(Call(G("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"), memmap(), 82904607, None),
                 PAYLOAD_BYTES[:2]), UNLISTED,
        "Protocol 2: pandas._libs.arrays.__pyx_unpickle_NDArrayBacked(numpy.memmap, 82904607, None): a `new` "
        "of memmap through a Cython helper, then SETITEMs on it (`items` of memmap). No effect known (no file "
        "is opened). Uncertain: PK113 at least.")

    # == 7. denylisted calls through launderers =============================
    F = "denylisted-via-launderer"
    for name, p in (("__generator_ctor", 2), ("__generator_ctor", 4), ("__randomstate_ctor", 0)):
        add(f"{name.strip('_')}_os_system_p{p}", F, name, "pickle", p,
            Call(npr(name), ECHO, G("os", "system")), DANGER,
            f"Protocol {p}: numpy.random._pickle.{name}({ECHO!r}, os.system): imports os.system (PK101) and "
            "calls it through the launderer (PK102, the message names the launderer).")
    add("randomstate_ctor_posix_system_p2", F, "__randomstate_ctor", "pickle", 2,
        Call(npr("__randomstate_ctor"), ECHO, G("posix", "system")), DANGER,
        f"Protocol 2: __randomstate_ctor({ECHO!r}, posix.system).")
    add("partial_os_system_call_p2", F, "partial", "pickle", 2,
        Call(Call(partial(), G("os", "system"), ECHO)), DANGER,
        f"Protocol 2: functools.partial(os.system, {ECHO!r}) then called with ().")
    add("partial_int_build_os_system_p4", F, "partial-build", "pickle", 4,
        Call(Build(Call(partial(), G("builtins", "int")), (G("os", "system"), (ECHO,), {}, None))), DANGER,
        f"Protocol 4: functools.partial(int), BUILD (os.system, ({ECHO!r},), {{}}, None), called with ().")
    add("reconstructor_popen_p2", F, "reconstructor", "pickle", 2,
        Call(reconstructor(), G("subprocess", "Popen"), G("subprocess", "Popen"), ["echo", "pkinspect-fixture"]),
        DANGER, "Protocol 2: copyreg._reconstructor(Popen, Popen, ['echo', 'pkinspect-fixture']) runs "
                "Popen.__init__(obj, argv).")
    add("copyreg_newobj_ex_popen_p4", F, "copyreg.__newobj_ex__", "pickle", 4,
        Call(G("copyreg", "__newobj_ex__"), G("subprocess", "Popen"), (["echo", "pkinspect-fixture"],),
             {"shell": False}), DANGER,
        "Protocol 4: copyreg.__newobj_ex__(subprocess.Popen, (argv,), {'shell': False}) (as NEWOBJ_EX: only "
        "__new__ runs at load; reported as a Popen call all the same).")
    add("parallel_invoke_os_system_p2", F, "invoke", "pickle", 2,
        Call(Call(parallel()), [(G("os", "system"), (ECHO,), {})]), ["PK101", "PK112"],
        f"Protocol 2: Parallel() invoked with [(os.system, ({ECHO!r},), {{}})]: os.system is imported (PK101) "
        "and run as a task by the Parallel invoke (PK112). PK102 also expected if the scanner resolves "
        "Parallel's tasks as laundered calls (uncertain: Parallel is not in docs/uses.md's launderer table).")
    add("new_index_popen_p2", F, "_new_Index", "pickle", 2,
        Call(G("pandas.core.indexes.base", "_new_Index"), G("subprocess", "Popen"),
             {"args": ["echo", "pkinspect-fixture"]}), DANGER,
        "Protocol 2: _new_Index(subprocess.Popen, {'args': argv}): a call of Popen with keywords through the "
        "launderer (only Popen.__new__ runs at load).")

    # == 8. BUILD on a class object; invoke of an instance ==================
    F = "class-build-invoke"
    for p in (2, 4):
        add(f"build_class_logreg_p{p}", F, "build-class", "pickle", p,
            Build(logreg(), (None, {"predict": memmap()})), UNLISTED,
            f"Protocol {p}: BUILD whose target is the class LogisticRegression itself, slot state "
            "{'predict': numpy.memmap}: setattr on the class would change it for the whole process. (At load "
            "LogisticRegression inherits BaseEstimator.__setstate__, so BUILD on the class raises TypeError.)")
    add("build_class_expr_p0", F, "build-class", "pickle", 0,
        Build(expr_cls(), (None, {"parse": memmap()})), UNLISTED,
        "Protocol 0: BUILD on the class pandas Expr (no __setstate__): setattr(Expr, 'parse', numpy.memmap) "
        "monkey-patches the class for the process.")
    add("invoke_rbf_kernel_p2", F, "invoke", "pickle", 2,
        Call(Call(G("sklearn.gaussian_process.kernels", "RBF"), 1.0), [[0.0], [1.0]]), UNLISTED,
        "Protocol 2: RBF(1.0) by REDUCE, then the kernel instance is called with [[0.0], [1.0]] (computes a "
        "kernel matrix: harmless, but `invoke` is never a permitted use).")
    add("invoke_logreg_instance_p4", F, "invoke", "pickle", 4,
        Call(NewObj(logreg()), [[0.0]]), UNLISTED,
        "Protocol 4: NEWOBJ LogisticRegression, then REDUCE calling the instance (not callable: TypeError at "
        "load). An invoke of an allowlisted class.")

    # == encodings ============================================================
    F1, F2, F3, F5, F6 = "file-overwrite", "code-exec", "set-option-import", "task-runner", "launderer"
    add("memmap_reduce_p4", F1, "reduce", "joblib-raw", 4, MM_CALL(), GADGET,
        "The memmap_reduce_p4.pkl pickle as an uncompressed joblib file (a plain pickle is one).")
    add("expr_reconstructor_p4", F2, "reconstructor", "joblib-raw", 4,
        Call(reconstructor(), expr_cls(), expr_cls(), CODE), GADGET, "expr_reconstructor_p4 as a joblib file.")
    add("joblib_wrapper_then_memmap_p2", F1, "reduce", "joblib-raw+wrapper", 2,
        {"coef": JoblibArray([1, 2, 3]), "x": MM_CALL()}, GADGET,
        "A real-looking joblib file (protocol 2): dict whose 'coef' is a NumpyArrayWrapper (NEWOBJ + BUILD) "
        "followed by its raw payload (pad byte, 0xFF padding, 3 int64, 16-aligned), then 'x' = "
        f"{mm}. The scanner must resume after the payload.")
    for stem, fam, route, node, p in (
            ("memmap_reduce_p4", F1, "reduce", MM_CALL(), 4),
            ("memmap_newobj_p2", F1, "newobj", NewObj(memmap(), *MM_ARGS), 2),
            ("dictwrapper_newobj_build_p4", F3, "newobj", Build(NewObj(dictwrapper()), DW_STATE), 4),
            ("generator_ctor_expr_p4", F6, "__generator_ctor", Call(npr("__generator_ctor"), CODE, expr_cls()), 4)):
        add(stem, fam, route, "joblib-zlib", p, node, GADGET,
            f"{stem} compressed as joblib's zlib container (compress=True: zlib level 3, header 78 5e).")
    for stem, fam, route, node, p in (
            ("memmap_reduce_p2", F1, "reduce", MM_CALL(), 2),
            ("expr_reduce_p2", F2, "reduce", EXPR_CALL(), 2)):
        add(stem, fam, route, "joblib-zf", p, node, GADGET,
            f"{stem} in joblib <= 0.9's compressed format: b'ZF' + hex(length).ljust(19) + zlib stream "
            "(FORMATS.md §1.3); joblib.load still reads it (load_compatibility).")
    for stem, fam, route, node, p in (
            ("memmap_reduce_p4", F1, "reduce", MM_CALL(), 4),
            ("parallel_invoke_memmap_p4", F5, "invoke", Call(Call(parallel()), task_mm), 4),
            ("partial_int_build_memmap_p2", F6, "partial-build",
             Call(Build(Call(partial(), G("builtins", "int")), (memmap(), MM_ARGS, {}, None))), 2)):
        add(stem, fam, route, "gzip", p, node, GADGET,
            f"{stem} compressed as joblib's gzip container (.gz, level 3, mtime 0, OS 3).")
    add("generator_ctor_os_system_p4", "denylisted-via-launderer", "__generator_ctor", "gzip", 4,
        Call(npr("__generator_ctor"), ECHO, G("os", "system")), DANGER,
        "generator_ctor_os_system_p4 in the joblib gzip container.")
    for stem, fam, route, node, rules in (
            ("torch_memmap_reduce", F1, "reduce", MM_CALL(), GADGET),
            ("torch_memmap_reconstructor_setitems", F1, "reconstructor",
             SetItems(Call(reconstructor(), memmap(), memmap(), MM_PATH), PAYLOAD_BYTES), GADGET),
            ("torch_expr_reconstructor", F2, "reconstructor", Call(reconstructor(), expr_cls(), expr_cls(), CODE),
             GADGET),
            ("torch_dictwrapper_build", F3, "newobj", Build(NewObj(dictwrapper()), DW_STATE), GADGET),
            ("torch_generator_ctor_memmap", F6, "__generator_ctor", Call(npr("__generator_ctor"), MM_PATH, memmap()),
             GADGET),
            ("torch_partial_build_memmap", F6, "partial-build",
             Call(Build(Call(partial(), G("builtins", "int")), (memmap(), MM_ARGS, {}, None))), GADGET)):
        add(stem, fam, route, "torch-zip", 2, node, rules,
            f"PyTorch zip checkpoint (archive folder '{stem}', fixtures_torch.py layout) whose data.pkl is a state "
            f"dict with a real float32 tensor 'w' and 'x' = the gadget ({route}).")
    for stem, fam, route, node, p, enc in (
            ("estimator_coef_memmap_reduce_p4", F1, "reduce", MM_CALL(), 4, "estimator-state"),
            ("estimator_coef_memmap_newobj_p2", F1, "newobj", NewObj(memmap(), *MM_ARGS), 2, "estimator-state"),
            ("estimator_coef_expr_reconstructor_p2", F2, "reconstructor",
             Call(reconstructor(), expr_cls(), expr_cls(), CODE), 2, "estimator-state"),
            ("estimator_coef_generator_ctor_memmap_p4", F6, "__generator_ctor",
             Call(npr("__generator_ctor"), MM_PATH, memmap()), 4, "estimator-state"),
            ("estimator_coef_partial_memmap_p4", F6, "partial", Call(Call(partial(), memmap(), *MM_ARGS)), 4,
             "estimator-state"),
            ("estimator_coef_new_index_memmap_p2", F6, "_new_Index",
             Call(G("pandas.core.indexes.base", "_new_Index"), memmap(),
                  {"filename": MM_PATH, "mode": "w+", "shape": (16,), "dtype": "uint8"}), 2, "estimator-state"),
            ("estimator_coef_memmap_reduce_p4", F1, "reduce", MM_CALL(), 4, "estimator-state+joblib-zlib")):
        add(stem, fam, route, enc, p, estimator(node), GADGET,
            "sklearn LogisticRegression made by NEWOBJ + BUILD whose state dict (penalty, C, classes_, ...) has "
            f"'coef_' = the gadget ({route})" + (", in joblib's zlib container." if "zlib" in enc else "."))
    return out


# -----------------------------------------------------------------------------
# Static self-checks: zlib/zipfile + pickletools.genops, nothing is unpickled
# -----------------------------------------------------------------------------
def pickle_streams(entry: dict) -> list[bytes]:
    data, enc = entry["_data"], entry["encoding"]
    if enc == "torch-zip":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            assert z.testzip() is None
            arch = z.namelist()[0].split("/")[0]
            assert entry["file"] == arch + ".pt"
            return [z.read(f"{arch}/data.pkl")]
    if enc in ("joblib-zlib", "estimator-state+joblib-zlib"):
        assert data[:2] == b"\x78\x5e", data[:2]
        return [zlib.decompress(data)]
    if enc == "gzip":
        assert data[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", data[:10]
        return [zlib.decompress(data, 31)]
    if enc == "joblib-zf":
        assert data[:2] == b"ZF"
        n = int(data[2:21].decode("ascii").strip(), 16)
        raw = zlib.decompress(data[21:])
        assert len(raw) == n
        return [raw]
    raw = data
    for start, end in reversed(entry["_payloads"]):   # cut joblib payloads out: the rest is an opcode stream
        raw = raw[:start] + raw[end:]
    return [raw]


def policy_names() -> set[str]:
    names = set()
    for f in ("allowlist.txt", "conditional.txt"):
        for line in (ROOT / "src" / "policy" / f).read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) >= 2 and not line.startswith("#"):
                names.add(f"{parts[0]}.{parts[1]}")
    return names


DENYLISTED_USED = {"os.system", "posix.system", "subprocess.Popen"}
PUSHERS_STR = ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "STRING")


def check(entry: dict, allowed: set[str]) -> list[str]:
    """Static only: genops, string arguments, and the globals each stream imports."""
    seen: list[str] = []
    for raw in pickle_streams(entry):
        ops = list(pickletools.genops(io.BytesIO(raw)))
        assert ops[-1][0].name == "STOP" and ops[-1][2] == len(raw) - 1, entry["file"]
        recent: list = []            # what each stack-pushing op pushed (a str, or None for anything else)
        memo: dict = {}
        for op, arg, _pos in ops:
            name = op.name
            if isinstance(arg, str):
                if arg.startswith("/") or "://" in arg:
                    assert arg.startswith(SAFE_PREFIXES), (entry["file"], arg)
            if name in ("GLOBAL", "INST"):
                seen.append(arg.replace(" ", "."))
            if name == "STACK_GLOBAL":
                mod, nm = recent[-2], recent[-1]
                assert isinstance(mod, str) and isinstance(nm, str), entry["file"]
                seen.append(f"{mod}.{nm}")
            if name == "MEMOIZE":
                memo[len(memo)] = recent[-1]
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = recent[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                recent.append(memo[arg])
            elif name in PUSHERS_STR:
                recent.append(arg)
            elif op.stack_after:
                recent.append(None)
    for g in seen:
        if g in DENYLISTED_USED:
            assert entry["family"] == "denylisted-via-launderer", (entry["file"], g)
        else:
            assert g in allowed, (entry["file"], g)
    return seen


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    entries = build()
    names = [e["file"] for e in entries]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    allowed = policy_names()
    manifest = []
    for entry in entries:
        check(entry, allowed)
        (OUT / entry["file"]).write_bytes(entry.pop("_data"))
        entry.pop("_payloads")
        manifest.append(entry)
    manifest.sort(key=lambda m: m["file"])
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    digest = hashlib.sha256()
    for m in manifest:
        digest.update((OUT / m["file"]).read_bytes())
    print(f"wrote {len(manifest)} fixtures to {OUT.relative_to(ROOT)} (sha256 of all: {digest.hexdigest()[:16]})")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Record, for each global a pickle imports, the *uses* (docs/uses.md) the pickle makes of it.

Usage:
    python scripts/record_uses.py FILE... [--json]       uses per file (text, or one JSON line a file)
    python scripts/record_uses.py --self-check           hand-made stdlib pickles give the expected uses
    python scripts/record_uses.py --evidence [--out scripts/data/uses_evidence.json]
                                                         the merged evidence of every real file (below)

    from record_uses import uses_of_bytes                uses_of_bytes(data) -> {"module name": {...}}

A use is one of (docs/uses.md):

    ref     the global is imported (every global gets it)
    new     X.__new__(X) with no arguments: NEWOBJ/NEWOBJ_EX with () and no keywords, and the
            launderers copyreg.__newobj__(X), copyreg._reconstructor(X, builtins.object, None),
            scikit-learn newObj(X), Cython __pyx_unpickle_*(X, checksum, state)
    call    X(*args, **kw): REDUCE, INST, OBJ, NEWOBJ(_EX) with arguments, and every launderer's
            call of an argument. Each call's argument shape is kept in "call_sigs": the kinds of
            the positional arguments joined by "," (str bytes int float bool none tuple list dict;
            class = a global; data = anything else: results of calls, sets, buffers, ...), then
            ",**" when keywords were given; "" is a call with no arguments.
    build   BUILD on an object made by X ("build_states" keeps the kinds of the states; a
            2-tuple is shown as tuple(k0,k1), so a slot state is tuple(dict|none,dict))
    items   APPEND(S)/SETITEM(S)/ADDITEMS on an object made by X (not a list/dict/set)
    invoke  REDUCE (or INST/OBJ) whose callable is an *instance* made by X
    build-on-class   BUILD whose target is the global X itself
    items-on-class   APPEND/SETITEM/ADDITEMS whose target is the global X itself

"Made by X" follows the factories of docs/uses.md: NEWOBJ X and REDUCE X make an X, and each
launderer's result is made by the argument the table names (`_reconstructor(X, ...)`,
`__newobj__(X, ...)`, `_reconstruct(X, ...)`, `_new_Index(X, ...)`, `newObj(X)`,
`__pyx_unpickle_*(X, ...)`, `_mareconstruct(X, ...)`, `__bit_generator_ctor(X)`). Where the
table names a result class the file does not name, it is spelled as find_class would see it:
`__bit_generator_ctor('PCG64')` makes a `numpy.random._pcg64 PCG64` (numpy's own table),
`__generator_ctor` a `numpy.random._generator Generator`, `__randomstate_ctor` a
`numpy.random.mtrand RandomState`. `builtins.getattr(X, 'a')` is the global `X.a` (a `ref`
of the dotted name, which later opcodes use like any other global). `functools.partial(f, ...)`
is a `call` of f with the partial's arguments, and so is the BUILD of a partial with state
`(f2, args2, kw2, d)` (a `call` of f2).

Names: Python 2 names are mapped as CPython's find_class maps them (protocol < 3,
_compat_pickle), so `__builtin__ set` and `copy_reg _reconstructor` are recorded as
`builtins set` and `copyreg _reconstructor`, the names the allowlist uses. Dotted names
(protocol 4: `zoneinfo ZoneInfo._unpickle`) are kept as written.

Containers: zlib/gzip/bz2/lzma/xz/lz4 streams (shared/FORMATS.md §1.2) and joblib's ZF files are
decompressed; zip and tar members with pickle or container names (PICKLE_EXTS) are read in turn
(a PyTorch zip's `*/data.pkl`, whose persistent ids become opaque objects; its raw storages are
not read); the pickle of an object `.npy` (and of `.npz` members) is read after its header.
Joblib payloads are skipped as joblib 1.6's NumpyUnpickler skips them (FORMATS.md §1.1): after the
BUILD of an object made by `joblib.numpy_pickle NumpyArrayWrapper`, a padding byte and padding when
the state has `numpy_array_alignment_bytes` not None, then prod(shape) * itemsize raw bytes; for an
object dtype, a nested pickle (own memo, same recorder, no payload skipping inside, as joblib's inner
Unpickler).

=====================================================================================
WHY NOTHING REAL IS RESOLVED OR RUN
=====================================================================================

The reader is CPython's pure-Python `pickle._Unpickler` (the class joblib itself uses) with every
opcode that imports, calls, looks up attributes, or hands out persistent ids or buffers replaced
by a method of this file (`_Recorder` below): GLOBAL, STACK_GLOBAL, INST and EXT1/2/4 go to
`find_class`/`get_extension`, which return a `G` (two strings, a plain object of this file); REDUCE,
NEWOBJ, NEWOBJ_EX, INST and OBJ go to `_call`/`_newobj`, which only record and return an `Obj`
(also a plain object of this file); BUILD, APPEND(S), SETITEM(S) and ADDITEMS record and, on the
built-in list/dict/set the unpickler made itself, use those types' C methods; `persistent_load`
returns an `Obj`; the `buffers` iterable returns empty PickleBuffers. So the values on the stack
are only: built-in values made by the unpickler's own code from the bytes, `G`, `Obj`, and
PickleBuffer/memoryview. `G` and `Obj` define no special method (identity hash and equality),
so hashing a dict key or set item runs no code of the stream. No import, no getattr on anything
from the stream, no call of anything from the stream ever happens: the only functions called are
this file's and the C methods of built-in types. The EXT registry is a per-reader dict (filled
only by recorded calls of `copyreg.add_extension` with built-in values), never copyreg's.
The pure-Python reader's own code (framing, memo, readline, decoding of STRING with
encoding='latin1', int/float parsing) is CPython's and acts on bytes only.

The in-memory corpus of --evidence pickles real scikit-learn estimators (pickle.dumps of objects
this script built itself: trusted, pinned libraries) and reads the bytes back with the recorder
above; nothing is unpickled. Nothing under fixtures/hostile or other hostile folders is read by
--evidence; reading one with FILE... is safe for the reason above, but is not needed.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import pickle
import struct
import sys
import tarfile
import time
import zipfile
import zlib
import _compat_pickle

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_DECOMPRESSED = 1 << 30
MAX_PICKLES = 1000  # back-to-back pickles read from one stream

USE_ORDER = ("ref", "new", "call", "build", "items", "invoke", "build-on-class", "items-on-class")

# --------------------------------------------------------------------------- values


class G:
    """A global, as find_class returned it: (module, name). Not a class; never resolved."""

    __slots__ = ("key",)

    def __init__(self, module, name):
        self.key = (module, name)


class Obj:
    """An object made by a call, NEWOBJ, a persistent id, ...: `maker` is the (module, name)
    of the global it counts as made by (docs/uses.md), or None. `args`/`state` are kept for
    the two cases that need them (numpy dtype and joblib wrapper, functools.partial)."""

    __slots__ = ("maker", "args", "state")

    def __init__(self, maker, args=None):
        self.maker = maker
        self.args = args
        self.state = None


def kind(v):
    """The kind of one argument (docs/uses.md, "Argument contracts")."""
    t = type(v)
    if t is G:
        return "class"
    if v is None:
        return "none"
    if t is bool:
        return "bool"
    for k, ty in (("int", int), ("float", float), ("str", str), ("bytes", bytes), ("tuple", tuple), ("list", list), ("dict", dict)):
        if t is ty:
            return k
    return "data"


def sig_of(args, kwargs=None):
    if type(args) is tuple or type(args) is list:
        parts = [kind(a) for a in args]
    else:
        parts = ["<%s>" % kind(args)]  # an argument tuple that is not a tuple (NEWOBJ_EX/__newobj_ex__)
    if kwargs is not None and not (type(kwargs) is dict and len(kwargs) == 0):
        parts.append("**")
    return ",".join(parts)


def state_kind(s):
    if type(s) is tuple and len(s) == 2:
        return "tuple(%s,%s)" % (kind(s[0]), kind(s[1]))
    return kind(s)


# --------------------------------------------------------------------------- launderer names

OBJECT = ("builtins", "object")
RECONSTRUCTOR = ("copyreg", "_reconstructor")
NEWOBJ = ("copyreg", "__newobj__")
NEWOBJ_EX = ("copyreg", "__newobj_ex__")
ADD_EXTENSION = ("copyreg", "add_extension")
GETATTR = ("builtins", "getattr")
PARTIALS = {("functools", "partial"), ("_functools", "partial")}
NP_PICKLE = "numpy.random._pickle"
BITGEN_CTOR = (NP_PICKLE, "__bit_generator_ctor")
GENERATOR_CTOR = (NP_PICKLE, "__generator_ctor")
RANDOMSTATE_CTOR = (NP_PICKLE, "__randomstate_ctor")
# numpy.random._pickle.BitGenerators, spelled as find_class sees the classes (their __module__).
NP_BITGENS = {
    "MT19937": ("numpy.random._mt19937", "MT19937"),
    "PCG64": ("numpy.random._pcg64", "PCG64"),
    "PCG64DXSM": ("numpy.random._pcg64", "PCG64DXSM"),
    "Philox": ("numpy.random._philox", "Philox"),
    "SFC64": ("numpy.random._sfc64", "SFC64"),
}
NP_GENERATOR = ("numpy.random._generator", "Generator")
NP_RANDOMSTATE = ("numpy.random.mtrand", "RandomState")
SKLEARN_NEWOBJ_MODULES = {"sklearn.neighbors._kd_tree", "sklearn.neighbors._ball_tree", "sklearn.metrics._dist_metrics"}
PANDAS_NEW_INDEX = {"_new_Index", "_new_DatetimeIndex", "_new_PeriodIndex", "_new_IntervalIndex", "_new_TimedeltaIndex"}
MARECONSTRUCT = ("numpy.ma.core", "_mareconstruct")
NP_DTYPE = ("numpy", "dtype")
JOBLIB_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
JOBLIB_LEGACY_WRAPPERS = {("joblib.numpy_pickle", "NDArrayWrapper"), ("joblib.numpy_pickle", "ZNDArrayWrapper")}


def is_numpy_reconstruct(key):
    m, n = key
    return n == "_reconstruct" and (m == "numpy" or m.startswith("numpy."))


# --------------------------------------------------------------------------- uses


class Uses:
    """(module, name) -> {"uses": set, "call_sigs": set, "build_states": set}."""

    def __init__(self):
        self.g = {}

    def _e(self, key):
        e = self.g.get(key)
        if e is None:
            e = self.g[key] = {"uses": set(), "call_sigs": set(), "build_states": set()}
        return e

    def use(self, key, use):
        self._e(key)["uses"].add(use)

    def call(self, key, sig):
        e = self._e(key)
        e["uses"].add("call")
        e["call_sigs"].add(sig)

    def build(self, key, state):
        e = self._e(key)
        e["uses"].add("build")
        e["build_states"].add(state_kind(state))

    def as_dict(self):
        out = {}
        for (m, n), e in sorted(self.g.items()):
            out["%s %s" % (m, n)] = {
                "uses": sorted(e["uses"], key=USE_ORDER.index),
                "call_sigs": sorted(e["call_sigs"]),
                "build_states": sorted(e["build_states"]),
            }
        return out


# --------------------------------------------------------------------------- the reader

_U = pickle._Unpickler
_OP = {name: getattr(pickle, name)[0] for name in (
    "REDUCE", "NEWOBJ", "NEWOBJ_EX", "OBJ", "BUILD", "APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS")}


class _Buffers:
    def __iter__(self):
        return self

    def __next__(self):
        return pickle.PickleBuffer(bytearray())


class _Recorder(_U):
    """pickle._Unpickler with every opcode that could run code replaced (see the docstring)."""

    dispatch = dict(_U.dispatch)

    def __init__(self, file, uses, joblib=True, extensions=None):
        super().__init__(file, encoding="latin1", buffers=_Buffers())
        self.uses = uses
        self.joblib = joblib
        self.extensions = {} if extensions is None else extensions
        self.raw = file

    # -- imports
    def find_class(self, module, name):
        if self.proto < 3:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        g = G(module, name)
        self.uses.use(g.key, "ref")
        return g

    def get_extension(self, code):
        key = self.extensions.get(code)
        if key is None:
            raise pickle.UnpicklingError("unregistered extension code %d" % code)
        self.append(self.find_class(*key))

    def persistent_load(self, pid):
        return Obj(None)

    # -- calls
    def _call(self, func, args, kwargs=None):
        if type(func) is G:
            return self._call_global(func, args, kwargs)
        if type(func) is Obj:
            if func.maker is not None:
                self.uses.use(func.maker, "invoke")
                if func.maker in PARTIALS and func.args:
                    f = func.args[0]
                    if type(f) is G:
                        self.uses.call(f.key, sig_of(tuple(func.args[1:]) + tuple(args) if type(args) is tuple else args, kwargs))
            return Obj(None)
        raise pickle.UnpicklingError("call of a %s" % kind(func))

    def _call_global(self, g, args, kwargs):
        if type(args) is not tuple:
            raise pickle.UnpicklingError("argument list is a %s, not a tuple" % kind(args))
        key = g.key
        u = self.uses
        u.call(key, sig_of(args, kwargs))
        maker = key
        a0 = args[0] if args else None
        m, n = key
        if key == RECONSTRUCTOR and len(args) == 3:
            cls, base, state = args
            if type(base) is G and base.key == OBJECT:
                if type(cls) is G:
                    u.use(cls.key, "new")
            elif type(base) is G:
                u.call(base.key, sig_of((state,)))
            maker = cls.key if type(cls) is G else None
        elif key == NEWOBJ and args:
            if type(a0) is G:
                if len(args) == 1:
                    u.use(a0.key, "new")
                else:
                    u.call(a0.key, sig_of(args[1:]))
            maker = a0.key if type(a0) is G else None
        elif key == NEWOBJ_EX and len(args) == 3:
            cls, a, kw = args
            if type(cls) is G:
                if type(a) is tuple and len(a) == 0 and type(kw) is dict and len(kw) == 0:
                    u.use(cls.key, "new")
                else:
                    u.call(cls.key, sig_of(a, kw))
            maker = cls.key if type(cls) is G else None
        elif key == BITGEN_CTOR:
            maker = self._bitgen(args[0] if args else "MT19937")
        elif key in (GENERATOR_CTOR, RANDOMSTATE_CTOR):
            name = args[0] if args else "MT19937"
            ctor = args[1] if len(args) > 1 else (kwargs or {}).get("bit_generator_ctor")
            if type(name) is not Obj:  # an Obj is the bit generator instance itself: no ctor call
                if type(ctor) is G:
                    if ctor.key == BITGEN_CTOR:
                        u.call(ctor.key, sig_of((name,)))
                        self._bitgen(name)
                    else:
                        u.call(ctor.key, sig_of((name,)))
                elif type(ctor) is Obj and ctor.maker is not None:
                    u.use(ctor.maker, "invoke")
            maker = NP_GENERATOR if key == GENERATOR_CTOR else NP_RANDOMSTATE
        elif n == "newObj" and m in SKLEARN_NEWOBJ_MODULES:
            if type(a0) is G:
                u.use(a0.key, "new")
            maker = a0.key if type(a0) is G else None
        elif n.startswith("__pyx_unpickle_"):
            if type(a0) is G:
                u.use(a0.key, "new")
            maker = a0.key if type(a0) is G else None
        elif n in PANDAS_NEW_INDEX and m.startswith("pandas"):
            d = args[1] if len(args) > 1 else kwargs
            if type(a0) is G:
                u.call(a0.key, sig_of((), d))
            maker = a0.key if type(a0) is G else None
        elif is_numpy_reconstruct(key):
            maker = a0.key if type(a0) is G else None  # ref of the subtype: it is imported
        elif key == MARECONSTRUCT and len(args) >= 2:
            if type(args[1]) is G:
                u.use(args[1].key, "ref")
            if type(a0) is G:
                u.call(a0.key, "data,**")
            maker = a0.key if type(a0) is G else None
        elif key in PARTIALS and args:
            if type(a0) is G:
                u.call(a0.key, sig_of(args[1:], kwargs))
            elif type(a0) is Obj and a0.maker is not None:
                u.use(a0.maker, "invoke")
        elif key == GETATTR and len(args) == 2 and type(a0) is G and type(args[1]) is str:
            dotted = G(a0.key[0], a0.key[1] + "." + args[1])
            u.use(dotted.key, "ref")
            return dotted
        elif key == ADD_EXTENSION and len(args) == 3:
            mod, name, code = args
            if type(mod) is str and type(name) is str and type(code) is int and 1 <= code <= 0x7FFFFFFF:
                self.extensions[code] = (mod, name)
        return Obj(maker, args)

    def _bitgen(self, bg):
        if type(bg) is G:
            self.uses.call(bg.key, "")
            return bg.key
        if type(bg) is str and bg in NP_BITGENS:
            return NP_BITGENS[bg]
        return None

    def load_reduce(self):
        args = self.stack.pop()
        func = self.stack[-1]
        self.stack[-1] = self._call(func, args)

    def _newobj(self, cls, args, kwargs):
        if type(cls) is not G:
            raise pickle.UnpicklingError("NEWOBJ class argument is a %s" % kind(cls))
        if type(args) is tuple and len(args) == 0 and (kwargs is None or (type(kwargs) is dict and len(kwargs) == 0)):
            self.uses.use(cls.key, "new")
        else:
            self.uses.call(cls.key, sig_of(args, kwargs))
        return Obj(cls.key, args)

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._newobj(cls, args, None))

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._newobj(cls, args, kwargs))

    def _instantiate(self, klass, args):  # INST and OBJ
        self.append(self._call(klass, tuple(args)))

    def load_obj(self):
        args = self.pop_mark()
        if not args:
            raise pickle.UnpicklingError("OBJ without a class")
        cls = args.pop(0)
        self._instantiate(cls, args)

    # -- BUILD
    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) is G:
            self.uses.use(inst.key, "build-on-class")
            return
        if type(inst) is not Obj:
            return  # a built-in value: CPython would fail (no __setstate__, no __dict__)
        inst.state = state
        if inst.maker is None:
            return
        self.uses.build(inst.maker, state)
        if inst.maker in PARTIALS and type(state) is tuple and len(state) == 4:
            f2, args2, kw2, _ = state
            if type(f2) is G:
                self.uses.call(f2.key, sig_of(args2 if type(args2) is tuple else (), kw2))
            inst.args = (f2,) + (args2 if type(args2) is tuple else ())
        if self.joblib and inst.maker == JOBLIB_WRAPPER:
            self._skip_joblib_payload(inst, state)
            self.stack[-1] = Obj(None)
        elif self.joblib and inst.maker in JOBLIB_LEGACY_WRAPPERS:
            self.stack[-1] = Obj(None)  # data from a companion file, nothing inline

    def _skip_joblib_payload(self, wrapper, state):
        if type(state) is not dict:
            raise pickle.UnpicklingError("NumpyArrayWrapper state is a %s" % kind(state))
        itemsize, hasobject = dtype_info(state.get("dtype"))
        if hasobject:
            inner = _Recorder(self.raw, self.uses, joblib=False, extensions=self.extensions)
            inner.load()
            return
        if state.get("numpy_array_alignment_bytes") is not None:
            pad = self.raw.read(1)
            if len(pad) != 1:
                raise pickle.UnpicklingError("joblib padding byte past the end")
            _read_exact(self.raw, pad[0])
        shape = state.get("shape")
        if type(shape) is not tuple or any(type(x) is not int or x < 0 for x in shape):
            raise pickle.UnpicklingError("NumpyArrayWrapper shape is not a tuple of ints")
        count = 1
        for x in shape:
            count *= x
        _read_exact(self.raw, count * itemsize)

    # -- items
    def _items(self, target, builtin_type):
        if type(target) is builtin_type:
            return True
        if type(target) is G:
            self.uses.use(target.key, "items-on-class")
        elif type(target) is Obj and target.maker is not None:
            self.uses.use(target.maker, "items")
        return False

    def load_append(self):
        value = self.stack.pop()
        target = self.stack[-1]
        if self._items(target, list):
            target.append(value)

    def load_appends(self):
        items = self.pop_mark()
        target = self.stack[-1]
        if self._items(target, list):
            target.extend(items)

    def load_setitem(self):
        value = self.stack.pop()
        key = self.stack.pop()
        target = self.stack[-1]
        if self._items(target, dict):
            target[key] = value

    def load_setitems(self):
        items = self.pop_mark()
        target = self.stack[-1]
        if self._items(target, dict):
            for i in range(0, len(items), 2):
                target[items[i]] = items[i + 1]

    def load_additems(self):
        items = self.pop_mark()
        target = self.stack[-1]
        if self._items(target, set):
            target.update(items)


for _name, _fn in (("REDUCE", _Recorder.load_reduce), ("NEWOBJ", _Recorder.load_newobj),
                   ("NEWOBJ_EX", _Recorder.load_newobj_ex), ("OBJ", _Recorder.load_obj),
                   ("BUILD", _Recorder.load_build), ("APPEND", _Recorder.load_append),
                   ("APPENDS", _Recorder.load_appends), ("SETITEM", _Recorder.load_setitem),
                   ("SETITEMS", _Recorder.load_setitems), ("ADDITEMS", _Recorder.load_additems)):
    _Recorder.dispatch[_OP[_name]] = _fn
# INST: pickle._Unpickler.load_inst calls self.find_class and self._instantiate (both ours);
# EXT1/2/4 call self.get_extension (ours); PERSID/BINPERSID call self.persistent_load (ours);
# NEXT_BUFFER takes from self._buffers (ours).
assert _U.load_inst.__code__.co_names.count("_instantiate") == 1


def _read_exact(f, n):
    while n > 0:
        chunk = f.read(min(n, 1 << 24))
        if not chunk:
            raise pickle.UnpicklingError("joblib array payload past the end")
        n -= len(chunk)


def dtype_info(d):
    """(itemsize, hasobject) of a recorded numpy.dtype(code, align, copy) + BUILD state, from
    the code ("%c%d" of kind and size, FORMATS.md §2.3) and the state's elsize and flags."""
    if type(d) is not Obj or d.maker != NP_DTYPE or not d.args:
        raise pickle.UnpicklingError("NumpyArrayWrapper dtype is not a numpy.dtype")
    code = d.args[0]
    if type(code) is bytes:
        code = code.decode("latin1")
    state = d.state if type(d.state) is tuple else ()
    elsize = state[5] if len(state) >= 8 and type(state[5]) is int else -1
    flags = state[7] if len(state) >= 8 and type(state[7]) is int else 0
    kind_char = code[:1] if type(code) is str else "V"
    hasobject = kind_char == "O" or bool(flags & 1)
    if elsize >= 0:
        return elsize, hasobject
    digits = code[1:] if type(code) is str else ""
    if not digits.isdigit():
        raise pickle.UnpicklingError("dtype %r has no size" % (code,))
    size = int(digits)
    return (size * 4 if kind_char == "U" else size), hasobject


# --------------------------------------------------------------------------- containers

ZIP_MAGIC = b"PK\x03\x04"
NPY_MAGIC = b"\x93NUMPY"
# Archive members read: pickles by name, and containers (read by their magic, else as pickles).
PICKLE_EXTS = (".pkl", ".pickle", ".joblib", ".p", ".sav", ".pt", ".pth", ".npy", ".npz", ".zip", ".tar",
               ".gz", ".gzip", ".bz2", ".xz", ".lzma", ".lz4", ".z")


def _zlib_header(data):
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


def _capped(decompressor, data):
    """One stream through a decompressor object, at most MAX_DECOMPRESSED bytes out."""
    out = decompressor.decompress(data, MAX_DECOMPRESSED + 1)
    if len(out) > MAX_DECOMPRESSED:
        raise ValueError("decompressed stream over %d bytes" % MAX_DECOMPRESSED)
    return out


def _decompress(data):
    """(name, decompressed) if data starts with a compressor's magic, else None."""
    if data[:2] == b"ZF":  # joblib < 0.10: 'ZF' + hex length padded to 19 chars (20 on py2)
        start = 21
        while start < len(data) and data[start:start + 1] == b" ":
            start += 1
        return "zf", _capped(zlib.decompressobj(), data[start:])
    if data[:2] == b"\x1f\x8b":
        return "gzip", _capped(zlib.decompressobj(31), data)
    if data[:3] == b"BZh":
        return "bz2", _capped(bz2.BZ2Decompressor(), data)
    if data[:6] == b"\xfd7zXZ\x00":
        return "xz", _capped(lzma.LZMADecompressor(format=lzma.FORMAT_XZ), data)
    if data[:3] == b"\x5d\x00\x00":
        return "lzma", _capped(lzma.LZMADecompressor(format=lzma.FORMAT_ALONE), data)
    if data[:4] == b"\x04\x22\x4d\x18":
        import lz4.frame  # noqa: PLC0415 (only for .lz4 streams)
        return "lz4", _capped(lz4.frame.LZ4FrameDecompressor(), data)
    if data[:1] == b"\x78" and _zlib_header(data):
        return "zlib", _capped(zlib.decompressobj(), data)
    return None


def _npy_pickle_offset(data):
    """Offset of the pickle inside an object .npy, or None for a plain one."""
    major = data[6]
    if major == 1:
        (hlen,), start = struct.unpack("<H", data[8:10]), 10
    else:
        (hlen,), start = struct.unpack("<I", data[8:12]), 12
    header = data[start:start + hlen].decode("latin1")
    import ast  # noqa: PLC0415
    d = ast.literal_eval(header)  # a dict literal: no code runs
    descr = d.get("descr") if type(d) is dict else None
    if type(descr) is str and descr.lstrip("|<>=").startswith("O"):
        return start + hlen
    if type(descr) is list and "O" in repr(descr):
        return start + hlen
    return None


def _read_pickles(data, uses, persistent=False):
    f = io.BytesIO(data)
    n = 0
    while n < MAX_PICKLES:
        r = _Recorder(f, uses)
        r.load()
        n += 1
        rest = data[f.tell():f.tell() + 1]
        if not rest or rest != b"\x80":
            break
    return n


def uses_into(data, uses, name="", notes=None, depth=0, expect_pickle=True):
    """Reads one file's bytes (any container) into `uses`. `notes` collects what was read.
    `expect_pickle`: bytes that are no container are read as a pickle (a file given to us, a
    decompressed stream); archive members are read only when their names end in PICKLE_EXTS
    (raw storages and other data members are not pickles)."""
    notes = [] if notes is None else notes
    if depth > 8:
        notes.append("%s: nested too deep" % name)
        return notes
    if data[:4] == ZIP_MAGIC:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for info in z.infolist():
                if info.is_dir():
                    continue
                if info.filename.lower().endswith(PICKLE_EXTS):
                    uses_into(z.read(info), uses, name + "!" + info.filename, notes, depth + 1, True)
                else:
                    notes.append("%s!%s: skipped (not a pickle)" % (name, info.filename))
        return notes
    if len(data) > 262 and data[257:262] == b"ustar":
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            for m in t.getmembers():
                if m.isfile() and m.name.lower().endswith(PICKLE_EXTS):
                    uses_into(t.extractfile(m).read(), uses, name + "!" + m.name, notes, depth + 1, True)
                elif m.isfile():
                    notes.append("%s!%s: skipped (not a pickle)" % (name, m.name))
        return notes
    if data[:6] == NPY_MAGIC:
        off = _npy_pickle_offset(data)
        if off is not None:
            _read_pickles(data[off:], uses)
            notes.append("%s: npy object pickle" % name)
        return notes
    dec = _decompress(data)
    if dec is not None:
        kind_, inner = dec
        notes.append("%s: %s" % (name, kind_))
        return uses_into(inner, uses, name + "|" + kind_, notes, depth + 1, True)
    base = name.rsplit("!", 1)[-1].lower()
    if expect_pickle or base.endswith(PICKLE_EXTS):
        n = _read_pickles(data, uses)
        notes.append("%s: %d pickle(s)" % (name, n))
    else:
        notes.append("%s: skipped (not a pickle)" % name)
    return notes


def uses_of_bytes(data: bytes) -> dict:
    """{"module name": {"uses": [...], "call_sigs": [...], "build_states": [...]}} of one file."""
    uses = Uses()
    uses_into(bytes(data), uses)
    return uses.as_dict()


# --------------------------------------------------------------------------- merging


class Evidence:
    def __init__(self):
        self.g = {}
        self.sources = {}

    def add(self, source, per_file):
        self.sources[source] = self.sources.get(source, 0) + 1
        for key, e in per_file.items():
            t = self.g.setdefault(key, {"uses": set(), "call_sigs": set(), "build_states": set(), "files": 0})
            t["uses"].update(e["uses"])
            t["call_sigs"].update(e["call_sigs"])
            t["build_states"].update(e["build_states"])
            t["files"] += 1

    def as_dict(self):
        return {
            "sources": dict(sorted(self.sources.items())),
            "globals": {k: {"uses": sorted(v["uses"], key=USE_ORDER.index), "call_sigs": sorted(v["call_sigs"]),
                            "build_states": sorted(v["build_states"]), "files": v["files"]}
                        for k, v in sorted(self.g.items())},
        }


# --------------------------------------------------------------------------- evidence


def _manifest(folder):
    with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as f:
        return json.load(f)


def evidence_files():
    """(source, path) of every benign fixture the real libraries wrote (see the brief in
    fixtures/README.md, "Real-library fixtures")."""
    fix = os.path.join(ROOT, "fixtures")
    out = []
    for e in _manifest(os.path.join(fix, "benign")):
        if e["file"] != "torch_state_dict_data.pkl":  # emitted byte by byte, no torch
            out.append(("benign", os.path.join(fix, "benign", e["file"])))
    for e in _manifest(os.path.join(fix, "joblib")):
        out.append(("joblib", os.path.join(fix, "joblib", e["file"])))
    for e in _manifest(os.path.join(fix, "containers")):
        made_by = e.get("made_by", "")
        if e["expect_rules"] or "field by field" in made_by or "SYNTHETIC" in e.get("description", ""):
            continue
        out.append(("containers", os.path.join(fix, "containers", e["file"])))
    legacy = os.path.join(fix, "containers", "legacy")
    for f in sorted(os.listdir(legacy)):
        if f.endswith(".npy"):  # companions of joblib 0.9 files (object arrays: a pickle after the header)
            out.append(("containers", os.path.join(legacy, f)))
    for e in _manifest(os.path.join(fix, "extract")):
        if "byte by byte" in e.get("made_by", ""):
            continue
        out.append(("extract", os.path.join(fix, "extract", e["file"])))
    real = os.path.join(fix, "real")
    if os.path.isdir(real):
        for e in _manifest(real):
            out.append(("real", os.path.join(real, e["file"])))
    return out


_ENV_PINS = {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
             "MKL_NUM_THREADS": "1", "TZ": "UTC", "LC_ALL": "C.UTF-8"}

# Estimators left out of the in-memory corpus: slow on tiny data, or a known nuisance.
ESTIMATOR_SKIP = set()
FIT_SECONDS = 2.0


def _constructor_args():
    """Estimators that cannot be built with defaults (meta-estimators), or whose defaults do
    not fit tiny data, get these arguments: a small base estimator, a few components."""
    from sklearn.decomposition import PCA  # noqa: PLC0415
    from sklearn.linear_model import LogisticRegression, Ridge  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    lr = lambda: LogisticRegression(max_iter=200)  # noqa: E731
    return {
        "ClassifierChain": lambda: {"estimator": lr()},
        "ColumnTransformer": lambda: {"transformers": [("s", StandardScaler(), [0, 1])], "remainder": "passthrough"},
        "FeatureUnion": lambda: {"transformer_list": [("p", PCA(n_components=1)), ("s", StandardScaler())]},
        "FixedThresholdClassifier": lambda: {"estimator": lr()},
        "FrozenEstimator": lambda: {"estimator": lr().fit(*_tiny_data()[:2])},
        "GaussianRandomProjection": lambda: {"n_components": 2},
        "GridSearchCV": lambda: {"estimator": lr(), "param_grid": {"C": [0.1, 1.0]}, "cv": 3},
        "Pipeline": lambda: {"steps": [("s", StandardScaler()), ("lr", lr())]},
        "RandomizedSearchCV": lambda: {"estimator": lr(), "param_distributions": {"C": [0.1, 1.0, 10.0]}, "n_iter": 2,
                                       "cv": 3},
        "MultiOutputClassifier": lambda: {"estimator": lr()},
        "MultiOutputRegressor": lambda: {"estimator": Ridge()},
        "OneVsOneClassifier": lambda: {"estimator": lr()},
        "OneVsRestClassifier": lambda: {"estimator": lr()},
        "OutputCodeClassifier": lambda: {"estimator": lr()},
        "RFE": lambda: {"estimator": lr()},
        "RFECV": lambda: {"estimator": lr()},
        "RegressorChain": lambda: {"estimator": Ridge()},
        "SelectFromModel": lambda: {"estimator": lr()},
        "SelfTrainingClassifier": lambda: {"estimator": lr()},
        "SequentialFeatureSelector": lambda: {"estimator": lr(), "n_features_to_select": 2},
        "SparseCoder": lambda: {"dictionary": np.eye(4)[:2]},
        "SparseRandomProjection": lambda: {"n_components": 2},
        "StackingClassifier": lambda: {"estimators": [("lr", lr()), ("dt", DecisionTreeClassifier(random_state=0))]},
        "StackingRegressor": lambda: {"estimators": [("r", Ridge()), ("dt", DecisionTreeRegressor(random_state=0))]},
        "TSNE": lambda: {"perplexity": 5.0},
        "TunedThresholdClassifierCV": lambda: {"estimator": lr()},
        "VotingClassifier": lambda: {"estimators": [("lr", lr()), ("dt", DecisionTreeClassifier(random_state=0))]},
        "VotingRegressor": lambda: {"estimators": [("r", Ridge()), ("dt", DecisionTreeRegressor(random_state=0))]},
    }


def _tiny_data():
    import numpy as np  # noqa: PLC0415
    rng = np.random.RandomState(0)
    X = rng.rand(30, 4)
    y_clf = np.array([0, 1, 2] * 10)
    y_reg = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.rand(30)
    docs = ["the cat sat", "the dog ran", "a cat and a dog", "the end"] * 5
    return X, y_clf, y_reg, docs


def _fit_estimator(name, cls, kind_, data, ctor_args):
    import numpy as np  # noqa: PLC0415
    X, y_clf, y_reg, docs = data
    try:
        est = cls(**ctor_args[name]()) if name in ctor_args else cls()
        if "random_state" in est.get_params():
            est.set_params(random_state=0)
    except Exception:  # noqa: BLE001 - needs constructor arguments
        return None, "needs arguments"
    y = y_reg if kind_ == "regressor" else y_clf
    tries = [
        lambda: est.fit(X, y),
        lambda: est.fit(X),
        lambda: est.fit(X, (y_clf == 0).astype(int)),
        lambda: est.fit(X, np.c_[y_reg, 2 * y_reg + 1]),
        lambda: est.fit(X, np.c_[y_clf == 0, y_clf == 1].astype(int)),
        lambda: est.fit(X, np.abs(y_reg) + 0.1),
        lambda: est.fit(X @ X.T),
        lambda: est.fit(np.abs(X) * 10, y_clf),
        lambda: est.fit((X * 10).astype(int), y_clf),
        lambda: est.fit(X[:, 0], y),
        lambda: est.fit(docs),
        lambda: est.fit(docs, y_clf[:len(docs)]),
        lambda: est.fit([{"a": 1, "b": 2}, {"a": 3}] * 5),
        lambda: est.fit([[1, 2], [2, 3], [1]] * 5),
        lambda: est.fit(y_clf),
        lambda: est.fit(rng_images()),
    ]
    last = ""
    for t in tries:
        start = time.perf_counter()
        try:
            t()
        except Exception as e:  # noqa: BLE001
            last = type(e).__name__
            continue
        if time.perf_counter() - start > FIT_SECONDS:
            return None, "slow"
        return est, "fitted"
    return None, "fit failed (%s)" % last


def rng_images():
    import numpy as np  # noqa: PLC0415
    return np.random.RandomState(0).rand(2, 8, 8)


def sklearn_corpus(ev, log):
    import warnings  # noqa: PLC0415
    warnings.filterwarnings("ignore")
    from sklearn.utils import all_estimators  # noqa: PLC0415
    data = _tiny_data()
    ctor_args = _constructor_args()
    fitted, skipped = [], []
    seen = set()
    todo = []
    for kind_ in ("classifier", "regressor", "cluster", "transformer", None):
        for name, cls in all_estimators(type_filter=kind_):
            if name not in seen:
                seen.add(name)
                todo.append((name, cls, kind_ or "other"))
    for name, cls, kind_ in sorted(todo):
        if name in ESTIMATOR_SKIP:
            skipped.append((name, "skip list"))
            continue
        est, why = _fit_estimator(name, cls, kind_, data, ctor_args)
        if est is None:
            skipped.append((name, why))
            continue
        ok = True
        blobs = []
        for proto in (2, 4, 5):
            try:
                blobs.append(pickle.dumps(est, protocol=proto))
            except Exception as e:  # noqa: BLE001
                skipped.append((name, "not picklable (%s)" % type(e).__name__))
                ok = False
                break
        if not ok:
            continue
        for proto, blob in zip((2, 4, 5), blobs):
            ev.add("sklearn_memory", uses_of_bytes(blob))
        fitted.append(name if name not in ctor_args else name + "*")
    log("sklearn in-memory corpus: %d estimators fitted and pickled at 2/4/5 (* = with the arguments of "
        "_constructor_args), %d skipped" % (len(fitted), len(skipped)))
    log("  fitted: " + " ".join(fitted))
    for name, why in skipped:
        log("  skipped %s: %s" % (name, why))
    return fitted, skipped


def evidence_text(result):
    """The evidence as JSON, one line per global (sorted, deterministic, diff-friendly)."""
    lines = ["{", ' "sources": ' + json.dumps(result["sources"], sort_keys=True) + ",", ' "globals": {']
    items = list(result["globals"].items())
    for i, (k, v) in enumerate(items):
        lines.append("  %s: %s%s" % (json.dumps(k), json.dumps(v, ensure_ascii=False), "," if i + 1 < len(items) else ""))
    lines += [" }", "}"]
    return "\n".join(lines) + "\n"


def run_evidence(out_path):
    start = time.perf_counter()
    ev = Evidence()
    log = lambda s: print(s, file=sys.stderr)  # noqa: E731
    errors = []
    for source, path in evidence_files():
        try:
            with open(path, "rb") as f:
                data = f.read()
            ev.add(source, uses_of_bytes(data))
        except Exception as e:  # noqa: BLE001
            errors.append("%s: %s: %s" % (os.path.relpath(path, ROOT), type(e).__name__, e))
    for e in errors:
        log("ERROR " + e)
    t_files = time.perf_counter() - start
    sklearn_corpus(ev, log)
    result = ev.as_dict()
    text = evidence_text(result)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)
    total = time.perf_counter() - start
    log("files: %.1f s; total %.1f s; %d globals; sources %s -> %s"
        % (t_files, total, len(result["globals"]), json.dumps(result["sources"]), os.path.relpath(out_path, ROOT)))
    return 1 if errors else 0


# --------------------------------------------------------------------------- self check


def self_check():
    """Hand-made pickles of stdlib objects (pickle.dumps of values built here) give the
    expected uses. Returns the number of failures."""
    import collections  # noqa: PLC0415
    import datetime  # noqa: PLC0415
    import decimal  # noqa: PLC0415
    import functools  # noqa: PLC0415
    import pathlib  # noqa: PLC0415

    class _Plain:  # a class of this module: pickled by reference, never loaded
        pass

    class _Slots:
        __slots__ = ("a",)

    plain = _Plain()
    plain.x = 1
    slots = _Slots()
    slots.a = 2
    globals()["_Plain"] = _Plain
    globals()["_Slots"] = _Slots
    _Plain.__qualname__ = "_Plain"
    _Slots.__qualname__ = "_Slots"
    here = __name__
    partial = functools.partial(int, base=2)
    partial.__doc__ = "parse a binary numeral"
    cases = [
        # (description, object, protocol, expected subset {"module name": (uses, sigs)})
        ("set at p2 is a REDUCE of builtins.set with a list", {1, 2}, 2,
         {"builtins set": (["ref", "call"], ["list"])}),
        ("set at p4 needs no global", {1, 2}, 4, {}),
        ("OrderedDict: REDUCE () then SETITEMS", collections.OrderedDict(a=1), 2,
         {"collections OrderedDict": (["ref", "call", "items"], [""])}),
        ("defaultdict(list): call with a class, then items", collections.defaultdict(list, a=[1]), 4,
         {"collections defaultdict": (["ref", "call", "items"], ["class"]), "builtins list": (["ref"], [])}),
        ("deque: call, APPENDS", collections.deque([1, 2]), 4,
         {"collections deque": (["ref", "call", "items"], [""])}),
        ("deque with maxlen: call with a tuple and an int", collections.deque([1], 3), 4,
         {"collections deque": (["ref", "call", "items"], ["tuple,int"])}),
        ("Counter: call with a dict", collections.Counter("aab"), 4,
         {"collections Counter": (["ref", "call"], ["dict"])}),
        ("bytes at p2: _codecs.encode(str, str)", b"\x00\xff", 2,
         {"_codecs encode": (["ref", "call"], ["str,str"])}),
        ("datetime: call with bytes", datetime.datetime(2020, 1, 2, 3, 4, 5), 4,
         {"datetime datetime": (["ref", "call"], ["bytes"])}),
        ("aware datetime: bytes + a timezone call", datetime.datetime(2020, 1, 2, tzinfo=datetime.timezone.utc), 4,
         {"datetime datetime": (["ref", "call"], ["bytes,data"]), "datetime timezone": (["ref", "call"], ["data"]),
          "datetime timedelta": (["ref", "call"], ["int,int,int"])}),
        ("Decimal: call with str", decimal.Decimal("1.5"), 2,
         {"decimal Decimal": (["ref", "call"], ["str"])}),
        ("PurePosixPath: call with strs", pathlib.PurePosixPath("a/b"), 4,
         {"pathlib PurePosixPath": (["ref", "call"], ["str,str"])}),
        ("plain instance at p1: copyreg._reconstructor(X, object, None) + BUILD dict", plain, 1,
         {"copyreg _reconstructor": (["ref", "call"], ["class,class,none"]), here + " _Plain": (["ref", "new", "build"], []),
          "builtins object": (["ref"], [])}),
        ("plain instance at p2: NEWOBJ () + BUILD", plain, 2,
         {here + " _Plain": (["ref", "new", "build"], [])}),
        ("slots instance at p4: BUILD with slot state", slots, 4,
         {here + " _Slots": (["ref", "new", "build"], [])}),
        ("functools.partial: call of partial (class), call of int, BUILD with the 4-tuple", partial, 4,
         {"functools partial": (["ref", "call", "build"], ["class"]), "builtins int": (["ref", "call"], ["", "**"])}),
        ("a class by reference", _Plain, 4, {here + " _Plain": (["ref"], [])}),
    ]
    failures = 0
    for desc, obj, proto, expected in cases:
        got = uses_of_bytes(pickle.dumps(obj, protocol=proto))
        problems = []
        for key, (uses, sigs) in expected.items():
            e = got.get(key)
            if e is None:
                problems.append("%s missing" % key)
                continue
            if e["uses"] != uses:
                problems.append("%s uses %s, expected %s" % (key, e["uses"], uses))
            if e["call_sigs"] != sorted(sigs):
                problems.append("%s call_sigs %s, expected %s" % (key, e["call_sigs"], sorted(sigs)))
        if not expected and got:
            problems.append("expected no globals, got %s" % sorted(got))
        status = "ok  " if not problems else "FAIL"
        failures += bool(problems)
        print("%s %s (p%d)" % (status, desc, proto))
        for p in problems:
            print("       " + p)
    slot = uses_of_bytes(pickle.dumps(slots, protocol=4))[here + " _Slots"]["build_states"]
    if slot != ["tuple(none,dict)"]:
        print("FAIL slot state recorded as %s" % slot)
        failures += 1
    else:
        print("ok   slot state recorded as tuple(none,dict)")
    # Launderers written opcode by opcode (protocol 0 text): no object was pickled.
    hand = [
        ("_reconstructor with a base other than object: call of the base",
         b"ccopy_reg\n_reconstructor\n(cm\nC\nc__builtin__\ndict\n(dp0\ntR.",
         {"copyreg _reconstructor": (["ref", "call"], ["class,class,dict"]), "builtins dict": (["ref", "call"], ["dict"]),
          "m C": (["ref"], [])}),
        ("getattr(X, 'a') then a call of X.a",
         b"c__builtin__\ngetattr\n(cm\nC\nVa\ntR(I1\ntR.",
         {"builtins getattr": (["ref", "call"], ["class,str"]), "m C.a": (["ref", "call"], ["int"])}),
        ("calling an instance: invoke",
         b"cm\nC\n)R)R.", {"m C": (["ref", "call", "invoke"], [""])}),
        ("BUILD on a class: build-on-class",
         b"cm\nC\n(dp0\nVa\nI1\nsb.", {"m C": (["ref", "build-on-class"], [])}),
        ("items on an instance made by X",
         b"\x80\x02cm\nC\n)\x81(K\x01K\x02e.", {"m C": (["ref", "new", "items"], [])}),
        ("NEWOBJ_EX with keywords: call with **",
         b"\x80\x04\x8c\x01m\x8c\x01C\x93)}\x8c\x01k\x88s\x92.", {"m C": (["ref", "call"], ["**"])}),
        ("__newobj__(X, 1): call of X with int",
         b"\x80\x02ccopyreg\n__newobj__\ncm\nC\nK\x01\x86R.",
         {"copyreg __newobj__": (["ref", "call"], ["class,int"]), "m C": (["ref", "call"], ["int"])}),
        ("__pyx_unpickle_C(X, 1, None): new of X",
         b"\x80\x02cm\n__pyx_unpickle_C\ncm\nC\nK\x01N\x87R.",
         {"m __pyx_unpickle_C": (["ref", "call"], ["class,int,none"]), "m C": (["ref", "new"], [])}),
    ]
    for desc, data, expected in hand:
        got = uses_of_bytes(data)
        problems = []
        for key, (uses, sigs) in expected.items():
            e = got.get(key)
            if e is None:
                problems.append("%s missing (got %s)" % (key, sorted(got)))
                continue
            if e["uses"] != uses or e["call_sigs"] != sorted(sigs):
                problems.append("%s: %s %s, expected %s %s" % (key, e["uses"], e["call_sigs"], uses, sorted(sigs)))
        status = "ok  " if not problems else "FAIL"
        failures += bool(problems)
        print("%s %s" % (status, desc))
        for p in problems:
            print("       " + p)
    failures += _check_joblib_offsets()
    print("%d failure(s)" % failures)
    return failures


def _check_joblib_offsets():
    """The joblib payloads skipped are exactly those joblib maps: for every benign dump of
    fixtures/joblib and fixtures/containers, each (offset, nbytes) of the manifest's
    memmap_payloads/stream_payloads is one raw read of the skipper."""
    global _read_exact
    reads = []
    real_read = _read_exact

    def spy(f, n):
        reads.append((f.tell(), n))
        return real_read(f, n)

    checked = bad = 0
    _read_exact = spy
    try:
        for folder in ("joblib", "containers"):
            path = os.path.join(ROOT, "fixtures", folder)
            if not os.path.exists(os.path.join(path, "manifest.json")):
                continue
            for e in _manifest(path):
                want = e.get("memmap_payloads") or e.get("stream_payloads")
                if not want or e.get("expect_rules"):
                    continue
                del reads[:]
                with open(os.path.join(path, e["file"]), "rb") as f:
                    uses_of_bytes(f.read())
                missing = [w for w in want if tuple(w) not in reads]
                checked += 1
                if missing:
                    bad += 1
                    print("FAIL joblib payloads of %s/%s: %s not skipped as joblib reads them" % (folder, e["file"], missing))
    finally:
        _read_exact = real_read
    print("%s joblib payload offsets of %d benign dumps match their manifests" % ("ok  " if not bad else "FAIL", checked))
    return bad


# --------------------------------------------------------------------------- CLI


def _print_text(path, per_file):
    print(path)
    for key, e in per_file.items():
        extra = ""
        if e["call_sigs"]:
            extra += " call(" + " | ".join(s if s else "()" for s in e["call_sigs"]) + ")"
        if e["build_states"]:
            extra += " build[" + " | ".join(e["build_states"]) + "]"
        print("  %-60s %s%s" % (key, " ".join(e["uses"]), extra))


def main(argv):
    as_json = "--json" in argv
    argv = [a for a in argv if a != "--json"]
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.split("\n=====")[0])
        return 0
    if argv[0] == "--self-check":
        return 1 if self_check() else 0
    if argv[0] == "--evidence":
        if any(os.environ.get(k) != v for k, v in _ENV_PINS.items()):
            os.execve(sys.executable, [sys.executable, *sys.argv], dict(os.environ, **_ENV_PINS))
        out = os.path.join(ROOT, "scripts", "data", "uses_evidence.json")
        if "--out" in argv:
            out = argv[argv.index("--out") + 1]
        return run_evidence(out)
    rc = 0
    for path in argv:
        try:
            with open(path, "rb") as f:
                per_file = uses_of_bytes(f.read())
        except Exception as e:  # noqa: BLE001
            print("%s: error: %s: %s" % (path, type(e).__name__, e), file=sys.stderr)
            rc = 1
            continue
        if as_json:
            print(json.dumps({"file": path, "globals": per_file}))
        else:
            _print_text(path, per_file)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Recording unpickler: CPython's own C unpickler, with every global replaced by a stub.

Usage:
    python3 scripts/oracle.py FILE...            one JSON line per file
    python3 scripts/oracle.py --list PATHS.txt   the same, paths read from a file (one a line)

For each file, the C unpickler (`_pickle`) reads it in four ways, because CPython's handling
of FRAME and of reads differs between them:

    loads     pickle.loads(data)                      whole input in one in-memory buffer
    bytesio   Unpickler(io.BytesIO(data)).load()      file object without peek()
    file      Unpickler(open(path, 'rb')).load()      buffered file: has peek(), prefetches
    rawfile   Unpickler(open(path, 'rb', buffering=0)).load()   unbuffered FileIO, no peek()

The three file modes call load() again while bytes remain (back-to-back pickles, as a reader
of a stream would); `pickle.loads` reads the first pickle only. Every mode records, in
stream order, the normalised events that pkinspect's `pkinspect trace` also prints (see
src/view/trace.rs for the format); the first exception ends a mode.

Each file is read in a forked child with CPU-time, address-space, file-size and process
limits and a wall-clock timeout; the parent only collects JSON.

=====================================================================================
WHY NO CODE OTHER THAN THE STUBS CAN RUN  (review this block together with the code)
=====================================================================================

An unpickler runs code in exactly these ways: it imports globals (GLOBAL, STACK_GLOBAL,
INST, EXT1/2/4); it calls objects (REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ, the __setstate__
of BUILD, the extend/append of APPEND(S), __setitem__ of SETITEM(S), add of ADDITEMS); it
looks up attributes (BUILD's __setstate__ and __dict__, setattr for BUILD's slot state,
APPEND's extend/append, ADDITEMS' add, INST/OBJ's __getinitargs__ and __new__); it hands
persistent ids to persistent_load and asks the `buffers` iterable for NEXT_BUFFER; and it
hashes and compares dict keys and set items. Everything else it does is C code on the
built-in types its opcodes create (None, bool, int, float, str, bytes, bytearray, tuple,
list, dict, set, frozenset) and on memoryview (READONLY_BUFFER).

1. Which objects can be reached. The values on the unpickler's stack are: the built-in
   values above (made by C code from the bytes); whatever find_class returned; whatever a
   call returned; whatever persistent_load returned; whatever the buffers iterator
   returned; a memoryview of one of those. The pickle cannot name any other object: there
   is no opcode that reaches a module, a builtin or an attribute except through
   find_class, and no opcode that reaches the Unpickler object itself.

2. find_class never resolves anything real. In the three file modes the Unpickler is
   `_OracleUnpickler`, a subclass of the C `_pickle.Unpickler` whose find_class (which the
   C code calls by method lookup on self for GLOBAL, STACK_GLOBAL, INST and EXT) records
   the name and returns the stub class for that (module, name), made on first use. It
   never calls the default find_class, never imports and never reads sys.modules. So
   `os.system`, `builtins.eval`, `__builtin__.getattr`, `copyreg.add_extension`: every
   name, including every builtin reached through `builtins`/`__builtin__`, is a stub.

3. pickle.loads cannot be given a find_class (it builds a private base-class unpickler),
   so for that one call the import machinery its default find_class uses is replaced.
   CPython's find_class does: audit event "pickle.find_class" -> Python 2 name mapping
   (C dict lookups) -> PyImport_Import(module) -> getattr (or, protocol 4+, one getattr
   per dotted component). PyImport_Import takes `__import__` from the `__builtins__` of
   the *calling Python frame's globals*, calls it, then returns sys.modules[module]. We
   call pickle.loads from `_loads_trampoline`, a function whose globals are
   {'__builtins__': {'__import__': _stub_import}}: so the only `__import__` it can reach
   is `_stub_import`, which puts a `_StubModule` into sys.modules[module] (the real entry,
   if any, is saved) and returns it; the sys.modules lookup that immediately follows
   therefore returns our stub, every time. Attribute access on a `_StubModule` (and on
   the `_PathProxy` for dotted names) returns only stub classes. After loads returns or
   raises, sys.modules is restored entry by entry. Equivalent, safe choice: we shadow
   exactly each name at the moment it is imported instead of emptying sys.modules,
   because an empty sys.modules is *less* safe: any import made by CPython internals in
   that window would re-execute real module source from disk, whereas with the cache in
   place such an import (there is none on the unpickling paths of _pickle.c in 3.11)
   could only return an already-initialised module. The audit hook (point 10) records
   the names and refuses any other audited action meanwhile.

4. Stub classes (`_StubMeta` instances, one per (module, name) per mode) and stub
   instances (`_StubBase` subclasses' instances, returned by every call, __new__ and
   persistent_load) define every entry point the unpickler uses, and only record:
   calling a stub class goes to `_StubMeta.__call__` (never type.__call__, so no
   __init__ runs), NEWOBJ's tp_new and INST/OBJ's `cls.__new__(cls)` go to
   `_StubBase.__new__`, calling an instance goes to `_StubBase.__call__`; each records the
   call and returns a fresh stub instance made with object.__new__ (calling a class gives
   an instance of that class, so a `__setstate__` planted on the class by BUILD applies to
   it, as for a real Python class). `__getattribute__` of
   both answers only the names the unpickler asks for (`__new__`, `__getinitargs__` (absent),
   `__setstate__` (only if planted by an earlier BUILD), `__dict__`, `append` and `add`
   (recording callables; `extend` is absent so APPEND falls back to one append per item,
   as pkinspect models it)), and raises AttributeError for every other name, so no real
   method of `object` or `type` is handed out. `__setattr__` (BUILD slot state) stores
   into a private dict, so a pickle can never change a stub class or replace its
   methods; `__setitem__` records. Hashing and equality are object's identity defaults.

5. What the extension registry (copyreg) does with stubs. EXT1/2/4 look a code up in
   copyreg._inverted_registry, then call find_class(module, name) (a stub, point 2/3)
   and cache the result in copyreg._extension_cache. The registry starts empty in
   CPython (checked at start-up) and is emptied before every mode. When the stub of
   `copyreg.add_extension` (or Python 2's `copy_reg.add_extension`) is called, the stub
   reproduces the real function's effect on those two dicts (in `_emulate_add_extension`,
   on values of built-in types only; `int()` of a built-in value is C code), so EXT then
   resolves as in CPython, and only ever to a stub.

6. `__reduce__`/`__reduce_ex__` of stubs: the unpickler never calls them (only
   pickling does, and this script never pickles). They are defined to raise anyway, and
   nothing here calls repr/str/format on an object from the stream except the stubs' own
   `__repr__` (used by CPython in error messages), which returns a constant.

7. Built-in values cannot run code: none of the built-in types above has
   `__setstate__` or `__getinitargs__` (checked at start-up), their `extend`/`append`/
   `__setitem__`/`add` are C methods, and `int()`/`hash()`/`==` on them are C code. A stub
   instance has no `__index__`, `__int__`, `__eq__`, `__hash__` override, `__del__` or
   `__iter__`, so the C code that coerces, hashes or frees them runs no Python.

8. Warnings: CPython's escape decoders warn (DeprecationWarning for "\\777" or "\\u" in a
   STRING). Every warning is filtered out ("ignore", set at start-up), so the C warnings
   module drops it without running warnings.py or linecache (the tripwire caught those
   reading source files before the filter was set). If the stream has shadowed
   sys.modules['warnings'] in loads mode, the C code only reads a stub's attribute and
   raises.

9. The `buffers` iterator (`_Buffers`) and `persistent_load` are ours: they record and
   return a PickleBuffer over an empty bytearray, and a stub instance, respectively.

10. Defence in depth, none of which the argument above relies on: each file is read in a
   forked child that drops to uid/gid 65534 when started as root, with RLIMIT_CPU,
   RLIMIT_AS, RLIMIT_FSIZE=0 (no file can be written) and RLIMIT_NPROC=0 (no process can
   be started), and a wall-clock timeout; and an audit hook, armed only while a pickle is
   being read, raises on every audit event except "pickle.find_class" (recorded, loads
   mode) and CPython printing an internal error ("sys.excepthook"/"sys.unraisablehook").
   Any tripped event is reported and makes scripts/differential.py fail. The child's stderr
   goes to /dev/null.

The stubs make the oracle *maximal*: every global exists, every call succeeds, every
object accepts append/add/__setitem__. Real objects can do less (CPython would stop with
an error earlier), never more, so every import and call recorded here is one a real
loader could make given suitable globals.

Never load a fixture with Python in any other way (fixtures/README.md, "Safety rule").
"""

import io
import json
import os
import pickle
import resource
import select
import signal
import struct
import sys
import types
import warnings
import copyreg
import _compat_pickle  # noqa: F401  (imported so no mapping import can happen later)

MODES = ("loads", "bytesio", "file", "rawfile")
MAX_PICKLES = 1000  # pkinspect's MAX_PICKLES_PER_FILE
CPU_SECONDS = 10  # per file, all modes together
ADDRESS_SPACE = 2 << 30  # bytes
WALL_SECONDS = 30.0
SHORT_STR = 1024  # UTF-8 bytes up to which a str argument's value is compared
SHORT_BYTES = 32

# --------------------------------------------------------------------------- recording


class _Recorder:
    """Per-mode state: the events, the stubs made so far, pending BUILD/INST markers."""

    __slots__ = ("events", "classes", "pickle", "setstate_hook", "inst_probe", "loads_pending", "saved_modules")

    def __init__(self):
        self.events = []
        self.classes = {}
        self.pickle = 0
        self.setstate_hook = _NOTHING  # the planted __setstate__ handed out by the last BUILD lookup
        self.inst_probe = _NOTHING  # the class whose __getinitargs__ was just probed (INST/OBJ)
        self.loads_pending = None  # (module, name) from the last "pickle.find_class" audit event
        self.saved_modules = {}


_NOTHING = object()
_REC = [None]  # the current _Recorder
_ARMED = [False]  # True only while a pickle is being read
_TRIPPED = []  # audit events refused while armed


def _emit(record):
    rec = _REC[0]
    record["pickle"] = rec.pickle
    rec.events.append(record)


def _norm_text(s):
    """pkinspect's text has no lone surrogates: each is replaced by U+FFFD."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in s)


def _dotted(module, name):
    return _norm_text(module) + "." + _norm_text(name)


def _shape(v):
    """The normalised shape of one value (see src/view/trace.rs). Only type() identity tests and
    C methods of built-in types are used: no method of a stream object is called."""
    t = type(v)
    if v is None:
        return "None"
    if t is bool:
        return "True" if v else "False"
    if t is int:
        if -(1 << 63) <= v < (1 << 63):
            return "int:%d" % v
        return "int"
    if t is float:
        return "float:" + struct.pack(">d", v).hex()
    if t is str:
        s = _norm_text(v)
        if len(s.encode("utf-8")) <= SHORT_STR:
            return "str:" + s
        return "str"
    if t is bytes:
        if len(v) <= SHORT_BYTES:
            return "bytes:" + v.hex()
        return "bytes"
    if t is bytearray or t is memoryview or t is pickle.PickleBuffer:
        return "buffer"
    if t is tuple:
        return "tuple/%d" % len(v)
    if t is list:
        return "list"
    if t is dict:
        return "dict"
    if t is set:
        return "set"
    if t is frozenset:
        return "frozenset"
    if t is _StubMeta:
        return "global:" + type.__getattribute__(v, "_pk_name")
    if type(t) is _StubMeta:
        return "object"
    return "other"


def _callable_name(f):
    if type(f) is _StubMeta:
        return type.__getattribute__(f, "_pk_name")
    return "<indirect>"


def _record_call(kind, target, args):
    rec = _REC[0]
    if kind == "call" and rec.setstate_hook is target:
        kind = "setstate"
    rec.setstate_hook = _NOTHING
    rec.inst_probe = _NOTHING
    _emit({"op": "call", "kind": kind, "callable": _callable_name(target), "args": [_shape(a) for a in args]})


def _record_import(module, name):
    _emit({"op": "import", "module": _norm_text(module), "name": _norm_text(name)})


def _emulate_add_extension(args):
    """What copyreg.add_extension(module, name, code) does to the registry, on built-in
    values only (anything else makes the real function raise, and so does this)."""
    if len(args) != 3:
        raise TypeError("add_extension() takes 3 arguments")
    module, name, code = args
    if type(code) is _StubMeta or type(type(code)) is _StubMeta:
        # int() of a stub: no __int__/__index__/__trunc__, so TypeError (said, not tried).
        raise TypeError("int() argument must be a string, a bytes-like object or a real number")
    code = int(code)  # the other values are of built-in types: C code
    if not 1 <= code <= 0x7FFFFFFF:
        raise ValueError("code out of range")
    key = (module, name)
    if copyreg._extension_registry.get(key) == code and copyreg._inverted_registry.get(code) == key:
        return
    if key in copyreg._extension_registry:
        raise ValueError("key is already registered")
    if code in copyreg._inverted_registry:
        raise ValueError("code is already in use")
    copyreg._extension_registry[key] = code
    copyreg._inverted_registry[code] = key


_ADD_EXTENSION = {"copyreg.add_extension", "copy_reg.add_extension"}


def _new_instance(cls):
    obj = object.__new__(cls)
    object.__setattr__(obj, "_pk_attrs", {})
    return obj


class _Method:
    """What `obj.append` / `obj.add` returns for a stub: calling it records a method call."""

    __slots__ = ("_target", "_kind")

    def __init__(self, target, kind):
        self._target = target
        self._kind = kind

    def __call__(self, *args):
        _record_call(self._kind, self._target, args)
        return None

    def __reduce_ex__(self, protocol):
        raise TypeError("not picklable")


# ------------------------------------------------------------------------------- stubs


class _StubMeta(type):
    """The type of every stub class. Calling a stub class records a call."""

    def __call__(cls, *args, **kwargs):
        _record_call("call", cls, args)
        if type.__getattribute__(cls, "_pk_name") in _ADD_EXTENSION:
            _emulate_add_extension(args)
        # An instance of the class, as a class's constructor returns: a __setstate__ planted
        # on the class by an earlier BUILD applies to it.
        return _new_instance(cls)

    def __getattribute__(cls, name):
        if name == "__new__":
            # slot_tp_new (NEWOBJ) and instantiate() (INST/OBJ) fetch __new__ this way.
            return type.__getattribute__(cls, "__new__")
        if name == "__getinitargs__":
            # instantiate() probes this right before cls.__new__(cls) for INST/OBJ with no args.
            _REC[0].inst_probe = cls
            raise AttributeError(name)
        planted = type.__getattribute__(cls, "_pk_cattrs")
        if name == "__setstate__":
            _emit({"op": "build", "target": type.__getattribute__(cls, "_pk_name")})
            if name in planted:
                _REC[0].setstate_hook = planted[name]
                return planted[name]
            raise AttributeError(name)
        if name == "__dict__":
            # A class's __dict__ is a read-only mapping proxy: BUILD with a dict state fails.
            return types.MappingProxyType({})
        if name == "append" or name == "add":
            return _Method(cls, name)
        raise AttributeError(name)

    def __setattr__(cls, name, value):
        type.__getattribute__(cls, "_pk_cattrs")[name] = value

    def __delattr__(cls, name):
        raise AttributeError(name)

    def __setitem__(cls, key, value):
        _record_call("setitem", cls, (key, value))

    def __repr__(cls):
        return "<stub class>"

    def __reduce_ex__(cls, protocol):
        raise TypeError("not picklable")


class _StubBase(metaclass=_StubMeta):
    """Base of every stub class; its instances are what calls return."""

    __slots__ = ("_pk_attrs",)
    _pk_name = "<stub>"
    _pk_cattrs = {}

    def __new__(cls, *args, **kwargs):
        kind = "new_inst" if _REC[0].inst_probe is cls else "new"
        _record_call(kind, cls, args)
        return _new_instance(cls)

    def __init__(self, *args, **kwargs):
        # Never reached (no path calls type.__call__ on a stub); recorded if it ever is.
        _record_call("init", self, args)

    def __call__(self, *args, **kwargs):
        _record_call("call", self, args)
        return _new_instance(_RESULT)

    def __getattribute__(self, name):
        attrs = object.__getattribute__(self, "_pk_attrs")
        if name == "__setstate__":
            _emit({"op": "build", "target": "<indirect>"})
            if name in attrs:
                hook = attrs[name]
            else:
                hook = type.__getattribute__(type(self), "_pk_cattrs").get(name, _NOTHING)
            if hook is _NOTHING:
                raise AttributeError(name)
            _REC[0].setstate_hook = hook
            return hook
        if name == "__dict__":
            return attrs
        if name == "append" or name == "add":
            return _Method(self, name)
        raise AttributeError(name)

    def __setattr__(self, name, value):
        object.__getattribute__(self, "_pk_attrs")[name] = value

    def __delattr__(self, name):
        raise AttributeError(name)

    def __setitem__(self, key, value):
        _record_call("setitem", self, (key, value))

    def __repr__(self):
        return "<stub>"

    def __reduce_ex__(self, protocol):
        raise TypeError("not picklable")

    def __reduce__(self):
        raise TypeError("not picklable")


def _stub_class(module, name):
    """The stub class for a written (module, name), made on first use in this mode."""
    rec = _REC[0]
    key = (module, name)
    cls = rec.classes.get(key)
    if cls is None:
        # The class's own name is a constant: names from the stream may hold NULs or
        # surrogates that type() refuses. The stream's name is kept in _pk_name.
        cls = _StubMeta("Stub", (_StubBase,), {"__slots__": (), "_pk_name": _dotted(module, name), "_pk_cattrs": {}})
        rec.classes[key] = cls
    return cls


_RESULT = _StubMeta("Stub", (_StubBase,), {"__slots__": (), "_pk_name": "<result>", "_pk_cattrs": {}})


class _Buffers:
    """The `buffers` iterable: one empty PickleBuffer per NEXT_BUFFER, recorded."""

    __slots__ = ()

    def __iter__(self):
        return self

    def __next__(self):
        _emit({"op": "buffer"})
        return pickle.PickleBuffer(bytearray())


class _OracleUnpickler(pickle.Unpickler):
    """The C unpickler with find_class and persistent_load replaced (file modes)."""

    def find_class(self, module, name):
        _record_import(module, name)
        return _stub_class(module, name)

    def persistent_load(self, pid):
        _emit({"op": "persid", "pid": _shape(pid)})
        return _new_instance(_RESULT)


_C_PICKLE = sys.modules.get("_pickle")
assert pickle.Unpickler is getattr(_C_PICKLE, "Unpickler", None), "the C unpickler is required"
assert pickle.loads is getattr(_C_PICKLE, "loads", None), "the C pickle.loads is required"

# ------------------------------------------------------------------ pickle.loads support


class _StubModule:
    """What sys.modules[name] holds while pickle.loads runs: every attribute is a stub."""

    __slots__ = ("_pk_module",)

    def __getattribute__(self, attr):
        pending = _REC[0].loads_pending
        if pending is None:
            return _stub_class(object.__getattribute__(self, "_pk_module"), attr)
        module, name = pending
        parts = name.split(".")
        if len(parts) > 1 and attr == parts[0] and attr != name:
            # Protocol 4+: one getattr per dotted component.
            proxy = object.__new__(_PathProxy)
            object.__setattr__(proxy, "_pk_left", len(parts) - 1)
            return proxy
        return _stub_class(module, name)

    def __setattr__(self, attr, value):
        raise AttributeError(attr)

    def __repr__(self):
        return "<stub module>"


class _PathProxy:
    """An intermediate component of a dotted name (protocol 4+, pickle.loads mode)."""

    __slots__ = ("_pk_left",)

    def __getattribute__(self, attr):
        left = object.__getattribute__(self, "_pk_left") - 1
        if left == 0:
            module, name = _REC[0].loads_pending
            return _stub_class(module, name)
        proxy = object.__new__(_PathProxy)
        object.__setattr__(proxy, "_pk_left", left)
        return proxy

    def __setattr__(self, attr, value):
        raise AttributeError(attr)

    def __repr__(self):
        return "<stub path>"


_MISSING = object()


def _stub_import(name, globals=None, locals=None, fromlist=(), level=0):
    """The only __import__ reachable from _loads_trampoline: shadows sys.modules[name]."""
    rec = _REC[0]
    if name not in rec.saved_modules:
        rec.saved_modules[name] = sys.modules.get(name, _MISSING)
    mod = object.__new__(_StubModule)
    object.__setattr__(mod, "_pk_module", name)
    sys.modules[name] = mod
    return mod


def _loads_trampoline(loads, data, buffers):
    return loads(data, buffers=buffers)


# The same code with globals whose __builtins__ offers nothing but _stub_import.
_LOADS = types.FunctionType(_loads_trampoline.__code__, {"__builtins__": {"__import__": _stub_import}}, "_loads_trampoline")


def _restore_modules():
    rec = _REC[0]
    for name, old in rec.saved_modules.items():
        if old is _MISSING:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = old
    rec.saved_modules.clear()


# ------------------------------------------------------------------------ audit hook

# CPython printing an error it cannot raise (seen: "deallocated bytearray object has exported
# buffers" when a file-mode BYTEARRAY8 read fails with MemoryError under RLIMIT_AS). Printing
# calls the default hooks on C exception objects; no stream object's method is involved.
_AUDIT_ALLOWED = frozenset({"sys.excepthook", "sys.unraisablehook"})


def _audit(event, args):
    if not _ARMED[0]:
        return
    if event == "pickle.find_class":
        module, name = args
        _record_import(module, name)
        _REC[0].loads_pending = (module, name)
        return
    if event in _AUDIT_ALLOWED:
        return
    _TRIPPED.append(event)
    raise RuntimeError("oracle tripwire: audit event %r while unpickling" % (event,))


# --------------------------------------------------------------------------- reading


def _quiet_warnings():
    """CPython's decoders warn on invalid escapes (STRING "\\777", "\\u" in bytes). With the
    default filters a warning attributed to __main__ is *shown*, which runs warnings.py and
    linecache (reading source files): stdlib code, but code. With every warning ignored, the C
    warnings module drops it after a filter lookup and runs no Python code."""
    warnings.simplefilter("ignore")


def _startup_checks():
    for t in (type(None), bool, int, float, str, bytes, bytearray, tuple, list, dict, set, frozenset, memoryview, pickle.PickleBuffer):
        for attr in ("__setstate__", "__getinitargs__"):
            assert not hasattr(t, attr), (t, attr)
    assert not copyreg._extension_registry and not copyreg._inverted_registry and not copyreg._extension_cache


def _reset_registry():
    copyreg._extension_registry.clear()
    copyreg._inverted_registry.clear()
    copyreg._extension_cache.clear()


def _run_mode(mode, data, opened):
    """Reads one input in one mode; returns the mode's result dict."""
    rec = _Recorder()
    _REC[0] = rec
    _reset_registry()
    del _TRIPPED[:]
    status = "ok"
    error = None
    message = ""
    _ARMED[0] = True
    try:
        if mode == "loads":
            try:
                _LOADS(pickle.loads, data, _Buffers())
            finally:
                _restore_modules()
        else:
            f = io.BytesIO(data) if mode == "bytesio" else opened[mode]
            size = len(data)
            while rec.pickle < MAX_PICKLES:
                _OracleUnpickler(f, buffers=_Buffers()).load()
                if f.tell() >= size:
                    break
                rec.pickle += 1
    except BaseException as e:  # noqa: B902 - every failure ends the mode; MemoryError too
        status = "error"
        error = type(e).__name__
        # Only a message that is already a str (made by C code or by us): no str() of stream objects.
        message = e.args[0] if e.args and type(e.args[0]) is str else ""
    finally:
        _ARMED[0] = False
    out = {"mode": mode, "status": status, "events": rec.events}
    if error:
        out["error"] = error
        out["message"] = message[:200]
        out["error_pickle"] = rec.pickle
    if _TRIPPED:
        out["tripped"] = list(_TRIPPED)
    return out


def _child(path, wfd, modes):
    """In the forked child: limits, privileges, then every mode; one JSON line per mode."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS + 1))
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    with open(path, "rb") as f:
        data = f.read()
    opened = {}
    if "file" in modes:
        opened["file"] = open(path, "rb")
    if "rawfile" in modes:
        opened["rawfile"] = open(path, "rb", buffering=0)
    # CPython's own error printing (see _AUDIT_ALLOWED) would clutter the caller's terminal.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    for mode in modes:
        out = _run_mode(mode, data, opened)
        line = (json.dumps(out) + "\n").encode()
        while line:
            n = os.write(wfd, line)
            line = line[n:]


def read_one(path, modes=MODES):
    """Forks a child to read `path`; returns {"path", "modes": {mode: result}}."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(rfd)
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            _child(path, wfd, modes)
        except BaseException:  # noqa: B902
            code = 3
        finally:
            os._exit(code)
    os.close(wfd)
    chunks = []
    deadline = _now() + WALL_SECONDS
    killed = None
    while True:
        left = deadline - _now()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            killed = "timeout"
            break
        ready, _, _ = select.select([rfd], [], [], left)
        if not ready:
            continue
        chunk = os.read(rfd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(rfd)
    _, wstatus = os.waitpid(pid, 0)
    if killed is None and os.WIFSIGNALED(wstatus):
        killed = "signal %d" % os.WTERMSIG(wstatus)
    elif killed is None and os.WEXITSTATUS(wstatus) != 0:
        killed = "exit %d" % os.WEXITSTATUS(wstatus)
    results = {}
    for line in b"".join(chunks).split(b"\n"):
        if line.strip():
            try:
                r = json.loads(line)
            except ValueError:
                continue
            results[r.pop("mode")] = r
    for mode in modes:
        if mode not in results:
            results[mode] = {"status": "killed", "why": killed or "no output", "events": []}
    return {"path": path, "modes": results}


def _now():
    return os.times().elapsed


def main(argv):
    paths = []
    modes = MODES
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--list":
            with open(argv[i + 1], encoding="utf-8") as f:
                paths.extend(line.rstrip("\n") for line in f if line.strip())
            i += 2
        elif a == "--modes":
            modes = tuple(argv[i + 1].split(","))
            i += 2
        elif a in ("-h", "--help"):
            print(__doc__.split("\n=====")[0])
            return 0
        else:
            paths.append(a)
            i += 1
    _startup_checks()
    _quiet_warnings()
    sys.addaudithook(_audit)
    out = sys.stdout
    for p in paths:
        out.write(json.dumps(read_one(p, modes)) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

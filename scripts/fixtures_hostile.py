"""Hostile pickle fixtures, written opcode by opcode with pickle_emit.Emitter.

SAFETY: these byte strings are never unpickled by Python (not here, not in
tests).  They are built by hand; no malicious object is ever pickled.  The
only payloads are the harmless commands ECHO and TOUCH below.

Each entry: (file name, bytes, expect_rules, description).  expect_rules
lists only rules that MUST be reported; a scanner may report more.
"""

from __future__ import annotations

import struct

from pickle_emit import Emitter

ECHO = "echo pkinspect-fixture"
TOUCH = "touch /tmp/pkinspect-marker"

DANGER = ["PK101", "PK102"]  # dangerous-import + dangerous-call


def E() -> Emitter:
    return Emitter()


def _benign_p4_dict() -> bytes:
    """Hand-written equivalent of pickle.dumps({'model': 'ok'}, protocol=4)."""
    e = E().proto(4).begin_frame()
    e.empty_dict().memoize()
    e.short_binunicode("model").memoize().short_binunicode("ok").memoize().setitem()
    e.stop().end_frame()
    return e.bytes()


def _os_system_p0(cmd: str = ECHO) -> bytes:
    return E().global_("os", "system").mark().string(cmd).tuple_().reduce().stop().bytes()


def _call_p2(module: str, name: str, arg: str = ECHO) -> Emitter:
    """PROTO 2, GLOBAL module name, (arg,) REDUCE -- without STOP."""
    return E().proto(2).global_(module, name).binunicode(arg).tuple1().reduce()


def build() -> list[tuple[str, bytes, list[str], str]]:
    out: list[tuple[str, bytes, list[str], str]] = []

    def add(name: str, data: bytes | Emitter, rules: list[str], desc: str) -> None:
        if isinstance(data, Emitter):
            data = data.bytes()
        out.append((name, data, rules, desc))

    # ------------------------------------------------------------------
    # Plain dangerous globals
    # ------------------------------------------------------------------
    add("os_system_global_p0.pkl", _os_system_p0(), DANGER,
        "Protocol 0: GLOBAL 'os system', MARK, STRING 'echo pkinspect-fixture', TUPLE, REDUCE.")

    add("posix_system_p0.pkl",
        E().global_("posix", "system").mark().string(TOUCH).tuple_().reduce().stop(),
        DANGER, "Protocol 0: GLOBAL 'posix system' called with 'touch /tmp/pkinspect-marker'.")

    add("nt_system_p1.pkl",
        E().global_("nt", "system").mark().binunicode(ECHO).tuple_().reduce().stop(),
        DANGER, "Protocol 1 (no PROTO opcode): GLOBAL 'nt system' (Windows os) called via BINUNICODE arg.")

    add("py2_builtin_eval_p0.pkl",
        E().global_("__builtin__", "eval").mark()
        .string("__import__('os').system('echo pkinspect-fixture')").tuple_().reduce().stop(),
        DANGER, "Protocol 0: Python-2 name GLOBAL '__builtin__ eval' (maps to builtins.eval), "
                "STRING arg with escaped quotes.")

    add("builtins_exec_p2.pkl",
        _call_p2("builtins", "exec", "import os; os.system('echo pkinspect-fixture')").stop(),
        DANGER, "Protocol 2: GLOBAL 'builtins exec' with a source-code string, TUPLE1, REDUCE.")

    add("subprocess_popen_list_p2.pkl",
        E().proto(2).global_("subprocess", "Popen").binput(0)
        .empty_list().binput(1).mark().binunicode("echo").binunicode("pkinspect-fixture").appends()
        .tuple1().reduce().stop(),
        DANGER, "Protocol 2: subprocess.Popen(['echo', 'pkinspect-fixture']) - list argument built "
                "with EMPTY_LIST MARK ... APPENDS.")

    # ------------------------------------------------------------------
    # STACK_GLOBAL
    # ------------------------------------------------------------------
    e = E().proto(4).begin_frame()
    e.sg("os", "system").short_binunicode(ECHO).memoize().tuple1().memoize().reduce().memoize()
    e.stop().end_frame()
    add("stack_global_os_system_p4.pkl", e, DANGER,
        "Protocol 4 with FRAME: SHORT_BINUNICODE 'os', 'system' (MEMOIZEd), STACK_GLOBAL, "
        "args TUPLE1, REDUCE. Exactly what CPython writes for such a call.")

    e = E().proto(4).begin_frame()
    e.empty_list().memoize()                                           # memo 0: list
    e.mark().short_binunicode("os").memoize()                          # memo 1
    e.short_binunicode("system").memoize()                             # memo 2
    e.short_binunicode("unrelated").memoize().appends()                # memo 3
    e.binget(1).binget(2).stack_global().memoize()                     # os.system
    e.short_binunicode(ECHO).memoize().tuple1().reduce()
    e.tuple2().stop().end_frame()
    add("stack_global_binget_operands_p4.pkl", e, DANGER,
        "Protocol 4: the strings 'os' and 'system' are first stored in a list (memo 1 and 2); "
        "STACK_GLOBAL later takes its operands from BINGET 1, BINGET 2. They are still plain "
        "strings, so this must resolve to os.system (PK108 computed-global should NOT fire).")

    # ------------------------------------------------------------------
    # INST / OBJ / NEWOBJ / NEWOBJ_EX
    # ------------------------------------------------------------------
    add("inst_os_system_p0.pkl",
        E().mark().string(ECHO).inst("os", "system").stop(), DANGER,
        "Protocol 0: MARK, STRING arg, INST 'os system' (INST imports and calls in one opcode).")

    add("obj_subprocess_popen_p1.pkl",
        E().mark().global_("subprocess", "Popen").empty_list().mark()
        .binunicode("echo").binunicode("pkinspect-fixture").appends().obj().stop(),
        DANGER, "Protocol 1: MARK, GLOBAL 'subprocess Popen', list arg, OBJ "
                "(class and args taken from the mark slice).")

    e = E().proto(4).begin_frame()
    e.sg("subprocess", "Popen").empty_list().memoize().mark()
    e.short_binunicode("echo").memoize().short_binunicode("pkinspect-fixture").memoize().appends()
    e.tuple1().memoize().newobj().memoize().stop().end_frame()
    add("newobj_subprocess_popen_p4.pkl", e, DANGER,
        "Protocol 4: STACK_GLOBAL subprocess.Popen, args tuple, NEWOBJ (cls.__new__(cls, *args)).")

    e = E().proto(4).begin_frame()
    e.sg("subprocess", "Popen").empty_list().memoize().mark()
    e.short_binunicode("echo").memoize().short_binunicode("pkinspect-fixture").memoize().appends()
    e.tuple1().memoize()
    e.empty_dict().memoize().short_binunicode("shell").memoize().newfalse().setitem()
    e.newobj_ex().memoize().stop().end_frame()
    add("newobj_ex_subprocess_popen_p4.pkl", e, DANGER,
        "Protocol 4: STACK_GLOBAL subprocess.Popen, args tuple, kwargs {'shell': False}, NEWOBJ_EX.")

    # ------------------------------------------------------------------
    # Extension codes registered in-stream
    # ------------------------------------------------------------------
    def ext_variant(kind: str, code: int) -> Emitter:
        e = E().proto(2).global_("copyreg", "add_extension").mark()
        e.binunicode("os").binunicode("system")
        if kind == "ext1":
            e.binint1(code)
        elif kind == "ext2":
            e.binint2(code)
        else:
            e.binint(code)
        e.tuple_().reduce().pop()
        getattr(e, kind)(code)
        return e.binunicode(ECHO).tuple1().reduce().stop()

    for kind, code in (("ext1", 0xF0), ("ext2", 0x1234), ("ext4", 0x01020304)):
        add(f"{kind}_registered_os_system_p2.pkl", ext_variant(kind, code), ["PK102", "PK107"],
            f"Protocol 2: REDUCE(copyreg.add_extension, ('os', 'system', {code:#x})) POP registers "
            f"an extension code in-stream, then {kind.upper()} {code:#x} pushes os.system, which is "
            f"called with ('{ECHO}',). The scanner must resolve the code to os.system (or at least "
            f"flag the add_extension call as dangerous).")

    add("ext1_unregistered_p2.pkl",
        E().proto(2).ext1(1).binunicode(ECHO).tuple1().reduce().stop(), ["PK107"],
        "Protocol 2: EXT1 1 with no in-stream registration (CPython's registry is empty by default), "
        "then called. Callable unknown statically.")

    # ------------------------------------------------------------------
    # Memo tricks
    # ------------------------------------------------------------------
    e = E().proto(2).global_("os", "system").binput(0).pop()
    e.empty_list().binput(1).binint1(1).append().pop()          # unrelated benign noise
    e.binget(0).binunicode(ECHO).tuple1().reduce().stop()
    add("memo_put_pop_get_p2.pkl", e, DANGER,
        "Memo trick (a): GLOBAL 'os system', BINPUT 0, POP; benign list pushed and popped; "
        "BINGET 0, args, REDUCE. The callable reaches REDUCE only through the memo.")

    e = E().proto(2).global_("os", "system").dup().binput(0).pop()
    e.binget(0).binunicode(ECHO).tuple1().reduce().tuple2().stop()
    add("memo_dup_put_p2.pkl", e, DANGER,
        "Memo trick (b): GLOBAL 'os system', DUP, BINPUT 0, POP, BINGET 0, args, REDUCE, "
        "TUPLE2 (result is (os.system, 0)).")

    e = E().proto(2).global_("collections", "OrderedDict").binput(0).pop()
    e.global_("os", "system").binput(0).pop()
    e.binget(0).binunicode(ECHO).tuple1().reduce().stop()
    add("memo_overwrite_slot_p2.pkl", e, DANGER + ["PK204"],
        "Memo trick (c): memo slot 0 first holds collections.OrderedDict (benign), then BINPUT 0 "
        "overwrites it with os.system; BINGET 0 + REDUCE calls os.system. A scanner that keeps the "
        "first value would think OrderedDict is called. Overwriting a defined slot is a memo anomaly.")

    e = E().proto(4).begin_frame()
    e.short_binunicode("pad").long_binput(70000).pop()                  # memo {70000}; len 1
    e.short_binunicode("collections").short_binunicode("OrderedDict").stack_global()
    e.binput(2).pop()                                                   # memo {70000, 2}; len 2
    e.short_binunicode("os").short_binunicode("system").stack_global()
    e.memoize().pop()                                                   # MEMOIZE -> index len(memo) = 2 !
    e.binget(2).short_binunicode(ECHO).tuple1().reduce()
    e.stop().end_frame()
    add("memo_memoize_index_arithmetic_p4.pkl", e, DANGER + ["PK204"],
        "Memo trick (d): LONG_BINPUT 70000 (memo len 1), benign OrderedDict stored with BINPUT 2 "
        "(len 2), then os.system is MEMOIZEd: MEMOIZE uses index len(memo) == 2, overwriting the "
        "OrderedDict slot (not 70001, not 'count of MEMOIZE ops' == 0). BINGET 2 + REDUCE calls os.system.")

    e = E().proto(2).global_("os", "system").binget(7).reduce().stop()
    add("memo_get_undefined_p2.pkl", e, ["PK101", "PK204"],
        "BINGET 7 of a memo slot that was never defined, used as the argument of os.system.")

    # ------------------------------------------------------------------
    # Computed / dotted globals
    # ------------------------------------------------------------------
    e = E().proto(4).begin_frame()
    e.sg("_codecs", "decode")
    e.short_binunicode("bf").memoize().short_binunicode("rot13").memoize().tuple2().memoize()
    e.reduce().memoize()                                  # -> 'os' at runtime
    e.short_binunicode("system").memoize().stack_global().memoize()
    e.short_binunicode(ECHO).memoize().tuple1().memoize().reduce().memoize()
    e.stop().end_frame()
    add("computed_stack_global_rot13_p4.pkl", e, ["PK108"],
        "STACK_GLOBAL whose module operand is computed: REDUCE(_codecs.decode, ('bf', 'rot13')) "
        "== 'os' at load time; name 'system'; the result is then called with an echo command. "
        "Statically the callable is unresolvable (PK105 indirect-call also expected).")

    e = E().proto(4).begin_frame()
    e.sg("random", "_os.system").short_binunicode(ECHO).memoize().tuple1().memoize().reduce().memoize()
    e.stop().end_frame()
    add("dotted_random_os_system_p4.pkl", e, ["PK109"],
        "Protocol 4 STACK_GLOBAL('random', '_os.system'): find_class walks the dotted path, "
        "random._os is the os module, so this calls os.system.")

    e = E().proto(2).global_("builtins", "getattr").global_("subprocess", "os")
    e.binunicode("system").tuple2().reduce()              # getattr(subprocess.os, 'system')
    e.binunicode(ECHO).tuple1().reduce().stop()
    add("getattr_subprocess_os_system_p2.pkl", e, DANGER,
        "REDUCE(builtins.getattr, (GLOBAL 'subprocess os', 'system')) then the result is called "
        "with ('echo pkinspect-fixture',). GLOBAL 'subprocess os' is the os module (attribute of "
        "subprocess). The final call is indirect (PK105 also expected).")

    # ------------------------------------------------------------------
    # BUILD / __setstate__ hijack
    # ------------------------------------------------------------------
    e = E().proto(2).global_("collections", "OrderedDict").empty_tuple().newobj()
    e.none().empty_dict().binunicode("__setstate__").global_("os", "system").setitem().tuple2()
    e.build()                                               # setattr(inst, '__setstate__', os.system)
    e.binunicode(ECHO).build()                              # inst.__setstate__('echo ...')
    e.stop()
    add("setstate_hijack_ordereddict_p2.pkl", e, ["PK101", "PK106"],
        "OrderedDict instance via EMPTY_TUPLE NEWOBJ; BUILD with slotstate (None, {'__setstate__': "
        "os.system}) sets an instance attribute; a second BUILD with the string 'echo "
        "pkinspect-fixture' makes load_build call inst.__setstate__(state) == os.system(...).")

    # ------------------------------------------------------------------
    # Higher-order callables and nested deserialisers
    # ------------------------------------------------------------------
    e = E().proto(2).global_("functools", "partial").global_("os", "system")
    e.binunicode(ECHO).tuple2().reduce().empty_tuple().reduce().stop()
    add("functools_partial_os_system_p2.pkl", e, DANGER,
        "REDUCE(functools.partial, (os.system, 'echo pkinspect-fixture')) then the partial is "
        "called with EMPTY_TUPLE REDUCE.")

    e = E().proto(2).global_("operator", "methodcaller")
    e.binunicode("system").binunicode(ECHO).tuple2().reduce()
    e.global_("subprocess", "os").tuple1().reduce().stop()
    add("operator_methodcaller_p2.pkl", e, DANGER,
        "REDUCE(operator.methodcaller, ('system', 'echo pkinspect-fixture')) then called with "
        "(GLOBAL 'subprocess os',) i.e. os.system('echo pkinspect-fixture').")

    inner_benign = (E().proto(3).empty_dict().binput(0).binunicode("a").binput(1)
                    .binint1(1).setitem().stop().bytes())
    add("nested_pickle_loads_p3.pkl",
        E().proto(3).global_("pickle", "loads").binbytes(inner_benign).tuple1().reduce().stop(),
        DANGER, "REDUCE(pickle.loads, (BINBYTES <inner pickle>,)). The inner pickle is benign "
                "(protocol 3 {'a': 1}); the nested deserialiser call is what is dangerous.")

    add("nested_pickle_loads_echo_inner_p3.pkl",
        E().proto(3).global_("pickle", "loads").binbytes(_os_system_p0()).tuple1().reduce().stop(),
        DANGER, "REDUCE(pickle.loads, (BINBYTES <inner>,)) where the inner pickle is "
                "os_system_global_p0.pkl (os.system('echo pkinspect-fixture')). A recursing scanner "
                "may also report the inner call.")

    add("numpy_load_p2.pkl",
        _call_p2("numpy", "load", "/tmp/pkinspect-fixture-does-not-exist.npy").stop(), DANGER,
        "REDUCE(numpy.load, ('/tmp/pkinspect-fixture-does-not-exist.npy',)): a nested "
        "deserialiser (np.load can unpickle object arrays).")

    add("torch_load_p2.pkl",
        _call_p2("torch", "load", "/tmp/pkinspect-fixture-does-not-exist.pt").stop(), DANGER,
        "REDUCE(torch.load, ('/tmp/pkinspect-fixture-does-not-exist.pt',)): nested deserialiser "
        "(GLOBAL 'torch load').")

    # ------------------------------------------------------------------
    # Broken streams
    # ------------------------------------------------------------------
    add("truncated_after_reduce_p0.pkl",
        E().global_("os", "system").mark().string(ECHO).tuple_().reduce().raw(b"S'unterminat"),
        DANGER + ["PK202"],
        "Protocol 0 os.system call, then the stream ends inside a STRING argument (no newline, no STOP).")

    add("truncated_mid_binunicode_p2.pkl",
        _call_p2("os", "system").raw(b"X" + struct.pack("<I", 32) + b"abc"),
        DANGER + ["PK202"],
        "Protocol 2 os.system call, then BINUNICODE declaring 32 bytes with only 3 present; no STOP.")

    add("unknown_opcode_after_reduce_p2.pkl",
        _call_p2("os", "system").raw(b"\xff").stop(), DANGER + ["PK201"],
        "Protocol 2 os.system call, then the undefined opcode byte 0xff, then STOP.")

    add("benign_then_malicious.pkl", _benign_p4_dict() + _os_system_p0(), DANGER + ["PK208"],
        "Two pickles in one file: a benign protocol-4 {'model': 'ok'} (what pickle.load returns "
        "first) followed by the protocol-0 os.system pickle (what a second pickle.load would run).")

    add("trailing_zeros_after_stop_p4.pkl", _benign_p4_dict() + b"\x00" * 16, ["PK207"],
        "Benign protocol-4 {'model': 'ok'} followed by 16 zero bytes of trailing data "
        "(0x00 is not an opcode, so this is not a second pickle).")

    # ------------------------------------------------------------------
    # Framing and protocol violations
    # ------------------------------------------------------------------
    body = E().short_binunicode("os").memoize().short_binunicode("system").bytes()
    cut = len(body) - 3                                  # frame ends inside 'system' ('sys|tem')
    e = E().proto(4).frame(cut).raw(body)
    e.memoize().stack_global().memoize().short_binunicode(ECHO).memoize().tuple1().reduce().stop()
    add("frame_cross_short_binunicode_p4.pkl", e, DANGER + ["PK206"],
        f"Protocol 4: FRAME of length {cut} ends in the middle of the SHORT_BINUNICODE 'system' "
        "argument (after 'sys'); the rest is outside any frame. CPython's C unpickler accepts it "
        "(frames are only checked for availability), the pure-Python one does not.")

    head = E().sg("os", "system").bytes()
    argop = E().binbytes(ECHO.encode()).bytes()
    cut = len(head) + 5 + 8                             # opcode + 4-byte length + 'echo pki'
    e = E().proto(4).frame(cut).raw(head).raw(argop).tuple1().reduce().stop()
    add("frame_cross_binbytes_p4.pkl", e, DANGER + ["PK206"],
        f"Protocol 4: FRAME of length {cut} ends in the middle of the BINBYTES argument "
        "b'echo pkinspect-fixture' of an os.system call (after 'echo pki').")

    e = E().proto(2).binunicode("os").binunicode("system").stack_global()
    e.binunicode(ECHO).tuple1().reduce().stop()
    add("opcode_above_protocol_p2.pkl", e, DANGER + ["PK205"],
        "PROTO 2 followed by STACK_GLOBAL (a protocol-4 opcode) with BINUNICODE 'os', 'system'. "
        "CPython does not check opcode protocol levels, so it loads.")

    e = E().proto(2).global_(b"pkinspect_fixture\x1b[31m", b"red\x1b[0m")
    e.binunicode(ECHO).tuple1().reduce().stop()
    add("terminal_escape_global_p2.pkl", e, ["PK103", "PK104"],
        "GLOBAL whose module and name contain ANSI terminal escapes: "
        "'pkinspect_fixture\\x1b[31m' . 'red\\x1b[0m', called with an echo string. Output must "
        "escape these bytes.")

    add("stack_underflow_reduce_p2.pkl", E().proto(2).global_("os", "system").reduce().stop(),
        ["PK101", "PK203"], "REDUCE with only one item (os.system) on the stack.")

    # ------------------------------------------------------------------
    # Out-of-band buffer (PK111)
    # ------------------------------------------------------------------
    out_e = E().proto(5).begin_frame()
    out_e.sg("numpy._core.numeric", "_frombuffer").mark().next_buffer().readonly_buffer()
    out_e.sg("numpy", "dtype").short_binunicode("i8").memoize().newfalse().newtrue().tuple3().memoize()
    out_e.reduce().memoize()
    out_e.mark().binint1(3).short_binunicode("<").memoize().none().none().none()
    out_e.binint(-1).binint(-1).binint1(0).tuple_().memoize().build()
    out_e.binint1(5).tuple1().memoize().short_binunicode("C").memoize().tuple_().memoize()
    out_e.reduce().memoize().stop().end_frame()
    add("next_buffer_frombuffer_p5.pkl", out_e, ["PK111"],
        "Protocol 5: numpy._core.numeric._frombuffer(NEXT_BUFFER READONLY_BUFFER, dtype('<i8'), "
        "(5,), 'C') - the shape numpy writes with buffer_callback. The array data is out-of-band "
        "(not in the file); pickle.loads fails without buffers=.")

    # ------------------------------------------------------------------
    # Limits / speed
    # ------------------------------------------------------------------
    n = 100_000
    e = E().proto(2).global_("os", "system").binput(0).pop()
    e.raw(b"(" * n).raw(b"l" * n)                        # 100k nested MARK ... LIST
    e.binget(0).binunicode(ECHO).tuple1().reduce().tuple2().stop()
    add("deep_marks_100k_p2.pkl", e, ["PK101"],
        "GLOBAL 'os system' memoised first, then 100,000 MARKs closed by 100,000 LIST opcodes "
        "(list nested 100,000 deep; mark stack 100,000 deep), then BINGET 0 + REDUCE os.system. "
        "Tests limits: a scanner may stop with PK209 limit-exceeded, but must have reported the "
        "import first; if it continues it must report PK102.")

    e = E().proto(2).global_("os", "system").binput(0).pop()
    e.raw(b"]" * n).raw(b"a" * (n - 1))                  # 100k EMPTY_LIST, 99,999 APPEND
    e.binget(0).binunicode(ECHO).tuple1().reduce().tuple2().stop()
    add("deep_lists_100k_p2.pkl", e, ["PK101"],
        "GLOBAL 'os system' memoised first, then 100,000 EMPTY_LIST (stack 100,000 deep) folded by "
        "99,999 APPEND into one 100,000-deep nested list, then os.system call. May trigger PK209.")

    e = E().proto(2).raw(b"N0" * 500_000)                # 1,000,000 opcodes
    e.global_("os", "system").binunicode(ECHO).tuple1().reduce().stop()
    add("long_stream_1m_ops_p2.pkl", e, [],
        "1,000,000 opcodes (500,000 NONE/POP pairs) followed by an os.system call at the very end. "
        "Speed/limit test: a full scan reports PK101+PK102; a scanner with an op-count limit "
        "reports PK209 instead.")

    # joblib-format hostile files (scripts/fixtures_joblib_hostile.py)
    from fixtures_joblib_hostile import build as build_joblib
    for entry in build_joblib():
        add(*entry)
    return out

"""Tiny opcode-level pickle emitter used to write the hostile fixtures.

Nothing here ever pickles or unpickles a Python object: every method appends
the raw bytes of one opcode (plus its argument) to a buffer, following the
CPython 3.11 ``pickletools`` opcode table (FORMATS.md Appendix A).  This lets
the fixtures contain streams that no real pickler would write (memo tricks,
frames that end mid-argument, opcodes above the declared protocol, ...).

Usage::

    e = Emitter().proto(2).global_("os", "system")
    e.binunicode("echo pkinspect-fixture").tuple1().reduce().stop()
    data = e.bytes()

Framing (protocol 4+): ``begin_frame()`` writes a FRAME opcode with a
placeholder length, ``end_frame()`` patches the length to cover everything
written since.  ``frame(n)`` writes a FRAME with an explicit (possibly wrong)
length.
"""

from __future__ import annotations

import struct


class Emitter:
    def __init__(self) -> None:
        self.buf = bytearray()
        self._frame_at: int | None = None

    # -- plumbing ---------------------------------------------------------
    def raw(self, data: bytes) -> "Emitter":
        self.buf += data
        return self

    def bytes(self) -> bytes:
        if self._frame_at is not None:
            raise RuntimeError("unterminated frame")
        return bytes(self.buf)

    def __len__(self) -> int:
        return len(self.buf)

    # -- protocol / framing -------------------------------------------------
    def proto(self, n: int) -> "Emitter":
        return self.raw(b"\x80" + bytes([n]))

    def frame(self, length: int) -> "Emitter":
        return self.raw(b"\x95" + struct.pack("<Q", length))

    def begin_frame(self) -> "Emitter":
        self.raw(b"\x95" + b"\0" * 8)
        self._frame_at = len(self.buf)
        return self

    def end_frame(self) -> "Emitter":
        start = self._frame_at
        assert start is not None
        self.buf[start - 8:start] = struct.pack("<Q", len(self.buf) - start)
        self._frame_at = None
        return self

    def stop(self) -> "Emitter":
        return self.raw(b".")

    # -- stack / mark ---------------------------------------------------------
    def mark(self) -> "Emitter":
        return self.raw(b"(")

    def pop(self) -> "Emitter":
        return self.raw(b"0")

    def pop_mark(self) -> "Emitter":
        return self.raw(b"1")

    def dup(self) -> "Emitter":
        return self.raw(b"2")

    # -- scalars ----------------------------------------------------------------
    def none(self) -> "Emitter":
        return self.raw(b"N")

    def newtrue(self) -> "Emitter":
        return self.raw(b"\x88")

    def newfalse(self) -> "Emitter":
        return self.raw(b"\x89")

    def int_(self, n: int) -> "Emitter":  # INT, protocol 0 text
        return self.raw(b"I" + str(n).encode() + b"\n")

    def binint1(self, n: int) -> "Emitter":
        return self.raw(b"K" + struct.pack("<B", n))

    def binint2(self, n: int) -> "Emitter":
        return self.raw(b"M" + struct.pack("<H", n))

    def binint(self, n: int) -> "Emitter":
        return self.raw(b"J" + struct.pack("<i", n))

    # -- strings / bytes --------------------------------------------------------
    def string(self, s: str) -> "Emitter":
        """STRING (protocol 0): Python repr in single quotes, newline-terminated."""
        body = s.replace("\\", "\\\\").replace("'", "\\'")
        return self.raw(b"S'" + body.encode("ascii") + b"'\n")

    def unicode_nl(self, s: str) -> "Emitter":
        """UNICODE (protocol 0): raw-unicode-escape, newline-terminated."""
        return self.raw(b"V" + s.encode("raw-unicode-escape") + b"\n")

    def binunicode(self, s: str) -> "Emitter":
        b = s.encode("utf-8", "surrogatepass")
        return self.raw(b"X" + struct.pack("<I", len(b)) + b)

    def short_binunicode(self, s: str) -> "Emitter":
        b = s.encode("utf-8", "surrogatepass")
        assert len(b) < 256
        return self.raw(b"\x8c" + struct.pack("<B", len(b)) + b)

    def binbytes(self, b: bytes) -> "Emitter":
        return self.raw(b"B" + struct.pack("<I", len(b)) + b)

    def short_binbytes(self, b: bytes) -> "Emitter":
        assert len(b) < 256
        return self.raw(b"C" + struct.pack("<B", len(b)) + b)

    def bytearray8(self, b: bytes) -> "Emitter":
        return self.raw(b"\x96" + struct.pack("<Q", len(b)) + b)

    def next_buffer(self) -> "Emitter":
        return self.raw(b"\x97")

    def readonly_buffer(self) -> "Emitter":
        return self.raw(b"\x98")

    # -- containers -------------------------------------------------------------
    def empty_tuple(self) -> "Emitter":
        return self.raw(b")")

    def tuple_(self) -> "Emitter":
        return self.raw(b"t")

    def tuple1(self) -> "Emitter":
        return self.raw(b"\x85")

    def tuple2(self) -> "Emitter":
        return self.raw(b"\x86")

    def tuple3(self) -> "Emitter":
        return self.raw(b"\x87")

    def empty_list(self) -> "Emitter":
        return self.raw(b"]")

    def list_(self) -> "Emitter":
        return self.raw(b"l")

    def append(self) -> "Emitter":
        return self.raw(b"a")

    def appends(self) -> "Emitter":
        return self.raw(b"e")

    def empty_dict(self) -> "Emitter":
        return self.raw(b"}")

    def dict_(self) -> "Emitter":
        return self.raw(b"d")

    def setitem(self) -> "Emitter":
        return self.raw(b"s")

    def setitems(self) -> "Emitter":
        return self.raw(b"u")

    # -- globals and calls ------------------------------------------------------
    @staticmethod
    def _nl(s: str | bytes) -> bytes:
        b = s.encode("utf-8") if isinstance(s, str) else s
        assert b"\n" not in b
        return b

    def global_(self, module: str | bytes, name: str | bytes) -> "Emitter":
        return self.raw(b"c" + self._nl(module) + b"\n" + self._nl(name) + b"\n")

    def inst(self, module: str | bytes, name: str | bytes) -> "Emitter":
        return self.raw(b"i" + self._nl(module) + b"\n" + self._nl(name) + b"\n")

    def stack_global(self) -> "Emitter":
        return self.raw(b"\x93")

    def reduce(self) -> "Emitter":
        return self.raw(b"R")

    def build(self) -> "Emitter":
        return self.raw(b"b")

    def newobj(self) -> "Emitter":
        return self.raw(b"\x81")

    def newobj_ex(self) -> "Emitter":
        return self.raw(b"\x92")

    def obj(self) -> "Emitter":
        return self.raw(b"o")

    def ext1(self, code: int) -> "Emitter":
        return self.raw(b"\x82" + struct.pack("<B", code))

    def ext2(self, code: int) -> "Emitter":
        return self.raw(b"\x83" + struct.pack("<H", code))

    def ext4(self, code: int) -> "Emitter":
        return self.raw(b"\x84" + struct.pack("<i", code))

    def persid(self, pid: str) -> "Emitter":
        return self.raw(b"P" + self._nl(pid) + b"\n")

    def binpersid(self) -> "Emitter":
        return self.raw(b"Q")

    # -- memo -------------------------------------------------------------------
    def put(self, n: int) -> "Emitter":
        return self.raw(b"p" + str(n).encode() + b"\n")

    def get(self, n: int) -> "Emitter":
        return self.raw(b"g" + str(n).encode() + b"\n")

    def binput(self, n: int) -> "Emitter":
        return self.raw(b"q" + struct.pack("<B", n))

    def long_binput(self, n: int) -> "Emitter":
        return self.raw(b"r" + struct.pack("<I", n))

    def binget(self, n: int) -> "Emitter":
        return self.raw(b"h" + struct.pack("<B", n))

    def long_binget(self, n: int) -> "Emitter":
        return self.raw(b"j" + struct.pack("<I", n))

    def memoize(self) -> "Emitter":
        return self.raw(b"\x94")

    # -- convenience ------------------------------------------------------------
    def sg(self, module: str, name: str, memoize: bool = True) -> "Emitter":
        """Protocol-4 style global: SHORT_BINUNICODE module, name, STACK_GLOBAL."""
        self.short_binunicode(module)
        if memoize:
            self.memoize()
        self.short_binunicode(name)
        if memoize:
            self.memoize()
        self.stack_global()
        if memoize:
            self.memoize()
        return self

"""Hostile joblib-format fixtures, written opcode by opcode.

joblib files are not plain pickles: raw array bytes follow the BUILD of every
joblib.numpy_pickle.NumpyArrayWrapper (shared/FORMATS.md section 1.1), and
object arrays are followed by a whole nested pickle. A scanner that stops at
the first payload, or never looks inside the nested pickle, misses what these
files do. SAFETY: payloads are only ECHO/TOUCH, and these bytes are never
unpickled or joblib.load-ed by Python.
"""

from __future__ import annotations

import struct

from fixtures_hostile import DANGER, ECHO, E
from pickle_emit import Emitter


def _dtype(e: Emitter, code: str, flags: int = 0, byteorder: str = "<") -> Emitter:
    """numpy.dtype(code, False, True) + BUILD of its state tuple (version 3)."""
    e.sg("numpy", "dtype").short_binunicode(code).newfalse().newtrue().tuple3().reduce()
    e.mark().binint1(3).short_binunicode(byteorder).none().none().none()
    e.binint(-1).binint(-1).binint1(flags).tuple_().build()
    return e


def _wrapper(e: Emitter, shape: tuple[int, ...], code: str = "i8", flags: int = 0,
             aligned: bool = True) -> Emitter:
    """NumpyArrayWrapper NEWOBJ + BUILD(dict), as joblib 1.6 writes it (no payload)."""
    e.sg("joblib.numpy_pickle", "NumpyArrayWrapper").empty_tuple().newobj()
    e.empty_dict().mark()
    e.short_binunicode("subclass").sg("numpy", "ndarray")
    e.short_binunicode("shape").mark()
    for n in shape:
        if n < 2**31:
            e.binint(n)
        else:
            b = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
            e.raw(b"\x8a" + bytes([len(b)]) + b)
    e.tuple_()
    e.short_binunicode("order").short_binunicode("C")
    e.short_binunicode("dtype")
    _dtype(e, code, flags)
    e.short_binunicode("allow_mmap").raw(b"\x88" if flags == 0 else b"\x89")
    if aligned:
        e.short_binunicode("numpy_array_alignment_bytes").binint1(16)
    e.setitems().build()
    return e


def _padding(pos: int) -> bytes:
    """joblib's padding for a payload whose length byte sits at `pos`."""
    p = 16 - ((pos + 1) % 16)
    return bytes([p]) + b"\xff" * p


def build() -> list[tuple[str, bytes, list[str], str]]:
    out = []

    # 1. A real-looking array, then a dangerous call after the payload.
    e = E().proto(4).empty_list().mark()
    _wrapper(e, (4,))
    e.raw(_padding(len(e)))
    e.raw(struct.pack("<4q", 0, 1, 2, 3))
    e.sg("os", "system").short_binunicode(ECHO).tuple1().reduce()
    e.appends().stop()
    out.append(("joblib_payload_then_os_system.joblib", e.bytes(), DANGER,
                "joblib layout: an int64 array payload (padding + raw bytes), then os.system(...) in the "
                "outer stream. Scanners that stop at the raw bytes never see the call."))

    # 2. Object array: the nested pickle calls os.system.
    e = E().proto(4)
    _wrapper(e, (1,), code="O8", flags=63, aligned=True)
    nested = E().proto(2).global_("os", "system").binunicode(ECHO).tuple1().reduce().stop()
    e.raw(nested.bytes())
    e.stop()
    out.append(("joblib_object_array_nested_os_system.joblib", e.bytes(), DANGER,
                "Object-dtype NumpyArrayWrapper: joblib reads a whole nested pickle after the BUILD (no "
                "padding); the nested pickle calls os.system."))

    # 3. Padding bytes that joblib never writes (not 0xFF).
    e = E().proto(4)
    _wrapper(e, (2,))
    pad = _padding(len(e))
    e.raw(bytes([pad[0]]) + b"A" * pad[0])
    e.raw(struct.pack("<2q", 7, 8)).stop()
    out.append(("joblib_padding_not_ff.joblib", e.bytes(), ["PK210"],
                "Alignment padding of 'A' bytes instead of 0xFF: ignored by joblib.load, room for hidden data."))

    # 4. Oversized padding carrying a whole pickle.
    e = E().proto(4)
    _wrapper(e, (1,))
    hidden = E().global_("os", "system").mark().string(ECHO).tuple_().reduce().stop().bytes()
    e.raw(bytes([len(hidden)]) + hidden)
    e.raw(struct.pack("<q", 9)).stop()
    out.append(("joblib_padding_hides_pickle.joblib", e.bytes(), ["PK210"],
                "A padding length byte of %d (joblib writes 1-16) whose bytes are a pickle calling "
                "os.system: hidden from joblib.load, there for any other reader." % len(hidden)))

    # 5. Payload cut short.
    e = E().proto(4)
    _wrapper(e, (1000,))
    e.raw(_padding(len(e)))
    e.raw(b"\x00" * 10)
    out.append(("joblib_payload_truncated.joblib", e.bytes(), ["PK202"],
                "shape (1000,) int64 declares 8000 payload bytes; 10 remain."))

    # 6. Shape whose product overflows.
    e = E().proto(4)
    _wrapper(e, (2**62, 2**62))
    e.raw(_padding(len(e)))
    e.raw(b"\x00" * 16).stop()
    out.append(("joblib_shape_overflow.joblib", e.bytes(), ["PK201"],
                "shape (2**62, 2**62): the element count overflows 64 bits; nothing may be allocated from it."))
    return out

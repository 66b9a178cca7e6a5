#!/usr/bin/env python3
"""Differential check of `pkinspect trace` against CPython's own unpickler (scripts/oracle.py).

    python3 scripts/differential.py                  the CI batch: seed 1, at least 10,000 inputs
    python3 scripts/differential.py --long N         N generated inputs (plus the fixtures)
    python3 scripts/differential.py --seed S         another seed (default 1)
    python3 scripts/differential.py --files F...     only these files
    python3 scripts/differential.py --save DIR       copy every disagreeing input, with why, to DIR
    python3 scripts/differential.py --promote FILE NAME 'what differed' [--known-failing 'bug']
                                                     add FILE as fixtures/regress/NAME.pkl with its
                                                     CPython events in the manifest
    --jobs J (oracle processes; default: CPU count), --pkinspect PATH (default target/release/pkinspect)

Inputs: every fixture in fixtures/benign, fixtures/hostile and fixtures/regress (fixtures/joblib
is left out: joblib files are not plain pickles, and a plain unpickler reads their raw array
bytes as opcodes, which joblib.load never does); seeded mutations of the fixtures (byte flips,
opcode insertions, deletions and duplications, length-field edits, FRAME edits, memo index
edits, truncation, splicing); and seeded random opcode programs written with a model of the
stack so that most of them get far.

For each input, with E(mode) the import/call/build/persid/buffer records CPython made in a
read mode and P pkinspect's:
  1. E(loads) must be a subsequence of P (CPython stops at the first error, pkinspect goes on).
  2. So must E(bytesio), E(file) and E(rawfile), unless the read modes disagree with each other.
  3. Where read modes disagree (pickle 0 in every mode; every pickle in the three file modes),
     pkinspect must have flagged the file with PK206 (frame violation).
  4. No audit tripwire may fire in the oracle.
A disagreement matching an entry of scripts/differential_allowlist.json (a known pkinspect bug
with a committed reproducer in fixtures/regress) is counted but does not fail the run.

Only scripts/oracle.py ever unpickles, in its sandboxed children. This script only writes
bytes and parses them statically (pickletools.genops) to find opcode boundaries.
"""

import json
import os
import pickletools
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORACLE = os.path.join(ROOT, "scripts", "oracle.py")
ALLOWLIST = os.path.join(ROOT, "scripts", "differential_allowlist.json")
REGRESS = os.path.join(ROOT, "fixtures", "regress")
COMPARED = {"import": ("module", "name"), "call": ("kind", "callable", "args"), "build": ("target",), "persid": ("pid",), "buffer": ()}
FILE_MODES = ("bytesio", "file", "rawfile")
CI_MUTATIONS = 6000
CI_PROGRAMS = 4200
MUTATION_BASE_MAX = 64 * 1024

# ------------------------------------------------------------------------ input making


def fixture_paths():
    out = []
    for d in ("benign", "hostile", "regress"):
        folder = os.path.join(ROOT, "fixtures", d)
        if os.path.isdir(folder):
            out += [os.path.join(folder, f) for f in sorted(os.listdir(folder)) if f.endswith(".pkl")]
    return out


def op_spans(data):
    """(start, end, name, arg) of each opcode pickletools can parse, up to the first error."""
    spans = []
    try:
        prev = None
        for op, arg, pos in pickletools.genops(data):
            if prev is not None:
                spans.append((prev[0], pos, prev[1], prev[2]))
            prev = (pos, op.name, arg)
            if op.name == "STOP":
                spans.append((pos, pos + 1, op.name, arg))
                prev = None
                break
        if prev is not None:
            spans.append((prev[0], len(data), prev[1], prev[2]))
    except Exception:  # noqa: BLE001 - a malformed fixture: keep what parsed
        pass
    return spans


LENGTH_OPS = {  # opcode byte -> (size of the length field, struct format)
    "SHORT_BINUNICODE": (1, "<B"), "SHORT_BINBYTES": (1, "<B"), "SHORT_BINSTRING": (1, "<B"), "LONG1": (1, "<B"),
    "BINUNICODE": (4, "<I"), "BINBYTES": (4, "<I"), "BINSTRING": (4, "<i"), "LONG4": (4, "<i"),
    "BINUNICODE8": (8, "<Q"), "BINBYTES8": (8, "<Q"), "BYTEARRAY8": (8, "<Q"), "FRAME": (8, "<Q"),
}
MEMO_OPS = {"BINPUT": 1, "BINGET": 1, "LONG_BINPUT": 4, "LONG_BINGET": 4}
INSERTS = [b"(", b"0", b"1", b"2", b"R", b"b", b"\x93", b"\x94", b"h\x00", b"q\x00", b"a", b"e", b"s", b"u", b"t", b"\x85",
           b"\x86", b"\x81", b"\x92", b"o", b"N", b")", b"]", b"}", b"\x8f", b"\x90", b"\x91", b"Q", b"\x97", b"\x98",
           b"\x82\x01", b"\x95\x04\x00\x00\x00\x00\x00\x00\x00", b"cos\nsystem\n", b"\x8c\x02os\x8c\x06system\x93",
           b"\x8c\x0c__setstate__", b"P1\n", b".", b"\x80\x02", b"\x80\x05"]


def mutate(rng, data, others):
    d = bytearray(data)
    spans = op_spans(bytes(d))
    for _ in range(1 + rng.randrange(3)):
        if not d:
            d += bytes([rng.randrange(256)])
            continue
        choice = rng.randrange(12)
        i = rng.randrange(len(d))
        span = spans[rng.randrange(len(spans))] if spans else None
        if choice == 0:
            d[i] ^= 1 << rng.randrange(8)
        elif choice == 1:
            d[i] = rng.randrange(256)
        elif choice in (2, 3) and span:
            at = span[0] if rng.randrange(2) else span[1]
            d[at:at] = rng.choice(INSERTS)
        elif choice == 4 and span:
            del d[span[0]:span[1]]
        elif choice == 5 and span:
            d[span[1]:span[1]] = d[span[0]:span[1]]
        elif choice == 6:
            lens = [s for s in spans if s[2] in LENGTH_OPS]
            if lens:
                s = rng.choice(lens)
                size, fmt = LENGTH_OPS[s[2]]
                old = struct.unpack(fmt, bytes(d[s[0] + 1:s[0] + 1 + size]))[0] if s[0] + 1 + size <= len(d) else 0
                new = rng.choice([old + 1, old - 1, old + rng.randrange(1, 9), max(0, old - rng.randrange(1, 9)), 0,
                                  (1 << (8 * size - 1)) - 1, rng.randrange(1 << min(8 * size, 20))])
                lo, hi = (-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1) if fmt.endswith("i") else (0, (1 << (8 * size)) - 1)
                new = min(max(new, lo), hi)
                d[s[0] + 1:s[0] + 1 + size] = struct.pack(fmt, new)
        elif choice == 7:
            frames = [s for s in spans if s[2] == "FRAME"]
            if frames and rng.randrange(3):
                s = rng.choice(frames)
                if rng.randrange(2) or s[0] + 9 > len(d):
                    del d[s[0]:s[1]]
                else:
                    old = struct.unpack("<Q", bytes(d[s[0] + 1:s[0] + 9]))[0]
                    d[s[0] + 1:s[0] + 9] = struct.pack("<Q", max(0, old + rng.randrange(-12, 13)))
            elif span:
                at = span[1]
                rest = len(d) - at
                length = max(0, rest - 9 + rng.randrange(-6, 7)) if rng.randrange(2) else rng.randrange(1, 40)
                d[at:at] = b"\x95" + struct.pack("<Q", length)
        elif choice == 8:
            memos = [s for s in spans if s[2] in MEMO_OPS]
            if memos:
                s = rng.choice(memos)
                size = MEMO_OPS[s[2]]
                v = rng.choice([0, 1, 2, 3, rng.randrange(256)])
                d[s[0] + 1:s[0] + 1 + size] = v.to_bytes(size, "little")
        elif choice == 9:
            del d[i:]
        elif choice == 10 and others:
            other = rng.choice(others)
            j = rng.randrange(len(other) + 1)
            d[i:] = other[j:] if rng.randrange(2) else other
        else:
            j = min(len(d), i + rng.randrange(1, 17))
            del d[i:j]
        spans = op_spans(bytes(d)) if choice not in (0, 1, 6, 8) else spans
    return bytes(d)


# -------------------------------------------------------------------- random programs

NAMES = [("os", "system"), ("builtins", "getattr"), ("builtins", "eval"), ("__builtin__", "eval"),
         ("collections", "OrderedDict"), ("copyreg", "add_extension"), ("copy_reg", "add_extension"),
         ("random", "_os.system"), ("functools", "partial"), ("subprocess", "Popen"), ("m", "a.b.c"),
         ("exceptions", "StandardError"), ("UserDict", "UserDict"), ("numpy", "dtype"), ("builtins", "setattr"),
         ("pk", "Cls"), ("os", "environ"), ("__builtin__", "xrange")]
STRS = ["", "x", "os", "system", "__setstate__", "__dict__", "append", "echo hi", "caf\u00e9", "a.b", "\u2603", "0"]


def _u(s):
    return s.encode("utf-8", "surrogatepass")


class Program:
    """Emits opcodes while tracking an abstract stack: 'v' value, 'g' global, 'o' object,
    't' tuple, 'l' list, 'd' dict, 's' set, 'S' str; marks in self.marks."""

    def __init__(self, rng, proto):
        self.rng = rng
        self.proto = proto
        self.ops = []
        self.stack = []
        self.marks = []
        self.memo = 0
        self.codes = []

    def op(self, b, pop=0, push=None):
        self.ops.append(bytes(b))
        for _ in range(min(pop, len(self.stack))):
            self.stack.pop()
        if push:
            self.stack.append(push)

    def top(self, n=1):
        return self.stack[-n] if len(self.stack) >= n else None

    def above_mark(self):
        return len(self.stack) - (self.marks[-1] if self.marks else 0)

    def pop_mark(self, push=None):
        base = self.marks.pop() if self.marks else 0
        del self.stack[base:]
        if push:
            self.stack.append(push)

    def open_tuple(self):
        """Before the items of a tuple: a MARK below protocol 2."""
        if self.proto < 2:
            self.marks.append(len(self.stack))
            self.op(b"(")

    def close_tuple(self, n):
        if self.proto >= 2:
            self.op([b"\x85", b"\x86", b"\x87"][n - 1], pop=n, push="t")
        else:
            self.op(b"t")
            self.pop_mark(push="t")

    def push_str(self, s=None):
        r = self.rng
        s = r.choice(STRS) if s is None else s
        b = _u(s)
        k = r.randrange(4 if self.proto >= 4 else 3)
        if self.proto < 1 or k == 0 and s.isascii() and "\n" not in s and "\\" not in s:
            self.op(b"V" + s.encode("raw-unicode-escape") + b"\n", push="S")
        elif k == 3 and len(b) < 256:
            self.op(b"\x8c" + bytes([len(b)]) + b, push="S")
        else:
            self.op(b"X" + struct.pack("<I", len(b)) + b, push="S")

    def push_scalar(self):
        r = self.rng
        k = r.randrange(14)
        p = self.proto
        if k == 0:
            self.op(b"N", push="v")
        elif k == 1 and p >= 2:
            self.op(r.choice([b"\x88", b"\x89"]), push="v")
        elif k == 2:
            self.op(b"I" + r.choice([b"00", b"01", b"7", b"-3", b"0x10", b"1_000"]) + b"\n", push="v")
        elif k == 3 and p >= 1:
            self.op(b"J" + struct.pack("<i", r.randrange(-2**31, 2**31)), push="v")
        elif k == 4 and p >= 1:
            self.op(b"K" + bytes([r.randrange(256)]), push="v")
        elif k == 5 and p >= 2:
            n = r.randrange(10)
            self.op(b"\x8a" + bytes([n]) + bytes(r.randrange(256) for _ in range(n)), push="v")
        elif k == 6:
            self.op(b"L" + str(r.randrange(-10**30, 10**30)).encode() + b"L\n", push="v")
        elif k == 7:
            self.op(b"F" + r.choice([b"1.5", b"-0.0", b"1e300", b"nan", b"inf", b"3"]) + b"\n", push="v")
        elif k == 8 and p >= 1:
            self.op(b"G" + struct.pack(">d", r.choice([1.5, -0.0, 1e-300, float("inf")])), push="v")
        elif k == 9:
            self.op(b"S'" + r.choice([b"x", b"a\\x41", b"\\n", b"os"]) + b"'\n", push="v")
        elif k == 10 and p >= 1:
            b = r.choice([b"", b"os", b"abc"])
            self.op(b"U" + bytes([len(b)]) + b, push="v")
        elif k == 11 and p >= 3:
            b = bytes(r.randrange(256) for _ in range(r.randrange(40)))
            self.op(b"C" + bytes([len(b)]) + b, push="v")
        elif k == 12 and p >= 5:
            self.op(b"\x96" + struct.pack("<Q", 2) + b"ab", push="v")
        else:
            self.push_str()

    def push_global(self):
        r = self.rng
        m, n = r.choice(NAMES)
        if self.proto >= 4 and r.randrange(2):
            self.push_str(m)
            self.push_str(n)
            self.op(b"\x93", pop=2, push="g")
        else:
            self.op(b"c" + _u(m) + b"\n" + _u(n) + b"\n", push="g")

    def args_tuple(self, n=None):
        r = self.rng
        n = r.randrange(4) if n is None else n
        if n == 0:
            self.op(b")", push="t")
        elif n <= 3 and self.proto >= 2 and r.randrange(2):
            for _ in range(n):
                self.item()
            self.op([b"\x85", b"\x86", b"\x87"][n - 1], pop=n, push="t")
        else:
            self.marks.append(len(self.stack))
            self.op(b"(")
            for _ in range(n):
                self.item()
            self.op(b"t")
            self.pop_mark(push="t")

    def item(self):
        r = self.rng
        k = r.randrange(10)
        if k < 6:
            self.push_scalar()
        elif k < 8:
            self.push_global()
        elif k == 8 and self.memo:
            self.get()
        else:
            self.op(r.choice([b"]", b"}", b")"]), push="v")

    def get(self):
        r = self.rng
        key = r.randrange(self.memo + 1)
        k = r.randrange(3)
        if k == 0:
            self.op(b"g" + str(key).encode() + b"\n", push="v")
        elif k == 1 or self.proto < 1:
            self.op(b"h" + bytes([key & 0xFF]) if self.proto >= 1 else b"g%d\n" % key, push="v")
        else:
            self.op(b"j" + struct.pack("<I", key), push="v")

    def put(self):
        if not self.stack:
            return
        r = self.rng
        if self.proto >= 4 and r.randrange(2):
            self.op(b"\x94")
        elif self.proto >= 1 and r.randrange(2):
            self.op(b"q" + bytes([self.memo & 0xFF]))
        else:
            self.op(b"p" + str(self.memo).encode() + b"\n")
        self.memo += 1

    def call(self):
        r = self.rng
        k = r.randrange(6)
        if k == 0 and self.proto >= 2:
            self.push_global()
            self.args_tuple()
            self.op(b"\x81", pop=2, push="o")
        elif k == 1 and self.proto >= 4:
            self.push_global()
            self.args_tuple()
            self.op(b"}", push="d")
            if r.randrange(2):
                self.push_str("shell")
                self.push_scalar()
                self.op(b"s", pop=2)
            self.op(b"\x92", pop=3, push="o")
        elif k == 2:
            m, n = r.choice(NAMES)
            self.marks.append(len(self.stack))
            self.op(b"(")
            for _ in range(r.randrange(3)):
                self.item()
            self.op(b"i" + m.encode() + b"\n" + n.encode() + b"\n")
            self.pop_mark(push="o")
        elif k == 3 and self.proto >= 1:
            self.marks.append(len(self.stack))
            self.op(b"(")
            self.push_global()
            for _ in range(r.randrange(3)):
                self.item()
            self.op(b"o")
            self.pop_mark(push="o")
        else:
            if self.stack and self.top() in ("o", "g") and r.randrange(3) == 0:
                pass  # call what is on top (a global or an object)
            else:
                self.push_global()
            self.args_tuple()
            self.op(b"R", pop=2, push="o")

    def build(self):
        r = self.rng
        if not self.stack:
            self.call()
        k = r.randrange(4)
        if k == 0:
            self.push_scalar()
        elif k == 1 or self.proto < 2:
            self.op(b"}", push="d")
            self.push_str(r.choice(["__setstate__", "x", "__dict__"]))
            self.push_global() if r.randrange(2) else self.push_scalar()
            self.op(b"s", pop=2)
        else:
            self.open_tuple()
            self.op(b"N", push="v")
            self.op(b"}", push="d")
            self.push_str(r.choice(["__setstate__", "y"]))
            self.push_global()
            self.op(b"s", pop=2)
            self.close_tuple(2)
        self.op(b"b", pop=1)

    def extension(self):
        r = self.rng
        code = r.choice([1, 2, 240, 0x1234, 0x1020304, r.randrange(1, 300)])
        if r.randrange(3):
            m, n = r.choice(NAMES)
            self.op(b"c" + r.choice([b"copyreg", b"copy_reg"]) + b"\nadd_extension\n", push="g")
            self.open_tuple()
            self.push_str(m)
            self.push_str(n)
            if r.randrange(5):
                self.op(b"J" + struct.pack("<i", code) if self.proto >= 1 else b"I%d\n" % code, push="v")
            else:
                self.push_str(str(code))
            self.close_tuple(3)
            self.op(b"R", pop=2, push="o")
            self.op(b"0", pop=1)
        if self.proto >= 2:
            if code < 256:
                self.op(b"\x82" + bytes([code]), push="g")
            elif code < 65536:
                self.op(b"\x83" + struct.pack("<H", code), push="g")
            else:
                self.op(b"\x84" + struct.pack("<i", code), push="g")

    def mutate_container(self):
        r = self.rng
        k = r.randrange(5)
        target = r.choice(["]", "}", "\x8f", "global", "object"]) if self.proto >= 4 else r.choice(["]", "}", "global", "object"])
        if target == "global":
            self.push_global()
        elif target == "object":
            self.call()
        else:
            self.op(target.encode("latin-1"), push="v")
        if k == 0:
            self.item()
            self.op(b"a", pop=1)
        elif k == 1:
            self.marks.append(len(self.stack))
            self.op(b"(")
            for _ in range(r.randrange(3)):
                self.item()
            self.op(b"e")
            self.pop_mark()
        elif k == 2:
            self.push_scalar()
            self.item()
            self.op(b"s", pop=2)
        elif k == 3:
            self.marks.append(len(self.stack))
            self.op(b"(")
            for _ in range(2 * r.randrange(3)):
                self.item()
            self.op(b"u")
            self.pop_mark()
        elif self.proto >= 4:
            self.marks.append(len(self.stack))
            self.op(b"(")
            self.push_scalar()
            self.op(b"\x90")
            self.pop_mark()

    def step(self):
        r = self.rng
        k = r.randrange(100)
        if k < 18:
            self.item()
        elif k < 36:
            self.call()
        elif k < 44:
            self.build()
        elif k < 50:
            self.mutate_container()
        elif k < 55:
            self.extension()
        elif k < 62:
            self.put()
        elif k < 66 and self.memo:
            self.get()
        elif k < 70 and self.stack:
            self.op(r.choice([b"0", b"2"]), pop=0)
            if self.ops[-1] == b"0":
                self.stack.pop()
            else:
                self.stack.append(self.stack[-1])
        elif k < 73:
            if r.randrange(2) or self.proto < 1:
                self.op(b"P" + r.choice([b"1", b"abc", b"x y"]) + b"\n", push="o")
            else:
                self.item()
                self.op(b"Q", pop=1, push="o")
        elif k < 75 and self.proto >= 5:
            self.op(b"\x97", push="v")
            if r.randrange(2):
                self.op(b"\x98")
        elif k < 78:
            # A class-level __setstate__ plant, then an instance of that class is built.
            m, n = r.choice(NAMES)
            g = b"c" + m.encode() + b"\n" + n.encode() + b"\n"
            self.op(g, push="g")
            self.open_tuple()
            self.op(b"N", push="v")
            self.op(b"}", push="d")
            self.push_str("__setstate__")
            self.push_global()
            self.op(b"s", pop=2)
            self.close_tuple(2)
            self.op(b"b", pop=1)
            self.op(b"0", pop=1)
            self.op(g, push="g")
            self.op(b")", push="t")
            self.op(b"R", pop=2, push="o")
            self.push_scalar()
            self.op(b"b", pop=1)
        elif k < 80:
            # Anything at all: an opcode without its preconditions.
            self.op(r.choice([b"R", b"b", b"a", b"s", b"t", b"0", b"1", b"\x93", b"\x81", b"e", b"u", b"o"]))
            self.stack.clear()
            self.marks.clear()
        else:
            self.item()

    def finish(self):
        while self.marks and self.rng.randrange(3):
            self.op(b"t")
            self.pop_mark(push="t")
        if not self.stack:
            self.op(b"N", push="v")
        self.op(b".")


def program(rng):
    proto = rng.choice([0, 1, 2, 2, 3, 4, 4, 5, 5])
    p = Program(rng, proto)
    for _ in range(rng.randrange(1, 14)):
        p.step()
    p.finish()
    ops = p.ops
    body = b""
    if proto >= 4 and rng.randrange(3):
        # Frames over runs of whole opcodes; now and then a length that is off.
        i = 0
        while i < len(ops):
            n = rng.randrange(1, 6)
            chunk = b"".join(ops[i:i + n])
            length = len(chunk)
            if rng.randrange(8) == 0:
                length = max(0, length + rng.choice([-3, -2, -1, 1, 2, 5]))
            body += b"\x95" + struct.pack("<Q", length) + chunk
            i += n
    else:
        body = b"".join(ops)
    out = (b"\x80" + bytes([proto]) if proto >= 2 or rng.randrange(2) and proto else b"") + body
    k = rng.randrange(20)
    if k == 0:
        out += program(rng)
    elif k == 1:
        out += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
    return out


def generate(seed, mutations, programs, base_dir):
    """Writes the generated inputs to base_dir; returns [(path, origin)]."""
    rng = random.Random(seed)
    bases = []
    for p in fixture_paths():
        if os.path.getsize(p) <= MUTATION_BASE_MAX:
            with open(p, "rb") as f:
                bases.append((os.path.relpath(p, ROOT), f.read()))
    out = []
    datas = [b for _, b in bases]
    for i in range(mutations):
        name, data = bases[rng.randrange(len(bases))]
        m = mutate(rng, data, datas)
        path = os.path.join(base_dir, "m%06d.pkl" % i)
        with open(path, "wb") as f:
            f.write(m)
        out.append((path, "mutation %d of %s (seed %d)" % (i, name, seed)))
    for i in range(programs):
        data = program(rng)
        path = os.path.join(base_dir, "p%06d.pkl" % i)
        with open(path, "wb") as f:
            f.write(data)
        out.append((path, "program %d (seed %d)" % (i, seed)))
    return out


# -------------------------------------------------------------------------- running


def run_pkinspect(exe, paths):
    """{path: (records, summary)} from `pkinspect trace`, 500 files per invocation."""
    out = {}
    for i in range(0, len(paths), 500):
        chunk = paths[i:i + 500]
        res = subprocess.run([exe, "trace"] + chunk, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        if res.returncode not in (0, 2):
            raise SystemExit("pkinspect trace failed (%d): %s" % (res.returncode, res.stderr.decode(errors="replace")[-2000:]))
        cur = None
        for line in res.stdout.decode("utf-8").split("\n"):
            if not line:
                continue
            r = json.loads(line)
            if r["op"] == "file":
                cur = r["path"]
                out[cur] = ([], None)
            elif r["op"] == "summary":
                out[cur] = (out[cur][0], r)
            else:
                out[cur][0].append(r)
    return out


def run_oracle(paths, jobs, tmp):
    """{path: oracle result}, with `jobs` oracle processes."""
    procs = []
    per = (len(paths) + jobs - 1) // max(jobs, 1)
    for j in range(jobs):
        chunk = paths[j * per:(j + 1) * per]
        if not chunk:
            continue
        lst = os.path.join(tmp, "oracle-list-%d.txt" % j)
        with open(lst, "w", encoding="utf-8") as f:
            f.write("\n".join(chunk) + "\n")
        outp = os.path.join(tmp, "oracle-out-%d.jsonl" % j)
        procs.append((subprocess.Popen([sys.executable, "-S", ORACLE, "--list", lst], stdout=open(outp, "wb")), outp))
    out = {}
    for p, outp in procs:
        if p.wait() != 0:
            raise SystemExit("oracle worker failed with exit %d" % p.returncode)
        with open(outp, "rb") as f:
            for line in f:
                r = json.loads(line)
                out[r["path"]] = r["modes"]
    return out


# ------------------------------------------------------------------------ comparing


def key(ev):
    return (ev["op"], ev.get("pickle", 0)) + tuple(json.dumps(ev.get(k), sort_keys=True) for k in COMPARED[ev["op"]])


def comparable(events):
    return [e for e in events if e["op"] in COMPARED]


def missing(expected, actual):
    """Indexes of the events of `expected` that cannot be matched, in order, in `actual`
    (greedy: an unmatched event is skipped and matching goes on with the next one)."""
    keys = [key(e) for e in actual]
    out = []
    j = 0
    for i, e in enumerate(expected):
        k = key(e)
        at = j
        while at < len(keys) and keys[at] != k:
            at += 1
        if at == len(keys):
            out.append(i)
        else:
            j = at + 1
    return out


def outcome(mode, only_first):
    status = mode["status"]
    if status == "ok":
        return "ok"
    if status == "error":
        if only_first and mode.get("error_pickle", 0) > 0:
            return "ok"
        return "error@%d" % mode.get("error_pickle", 0)
    return status


def persid_stop(mode):
    """pickle.loads has no persistent_load: it stops at the first persistent id."""
    return mode["status"] == "error" and "persistent_load" in mode.get("message", "")


def modes_disagree(modes):
    def first(m):
        return ([key(e) for e in comparable(modes[m]["events"]) if e["pickle"] == 0], outcome(modes[m], True))

    def whole(m):
        return ([key(e) for e in comparable(modes[m]["events"])], outcome(modes[m], False))

    live = [m for m in modes if modes[m]["status"] in ("ok", "error")]
    firsts = {repr(first(m)) for m in live if not persid_stop(modes[m])}
    wholes = {repr(whole(m)) for m in live if m in FILE_MODES}
    if "loads" in live and persid_stop(modes["loads"]):
        # Its events must then be a prefix of the other modes' first pickle.
        head = first("loads")[0]
        if any(first(m)[0][:len(head)] != head for m in live if m != "loads"):
            return True
    return len(firsts) > 1 or len(wholes) > 1


def judge(path, origin, pk, modes):
    """The disagreements for one input (a list of dicts)."""
    records, summary = pk
    problems = []
    if summary is None:
        return [{"path": path, "origin": origin, "type": "pkinspect-no-summary"}]
    actual = comparable(records)
    rules = set(summary["rules"])
    differ = modes_disagree(modes)
    for name, mode in sorted(modes.items()):
        if mode.get("tripped"):
            problems.append({"path": path, "origin": origin, "type": "tripwire", "mode": name, "events": mode["tripped"]})
        expected = comparable(mode["events"])
        if name != "loads" and differ and "PK206" in rules:
            continue
        for miss in missing(expected, actual):
            problems.append({"path": path, "origin": origin, "type": "missing", "mode": name, "event": expected[miss],
                             "index": miss, "before": expected[max(0, miss - 3):miss], "status": mode["status"],
                             "rules": sorted(rules)})
    if differ and "PK206" not in rules:
        problems.append({"path": path, "origin": origin, "type": "modes-differ-unflagged", "rules": sorted(rules),
                         "modes": {m: [outcome(v, False), len(comparable(v["events"]))] for m, v in modes.items()}})
    return problems


def load_allowlist():
    if not os.path.exists(ALLOWLIST):
        return []
    with open(ALLOWLIST, encoding="utf-8") as f:
        return json.load(f)


# Known pkinspect bugs, recognised by what CPython did (the allowlist names one per entry).
# Each takes the problem, the oracle's modes, pkinspect's records and the input bytes.

def _add_extension_non_int_code(prob, modes, records, data):
    if prob["type"] != "missing":
        return False
    events = comparable(modes[prob["mode"]]["events"])[:prob["index"]]
    return any(e["op"] == "call" and e["callable"] in ("copyreg.add_extension", "copy_reg.add_extension")
               and len(e["args"] or []) == 3 and not e["args"][2].startswith("int:") for e in events)


def _method_call_on_global(prob, modes, records, data):
    e = prob.get("event", {})
    return prob["type"] == "missing" and e.get("op") == "call" and e.get("kind") in ("append", "setitem", "add") \
        and e.get("callable") != "<indirect>"


def _setstate_planted_on_class(prob, modes, records, data):
    e = prob.get("event", {})
    if prob["type"] != "missing" or e.get("op") != "call" or e.get("kind") != "setstate":
        return False
    events = comparable(modes[prob["mode"]]["events"])[:prob["index"]]
    return any(b["op"] == "build" and b["target"] != "<indirect>" for b in events)


def _frames(data):
    """(start, end, stop) of every FRAME pickletools finds in a pickle that reaches its STOP:
    where its contents start and end, and where its pickle ends."""
    out = []
    pos = 0
    while pos < len(data):
        found, stop = [], None
        try:
            for op, arg, at in pickletools.genops(data[pos:]):
                if op.name == "FRAME":
                    found.append((pos + at + 9, pos + at + 9 + arg))
                if op.name == "STOP":
                    stop = pos + at + 1
                    break
        except Exception:  # noqa: BLE001 - a malformed stream: what parsed is enough
            pass
        if stop is None:
            break
        out += [(a, b, stop) for a, b in found]
        pos = stop
    return out


def _frame_past_stop(prob, modes, records, data):
    if prob["type"] not in ("modes-differ-unflagged", "missing") or prob.get("mode") == "loads":
        return False
    return any(end > stop for _, end, stop in _frames(data))


def _frame_line_crossing_error(prob, modes, records, data):
    if prob["type"] not in ("modes-differ-unflagged", "missing") or prob.get("mode") == "loads":
        return False
    errors = [r for r in records if r["op"] == "error"]
    if not errors:
        return False
    at = errors[0]["offset"]
    # The failing opcode's line argument runs past the end of the frame it starts in.
    for i in range(max(0, at - 64 * 1024), at + 1):
        if data[i:i + 1] != b"\x95" or i + 9 > len(data):
            continue
        end = i + 9 + struct.unpack("<Q", data[i + 1:i + 9])[0]
        lines = 2 if data[at:at + 1] in (b"c", b"i") else 1  # GLOBAL and INST take two lines
        if i + 9 <= at < end and data.count(b"\n", at, end) < lines:
            return True
    return False


def _int_strtol_forms(prob, modes, records, data):
    """An INT line ('I...\\n') that C strtol reads differently from Python's int(x, 0)."""
    for m in re.finditer(rb"I([^\n]{1,40})\n", data):
        text = m.group(1)
        if text in (b"00", b"01"):
            continue
        if re.fullmatch(rb"\s*[-+]?0[0-7]+", text) or (len(text) == 2 and re.fullmatch(rb"\s*[-+]?[01]", text)):
            return prob["type"] == "missing"
    return False


PREDICATES = {
    "int_strtol_forms": _int_strtol_forms,
    "add_extension_non_int_code": _add_extension_non_int_code,
    "method_call_on_global": _method_call_on_global,
    "setstate_planted_on_class": _setstate_planted_on_class,
    "frame_past_stop": _frame_past_stop,
    "frame_line_crossing_error": _frame_line_crossing_error,
}


def allowed(prob, allowlist, modes, records, data):
    """The allowlist entry whose predicate recognises `prob` as a known bug, or None."""
    if prob["type"] == "tripwire":
        return None
    for entry in allowlist:
        if PREDICATES[entry["predicate"]](prob, modes, records, data):
            return entry
    return None


def build_pkinspect(exe):
    if exe != os.path.join(ROOT, "target", "release", "pkinspect"):
        return
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)


def promote(src, name, what, known):
    os.makedirs(REGRESS, exist_ok=True)
    dst = os.path.join(REGRESS, name + ".pkl")
    shutil.copyfile(src, dst)
    modes = run_oracle([dst], 1, tempfile.mkdtemp())[dst]
    entry = {
        "file": name + ".pkl",
        "differed": what,
        "modes_differ": modes_disagree(modes),
        "expect": {m: [{k: e[k] for k in ("op", "pickle") + COMPARED[e["op"]]} for e in comparable(v["events"])]
                   for m, v in sorted(modes.items())},
        "known_failing": known,
    }
    man = os.path.join(REGRESS, "manifest.json")
    entries = []
    if os.path.exists(man):
        with open(man, encoding="utf-8") as f:
            entries = [e for e in json.load(f) if e["file"] != entry["file"]]
    entries.append(entry)
    entries.sort(key=lambda e: e["file"])
    with open(man, "w", encoding="utf-8") as f:
        json.dump(entries, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("promoted %s -> %s" % (src, dst))


def main(argv):
    seed = 1
    mutations, programs = CI_MUTATIONS, CI_PROGRAMS
    files = None
    save = None
    jobs = os.cpu_count() or 2
    exe = os.path.join(ROOT, "target", "release", "pkinspect")
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--seed":
            seed = int(argv[i + 1]); i += 2
        elif a == "--long":
            n = int(argv[i + 1]); i += 2
            mutations, programs = n * 3 // 5, n - n * 3 // 5
        elif a == "--jobs":
            jobs = int(argv[i + 1]); i += 2
        elif a == "--save":
            save = argv[i + 1]; i += 2
        elif a == "--pkinspect":
            exe = os.path.abspath(argv[i + 1]); i += 2
        elif a == "--files":
            files = [os.path.abspath(f) for f in argv[i + 1:]]; i = len(argv)
        elif a == "--promote":
            known = None
            rest = argv[i + 1:]
            if "--known-failing" in rest:
                k = rest.index("--known-failing")
                known = rest[k + 1]
                rest = rest[:k] + rest[k + 2:]
            promote(rest[0], rest[1], rest[2], known)
            return 0
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            raise SystemExit("unknown argument %r (see --help)" % a)
    build_pkinspect(exe)
    tmp = tempfile.mkdtemp(prefix="pkinspect-diff-")
    os.chmod(tmp, 0o755)
    try:
        t0 = time.time()
        if files is not None:
            inputs = [(f, "given") for f in files]
        else:
            inputs = [(p, os.path.relpath(p, ROOT)) for p in fixture_paths()]
            inputs += generate(seed, mutations, programs, tmp)
        for p, _ in inputs:
            if p.startswith(tmp):
                os.chmod(p, 0o644)
        paths = [p for p, _ in inputs]
        t1 = time.time()
        pk = run_pkinspect(exe, paths)
        t2 = time.time()
        orc = run_oracle(paths, jobs, tmp)
        t3 = time.time()
        allowlist = load_allowlist()
        failures, excused, limits = [], {}, 0
        for p, origin in inputs:
            modes = orc[p]
            limits += sum(1 for m in modes.values() if m["status"] == "killed")
            probs = judge(p, origin, pk.get(p, ([], None)), modes)
            data = None
            for prob in probs:
                if data is None:
                    with open(p, "rb") as f:
                        data = f.read()
                entry = allowed(prob, allowlist, modes, pk.get(p, ([], None))[0], data)
                if entry is not None:
                    excused[entry["id"]] = excused.get(entry["id"], 0) + 1
                    continue
                failures.append(prob)
        for f in failures[:25]:
            print("DISAGREEMENT", json.dumps(f, ensure_ascii=False)[:1500])
        if save and failures:
            os.makedirs(save, exist_ok=True)
            for n, f in enumerate(failures):
                dst = os.path.join(save, "d%05d.pkl" % n)
                shutil.copyfile(f["path"], dst)
                with open(dst + ".json", "w", encoding="utf-8") as out:
                    json.dump(f, out, indent=1, ensure_ascii=False)
        n_fix = sum(1 for _, o in inputs if not o.startswith(("mutation", "program")))
        print("differential: %d inputs (%d fixtures, %d mutations, %d programs; seed %d), %d read-mode runs cut by"
              " limits; pkinspect %.1fs, oracle %.1fs (%d jobs), generation %.1fs"
              % (len(inputs), n_fix, sum(1 for _, o in inputs if o.startswith("mutation")),
                 sum(1 for _, o in inputs if o.startswith("program")), seed, limits, t2 - t1, t3 - t2, jobs, t1 - t0))
        for k, v in sorted(excused.items()):
            print("  known pkinspect bug %s (scripts/differential_allowlist.json): %d disagreements excused" % (k, v))
        print("%d passed, %d failed" % (len(inputs) - len({f["path"] for f in failures}), len({f["path"] for f in failures})))
        return 1 if failures else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

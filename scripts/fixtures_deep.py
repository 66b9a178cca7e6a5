#!/usr/bin/env python3
"""Write fixtures/deep/: values nested and strings as long as pickle.load takes them.

    .venv/bin/python scripts/fixtures_deep.py        # deletes and rebuilds fixtures/deep/

CPython's unpickler is a loop: it builds containers nested to any depth, and reads
protocol-0 text lines of any length. CPython's pickler cannot write the deep ones (it
recurses), so these files are emitted opcode by opcode; every one is then loaded here with
pickle.loads, and manifest.json records what loading gives, read iteratively:

    depth        how many containers (or objects) are nested, outermost included
    kinds        the Python type of the containers, outermost first, when not all the same
    innermost    repr() of the value at the bottom
    length       len() of a string, with the sha256 and FNV-1a 64 of its UTF-8 encoding

tests/deep.rs extracts each file (exit 0, no error) and checks the document against those
facts. The files are benign (lists, dicts, tuples, strings, collections.OrderedDict).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import sys
from collections import OrderedDict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "deep"
N = 10_000


def deep_list(n: int) -> bytes:
    # n EMPTY_LISTs on the stack, 42 on top, then n APPENDs: [[[...[42]...]]]
    return b"\x80\x02" + b"]" * n + b"K*" + b"a" * n + b"."


def deep_mixed(n: int) -> bytes:
    # dict -> tuple -> list, repeated: {'k': ([{'k': ([...],)}],)}; built with MARKs
    body = b"\x80\x02"
    for _ in range(n // 3):
        body += b"}X\x01\x00\x00\x00k(]"
    body += b"N"
    for _ in range(n // 3):
        body += b"at\x73"      # APPEND into the list, TUPLE from the MARK, SETITEM into the dict
    return body + b"."


def deep_memo_list(n: int) -> bytes:
    # A chain built through the memo, the stack staying shallow: memo slot i holds list i;
    # LONG_BINGET i, a new list memoised as i + 1, APPEND, POP. Every slot is written once.
    def put(i):
        return b"r" + i.to_bytes(4, "little")

    def get(i):
        return b"j" + i.to_bytes(4, "little")
    body = b"\x80\x02]" + put(0)
    for i in range(1, n):
        body += get(i - 1) + b"]" + put(i) + b"a0"
    return body + get(n - 1) + b"K*a0."


def ordered_dicts(n: int) -> bytes:
    # OrderedDict({'k': OrderedDict({'k': ...})}): objects (REDUCE + SETITEMS) n deep
    body = b"\x80\x02"
    for _ in range(n):
        body += b"ccollections\nOrderedDict\n)RX\x01\x00\x00\x00k"
    body += b"K*"
    body += b"s" * n
    return body + b"."


def arrays_deep(n: int) -> bytes:
    # [[[...[42, a], a]...], a]: lists n deep, each holding its own numpy array (numpy's own
    # protocol-2 opcodes for np.arange(3, dtype='<i4'), written without memo: fast mode)
    import io
    import numpy as np
    f = io.BytesIO()
    p = pickle.Pickler(f, 2)
    p.fast = True
    p.dump(np.arange(3, dtype="<i4"))
    arr = f.getvalue()[2:-1]          # without PROTO and STOP
    return b"\x80\x02" + b"](" * n + b"K*" + (arr + b"e") * n + b"."


def text_p0(chars: int) -> tuple[bytes, str]:
    base = "ascii, é, € and 😀; "
    s = (base * (chars // len(base) + 1))[:chars]
    return pickle.dumps(s, protocol=0), s


def string_p0(n: int) -> bytes:
    # Python 2's STRING opcode: S'...'\n (pickle.load decodes it as ASCII by default)
    s = ("abc'\\" * (n // 5 + 1))[:n]
    return b"S" + repr(s).encode("ascii") + b"\n."


def fnv1a64(data: bytes) -> str:
    """FNV-1a 64 of data (tests/deep.rs computes the same without a hash crate)."""
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def facts(v) -> dict:
    """Depth, container kinds and innermost value of a nested value, without recursion."""
    depth, kinds = 0, []
    while True:
        if isinstance(v, list) and len(v) in (1, 2):
            kinds.append("list"); v = v[0]
        elif isinstance(v, tuple) and len(v) == 1:
            kinds.append("tuple"); v = v[0]
        elif isinstance(v, OrderedDict) and list(v) == ["k"]:
            kinds.append("OrderedDict"); v = v["k"]
        elif isinstance(v, dict) and list(v) == ["k"]:
            kinds.append("dict"); v = v["k"]
        else:
            break
        depth += 1
    out = {"depth": depth, "innermost": repr(v)}
    if len(set(kinds)) == 1:
        out["kind"] = kinds[0]
    else:
        out["kinds_cycle"] = kinds[:3]
    return out


def main() -> int:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    manifest = []

    def add(name, data, desc):
        (OUT / name).write_bytes(data)
        v = pickle.loads(data)
        entry = {"file": name, "loader": "pickle", "description": desc, "sha256": hashlib.sha256(data).hexdigest()}
        if isinstance(v, str):
            u = v.encode("utf-8")
            entry.update(length=len(v), utf8_sha256=hashlib.sha256(u).hexdigest(), utf8_fnv1a64=fnv1a64(u))
        else:
            entry.update(facts(v))
        manifest.append(entry)

    add(f"list_{N}_deep.pkl", deep_list(N), f"a list nested {N} deep (EMPTY_LIST x {N}, APPEND x {N}) around 42")
    add(f"mixed_{N - N % 3}_deep.pkl", deep_mixed(N), "dict -> tuple -> list, nested to 9,999 containers")
    add(f"memo_list_{N}_deep.pkl", deep_memo_list(N), f"a list nested {N} deep through the memo (shallow stack)")
    add("ordereddict_1000_deep.pkl", ordered_dicts(1000), "collections.OrderedDict nested 1,000 deep (objects)")
    add("arrays_3000_deep.pkl", arrays_deep(3000), "lists 3,000 deep, each holding a numpy int32 array [0, 1, 2]")
    v, count, first = pickle.loads((OUT / "arrays_3000_deep.pkl").read_bytes()), 0, None
    while isinstance(v, list) and len(v) == 2:          # what loading gives: arrays and their bytes
        count += 1
        first = first or (v[1].dtype.str, v[1].tobytes().hex())
        v = v[0]
    manifest[-1].update(arrays=count, array_dtype=first[0], array_bytes=first[1])
    data, _ = text_p0(1 << 20)
    add("str_1mib_p0.pkl", data, "a 1 Mi-character str at protocol 0 (UNICODE, raw-unicode-escape)")
    add("string_1mib_p0.pkl", string_p0(1 << 20), "a 1 MiB Python 2 STRING (S'...') with escapes")
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"{len(manifest)} files written to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Generate tests/data/pyrepr_cases.json: expected repr() output from the real
CPython 3.11 interpreter, used by the unit tests in src/py/repr.rs.

Inputs are encoded so that JSON can carry them losslessly:
  * str       -> "cps": list of code points (lone surrogates allowed)
  * bytes     -> "hex": hex string
  * float     -> "bits": IEEE-754 bit pattern as 16 hex digits
  * int       -> "hex": little-endian two's complement bytes, exactly as in a
                 pickle LONG1/LONG4 payload (pickle.encode_long, plus a few
                 non-minimal encodings that pickle.decode_long also accepts)

Usage (from the repository root):
    /root/.pyenv/versions/3.11.7/bin/python3 scripts/gen_pyrepr_cases.py
or  .venv/bin/python scripts/gen_pyrepr_cases.py
The output is deterministic (fixed random seed).
"""

import json
import os
import pickle
import random
import struct
import sys
import unicodedata

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "pyrepr_cases.json")


def cps(s):
    return [ord(c) for c in s]


def str_cases(rng):
    out = []

    def add(s):
        out.append({"cps": cps(s), "repr": repr(s)})

    curated = [
        "", "a", "hello world", "__main__", "os.system", "builtins\neval",
        "'", '"', "'\"", "it's", 'say "hi"', "it's \"both\"", "''", '""', "\\", "\\'", "a\\b\\\\c",
        "\t\n\r", "\x00\x01\x07\x08\x0b\x0c\x1b\x1f", "\x7f", "\x80\x9f\xa0\xa1",
        "caf\xe9", "na\xefve \xff \xd7 \xf7", "\u00ad", "soft\u00adhyphen",
        "\u2028", "\u2029", "\u200b\u200c\u200d\u200e\u200f", "\u061c", "\ufeff", "\u2060",
        "\u202a\u202b\u202c\u202d\u202e", "\u2066\u2067\u2068\u2069",
        "\u3000", "\u00a0", "\u1680", "\u2000\u200a", "\u205f",
        "\u4e2d\u6587", "\u65e5\u672c\u8a9e", "\ud55c\uad6d\uc5b4", "\u0645\u0631\u062d\u0628\u0627",
        "\U0001f600", "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f1fa\U0001f1f8",
        "e\u0301", "\u0301", "\u0300\u0301\u0302\u0336", "a\u20dd",
        "\ue000", "\uf8ff", "\U000f0000", "\U0010fffd", "\U0010ffff",
        "\u0378", "\u0530", "\U000e0001", "\U000e0020", "\U000e007f", "\U000e0100",
        "\ufffd", "\ufffe", "\uffff", "\ufff9\ufffa\ufffb",
        "\U00020000", "\U0002a6df", "\U0002a6e0", "\U00030000", "\U0003134a", "\U0003134b",
        "\U0001d400", "\U0001f8ff", "\U0001fa70",
        "\u0000x\u0000", "mix 'quote' and \\ and \n and \u2028 and \U0001f600",
        "\U0001faf0\U0001faf6\U0001faf7", "\U0001f7f0", "\u0c5d", "\u0870", "\u08b5",  # new/unassigned around 14.0
        "\U00011f00", "\U0001e290",  # assigned only in Unicode 15
    ]
    for s in curated:
        add(s)
    # Lone surrogates (only representable as code point lists).
    for s in ["\ud800", "\udfff", "\udc80", "a\udcffb", "\ud83d\ude00", "\ude00\ud83d", "'\ud800\"", "\udbff\udc00"]:
        add(s)
    # Every code point below 0x180 on its own.
    for c in range(0x180):
        add(chr(c))
    # Random code points from all planes, weighted toward the BMP.
    for _ in range(150):
        add(chr(rng.randrange(0x10000)))
    for _ in range(100):
        add(chr(rng.randrange(0x110000)))
    # Random mixed strings.
    alphabet = "ab'\"\\\t\n\x00\x7f\x85\xad\xe9\u2028\u4e2d\ud800\U0001f600\U000e0001 "
    for _ in range(40):
        add("".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12))))
    return out


def bytes_cases(rng):
    values = [
        b"", b"a", b"hello", b"'", b'"', b"'\"", b"it's", b'say "hi"', b"\\", b"\\'\"",
        b"\t\n\r\x00\x7f\x80\xff", bytes(range(256)), bytes(range(255, -1, -1)),
        b"\x80\x04\x95", b"cos\nsystem\n",
    ]
    values += [bytes([v]) for v in range(256)]
    alphabet = b"ab'\"\\\t\n\r\x00\x1f\x7f\x80\xff "
    for _ in range(30):
        values.append(bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 12))))
    return values


def float_cases(rng):
    values = [
        0.0, -0.0, 1e16, 1e15, 9999999999999998.0, 123456789012345678.0, 1e-5, 1e-4, 0.0001, 0.00012345,
        1 / 3, 2 / 3, 0.1, 0.2, 0.1 + 0.2, 5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308,
        1.7976931348623157e308, -1.7976931348623157e308, float("inf"), float("-inf"), float("nan"),
        -float("nan"), 100.0, 1e22, 1e23, -2.5, 1.0, -1.0, 0.5, 1.5e-05, 123.456, 1e100, 1e-100,
        2.0 ** 53, 2.0 ** 53 + 2, 2.0 ** 63, 2.0 ** 64, 1234567890123456.0, 12345678901234567.0,
        0.30000000000000004, 9.999999999999999e15, 1e16 - 2, 3.141592653589793, 2.718281828459045,
        4.35, 0.001, 1e-7, 5e-05, 1.7e-08, 1e21, 1e-4 * 0.999,
    ]
    # A NaN with a payload and sign bit (Python prints plain 'nan').
    values.append(struct.unpack("<d", struct.pack("<Q", 0xFFF8000000000123))[0])
    # Exact ties between two shortest candidates: CPython rounds half to even.
    for bits in (0xC30FA36FD398D412, 0x42D9636D03665F08, 0xC2EA97257F2320B4, 0x430C9306C2F7BC62):
        values.append(struct.unpack("<d", struct.pack("<Q", bits))[0])
    values += [2.0 ** 50 + f for f in (0.25, 0.75)] + [2.0 ** 47 + f for f in (0.125, 0.375, 0.625, 0.875)]
    values += [rng.randrange(2 ** 49, 2 ** 51) + rng.choice((0.25, 0.75)) for _ in range(20)]
    values += [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0] for _ in range(200)]
    values += [rng.uniform(-1e6, 1e6) for _ in range(30)]
    values += [round(rng.uniform(-1000, 1000), rng.randrange(0, 6)) for _ in range(30)]
    values += [10.0 ** e for e in range(-12, 25)]
    return values


def float_bits(f):
    return "%016x" % struct.unpack("<Q", struct.pack("<d", f))[0]


def int_cases(rng):
    ints = [
        0, 1, -1, 127, 128, -128, -129, 255, 256, -255, -256, 32767, 32768, -32768, -32769,
        2 ** 31 - 1, 2 ** 31, -2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 63 - 1, 2 ** 63, -2 ** 63, -2 ** 63 - 1,
        2 ** 64 - 1, 2 ** 64, -2 ** 64, 10 ** 9, 10 ** 9 - 1, 10 ** 18, 10 ** 19, -10 ** 18,
        2 ** 200 + 12345, -(3 ** 100), 10 ** 100, -10 ** 100 + 1,
    ]
    ints.append(rng.randrange(10 ** 999, 10 ** 1000))  # a 1000-digit number
    ints.append(-rng.randrange(10 ** 999, 10 ** 1000))
    for _ in range(40):
        bits = rng.randrange(1, 600)
        v = rng.getrandbits(bits)
        ints.append(v if rng.random() < 0.5 else -v)
    # Around CPython's 4300-digit str conversion limit.
    ints += [10 ** 4299, 10 ** 4300 - 1, 10 ** 4300, -(10 ** 4300 - 1), -(10 ** 4300), 2 ** 14300, -(2 ** 14300)]
    out = [pickle.encode_long(i) for i in ints]
    out += [b"\x01" + b"\x00" * 3000, b"\xfe" + b"\xff" * 3000]
    # Non-minimal but valid encodings (sign-extension / zero padding).
    out += [b"\x00", b"\x00\x00\x00\x00", b"\xff\xff", b"\xff" * 9, b"\x01\x00\x00", b"\x80\xff", b"\x7f\x00"]
    cases = []
    limit = sys.get_int_max_str_digits()
    assert limit == 4300, limit
    for data in out:
        v = pickle.decode_long(data)
        assert v == int.from_bytes(data, "little", signed=True)
        # py_ok: whether repr() works under the default digit limit (what
        # pickletools would hit); "repr" is always the full value.
        try:
            repr(v)
            py_ok = True
        except ValueError:
            py_ok = False
        sys.set_int_max_str_digits(0)
        try:
            cases.append({"hex": data.hex(), "repr": repr(v), "py_ok": py_ok})
        finally:
            sys.set_int_max_str_digits(limit)
    return cases


def main():
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"need CPython 3.11, got {sys.version.split()[0]}")
    rng = random.Random(0x9E3779B9)
    printable = sum(1 for c in range(0x110000) if chr(c).isprintable())
    strs = str_cases(rng)
    byte_values = bytes_cases(rng)
    data = {
        "generated_by": "scripts/gen_pyrepr_cases.py",
        "python": sys.version.split()[0],
        "unidata_version": unicodedata.unidata_version,
        "printable_count": printable,
        "str": strs,
        "bytes": [{"hex": b.hex(), "repr": repr(b)} for b in byte_values],
        "bytearray": [{"hex": b.hex(), "repr": repr(bytearray(b))} for b in byte_values[:60]],
        "float": [{"bits": float_bits(f), "repr": repr(f)} for f in float_cases(rng)],
        "int": int_cases(rng),
    }
    # One case per line keeps diffs readable.
    parts = ["{"]
    keys = list(data)
    for i, k in enumerate(keys):
        sep = "," if i + 1 < len(keys) else ""
        v = data[k]
        if isinstance(v, list):
            parts.append(f"  {json.dumps(k)}: [")
            for j, case in enumerate(v):
                parts.append("    " + json.dumps(case) + ("," if j + 1 < len(v) else ""))
            parts.append("  ]" + sep)
        else:
            parts.append(f"  {json.dumps(k)}: {json.dumps(v)}{sep}")
    parts.append("}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="ascii", newline="\n") as f:
        f.write("\n".join(parts) + "\n")
    counts = {k: len(v) for k, v in data.items() if isinstance(v, list)}
    print(f"wrote {sum(counts.values())} cases {counts} -> {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()

"""Deterministic inputs for scripts/bench (run with the project venv's Python).

Usage: bench_gen.py OUT_DIR [--variants]

Writes each benchmark pickle into OUT_DIR (unless it is already there with the
same recipe) and OUT_DIR/meta.json describing every file: recipe, size,
sha256, opcode count and opcode histogram (counted with pickletools.genops).

Inputs:

* ops2m.pkl: ``pickle.dumps(rows, protocol=4)`` where ``rows`` is a list of
  400,000 tuples ``(i, NAMES[i % 1000], i * 0.5)`` and NAMES holds 1,000
  distinct str objects.  Each tuple costs about 5 opcodes (an int opcode, a
  string or a memo reference, BINFLOAT, TUPLE3, MEMOIZE); the first use of a
  name is SHORT_BINUNICODE + MEMOIZE, every later one a BINGET/LONG_BINGET.
  The list is built with EMPTY_LIST + MARK ... APPENDS batches of 1,000 and the
  stream is framed.  About 2.0 million opcodes, about 8 MB.
* np150_p4.pkl / np150_p5.pkl / np150_p2.pkl: ``pickle.dump(a, f, protocol=P)``
  where ``a = np.random.default_rng(0).random(150 * 2**20 // 8)`` (a
  150 MiB float64 array).  Protocol 4 stores the data as one BINBYTES8,
  protocol 5 as one BYTEARRAY8 (in-band PickleBuffer), protocol 2 as a
  BINUNICODE latin-1 text passed to ``_codecs.encode`` (about 225 MiB).

With --variants it also writes single-shape streams of about 2 million opcodes
each (used to see which opcode kinds cost pkinspect time and memory):
  var_ints.pkl    list(range(2_000_000))                 one BININT* per item
  var_floats.pkl  [i * 0.5 for i in range(2_000_000)]    one BINFLOAT per item
  var_refs.pkl    [NAMES[i % 1000] for i in 2_000_000]    one BINGET per item
  var_strs.pkl    [f"s{i}" for i in range(1_000_000)]    SHORT_BINUNICODE+MEMOIZE
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import pickle
import pickletools
import platform
import sys

RECIPE_VERSION = 1  # bump when any recipe below changes
NAMES = [f"name_{k:04d}" for k in range(1000)]


def make_ops2m() -> bytes:
    rows = [(i, NAMES[i % 1000], i * 0.5) for i in range(400_000)]
    return pickle.dumps(rows, protocol=4)


def np_array():
    import numpy as np

    return np.random.default_rng(0).random(150 * 2**20 // 8)


def write_numpy(path: str, protocol: int) -> None:
    a = np_array()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump(a, f, protocol=protocol)
    os.replace(tmp, path)


def write_bytes(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def describe(path: str) -> dict:
    """Size, sha256, opcode count and histogram of every pickle in the file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    hist: collections.Counter = collections.Counter()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        pickles = 0
        while f.tell() < size:
            for op, _arg, _pos in pickletools.genops(f):
                hist[op.name] += 1
            pickles += 1
    return {
        "size": size,
        "sha256": h.hexdigest(),
        "pickles": pickles,
        "ops": sum(hist.values()),
        "op_histogram": dict(hist.most_common()),
    }


RECIPES = {
    "ops2m.pkl": ("protocol-4 pickle.dumps of [(i, NAMES[i%1000], i*0.5) for i in range(400_000)]; "
                  "NAMES = 1000 shared str objects (memo refs)",
                  lambda p: write_bytes(p, make_ops2m())),
    "np150_p4.pkl": ("pickle.dump(np.random.default_rng(0).random(150*2**20//8), f, protocol=4)",
                     lambda p: write_numpy(p, 4)),
    "np150_p5.pkl": ("pickle.dump(np.random.default_rng(0).random(150*2**20//8), f, protocol=5)",
                     lambda p: write_numpy(p, 5)),
    "np150_p2.pkl": ("pickle.dump(np.random.default_rng(0).random(150*2**20//8), f, protocol=2)",
                     lambda p: write_numpy(p, 2)),
}

VARIANTS = {
    "var_ints.pkl": ("protocol-4 pickle.dumps(list(range(2_000_000)))",
                     lambda p: write_bytes(p, pickle.dumps(list(range(2_000_000)), protocol=4))),
    "var_floats.pkl": ("protocol-4 pickle.dumps([i*0.5 for i in range(2_000_000)])",
                       lambda p: write_bytes(p, pickle.dumps([i * 0.5 for i in range(2_000_000)], protocol=4))),
    "var_refs.pkl": ("protocol-4 pickle.dumps([NAMES[i%1000] for i in range(2_000_000)])",
                     lambda p: write_bytes(p, pickle.dumps([NAMES[i % 1000] for i in range(2_000_000)], protocol=4))),
    "var_strs.pkl": ("protocol-4 pickle.dumps([f's{i}' for i in range(1_000_000)])",
                     lambda p: write_bytes(p, pickle.dumps([f"s{i}" for i in range(1_000_000)], protocol=4))),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    out = argv[0]
    recipes = dict(RECIPES)
    if "--variants" in argv[1:]:
        recipes.update(VARIANTS)
    os.makedirs(out, exist_ok=True)
    meta_path = os.path.join(out, "meta.json")
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        meta = {}
    stamp = {"recipe_version": RECIPE_VERSION, "python": platform.python_version(),
             "pickle_format": pickle.format_version}
    try:
        import numpy

        stamp["numpy"] = numpy.__version__
    except ImportError:
        pass
    files = meta.get("files", {}) if meta.get("stamp") == stamp else {}
    for name, (recipe, make) in recipes.items():
        path = os.path.join(out, name)
        old = files.get(name)
        if old and old.get("recipe") == recipe and os.path.exists(path) \
                and os.path.getsize(path) == old.get("size"):
            print(f"bench_gen: {name}: up to date ({old['size']} bytes, {old['ops']} ops)", flush=True)
            continue
        print(f"bench_gen: {name}: writing ({recipe})", flush=True)
        make(path)
        info = describe(path)
        info["recipe"] = recipe
        files[name] = info
        print(f"bench_gen: {name}: {info['size']} bytes, {info['ops']} ops", flush=True)
    meta = {"stamp": stamp, "files": files}
    with open(meta_path + ".tmp", "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    os.replace(meta_path + ".tmp", meta_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

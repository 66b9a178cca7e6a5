"""Deterministic inputs for scripts/bench (run with the project venv's Python).

Usage: bench_gen.py OUT_DIR [--variants] [--no-blobs]

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

* joblib1g.joblib: ``joblib.dump(arrays, f, compress=0)`` where ``arrays`` is
  a dict of four float64 arrays of 32 Mi elements each (1 GiB of array data),
  ``np.round(np.random.default_rng(k).random(32 * 2**20), 3)`` for k = 0..3.
  joblib writes each array's raw bytes inline after its NumpyArrayWrapper.
* joblib1g_zlib.joblib: the same dict, ``joblib.dump(arrays, f,
  compress=("zlib", 3))``: one zlib stream of about 280 MB (rounding to 3
  decimals is what makes the doubles compress about 4:1).
* small10k/: 10,000 small model files in 100 folders of 100: in turn a
  ``pickle.dumps`` (protocol 2, 4 or 5) of a dict of lists, floats and
  strings; an uncompressed ``joblib.dump`` of a small float64 array and a
  dict; a ``pickle.dumps`` (protocol 4) of a fitted scikit-learn
  LogisticRegression; and a ``joblib.dump(..., compress=3)`` (zlib) of a
  small array. Sizes 0.2-10 KB.

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


def gb_arrays() -> dict:
    import numpy as np

    return {f"w{k}": np.round(np.random.default_rng(k).random(32 * 2**20), 3) for k in range(4)}


def write_joblib(path: str, compress) -> None:
    import joblib

    tmp = path + ".tmp"
    joblib.dump(gb_arrays(), tmp, compress=compress)
    os.replace(tmp, path)


def write_small10k(path: str) -> None:
    """10,000 small model files under path/ (see the module docstring)."""
    import shutil

    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.random((60, 4))
    y = (x[:, 0] > 0.5).astype(int)
    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for d in range(100):
        folder = os.path.join(tmp, f"d{d:02d}")
        os.makedirs(folder)
        for k in range(100):
            i = d * 100 + k
            kind = i % 4
            if kind == 0:
                obj = {"id": i, "name": f"model-{i}", "weights": [j * 0.5 for j in range(i % 50 + 5)],
                       "tags": ["a", "b", f"t{i % 7}"], "nested": {"lr": 0.01, "epochs": i % 30}}
                with open(os.path.join(folder, f"m{i:05d}.pkl"), "wb") as f:
                    pickle.dump(obj, f, protocol=(2, 4, 5)[i % 3])
            elif kind == 1:
                obj = {"coef": rng.random(i % 200 + 8), "meta": {"i": i, "classes": [0, 1]}}
                joblib.dump(obj, os.path.join(folder, f"m{i:05d}.joblib"), compress=0)
            elif kind == 2:
                m = LogisticRegression(C=1.0 + i % 10, max_iter=200).fit(x, y)
                with open(os.path.join(folder, f"m{i:05d}.bin"), "wb") as f:
                    pickle.dump(m, f, protocol=4)
            else:
                obj = rng.random(i % 300 + 16)
                joblib.dump(obj, os.path.join(folder, f"m{i:05d}.joblib.z"), compress=3)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)


def write_rf300(path: str) -> None:
    import joblib
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    x, y = make_classification(n_samples=2000, n_features=20, random_state=0)
    joblib.dump(RandomForestClassifier(n_estimators=300, random_state=0).fit(x, y), path)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def describe_blob(path: str) -> dict:
    """Size and sha256 only: joblib payloads are not opcodes, so genops cannot count them."""
    if os.path.isdir(path):
        files = sizes = 0
        h = hashlib.sha256()
        for dirpath, dirnames, filenames in sorted(os.walk(path)):
            dirnames.sort()
            for name in sorted(filenames):
                p = os.path.join(dirpath, name)
                files += 1
                sizes += os.path.getsize(p)
                h.update(os.path.relpath(p, path).encode() + b"\0" + sha256_file(p).encode())
        return {"size": sizes, "files": files, "sha256": h.hexdigest()}
    return {"size": os.path.getsize(path), "sha256": sha256_file(path)}


RECIPES = {
    "ops2m.pkl": ("protocol-4 pickle.dumps of [(i, NAMES[i%1000], i*0.5) for i in range(400_000)]; "
                  "NAMES = 1000 shared str objects (memo refs)",
                  lambda p: write_bytes(p, make_ops2m())),
    "dicts300k.pkl": ("protocol-4 pickle.dumps([{'id': i, 'name': f'n{i}', 'v': i * 0.5} for i in range(300_000)]) "
                      "(about 10 MB: many small dicts, issue 12)",
                      lambda p: write_bytes(p, pickle.dumps([{"id": i, "name": f"n{i}", "v": i * 0.5}
                                                             for i in range(300_000)], protocol=4))),
    "np150_p4.pkl": ("pickle.dump(np.random.default_rng(0).random(150*2**20//8), f, protocol=4)",
                     lambda p: write_numpy(p, 4)),
    "np150_p5.pkl": ("pickle.dump(np.random.default_rng(0).random(150*2**20//8), f, protocol=5)",
                     lambda p: write_numpy(p, 5)),
    "np150_p2.pkl": ("pickle.dump(np.random.default_rng(0).random(150*2**20//8), f, protocol=2)",
                     lambda p: write_numpy(p, 2)),
}

# Inputs that are not plain pickles: described by size and hash only.
BLOBS = {
    "joblib1g.joblib": ("joblib.dump({f'w{k}': np.round(np.random.default_rng(k).random(32*2**20), 3) "
                        "for k in range(4)}, f, compress=0)  # 1 GiB of float64",
                        lambda p: write_joblib(p, 0)),
    "joblib1g_zlib.joblib": ("the same dict, joblib.dump(..., compress=('zlib', 3))",
                             lambda p: write_joblib(p, ("zlib", 3))),
    "rf300.joblib": ("joblib.dump(RandomForestClassifier(n_estimators=300, random_state=0).fit("
                     "*make_classification(n_samples=2000, n_features=20, random_state=0)), f)",
                     write_rf300),
    "small10k": ("10,000 small model files in 100 folders: pickle p2/p4/p5 dicts, uncompressed joblib "
                 "arrays, protocol-4 sklearn LogisticRegression, zlib joblib arrays (bench_gen.py)",
                 write_small10k),
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
    blobs = {} if "--no-blobs" in argv[1:] else BLOBS
    for name, (recipe, make) in list(recipes.items()) + list(blobs.items()):
        path = os.path.join(out, name)
        old = files.get(name)
        if old and old.get("recipe") == recipe and os.path.exists(path) \
                and (os.path.isdir(path) or os.path.getsize(path) == old.get("size")):
            print(f"bench_gen: {name}: up to date ({old['size']} bytes)", flush=True)
            continue
        print(f"bench_gen: {name}: writing ({recipe})", flush=True)
        make(path)
        info = describe_blob(path) if name in BLOBS else describe(path)
        info["recipe"] = recipe
        files[name] = info
        print(f"bench_gen: {name}: {info['size']} bytes" + (f", {info['ops']} ops" if "ops" in info else ""), flush=True)
        save_meta(meta_path, stamp, files)  # after each input, so an interrupted run keeps what it made
    save_meta(meta_path, stamp, files)
    return 0


def save_meta(meta_path: str, stamp: dict, files: dict) -> None:
    with open(meta_path + ".tmp", "w") as f:
        json.dump({"stamp": stamp, "files": files}, f, indent=1, sort_keys=True)
    os.replace(meta_path + ".tmp", meta_path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

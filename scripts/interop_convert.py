#!/usr/bin/env python3
"""Interop test for `pkinspect convert --to safetensors`: every output loaded by the real
`safetensors` package and compared with what the real libraries load.

Usage
-----
    .venv/bin/python scripts/interop_convert.py --pkinspect target/debug/pkinspect [--only NAME...] [-v]

Which files
-----------
Every array-bearing TRUSTED fixture, chosen as scripts/interop_extract.py chooses them (its
`select`: manifest entries that are benign, loadable without torch) in fixtures/extract,
fixtures/benign, fixtures/joblib, fixtures/real and fixtures/containers, plus the PyTorch files
(loadable only with torch, which is not installed): the torch_zip entries of fixtures/extract,
the benign entries of fixtures/torch and the non-hostile files of fixtures/torch-real.  Files
under a `hostile` folder are never loaded.

Checks, per file
----------------
It runs `pkinspect extract FILE -o DIR` and `pkinspect convert FILE --to safetensors -o OUT`.
  - When extract exits 1 (the scan has findings at or above warning), convert must exit 1 and
    write nothing (refused).  Otherwise convert must exit 0.
  - OUT is opened with safetensors.safe_open (the library validates the header: offsets in
    order, contiguous, inside the file) and read with safetensors.numpy.load_file; a file with
    BF16/F8 tensors, which safetensors.numpy cannot load, has those tensors' bytes read at the
    offsets safe_open accepted.
  - For every array of extract's document (its `arrays` entries), under the dotted name of its
    path (duplicates `~2`, ...): the expected array is the REAL object at that path (followed
    with interop_extract's resolver from pickle.load / joblib.load / numpy.load of the same
    file); for PyTorch files it is extract's .npy (whose bytes tests/extract.rs and
    interop_extract.py check against the manifests' sha256).  A numeric array must be a tensor
    of the same shape, the safetensors dtype of its type (bfloat16 -> BF16 from the tensor's
    torch_dtype), and the bytes of np.ascontiguousarray(a) in little-endian order; a
    structured array must be one tensor per numeric field (`name.field`); anything else
    (strings, objects, datetimes, complex128) must be absent and listed in
    __metadata__["pkinspect.left_out"].  No other tensor may be in the file.
  - For fixtures/torch-real, every tensor of its manifest must be in the file (dtype, shape,
    sha256 of the bytes) or listed as left out.
  - __metadata__["pkinspect.graph"] must be JSON.
Exit status 1 on any failure, 0 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import joblib
import numpy as np
import pickle
from safetensors import safe_open
from safetensors.numpy import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import interop_extract as ix  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ["fixtures/extract", "fixtures/benign", "fixtures/joblib", "fixtures/real", "fixtures/containers"]
ST_OF = {("b", 1): "BOOL", ("u", 1): "U8", ("i", 1): "I8", ("i", 2): "I16", ("u", 2): "U16", ("f", 2): "F16",
         ("i", 4): "I32", ("u", 4): "U32", ("f", 4): "F32", ("i", 8): "I64", ("u", 8): "U64", ("f", 8): "F64",
         ("c", 8): "C64"}
TORCH_ST = {"bfloat16": "BF16", "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2"}
NUMPY_ST = {"BOOL", "U8", "I8", "I16", "U16", "F16", "I32", "U32", "F32", "I64", "U64", "F64", "C64"}


def torch_files() -> list[tuple[Path, str, dict]]:
    out = []
    for m in json.loads((ROOT / "fixtures/extract/manifest.json").read_text()):
        if m.get("loader") == "torch_zip":
            out.append((ROOT / "fixtures/extract" / m["file"], "torch", m))
    for m in json.loads((ROOT / "fixtures/torch/manifest.json").read_text()):
        if m.get("kind") == "benign" and not m.get("expect_rules"):
            out.append((ROOT / "fixtures/torch" / m["file"], "torch", m))
    real = json.loads((ROOT / "fixtures/torch-real/manifest.json").read_text())["files"]
    for name, m in real.items():
        if not m.get("hostile"):
            out.append((ROOT / "fixtures/torch-real" / name, "torch-real", m))
    return out


def read_st(path: Path) -> tuple[dict, dict]:
    """{name: (dtype, shape, bytes)} and the metadata, through the real library."""
    with safe_open(str(path), framework="numpy") as f:          # validates the header
        meta = f.metadata() or {}
        info = {k: (f.get_slice(k).get_dtype(), list(f.get_slice(k).get_shape())) for k in f.keys()}
    tensors = {}
    if all(d in NUMPY_ST for d, _ in info.values()):
        for k, a in load_file(str(path)).items():
            tensors[k] = (info[k][0], list(a.shape), np.ascontiguousarray(a).tobytes())
    else:
        raw = path.read_bytes()
        n = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + n])
        for k, (d, shape) in info.items():
            s, e = header[k]["data_offsets"]
            tensors[k] = (d, shape, raw[8 + n + s:8 + n + e])
    return tensors, meta


def le_bytes(a: np.ndarray) -> bytes:
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return a.tobytes()


def expected(name: str, a: np.ndarray, torch_dtype: str | None, out: dict, left: set) -> None:
    """What the array `a` named `name` must become: out[name] = (dtype, shape, bytes), or a
    name in `left`."""
    dt = a.dtype
    if dt.names:
        for f in dt.names:
            sub = a[f]
            expected(f"{name}.{f}", sub, None, out, left)
        return
    st = TORCH_ST.get(torch_dtype or "") or ST_OF.get((dt.kind, dt.itemsize))
    if st is None or dt.hasobject or dt.subdtype is not None and dt.subdtype[0].names:
        left.add(name)
        return
    out[name] = (st, list(a.shape), le_bytes(a))


def claim(names: set, base: str) -> str:
    name, n = base, 1
    while name == "__metadata__" or name in names:
        n += 1
        name = f"{base}~{n}"
    names.add(name)
    return name


NO_REAL: list[str] = []   # files no real loader could read: compared with extract's .npy instead


def load_real(file: Path, loader: str):
    """The real object, as interop_extract loads it; Python 2 pickles need encoding="latin1"
    (as numpy and joblib pass it), and some joblib files are named .pkl."""
    tries = [lambda: ix.load_real(file, loader)[0]]  # (value, read as latin1)
    if b"NDArrayWrapper" in file.read_bytes():
        # joblib < 0.10 files: joblib.load reads the companion files the wrappers name.
        tries.insert(0, lambda: joblib.load(file))
    if loader == "pickle":
        tries += [lambda: pickle.load(open(file, "rb"), encoding="latin1"), lambda: joblib.load(file)]
    if loader in ("npy", "npz"):
        def np_latin1():
            with np.load(file, allow_pickle=True, encoding="latin1") as z:
                return {k: z[k] for k in z.files}
        tries += [lambda: np.load(file, allow_pickle=True, encoding="latin1")] if loader == "npy" else [np_latin1]
    for t in tries:
        try:
            value = t()
        except Exception:                             # noqa: BLE001
            continue
        # A joblib < 0.10 file written under Python 2, which joblib.load refuses: pickle.load
        # gives the wrappers, not the arrays; its tensors are compared with extract's .npy
        # (which interop_extract checks against the companion files read with numpy.load).
        return None if holds_wrapper(value) else value
    return None


def holds_wrapper(value, depth: int = 0) -> bool:
    if type(value).__name__ in ("NDArrayWrapper", "ZNDArrayWrapper"):
        return True
    if depth < 20 and isinstance(value, (list, tuple)):
        return any(holds_wrapper(v, depth + 1) for v in value)
    if depth < 20 and isinstance(value, dict):
        return any(holds_wrapper(v, depth + 1) for v in value.values())
    return False


def real_arrays(file: Path, loader: str, manifest: dict, doc: dict, outdir: Path, fails: list):
    """(name, array, torch_dtype) for every arrays entry: the real object's array, or (torch)
    extract's .npy."""
    torch_dtype = {}
    stack = [doc.get("pickles")]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            if x.get("type") == "tensor":
                torch_dtype[x.get("file")] = x.get("torch_dtype")
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    real = None
    ctx = ix.Ctx(file, loader, outdir, ix.collect_ids(doc), False)
    ix.PROTOCOL[0] = manifest.get("protocol") if isinstance(manifest.get("protocol"), int) else 4
    if not loader.startswith("torch"):
        real = load_real(file, loader)
        if real is None:
            NO_REAL.append(file.name)
    if loader == "npz":
        def roots_py(p):
            if p is None:
                return real
            m = (p.get("member") or "")
            return real.get(m[:-4] if m.endswith(".npy") else m, real)
    else:
        def roots_py(_p):
            return real
    names: set = set()
    for e in doc.get("arrays", []):
        path = e["path"]
        base = ".".join(str(s) for s in path) or "root"
        name = claim(names, base)
        if real is None:
            a = np.load(outdir / e["file"], allow_pickle=False)
        else:
            jroot, proot = ix.root_for(ctx, doc, e, roots_py)
            try:
                if jroot is None:
                    a = proot
                    for step in path:
                        a = ix.py_step(a, step)
                else:
                    _node, a, _err = ix.resolve(ctx, jroot, proot, path)
            except Exception as err:                  # noqa: BLE001
                fails.append((file.name, name, f"cannot resolve on the real object: {err}"))
                continue
        if not isinstance(a, np.ndarray):
            fails.append((file.name, name, f"the real value is a {type(a).__name__}"))
            continue
        yield name, a, torch_dtype.get(e["file"])


def check_file(pk: str, file: Path, loader: str, manifest: dict, work: Path, fails: list) -> tuple[int, str]:
    """Checks one file; returns (tensors compared, outcome)."""
    outdir = work / file.name.replace(".", "_")
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    st_path = outdir / "out.safetensors"
    ex = subprocess.run([pk, "extract", str(file), "-o", str(outdir / "x"), "-q"], capture_output=True)
    cv = subprocess.run([pk, "convert", str(file), "--to", "safetensors", "-o", str(st_path), "-q"],
                        capture_output=True)
    err = cv.stderr.decode("utf-8", "replace").strip().splitlines()
    docs = sorted((outdir / "x").glob("*.json"))
    doc = json.loads(docs[0].read_text()) if docs else {}
    if any(f.get("severity") in ("warning", "error") for f in doc.get("findings", [])):
        if cv.returncode != 1 or st_path.exists():
            fails.append((file.name, "<run>", f"extract found findings; convert exited {cv.returncode}"
                                               f"{' and wrote a file' if st_path.exists() else ''}"))
        return 0, "refused"
    if ex.returncode != 0 or cv.returncode != 0:
        fails.append((file.name, "<run>", f"extract exited {ex.returncode}, convert {cv.returncode}: "
                                           f"{err[-1] if err else ''}"))
        return 0, "error"
    leftovers = sorted(p.name for p in outdir.iterdir() if p.name not in ("x", "out.safetensors"))
    if leftovers:
        fails.append((file.name, "<run>", f"convert left files behind: {leftovers}"))
    try:
        tensors, meta = read_st(st_path)
    except Exception as e:                            # noqa: BLE001
        fails.append((file.name, "<load>", f"safetensors cannot load the output: {type(e).__name__}: {e}"))
        return 0, "error"
    left_listed = {x["name"] for x in json.loads(meta.get("pkinspect.left_out", "[]"))}
    try:
        graph = json.loads(meta["pkinspect.graph"])
    except (KeyError, ValueError) as e:
        fails.append((file.name, "<metadata>", f"pkinspect.graph is not JSON: {e}"))
        graph = []
    # every array node of the graph names tensors of the file, and no node a staged file
    stack = [graph]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            named = [x["tensor"]] if isinstance(x.get("tensor"), str) else []
            named += list(x["tensors"].values()) if isinstance(x.get("tensors"), dict) else []
            for t in named:
                if t not in tensors:
                    fails.append((file.name, t, "the graph names a tensor the file lacks"))
            if "file" in x and x.get("type") in ("ndarray", "tensor", "str", "bytes", "bytearray"):
                fails.append((file.name, "<metadata>", f"a graph node still names a file: {x['file']}"))
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    want, left = {}, set()
    for name, a, tdt in real_arrays(file, loader.split("-")[0] if loader == "torch-real" else loader,
                                    manifest, doc, outdir / "x", fails):
        expected(name, a, tdt, want, left)
    for name in sorted(left):
        if name in tensors:
            fails.append((file.name, name, "written, but safetensors cannot hold its type"))
        elif name not in left_listed:
            fails.append((file.name, name, "left out but not listed in pkinspect.left_out"))
    for name in sorted(set(tensors) - set(want)):
        fails.append((file.name, name, "a tensor no array of the file accounts for"))
    for name, (d, shape, data) in want.items():
        got = tensors.get(name)
        if got is None:
            fails.append((file.name, name, "missing from the output"))
        elif got[0] != d or list(got[1]) != shape:
            fails.append((file.name, name, f"{got[0]} {got[1]} != expected {d} {shape}"))
        elif got[2] != data:
            fails.append((file.name, name, "data bytes differ"))
    if loader == "torch-real":
        for name, t in manifest.get("tensors", {}).items():
            got = tensors.get(name)
            if got is None:             # a checkpoint's manifest may name a state dict's keys alone
                ends = [k for k in tensors if k.endswith("." + name)]
                got = tensors[ends[0]] if len(ends) == 1 else None
            if got is None:
                if name not in left_listed:
                    fails.append((file.name, name, "manifest tensor neither written nor listed as left out"))
                continue
            st = TORCH_ST.get(t["dtype"]) or ST_OF.get((np.dtype(t["dtype"]).kind, np.dtype(t["dtype"]).itemsize))
            if got[0] != st or list(got[1]) != t["shape"] or hashlib.sha256(got[2]).hexdigest() != t["sha256"]:
                fails.append((file.name, name, f"differs from the manifest ({got[0]} {got[1]})"))
    return len(want), f"{len(tensors)} tensors, {len(left_listed)} left out"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pkinspect", required=True)
    ap.add_argument("--only", nargs="*", default=None, help="only files whose name contains one of these")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    pk = shutil.which(args.pkinspect) or args.pkinspect
    if not os.path.isfile(pk):
        print(f"pkinspect binary not found: {args.pkinspect}", file=sys.stderr)
        return 2
    files = []
    for f in FOLDERS:
        chosen, _skipped = ix.select(ROOT / f)
        files += [c for c in chosen if c[1] != "torch_zip"]
    files += torch_files()
    if args.only:
        files = [x for x in files if any(o in x[0].name for o in args.only)]
    work = Path(tempfile.mkdtemp(prefix="pkinspect-interop-convert-"))
    fails: list = []
    compared = refused = written = 0
    try:
        for path, loader, m in files:
            n, outcome = check_file(pk, path, loader, m, work, fails)
            compared += n
            refused += outcome == "refused"
            written += n > 0 or outcome not in ("refused", "error")
            if args.verbose:
                print(f"{path.relative_to(ROOT)}: {outcome}, {n} compared")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"files: {len(files)} ({written} converted, {refused} refused as extract's scan has findings)")
    print(f"tensors compared with the real libraries (torch: extract's .npy): {compared}")
    if NO_REAL:
        print(f"no real loader reads {len(NO_REAL)} file(s); compared with extract's .npy: {', '.join(NO_REAL)}")
    print(f"failures: {len(fails)}")
    for file, name, why in fails:
        print(f"  FAIL {file}: {name}: {why}")
    return 1 if fails or compared == 0 else 0


if __name__ == "__main__":
    sys.exit(main())

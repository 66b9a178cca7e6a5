#!/usr/bin/env python3
"""Regenerate every pkinspect test fixture under fixtures/ from scratch.

Recipe
------
    python -m venv .venv
    .venv/bin/pip install -r scripts/requirements.txt
    .venv/bin/python scripts/gen_fixtures.py

What it writes (these sub-folders are deleted and rebuilt; fixtures/README.md
is left alone):

* fixtures/benign/   pickles written by the REAL libraries with
  pickle.dump(obj, f, protocol=P): plain Python data (protocols 0-5), numpy
  arrays and scalars (2/4/5, one at 0), scikit-learn models (4, some 2/5),
  scipy/pandas objects, numpy RNGs; plus torch_state_dict_data.pkl, a PyTorch
  data.pkl emitted byte by byte (FORMATS.md §4.3, no torch).  manifest.json
  lists file, protocol, made_by, description and the imported globals
  (computed statically by scripts/pickle_globals.py).
* fixtures/joblib/   joblib.dump (uncompressed) of models/arrays at protocols
  2, 4, 5, with manifest.json.  Not valid plain pickles (raw array payloads).
* fixtures/containers/  compressed joblib, .npy/.npz, wrapped pickles, archives,
  real legacy joblib files, zip anomalies, polyglots, truncated streams
  (scripts/fixtures_containers.py, which can also run alone), with manifest.json.
* fixtures/hostile/  hand-written opcode streams (scripts/fixtures_hostile.py
  via scripts/pickle_emit.py) with manifest.json (file, expect_rules,
  description).  SAFETY: payloads are only `echo pkinspect-fixture` /
  `touch /tmp/pkinspect-marker`, and these files are NEVER unpickled by Python.
* fixtures/dis/      `python -m pickletools <file>` output for every benign
  and hostile file where it succeeds; failures (and outputs too large to keep)
  are listed in SKIPPED.txt.  pickletools never imports or calls anything.

Determinism: the script re-executes itself with PYTHONHASHSEED=0 (set/frozenset
iteration order of str elements depends on the string hash seed) and with
single-threaded BLAS/OpenMP.  All estimators use random_state=0.  Running it
twice must give byte-identical fixtures (check with sha256sum).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

_ENV_PINS = {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
             "MKL_NUM_THREADS": "1", "TZ": "UTC", "LC_ALL": "C.UTF-8"}

if any(os.environ.get(k) != v for k, v in _ENV_PINS.items()):
    env = dict(os.environ, **_ENV_PINS)
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

sys.path.insert(0, str(Path(__file__).resolve().parent))

import joblib  # noqa: E402

import fixtures_benign as fb  # noqa: E402
from joblib_payloads import memmap_payloads  # noqa: E402
import fixtures_containers  # noqa: E402
import fixtures_hostile as fh  # noqa: E402
from pickle_globals import scan_globals  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"
DIS_MAX_BYTES = 200_000       # larger pickletools listings are not kept (see SKIPPED.txt)
DIS_TIMEOUT_S = 60


def fresh(name: str) -> Path:
    d = FIX / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def gen_benign() -> list[Path]:
    d = fresh("benign")
    manifest = []
    entries = fb.plain_python() + fb.numpy_fixtures() + fb.sklearn_fixtures() + fb.misc_fixtures()
    for fname, obj, proto, made_by, desc in entries:
        path = d / fname
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=proto)
        data = path.read_bytes()
        manifest.append({"file": fname, "protocol": proto, "made_by": made_by,
                         "description": desc, "globals": scan_globals(data)})
    torch = fb.torch_state_dict_data()
    (d / "torch_state_dict_data.pkl").write_bytes(torch)
    manifest.append({
        "file": "torch_state_dict_data.pkl", "protocol": 2,
        "made_by": "hand-emitted opcode by opcode (scripts/pickle_emit.py) following FORMATS.md §4.3; "
                   "no torch",
        "description": "PyTorch zip-checkpoint data.pkl for OrderedDict{'weight': float32 (2,3) "
                       "stride (3,1) -> persistent id ('storage', torch.FloatStorage, '0', 'cpu', 6), "
                       "'bias': float32 (2,) -> ('storage', torch.FloatStorage, '1', 'cpu', 2)} via "
                       "torch._utils._rebuild_tensor_v2 and BINPERSID; no memo, no FRAME.",
        "globals": scan_globals(torch)})
    manifest.sort(key=lambda m: m["file"])
    write_json(d / "manifest.json", manifest)
    return sorted(d.glob("*.pkl"))


def gen_joblib() -> None:
    d = fresh("joblib")
    manifest = []
    for fname, obj, proto, made_by, desc in fb.joblib_fixtures():
        joblib.dump(obj, d / fname, protocol=proto)
        manifest.append({"file": fname, "protocol": proto, "made_by": made_by, "description": desc,
                         "memmap_payloads": memmap_payloads(d / fname)})
    manifest.sort(key=lambda m: m["file"])
    write_json(d / "manifest.json", manifest)


def gen_hostile() -> list[Path]:
    d = fresh("hostile")
    manifest = []
    names = set()
    for fname, data, rules, desc in fh.build():
        assert fname not in names, fname
        names.add(fname)
        assert len(data) < 2_000_000, fname
        (d / fname).write_bytes(data)
        manifest.append({"file": fname, "expect_rules": rules, "description": desc})
    manifest.sort(key=lambda m: m["file"])
    write_json(d / "manifest.json", manifest)
    return sorted(d.glob("*.pkl"))


def run_pickletools(path: Path) -> tuple[bool, bytes, str]:
    """Run `python -m pickletools path`; returns (ok, stdout, reason-if-not-ok).

    stdout is read incrementally and the process is killed once it exceeds
    DIS_MAX_BYTES (pickletools indents by mark depth, so deep-mark files would
    otherwise produce gigabytes)."""
    proc = subprocess.Popen([sys.executable, "-m", "pickletools", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    chunks, total, too_big = [], 0, False
    assert proc.stdout is not None
    while True:
        chunk = proc.stdout.read(65536)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > DIS_MAX_BYTES:
            too_big = True
            proc.kill()
            break
    try:
        _, err = proc.communicate(timeout=DIS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        return False, b"", "timeout"
    if too_big:
        return False, b"", f"pickletools output exceeds {DIS_MAX_BYTES} bytes (not kept)"
    if proc.returncode != 0:
        lines = [ln for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]
        return False, b"", (lines[-1] if lines else f"exit {proc.returncode}")
    return True, b"".join(chunks), ""


def gen_dis(groups: dict[str, list[Path]]) -> None:
    d = fresh("dis")
    skipped = []
    for sub, files in groups.items():
        for path in files:
            ok, out, why = run_pickletools(path)
            if ok:
                (d / f"{sub}__{path.name}.txt").write_bytes(out)
            else:
                skipped.append(f"{sub}/{path.name}: {why}")
    (d / "SKIPPED.txt").write_text(
        "# Files for which `python -m pickletools <file>` (CPython "
        f"{sys.version.split()[0]}) did not produce a kept listing, with the last line of its error.\n"
        + "".join(s + "\n" for s in skipped), encoding="utf-8")


def main() -> None:
    benign = gen_benign()
    gen_joblib()
    fixtures_containers.generate()
    hostile = gen_hostile()
    gen_dis({"benign": benign, "hostile": hostile})
    total = sum(p.stat().st_size for p in FIX.rglob("*") if p.is_file())
    print(f"fixtures written to {FIX} ({total} bytes)")


if __name__ == "__main__":
    main()

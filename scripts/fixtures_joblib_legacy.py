#!/usr/bin/env python3
"""Write fixtures/joblib-legacy/: joblib's own shipped test data, copied unchanged.

    .venv/bin/python scripts/fixtures_joblib_legacy.py          # deletes and rebuilds the folder

joblib ships, in joblib/test/data/, the files its test suite loads to check that every
older format still reads (joblib/test/test_numpy_pickle.py,
test_joblib_pickle_across_python_versions): files written by joblib 0.8.4 to 0.11 under
Python 2.7 and 3.3 to 3.6, uncompressed, zlib ("ZF" files of joblib < 0.10), gzip, bz2, lzma
and xz, and with the companion files of joblib < 0.10: `<name>_NN.npy` next to an
NDArrayWrapper pickle and `<name>_NN.npy.z` (ZF-framed raw array bytes) next to a
ZNDArrayWrapper one (shared/FORMATS.md section 1.3). They are copied from the installed
joblib (pinned in scripts/constraints.txt, installed with pip from PyPI), so the copy is
reproducible without a network.

Every one of them holds the same list, written by joblib/test/data/create_numpy_pickle.py
(the expected values are in joblib's test; scripts/interop_extract.py repeats them):

    [np.arange(5, dtype='<i8'), np.arange(5, dtype='<f8'),
     np.array([1, 'abc', {'a': 1, 'b': 2}], dtype='O'), np.arange(256, dtype=np.uint8).tobytes(),
     np.matrix([0, 1, 2], dtype='<i8'), "C'est l'\\xe9t\\xe9 !"]

manifest.json: a list of {file, loader, made_by, python, joblib, sha256, companions,
description}; `loader` is "joblib" for the files joblib.load reads under Python 3,
"joblib_py2" for the Python 2 files it refuses ("You may be trying to read with python 3 a
joblib pickle generated with python 2"), and companion files carry `companion_of` (they are
part of their pickle, not files to load). NOTICE.txt records the source of each file with its
sha256, and joblib's BSD-3-Clause licence.

Safety: nothing is loaded or unpickled here; files are copied byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

import joblib

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "joblib-legacy"
SRC = Path(joblib.__file__).resolve().parent / "test" / "data"
NAME = re.compile(r"^joblib_(?P<joblib>[0-9.]+?(?:\.dev0)?)_.*_py(?P<py>\d)(?P<minor>\d)_np\d+")

NOTICE = """\
Files in this folder are joblib's own test data, copied unchanged by
scripts/fixtures_joblib_legacy.py from the joblib {ver} package installed with pip
(joblib/test/data/; the version is pinned in scripts/constraints.txt).

{files}

joblib's licence (from joblib-{ver}.dist-info/licenses/LICENSE.txt):

{licence}"""


def licence() -> str:
    dist = SRC.parent.parent.parent / f"joblib-{joblib.__version__}.dist-info" / "licenses" / "LICENSE.txt"
    return dist.read_text(encoding="utf-8")


def main() -> int:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    names = sorted(p.name for p in SRC.iterdir() if p.name.startswith("joblib_"))
    mains = [n for n in names if ".npy" not in n]
    manifest, lines = [], []
    for name in names:
        data = (SRC / name).read_bytes()
        (OUT / name).write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        lines.append(f"  {name:64s} sha256 {digest}")
        owner = next((m for m in mains if name != m and name.startswith(m + "_")), None)
        m = NAME.match(name)
        if m is None:
            raise SystemExit(f"unexpected file name {name}")
        entry = {"file": name, "made_by": f"joblib {m['joblib']} under Python {m['py']}.{m['minor']} "
                                          f"(joblib/test/data/create_numpy_pickle.py), shipped with joblib "
                                          f"{joblib.__version__}",
                 "python": f"{m['py']}.{m['minor']}", "joblib": m["joblib"], "sha256": digest}
        if owner is not None:
            entry["companion_of"] = owner
            entry["description"] = "companion array file of a joblib < 0.10 pickle"
        else:
            entry["loader"] = "joblib" if m["py"] == "3" else "joblib_py2"
            entry["companions"] = [n for n in names if n.startswith(name + "_")]
            entry["description"] = "joblib test data: the list create_numpy_pickle.py writes"
        manifest.append(entry)
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    (OUT / "NOTICE.txt").write_text(NOTICE.format(ver=joblib.__version__, files="\n".join(lines),
                                                  licence=licence()), encoding="utf-8")
    print(f"{len(mains)} pickles and {len(names) - len(mains)} companion files copied to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

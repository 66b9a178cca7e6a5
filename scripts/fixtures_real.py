#!/usr/bin/env python3
"""Write fixtures/real/: benign files written by the REAL libraries from real objects.

    .venv/bin/python scripts/fixtures_real.py            # deletes and rebuilds fixtures/real/
    .venv/bin/python scripts/fixtures_real.py --check-twice   # also rebuilds in a second
                                                         # interpreter and compares sha256

These are the cases real users have that a scanner must pass clean: numpy memmaps, random
generators and every bit generator, pandas indexes of every kind and the Series/DataFrames
built on them, pandas scalars and missing values, Gaussian-process kernels, KD/Ball trees,
numpy.matrix and masked arrays, fitted GridSearchCV/RandomizedSearchCV (masked arrays in
cv_results_), bytes through _codecs.encode, enums, pure paths, compiled regexes, a long
protocol-0 str, a partial whose BUILD state sets __doc__, collections containers and
datetime/decimal/fractions/uuid/zoneinfo values. Each is written with pickle.dump at protocols
2, 4 and 5 (some at 0-5, a few at one protocol only) and with joblib.dump (uncompressed, and
compress=3), all at the default joblib protocol (4).

numpy_testdata/ holds numpy's own test-data pickles, copied unchanged from the pinned numpy
wheel (BSD-3-Clause, see numpy_testdata/NOTICE.txt).

manifest.json: a list of {file, case, made_by, protocol, description}; protocol is the
pickle protocol (for joblib files, the protocol joblib used; for copied files, the highest
protocol of the pickle's opcodes, read statically with pickletools.genops).

Determinism: re-executes with PYTHONHASHSEED=0, single-threaded BLAS/OpenMP and TZ=UTC (as
scripts/gen_fixtures.py does); every estimator uses random_state=0; numpy's global RandomState
is seeded before each case (scipy.stats distributions hold it); the fit/score times of the
search estimators' cv_results_ and refit_time_ are set to 0.0 (they are wall-clock times).

Safety: nothing is loaded; the objects are built here. Nothing under fixtures/hostile and the
other hostile folders is touched.
"""

from __future__ import annotations

import os
import sys

_ENV_PINS = {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
             "MKL_NUM_THREADS": "1", "TZ": "UTC", "LC_ALL": "C.UTF-8"}

if __name__ == "__main__" and any(os.environ.get(k) != v for k, v in _ENV_PINS.items()):
    os.execve(sys.executable, [sys.executable, *sys.argv], dict(os.environ, **_ENV_PINS))

import collections  # noqa: E402
import datetime  # noqa: E402
import decimal  # noqa: E402
import enum  # noqa: E402
import fractions  # noqa: E402
import functools  # noqa: E402
import hashlib  # noqa: E402
import http  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import pickle  # noqa: E402
import pickletools  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402
import zoneinfo  # noqa: E402
from pathlib import Path  # noqa: E402

import joblib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy  # noqa: E402
import scipy.stats  # noqa: E402
import sklearn  # noqa: E402
from sklearn.gaussian_process import GaussianProcessRegressor  # noqa: E402
from sklearn.gaussian_process.kernels import (RBF, ConstantKernel, DotProduct, Exponentiation,  # noqa: E402
                                              Product, Sum, WhiteKernel)
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV  # noqa: E402
from sklearn.neighbors import BallTree, KDTree, KNeighborsClassifier  # noqa: E402

warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "real"
NUMPY_DIR = Path(np.__file__).resolve().parent

PY = f"CPython {platform.python_version()}"
NP = f"numpy {np.__version__}"
PD = f"pandas {pd.__version__}"
SK = f"scikit-learn {sklearn.__version__}"
SP = f"scipy {scipy.__version__}"
JL = f"joblib {joblib.__version__}"

STD = ("p2", "p4", "p5", "joblib", "joblib_z3")
ALL = ("p0", "p1", "p2", "p3", "p4", "p5", "joblib", "joblib_z3")


def _X():
    rng = np.random.RandomState(0)
    X = rng.rand(24, 3)
    y = np.array([0, 1] * 12)
    y[:6] = 1 - y[:6]
    return X, y


# ---------------------------------------------------------------------------- numpy


def numpy_cases():
    tmp = tempfile.mkdtemp(prefix="pkinspect-real-")
    mm = np.memmap(os.path.join(tmp, "mm.dat"), dtype="<f8", mode="w+", shape=(2, 3))
    mm[:] = np.arange(6, dtype="<f8").reshape(2, 3)
    mm.flush()
    # The 6th element is the temporary folder, deleted once the case is written.
    out = [("numpy_memmap", mm, "np.memmap (mode w+, float64 2x3, of a temporary file) pickled as such: "
            "_reconstruct(numpy.memmap, ...) at every protocol; joblib writes it through a NumpyArrayWrapper",
            STD, (NP,), tmp)]
    rest = [
        ("numpy_default_rng", np.random.default_rng(0), "np.random.default_rng(0): Generator(PCG64)"),
        ("numpy_generator_mt19937", np.random.Generator(np.random.MT19937(0)), "Generator(MT19937(0))"),
        ("numpy_generator_pcg64", np.random.Generator(np.random.PCG64(0)), "Generator(PCG64(0))"),
        ("numpy_generator_pcg64dxsm", np.random.Generator(np.random.PCG64DXSM(0)), "Generator(PCG64DXSM(0))"),
        ("numpy_generator_philox", np.random.Generator(np.random.Philox(0)), "Generator(Philox(0))"),
        ("numpy_generator_sfc64", np.random.Generator(np.random.SFC64(0)), "Generator(SFC64(0))"),
        ("numpy_randomstate", np.random.RandomState(0), "np.random.RandomState(0) (legacy MT19937)"),
        ("numpy_randomstate_pcg64", np.random.RandomState(np.random.PCG64(0)), "RandomState(PCG64(0))"),
        ("numpy_bitgen_mt19937", np.random.MT19937(0), "MT19937(0) alone"),
        ("numpy_bitgen_pcg64", np.random.PCG64(0), "PCG64(0) alone"),
        ("numpy_bitgen_pcg64dxsm", np.random.PCG64DXSM(0), "PCG64DXSM(0) alone"),
        ("numpy_bitgen_philox", np.random.Philox(0), "Philox(0) alone"),
        ("numpy_bitgen_sfc64", np.random.SFC64(0), "SFC64(0) alone"),
        ("numpy_seedsequence", np.random.SeedSequence(0), "np.random.SeedSequence(0)"),
        ("numpy_matrix", np.matrix([[1.0, 2.0], [3.0, 4.0]]), "numpy.matrix 2x2 float64"),
        ("numpy_masked_float", np.ma.array([1.0, 2.0, 3.0], mask=[False, True, False], fill_value=-1.0),
         "numpy.ma masked float64 array with a fill value"),
        ("numpy_masked_object", np.ma.array(np.array(["a", 1, None], dtype=object), mask=[True, False, False]),
         "numpy.ma masked object array (as in cv_results_ param_* columns)"),
        ("numpy_masked_structured", np.ma.array(np.array([(1, 2.0), (3, 4.0)], dtype=[("a", "<i4"), ("b", "<f8")]),
                                                mask=[(False, True), (False, False)]),
         "numpy.ma masked structured array"),
        ("numpy_masked_nomask", np.ma.array([1, 2, 3]), "numpy.ma array without a mask (nomask)"),
    ]
    out += [(n, o, d, STD, (NP,)) for n, o, d in rest]
    return out


# ---------------------------------------------------------------------------- pandas


def pandas_indexes():
    return [
        ("int", pd.Index([3, 1, 2], dtype="int64"), "Index int64"),
        ("float", pd.Index([0.5, 1.5, np.nan]), "Index float64 with NaN"),
        ("str", pd.Index(["a", "b", "c"]), "Index of str (pandas 3 default str dtype)"),
        ("object", pd.Index([1, "a", None], dtype=object), "Index of object dtype (int, str, None)"),
        ("range", pd.RangeIndex(0, 6, 2), "RangeIndex(0, 6, 2)"),
        ("categorical", pd.CategoricalIndex(["x", "y", "x"], categories=["x", "y", "z"]), "CategoricalIndex"),
        ("datetime", pd.date_range("2020-01-01", periods=3, freq="D"), "DatetimeIndex, naive, freq D"),
        ("datetime_utc", pd.date_range("2020-01-01", periods=3, freq="h", tz="UTC"), "DatetimeIndex tz=UTC"),
        ("datetime_tz", pd.date_range("2020-03-29", periods=3, freq="h", tz="Europe/Paris"),
         "DatetimeIndex tz=Europe/Paris (zoneinfo)"),
        ("timedelta", pd.timedelta_range("1 day", periods=3), "TimedeltaIndex"),
        ("period", pd.period_range("2020-01", periods=3, freq="M"), "PeriodIndex freq M"),
        ("interval", pd.interval_range(0, 3), "IntervalIndex (right-closed)"),
        ("multi", pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["k", "n"]), "MultiIndex (str x int)"),
    ]


def pandas_cases():
    out = []
    libs = (PD, NP)
    for kind, idx, desc in pandas_indexes():
        n = len(idx)
        out.append((f"pandas_index_{kind}", idx, desc, STD, libs))
        out.append((f"pandas_series_{kind}", pd.Series(np.arange(n, dtype="int64"), index=idx, name="s"),
                    f"Series int64 on {desc}", STD, libs))
        out.append((f"pandas_frame_{kind}", pd.DataFrame({"a": np.arange(n, dtype="float64"), "b": [f"v{i}" for i in range(n)]},
                                                         index=idx),
                    f"DataFrame (float64, str columns) on {desc}", STD, libs))
    na = pd.DataFrame({
        "Int64": pd.array([1, None, 3], dtype="Int64"),
        "boolean": pd.array([True, None, False], dtype="boolean"),
        "string": pd.array(["a", None, "c"], dtype="string"),
        "Float64": pd.array([0.5, None, 1.5], dtype="Float64"),
        "dt": pd.to_datetime(["2020-01-01", None, "2020-01-03"]),
        "td": pd.to_timedelta(["1s", None, "3s"]),
        "cat": pd.Categorical(["a", None, "b"]),
    })
    out += [
        ("pandas_frame_na_nat", na, "DataFrame with pd.NA (Int64, boolean, string, Float64) and NaT (datetime, timedelta) "
         "and a missing category", STD, libs),
        ("pandas_na", pd.NA, "pd.NA scalar", STD, libs),
        ("pandas_nat", pd.NaT, "pd.NaT scalar", STD, libs),
        ("pandas_categorical", pd.Categorical(["a", "b", "a"], categories=["b", "a"], ordered=True),
         "ordered pd.Categorical", STD, libs),
        ("pandas_scalars", {
            "timestamp": pd.Timestamp("2020-01-02 03:04:05.123456"),
            "timestamp_tz": pd.Timestamp("2020-01-02 03:04:05", tz="Europe/Paris"),
            "timestamp_utc": pd.Timestamp("2020-01-02", tz="UTC"),
            "timedelta": pd.Timedelta("1 days 02:03:04"),
            "period": pd.Period("2020-01", freq="M"),
            "interval": pd.Interval(0.0, 1.5, closed="left"),
        }, "pandas Timestamp (naive, Europe/Paris, UTC), Timedelta, Period, Interval scalars", STD, libs),
    ]
    return out


# ---------------------------------------------------------------------------- scikit-learn


def _pin_search_times(search):
    for k in ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time"):
        search.cv_results_[k] = np.zeros_like(search.cv_results_[k])
    search.refit_time_ = 0.0
    return search


def sklearn_cases():
    X, y = _X()
    libs = (SK, NP, SP)
    kern = ConstantKernel(1.0) * RBF(length_scale=1.0) + WhiteKernel(noise_level=0.1)
    gpr = GaussianProcessRegressor(kernel=kern, random_state=0).fit(X, X[:, 0] + 0.1 * X[:, 1])
    grid = _pin_search_times(GridSearchCV(LogisticRegression(max_iter=200), {"C": [0.1, 1.0], "fit_intercept": [True, False]},
                                          cv=3).fit(X, y))
    np.random.seed(0)
    rand = _pin_search_times(RandomizedSearchCV(LogisticRegression(max_iter=200),
                                                {"C": scipy.stats.loguniform(1e-2, 1e1), "class_weight": [None, "balanced"]},
                                                n_iter=3, cv=3, random_state=0).fit(X, y))
    return [
        ("sklearn_kernel_sum", RBF(1.0) + WhiteKernel(0.5), "kernels.Sum(RBF, WhiteKernel)", STD, libs),
        ("sklearn_kernel_product", Product(ConstantKernel(2.0), RBF(0.5)), "kernels.Product(ConstantKernel, RBF)", STD, libs),
        ("sklearn_kernel_exponentiation", Exponentiation(DotProduct(sigma_0=1.0), 2), "kernels.Exponentiation(DotProduct, 2)",
         STD, libs),
        ("sklearn_kernel_rbf", RBF(length_scale=[1.0, 2.0, 3.0]), "anisotropic RBF", STD, libs),
        ("sklearn_kernel_white", WhiteKernel(noise_level=0.1), "WhiteKernel", STD, libs),
        ("sklearn_kernel_nested", Sum(Product(ConstantKernel(), RBF()), WhiteKernel()), "Sum(Product(C, RBF), White)", STD, libs),
        ("sklearn_gpr_fitted", gpr, "GaussianProcessRegressor(C*RBF+White, random_state=0) fitted on 24x3", STD, libs),
        ("sklearn_kdtree", KDTree(X, leaf_size=4), "KDTree on 24x3, leaf_size=4", STD, libs),
        ("sklearn_balltree", BallTree(X, leaf_size=4), "BallTree on 24x3, leaf_size=4", STD, libs),
        ("sklearn_knn_kd_tree", KNeighborsClassifier(n_neighbors=3, algorithm="kd_tree").fit(X, y),
         "KNeighborsClassifier(algorithm='kd_tree') fitted", STD, libs),
        ("sklearn_knn_ball_tree", KNeighborsClassifier(n_neighbors=3, algorithm="ball_tree").fit(X, y),
         "KNeighborsClassifier(algorithm='ball_tree') fitted", STD, libs),
        ("sklearn_gridsearchcv", grid, "GridSearchCV(LogisticRegression, C x fit_intercept, cv=3) fitted; cv_results_ "
         "param_* are numpy masked arrays; fit/score times set to 0.0", STD, libs),
        ("sklearn_randomizedsearchcv", rand, "RandomizedSearchCV(LogisticRegression, C ~ scipy.stats.loguniform, "
         "class_weight list, n_iter=3, random_state=0) fitted; masked arrays in cv_results_; times set to 0.0", STD, libs),
    ]


# ---------------------------------------------------------------------------- Python


def python_cases():
    partial = functools.partial(int, base=2)
    partial.__doc__ = "Parse a binary numeral (a user-documented partial)."
    big = ("pkinspect \u00e9\u4e2d\\ line\n" * 3000)[:70000]
    return [
        ("py_bytes_codecs", bytes(range(256)), "bytes 0..255; protocol 2 writes _codecs.encode(str, 'latin1')", ("p2",), ()),
        ("numpy_array_codecs", np.arange(6, dtype="<i4").reshape(2, 3), "int32 2x3 array at protocol 2: its data goes "
         "through _codecs.encode", ("p2",), (NP,)),
        ("py_enum_httpstatus", http.HTTPStatus.OK, "http.HTTPStatus.OK (IntEnum)", STD, ()),
        ("py_enum_regexflag", re.IGNORECASE | re.MULTILINE, "re.RegexFlag IGNORECASE|MULTILINE (IntFlag)", STD, ()),
        ("pandas_enum_resolution", pd._libs.tslibs.dtypes.Resolution.RESO_SEC,
         "pandas._libs.tslibs.dtypes.Resolution.RESO_SEC (Enum)", STD, (PD,)),
        ("pandas_enum_no_default", pd.api.extensions.no_default, "pandas.api.extensions.no_default (an Enum member)", STD, (PD,)),
        ("py_purepath", {"posix": pathlib.PurePosixPath("/data/model.pkl"), "windows": pathlib.PureWindowsPath(r"C:\data\m.pkl")},
         "pathlib.PurePosixPath and PureWindowsPath", STD, ()),
        ("py_regex", re.compile(r"^[a-z]+(\d{2,})$", re.IGNORECASE), "re.compile(...) (pickles as re._compile(pattern, flags))",
         STD, ()),
        ("py_long_str_p0", big, "a 70,000-character str (non-ASCII, backslashes, newlines) at protocol 0: one UNICODE line "
         "longer than 64 KiB", ("p0",), ()),
        ("py_partial_doc", partial, "functools.partial(int, base=2) with __doc__ set: the BUILD state's dict sets __doc__",
         STD, ()),
        ("py_ordereddict", collections.OrderedDict([("b", 1), ("a", [2, 3])]), "collections.OrderedDict", ALL, ()),
        ("py_defaultdict", collections.defaultdict(list, {"a": [1], "b": []}), "collections.defaultdict(list)", ALL, ()),
        ("py_deque", collections.deque([1, "two", 3.0], maxlen=5), "collections.deque(maxlen=5)", ALL, ()),
        ("py_counter", collections.Counter("abracadabra"), "collections.Counter", ALL, ()),
        ("py_date", datetime.date(2020, 2, 29), "datetime.date", ALL, ()),
        ("py_time", datetime.time(12, 34, 56, 789, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))),
         "datetime.time with a fixed-offset timezone", ALL, ()),
        ("py_datetime", datetime.datetime(2020, 1, 2, 3, 4, 5, 6), "naive datetime.datetime", ALL, ()),
        ("py_datetime_utc", datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc), "datetime with timezone.utc",
         ALL, ()),
        ("py_datetime_zoneinfo", datetime.datetime(2020, 3, 29, 1, 30, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
         "datetime with ZoneInfo('Europe/Paris')", ALL, ()),
        ("py_timedelta", datetime.timedelta(days=-1, seconds=5, microseconds=7), "datetime.timedelta", ALL, ()),
        ("py_zoneinfo", zoneinfo.ZoneInfo("America/New_York"), "zoneinfo.ZoneInfo (ZoneInfo._unpickle)", ALL, ()),
        ("py_decimal", [decimal.Decimal("3.14159"), decimal.Decimal("-Infinity"), decimal.Decimal("NaN")],
         "decimal.Decimal values", ALL, ()),
        ("py_fraction", fractions.Fraction(-22, 7), "fractions.Fraction", ALL, ()),
        ("py_uuid", uuid.UUID("12345678-1234-5678-1234-567812345678"), "uuid.UUID (pickles with SafeUUID)", ALL, ()),
    ]


# ---------------------------------------------------------------------------- numpy test data

NUMPY_TESTDATA = [
    "_core/tests/data/astype_copy.pkl",
    "lib/tests/data/py2-np0-objarr.npy",
    "lib/tests/data/py2-objarr.npy",
    "lib/tests/data/py2-objarr.npz",
    "lib/tests/data/py3-objarr.npy",
    "lib/tests/data/py3-objarr.npz",
    "random/tests/data/generator_pcg64_np121.pkl.gz",
    "random/tests/data/generator_pcg64_np126.pkl.gz",
    "random/tests/data/sfc64_np126.pkl.gz",
]

NUMPY_NOTICE = """numpy test data, copied unchanged from the numpy {ver} wheel (numpy/<path> below).

These files were written by numpy's developers for numpy's own test suite (Python 2 era object
arrays, pickles naming numpy.core.multiarray, RNG states of numpy 1.21/1.26). They are benign and
pkinspect must scan them clean.

{files}

numpy is distributed under the BSD-3-Clause licence; its text, from the wheel's LICENSE.txt:

{licence}
"""


def _licence_text():
    lic = NUMPY_DIR.parent / f"numpy-{np.__version__}.dist-info" / "licenses" / "LICENSE.txt"
    text = lic.read_text(encoding="utf-8")
    return text.split("\n----")[0].strip() + "\n"


def _max_protocol(data):
    """Highest protocol among a pickle's opcodes (pickletools.genops: static, nothing runs)."""
    for dec in (lambda d: d, lambda d: __import__("gzip").decompress(d)):
        try:
            d = dec(data)
        except OSError:
            continue
        if d[:6] == b"\x93NUMPY":
            major = d[6]
            hl = int.from_bytes(d[8:10], "little") if major == 1 else int.from_bytes(d[8:12], "little")
            d = d[(10 if major == 1 else 12) + hl:]
        try:
            return max(op.proto for op, _, _ in pickletools.genops(d))
        except Exception:  # noqa: BLE001
            return None
    return None


def copy_numpy_testdata(manifest):
    dest = OUT / "numpy_testdata"
    dest.mkdir()
    lines = []
    for rel in NUMPY_TESTDATA:
        src = NUMPY_DIR / rel
        name = rel.split("/")[0].strip("_") + "_" + src.name  # core_astype_copy.pkl, lib_py2-objarr.npy, ...
        shutil.copyfile(src, dest / name)
        data = (dest / name).read_bytes()
        proto = None if name.endswith(".npz") else _max_protocol(data)
        lines.append(f"  numpy_testdata/{name:42s} <- numpy/{rel}  sha256 {hashlib.sha256(data).hexdigest()}")
        manifest.append({"file": f"numpy_testdata/{name}", "case": "numpy_testdata",
                         "made_by": f"numpy developers (numpy test data), copied unchanged from the {NP} wheel: numpy/{rel}",
                         "protocol": proto,
                         "description": "numpy's own test-data file (BSD-3-Clause, see numpy_testdata/NOTICE.txt)"})
    (dest / "NOTICE.txt").write_text(NUMPY_NOTICE.format(ver=np.__version__, files="\n".join(lines), licence=_licence_text()),
                                     encoding="utf-8")


# ---------------------------------------------------------------------------- writing


def write_case(name, obj, desc, formats, libs, manifest):
    libs_s = ", ".join((PY,) + tuple(libs))
    for fmt in formats:
        if fmt.startswith("p"):
            p = int(fmt[1:])
            fname = f"{name}_p{p}.pkl" if not name.endswith(f"_p{p}") else f"{name}.pkl"
            with open(OUT / fname, "wb") as f:
                pickle.dump(obj, f, protocol=p)
            manifest.append({"file": fname, "case": name, "made_by": f"pickle.dump(obj, f, protocol={p}) [{libs_s}]",
                             "protocol": p, "description": desc})
        elif fmt == "joblib":
            fname = f"{name}.joblib"
            joblib.dump(obj, OUT / fname)
            manifest.append({"file": fname, "case": name, "made_by": f"joblib.dump(obj, path) [{libs_s}, {JL}]",
                             "protocol": pickle.DEFAULT_PROTOCOL, "description": desc + "; joblib, uncompressed"})
        elif fmt == "joblib_z3":
            fname = f"{name}_z3.joblib"
            joblib.dump(obj, OUT / fname, compress=3)
            manifest.append({"file": fname, "case": name, "made_by": f"joblib.dump(obj, path, compress=3) [{libs_s}, {JL}]",
                             "protocol": pickle.DEFAULT_PROTOCOL, "description": desc + "; joblib, zlib level 3"})
        else:
            raise ValueError(fmt)


def build_all():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    manifest = []
    groups = [numpy_cases, pandas_cases, sklearn_cases, python_cases]
    for g in groups:
        np.random.seed(0)
        for case in g():
            name, obj, desc, formats, libs = case[:5]
            np.random.seed(0)
            write_case(name, obj, desc, formats, libs, manifest)
            if len(case) > 5:  # the memmap's temporary folder
                del obj
                shutil.rmtree(case[5], ignore_errors=True)
    copy_numpy_testdata(manifest)
    manifest.sort(key=lambda m: m["file"])
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"fixtures/real: {len(manifest)} files, {total / 1e6:.2f} MB")


def digests():
    return {str(p.relative_to(OUT)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(OUT.rglob("*")) if p.is_file()}


def main(argv):
    build_all()
    if "--check-twice" in argv:
        first = digests()
        subprocess.run([sys.executable, __file__], check=True)
        second = digests()
        diff = sorted(k for k in set(first) | set(second) if first.get(k) != second.get(k))
        if diff:
            print("NOT deterministic: " + ", ".join(diff))
            return 1
        print(f"deterministic: {len(first)} files byte-identical across two runs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

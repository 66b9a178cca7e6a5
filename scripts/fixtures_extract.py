#!/usr/bin/env python3
"""Fixtures for `pkinspect extract` (docs/extract.md), with a manifest that says how to load them.

Recipe
------
    python -m venv .venv
    .venv/bin/pip install -r scripts/requirements.txt
    .venv/bin/python scripts/fixtures_extract.py     # deletes and rebuilds fixtures/extract/

Every file here is BENIGN: written by the real libraries from objects this
script has just built (joblib.dump, pickle.dump, numpy.savez), except the
PyTorch checkpoints, which are written byte by byte without torch following
shared/FORMATS.md §4.3 (the torch wheel is not installed: 539 MB + CUDA).
scripts/interop_extract.py loads them with the real libraries and compares
what `pkinspect extract` wrote against the loaded objects.

What it writes (fixtures/extract/):

* sklearn_<name>.<ext>   37 fitted scikit-learn estimators (the 35 classes of
  REQUIRED_ESTIMATORS, asserted, plus MinMaxScaler and LabelEncoder; 45
  distinct estimator classes counting the nested ones they hold:
  TfidfTransformer, LabelEncoder, LabelBinarizer, DummyClassifier/Regressor,
  ExtraTreeRegressor, ...), on iris / wine / make_classification(60) /
  make_regression(60).  Each is written ONE way, cycling through
  joblib.dump uncompressed (protocol 4, and 2/5 for some), joblib with
  compress zlib, gzip, bz2, xz, lzma, lz4, and pickle.dump protocols 2, 4, 5.
* scipy_<kind>_<how>     csr_matrix, csc_matrix, coo_array: pickle p4 and joblib.
* pandas_<kind>_<how>    DataFrame (int64/float64/str/datetime64 columns) and
  Series: pickle p4 and joblib.
* numpy_dict_<how>       a dict of 34 arrays covering every dtype family
  (bool, int8..int64, uint8..uint64, float16/32/64, complex64/128,
  datetime64[ns]/[D], timedelta64[s], S5, U3, >i4, >f8, structured with
  padding + title + subarray, recarray, numpy.matrix, 0-d, (0,3), Fortran
  2-D, transposed 3-D, non-contiguous slice, object arrays holding numeric
  arrays), saved with joblib (uncompressed and zlib/xz/lz4) and pickle p2/p4/p5.
* numpy_root_<what>      single arrays as the pickle root (path [] -> root.npy).
* npz_mixed.npz / npz_mixed_compressed.npz   np.savez / np.savez_compressed
  with plain members and an object-array member (pickled inside the .npy).
* torch_state_dict.pt / torch_checkpoint_nested.pt   zip checkpoints
  (FORMATS.md §4.3): float32/float64/int64/int32/uint8/bool/float16/bfloat16
  storages, a 0-d tensor, a view with storage_offset > 0 and a transposed
  stride, and two tensors sharing one storage.  torch cannot load them here,
  so the manifest records, per tensor, the array `extract` must write
  (dtype, shape, sha256 of the C-contiguous bytes), computed from the
  storage bytes this script wrote with numpy's as_strided.

manifest.json is a list (sorted by file) of
    {file, loader, object, protocol, compress, made_by, description}
plus, for torch_zip files, `tensors` (per tensor: path, torch_dtype, the
dtype/shape/sha256 of the array extract must write, and the storage key,
class, offset and stride it was built from) and `values` (path -> the plain
JSON value at that path), and for npz files `members` (name -> descr).
loader is "pickle" (pickle.load), "joblib" (joblib.load), "npz"
(numpy.load(allow_pickle=True)) or "torch_zip" (not loadable without torch;
use `tensors`).  protocol is the pickle protocol (null for npz; for npz the
object member is pickled by numpy at protocol 4).  compress is null or the
joblib compressor name.

Determinism: like gen_fixtures.py, the script re-executes itself with
PYTHONHASHSEED=0, single-threaded BLAS/OpenMP and TZ=UTC; every estimator
uses random_state=0; gzip mtime is 0 (joblib writes 0), zip timestamps are
fixed (numpy.savez writes 1980-01-01, the torch writer writes 0);
TfidfVectorizer's `_stop_words_id` (an id()) is pinned.  Two runs give
byte-identical files (the script can check this itself: --check-twice).
Total size is kept under 3 MB (asserted).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import warnings
from pathlib import Path

_ENV_PINS = {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
             "MKL_NUM_THREADS": "1", "TZ": "UTC", "LC_ALL": "C.UTF-8"}

if __name__ == "__main__" and any(os.environ.get(k) != v for k, v in _ENV_PINS.items()):
    os.execve(sys.executable, [sys.executable, *sys.argv], dict(os.environ, **_ENV_PINS))

sys.path.insert(0, str(Path(__file__).resolve().parent))

import joblib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import sklearn  # noqa: E402
from numpy.lib.format import dtype_to_descr  # noqa: E402
from numpy.lib.stride_tricks import as_strided  # noqa: E402

from pickle_emit import Emitter  # noqa: E402
import fixtures_torch as ft  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "extract"
MAX_TOTAL = 3_000_000

try:
    import lz4.frame  # noqa: F401
    HAVE_LZ4 = True
except ImportError:                      # lz4 is in scripts/requirements.txt; tolerate its absence
    HAVE_LZ4 = False

LIBS = (f"CPython {sys.version.split()[0]}, numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
        f"joblib {joblib.__version__}, scipy {scipy.__version__}, pandas {pd.__version__}")
STOP_WORDS_ID_PIN = 0x7F1234567890


# ---------------------------------------------------------------------------
# Writers: (suffix, loader, protocol, compress, function(obj, path))
# ---------------------------------------------------------------------------
def _pickle_writer(proto: int):
    def write(obj, path: Path) -> None:
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=proto)
    return (f"p{proto}.pkl", "pickle", proto, None, write,
            f"pickle.dump(obj, f, protocol={proto})")


def _joblib_writer(compress: str | None, proto: int = 4, level: int = 3):
    def write(obj, path: Path) -> None:
        if compress is None:
            joblib.dump(obj, path, protocol=proto)
        else:
            joblib.dump(obj, path, compress=(compress, level), protocol=proto)
    ext = {None: "joblib", "zlib": "joblib.z", "gzip": "joblib.gz", "bz2": "joblib.bz2",
           "xz": "joblib.xz", "lzma": "joblib.lzma", "lz4": "joblib.lz4"}[compress]
    suffix = ext if proto == 4 else f"p{proto}.{ext}"
    made = (f"joblib.dump(obj, path, protocol={proto})" if compress is None
            else f"joblib.dump(obj, path, compress=({compress!r}, {level}), protocol={proto})")
    return (suffix, "joblib", proto, compress, write, made)


PICKLE = {p: _pickle_writer(p) for p in (2, 4, 5)}
JOBLIB = _joblib_writer(None)
JOBLIB_P2 = _joblib_writer(None, proto=2)
JOBLIB_P5 = _joblib_writer(None, proto=5)
JZ = {c: _joblib_writer(c) for c in ("zlib", "gzip", "bz2", "xz", "lzma") + (("lz4",) if HAVE_LZ4 else ())}

# The cycle the estimators go through (one file each).
ESTIMATOR_WRITERS = [JOBLIB, PICKLE[4], JZ["zlib"], PICKLE[2], JZ["gzip"], PICKLE[5], JZ["bz2"],
                     JOBLIB_P2, JZ["xz"], JZ["lzma"], JOBLIB_P5] + ([JZ["lz4"]] if HAVE_LZ4 else [])


def qualname(obj) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


# ---------------------------------------------------------------------------
# scikit-learn
# ---------------------------------------------------------------------------
def _pin_stop_words_id(vec):
    """Tfidf/CountVectorizer keep id(self.stop_words): a memory address. Pin it."""
    assert isinstance(vec._stop_words_id, int)
    vec._stop_words_id = STOP_WORDS_ID_PIN
    return vec


def sklearn_models() -> list[tuple[str, object, str]]:
    """(name, fitted estimator, description); deterministic (random_state=0)."""
    from sklearn.cluster import DBSCAN, KMeans, MiniBatchKMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_iris, load_wine, make_classification, make_regression
    from sklearn.decomposition import PCA, TruncatedSVD
    from sklearn.ensemble import (AdaBoostClassifier, ExtraTreesClassifier, GradientBoostingClassifier,
                                  GradientBoostingRegressor, HistGradientBoostingClassifier,
                                  HistGradientBoostingRegressor, IsolationForest, RandomForestClassifier,
                                  RandomForestRegressor)
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import (ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge,
                                      SGDClassifier)
    from sklearn.naive_bayes import GaussianNB, MultinomialNB
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import LabelEncoder, MinMaxScaler, OneHotEncoder, StandardScaler
    from sklearn.svm import SVC, SVR, LinearSVC
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    iris = load_iris()
    Xi, yi = iris.data, iris.target
    wine = load_wine()
    Xw, yw = wine.data, wine.target
    Xc, yc = make_classification(n_samples=60, n_features=6, n_informative=4, random_state=0)
    Xr, yr = make_regression(n_samples=60, n_features=5, noise=0.5, random_state=0)
    df = pd.DataFrame({"color": ["red", "green", "blue", "green", "red", "blue", "red", "green"],
                       "size": [1.0, 2.5, 3.0, 0.5, 1.5, 2.0, 2.2, 0.7],
                       "count": np.arange(8, dtype=np.int64)})
    ydf = np.array([0, 1, 0, 1, 0, 1, 1, 0])
    sentences = ["the quick brown fox", "jumps over the lazy dog",
                 "pickles are not safe to load", "the dog sleeps", "a fox is quick"]
    rs = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # convergence warnings of the tiny fits
        m = [
            ("logreg_iris", LogisticRegression(max_iter=200, random_state=rs).fit(Xi, yi),
             "LogisticRegression(max_iter=200) on iris (3 classes)"),
            ("linreg_wine", LinearRegression().fit(Xw, yw), "LinearRegression on wine"),
            ("ridge_wine", Ridge(alpha=0.5, random_state=rs).fit(Xw, yw), "Ridge(alpha=0.5) on wine"),
            ("lasso_reg", Lasso(alpha=0.1, random_state=rs).fit(Xr, yr),
             "Lasso(alpha=0.1) on make_regression(60, 5)"),
            ("elasticnet_reg", ElasticNet(alpha=0.1, l1_ratio=0.3, random_state=rs).fit(Xr, yr),
             "ElasticNet(alpha=0.1, l1_ratio=0.3) on make_regression(60, 5)"),
            ("sgd_iris", SGDClassifier(max_iter=20, random_state=rs).fit(Xi, yi),
             "SGDClassifier(max_iter=20) on iris"),
            ("dtree_iris", DecisionTreeClassifier(max_depth=4, random_state=rs).fit(Xi, yi),
             "DecisionTreeClassifier(max_depth=4) on iris: sklearn.tree._tree.Tree with nodes V64"),
            ("dtreereg_reg", DecisionTreeRegressor(max_depth=3, random_state=rs).fit(Xr, yr),
             "DecisionTreeRegressor(max_depth=3) on make_regression"),
            ("rf_clf", RandomForestClassifier(n_estimators=4, max_depth=3, random_state=rs).fit(Xc, yc),
             "RandomForestClassifier(n_estimators=4, max_depth=3) on make_classification(60)"),
            ("rf_reg", RandomForestRegressor(n_estimators=3, max_depth=3, random_state=rs).fit(Xr, yr),
             "RandomForestRegressor(n_estimators=3, max_depth=3) on make_regression(60)"),
            ("extratrees_clf", ExtraTreesClassifier(n_estimators=3, max_depth=3, random_state=rs).fit(Xc, yc),
             "ExtraTreesClassifier(n_estimators=3, max_depth=3)"),
            ("gbc_iris", GradientBoostingClassifier(n_estimators=3, max_depth=2, random_state=rs).fit(Xi, yi),
             "GradientBoostingClassifier(n_estimators=3, max_depth=2) on iris: estimators_ is an object "
             "ndarray (3, 3) of DecisionTreeRegressor"),
            ("gbr_reg", GradientBoostingRegressor(n_estimators=4, max_depth=2, random_state=rs).fit(Xr, yr),
             "GradientBoostingRegressor(n_estimators=4, max_depth=2)"),
            ("hgbc_clf", HistGradientBoostingClassifier(max_iter=4, random_state=rs).fit(Xc, yc),
             "HistGradientBoostingClassifier(max_iter=4), binary: TreePredictor nodes are packed V56"),
            ("hgbr_reg", HistGradientBoostingRegressor(max_iter=4, random_state=rs).fit(Xr, yr),
             "HistGradientBoostingRegressor(max_iter=4)"),
            ("svc_iris", SVC(random_state=rs).fit(Xi, yi), "SVC on iris"),
            ("svr_reg", SVR(C=2.0).fit(Xr, yr), "SVR(C=2.0) on make_regression"),
            ("linearsvc_iris", LinearSVC(max_iter=200, random_state=rs).fit(Xi, yi),
             "LinearSVC(max_iter=200) on iris"),
            ("knn_iris", KNeighborsClassifier(n_neighbors=3).fit(Xi, yi),
             "KNeighborsClassifier(3) on iris: KDTree state tuple, EuclideanDistance64"),
            ("knnreg_reg", KNeighborsRegressor(n_neighbors=4, algorithm="ball_tree").fit(Xr, yr),
             "KNeighborsRegressor(4, algorithm='ball_tree') on make_regression: BallTree"),
            ("gaussiannb_iris", GaussianNB().fit(Xi, yi), "GaussianNB on iris"),
            ("multinomialnb_iris", MultinomialNB().fit(Xi, yi), "MultinomialNB on iris"),
            ("kmeans_iris", KMeans(n_clusters=3, n_init=1, random_state=rs).fit(Xi),
             "KMeans(3, n_init=1) on iris"),
            ("minibatchkmeans_iris", MiniBatchKMeans(n_clusters=3, n_init=1, batch_size=32,
                                                     random_state=rs).fit(Xi),
             "MiniBatchKMeans(3, batch_size=32) on iris"),
            ("dbscan_iris", DBSCAN(eps=0.5, min_samples=5).fit(Xi), "DBSCAN(eps=0.5) on iris"),
            ("pca_iris", PCA(n_components=2, random_state=rs).fit(Xi), "PCA(2) on iris"),
            ("truncsvd_wine", TruncatedSVD(n_components=3, random_state=rs).fit(Xw),
             "TruncatedSVD(3) on wine"),
            ("mlp_iris", MLPClassifier(hidden_layer_sizes=(6,), max_iter=30, random_state=rs).fit(Xi, yi),
             "MLPClassifier((6,), max_iter=30) on iris: AdamOptimizer, LabelBinarizer, RandomState"),
            ("pipeline_iris", Pipeline([("scale", StandardScaler()), ("pca", PCA(n_components=3,
                                                                                 random_state=rs)),
                                        ("clf", LogisticRegression(max_iter=200, random_state=rs))]).fit(Xi, yi),
             "Pipeline(StandardScaler, PCA(3), LogisticRegression) on iris"),
            ("coltrans_df", ColumnTransformer([("cat", OneHotEncoder(), ["color"]),
                                               ("num", StandardScaler(), ["size"])],
                                              remainder="passthrough").fit(df, ydf),
             "ColumnTransformer(OneHotEncoder on 'color', StandardScaler on 'size', passthrough) fitted "
             "on a pandas DataFrame (feature_names_in_ is an object array)"),
            ("onehot_cat", OneHotEncoder(handle_unknown="ignore").fit(df[["color"]].to_numpy()),
             "OneHotEncoder(handle_unknown='ignore') on an object column: categories_ are object arrays"),
            ("scaler_wine", StandardScaler().fit(Xw), "StandardScaler on wine"),
            ("minmax_iris", MinMaxScaler().fit(Xi), "MinMaxScaler on iris"),
            ("tfidf_text", _pin_stop_words_id(TfidfVectorizer().fit(sentences)),
             "TfidfVectorizer on 5 sentences (vocabulary_ dict str->int; _stop_words_id pinned to "
             f"{STOP_WORDS_ID_PIN:#x})"),
            ("isoforest_clf", IsolationForest(n_estimators=4, max_samples=32, random_state=rs).fit(Xc),
             "IsolationForest(n_estimators=4, max_samples=32) on make_classification(60)"),
            ("adaboost_iris", AdaBoostClassifier(n_estimators=4, random_state=rs).fit(Xi, yi),
             "AdaBoostClassifier(n_estimators=4) on iris (DecisionTreeClassifier stumps)"),
            ("labelencoder_str", LabelEncoder().fit(["paris", "tokyo", "paris", "amsterdam"]),
             "LabelEncoder on str labels: classes_ is a <U9 array"),
        ]
    return m


# The estimator classes the fixture set must contain (top-level objects of sklearn_* files).
REQUIRED_ESTIMATORS = {
    "LogisticRegression", "LinearRegression", "Ridge", "Lasso", "ElasticNet", "SGDClassifier",
    "DecisionTreeClassifier", "DecisionTreeRegressor", "RandomForestClassifier", "RandomForestRegressor",
    "ExtraTreesClassifier", "GradientBoostingClassifier", "GradientBoostingRegressor",
    "HistGradientBoostingClassifier", "HistGradientBoostingRegressor", "SVC", "SVR", "LinearSVC",
    "KNeighborsClassifier", "KNeighborsRegressor", "GaussianNB", "MultinomialNB", "KMeans",
    "MiniBatchKMeans", "DBSCAN", "PCA", "TruncatedSVD", "MLPClassifier", "Pipeline", "ColumnTransformer",
    "OneHotEncoder", "StandardScaler", "TfidfVectorizer", "IsolationForest", "AdaBoostClassifier",
}


def sklearn_entries() -> list[tuple]:
    models = sklearn_models()
    missing = REQUIRED_ESTIMATORS - {type(est).__name__ for _, est, _ in models}
    assert not missing, f"estimators missing from the fixture set: {sorted(missing)}"
    out = []
    for i, (name, est, desc) in enumerate(models):
        w = ESTIMATOR_WRITERS[i % len(ESTIMATOR_WRITERS)]
        out.append((f"sklearn_{name}", est, w, desc))
    return out


# ---------------------------------------------------------------------------
# scipy / pandas
# ---------------------------------------------------------------------------
def scipy_entries() -> list[tuple]:
    dense = np.array([[0, 1.5, 0, 0], [2.0, 0, 0, -1.0], [0, 0, 3.25, 0]], dtype=np.float64)
    objs = [("csr_matrix", sp.csr_matrix(dense), "scipy.sparse.csr_matrix 3x4 float64 (indices/indptr int32)"),
            ("csc_matrix", sp.csc_matrix(dense.astype(np.float32)), "scipy.sparse.csc_matrix 3x4 float32"),
            ("coo_array", sp.coo_array(dense.astype(np.int64)),
             "scipy.sparse.coo_array 3x4 int64: `coords` is a tuple of two index arrays")]
    out = []
    for kind, obj, desc in objs:
        out.append((f"scipy_{kind}", obj, PICKLE[4], desc))
        out.append((f"scipy_{kind}", obj, JOBLIB, desc))
    return out


def pandas_entries() -> list[tuple]:
    df = pd.DataFrame({
        "i": np.array([1, -2, 3, 40], dtype=np.int64),
        "f": np.array([0.5, np.nan, -1.25, 1e10], dtype=np.float64),
        "s": ["a", "bb", "ccc", "dddd"],
        "t": pd.to_datetime(["2020-01-01 00:00:00", "2021-02-03 04:05:06", "1999-12-31 23:59:59",
                            "2024-02-29 12:00:00"]),
    })
    ser = pd.Series(np.array([1.5, 2.5, -3.0], dtype=np.float32), name="vals")
    out = []
    for kind, obj, desc in (("dataframe", df, "pandas.DataFrame with int64, float64 (nan), str and "
                             "datetime64 columns and a RangeIndex"),
                            ("series", ser, "pandas.Series float32 named 'vals'")):
        out.append((f"pandas_{kind}", obj, PICKLE[4], desc))
        out.append((f"pandas_{kind}", obj, JOBLIB, desc))
    return out


# ---------------------------------------------------------------------------
# numpy
# ---------------------------------------------------------------------------
TITLED_DTYPE = np.dtype({"names": ["a", "b"], "formats": ["<i4", ("<f8", (2,))], "offsets": [0, 8],
                         "itemsize": 32, "titles": ["T", None]})


def numpy_arrays() -> dict[str, np.ndarray]:
    """A dict of arrays covering the dtype families and memory layouts."""
    a: dict[str, object] = {}
    a["bool"] = np.array([True, False, True, True])
    for t in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"):
        info = np.iinfo(t)
        a[t] = np.array([info.min, 0, 1, info.max], dtype=t)
    a["float16"] = np.array([0.5, -1.5, np.inf, 65504.0], dtype=np.float16)
    a["float32"] = np.array([1.25, -0.0, np.nan, 3.4e38], dtype=np.float32)
    a["float64"] = np.linspace(-1, 1, 7).reshape(7)
    a["complex64"] = np.array([1 + 2j, -0.5j], dtype=np.complex64)
    a["complex128"] = np.array([[1 + 2j, 3 - 4j], [np.nan + 1j, -0.0]], dtype=np.complex128)
    a["datetime64_ns"] = np.array(["2020-01-01T00:00:00.000000001", "NaT", "1970-01-01"], dtype="M8[ns]")
    a["datetime64_D"] = np.array(["2024-02-29", "1900-01-01"], dtype="M8[D]")
    a["timedelta64_s"] = np.array([0, -5, 86400], dtype="m8[s]")
    a["bytes_S5"] = np.array([b"abc", b"hello", b""], dtype="S5")
    a["str_U3"] = np.array(["x", "h\u00e9", "\u4e2d\u6587!"], dtype="U3")
    a["be_i4"] = np.array([1, -2, 0x01020304], dtype=">i4")
    a["be_f8"] = np.array([[1.5, -2.0], [np.pi, 0.0]], dtype=">f8")
    st = np.zeros(3, dtype=TITLED_DTYPE)
    st["a"] = [1, -2, 3]
    st["b"] = [[0.5, 1.5], [2.5, 3.5], [-1.0, 1e-3]]
    a["struct_titled_padded"] = st
    st2 = np.zeros(2, dtype=[("x", "<i2"), ("name", "S4"), ("v", "<f4", (2, 2)), ("flag", "?")])
    st2["x"] = [7, -7]
    st2["name"] = [b"ab", b"wxyz"]
    st2["v"] = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    st2["flag"] = [True, False]
    a["struct_packed"] = st2
    a["struct_aligned"] = np.array([(1, 2.0), (3, 4.0)], dtype=np.dtype([("c", "u1"), ("d", "<f8")], align=True))
    a["zero_d"] = np.array(42.5)
    a["empty_0x3"] = np.zeros((0, 3), dtype=np.int32)
    a["fortran_2d"] = np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4))
    a["transposed_3d"] = np.arange(24, dtype=np.int32).reshape(2, 3, 4).transpose(1, 0, 2)
    a["strided"] = np.arange(10, dtype=np.float64)[::3]
    a["matrix"] = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    a["recarray"] = np.rec.array([(1, 2.5, b"r1"), (2, -0.5, b"r2")],
                                 dtype=[("id", "<i8"), ("w", "<f8"), ("tag", "S2")])
    obj = np.empty(5, dtype=object)
    obj[0] = 1
    obj[1] = "abc"
    obj[2] = None
    obj[3] = np.arange(3, dtype=np.int64)            # a numeric array inside an object array
    obj[4] = {"k": np.array([1.5, 2.5], dtype=np.float32)}
    a["object_1d"] = obj
    obj2 = np.empty((2, 2), dtype=object)
    obj2[0, 0], obj2[0, 1], obj2[1, 0], obj2[1, 1] = 1.5, (2, "t"), [3], np.float64(4.0)
    a["object_2d"] = obj2
    a["shared_a"] = a["float64"]                     # the same array object twice
    return a  # type: ignore[return-value]


def numpy_entries() -> list[tuple]:
    desc = ("dict of numpy arrays: bool, int8..int64, uint8..uint64, float16/32/64, complex64/128, "
            "datetime64[ns]/[D], timedelta64[s], S5, U3, >i4, >f8 (2-D), structured with title 'T' + "
            "padding + subarray (itemsize 32), packed struct with nested subarray, align=True struct, "
            "0-d, (0,3), Fortran 2-D int16, transposed 3-D int32 (protocol 5: axis_order), strided "
            "a[::3], numpy.matrix, numpy.recarray, object arrays (1-D holding an int64 array and a dict "
            "with a float32 array; 2-D), and 'shared_a' which is the same object as 'float64'")
    arrays = numpy_arrays()
    writers = [JOBLIB, JZ["zlib"], JZ["xz"], PICKLE[2], PICKLE[4], PICKLE[5], JOBLIB_P2]
    if HAVE_LZ4:
        writers.append(JZ["lz4"])
    out = [("numpy_dict", arrays, w, desc) for w in writers]
    # arrays as the root of the pickle (path [])
    out.append(("numpy_root_transposed3d", arrays["transposed_3d"], PICKLE[5],
                "int32 array with permuted axes as the root: protocol 5 _frombuffer(..., 'K', axis_order)"))
    out.append(("numpy_root_structured", arrays["struct_titled_padded"], JOBLIB,
                "structured titled/padded array as the root of a joblib dump"))
    out.append(("numpy_root_be_f8", arrays["be_f8"], JZ["gzip"],
                "big-endian >f8 2-D array as the root of a gzip joblib dump (joblib.load byteswaps it)"))
    out.append(("numpy_root_object", arrays["object_1d"], PICKLE[4], "object array as the root"))
    return out


# ---------------------------------------------------------------------------
# npz
# ---------------------------------------------------------------------------
def npz_members() -> dict[str, np.ndarray]:
    obj = np.empty(3, dtype=object)
    obj[0], obj[1], obj[2] = "text", np.arange(4, dtype=np.uint16), {"nested": 1}
    return {"plain_f8": np.linspace(0, 1, 5), "plain_i2_fortran": np.asfortranarray(
        np.arange(6, dtype=np.int16).reshape(2, 3)), "struct": numpy_arrays()["struct_titled_padded"],
        "objects": obj}


# ---------------------------------------------------------------------------
# PyTorch zip checkpoints (FORMATS.md §4.3), no torch
# ---------------------------------------------------------------------------
TORCH_DTYPES = {
    # storage class: (torch dtype, numpy dtype of the storage, numpy dtype extract writes)
    "FloatStorage": ("float32", "<f4", "<f4"),
    "DoubleStorage": ("float64", "<f8", "<f8"),
    "LongStorage": ("int64", "<i8", "<i8"),
    "IntStorage": ("int32", "<i4", "<i4"),
    "ByteStorage": ("uint8", "|u1", "|u1"),
    "BoolStorage": ("bool", "|b1", "|b1"),
    "HalfStorage": ("float16", "<f2", "<f2"),
    "BFloat16Storage": ("bfloat16", "<u2", "<u2"),   # raw bits, docs/extract.md
}


def _bf16_bits(values) -> np.ndarray:
    f = np.asarray(values, dtype=np.float32)
    bits = f.view(np.uint32)
    assert not np.any(bits & 0xFFFF), "values must be exact in bfloat16"
    return (bits >> 16).astype("<u2")


def torch_storages() -> dict[str, tuple[str, np.ndarray]]:
    """key -> (storage class, 1-D numpy array of the storage elements)."""
    return {
        "0": ("FloatStorage", np.arange(12, dtype="<f4") * 0.5 - 2.0),
        "1": ("DoubleStorage", np.array([1.0, -2.5, np.pi, 1e-300], dtype="<f8")),
        "2": ("LongStorage", np.array([75, -2, 3, 2**40, -(2**62)], dtype="<i8")),
        "3": ("HalfStorage", np.array([0.5, 1.5, -2.0, 3.25], dtype="<f2")),
        "4": ("BFloat16Storage", _bf16_bits([0.96875, 1.0, -2.0, 0.5, 256.0, -0.125])),
        "5": ("DoubleStorage", np.arange(20, dtype="<f8") + 0.25),
        "6": ("IntStorage", np.array([-1, 0, 1, 2**31 - 1], dtype="<i4")),
        "7": ("ByteStorage", np.array([0, 1, 254, 255], dtype="|u1")),
        "8": ("BoolStorage", np.array([True, False, True], dtype="|b1")),
        "9": ("LongStorage", np.array([7], dtype="<i8")),
    }


# name, storage key, storage_offset, size, stride (elements)
TORCH_TENSORS = [
    ("w", "0", 0, (3, 4), (4, 1)),
    ("w_t", "0", 0, (4, 3), (1, 4)),            # shares storage '0' with 'w' (transpose)
    ("f64", "1", 0, (2, 2), (2, 1)),
    ("idx", "2", 0, (5,), (1,)),
    ("half", "3", 0, (4,), (1,)),
    ("bf16", "4", 0, (2, 3), (3, 1)),
    ("view_t", "5", 3, (4, 3), (1, 5)),          # storage_offset 3, transposed (non-contiguous)
    ("i32", "6", 0, (2, 2), (2, 1)),
    ("u8", "7", 0, (4,), (1,)),
    ("mask", "8", 0, (3,), (1,)),
    ("num_batches_tracked", "9", 0, (), ()),     # 0-d tensor
]


def _expected_tensor(storage: np.ndarray, offset: int, size, stride) -> np.ndarray:
    it = storage.dtype.itemsize
    base = storage[offset:]
    view = as_strided(base, shape=size, strides=tuple(s * it for s in stride), writeable=False)
    return np.ascontiguousarray(view)


def torch_tensor_pickle(e: Emitter, storages, name: str, key: str, offset: int, size, stride) -> None:
    cls, arr = storages[key]
    e.binunicode(name)
    ft.tensor(e, cls, key, arr.size, offset, size, stride)


def torch_state_dict(e: Emitter, storages) -> None:
    ft.ordered_dict(e)
    e.mark()
    for name, key, offset, size, stride in TORCH_TENSORS:
        torch_tensor_pickle(e, storages, name, key, offset, size, stride)
    e.setitems()


def torch_files() -> list[tuple[str, bytes, list[dict], str, str, list[dict]]]:
    storages = torch_storages()
    raw = {k: arr.tobytes() for k, (cls, arr) in storages.items()}

    def expected(prefix: list) -> list[dict]:
        out = []
        for name, key, offset, size, stride in TORCH_TENSORS:
            cls, arr = storages[key]
            tdt, _sdt, ndt = TORCH_DTYPES[cls]
            want = _expected_tensor(arr, offset, size, stride)
            assert want.dtype == np.dtype(ndt), (name, want.dtype, ndt)
            out.append({"path": prefix + [name], "torch_dtype": tdt, "dtype": dtype_to_descr(want.dtype),
                        "shape": list(size), "sha256": hashlib.sha256(want.tobytes()).hexdigest(),
                        "storage": key, "storage_class": f"torch.{cls}", "storage_offset": offset,
                        "stride": list(stride), "requires_grad": False})
        return out

    files = []
    # 1. a bare state dict: OrderedDict at the root
    e = Emitter().proto(2)
    torch_state_dict(e, storages)
    e.stop()
    files.append(("torch_state_dict.pt", ft.checkpoint("torch_state_dict", e.bytes(), raw),
                  expected([]), "collections.OrderedDict",
                  "state dict (OrderedDict) of 11 tensors: float32 w (3,4) and its transpose w_t sharing "
                  "storage '0', float64, int64 (incl. 2**40, -2**62), float16, bfloat16 (raw bits), a "
                  "float64 view with storage_offset 3 and stride (1,5), int32, uint8, bool, and a 0-d int64",
                  []))
    # 2. a training checkpoint: plain dict {'epoch', 'lr', 'name', 'model': state dict, 'history'}
    e = Emitter().proto(2)
    e.empty_dict().mark()
    e.binunicode("epoch").binint1(3)
    e.binunicode("lr").raw(b"G" + __import__("struct").pack(">d", 0.001))
    e.binunicode("name").binunicode("tiny-net")
    e.binunicode("model")
    torch_state_dict(e, storages)
    e.binunicode("history").empty_list().mark().binint1(1).binint1(2).appends()
    e.setitems().stop()
    files.append(("torch_checkpoint_nested.pt", ft.checkpoint("torch_checkpoint_nested", e.bytes(), raw),
                  expected(["model"]), "builtins.dict",
                  "training checkpoint dict {'epoch': 3, 'lr': 0.001, 'name': 'tiny-net', 'model': "
                  "<the same 11-tensor OrderedDict>, 'history': [1, 2]}",
                  [{"path": ["epoch"], "value": 3}, {"path": ["lr"], "value": 0.001},
                   {"path": ["name"], "value": "tiny-net"}, {"path": ["history"], "value": [1, 2]}]))
    return files


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------
def main_generate(out_dir: Path = OUT) -> list[dict]:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    manifest: list[dict] = []
    names: set[str] = set()

    def add(stem: str, obj, writer, desc: str) -> None:
        suffix, loader, proto, compress, write, made = writer
        fname = f"{stem}.{suffix}"
        assert fname not in names, fname
        names.add(fname)
        write(obj, out_dir / fname)
        manifest.append({"file": fname, "loader": loader, "object": qualname(obj), "protocol": proto,
                         "compress": compress, "made_by": f"{made} [{LIBS}]", "description": desc})

    for stem, obj, w, desc in sklearn_entries() + scipy_entries() + pandas_entries() + numpy_entries():
        add(stem, obj, w, desc)

    members = npz_members()
    for fname, fn in (("npz_mixed.npz", np.savez), ("npz_mixed_compressed.npz", np.savez_compressed)):
        fn(out_dir / fname, **members)
        manifest.append({"file": fname, "loader": "npz", "object": "numpy.lib.npyio.NpzFile",
                         "protocol": None, "compress": "deflate" if "compressed" in fname else None,
                         "made_by": f"numpy.{fn.__name__}(path, **members) [{LIBS}]",
                         "members": {k: dtype_to_descr(v.dtype) for k, v in members.items()},
                         "description": "plain float64, Fortran int16 and structured members, and an "
                                        "object member (pickled by numpy, protocol 4) holding a str, a "
                                        "uint16 array and a dict"})

    for fname, data, tensors, obj, desc, values in torch_files():
        (out_dir / fname).write_bytes(data)
        manifest.append({"file": fname, "loader": "torch_zip", "object": obj, "protocol": 2,
                         "compress": None,
                         "made_by": "written byte by byte by scripts/fixtures_extract.py following "
                                    "shared/FORMATS.md §4.3 (no torch)",
                         "description": desc, "tensors": tensors, "values": values})

    manifest.sort(key=lambda m: m["file"])
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                           encoding="utf-8")
    self_check(out_dir, manifest)
    total = sum(p.stat().st_size for p in out_dir.iterdir())
    assert total < MAX_TOTAL, f"fixtures/extract is {total} bytes (limit {MAX_TOTAL})"
    print(f"{len(manifest)} fixtures written to {out_dir} ({total} bytes)")
    return manifest


def self_check(out_dir: Path, manifest: list[dict]) -> None:
    """Static checks only for the torch files (zip structure, pickle opcodes); the other files
    are our own benign dumps, re-loaded to make sure they round-trip."""
    import pickletools
    import zipfile
    for m in manifest:
        p = out_dir / m["file"]
        if m["loader"] == "torch_zip":
            with zipfile.ZipFile(p) as z:
                assert z.testzip() is None
                data = z.read(f"{p.stem}/data.pkl")
            for _ in pickletools.genops(data):
                pass
        elif m["loader"] == "npz":
            with np.load(p, allow_pickle=True) as z:
                assert set(z.files) == set(m["members"]), p
        elif m["loader"] == "joblib":
            joblib.load(p)
        else:
            with open(p, "rb") as f:
                pickle.load(f)


def sha_tree(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


def main() -> None:
    if "--check-twice" in sys.argv:
        # two fresh interpreters, to catch per-process nondeterminism (ids, hash seeds, clocks)
        subprocess.run([sys.executable, __file__], check=True, stdout=subprocess.DEVNULL)
        first = sha_tree(OUT)
        main_generate()
        second = sha_tree(OUT)
        bad = sorted(set(first) ^ set(second)) + sorted(k for k in first if first.get(k) != second.get(k))
        if bad:
            sys.exit(f"NOT deterministic: {bad}")
        print("deterministic: two runs give identical sha256 for every file")
        return
    main_generate()


if __name__ == "__main__":
    main()

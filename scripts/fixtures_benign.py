"""Benign fixtures: pickles written by the real libraries (pickle.dump / joblib.dump).

Each builder returns a list of entries
    (file name, object, protocol, made_by, description)
and gen_fixtures.py writes them with pickle.dump(obj, f, protocol=P)
(or joblib.dump for the joblib/ folder).  The torch data.pkl is the only
hand-emitted benign file (no torch installed) - see torch_state_dict_data().
"""

from __future__ import annotations

import platform
import warnings

import joblib
import numpy as np
import pandas as pd
import scipy
import scipy.sparse as sp
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris, load_wine, make_classification
from sklearn.decomposition import PCA
from sklearn.ensemble import (GradientBoostingClassifier, HistGradientBoostingClassifier,
                              RandomForestClassifier)
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, LabelEncoder, OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from pickle_emit import Emitter

PY = f"CPython {platform.python_version()}"
NP = f"numpy {np.__version__}"
SK = f"scikit-learn {sklearn.__version__}"
PD = f"pandas {pd.__version__}"
SP = f"scipy {scipy.__version__}"
JL = f"joblib {joblib.__version__}"


def made_by(p: int, *libs: str) -> str:
    return f"pickle.dump(obj, f, protocol={p}) [{', '.join((PY,) + libs)}]"


# ----------------------------------------------------------------------------
# Plain Python data
# ----------------------------------------------------------------------------
def py_data() -> dict:
    shared = [1, 2, 3]
    selfref: list = ["selfref"]
    selfref.append(selfref)
    return {
        "none": None,
        "bools": [True, False],
        "ints": [0, 1, -1, 127, 255, 256, 65535, 65536, 2**31 - 1, -2**31, 2**31, 2**32,
                 2**63 - 1, -2**63, 2**64, 2**64 + 1, -(2**64) - 1, 10**40, -(2**200)],
        "floats": [0.0, -0.0, 1.5, -2.25, 0.1, 1e300, 5e-324, float("nan"), float("inf"),
                   float("-inf")],
        "str": ["", "ascii", "unicode: h\u00e9llo w\u00f6rld \u2713 \u4e2d\u6587 \U0001f40d",
                "newline\nand \\ backslash 'single' \"double\"", "x" * 300],
        "bytes": b"\x00\x01\x7f\x80\xff binary",
        "empty_bytes": b"",
        "long_bytes": bytes(range(256)) + b"\xab" * 44,
        "bytearray": bytearray(b"\x00ba\xffrray"),
        "tuple": (1, "two", 3.0),
        "empty_tuple": (),
        "nested": ((1,), [2, {"three": (3, (4, (5,)))}]),
        "set": {1, 2, 3, "a"},
        "empty_set": set(),
        "frozenset": frozenset({"x", "y", 4}),
        "dict_keys": {1: "one", (2, 3): "tuple key", None: "none key", 2.5: "float key"},
        "shared_a": shared,
        "shared_b": shared,
        "selfref": selfref,
    }


def plain_python() -> list:
    out = []
    for p in range(6):
        out.append((f"py_data_p{p}.pkl", py_data(), p, made_by(p),
                    "Plain Python data: None/bool, small/negative/big ints (> 2**64, -(2**200)), "
                    "floats incl. nan/inf/-0.0, unicode str (incl. non-BMP, newline, quotes, 300 chars), "
                    "bytes/bytearray, tuple, nested containers, set/frozenset, dict with non-str keys, "
                    "a list referenced twice (shared_a/shared_b), and a self-referencing list."))
    for p in (0, 4):
        out.append((f"py_str_lone_surrogate_p{p}.pkl", ["ok", "lone surrogate \udc80 here"], p,
                    made_by(p),
                    "A str with a lone surrogate U+DC80: pickle writes it with 'surrogatepass' "
                    "(protocol 4: bytes ed b2 80, invalid UTF-8; protocol 0: raw-unicode-escape \\udc80)."))
    blob = bytes(range(256)) * 280  # 71,680 bytes > 64 KiB frame target
    for p in (4, 5):
        out.append((f"py_large_bytes_p{p}.pkl", {"head": "before", "blob": blob, "tail": "after"},
                    p, made_by(p),
                    "dict with a 71,680-byte bytes value: the pickler closes the current FRAME and "
                    "writes the large BINBYTES outside any frame, then opens a new FRAME."))
    return out


# ----------------------------------------------------------------------------
# numpy
# ----------------------------------------------------------------------------
def numpy_arrays() -> list[tuple[str, object, str]]:
    struct = np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8", (2,)), ("c", "S3")])
    struct["a"] = [1, -2]
    struct["b"] = [[0.5, 1.5], [2.5, 3.5]]
    struct["c"] = [b"abc", b"xy"]
    return [
        ("int64", np.arange(6, dtype="<i8").reshape(2, 3), "int64 2x3 C-order"),
        ("float32", np.linspace(0, 1, 5, dtype=np.float32), "float32 (5,)"),
        ("bool", np.array([True, False, True]), "bool (3,)"),
        ("complex128", np.array([1 + 2j, -0.5j, 3.0], dtype=np.complex128), "complex128 (3,)"),
        ("int16_forder", np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
         "int16 2x3 Fortran-order (values 0..5 row-major)"),
        ("bigendian_i4", np.array([0, 1, 2], dtype=">i4"), "big-endian >i4 [0, 1, 2]"),
        ("structured", struct, "structured dtype [('a','<i4'),('b','<f8',(2,)),('c','S3')], 2 records"),
        ("0d", np.array(3.5), "0-d float64 array (shape ())"),
        ("empty", np.zeros((0, 3)), "empty float64 array of shape (0, 3)"),
        ("object", np.array([1, "abc", None], dtype=object), "object array [1, 'abc', None]"),
        ("datetime64D", np.array(["2024-01-01", "2024-02-29"], dtype="datetime64[D]"),
         "datetime64[D] (2,)"),
    ]


def numpy_scalars() -> list:
    return [np.int64(5), np.uint8(255), np.float64(2.5), np.float32(1.25), np.float16(-0.5),
            np.bool_(True), np.complex128(1 - 1j), np.str_("hi"), np.bytes_(b"by"),
            np.datetime64("2024-01-01"), np.timedelta64(3, "h")]


def numpy_fixtures() -> list:
    out = []
    for p in (2, 4, 5):
        for key, arr, desc in numpy_arrays():
            out.append((f"numpy_{key}_p{p}.pkl", arr, p, made_by(p, NP), f"numpy array: {desc}"))
        out.append((f"numpy_scalars_p{p}.pkl", numpy_scalars(), p, made_by(p, NP),
                    "list of numpy scalars (int64, uint8, float64, float32, float16, bool_, complex128, "
                    "str_, bytes_, datetime64[D], timedelta64[h]) - numpy._core.multiarray.scalar"))
    out.append(("numpy_int64_p0.pkl", np.arange(6, dtype="<i8").reshape(2, 3), 0, made_by(0, NP),
                "numpy int64 2x3 at protocol 0 (text opcodes; data via _codecs.encode)"))
    # protocol-5-specific layouts
    ro = np.arange(4, dtype=np.float64)
    ro.flags.writeable = False
    out.append(("numpy_readonly_p5.pkl", ro, 5, made_by(5, NP),
                "read-only float64 array: protocol 5 _frombuffer with SHORT_BINBYTES instead of BYTEARRAY8"))
    out.append(("numpy_transposed3d_p5.pkl", np.arange(24, dtype=np.int32).reshape(2, 3, 4).transpose(1, 0, 2),
                5, made_by(5, NP),
                "int32 array with permuted axes: protocol 5 _frombuffer(buf, dtype, shape, 'K', axis_order)"))
    out.append(("numpy_strided_p5.pkl", np.arange(10, dtype=np.int64)[::2], 5, made_by(5, NP),
                "non-contiguous int64 slice a[::2]: protocol 5 falls back to _reconstruct"))
    return out


# ----------------------------------------------------------------------------
# scikit-learn
# ----------------------------------------------------------------------------
def _data():
    iris = load_iris()
    wine = load_wine()
    Xc, yc = make_classification(n_samples=100, random_state=0)
    return iris.data, iris.target, wine.data, wine.target, Xc, yc


STOP_WORDS_ID_PIN = 0x7F1234567890


def _pin_stop_words_id(vec):
    """TfidfVectorizer/CountVectorizer keep id(self.stop_words) - an address that changes
    every run.  Replace it by a fixed int so the pickle is byte-reproducible."""
    assert isinstance(vec._stop_words_id, int)
    vec._stop_words_id = STOP_WORDS_ID_PIN
    return vec


def sklearn_models() -> dict[str, tuple[object, str]]:
    """name -> (fitted estimator, description). Deterministic (random_state=0)."""
    Xi, yi, Xw, yw, Xc, yc = _data()
    df = pd.DataFrame({"color": ["red", "green", "blue", "green", "red", "blue"],
                       "size": [1.0, 2.5, 3.0, 0.5, 1.5, 2.0]})
    sentences = ["the quick brown fox", "jumps over the lazy dog",
                 "pickles are not safe to load", "the dog sleeps"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = {
            "logreg_iris": (LogisticRegression(max_iter=200, random_state=0).fit(Xi, yi),
                            "LogisticRegression(max_iter=200) fitted on iris"),
            "linreg_wine": (LinearRegression().fit(Xw, yw), "LinearRegression fitted on load_wine"),
            "rf_makeclf": (RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(Xc, yc),
                           "RandomForestClassifier(n_estimators=3, max_depth=3) on "
                           "make_classification(n_samples=100, random_state=0)"),
            "svc_iris": (SVC(random_state=0).fit(Xi, yi), "SVC fitted on iris"),
            "dtree_iris": (DecisionTreeClassifier(max_depth=3, random_state=0).fit(Xi, yi),
                           "DecisionTreeClassifier(max_depth=3) on iris"),
            "gbc_iris": (GradientBoostingClassifier(n_estimators=3, random_state=0).fit(Xi, yi),
                         "GradientBoostingClassifier(n_estimators=3) on iris (multiclass)"),
            "hgb_makeclf": (HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(Xc, yc),
                            "HistGradientBoostingClassifier(max_iter=3) on make_classification (binary)"),
            "knn_iris": (KNeighborsClassifier().fit(Xi, yi), "KNeighborsClassifier on iris (KDTree)"),
            "kmeans_iris": (KMeans(n_clusters=3, n_init=1, random_state=0).fit(Xi),
                            "KMeans(n_clusters=3, n_init=1) on iris"),
            "pca_iris": (PCA(n_components=2, random_state=0).fit(Xi), "PCA(n_components=2) on iris"),
            "scaler_iris": (StandardScaler().fit(Xi), "StandardScaler on iris"),
            "pipeline_iris": (Pipeline([("scale", StandardScaler()),
                                        ("clf", LogisticRegression(max_iter=200, random_state=0))]).fit(Xi, yi),
                              "Pipeline(StandardScaler, LogisticRegression) on iris"),
            "coltrans_df": (ColumnTransformer([("onehot", OneHotEncoder(), ["color"]),
                                               ("scale", StandardScaler(), ["size"])]).fit(df),
                            "ColumnTransformer(OneHotEncoder on 'color', StandardScaler on 'size') "
                            "fitted on a 6-row pandas DataFrame"),
            "onehot": (OneHotEncoder(handle_unknown="ignore").fit(df[["color"]].to_numpy()),
                       "OneHotEncoder(handle_unknown='ignore') on a string column"),
            "tfidf": (_pin_stop_words_id(TfidfVectorizer().fit(sentences)),
                      "TfidfVectorizer on 4 short sentences. NOTE: sklearn stores _stop_words_id = "
                      "id(self.stop_words), a memory address; the generator pins it to "
                      f"{STOP_WORDS_ID_PIN:#x} (same LONG1 shape) so the file is reproducible"),
            "mlp_iris": (MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit(Xi, yi),
                         "MLPClassifier(hidden_layer_sizes=(5,), max_iter=20) on iris (not converged)"),
            "functrans_log1p": (FunctionTransformer(func=np.log1p).fit(Xi),
                                "FunctionTransformer(func=numpy.log1p): stores the ufunc numpy.log1p "
                                "as a value (a global that is not called at load)"),
            "gaussiannb_iris": (GaussianNB().fit(Xi, yi), "GaussianNB on iris"),
            "ridge_wine": (Ridge(random_state=0).fit(Xw, yw), "Ridge on load_wine"),
            "labelencoder": (LabelEncoder().fit(["cat", "dog", "bird", "dog"]),
                             "LabelEncoder fitted on string labels (object array classes_)"),
        }
    return m


def sklearn_fixtures() -> list:
    out = []
    models = sklearn_models()
    for name, (est, desc) in models.items():
        out.append((f"sklearn_{name}_p4.pkl", est, 4, made_by(4, SK, NP), desc))
    for name in ("logreg_iris", "rf_makeclf"):
        est, desc = models[name]
        for p in (2, 5):
            out.append((f"sklearn_{name}_p{p}.pkl", est, p, made_by(p, SK, NP), desc))
    return out


# ----------------------------------------------------------------------------
# scipy / pandas / numpy RNG
# ----------------------------------------------------------------------------
def misc_fixtures() -> list:
    csr = sp.csr_matrix(np.array([[0.0, 1.0, 0.0], [2.0, 0.0, 3.0]]))
    df = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, np.nan], "c": ["x", "y", "z"]})
    s = pd.Series([1.0, 2.0, 3.0], name="s")
    tz = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=3, freq="D", tz="Europe/Berlin"),
                       "v": [1, 2, 3]})
    out = [
        ("scipy_csr_matrix_p4.pkl", csr, 4, made_by(4, SP, NP), "scipy.sparse.csr_matrix 2x3, 3 nonzeros"),
        ("pandas_dataframe_p4.pkl", df, 4, made_by(4, PD, NP),
         "pandas DataFrame: int, float (with NaN) and string columns"),
        ("pandas_dataframe_p2.pkl", df, 2, made_by(2, PD, NP), "same DataFrame at protocol 2"),
        ("pandas_series_p4.pkl", s, 4, made_by(4, PD, NP), "pandas float64 Series named 's'"),
        ("pandas_dataframe_tz_p4.pkl", tz, 4, made_by(4, PD, NP),
         "DataFrame with a timezone-aware datetime column (Europe/Berlin): the zoneinfo.ZoneInfo is "
         "pickled as REDUCE(REDUCE(builtins.getattr, (zoneinfo.ZoneInfo, '_unpickle')), "
         "('Europe/Berlin', 1)) - benign use of builtins.getattr"),
        ("numpy_randomstate_p4.pkl", np.random.RandomState(0), 4, made_by(4, NP),
         "numpy.random.RandomState(0): __randomstate_ctor(__bit_generator_ctor(MT19937)) + BUILD"),
        ("numpy_default_rng_p4.pkl", np.random.default_rng(0), 4, made_by(4, NP),
         "numpy.random.default_rng(0): __generator_ctor(__bit_generator_ctor(PCG64)) with SeedSequence"),
    ]
    return out


# ----------------------------------------------------------------------------
# Hand-emitted torch data.pkl (FORMATS.md §4.3) - no torch involved
# ----------------------------------------------------------------------------
def _tensor(e: Emitter, storage: str, key: str, numel: int, size: tuple, stride: tuple) -> None:
    def small_tuple(vals):
        for v in vals:
            e.binint1(v)
        {1: e.tuple1, 2: e.tuple2, 3: e.tuple3}[len(vals)]()

    e.global_("torch._utils", "_rebuild_tensor_v2")
    e.mark()
    e.mark().binunicode("storage").global_("torch", storage).binunicode(key).binunicode("cpu")
    e.binint1(numel).tuple_().binpersid()
    e.binint1(0)                # storage_offset
    small_tuple(size)
    small_tuple(stride)
    e.newfalse()                # requires_grad
    e.global_("collections", "OrderedDict").empty_tuple().reduce()   # backward_hooks
    e.tuple_().reduce()


def torch_state_dict_data() -> bytes:
    e = Emitter().proto(2)
    e.global_("collections", "OrderedDict").empty_tuple().reduce()
    e.mark()
    e.binunicode("weight")
    _tensor(e, "FloatStorage", "0", 6, (2, 3), (3, 1))
    e.binunicode("bias")
    _tensor(e, "FloatStorage", "1", 2, (2,), (1,))
    e.setitems().stop()
    return e.bytes()


# ----------------------------------------------------------------------------
# joblib
# ----------------------------------------------------------------------------
def joblib_fixtures() -> list:
    Xi, yi, _, _, Xc, yc = _data()
    logreg = LogisticRegression(max_iter=200, random_state=0).fit(Xi, yi)
    rf = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(Xc, yc)
    two = {"ints": np.arange(5, dtype="<i8"), "floats": np.linspace(0, 1, 4, dtype=np.float32)}
    objarr = np.array([1, "abc", None], dtype=object)
    out = []
    for p in (2, 4, 5):
        mb = f"joblib.dump(obj, path, protocol={p}) [{PY}, {JL}, {SK}, {NP}]"
        out += [
            (f"joblib_logreg_iris_p{p}.joblib", logreg, p, mb,
             "LogisticRegression(max_iter=200) on iris; coef_/intercept_/classes_ as NumpyArrayWrapper payloads"),
            (f"joblib_rf_makeclf_p{p}.joblib", rf, p, mb,
             "RandomForestClassifier(n_estimators=3, max_depth=3) on make_classification(100)"),
            (f"joblib_two_arrays_p{p}.joblib", two, p, mb,
             "dict {'ints': arange(5) int64, 'floats': linspace float32 (4,)}: two wrappers, memo shared "
             "across payloads"),
            (f"joblib_object_array_p{p}.joblib", objarr, p, mb,
             "object array [1, 'abc', None]: wrapper followed by a nested pickle (no padding byte)"),
        ]
    return out

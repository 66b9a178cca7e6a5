#!/usr/bin/env python3
"""Interop test for `pkinspect convert --to skops` (docs/convert.md "skops").

Usage
-----
    .venv/bin/python scripts/interop_skops.py --pkinspect target/debug/pkinspect [-v] [--keep DIR]

For every scikit-learn fixture this project generated from its own benign
objects (fixtures/benign, fixtures/real, fixtures/extract, fixtures/joblib,
the gzip LogisticRegression of fixtures/containers and fixtures/convert; files
whose name starts with `sklearn_`, or the joblib logreg/rf dumps) it

1. runs `PKINSPECT convert FILE --to skops -o OUT.skops`;
2. loads OUT with skops: `skops.io.load(OUT, trusted=get_untrusted_types(file=OUT))`,
   and checks that the untrusted types pkinspect printed are exactly
   `get_untrusted_types`' list;
3. loads FILE with joblib.load / pickle.load (safe: these files were written by
   the real libraries from objects the generators built);
4. calls predict / predict_proba / predict_log_proba / decision_function /
   transform / score_samples (and, for objects that are not estimators, the
   call that uses them: a kernel's `k(X)`/`k.diag(X)`, a KDTree's `query`, a
   LabelEncoder's `transform(classes_)`) on fixed inputs made from the model
   (a seeded normal matrix with `n_features_in_` columns, the vocabulary of a
   text vectorizer, the categories of an encoder, a DataFrame for a
   ColumnTransformer fitted on one) on both objects, and requires the outputs
   (or the exceptions) to be bit-identical: same dtype, shape and bytes;
5. compares the two object graphs attribute by attribute (arrays bit for bit,
   floats by their bits, RNG states, trees' states, sparse matrices); the only
   accepted difference is a masked array's fill_value, which skops does not
   store.

A fixture listed in EXPECTED_REFUSED must be refused (non-zero exit, nothing
written); every other one is expected to convert. Prints `converted X/Y` and
the estimator classes covered, and exits 1 on any failure.

--sweep: also every estimator of sklearn.utils.all_estimators() that scripts/record_uses.py
fits in memory on tiny data (its constructor arguments and skip list), pickled at protocol 4
into a temporary folder and checked the same way; EXPECTED_UNSUPPORTED lists the ones skops
cannot express. Prints `converted X/Y fitted estimators`.
"""
import argparse
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import types
import warnings
from pathlib import Path

import joblib
import numpy as np
import scipy.sparse as sp
import skops
import skops.io as sio

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ["benign", "real", "extract", "joblib", "convert"]
EXTRA = ["containers/joblib_logreg_iris_p4.joblib.gz"]
METHODS = ["predict", "predict_proba", "predict_log_proba", "decision_function", "transform", "score_samples",
           "kneighbors", "mahalanobis"]

# Fixtures pkinspect must refuse: file name -> why (checked: the refusal must happen).
EXPECTED_REFUSED = {
    "sklearn_dtree_bad_child.pkl": "semantic check: a tree node's child index is out of range",
    "sklearn_dtree_bad_feature.pkl": "semantic check: a split feature is out of range",
    "sklearn_dtree_negative_samples.pkl": "semantic check: a negative sample count",
    "sklearn_hgb_bad_child.pkl": "semantic check: a HistGradientBoosting predictor node's child is out of range",
    "sklearn_logreg_bad_coef.pkl": "semantic check: coef_ disagrees with n_features_in_",
    "sklearn_functrans_lambda.pkl": "a function outside the libraries (custom function)",
    "sklearn_custom_class.pkl": "a custom class",
}


# Estimators of the --sweep that skops cannot express: name -> why (checked: must not convert).
EXPECTED_UNSUPPORTED = {
    "Birch": "its CF tree links leaves both ways (prev_leaf_/next_leaf_): a reference cycle; skops.io.dump refuses Birch too",
}


def fixtures():
    out = []
    for folder in FOLDERS:
        d = ROOT / "fixtures" / folder
        if not d.is_dir():
            continue
        for p in sorted(d.rglob("*")):
            n = p.name
            if "hostile" in p.parts or not p.is_file() or n.endswith((".json", ".txt", ".md")):
                continue
            if n.startswith("sklearn_") or n.startswith(("joblib_logreg", "joblib_rf")):
                out.append(p)
    out += [ROOT / "fixtures" / e for e in EXTRA]
    return out


def load_original(p):
    if ".joblib" in p.name:
        return joblib.load(p)
    with open(p, "rb") as f:
        return pickle.load(f)


# ---------------------------------------------------------------- inputs


def numeric(n, rows=12):
    rs = np.random.RandomState(20261205)
    return rs.normal(loc=1.0, scale=2.0, size=(rows, n))


def inner(est):
    """The estimator whose input the model takes first."""
    from sklearn.pipeline import Pipeline

    if isinstance(est, Pipeline):
        return inner(est.steps[0][1])
    for attr in ("best_estimator_", "estimator"):
        sub = getattr(est, attr, None)
        if sub is not None and hasattr(est, "cv_results_" if attr == "best_estimator_" else "calibrated_classifiers_"):
            return inner(sub)
    return est


def categories_column(cats, rows=12):
    cats = list(cats)
    return [cats[i % len(cats)] for i in range(rows)]


def make_input(est):
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    first = inner(est)
    kind = type(first).__name__
    if kind in ("DictVectorizer", "FeatureHasher"):
        return [{"a": 1.5, "b": 2.0}, {"a": 3.0, "c": 1.0}, {"zzz": 1.0}]
    if kind == "HashingVectorizer":
        return ["the cat sat", "a dog and a cat", ""]
    if kind == "IsotonicRegression":
        return numeric(1)[:, 0]
    if kind == "PatchExtractor":
        return np.random.RandomState(3).rand(2, 8, 8)
    if hasattr(first, "vocabulary_"):
        words = sorted(first.vocabulary_, key=str)
        docs = [" ".join(str(w) for w in words[i::4]) for i in range(4)]
        return docs + ["words that are not in the vocabulary", ""]
    if isinstance(first, ColumnTransformer) and hasattr(first, "feature_names_in_"):
        cols = {}
        for _, trans, columns in first.transformers_:
            if isinstance(columns, slice) or trans == "drop":
                continue
            for j, c in enumerate(columns):
                if isinstance(trans, OneHotEncoder):
                    cols[c] = categories_column(trans.categories_[j])
                else:
                    cols[c] = numeric(1)[:, 0]
        for c in first.feature_names_in_:
            cols.setdefault(c, numeric(1)[:, 0])
        return pd.DataFrame({c: cols[c] for c in first.feature_names_in_})
    if hasattr(first, "categories_") and isinstance(first.categories_, list):  # OneHotEncoder, OrdinalEncoder
        return np.array([categories_column(c) for c in first.categories_], dtype=object).T
    n = getattr(first, "n_features_in_", None) or getattr(est, "n_features_in_", None)
    if n is None and hasattr(first, "data"):  # KDTree / BallTree
        n = np.asarray(first.data).shape[1]
    X = numeric(n or 2)
    # Estimators that take only non-negative data (counts, NMF).
    return np.abs(X) if type(first).__name__ in ("NMF", "MultinomialNB", "ComplementNB") else X


def raised(v):
    return type(v) is tuple and len(v) == 3 and isinstance(v[0], str) and v[0] == "raised"


def outputs(obj):
    from sklearn.gaussian_process.kernels import Kernel
    from sklearn.neighbors import BallTree, KDTree
    from sklearn.preprocessing import LabelEncoder

    res = {}

    def run(name, f):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res[name] = f()
        except Exception as e:  # the same exception on both sides is a match
            res[name] = ("raised", type(e).__name__, str(e))

    if isinstance(obj, Kernel):
        dims = [np.size(v) for k, v in obj.get_params().items() if k.endswith("length_scale") and np.ndim(v) == 1]
        X = numeric(max(dims or [2]))
        run("k(X)", lambda: obj(X))
        run("diag", lambda: obj.diag(X))
        return res
    if isinstance(obj, (KDTree, BallTree)):
        X = make_input(obj)
        run("query", lambda: obj.query(X, k=min(3, len(np.asarray(obj.data)))))
        return res
    if type(obj).__name__ == "MultiLabelBinarizer":
        run("transform", lambda: obj.transform([list(obj.classes_), []]))
        return res
    if isinstance(obj, LabelEncoder) or type(obj).__name__ == "LabelBinarizer":
        run("transform", lambda: obj.transform(obj.classes_))
        if isinstance(obj, LabelEncoder):
            run("inverse_transform", lambda: obj.inverse_transform(np.arange(len(obj.classes_))))
        return res
    X = make_input(obj)
    for m in METHODS:
        if hasattr(obj, m):
            run(m, lambda m=m: getattr(obj, m)(X))
    if all(raised(v) for v in res.values()) and isinstance(X, np.ndarray) and X.ndim == 2:
        # Models that take only non-negative data or data near their training set: uniform [0, 1).
        U = np.random.RandomState(1).rand(*X.shape)
        for m in METHODS:
            if hasattr(obj, m):
                run(m + "(uniform)", lambda m=m: getattr(obj, m)(U))
    if all(raised(v) for v in res.values()):
        # No prediction method (clustering, embeddings, covariance): what fit found.
        run("fitted attributes", lambda: {k: v for k, v in vars(obj).items()
                                          if k.endswith("_") and isinstance(v, (np.ndarray, float, int))})
    if hasattr(obj, "labels_") and not hasattr(obj, "predict"):  # DBSCAN: what fit found
        run("labels_", lambda: obj.labels_)
    if hasattr(obj, "kernel_") and hasattr(obj, "predict"):  # GaussianProcessRegressor
        run("predict_std", lambda: obj.predict(X, return_std=True))
    return res


# ---------------------------------------------------------------- comparison


def fbits(x):
    return struct.pack("<d", x)


def same_value(a, b):
    """Bit-identical: arrays by dtype, shape and bytes."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype == object:
            return all(same_value(x, y) for x, y in zip(a.ravel(), b.ravel()))
        if a.dtype.names:
            # Field by field: padding bytes between fields are not data
            # (sklearn's Tree leaves them uninitialised).
            return all(same_value(np.ascontiguousarray(a[f]), np.ascontiguousarray(b[f])) for f in a.dtype.names)
        return np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()
    if sp.issparse(a):
        return a.format == b.format and a.shape == b.shape and same_value(a.toarray(), b.toarray())
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, float):
        return fbits(a) == fbits(b)
    if isinstance(a, np.generic):
        return a.dtype == b.dtype and a.tobytes() == b.tobytes()
    return a == b


def state_of(o):
    """What the object graph holds for `o`, for the deep comparison."""
    if isinstance(o, np.random.RandomState):
        return o.get_state(legacy=False)
    if isinstance(o, np.random.Generator):
        return {"bit_generator": o.bit_generator.state}
    r = o.__reduce_ex__(4)
    st = r[2] if len(r) > 2 else None
    args = r[1] if len(r) > 1 else ()
    args = tuple(a for a in args if not isinstance(a, type) and not callable(a))
    return {"__args__": args, "__state__": st}


def diff(a, b, path, seen, out):
    if len(out) >= 5:
        return
    if isinstance(a, np.ma.MaskedArray) or isinstance(b, np.ma.MaskedArray):
        if type(a) is not type(b) or not same_value(np.ma.getdata(a), np.ma.getdata(b)) or not same_value(
            np.ma.getmaskarray(a), np.ma.getmaskarray(b)
        ):
            out.append(f"{path}: masked arrays differ")
        return
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == object and b.dtype == object:
        if a.shape != b.shape:
            out.append(f"{path}: shape {a.shape} != {b.shape}")
            return
        for i, (x, y) in enumerate(zip(a.ravel(), b.ravel())):
            diff(x, y, f"{path}.{i}", seen, out)
        return
    if isinstance(a, (np.ndarray, np.generic, float, int, str, bytes, bool, type(None))) or sp.issparse(a):
        if not same_value(a, b):
            out.append(f"{path}: {type(a).__name__} {a!r:.80} != {type(b).__name__} {b!r:.80}")
        return
    if type(a) is not type(b):
        out.append(f"{path}: type {type(a).__name__} != {type(b).__name__}")
        return
    if isinstance(a, (type, np.ufunc, types.FunctionType, types.BuiltinFunctionType)):
        if a is not b:
            out.append(f"{path}: {a!r} is not {b!r}")
        return
    key = (id(a), id(b))
    if key in seen:
        return
    seen.add(key)
    if isinstance(a, dict):
        if list(a.keys()) != list(b.keys()):
            out.append(f"{path}: keys {list(a)[:8]} != {list(b)[:8]}")
            return
        for k in a:
            diff(a[k], b[k], f"{path}.{k}", seen, out)
        return
    if isinstance(a, (list, tuple, set, frozenset)):
        if isinstance(a, (set, frozenset)):
            a, b = sorted(a, key=repr), sorted(b, key=repr)
        if len(a) != len(b):
            out.append(f"{path}: length {len(a)} != {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b)):
            diff(x, y, f"{path}.{i}", seen, out)
        return
    try:
        sa, sb = state_of(a), state_of(b)
    except TypeError as e:
        out.append(f"{path}: cannot compare {type(a).__name__}: {e}")
        return
    diff(sa, sb, path, seen, out)


# ---------------------------------------------------------------- driver


def printed_untrusted(stdout):
    lines = stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("untrusted types: none"):
            return []
        if line.startswith("untrusted types ("):
            return [x.strip() for x in lines[i + 1 :] if x.startswith("  ")]
    return None


def check_one(pk, p, tmp, verbose):
    out = Path(tmp) / (p.name + ".skops")
    r = subprocess.run([pk, "convert", str(p), "--to", "skops", "-o", str(out)], capture_output=True, text=True)
    name = p.name
    if name in EXPECTED_REFUSED:
        if r.returncode == 0 or out.exists():
            return "refused", [f"expected a refusal ({EXPECTED_REFUSED[name]}), got exit {r.returncode}"]
        left = [x for x in os.listdir(tmp) if x.startswith("." + out.name)]
        if left:
            return "refused", [f"refused but left {left}"]
        return "refused", []
    if r.returncode != 0:
        return "failed", [f"convert exit {r.returncode}: {r.stderr.strip()[:400]}"]
    problems = []
    untrusted = sio.get_untrusted_types(file=out)
    if sorted(untrusted) != printed_untrusted(r.stdout):
        problems.append(f"printed untrusted {printed_untrusted(r.stdout)} != skops {sorted(untrusted)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = sio.load(out, trusted=untrusted)
        orig = load_original(p)
    if type(loaded) is not type(orig):
        return "failed", problems + [f"loaded {type(loaded)} != original {type(orig)}"]
    a, b = outputs(orig), outputs(loaded)
    for k in a:
        if not same_value(a[k], b.get(k)):
            problems.append(f"{k}: outputs differ: {str(a[k])[:120]} vs {str(b.get(k))[:120]}")
    diffs = []
    diff(orig, loaded, "<root>", set(), diffs)
    problems += [f"state {d}" for d in diffs]
    raised_ = [k for k, v in a.items() if raised(v)]
    if verbose:
        print(f"  {name}: {type(orig).__name__}: {', '.join(k for k in a if k not in raised_)}"
              f"{'; raised: ' + ', '.join(f'{k} ({a[k][1]})' for k in raised_) if raised_ else ''}; untrusted {untrusted}")
    if not [k for k in a if k not in raised_]:
        problems.append(f"no output to compare (every call raised: {[a[k][1:] for k in raised_]})")
    return ("converted" if not problems else "failed"), problems


def sweep(pk, tmp, verbose):
    """Every scikit-learn estimator record_uses.py fits in memory (all_estimators(), tiny
    data), pickled at protocol 4 into `tmp` and checked like a fixture. Returns
    (counts, failures, unsupported)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import record_uses as ru  # noqa: PLC0415
    from sklearn.utils import all_estimators  # noqa: PLC0415

    warnings.filterwarnings("ignore")
    data, ctor_args = ru._tiny_data(), ru._constructor_args()
    todo = {}
    for kind_ in ("classifier", "regressor", "cluster", "transformer", None):
        for name, cls in all_estimators(type_filter=kind_):
            todo.setdefault(name, (cls, kind_ or "other"))
    counts = {"converted": 0, "refused": 0, "failed": 0, "unsupported": 0, "not fitted": 0}
    failures, unsupported = [], []
    for name, (cls, kind_) in sorted(todo.items()):
        est, why = (None, "skip list") if name in ru.ESTIMATOR_SKIP else ru._fit_estimator(name, cls, kind_, data, ctor_args)
        if est is None:
            counts["not fitted"] += 1
            continue
        p = Path(tmp) / f"sweep_{name}.pkl"
        try:
            p.write_bytes(pickle.dumps(est, protocol=4))
        except Exception:  # noqa: BLE001 - not picklable
            counts["not fitted"] += 1
            continue
        status, problems = check_one(pk, p, tmp, verbose)
        if status == "failed" and problems and problems[0].startswith("convert exit 2") and name in EXPECTED_UNSUPPORTED:
            status = "unsupported"
            unsupported.append(f"{name}: {problems[0][len('convert exit 2: '):]}")
        elif name in EXPECTED_UNSUPPORTED:
            status = "failed"
            failures.append(f"sweep {name}: expected to be refused as unsupported ({EXPECTED_UNSUPPORTED[name]})")
        elif status == "failed":
            failures += [f"sweep {name}: {x}" for x in problems]
        counts[status] += 1
    return counts, failures, unsupported


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sweep", action="store_true",
                    help="also every estimator of sklearn.utils.all_estimators(), fitted in memory on tiny data")
    ap.add_argument("--pkinspect", default=str(ROOT / "target/debug/pkinspect"))
    ap.add_argument("--keep", help="write the .skops files here instead of a temporary folder")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    files = fixtures()
    counts = {"converted": 0, "refused": 0, "failed": 0}
    failures = []
    classes = set()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = args.keep or tmp
        os.makedirs(tmp, exist_ok=True)
        for p in files:
            status, problems = check_one(args.pkinspect, p, tmp, args.verbose)
            counts[status] += 1
            if status == "converted":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    classes.add(type(load_original(p)).__name__)
            failures += [f"{p.relative_to(ROOT)}: {x}" for x in problems]
    expected = len(files) - counts["refused"]
    print(f"skops {skops.__version__}: converted {counts['converted']}/{expected} fixtures expected to convert "
          f"(bit-identical outputs and state), refused {counts['refused']}/{len(EXPECTED_REFUSED)} as expected")
    print(f"{len(classes)} root classes: {', '.join(sorted(classes))}")
    sweep_failed = 0
    if args.sweep:
        with tempfile.TemporaryDirectory() as tmp:
            c, sweep_failures, unsupported = sweep(args.pkinspect, tmp, args.verbose)
        total = c["converted"] + c["failed"] + c["unsupported"] + c["refused"]
        print(f"sweep of all_estimators(): converted {c['converted']}/{total} fitted estimators bit-identically; "
              f"{c['unsupported']} not expressible in skops, {c['refused']} refused, {c['failed']} failed, "
              f"{c['not fitted']} not fitted on the tiny data")
        for u in unsupported:
            print("  unsupported", u[:300])
        failures += sweep_failures
        sweep_failed = c["failed"]
    for f in failures:
        print("FAIL", f)
    return 1 if failures or counts["failed"] or sweep_failed else 0


if __name__ == "__main__":
    sys.exit(main())

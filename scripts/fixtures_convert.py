#!/usr/bin/env python3
"""Write fixtures/convert/: scikit-learn models for `pkinspect convert --to skops`.

    .venv/bin/python scripts/fixtures_convert.py     # deletes and rebuilds fixtures/convert/

Two kinds of files, listed in manifest.json as {file, expect, made_by, description[, path]}:

- expect "convert" (with `skops_untrusted`: what skops.io.get_untrusted_types says of
  skops' own dump of the same object, skops.io.dumps; the .skops pkinspect writes must ask
  for exactly these): estimator types the other fixture folders lack, written by the real
  libraries from objects built here (CalibratedClassifierCV, an SVC fitted on a sparse matrix,
  so support_vectors_ is a csr_matrix, a CountVectorizer + MultinomialNB pipeline, a pipeline
  of a ColumnTransformer fitted on a DataFrame, a 3-class HistGradientBoosting, a binary
  GradientBoosting with subsample, NMF, QuantileTransformer, OrdinalEncoder,
  KBinsDiscretizer, an SGDClassifier whose random_state is a RandomState object).
  scripts/interop_skops.py converts them and compares outputs with the originals.
- expect "refuse" (exit 1, nothing written) or "error" (exit 2, the message names `path`):
  * sklearn_dtree_bad_child.pkl, _bad_feature.pkl, _negative_samples.pkl: a real
    DecisionTreeClassifier pickle (protocol 4) whose tree_.nodes bytes are edited in place
    (the generator finds the array's exact bytes in the pickle): node 0's left child set to
    99 (past node_count), node 0's feature set to 50 (n_features is 4), node 1's
    n_node_samples set to -5;
  * sklearn_hgb_bad_child.pkl: a real HistGradientBoostingClassifier pickle whose first
    TreePredictor's node 0 has its left child edited to 999;
  * sklearn_logreg_bad_coef.pkl: a fitted LogisticRegression whose coef_ was cut to 2 of
    its 4 columns before pickling (n_features_in_ stays 4);
  * sklearn_functrans_lambda.pkl: FunctionTransformer(func=<lambda>); pickle writes a lambda
    by reference, GLOBAL `__main__ <lambda>` (the generator registers it under that name so
    the real pickler can write it);
  * sklearn_custom_class.pkl: a Pipeline whose second step is a class defined in this
    script (`__main__.Doubler`).
  The last two load only where `__main__` defines those names: never load them elsewhere.

Determinism: re-executes with PYTHONHASHSEED=0 and single-threaded BLAS, random_state=0
everywhere; two runs are byte-identical.
"""
import os
import sys

_ENV_PINS = {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
if __name__ == "__main__" and any(os.environ.get(k) != v for k, v in _ENV_PINS.items()):
    os.execve(sys.executable, [sys.executable, *sys.argv], dict(os.environ, **_ENV_PINS))

import json  # noqa: E402
import pickle  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import joblib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import sklearn  # noqa: E402
import skops.io  # noqa: E402
from sklearn.base import BaseEstimator, TransformerMixin  # noqa: E402
from sklearn.calibration import CalibratedClassifierCV  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.decomposition import NMF  # noqa: E402
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier  # noqa: E402
from sklearn.feature_extraction.text import CountVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression, SGDClassifier  # noqa: E402
from sklearn.naive_bayes import MultinomialNB  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import (FunctionTransformer, KBinsDiscretizer, OneHotEncoder,  # noqa: E402
                                   OrdinalEncoder, QuantileTransformer, StandardScaler)
from sklearn.svm import SVC  # noqa: E402
from sklearn.tree import DecisionTreeClassifier  # noqa: E402

warnings.filterwarnings("ignore")
OUT = Path(__file__).resolve().parent.parent / "fixtures" / "convert"
LIBS = (f"CPython {platform.python_version()}, numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
        f"scipy {scipy.__version__}, pandas {pd.__version__}, joblib {joblib.__version__}")


class Doubler(BaseEstimator, TransformerMixin):
    """A custom transformer: a class skops cannot know."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X * 2


# A module-level lambda: its __qualname__ is "<lambda>".
DOUBLE = lambda x: x * 2  # noqa: E731


def iris():
    X, y = load_iris(return_X_y=True)
    return X, y


CORPUS = ["the cat sat on the mat", "the dog ate my homework", "a cat and a dog", "my mat is red",
          "homework is due", "the red dog sat", "a cat ate", "dogs and cats and mats"]
LABELS = [0, 1, 0, 1, 1, 0, 0, 1]


def good_cases():
    X, y = iris()
    rs = np.random.RandomState(0)
    Xs = sp.csr_matrix(np.where(rs.rand(60, 8) < 0.7, 0.0, rs.rand(60, 8)))
    ys = (np.asarray(Xs.sum(axis=1)).ravel() > 1.0).astype(int)
    df = pd.DataFrame({"color": ["red", "green", "blue"] * 20, "size": rs.rand(60), "weight": rs.rand(60) * 3})
    ydf = (df["size"] > 0.5).astype(int).to_numpy()
    yield ("sklearn_calibrated_cv", CalibratedClassifierCV(LogisticRegression(max_iter=500), cv=3).fit(X, y),
           "CalibratedClassifierCV(LogisticRegression, cv=3) on iris (calibrated wrapper)")
    yield ("sklearn_svc_sparse", SVC(probability=True, random_state=0).fit(Xs, ys),
           "SVC fitted on a csr_matrix: support_vectors_ is a scipy sparse matrix")
    text = make_pipeline(CountVectorizer(), MultinomialNB()).fit(CORPUS, LABELS)
    # CountVectorizer stores id(stop_words), a memory address: fixed as scripts/gen_fixtures.py does.
    text.steps[0][1]._stop_words_id = 0x7F1234567890
    yield ("sklearn_countvec_nb", text,
           "Pipeline(CountVectorizer, MultinomialNB) on a small corpus (text vectorizer)")
    ct = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["color"]),
                            ("num", StandardScaler(), ["size", "weight"])])
    yield ("sklearn_coltrans_pipeline_df", Pipeline([("ct", ct), ("lr", LogisticRegression())]).fit(df, ydf),
           "Pipeline(ColumnTransformer(OneHotEncoder, StandardScaler), LogisticRegression) fitted on a DataFrame")
    yield ("sklearn_hgbc_multiclass", HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X, y),
           "HistGradientBoostingClassifier on iris: 3 classes, CyHalfMultinomialLoss")
    yield ("sklearn_gbc_binary_subsample",
           GradientBoostingClassifier(n_estimators=5, subsample=0.8, random_state=0).fit(X, y == 1),
           "binary GradientBoostingClassifier(subsample=0.8): CyHalfBinomialLoss, oob arrays")
    yield ("sklearn_nmf", NMF(n_components=2, init="nndsvd", max_iter=500, random_state=0).fit(X),
           "NMF(n_components=2) on iris (decomposition)")
    yield ("sklearn_quantile", QuantileTransformer(n_quantiles=20, random_state=0).fit(X),
           "QuantileTransformer(n_quantiles=20) on iris")
    yield ("sklearn_ordinal", OrdinalEncoder().fit(df[["color"]].to_numpy()),
           "OrdinalEncoder on a string column (object categories_)")
    yield ("sklearn_kbins", KBinsDiscretizer(n_bins=3, encode="ordinal", quantile_method="averaged_inverted_cdf").fit(X),
           "KBinsDiscretizer(n_bins=3, encode='ordinal') on iris")
    yield ("sklearn_sgd_rs_param", SGDClassifier(random_state=np.random.RandomState(0), max_iter=50).fit(X, y),
           "SGDClassifier whose random_state parameter is a numpy RandomState object")


def find_once(data, needle):
    at = data.find(needle)
    assert at >= 0 and data.find(needle, at + 1) < 0, "the array's bytes must occur exactly once"
    return at


def edit_array(data, arr, field, node, value):
    """Edits one field of one item of `arr`, whose exact bytes occur once in `data`."""
    at = find_once(bytes(data), arr.tobytes())
    dt = arr.dtype
    off = at + node * dt.itemsize + dt.fields[field][1]
    size = dt.fields[field][0].itemsize
    data[off:off + size] = np.array(value, dtype=dt.fields[field][0]).tobytes()


def edited_hgb():
    """A real HistGradientBoostingClassifier pickle whose first predictor's root points past its nodes."""
    X, y = iris()
    clf = HistGradientBoostingClassifier(max_iter=2, random_state=0).fit(X, y == 1)
    data = bytearray(pickle.dumps(clf, protocol=4))
    nodes = clf._predictors[0][0].nodes
    edit_array(data, nodes, "left", 0, 999)
    assert pickle.loads(bytes(data))._predictors[0][0].nodes[0]["left"] == 999
    return bytes(data)


def edited_tree(field, node, value):
    """A real DecisionTreeClassifier pickle with one field of one node edited in place."""
    X, y = iris()
    clf = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    data = bytearray(pickle.dumps(clf, protocol=4))
    nodes = clf.tree_.__getstate__()["nodes"]
    at = find_once(bytes(data), nodes.tobytes())
    dt = nodes.dtype
    off = at + node * dt.itemsize + dt.fields[field][1]
    size = dt.fields[field][0].itemsize
    data[off:off + size] = np.array(value, dtype=dt.fields[field][0]).tobytes()
    assert pickle.loads(bytes(data)).tree_.__getstate__()["nodes"][node][field] == value
    return bytes(data)


def bad_cases():
    yield ("sklearn_dtree_bad_child.pkl", edited_tree("left_child", 0, 99), "refuse", "nodes",
           "DecisionTreeClassifier (max_depth=3, 7 nodes): node 0's left_child edited to 99")
    yield ("sklearn_dtree_bad_feature.pkl", edited_tree("feature", 0, 50), "refuse", "nodes",
           "DecisionTreeClassifier: node 0's feature edited to 50 (n_features is 4)")
    yield ("sklearn_hgb_bad_child.pkl", edited_hgb(), "refuse", "_predictors.0.0.nodes",
           "binary HistGradientBoostingClassifier: node 0 of the first predictor has its left child edited to 999")
    yield ("sklearn_dtree_negative_samples.pkl", edited_tree("n_node_samples", 1, -5), "refuse", "nodes",
           "DecisionTreeClassifier: node 1's n_node_samples edited to -5")
    X, y = iris()
    lr = LogisticRegression(max_iter=500).fit(X, y)
    lr.coef_ = lr.coef_[:, :2].copy()
    yield ("sklearn_logreg_bad_coef.pkl", pickle.dumps(lr, protocol=4), "refuse", "coef_",
           "LogisticRegression whose coef_ has 2 columns while n_features_in_ is 4")
    setattr(sys.modules["__main__"], "<lambda>", DOUBLE)
    ft = FunctionTransformer(func=DOUBLE)
    yield ("sklearn_functrans_lambda.pkl", pickle.dumps(ft, protocol=4), "error", "func",
           "FunctionTransformer(func=lambda x: x * 2): GLOBAL __main__ <lambda>")
    pipe = Pipeline([("scale", StandardScaler()), ("double", Doubler())]).fit(X)
    yield ("sklearn_custom_class.pkl", pickle.dumps(pipe, protocol=4), "error", "steps.1.1",
           "Pipeline(StandardScaler, Doubler) where Doubler is __main__.Doubler, a custom class")


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    manifest = []
    for name, obj, desc in good_cases():
        untrusted = sorted(skops.io.get_untrusted_types(data=skops.io.dumps(obj)))
        with open(OUT / f"{name}.pkl", "wb") as fh:
            pickle.dump(obj, fh, protocol=4)
        manifest.append({"file": f"{name}.pkl", "expect": "convert", "skops_untrusted": untrusted, "description": desc,
                         "made_by": f"pickle.dump(obj, f, protocol=4) [{LIBS}]"})
        joblib.dump(obj, OUT / f"{name}.joblib", compress=3)
        manifest.append({"file": f"{name}.joblib", "expect": "convert", "skops_untrusted": untrusted, "description": desc,
                         "made_by": f"joblib.dump(obj, path, compress=3) [{LIBS}]"})
    for fname, data, expect, path, desc in bad_cases():
        (OUT / fname).write_bytes(data)
        manifest.append({"file": fname, "expect": expect, "path": path, "description": desc,
                         "made_by": f"pickle.dumps(obj, protocol=4), edited as described [{LIBS}]"})
    manifest.sort(key=lambda m: m["file"])
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"fixtures/convert: {len(manifest)} files")


if __name__ == "__main__":
    main()

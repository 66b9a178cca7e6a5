"""Generate src/policy/allowlist.txt: exact globals that legitimate model pickles need.

Run: .venv/bin/python scripts/gen_allowlist.py > src/policy/allowlist.txt
The list is *data* pkinspect embeds; pkinspect never imports Python. This script
imports scikit-learn, numpy, scipy and pandas (trusted, pinned in
scripts/requirements.txt) only to enumerate their data classes and the helper
functions their pickles reference (Cython `__pyx_unpickle_*`, `newObj`, numpy's
`_reconstruct`, pandas' `_new_Index`, ...). Functions in general are NOT listed:
a class constructed from a pickle only stores state, a function may do anything.

Format: one global per line, `module name` exactly as find_class receives them.
"""
import importlib
import inspect
import pkgutil
import sys
import warnings

warnings.filterwarnings("ignore")

# Hand-picked standard-library and numpy/torch names, each seen in real
# pickles (shared/FORMATS.md sections 2-4) and side-effect free to construct.
STATIC = """
builtins set
builtins frozenset
builtins list
builtins dict
builtins tuple
builtins bytearray
builtins bytes
builtins int
builtins float
builtins complex
builtins bool
builtins str
builtins slice
builtins range
builtins object
builtins NotImplemented
builtins Ellipsis
copyreg _reconstructor
copyreg __newobj__
copyreg __newobj_ex__
_codecs encode
collections OrderedDict
collections defaultdict
collections deque
collections Counter
datetime datetime
datetime date
datetime time
datetime timedelta
datetime timezone
decimal Decimal
fractions Fraction
uuid UUID
zoneinfo ZoneInfo
zoneinfo ZoneInfo._unpickle
zoneinfo._zoneinfo ZoneInfo
zoneinfo._zoneinfo ZoneInfo._unpickle
numpy ndarray
numpy dtype
numpy matrix
numpy.matrixlib.defmatrix matrix
numpy record
numpy recarray
numpy memmap
numpy core.multiarray._reconstruct
numpy.core.multiarray _reconstruct
numpy.core.multiarray scalar
numpy.core.numeric _frombuffer
numpy._core.multiarray _reconstruct
numpy._core.multiarray scalar
numpy._core.numeric _frombuffer
numpy.core._multiarray_umath _reconstruct
numpy._core._multiarray_umath _reconstruct
numpy.rec recarray
numpy.core.records recarray
numpy._core.records recarray
numpy.core.records record
numpy._core.records record
numpy.ma.core _mareconstruct
numpy.ma.core MaskedArray
numpy.ma.core MaskedConstant
numpy.random._pickle __randomstate_ctor
numpy.random._pickle __bit_generator_ctor
numpy.random._pickle __generator_ctor
numpy.random._pickle _RandomState
numpy.random._pickle RandomState
numpy.random.mtrand RandomState
numpy.random._generator Generator
numpy.random._mt19937 MT19937
numpy.random._pcg64 PCG64
numpy.random._pcg64 PCG64DXSM
numpy.random._philox Philox
numpy.random._sfc64 SFC64
numpy.random.bit_generator SeedSequence
numpy.random.bit_generator __pyx_unpickle_SeedSequence
joblib.numpy_pickle NumpyArrayWrapper
joblib.numpy_pickle NDArrayWrapper
joblib.numpy_pickle ZNDArrayWrapper
torch._utils _rebuild_tensor
torch._utils _rebuild_tensor_v2
torch._utils _rebuild_parameter
torch._utils _rebuild_parameter_with_state
torch._utils _rebuild_qtensor
torch._utils _rebuild_sparse_tensor
torch._utils _rebuild_device_tensor_from_numpy
torch Size
torch dtype
torch device
torch float32
torch float64
torch float16
torch bfloat16
torch int64
torch int32
torch int16
torch int8
torch uint8
torch bool
torch complex64
torch complex128
torch FloatStorage
torch DoubleStorage
torch HalfStorage
torch BFloat16Storage
torch LongStorage
torch IntStorage
torch ShortStorage
torch CharStorage
torch ByteStorage
torch BoolStorage
torch ComplexFloatStorage
torch ComplexDoubleStorage
torch QInt8Storage
torch QUInt8Storage
torch QInt32Storage
torch QUInt4x2Storage
torch QUInt2x4Storage
torch UntypedStorage
torch.storage UntypedStorage
torch.storage TypedStorage
"""


def module_names(pkg, skip=()):
    mod = importlib.import_module(pkg)
    yield pkg
    for info in pkgutil.walk_packages(mod.__path__, pkg + "."):
        name = info.name
        if any(part in name.split(".") for part in ("tests", "test", "conftest", "_testing")):
            continue
        if any(name == s or name.startswith(s + ".") for s in skip):
            continue
        yield name


HELPER_PREFIXES = ("__pyx_unpickle_", "_new_", "_unpickle", "_reconstruct", "newObj")


def harvest(pkg, skip=(), helpers=True):
    out = set()
    for name in module_names(pkg, skip):
        try:
            mod = importlib.import_module(name)
        except Exception:
            continue
        for attr, obj in vars(mod).items():
            owner = getattr(obj, "__module__", None)
            if owner is None or not isinstance(owner, str) or not owner.startswith(pkg):
                continue
            if inspect.isclass(obj):
                if owner == name and getattr(obj, "__qualname__", attr) == attr:
                    out.add((owner, attr))
            elif helpers and callable(obj) and attr.startswith(HELPER_PREFIXES):
                out.add((name, attr))
    return out


def numpy_names():
    import numpy as np
    out = set()
    for t in set(np.sctypeDict.values()):
        out.add(("numpy", t.__name__))
    for attr, obj in vars(np).items():
        if isinstance(obj, np.ufunc):
            out.add(("numpy", attr))
    import numpy.dtypes as d
    for attr, obj in vars(d).items():
        if inspect.isclass(obj):
            out.add(("numpy.dtypes", attr))
    return out


def main():
    names = set()
    for line in STATIC.strip().splitlines():
        m, n = line.split()
        names.add((m, n))
    names |= numpy_names()
    # scikit-learn: every class, plus Cython unpickle helpers. sklearn.datasets
    # (downloads, file access) and sklearn.externals are left out.
    names |= harvest("sklearn", skip=("sklearn.datasets", "sklearn.externals", "sklearn.utils._testing"))
    names |= harvest("scipy.sparse", skip=("scipy.sparse.linalg",))
    names |= harvest("pandas", skip=("pandas.io", "pandas.plotting", "pandas.testing", "pandas.util", "pandas.api"))
    import sklearn, numpy, scipy, pandas
    print("# @generated by scripts/gen_allowlist.py: exact globals (module name) legitimate model pickles use.")
    print("# sklearn %s, numpy %s, scipy %s, pandas %s, CPython %s" % (
        sklearn.__version__, numpy.__version__, scipy.__version__, pandas.__version__, sys.version.split()[0]))
    for m, n in sorted(names):
        if " " in m or " " in n or "\n" in m + n:
            continue
        print(m, n)


if __name__ == "__main__":
    main()

"""Generate src/policy/allowlist.txt and gadgets.txt: the globals legitimate model
pickles need, each with the uses real files make of it (docs/uses.md).

Run: .venv/bin/python scripts/gen_allowlist.py --write    (rewrites both files)
     .venv/bin/python scripts/gen_allowlist.py            (CI: exit 1 and a diff if stale)
The list is *data* pkinspect embeds; pkinspect never imports Python. This script
imports scikit-learn, numpy, scipy and pandas (trusted, pinned in
scripts/requirements.txt) only to enumerate their data classes and the helper
functions their pickles reference (Cython `__pyx_unpickle_*`, `newObj`, numpy's
`_reconstruct`, pandas' `_new_Index`, ...). Functions in general are NOT listed:
a class constructed from a pickle only stores state, a function may do anything.

Format: one global per line, `module name use...` with module and name exactly as
find_class receives them and the uses a file may make of the global:

- the hand-picked names below carry their uses after the name (`numpy dtype ref
  call(str,bool?,bool?) build`), written from how the libraries pickle them;
- every harvested class may be held (`ref`), instantiated without its constructor
  (`new`) and given state (`build`), the way pickle protocol 2+ rebuilds any object
  without a `__reduce__` of its own; a harvested helper function may be held and
  called (`ref call`);
- `scripts/data/uses_evidence.json` (scripts/record_uses.py: how the real libraries'
  own pickles use each global) adds the uses real files make, `call` and `items` above
  all;
- `scripts/data/hunt.json` (scripts/gadget_hunt.py) takes away every use the gadget
  hunt showed to have an effect, and lists it in gadgets.txt (rule PK112). A use that
  real files make and the hunt condemns must get a contract here (see CONTRACTS) or
  the generator fails.
"""
import contextlib
import difflib
import enum
import importlib
import inspect
import io
import json
import os
import pkgutil
import sys
import warnings

warnings.filterwarnings("ignore")

# Hand-picked standard-library and numpy/torch names, each seen in real
# pickles (shared/FORMATS.md sections 2-4) and side-effect free to construct.
STATIC = """
builtins set ref new call build items
builtins frozenset ref new call
builtins list ref new call build items
builtins dict ref new call build items
builtins tuple ref new call
builtins bytearray ref new call(data?,'latin-1'|'latin1'?) build items
builtins bytes ref new call(data?,'latin-1'|'latin1'?)
builtins int ref new call
builtins float ref new call
builtins complex ref new call
builtins bool ref call
builtins str ref new call
builtins slice ref call
builtins range ref call
builtins object ref new
builtins NotImplemented ref
builtins Ellipsis ref
copyreg _reconstructor ref call(class,class,any?)
copyreg __newobj__ ref call(class,*)
copyreg __newobj_ex__ ref call(class,tuple,dict|none)
_codecs encode ref call(str,'latin1'|'latin-1')
collections OrderedDict ref new call build items
collections defaultdict ref new call build items
collections deque ref new call build items
collections Counter ref new call build items
datetime datetime ref call
datetime date ref call
datetime time ref call
datetime timedelta ref call
datetime timezone ref call
decimal Decimal ref call
fractions Fraction ref call
uuid UUID ref new build
zoneinfo ZoneInfo ref
zoneinfo ZoneInfo._unpickle ref call(str,int)
zoneinfo._zoneinfo ZoneInfo ref
zoneinfo._zoneinfo ZoneInfo._unpickle ref call(str,int)
numpy ndarray ref build
numpy dtype ref call(str|class,bool|int?,bool|int?) build
numpy matrix ref build
numpy.matrixlib.defmatrix matrix ref build
numpy record ref
numpy recarray ref build
numpy memmap ref build
numpy core.multiarray._reconstruct ref call(class,tuple,data)
numpy.core.multiarray _reconstruct ref call(class,tuple,data)
numpy.core.multiarray scalar ref call(data,any?)
numpy.core.numeric _frombuffer ref call(data,data,tuple,str,tuple|none?)
numpy._core.multiarray _reconstruct ref call(class,tuple,data)
numpy._core.multiarray scalar ref call(data,any?)
numpy._core.numeric _frombuffer ref call(data,data,tuple,str,tuple|none?)
numpy.core._multiarray_umath _reconstruct ref call(class,tuple,data)
numpy._core._multiarray_umath _reconstruct ref call(class,tuple,data)
numpy.rec recarray ref build
numpy.core.records recarray ref build
numpy._core.records recarray ref build
numpy.core.records record ref
numpy._core.records record ref
numpy.ma.core _mareconstruct ref call(class,class,tuple,data)
numpy.ma.core MaskedArray ref call build
numpy.ma MaskedArray ref call build
numpy.ma.core MaskedConstant ref new call build
numpy.random._pickle __randomstate_ctor ref call build
numpy.random._pickle __bit_generator_ctor ref call build
numpy.random._pickle __generator_ctor ref call build
numpy.random._pickle _RandomState ref new call build
numpy.random._pickle RandomState ref new call build
numpy.random.mtrand RandomState ref new call build
numpy.random._generator Generator ref new call build
numpy.random._mt19937 MT19937 ref new call build
numpy.random._pcg64 PCG64 ref new call build
numpy.random._pcg64 PCG64DXSM ref new call build
numpy.random._philox Philox ref new call build
numpy.random._sfc64 SFC64 ref new call build
numpy.random.bit_generator SeedSequence ref new build
numpy.random.bit_generator __pyx_unpickle_SeedSequence ref call build
joblib.numpy_pickle NumpyArrayWrapper ref new build
joblib.numpy_pickle NDArrayWrapper ref new build
joblib.numpy_pickle ZNDArrayWrapper ref new build
numpy.core._internal _reconstruct ref call(class,tuple,data)
pandas NA ref
pandas._libs.missing NA ref
http HTTPStatus ref call(int)
re RegexFlag ref call(int)
re _compile ref call(str|bytes,int)
pathlib PurePath ref call(str?,*)
pathlib PurePosixPath ref call(str?,*)
pathlib PureWindowsPath ref call(str?,*)
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
    """(module, name) -> kind ("class" or "helper") for pkg's data classes and unpickle helpers."""
    out = {}
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
                    out[(owner, attr)] = "enum" if issubclass(obj, enum.Enum) else "class"
            elif helpers and callable(obj) and attr.startswith(HELPER_PREFIXES):
                out[(name, attr)] = "helper"
    return out


def numpy_names():
    """numpy's scalar types, ufuncs and dtype classes: values, held by reference."""
    import numpy as np
    out = {}
    for t in set(np.sctypeDict.values()):
        out[("numpy", t.__name__)] = "value"
    for attr, obj in vars(np).items():
        if isinstance(obj, np.ufunc):
            out[("numpy", attr)] = "value"
    import numpy.dtypes as d
    for attr, obj in vars(d).items():
        if inspect.isclass(obj):
            out[("numpy.dtypes", attr)] = "value"
    return out


# The uses each kind of harvested name starts with (docs/uses.md); evidence adds
# to them and the hunt takes away.
DEFAULT_USES = {"class": {"ref", "new", "build"}, "helper": {"ref", "call"}, "value": {"ref"},
                # Enum members pickle as a call of the class with the value.
                "enum": {"ref", "call"}}

# Where a use real files make is one the hunt condemns, the entry keeps it only
# within a contract that excludes what the hunt used (docs/uses.md, "Argument
# contracts"). The hand-picked entries above carry theirs inline.
CONTRACTS = {
    # rv_generic.__setstate__ exec()s the state's `_parse_arg_template`: only
    # the source scipy itself generates is admitted (src/policy/uses.rs,
    # is_scipy_argparser). RandomizedSearchCV holds such distributions.
    ("scipy.stats._continuous_distns", "reciprocal_gen"): ["build(_parse_arg_template:argparser)"],
}

# Hunt effects that are not gadgets, with the reason (reviewed by hand; they
# neither take a use away nor make PK112).
EXEMPT = {
    ("zoneinfo", "ZoneInfo", "file-read"): "reads confined to the time-zone database",
    ("zoneinfo", "ZoneInfo._unpickle", "file-read"): "reads confined to the time-zone database",
    ("zoneinfo._zoneinfo", "ZoneInfo", "file-read"): "reads confined to the time-zone database",
    ("zoneinfo._zoneinfo", "ZoneInfo._unpickle", "file-read"): "reads confined to the time-zone database",
    ("pandas", "DatetimeTZDtype", "file-read"): "a time-zone lookup (zoneinfo): reads confined to the database",
    ("numpy", "matrix", "compile"): "matrix('1 2; 3 4') parses with ast.literal_eval: literals only",
    ("numpy.matrixlib.defmatrix", "matrix", "compile"): "ast.literal_eval: literals only",
}

# Effects of the hunt that take a use away (the others are notes).
COUNTED_EFFECTS = {"file-write", "file-create", "file-read", "import", "compile", "calls-argument",
                   "network", "process", "ctypes"}

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
POLICY = os.path.join(HERE, "..", "src", "policy")


def load_json(name):
    with open(os.path.join(DATA, name)) as f:
        return json.load(f)


def read_uses_file(path):
    """`module name use...` lines (comments and blanks skipped)."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
            if not line:
                continue
            m, n, *uses = line.split()
            out[(m, n)] = uses
    return out


def split_uses(tokens):
    """{'ref', 'call', ...} and the contract tokens by use ({'call': 'call(str)'})."""
    uses, contracts = set(), {}
    for t in tokens:
        use = t.split("(", 1)[0]
        uses.add(use)
        if "(" in t:
            contracts[use] = t
    return uses, contracts


ORDER = ["ref", "new", "call", "build", "items"]


def render(uses, contracts):
    return " ".join(contracts.get(u, u) for u in ORDER if u in uses)


def launderers():
    """The entries the Rust side models as launderers (src/rules/uses.rs, docs/uses.md)."""
    def is_launderer(m, n):
        numpy = m == "numpy" or m.startswith("numpy.")
        return ((m, n) in {("copyreg", "_reconstructor"), ("copyreg", "__newobj__"), ("copyreg", "__newobj_ex__"),
                           ("numpy.random._pickle", "__bit_generator_ctor"),
                           ("numpy.random._pickle", "__generator_ctor"),
                           ("numpy.random._pickle", "__randomstate_ctor"), ("functools", "partial"),
                           ("_functools", "partial"), ("numpy.ma.core", "_mareconstruct"),
                           ("torch._tensor", "_rebuild_from_type_v2")}
                or (numpy and n in ("_reconstruct", "core.multiarray._reconstruct"))
                or (m.startswith("sklearn.") and n == "newObj")
                or (m.startswith("pandas.") and n.startswith("_new_") and n.endswith("Index"))
                or n.startswith("__pyx_unpickle_"))
    return is_launderer


def generate():
    """The text of allowlist.txt and of gadgets.txt, and problems to report."""
    kinds = {}
    static = {}
    for line in STATIC.strip().splitlines():
        m, n, *uses = line.split()
        static[(m, n)] = uses
    # torch's weights-only globals (torch_weights_only.txt); the hand-picked
    # standard-library entries above keep their own uses.
    for (m, n), uses in read_uses_file(os.path.join(DATA, "torch_weights_only.txt")).items():
        static.setdefault((m, n), uses)
    # Modules print on import (a version string): keep stdout for the output.
    with contextlib.redirect_stdout(io.StringIO()):
        kinds.update(numpy_names())
        # scikit-learn: every class, plus Cython unpickle helpers. sklearn.datasets
        # (downloads, file access) and sklearn.externals are left out.
        kinds.update(harvest("sklearn", skip=("sklearn.datasets", "sklearn.externals", "sklearn.utils._testing")))
        kinds.update(harvest("scipy.sparse", skip=("scipy.sparse.linalg",)))
        kinds.update(harvest("pandas", skip=("pandas.io", "pandas.plotting", "pandas.testing", "pandas.util",
                                             "pandas.api")))
        import sklearn, numpy, scipy, pandas

    evidence = load_json("uses_evidence.json")["globals"]
    hunt = load_json("hunt.json")
    is_launderer = launderers()
    problems = []

    entries = {}
    for key, kind in kinds.items():
        entries[key] = (set(DEFAULT_USES[kind]), {"call": "call(data)"} if kind == "enum" else {})
    for key, tokens in static.items():
        entries[key] = split_uses(tokens)
    # Names the real libraries' own pickles hold that the harvest above does not
    # reach (functions held as estimator parameters, scipy distributions, helpers
    # with other prefixes) are listed with exactly the uses seen. Conditional
    # globals (builtins.getattr, functools.partial) stay judged by their arguments.
    conditional = {("builtins", "getattr"), ("functools", "partial"), ("_functools", "partial")}
    for k in evidence:
        key = tuple(k.split(" ", 1))
        if key not in entries and key not in conditional:
            entries[key] = (set(), {})
    # What real files do.
    for key, (uses, contracts) in entries.items():
        ev = evidence.get("%s %s" % key)
        if ev and key not in static:
            uses |= set(ev["uses"]) & set(ORDER)
        for t in CONTRACTS.get(key, []):
            contracts[t.split("(", 1)[0]] = t
    # What the hunt condemns.
    gadgets = {}
    for f in hunt["findings"]:
        if f["effect"] not in COUNTED_EFFECTS:
            continue
        m, n = f["entry"].split(" ", 1)
        key, use = (m, n), f["use"]
        if f["effect"] == "calls-argument" and is_launderer(m, n):
            continue  # modelled: the call it makes is judged as such
        if (m, n, f["effect"]) in EXEMPT:
            continue
        gadgets.setdefault((m, n, use), "%s: %s" % (f["effect"], f.get("detail") or f.get("probe", "")))
        if key not in entries or use not in entries[key][0]:
            continue
        uses, contracts = entries[key]
        if use in contracts:
            continue  # the contract excludes what the hunt used (reviewed by hand)
        ev = evidence.get("%s %s" % key)
        if ev and use in ev["uses"]:
            problems.append("%s %s: real files use it as `%s`, which the hunt condemns (%s); give it a contract"
                            % (m, n, use, f["effect"]))
        uses.discard(use)

    allow = io.StringIO()
    allow.write("# @generated by scripts/gen_allowlist.py: exact globals (module name) legitimate model pickles"
                " use, with their uses (docs/uses.md).\n")
    allow.write("# sklearn %s, numpy %s, scipy %s, pandas %s, CPython %s\n" % (
        sklearn.__version__, numpy.__version__, scipy.__version__, pandas.__version__, sys.version.split()[0]))
    for (m, n) in sorted(entries):
        if " " in m or " " in n or "\n" in m + n:
            continue
        uses, contracts = entries[(m, n)]
        allow.write("%s %s %s\n" % (m, n, render(uses, contracts)))

    gad = io.StringIO()
    gad.write("# @generated by scripts/gen_allowlist.py from scripts/data/hunt.json: uses of allowlisted globals\n"
              "# the gadget hunt showed to have effects (rule PK112). `module name use effect: detail`.\n")
    for (m, n, use) in sorted(gadgets):
        if (m, n) not in entries:
            continue
        detail = " ".join(gadgets[(m, n, use)].split())[:200]
        gad.write("%s %s %s %s\n" % (m, n, use, detail))
    return allow.getvalue(), gad.getvalue(), problems


def main():
    allow, gadgets, problems = generate()
    for p in problems:
        print("gen_allowlist: " + p, file=sys.stderr)
    stale = False
    for name, text in (("allowlist.txt", allow), ("gadgets.txt", gadgets)):
        path = os.path.join(POLICY, name)
        if "--write" in sys.argv:
            with open(path, "w") as f:
                f.write(text)
            continue
        with open(path) as f:
            old = f.read()
        if old != text:
            stale = True
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                                       "src/policy/" + name, "generated"))
    if problems or stale:
        sys.exit(1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Container fixtures: fixtures/containers/ and its manifest.json.

Run from scripts/gen_fixtures.py, or standalone:

    .venv/bin/python scripts/fixtures_containers.py

What it writes (the folder is deleted and rebuilt):

* Benign files made by the REAL libraries: joblib.dump with every
  compressor (zlib via compress=3 and the .z extension, gzip, bz2, lzma, xz,
  lz4) at protocols 2-5 of a dict of arrays covering object arrays, Fortran
  order, big-endian, structured, empty and 0-d arrays and arrays sharing memo
  entries; the same dump uncompressed (with the offsets joblib.load(mmap_mode
  ='r') maps); a joblib 1.1-style dump (joblib's own pickler with the wrapper's
  numpy_array_alignment_bytes attribute removed: no key, no padding, exactly
  what joblib 0.10-1.1 wrote); numpy .npy (numeric, object) and .npz (savez,
  savez_compressed, with an object member); gzip/bz2/xz/lzma-wrapped pickles;
  a tar, a tar.gz, a zip and a zip in a zip.
* legacy/: REAL joblib 0.8.4-0.11 files copied from joblib's own test data
  (joblib/test/data in the pinned joblib wheel, BSD-3-Clause), with their
  companion .npy / .npy.z files.
* Hostile files written byte by byte (never by pickling a malicious object):
  legacy wrappers naming ../ or absolute companions, a companion whose pickle
  calls os.system, zip anomalies (CRC mismatch, duplicate names, local/central
  header disagreement, overlapping and hidden members, sizes that lie,
  encryption, an unsupported method, bombs), nested zips at and past
  MAX_CONTAINER_DEPTH, polyglots (pickle + zip, bz2 magic + pickle, a tar whose
  first name is a pickle), truncated streams of every compressor, and joblib
  payload errors inside compressed streams.

manifest.json: a list of {file, expect_rules, description, made_by} plus,
where they apply, memmap_payloads ([offset, nbytes] joblib.load(mmap_mode='r')
maps), stream_payloads (the same, for a compressed dump whose decompressed
stream was checked byte-identical to the uncompressed dump), allow (globals
the test passes with --allow: real legacy files use numpy.matrix) and
skipped_members (what the JSON report must list). Benign entries have
expect_rules []. SAFETY: hostile payloads are only `echo pkinspect-fixture`;
these files are never loaded by Python. Only benign dumps this script wrote
itself from its own objects are loaded (to read joblib's mmap offsets).

Determinism: gzip mtime 0, zip dates 1980-01-01, tar mtime/uid/gid 0, fixed
random seeds; the environment is pinned as in gen_fixtures.py.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import pickle
import shutil
import struct
import sys
import tarfile
import warnings
import zipfile
import zlib
from pathlib import Path

_ENV_PINS = {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
             "MKL_NUM_THREADS": "1", "TZ": "UTC", "LC_ALL": "C.UTF-8"}

if __name__ == "__main__" and any(os.environ.get(k) != v for k, v in _ENV_PINS.items()):
    os.execve(sys.executable, [sys.executable, *sys.argv], dict(os.environ, **_ENV_PINS))

sys.path.insert(0, str(Path(__file__).resolve().parent))

import joblib  # noqa: E402
import lz4.frame  # noqa: E402
import numpy as np  # noqa: E402
from joblib.numpy_pickle import NumpyPickler  # noqa: E402

from fixtures_hostile import ECHO, E  # noqa: E402
from fixtures_joblib_hostile import _padding, _wrapper  # noqa: E402
from joblib_payloads import memmap_payloads  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "containers"
JOBLIB_DATA = Path(joblib.__file__).resolve().parent / "test" / "data"
VERSIONS = f"joblib {joblib.__version__}, numpy {np.__version__}, lz4 {lz4.__version__}"
DANGER = ["PK101", "PK102"]
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
MAX_CONTAINER_DEPTH = 8  # src/limits.rs

manifest: list[dict] = []


def add(file: str, data: bytes | None, expect: list[str], desc: str, made_by: str, **extra) -> None:
    path = OUT / file
    path.parent.mkdir(parents=True, exist_ok=True)
    if data is not None:
        path.write_bytes(data)
    assert path.stat().st_size < 200_000, file
    manifest.append({"file": file, "expect_rules": expect, "description": desc, "made_by": made_by, **extra})


# ----------------------------------------------------------------------------
# Real joblib dumps
# ----------------------------------------------------------------------------

def mixed_arrays() -> dict:
    """One dict with every array layout joblib writes differently."""
    shared = np.arange(4, dtype=np.int32)
    return {
        "float64_2x3": np.arange(6, dtype=np.float64).reshape(2, 3),
        "int16_fortran": np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
        "int32_big_endian": np.array([0, 1, 2], dtype=">i4"),
        "structured": np.array([(1, (2.0, 3.0), b"abc")],
                               dtype=[("a", "<i4"), ("b", "<f8", (2,)), ("c", "S3")]),
        "empty_0x3": np.zeros((0, 3)),
        "zero_d": np.array(7.5),
        "objects": np.array([1, "abc", None], dtype=object),
        "unicode": np.array(["ab", "c"]),
        "datetime": np.array(["2020-01-01", "2021-06-30"], dtype="datetime64[D]"),
        "bools": np.array([True, False, True]),
        # The same array twice, and two arrays: wrapper class and keys come from the memo.
        "shared": [shared, shared, np.arange(3, dtype=np.uint8)],
    }


def decompress(method: str, data: bytes) -> bytes:
    return {
        "zlib": zlib.decompress,
        "gzip": gzip.decompress,
        "bz2": bz2.decompress,
        "lzma": lambda d: lzma.decompress(d, format=lzma.FORMAT_ALONE),
        "xz": lambda d: lzma.decompress(d, format=lzma.FORMAT_XZ),
        "lz4": lz4.frame.decompress,
    }[method](data)


def gen_joblib() -> None:
    obj = mixed_arrays()
    for p in (2, 3, 4, 5):
        plain = f"joblib_mixed_p{p}.joblib"
        joblib.dump(obj, OUT / plain, protocol=p)
        offsets = memmap_payloads(OUT / plain)
        add(plain, None, [], "dict of arrays: float64 2x3, int16 Fortran order, >i4, structured "
            "[('a','<i4'),('b','<f8',(2,)),('c','S3')], (0,3), 0-d, object [1,'abc',None], <U2, "
            "datetime64[D], bool, one int32 array twice and a uint8 array (memo shared across payloads); "
            "uncompressed", f"joblib.dump(obj, path, protocol={p}) [{VERSIONS}]", memmap_payloads=offsets)
        reference = (OUT / plain).read_bytes()
        variants = [("zlib3", 3, "zlib", "compress=3"), ("z", 0, "zlib", "the .z extension"),
                    ("gz", 0, "gzip", "the .gz extension"), ("bz2", 0, "bz2", "the .bz2 extension"),
                    ("lzma", 0, "lzma", "the .lzma extension"), ("xz", 0, "xz", "the .xz extension"),
                    ("lz4", 0, "lz4", "the .lz4 extension")]
        for suffix, compress, method, how in variants:
            ext = "z" if suffix == "zlib3" else suffix
            name = f"joblib_mixed_p{p}.joblib.{ext}" if suffix != "zlib3" else f"joblib_mixed_p{p}_compress3.joblib"
            joblib.dump(obj, OUT / name, compress=compress, protocol=p)
            data = (OUT / name).read_bytes()
            # The decompressed stream is byte-identical to the uncompressed dump (FORMATS.md §1.2),
            # so joblib's mmap offsets of the uncompressed dump are the payload offsets in the stream.
            assert decompress(method, data) == reference, name
            add(name, None, [], f"the joblib_mixed_p{p} dict compressed with {method} ({how})",
                f"joblib.dump(obj, path, compress={compress}, protocol={p}) [{VERSIONS}]",
                stream_payloads=offsets)

    # A real model, compressed as joblib users usually do.
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=200, random_state=0).fit(X, y)
    joblib.dump(model, OUT / "joblib_logreg_iris_p4.joblib.gz", protocol=4)
    add("joblib_logreg_iris_p4.joblib.gz", None, [], "LogisticRegression(max_iter=200) on iris, gzip",
        f"joblib.dump(model, path, protocol=4) [{VERSIONS}]")

    # joblib 0.10-1.1 layout: no numpy_array_alignment_bytes key, no padding byte.
    class Joblib11Pickler(NumpyPickler):
        def _create_array_wrapper(self, array):
            wrapper = super()._create_array_wrapper(array)
            del wrapper.numpy_array_alignment_bytes
            return wrapper

    old = {"float64_2x3": obj["float64_2x3"], "int16_fortran": obj["int16_fortran"],
           "int32_big_endian": obj["int32_big_endian"], "structured": obj["structured"]}
    with open(OUT / "joblib11_style_p4.joblib", "wb") as f:
        Joblib11Pickler(f, protocol=4).dump(old)
    raw = (OUT / "joblib11_style_p4.joblib").read_bytes()
    assert b"numpy_array_alignment_bytes" not in raw
    with warnings.catch_warnings():
        # joblib warns that such payloads are not aligned, as it does for real pre-1.2 files.
        warnings.simplefilter("ignore", UserWarning)
        offsets11 = memmap_payloads(OUT / "joblib11_style_p4.joblib")
    add("joblib11_style_p4.joblib", None, [],
        "joblib 0.10-1.1 layout (no numpy_array_alignment_bytes key, so no padding byte before payloads): "
        "SYNTHETIC, written by joblib 1.6's own NumpyPickler with that one wrapper attribute deleted, which "
        "is what older joblib wrote; numeric arrays only (old joblib pickled object arrays at protocol 2). "
        "See legacy/joblib_0.11.0_* for real files of that era",
        f"NumpyPickler subclass, protocol=4 [{VERSIONS}]",
        memmap_payloads=offsets11)


# ----------------------------------------------------------------------------
# numpy .npy / .npz, wrapped pickles, archives
# ----------------------------------------------------------------------------

def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def npz_bytes(compressed: bool, **arrays) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


def tar_bytes(files: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_bytes(files: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = method
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return buf.getvalue()


def gen_numpy_and_archives() -> None:
    nb = f"numpy {np.__version__}"
    numeric = np.arange(12, dtype="<f8").reshape(3, 4)
    objects = np.array([1, "abc", None, {"k": [1.5]}], dtype=object)
    add("numpy_float64.npy", npy_bytes(numeric), [], "np.save of a float64 (3,4) array: raw data, no pickle",
        f"np.save [{nb}]", skipped_members=["(file)"])
    add("numpy_object.npy", npy_bytes(objects), [],
        "np.save of an object array: the data section is a protocol-4 pickle", f"np.save [{nb}]")
    add("numpy_savez.npz", npz_bytes(False, a=numeric, b=np.arange(3, dtype="<i8")), [],
        "np.savez: stored members a.npy, b.npy (ZIP64 local headers)", f"np.savez [{nb}]",
        skipped_members=["a.npy", "b.npy"])
    add("numpy_savez_compressed.npz", npz_bytes(True, a=numeric, b=np.zeros(100)), [],
        "np.savez_compressed: deflated members", f"np.savez_compressed [{nb}]",
        skipped_members=["a.npy", "b.npy"])
    add("numpy_savez_object.npz", npz_bytes(False, numbers=numeric, objects=objects), [],
        "np.savez with an object member (its .npy data is a pickle)", f"np.savez [{nb}]",
        skipped_members=["numbers.npy"])

    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    X, y = load_iris(return_X_y=True)
    model = pickle.dumps(LogisticRegression(max_iter=200, random_state=0).fit(X, y), protocol=4)
    mb = f"pickle.dumps(LogisticRegression on iris, protocol=4) [{VERSIONS}]"
    add("model.pkl.gz", gzip_bytes(model), [], "gzip-wrapped sklearn pickle", f"{mb}, gzip mtime 0")
    add("model.pkl.bz2", bz2.compress(model, 9), [], "bz2-wrapped sklearn pickle", f"{mb}, bz2")
    add("model.pkl.xz", lzma.compress(model, format=lzma.FORMAT_XZ), [], "xz-wrapped sklearn pickle", f"{mb}, xz")
    add("model.pkl.lzma", lzma.compress(model, format=lzma.FORMAT_ALONE), [],
        "lzma-alone-wrapped sklearn pickle", f"{mb}, lzma FORMAT_ALONE")

    weights = npy_bytes(np.linspace(0, 1, 8, dtype=np.float32))
    readme = b"a model bundle\n"
    joblib_buf = io.BytesIO()
    joblib.dump({"w": np.arange(5, dtype="<i8")}, joblib_buf, protocol=4)
    files = [("bundle/model.pkl", model), ("bundle/weights.npy", weights), ("bundle/README.txt", readme),
             ("bundle/arrays.joblib", joblib_buf.getvalue())]
    tar = tar_bytes(files)
    add("bundle.tar", tar, [], "ustar archive: a pickle, a numeric .npy, a text file, an uncompressed joblib dump",
        "tarfile USTAR [CPython]", skipped_members=["bundle/weights.npy", "bundle/README.txt"])
    add("bundle.tar.gz", gzip_bytes(tar), [], "the same tar, gzip-compressed", "tarfile + gzip mtime 0")
    add("config_bundle.tar", tar_bytes([("config/settings.txt", b"a = 1\nb = 2\n"), ("config/model.pkl", model)]),
        [], "a tar whose first name starts with 'c' (GLOBAL to pickle.load) and holds newlines: the pickle "
        "reading fails in find_class (names with '/' and NUL), so it is not a second reading",
        "tarfile USTAR [CPython]", skipped_members=["config/settings.txt"])
    bundle = zip_bytes(files)
    add("bundle.zip", bundle, [], "zip (deflated) with the same members", "zipfile [CPython]",
        skipped_members=["bundle/weights.npy", "bundle/README.txt"])
    add("nested.zip", zip_bytes([("inner/bundle.zip", bundle), ("objects.npy", npy_bytes(objects))],
                                zipfile.ZIP_STORED), [],
        "a stored zip holding bundle.zip (zip in zip) and an object .npy", "zipfile [CPython]")


# ----------------------------------------------------------------------------
# Legacy joblib (< 0.10): real files, then hostile ones written by hand
# ----------------------------------------------------------------------------

LEGACY_REAL = [
    ("joblib_0.9.2_pickle_py35_np19.pkl", "uncompressed joblib 0.9.2 (py3.5): NDArrayWrapper BUILD states name "
     "companions _01.._04.npy (one object array, whose .npy holds a pickle)"),
    ("joblib_0.9.2_pickle_py27_np17.pkl", "uncompressed joblib 0.9.2 (py2.7, protocol 2): NDArrayWrapper "
     "companions"),
    ("joblib_0.9.4.dev0_compressed_cache_size_pickle_py35_np19.gz", "ZF file with ZNDArrayWrapper states naming "
     "ZF-framed raw companions _01.._03.npy.z"),
    ("joblib_0.9.2_compressed_pickle_py35_np19.gz", "ZF file, arrays inline"),
    ("joblib_0.8.4_compressed_pickle_py27_np17.gz", "ZF file from joblib 0.8.4 (py2): one more space after the "
     "19-character length"),
    ("joblib_0.11.0_pickle_py36_np111.pkl", "joblib 0.11: NumpyArrayWrapper without numpy_array_alignment_bytes "
     "(no padding), nested object pickle at protocol 2"),
    ("joblib_0.11.0_pickle_py36_np111.pkl.xz", "joblib 0.11, xz"),
    ("joblib_0.11.0_pickle_py36_np111.pkl.lzma", "joblib 0.11, lzma"),
    ("joblib_0.10.0_pickle_py27_np17.pkl.bz2", "joblib 0.10 (py2.7), bz2"),
    ("joblib_0.10.0_pickle_py33_np18.pkl.gzip", "joblib 0.10 (py3.3), gzip"),
]


def gen_legacy() -> None:
    d = OUT / "legacy"
    d.mkdir()
    for name, desc in LEGACY_REAL:
        for src in sorted(JOBLIB_DATA.glob(name + "*")):
            # the file and its companions (<name>_NN.npy, <name>_NN.npy.z)
            if src.name == name or src.name.startswith(name + "_"):
                shutil.copyfile(src, d / src.name)
        companions = sorted(p.name for p in d.glob(name + "_*"))
        add(f"legacy/{name}", None, [], desc + (f"; companions: {', '.join(companions)}" if companions else ""),
            f"copied from joblib {joblib.__version__}'s joblib/test/data (BSD-3-Clause)",
            allow=["numpy.matrixlib.defmatrix.matrix"])

    h = OUT / "legacy_hostile"
    h.mkdir()
    mb = "written opcode by opcode (scripts/pickle_emit.py) after FORMATS.md §1.3; no joblib 0.9"

    def main_pickle(filenames: list[str], cls: str = "NDArrayWrapper") -> bytes:
        e = E().proto(2).empty_list().mark()
        for fn in filenames:
            e.global_("joblib.numpy_pickle", cls).empty_tuple().newobj().empty_dict().mark()
            e.binunicode("subclass").global_("numpy", "ndarray")
            e.binunicode("allow_mmap").newfalse()
            e.binunicode("filename").binunicode(fn).setitems().build()
        return e.appends().stop().bytes()

    add("legacy_hostile/traversal.pkl", main_pickle(["../../etc/x.npy"]), ["PK305"],
        "NDArrayWrapper with filename '../../etc/x.npy': joblib.load would numpy.load(allow_pickle=True) a file "
        "two folders up; pkinspect must flag it and never open it", mb)
    add("legacy_hostile/absolute.pkl", main_pickle(["/tmp/pkinspect-fixture-does-not-exist.npy"]), ["PK305"],
        "NDArrayWrapper with an absolute filename (os.path.join drops the folder)", mb)
    add("legacy_hostile/windows_parent.pkl", main_pickle(["..\\x.npy"], "ZNDArrayWrapper"), ["PK305"],
        "ZNDArrayWrapper with filename '..\\x.npy': leaves the folder on Windows", mb)
    add("legacy_hostile/missing.pkl", main_pickle(["missing.pkl_01.npy"]), ["PK306"],
        "NDArrayWrapper naming a companion that is not there: its content cannot be scanned", mb)

    # A companion .npy (object dtype) whose pickle calls os.system.
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    evil = E().proto(2).global_("os", "system").binunicode(ECHO).tuple1().reduce().stop().bytes()
    (h / "evil_npy.pkl_01.npy").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header))
                                             + header.encode() + evil)
    add("legacy_hostile/evil_npy.pkl", main_pickle(["evil_npy.pkl_01.npy"]), DANGER,
        "benign-looking legacy main pickle; its companion evil_npy.pkl_01.npy is an object .npy whose pickle "
        "calls os.system (joblib loads it with allow_pickle=True)", mb)
    # numpy.load(allow_pickle=True) unpickles a file that is neither .npy nor zip.
    (h / "evil_raw.pkl_01.npy").write_bytes(evil)
    add("legacy_hostile/evil_raw.pkl", main_pickle(["evil_raw.pkl_01.npy"]), DANGER,
        "companion evil_raw.pkl_01.npy is a bare pickle calling os.system: numpy.load(allow_pickle=True) "
        "falls back to pickle.load for it", mb)


# ----------------------------------------------------------------------------
# Zip anomalies, written by hand
# ----------------------------------------------------------------------------

def evil_pickle() -> bytes:
    return E().proto(2).global_("os", "system").binunicode(ECHO).tuple1().reduce().stop().bytes()


def benign_pickle() -> bytes:
    return pickle.dumps({"model": "ok", "weights": [0.5, 1.5]}, protocol=4)


def raw_zip(entries: list[dict], prefix: bytes = b"") -> bytes:
    """A zip written field by field. Each entry: name, data, and optional
    overrides: method, comp (compressed bytes), crc, csize, usize, flags,
    local_name, local_csize, local_usize, local_crc, local_method, offset
    (central's local header offset), local (False: no local header written,
    central points at `offset`), extra_data (bytes after the member data)."""
    out = bytearray(prefix)
    central = bytearray()
    for e in entries:
        name = e["name"].encode()
        data = e.get("data", b"")
        method = e.get("method", 0)
        comp = e.get("comp")
        if comp is None:
            comp = data if method == 0 else _deflate(data)
        crc = e.get("crc", zlib.crc32(data))
        csize, usize, flags = e.get("csize", len(comp)), e.get("usize", len(data)), e.get("flags", 0)
        here = len(out) - len(prefix)
        if e.get("local", True):
            lname = e.get("local_name", e["name"]).encode()
            out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, flags, e.get("local_method", method), 0, 0x21,
                               e.get("local_crc", crc), e.get("local_csize", csize), e.get("local_usize", usize),
                               len(lname), 0) + lname + comp + e.get("extra_data", b"")
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, flags, method, 0, 0x21, crc,
                               csize, usize, len(name), 0, 0, 0, 0, 0o644 << 16, e.get("offset", here)) + name
    cd_at = len(out) - len(prefix)
    n = len(entries)
    out += central + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n, n, len(central), cd_at, 0)
    return bytes(out)


def _deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def bz2_zeros_pickle(n: int) -> bytes:
    """bz2 of a pickle holding n zero bytes (BINBYTES8): ~100 bytes for 80 MiB."""
    c = bz2.BZ2Compressor(9)
    parts = [c.compress(b"\x80\x04\x8e" + struct.pack("<Q", n))]
    chunk = b"\0" * (1 << 20)
    for _ in range(n >> 20):
        parts.append(c.compress(chunk))
    parts += [c.compress(b"."), c.flush()]
    return b"".join(parts)


def gen_zip_anomalies() -> None:
    mb = "written field by field (scripts/fixtures_containers.py raw_zip)"
    evil, ok = evil_pickle(), benign_pickle()

    good = raw_zip([{"name": "model.pkl", "data": ok}, {"name": "weights.bin", "data": bytes(range(64))}])
    add("zip_raw_benign.zip", good, [], "the hand zip writer's own control: two consistent stored members", mb,
        skipped_members=["weights.bin"])

    data = bytearray(raw_zip([{"name": "model.pkl", "data": evil}]))
    at = data.index(b"echo")
    data[at] = ord("E")
    add("zip_crc_mismatch.zip", bytes(data), ["PK302"] + DANGER,
        "a member whose bytes were changed after the CRC was computed: the CRC mismatch is reported AND the "
        "member's pickle (os.system) is still scanned", mb)

    add("zip_duplicate_names.zip",
        raw_zip([{"name": "model.pkl", "data": evil}, {"name": "model.pkl", "data": ok}]), ["PK302"] + DANGER,
        "two members named model.pkl: the first calls os.system, the second is benign (the zip crate and "
        "Python's zipfile open the last; other readers the first). Both must be scanned", mb)

    add("zip_local_name_differs.zip",
        raw_zip([{"name": "model.pkl", "local_name": "other.pkl", "data": ok}]), ["PK302"],
        "central directory says model.pkl, the local header other.pkl", mb)

    # Stored member: central csize covers a benign pickle, the local header also covers the hostile bytes after it.
    add("zip_local_size_differs.zip",
        raw_zip([{"name": "model.pkl", "data": ok, "extra_data": evil,
                  "local_csize": len(ok) + len(evil), "local_usize": len(ok) + len(evil)}]),
        ["PK302"] + DANGER,
        "stored member whose local header declares more bytes than the central directory: a streaming reader "
        "reads the benign pickle AND an os.system pickle after it; both readings are scanned", mb)

    add("zip_size_lies_small.zip",
        raw_zip([{"name": "model.pkl", "data": evil, "method": 8, "usize": 10}]), ["PK302"] + DANGER,
        "deflated member declaring 10 bytes (central and local) whose data inflates to a whole pickle calling "
        "os.system: the size is reported and the whole content scanned", mb)
    add("zip_size_lies_large.zip",
        raw_zip([{"name": "model.pkl", "data": ok, "method": 8, "usize": len(ok) + 1000},
                 {"name": "evil.pkl", "data": evil}]), ["PK302"] + DANGER,
        "a member declaring 1000 bytes more than it holds, then a member calling os.system that must still be "
        "scanned", mb)

    # Two central entries sharing one local header (and its data).
    add("zip_overlap_shared.zip",
        raw_zip([{"name": "a.pkl", "data": ok}, {"name": "a.pkl", "data": ok, "local": False, "offset": 0}]),
        ["PK302"], "two central entries point at the same local header: overlapping entries (the non-recursive "
        "zip bomb construction)", mb)

    # A member hidden inside another: outer.bin's stored data is a whole local header + data of hidden.pkl.
    hidden_local = (struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0x21, zlib.crc32(evil), len(evil),
                                len(evil), len(b"hidden.pkl"), 0) + b"hidden.pkl" + evil)
    outer_header = 30 + len(b"outer.bin")
    add("zip_hidden_member.zip",
        raw_zip([{"name": "outer.bin", "data": hidden_local},
                 {"name": "hidden.pkl", "data": evil, "local": False, "offset": outer_header}]),
        ["PK302"] + DANGER,
        "outer.bin's stored data contains a complete member hidden.pkl (os.system), which the central "
        "directory also lists: overlapping entries, and the hidden pickle is scanned", mb)

    add("zip_encrypted.zip", raw_zip([{"name": "model.pkl", "data": ok, "flags": 1}]), ["PK302"],
        "a member flagged as encrypted (traditional PKWARE): it cannot be scanned", mb)
    add("zip_unknown_method.zip",
        raw_zip([{"name": "model.pkl", "data": ok, "method": 77, "comp": b"\x00" * 16},
                 {"name": "evil.pkl", "data": evil}]), ["PK301"] + DANGER,
        "compression method 77 (none such): a finding naming the member; the next member (os.system) is still "
        "scanned", mb)
    add("zip_bad_deflate.zip",
        raw_zip([{"name": "model.pkl", "data": ok, "method": 8, "comp": b"\xff" * 32},
                 {"name": "evil.pkl", "data": evil}]), ["PK301"] + DANGER,
        "a deflated member whose data is not deflate: container error naming it; the next member is scanned", mb)
    add("zip_bzip2_member.zip", raw_zip([{"name": "evil.pkl", "data": evil, "method": 12,
                                          "comp": bz2.compress(evil, 9)}]), DANGER,
        "zip compression method 12 (bzip2), which Python's zipfile reads: its pickle is scanned", mb)
    lz = lzma.LZMACompressor(format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA1, "preset": 6}])
    raw = lz.compress(evil) + lz.flush()
    props = lzma._encode_filter_properties({"id": lzma.FILTER_LZMA1, "preset": 6})
    add("zip_lzma_member.zip", raw_zip([{"name": "evil.pkl", "data": evil, "method": 14, "flags": 2,
                                         "comp": struct.pack("<BBH", 9, 20, len(props)) + props + raw}]), DANGER,
        "zip compression method 14 (LZMA, end marker), which Python's zipfile reads: its pickle is scanned", mb)

    bomb = bz2_zeros_pickle(80 << 20)
    add("zip_bomb_declared.zip", raw_zip([{"name": "bomb.pkl", "data": b"", "method": 12, "comp": bomb,
                                           "crc": 0, "usize": (80 << 20) + 12}]), ["PK303"],
        f"bzip2 member of {len(bomb)} bytes declaring its true 80 MiB: refused from the declared ratio", mb)
    add("zip_bomb_lying.zip", raw_zip([{"name": "bomb.pkl", "data": b"", "method": 12, "comp": bomb,
                                        "crc": 0, "usize": 1000}, {"name": "evil.pkl", "data": evil}]),
        ["PK303"] + DANGER,
        f"the same {len(bomb)}-byte bzip2 member declaring 1000 bytes: decompression stops at "
        "MAX_COMPRESSION_RATIO after 64 MiB of output; the next member is still scanned", mb)
    add("bomb.pkl.bz2", bomb, ["PK303"],
        f"bz2 stream of {len(bomb)} bytes holding an 80 MiB pickle of zeros: stopped at MAX_COMPRESSION_RATIO", mb)

    # Nested zips: 8 levels are walked (a pickle in the 8th is scanned), a 9th level is not.
    def nest(levels: int) -> bytes:
        data = zip_bytes([("evil.pkl", evil)])
        for i in range(levels - 1):
            data = zip_bytes([(f"level{levels - 1 - i}.zip", data)], zipfile.ZIP_STORED)
        return data
    add(f"zip_nested_{MAX_CONTAINER_DEPTH}.zip", nest(MAX_CONTAINER_DEPTH), DANGER,
        f"{MAX_CONTAINER_DEPTH} zips nested (MAX_CONTAINER_DEPTH): the os.system pickle in the innermost is scanned",
        "zipfile [CPython]")
    add(f"zip_nested_{MAX_CONTAINER_DEPTH + 1}.zip", nest(MAX_CONTAINER_DEPTH + 1), ["PK209"],
        f"{MAX_CONTAINER_DEPTH + 1} zips nested: the innermost is past MAX_CONTAINER_DEPTH and reported as a limit",
        "zipfile [CPython]")


# ----------------------------------------------------------------------------
# Polyglots, truncated streams, payload errors in compressed streams
# ----------------------------------------------------------------------------

def gen_polyglots() -> None:
    mb = "written byte by byte"
    evil = evil_pickle()
    buf = io.BytesIO(benign_pickle())
    buf.seek(0, io.SEEK_END)
    with zipfile.ZipFile(buf, "a") as z:  # appended to a non-zip: a new archive after the pickle
        z.writestr(zipfile.ZipInfo("archive/data.pkl", date_time=ZIP_DATE), evil)
    add("polyglot_pickle_zip.pkl", buf.getvalue(), ["PK307"] + DANGER,
        "a benign pickle with a zip appended whose data.pkl calls os.system: pickle.load reads the pickle, "
        "zipfile (which finds the end record) the archive", "pickle.dumps + zipfile append mode")

    # 'B' BINBYTES takes bytes 1..4 ('Zh\0\0' = 26714) as a length: a bz2 magic to joblib, a pickle to pickle.load.
    n = struct.unpack("<I", b"Zh\0\0")[0]
    poly = b"BZh\0\0" + b"\0" * n + b"0" + E().global_("os", "system").mark().string(ECHO).tuple_().reduce().stop().bytes()
    add("polyglot_bz2_magic.pkl", poly, ["PK307"] + DANGER,
        "starts with the bz2 magic BZh (joblib and magic-byte scanners try bz2 and fail) but is a pickle: "
        "BINBYTES of 26714 bytes, POP, os.system(...)", mb)

    name = "cos\nsystem\n(S'echo pkinspect-fixture'\ntR."
    add("polyglot_tar_name.tar", tar_bytes([(name, b"\0\1")]), ["PK307"] + DANGER,
        "a ustar archive whose first member's name is a protocol-0 pickle calling os.system: pickle.load on "
        "the .tar runs it", "tarfile USTAR with a crafted name")


def gen_truncated() -> None:
    body = b"".join(b"%d," % (i * i % 10007) for i in range(12000))  # ~70 KB, compresses ~3x
    e = E().proto(2).global_("os", "system").binunicode(ECHO).tuple1().reduce().pop()
    e.binbytes(body).stop()
    stream = e.bytes()
    call_end = stream.index(b"R") + 1
    compressors = {
        "zlib": (lambda d: zlib.compress(d, 6), lambda: zlib.decompressobj()),
        "gz": (lambda d: gzip.compress(d, mtime=0), lambda: zlib.decompressobj(31)),
        "bz2": (lambda d: bz2.compress(d, 1), bz2.BZ2Decompressor),
        "lzma": (lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
                 lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE)),
        "xz": (lambda d: lzma.compress(d, format=lzma.FORMAT_XZ), lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ)),
        "lz4": (lambda d: lz4.frame.compress(d), lz4.frame.LZ4FrameDecompressor),
    }
    for ext, (comp, dec) in compressors.items():
        data = comp(stream)
        cut = data[: len(data) * 3 // 4]
        # What the reference decoder yields from the truncated bytes decides whether the call is visible.
        out = dec().decompress(cut)
        visible = len(out) >= call_end
        note = ""
        if ext == "xz" and visible:
            # pkinspect's xz decoder (lzma-rust2) reads each LZMA2 chunk (<= 64 KiB compressed) whole
            # before it yields any of it; the call is in the first chunk, which the cut leaves incomplete.
            visible, note = False, "; pkinspect's decoder needs the whole first LZMA2 chunk, so only the error"
        add(f"truncated_os_system.pkl.{ext}", cut, ["PK301"] + (DANGER if visible else []),
            f"pickle calling os.system then a {len(body)}-byte BINBYTES, {ext}-compressed and cut at 3/4: "
            f"container error; the reference decoder yields {len(out)} bytes, so the call is "
            f"{'visible' if len(out) >= call_end else 'not reachable'}{note}", f"{ext} + truncation")

    payload = E().proto(4)
    _wrapper(payload, (1000,))
    payload.raw(_padding(len(payload))).raw(b"\0" * 10)
    add("bad_payload_past_end.joblib.z", zlib.compress(payload.bytes(), 3), ["PK202"],
        "zlib joblib stream whose int64 (1000,) wrapper declares 8000 payload bytes; 10 follow", "emitter + zlib")
    shape = E().proto(4)
    _wrapper(shape, (2**62, 2**62))
    shape.raw(_padding(len(shape))).raw(b"\0" * 16).stop()
    add("bad_shape_overflow.joblib.xz", lzma.compress(shape.bytes(), format=lzma.FORMAT_XZ), ["PK201"],
        "xz joblib stream whose wrapper shape (2**62, 2**62) overflows 64 bits", "emitter + xz")
    zf = b"ZF" + b"0x40".ljust(19) + b"\x79\x00not a zlib stream"
    add("bad_zf_not_zlib.pkl", zf, ["PK301"], "ZF header followed by bytes that are not a zlib stream",
        "written byte by byte")


def generate() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    manifest.clear()
    gen_joblib()
    gen_numpy_and_archives()
    gen_legacy()
    gen_zip_anomalies()
    gen_polyglots()
    gen_truncated()
    manifest.sort(key=lambda m: m["file"])
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"{len(manifest)} container fixtures written to {OUT} ({total} bytes)")


if __name__ == "__main__":
    generate()

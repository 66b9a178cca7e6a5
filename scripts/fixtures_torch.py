#!/usr/bin/env python3
"""PyTorch checkpoint fixtures for pkinspect, written byte by byte WITHOUT torch.

    python3 scripts/fixtures_torch.py          # rewrites fixtures/torch/ (stdlib only)

torch is not installed to make these (the Linux wheel on PyPI is 539 MB plus
several GB of NVIDIA libraries), so every file follows the recipe in
shared/FORMATS.md §4 instead:

* zip checkpoints (torch >= 1.6, §4.1/§4.3): records in torch's order
  (data.pkl, .format_version, .storage_alignment, byteorder, data/<key>...,
  version, .data/serialization_id), stored, each local header with the 'FB'
  extra field that puts the data at a multiple of 64, a data descriptor,
  a central directory, then ZIP64 end record, ZIP64 locator and end record,
  as miniz writes them for torch.  data.pkl is a protocol-2 pickle with the
  persistent ids ('storage', torch.<T>Storage, key, 'cpu', numel).
* legacy non-zip checkpoints (§4.2): five protocol-2 pickles (magic number,
  protocol version 1001, sys_info, the object, the sorted storage keys), then
  per key an int64 element count and the raw little-endian bytes.  The
  magic, version, sys_info and key-list pickles are plain data and are
  written by CPython's own pickle.dumps(obj, protocol=2), as torch does; the
  object pickle is emitted opcode by opcode (persistent ids and torch globals
  cannot be pickled without torch).
* legacy tar checkpoints (torch <= 0.3, §4.2): a PAX tar with sys_info,
  pickle, tensors and storages, as torch 0.3's _save wrote them.

Deterministic: no clocks, no hash-order dependence (zip times are 0, tar
mtimes are 0); two runs give byte-identical files.

SAFETY: the hostile files carry only `echo pkinspect-fixture` and a Python
source string that prints; nothing here ever unpickles anything.  The
self-checks below read the files with zipfile, tarfile and
pickletools.genops only (static: nothing is imported or called).
"""

from __future__ import annotations

import io
import json
import pickle
import pickletools
import struct
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pickle_emit import Emitter  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "torch"
ECHO = "echo pkinspect-fixture"
DANGER = ["PK101", "PK102"]
# A legacy file read in pieces must not look like several pickles or broken streams.
LEGACY_QUIET = ["PK201", "PK202", "PK207", "PK208"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 8}}


# ---------------------------------------------------------------------------
# Raw storage bytes
# ---------------------------------------------------------------------------
def f32(*v: float) -> bytes:
    return struct.pack(f"<{len(v)}f", *v)


def i64(*v: int) -> bytes:
    return struct.pack(f"<{len(v)}q", *v)


def f16(*v: float) -> bytes:
    return struct.pack(f"<{len(v)}e", *v)


def bf16(*v: float) -> bytes:
    """bfloat16: the upper half of the float32 bits (values chosen to be exact)."""
    out = b""
    for x in v:
        bits = struct.unpack("<I", struct.pack("<f", x))[0]
        assert bits & 0xFFFF == 0, x
        out += struct.pack("<H", bits >> 16)
    return out


# ---------------------------------------------------------------------------
# Pickle pieces (opcode by opcode)
# ---------------------------------------------------------------------------
def int_(e: Emitter, n: int) -> Emitter:
    """An int as CPython's protocol-2 pickler writes it."""
    if 0 <= n < 256:
        return e.binint1(n)
    if 0 <= n < 65536:
        return e.binint2(n)
    if -(2**31) <= n < 2**31:
        return e.binint(n)
    b = pickle.encode_long(n)
    return e.raw(b"\x8a" + bytes([len(b)]) + b)


def small_tuple(e: Emitter, vals) -> None:
    for v in vals:
        int_(e, v)
    if len(vals) == 0:
        e.empty_tuple()
    elif len(vals) <= 3:
        {1: e.tuple1, 2: e.tuple2, 3: e.tuple3}[len(vals)]()
    else:
        raise ValueError(vals)


def ordered_dict(e: Emitter) -> Emitter:
    return e.global_("collections", "OrderedDict").empty_tuple().reduce()


def storage_pid(e: Emitter, cls: str, key: str, numel: int, legacy: bool, module: str = "torch") -> None:
    """('storage', <cls>, key, 'cpu', numel[, None]) BINPERSID."""
    e.mark().binunicode("storage").global_(module, cls).binunicode(key).binunicode("cpu")
    int_(e, numel)
    if legacy:
        e.none()                      # view_metadata
    e.tuple_().binpersid()


def tensor(e: Emitter, cls: str, key: str, numel: int, offset: int, size, stride, legacy: bool = False) -> None:
    """torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())."""
    e.global_("torch._utils", "_rebuild_tensor_v2")
    e.mark()
    storage_pid(e, cls, key, numel, legacy)
    int_(e, offset)
    small_tuple(e, size)
    small_tuple(e, stride)
    e.newfalse()
    ordered_dict(e)
    e.tuple_().reduce()


def parameter(e: Emitter, *args, **kw) -> None:
    """torch._utils._rebuild_parameter(tensor, True, OrderedDict())."""
    e.global_("torch._utils", "_rebuild_parameter")
    tensor(e, *args, **kw)
    e.newtrue()
    ordered_dict(e)
    e.tuple3().reduce()


def os_system(e: Emitter) -> None:
    e.global_("os", "system").binunicode(ECHO).tuple1().reduce()


# The state dict of FORMATS.md §4.1: float32, int64, float16, bfloat16, a
# view at storage offset 2, and a transpose sharing storage '0'.
# The int64 storage starts with 75 (0x4b, the BININT1 opcode 'K') and the
# bfloat16 one with 0.96875 (bytes 78 3f, a valid zlib header): raw tensor
# bytes that look like a pickle and a zlib stream, which a scanner must not
# read as either.
STATE_TENSORS = [
    # name, storage class, key, numel, offset, size, stride
    ("w", "FloatStorage", "0", 6, 0, (2, 3), (3, 1)),
    ("b", "LongStorage", "1", 3, 0, (3,), (1,)),
    ("h", "HalfStorage", "2", 4, 0, (4,), (1,)),
    ("bf", "BFloat16Storage", "3", 4, 0, (2, 2), (2, 1)),
    ("view", "FloatStorage", "4", 10, 2, (3,), (1,)),
    ("t", "FloatStorage", "0", 6, 0, (3, 2), (1, 3)),
]
STATE_DATA = {
    "0": f32(0, 1, 2, 3, 4, 5),
    "1": i64(75, -2, 3),
    "2": f16(0.5, 1.5, -2.0, 3.25),
    "3": bf16(0.96875, 1.0, -2.0, 0.5),
    "4": f32(*range(10)),
}


def state_dict_pickle(tensors=STATE_TENSORS, extra=None, legacy=False) -> bytes:
    e = Emitter().proto(2)
    ordered_dict(e)
    e.mark()
    for name, cls, key, numel, offset, size, stride in tensors:
        e.binunicode(name)
        tensor(e, cls, key, numel, offset, size, stride, legacy=legacy)
    if extra is not None:
        extra(e)
    e.setitems().stop()
    return e.bytes()


def linear_module_pickle() -> bytes:
    """torch.save(nn.Linear(3, 2)): NEWOBJ of the class, then BUILD with its __dict__."""
    e = Emitter().proto(2)
    e.global_("torch.nn.modules.linear", "Linear").empty_tuple().newobj()
    e.empty_dict().mark()
    e.binunicode("training").newtrue()
    e.binunicode("_parameters")
    ordered_dict(e)
    e.mark()
    e.binunicode("weight")
    parameter(e, "FloatStorage", "0", 6, 0, (2, 3), (3, 1))
    e.binunicode("bias")
    parameter(e, "FloatStorage", "1", 2, 0, (2,), (1,))
    e.setitems()
    e.binunicode("_buffers")
    ordered_dict(e)
    e.binunicode("_non_persistent_buffers_set")
    e.global_("__builtin__", "set").empty_list().tuple1().reduce()
    for hooks in ("_backward_pre_hooks", "_backward_hooks"):
        e.binunicode(hooks)
        ordered_dict(e)
    e.binunicode("_is_full_backward_hook").none()
    for hooks in ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
                  "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_state_dict_hooks",
                  "_state_dict_pre_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks",
                  "_modules"):
        e.binunicode(hooks)
        ordered_dict(e)
    e.binunicode("in_features")
    int_(e, 3)
    e.binunicode("out_features")
    int_(e, 2)
    e.setitems().build().stop()
    return e.bytes()


# ---------------------------------------------------------------------------
# Zip checkpoints (FORMATS.md §4.1 layout, §4.3 recipe)
# ---------------------------------------------------------------------------
def torch_zip(records: list[tuple[str, bytes]]) -> bytes:
    """A stored zip laid out as torch's miniz writer lays it out."""
    out = bytearray()
    central = bytearray()
    for name, data in records:
        raw = name.encode("utf-8")
        offset = len(out)
        start = offset + 30 + len(raw) + 4
        pad = (64 - start % 64) % 64
        extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 0, 0x0808, 0, 0, 0, 0, 0, 0, len(raw), len(extra))
        out += raw + extra
        assert len(out) % 64 == 0
        out += data
        crc = zlib.crc32(data)
        out += struct.pack("<4sIII", b"PK\x07\x08", crc, len(data), len(data))
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 0, 0, 0x0808, 0, 0, 0, crc, len(data),
                               len(data), len(raw), 0, 0, 0, 0, 0, offset)
        central += raw
    cd_offset = len(out)
    out += central
    n = len(records)
    z64 = len(out)
    out += struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 0x031E, 0x002D, 0, 0, n, n, len(central), cd_offset)
    out += struct.pack("<4sIQI", b"PK\x06\x07", 0, z64, 1)
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n, n, len(central), cd_offset, 0)
    return bytes(out)


def checkpoint(arch: str, data_pkl: bytes, storages: dict[str, bytes], extra_before_version=(),
               outside=()) -> bytes:
    """torch's record order: data.pkl, .format_version, .storage_alignment,
    byteorder, data/<key> (in key order), version, .data/serialization_id."""
    recs = [(f"{arch}/data.pkl", data_pkl), (f"{arch}/.format_version", b"1"),
            (f"{arch}/.storage_alignment", b"64"), (f"{arch}/byteorder", b"little")]
    recs += [(f"{arch}/data/{k}", storages[k]) for k in sorted(storages, key=int)]
    recs += [(f"{arch}/{n}", d) for n, d in extra_before_version]
    recs += [(f"{arch}/version", b"3\n"), (f"{arch}/.data/serialization_id", b"1234567890" * 4)]
    recs += list(outside)
    return torch_zip(recs)


# ---------------------------------------------------------------------------
# Legacy non-zip checkpoints (FORMATS.md §4.2)
# ---------------------------------------------------------------------------
# Storage keys are str(storage._cdata): pointer values, sorted as strings.
LEGACY_KEYS = {"w": "94011812345600", "b": "94011812346112"}
LEGACY_DATA = {LEGACY_KEYS["w"]: (6, f32(0, 1, 2, 3, 4, 5)), LEGACY_KEYS["b"]: (3, i64(75, -2, 3))}


def legacy_object(extra=None) -> bytes:
    tensors = [("w", "FloatStorage", LEGACY_KEYS["w"], 6, 0, (2, 3), (3, 1)),
               ("b", "LongStorage", LEGACY_KEYS["b"], 3, 0, (3,), (1,))]
    return state_dict_pickle(tensors, extra=extra, legacy=True)


def legacy_file(obj: bytes, data: dict[str, tuple[int, bytes]], tail: bytes = b"") -> bytes:
    """The five pickles, the storages in key order, then `tail`."""
    keys = sorted(data)
    out = pickle.dumps(LEGACY_MAGIC, protocol=2)
    out += pickle.dumps(LEGACY_PROTOCOL_VERSION, protocol=2)
    out += pickle.dumps(SYS_INFO, protocol=2)
    out += obj
    out += pickle.dumps(keys, protocol=2)
    for k in keys:
        numel, raw = data[k]
        out += struct.pack("<q", numel) + raw
    return out + tail


def legacy_module_object() -> bytes:
    """A legacy whole-module save: the class is a ('module', cls, file, source)
    persistent id (torch writes it in place of the class global), then NEWOBJ."""
    e = Emitter().proto(2)
    e.mark().binunicode("module").global_("torch.nn.modules.linear", "Linear")
    e.binunicode("/tmp/pkinspect-fixture/linear.py")
    e.binunicode("class Linear(Module):\n    print('pkinspect-fixture')\n")
    e.tuple_().binpersid()
    e.empty_tuple().newobj()
    e.empty_dict().mark()
    e.binunicode("training").newtrue()
    e.binunicode("_parameters")
    ordered_dict(e)
    e.mark().binunicode("weight")
    parameter(e, "FloatStorage", LEGACY_KEYS["w"], 6, 0, (2, 3), (3, 1), legacy=True)
    e.setitems()
    e.binunicode("in_features")
    int_(e, 3)
    e.binunicode("out_features")
    int_(e, 2)
    e.setitems().build().stop()
    return e.bytes()


# ---------------------------------------------------------------------------
# Legacy tar checkpoints (torch <= 0.3)
# ---------------------------------------------------------------------------
TAR_TENSORS = [
    # key, storage id, tensor class, storage class, size, stride, data
    ("94011812350000", 94011812345600, "FloatTensor", "FloatStorage", (2, 3), (3, 1), f32(0, 1, 2, 3, 4, 5)),
    ("94011812350512", 94011812346112, "LongTensor", "LongStorage", (3,), (1,), i64(75, -2, 3)),
]


def tar_pickle() -> bytes:
    """The `pickle` member: the state dict; tensors are persistent ids (their keys)."""
    e = Emitter().proto(2)
    ordered_dict(e)
    e.mark()
    for name, (key, *_rest) in zip(("w", "b"), TAR_TENSORS):
        e.binunicode(name).binunicode(key).binpersid()
    e.setitems().stop()
    return e.bytes()


def tar_tensors() -> bytes:
    out = pickle.dumps(len(TAR_TENSORS), protocol=2)
    for key, sid, tcls, _scls, size, stride, _data in TAR_TENSORS:
        e = Emitter().proto(2).binunicode(key)
        int_(e, sid)
        e.global_("torch", tcls).tuple3().stop()
        out += e.bytes()
        out += struct.pack("<i", len(size)) + b"\0" * 4
        out += struct.pack(f"<{len(size)}q", *size) + struct.pack(f"<{len(stride)}q", *stride)
        out += struct.pack("<q", 0)
    return out


def tar_storages(hostile: bool = False) -> bytes:
    out = pickle.dumps(len(TAR_TENSORS), protocol=2)
    for i, (_key, sid, _tcls, scls, _size, _stride, data) in enumerate(TAR_TENSORS):
        e = Emitter().proto(2)
        int_(e, sid)
        if hostile and i == 0:
            os_system(e)              # the location is computed by os.system(...)
        else:
            e.binunicode("cpu")
        e.global_("torch", scls).tuple3().stop()
        out += e.bytes()
        out += struct.pack("<q", len(data) // (4 if scls == "FloatStorage" else 8)) + data
    out += pickle.dumps([], protocol=2)   # storage views
    return out


def torch_tar(hostile: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("sys_info", pickle.dumps(SYS_INFO, protocol=2)), ("pickle", tar_pickle()),
                           ("tensors", tar_tensors()), ("storages", tar_storages(hostile))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# ---------------------------------------------------------------------------
# The fixture set
# ---------------------------------------------------------------------------
def build() -> list[dict]:
    out: list[dict] = []

    def add(file: str, data: bytes, kind: str, rules: list[str], desc: str, allow=(), not_rules=(),
            legacy=None) -> None:
        entry = {"file": file, "kind": kind, "expect_rules": rules}
        if allow:
            entry["allow"] = list(allow)
        if not_rules:
            entry["not_rules"] = list(not_rules)
        entry["description"] = desc
        entry["_data"] = data
        entry["_legacy"] = legacy
        out.append(entry)

    # -- benign -------------------------------------------------------------
    add("zip_state_dict.pt", checkpoint("zip_state_dict", state_dict_pickle(), STATE_DATA), "benign", [],
        "torch.save(state_dict) layout (torch >= 1.6 zip): float32 'w' (2,3), int64 'b', float16 'h', bfloat16 "
        "'bf', a view at storage offset 2 of storage 4, and 't', a transpose sharing storage 0. data/1 starts "
        "with the byte 'K' and data/3 with a valid zlib header: raw storages must not be read as pickles.")
    add("pytorch_model_v2_best.pt", checkpoint("pytorch_model_v2_best", state_dict_pickle(), STATE_DATA), "benign",
        [], "zip_state_dict.pt under a 21-character archive name: its first central directory entry is 76 "
        "bytes long, as long as the ZIP64 records torch writes before the end record, which zip 9.4's offset "
        "detection then mistakes for the directory's start (it refuses the archive); pkinspect opens it at "
        "offset 0 as zipfile and torch do.")
    add("zip_whole_module.pt",
        checkpoint("zip_whole_module", linear_module_pickle(), {"0": f32(*range(6)), "1": f32(0.5, -0.5)}),
        "benign", [],
        "torch.save(nn.Linear(3, 2)) layout: NEWOBJ torch.nn.modules.linear.Linear, BUILD with its __dict__ "
        "(__builtin__.set, _rebuild_parameter). Linear is not on the built-in allowlist (weights_only=True "
        "refuses it too): clean with --allow torch.nn.modules.linear.Linear, PK115/PK104 without.",
        allow=["torch.nn.modules.linear.Linear"])
    add("legacy_state_dict.pt", legacy_file(legacy_object(), LEGACY_DATA), "benign", [],
        "torch.save(sd, f, _use_new_zipfile_serialization=False): magic, 1001, sys_info, the state dict "
        "(persistent ids ('storage', cls, key, 'cpu', numel, None)), the sorted keys, then two raw storages.",
        legacy=(LEGACY_DATA, b""))
    add("tar_state_dict.tar", torch_tar(), "benign", [],
        "torch <= 0.3 tar checkpoint: sys_info, pickle (tensor keys as persistent ids), tensors (count, then "
        "(key, storage_id, torch.FloatTensor) + shape/stride metadata per tensor), storages (count, then "
        "(key, 'cpu', torch.FloatStorage) + int64 count + bytes per storage, then the view list). The tensor "
        "classes are on the built-in allowlist (torch's weights-only unpickler admits them): clean.")

    # -- hostile: zip -------------------------------------------------------
    add("zip_data_pkl_os_system.pt",
        checkpoint("zip_data_pkl_os_system", state_dict_pickle(STATE_TENSORS[:1], extra=lambda e: (
            e.binunicode("x"), os_system(e))), {"0": STATE_DATA["0"]}),
        "hostile", DANGER, "Zip checkpoint whose data.pkl calls os.system('echo pkinspect-fixture') next to a tensor.")
    extra = Emitter().proto(2)
    os_system(extra)
    extra.stop()
    add("zip_extra_pickle_member.pt",
        checkpoint("zip_extra_pickle_member", state_dict_pickle(), STATE_DATA,
                   extra_before_version=[("extra.pkl", extra.bytes())]),
        "hostile", DANGER + ["PK304"],
        "Valid state-dict checkpoint plus a member <arch>/extra.pkl calling os.system: torch.load never "
        "unpickles it, another tool may; scanned and reported.")
    missing = [("w", "FloatStorage", "0", 6, 0, (2, 3), (3, 1)), ("ghost", "FloatStorage", "9", 4, 0, (4,), (1,))]
    add("zip_missing_storage_record.pt",
        checkpoint("zip_missing_storage_record", state_dict_pickle(missing), {"0": STATE_DATA["0"]}),
        "hostile", ["PK304"], "A persistent id names storage '9'; the archive has no data/9 record.")
    big = [("w", "FloatStorage", "0", 1000, 0, (10, 100), (100, 1))]
    add("zip_numel_exceeds_record.pt",
        checkpoint("zip_numel_exceeds_record", state_dict_pickle(big), {"0": STATE_DATA["0"]}),
        "hostile", ["PK304"],
        "A persistent id declares 1000 float32 elements (4000 bytes); data/0 holds 24 bytes.")
    e = Emitter().proto(2)
    ordered_dict(e)
    e.mark().binunicode("w")
    e.global_("torch._utils", "_rebuild_tensor_v2").mark()
    e.mark().binunicode("storage").global_("os", "system").binunicode("0").binunicode("cpu")
    int_(e, 6)
    e.tuple_().binpersid()
    int_(e, 0)
    small_tuple(e, (6,))
    small_tuple(e, (1,))
    e.newfalse()
    ordered_dict(e)
    e.tuple_().reduce().setitems().stop()
    add("zip_storage_class_os_system.pt",
        checkpoint("zip_storage_class_os_system", e.bytes(), {"0": STATE_DATA["0"]}),
        "hostile", ["PK101", "PK304"],
        "The storage class of a persistent id is os.system, not a torch *Storage (imported, not called).")
    outside = Emitter().proto(2)
    os_system(outside)
    outside.stop()
    add("zip_record_outside_folder.pt",
        checkpoint("zip_record_outside_folder", state_dict_pickle(), STATE_DATA,
                   outside=[("payload/run.pkl", outside.bytes())]),
        "hostile", DANGER + ["PK304"],
        "Valid checkpoint plus a record payload/run.pkl outside the archive folder: torch.load never reads it; "
        "it is a pickle calling os.system.")

    # -- hostile: legacy non-zip -------------------------------------------
    add("legacy_os_system.pt",
        legacy_file(legacy_object(extra=lambda e: (e.binunicode("x"), os_system(e))), LEGACY_DATA),
        "hostile", DANGER,
        "Legacy non-zip checkpoint whose object pickle calls os.system; its storages follow as usual.",
        not_rules=LEGACY_QUIET, legacy=(LEGACY_DATA, b""))
    sixth = Emitter().proto(2)
    os_system(sixth)
    sixth.stop()
    add("legacy_hidden_sixth_pickle.pt", legacy_file(legacy_object(), LEGACY_DATA, tail=sixth.bytes()),
        "hostile", DANGER + ["PK208"],
        "Valid legacy checkpoint with a sixth pickle after the last storage (os.system): torch.load stops "
        "before it, a loader that reads on runs it.", not_rules=["PK201", "PK202", "PK207"],
        legacy=(LEGACY_DATA, sixth.bytes()))
    add("legacy_module_source.pt",
        legacy_file(legacy_module_object(), {LEGACY_KEYS["w"]: LEGACY_DATA[LEGACY_KEYS["w"]]}),
        "hostile", ["PK304", "PK115"],
        "Legacy whole-module save: a ('module', torch.nn.modules.linear.Linear, file, source) persistent id "
        "carrying Python source text (a harmless print), used as the NEWOBJ class.",
        not_rules=LEGACY_QUIET, legacy=({LEGACY_KEYS["w"]: LEGACY_DATA[LEGACY_KEYS["w"]]}, b""))

    # -- hostile: tar --------------------------------------------------------
    add("tar_storages_os_system.tar", torch_tar(hostile=True), "hostile", DANGER,
        "torch <= 0.3 tar checkpoint whose first `storages` header pickle computes its location with "
        "os.system: the legacy loader unpickles every header.",
        not_rules=["PK201", "PK202", "PK207", "PK208"])
    return out


# ---------------------------------------------------------------------------
# Static self-checks (zipfile, tarfile, pickletools: nothing is unpickled)
# ---------------------------------------------------------------------------
def pickle_end(data: bytes, start: int) -> int:
    """Offset just past the STOP of the pickle at `start` (pickletools.genops)."""
    for op, _arg, pos in pickletools.genops(io.BytesIO(data[start:])):
        if op.name == "STOP":
            return start + pos + 1
    raise ValueError("no STOP")


def check(entry: dict) -> None:
    data = entry["_data"]
    name = entry["file"]
    if name.endswith(".pt") and data.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            assert z.testzip() is None, name
            first = z.namelist()[0]
            arch = first.split("/")[0]
            pickle_end(z.read(f"{arch}/data.pkl"), 0)
            for info in z.infolist():
                assert info.header_offset + 30 + len(info.filename) + len(info.extra) <= len(data)
    elif name.endswith(".pt"):
        pos = 0
        for _ in range(5):
            pos = pickle_end(data, pos)
        # The storage section: per key (in sorted order) an int64 count and the bytes.
        storages, tail = entry["_legacy"]
        for key in sorted(storages):
            numel, raw = storages[key]
            assert struct.unpack_from("<q", data, pos)[0] == numel, (name, key)
            pos += 8 + len(raw)
        assert data[pos:] == tail, name
    else:
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            assert t.getnames() == ["sys_info", "pickle", "tensors", "storages"], t.getnames()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        if old.name != "manifest.json":
            old.unlink()
    entries = build()
    manifest = []
    for entry in entries:
        check(entry)
        (OUT / entry["file"]).write_bytes(entry.pop("_data"))
        entry.pop("_legacy")
        manifest.append(entry)
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(manifest)} fixtures to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Gadget hunt: which uses of each allowlisted global have effects a hostile pickle can trigger.

Every entry of src/policy/allowlist.txt and src/policy/conditional.txt is exercised, in a
forked and sandboxed child of its own, in each way a pickle can reach it (the uses of
docs/uses.md: call, new, build, items, invoke, ref), with crafted probe values: paths in
the child's temp folder, file modes, code strings carrying a marker, module names, a URL
on a loopback port the parent listens on, and probe callables/classes that record being
called. `invoke` and `items` also run on objects made to hold probe callables (X called
with one in each position; X.__new__(X) and a BUILD mapping each plausible attribute name
to one). An audit hook (plus a meta-path finder, a fork_exec guard and file-system
snapshots) records what each use does; escapes (processes, sockets, ctypes, writes outside
the temp folder) are refused. See docs/gadgets.md.

--check exits 1 when the allowlist permits a use that showed an effect, except a launderer's
calls-argument, an effect scripts/gen_allowlist.py EXEMPTs and a use permitted only within a
contract (`call(...)`/`build(...)`: listed as 'contract (reviewed)').

    python scripts/gadget_hunt.py --out scripts/data/hunt.json [--jobs N] [--only SUBSTRING]
    python scripts/gadget_hunt.py --check ALLOWLIST [--hunt scripts/data/hunt.json] [--launderers FILE]

Run it with the pinned venv (.venv/bin/python). It never loads fixture files.
Environment knobs (testing only): PKHUNT_NO_UNSHARE=1 (no namespaces), PKHUNT_NS=net+mount|
user+net+mount|user+net (force one kind), PKHUNT_TRACE=TEXT (notes of every audit event of
the probes whose text contains TEXT).
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALLOWLIST = os.path.join(REPO, "src", "policy", "allowlist.txt")
CONDITIONAL = os.path.join(REPO, "src", "policy", "conditional.txt")
DEFAULT_OUT = os.path.join(REPO, "scripts", "data", "hunt.json")

USES = ("ref", "new", "call", "build", "items", "invoke")
EFFECTS = ("file-write", "file-create", "file-read", "import", "compile",
           "calls-argument", "network", "process", "ctypes")

# Limits. The whole hunt is sized for 2 cores and ~5 minutes.
MAX_PROBES = 64          # probes per entry, all uses together
MAX_CALLS_CLASS = 28     # `call` probes of a class (other uses take the rest)
MAX_CALLS_FUNC = 50      # `call` probes of a function
MAX_HELD_PROBES = 64     # `invoke`/`items` probes on objects holding probe callables (on top of MAX_PROBES)
MAX_HELD_CALLS = 5       # ... made by calling X with a probe callable/class in one position (or in all)
PROBE_TIMER_S = 3.0      # in-child interval timer per probe phase (raises HuntTimeout)
PROBE_WALL_S = 12.0      # the parent kills a child whose current probe runs longer
ENTRY_WALL_S = 45.0      # ... or whose run lasts longer
MAX_RESTARTS = 3         # a child that crashed or was killed is restarted after the bad probe
CHILD_RLIMITS = {"cpu_s": 40, "as_bytes": 4 << 30, "fsize_bytes": 64 << 20, "nofile": 256, "nproc": 0,
                 "core": 0}
NOBODY = 65534
THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "NUMEXPR_NUM_THREADS": "1", "NUMEXPR_MAX_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1",
              "BLIS_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
              "PYTHONWARNINGS": "ignore"}

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")

# Launderers of docs/uses.md ("module name" lines; fnmatch patterns allowed). Used by
# --check when --launderers is not given.
DEFAULT_LAUNDERERS = """\
copyreg _reconstructor
copyreg __newobj__
copyreg __newobj_ex__
numpy.random._pickle __bit_generator_ctor
numpy.random._pickle __generator_ctor
numpy.random._pickle __randomstate_ctor
sklearn.neighbors._kd_tree newObj
sklearn.neighbors._ball_tree newObj
sklearn.metrics._dist_metrics newObj
* __pyx_unpickle_*
pandas.core.indexes.base _new_Index
pandas.core.indexes.api _new_Index
pandas.core.indexes.datetimes _new_DatetimeIndex
pandas.core.indexes.period _new_PeriodIndex
pandas.core.indexes.interval _new_IntervalIndex
pandas.core.indexes.timedeltas _new_TimedeltaIndex
numpy._core.multiarray _reconstruct
numpy._core._multiarray_umath _reconstruct
numpy.core.multiarray _reconstruct
numpy.core._multiarray_umath _reconstruct
numpy.core._internal _reconstruct
numpy core.multiarray._reconstruct
numpy.ma.core _mareconstruct
functools partial
_functools partial
builtins getattr
torch._tensor _rebuild_from_type_v2
"""


# ---------------------------------------------------------------------------------------
# Allowlist reading and --check
# ---------------------------------------------------------------------------------------

def read_entries(paths):
    """(module, name) of every entry line: `module name [use ...]`; comments and junk skipped."""
    out, seen = [], set()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                s = line.strip()
                if not s or s.startswith("#"):
                    continue
                parts = s.split()
                if len(parts) < 2 or not IDENT.match(parts[0]) or not IDENT.match(parts[1]):
                    continue
                key = (parts[0], parts[1])
                if key not in seen:
                    seen.add(key)
                    out.append(key)
    return out


def read_permitted(path):
    """entry -> {use: token}: the uses the line permits, each with its token as written
    (`call(str,int)`, `build(_parse_arg_template:argparser)` for a use permitted only within a
    contract, else the bare use). A line without uses (the old format) permits every use."""
    permitted = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            parts = s.split()
            if len(parts) < 2 or not IDENT.match(parts[0]) or not IDENT.match(parts[1]):
                continue
            uses = {u: u for u in USES} if len(parts) == 2 else {}
            for tok in parts[2:]:
                uses[tok.split("(", 1)[0]] = tok
            permitted.setdefault(f"{parts[0]} {parts[1]}", {}).update(uses)
    return permitted


def read_launderers(text):
    pats = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split()
        if len(parts) >= 2:
            pats.append(f"{parts[0]} {parts[1]}")
    return pats


def load_generator():
    """scripts/gen_allowlist.py, for its EXEMPT ({(module, name, effect): reason}: hunt effects
    reviewed by hand as not gadgets) and its launderers() predicate. Imported, not copied, so that
    --check and the generator agree. Light at import: the libraries load only in generate()."""
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    import gen_allowlist
    return gen_allowlist


def check_mode(args):
    """Exit 1 listing each finding whose use the allowlist permits, except: calls-argument of a
    launderer (modelled by the judge), an effect gen_allowlist.py EXEMPTs (reviewed), and a use the
    allowlist permits only within a contract (`call(...)`, `build(...)`): the hunt's probes are
    not shaped to the contract, so those are listed as 'contract (reviewed)', not failures."""
    with open(args.hunt, encoding="utf-8") as f:
        hunt = json.load(f)
    permitted = read_permitted(args.check)
    gen = load_generator()
    exempt = dict(gen.EXEMPT)
    if args.launderers:
        with open(args.launderers, encoding="utf-8") as f:
            launderers = read_launderers(f.read())
        is_launderer = None
    else:  # the table of docs/uses.md, and whatever the generator models as a launderer
        launderers = read_launderers(DEFAULT_LAUNDERERS)
        is_launderer = gen.launderers()
    failures, contracts, exempted, laundered, not_permitted = [], [], [], [], 0
    for fd in hunt["findings"]:
        uses = permitted.get(fd["entry"])
        if not uses or fd["use"] not in uses:
            not_permitted += 1
            continue
        m, n = fd["entry"].split(" ", 1)
        if fd["effect"] == "calls-argument" and (any(fnmatch.fnmatchcase(fd["entry"], p) for p in launderers)
                                                 or (is_launderer is not None and is_launderer(m, n))):
            laundered.append(fd)
        elif (m, n, fd["effect"]) in exempt:
            exempted.append((fd, exempt[(m, n, fd["effect"])]))
        elif "(" in uses[fd["use"]]:
            contracts.append((fd, uses[fd["use"]]))
        else:
            failures.append(fd)
    for fd in failures:
        arg = f" arg={fd['arg']}" if "arg" in fd else ""
        print(f"{fd['entry']}: use {fd['use']} is permitted but has effect {fd['effect']}{arg}"
              f" (probe: {fd['probe']}; {fd['detail']})")
    for fd, tok in contracts:
        print(f"contract (reviewed): {fd['entry']}: use {fd['use']} is permitted only as `{tok}`;"
              f" effect {fd['effect']} seen outside it (probe: {fd['probe'][:100]})")
    for fd, why in exempted:
        print(f"exempt (gen_allowlist.py EXEMPT): {fd['entry']}: use {fd['use']} effect {fd['effect']}: {why}")
    print(f"{len(failures)} permitted gadget use(s) in {args.check}"
          f" ({len(hunt['findings'])} findings in {args.hunt}: {not_permitted} on uses not permitted,"
          f" {len(laundered)} calls-argument of launderers, {len(exempted)} exempt,"
          f" {len(contracts)} within a contract (reviewed))", file=sys.stderr)
    return 1 if failures else 0


# ---------------------------------------------------------------------------------------
# Outer launcher: namespaces, then the inner hunt; writes the JSON
# ---------------------------------------------------------------------------------------

def pick_namespace():
    if os.environ.get("PKHUNT_NO_UNSHARE"):
        return [], "none"
    exe = shutil.which("unshare")
    if not exe:
        return [], "none"
    cands = []
    if os.geteuid() == 0:
        cands.append(([exe, "--net", "--mount", "--propagation", "private"], "net+mount"))
    cands.append(([exe, "--user", "--map-root-user", "--net", "--mount", "--propagation", "private"],
                  "user+net+mount"))
    cands.append(([exe, "--user", "--map-root-user", "--net"], "user+net"))
    force = os.environ.get("PKHUNT_NS")  # testing: force one kind (net+mount, user+net+mount, user+net)
    if force:
        cands = [c for c in cands if c[1] == force]
    for cmd, label in cands:
        try:
            r = subprocess.run(cmd + ["true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0:
            return cmd, label
    return [], "none"


def launch(args):
    t0 = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="gadget-hunt-")
    os.chmod(workdir, 0o755)
    try:
        prefix, label = pick_namespace()
        cmd = prefix + [sys.executable, os.path.abspath(__file__), "--_inner", workdir, "--_ns", label,
                        "--jobs", str(args.jobs)]
        if args.only:
            cmd += ["--only", args.only]
        env = dict(os.environ)
        env.update(THREAD_ENV)
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, env=env, cwd=REPO)
        if proc.returncode != 0:
            print(f"gadget_hunt: the hunt failed (exit {proc.returncode})", file=sys.stderr)
            return 2
        result = json.loads(proc.stdout.decode("utf-8"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {os.path.relpath(out, REPO)}; total time {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------
# Inner: isolation set-up (inside the namespaces), imports, scheduler
# ---------------------------------------------------------------------------------------

def _run(cmd):
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def _expose_paths(workdir, needed):
    """Make the interpreter's and the venv's trees readable by an unprivileged uid: a directory
    on the way that others may not traverse (e.g. /root, mode 700) is covered by a tmpfs
    holding only bind mounts of the needed subtrees. Only in a private mount namespace."""
    fixes = {}
    for p in needed:
        p = os.path.realpath(p)
        cur = "/"
        for comp in [c for c in p.split("/") if c]:
            if not os.stat(cur).st_mode & 0o001:
                fixes.setdefault(cur, set()).add(comp)
            cur = os.path.join(cur, comp)
    tops = sorted(fixes)
    for a in tops:
        for b in tops:
            if a != b and b.startswith(a.rstrip("/") + "/"):
                return False  # nested: not handled, children keep the parent's uid
    hold = os.path.join(workdir, ".hold")
    for n, top in enumerate(tops):
        comps = sorted(fixes[top])
        holds = []
        for i, comp in enumerate(comps):
            h = os.path.join(hold, f"{n}_{i}")
            os.makedirs(h)
            if not _run(["mount", "--bind", os.path.join(top, comp), h]):
                return False
            holds.append((comp, h))
        if not _run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=1m", "pkhunt-expose", top]):
            return False
        for comp, h in holds:
            dst = os.path.join(top, comp)
            os.mkdir(dst)
            if not _run(["mount", "--bind", h, dst]):
                return False
            _run(["mount", "-o", "remount,bind,ro", dst])
        _run(["mount", "-o", "remount,ro", top])
    return True


def lo_up():
    import fcntl
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, req)[:18])[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sh22x", b"lo", flags | 1))  # SIOCSIFFLAGS, IFF_UP
    finally:
        s.close()


def setup_isolation(workdir, ns):
    import site
    iso = {"namespaces": ns, "network_namespace": "net" in ns, "mount_namespace": "mount" in ns,
           "workdir": "on disk, removed afterwards", "readonly_root": False, "child_uid": "same as hunt",
           "audit_hook": True, "meta_path_import_recorder": True, "fork_exec_guard": True,
           "rlimits": dict(CHILD_RLIMITS), "per_entry": "fork, fresh temp cwd/HOME/TMPDIR, own session,"
           " wall-clock kill, per-probe timer"}
    drop_uid = False
    if "mount" in ns:
        if _run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=1g", "pkhunt", workdir]):
            iso["workdir"] = "tmpfs in a private mount namespace"
        if ns == "net+mount":  # real root: children run as nobody
            needed = {sys.prefix, sys.base_prefix, sys.exec_prefix, REPO, os.path.dirname(os.__file__)}
            needed.update(p for p in site.getsitepackages() if os.path.isdir(p))
            try:
                drop_uid = _expose_paths(workdir, needed)
            except OSError:
                drop_uid = False
        _run(["mount", "-o", "remount,bind,ro", "/"])
        if os.path.isdir("/dev/shm"):  # a private, empty one (joblib's semaphores need it)
            if _run(["mount", "-t", "tmpfs", "-o", "mode=1777,size=64m", "pkhunt-shm", "/dev/shm"]):
                iso["dev_shm"] = "private tmpfs"
        try:
            with open(os.path.join(REPO, ".pkhunt_rw_test"), "w"):
                pass
            os.unlink(os.path.join(REPO, ".pkhunt_rw_test"))
        except OSError:
            iso["readonly_root"] = True
    if "net" in ns:
        try:
            lo_up()
            iso["network"] = "own namespace, loopback only"
        except OSError:
            iso["network"] = "own namespace, no loopback"
    else:
        iso["network"] = "host network (audit hook refuses sockets)"
    if drop_uid:
        iso["child_uid"] = f"{NOBODY} (nobody), no capabilities"
    return iso, drop_uid


def warm_imports():
    """Import the libraries (and their lazily imported I/O back ends) once, before forking."""
    import importlib
    import warnings
    warnings.simplefilter("ignore")
    mods = ["numpy", "scipy", "scipy.sparse", "sklearn", "pandas", "joblib", "openpyxl", "xlsxwriter",
            "tables", "numexpr", "pandas.io.excel._openpyxl", "pandas.io.excel._xlsxwriter",
            "pandas.io.pytables", "pandas.plotting._core", "pandas.core.computation.expr",
            "pandas.core.computation.eval", "pandas.io.common", "urllib.request", "http.client",
            "importlib.metadata", "sklearn.utils.parallel", "joblib.parallel", "zoneinfo", "decimal",
            "copyreg", "numpy.ma", "numpy.random", "inspect", "gc", "mmap", "sqlite3"]
    for m in mods:
        try:
            importlib.import_module(m)
        except Exception:
            pass


def resolve(mod, name):
    import importlib
    obj = importlib.import_module(mod)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def versions():
    import platform
    out = {"python": platform.python_version()}
    for key, mod in (("numpy", "numpy"), ("sklearn", "sklearn"), ("scipy", "scipy"), ("pandas", "pandas"),
                     ("joblib", "joblib"), ("openpyxl", "openpyxl"), ("xlsxwriter", "xlsxwriter"),
                     ("tables", "tables")):
        try:
            out[key] = sys.modules[mod].__version__ if mod in sys.modules else __import__(mod).__version__
        except Exception:
            out[key] = None
    return out


def inner(args):
    t0 = time.monotonic()
    workdir = args._inner
    iso, drop_uid = setup_isolation(workdir, args._ns)
    warm_imports()
    entries = read_entries([ALLOWLIST, CONDITIONAL])
    if args.only:
        entries = [e for e in entries if args.only in f"{e[0]} {e[1]}"]
    notes = []
    todo = []
    for key in entries:
        try:
            obj = resolve(*key)
        except Exception as e:  # e.g. torch is not installed
            notes.append({"entry": f"{key[0]} {key[1]}", "note": "unimportable",
                          "detail": f"{type(e).__name__}: {str(e)[:80]}"})
            continue
        todo.append((key, obj))
    import gc
    gc.collect()
    gc.freeze()  # children's gc.collect() then scans only what they allocate
    iso["nproc_enforced"] = test_nproc(workdir, drop_uid)
    t_import = time.monotonic() - t0
    findings, more_notes, probes_run = schedule(todo, workdir, drop_uid, max(1, args.jobs))
    notes.extend(more_notes)
    notes.sort(key=lambda n: (n["entry"], n["note"], n["detail"]))
    flist = sorted(findings.values(), key=lambda f: (f["entry"], f["use"], f["effect"]))
    result = {"entries_tested": len(todo), "findings": flist, "isolation": iso, "notes": notes,
              "probes_run": probes_run, "versions": versions(),
              "effects": list(EFFECTS), "uses": list(USES)}
    dt = time.monotonic() - t0
    per = {}
    for f in flist:
        per[f["effect"]] = per.get(f["effect"], 0) + 1
    print(f"entries tested: {len(todo)} (unimportable: {sum(1 for n in notes if n['note'] == 'unimportable')}),"
          f" probes run: {probes_run}", file=sys.stderr)
    print("findings per effect: " + (", ".join(f"{k} {per[k]}" for k in EFFECTS if k in per) or "none")
          + f" (total {len(flist)})", file=sys.stderr)
    print(f"crashes: {sum(1 for n in notes if n['note'] == 'crash')}, timeouts:"
          f" {sum(1 for n in notes if n['note'] == 'timeout')}", file=sys.stderr)
    print(f"isolation: {iso['namespaces']}; child uid {iso['child_uid']}; nproc enforced {iso['nproc_enforced']};"
          f" read-only root {iso['readonly_root']}", file=sys.stderr)
    print(f"time: {dt:.1f} s (imports and set-up {t_import:.1f} s)", file=sys.stderr)
    sys.stdout.write(json.dumps(result, sort_keys=True))
    sys.stdout.flush()
    return 0


def test_nproc(workdir, drop_uid):
    """Does RLIMIT_NPROC=0 stop a child (as the hunt's children run) from forking?"""
    import resource
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            if drop_uid:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
            try:
                p2 = os.fork()
            except OSError:
                os.write(w, b"1")
                os._exit(0)
            if p2 == 0:
                os._exit(0)
            os.waitpid(p2, 0)
            os.write(w, b"0")
        finally:
            os._exit(0)
    os.close(w)
    data = os.read(r, 1)
    os.close(r)
    os.waitpid(pid, 0)
    return data == b"1"


def schedule(todo, workdir, drop_uid, jobs):
    from collections import deque
    findings = {}
    notes = []
    probes_run = 0
    queue = deque((i, 0, 0) for i in range(len(todo)))
    running = {}
    done_entries = 0
    last_report = time.monotonic()

    def spawn(idx, start, restarts):
        key, obj = todo[idx]
        tmp = os.path.join(workdir, f"e{idx:04d}_{restarts}")
        os.mkdir(tmp, 0o700)
        if drop_uid:
            os.chown(tmp, NOBODY, NOBODY)
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(8)
        rfd, wfd = os.pipe()
        others = [fd for st in running.values() for fd in (st["fd"], st["lsock"].fileno())]
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                os.close(rfd)
                for fd in others:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                child_main(key, obj, tmp, lsock, wfd, start, drop_uid)
                code = 0
            except BaseException:
                pass
            os._exit(code)
        os.close(wfd)
        now = time.monotonic()
        running[pid] = {"idx": idx, "key": key, "fd": rfd, "lsock": lsock, "buf": b"", "t0": now, "tp": now,
                        "cur": start - 1, "cur_desc": "(before the first probe)", "total": None,
                        "done": False, "killed": None, "eof": False, "tmp": tmp, "restarts": restarts}

    def handle(st, rec):
        nonlocal probes_run
        t = rec.get("t")
        ent = f"{st['key'][0]} {st['key'][1]}"
        if t == "total":
            st["total"] = rec["n"]
        elif t == "start":
            st["cur"] = rec["i"]
            st["cur_desc"] = rec["probe"]
            st["tp"] = time.monotonic()
            probes_run += 1
        elif t == "eff":
            k = (ent, rec["use"], rec["effect"])
            if k not in findings:
                f = {"entry": ent, "use": rec["use"], "effect": rec["effect"], "probe": rec["probe"],
                     "detail": rec["detail"]}
                if rec["effect"] == "calls-argument":
                    f["arg"] = rec.get("arg")
                findings[k] = f
        elif t == "note":
            notes.append({"entry": ent, "note": rec["note"], "detail": rec["detail"]})
        elif t == "done":
            st["done"] = True

    def finish(pid, st, status):
        nonlocal done_entries
        ent = f"{st['key'][0]} {st['key'][1]}"
        os.close(st["fd"])
        st["lsock"].close()
        shutil.rmtree(st["tmp"], ignore_errors=True)
        if st["done"]:
            done_entries += 1
            return
        if st["killed"]:
            kind, why = "timeout", st["killed"]
        elif os.WIFSIGNALED(status):
            kind, why = "crash", f"signal {signal.Signals(os.WTERMSIG(status)).name}"
        else:
            kind, why = "crash", f"exit {os.WEXITSTATUS(status)}"
        notes.append({"entry": ent, "note": kind, "detail": f"{why} during {st['cur_desc']}"[:200]})
        nxt = st["cur"] + 1
        if st["total"] is not None and nxt < st["total"] and st["restarts"] < MAX_RESTARTS:
            queue.appendleft((st["idx"], nxt, st["restarts"] + 1))
        else:
            done_entries += 1

    while queue or running:
        while queue and len(running) < jobs:
            spawn(*queue.popleft())
        fds = {st["fd"]: pid for pid, st in running.items() if not st["eof"]}
        ready = select.select(list(fds), [], [], 0.2)[0] if fds else []
        for fd in ready:
            st = running[fds[fd]]
            data = os.read(fd, 1 << 16)
            if not data:
                st["eof"] = True
                continue
            st["buf"] += data
            *lines, st["buf"] = st["buf"].split(b"\n")
            for line in lines:
                if line:
                    try:
                        handle(st, json.loads(line))
                    except ValueError:
                        pass
        now = time.monotonic()
        for pid, st in list(running.items()):
            if st["eof"]:
                _, status = os.waitpid(pid, 0)
                del running[pid]
                finish(pid, st, status)
            elif st["killed"] is None and (now - st["tp"] > PROBE_WALL_S or now - st["t0"] > ENTRY_WALL_S):
                st["killed"] = (f"probe over {PROBE_WALL_S:.0f} s wall" if now - st["tp"] > PROBE_WALL_S
                                else f"entry over {ENTRY_WALL_S:.0f} s wall")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if now - last_report > 15:
            last_report = now
            print(f"  ... {done_entries}/{len(todo)} entries, {probes_run} probes", file=sys.stderr)
    return findings, notes, probes_run


# ---------------------------------------------------------------------------------------
# Child: sandbox, audit hook, probes
# ---------------------------------------------------------------------------------------

class HuntBlocked(BaseException):
    """Raised by the audit hook to refuse an escape."""


class HuntTimeout(BaseException):
    """Raised by the per-probe interval timer."""


class State:
    armed = False      # record effects (a probe phase is running)
    busy = False       # our own bookkeeping: the hook ignores everything
    use = "call"
    desc = ""
    tmp = ""
    port = 0
    wfd = -1
    seen = set()
    imports = []
    probe_types = {}   # id(class) -> tag, for "returned an instance of the argument"
    read_ok = ()
    names = []         # attribute names for BUILD states


S = State()


def emit(rec):
    data = (json.dumps(rec, sort_keys=True) + "\n").encode()
    while data:
        n = os.write(S.wfd, data)
        data = data[n:]


def sanitize(text):
    text = str(text)
    if S.tmp:
        text = text.replace(S.tmp, "$TMP")
    if S.port:
        text = text.replace(f":{S.port}", ":$PORT")
    text = text.replace(REPO, "$REPO").replace(sys.base_prefix, "$PYTHON")
    text = re.sub(r"pkhunt_(marker|mod)_\d+", r"pkhunt_\1_N", text)
    text = re.sub(r"pkhunt_(\d+)", r"pkhunt_N", text)
    text = re.sub(r"0x[0-9a-fA-F]{6,}", "0x..", text)
    return text[:160]


def effect(kind, detail, arg=None, force_use=None):
    if not S.armed and force_use is None:
        return
    use = force_use or S.use
    k = (use, kind)
    if k in S.seen:
        return
    S.seen.add(k)
    rec = {"t": "eff", "use": use, "effect": kind, "probe": S.desc, "detail": sanitize(detail)}
    if arg is not None:
        rec["arg"] = arg
    emit(rec)


def note(kind, detail):
    emit({"t": "note", "note": kind, "detail": sanitize(detail)})


def called(tag, how):
    if S.armed and not S.busy:
        effect("calls-argument", how, arg=tag)


TRACE = os.environ.get("PKHUNT_TRACE")  # debugging: notes of every watched event of matching probes
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
PROCESS_EVENTS = {"os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
                  "subprocess.Popen", "os.startfile", "pty.spawn", "os.kill", "os.killpg",
                  "signal.pthread_kill", "webbrowser.open"}
NET_BLOCK_EVENTS = {"socket.connect", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname",
                    "socket.gethostbyaddr", "socket.getnameinfo", "socket.sendto", "socket.sendmsg",
                    "urllib.Request", "http.client.connect", "ftplib.connect", "smtplib.connect",
                    "poplib.connect", "imaplib.open", "nntplib.connect", "telnetlib.Telnet.open"}
FS_CREATE_EVENTS = {"os.mkdir", "os.link", "os.symlink", "tempfile.mkstemp", "tempfile.mkdtemp",
                    "shutil.copyfile", "shutil.copytree", "shutil.make_archive", "sqlite3.connect"}
FS_WRITE_EVENTS = {"os.rename", "os.remove", "os.rmdir", "os.truncate", "os.chmod", "os.chown", "os.utime",
                   "shutil.move", "shutil.rmtree", "shutil.copymode", "shutil.copystat", "shutil.chown",
                   "os.setxattr", "os.removexattr", "shutil.unpack_archive"}
WATCH = ({"open", "compile", "exec", "import", "mmap.__new__", "socket.__new__", "pickle.find_class"} | PROCESS_EVENTS | NET_BLOCK_EVENTS | FS_CREATE_EVENTS | FS_WRITE_EVENTS)


def _path(p):
    if isinstance(p, int) or p is None:
        return None
    try:
        p = os.fsdecode(os.fspath(p))
    except TypeError:
        return None
    if p == ":memory:" or p == "":
        return None
    return os.path.normpath(os.path.join(os.getcwd(), p))


def _inside(p):
    return p == S.tmp or p.startswith(S.tmp + "/")


def _code_marked(co, depth=0):
    for n in co.co_names:
        if "pkhunt" in n:
            return True
    for c in co.co_consts:
        if isinstance(c, str) and "pkhunt" in c:
            return True
        if depth < 4 and hasattr(c, "co_consts") and _code_marked(c, depth + 1):
            return True
    return False


def _fs_event(event, p, create):
    """A write-ish file-system operation on path p (normalized)."""
    if _inside(p):
        existed = os.path.lexists(p)
        effect("file-create" if (create and not existed) or not existed else "file-write",
               f"{event} {p}")
        return False
    if p in ("/dev/null",):
        return False
    effect("file-create" if create else "file-write", f"{event} {p} (outside the temp folder: refused)")
    return True


def audit_hook(event, args):
    if S.busy:
        return
    if TRACE and S.armed and TRACE in S.desc:
        emit({"t": "note", "note": "trace", "detail": sanitize(f"{S.use} {event} {str(args)[:100]}")})
    if event not in WATCH and not event.startswith("ctypes."):
        return
    S.busy = True
    block = None
    try:
        if event == "open":
            p = _path(args[0])
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            if p is not None:
                if flags & WRITE_FLAGS:
                    how = "O_TRUNC " if flags & os.O_TRUNC else ""
                    if _inside(p):
                        existed = os.path.exists(p)
                        effect("file-write" if existed else "file-create",
                               f"open {p} {how}flags={flags:#o}")
                    elif p != "/dev/null":
                        effect("file-write" if os.path.exists(p) else "file-create",
                               f"open {p} flags={flags:#o} (outside the temp folder: refused)")
                        block = f"write outside the temp folder: {p}"
                elif "pkhunt" in p or (p != S.tmp and os.path.exists(p)
                                       and (_inside(p) or not p.startswith(S.read_ok))):
                    effect("file-read", f"open {p} for reading")
        elif event in FS_CREATE_EVENTS or event in FS_WRITE_EVENTS:
            if event == "sqlite3.connect" and args and args[0] in (":memory:", b":memory:", ""):
                pass
            else:
                for a in args:
                    if isinstance(a, (str, bytes, os.PathLike)):
                        p = _path(a)
                        if p is not None and _fs_event(event, p, event in FS_CREATE_EVENTS):
                            block = f"{event} outside the temp folder"
        elif event == "mmap.__new__":
            fileno, access = args[0], args[2]
            if isinstance(fileno, int) and fileno >= 0:
                try:
                    p = os.readlink(f"/proc/self/fd/{fileno}")
                except OSError:
                    p = None
                if p:
                    if access in (0, 2):  # ACCESS_DEFAULT / ACCESS_WRITE: writes reach the file
                        if _inside(p):
                            effect("file-write", f"mmap {p} access={access}")
                        else:
                            effect("file-write", f"mmap {p} (outside the temp folder: refused)")
                            block = "writable mmap outside the temp folder"
                    elif _inside(p):
                        effect("file-read", f"mmap {p} access={access}")
        elif event == "compile":
            src = args[0]
            if isinstance(src, bytes):
                src = src.decode("latin-1")
            if isinstance(src, str) and "pkhunt" in src:
                effect("compile", f"compile {src[:60]!r} ({args[1]!r})")
        elif event == "exec":
            co = args[0]
            if hasattr(co, "co_names") and _code_marked(co):
                effect("compile", f"exec of code naming the probe marker ({co.co_filename})")
                block = "exec of a probe string"
        elif event == "import":
            name = args[0]
            if isinstance(name, str):
                if "pkhunt" in name:
                    effect("import", f"import {name}")
                elif S.armed and name not in sys.modules:
                    S.imports.append(name)
        elif event in PROCESS_EVENTS:
            effect("process", f"{event} {str(args[:2])[:80]} (refused)")
            block = f"{event} refused"
        elif event in NET_BLOCK_EVENTS:
            effect("network", f"{event} {str(args[:3])[:80]} (refused)")
            block = f"{event} refused"
        elif event == "socket.__new__":
            effect("network", f"socket.__new__ family={args[1]} type={args[2]}")
        elif event.startswith("ctypes."):
            effect("ctypes", f"{event} (refused)")  # arguments left out: library order varies
            block = f"{event} refused"
        elif event == "pickle.find_class":
            if S.armed:
                S.imports.append(f"<pickle.find_class {args[0]}.{args[1]}>")
    finally:
        S.busy = False
    if block:
        raise HuntBlocked(block)


class HuntFinder:
    """First on sys.meta_path: sees imports that bypass the `import` audit event
    (importlib.import_module, importlib.util.find_spec)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if S.busy:
            return None
        if "pkhunt" in name:
            effect("import", f"import {name} (import machinery)")
        elif S.armed and name not in sys.modules:
            S.imports.append(name)
        return None

    @staticmethod
    def invalidate_caches():
        pass


def guarded_fork_exec(*a, **k):
    effect("process", f"_posixsubprocess.fork_exec {str(a[:1])[:80]} (refused)", force_use=S.use)
    raise HuntBlocked("_posixsubprocess.fork_exec refused")


# ----- probe values --------------------------------------------------------------------

class T:
    """A symbolic probe value, materialized per probe."""
    __slots__ = ("kind", "arg")

    def __init__(self, kind, arg=None):
        self.kind = kind
        self.arg = arg

    def __eq__(self, other):
        return isinstance(other, T) and (self.kind, self.arg) == (other.kind, other.arg)

    def __hash__(self):
        return hash((self.kind, self.arg))


NEW, EXIST, XLSX, H5 = T("NEW"), T("EXIST"), T("XLSX"), T("H5")
CODE, CODE2, MOD, URL = T("CODE"), T("CODE2"), T("MOD"), T("URL")
NDARRAY = T("NDARRAY")  # a small float64 ndarray


def FN(i):
    return T("FN", i)


def CLS(i):
    return T("CLS", i)


def ARR(i):
    return T("ARR", i)


def SUB(i):
    return T("SUB", i)


def render(x, depth=0):
    if depth > 4:
        return "..."
    if isinstance(x, T):
        k = x.kind
        return {"NEW": "'$TMP/new.bin'", "EXIST": "'$TMP/exists.bin'", "XLSX": "'$TMP/new.xlsx'",
                "H5": "'$TMP/new.h5'", "CODE": "'pkhunt_marker_N()'", "CODE2": "\"__import__('pkhunt_mod_N')\"",
                "MOD": "'pkhunt_mod_N'", "URL": "'http://127.0.0.1:$PORT/pkhunt_N'",
                "NDARRAY": "numpy.zeros(2)", "FN": f"probe_fn#{x.arg}", "CLS": f"ProbeClass#{x.arg}", "ARR": f"ProbeArray#{x.arg}",
                "SUB": f"ProbeSubclass#{x.arg}"}[k]
    if isinstance(x, tuple):
        inner_ = ", ".join(render(v, depth + 1) for v in x)
        return f"({inner_},)" if len(x) == 1 else f"({inner_})"
    if isinstance(x, list):
        return "[" + ", ".join(render(v, depth + 1) for v in x) + "]"
    if isinstance(x, dict):
        return "{" + ", ".join(f"{render(k, depth + 1)}: {render(v, depth + 1)}" for k, v in x.items()) + "}"
    if isinstance(x, type):
        return f"{x.__module__}.{x.__qualname__}"
    if isinstance(x, (str, bytes, int, float, bool, type(None))):
        return repr(x)
    return f"{type(x).__name__}(...)"


def render_call(name, args, kw):
    parts = [render(a) for a in args] + [f"{k}={render(v)}" for k, v in kw.items()]
    return f"{name}({', '.join(parts)})"


class Values:
    """Concrete probe values for probe number n."""

    def __init__(self, n, entry_obj, entry_key):
        self.n = n
        self.obj = entry_obj
        self.key = entry_key
        self.cache = {}

    def get(self, t):
        if t in self.cache:
            return self.cache[t]
        k, n = t.kind, self.n
        if k == "NEW":
            v = os.path.join(S.tmp, "new.bin")
        elif k == "EXIST":
            v = os.path.join(S.tmp, "exists.bin")
        elif k == "XLSX":
            v = os.path.join(S.tmp, "new.xlsx")
        elif k == "H5":
            v = os.path.join(S.tmp, "new.h5")
        elif k == "CODE":
            v = f"pkhunt_marker_{n}()"
        elif k == "CODE2":
            v = f"__import__('pkhunt_mod_{n}')"
        elif k == "MOD":
            v = f"pkhunt_mod_{n}"
        elif k == "URL":
            v = f"http://127.0.0.1:{S.port}/pkhunt_{n}"
        elif k == "NDARRAY":
            import numpy as np
            v = np.zeros(2)
        elif k == "FN":
            v = make_probe_fn(t.arg)
        elif k == "CLS":
            v = make_probe_class(t.arg)
        elif k == "ARR":
            v = make_probe_array(t.arg)
        elif k == "SUB":
            v = make_probe_subclass(t.arg, self.key)
        else:
            raise ValueError(k)
        self.cache[t] = v
        return v

    def m(self, x):
        """Materialize a symbolic structure."""
        if isinstance(x, T):
            return self.get(x)
        if isinstance(x, tuple):
            return tuple(self.m(v) for v in x)
        if isinstance(x, list):
            return [self.m(v) for v in x]
        if isinstance(x, dict):
            return {self.m(k): self.m(v) for k, v in x.items()}
        return x


def make_probe_fn(tag):
    def pkhunt_probe_fn(*a, **k):
        called(tag, "probe callable called")
        return None
    return pkhunt_probe_fn


def make_probe_class(tag):
    class PkhuntProbeClass:
        def __new__(cls, *a, **k):
            called(tag, "probe class __new__ called")
            return object.__new__(cls)

        def __init__(self, *a, **k):
            called(tag, "probe class __init__ called")

        # alternate constructors that pandas' index factories call on the class they get
        @classmethod
        def _simple_new(cls, *a, **k):
            called(tag, "probe class ._simple_new() called")

        @classmethod
        def from_arrays(cls, *a, **k):
            called(tag, "probe class .from_arrays() called")

        @classmethod
        def _from_sequence(cls, *a, **k):
            called(tag, "probe class ._from_sequence() called")
    S.probe_types[id(PkhuntProbeClass)] = (tag, PkhuntProbeClass)
    return PkhuntProbeClass


def make_probe_array(tag):
    import numpy as np

    class PkhuntProbeArray(np.ndarray):
        def __array_finalize__(self, obj):
            called(tag, "probe ndarray subclass __array_finalize__ called")
    S.probe_types[id(PkhuntProbeArray)] = (tag, PkhuntProbeArray)
    return PkhuntProbeArray


def cython_target(key):
    """For `__pyx_unpickle_C`, the class C of the same module."""
    mod, name = key
    if not name.startswith("__pyx_unpickle_"):
        return None
    try:
        return resolve(mod, name[len("__pyx_unpickle_"):])
    except Exception:
        return None


def make_probe_subclass(tag, key):
    base = cython_target(key)
    if not isinstance(base, type):
        raise TypeError("no Cython class to subclass")
    sub = type("PkhuntProbeSubclass", (base,), {})
    S.probe_types[id(sub)] = (tag, sub)
    return sub


def check_returned(res):
    t = type(res)
    hit = S.probe_types.get(id(t))
    if hit is not None and hit[1] is t:
        called(hit[0], "returned an instance of the probe class it was given (constructs its argument)")


# ----- probe generation ----------------------------------------------------------------

PATHY = ("path", "file", "fname", "buf", "uri", "url")
PATHY_EXACT = ("io", "src", "dst", "dir", "directory", "folder", "name_or_path", "location", "store")
CODEY = ("expr", "code", "source", "query", "expression", "formula", "where", "condition")
MODY = ("module", "backend", "engine", "package", "modname", "encoding")
FUNCY = ("func", "callback", "fn", "factory", "callable", "ctor", "constructor", "hook", "loader",
         "converter", "function", "default_factory", "key", "score_func", "inverse_func", "kernel", "metric",
         "scoring", "estimator", "obj")
CLSY = ("cls", "klass", "type", "subtype", "base", "baseclass", "basetype", "bit_generator")


def guided(name, i):
    n = name.lower()
    if n in ("mode", "filemode", "file_mode", "mmap_mode"):
        return "w+"
    if "dtype" in n:
        return "uint8"
    if n == "shape" or n.endswith("shape"):
        return (16,)
    if n in ("offset", "level", "verbose", "axis"):
        return 0
    if n == "order":
        return "C"
    if n in CLSY:
        return CLS(i)
    if n in ("args", "argv"):
        return ()
    if n in ("kwargs", "kw", "kwds", "d", "state", "attrs", "params"):
        return {}
    if any(k in n for k in CODEY):
        return CODE
    if any(k == n or n.startswith(k + "_") or n.endswith("_" + k) for k in MODY):
        return MOD
    if any(k == n or n.startswith(k + "_") or n.endswith("_" + k) for k in FUNCY):
        return FN(i)
    if n in PATHY_EXACT or any(k in n for k in PATHY):
        return NEW
    return None


def safe_sig(obj):
    import inspect
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())
    return params


def split_params(params):
    """(positional parameters, keyword-only parameters, has *args, has **kwargs)."""
    import inspect
    P = inspect.Parameter
    pos = [p for p in params if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    kwo = [p for p in params if p.kind == P.KEYWORD_ONLY]
    return (pos, kwo, any(p.kind == P.VAR_POSITIONAL for p in params),
            any(p.kind == P.VAR_KEYWORD for p in params))


def fill_vector(pos, kwo, override=None, path=NEW, mode=None):
    """Guided values for required params; override = (param, value)."""
    import inspect
    P = inspect.Parameter
    args, kw = [], {}
    last = -1
    for j, p in enumerate(pos):
        if override and override[0] is p or guided(p.name, j) is not None or p.default is P.empty:
            last = j
    for j, p in enumerate(pos[:last + 1]):
        if override and override[0] is p:
            args.append(override[1])
            continue
        g = guided(p.name, j)
        if g is NEW:
            g = path
        if g == "w+" and mode is not None:
            g = mode
        if g is None:
            g = None if p.default is P.empty else p.default
            if not isinstance(g, (str, bytes, int, float, bool, tuple, type(None))):
                g = None
        args.append(g)
    for j, p in enumerate(kwo, start=len(pos)):
        if override and override[0] is p:
            kw[p.name] = override[1]
            continue
        g = guided(p.name, j)
        if g is NEW:
            g = path
        if g is not None:
            kw[p.name] = g
        elif p.default is P.empty:
            kw[p.name] = None
    return tuple(args), kw


def call_vectors(key, obj, params):
    """Symbolic (args, kwargs) vectors for calls of obj, most telling first."""
    out = []
    out.extend(TARGETED_CALLS.get(key, []))
    if key[1].startswith("__pyx_unpickle_"):
        out.append(((SUB(0), "CHECKSUM", None), {}))
        out.append(((CLS(0), "CHECKSUM", None), {}))
    out.append(((), {}))
    if params is not None:
        pos, kwo, has_var, has_kw = split_params(params)

        def fill(override=None, path=NEW, mode=None):
            return fill_vector(pos, kwo, override, path, mode)

        out.append(fill())
        out.append(fill(path=EXIST))
        named = {p.name: guided(p.name, j) for j, p in enumerate(pos + kwo) if guided(p.name, j) is not None}
        if named:
            out.append(((), dict(named)))
        if any(p.name.lower() in ("mode", "filemode", "mmap_mode") for p in pos + kwo):
            for mode in ("w+", "w", "r+", "a", "wb"):
                out.append(fill(path=EXIST, mode=mode))
            out.append(fill(path=NEW, mode="w+"))
        slots = (pos + kwo)[:5]
        if has_var and len(slots) < 5:
            slots = slots + [None]
        for j, p in enumerate(slots):
            vals = [NEW, CODE, FN(j), MOD, URL] + ([CLS(0)] if j == 0 else [])
            for v in vals:
                if p is None:  # *args slot
                    out.append((tuple(fill()[0]) + (v,), fill()[1]))
                else:
                    out.append(fill(override=(p, v)))
        if has_kw:
            out.append(((), {"path": NEW, "mode": "w+", "func": FN(0), "code": CODE, "engine": MOD,
                             "backend": MOD, "url": URL}))
    generic = [
        (NEW,), (EXIST,), (CODE,), (CODE2,), (MOD,), (URL,), (FN(0),), (CLS(0),),
        (NEW, "w+"), (EXIST, "r+"), (NEW, "wb"), (XLSX,), (H5, "w"),
        ("x", FN(1)), ("x", MOD), (MOD, FN(1)), (FN(0), FN(1)), (CLS(0), {}), (CLS(0), {"data": NEW}),
        (EXIST, "uint8", "w+", 0, (16,)), (ARR(0), (0,), b"b"), (CLS(0), ARR(1), (0,), "b"),
        (CLS(0), CLS(1), NEW), (FN(0), (), {}), (CODE, MOD, URL, FN(3), NEW),
    ]
    out.extend((g, {}) for g in generic)
    # dedupe, stable
    seen, res = set(), []
    for a, k in out:
        d = render_call("X", a, k)
        if d not in seen:
            seen.add(d)
            res.append((a, k))
    return res


# Hand-written probes for known gadget families (they are tried first).
TARGETED_CALLS = {
    ("numpy", "memmap"): [((EXIST, "uint8", "w+", 0, (16,)), {}), ((NEW, "uint8", "w+", 0, (16,)), {}),
                          ((EXIST, "uint8", "r+", 0, (16,)), {})],
    ("pandas.core.computation.expr", "Expr"): [((CODE,), {}), ((CODE2,), {})],
    ("pandas.core.computation.pytables", "PyTablesExpr"): [((CODE, {}), {}), ((CODE2, {}), {})],
    ("pandas.core.indexes.period", "_new_PeriodIndex"): [((CLS(0),), {"data": NDARRAY})],
    ("pandas", "ExcelFile"): [((EXIST,), {}), ((URL,), {}), ((XLSX,), {}), ((EXIST,), {"engine": "openpyxl"})],
    ("pandas", "ExcelWriter"): [((XLSX,), {}), ((XLSX,), {"engine": "openpyxl"}), ((XLSX,), {"engine": "xlsxwriter"}),
                                ((NEW,), {"engine": "openpyxl"}), ((URL,), {"engine": "openpyxl"})],
    ("pandas", "HDFStore"): [((H5,), {}), ((H5, "w"), {}), ((EXIST, "r"), {}), ((NEW, "a"), {})],
    ("numpy.random._pickle", "__generator_ctor"): [(("x", FN(1)), {})],
    ("numpy.random._pickle", "__randomstate_ctor"): [(("x", FN(1)), {})],
    ("numpy.random._pickle", "__bit_generator_ctor"): [((CLS(0),), {})],
    ("copyreg", "__newobj__"): [((CLS(0),), {}), ((CLS(0), NEW), {})],
    ("copyreg", "__newobj_ex__"): [((CLS(0), (), {}), {}), ((CLS(0), (NEW,), {"k": CODE}), {})],
    ("copyreg", "_reconstructor"): [((CLS(0), object, None), {}), ((CLS(0), CLS(1), NEW), {})],
    ("sklearn.neighbors._kd_tree", "newObj"): [((CLS(0),), {})],
    ("sklearn.neighbors._ball_tree", "newObj"): [((CLS(0),), {})],
    ("sklearn.metrics._dist_metrics", "newObj"): [((CLS(0),), {})],
    ("numpy.ma.core", "_mareconstruct"): [((CLS(0), ARR(1), (0,), "b"), {})],
    ("zoneinfo", "ZoneInfo._unpickle"): [((MOD, 1), {})],
    ("zoneinfo._zoneinfo", "ZoneInfo._unpickle"): [((MOD, 1), {})],
    ("_codecs", "encode"): [(("x", MOD), {})],
}
for _k in (("pandas.core.indexes.base", "_new_Index"), ("pandas.core.indexes.api", "_new_Index"),
           ("pandas.core.indexes.datetimes", "_new_DatetimeIndex"),
           ("pandas.core.indexes.interval", "_new_IntervalIndex"),
           ("pandas.core.indexes.timedeltas", "_new_TimedeltaIndex")):
    TARGETED_CALLS[_k] = [((CLS(0), {}), {}), ((CLS(0), {"data": NEW}), {})]
for _k in (("numpy._core.multiarray", "_reconstruct"), ("numpy._core._multiarray_umath", "_reconstruct"),
           ("numpy.core.multiarray", "_reconstruct"), ("numpy.core._multiarray_umath", "_reconstruct"),
           ("numpy", "core.multiarray._reconstruct")):
    TARGETED_CALLS[_k] = [((ARR(0), (0,), b"b"), {})]

TARGETED_BUILD = {
    ("pandas._config.config", "DictWrapper"): [
        ({"d": {"backend": "matplotlib"}, "prefix": "plotting"}, {"backend": MOD}),
        ({"d": {"display": {"max_rows": 1}, "backend": "x"}, "prefix": "plotting"}, {"backend": MOD}),
    ],
}
TARGETED_INVOKE_BASES = {
    ("sklearn.utils.parallel", "Parallel"): [((), {}), ((), {"n_jobs": 2})],
    ("joblib.parallel", "Parallel"): [((), {}), ((), {"n_jobs": 2})],
}


class Probe:
    __slots__ = ("use", "kind", "spec", "bases")

    def __init__(self, use, kind, spec, bases=None):
        self.use = use          # the use the action exercises
        self.kind = kind        # call | new | newobj | recon | ref | build | setitem | ... | invoke
        self.spec = spec        # symbolic arguments of the action
        self.bases = bases      # list of (use, kind, spec) recipes of the object acted on


def load_build(inst, state):
    """CPython's load_build (Lib/pickle.py, Modules/_pickle.c), verbatim in effect."""
    setstate = getattr(inst, "__setstate__", None)
    if setstate is not None:
        setstate(state)
        return
    slotstate = None
    if isinstance(state, tuple) and len(state) == 2:
        state, slotstate = state
    if state:
        inst_dict = inst.__dict__
        intern = sys.intern
        for k, v in state.items():
            if type(k) is str:
                inst_dict[intern(k)] = v
            else:
                inst_dict[k] = v
    if slotstate:
        for k, v in slotstate.items():
            setattr(inst, k, v)


def static_names(obj, params):
    names = []
    if params:
        names += [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if isinstance(obj, type):
        for klass in obj.__mro__:
            sl = klass.__dict__.get("__slots__", ())
            if isinstance(sl, str):
                sl = (sl,)
            try:
                names += [s for s in sl if isinstance(s, str)]
            except TypeError:
                pass
            ann = klass.__dict__.get("__annotations__", {})
            if isinstance(ann, dict):
                names += [a for a in ann if isinstance(a, str)]
    names += ["path", "filename", "mode", "func", "backend", "engine", "expr", "d", "prefix"]
    out = []
    for n in names:
        if n not in out and n not in ("self", "cls", "__dict__", "__weakref__"):
            out.append(n)
    return out[:40]


def default_names(obj):
    """Instance attribute names of a default-constructed X() (unarmed, under the timer)."""
    if not isinstance(obj, type):
        return []
    names = []
    try:
        signal.setitimer(signal.ITIMER_REAL, PROBE_TIMER_S)
        try:
            inst = obj()
            names = [n for n in vars(inst) if isinstance(n, str)]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except BaseException:
        pass
    return names[:30]


BUILD_FORMS = [
    ("guided", None), ("all", NEW), ("all", CODE), ("all", MOD), ("all", FN("state")), ("all", URL),
    ("slots-guided", None), ("slots", NEW), ("slots", MOD), ("slots", CODE), ("slots", FN("slotstate")),
    ("raw", FN("state")), ("raw", (FN("state"), (), {}, None)), ("raw", (NEW, CODE, MOD, FN("state"))),
    ("raw", NEW),
]
ITEM_FORMS = [("setitem", (MOD, FN("value"))), ("setitem", (NEW, CODE)), ("append", (FN("item"),)),
              ("extend", ([CODE, NEW, FN("item")],)), ("add", (FN("item"),))]
INVOKE_FORMS = [(), (FN(0),), ([(FN(0), (), {})],), (NEW, CODE)]

# Objects that hold probe callables, for `invoke` and `items`: a wrapper that stores a
# callable and calls it when the instance is called (sklearn.utils.parallel._FuncWrapper)
# is seen only on an instance that holds one, made (a) by calling X with a probe callable
# or class in a position (`probe_fn#ctor:<param>`), or (b) by `X.__new__(X)` and a BUILD
# whose state maps each plausible attribute name to a probe callable (`probe_fn#state:<name>`).
HELD_INVOKE_FORMS = [(), (NDARRAY,), (NDARRAY, NDARRAY), (NDARRAY, NDARRAY, NDARRAY)]
HELD_BUILD_FORMS = [("dict", "fn"), ("slots", "fn"), ("dict", "dictfn"), ("dict", "listfn")]
HELD_EXTRA_NAMES = ["function", "func", "fn", "f", "callback", "callable", "_func", "_function", "_callback",
                    "method", "wrapped", "__wrapped__", "target", "hook"]
ITEM_METHODS = ("__setitem__", "append", "extend", "add")


def instances_invocable(obj):
    """Can an instance made by class obj be called (a `__call__` in its MRO, type's for a metaclass)?"""
    return any("__call__" in vars(k) for k in obj.__mro__ if k is not object)


def instances_take_items(obj):
    """Has an instance made by class obj an item method of its own (not a builtin container's)?"""
    for m in ITEM_METHODS:
        for k in obj.__mro__:
            if m in vars(k):
                if k.__module__ != "builtins":
                    return True
                break
    return False


def held_call_vectors(obj, params, is_cls):
    """Calls of X that hand it a probe callable (or class) in one position, or in all."""
    out = []
    if params is not None:
        pos, kwo, has_var, _ = split_params(params)
        slots = (pos + kwo)[:4]
        for p in slots:
            out.append(fill_vector(pos, kwo, override=(p, FN(f"ctor:{p.name}"))))
        if pos:
            out.append(fill_vector(pos, kwo, override=(pos[0], CLS(f"ctor:{pos[0].name}"))))
        if len(slots) > 1:
            out.append((tuple(FN(f"ctor:{p.name}") for p in pos[:4]),
                        {p.name: FN(f"ctor:{p.name}") for p in kwo[:max(0, 4 - len(pos))]}))
        if has_var and not pos:
            out.append(((FN("ctor:0"),), {}))
    else:
        out += [((FN("ctor:0"),), {}), ((CLS("ctor:0"),), {}), ((FN("ctor:0"), FN("ctor:1")), {})]
    seen, res = set(), []
    for a, k in out:
        d = render_call("X", a, k)
        if d not in seen:
            seen.add(d)
            res.append((a, k))
    return res[:MAX_HELD_CALLS if is_cls else MAX_HELD_CALLS - 1]


def held_probes(key, obj, params):
    """`invoke` and `items` probes on objects made to hold probe callables ((a) and (b) above)."""
    is_cls = isinstance(obj, type)
    if is_cls:
        inv, items = instances_invocable(obj), instances_take_items(obj)
        if not (inv or items):
            return []
    else:
        inv = items = True  # what a function returns is seen only when it runs: the action checks
    calls = [("call", "call", c) for c in held_call_vectors(obj, params, is_cls)]
    builds = [("build", "newbuild", f) for f in HELD_BUILD_FORMS] if is_cls else []
    # most telling first: a callable in the first position, then the BUILD states, then the rest
    bases = calls[:1] + builds[:2] + calls[1:] + builds[2:]
    out = []
    for b in bases:
        if inv:
            out += [Probe("invoke", "invoke", form, [b]) for form in HELD_INVOKE_FORMS]
        if items:
            out += [Probe("items", form[0], form[1], [b]) for form in ITEM_FORMS]
    return out[:MAX_HELD_PROBES]


def held_names():
    """Attribute names for the BUILD states of (b): the hunt's names (parameters, slots, annotations,
    the attributes of X()), the same with a leading underscore, and common names of held callables."""
    names = []
    for n in list(S.names) + ["_" + n for n in S.names if not n.startswith("_")] + HELD_EXTRA_NAMES:
        if isinstance(n, str) and n not in names and n not in ("__dict__", "__weakref__", "__class__"):
            names.append(n)
    return names[:60]


def make_probes(key, obj):
    params = safe_sig(obj)
    is_cls = isinstance(obj, type)
    probes = []
    if not callable(obj):
        return [Probe("call", "call", ((), {}))], params
    calls = call_vectors(key, obj, params)
    cap = MAX_CALLS_CLASS if is_cls else MAX_CALLS_FUNC
    probes += [Probe("call", "call", c) for c in calls[:cap]]
    guided_call = None
    if params is not None:
        for c in calls:
            if (c[0] or c[1]) and "CHECKSUM" not in c[0]:
                guided_call = c  # the first vector after the targeted ones and (): name-guided values
                break
    if is_cls:
        probes.append(Probe("new", "new", None))
        for args in ((NEW,), (FN(1),), (EXIST, "uint8", "w+", 0, (16,))):
            probes.append(Probe("call", "newobj", (args, {})))
        for st in (EXIST, NEW, CODE):
            probes.append(Probe("call", "recon", st))
        probes.append(Probe("ref", "ref", None))
        build_bases = [("new", "new", None), ("call", "call", ((), {}))]
        item_bases = [("call", "call", ((), {})), ("new", "new", None)]
        if guided_call:
            build_bases.append(("call", "call", guided_call))
            item_bases.append(("call", "call", guided_call))
        if guided_call != ((FN(0),), {}):
            build_bases.append(("call", "call", ((FN(0),), {})))
            item_bases.append(("call", "call", ((FN(0),), {})))
    else:
        build_bases = [("call", "call", c) for c in (((), {}), ((FN(0),), {}), ((NEW,), {}), (("x",), {}))]
        item_bases = build_bases
    invoke_bases = [("call", "call", c) for c in TARGETED_INVOKE_BASES.get(key, [])] or item_bases
    for st in TARGETED_BUILD.get(key, []):
        probes.append(Probe("build", "build-state", st, build_bases))
    for form in BUILD_FORMS:
        probes.append(Probe("build", "build", form, build_bases))
    for form in ITEM_FORMS:
        probes.append(Probe("items", form[0], form[1], item_bases))
    if key in TARGETED_INVOKE_BASES:
        for b in invoke_bases:
            probes.append(Probe("invoke", "invoke", ([(FN(0), (), {}), (FN(0), (), {}), (FN(0), (), {})],), [b]))
    for form in INVOKE_FORMS:
        probes.append(Probe("invoke", "invoke", form, invoke_bases))
    return probes[:MAX_PROBES] + held_probes(key, obj, params), params


def ename(key):
    return key[1] if key[0] == "builtins" else f"{key[0].split('.')[-1]}.{key[1]}"


def base_desc(b, nm):
    use, kind, spec = b
    if kind == "newbuild":
        form, val = spec
        v = {"fn": "probe_fn#state:<name>", "dictfn": "{'pkhunt': probe_fn#state:<name>}",
             "listfn": "[probe_fn#state:<name>]"}[val]
        st = f"{{<each name>: {v}}}" if form == "dict" else f"({{}}, {{<each name>: {v}}})"
        return f"{nm}.__new__({nm}) + BUILD {st}"
    return f"{nm}.__new__({nm})" if kind == "new" else render_call(nm, *spec)


def probe_desc(key, p):
    nm = ename(key)
    if p.kind == "call":
        a, k = p.spec
        return render_call(nm, tuple("<checksum>" if x == "CHECKSUM" else x for x in a), k)
    if p.kind == "new":
        return f"{nm}.__new__({nm})"
    if p.kind == "newobj":
        return f"{nm}.__new__({nm}, " + ", ".join(render(a) for a in p.spec[0]) + ")"
    if p.kind == "recon":
        return f"copyreg._reconstructor({nm}, {nm}, {render(p.spec)})"
    if p.kind == "ref":
        return f"numpy._core.multiarray._reconstruct({nm}, (0,), b'b')"
    on = (" | ".join(base_desc(b, nm) for b in p.bases)) if len(p.bases) == 1 else \
        "first that works of " + " | ".join(base_desc(b, nm) for b in p.bases)
    if p.kind in ("build", "build-state"):
        if p.kind == "build-state":
            what = render(p.spec)
        else:
            form, v = p.spec
            what = {"guided": "{name: guided value}", "all": f"{{name: {render(v)}}}",
                    "slots-guided": "({}, {name: guided value})", "slots": f"({{}}, {{name: {render(v)}}})",
                    "raw": render(v)}[form]
        return f"BUILD {what} on [{on}]"
    if p.kind == "setitem":
        return f"obj[{render(p.spec[0])}] = {render(p.spec[1])} on [{on}]"
    if p.kind in ("append", "extend", "add"):
        return f"obj.{p.kind}({render(p.spec[0])}) on [{on}]"
    if p.kind == "invoke":
        return f"obj{render(p.spec) if len(p.spec) != 1 else '(' + render(p.spec[0]) + ')'} on [{on}]"
    return p.kind


def materialize_call(V, spec, key):
    a, k = spec
    args = []
    for x in a:
        if x == "CHECKSUM":
            args.append(cython_checksum(V, key))
        else:
            args.append(V.m(x))
    return tuple(args), V.m(k)


def cython_checksum(V, key):
    """The checksum a `__pyx_unpickle_C` accepts, read from its own error message."""
    f = V.obj
    try:
        f(V.get(SUB(0)) if cython_target(key) is not None else object, 0, None)
    except HuntTimeout:
        raise
    except BaseException as e:
        m = re.search(r"vs \(?(0x[0-9a-fA-F]+)", str(e))
        if m:
            return int(m.group(1), 16)
    return 0


def run_action(V, key, p, base):
    X = V.obj
    if p.kind == "call":
        args, kw = materialize_call(V, p.spec, key)
        return X(*args, **kw)
    if p.kind == "new":
        return X.__new__(X)
    if p.kind == "newobj":
        return X.__new__(X, *V.m(p.spec[0]), **V.m(p.spec[1]))
    if p.kind == "recon":
        import copyreg
        return copyreg._reconstructor(X, X, V.m(p.spec))
    if p.kind == "ref":
        from numpy._core.multiarray import _reconstruct
        return _reconstruct(X, (0,), b"b")
    if p.kind in ("build", "build-state"):
        if p.kind == "build-state":
            state = V.m(p.spec)
        else:
            form, v = p.spec
            names = []
            for n in list(S.names) + list(getattr(base, "__dict__", None) or ()):
                if isinstance(n, str) and n not in names:
                    names.append(n)
            names = names[:60]
            if form == "guided":
                state = {n: V.m(guided(n, "state") or NEW) for n in names}
            elif form == "all":
                state = {n: V.m(v) for n in names}
            elif form == "slots-guided":
                state = ({}, {n: V.m(guided(n, "slotstate") or NEW) for n in names})
            elif form == "slots":
                state = ({}, {n: V.m(v) for n in names})
            else:
                state = V.m(v)
        load_build(base, state)
        return base
    if p.kind == "setitem":
        k_, v_ = V.m(p.spec)
        base[k_] = v_
        return base
    if p.kind in ("append", "extend", "add"):
        meth = getattr(base, p.kind, None)
        if meth is None:
            return None
        meth(*V.m(p.spec))
        return base
    if p.kind == "invoke":
        if not callable(base):
            return None
        return base(*V.m(p.spec))
    raise ValueError(p.kind)


def make_base(V, key, b):
    use, kind, spec = b
    X = V.obj
    if kind == "new":
        return X.__new__(X)
    if kind == "newbuild":
        form, val = spec
        S.use = "new"
        inst = X.__new__(X)
        S.use = "build"
        held = {}
        for n in held_names():
            f = V.get(FN(f"state:{n}"))
            held[n] = f if val == "fn" else {"pkhunt": f} if val == "dictfn" else [f]
        load_build(inst, held if form == "dict" else ({}, held))
        return inst
    args, kw = materialize_call(V, spec, key)
    return X(*args, **kw)


def _alarm(signum, frame):
    raise HuntTimeout()


def fs_snapshot():
    snap = {}
    for dirpath, dirnames, filenames in os.walk(S.tmp):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            snap[p] = (st.st_size, st.st_mtime_ns, st.st_atime_ns, st.st_ino)
    return snap


PRISTINE_CONTENT = b"pkhunt probe file: not a valid pickle, xlsx or hdf5 file\n" + bytes(range(8))
OLD_NS = 1_000_000_000 * 1_000_000_000  # a fixed old time: any read moves atime off it


def fs_reset():
    """Put the temp folder back to its pristine state (only exists.bin)."""
    keep = os.path.join(S.tmp, "exists.bin")
    for n in os.listdir(S.tmp):
        p = os.path.join(S.tmp, n)
        if p == keep:
            continue
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)
        except OSError:
            pass
    try:
        st = os.lstat(keep)
        ok = st.st_size == len(PRISTINE_CONTENT) and st.st_mtime_ns == OLD_NS and st.st_atime_ns == OLD_NS
    except OSError:
        ok = False
    if not ok:
        try:
            os.unlink(keep)
        except OSError:
            pass
        fd = os.open(keep, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, PRISTINE_CONTENT)
        os.close(fd)
        os.utime(keep, ns=(OLD_NS, OLD_NS))
    return fs_snapshot()


def fs_diff(before, after, use):
    for p, st in after.items():
        old = before.get(p)
        if old is None:
            effect("file-create", f"{p} appeared (file-system snapshot)", force_use=use)
        elif (st[0], st[1], st[3]) != (old[0], old[1], old[3]):
            effect("file-write", f"{p} changed (file-system snapshot)", force_use=use)
        elif st[2] != old[2] and not os.path.isdir(p):
            effect("file-read", f"{p} read (atime moved; file-system snapshot)", force_use=use)
    for p in before:
        if p not in after:
            effect("file-write", f"{p} removed (file-system snapshot)", force_use=use)


def check_listener(lsock, use):
    while True:
        r = select.select([lsock], [], [], 0)[0]
        if not r:
            return
        conn, _ = lsock.accept()
        conn.setblocking(False)
        try:
            head = conn.recv(64)
        except OSError:
            head = b""
        conn.close()
        effect("network", f"connection to the parent's listener {head[:40]!r}", force_use=use)


def child_main(key, obj, tmp, lsock, wfd, start, drop_uid):
    import gc
    import resource
    import warnings
    import logging
    import _posixsubprocess

    os.setsid()
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    S.tmp = tmp
    S.wfd = wfd
    S.port = lsock.getsockname()[1]
    os.chdir(tmp)
    for k in ("HOME", "TMPDIR", "TMP", "TEMP", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
              "MPLCONFIGDIR", "JOBLIB_TEMP_FOLDER"):
        os.environ[k] = tmp
    tempfile.tempdir = tmp
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, _alarm)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    R = CHILD_RLIMITS
    for lim, val in ((resource.RLIMIT_CORE, R["core"]), (resource.RLIMIT_CPU, R["cpu_s"]),
                     (resource.RLIMIT_AS, R["as_bytes"]), (resource.RLIMIT_FSIZE, R["fsize_bytes"]),
                     (resource.RLIMIT_NOFILE, R["nofile"])):
        try:
            resource.setrlimit(lim, (val, val))
        except (ValueError, OSError):
            pass
    if drop_uid:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (R["nproc"], R["nproc"]))
    except (ValueError, OSError):
        pass
    _posixsubprocess.fork_exec = guarded_fork_exec
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    sys.meta_path.insert(0, HuntFinder)
    import site
    ok = [sys.prefix, sys.base_prefix, sys.exec_prefix, REPO + "/scripts", "/proc/", "/sys/", "/dev/",
          "/etc/", "/usr/", "/lib/", "/lib64/", "/opt/"]
    ok += list(site.getsitepackages())
    S.read_ok = tuple(os.path.normpath(p) + ("/" if not p.endswith("/") else "") for p in ok)
    sys.addaudithook(audit_hook)

    import random
    seq = tempfile._get_candidate_names()  # deterministic temp names (multiprocessing's pymp-*, ...)
    seq._rng = random.Random(0)
    seq._rng_pid = os.getpid()
    probes, params = make_probes(key, obj)  # unarmed: escapes refused, nothing recorded
    S.names = static_names(obj, params) + default_names(obj)
    S.busy = True
    pristine = fs_reset()
    S.busy = False
    emit({"t": "total", "n": len(probes)})
    for i in range(start, len(probes)):
        p = probes[i]
        S.desc = probe_desc(key, p)
        S.imports = []
        emit({"t": "start", "i": i, "probe": S.desc})
        V = Values(i, obj, key)
        base = res = None
        base_use = None
        last = pristine
        S.armed = True
        try:
            signal.setitimer(signal.ITIMER_REAL, PROBE_TIMER_S)
            try:
                if p.bases:
                    for b in p.bases:
                        S.use = b[0]
                        try:
                            base = make_base(V, key, b)
                            base_use = b[0]
                            break
                        except HuntTimeout:
                            raise
                        except BaseException:
                            base = None
                    S.busy = True
                    now = fs_snapshot()
                    fs_diff(last, now, S.use)
                    check_listener(lsock, S.use)
                    last = now
                    S.busy = False
                    if base_use is None:
                        raise LookupError("no base object")
                S.use = p.use
                res = run_action(V, key, p, base)
                check_returned(res)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except HuntTimeout:
            note("timeout", f"probe timer ({PROBE_TIMER_S:.0f} s) during {S.desc}")
        except BaseException:
            pass
        S.busy = True
        now = fs_snapshot()
        fs_diff(last, now, p.use)
        check_listener(lsock, p.use)
        last = now
        S.busy = False
        # finalizers: effects count against the use that made the object
        S.use = base_use or p.use
        try:
            signal.setitimer(signal.ITIMER_REAL, PROBE_TIMER_S)
            try:
                base = res = V = None
                gc.collect()
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except BaseException:
            pass
        S.armed = False
        S.busy = True
        now = fs_snapshot()
        fs_diff(last, now, S.use)
        check_listener(lsock, S.use)
        if S.imports:
            mods = sorted(set(m for m in S.imports if not m.startswith("pkhunt")))
            if mods:
                note("import-other", f"{p.use}: " + ", ".join(mods[:6]) + (" ..." if len(mods) > 6 else ""))
        try:
            os.chdir(S.tmp)
        except OSError:
            pass
        pristine = fs_reset()
        S.busy = False
    emit({"t": "done"})
    os._exit(0)


# ---------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help="where to write the results (JSON)")
    ap.add_argument("--jobs", type=int, default=2, help="children run at once (default 2)")
    ap.add_argument("--only", help="hunt only entries whose 'module name' contains this")
    ap.add_argument("--check", metavar="ALLOWLIST",
                    help="exit 1 listing every finding whose use ALLOWLIST still permits")
    ap.add_argument("--hunt", default=DEFAULT_OUT, help="the results --check reads")
    ap.add_argument("--launderers", metavar="FILE",
                    help="`module name` lines (fnmatch patterns allowed) of known launderers: their"
                         " calls-argument findings are expected (default: the table of docs/uses.md)")
    ap.add_argument("--_inner", help=argparse.SUPPRESS)
    ap.add_argument("--_ns", default="none", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.check:
        return check_mode(args)
    if args._inner:
        return inner(args)
    return launch(args)


if __name__ == "__main__":
    sys.exit(main())

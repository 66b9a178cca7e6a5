#!/usr/bin/env bash
# `pip install .` end to end (README "Install"): in a fresh venv, pip builds
# the wheel from this checkout with maturin (pyproject.toml; needs PyPI for
# maturin and crates.io for the crates) and installs the `pkinspect` command
# into the venv's bin/. Then checks that:
#   - `pkinspect --version` prints Cargo.toml's version, and pip agrees;
#   - the wheel holds the command and nothing importable;
#   - the installed command scans: a benign scikit-learn pickle exits 0, a
#     hostile one exits 1 with PK102. The fixtures sit under this checkout,
#     whose pyproject.toml has no [tool.pkinspect] table: it must be passed
#     over (no policy), as docs/policy.md says.
#
# The build is the release profile from scratch, a few minutes on 2 cores; it
# goes to target/ as `pip install .` does (in-tree). Environment: PYTHON (the
# interpreter for the venv, default python3), KEEP=1 keeps the temp dir.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
say() { printf '== %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}

PYTHON="${PYTHON:-python3}"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/pkinspect-pip.XXXXXX")"
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then
    echo "kept $TMP"
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT

# The version in [package] of Cargo.toml: the one place it is written
# (pyproject.toml declares it dynamic; maturin reads it from there).
WANT="$(awk '/^\[/{pkg = ($0 == "[package]")} pkg && /^version *=/{gsub(/.*= *"|".*/, ""); print; exit}' "$ROOT/Cargo.toml")"
[ -n "$WANT" ] || fail "no version in [package] of Cargo.toml"
grep -q '^dynamic = \["version"\]' "$ROOT/pyproject.toml" || fail "pyproject.toml must take the version from Cargo.toml (dynamic)"
if grep -q '^\[tool\.pkinspect' "$ROOT/pyproject.toml"; then
  fail "pyproject.toml must have no [tool.pkinspect] table: it would be the policy of every fixture and test"
fi

say "fresh venv ($("$PYTHON" --version)) in $TMP/venv"
"$PYTHON" -m venv "$TMP/venv"
VENV="$TMP/venv"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" --version

say "pip install . (maturin builds pkinspect $WANT in release)"
start=$(date +%s)
(cd "$ROOT" && "${PIP[@]}" install --quiet .)
echo "built and installed in $(($(date +%s) - start)) s"

EXE="$VENV/bin/pkinspect"
[ -x "$EXE" ] || fail "$EXE was not installed"
file_list="$("${PIP[@]}" show --files pkinspect)"
printf '%s\n' "$file_list" | grep -qx '  \.\./\.\./\.\./bin/pkinspect' || fail "pip does not list bin/pkinspect as installed by pkinspect"
if printf '%s\n' "$file_list" | grep -q '\.py$\|\.so$'; then
  fail "the wheel installs Python modules or extensions; it should hold only the command"
fi
echo "installed: $EXE ($(du -k "$EXE" | cut -f1) KiB)"

say "version"
got="$("$EXE" --version)"
echo "$got"
[ "$got" = "pkinspect $WANT" ] || fail "pkinspect --version printed '$got', expected 'pkinspect $WANT' (Cargo.toml)"
pip_version="$("${PIP[@]}" show pkinspect | sed -n 's/^Version: //p')"
[ "$pip_version" = "$WANT" ] || fail "pip says version '$pip_version', Cargo.toml says '$WANT'"

say "scans from the venv's bin/"
cd "$ROOT"
rc=0
"$EXE" scan fixtures/benign/sklearn_logreg_iris_p4.pkl >"$TMP/benign.txt" 2>&1 || rc=$?
sed 's/^/    | /' "$TMP/benign.txt"
[ "$rc" = 0 ] || fail "benign fixture: exit $rc, expected 0"
rc=0
"$EXE" scan fixtures/hostile/os_system_global_p0.pkl >"$TMP/hostile.txt" 2>&1 || rc=$?
sed 's/^/    | /' "$TMP/hostile.txt"
[ "$rc" = 1 ] || fail "hostile fixture: exit $rc, expected 1"
grep -q PK102 "$TMP/hostile.txt" || fail "hostile fixture: no PK102 in the report"

say "pip install: all checks passed (pkinspect $WANT)"

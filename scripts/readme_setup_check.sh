#!/usr/bin/env bash
# Runs the README's first set-up command exactly as written there (the
# `cargo run --release -- scan ...` line of "Set-up: two commands") and checks
# what it must print: the benign model OK, the hostile pickle FAIL, exit 1.
# The second command (`bash scripts/test`) is what .ci/run runs anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=$(grep -m1 '^cargo run --release -- scan ' README.md)
[ -n "$cmd" ] || { echo "README has no 'cargo run --release -- scan' set-up line" >&2; exit 1; }
echo "+ $cmd"
set +e
out=$(bash -c "$cmd" 2>/dev/null)
rc=$?
set -e
printf '%s\n' "$out"
[ "$rc" -eq 1 ] || { echo "expected exit 1 (a hostile file), got $rc" >&2; exit 1; }
grep -q 'os_system_global_p0.pkl: FAIL' <<<"$out" || { echo "hostile example not reported FAIL" >&2; exit 1; }
grep -q '1 file failed\|2 files scanned' <<<"$out" || { echo "no summary line" >&2; exit 1; }
echo "README set-up command: ok"

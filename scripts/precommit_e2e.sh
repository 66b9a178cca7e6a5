#!/usr/bin/env bash
# End-to-end check of the pre-commit hooks with the real pre-commit (PyPI,
# pinned in scripts/requirements.txt), as a team would use them:
#
#   repos:
#     - repo: <this checkout>
#       rev: <commit>
#       hooks: [{id: pkinspect}]        # or {id: pkinspect-rust}
#
# pre-commit clones the repo at that commit and installs pkinspect: for
# `pkinspect` (language: python) with `pip install .`, which builds the wheel
# with maturin (needs PyPI and crates.io); for `pkinspect-rust` (language:
# rust) with `cargo install` (needs crates.io). For each hook, a throwaway git
# repo in a temp dir then checks that:
#   a) committing a hostile pickle is refused and the output shows PK102;
#   b) committing benign scikit-learn and PyTorch state-dict pickles, a PNG
#      and a text file goes through;
#   c) a pickle with an unknown global (mycompany.models.Thing) is refused,
#      then accepted once pyproject.toml allows it in [tool.pkinspect];
#   d) a broken policy file stops the hook with its file and line.
#
# When this checkout has uncommitted changes, a snapshot of its working tree
# (tracked and untracked, not ignored files) is committed in a temp repo and
# used instead, so what is tested is what is on disk.
#
# Environment: PRE_COMMIT (the pre-commit executable; default .venv/bin/pre-commit
# or pre-commit on PATH), HOOK_IDS (default "pkinspect pkinspect-rust"; each
# costs one release build of pkinspect, a few minutes on 2 cores), KEEP=1
# keeps the temp dir. Both builds use target/precommit-e2e (CARGO_TARGET_DIR),
# which keeps the dependencies compiled between runs.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
say() { printf '== %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}

PRE_COMMIT="${PRE_COMMIT:-}"
if [ -z "$PRE_COMMIT" ]; then
  if [ -x "$ROOT/.venv/bin/pre-commit" ]; then
    PRE_COMMIT="$ROOT/.venv/bin/pre-commit"
  elif command -v pre-commit >/dev/null; then
    PRE_COMMIT="$(command -v pre-commit)"
  else
    fail "pre-commit not found: .venv/bin/pip install -r scripts/requirements.txt"
  fi
fi
# The script changes directory below: make the executable's path absolute.
case "$PRE_COMMIT" in
  */*) PRE_COMMIT="$(cd "$(dirname "$PRE_COMMIT")" && pwd)/$(basename "$PRE_COMMIT")" ;;
  *) PRE_COMMIT="$(command -v "$PRE_COMMIT")" || fail "pre-commit executable not found" ;;
esac
[ -x "$PRE_COMMIT" ] || fail "$PRE_COMMIT is not executable"
HOOK_IDS="${HOOK_IDS:-pkinspect pkinspect-rust}"
# Both hooks compile pkinspect with cargo (maturin runs it for the python one).
command -v cargo >/dev/null || fail "cargo not found (both hooks build pkinspect with cargo)"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/pkinspect-precommit.XXXXXX")"
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then
    echo "kept $TMP"
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT

# Isolated git and pre-commit: no user or system git config, hooks path or
# template; a private pre-commit cache; a shared cargo target dir for speed.
export GIT_CONFIG_GLOBAL="$TMP/gitconfig" GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME="pkinspect e2e" GIT_AUTHOR_EMAIL="e2e@pkinspect.invalid"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
export PRE_COMMIT_HOME="$TMP/pre-commit-home"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/precommit-e2e}"
printf '[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n' >"$GIT_CONFIG_GLOBAL"
git() { command git -c commit.gpgsign=false "$@"; }

say "pre-commit: $("$PRE_COMMIT" --version)"
say "hook repository"
if [ -z "$(git -C "$ROOT" status --porcelain --untracked-files=normal)" ]; then
  HOOK_REPO="$ROOT"
  echo "this checkout is clean: using $HOOK_REPO at HEAD"
else
  HOOK_REPO="$TMP/hook-repo"
  echo "this checkout has uncommitted changes: committing a snapshot of its working tree in $HOOK_REPO"
  mkdir -p "$HOOK_REPO"
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard) |
    (cd "$ROOT" && while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done) |
    (cd "$ROOT" && tar --null -T - -cf -) | (cd "$HOOK_REPO" && tar -xf -)
  git -C "$HOOK_REPO" init -q
  git -C "$HOOK_REPO" add -A
  git -C "$HOOK_REPO" commit -q -m "snapshot of the working tree for the pre-commit e2e check"
fi
[ -f "$HOOK_REPO/.pre-commit-hooks.yaml" ] || fail "$HOOK_REPO has no .pre-commit-hooks.yaml"
REV="$(git -C "$HOOK_REPO" rev-parse HEAD)"
echo "repo: $HOOK_REPO"
echo "rev:  $REV"

LOG="$TMP/commit.log"
# commit MESSAGE: runs `git commit` (and so the hook); output in $LOG and on stdout.
commit() {
  local rc=0
  git commit -m "$1" >"$LOG" 2>&1 || rc=$?
  sed 's/^/    | /' "$LOG"
  return $rc
}
expect_in_log() { grep -q -- "$1" "$LOG" || fail "expected '$1' in the hook output"; }

how_built() {
  case "$1" in
    pkinspect) echo "language: python, pip install . with maturin" ;;
    pkinspect-rust) echo "language: rust, cargo install" ;;
    *) echo "see .pre-commit-hooks.yaml" ;;
  esac
}

BUILT=""
for HOOK_ID in $HOOK_IDS; do
  grep -q "^- id: $HOOK_ID\$" "$HOOK_REPO/.pre-commit-hooks.yaml" || fail "no hook $HOOK_ID in .pre-commit-hooks.yaml"
  say "[$HOOK_ID] throwaway project repository"
  WORK="$TMP/project-$HOOK_ID"
  mkdir -p "$WORK"
  cd "$WORK"
  git init -q
  cat >.pre-commit-config.yaml <<EOF
repos:
  - repo: $HOOK_REPO
    rev: $REV
    hooks:
      - id: $HOOK_ID
EOF
  cat .pre-commit-config.yaml
  "$PRE_COMMIT" install
  say "[$HOOK_ID] building the hook ($(how_built "$HOOK_ID"); dependencies cached in $CARGO_TARGET_DIR)"
  start=$(date +%s)
  "$PRE_COMMIT" install-hooks
  echo "[$HOOK_ID] built in $(($(date +%s) - start)) s"
  BUILT="$BUILT $HOOK_ID:$(($(date +%s) - start))s"
  # The command the hook runs is the one installed in its own environment
  # (py_env-* for python, rustenv-* for rust), not one found on PATH.
  case "$HOOK_ID" in
    pkinspect-rust) env_glob='rustenv-*' ;;
    *) env_glob='py_env-*' ;;
  esac
  installed="$(find "$PRE_COMMIT_HOME" -path "*/$env_glob/bin/pkinspect" -type f | head -n 1)"
  [ -n "$installed" ] || fail "no bin/pkinspect in a $env_glob environment under $PRE_COMMIT_HOME"
  echo "[$HOOK_ID] installed $("$installed" --version) at ${installed#"$PRE_COMMIT_HOME"/}"

  say "[$HOOK_ID] 0) a commit without pickles passes"
  git add .pre-commit-config.yaml
  commit "pre-commit config" || fail "committing the config was refused"

  say "[$HOOK_ID] a) a hostile pickle is refused"
  mkdir -p models
  cp "$ROOT/fixtures/hostile/os_system_global_p0.pkl" models/evil.pkl
  git add models/evil.pkl
  if commit "add a hostile pickle"; then
    fail "the hostile pickle was committed"
  fi
  expect_in_log "PK102"
  expect_in_log "os.system"
  git rm -q --cached models/evil.pkl
  rm models/evil.pkl
  echo "refused, with PK102"

  say "[$HOOK_ID] b) benign scikit-learn and PyTorch pickles, a PNG and a text file go through"
  cp "$ROOT/fixtures/benign/sklearn_logreg_iris_p4.pkl" models/logreg.pkl
  cp "$ROOT/fixtures/benign/torch_state_dict_data.pkl" models/data.pkl
  printf '\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89' >logo.png
  printf '# models\n' >README.md
  git add models logo.png README.md
  commit "add benign models" || fail "the benign models were refused"
  expect_in_log "pkinspect (scan pickles)\.*Passed"
  echo "committed"

  say "[$HOOK_ID] c) an unknown global is refused, then allowed by pyproject.toml"
  # GLOBAL mycompany.models Thing, NEWOBJ, BUILD {'a': 1}: protocol 2.
  printf '\x80\x02cmycompany.models\nThing\n)\x81}X\x01\x00\x00\x00aK\x01sb.' >models/thing.pkl
  git add models/thing.pkl
  if commit "add a model of our own"; then
    fail "the unknown global was committed without a policy"
  fi
  expect_in_log "PK103"
  expect_in_log "mycompany.models.Thing"
  cat >pyproject.toml <<'EOF'
[project]
name = "models"
version = "0"

[tool.pkinspect]
allow = ["mycompany.models.Thing"]
EOF
  git add pyproject.toml models/thing.pkl
  commit "allow our own model class" || fail "still refused with [tool.pkinspect] allow"
  echo "refused, then committed once allowed"

  say "[$HOOK_ID] d) a broken policy file stops the hook with its file and line"
  printf '[tool.pkinspect]\nallow = ["os.*"]\n' >pyproject.toml
  cp "$ROOT/fixtures/benign/sklearn_logreg_iris_p4.pkl" models/logreg2.pkl
  git add pyproject.toml models/logreg2.pkl
  if commit "a policy that would allow os.*"; then
    fail "a commit went through with an invalid policy file"
  fi
  expect_in_log "pyproject.toml:2:10"
  echo "refused, naming pyproject.toml:2:10"
done

say "pre-commit end-to-end: all checks passed for$BUILT"

#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with the committed fixtures (files under 64 KiB: larger ones
# only slow libFuzzer down). The corpus is not committed; run this before a campaign.
# Every target gets the pickle and joblib fixtures; `extract`, which walks containers, also
# gets the container, PyTorch and extraction fixtures.
set -euo pipefail
cd "$(dirname "$0")"
targets="reader vm scan dis show extract"
for t in $targets; do
  mkdir -p "corpus/$t"
done
seed() { # seed TARGETS FILES...
  local to="$1"
  shift
  local f size name t
  for f in "$@"; do
    [ -f "$f" ] || continue
    size=$(wc -c < "$f")
    [ "$size" -lt 65536 ] || continue
    name="$(basename "$(dirname "$f")")__$(basename "$f")"
    for t in $to; do
      cp "$f" "corpus/$t/$name"
    done
    n=$((n + 1))
  done
}
n=0
seed "$targets" ../fixtures/benign/*.pkl ../fixtures/hostile/*.pkl ../fixtures/joblib/*.joblib ../fixtures/regress/*.pkl
seed extract ../fixtures/containers/* ../fixtures/torch/* ../fixtures/extract/* ../fixtures/extract_bad/*
echo "seeded $n files into corpus/{${targets// /,}}"

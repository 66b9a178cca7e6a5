#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with the committed fixtures (files under 64 KiB: larger ones
# only slow libFuzzer down). The corpus is not committed; run this before a campaign.
set -euo pipefail
cd "$(dirname "$0")"
targets="reader vm scan dis show"
for t in $targets; do
  mkdir -p "corpus/$t"
done
n=0
for f in ../fixtures/benign/*.pkl ../fixtures/hostile/*.pkl ../fixtures/joblib/*.joblib ../fixtures/regress/*.pkl; do
  [ -f "$f" ] || continue
  size=$(wc -c < "$f")
  [ "$size" -lt 65536 ] || continue
  name="$(basename "$(dirname "$f")")__$(basename "$f")"
  for t in $targets; do
    cp "$f" "corpus/$t/$name"
  done
  n=$((n + 1))
done
echo "seeded $n files into corpus/{${targets// /,}}"

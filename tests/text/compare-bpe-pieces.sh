#!/bin/sh
# Compares stsim's byte-level BPE pre-tokeniser (tests/text/bpe-pieces) with
# Hugging Face's ByteLevel pre-tokenizer (tests/text/ref-bpe-pieces.js) line
# by line and prints the first difference. The ids are compared by
# compare-tokenize.py; this checks the split itself, which the ids can hide
# when the merges happen to give the same tokens across a wrong boundary.
#
#   compare-bpe-pieces.sh PIECES REF_JS data              every STS-B and SICK sentence
#   compare-bpe-pieces.sh PIECES REF_JS file FILE         the lines of FILE
#   compare-bpe-pieces.sh PIECES REF_JS codepoints GEN_JS every code point (lines from GEN_JS)
#
# data needs STSIM_DATA. Exit 77 (skipped) when node, the npm package or the
# data is missing.
set -eu

tool=$1 ref=$2 mode=$3
here=$(cd "$(dirname "$0")" && pwd)

skip() { echo "SKIP: $*"; exit 77; }
command -v node >/dev/null 2>&1 || skip "node is not installed"
node -e "require('$here/../reference/tokenizers/node_modules/tokenizers')" 2>/dev/null ||
  skip "npm package tokenizers missing (npm install in tests/reference/tokenizers)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/compare-bpe-pieces.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
input=$tmp/input.txt

case $mode in
data)
  data=${STSIM_DATA:-}
  sts=$data/senteval/downstream/STS/STSBenchmark
  sick=$data/senteval/downstream/SICK
  for f in "$sts/sts-train.csv" "$sts/sts-dev.csv" "$sts/sts-test.csv" \
           "$sick/SICK_train.txt" "$sick/SICK_trial.txt" "$sick/SICK_test_annotated.txt"; do
    [ -f "$f" ] || skip "missing $f (set STSIM_DATA)"
  done
  # SentEval's columns: STS-B 6 and 7, SICK 2 and 3 after a header line
  for f in "$sts/sts-train.csv" "$sts/sts-dev.csv" "$sts/sts-test.csv"; do
    awk -F '\t' '{ print $6; print $7 }' "$f"
  done >"$input"
  for f in "$sick/SICK_train.txt" "$sick/SICK_trial.txt" "$sick/SICK_test_annotated.txt"; do
    awk -F '\t' 'NR > 1 { print $2; print $3 }' "$f"
  done >>"$input"
  ;;
file)
  cp "$4" "$input"
  ;;
codepoints)
  node "$4" >"$input"
  ;;
*)
  echo "compare-bpe-pieces.sh: unknown mode '$mode' (data, file or codepoints)" >&2
  exit 2
  ;;
esac

lines=$(wc -l <"$input")
node "$ref" <"$input" >"$tmp/ref.txt"
"$tool" <"$input" >"$tmp/ours.txt"

if ! cmp -s "$tmp/ours.txt" "$tmp/ref.txt"; then
  n=$(cmp "$tmp/ours.txt" "$tmp/ref.txt" 2>&1 | sed -n 's/.* line \([0-9]*\).*/\1/p')
  [ -n "$n" ] || n=$(( $(wc -l <"$tmp/ours.txt") + 1 ))
  echo "FAIL: $mode: first difference at line $n of $lines"
  printf 'input:     '; sed -n "${n}p" "$input" | cut -c1-400
  # the first differing piece, with two pieces of context on each side
  sed -n "${n}p" "$tmp/ours.txt" >"$tmp/a"
  sed -n "${n}p" "$tmp/ref.txt" >"$tmp/b"
  awk 'NR == FNR { for (i = 1; i <= NF; i++) a[i] = $i; na = NF; next }
       { for (i = 1; i <= NF || i <= na; i++) if (a[i] != $i) break
         lo = i > 2 ? i - 2 : 1
         printf "piece %d: stsim:     ", i; for (k = lo; k <= i + 2 && k <= na; k++) printf "%s ", a[k]; print ""
         printf "piece %d: reference: ", i; for (k = lo; k <= i + 2 && k <= NF; k++) printf "%s ", $k; print "" }' \
      "$tmp/a" "$tmp/b"
  echo "(stsim wrote $(wc -l <"$tmp/ours.txt") lines, the reference $(wc -l <"$tmp/ref.txt"))"
  exit 1
fi
echo "OK: $mode: $lines lines, $(wc -w <"$tmp/ref.txt") pieces identical"

#!/bin/sh
# The command-line contract of stsim-vocab: outputs, progress, exit codes and
# error messages; the folders it writes load in stsim-tokenize.
#   test-vocab-tool.sh PATH/stsim-vocab PATH/stsim-tokenize CORPUS
set -u
tool=$1
tokenize=$2
corpus=$3
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. "$(dirname "$0")/tool-check.sh"

contains() {  # name needle file
  if grep -qF -- "$2" "$3"; then
    echo "ok - $1"
  else
    echo "not ok - $1"
    printf '  expected to find: %s\n  in: %s\n' "$2" "$(cat "$3")"
    fail=1
  fi
}

run() {  # expected-status name args...: stdout to $tmp/out, stderr to $tmp/err
  want=$1 name=$2
  shift 2
  "$tool" "$@" >"$tmp/out" 2>"$tmp/err"
  check "$name: exit $want" "$want" "$?"
}

# Success: the files, the size on stdout, progress on stderr.
run 0 "wordpiece" --kind wordpiece --lowercase --size 700 --out "$tmp/wp" "$corpus"
check "wordpiece: stdout" "vocab_size = 700" "$(cat "$tmp/out")"
check "wordpiece: vocab.txt lines" "700" "$(wc -l <"$tmp/wp/vocab.txt" | tr -d ' ')"
check "wordpiece: specials first" "[PAD] [UNK] [CLS] [SEP] [MASK]" "$(head -5 "$tmp/wp/vocab.txt" | tr '\n' ' ' | sed 's/ $//')"
contains "wordpiece: lowercase recorded" '"do_lower_case": true' "$tmp/wp/tokenizer_config.json"
contains "wordpiece: read progress" "100% of 0.1 MB read" "$tmp/err"
contains "wordpiece: word count" "distinct words in 1 file; merging up to 700 tokens" "$tmp/err"
contains "wordpiece: summary" "700 tokens (" "$tmp/err"
out=$(printf 'Kàrus tong\n' | "$tokenize" --model "$tmp/wp")
check "wordpiece: stsim-tokenize loads it" "0" "$?"
check "wordpiece: [CLS] ... [SEP]" "2 3" "$(echo "$out" | awk '{ print $1, $NF }')"

run 0 "bpe" --kind bpe --size 400 --out "$tmp/bpe" "$corpus" "$corpus"
check "bpe: stdout" "vocab_size = 400" "$(cat "$tmp/out")"
check "bpe: merges.txt" "#version: 0.2 139" "$(head -1 "$tmp/bpe/merges.txt") $(($(wc -l <"$tmp/bpe/merges.txt") - 1))"
contains "bpe: two files" "in 2 files" "$tmp/err"
out=$(printf 'Kàrus tong <mask>\n' | "$tokenize" --model "$tmp/bpe")
check "bpe: stsim-tokenize loads it" "0" "$?"
check "bpe: <s> ... <mask> </s>" "0 4 2" "$(echo "$out" | awk '{ print $1, $(NF-1), $NF }')"

# The corpus runs out before the size (5 specials, a b, ##a ##b, aa ab):
# a warning, the real size on stdout.
printf 'aa ab\n' >"$tmp/tiny.txt"
run 0 "small corpus" --kind wordpiece --size 100 --out "$tmp/tiny" "$tmp/tiny.txt"
check "small corpus: stdout" "vocab_size = 11" "$(cat "$tmp/out")"
contains "small corpus: warning" "warning: only 11 of the 100 tokens asked for" "$tmp/err"

# Usage errors: exit 2.
run 2 "no --kind" --size 100 --out "$tmp/x" "$corpus"
contains "no --kind: message" "--kind wordpiece|bpe is required" "$tmp/err"
run 2 "bad --kind" --kind unigram --size 100 --out "$tmp/x" "$corpus"
contains "bad --kind: message" "unknown --kind 'unigram'" "$tmp/err"
run 2 "no --out" --kind bpe --size 300 "$corpus"
run 2 "no files" --kind bpe --size 300 --out "$tmp/x"
contains "no files: message" "no corpus FILE given" "$tmp/err"
run 2 "bpe size below 261" --kind bpe --size 260 --out "$tmp/x" "$corpus"
contains "bpe size below 261: message" "--size 260 is below the 261 initial symbols" "$tmp/err"
run 2 "--lowercase with bpe" --kind bpe --lowercase --size 300 --out "$tmp/x" "$corpus"
run 2 "unknown option" --kind bpe --size 300 --vocab-size 3 --out "$tmp/x" "$corpus"

# Invalid input: exit 1, the file named.
run 1 "missing file" --kind bpe --size 300 --out "$tmp/x" "$tmp/nope.txt"
contains "missing file: message" "$tmp/nope.txt: cannot read the corpus file" "$tmp/err"
: >"$tmp/empty.txt"
printf '\n  \n' >"$tmp/blank.txt"
run 1 "empty corpus" --kind wordpiece --size 300 --out "$tmp/x" "$tmp/empty.txt" "$tmp/blank.txt"
contains "empty corpus: message" "the corpus has no words (2 lines" "$tmp/err"
printf 'text\n\000\001\002binary\n' >"$tmp/binary.bin"
run 1 "binary corpus" --kind bpe --size 300 --out "$tmp/x" "$tmp/binary.bin"
contains "binary corpus: message" "binary.bin:2: a NUL byte at byte 1 of the line: this looks like a binary file" "$tmp/err"
printf 'caf\351\n' >"$tmp/latin1.txt"
run 1 "latin-1 corpus" --kind wordpiece --size 300 --out "$tmp/x" "$tmp/latin1.txt"
contains "latin-1 corpus: message" "latin1.txt:1: invalid UTF-8 at byte 4" "$tmp/err"
run 1 "wordpiece size below alphabet" --kind wordpiece --size 20 --out "$tmp/x" "$corpus"
contains "wordpiece size below alphabet: message" "is below the" "$tmp/err"
contains "wordpiece size below alphabet: hint" "or limit the alphabet" "$tmp/err"
check "nothing written on errors" "no" "$([ -e "$tmp/x" ] && echo yes || echo no)"
run 1 "a BPE folder is not overwritten with WordPiece" --kind wordpiece --size 300 --out "$tmp/bpe" "$corpus"
contains "mixed kinds: message" "already holds vocab.json of a BPE tokenizer" "$tmp/err"

exit $fail

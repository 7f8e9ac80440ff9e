#!/bin/sh
# The command-line contract of stsim-tokenize: line splitting, exit codes and
# error messages. Expected ids: method.md §2.4 and data/vocab/README.md.
#   test-tokenize-tool.sh PATH/stsim-tokenize BERT_MODEL_DIR
set -u
tool=$1
model=$2
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. "$(dirname "$0")/tool-check.sh"

[ -f "$model/vocab.txt" ] || { echo "SKIP: no $model/vocab.txt"; exit 77; }

out=$(printf 'Hello, world!\n' | "$tool" --model "$model")
check "sanity example" "101 7592 1010 2088 999 102" "$out"

# A final line without '\n' counts; an empty line gives just the specials;
# a trailing '\n' does not make an extra line.
out=$(printf 'Hello\n\nworld' | "$tool" --model "$model" | tr '\n' '|')
check "lines, empty line, unterminated last line" "101 7592 102|101 102|101 2088 102|" "$out"

out=$(printf '' | "$tool" --model "$model" | wc -l)
check "no input, no output" "0" "$(echo $out)"

# '\r' is part of the line (a space to the tokenizer), not a line end.
out=$(printf 'Hello\rworld\r\n' | "$tool" --model "$model")
check "CR stays in the line" "101 7592 2088 102" "$out"

out=$(printf 'Hello, world!\n' | "$tool" --model "$model" --max-len 4)
check "--max-len keeps [SEP]" "101 7592 1010 102" "$out"

# Invalid UTF-8 on line 3: exit 1, the message names the line.
printf 'fine\nfine\nbad \377 byte\nfine\n' | "$tool" --model "$model" >"$tmp/out" 2>"$tmp/err"
check "invalid UTF-8 exit status" "1" "$?"
grep -q '<stdin>:3: invalid UTF-8 at byte 5' "$tmp/err"
check "invalid UTF-8 message names line 3 and byte 5" "0" "$?"

# Endless standard input (/dev/zero: one line of NULs that never ends):
# exit 1 at the line limit instead of reading until memory runs out.
timeout 10 "$tool" --model "$model" </dev/zero >/dev/null 2>"$tmp/err3"
check "/dev/zero on stdin exit status" "1" "$?"
grep -q '<stdin>:1: line longer than 1 MiB' "$tmp/err3"
check "/dev/zero on stdin message" "0" "$?"

# Usage errors exit 2.
printf 'x\n' | "$tool" >/dev/null 2>&1
check "missing --model" "2" "$?"
printf 'x\n' | "$tool" --model "$model" --max-len 1 >/dev/null 2>&1
check "--max-len 1" "2" "$?"
printf 'x\n' | "$tool" --model "$model" --max-len abc >/dev/null 2>&1
check "--max-len abc" "2" "$?"
printf 'x\n' | "$tool" --model "$model" --bogus >/dev/null 2>&1
check "unknown option" "2" "$?"
printf 'x\n' | "$tool" --model "$model" extra >/dev/null 2>&1
check "stray argument" "2" "$?"

# A model folder without tokenizer files: exit 1 with the folder named.
"$tool" --model "$tmp" </dev/null >/dev/null 2>"$tmp/err2"
check "empty model folder exit status" "1" "$?"
grep -q "$tmp: no tokenizer files" "$tmp/err2"
check "empty model folder message" "0" "$?"

exit $fail

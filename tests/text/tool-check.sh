# tool-check.sh: sourced by the tool contract tests of this folder.
# check NAME EXPECTED ACTUAL prints a TAP line; a mismatch sets fail=1.
check() {  # name expected actual
  if [ "$2" = "$3" ]; then
    echo "ok - $1"
  else
    echo "not ok - $1"
    printf '  expected: %s\n  actual:   %s\n' "$2" "$3"
    fail=1
  fi
}

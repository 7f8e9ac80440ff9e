#!/bin/sh
# test-boundary.sh LIBSTSIM SOURCE_ROOT: the API boundary of docs/architecture.md.
#
# 1. What libstsim exports (nm -D --defined-only) is exactly what the
#    installed headers (include/stsim/*.h, all installed) mark STSIM_API:
#    a symbol exported but declared nowhere fails, and so does a marked
#    declaration the library does not export. Every export is stsim_*.
# 2. Every top-level function declaration of those headers is marked
#    (a declaration without STSIM_API would compile and fail to link).
# 3. Plugins (plugins/, the test plugins, the SDK's hello-plugin.c) include
#    only public headers, and not the registry, recipe or trainer ones
#    (stsim.h is their umbrella); tools include only public
#    headers and their own tool-common.h (no core-internal header, no
#    generated stsim-config.h).
# Headers are parsed simply: a line that is exactly STSIM_API marks the
# declaration that follows, up to its ';'. Exit 77 (skipped) when nm is absent.
set -eu
lib=$1 src=$2
command -v nm >/dev/null 2>&1 || { echo "SKIP: nm is not installed"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/stsim-boundary.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
status=0
fail () { echo "FAIL: $*" >&2; status=1; }

# ---- 1. exports = marked declarations -----------------------------------------------------
# Symbols a sanitizer build adds (ASan's __odr_asan.NAME indicators) are not API.
nm -D --defined-only "$lib" | awk 'NF == 3 && $3 !~ /^__odr_asan/ { print $3 }' | sort -u >"$tmp/exported"
[ -s "$tmp/exported" ] || { echo "FAIL: nm lists no symbol in $lib" >&2; exit 1; }
# The name a declaration declares: the identifier before its first '(' (a
# function), else the last identifier before '[' or ';' (a variable).
awk '
  FNR == 1 { on = 0 }
  on { decl = decl " " $0; if (index ($0, ";")) { print FILENAME ": " decl; on = 0 }; next }
  $0 == "STSIM_API" { on = 1; decl = "" }
' "$src"/include/stsim/*.h >"$tmp/decls"
sed -e 's/^[^:]*: //' "$tmp/decls" | awk '{
    d = $0
    p = index (d, "(")
    if (p > 0) d = substr (d, 1, p - 1); else sub (/[[;].*/, "", d)
    n = split (d, w, /[^A-Za-z0-9_]+/)
    while (n > 0 && w[n] == "") n--
    print w[n]
  }' | sort >"$tmp/declared.all"
sort -u "$tmp/declared.all" >"$tmp/declared"
dups=$(uniq -d "$tmp/declared.all")
[ -z "$dups" ] || fail "declared STSIM_API more than once: $dups"
n_exp=$(wc -l <"$tmp/exported") n_decl=$(wc -l <"$tmp/declared")
echo "libstsim exports $n_exp symbols; the headers mark $n_decl declarations"
[ "$n_decl" -ge 100 ] || fail "only $n_decl STSIM_API declarations found: the header parse is broken"
extra=$(comm -23 "$tmp/exported" "$tmp/declared")
[ -z "$extra" ] || fail "exported by libstsim but declared STSIM_API in no installed header (mark it, or make it static or internal): $(echo $extra)"
missing=$(comm -13 "$tmp/exported" "$tmp/declared")
[ -z "$missing" ] || fail "declared STSIM_API in an installed header but not exported by libstsim (not defined, or defined static): $(echo $missing)"
foreign=$(grep -v '^stsim_' "$tmp/exported" || true)
[ -z "$foreign" ] || fail "exported without the stsim_ prefix: $(echo $foreign)"

# ---- 2. every declaration is marked ----------------------------------------------------------
# A top-level line that starts a declaration of stsim_NAME ( and whose previous line is not STSIM_API.
unmarked=$(awk '
  /^\/\*/ { c = 1 } c { if (index ($0, "*/")) c = 0; prev = ""; next }
  /^[A-Za-z]/ && !/^(typedef|static|struct|enum|union|G_|STSIM_)/ && /[ *]stsim_[a-z0-9_]+ *\(/ && prev != "STSIM_API" {
    print FILENAME ":" FNR ": " $0
  }
  { prev = $0 }
' "$src"/include/stsim/*.h)
[ -z "$unmarked" ] || fail "public declarations without STSIM_API:
$unmarked"

# ---- 3. who includes what ----------------------------------------------------------------------
public=$(cd "$src/include/stsim" && ls *.h | tr '\n' ' ')
check_includes () {  # $1: label, $2: folders or files, $3: public headers it must not include, $4: local headers it may include
  for f in $(for d in $2; do find "$src/$d" -name '*.c' -o -name '*.h'; done); do
    sed -n 's/^[ \t]*#[ \t]*include[ \t]*[<"]\([^>"]*\)[>"].*/\1/p' "$f" | while read -r inc; do
      case "$inc" in
        stsim/*)
          h=${inc#stsim/}
          case " $public stsim-version.h " in *" $h "*) ;; *) echo "$f: $inc is not an installed header" ;; esac
          case " $3 " in *" $h "*) echo "$f: a $1 must not include $inc" ;; esac ;;
        *.h)
          # A header next to the file (a plugin's own, tool-common.h) or a system one.
          if [ -e "$(dirname "$f")/$inc" ]; then
            case " $4 " in *" * "*|*" $inc "*) ;; *) echo "$f: $inc is not a public header" ;; esac
          elif [ -e "$src/core/$inc" ] || [ -e "$src/$inc" ] || [ "$inc" = stsim-config.h ]; then
            echo "$f: $inc is core-internal"
          fi ;;
      esac
    done
  done
}
bad=$(check_includes plugin "plugins tests/plugins tests/sdk/hello-plugin.c" "stsim-registry.h stsim-recipe.h stsim-train.h" "*")
[ -z "$bad" ] || fail "plugins reach past the plugin API:
$bad"
bad=$(check_includes tool core/tools "" "tool-common.h")
[ -z "$bad" ] || fail "tools reach past the public API:
$bad"

[ "$status" -eq 0 ] && echo "ok: exports match the STSIM_API declarations; plugins and tools include public headers only"
exit "$status"

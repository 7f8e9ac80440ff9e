#!/bin/sh
# test-sdk-install.sh MESON BUILD_ROOT FIXTURE: the installed SDK works for an
# out-of-tree plugin. It installs the build into a temporary folder
# (meson install --destdir), compiles FIXTURE (a one-file plugin) with cc
# and `pkg-config --cflags --libs stsim` against that folder only, then runs
# the INSTALLED stsim-inspect with --plugin-path and checks that it lists the
# plugin's component (and the installed in-tree plugins), and that a
# core-internal function cannot be linked against. Exit 77 (skipped)
# only when cc or pkg-config is absent.
set -eu
meson=$1 build=$2 fixture=$3

for tool in cc pkg-config; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP: $tool is not installed; the out-of-tree plugin build needs it"
    exit 77
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/stsim-sdk.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail () { echo "FAIL: $*" >&2; exit 1; }

"$meson" install -C "$build" --no-rebuild --quiet --destdir "$tmp/root" >"$tmp/install.log" 2>&1 \
  || { cat "$tmp/install.log" >&2; fail "meson install --destdir failed"; }

pc=$(find "$tmp/root" -name stsim.pc | head -n 1)
[ -n "$pc" ] || fail "no stsim.pc was installed"
inspect=$(find "$tmp/root" -path '*/bin/stsim-inspect' | head -n 1)
[ -n "$inspect" ] || fail "stsim-inspect was not installed"
lib=$(find "$tmp/root" -name 'libstsim.so' | head -n 1)
[ -n "$lib" ] || fail "libstsim.so was not installed"
plugindir=$(find "$tmp/root" -type d -path '*/stsim/plugins' | head -n 1)
[ -n "$plugindir" ] || fail "no <libdir>/stsim/plugins folder was installed"
[ -n "$(find "$tmp/root" -path '*/include/stsim/stsim-version.h')" ] || fail "stsim-version.h was not installed"

# The .pc file names the configured prefix (/usr/local, say); a copy whose
# prefix= points into the temporary folder stands for an SDK installed there.
# (PKG_CONFIG_SYSROOT_DIR would also move glib's paths.)
prefix=$(sed -n 's/^prefix=//p' "$pc")
mkdir "$tmp/pkgconfig"
sed "s|^prefix=.*|prefix=$tmp/root$prefix|" "$pc" >"$tmp/pkgconfig/stsim.pc"
export PKG_CONFIG_PATH="$tmp/pkgconfig"
flags=$(pkg-config --cflags --libs stsim) || fail "pkg-config --cflags --libs stsim failed"
echo "pkg-config: $flags"
case "$flags" in
  *"$tmp/root"*) ;;
  *) fail "the flags do not point into the installed tree: $flags" ;;
esac

mkdir "$tmp/plugins"
# shellcheck disable=SC2086  # the flags are a word list
cc -std=c11 -Wall -Werror -O1 -shared -fPIC -fvisibility=hidden -o "$tmp/plugins/libstsim-sdk-hello.so" \
  "$fixture" $flags -lm || fail "the out-of-tree plugin does not compile against the installed SDK"

# The installed library exports the public API only: a program that calls a
# core-internal function (the edit distance behind "did you mean") does not
# link, and the internal archive the tests use is not installed.
printf 'int stsim_util_edit_distance (const char *a, const char *b);\nint main (void) { return stsim_util_edit_distance ("a", "b"); }\n' \
  >"$tmp/internal.c"
# shellcheck disable=SC2086
if cc -o "$tmp/internal" "$tmp/internal.c" $flags >"$tmp/internal.log" 2>&1; then
  fail "a core-internal function (stsim_util_edit_distance) links against the installed libstsim"
fi
grep -q 'stsim_util_edit_distance' "$tmp/internal.log" || { cat "$tmp/internal.log" >&2; fail "the internal-call program failed for another reason"; }
[ -z "$(find "$tmp/root" -name 'libstsim-internal*')" ] || fail "the internal archive was installed"

export LD_LIBRARY_PATH="$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export STSIM_PLUGIN_PATH="" STSIM_PLUGIN_SYSTEM_PATH=""
"$inspect" --plugin-path "$tmp/plugins" >"$tmp/list.txt" 2>&1 || { cat "$tmp/list.txt" >&2; fail "stsim-inspect failed"; }
cat "$tmp/list.txt"
grep -q "sdk-hello" "$tmp/list.txt" || fail "stsim-inspect does not list the component sdk-hello"
grep -q "0 failed" "$tmp/list.txt" || fail "a plugin failed to load"
"$inspect" --plugin-path "$tmp/plugins" sdk-hello >"$tmp/show.txt" 2>&1 || { cat "$tmp/show.txt" >&2; fail "stsim-inspect sdk-hello failed"; }
grep -q "scale" "$tmp/show.txt" || fail "stsim-inspect sdk-hello does not show the parameter table"

# The installed in-tree plugins load from the installed folder too.
"$inspect" --plugin-path "$plugindir" >"$tmp/installed.txt" 2>&1 || { cat "$tmp/installed.txt" >&2; fail "stsim-inspect over the installed plugins failed"; }
for c in contrastive align-uniform encoder-teacher sts; do
  grep -q "$c" "$tmp/installed.txt" || fail "the installed plugin folder lacks $c"
done
grep -q "0 failed" "$tmp/installed.txt" || fail "an installed plugin failed to load"
echo "ok: installed SDK, out-of-tree plugin built with pkg-config and loaded by the installed stsim-inspect"

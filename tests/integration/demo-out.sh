#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# scripts/demo removes its output directory (P11CA_DEMO_OUT) only when it
# is missing, empty, or one the demo made (its marker file): a directory
# of other files, a regular file or a symbolic link is refused with a
# message and left as it was.  The demo runs here without a build
# (P11CA_DEMO_BUILD names none), so that it stops at its first p11ca
# command, after the check and the new directory.
set -u
: "${top_srcdir:=.}" "${top_builddir:=.}"
. "$top_srcdir/tests/lib/tap.sh"
TT=$(mktemp -d "${TMPDIR:-/tmp}/p11ca-test.XXXXXX")
trap 'rm -rf "$TT"' EXIT
plan 10

# demo OUT: scripts/demo with P11CA_DEMO_OUT=OUT; output in $TT/out.
demo() {
    P11CA_DEMO_OUT=$1 P11CA_DEMO_BUILD=$TT/no-build SOFTHSM2_CONF=/nonexistent \
        sh "$top_srcdir/scripts/demo" >"$TT/out" 2>&1
}
REFUSED='is not a directory this demo made \(no \.p11ca-demo-out in it\): refusing to remove it'

mkdir "$TT/mine"
echo keep >"$TT/mine/notes.txt"
demo "$TT/mine"
assert_eq "$?" 1 "a directory of other files: refused (exit 1)"
assert_grep "$REFUSED" "$TT/out" "... saying why"
assert_eq "$(cat "$TT/mine/notes.txt" 2>/dev/null)" keep "... and its files are left alone"

echo keep >"$TT/file"
demo "$TT/file"
assert_grep "$REFUSED" "$TT/out" "a regular file: refused"
assert_eq "$(cat "$TT/file")" keep "... and left alone"

ln -s mine "$TT/link"
demo "$TT/link"
assert_grep "$REFUSED" "$TT/out" "a symbolic link: refused"
check "... the link and what it points to are left alone" \
    test -L "$TT/link" -a -f "$TT/mine/notes.txt"

mkdir "$TT/empty"
demo "$TT/empty"
assert_no_grep refusing "$TT/out" "an empty directory is used"
check "... the demo marks it as its own" test -f "$TT/empty/.p11ca-demo-out"
echo old >"$TT/empty/old-run.log"
demo "$TT/empty"
if ! grep -q refusing "$TT/out" && [ ! -e "$TT/empty/old-run.log" ]; then
    ok "a directory the demo made is removed and made again"
else
    not_ok "a directory the demo made is removed and made again"
    diag "$(tail -n 5 "$TT/out")"
fi
done_testing

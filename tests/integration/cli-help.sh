#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Help texts and the man page come from one table: every command has
# --help, and docs/p11ca.1 is what `p11ca man` prints (make update-man).
set -u
: "${top_srcdir:=.}" "${top_builddir:=.}"
. "$top_srcdir/tests/lib/tap.sh"
TT=$(mktemp -d)
trap 'rm -rf "$TT"' EXIT

CMDS="token:list token:init token:show key:gen key:list key:pubout cert:import cert:list enroll: ocsp:respond ocsp:signer"
plan $(( $(echo "$CMDS" | wc -w) + 4 ))
for c in $CMDS; do
    g=${c%%:*}
    v=${c#*:}
    # "group:" is a command of one word (p11ca enroll).
    if p11ca "$g" ${v:+"$v"} --help >"$TT/out" 2>&1 && grep -q "^usage: p11ca $g${v:+ $v}" "$TT/out"; then
        ok "p11ca $g${v:+ $v} --help"
    else
        not_ok "p11ca $g${v:+ $v} --help"
    fi
done
p11ca man >"$TT/p11ca.1"
check "docs/p11ca.1 is current (run make update-man)" cmp "$TT/p11ca.1" "$top_srcdir/docs/p11ca.1"
for c in $CMDS; do
    g=${c%%:*}
    v=${c#*:}
    grep -q "^\.SS p11ca $g${v:+ $v}\$" "$TT/p11ca.1" || echo "$c" >>"$TT/missing"
done
if [ -s "$TT/missing" ]; then not_ok "man page has a section per command"; else ok "man page has a section per command"; fi
p11ca --version >"$TT/v" && assert_grep '^p11ca [0-9]' "$TT/v" "p11ca --version"
should_fail 1 'usage: p11ca' "no command: usage on stderr (exit 1)" p11ca
done_testing

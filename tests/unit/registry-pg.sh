#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The registry's unit tests again, on PostgreSQL: a throw-away server
# (tests/lib/pg.sh), each test in a schema of its own
# (P11CA_TEST_REGISTRY=pg, tests/unit/test_registry_util.c).  Their TAP
# lines are passed on, numbered as one plan; skipped when PostgreSQL is
# not installed.
set -u
. "$top_srcdir/tests/lib/tap.sh"
TT=$(mktemp -d "${TMPDIR:-/tmp}/p11ca-test.XXXXXX")
trap 'rm -rf "$TT"' EXIT
. "$top_srcdir/tests/lib/pg.sh"
pg_start

P11CA_TEST_REGISTRY=pg
P11CA_TEST_PG=$PG_CONNINFO
export P11CA_TEST_REGISTRY P11CA_TEST_PG

n=0
for t in test_registry test_registry_lifecycle test_registry_audit \
    test_registry_replay test_registry_issuer test_registry_cas; do
    "$top_builddir/tests/unit/$t" >"$TT/$t.out" 2>"$TT/$t.err"
    rc=$?
    while IFS= read -r line; do
        case $line in
        *"# SKIP"*)
            # cmocka writes "not ok N # SKIP", which TAP drivers count as
            # a failure.
            n=$((n + 1))
            echo "ok $n # SKIP $t: ${line#*# SKIP }"
            ;;
        "ok "* | "not ok "*)
            n=$((n + 1))
            # "ok 3 - name" -> "ok N - <program>: name"
            printf '%s\n' "$line" | sed -E "s/^(not ok|ok) [0-9]+ (- )?/\\1 $n - $t: /"
            ;;
        "#"*) printf '%s\n' "$line" ;;
        esac
    done <"$TT/$t.out"
    if [ "$rc" -ne 0 ]; then
        n=$((n + 1))
        echo "not ok $n - $t exited with status $rc"
        sed 's/^/# /' "$TT/$t.err"
    fi
done
echo "1..$n"

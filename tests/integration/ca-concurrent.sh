#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# 4 processes x 10 p11ca issue against one CA whose key is on SoftHSM2, all
# at once and without retries: SoftHSM2 saves its token at every C_Login,
# and a process that looks at that moment sees no token (or one without a
# user PIN); the token wait covers it.  40 issued, 40 distinct serials, all
# 40 in the registry, all verified by plain openssl.  Nothing here depends
# on timing: each worker issues its 10 whatever the interleaving, with the
# CA's default config (the sign-up limit does not hold issuance).
# On SQLite, or on PostgreSQL with P11CA_TEST_REGISTRY=pg (ca-concurrent-pg.sh).
set -u
. "$top_srcdir/tests/lib/prov.sh"
. "$top_srcdir/tests/lib/registry.sh"
plan 7

D=$TT/cc
mkdir -p "$D/csr" "$D/out"
check "ca init: a CA with its key generated on the token" \
    with_reg p11ca --pin-source "$PINFILE" ca init --dir "$D/ca" \
    --subject "/CN=p11ca Concurrent CA" --key-uri "$TOKURI;object=ccroot" \
    --generate ec:P-256 --days 3650
# The CA as ca init wrote it: the sign-up limit (15 per second) does not
# hold an operator's p11ca issue, and no profile has a limit of its own.
assert_grep '^rate_limit *= *15' "$D/ca/ca.cnf" \
    "the CA's default config, with the sign-up limit of 15 per second"

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$D/sw.key" 2>/dev/null
for w in 1 2 3 4; do
    for i in 1 2 3 4 5 6 7 8 9 10; do
        openssl req -new -key "$D/sw.key" -subj "/CN=w$w-$i.test" \
            -out "$D/csr/w$w-$i.csr" 2>/dev/null
    done
done

worker() {
    for i in 1 2 3 4 5 6 7 8 9 10; do
        p11ca issue --dir "$D/ca" --profile client --out "$D/out/w$1-$i.pem" \
            "$D/csr/w$1-$i.csr" >/dev/null 2>"$D/out/w$1-$i.err"
        echo "$?" >"$D/out/w$1-$i.rc"
    done
}
worker 1 & worker 2 & worker 3 & worker 4 &
wait

fails=$(cat "$D"/out/*.rc | grep -vc '^0$')
assert_eq "$fails" 0 "4 processes x 10 p11ca issue at once: 40 of 40 issued"
if [ "$fails" -ne 0 ]; then
    for f in "$D"/out/*.err; do
        [ -s "$f" ] && diag "$(basename "$f"): $(head -n 1 "$f")"
    done
fi

: >"$D/serials"
for f in "$D"/out/*.pem; do
    [ -e "$f" ] || continue
    # As openssl prints it, which is how p11ca prints serials too.
    openssl x509 -in "$f" -noout -serial | cut -d= -f2 >>"$D/serials"
done
assert_eq "$(sort -u "$D/serials" | wc -l | tr -d ' ')" 40 "40 distinct serials"

p11ca cert list --dir "$D/ca" --json >"$D/registry.json" 2>"$D/registry.err"
found=0
while read -r s; do
    grep -q "\"serial\": \"$s\"" "$D/registry.json" && found=$((found + 1))
done <"$D/serials"
assert_eq "$found" 40 "all 40 are in the registry (p11ca cert list --json)"
assert_eq "$(grep -c '"serial"' "$D/registry.json")" 40 "... and nothing else"

good=0
for f in "$D"/out/*.pem; do
    [ -e "$f" ] || continue
    openssl verify -CAfile "$D/ca/ca.pem" "$f" >/dev/null 2>&1 && good=$((good + 1))
done
assert_eq "$good" 40 "all 40 verify with plain openssl verify"
done_testing

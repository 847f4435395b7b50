#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The registry from the p11ca command: search filters (incl. --expiring
# with certificates of crafted validity), show, the lifecycle rules, lost
# card, registration of external certificates under the sign-up limit,
# bulk revocation as one audited action, the audit chain and its tamper detection.
# On SQLite, or on PostgreSQL with P11CA_TEST_REGISTRY=pg (registry-cli-pg.sh).
set -u
. "$top_srcdir/tests/lib/prov.sh"
. "$top_srcdir/tests/lib/registry.sh"
plan 51

D=$TT/ca
W=$TT/work
mkdir -p "$W"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/ca.key" 2>/dev/null
check "ca init with a key file" \
    reg_init --dir "$D" --subject "/CN=Registry Test CA" --key "$W/ca.key"
count() { regsql "$D" "select count(*) from certs $1"; }

# csr NAME CN [OU]: a software key and its CSR.
csr() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$W/$1.key" -subj "/CN=$2${3:+/OU=$3}" -out "$W/$1.csr" 2>/dev/null
}
issue() { # issue NAME DAYS [options...]
    n=$1 d=$2
    shift 2
    p11ca issue --dir "$D" --profile client --days "$d" "$@" --out "$W/$n.pem" "$W/$n.csr"
}
serial_of() { openssl x509 -in "$W/$1.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/^0*//'; }

csr alice alice people; csr bob bob people; csr carol carol staff
csr dave dave staff; csr eve eve people
check "issue alice (5 days)" issue alice 5
check "issue bob (20 days)" issue bob 20
check "issue carol (60 days)" issue carol 60
check "issue dave (200 days, not activated)" issue dave 200 --not-activated
S_ALICE=$(serial_of alice); S_BOB=$(serial_of bob); S_DAVE=$(serial_of dave)

# Search.
j() { p11ca cert list --dir "$D" --json "$@" | python3 -c 'import json,sys; print(" ".join(sorted(c["cn"] for c in json.load(sys.stdin))))'; }
assert_eq "$(j)" "alice bob carol dave" "cert list shows every certificate"
assert_eq "$(j --cn bob)" "bob" "--cn"
assert_eq "$(j --ou staff)" "carol dave" "--ou"
assert_eq "$(j --status not-activated)" "dave" "--status"
assert_eq "$(j --client-id carol)" "carol" "--client-id (default: the CN)"
assert_eq "$(j --serial "$S_BOB")" "bob" "--serial"
assert_eq "$(j --expiring 30d)" "alice bob" "--expiring 30d: crafted validities of 5 and 20 days"
assert_eq "$(j --expiring 7d)" "alice" "--expiring 7d"
# libfaketime moves the clock; in sanitizer builds the ASan runtime must
# still come first in LD_PRELOAD.
FT=$(find /usr/lib -path '*/faketime/libfaketime.so.1' 2>/dev/null | head -n 1)
later() {
    LD_PRELOAD="${SANITIZER_PRELOAD:+$SANITIZER_PRELOAD:}$FT" FAKETIME="+100d" "$@"
}
assert_eq "$(later "$top_builddir/src/p11ca" cert list --dir "$D" --expired --json | python3 -c 'import json,sys; print(" ".join(sorted(c["cn"] for c in json.load(sys.stdin))))')" \
    "alice bob carol" "--expired (100 days later, with faketime)"
assert_eq "$(j --issued-after 2000-01-01 --issued-before 2999-01-01 --limit 2 | wc -w)" 2 "date range and --limit"
p11ca cert list --dir "$D" >"$TT/list.txt"
assert_grep "$(echo "$S_ALICE" | tr a-f A-F) +activated +alice" "$TT/list.txt" "text listing: serial, status, client ID"
should_fail 1 'unknown status' "a bad --status is a usage error" p11ca cert list --dir "$D" --status sleeping
should_fail 1 'duration' "a bad --expiring is a usage error" p11ca cert list --dir "$D" --expiring soon

# Show.
p11ca cert show --dir "$D" --json "$S_ALICE" >"$TT/show.json"
v=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["status"], d["cn"], d["profile"], len(d["history"]))' "$TT/show.json")
assert_eq "$v" "activated alice client 1" "cert show: fields and history"
should_fail 2 'not found|no certificate' "cert show of an unknown serial" p11ca cert show --dir "$D" 0123abcd

# Lifecycle.
should_fail 2 'activated' "delete refused while activated" p11ca cert delete --dir "$D" "$S_ALICE"
check "deactivate alice" p11ca cert deactivate --dir "$D" --why "on leave" "$S_ALICE"
check "activate alice again" p11ca cert activate --dir "$D" "$S_ALICE"
check "revoke bob (keyCompromise)" p11ca cert revoke --dir "$D" --reason keyCompromise "$S_BOB"
should_fail 2 'revoked|final' "a revoked certificate cannot be activated again" p11ca cert activate --dir "$D" "$S_BOB"
should_fail 2 'revoked|final' "... nor revoked twice" p11ca cert revoke --dir "$D" "$S_BOB"
should_fail 2 'expire|CRL' "a revoked, unexpired certificate cannot be deleted" p11ca cert delete --dir "$D" "$S_BOB"
check "delete dave (not activated)" p11ca cert delete --dir "$D" "$S_DAVE"
assert_eq "$(count "where serial = '$S_DAVE'")" 0 "dave is gone from the registry"

# Client IDs: one activated certificate per client; lost card.
csr alice2 alice people
should_fail 2 'client ID' "a second activated certificate for alice is refused" issue alice2 30
assert_eq "$(count "where cn = 'alice'")" 1 "... and nothing was recorded"
check "lost card: revoke by client ID" p11ca cert revoke --dir "$D" --client-id alice --reason keyCompromise --yes
check "alice's next enrollment gets a new certificate" issue alice2 30
assert_eq "$(j --client-id alice --status revoked)" "alice" "the old card stays revoked"

# External certificates: registered against a registered CA.
openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$W/ext-ca.key" -subj "/CN=External CA" -days 30 \
    -addext basicConstraints=critical,CA:TRUE -out "$W/ext-ca.pem" 2>/dev/null
openssl x509 -req -in "$W/eve.csr" -CA "$W/ext-ca.pem" -CAkey "$W/ext-ca.key" \
    -CAcreateserial -days 10 -out "$W/eve.pem" 2>/dev/null
should_fail 2 'not issued by a registered CA' "a certificate of an unknown CA cannot be registered" \
    p11ca cert register --dir "$D" "$W/eve.pem"
check "register the external CA" p11ca cert register-ca --dir "$D" --name external "$W/ext-ca.pem"
check "register eve's certificate" p11ca cert register --dir "$D" "$W/eve.pem"
assert_eq "$(j --status registered-not-activated)" "eve" "eve is registered-not-activated"

# The sign-up limit (rate_limit of [ ca ]) holds registrations, on the
# registry's test clock (at_clock): every command starts in second T.
T=2000000000
sed -i 's|^rate_limit *=.*|rate_limit = 2|' "$D/ca.cnf"
for u in frank gina hank; do
    csr "$u" "$u" devices
    openssl x509 -req -in "$W/$u.csr" -CA "$W/ext-ca.pem" -CAkey "$W/ext-ca.key" \
        -CAcreateserial -days 10 -out "$W/$u.pem" 2>/dev/null
done
check "sign-up limit 2: the 1st registration in second T" \
    at_clock $T p11ca cert register --dir "$D" --wait 0 "$W/frank.pem"
check "sign-up limit 2: the 2nd registration in second T" \
    at_clock $T p11ca cert register --dir "$D" --wait 0 "$W/gina.pem"
before=$(count "")
should_fail 4 'rate limit reached: the sign-up limit \(rate_limit in \[ ca \] of ca\.cnf\) allows 2 per second and 2 were recorded in this second; not waiting for a slot' \
    "--wait 0: the 3rd registration in second T is refused, with the limit" \
    at_clock $T p11ca cert register --dir "$D" --wait 0 "$W/hank.pem"
assert_eq "$(count "")" "$before" "... nothing recorded"
csr ivan ivan people
check "an operator's issue in that full second is not held by the sign-up limit" \
    at_clock $T p11ca issue --dir "$D" --profile client --days 30 --wait 0 \
    --out "$W/ivan.pem" "$W/ivan.csr"
check "--wait 1: the 3rd registration waits for second T+1" \
    at_clock $T p11ca cert register --dir "$D" --wait 1 "$W/hank.pem"
assert_eq "$(count "where cn = 'hank' and recorded_at = $((T + 1))")" 1 \
    "... and is recorded in second T+1"
should_fail 1 'a number of seconds from 0 to 3600' "cert register --wait takes seconds" \
    p11ca cert register --dir "$D" --wait 3601 "$W/hank.pem"
sed -i 's|^rate_limit *=.*|rate_limit = 15|' "$D/ca.cnf"

# Bulk revocation: one audited action (an entry per certificate, the
# certificate's history, and one for the action with its filter and the
# certificates it revoked).
before=$(regsql "$D" "select max(seq) from audit")
p11ca cert revoke --dir "$D" --ou staff --reason cessationOfOperation --yes >"$TT/bulk" 2>&1
assert_grep 'revoked 1 certificate' "$TT/bulk" "bulk revoke by OU"
assert_eq "$(regsql "$D" "select group_concat(action, ' ') from (select action from audit where seq > $before order by seq) as a")" \
    "revoke revoke-bulk" "the bulk revocation: the certificate's revoke entry, then the action's"

# Audit chain.
check "audit verify: intact" p11ca audit verify --dir "$D"
p11ca audit --dir "$D" >"$TT/audit"
assert_grep 'revoke' "$TT/audit" "p11ca audit lists the actions"
regsql "$D" "update audit set details = 'edited' where seq = 3"
should_fail 2 'entry 3' "an edited audit entry is detected" p11ca audit verify --dir "$D"
done_testing

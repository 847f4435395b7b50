# SPDX-License-Identifier: Apache-2.0
# The CA suite, sourced by ca-token.sh (CA keys on the SoftHSM2 token) and
# ca-file.sh (CA keys in files) with CA_KEY_MODE=token|file: root and
# intermediate, every profile x every CSR key type SoftHSM2 has, checked by
# plain openssl; every policy rejection (exit 2, nothing recorded); rate
# limits (on the registry's test clock); CRLs; the key-hash check; 4 concurrent issuers; batches; and
# kill -9 of a batch at random points.
# shellcheck shell=sh disable=SC2086,SC2046
. "$top_srcdir/tests/lib/prov.sh"
command -v sqlite3 >/dev/null || plan_skip "sqlite3 is not installed"
: "${CA_KEY_MODE:?set CA_KEY_MODE to token or file}"

D=$TT/ca
mkdir -p "$D"
ROOT=$D/root
INTER=$D/inter

# --key-uri or --key for a CA key called $1.
cakey() {
    if [ "$CA_KEY_MODE" = token ]; then
        echo "--key-uri $TOKURI;object=$1"
    else
        echo "--key $TT/$1.key"
    fi
}
nrows() { sqlite3 "$1/registry.db" 'select count(*) from certs'; }
npem() { set -- "$1"/*.pem; [ -e "$1" ] && echo $# || echo 0; }
# The registry's form of a certificate's serial: lower case, no leading 0.
cert_serial() {
    openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' |
        sed 's/^0*//'
}
# in_registry DIR SERIAL: the SERIAL (as openssl prints it, or the
# registry's lower-case form) is in DIR's registry.
in_registry() {
    sqlite3 "$1/registry.db" "select count(*) from certs where serial='$(
        printf '%s' "$2" | tr 'A-F' 'a-f' | sed 's/^0*//')'"
}
# assert_text FILE "description" regex...: all of them in `x509 -text`.
assert_text() {
    f=$1
    desc=$2
    shift 2
    # -nameopt oneline: "CN = x" on every OpenSSL (3.2+ says "CN=x" by default).
    openssl x509 -in "$f" -noout -text -nameopt oneline >"$TT/text" 2>&1
    for re in "$@"; do
        if ! grep -Eq -- "$re" "$TT/text"; then
            not_ok "$desc (no /$re/)"
            diag "$(head -n 60 "$TT/text")"
            return
        fi
    done
    ok "$desc"
}
# A software CSR: swcsr NAME SUBJECT [openssl req args...]
swcsr() {
    n=$1
    s=$2
    shift 2
    openssl req -new -key "$TT/sw.key" -subj "$s" -out "$D/$n.csr" "$@" \
        2>/dev/null
}
set_cnf() { sed -i "s|^$2 *=.*|$2 = $3|" "$1/ca.cnf"; }
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$TT/sw.key" 2>/dev/null

diag "CA keys: $CA_KEY_MODE"

# --- Root -------------------------------------------------------------
if [ "$CA_KEY_MODE" = file ]; then
    # An encrypted key file: the passphrase comes from pin_source.
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 \
        -aes256 -pass "file:$PINFILE" -out "$TT/root.key" 2>/dev/null
    GEN_ROOT=
else
    GEN_ROOT="--generate ec:P-384"
fi
check "ca init: a root CA ($CA_KEY_MODE key)" \
    p11ca --pin-source "$PINFILE" ca init --dir "$ROOT" \
    --subject "/CN=p11ca Suite Root/O=p11ca tests" $(cakey root) $GEN_ROOT \
    --days 3650 --pathlen 1 \
    --name-constraints "permitted;DNS:.test,DNS:test,DNS:example.com,DNS:.example.com,DNS:.example.net,IP:192.0.2.0/255.255.255.0,email:.test,URI:.test"
check "the root verifies with plain openssl" \
    openssl verify -CAfile "$ROOT/ca.pem" "$ROOT/ca.pem"
assert_text "$ROOT/ca.pem" "root: CA:TRUE critical, pathlen, keyCertSign+cRLSign, SKI/AKI, name constraints" \
    'Basic Constraints: critical' 'CA:TRUE, pathlen:1' \
    'Key Usage: critical' 'Certificate Sign, CRL Sign' \
    'Subject Key Identifier' 'Authority Key Identifier' \
    'Name Constraints: critical' 'DNS:.example.com' 'ecdsa-with-SHA384'
want=$(openssl x509 -in "$ROOT/ca.pem" -noout -pubkey |
    openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)
assert_grep "^key_sha256 *= *$want\$" "$ROOT/ca.cnf" \
    "ca.cnf records the SHA-256 of the key's SubjectPublicKeyInfo"
assert_no_grep "$TEST_PIN" "$ROOT/ca.cnf" "ca.cnf holds no PIN (pin_source only)"
assert_grep '^# \[ profiles \]' "$ROOT/ca.cnf" "ca.cnf documents its syntax"
check "ca show --json" p11ca ca show --dir "$ROOT" --json
assert_grep "\"key_sha256\": \"$want\"" "$TT/out" "ca show gives the key hash"
should_fail 2 'holds a CA already' "ca init refuses an existing CA" \
    p11ca --pin-source "$PINFILE" ca init --dir "$ROOT" --subject /CN=again \
    $(cakey root2) --generate ec:P-256

# --- Intermediate -----------------------------------------------------
check "ca init --intermediate: key $CA_KEY_MODE, CSR out" \
    p11ca --pin-source "$PINFILE" ca init --dir "$INTER" --intermediate \
    --subject "/CN=p11ca Suite Intermediate/O=p11ca tests" \
    $(cakey inter) --generate rsa:3072
openssl req -in "$INTER/ca.csr" -noout -verify >"$TT/v" 2>&1
assert_grep 'verify OK' "$TT/v" "the intermediate's CSR is signed by its key"
swcsr other /CN=other
should_fail 2 'no certificate yet' "an intermediate without certificate does not sign" \
    p11ca issue --dir "$INTER" --profile client "$D/other.csr"
check "the root signs it with --profile intermediate" \
    p11ca issue --dir "$ROOT" --profile intermediate --out "$D/inter.pem" \
    "$INTER/ca.csr"
p11ca issue --dir "$ROOT" --profile client --out "$D/other.pem" \
    "$D/other.csr" >/dev/null 2>&1
should_fail 2 'not for this CA' "import-chain refuses a certificate for another key" \
    p11ca ca import-chain --dir "$INTER" "$D/other.pem" "$ROOT/ca.pem"
should_fail 2 'no self-signed root' "import-chain refuses a chain without its root" \
    p11ca ca import-chain --dir "$INTER" "$D/inter.pem"
check "ca import-chain installs it" \
    p11ca ca import-chain --dir "$INTER" "$D/inter.pem" "$ROOT/ca.pem"
should_fail 2 'certificate already' "import-chain is refused once done" \
    p11ca ca import-chain --dir "$INTER" "$D/inter.pem" "$ROOT/ca.pem"
check "the intermediate verifies under the root" \
    openssl verify -CAfile "$ROOT/ca.pem" "$INTER/ca.pem"
assert_text "$INTER/ca.pem" "intermediate: CA:TRUE pathlen 0, keyCertSign" \
    'CA:TRUE, pathlen:0' 'Certificate Sign, CRL Sign'

# CRL distribution point and AIA for what the intermediate issues.
sed -i 's|^# crl_url .*|crl_url = http://pki.test/inter.crl|
s|^# ocsp_url .*|ocsp_url = http://ocsp.pki.test|
s|^# issuers_url .*|issuers_url = http://pki.test/inter.pem|' "$INTER/ca.cnf"

# --- Every profile x every key type SoftHSM2 supports ------------------
KEYS="rsa2048 rsa3072 p256 p384 ed25519"
keygen c_rsa2048 rsa:2048
keygen c_rsa3072 rsa:3072
keygen c_p256 ec:P-256
keygen c_p384 ec:P-384
keygen c_ed25519 ed25519
for k in $KEYS; do
    openssl req $PROV -new -key "$(privuri "c_$k")" \
        -subj "/CN=$k.suite.test/O=p11ca tests" -out "$D/$k.csr" ||
        diag "CSR with the token key c_$k failed"
done
for k in $KEYS; do
    ku='Digital Signature$'
    case $k in rsa*) ku='Digital Signature, Key Encipherment' ;; esac
    c=$D/server-$k.pem
    check "server x $k: issued by the intermediate" \
        p11ca issue --dir "$INTER" --profile server \
        --san "DNS:$k.suite.test,DNS:$k.server.test,IP:192.0.2.7" \
        --out "$c" "$D/$k.csr"
    check "server x $k: verify -purpose sslserver" \
        openssl verify -purpose sslserver -CAfile "$ROOT/ca.pem" \
        -untrusted "$INTER/ca.pem" "$c"
    assert_text "$c" "server x $k: SAN, serverAuth, key usage, SKI/AKI, CDP, AIA" \
        "DNS:$k.suite.test, DNS:$k.server.test, IP Address:192.0.2.7" \
        'TLS Web Server Authentication' "$ku" 'CA:FALSE' \
        'Subject Key Identifier' 'Authority Key Identifier' \
        'sha256WithRSAEncryption' 'URI:http://pki.test/inter.crl' \
        'OCSP - URI:http://ocsp.pki.test' \
        'CA Issuers - URI:http://pki.test/inter.pem'

    c=$D/client-$k.pem
    check "client x $k: issued by the intermediate" \
        p11ca issue --dir "$INTER" --profile client --client-id "client-$k" \
        --out "$c" "$D/$k.csr"
    check "client x $k: verify -purpose sslclient" \
        openssl verify -purpose sslclient -CAfile "$ROOT/ca.pem" \
        -untrusted "$INTER/ca.pem" "$c"
    assert_text "$c" "client x $k: clientAuth, digitalSignature" \
        'TLS Web Client Authentication' 'Digital Signature' "CN = $k.suite.test"

    c=$D/ocsp-$k.pem
    check "ocsp x $k: issued by the intermediate" \
        p11ca issue --dir "$INTER" --profile ocsp \
        --out "$c" "$D/$k.csr"
    check "ocsp x $k: verifies" \
        openssl verify -CAfile "$ROOT/ca.pem" -untrusted "$INTER/ca.pem" "$c"
    assert_text "$c" "ocsp x $k: OCSPSigning, no-check" \
        'OCSP Signing' 'OCSP No Check' 'Digital Signature'

    c=$D/intermediate-$k.pem
    check "intermediate x $k: issued by the root" \
        p11ca issue --dir "$ROOT" --profile intermediate \
        --out "$c" "$D/$k.csr"
    check "intermediate x $k: verifies" \
        openssl verify -CAfile "$ROOT/ca.pem" "$c"
    assert_text "$c" "intermediate x $k: CA:TRUE pathlen 0, keyCertSign" \
        'CA:TRUE, pathlen:0' 'Certificate Sign, CRL Sign' 'ecdsa-with-SHA384'
done

# --- Output forms --------------------------------------------------------
swcsr bundle /CN=bundle.test
check "issue --chain --p7b" \
    p11ca issue --dir "$INTER" --profile server --san DNS:bundle.test \
    --chain --out "$D/bundle.pem" --p7b "$D/bundle.p7b" "$D/bundle.csr"
assert_eq "$(grep -c 'BEGIN CERTIFICATE' "$D/bundle.pem")" 3 \
    "--chain: leaf, intermediate and root"
check "the --chain bundle verifies as -untrusted" \
    openssl verify -purpose sslserver -CAfile "$ROOT/ca.pem" \
    -untrusted "$D/bundle.pem" "$D/bundle.pem"
openssl pkcs7 -inform DER -in "$D/bundle.p7b" -print_certs -noout \
    >"$TT/p7" 2>&1
assert_eq "$(grep -c '^subject=' "$TT/p7")" 3 "--p7b: a PKCS#7 of the three"
swcsr stdout /CN=stdout.test
p11ca issue --dir "$ROOT" --profile client - <"$D/stdout.csr" \
    >"$D/stdout.pem" 2>"$TT/err"
check "issue from standard input to standard output" \
    openssl verify -CAfile "$ROOT/ca.pem" "$D/stdout.pem"
swcsr na /CN=na.test
p11ca issue --dir "$ROOT" --profile client --not-activated \
    --out "$D/na.pem" "$D/na.csr" >/dev/null 2>&1
assert_eq "$(sqlite3 "$ROOT/registry.db" "select status || ' ' || profile || ' ' || client_id from certs where serial='$(cert_serial "$D/na.pem")'")" \
    "not-activated client na.test" "--not-activated is recorded, with profile and client ID"

# --- Policy: every rejection exits 2 and records nothing ----------------
before=$(nrows "$ROOT")
OUT=$D/rejected.pem
swcsr good /CN=good.test
head -c 3000 /dev/urandom >"$D/garbage.csr"
head -n 6 "$D/good.csr" >"$D/trunc.csr"
{ cat "$D/good.csr"; head -c 100000 /dev/zero | tr '\0' 'A'; } >"$D/huge.csr"
cat "$D/good.csr" "$D/other.csr" >"$D/two.csr"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 \
    -out "$TT/weak.key" 2>/dev/null
openssl req -new -key "$TT/weak.key" -subj /CN=weak.test -out "$D/weak.csr"
swcsr catrue /CN=catrue.test -addext "basicConstraints=critical,CA:TRUE"
swcsr badsan /CN=badsan.test -addext "subjectAltName=DNS:bad..name.test"
swcsr tamperme /CN=tamperme.test
openssl req -in "$D/tamperme.csr" -outform DER |
    sed 's/tamperme/tampered/' | openssl req -inform DER -out "$D/tampered.csr"
openssl req -in "$D/tampered.csr" -noout -verify >"$TT/v" 2>&1
assert_grep 'verify failure|bad signature|verify fail' "$TT/v" \
    "openssl says the tampered CSR's signature is bad"
rej() {
    re=$1
    desc=$2
    shift 2
    should_fail 2 "$re" "refused: $desc" \
        p11ca issue --dir "$ROOT" --out "$OUT" "$@"
}
rej 'unknown profile "nope"' "unknown profile" --profile nope "$D/good.csr"
rej 'not a certificate request' "garbage input" --profile client "$D/garbage.csr"
rej 'not a certificate request' "truncated PEM" --profile client "$D/trunc.csr"
rej 'too large' "a huge file" --profile client "$D/huge.csr"
should_fail 2 'too large' "refused: huge input on standard input" \
    sh -c "\"$top_builddir/src/p11ca\" issue --dir \"$ROOT\" --profile client - <\"$D/huge.csr\""
rej 'more than one' "two CSRs in one file" --profile client "$D/two.csr"
rej 'RSA 1024.*not allowed' "a weak key (RSA-1024)" --profile client "$D/weak.csr"
rej 'signature does not verify' "a bad CSR signature" --profile client "$D/tampered.csr"
rej 'asks for CA:TRUE' "a CSR asking for CA:TRUE" --profile server \
    --san DNS:catrue.test "$D/catrue.csr"
rej 'not a host name' "bad SAN syntax in the CSR" --profile client "$D/badsan.csr"
rej 'not a host name' "bad --san DNS name" --profile server \
    --san 'DNS:bad_host!.test' "$D/good.csr"
rej 'not valid|IP' "bad --san IP address" --profile server \
    --san 'IP:300.1.2.3' "$D/good.csr"
rej 'not an e-mail' "bad --san e-mail" --profile server \
    --san 'DNS:good.test,email:nobody' "$D/good.csr"
rej 'is not DNS:' "unknown --san type" --profile server --san 'foo:bar' \
    "$D/good.csr"
rej 'requires a subjectAltName' "server without SAN" --profile server \
    "$D/good.csr"
rej 'issues no subjectAltName' "SAN for a profile that forbids it" \
    --profile intermediate --san DNS:good.test "$D/good.csr"
rej 'max_days 397' "validity over max_days" --profile server \
    --san DNS:good.test --days 398 "$D/good.csr"
rej 'does not allow --subject' "--subject where subject_override = no" \
    --profile server --san DNS:good.test --subject /CN=other "$D/good.csr"
assert_eq "$(nrows "$ROOT")" "$before" "the registry is unchanged after the rejections"
if [ -e "$OUT" ] || ls "$D"/.rejected.pem.* >/dev/null 2>&1; then
    not_ok "no output file was left by the rejections"
else
    ok "no output file was left by the rejections"
fi

# --- A profile of one's own: allowed_dns, key_types, extensions ---------
sed -i 's/^ocsp *= profile_ocsp$/&\nweb = profile_web/' "$ROOT/ca.cnf"
cat >>"$ROOT/ca.cnf" <<'CNF'

[ profile_web ]
description      = web servers of example.com
key_usage        = digitalSignature
ext_key_usage    = serverAuth, clientAuth
san              = required
allowed_dns      = example.com, .example.net
key_types        = ec:P-256
default_days     = 30
max_days         = 90
subject_override = yes
extensions       = web_ext

[ web_ext ]
certificatePolicies = 2.23.140.1.2.1
CNF
check "a user-defined profile" \
    p11ca issue --dir "$ROOT" --profile web --subject "/CN=www override" \
    --san DNS:www.example.com,DNS:a.b.example.net --out "$D/web.pem" "$D/good.csr"
assert_text "$D/web.pem" "user profile: policies section, EKUs, subject override, 30 days" \
    'Policy: 2.23.140.1.2.1' \
    'TLS Web Server Authentication, TLS Web Client Authentication' \
    'Subject: CN = www override' 'DNS:www.example.com, DNS:a.b.example.net'
before=$(nrows "$ROOT")
rej 'not allowed by profile "web"' "a DNS name outside allowed_dns" \
    --profile web --san DNS:evil.test "$D/good.csr"
rej 'not allowed by profile "web"' "the bare domain of a .suffix entry" \
    --profile web --san DNS:example.net "$D/good.csr"
rej 'RSA 2048.*not allowed by profile "web"' "a key type outside key_types" \
    --profile web --san DNS:www.example.com "$D/rsa2048.csr"
assert_eq "$(nrows "$ROOT")" "$before" "nothing recorded for those either"

# --- Rate limits -----------------------------------------------------------
# The registry's clock is the test clock (at_clock): every command below
# starts in the same second T, whatever the speed of the machine.
T=2000000000
# An operator's own issuance is not held by the sign-up limit (rate_limit
# of [ ca ], 15 per second): 16 in one second are all issued.
for i in $(seq 1 16); do
    swcsr "burst$i" "/CN=burst$i.test"
done
burst_fail=0
for i in $(seq 1 16); do
    at_clock $T p11ca issue --dir "$ROOT" --profile client --out "$D/burst$i.pem" \
        "$D/burst$i.csr" >/dev/null 2>"$TT/burst.err" || {
        burst_fail=$((burst_fail + 1))
        diag "burst$i: $(cat "$TT/burst.err")"
    }
done
assert_eq "$burst_fail" 0 "16 p11ca issue in one second: none refused (no sign-up limit on issuance)"
assert_eq "$(sqlite3 "$ROOT/registry.db" "select count(*) from certs where recorded_at = $T")" 16 \
    "... all 16 recorded in that second"
mkdir -p "$D/burstb" "$D/burstbo"
for i in $(seq 1 20); do
    openssl req -new -key "$TT/sw.key" -subj "/CN=burstb$i.test" \
        -out "$D/burstb/b$i.csr"
done
check "issue --batch of 20 in the same second: none refused" \
    at_clock $T p11ca issue --dir "$ROOT" --profile client --batch "$D/burstb" \
    --outdir "$D/burstbo"
assert_eq "$(npem "$D/burstbo")" 20 "... 20 certificates written"

# A profile with a limit of its own: 2 per second.
sed -i 's/^ocsp *= profile_ocsp$/&\nlimited = profile_limited/' "$ROOT/ca.cnf"
cat >>"$ROOT/ca.cnf" <<'CNF'

[ profile_limited ]
description   = issuance held to 2 per second
key_usage     = digitalSignature
ext_key_usage = clientAuth
rate_limit    = 2
CNF
for i in 1 2 3 4 5 6 7; do
    swcsr "rate$i" "/CN=rate$i.test"
done
lim() { # lim CLOCK N [options...]: issue rateN under profile limited
    t=$1 n=$2
    shift 2
    at_clock "$t" p11ca issue --dir "$ROOT" --profile limited \
        --out "$D/rate$n.pem" "$@" "$D/rate$n.csr"
}
rec_at() { sqlite3 "$ROOT/registry.db" "select recorded_at from certs where serial='$(cert_serial "$1")'"; }
check "limited profile: the 1st in second T" lim $T 1 --wait 0
check "limited profile: the 2nd in second T" lim $T 2 --wait 0
before=$(nrows "$ROOT")
LIMRE='rate limit reached: the limit of profile "limited" \(rate_limit in \[ profile_limited \] of ca\.cnf\) allows 2 per second'
should_fail 4 "$LIMRE and 2 were recorded in this second; not waiting for a slot" \
    "--wait 0: the 3rd in second T is refused, the message names the limit" \
    lim $T 3 --wait 0
assert_eq "$(nrows "$ROOT")" "$before" "... nothing recorded"
if [ -e "$D/rate3.pem" ]; then not_ok "... no certificate written"; else ok "... no certificate written"; fi
check "--wait 3: the 3rd waits for second T+1 and is issued" lim $T 3 --wait 3
assert_eq "$(rec_at "$D/rate3.pem")" $((T + 1)) "... recorded in second T+1"
check "without --wait (default 5 s) the 4th is issued too" lim $T 4
assert_eq "$(rec_at "$D/rate4.pem")" $((T + 1)) "... in second T+1, the first with room"
check "the 5th in second T+2" lim $((T + 2)) 5 --wait 0
check "the 6th in second T+2" lim $((T + 2)) 6 --wait 0
before=$(nrows "$ROOT")
should_fail 4 "$LIMRE; waited 2 s and every second was full \(2 recorded in the last one\)" \
    "--wait 2 with seconds T, T+1 and T+2 full: refused, saying how long it waited" \
    lim $T 7 --wait 2
assert_eq "$(nrows "$ROOT")" "$before" "... nothing recorded"
should_fail 1 'a number of seconds from 0 to 3600' "--wait takes seconds" \
    p11ca issue --dir "$ROOT" --profile limited --wait soon "$D/rate7.csr"
# A batch under the limit: groups of at most 2, each in a second with room.
mkdir -p "$D/lbatch" "$D/lbout"
for i in 1 2 3 4 5; do
    openssl req -new -key "$TT/sw.key" -subj "/CN=lbatch$i.test" \
        -out "$D/lbatch/l$i.csr"
done
check "issue --batch of 5 under the limit of 2 per second" \
    at_clock $((T + 10)) p11ca issue --dir "$ROOT" --profile limited \
    --batch "$D/lbatch" --outdir "$D/lbout"
assert_eq "$(npem "$D/lbout")" 5 "... all 5 issued"
assert_eq "$(sqlite3 "$ROOT/registry.db" "select group_concat(n, ' ') from (select count(*) n from certs where profile = 'limited' and recorded_at >= $((T + 10)) group by recorded_at order by recorded_at)")" \
    "2 2 1" "... recorded 2, 2 and 1 in three seconds"

# --- CRL ----------------------------------------------------------------------
REV=$D/client-p256.pem
GOOD=$D/client-p384.pem
check "cert revoke --reason keyCompromise (registry)" \
    p11ca cert revoke --dir "$INTER" --reason keyCompromise "$(cert_serial "$REV")"
check "cert revoke with an invalidity date" \
    p11ca cert revoke --dir "$INTER" --reason superseded \
    --invalidity 2026-01-02T03:04:05Z "$(cert_serial "$D/client-ed25519.pem")"
check "p11ca crl signs a CRL ($CA_KEY_MODE key)" \
    p11ca crl --dir "$INTER" --out "$D/inter.crl"
openssl crl -in "$D/inter.crl" -CAfile "$INTER/ca.pem" -noout -verify >"$TT/v" 2>&1
assert_grep 'verify OK' "$TT/v" "openssl crl -verify accepts it"
openssl crl -in "$D/inter.crl" -noout -text >"$TT/crl.txt"
assert_grep 'Version 2' "$TT/crl.txt" "CRL v2"
assert_grep 'CRL Number' "$TT/crl.txt" "CRL number extension"
assert_grep 'Authority Key Identifier' "$TT/crl.txt" "CRL AKI"
assert_grep 'Key Compromise' "$TT/crl.txt" "reason code of the entry"
assert_grep 'Invalidity Date' "$TT/crl.txt" "invalidity date of the entry"
assert_grep "$(openssl x509 -in "$REV" -noout -serial | cut -d= -f2)" "$TT/crl.txt" \
    "the revoked serial is listed"
check "DIR/crl.pem holds the same CRL" cmp "$D/inter.crl" "$INTER/crl.pem"
cat "$INTER/ca.pem" "$ROOT/ca.pem" >"$D/chain.pem"
check "verify -crl_check accepts a good certificate" \
    openssl verify -crl_check -CAfile "$D/chain.pem" -CRLfile "$D/inter.crl" "$GOOD"
should_fail 2 'certificate revoked' "verify -crl_check rejects the revoked one" \
    openssl verify -crl_check -CAfile "$D/chain.pem" -CRLfile "$D/inter.crl" "$REV"
crlnum() {
    openssl crl -in "$1" -noout -crlnumber | cut -d= -f2 |
        sed 's/^0x//; s/^0*//'
}
n1=$(crlnum "$D/inter.crl")
p11ca crl --dir "$INTER" --out "$D/inter2.crl" 2>/dev/null
n2=$(crlnum "$D/inter2.crl")
assert_eq "$n1 $n2" "1 2" "CRL numbers increase"
check "an empty CRL of the root" p11ca crl --dir "$ROOT" --out "$D/root.crl"
check "verify -crl_check with the root's CRL" \
    openssl verify -crl_check -CAfile "$ROOT/ca.pem" -CRLfile "$D/root.crl" "$D/na.pem"

# --- The CA key check: the key must be the one of init ------------------
cp "$ROOT/ca.cnf" "$D/ca.cnf.saved"
set_cnf "$ROOT" key_sha256 "$(printf '%064d' 7)"
before=$(nrows "$ROOT")
should_fail 3 'not the key this CA was created with' \
    "a changed key hash in ca.cnf: issue refused" \
    p11ca issue --dir "$ROOT" --profile client --out "$OUT" "$D/good.csr"
should_fail 3 'not the key this CA was created with' \
    "a changed key hash: crl refused" p11ca crl --dir "$ROOT" --out "$OUT"
assert_eq "$(nrows "$ROOT")" "$before" "nothing recorded with the wrong key"
cp "$D/ca.cnf.saved" "$ROOT/ca.cnf"

# --- 4 processes issue at once ------------------------------------------------
for w in 1 2 3 4; do
    for i in 1 2 3 4 5; do
        swcsr "cc$w-$i" "/CN=cc$w-$i.test"
    done
done
before=$(nrows "$ROOT")
# No retries: a concurrent SoftHSM2 login may see no token for a moment
# (PITFALLS: its file backend rewrites the token around every login), and
# the token wait of the CA (token_wait, default 5 s) covers it.
worker() {
    for i in 1 2 3 4 5; do
        p11ca issue --dir "$ROOT" --profile client \
            --out "$D/cc$1-$i.pem" "$D/cc$1-$i.csr" >/dev/null \
            2>"$TT/cc$1-$i.err"
        echo "$?" >"$TT/cc$1-$i.rc"
    done
}
worker 1 & worker 2 & worker 3 & worker 4 &
wait
fails=$(cat "$TT"/cc*.rc | grep -vc '^0$')
assert_eq "$fails" 0 "4 concurrent issuers: all 20 issued"
if [ "$fails" -ne 0 ]; then
    for f in "$TT"/cc*.err; do
        [ -s "$f" ] && diag "$(basename "$f"): $(head -n 1 "$f")"
    done
fi
for f in "$D"/cc*.pem; do
    [ -e "$f" ] && cert_serial "$f"
done | sort >"$TT/cc.serials"
assert_eq "$(sort -u "$TT/cc.serials" | wc -l)" 20 "20 distinct serials"
missing=0
while read -r s; do
    [ "$(in_registry "$ROOT" "$s")" = 1 ] || missing=$((missing + 1))
done <"$TT/cc.serials"
assert_eq "$missing" 0 "every concurrent certificate is in the registry"
assert_eq "$(nrows "$ROOT")" "$((before + 20))" "and nothing else"

# --- Batches ---------------------------------------------------------------------
mkdir -p "$D/batch" "$D/bout" "$D/sout"
for i in 1 2 3 4 5 6 7 8; do
    openssl req -new -key "$TT/sw.key" -subj "/CN=batch$i.test" \
        -out "$D/batch/b$i.csr"
done
cp "$D/garbage.csr" "$D/batch/zz-garbage.csr"
before=$(nrows "$ROOT")
should_fail 2 'zz-garbage.csr.*not a certificate request' \
    "issue --batch DIR: the bad CSR is reported, the rest issued" \
    p11ca issue --dir "$ROOT" --profile client --batch "$D/batch" \
    --outdir "$D/bout"
assert_eq "$(npem "$D/bout")" 8 "8 certificates written"
assert_eq "$(nrows "$ROOT")" "$((before + 8))" "8 recorded"
bad=0
for f in "$D"/bout/*.pem; do
    s=$(basename "$f" .pem)
    # Named as openssl prints the serial (upper case, even length).
    [ "$(openssl x509 -in "$f" -noout -serial)" = "serial=$s" ] &&
        [ "$(in_registry "$ROOT" "$s")" = 1 ] ||
        bad=$((bad + 1))
done
assert_eq "$bad" 0 "each OUTDIR/SERIAL.pem is that certificate, recorded"
for i in 1 2 3; do
    openssl req -new -key "$TT/sw.key" -subj "/CN=stream$i.test"
done >"$D/stream.pem"
check "issue --batch - (PEM CSRs on standard input)" \
    sh -c "\"$top_builddir/src/p11ca\" issue --dir \"$ROOT\" --profile client --batch - --outdir \"$D/sout\" <\"$D/stream.pem\""
assert_eq "$(npem "$D/sout")" 3 "3 certificates from the stream"

# --- The CA token goes away in the middle of a batch --------------------------
# (the fault module closes every session and loses the login at the 3rd
# signature): the CA logs in again by itself and issues every certificate.
if [ "$CA_KEY_MODE" = token ]; then
    mkdir -p "$D/rbatch" "$D/rout"
    for i in 1 2 3 4 5 6 7 8; do
        openssl req -new -key "$TT/sw.key" -subj "/CN=removal$i.test" \
            -out "$D/rbatch/r$i.csr"
    done
    before=$(nrows "$ROOT")
    check "issue --batch through a removal of the CA token" \
        env FAULTY_PKCS11_MODULE="$SOFTHSM_MODULE" FAULTY_PKCS11_LOG="$TT/removed.log" \
        FAULTY_PKCS11_FAULTS=C_Sign:3:CKR_DEVICE_REMOVED \
        "$top_builddir/src/p11ca" --module "$top_builddir/tests/faulty-pkcs11/.libs/libfaulty-pkcs11.so" \
        issue --dir "$ROOT" --profile client --batch "$D/rbatch" --outdir "$D/rout"
    assert_eq "$(grep -c 'CKR_DEVICE_REMOVED \[injected\]' "$TT/removed.log")" 1 \
        "... the removal was injected"
    assert_eq "$(npem "$D/rout")" 8 "... all 8 certificates written"
    assert_eq "$(nrows "$ROOT")" "$((before + 8))" "... and recorded"
    bad=0
    for f in "$D"/rout/*.pem; do
        openssl verify -CAfile "$ROOT/ca.pem" "$f" >/dev/null 2>&1 || bad=$((bad + 1))
    done
    assert_eq "$bad" 0 "... every one verifies against the CA"
fi

# The same batch again: every client ID is held by an activated certificate,
# and each refusal says so (it used to name the new serial as "not found").
mkdir -p "$D/again" "$D/aout"
cp "$D"/batch/b*.csr "$D/again/"
before=$(nrows "$ROOT")
should_fail 2 'b1.csr: client ID "batch1.test" is held by activated certificate [0-9A-F]+ of CA [0-9]+: deactivate or revoke it first' \
    "issue --batch of client IDs already held: each refusal names the holder" \
    p11ca issue --dir "$ROOT" --profile client --batch "$D/again" --outdir "$D/aout"
assert_eq "$(nrows "$ROOT")" "$before" "... and nothing is recorded"

# --- kill -9 of a batch at random points ---------------------------------------
mkdir -p "$D/kbatch"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$TT/k.key" 2>/dev/null
for i in $(seq 1 250); do
    openssl req -new -key "$TT/k.key" -subj "/CN=kill$i.test" \
        -out "$D/kbatch/k$(printf %03d "$i").csr"
done
token_alive() {
    p11ca key list --no-login "$TOKURI" 2>/dev/null | grep -q 'label: *root'
}
for round in 1 2 3 4 5 6 7 8 9 10; do
    K=$D/kout$round
    mkdir -p "$K"
    [ "$CA_KEY_MODE" = token ] && rm -rf "$TT/tokens.snap" &&
        cp -a "$TT/tokens" "$TT/tokens.snap"
    ms=$(($(od -An -N2 -tu2 /dev/urandom) % 451 + 50))
    "$top_builddir/src/p11ca" issue --dir "$ROOT" --profile client \
        --not-activated --batch "$D/kbatch" --outdir "$K" \
        >/dev/null 2>&1 &
    pid=$!
    sleep "$(printf '0.%03d' "$ms")"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    if [ "$CA_KEY_MODE" = token ] && ! token_alive; then
        diag "round $round: the kill hit SoftHSM2 rewriting its token (PITFALLS): token restored from the snapshot"
        rm -rf "$TT/tokens"
        cp -a "$TT/tokens.snap" "$TT/tokens"
    fi
    files=0
    lacking=0
    for f in "$K"/*.pem "$K"/.*.pem.*; do
        [ -e "$f" ] || continue
        files=$((files + 1))
        s=$(basename "$f" | sed 's/^\.//; s/\.pem.*//')
        [ "$(in_registry "$ROOT" "$s")" = 1 ] || lacking=$((lacking + 1))
    done
    integ=$(sqlite3 "$ROOT/registry.db" 'pragma integrity_check' 2>&1)
    if [ "$lacking" -eq 0 ] && [ "$integ" = ok ]; then
        ok "kill -9 after ${ms}ms: $files certificate file(s), all in the registry; database ok"
    else
        not_ok "kill -9 after ${ms}ms: $lacking of $files files not in the registry; integrity: $integ"
    fi
done
check "after the kills, a batch runs to the end" \
    p11ca issue --dir "$ROOT" --profile client --not-activated \
    --batch "$D/kbatch" --outdir "$D/kout1"
assert_eq "$(sqlite3 "$ROOT/registry.db" 'pragma integrity_check')" ok \
    "the registry passes integrity_check"

echo "1..$TAP_N"
done_testing

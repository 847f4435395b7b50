#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# p11ca enroll --server against p11ca serve: an operator makes a one-time
# code with curl, a smartcard user (a second SoftHSM2 token, the "card")
# enrolls with it; the certificate, the key and the chain are checked on
# the card with p11tool, pkcs11-tool and openssl verify, the registry shows
# it activated; then --renew and --rekey over mTLS with the card's key.
# Error paths: bad options and URLs, a code file others can read, the
# service down, a server certificate not trusted, a wrong and a used code
# (a clear error and nothing left on the card), a revoked card.
set -u
. "$top_srcdir/tests/integration/serve-setup.sh"
command -v p11tool >/dev/null || plan_skip "p11tool is not installed"
command -v pkcs11-tool >/dev/null || plan_skip "pkcs11-tool is not installed"

plan 61

serve_config ""
serve_start || { echo "Bail out! the service did not start"; exit 1; }
U=https://127.0.0.1:$PORT
new_token card-ann || { echo "Bail out! no card"; exit 1; }
new_token card-zed || { echo "Bail out! no second card"; exit 1; }
CARD="pkcs11:token=card-ann;pin-source=$PINFILE"
ZED="pkcs11:token=card-zed;pin-source=$PINFILE"

# objects CARD: what pkcs11-tool lists on the card (logged in).
objects() {
    pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$1" --login \
        --pin "$TEST_PIN" --list-objects 2>/dev/null
}
# card_empty CARD DESC: no object at all on the card.
card_empty() {
    if ! objects "$1" | grep -Eq '^(Private Key|Public Key|Certificate) Object'; then
        ok "$2"
    else
        not_ok "$2"
        diag "$(objects "$1")"
    fi
}
# ids CARD CLASS LABEL: the ID pkcs11-tool shows for the object.
ids() {
    objects "$1" | awk -v c="$2" -v l="$3" '
        $0 ~ "^" c " Object" { in_c = 1; next }
        /Object/ { in_c = 0 }
        in_c && $1 == "label:" { lab = $2 }
        in_c && $1 == "ID:" && lab == l { print $2 }'
}
# mkcode FILE JSON: an enrollment code from operator bob into FILE (600).
mkcode() {
    api bob POST /v1/enrollment-codes -H 'Content-Type: application/json' \
        -d "$2"
    if [ "$CODE" = 201 ]; then
        (umask 077 && jq -j .code "$D/body" >"$1")
    else
        diag "POST /v1/enrollment-codes: $CODE $(cat "$D/body")"
        return 1
    fi
}
penroll() { p11ca enroll "$@"; }
ERRS=$D/all-stderr
: >"$ERRS"
keep_err() { cat "$TT/err" >>"$ERRS"; }

# --- Options ------------------------------------------------------------
should_fail 1 '--server and --ca exclude each other' \
    "--server with --ca is refused as a usage error" \
    penroll --server "$U" --ca "$CA" --code x --token "$CARD"
should_fail 1 'give --code-file FILE' "--server without a code: usage error" \
    penroll --server "$U" --token "$CARD" --client-id ann
should_fail 1 '--code, --code-file and --cacert go with --server' \
    "--code without --server: usage error" \
    penroll --ca "$CA" --profile client --code x --token "$CARD"
should_fail 1 '--resume is not supported with --server' \
    "--resume with --server: usage error" \
    penroll --server "$U" --code x --resume --token "$CARD" --client-id ann
should_fail 1 'no --code' "--renew with a code: usage error" \
    penroll --server "$U" --code x --renew --token "$CARD"
should_fail 1 'give https://HOST\[:PORT\]' "an http:// URL is refused" \
    penroll --server "http://127.0.0.1:$PORT" --code x --token "$CARD" \
    --client-id ann
should_fail 1 'without a path, query or user' "a URL with a path is refused" \
    penroll --server "$U/v1" --code x --token "$CARD" --client-id ann
should_fail 1 'give https://HOST\[:PORT\]' "a URL that does not parse is refused" \
    penroll --server "https://[::1" --code x --token "$CARD" --client-id ann
printf 'abc\n' >"$D/open.code"
chmod 644 "$D/open.code"
should_fail 2 'group or others may read it' \
    "a code file others can read is refused" \
    penroll --server "$U" --code-file "$D/open.code" --token "$CARD" \
    --client-id ann
card_empty card-ann "no option error left anything on the card"

# --- The service down, a server not trusted -----------------------------
mkcode "$D/ann.code" '{"profile":"client","client_id":"ann","expires_in":600}' ||
    { echo "Bail out! no code"; exit 1; }
ANNCODE=$(cat "$D/ann.code")
DOWN=$(free_port)
should_fail 2 "cannot connect to 127\\.0\\.0\\.1:$DOWN: connection refused or unreachable" \
    "the service down: a clear error naming it" \
    penroll --server "https://127.0.0.1:$DOWN" --cacert "$CA/ca.pem" \
    --code-file "$D/ann.code" --token "$CARD" --client-id ann
keep_err
should_fail 2 "TLS certificate of 127\\.0\\.0\\.1:$PORT is not trusted \\([a-z -]+\\): nothing was sent\\. Give --cacert" \
    "a server certificate of a CA not in --cacert is refused" \
    penroll --server "$U" --cacert "$D/fleet-ca.pem" \
    --code-file "$D/ann.code" --token "$CARD" --client-id ann
keep_err
should_fail 2 'is not trusted' \
    "without --cacert the system's store is used: the test CA is not in it" \
    penroll --server "https://localhost:$PORT" --code-file "$D/ann.code" \
    --token "$CARD" --client-id ann
keep_err
# .invalid never resolves (RFC 6761).
should_fail 2 'cannot resolve nonexistent\.invalid' \
    "a host name that does not resolve: a clear error" \
    penroll --server "https://nonexistent.invalid:$PORT" --cacert "$CA/ca.pem" \
    --code-file "$D/ann.code" --token "$CARD" --client-id ann
keep_err
# 127.1 reaches 127.0.0.1 but is a host name the certificate does not carry.
should_fail 2 "TLS certificate of 127\\.1:$PORT is not trusted \\(hostname mismatch\\)" \
    "a server certificate for another name is refused" \
    penroll --server "https://127.1:$PORT" --cacert "$CA/ca.pem" \
    --code-file "$D/ann.code" --token "$CARD" --client-id ann
keep_err
card_empty card-ann "the service down or not trusted: no key was made"

# --- A wrong code ---------------------------------------------------------
(umask 077 && printf 'not-a-code-0123\n' >"$D/bad.code")
should_fail 2 "enrollment refused: 127\\.0\\.0\\.1:$PORT answered 403 \\(forbidden\\): the enrollment code is unknown, used or expired" \
    "a wrong code: the service's problem detail and code" \
    penroll --server "$U" --cacert "$CA/ca.pem" --code-file "$D/bad.code" \
    --token "$CARD" --client-id ann
keep_err
assert_grep 'deleted key "ann" again: the service issued no certificate for it' \
    "$TT/err" "... and the key made for it is deleted again"
card_empty card-ann "... so nothing is left on the card"
# A code for ann, a CSR for another name: refused, the code not spent.
should_fail 2 'answered 403 \(forbidden\): the enrollment code is for client ID "ann", not "bob"' \
    "a client ID other than the code's is refused" \
    penroll --server "$U" --cacert "$CA/ca.pem" --code-file "$D/ann.code" \
    --token "$CARD" --client-id bob
keep_err
card_empty card-ann "... and nothing is left on the card"

# --- Enrollment with the code ---------------------------------------------
if penroll --server "$U" --cacert "$CA/ca.pem" --code-file "$D/ann.code" \
    --token "$CARD" --client-id ann --with-chain >"$D/enroll.out" \
    2>"$TT/err"; then
    ok "p11ca enroll --server --code-file: enrolled"
else
    not_ok "p11ca enroll --server --code-file: enrolled"
    diag "$(cat "$TT/err")"
    diag "$(tail -n 5 "$D/serve.log")"
fi
keep_err
assert_grep "^enrolled \"ann\" on .*certificate [0-9A-F]+ for CN=ann .*from the service at 127\\.0\\.0\\.1:$PORT" \
    "$D/enroll.out" "the report names the certificate and the service"
S1=$(sed -n 's/.*certificate \([0-9A-F]*\) for.*/\1/p' "$D/enroll.out")
if p11tool --export "pkcs11:token=card-ann;object=ann;type=cert" \
    >"$D/ann1.pem" 2>/dev/null &&
    [ "$(cert_serial "$D/ann1.pem")" = "$S1" ]; then
    ok "p11tool reads the certificate from the card"
else
    not_ok "p11tool reads the certificate from the card"
fi
KID=$(ids card-ann "Private Key" ann)
CID=$(ids card-ann Certificate ann)
if [ -n "$KID" ] && [ "$KID" = "$CID" ]; then
    ok "pkcs11-tool: the certificate has the key's CKA_ID ($KID)"
else
    not_ok "pkcs11-tool: the certificate has the key's CKA_ID ('$KID' '$CID')"
    diag "$(objects card-ann)"
fi
if p11tool --export "pkcs11:token=card-ann;object=Serve%20Test%20CA;type=cert" \
    >"$D/chain.pem" 2>/dev/null &&
    openssl verify -CAfile "$D/chain.pem" "$D/ann1.pem" >/dev/null 2>&1; then
    ok "openssl verify: the certificate against the chain written to the card"
else
    not_ok "openssl verify: the certificate against the chain written to the card"
fi
if openssl x509 -in "$D/ann1.pem" -noout -pubkey >"$D/cert.pub" &&
    pkcs11-tool --module "$SOFTHSM_MODULE" --token-label card-ann \
        --read-object --type pubkey --label ann 2>/dev/null |
    openssl pkey -pubin -inform DER >"$D/card.pub" 2>/dev/null &&
    cmp -s "$D/cert.pub" "$D/card.pub"; then
    ok "the certificate carries the card's public key"
else
    not_ok "the certificate carries the card's public key"
fi
api carol GET "/v1/certs/$S1"
expect 200 '[.status, .client_id, .profile] | join(" ")' \
    "activated ann client" "the registry: activated, client ID ann, profile client"

# --- The code is spent ------------------------------------------------------
should_fail 2 'answered 403 \(forbidden\): the enrollment code is unknown, used or expired' \
    "the code again on another card: refused" \
    penroll --server "$U" --cacert "$CA/ca.pem" --code-file "$D/ann.code" \
    --token "$ZED" --client-id ann
keep_err
card_empty card-zed "... and nothing is left on that card"
should_fail 2 'key "ann" with a certificate already: use --renew or --rekey' \
    "the card enrolled already: refused before anything is sent" \
    penroll --server "$U" --cacert "$CA/ca.pem" --code-file "$D/bad.code" \
    --token "$CARD" --client-id ann

# --- Renewal over mTLS ------------------------------------------------------
if penroll --server "$U" --cacert "$CA/ca.pem" --renew --token "$CARD" \
    --label ann >"$D/renew.out" 2>"$TT/err"; then
    ok "p11ca enroll --server --renew: renewed"
else
    not_ok "p11ca enroll --server --renew: renewed"
    diag "$(cat "$TT/err")"
    diag "$(tail -n 5 "$D/serve.log")"
fi
keep_err
S2=$(sed -n 's/.*certificate \([0-9A-F]*\) for.*/\1/p' "$D/renew.out")
assert_grep "^  replaces: +$S1\$" "$D/renew.out" "the report says which certificate it replaces"
if grep -Eq "\"POST /v1/renew\" 201 serial=$S1 " "$D/access.log"; then
    ok "the service saw the renewal over mTLS with the card's certificate $S1"
else
    not_ok "the service saw the renewal over mTLS with the card's certificate"
    diag "$(grep renew "$D/access.log")"
fi
if p11tool --export "pkcs11:token=card-ann;object=ann;type=cert" \
    >"$D/ann2.pem" 2>/dev/null && [ -n "$S2" ] &&
    [ "$(cert_serial "$D/ann2.pem")" = "$S2" ] && [ "$S2" != "$S1" ] &&
    [ "$(objects card-ann | grep -c '^Certificate Object.*X.509 cert')" = 2 ] &&
    [ "$(ids card-ann "Private Key" ann)" = "$KID" ]; then
    ok "the card holds the new certificate (and the CA's), the same key"
else
    not_ok "the card holds the new certificate (and the CA's), the same key"
    diag "$(objects card-ann)"
fi
check "openssl verify: the renewed certificate" \
    openssl verify -CAfile "$CA/ca.pem" "$D/ann2.pem"
# The path names the registry's form of the serial (no leading zeros).
S2R=$(printf '%s' "$S2" | sed 's/^0*//')
if grep -Eiq "\"GET /v1/certs/0*$S2R\" 200 serial=$S2 " "$D/access.log"; then
    ok "the card confirmed the renewal: one connection with the new certificate $S2"
else
    not_ok "the card confirmed the renewal with the new certificate"
    diag "$(grep "$S2" "$D/access.log")"
fi
api carol GET "/v1/certs/$S2"
expect 200 '[.status, .replaces] | join(" ")' "activated $(jq -rn --arg s "$S1" '$s')" \
    "the registry: the new certificate activated, linked to the old one"
api carol GET "/v1/certs/$S1"
expect 200 .status revoked "the registry: the old certificate revoked (superseded)"

# --- Re-key over mTLS -------------------------------------------------------
if penroll --server "$U" --cacert "$CA/ca.pem" --rekey --token "$CARD" \
    --label ann >"$D/rekey.out" 2>"$TT/err"; then
    ok "p11ca enroll --server --rekey: rekeyed"
else
    not_ok "p11ca enroll --server --rekey: rekeyed"
    diag "$(cat "$TT/err")"
    diag "$(tail -n 5 "$D/serve.log")"
fi
keep_err
S3=$(sed -n 's/.*certificate \([0-9A-F]*\) for.*/\1/p' "$D/rekey.out")
KID3=$(ids card-ann "Private Key" ann)
if p11tool --export "pkcs11:token=card-ann;object=ann;type=cert" \
    >"$D/ann3.pem" 2>/dev/null && [ -n "$S3" ] &&
    [ "$(cert_serial "$D/ann3.pem")" = "$S3" ] && [ -n "$KID3" ] &&
    [ "$KID3" != "$KID" ] && [ "$(ids card-ann Certificate ann)" = "$KID3" ]; then
    ok "the card holds a new key and its certificate under the label"
else
    not_ok "the card holds a new key and its certificate under the label"
    diag "$(objects card-ann)"
fi
OLD=ann.old-$(printf %s "$S2" | cut -c1-8)
if [ "$(objects card-ann | grep -c "label: *$OLD\$")" = 3 ]; then
    ok "the old key pair and certificate stay on the card as $OLD"
else
    not_ok "the old key and certificate stay on the card as ann.old-SERIAL"
    diag "$(objects card-ann | grep label)"
fi
if grep -Eq "\"POST /v1/renew\" 201 serial=$S2 " "$D/access.log"; then
    ok "the re-key was authenticated by the card's old certificate $S2"
else
    not_ok "the re-key was authenticated by the card's old certificate"
    diag "$(grep renew "$D/access.log")"
fi
check "openssl verify: the re-keyed certificate" \
    openssl verify -CAfile "$CA/ca.pem" "$D/ann3.pem"
api carol GET "/v1/certs/$S3"
expect 200 .status activated "the registry: the re-keyed certificate activated"

# --- Renewal refused --------------------------------------------------------
objects card-ann >"$D/before"
should_fail 2 'is not trusted' "a renewal against an untrusted server is refused" \
    penroll --server "$U" --cacert "$D/fleet-ca.pem" --rekey --token "$CARD" \
    --label ann
keep_err
should_fail 2 "cannot connect to 127\\.0\\.0\\.1:$DOWN" \
    "a renewal with the service down: a clear error" \
    penroll --server "https://127.0.0.1:$DOWN" --cacert "$CA/ca.pem" --renew \
    --token "$CARD" --label ann
keep_err
api bob POST "/v1/certs/$S3/revoke" -H 'Content-Type: application/json' \
    -d '{"reason":"keyCompromise"}'
expect 200 .status revoked "an operator revokes the card's certificate"
should_fail 2 "127\\.0\\.0\\.1:$PORT" \
    "a revoked card cannot re-key: refused before a key is made" \
    penroll --server "$U" --cacert "$CA/ca.pem" --rekey --token "$CARD" \
    --label ann
keep_err
objects card-ann >"$D/after"
if cmp -s "$D/before" "$D/after"; then
    ok "refused renewals changed nothing on the card"
else
    not_ok "refused renewals changed nothing on the card"
    diag "$(diff "$D/before" "$D/after")"
fi

# --- --code on the command line, --type -------------------------------------
mkcode "$D/zoe.code" '{"profile":"client","client_id":"zoe"}' ||
    { echo "Bail out! no code for zoe"; exit 1; }
if penroll --server "$U" --cacert "$CA/ca.pem" --code "$(cat "$D/zoe.code")" \
    --type ec:P-384 --token "$ZED" --client-id zoe >"$D/zoe.out" 2>"$TT/err" &&
    p11tool --export "pkcs11:token=card-zed;object=zoe;type=cert" \
        >"$D/zoe.pem" 2>/dev/null &&
    openssl x509 -in "$D/zoe.pem" -noout -text | grep -q 'NIST CURVE: P-384'; then
    ok "--code CODE and --type ec:P-384: a P-384 key and its certificate on the card"
else
    not_ok "--code CODE and --type ec:P-384: a P-384 key and its certificate on the card"
    diag "$(cat "$TT/err")"
fi
keep_err
assert_no_grep "$(cat "$D/zoe.code")" "$D/zoe.out" "... the code is not in the report"

# --- --cleanup of what an earlier run left ------------------------------------
"$P11CA" --pin-source "$PINFILE" key gen --uri "pkcs11:token=card-zed;object=zed" \
    --type ec:P-256 >/dev/null || { echo "Bail out! no key on card-zed"; exit 1; }
OLDZ=$(ids card-zed "Private Key" zed)
mkcode "$D/zed.code" '{"profile":"client","client_id":"zed"}' ||
    { echo "Bail out! no code for zed"; exit 1; }
should_fail 2 'holds key "zed" \(id [0-9a-f]+\) without a certificate.*--cleanup' \
    "a key left under the label: refused before anything is sent, --cleanup offered" \
    penroll --server "$U" --cacert "$CA/ca.pem" --code-file "$D/zed.code" \
    --token "$ZED" --client-id zed
keep_err
if penroll --server "$U" --cacert "$CA/ca.pem" --code-file "$D/zed.code" \
    --token "$ZED" --client-id zed --cleanup >"$D/zed.out" 2>"$TT/err" &&
    grep -q 'cannot revoke a certificate the service may have issued' "$TT/err" &&
    [ -n "$(ids card-zed Certificate zed)" ] &&
    [ "$(ids card-zed "Private Key" zed)" = "$(ids card-zed Certificate zed)" ] &&
    [ "$(ids card-zed "Private Key" zed)" != "$OLDZ" ]; then
    ok "--cleanup: the old key deleted (saying what it cannot revoke), a new one enrolled"
else
    not_ok "--cleanup: the old key deleted (saying what it cannot revoke), a new one enrolled"
    diag "$(cat "$TT/err")"
    diag "$(objects card-zed)"
fi
keep_err

# --- The sign-up limit: 429 with Retry-After --------------------------------
serve_stop
serve_config "signup_limit = 0/1"
serve_start || { echo "Bail out! the service did not restart"; exit 1; }
U=https://127.0.0.1:$PORT
should_fail 2 'answered 403 \(forbidden\)' \
    "a sign-up limit of one: a wrong code is refused (403) and does not take it" \
    penroll --server "$U" --cacert "$CA/ca.pem" --code-file "$D/bad.code" \
    --token "$ZED" --client-id zack
keep_err
mkcode "$D/zia.code" '{"profile":"client","client_id":"zia"}' ||
    { echo "Bail out! no code for zia"; exit 1; }
check "... the one sign-up is left for a real code" \
    penroll --server "$U" --cacert "$CA/ca.pem" --code-file "$D/zia.code" \
    --token "$ZED" --client-id zia
keep_err
should_fail 4 "answered 429 \\(rate-limited\\): sign-up limit of CA [0-9]+ reached.* \\(Retry-After: [0-9]+\\)\$" \
    "the next enrollment: 429, the problem and Retry-After shown" \
    penroll --server "$U" --cacert "$CA/ca.pem" --code-file "$D/bad.code" \
    --token "$ZED" --client-id zack
keep_err
if ! objects card-zed | grep -q 'label: *zack$'; then
    ok "... and nothing of it is left on the card"
else
    not_ok "... and nothing of it is left on the card"
    diag "$(objects card-zed)"
fi

# --- Secrets ----------------------------------------------------------------
assert_no_grep "$ANNCODE|$TEST_PIN" "$ERRS" "no message showed the code or the PIN"
assert_no_grep "$ANNCODE|$TEST_PIN" "$D/enroll.out" "the report shows neither"

serve_stop
if [ "$SERVE_RC" = 0 ]; then
    ok "the service stops with status 0"
else
    not_ok "the service stops with status 0 ($SERVE_RC)"
    diag "$(tail -n 20 "$D/serve.log")"
fi
done_testing

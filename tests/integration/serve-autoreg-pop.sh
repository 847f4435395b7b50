#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Auto-registration only after proof of possession: a client that presents
# a real device's certificate with another key (its handshake fails at
# CertificateVerify) records nothing and takes nothing of the CA's sign-up
# limit, with TLS 1.3 and 1.2; the device itself, with its key, is then
# registered and served on its first connection.  With the CA's default
# status registered-not-activated, a new device completes its handshake,
# is recorded, and its request gets 403 not-activated; past the sign-up
# limit a new device's request gets 429.  Deterministic: the CA's bucket
# never refills (0/2), waits are for states.
set -u
. "$top_srcdir/tests/integration/serve-setup.sh"

p11ca cert register-ca --dir "$CA" --name fleet "$D/fleet-ca.pem" >"$D/reg" &&
    FLEET_ID=$(sed 's/registered CA //' "$D/reg")
[ -n "${FLEET_ID:-}" ] || { echo "Bail out! cannot register the fleet CA"; exit 1; }
# shellcheck disable=SC2034 # read by serve_config
SERVE_SECTIONS="[ serve_signup ]
ca.$FLEET_ID = 0/2"
serve_config "signup_limits = serve_signup"
serve_start || { echo "Bail out! the service did not start"; exit 1; }
api alice PATCH "/v1/cas/$FLEET_ID" -d '{"auto_register": true, "auto_status": "activated"}'
expect 200 '"\(.auto_register) \(.auto_status)"' "true activated" \
    "the fleet CA: auto-registration on, status activated, 2 sign-ups at most"

# hexblock NAME: the hex digits of "NAME:" in openssl's -text output.
hexblock() {
    awk -v s="$1" '$0 ~ "^"s":" {f=1; next} /^[A-Za-z]/ {f=0} f' | tr -d ' :\n'
}
# wrong_key NAME: NAME-wrong.key, a P-256 key file whose public half is the
# one of NAME.pem and whose private half is another key's.  OpenSSL's
# clients check only the public halves against the certificate, so the
# client presents NAME.pem and signs its CertificateVerify with the other
# key: what someone who holds a device's certificate, not its key, can do.
wrong_key() {
    openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 \
        -out "$D/$1-other.key" 2>/dev/null &&
        priv=$(openssl ec -in "$D/$1-other.key" -text -noout 2>/dev/null | hexblock priv) &&
        pub=$(openssl x509 -in "$D/$1.pem" -noout -pubkey |
            openssl ec -pubin -text -noout 2>/dev/null | hexblock pub) &&
        printf '%s\n' 'asn1=SEQUENCE:k' '[k]' 'v=INTEGER:1' \
            "p=FORMAT:HEX,OCTETSTRING:$priv" 'c=EXPLICIT:0,OID:prime256v1' \
            "q=EXPLICIT:1,FORMAT:HEX,BITSTRING:$pub" >"$D/$1-wrong.cnf" &&
        openssl asn1parse -genconf "$D/$1-wrong.cnf" -noout -out "$D/$1-wrong.der" &&
        {
            echo '-----BEGIN EC PRIVATE KEY-----'
            base64 "$D/$1-wrong.der"
            echo '-----END EC PRIVATE KEY-----'
        } >"$D/$1-wrong.key" &&
        [ "$(openssl pkey -in "$D/$1-wrong.key" -pubout)" = \
            "$(openssl x509 -in "$D/$1.pem" -noout -pubkey)" ]
}

fleet_device victim
VICTIM=$(cert_serial "$D/victim.pem")
wrong_key victim || { echo "Bail out! cannot make the wrong key"; exit 1; }
n0=$(p11ca cert list --dir "$CA" --count)
h0=$(metric p11ca_tls_client_certificates_total)
bad=0
for proto in tls1_3 tls1_3 tls1_3 tls1_2 tls1_2; do
    tls_client "$proto" "$D/victim-wrong.key" "$D/victim.pem" "/v1/certs/$VICTIM"
    if grep -q '^HTTP/1.1' "$D/client.log" ||
        ! grep -q 'alert decrypt error' "$D/client.log"; then
        bad=$((bad + 1))
        diag "$proto: $(grep -iE 'alert|error|HTTP/' "$D/client.log" | head -n 3)"
    fi
done
assert_eq "$bad" 0 \
    "the victim's certificate with another key (5 times, TLS 1.3 and 1.2): the handshake fails (alert decrypt error), nothing served"
assert_eq "$(metric p11ca_tls_client_certificates_total)" "$((h0 + 5))" \
    "... after the service checked the certificate each time"
should_fail 2 'no certificate with serial' "... and the registry has no entry for it" \
    p11ca cert show --dir "$CA" "$VICTIM"
assert_eq "$(p11ca cert list --dir "$CA" --count)" "$n0" "... nothing is recorded"
assert_eq "$(metric 'p11ca_signups_total{kind="auto-registration"}')" 0 \
    "... no auto-registration was tried"
assert_no_grep 'auto-regist' "$D/serve.log" "... and the service's log names none"

# The device itself, with its key: the bucket (2) is whole.
tls_client tls1_3 "$D/victim.key" "$D/victim.pem" "/v1/certs/$VICTIM"
assert_grep '^HTTP/1.1 200 OK' "$D/client.log" \
    "the device with its own key is registered and served on its first connection"
assert_grep "\"serial\":\"$VICTIM\",\"status\":\"activated\",\"ca_id\":$FLEET_ID" \
    "$D/client.log" "... and reads its new entry: activated"

# --- Default status registered-not-activated -----------------------------------------
api alice PATCH "/v1/cas/$FLEET_ID" -d '{"auto_status": "registered-not-activated"}'
expect 200 .auto_status registered-not-activated "the fleet CA's new devices now wait for an operator"
fleet_device nd
ND=$(cert_serial "$D/nd.pem")
wrong_key nd || { echo "Bail out! cannot make the wrong key"; exit 1; }
tls_client tls1_3 "$D/nd-wrong.key" "$D/nd.pem" "/v1/certs/$ND"
if ! grep -q '^HTTP/1.1' "$D/client.log" &&
    grep -q 'alert decrypt error' "$D/client.log"; then
    ok "a new device's certificate with another key: the handshake fails"
else
    not_ok "a new device's certificate with another key: the handshake fails"
fi
should_fail 2 'no certificate with serial' "... and nothing is recorded" \
    p11ca cert show --dir "$CA" "$ND"
tls_client tls1_3 "$D/nd.key" "$D/nd.pem" "/v1/certs/$ND"
if grep -q '^HTTP/1.1 403' "$D/client.log" &&
    grep -q '"code":"not-activated"' "$D/client.log" &&
    grep -q 'auto-registered as registered-not-activated: an operator activates it' "$D/client.log" &&
    grep -qi '^connection: close' "$D/client.log"; then
    ok "the device with its key: handshake done, its request gets 403 not-activated (and the connection closes)"
else
    not_ok "the device with its key: handshake done, its request gets 403 not-activated (and the connection closes)"
    diag "$(grep -E '^HTTP|code' "$D/client.log")"
fi
assert_grep "\"auto-registration\" refused serial=$ND reason=not-activated" "$D/access.log" \
    "... the access log says why"
i=0
until p11ca cert show --dir "$CA" --json "$ND" >"$D/nd.json" 2>/dev/null || [ $i -ge 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
assert_eq "$(jq -r .status "$D/nd.json" 2>/dev/null)" registered-not-activated \
    "... and it is recorded as registered-not-activated"
tls_client tls1_3 "$D/nd.key" "$D/nd.pem" "/v1/certs/$ND"
if ! grep -q '^HTTP/1.1' "$D/client.log" && grep -q 'alert bad certificate' "$D/client.log"; then
    ok "its next connection is refused at the handshake (registered-not-activated)"
else
    not_ok "its next connection is refused at the handshake (registered-not-activated)"
fi
api bob POST "/v1/certs/$ND/activate"
expect 200 .status activated "an operator activates it"
tls_client tls1_3 "$D/nd.key" "$D/nd.pem" "/v1/certs/$ND"
assert_grep '^HTTP/1.1 200 OK' "$D/client.log" "now the device is served"

# --- Past the sign-up limit ----------------------------------------------------------
fleet_device late
LATE=$(cert_serial "$D/late.pem")
tls_client tls1_3 "$D/late.key" "$D/late.pem" "/v1/certs/$LATE"
if grep -q '^HTTP/1.1 429' "$D/client.log" &&
    grep -q '"code":"rate-limited"' "$D/client.log" &&
    grep -qi '^retry-after: ' "$D/client.log"; then
    ok "a third new device (the bucket of 2 is used): its request gets 429 with Retry-After"
else
    not_ok "a third new device (the bucket of 2 is used): its request gets 429 with Retry-After"
    diag "$(grep -E '^HTTP|code' "$D/client.log")"
fi
assert_grep "\"auto-registration\" refused serial=$LATE reason=rate-limit" "$D/access.log" \
    "... the access log says why"
should_fail 2 'no certificate with serial' "... and it is not recorded" \
    p11ca cert show --dir "$CA" "$LATE"
assert_eq "$(metric 'p11ca_signups_total{kind="auto-registration"}')" 2 \
    "two auto-registrations in all"

serve_stop
assert_eq "$SERVE_RC" 0 "SIGTERM: exit status 0"

echo "1..$TAP_N"
done_testing

#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2086 # $PROV, $P and the like are option lists, split on purpose
# Provider settings that change how it talks to the token: login behaviour,
# the key cache, and TLS ephemeral keys made on the token as session
# objects when token operations are preferred (?provider=p11ca).
set -u
. "$top_srcdir/tests/lib/prov.sh"
. "$top_srcdir/tests/lib/tls.sh"
trap 'stop_servers; rm -rf "$TT"' EXIT
plan 22

FAULTY=$top_builddir/tests/faulty-pkcs11/.libs/libfaulty-pkcs11.so
keygen fk ec:P-256
printf 'data\n' >"$TT/data"

# Login behaviour.
P11CA_LOGIN_BEHAVIOR=never should_fail 1 'no private key matches' \
    "login-behavior never: private keys are not searched with a login" \
    openssl pkey $PROV -in "$(privuri fk)" -pubout
P11CA_LOGIN_BEHAVIOR=always check "login-behavior always: certificates and keys after a login" \
    openssl storeutl $PROV "$TOKURI;$PINQ"
P11CA_LOGIN_BEHAVIOR=sometimes should_fail 1 'p11ca-login-behavior = sometimes' \
    "a bad setting is refused with its name" openssl pkey $PROV -in "$(privuri fk)" -pubout

# The key cache: a program that loads the same key again and again reads
# its attributes once (counted in the fault module's call log).
count_attr_reads() { # count_attr_reads yes|no
    rm -f "$TT/calls.log"
    P11CA_CACHE_KEYS=$1 P11CA_MODULE=$FAULTY FAULTY_PKCS11_MODULE=$SOFTHSM_MODULE \
        FAULTY_PKCS11_LOG=$TT/calls.log run_prog prov-evp threads "$(privuri fk)" 2 20 \
        >"$TT/evp.out" 2>&1 || echo "# prov-evp failed" >&2
    grep -c ' C_GetAttributeValue ' "$TT/calls.log"
}
with=$(count_attr_reads yes)
without=$(count_attr_reads no)
if [ "$with" -gt 0 ] && [ "$with" -lt "$without" ]; then
    ok "the key cache saves attribute reads ($with with it, $without without)"
else
    not_ok "the key cache saves attribute reads ($with with it, $without without)"
fi
assert_grep '^ok .*threads opening/freeing the key' "$TT/evp.out" "keys load and sign without the cache too"

# Steady state: exactly two PKCS#11 calls per signature (C_SignInit and
# C_Sign): the difference between 120 and 20 signatures in one process.
calls_for() { # calls_for KEY N: the call log of a process making N signatures
    rm -f "$TT/calls-$2.log"
    P11CA_MODULE=$FAULTY FAULTY_PKCS11_MODULE=$SOFTHSM_MODULE \
        FAULTY_PKCS11_LOG=$TT/calls-$2.log run_prog prov-evp sign "$(privuri "$1")" "$2" \
        >/dev/null 2>&1
    awk '{ print $2 }' "$TT/calls-$2.log" | sort | uniq -c | awk '{ print $2, $1 }' >"$TT/count-$2"
}
keygen fr rsa:2048
for k in fk fr; do
    calls_for $k 20
    calls_for $k 120
    delta=$(join -a1 -a2 -e 0 -o 0,1.2,2.2 "$TT/count-20" "$TT/count-120" \
        | awk '$2 != $3 { printf "%s+%d ", $1, $3 - $2 }')
    assert_eq "$delta" "C_Sign+100 C_SignInit+100 " \
        "$k: 100 more signatures cost exactly 100 C_SignInit and 100 C_Sign"
done
keygen fe ed25519
calls_for fe 20
calls_for fe 120
delta=$(join -a1 -a2 -e 0 -o 0,1.2,2.2 "$TT/count-20" "$TT/count-120" \
    | awk '$2 != $3 { printf "%s+%d ", $1, $3 - $2 }')
assert_eq "$delta" "C_Sign+100 C_SignInit+100 " "Ed25519: 2 calls per signature too"

# Ephemeral ECDHE keys on the token: a session object, derived on the token.
openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$TT/ca.key" -subj "/CN=Eph CA" -days 2 -out "$TT/ca.pem" 2>/dev/null
openssl req $PROV -new -key "$(privuri fk)" -subj "/CN=server.test" -out "$TT/srv.csr"
openssl x509 -req -in "$TT/srv.csr" -CA "$TT/ca.pem" -CAkey "$TT/ca.key" \
    -CAcreateserial -days 1 -out "$TT/srv.pem" 2>/dev/null
before=$(p11ca --pin-source "$PINFILE" key list --json "$TOKURI" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
port=$(free_port)
rm -f "$TT/calls.log"
P11CA_DEFAULT_TOKEN="$TOKURI;$PINQ" P11CA_MODULE=$FAULTY FAULTY_PKCS11_MODULE=$SOFTHSM_MODULE \
    FAULTY_PKCS11_LOG=$TT/calls.log start_server_ready "$TT/s.log" $PROV \
    -propquery '?provider=p11ca' -accept "127.0.0.1:$port" -naccept 1 -www \
    -tls1_3 -groups P-256 -cert "$TT/srv.pem" -key "$(privuri fk)"
printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client -connect "127.0.0.1:$port" -tls1_3 \
    -groups P-256 -brief -ign_eof -CAfile "$TT/ca.pem" >"$TT/c.log" 2>&1
server_done
assert_grep 'Verification: OK' "$TT/c.log" "TLS 1.3 handshake with token-preferred operations"
assert_eq "$(temp_key "$TT/c.log")" "ECDH, prime256v1" "ECDHE on P-256"
assert_grep ' C_GenerateKeyPair CKR_OK' "$TT/calls.log" "the ephemeral key was generated on the token"
assert_grep ' C_DeriveKey CKR_OK' "$TT/calls.log" "the shared secret was derived on the token"
after=$(p11ca --pin-source "$PINFILE" key list --json "$TOKURI" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
assert_eq "$after" "$before" "the ephemeral key was a session object: nothing stored on the token"

# A private key whose public key object is gone (and which has no
# certificate) still signs: its public half is read only when an
# operation needs it, and then the error says what is missing.
keygen nopub ec:P-256
p11ca key pubout "$TOKURI;object=nopub" >"$TT/nopub.pub"
check "the public key object of a key pair is removed" \
    run_prog weak-key "$SOFTHSM_MODULE" "$TOKEN" "$PINFILE" drop-public nopub 00
printf 'signed without a public half\n' >"$TT/nopub.txt"
check "the private key alone signs (openssl dgst)" \
    openssl dgst -sha256 $PROV -sign "$(privuri nopub)" -out "$TT/nopub.sig" "$TT/nopub.txt"
check "the signature verifies with the public key saved before" \
    openssl dgst -sha256 -verify "$TT/nopub.pub" -signature "$TT/nopub.sig" "$TT/nopub.txt"
should_fail 1 'no public key' "asking it for its public key says what is missing" \
    openssl pkey $PROV -in "$(privuri nopub)" -pubout

# A token that stops at the first attribute an object lacks (against the
# specification, but seen): objects are read one attribute at a time
# instead, with the same result.
stops() { # stops 0|1 OUT COMMAND...: COMMAND through the fault module
    st=$1 out=$2
    shift 2
    FAULTY_PKCS11_GETATTR_STOPS=$st P11CA_MODULE=$FAULTY \
        FAULTY_PKCS11_MODULE=$SOFTHSM_MODULE "$@" >"$out" 2>&1
}
openssl req $PROV -new -x509 -key "$(privuri fk)" -subj /CN=stops -days 1 \
    -out "$TT/fk.pem" 2>/dev/null
p11ca --pin-source "$PINFILE" cert import "$TOKURI;object=fk" "$TT/fk.pem" >/dev/null 2>&1
stops 0 "$TT/all.txt" openssl storeutl $PROV -text "$TOKURI;$PINQ"
stops 1 "$TT/one.txt" openssl storeutl $PROV -text "$TOKURI;$PINQ"
if grep -q 'PKCS#11 token key' "$TT/all.txt" && grep -q 'Certificate:' "$TT/all.txt" \
    && cmp -s "$TT/all.txt" "$TT/one.txt"; then
    ok "a token stopping at the first missing attribute: every key and certificate read the same"
else
    not_ok "a token stopping at the first missing attribute: every key and certificate read the same"
    diff "$TT/all.txt" "$TT/one.txt" | head -n 10 | sed 's/^/# /'
fi
check "... and its key signs" \
    stops 1 "$TT/one.out" openssl dgst -sha256 $PROV -sign "$(privuri fk)" -out "$TT/one.sig" "$TT/nopub.txt"
openssl pkey $PROV -in "$(pubkuri fk)" -pubin -pubout -out "$TT/fk.pub" 2>/dev/null
check "... a signature that verifies" \
    openssl dgst -sha256 -verify "$TT/fk.pub" -signature "$TT/one.sig" "$TT/nopub.txt"

# The mechanism list could not be read at the first signature (a busy or
# just re-inserted token): that is not taken as "supports nothing" for the
# rest of the process; the signature still happens and the list is read
# again at the next one.
rm -f "$TT/mechs.log"
P11CA_MODULE=$FAULTY FAULTY_PKCS11_MODULE=$SOFTHSM_MODULE \
    FAULTY_PKCS11_LOG=$TT/mechs.log FAULTY_PKCS11_FAULTS=C_GetMechanismList:1:CKR_DEVICE_ERROR \
    run_prog prov-evp sign "$(privuri fk)" 5 >"$TT/mechs.out" 2>&1
assert_grep '^ok .* 5 of 5 signatures made and verified' "$TT/mechs.out" \
    "a failed C_GetMechanismList: every signature of the process is made"
assert_eq "$(grep -c 'C_GetMechanismList CKR_DEVICE_ERROR \[injected\]' "$TT/mechs.log") $(grep -c 'C_GetMechanismList CKR_OK' "$TT/mechs.log")" \
    "1 1" "... and the list was read again, once"
done_testing

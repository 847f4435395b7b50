#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The subject p11ca enroll makes from --client-id is one CN holding the
# client ID as it is: a '/', '=', ',' or '+' in it never makes an
# attribute of its own (no subject injection); a client ID that cannot be
# a CN is refused before a key is made.
set -u
. "$top_srcdir/tests/integration/enroll-setup.sh"
command -v p11tool >/dev/null || plan_skip "p11tool (gnutls-bin) is not installed"
GNUTLS_PIN=$(cat "$PINFILE")
export GNUTLS_PIN
plan 14

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
nobj() { p11tool --login --list-all "pkcs11:token=$1" 2>/dev/null | grep -c 'type='; }
# subject_of SERIAL: the subject of the recorded certificate, one RDN a
# line (openssl's RFC 2253 form, last RDN first).
subject_of() {
    p11ca cert show --dir "$CA" --pem "$1" | sed -n '/BEGIN CERT/,/END CERT/p' |
        openssl x509 -noout -subject -nameopt RFC2253,sep_multiline,-esc_msb
}

# enrolled CARD ID RDNS DESC: enroll CARD with --client-id ID (label n1,
# n2, ...); the certificate's subject is exactly RDNS (as subject_of
# prints it) and the registry's client ID is ID.
i=0
enrolled() {
    i=$((i + 1))
    card "$1"
    if ! enroll "$1" --profile client --client-id "$2" --label "n$i" \
        --type ec:P-256 --json >"$TT/out" 2>"$TT/err"; then
        not_ok "$4: enrolled"
        diag "$(cat "$TT/err")"
        not_ok "$4: the client ID is recorded as given"
        return
    fi
    s=$(json "$TT/out" 'd["serial"]')
    assert_eq "$(subject_of "$s")" "$3" "$4"
    p11ca cert show --dir "$CA" --json "$s" >"$TT/show.json"
    assert_eq "$(json "$TT/show.json" 'd["client_id"]')" "$2" \
        "$4: the client ID is recorded as given"
}

nl='
'
enrolled card-a 'x/CN=admin' "subject=${nl}    CN=x/CN=admin" \
    "--client-id 'x/CN=admin': one CN, no second one"
enrolled card-b 'x/O=Other' "subject=${nl}    CN=x/O=Other" \
    "--client-id 'x/O=Other': one CN, no O"
enrolled card-c 'a,O=b+OU=c' "subject=${nl}    CN=a\\,O=b\\+OU=c" \
    "--client-id 'a,O=b+OU=c': one CN, no O, no OU"
enrolled card-d 'd\/e' "subject=${nl}    CN=d\\\\/e" \
    "--client-id with a backslash: kept as it is"

card card-l
long=$(printf 'l%.0s' $(seq 65))
should_fail 2 'cannot be a CN \(at most 64' \
    "a client ID longer than a CN allows is refused" \
    enroll card-l --profile client --client-id "$long" --type ec:P-256
assert_eq "$(nobj card-l)" 0 "... before a key was made on the card"
check "... and it may still be the client ID of a certificate with --subject" \
    enroll card-l --profile client --client-id "$long" --subject /CN=l-user \
    --type ec:P-256 --label l-user

# Longer than enroll keeps (255 bytes): refused, never cut, even with a
# --subject that would make it no CN.
card card-m
toolong=$(printf 'm%.0s' $(seq 256))
n0=$(p11ca cert list --dir "$CA" --count)
should_fail 1 'the client ID is 256 bytes long, more than 255: give a shorter --client-id' \
    "a client ID longer than 255 bytes is refused" \
    enroll card-m --profile client --client-id "$toolong" --subject /CN=m-user \
    --type ec:P-256 --label m-user
assert_eq "$(nobj card-m)" 0 "... before a key was made on the card"
assert_eq "$(p11ca cert list --dir "$CA" --count)" "$n0" "... and nothing was recorded"

done_testing

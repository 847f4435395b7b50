# SPDX-License-Identifier: Apache-2.0
# Shared by the ocsp-*.sh tests: a CA with its key on the SoftHSM2 token,
# devices it issued, requests made by openssl ocsp, and what the real
# openssl ocsp and gnutls ocsptool say about our responses.
# shellcheck shell=sh disable=SC2034,SC2086
. "$top_srcdir/tests/lib/prov.sh"

D=$TT/ocsp
CA=$D/ca
mkdir -p "$D"

# ca_make DIR CN LABEL: a root CA with its key on the token.
ca_make() {
    p11ca --pin-source "$PINFILE" ca init --dir "$1" --subject "/CN=$2/O=p11ca tests" \
        --key-uri "$TOKURI;object=$3" --generate ec:P-256 --days 3650 >/dev/null
}

# device NAME [DIR]: a software key and a client certificate for it.
device() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$D/$1.key" -subj "/CN=$1" -out "$D/$1.csr" 2>/dev/null &&
        p11ca issue --dir "${2:-$CA}" --profile client --out "$D/$1.pem" \
            "$D/$1.csr" >/dev/null 2>&1
}

# serial_of CERT: the serial as the registry writes it.
serial_of() {
    openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' |
        sed 's/^0*//'
}

# request OUT [openssl ocsp options...]: a request made by openssl ocsp.
request() {
    out=$1
    shift
    openssl ocsp "$@" -reqout "$out" >/dev/null 2>&1
}

# respond REQ RESP: p11ca ocsp respond; its stderr in $TT/err, the exit
# status returned.
respond() {
    p11ca ocsp respond --dir "$CA" --reqin "$1" --respout "$2" \
        >"$TT/out" 2>"$TT/err"
}

# verdict RESP CERT: what openssl ocsp says of CERT in RESP, with the
# signature and the signer (the CA, or a delegated signer issued by it for
# OCSPSigning) verified up to the CA certificate, into $TT/verdict.
# $CID_MD (e.g. -sha256) is the CertID's hash when it is not SHA-1.
CID_MD=
verdict() {
    openssl ocsp -respin "$1" -issuer "$CA/ca.pem" $CID_MD -cert "$2" \
        -CAfile "$CA/ca.pem" -no_nonce >"$TT/verdict" 2>&1
}

# nonce_verdict REQ RESP: openssl ocsp checks RESP against the request
# REQ, its nonce included, into $TT/verdict.
nonce_verdict() {
    openssl ocsp -reqin "$1" -respin "$2" -issuer "$CA/ca.pem" \
        -CAfile "$CA/ca.pem" >"$TT/verdict" 2>&1
}

# assert_status RESP CERT STATUS "description": openssl ocsp verifies the
# response and reports STATUS for CERT.
assert_status() {
    verdict "$1" "$2"
    if grep -q '^Response verify OK' "$TT/verdict" &&
        grep -q "^$2: $3\$" "$TT/verdict"; then
        ok "$4"
    else
        not_ok "$4 (openssl ocsp does not say verified and $3)"
        diag "$(cat "$TT/verdict")"
    fi
}

# resp_error RESP: the error status openssl ocsp reads in RESP.
resp_error() {
    openssl ocsp -respin "$1" -resp_text -noverify 2>&1 |
        sed -n 's/^Responder Error: //p; s/^ *OCSP Response Status: //p' |
        head -n 1
}

# gnutls RESP: gnutls ocsptool's reading of the response, into
# $TT/gnutls (a second checker, independent of OpenSSL).
gnutls() {
    ocsptool -j --infile "$1" >"$TT/gnutls" 2>&1
}

ca_make "$CA" "OCSP Test CA" ocspca || {
    echo "Bail out! cannot make the test CA"
    exit 1
}
# The responder's URL in the authorityInfoAccess of what the CA issues.
sed -i 's|^# ocsp_url .*|ocsp_url = http://ocsp.pki.test/ocsp|' "$CA/ca.cnf"

#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# CSRs of the fuzz corpus (tests/fuzz/corpus/csr-policy) that once crashed
# or fooled `p11ca issue`, through the command: each is refused with exit
# 2 and a message saying why, and nothing is recorded.
# top_srcdir and top_builddir come from the test environment.
# shellcheck disable=SC1091,SC2154
set -u
. "$top_srcdir/tests/lib/tap.sh"
plan 8

TT=$(mktemp -d "${TMPDIR:-/tmp}/p11ca-test.XXXXXX")
trap 'rm -rf "$TT"' EXIT
D=$TT/ca
SEEDS=$top_srcdir/tests/fuzz/corpus/csr-policy
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$TT/ca.key" 2>/dev/null
p11ca ca init --dir "$D" --subject "/CN=Fuzz Finds CA" --key "$TT/ca.key" \
    >/dev/null 2>&1 || { echo "Bail out! ca init failed"; exit 1; }

count() { p11ca cert list --dir "$D" --count 2>/dev/null; }
# refused "regex" "description" PROFILE SEED: exit 2, the message, and the
# registry as it was.
refused() {
    re=$1 what=$2
    n0=$(count)
    should_fail 2 "$re" "refused: $what" \
        p11ca issue --dir "$D" --profile "$3" --out "$TT/out.pem" "$SEEDS/$4"
    assert_eq "$(count)" "$n0" "... nothing recorded ($what)"
}

# The name was read as a string whatever its type: a directoryName (an
# X509_NAME) crashed the command, so did a registeredID (an OID).
refused 'subjectAltName names of type 4 are not issued' \
    "a directoryName in the SAN" client san-dirname.der
refused 'subjectAltName names of type 8 are not issued' \
    "a registeredID in the SAN" client san-rid.der
refused 'subjectAltName names of type 0 are not issued' \
    "an otherName in the SAN" server san-othername.der

# Explicit EC parameters equal to P-256's passed as ec:P-256, and the
# certificate was one that openssl verify refuses (X509 error 94).
refused "the CSR's key \\(EC with explicit parameters\\) is not allowed by profile \"client\"" \
    "an EC key with explicit parameters" client explicit-ec.der

#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2086 # $PROV is an option list, split on purpose
# The token's random generator as OpenSSL's (RAND "P11CA-RAND", offered
# with p11ca-rand = yes): drawn from directly, as the seed of OpenSSL's
# CTR-DRBG (tests/progs/prov-rand), and as the generator of openssl.cnf's
# [random] section.  Where the bytes come from is read in the fault
# module's call log (C_GenerateRandom), never assumed.
set -u
. "$top_srcdir/tests/lib/prov.sh"
plan 13

FAULTY=$top_builddir/tests/faulty-pkcs11/.libs/libfaulty-pkcs11.so
D=$TT/rand
mkdir -p "$D"
faulty() { # faulty LOG command...: through the fault module, calls logged
    log=$1
    shift
    rm -f "$log"
    P11CA_MODULE=$FAULTY FAULTY_PKCS11_MODULE=$SOFTHSM_MODULE \
        FAULTY_PKCS11_LOG=$log "$@"
}
calls() { grep -c " $1 " "$2" 2>/dev/null || echo 0; }

# Off by default: nothing named P11CA-RAND.
openssl list -random-generators $PROV >"$D/list-off" 2>&1
assert_no_grep 'P11CA-RAND' "$D/list-off" "without p11ca-rand the provider offers no RAND"
P11CA_RAND=yes openssl list -random-generators $PROV >"$D/list-on" 2>&1
assert_grep 'P11CA-RAND @ p11ca' "$D/list-on" "p11ca-rand = yes offers P11CA-RAND"

# Drawn from directly: every byte from C_GenerateRandom.
P11CA_RAND=yes faulty "$D/src.log" run_prog prov-rand source 64 >"$D/src.out" 2>&1
hex=$(cat "$D/src.out")
if [ ${#hex} -eq 128 ] && [ "$(calls C_GenerateRandom "$D/src.log")" -ge 1 ]; then
    ok "P11CA-RAND: 64 bytes through C_GenerateRandom"
else
    not_ok "P11CA-RAND: 64 bytes through C_GenerateRandom"
    diag "$hex"
fi
P11CA_RAND=yes run_prog prov-rand source 64 >"$D/src2.out" 2>&1
if [ "$(cat "$D/src2.out")" != "$hex" ] && ! grep -q '^0*$' "$D/src2.out"; then
    ok "... and another draw gives other bytes"
else
    not_ok "... and another draw gives other bytes"
fi

# As the seed source of a CTR-DRBG in the application's own context.
P11CA_RAND=yes faulty "$D/drbg.log" run_prog prov-rand drbg 64 >"$D/drbg.out" 2>&1
if [ "$(wc -c <"$D/drbg.out" | tr -d ' ')" -eq 129 ] && [ "$(calls C_GenerateRandom "$D/drbg.log")" -ge 1 ]; then
    ok "CTR-DRBG with P11CA-RAND as parent: seeded from the token (C_GenerateRandom)"
else
    not_ok "CTR-DRBG with P11CA-RAND as parent: seeded from the token"
    diag "$(cat "$D/drbg.out")"
fi

# openssl.cnf: random = P11CA-RAND makes every generator of the process
# the token's; what SoftHSM2 asks OpenSSL for itself, inside the module,
# comes from the kernel (its generator is this process's OpenSSL).
rand_cnf() { # rand_cnf FILE KEY-LINES: an openssl.cnf with a [random] section
    cat >"$1" <<EOF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
random = random_sect
[provider_sect]
default = default_sect
p11ca = p11ca_sect
[default_sect]
activate = 1
[p11ca_sect]
module = $OPENSSL_MODULES/p11ca.so
p11ca-rand = yes
activate = 1
[random_sect]
$2
EOF
}
rand_cnf "$D/random.cnf" "random = P11CA-RAND
properties = provider=p11ca"
OPENSSL_CONF=$D/random.cnf faulty "$D/cnf.log" openssl rand -hex 32 >"$D/cnf.out" 2>"$D/cnf.err"
rc=$?
assert_eq "$rc:$(tr -d '\n' <"$D/cnf.out" | wc -c | tr -d ' ')" "0:64" \
    "openssl.cnf random = P11CA-RAND: openssl rand -hex 32 works"
if [ "$(calls C_GenerateRandom "$D/cnf.log")" -ge 1 ]; then
    ok "... with its bytes from C_GenerateRandom"
else
    not_ok "... with its bytes from C_GenerateRandom"
fi
OPENSSL_CONF=$D/random.cnf check "... and a key pair and certificate are made under it (openssl req -newkey ec)" \
    openssl req -new -x509 -newkey ec \
    -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/k.pem" -subj /CN=rand -days 1 \
    -out "$D/c.pem"
check "... which plain openssl verifies" openssl verify -CAfile "$D/c.pem" "$D/c.pem"

# seed = P11CA-RAND seeds OpenSSL's DRBGs from the token.  With OpenSSL
# 3.0, SoftHSM2 cannot serve it (its C_GenerateRandom needs the generator
# being made): the error says so, at once; OpenSSL 3.5 makes its
# generators so that it works.  Either way, no hang.
rand_cnf "$D/seed.cnf" "seed = P11CA-RAND
seed_properties = provider=p11ca"
timeout 60 env $OPENSSL_ENV OPENSSL_CONF="$D/seed.cnf" openssl rand -hex 8 \
    >"$D/seed.out" 2>"$D/seed.err"
rc=$?
if [ $rc -eq 0 ] && grep -Eq '^[0-9a-f]{16}$' "$D/seed.out"; then
    ok "seed = P11CA-RAND: OpenSSL's generators seeded from the token"
elif [ $rc -eq 1 ] && grep -q 'P11CA-RAND: C_GenerateRandom on token "p11ca-test": CKR_GENERAL_ERROR' "$D/seed.err"; then
    ok "seed = P11CA-RAND with SoftHSM2 on OpenSSL 3.0: the token's error, at once"
else
    not_ok "seed = P11CA-RAND: random bytes, or the token's error (exit $rc)"
    diag "$(cat "$D/seed.err")"
fi

# Errors: the token refuses, a token that is not there, a bad setting.
P11CA_RAND=yes faulty "$D/f.log" env FAULTY_PKCS11_FAULTS=C_GenerateRandom:1:CKR_DEVICE_ERROR \
    "$top_builddir/tests/progs/prov-rand" source 16 >"$D/f.out" 2>"$D/f.err"
assert_grep 'C_GenerateRandom on token "p11ca-test": CKR_DEVICE_ERROR' "$D/f.err" \
    "a failing C_GenerateRandom is reported with the token and the CKR code"
P11CA_RAND=yes P11CA_RAND_TOKEN="pkcs11:token=absent" P11CA_TOKEN_WAIT=0 \
    run_prog prov-rand source 16 >"$D/t.out" 2>"$D/t.err"
assert_grep 'token.*absent' "$D/t.err" "p11ca-rand-token naming an absent token: the error names it"
P11CA_RAND=maybe should_fail 1 'p11ca-rand = maybe: use yes or no' \
    "p11ca-rand = maybe is refused with its name" openssl list -random-generators $PROV

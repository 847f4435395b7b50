#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2086 # $PROV is an option list, split on purpose
# A URI does not load code: module-path= in a pkcs11: URI selects one of
# the loaded modules (the configured one, those registered with p11-kit),
# and loads another file only where the configuration allows it
# (p11ca-allow-uri-module-path in openssl.cnf, P11CA_ALLOW_URI_MODULE_PATH).
# The module a URI would load here is the fault module: its call log shows
# whether it was ever loaded.
set -u
. "$top_srcdir/tests/lib/prov.sh"
plan 17

FAULTY=$top_builddir/tests/faulty-pkcs11/.libs/libfaulty-pkcs11.so
FAULTY_PKCS11_MODULE=$SOFTHSM_MODULE
export FAULTY_PKCS11_MODULE
keygen um ec:P-256
openssl pkey $PROV -in "$(pubkuri um)" -pubin -pubout -out "$TT/um.pub"
key="$TOKURI;object=um;type=private;$PINQ"
refused='module-path=.*libfaulty-pkcs11.so in the URI names a module that is not loaded, and a URI does not load code'

# loaded LOG: whether the fault module was loaded (it logs C_Initialize).
loaded() { grep -q ' C_Initialize' "$1" 2>/dev/null; }

# --- The provider --------------------------------------------------------------
should_fail 1 "$refused" \
    "provider: module-path= of a module that is not loaded is refused" \
    env $OPENSSL_ENV FAULTY_PKCS11_LOG="$TT/p1.log" \
    openssl pkey $PROV -in "$key?module-path=$FAULTY" -pubout
assert_grep 'a pkcs11: URI may not load a PKCS#11 module' "$TT/err" \
    "... with its reason, naming the option that allows it (p11ca-allow-uri-module-path)"
if loaded "$TT/p1.log"; then
    not_ok "... and the module was never loaded"
else
    ok "... and the module was never loaded"
fi

FAULTY_PKCS11_LOG=$TT/p2.log P11CA_ALLOW_URI_MODULE_PATH=yes \
    openssl pkey $PROV -in "$key?module-path=$FAULTY" -pubout -out "$TT/p2.pub" 2>"$TT/err"
check "provider: P11CA_ALLOW_URI_MODULE_PATH=yes lets the URI load it" cmp "$TT/p2.pub" "$TT/um.pub"
assert_grep ' C_Login CKR_OK' "$TT/p2.log" "... and the key came through that module"

sed -e "s|^p11ca-pin-source = .*|&\np11ca-allow-uri-module-path = yes|" \
    "$TT/openssl.cnf" >"$TT/allow.cnf"
FAULTY_PKCS11_LOG=$TT/p3.log OPENSSL_CONF=$TT/allow.cnf \
    env $OPENSSL_ENV openssl pkey -in "$key?module-path=$FAULTY" -pubout -out "$TT/p3.pub" 2>"$TT/err"
check "provider: p11ca-allow-uri-module-path = yes in openssl.cnf lets the URI load it" \
    cmp "$TT/p3.pub" "$TT/um.pub"

sed -e "s|^p11ca-pin-source = .*|&\np11ca-allow-uri-module-path = no|" \
    "$TT/openssl.cnf" >"$TT/deny.cnf"
should_fail 1 "$refused" \
    "provider: p11ca-allow-uri-module-path = no wins over the environment" \
    env $OPENSSL_ENV OPENSSL_CONF="$TT/deny.cnf" P11CA_ALLOW_URI_MODULE_PATH=yes \
    openssl pkey -in "$key?module-path=$FAULTY" -pubout

sed -e "s|^p11ca-pin-source = .*|&\np11ca-allow-uri-module-path = maybe|" \
    "$TT/openssl.cnf" >"$TT/bad.cnf"
# OpenSSL drops the errors of providers its config fails to activate: the
# provider's debug log has the reason.
# No store for pkcs11: (OpenSSL 3.0: "unregistered scheme", 3.5: "No store
# loader found").
should_fail 1 'unregistered scheme|No store loader found' \
    "provider: a value other than yes or no: the provider is not activated" \
    env $OPENSSL_ENV OPENSSL_CONF="$TT/bad.cnf" P11CA_DEBUG=prov \
    P11CA_DEBUG_FILE="$TT/bad.log" openssl pkey -in "$key" -pubout
assert_grep 'p11ca-allow-uri-module-path = maybe: use yes or no' "$TT/bad.log" \
    "... and says why (debug log)"

openssl pkey $PROV -in "$key?module-path=$SOFTHSM_MODULE" -pubout -out "$TT/p5.pub" 2>"$TT/err"
check "provider: module-path= of the configured module (P11CA_MODULE) selects it" \
    cmp "$TT/p5.pub" "$TT/um.pub"
ln -s "$SOFTHSM_MODULE" "$TT/link-to-softhsm.so"
openssl pkey $PROV -in "$key?module-path=$TT/link-to-softhsm.so" -pubout \
    -out "$TT/p6.pub" 2>"$TT/err"
check "provider: ... also through a symbolic link to it" cmp "$TT/p6.pub" "$TT/um.pub"

# --- The p11ca command ---------------------------------------------------------
should_fail 2 "$refused" \
    "p11ca: module-path= of a module that is not loaded is refused (exit 2)" \
    env FAULTY_PKCS11_LOG="$TT/c1.log" "$top_builddir/src/p11ca" key list \
    "$TOKURI?module-path=$FAULTY&$PINQ"
if loaded "$TT/c1.log"; then
    not_ok "... and the module was never loaded"
else
    ok "... and the module was never loaded"
fi
FAULTY_PKCS11_LOG=$TT/c2.log P11CA_ALLOW_URI_MODULE_PATH=yes \
    p11ca --pin-source "$PINFILE" key list "$TOKURI?module-path=$FAULTY" >"$TT/c2.out" 2>"$TT/err"
assert_grep 'um' "$TT/c2.out" "p11ca: P11CA_ALLOW_URI_MODULE_PATH=yes lets the URI load it"
assert_grep ' C_Login CKR_OK' "$TT/c2.log" "... through that module"
(
    unset P11CA_MODULE
    p11ca --module "$SOFTHSM_MODULE" --pin-source "$PINFILE" key list \
        "$TOKURI?module-path=$SOFTHSM_MODULE" >"$TT/c3.out" 2>"$TT/err"
)
assert_grep 'um' "$TT/c3.out" "p11ca: module-path= equal to --module selects it"
should_fail 3 'no token matches' \
    "p11ca: module-name= still selects among the loaded modules only" \
    p11ca key list --no-login "$TOKURI?module-name=libfaulty"
done_testing

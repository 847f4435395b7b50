#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2086 # $PROV, $P and the like are option lists, split on purpose
# The provider configured in openssl.cnf: activated system-wide (also in
# processes whose PKCS#11 module itself uses OpenSSL: no hang, no
# recursion), PIN from a file, from a named environment variable, an
# explicit module path, a debug log without PINs.
set -u
. "$top_srcdir/tests/lib/prov.sh"
plan 16

keygen ck ec:P-256
printf 'data\n' >"$TT/data"
openssl pkey $PROV -in "$(pubkuri ck)" -pubin -pubout -out "$TT/ck.pub"
T="timeout 120"

# System-wide: OPENSSL_CONF activates p11ca and default for every program.
export OPENSSL_CONF="$TT/openssl.cnf"
check "openssl.cnf: a token key without -provider and without a PIN in the URI" \
    env $OPENSSL_ENV $T openssl dgst -sha256 -sign "$TOKURI;object=ck;type=private" -out "$TT/sig" "$TT/data"
check "the signature verifies in software" \
    env -u OPENSSL_CONF openssl dgst -sha256 -verify "$TT/ck.pub" -signature "$TT/sig" "$TT/data"
check "system-wide: softhsm2-util (SoftHSM2 uses OpenSSL) does not hang" \
    env $OPENSSL_ENV $T softhsm2-util --show-slots
check "system-wide: pkcs11-tool on SoftHSM2 does not hang" \
    env $OPENSSL_ENV $T pkcs11-tool --module "$SOFTHSM_MODULE" -O
check "system-wide: the p11ca command (provider loaded in its process too)" \
    env $OPENSSL_ENV $T "$top_builddir/src/p11ca" --pin-source "$PINFILE" key list "$TOKURI"
check "system-wide: signing through SoftHSM2 while p11ca is active in its OpenSSL" \
    env $OPENSSL_ENV $T openssl pkeyutl -sign -inkey "$TOKURI;object=ck;type=private" -in "$TT/ck.pub" -rawin -digest sha256 -out "$TT/sig2"
unset OPENSSL_CONF

# No PIN anywhere: the openssl command asks on its terminal, through the
# passphrase callback it gives the store (script(1) provides a terminal).
if command -v script >/dev/null; then
    # The PIN is typed once the prompt is on the terminal (tap.sh).
    tty_answer "$TT/prompt.out" 'Enter pass phrase for token "p11ca-test":' \
        "$PINFILE" "env $OPENSSL_ENV openssl pkey $PROV -in '$TOKURI;object=ck;type=private' -pubout"
    if grep -q 'Enter pass phrase for token "p11ca-test":' "$TT/prompt.out" \
        && grep -q 'BEGIN PUBLIC KEY' "$TT/prompt.out"; then
        ok "the PIN is asked through the application's passphrase prompt"
    else
        not_ok "the PIN is asked through the application's passphrase prompt"
        diag "$(head -n 5 "$TT/prompt.out")"
    fi
else
    skip "script(1) not installed"
fi

# p11ca-pin-env: the PIN from an environment variable named in the config.
sed -e "s|^p11ca-pin-source = .*|p11ca-pin-env = P11CA_TEST_TOKEN_PIN|" \
    "$TT/openssl.cnf" >"$TT/pinenv.cnf"
P11CA_TEST_TOKEN_PIN=$(cat "$PINFILE") OPENSSL_CONF="$TT/pinenv.cnf" \
    openssl pkey -in "$TOKURI;object=ck;type=private" -pubout -out "$TT/e.pub" 2>"$TT/err"
check "p11ca-pin-env: PIN from the named variable" cmp "$TT/e.pub" "$TT/ck.pub"

# P11CA_PIN_SOURCE: environment fallback for the PIN file.
P11CA_PIN_SOURCE=$PINFILE openssl pkey $PROV -in "$TOKURI;object=ck;type=private" \
    -pubout -out "$TT/f.pub" 2>"$TT/err"
check "P11CA_PIN_SOURCE: PIN file from the environment" cmp "$TT/f.pub" "$TT/ck.pub"

# p11ca-module-path: an explicit module (the fault-injecting forwarder,
# which logs every call it forwards to SoftHSM2).
FAULTY=$top_builddir/tests/faulty-pkcs11/.libs/libfaulty-pkcs11.so
sed -e "s|^activate = 1$|activate = 1|" "$TT/openssl.cnf" >"$TT/mod.cnf"
printf 'p11ca-module-path = %s\np11ca-debug = all\np11ca-debug-file = %s\n' \
    "$FAULTY" "$TT/debug.log" >>"$TT/mod.cnf"
FAULTY_PKCS11_MODULE=$SOFTHSM_MODULE FAULTY_PKCS11_LOG=$TT/calls.log \
    OPENSSL_CONF="$TT/mod.cnf" openssl dgst -sha256 \
    -sign "$TOKURI;object=ck;type=private" -out "$TT/sig3" "$TT/data" 2>"$TT/err"
assert_grep ' C_Sign CKR_OK' "$TT/calls.log" "p11ca-module-path: the configured module signs"
check "... and the signature verifies" \
    openssl dgst -sha256 -verify "$TT/ck.pub" -signature "$TT/sig3" "$TT/data"
assert_grep 'C_Login|logged in' "$TT/debug.log" "p11ca-debug-file: a debug log is written"
assert_grep "software operations in the application's default library context" \
    "$TT/debug.log" "activated in openssl.cnf: software work shares the default context"
for f in debug.log calls.log err; do
    assert_no_grep "$TEST_PIN" "$TT/$f" "no PIN in $f"
done
done_testing

#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2086 # $PROV, $P and the like are option lists, split on purpose
# What goes wrong with the provider goes wrong clearly: wrong PIN, bad URI,
# missing object, a private key that someone tries to export, a public key
# used to sign. Each: a non-zero exit, a message that says why, no crash.
set -u
. "$top_srcdir/tests/lib/prov.sh"
plan 12

keygen ek ec:P-256
keygen rk rsa:2048
printf 'wrong-pin-1111' >"$TT/wrong.pin"
chmod 600 "$TT/wrong.pin"
printf 'data\n' >"$TT/data"

should_fail 1 'C_Login on token "p11ca-test".*CKR_PIN_INCORRECT' \
    "wrong PIN: the token refused it, said so" \
    openssl pkey $PROV -in "$TOKURI;object=ek;type=private;pin-source=$TT/wrong.pin" -pubout
should_fail 1 'invalid pkcs11: URI|not in RFC 7512' "bad URI: an unknown attribute" \
    openssl pkey $PROV -in "pkcs11:tokn=p11ca-test;object=ek" -pubout
should_fail 1 'no private key matches.*object=nosuch' "missing object: named in the message" \
    openssl pkey $PROV -in "$TOKURI;object=nosuch;type=private;$PINQ" -pubout
should_fail 1 'no token matches|no private key matches' "missing token: named in the message" \
    openssl pkey $PROV -in "pkcs11:token=nosuchtoken;type=private;$PINQ" -pubout
should_fail 1 'stays on the token' "export of the private key as DER is refused" \
    openssl pkey $PROV -in "$(privuri ek)" -outform DER -out "$TT/k.der"
should_fail 1 'stays on the token|cannot be exported' "an encrypted PEM of a token key is refused" \
    openssl pkey $PROV -in "$(privuri rk)" -aes256 -passout pass:xyzzy -out "$TT/k.p8"
should_fail 1 'stays on the token|cannot be exported' "a PKCS#12 with a token key is refused" \
    openssl pkcs12 -export $PROV -inkey "$(privuri rk)" -nocerts -passout pass:x -out "$TT/k.p12"
if test ! -s "$TT/k.der" && test ! -s "$TT/k.p8"; then
    ok "no key file was written"
else
    not_ok "no key file was written"
fi
should_fail 1 'public key|private key|no private' "signing with a public-key URI fails clearly" \
    openssl pkeyutl -sign $PROV -inkey "$(pubkuri ek)" -in "$TT/data"
printf 'x' >"$TT/empty.pin"; : >"$TT/empty.pin"; chmod 600 "$TT/empty.pin"
should_fail 1 'PIN file .* is empty' "an empty PIN file is named" \
    openssl pkey $PROV -in "$TOKURI;object=ek;type=private;pin-source=$TT/empty.pin" -pubout
chmod 644 "$TT/wrong.pin"
should_fail 1 'accessible by group or others' "a readable PIN file is refused" \
    openssl pkey $PROV -in "$TOKURI;object=ek;type=private;pin-source=$TT/wrong.pin" -pubout
# Without any PIN source and no terminal: the passphrase callback gets
# nothing and the message says a PIN is needed.
should_fail 1 'a PIN is needed' "no PIN and no terminal: a clear message" \
    env $OPENSSL_ENV setsid -w openssl pkey $PROV -in "$TOKURI;object=ek;type=private" -pubout
done_testing

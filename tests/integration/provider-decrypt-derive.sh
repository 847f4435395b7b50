#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# RSA decryption and ECDH on the token through the provider: data
# encrypted by plain openssl (and by the provider, in software) decrypts on
# the token with PKCS#1 v1.5, OAEP and raw RSA; TLS 1.2 RSA key transport;
# ECDH (and the X9.63 KDF) agrees with plain openssl; clear errors for the
# parameters a token refuses, a wrong-curve peer and a public key.
# $PROV, $OAEP and $KDF are option lists: split on purpose.
# shellcheck disable=SC2086,SC2154,SC1091
set -u
. "$top_srcdir/tests/lib/prov.sh"
. "$top_srcdir/tests/lib/tls.sh"
trap 'stop_servers; rm -rf "$TT"' EXIT
plan 60

D=$TT/dd
mkdir -p "$D"
head -c 100 /dev/urandom >"$D/msg"

# same FILE1 FILE2 "description": the two files are identical.
same() {
    if cmp -s "$1" "$2"; then
        ok "$3"
    else
        not_ok "$3 (files differ)"
    fi
}

# Objects on the token (token objects only: other sessions' are invisible).
count_objects() {
    GNUTLS_PIN=$(cat "$PINFILE") p11tool --login --list-all "$TOKURI" \
        2>/dev/null | grep -c 'URL:'
}

# ------------------------------------------------------------------ RSA

# decrypt LABEL IN OUT [pkeyopts...]: decrypt on the token.
decrypt() {
    l=$1 in=$2 out=$3
    shift 3
    openssl pkeyutl -decrypt $PROV -inkey "$(privuri "$l")" -in "$in" \
        -out "$out" "$@"
}

# swenc LABEL IN OUT [pkeyopts...]: plain openssl, exported public key.
swenc() {
    l=$1 in=$2 out=$3
    shift 3
    openssl pkeyutl -encrypt -pubin -inkey "$D/$l.pub" -in "$in" -out "$out" \
        "$@"
}

OAEP="-pkeyopt rsa_padding_mode:oaep"
for bits in 2048 3072; do
    l=rsa$bits
    check "RSA-$bits key on the token" keygen "$l" "rsa:$bits"
    check "RSA-$bits: export the public key" \
        openssl pkey $PROV -in "$(pubkuri "$l")" -pubin -pubout -out "$D/$l.pub"

    swenc "$l" "$D/msg" "$D/$l.pkcs1"
    check "RSA-$bits: PKCS#1 v1.5 decrypts on the token" \
        decrypt "$l" "$D/$l.pkcs1" "$D/$l.pkcs1.out"
    same "$D/msg" "$D/$l.pkcs1.out" "RSA-$bits: PKCS#1 v1.5 plaintext"

    swenc "$l" "$D/msg" "$D/$l.oaep" $OAEP
    check "RSA-$bits: OAEP (SHA-1 default) decrypts on the token" \
        decrypt "$l" "$D/$l.oaep" "$D/$l.oaep.out" $OAEP
    same "$D/msg" "$D/$l.oaep.out" "RSA-$bits: OAEP plaintext"

    # OAEP with SHA-256: SoftHSM2 does OAEP with SHA-1 only.
    swenc "$l" "$D/msg" "$D/$l.oaep256" $OAEP -pkeyopt rsa_oaep_md:sha256
    if decrypt "$l" "$D/$l.oaep256" "$D/$l.oaep256.out" $OAEP \
        -pkeyopt rsa_oaep_md:sha256 2>"$D/err"; then
        same "$D/msg" "$D/$l.oaep256.out" "RSA-$bits: OAEP-SHA256 plaintext"
    else
        assert_grep 'does not support OAEP with SHA-256, MGF1 with SHA-256 \((CKR_MECHANISM_PARAM_INVALID|CKR_ARGUMENTS_BAD)\)' \
            "$D/err" "RSA-$bits: OAEP-SHA256 refused with a clear message"
        diag "the token does not do OAEP with SHA-256"
    fi

    # OAEP with a label: SoftHSM2 2.6 takes a label and ignores it (a
    # labelled ciphertext fails, an unlabelled one decrypts with a label).
    swenc "$l" "$D/msg" "$D/$l.label" $OAEP -pkeyopt rsa_oaep_label:0a0b0c0d
    if decrypt "$l" "$D/$l.label" "$D/$l.label.out" $OAEP \
        -pkeyopt rsa_oaep_label:0a0b0c0d 2>"$D/err"; then
        same "$D/msg" "$D/$l.label.out" "RSA-$bits: OAEP with a label"
    elif grep -q 'token that ignores OAEP labels' "$D/err"; then
        skip "RSA-$bits: OAEP with a label: the token ignores labels (SoftHSM2 2.6)"
    else
        not_ok "RSA-$bits: OAEP with a label"
        diag "$(tail -n 3 "$D/err")"
    fi

    # Encryption through the provider runs in software; the token decrypts.
    check "RSA-$bits: provider encrypts (PKCS#1) with the token key" \
        openssl pkeyutl -encrypt $PROV -inkey "$(privuri "$l")" \
        -in "$D/msg" -out "$D/$l.penc"
    decrypt "$l" "$D/$l.penc" "$D/$l.penc.out" 2>/dev/null
    same "$D/msg" "$D/$l.penc.out" "RSA-$bits: provider-encrypted data decrypts"
    openssl pkeyutl -encrypt $PROV -inkey "$(privuri "$l")" $OAEP \
        -in "$D/msg" -out "$D/$l.penc2" 2>/dev/null
    decrypt "$l" "$D/$l.penc2" "$D/$l.penc2.out" $OAEP 2>/dev/null
    same "$D/msg" "$D/$l.penc2.out" "RSA-$bits: provider OAEP round trip"
done

# Raw RSA (CKM_RSA_X_509): a full-size block below the modulus.
l=rsa2048
{ printf '\000'; head -c 255 /dev/urandom; } >"$D/raw"
swenc "$l" "$D/raw" "$D/raw.enc" -pkeyopt rsa_padding_mode:none
check "RSA: raw (no padding) decrypts on the token" \
    decrypt "$l" "$D/raw.enc" "$D/raw.out" -pkeyopt rsa_padding_mode:none
same "$D/raw" "$D/raw.out" "RSA: raw plaintext, leading zero kept"

# PKCS#1 v1.5 with implicit rejection (the token decrypts raw, the padding
# is checked in software in constant time): a tampered ciphertext is no
# error, but a message derived from it and the key, the same every time.
cp "$D/$l.pkcs1" "$D/bad"
printf '\377\377\377\377' | dd of="$D/bad" bs=1 seek=100 conv=notrunc 2>/dev/null
cp "$D/$l.pkcs1" "$D/bad2"
printf '\001' | dd of="$D/bad2" bs=1 seek=7 conv=notrunc 2>/dev/null
for i in 1 2; do
    decrypt "$l" "$D/bad" "$D/bad.out$i" >"$D/bad.log$i" 2>&1
    echo "rc=$?" >>"$D/bad.log$i"
done
if grep -q 'rc=0' "$D/bad.log1" && grep -q 'rc=0' "$D/bad.log2" &&
    cmp -s "$D/bad.out1" "$D/bad.out2" && ! cmp -s "$D/bad.out1" "$D/msg"; then
    ok "RSA: a tampered PKCS#1 v1.5 ciphertext decrypts to the same made-up message twice, without an error"
else
    not_ok "RSA: a tampered PKCS#1 v1.5 ciphertext decrypts to the same made-up message twice, without an error"
    diag "$(cat "$D/bad.log1" "$D/bad.log2")"
fi
if grep -Eq 'CKR_|error' "$D/bad.log1" "$D/bad.log2"; then
    not_ok "... and nothing tells it from a good one (no CKR code, no error)"
else
    ok "... and nothing tells it from a good one (no CKR code, no error)"
fi
decrypt "$l" "$D/bad2" "$D/bad2.out" 2>/dev/null
if [ -e "$D/bad2.out" ] && ! cmp -s "$D/bad2.out" "$D/bad.out1"; then
    ok "... another tampered ciphertext: another message"
else
    not_ok "... another tampered ciphertext: another message"
fi
should_fail 1 'rsa_pkcs1_implicit_rejection:0 reports bad paddings, a padding oracle .*p11ca-rsa-pkcs1-decrypt = yes' \
    "RSA: rsa_pkcs1_implicit_rejection:0 is refused without p11ca-rsa-pkcs1-decrypt" \
    decrypt "$l" "$D/$l.pkcs1" "$D/x" -pkeyopt rsa_pkcs1_implicit_rejection:0
check "... with P11CA_RSA_PKCS1_DECRYPT=yes a good ciphertext decrypts" \
    env $OPENSSL_ENV P11CA_RSA_PKCS1_DECRYPT=yes openssl pkeyutl -decrypt $PROV \
    -inkey "$(privuri "$l")" -in "$D/$l.pkcs1" -out "$D/ex.out" \
    -pkeyopt rsa_pkcs1_implicit_rejection:0
same "$D/msg" "$D/ex.out" "... to the message"
# The token's own CKM_RSA_PKCS answers a tampered ciphertext.  SoftHSM2
# decrypts with the process's OpenSSL: 3.0 reports the bad padding (an
# error naming C_Decrypt), 3.2+ rejects implicitly itself (a made-up
# message, CKR_OK): either way the answer is the token's, unchanged.
env $OPENSSL_ENV P11CA_RSA_PKCS1_DECRYPT=yes openssl pkeyutl -decrypt $PROV \
    -inkey "$(privuri "$l")" -in "$D/bad" -out "$D/ex.bad" \
    -pkeyopt rsa_pkcs1_implicit_rejection:0 >/dev/null 2>"$D/ex.err"
rc=$?
if [ $rc -eq 1 ] && grep -q 'C_Decrypt on token .*CKR_' "$D/ex.err"; then
    ok "... and a tampered one names C_Decrypt and the CKR code (explicit rejection, as asked)"
elif [ $rc -eq 0 ] && ! openssl version | grep -q '^OpenSSL 3\.[01]\.' &&
    [ -s "$D/ex.bad" ] && ! cmp -s "$D/ex.bad" "$D/msg"; then
    ok "... and a tampered one: the token's own answer (SoftHSM2 on OpenSSL $(openssl version | cut -d' ' -f2) rejects implicitly itself)"
else
    not_ok "... and a tampered one: an error naming C_Decrypt, or the token's own answer (exit $rc)"
    diag "$(cat "$D/ex.err")"
fi
# A key the token may not use raw (CKA_ALLOWED_MECHANISMS without
# CKM_RSA_X_509): PKCS#1 v1.5 decryption only where openssl.cnf accepts the
# token's own, which reports bad paddings.
p11ca --pin-source "$PINFILE" key gen --uri "$TOKURI;object=rsanoraw" \
    --type rsa:2048 --allowed-mechanisms RSA-PKCS,RSA-PKCS-OAEP >/dev/null
openssl pkey $PROV -in "$(pubkuri rsanoraw)" -pubin -pubout -out "$D/noraw.pub"
openssl pkeyutl -encrypt -pubin -inkey "$D/noraw.pub" -in "$D/msg" -out "$D/noraw.ct"
should_fail 1 'implicit rejection needs raw RSA decryption on the token \(CKM_RSA_X_509\), and the key.s CKA_ALLOWED_MECHANISMS do not include it.*p11ca-rsa-pkcs1-decrypt = yes' \
    "RSA: no raw decryption allowed: PKCS#1 v1.5 refused, naming the option" \
    decrypt rsanoraw "$D/noraw.ct" "$D/x"
env $OPENSSL_ENV P11CA_RSA_PKCS1_DECRYPT=yes openssl pkeyutl -decrypt $PROV \
    -inkey "$(privuri rsanoraw)" -in "$D/noraw.ct" -out "$D/noraw.out" 2>/dev/null
same "$D/msg" "$D/noraw.out" "... with P11CA_RSA_PKCS1_DECRYPT=yes it decrypts on the token's CKM_RSA_PKCS"
l=rsa2048 # decrypt() set it

# Errors.
should_fail 1 'padding mode "pss" is not supported' "RSA: PSS padding is refused for decryption" \
    decrypt "$l" "$D/$l.pkcs1" "$D/x" -pkeyopt rsa_padding_mode:pss
should_fail 1 'OAEP digest "md5" is not supported' "RSA: OAEP with MD5 is refused" \
    decrypt "$l" "$D/$l.oaep" "$D/x" $OAEP -pkeyopt rsa_oaep_md:md5
should_fail 1 'Could not (read|find) private key|public key' "RSA: decrypt with a public-key URI fails cleanly" \
    openssl pkeyutl -decrypt $PROV -inkey "$(pubkuri "$l")" -in "$D/$l.pkcs1"

# The label must bind: a ciphertext made without it must not decrypt.
if decrypt "$l" "$D/$l.oaep" "$D/x" $OAEP -pkeyopt rsa_oaep_label:0a0b0c0d \
    2>/dev/null; then
    skip "RSA: OAEP label mismatch refused: the token ignores labels (SoftHSM2 2.6)"
else
    ok "RSA: OAEP label mismatch refused"
fi

# TLS 1.2 RSA key transport: the premaster secret is decrypted on the token
# (RSA_PKCS1_WITH_TLS_PADDING).  libssl also checks that the key can sign.
openssl req -new -x509 -newkey rsa:2048 -nodes -keyout "$D/ca.key" \
    -subj "/CN=DD Test CA" -days 2 -out "$D/ca.pem" 2>/dev/null
openssl req -new -newkey rsa:2048 -nodes -keyout "$D/tmp.key" \
    -subj "/CN=server.test" -out "$D/tmp.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$D/srv.ext"
check "TLS: certificate for the token RSA key" \
    openssl x509 -req -in "$D/tmp.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" \
    -CAcreateserial -force_pubkey "$D/rsa2048.pub" -extfile "$D/srv.ext" \
    -days 2 -out "$D/srv.pem"
port=$(free_port)
start_server_ready "$D/server.log" $PROV -accept "127.0.0.1:$port" -naccept 1 \
    -tls1_2 -cipher AES128-GCM-SHA256 -www -cert "$D/srv.pem" \
    -key "$(privuri rsa2048)"
printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client -connect "127.0.0.1:$port" \
    -tls1_2 -cipher AES128-GCM-SHA256 -CAfile "$D/ca.pem" -verify_return_error \
    -ign_eof >"$D/client.log" 2>&1
server_done
if grep -q 'Cipher is AES128-GCM-SHA256' "$D/client.log" \
    && grep -q 'Verify return code: 0' "$D/client.log"; then
    ok "TLS 1.2 RSA key transport: premaster decrypted on the token"
elif grep -q 'no suitable signature algorithm' "$D/server.log"; then
    skip "TLS 1.2 RSA key transport: p11ca has no RSA signature yet"
else
    not_ok "TLS 1.2 RSA key transport"
    diag "$(tail -n 5 "$D/server.log")"
    diag "$(tail -n 5 "$D/client.log")"
fi

# ----------------------------------------------------------------- ECDH

before=$(count_objects)
for curve in P-256 P-384; do
    l=ec$curve
    check "EC $curve key on the token" keygen "$l" "ec:$curve"
    check "EC $curve: export the public key" \
        openssl pkey $PROV -in "$(pubkuri "$l")" -pubin -pubout -out "$D/$l.pub"
    openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$curve" \
        -out "$D/peer$curve.key"
    openssl pkey -in "$D/peer$curve.key" -pubout -out "$D/peer$curve.pub"
    check "ECDH $curve on the token" \
        openssl pkeyutl -derive $PROV -inkey "$(privuri "$l")" \
        -peerkey "$D/peer$curve.pub" -out "$D/$l.z"
    openssl pkeyutl -derive -inkey "$D/peer$curve.key" -peerkey "$D/$l.pub" \
        -out "$D/$l.zsw"
    same "$D/$l.z" "$D/$l.zsw" "ECDH $curve: the token's secret is plain openssl's"
    case $curve in P-256) size=32 ;; *) size=48 ;; esac
    assert_eq "$(wc -c <"$D/$l.z" | tr -d ' ')" "$size" \
        "ECDH $curve: the secret has the field size ($size bytes)"
done

KDF="-pkeyopt kdf-type:X963KDF -pkeyopt kdf-digest:SHA256 -pkeyopt kdf-outlen:40 -pkeyopt hexkdf-ukm:00112233"
check "ECDH with the X9.63 KDF on the token" \
    openssl pkeyutl -derive $PROV -inkey "$(privuri ecP-256)" \
    -peerkey "$D/peerP-256.pub" $KDF -out "$D/kdf"
openssl pkeyutl -derive -inkey "$D/peerP-256.key" -peerkey "$D/ecP-256.pub" \
    $KDF -out "$D/kdf.sw"
same "$D/kdf" "$D/kdf.sw" "ECDH X9.63 KDF: same 40 bytes as plain openssl"

should_fail 1 'peer key is on secp384r1 but .* is on prime256v1' \
    "ECDH: a peer on another curve is refused by name" \
    openssl pkeyutl -derive $PROV -inkey "$(privuri ecP-256)" \
    -peerkey "$D/peerP-384.pub"
should_fail 1 'cofactor mode is not supported' "ECDH: cofactor mode 1 is refused" \
    openssl pkeyutl -derive $PROV -inkey "$(privuri ecP-256)" \
    -peerkey "$D/peerP-256.pub" -pkeyopt ecdh_cofactor_mode:1
should_fail 1 'KDF "X942KDF-ASN1" is not supported' "ECDH: an unknown KDF is refused" \
    openssl pkeyutl -derive $PROV -inkey "$(privuri ecP-256)" \
    -peerkey "$D/peerP-256.pub" -pkeyopt kdf-type:X942KDF-ASN1
should_fail 1 'Could not (read|find) private key|public key' \
    "ECDH with a public-key URI fails cleanly" \
    openssl pkeyutl -derive $PROV -inkey "$(pubkuri ecP-256)" \
    -peerkey "$D/peerP-256.pub"
# Run derives again, then count: derived secrets are session objects.
for i in 1 2 3; do
    openssl pkeyutl -derive $PROV -inkey "$(privuri ecP-256)" \
        -peerkey "$D/peerP-256.pub" -out "$D/z$i" 2>/dev/null
done
assert_eq "$(count_objects)" "$((before + 4))" \
    "ECDH leaves no object on the token (only the 2 new key pairs)"

# Software keys keep working when p11ca is loaded (and may be handled by
# our keymgmt, in software).
check "ECDH with a software key while p11ca is loaded" \
    openssl pkeyutl -derive $PROV -inkey "$D/peerP-256.key" \
    -peerkey "$D/ecP-256.pub" -out "$D/swz"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out "$D/sw.key" 2>/dev/null
openssl pkeyutl -encrypt -inkey "$D/sw.key" -in "$D/msg" -out "$D/sw.enc"
check "RSA decryption with a software key while p11ca is loaded" \
    openssl pkeyutl -decrypt $PROV -inkey "$D/sw.key" -in "$D/sw.enc"

# Leaks: one decryption and one derivation under valgrind.  The provider
# is unloaded before the leak report: --keep-debuginfo names its frames.
# p11-kit's own state (allocated inside libp11-kit) is left by design: the
# provider does not C_Finalize at teardown (SoftHSM2 crashes then), as
# tests/lsan.supp says for ASan.
cat >"$D/p11kit.supp" <<'SUPP'
{
   p11-kit internal state of a module that is not finalized
   Memcheck:Leak
   match-leak-kinds: definite,indirect
   fun:*alloc
   obj:*/libp11-kit.so*
}
SUPP
# errors_from_p11ca LOG: valgrind's leak and error records through our code.
errors_from_p11ca() {
    sed 's/^==[0-9]*== \{0,1\}//' "$1" | awk -v RS= '
        /are (definitely|indirectly) lost|Invalid (read|write|free)|uninitialised|Conditional jump|Mismatched|Syscall param/ &&
        /\/(provider|src)\/[a-z_0-9\/]+\.c:/'
}
if [ -n "${VALGRIND:-}" ]; then
    for op in decrypt derive; do
        if [ $op = decrypt ]; then
            set -- -decrypt -inkey "$(privuri rsa2048)" -in "$D/rsa2048.pkcs1"
        else
            set -- -derive -inkey "$(privuri ecP-256)" -peerkey "$D/peerP-256.pub"
        fi
        rm -f "$D/vg.out"
        "$VALGRIND" --leak-check=full --show-leak-kinds=definite,indirect \
            --keep-debuginfo=yes --fullpath-after= \
            --suppressions="$top_srcdir/tests/valgrind.supp" \
            --suppressions="$D/p11kit.supp" \
            openssl pkeyutl $PROV "$@" -out "$D/vg.out" >"$D/vg.log" 2>&1
        errors_from_p11ca "$D/vg.log" >"$D/vg.leaks"
        if [ ! -s "$D/vg.out" ]; then
            not_ok "valgrind: $op under valgrind failed"
            diag "$(tail -n 5 "$D/vg.log")"
        elif [ -s "$D/vg.leaks" ]; then
            not_ok "valgrind: no leak or memory error from p11ca in $op"
            diag "$(head -n 40 "$D/vg.leaks")"
        else
            ok "valgrind: no leak or memory error from p11ca in $op"
        fi
    done
else
    skip "valgrind: not in this build"
    skip "valgrind: not in this build"
fi

done_testing

#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# p11ca enroll when things go wrong or change: a fault between key
# generation and certificate write (faulty-pkcs11), then --resume and,
# separately, --cleanup; refusals that change nothing; a wrong PIN three
# times (no C_Login replay); renewal and re-key with the registry link and
# the token objects checked; a lost card; p11ca token show and its warnings;
# rate limits (an enrollment is the operator's issuance, not a sign-up).
set -u
. "$top_srcdir/tests/integration/enroll-setup.sh"
FAULTY=$top_builddir/tests/faulty-pkcs11/.libs/libfaulty-pkcs11.so
[ -f "$FAULTY" ] || plan_skip "faulty-pkcs11 is not built (make check builds it)"
command -v p11tool >/dev/null || plan_skip "p11tool (gnutls-bin) is not installed"
GNUTLS_PIN=$(cat "$PINFILE")
export GNUTLS_PIN

# faulty RULES CMD...: run CMD with the fault injector in front of SoftHSM2.
faulty() {
    rules=$1
    shift
    FAULTY_PKCS11_MODULE=$SOFTHSM_MODULE FAULTY_PKCS11_FAULTS=$rules \
        FAULTY_PKCS11_LOG=$D/calls.log "$@"
}
# json FILE EXPR: a value of a JSON document (python3 expression on d).
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
# status SERIAL / replaces SERIAL: from the registry, via p11ca cert show.
status() { p11ca cert show --dir "$CA" --json "$1" >"$D/show.json" && json "$D/show.json" 'd["status"]'; }
replaces() { p11ca cert show --dir "$CA" --json "$1" >"$D/show.json" && json "$D/show.json" 'd["replaces"]'; }
# Objects on a card as p11tool sees them (logged in through GNUTLS_PIN).
objs() { p11tool --login --list-all "pkcs11:token=$1" 2>/dev/null; }
nobj() { objs "$1" | grep -c "type=$2\$"; }
# id_of CARD LABEL CLASS: the id= of an object's URI.
id_of() { objs "$1" | grep -o "id=[^;]*;object=$2;type=$3\$" | sed 's/;.*//'; }
serial_on() { card_cert "$1" "$2" "$D/on.pem" && cert_serial "$D/on.pem"; }

# --- A fault after the key was made: --resume ------------------------------
card card-f
should_fail 3 'with --resume to write it, or with --cleanup' \
    "a failed certificate write says how to resume or clean up" \
    faulty C_CreateObject:1:CKR_DEVICE_ERROR p11ca --module "$FAULTY" enroll \
    --token "$(cardq card-f)" --ca "$CA" --profile client --subject /CN=f-user \
    --type ec:P-256
assert_grep 'C_CreateObject.*CKR_DEVICE_ERROR' "$TT/err" "the message names the failed call"
assert_grep 'C_CreateObject CKR_DEVICE_ERROR \[injected\]' "$D/calls.log" \
    "the fault was injected at the certificate write"
assert_eq "$(nobj card-f private) $(nobj card-f cert)" "1 0" \
    "the card holds the key without a certificate"
p11ca cert list --dir "$CA" --client-id f-user --json >"$D/f.json"
f_serial=$(json "$D/f.json" 'd[0]["serial"]')
assert_eq "$(json "$D/f.json" 'len(d)') $(status "$f_serial")" "1 activated" \
    "the CA recorded the certificate before handing it out"
p11ca token show --dir "$CA" "$(cardq card-f)" >"$D/show.txt" 2>&1
assert_grep 'warning: key "f-user" .* has no certificate: an enrollment did not finish' \
    "$D/show.txt" "token show warns about the key without a certificate"
should_fail 2 'without a certificate: an earlier enrollment did not finish.*--resume.*--cleanup' \
    "a plain enroll refuses the half-enrolled card and explains" \
    enroll card-f --profile client --subject /CN=f-user --type ec:P-256
assert_eq "$(nobj card-f private)" 1 "the refusal changed nothing on the card"
check "enroll --resume finishes with that key" \
    enroll card-f --profile client --subject /CN=f-user --type ec:P-256 --resume --json
cp "$TT/out" "$D/resume.json"
assert_eq "$(json "$D/resume.json" 'd["action"], d["reused"], d["serial"]')" \
    "resumed True $f_serial" \
    "--resume writes the certificate the CA issued before (no second issuance)"
assert_eq "$(id_of card-f f-user cert)" "$(id_of card-f f-user private)" \
    "the resumed certificate carries the key's CKA_ID"
assert_eq "$(p11ca cert list --dir "$CA" --client-id f-user --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 1 \
    "still one certificate for the client ID"
login_openssl tls1_3 card-f f-user f-user
should_fail 2 'with a certificate already: use --renew or --rekey' \
    "enrolling an enrolled card again is refused" \
    enroll card-f --profile client --subject /CN=f-user --resume

# --- A fault after the key was made: --cleanup ------------------------------
card card-c
faulty C_CreateObject:1:CKR_DEVICE_ERROR p11ca --module "$FAULTY" enroll \
    --token "$(cardq card-c)" --ca "$CA" --profile client --subject /CN=c-user \
    --type ec:P-256 >/dev/null 2>&1
old_id=$(id_of card-c c-user private)
c_old=$(p11ca cert list --dir "$CA" --client-id c-user --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["serial"])')
check "enroll --cleanup deletes the unfinished key and enrolls afresh" \
    enroll card-c --profile client --subject /CN=c-user --type ec:P-256 --cleanup
assert_grep "revoked certificate $c_old, issued for the deleted key" "$TT/err" \
    "--cleanup says it revoked what was issued for the deleted key"
new_id=$(id_of card-c c-user private)
if [ -n "$new_id" ] && [ "$new_id" != "$old_id" ] && [ "$(nobj card-c private)" = 1 ] &&
    [ "$(id_of card-c c-user cert)" = "$new_id" ]; then
    ok "the card holds one new key with its certificate; the old key is gone"
else
    not_ok "the card holds one new key with its certificate ($old_id -> $new_id)"
    diag "$(objs card-c)"
fi
assert_eq "$(status "$c_old") $(status "$(serial_on card-c c-user)")" "revoked activated" \
    "registry: the orphan certificate is revoked, the new one activated"
login_openssl tls1_2 card-c c-user c-user

# A certificate without its key, then --cleanup of that.
card card-k
openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$D/lone.key" -subj /CN=lone -days 5 -out "$D/lone.pem" 2>/dev/null
p11ca --pin-source "$PINFILE" cert import --id 99aa --label k-user "pkcs11:token=card-k" \
    "$D/lone.pem" >/dev/null
p11ca token show --json --dir "$CA" "$(cardq card-k)" >"$D/k.json"
assert_eq "$(json "$D/k.json" 'len(d["keys"]), len(d["certificates_without_key"]), d["certificates_without_key"][0]["days_left"] <= 5')" \
    "0 1 True" "token show --json: a certificate without key"
assert_grep 'has no key on this token' "$D/k.json" "token show warns about it"
assert_grep 'expires in [0-9] day' "$D/k.json" "token show warns about a certificate expiring within 30 days"
should_fail 2 'certificate labelled "k-user" without its key.*--cleanup' \
    "enroll refuses a label held by a certificate without key" \
    enroll card-k --profile client --subject /CN=k-user
check "--cleanup removes it and enrolls" \
    enroll card-k --profile client --subject /CN=k-user --cleanup
assert_eq "$(nobj card-k cert) $(nobj card-k private)" "1 1" "one key, one certificate"

# --- Refusals that change nothing --------------------------------------------
card card-z
should_fail 2 'requires a subjectAltName' "a profile the request cannot satisfy is refused first" \
    enroll card-z --profile server --subject /CN=z-user
should_fail 2 'no profile "nope"' "an unknown profile is refused" \
    enroll card-z --profile nope --subject /CN=z-user
should_fail 2 'max_days' "a validity over max_days is refused" \
    enroll card-z --profile client --subject /CN=z-user --days 9999
should_fail 2 'RSA keys of 1024 bits are not supported' "a weak key type is refused" \
    enroll card-z --profile client --subject /CN=z-user --type rsa:1024
should_fail 2 'held by activated certificate.*revoke it first' \
    "a client ID held by another card is refused" \
    enroll card-z --profile client --subject /CN=f-user
should_fail 1 'give --token URI and --ca DIR' "usage: --token and --ca" \
    p11ca enroll --profile client --subject /CN=x
should_fail 1 '--renew keeps the key' "usage: --renew with --type" \
    enroll card-z --renew --type ec:P-256 --label x
should_fail 2 'nothing to renew' "--renew without an enrolled key" \
    enroll card-z --renew --label z-user
assert_eq "$(objs card-z | grep -c 'type=')" 0 "none of these left anything on the card"
assert_eq "$(p11ca cert list --dir "$CA" --client-id z-user --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 0 \
    "none of these recorded a certificate"

# --- A wrong PIN, three times: sent once ---------------------------------------
# The token refused the PIN file at the first attempt; the next processes do
# not send it again (the token's PIN state in $XDG_STATE_HOME/p11ca), so a
# retry loop cannot lock a card.
card card-w
printf 'wrong-%s' "$TEST_PIN" >"$D/bad.pin"
chmod 600 "$D/bad.pin"
rm -f "$D/calls.log"
for i in 1 2 3; do
    re='not sending the PIN from PIN file .*/bad.pin: the token refused it at [0-9T:-]+Z'
    [ $i = 1 ] && re='C_Login on token "card-w": CKR_PIN_INCORRECT .*the PIN was refused'
    should_fail 3 "$re" "wrong PIN, attempt $i: the refusal is reported" \
        faulty "" p11ca --module "$FAULTY" enroll --token "pkcs11:token=card-w;pin-source=$D/bad.pin" \
        --ca "$CA" --profile client --subject /CN=w-user
    cp "$TT/err" "$D/pin$i.err"
done
assert_eq "$(grep -c ' C_Login ' "$D/calls.log") $(cut -d' ' -f1 "$D/calls.log" | sort -u | wc -l)" \
    "1 3" "three processes, one C_Login: a PIN file the token refused is not sent again"
printf 'wrong-again-%s' "$TEST_PIN" >"$D/bad.pin"
should_fail 3 'CKR_PIN_INCORRECT .*the PIN was refused' \
    "the PIN file changed: sent once more (and refused)" \
    faulty "" p11ca --module "$FAULTY" enroll --token "pkcs11:token=card-w;pin-source=$D/bad.pin" \
    --ca "$CA" --profile client --subject /CN=w-user
cp "$TT/err" "$D/pin4.err"
assert_eq "$(grep -c ' C_Login ' "$D/calls.log")" 2 "... one more C_Login"
p11ca token list --json "pkcs11:token=card-w" >"$D/w.json"
flags=$(json "$D/w.json" '" ".join(d[0]["flags"])')
case $flags in
*user-pin-count-low* | *user-pin-final-try* | *user-pin-locked*)
    assert_grep 'tries left|LOCKED' "$D/pin4.err" "the message passes on the tries left the token reports ($flags)" ;;
*)
    if grep -q 'tries left' "$D/pin4.err"; then
        not_ok "no tries-left claim when the token reports none"
    else
        ok "the token reports no remaining tries: the message claims none"
    fi ;;
esac
for i in 1 2 3; do
    assert_no_grep "$TEST_PIN" "$D/pin$i.err" "no PIN in the message of attempt $i"
done
check "the right PIN works after three wrong ones (SoftHSM2 does not lock)" \
    enroll card-w --profile client --subject /CN=w-user --type ec:P-256

# --- Renewal --------------------------------------------------------------------
card card-r
check "enroll a card with a short validity" \
    enroll card-r --profile client --subject /CN=r-user --type ec:P-256 --days 10
r1=$(serial_on card-r r-user)
key_id=$(id_of card-r r-user private)
p11ca token show --dir "$CA" "$(cardq card-r)" >"$D/show.txt"
assert_grep "certificate \"r-user\" \\(serial $r1\\) expires in (9|10) day" "$D/show.txt" \
    "token show warns 30 days before expiry"
assert_grep "registry: activated, client ID r-user" "$D/show.txt" "token show gives the registry status"
check "enroll --renew" enroll card-r --renew --label r-user --json
r2=$(json "$TT/out" 'd["serial"]')
assert_eq "$(replaces "$r2") $(status "$r2") $(status "$r1")" "$r1 activated revoked" \
    "registry: the new certificate replaces the old, the client ID moved to it, the old one is revoked"
assert_eq "$(serial_on card-r r-user) $(nobj card-r cert) $(id_of card-r r-user cert)" \
    "$r2 1 $key_id" "the card holds the new certificate only, next to the same key"
login_openssl tls1_3 card-r r-user r-user

# --- Re-key -----------------------------------------------------------------------
check "enroll --rekey" enroll card-r --rekey --label r-user --json
r3=$(json "$TT/out" 'd["serial"]')
k3=$(id_of card-r r-user private)
assert_eq "$(replaces "$r3") $(status "$r3") $(status "$r2")" "$r2 activated revoked" \
    "registry: the re-keyed certificate replaces the renewed one, which is revoked"
if [ -n "$k3" ] && [ "$k3" != "$key_id" ] && [ "$(id_of card-r r-user cert)" = "$k3" ] &&
    [ "$(serial_on card-r r-user)" = "$r3" ]; then
    ok "the new key has a new CKA_ID and the label, with its certificate"
else
    not_ok "the new key has a new CKA_ID and the label ($key_id -> $k3)"
    diag "$(objs card-r)"
fi
old_label=r-user.old-$(echo "$r2" | cut -c1-8)
assert_eq "$(id_of card-r "$old_label" private) $(id_of card-r "$old_label" cert)" \
    "$key_id $key_id" "without --remove-old the old key and certificate stay, relabelled $old_label"
login_openssl tls1_2 card-r r-user r-user

# An interrupted re-key, resumed.
should_fail 3 'CKR_DEVICE_ERROR' "a fault while re-keying" \
    faulty C_CreateObject:1:CKR_DEVICE_ERROR p11ca --module "$FAULTY" enroll \
    --token "$(cardq card-r)" --ca "$CA" --rekey --label r-user --remove-old
assert_eq "$(id_of card-r r-user private)" "$k3" "the card still logs in with the previous key"
should_fail 2 'holds key "r-user.rekey" .* without a certificate' \
    "a re-key that did not finish is reported" \
    enroll card-r --rekey --label r-user --remove-old
check "enroll --rekey --resume --remove-old" \
    enroll card-r --rekey --label r-user --remove-old --resume --json
r4=$(json "$TT/out" 'd["serial"]')
k4=$(id_of card-r r-user private)
if [ -n "$k4" ] && [ "$k4" != "$k3" ] && ! objs card-r | grep -q "$k3" &&
    [ "$(serial_on card-r r-user)" = "$r4" ] && [ -z "$(id_of card-r r-user.rekey private)" ]; then
    ok "--remove-old: the previous key and certificate are gone, the new ones have the label"
else
    not_ok "--remove-old: the previous key and certificate are gone"
    diag "$(objs card-r)"
fi
assert_eq "$(replaces "$r4") $(status "$r4") $(status "$r3")" "$r3 activated revoked" \
    "registry: the link survives the interruption"
login_openssl tls1_3 card-r r-user r-user

# --- A lost card ---------------------------------------------------------------------
card card-l1
card card-l2
enroll card-l1 --profile client --subject /CN=l-user --type ec:P-256 >/dev/null
l1=$(serial_on card-l1 l-user)
should_fail 2 'held by activated certificate' "a second card for the client ID is refused" \
    enroll card-l2 --profile client --subject /CN=l-user --type ec:P-256
assert_eq "$(objs card-l2 | grep -c 'type=')" 0 "no key was made on the second card"
check "lost card: cert revoke --client-id" \
    p11ca cert revoke --dir "$CA" --client-id l-user --reason keyCompromise --yes
check "a CRL that lists the lost card" p11ca crl --dir "$CA" --out "$D/ca.crl"
check "the replacement card is enrolled for the same client ID" \
    enroll card-l2 --profile client --subject /CN=l-user --type ec:P-256
l2=$(serial_on card-l2 l-user)
if [ "$l2" != "$l1" ] && [ "$(status "$l1") $(status "$l2")" = "revoked activated" ]; then
    ok "a new certificate; the old one stays revoked"
else
    not_ok "a new certificate; the old one stays revoked ($l1 $l2)"
fi
login_refused card-l1 l-user 'certificate revoked' "the lost card is refused (CRL)"
login_openssl tls1_3 card-l2 l-user l-user

# --- Rate limits: an enrollment by the operator is issuance, not a sign-up ----
# On the registry's test clock (at_clock): every command starts in second T.
T=2000000000
sed -i 's|^rate_limit *=.*|rate_limit = 1|' "$CA/ca.cnf"
sed -i 's/^client *= *profile_client$/&\nlimited = profile_limited/' "$CA/ca.cnf"
cat >>"$CA/ca.cnf" <<'CNF'

[ profile_limited ]
key_usage     = digitalSignature
ext_key_usage = clientAuth
rate_limit    = 1
CNF
for n in 1 2 3 4; do
    card "card-q$n"
done
check "sign-up limit 1 per second: an enrollment in second T" \
    at_clock $T enroll card-q1 --profile client --subject /CN=q1-user \
    --type ec:P-256 --wait 0
check "a second enrollment in second T: the sign-up limit does not hold it" \
    at_clock $T enroll card-q2 --profile client --subject /CN=q2-user \
    --type ec:P-256 --wait 0
check "a profile limited to 1 per second: an enrollment in second T" \
    at_clock $T enroll card-q3 --profile limited --subject /CN=q3-user \
    --type ec:P-256 --wait 0
before=$(p11ca cert list --dir "$CA" --count)
should_fail 4 'rate limit reached: the limit of profile "limited" \(rate_limit in \[ profile_limited \] of ca\.cnf\) allows 1 per second and 1 were recorded in this second; not waiting for a slot' \
    "--wait 0: another enrollment under that profile in second T is refused" \
    at_clock $T enroll card-q4 --profile limited --subject /CN=q4-user \
    --type ec:P-256 --wait 0
assert_eq "$(p11ca cert list --dir "$CA" --count) $(nobj card-q4 cert)" "$before 0" \
    "... nothing recorded, no certificate on the card"
check "--resume --wait 1: it waits for second T+1 and finishes" \
    at_clock $T enroll card-q4 --profile limited --subject /CN=q4-user \
    --type ec:P-256 --resume --wait 1
assert_eq "$(p11ca cert list --dir "$CA" --client-id q4-user --count \
    --issued-after @$((T + 1)) --issued-before @$((T + 2))) $(nobj card-q4 cert)" \
    "1 1" "... recorded in second T+1, the certificate on the card"
sed -i '0,/^rate_limit *=/s|^rate_limit *=.*|rate_limit = 15|' "$CA/ca.cnf"

# --- The PIN typed at the prompt: asked once, for the card and the provider ----
if command -v script >/dev/null; then
    card card-t
    # The PIN is typed once the prompt is on the terminal (tap.sh).
    tty_answer "$D/tty.log" 'Enter PIN for token "card-t"' "$PINFILE" \
        "\"$top_builddir/src/p11ca\" enroll --token pkcs11:token=card-t --ca \"$CA\" --profile client --subject /CN=t-user --type ec:P-256"
    assert_eq "$(grep -c 'Enter PIN for token "card-t"' "$D/tty.log") $(nobj card-t cert)" "1 1" \
        "a PIN typed at the prompt is asked once, for the card and the provider"
    assert_no_grep "$TEST_PIN" "$D/tty.log" "the typed PIN is not echoed"
else
    skip "script (util-linux) is not installed"
    skip "script (util-linux) is not installed"
fi

# --- The card pulled and put back at each step --------------------------------
# A removal (every session closed, the login lost) injected at the key
# generation, the CSR's signature and the certificate write: each enrollment
# logs in again by itself and ends with one key pair and its certificate.
n=0
for call in C_GenerateKeyPair C_Sign C_CreateObject; do
    n=$((n + 1))
    card "card-r$n"
    rm -f "$D/calls.log"
    check "a removal at $call: the enrollment finishes" \
        faulty "$call:1:CKR_DEVICE_REMOVED" p11ca --module "$FAULTY" enroll \
        --token "$(cardq "card-r$n")" --ca "$CA" --profile client \
        --subject "/CN=r$n-user" --type ec:P-256
    assert_eq "$(grep -c "$call CKR_DEVICE_REMOVED \[injected\]" "$D/calls.log") $(nobj "card-r$n" private) $(nobj "card-r$n" cert)" \
        "1 1 1" "... the removal was injected; one key and one certificate on the card"
    assert_eq "$(id_of "card-r$n" "r$n-user" cert)" "$(id_of "card-r$n" "r$n-user" private)" \
        "... the certificate carries the key's CKA_ID"
done

echo "1..$TAP_N"
done_testing

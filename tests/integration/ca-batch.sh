#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# issue --batch as a pipeline, with the CA key on the token: 2000 CSRs on
# standard input (every 7th with a bad signature, every 11th with the
# client ID of the one before it) are read and checked by worker threads,
# signed by a signer thread, recorded in group commits and written last.
# The output comes in the order of the CSRs, every file written is in the
# registry and every certificate recorded was written, the requests in
# flight never pass the ring's bound (the debug log says how many slots
# were ever in use: structural, not timing), a directory is issued in name
# order with two signers, on a terminal the progress line gives the rate
# in certificates per second, and a token that fails for good in the middle
# of a stream stops the batch at once, with what was recorded before it
# written, although the producer keeps standard input open.
set -u
. "$top_srcdir/tests/lib/prov.sh"
plan 21

D=$TT/batch
N=2000
GROUP=16
mkdir -p "$D/out" "$D/dir" "$D/dout" "$D/fout"
check "ca init: a P-256 CA key on the token" \
    p11ca --pin-source "$PINFILE" ca init --dir "$D/ca" \
    --subject "/CN=p11ca Batch CA" --key-uri "$TOKURI;object=batchroot" \
    --generate ec:P-256
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$D/k.key" 2>/dev/null
"$top_builddir/tests/progs/csr-stream" "$D/k.key" "$N" dev 7 11 >"$D/stream.pem"
# What the batch must say about each CSR, in order (the generator's rules).
awk -v n="$N" 'BEGIN {
    for (i = 1; i <= n; i++) {
        if (i % 7 == 0) { print i, "signature"; continue }
        cn = (i % 11 == 0) ? i - 1 : i
        if (cn in held) print i, "held"
        else { held[cn] = 1; print i, "issued", "dev-" cn }
    } }' >"$D/expected"
want=$(grep -c issued "$D/expected")

# npem DIR: the certificates written into DIR.
npem() { find "$1" -maxdepth 1 -name '*.pem' | wc -l | tr -d ' '; }
# A registry row's serial as p11ca prints it (as openssl does: upper case,
# an even number of digits).
SHOWN="upper(case when length(serial) % 2 then '0' || serial else serial end)"
# Rows of the registry: serial (as printed) and CN.
rows() { sqlite3 -separator ' ' "$1/registry.db" "select $SHOWN, cn from certs where profile = 'client' order by serial"; }

P11CA_DEBUG=ca
P11CA_DEBUG_FILE=$D/debug.log
export P11CA_DEBUG P11CA_DEBUG_FILE
p11ca issue --dir "$D/ca" --profile client --batch - --outdir "$D/out" \
    --group "$GROUP" <"$D/stream.pem" >"$D/stdout" 2>"$D/stderr"
rc=$?
unset P11CA_DEBUG P11CA_DEBUG_FILE
assert_eq "$rc" 2 "a stream of $N CSRs: exit 2 (some were refused)"
assert_no_grep 'Segmentation|AddressSanitizer|ThreadSanitizer|runtime error|valgrind:.*errors' \
    "$D/stderr" "... no crash or sanitizer report"
assert_eq "$(wc -l <"$D/stdout" | tr -d ' ')" "$want" "... $want certificates issued"
# The issued ones in the order of the stream: stdout's serials mapped to
# their CN by the registry.
rows "$D/ca" >"$D/rows"
awk 'NR == FNR { cn[$1] = $2; next } { print cn[$1] }' "$D/rows" "$D/stdout" >"$D/got-issued"
awk '$2 == "issued" { print $3 }' "$D/expected" >"$D/want-issued"
check "... reported in the order of the CSRs" cmp "$D/got-issued" "$D/want-issued"
# The refusals in order, each with its reason.
sed -n 's/^p11ca: CSR #\([0-9]*\) of standard input.*signature does not verify.*/\1 signature/p; s/^p11ca: CSR #\([0-9]*\) of standard input.*is held by activated certificate.*/\1 held/p' \
    "$D/stderr" >"$D/got-refused"
grep -v issued "$D/expected" >"$D/want-refused"
check "... each refusal in order, with its reason" cmp "$D/got-refused" "$D/want-refused"
assert_eq "$(grep -c '^p11ca: CSR #' "$D/stderr")" "$(wc -l <"$D/want-refused" | tr -d ' ')" \
    "... and no other refusal"
# Recorded before written: every file is in the registry, every row has its
# file (the batch ran to its end).
find "$D/out" -maxdepth 1 -name '*.pem' | sed 's|.*/||; s/\.pem$//' | sort >"$D/files"
cut -d' ' -f1 "$D/rows" | sort >"$D/serials"
check "... every certificate written is recorded, every one recorded is written" \
    cmp "$D/files" "$D/serials"
assert_eq "$(cd "$D/out" && openssl verify -CAfile "$D/ca/ca.pem" ./*.pem 2>&1 | grep -c ': OK$')" \
    "$want" "... openssl verify accepts all $want"
# The ring: 2 groups plus 4 slots per thread (workers: one per CPU; one
# signer for an EC key), whatever the length of the stream.
cpus=$(getconf _NPROCESSORS_ONLN)
bound=$((2 * GROUP + 4 * (cpus + 1)))
assert_grep "batch: $cpus workers, 1 signers, $bound slots, groups of $GROUP" \
    "$D/debug.log" "... $cpus workers, 1 signer, a ring of $bound slots"
peak=$(sed -n 's/.*batch: at most \([0-9]*\) of \([0-9]*\) slots in use.*/\1/p' "$D/debug.log")
if [ -n "$peak" ] && [ "$peak" -le "$bound" ] && [ "$peak" -gt 0 ]; then
    ok "... at most $peak requests in flight (the bound: $bound of $N)"
else
    not_ok "... requests in flight: '$peak' (the bound: $bound)"
fi

# A directory, in name order, with two signer threads.
"$top_builddir/tests/progs/csr-stream" "$D/k.key" 300 dir >"$D/dir.pem"
awk '/BEGIN/ { n++; f = sprintf("%s/c%04d.csr", dir, 301 - n) } { print >f }' \
    dir="$D/dir" "$D/dir.pem"
check "a directory of 300 CSRs with --signers 2" \
    p11ca issue --dir "$D/ca" --profile client --batch "$D/dir" \
    --outdir "$D/dout" --signers 2
rows "$D/ca" >"$D/rows"
awk 'NR == FNR { cn[$1] = $2; next } { print cn[$1] }' "$D/rows" "$TT/out" >"$D/got-dir"
awk 'BEGIN { for (i = 300; i >= 1; i--) print "dir-" i }' >"$D/want-dir"
check "... in the order of the file names" cmp "$D/got-dir" "$D/want-dir"
assert_eq "$(npem "$D/dout")" 300 "... 300 written"
# On a terminal (script(1)): the progress line, redrawn at each refusal.
mkdir -p "$D/tdir" "$D/tout"
"$top_builddir/tests/progs/csr-stream" "$D/k.key" 2 tty |
    awk '/BEGIN/ { n++; f = sprintf("%s/c%04d.csr", dir, n) } { print >f }' \
        dir="$D/tdir"
echo 'not a CSR' >"$D/tdir/c0000.csr"
script -qfec "'$top_builddir/src/p11ca' issue --dir '$D/ca' --profile client --batch '$D/tdir' --outdir '$D/tout'" \
    /dev/null </dev/null >"$D/tty.log" 2>&1
assert_grep 'issued 0, rejected 1, [0-9]+ certificates/s' "$D/tty.log" \
    "on a terminal: the progress line in certificates per second"
assert_eq "$(npem "$D/tout")" 2 "... and the other 2 issued"
should_fail 1 'signers goes with --batch' "--signers without --batch: usage" \
    p11ca issue --dir "$D/ca" --profile client --signers 2 "$D/dir/c0001.csr"

# The token fails for good at its 150th signature of this run, while the
# producer keeps standard input open: the batch stops, and what was
# recorded before the failure is written.
"$top_builddir/tests/progs/csr-stream" "$D/k.key" 400 fail >"$D/fail.pem"
mkfifo "$D/fifo"
{
    cat "$D/fail.pem"
    sleep 600
} >"$D/fifo" &
producer=$!
before=$(rows "$D/ca" | wc -l)
timeout 300 env FAULTY_PKCS11_MODULE="$SOFTHSM_MODULE" \
    FAULTY_PKCS11_FAULTS=C_Sign:150+:CKR_FUNCTION_FAILED \
    "$top_builddir/src/p11ca" --module "$top_builddir/tests/faulty-pkcs11/.libs/libfaulty-pkcs11.so" \
    issue --dir "$D/ca" --profile client --batch - --outdir "$D/fout" \
    <"$D/fifo" >"$D/fstdout" 2>"$D/fstderr"
rc=$?
kill "$producer" 2>/dev/null
wait "$producer" 2>/dev/null
assert_eq "$rc" 3 "a token failing for good: exit 3, with standard input still open"
assert_grep 'issue --batch stopped: signing the certificate failed: .*PKCS#11 token error' \
    "$D/fstderr" "... the message says the token failed the signature"
after=$(rows "$D/ca" | wc -l)
files=$(npem "$D/fout")
if [ "$files" -eq $((after - before)) ] && [ "$files" -gt 0 ] && [ "$files" -lt 400 ]; then
    ok "... $files certificates recorded before it, all $files written"
else
    not_ok "... $((after - before)) recorded, $files written (of 400)"
fi
missing=0
for f in "$D"/fout/*.pem; do
    s=$(basename "$f" .pem)
    [ "$(sqlite3 "$D/ca/registry.db" "select count(*) from certs where $SHOWN = '$s'")" = 1 ] ||
        missing=$((missing + 1))
done
assert_eq "$missing" 0 "... each file written is in the registry"
done_testing

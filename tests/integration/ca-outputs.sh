#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# What --out may replace (issue #12, items 1 and 3): a regular file is
# replaced atomically, a character device or a FIFO is written through and
# stays what it is, a symbolic link is refused unless --follow-symlinks, a
# directory is refused before anything is signed or recorded; a write that
# fails after the certificate was recorded says so, with the serial, and
# the certificate stays retrievable.
set -u
: "${top_srcdir:=.}" "${top_builddir:=.}"
. "$top_srcdir/tests/lib/tap.sh"
TT=$(mktemp -d "${TMPDIR:-/tmp}/p11ca-test.XXXXXX")
trap 'rm -rf "$TT"' EXIT
plan 48

D=$TT/ca
W=$TT/w
mkdir -p "$W"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$W/ca.key" 2>/dev/null
check "ca init" p11ca ca init --dir "$D" --subject "/CN=Outputs CA" \
    --key "$W/ca.key"
csr() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$W/$1.key" -subj "/CN=$1" -out "$W/$1.csr" 2>/dev/null
}
nrows() { sqlite3 "$D/registry.db" "select count(*) from certs"; }
for n in a b c d e f g h i j; do csr $n; done

# A character device: /dev/null's own kind (major 1, minor 3).  As root
# (CI) the test makes its own node with mknod and never names the
# machine's /dev/null: a regression, or this test run against an older
# p11ca, would replace that one with a regular file for everybody.  Not as
# root, /dev/null itself is safe (its directory is not writable).
NULLDEV=
if [ "$(id -u)" = 0 ]; then
    mknod "$TT/null" c 1 3 2>/dev/null && NULLDEV=$TT/null
else
    NULLDEV=/dev/null
fi
if [ -n "$NULLDEV" ]; then
    check "issue --out a character device (null)" \
        p11ca issue --dir "$D" --profile client --out "$NULLDEV" "$W/a.csr"
    assert_eq "$(stat -c '%F %t,%T' "$NULLDEV")" "character special file 1,3" \
        "the device is still the null device, not a regular file"
    check "crl --out a character device (null)" \
        p11ca crl --dir "$D" --out "$NULLDEV"
    assert_eq "$(stat -c '%F %t,%T' "$NULLDEV")" "character special file 1,3" \
        "crl left the device alone too"
    check "export-chain --out a character device (null)" \
        p11ca export-chain --dir "$D" --out "$NULLDEV" \
        "$(sqlite3 "$D/registry.db" 'select serial from certs limit 1')"
    assert_eq "$(stat -c '%F %t,%T' "$NULLDEV")" "character special file 1,3" \
        "export-chain left the device alone too"
    check "audit head --out a character device (null)" \
        p11ca audit head --dir "$D" --out "$NULLDEV"
    assert_eq "$(stat -c '%F %t,%T' "$NULLDEV")" "character special file 1,3" \
        "audit head left the device alone too"
else
    for _ in 1 2 3 4 5 6 7 8; do skip "no character device to write to (mknod failed)"; done
fi

# A FIFO: the reader is started first; the writer's open waits for it.
# reader_done: the command has exited; if it never opened the FIFO (it
# failed, or replaced the FIFO with a file), release the reader rather
# than wait forever: a read-write open of a FIFO does not block, and
# counts as a writer; a reader left on a replaced FIFO is killed.
reader_done() {
    if [ -p "$TT/fifo" ]; then
        exec 3<>"$TT/fifo"
        exec 3>&-
    else
        kill "$reader" 2>/dev/null
    fi
    wait "$reader"
}
mkfifo "$TT/fifo"
cat "$TT/fifo" >"$W/fifo.pem" &
reader=$!
check "issue --out a FIFO" \
    p11ca issue --dir "$D" --profile client --out "$TT/fifo" "$W/c.csr"
reader_done
assert_eq "$(stat -c '%F' "$TT/fifo")" "fifo" "the FIFO is still a FIFO"
openssl x509 -in "$W/fifo.pem" -noout -subject >"$W/fifo.subj" 2>&1
assert_grep 'subject=CN ?= ?c$' "$W/fifo.subj" "the certificate came through the FIFO"
cat "$TT/fifo" >"$W/fifo.crl" &
reader=$!
check "crl --out a FIFO" p11ca crl --dir "$D" --out "$TT/fifo"
reader_done
if openssl crl -in "$W/fifo.crl" -noout -CAfile "$D/ca.pem" -verify 2>&1 |
    grep -q 'verify OK'; then
    ok "the CRL came through the FIFO and verifies"
else
    not_ok "the CRL came through the FIFO and verifies"
fi

# A symbolic link: refused, untouched, nothing signed or recorded.
echo precious >"$W/target.pem"
ln -s target.pem "$W/link.pem"
before=$(nrows)
should_fail 2 'link.pem is a symbolic link: not replaced.*--follow-symlinks' \
    "issue --out a symbolic link is refused" \
    p11ca issue --dir "$D" --profile client --out "$W/link.pem" "$W/d.csr"
assert_eq "$(readlink "$W/link.pem"):$(cat "$W/target.pem")" \
    "target.pem:precious" "the link and its target are untouched"
assert_eq "$(nrows)" "$before" "nothing was recorded"
should_fail 2 'symbolic link' "crl --out a symbolic link is refused" \
    p11ca crl --dir "$D" --out "$W/link.pem"
check "--follow-symlinks writes to the link's target" \
    p11ca issue --dir "$D" --profile client --follow-symlinks \
    --out "$W/link.pem" "$W/d.csr"
assert_eq "$(stat -c '%F' "$W/link.pem")" "symbolic link" \
    "the link is still a link"
openssl x509 -in "$W/target.pem" -noout -subject >"$W/t.subj" 2>&1
assert_grep 'subject=CN ?= ?d$' "$W/t.subj" "its target holds the certificate"
ln -s nowhere.pem "$W/dangling.pem"
check "--follow-symlinks: a dangling link's target is created" \
    p11ca crl --dir "$D" --follow-symlinks --out "$W/dangling.pem"
assert_grep 'BEGIN X509 CRL' "$W/nowhere.pem" "the CRL went to the target"

# A directory: refused before signing (main recorded and activated the
# certificate, then failed with "cannot rename", and a retry was refused).
mkdir "$W/outdir"
before=$(nrows)
should_fail 2 'outdir is a directory' \
    "issue --out DIR is refused" \
    p11ca issue --dir "$D" --profile client --out "$W/outdir" "$W/e.csr"
assert_eq "$(nrows)" "$before" "... before anything was recorded"
check "the same request goes through with a file name" \
    p11ca issue --dir "$D" --profile client --out "$W/e.pem" "$W/e.csr"
should_fail 2 'is a directory' "crl --out DIR is refused" \
    p11ca crl --dir "$D" --out "$W/outdir"
should_fail 2 'is a directory' "--p7b DIR is refused" \
    p11ca issue --dir "$D" --profile client --out "$W/f.pem" --p7b "$W/outdir" "$W/f.csr"
assert_eq "$(nrows)" "$((before + 1))" "the refused --p7b recorded nothing"

# A write that fails once the certificate is recorded (a full device,
# /dev/full's kind: our own node as root, as for the null device): the
# serial is printed, the message says it is issued, cert show gives it.
FULLDEV=/dev/full
if [ "$(id -u)" = 0 ]; then
    FULLDEV=$TT/full
    mknod "$FULLDEV" c 1 7
fi
should_fail 2 'certificate [0-9A-F]+ is issued and recorded in the registry, but was not delivered: cannot write .*full: No space left on device; .p11ca cert show --dir .* --pem [0-9A-F]+. prints it' \
    "issue --out a full device: issued, recorded, not delivered, said" \
    p11ca issue --dir "$D" --profile client --out "$FULLDEV" "$W/g.csr"
S=$(sed -n 's/^issued \([0-9A-F]*\) .*NOT written.*/\1/p' "$TT/out")
if [ -n "$S" ]; then
    ok "the serial is printed on standard output ($S)"
else
    not_ok "the serial is printed on standard output"
    diag "$(cat "$TT/out")"
fi
assert_no_grep 'records nothing' "$TT/err" \
    "the message does not claim that nothing was recorded"
p11ca cert show --dir "$D" --pem "$S" >"$W/g.show" 2>&1
openssl x509 -in "$W/g.show" -noout -serial >"$W/g.serial" 2>&1
assert_eq "$(cat "$W/g.serial")" "serial=$S" \
    "cert show --pem gives the undelivered certificate"
# The device's descriptor is closed on the failed write too (io.c leaked
# it): strace shows the close of what openat of the device returned.
if command -v strace >/dev/null; then
    strace -f -e trace=openat,close -o "$W/g.strace" \
        "$top_builddir/src/p11ca" issue --dir "$D" --profile client \
        --client-id g3 --out "$FULLDEV" "$W/g.csr" >/dev/null 2>&1
    fd=$(sed -n "s|.*openat(.*\"$FULLDEV\", .*) = \([0-9]*\)\$|\1|p" \
        "$W/g.strace" | tail -n 1)
    # Closed after that openat, before the number is handed out again.
    closed=$(awk -v dev="\"$FULLDEV\"" -v fd="$fd" '
        index($0, "openat(") && index($0, dev) && $NF == fd { open = 1; next }
        open && $0 ~ ("close\\(" fd "\\) += 0") { print "yes"; exit }
        open && index($0, "openat(") && $NF == fd { exit }' "$W/g.strace")
    if [ -n "$fd" ] && [ "$closed" = yes ]; then
        ok "the failed write closes the device's descriptor ($fd)"
    else
        not_ok "the failed write closes the device's descriptor (fd '${fd:-?}')"
        diag "$(grep -E 'openat|close' "$W/g.strace" | tail -n 8)"
    fi
else
    skip "strace is not installed"
fi
p11ca --json issue --dir "$D" --profile client --client-id g2 \
    --out "$FULLDEV" "$W/g.csr" >"$W/g.json" 2>/dev/null
rc=$?
v=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["written"], len(d["serial"]) > 0)' "$W/g.json" 2>&1)
assert_eq "$rc:$v" "2:False True" "--json: the serial, and written false"

# Batch outputs: --outdir is checked before anything is signed.
mkdir "$W/batch"
cp "$W/h.csr" "$W/i.csr" "$W/batch/"
before=$(nrows)
should_fail 2 'is not a directory' "issue --batch --outdir FILE is refused" \
    p11ca issue --dir "$D" --profile client --batch "$W/batch" \
    --outdir "$W/e.pem"
should_fail 2 'cannot write into .*No such file' \
    "issue --batch --outdir MISSING is refused" \
    p11ca issue --dir "$D" --profile client --batch "$W/batch" \
    --outdir "$W/missing"
assert_eq "$(nrows)" "$before" "the refused batches recorded nothing"
mkdir "$W/bout"
check "issue --batch" p11ca issue --dir "$D" --profile client \
    --batch "$W/batch" --outdir "$W/bout"
bad=0
for f in "$W"/bout/*.pem; do
    [ "$(openssl x509 -in "$f" -noout -serial)" = "serial=$(basename "$f" .pem)" ] ||
        bad=$((bad + 1))
done
assert_eq "$bad" 0 "batch files are named by the serial as openssl prints it"

# Every command that writes a file uses the same rules.
ln -s target2.pem "$W/link2.pem"
should_fail 2 'symbolic link' "export-chain --out a symbolic link is refused" \
    p11ca export-chain --dir "$D" --out "$W/link2.pem" "$S"
should_fail 2 'symbolic link' "export-index to a symbolic link is refused" \
    p11ca export-index --dir "$D" --certs "$W/newcerts" "$W/link2.pem"
should_fail 2 'link2.pem is a symbolic link: not replaced.*--follow-symlinks' \
    "audit head --out a symbolic link is refused" \
    p11ca audit head --dir "$D" --out "$W/link2.pem"
assert_eq "$(readlink "$W/link2.pem"):$(test -e "$W/target2.pem" || echo absent)" \
    "target2.pem:absent" "... the link and its (missing) target untouched"
check "audit head --follow-symlinks writes to the link's target" \
    p11ca audit head --dir "$D" --follow-symlinks --out "$W/link2.pem"
if openssl asn1parse -inform DER -in "$W/target2.pem" >"$W/head.asn1" 2>&1; then
    assert_grep 'p11ca audit head' "$W/head.asn1" "... a signed audit head (DER)"
else
    not_ok "... a signed audit head (DER)"
    diag "$(cat "$W/head.asn1")"
fi
should_fail 2 'is a directory' "audit head --out DIR is refused" \
    p11ca audit head --dir "$D" --out "$W/outdir"
openssl ocsp -issuer "$D/ca.pem" -cert "$W/e.pem" -no_nonce \
    -reqout "$W/req.der" >/dev/null 2>&1
should_fail 2 'link2.pem is a symbolic link: not replaced' \
    "ocsp respond --respout a symbolic link is refused" \
    p11ca ocsp respond --dir "$D" --reqin "$W/req.der" --respout "$W/link2.pem"
done_testing

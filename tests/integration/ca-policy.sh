#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The CSR name policy of a profile: allowed_ip (CIDR, IPv4 and IPv6),
# allowed_email (mailbox, host, .domain), allowed_uri (prefixes), the
# refusal of SAN types a restricted profile does not name, and the subject
# policy (subject_allowed, subject_required, cn_in_san), for the names in
# the CSR and for --san/--subject alike.  Every refusal: exit 2, a message
# naming the rule and the value, nothing recorded (p11ca cert list); bad
# policy keys in ca.cnf are refused with the key and the item.
set -u
. "$top_srcdir/tests/lib/tap.sh"
plan 67

TT=$(mktemp -d "${TMPDIR:-/tmp}/p11ca-test.XXXXXX")
trap 'rm -rf "$TT"' EXIT
D=$TT/ca
W=$TT/work
mkdir -p "$W"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/ca.key" 2>/dev/null
check "ca init with a key file" \
    p11ca ca init --dir "$D" --subject "/CN=Policy Test CA" --key "$W/ca.key"
assert_grep '^cn_in_san *= yes' "$D/ca.cnf" "the default server profile has cn_in_san = yes"

sed -i 's/^ocsp *= profile_ocsp$/&\nweb = profile_web\nmail = profile_mail\ndnsonly = profile_dnsonly\nanyip = profile_anyip/' "$D/ca.cnf"
cat >>"$D/ca.cnf" <<'CNF'

[ profile_web ]
key_usage        = digitalSignature
ext_key_usage    = serverAuth
san              = required
allowed_dns      = example.com, .example.net
allowed_ip       = 192.0.2.0/24, 2001:db8::/32
subject_allowed  = CN, O, OU, C
subject_required = CN
cn_in_san        = yes
subject_override = yes

[ profile_mail ]
key_usage        = digitalSignature
ext_key_usage    = emailProtection, clientAuth
allowed_email    = example.com, .example.org, boss@example.net
allowed_uri      = https://id.example.com/
subject_override = yes

[ profile_dnsonly ]
allowed_dns      = example.com

[ profile_anyip ]
allowed_dns      = example.com
allowed_ip       = *
CNF

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$W/k.pem" -subj /CN=www.example.com -out "$W/www.csr" 2>/dev/null
# csr NAME SUBJECT [-addext ...]: a CSR with the same key.
csr() {
    n=$1 s=$2
    shift 2
    openssl req -new -key "$W/k.pem" -subj "$s" -out "$W/$n.csr" "$@" 2>/dev/null
}
count() { p11ca cert list --dir "$D" --count 2>/dev/null; }
# issue PROFILE [options] CSR
issue() {
    prof=$1
    shift
    # Not activated: the same CN again is no client-ID conflict.
    p11ca issue --dir "$D" --profile "$prof" --not-activated \
        --out "$W/out.pem" "$@"
}
# refused "regex" "description" PROFILE [options] CSR: exit 2, the message,
# and the registry as it was.
refused() {
    re=$1 desc=$2
    shift 2
    n0=$(count)
    should_fail 2 "$re" "refused: $desc" issue "$@"
    assert_eq "$(count)" "$n0" "... nothing recorded ($desc)"
}
san_of() { openssl x509 -in "$W/out.pem" -noout -ext subjectAltName | tail -n 1 | sed 's/^ *//'; }

# --- A profile that restricts one type refuses the others -------------
refused 'IP:10.0.0.1 is not allowed by profile "dnsonly": its subjectAltName names are restricted \(allowed_dns\) and it sets no allowed_ip' \
    "an IP SAN where only allowed_dns is set" dnsonly --san DNS:a.example.com,IP:10.0.0.1 "$W/www.csr"
refused 'email:a@example.com is not allowed by profile "dnsonly".*sets no allowed_email' \
    "an email SAN where only allowed_dns is set" dnsonly --san email:a@example.com "$W/www.csr"
refused 'URI:https://example.com/ is not allowed by profile "dnsonly".*sets no allowed_uri' \
    "a URI SAN where only allowed_dns is set" dnsonly --san URI:https://example.com/ "$W/www.csr"
csr csrip /CN=x -addext "subjectAltName=DNS:x.example.com,IP:198.51.100.4"
refused 'csrip.csr: IP:198.51.100.4 is not allowed by profile "dnsonly".*sets no allowed_ip' \
    "... also when the CSR asks for it" dnsonly "$W/csrip.csr"
check "anyip: allowed_ip = * allows any address" \
    issue anyip --san DNS:a.example.com,IP:203.0.113.5 "$W/www.csr"
refused 'email:a@example.com is not allowed by profile "anyip".*\(allowed_dns, allowed_ip\) and it sets no allowed_email' \
    "anyip still refuses an email SAN" anyip --san DNS:a.example.com,email:a@example.com "$W/www.csr"

# --- allowed_ip: networks, IPv4 and IPv6 ----------------------------------
check "web: DNS, an IPv4 and an IPv6 address inside the networks" \
    issue web --san DNS:www.example.com,IP:192.0.2.7,IP:2001:db8:0:1::5 "$W/www.csr"
assert_eq "$(san_of)" "DNS:www.example.com, IP Address:192.0.2.7, IP Address:2001:DB8:0:1:0:0:0:5" \
    "... and they are in the certificate"
refused 'IP:198.51.100.1 is not allowed by profile "web" \(allowed_ip: 192.0.2.0/24, 2001:db8::/32\)' \
    "an IPv4 address outside allowed_ip" web --san DNS:www.example.com,IP:198.51.100.1 "$W/www.csr"
refused 'IP:192.0.3.0 is not allowed by profile "web"' \
    "the address just past a /24" web --san DNS:www.example.com,IP:192.0.3.0 "$W/www.csr"
refused 'IP:2001:db9::1 is not allowed by profile "web" \(allowed_ip' \
    "an IPv6 address outside allowed_ip" web --san DNS:www.example.com,IP:2001:db9::1 "$W/www.csr"
refused 'IP:::ffff:192.0.2.7 is not allowed by profile "web"' \
    "an IPv4-mapped IPv6 address does not match an IPv4 network" \
    web --san DNS:www.example.com,IP:::ffff:192.0.2.7 "$W/www.csr"
refused 'DNS:www.example.org is not allowed by profile "web" \(allowed_dns: example.com, .example.net\)' \
    "a DNS name outside allowed_dns (as before)" web --san DNS:www.example.com,DNS:www.example.org "$W/www.csr"

# --- allowed_email: mailbox, host, .domain -----------------------------------
openssl req -new -key "$W/k.pem" -subj /CN=mail -out "$W/mail.csr" 2>/dev/null
check "mail: a mailbox at the host, below .example.org, the named mailbox, a URI under the prefix" \
    issue mail --san email:alice@example.com,email:bob@eu.example.org,email:boss@EXAMPLE.net,URI:https://id.example.com/u/1 "$W/mail.csr"
refused 'email:alice@mail.example.com is not allowed by profile "mail" \(allowed_email: example.com, .example.org, boss@example.net\)' \
    "a host in allowed_email does not allow the hosts below it" mail --san email:alice@mail.example.com "$W/mail.csr"
refused 'email:bob@example.org is not allowed by profile "mail"' \
    ".example.org does not allow example.org itself" mail --san email:bob@example.org "$W/mail.csr"
refused 'email:alice@example.net is not allowed by profile "mail"' \
    "a mailbox allows that mailbox only" mail --san email:alice@example.net "$W/mail.csr"
refused 'email:Boss@example.net is not allowed by profile "mail"' \
    "... its local part compared exactly" mail --san email:Boss@example.net "$W/mail.csr"
csr csrmail /CN=mail -addext "subjectAltName=email:eve@evil.test"
refused 'csrmail.csr: email:eve@evil.test is not allowed by profile "mail"' \
    "an email address the CSR asks for" mail "$W/csrmail.csr"

# --- allowed_uri: prefixes ----------------------------------------------------
refused 'URI:https://id.example.com.evil.test/ is not allowed by profile "mail" \(allowed_uri: https://id.example.com/\)' \
    "a host that extends the prefix's host" mail --san URI:https://id.example.com.evil.test/ "$W/mail.csr"
refused 'URI:http://id.example.com/u/1 is not allowed by profile "mail"' \
    "another scheme" mail --san URI:http://id.example.com/u/1 "$W/mail.csr"
refused 'DNS:mail.example.com is not allowed by profile "mail": its subjectAltName names are restricted \(allowed_email, allowed_uri\) and it sets no allowed_dns' \
    "mail sets no allowed_dns: DNS names are refused" mail --san DNS:mail.example.com "$W/mail.csr"

# --- The subject ----------------------------------------------------------------
refused 'the subject attribute L is not allowed by profile "web" \(subject_allowed: CN, O, OU, C\)' \
    "--subject with an attribute outside subject_allowed" \
    web --subject /CN=www.example.com/L=Paris --san DNS:www.example.com "$W/www.csr"
csr csrsubj /CN=www.example.com/emailAddress=admin@example.com
refused 'csrsubj.csr: the subject attribute emailAddress is not allowed by profile "web"' \
    "a CSR subject with an attribute outside subject_allowed" \
    web --san DNS:www.example.com "$W/csrsubj.csr"
refused 'the subject has no CN, which profile "web" requires \(subject_required: CN\)' \
    "a subject without the required CN" \
    web --subject /O=Example --san DNS:www.example.com "$W/www.csr"
refused 'the CN "www.example.com" is not one of the subjectAltName names, which profile "web" requires \(cn_in_san = yes\)' \
    "cn_in_san: the CSR's CN is not in --san" web --san DNS:other.example.com "$W/www.csr"
csr csrcn /CN=a.example.com -addext "subjectAltName=DNS:b.example.com"
refused 'csrcn.csr: the CN "a.example.com" is not one of the subjectAltName names' \
    "cn_in_san: the CSR's own CN and SAN" web "$W/csrcn.csr"
refused '--subject: the CN "c.example.com" is not one of the subjectAltName names' \
    "cn_in_san: --subject's CN is not in the SAN" \
    web --subject /CN=c.example.com --san DNS:www.example.com "$W/www.csr"
check "cn_in_san: the CN in another case, and an IP address CN" \
    issue web --subject /CN=WWW.Example.COM/O=Example/CN=192.0.2.9 \
    --san DNS:www.example.com,IP:192.0.2.9 "$W/www.csr"
refused 'the CN "www.example.com" is not one of the subjectAltName names, which profile "server" requires' \
    "the default server profile checks cn_in_san" server --san DNS:www.example.net "$W/www.csr"

# --- Bad policy keys in ca.cnf ---------------------------------------------
# badcnf KEY VALUE "regex" "description": a copy of the CA with KEY = VALUE
# in profile_web; every command that opens it says why.
badcnf() {
    rm -rf "$TT/bad"
    cp -r "$D" "$TT/bad"
    sed -i -e "/^\[ profile_web \]/,/^\[/ {/^$1 *=/d}" \
        -e "s|^\[ profile_web \]|&\n$1 = $2|" "$TT/bad/ca.cnf"
    should_fail 2 "$3" "ca.cnf: $4" p11ca cert list --dir "$TT/bad"
}
badcnf allowed_ip '10.0.0.1/8' 'profile_web \] allowed_ip: "10.0.0.1/8" is not an IP address or network' \
    "a network with host bits set"
badcnf allowed_ip '300.0.0.0/8' 'allowed_ip: "300.0.0.0/8" is not an IP address' "a bad IPv4 address"
badcnf allowed_ip '2001:db8::/129' 'allowed_ip: "2001:db8::/129"' "an IPv6 prefix over 128"
badcnf allowed_email 'a@b@c' 'allowed_email: "a@b@c" is not a mailbox' "a mailbox with two @"
badcnf allowed_uri 'example.com/' 'allowed_uri: "example.com/" is not a URI prefix' "a URI prefix without a scheme"
badcnf subject_allowed 'CN, Bogus' 'subject_allowed: "Bogus" is not a subject attribute' "an unknown attribute"
badcnf subject_allowed 'O, OU' 'subject_required names CN, which subject_allowed does not allow' \
    "subject_required outside subject_allowed"
badcnf cn_in_san maybe 'cn_in_san = maybe: say yes or no' "cn_in_san is yes or no"
badcnf allowed_ipv4 10.0.0.0/8 'unknown key "allowed_ipv4"' "a misspelt key"

# Everything issued above is in the registry, nothing else.
assert_eq "$(count)" 4 "the registry holds the four certificates issued"
done_testing

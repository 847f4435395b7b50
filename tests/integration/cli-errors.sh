#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Bad input and token problems: a clear message, the documented exit code,
# nothing changed, and never a PIN in any output, log or ps listing.
set -u
. "$top_srcdir/tests/lib/token.sh"
plan 27

p11ca --pin-source "$PINFILE" key gen --uri "$TOKURI;object=k1" --type ec:P-256 >/dev/null
FAULTY=$top_builddir/tests/faulty-pkcs11/.libs/libfaulty-pkcs11.so

# Wrong PIN: exit 3, says the PIN was refused.
printf 'wrong-pin-0000' >"$TT/wrong.pin"
chmod 600 "$TT/wrong.pin"
should_fail 3 'C_Login on token "p11ca-test".*CKR_PIN_INCORRECT.*PIN was refused' \
    "a wrong PIN is reported as refused (exit 3)" \
    p11ca --pin-source "$TT/wrong.pin" key list "$TOKURI"

# Missing token, missing object, bad URIs.
should_fail 3 'no token matches.*token=nosuch' "a missing token is named (exit 3)" \
    p11ca key list --no-login "pkcs11:token=nosuch"
should_fail 3 'no public key matches.*object=nosuch' "a missing object is named (exit 3)" \
    p11ca key pubout "$TOKURI;object=nosuch"
should_fail 2 'bad URI.*start with "pkcs11:"' "a non-pkcs11 URI is refused (exit 2)" \
    p11ca key list "file:/etc/passwd"
should_fail 2 'bad URI.*not in RFC 7512' "an unknown URI attribute is refused (exit 2)" \
    p11ca key list "pkcs11:tokn=x"
should_fail 2 'bad URI' "bad percent-encoding is refused (exit 2)" \
    p11ca key list "pkcs11:token=%zz"

# PIN files.
should_fail 3 'cannot open PIN file.*nosuch.pin.*No such file' "a missing PIN file is reported (exit 3)" \
    p11ca --pin-source "$TT/nosuch.pin" key list "$TOKURI"
cp "$PINFILE" "$TT/open.pin"
chmod 644 "$TT/open.pin"
should_fail 3 'accessible by group or others \(mode 0644\)' "a world-readable PIN file is refused (exit 3)" \
    p11ca --pin-source "$TT/open.pin" key list "$TOKURI"
chmod 640 "$TT/open.pin"
should_fail 3 'accessible by group or others \(mode 0640\)' "a group-readable PIN file is refused (exit 3)" \
    p11ca --pin-source "$TT/open.pin" key list "$TOKURI"
should_fail 3 'accessible by group or others' "pin-source= in the URI is checked too" \
    p11ca key list "$TOKURI;pin-source=file:$TT/open.pin"
mkdir "$TT/pindir"
should_fail 3 'not a regular file' "a directory as PIN file is refused" \
    p11ca --pin-source "$TT/pindir" key list "$TOKURI"
check "pin-source= in the URI works" p11ca key list "$TOKURI;pin-source=$PINFILE"
if command -v setsid >/dev/null; then
    should_fail 3 'a PIN is needed' "without a terminal and without a PIN: clear error (exit 3)" \
        setsid -w "$top_builddir/src/p11ca" key list "$TOKURI" </dev/null
else
    skip "setsid not available"
fi

# Usage errors.
should_fail 1 'unknown command "frobnicate"' "an unknown command is a usage error (exit 1)" \
    p11ca frobnicate
should_fail 1 'unknown command "key frob"' "an unknown subcommand is a usage error (exit 1)" \
    p11ca key frob
should_fail 1 '^p11ca key list: unknown option --bogus$' "an unknown option is a usage error, naming the command (exit 1)" \
    p11ca key list --bogus
check "p11ca help works" p11ca help
check "p11ca key gen --help works" p11ca key gen --help

# Files: too big.
head -c 1100000 /dev/zero >"$TT/huge.pem"
should_fail 2 'larger than' "a huge certificate file is refused (exit 2)" \
    p11ca --pin-source "$PINFILE" cert import "$TOKURI" "$TT/huge.pem"

# Module problems.
should_fail 3 'cannot be loaded|loading module' "a missing module is reported (exit 3)" \
    p11ca --module /nonexistent/module.so token list

# No PIN in outputs or logs, even at full debug.
export P11CA_DEBUG=all P11CA_DEBUG_FILE="$TT/debug.log"
p11ca --pin-source "$PINFILE" key list "$TOKURI" >"$TT/o1" 2>&1
p11ca --pin-source "$TT/wrong.pin" key list "$TOKURI" >"$TT/o2" 2>&1
p11ca --pin-source "$PINFILE" key gen --uri "$TOKURI;object=k2" --type ec:P-256 >"$TT/o3" 2>&1
unset P11CA_DEBUG P11CA_DEBUG_FILE
if test -s "$TT/debug.log"; then ok "debug log written"; else not_ok "debug log written"; fi
for f in o1 o2 o3 debug.log err; do
    assert_no_grep "$TEST_PIN|wrong-pin-0000" "$TT/$f" "no PIN in $f"
done

# ps: a command held at C_FindObjectsInit (a minute of injected latency)
# is sampled until ps shows it, then stopped: it runs while ps looks.
if [ -f "$FAULTY" ]; then
    FAULTY_PKCS11_MODULE=$SOFTHSM_MODULE FAULTY_PKCS11_FAULTS='C_FindObjectsInit:*:sleep=60000ms' \
        "$top_builddir/src/p11ca" --module "$FAULTY" --pin-source "$PINFILE" \
        key list "$TOKURI" >/dev/null 2>&1 &
    pid=$!
    seen() { ps -eo args >"$TT/ps" && grep -q 'p11ca.*key list' "$TT/ps"; }
    if wait_for 60 seen; then
        assert_no_grep "$TEST_PIN" "$TT/ps" "no PIN in ps output"
    else
        not_ok "no PIN in ps output (the command was not seen running)"
    fi
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
else
    skip "faulty module not built"
fi
done_testing

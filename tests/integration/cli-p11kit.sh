#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Module selection: p11-kit's registered modules by default, an explicit
# module by --module or P11CA_MODULE, and module-path=/module-name= URIs.
set -u
. "$top_srcdir/tests/lib/token.sh"
plan 6

if [ -f /usr/share/p11-kit/modules/softhsm2.module ]; then
    ( unset P11CA_MODULE; p11ca token list --json "$TOKURI" ) >"$TT/kit.json" 2>"$TT/err"
    assert_grep '"label": "p11ca-test"' "$TT/kit.json" "p11-kit's registered SoftHSM2 finds the token by default"
    assert_grep '"module": "softhsm2"' "$TT/kit.json" "the module is named by p11-kit"
else
    skip "SoftHSM2 is not registered with p11-kit"
    skip "SoftHSM2 is not registered with p11-kit"
fi
( unset P11CA_MODULE; p11ca --module "$SOFTHSM_MODULE" token list --json "$TOKURI" ) >"$TT/explicit.json"
assert_grep '"label": "p11ca-test"' "$TT/explicit.json" "--module loads one module"
( unset P11CA_MODULE; p11ca token list --json "$TOKURI?module-path=$SOFTHSM_MODULE" ) >"$TT/mp.json"
assert_grep '"label": "p11ca-test"' "$TT/mp.json" "module-path= in the URI loads that module"
p11ca token list --json "pkcs11:?module-name=nosuchmodule" >"$TT/mn.json" 2>/dev/null
v=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$TT/mn.json")
assert_eq "$v" 0 "module-name= filters modules"
should_fail 3 'no token matches' "a URI for a token of another module finds nothing" \
    p11ca key list --no-login "pkcs11:token=p11ca-test?module-name=nosuchmodule"
done_testing

# SPDX-License-Identifier: Apache-2.0
# A per-run SoftHSM2 token in a temporary directory with its own
# SOFTHSM2_CONF, PIN files, and a testvars file of URIs.
# shellcheck shell=sh
#
# Sets: TT (temp dir), SOFTHSM2_CONF, P11CA_MODULE (SoftHSM2 only, so the
# tests never see the machine's other tokens), PINFILE, SOPINFILE, TOKEN,
# TOKURI (token URI without PIN), plus what token_init/new_token add.

: "${top_srcdir:=.}"
: "${top_builddir:=.}"
. "$top_srcdir/tests/lib/tap.sh"

if [ -z "${SOFTHSM_MODULE:-}" ] || [ ! -f "$SOFTHSM_MODULE" ]; then
    for f in /usr/lib/softhsm/libsofthsm2.so \
             /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
        [ -f "$f" ] && SOFTHSM_MODULE=$f && break
    done
fi
if [ -z "${SOFTHSM_MODULE:-}" ] || ! command -v softhsm2-util >/dev/null; then
    plan_skip "SoftHSM2 is not installed"
fi

TT=$(mktemp -d "${TMPDIR:-/tmp}/p11ca-test.XXXXXX")
trap 'rm -rf "$TT"' EXIT
mkdir -p "$TT/tokens"
cat >"$TT/softhsm2.conf" <<CONF
directories.tokendir = $TT/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
library.reset_on_fork = ${SOFTHSM_RESET_ON_FORK:-true}
CONF
SOFTHSM2_CONF=$TT/softhsm2.conf
P11CA_MODULE=$SOFTHSM_MODULE
# Refused PIN sources are remembered per token in $XDG_STATE_HOME/p11ca
# (pinstate.c): the test's own, never the user's.
XDG_STATE_HOME=$TT/state
unset P11CA_STATE_DIR
export SOFTHSM2_CONF P11CA_MODULE SOFTHSM_MODULE XDG_STATE_HOME

PINFILE=$TT/user.pin
SOPINFILE=$TT/so.pin
TEST_PIN=7319-p11ca-pin
printf '%s' "$TEST_PIN" >"$PINFILE"
printf '%s' so-8642-p11ca >"$SOPINFILE"
chmod 600 "$PINFILE" "$SOPINFILE"

# new_token LABEL: initialise a fresh token with our CLI's token init.
new_token() {
    "$top_builddir/src/p11ca" token init --label "$1" \
        --so-pin-source "$SOPINFILE" --pin-source "$PINFILE" >/dev/null
}

TOKEN=${TOKEN:-p11ca-test}
TOKURI="pkcs11:token=$TOKEN"
if ! new_token "$TOKEN"; then
    echo "Bail out! cannot initialise the SoftHSM2 test token"
    exit 1
fi

cat >"$TT/testvars" <<VARS
SOFTHSM2_CONF=$SOFTHSM2_CONF
P11CA_MODULE=$P11CA_MODULE
TOKURI=$TOKURI
PINFILE=$PINFILE
VARS

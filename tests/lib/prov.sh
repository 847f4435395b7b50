# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2034 # sets variables for the test scripts that source it
# Provider tests: a per-run token (token.sh) plus the built p11ca.so made
# visible to the openssl command, and helpers to make keys and certificates.
# shellcheck shell=sh

. "$top_srcdir/tests/lib/token.sh"

OPENSSL_MODULES=$top_builddir/provider/.libs
export OPENSSL_MODULES
if [ ! -f "$OPENSSL_MODULES/p11ca.so" ]; then
    echo "Bail out! provider not built: $OPENSSL_MODULES/p11ca.so"
    exit 1
fi
# In sanitizer builds the provider needs the ASan runtime loaded first by
# the (uninstrumented) openssl command; leaks of openssl itself are not ours.
# OPENSSL_ENV is that environment for commands that start openssl
# themselves: `env $OPENSSL_ENV setsid -w openssl ...`.
OPENSSL_ENV="P11CA_TEST=1"
if [ -n "${SANITIZER_PRELOAD:-}" ]; then
    OPENSSL_ENV="LD_PRELOAD=$SANITIZER_PRELOAD ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
    openssl() {
        LD_PRELOAD="$SANITIZER_PRELOAD" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
            command openssl "$@"
    }
fi
# Both providers, as a user would write it on the command line.
PROV="-provider p11ca -provider default"
# The PIN for the provider comes from the URI's pin-source= ...
PINQ="pin-source=$PINFILE"

# An openssl.cnf that activates p11ca (and default) with a PIN source, for
# programs that take no -provider option (s_server's config, libssl users).
cat >"$TT/openssl.cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
p11ca = p11ca_sect
[default_sect]
activate = 1
[p11ca_sect]
module = $OPENSSL_MODULES/p11ca.so
p11ca-pin-source = $PINFILE
activate = 1
CNF

# keygen LABEL TYPE: a key pair on the test token with our CLI.
keygen() {
    "$top_builddir/src/p11ca" --pin-source "$PINFILE" key gen \
        --uri "$TOKURI;object=$1" --type "$2" >/dev/null
}

# key URIs for LABEL
privuri() { echo "$TOKURI;object=$1;type=private;$PINQ"; }
pubkuri() { echo "$TOKURI;object=$1;type=public"; }

#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# docs/openapi.yaml is valid OpenAPI 3.1 (checked by
# @seriousme/openapi-schema-validator from npm, installed once into a cache
# outside the source tree), its routes are those of the service's route
# tables (tests/progs/srv-routes) and no others, its problem codes are the
# ones src/server answers with, and a serve-*.sh test calls each route.
# shellcheck disable=SC1091,SC2154
set -eu
. "$top_srcdir/tests/lib/tap.sh"

TT=$(mktemp -d "${TMPDIR:-/tmp}/p11ca-openapi.XXXXXX")
trap 'rm -rf "$TT"' EXIT

YAML=$top_srcdir/docs/openapi.yaml
VALIDATOR=@seriousme/openapi-schema-validator
VALIDATOR_VERSION=2.11.0
# Where the validator is installed (P11CA_NPM_CACHE, else the user's cache).
CACHE=${P11CA_NPM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/p11ca/npm}
VDIR=$CACHE/openapi-schema-validator-$VALIDATOR_VERSION

PENDING_ROUTES=''

# Routes that the tests call with a client of their own rather than api()
# (serve-setup.sh), or through post() of serve-enroll.sh: "METHOD PATTERN|REGEX of such a call".
# shellcheck disable=SC2016 # regular expressions of shell text
OTHER_CALLS='POST /ocsp|openssl ocsp .*-url "\$URL"
GET /ocsp/{base64}|curl .*"\$URL/\$
POST /v1/enrollment-codes|post [^ ]+ /v1/enrollment-codes( |$)
POST /v1/enroll|post [a-z]+ /v1/enroll( |$)
POST /v1/renew|post [a-z]+ /v1/renew( |$)'

SCRIPTS=$(ls "$top_srcdir"/tests/integration/serve-*.sh)

# The routes of the yaml: "METHOD /path" under paths:, in its order.
awk '
    /^[^ #]/ { inpaths = ($0 ~ /^paths:/) ; next }
    inpaths && /^  \/[^ ]*:[ ]*$/ { path = $1; sub(/:$/, "", path); next }
    inpaths && /^    (get|put|post|delete|patch|head|options|trace):/ {
        m = $1; sub(/:$/, "", m); print toupper(m), path
    }' "$YAML" >"$TT/yaml-routes"
"$top_builddir/tests/progs/srv-routes" >"$TT/code-routes"

n=$(wc -l <"$TT/yaml-routes")
plan $((n + 6))

# 1. A real validator.
validate() {
    if [ ! -x "$VDIR/node_modules/.bin/validate-api" ]; then
        mkdir -p "$CACHE"
        tmp=$(mktemp -d "$CACHE/.install.XXXXXX")
        if ! (cd "$tmp" && npm install --prefix "$tmp" --no-audit --no-fund \
            --no-save --loglevel=error "$VALIDATOR@$VALIDATOR_VERSION") \
            >"$TT/npm.log" 2>&1; then
            rm -rf "$tmp"
            not_ok "docs/openapi.yaml: npm install $VALIDATOR@$VALIDATOR_VERSION failed"
            diag "$(tail -n 20 "$TT/npm.log")"
            return
        fi
        # Another run may have installed it meanwhile: keep the first.
        mv -T "$tmp" "$VDIR" 2>/dev/null || rm -rf "$tmp"
    fi
    if node "$VDIR/node_modules/.bin/validate-api" "$YAML" >"$TT/v.out" 2>&1 &&
        grep -q '"valid": true' "$TT/v.out"; then
        ok "docs/openapi.yaml is valid OpenAPI 3.1 ($VALIDATOR $VALIDATOR_VERSION)"
    else
        not_ok "docs/openapi.yaml is valid OpenAPI 3.1 ($VALIDATOR $VALIDATOR_VERSION)"
        diag "$(head -n 60 "$TT/v.out")"
    fi
}
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    skip "docs/openapi.yaml not validated: npm and node are not installed (Debian: nodejs npm)"
else
    validate
fi

# 2. The yaml's routes and the code's, both ways.
sort "$TT/yaml-routes" >"$TT/yaml.sorted"
sort "$TT/code-routes" >"$TT/code.sorted"
printf '%s\n' "$PENDING_ROUTES" | sort >"$TT/pending.sorted"
comm -23 "$TT/yaml.sorted" "$TT/code.sorted" >"$TT/yaml-only"
comm -23 "$TT/yaml-only" "$TT/pending.sorted" >"$TT/unknown"
if [ ! -s "$TT/unknown" ]; then
    ok "every route of docs/openapi.yaml is in the route tables ($(wc -l <"$TT/yaml-routes") routes, $(wc -l <"$TT/yaml-only") pending: the enrollment change)"
else
    not_ok "every route of docs/openapi.yaml is in the route tables"
    diag "in the yaml, not in src/server/api_*.c: $(tr '\n' ';' <"$TT/unknown")"
fi
comm -13 "$TT/yaml.sorted" "$TT/code.sorted" >"$TT/undocumented"
if [ ! -s "$TT/undocumented" ]; then
    ok "every route of the route tables is in docs/openapi.yaml ($(wc -l <"$TT/code-routes") routes)"
else
    not_ok "every route of the route tables is in docs/openapi.yaml"
    diag "not documented: $(tr '\n' ';' <"$TT/undocumented")"
fi

# 3. The problem codes: those src/server answers with are the yaml's.
grep -ho 'srv_problem(r, [0-9]*, "[a-z-]*"' "$top_srcdir"/src/server/*.c |
    sed 's/.*"\([a-z-]*\)"$/\1/' | sort -u >"$TT/codes.src"
awk '
    /^    ProblemCode:/ { on = 1; next }
    on && /^    [^ ]/ { on = 0 }
    on && /^        - [a-z-]+$/ { print $2 }' "$YAML" | sort -u >"$TT/codes.yaml"
if [ -s "$TT/codes.src" ] && cmp -s "$TT/codes.src" "$TT/codes.yaml"; then
    ok "the ProblemCode list is the codes src/server answers with ($(wc -l <"$TT/codes.src"))"
else
    not_ok "the ProblemCode list is the codes src/server answers with"
    diag "only in src/server: $(comm -23 "$TT/codes.src" "$TT/codes.yaml" | tr '\n' ' ')"
    diag "only in the yaml: $(comm -13 "$TT/codes.src" "$TT/codes.yaml" | tr '\n' ' ')"
fi

# 4. Each route is called by a test: api WHO METHOD PATH in a serve-*.sh
# ("{name}" is any segment, quoted or not, a query may follow), or a call
# of OTHER_CALLS.
: >"$TT/uncovered"
called() {
    re=$(printf '%s' "$2" | sed 's/{[a-z0-9_]*}/[^\/?"'"'"' ]+/g')
    # shellcheck disable=SC2086 # a list of files
    if grep -Eq -- "api +[^ ]+ +$1 +[\"']?$re([\"'? ]|\$)" $SCRIPTS; then
        return 0
    fi
    other=$(printf '%s\n' "$OTHER_CALLS" | while IFS='|' read -r route rx; do
        [ "$route" = "$1 $2" ] && printf '%s\n' "$rx"
    done)
    # shellcheck disable=SC2086
    [ -n "$other" ] && grep -Eq -- "$other" $SCRIPTS
}
while read -r m p; do
    if called "$m" "$p"; then
        if grep -qx "$m $p" "$TT/pending.sorted"; then
            not_ok "$m $p: called by a test, and still in PENDING_ROUTES (remove it there)"
        else
            ok "$m $p: called by a serve-*.sh test"
        fi
    elif grep -qx "$m $p" "$TT/pending.sorted"; then
        echo "$m $p" >>"$TT/uncovered"
        ok "$m $p: not called yet (PENDING_ROUTES: the enrollment change)"
    else
        echo "$m $p" >>"$TT/uncovered"
        not_ok "$m $p: called by a serve-*.sh test"
    fi
done <"$TT/yaml-routes"
if [ -s "$TT/uncovered" ]; then
    diag "routes no test calls: $(tr '\n' ';' <"$TT/uncovered")"
fi

# 5. The pending routes are no more than the yaml's.
if comm -13 "$TT/yaml.sorted" "$TT/pending.sorted" | grep -q .; then
    not_ok "PENDING_ROUTES names only routes of docs/openapi.yaml"
    diag "$(comm -13 "$TT/yaml.sorted" "$TT/pending.sorted" | tr '\n' ';')"
else
    ok "PENDING_ROUTES names only routes of docs/openapi.yaml ($(wc -l <"$TT/pending.sorted"))"
fi

# 6. The pending routes not in the code yet (else: remove them from the list).
if comm -12 "$TT/code.sorted" "$TT/pending.sorted" | grep -q .; then
    not_ok "PENDING_ROUTES has no route of the route tables (remove: $(comm -12 "$TT/code.sorted" "$TT/pending.sorted" | tr '\n' ';'))"
else
    ok "PENDING_ROUTES has no route of the route tables"
fi

done_testing

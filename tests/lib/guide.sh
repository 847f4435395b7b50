# SPDX-License-Identifier: Apache-2.0
# Running a guide of docs/ as it is written (sourced after tap.sh).

# guide_prepare GUIDE DIR: the guide's ```sh blocks in DIR/guide.sh (a test
# that the guide has at least 8 of them), and DIR/run/bin with the built
# p11ca, to put first in PATH.
guide_prepare() {
    awk '/^```sh$/ { on = 1; next } /^```/ { on = 0 } on' "$1" >"$2/guide.sh"
    guide_n=$(grep -c '^```sh$' "$1")
    if [ "$guide_n" -ge 8 ]; then
        ok "the guide has $guide_n runnable blocks"
    else
        not_ok "the guide has runnable blocks ($guide_n)"
    fi
    mkdir -p "$2/run/bin"
    ln -s "$top_builddir/src/p11ca" "$2/run/bin/p11ca"
}

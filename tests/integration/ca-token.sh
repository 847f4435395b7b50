#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The CA suite (ca-suite.sh) with the CA keys generated on the SoftHSM2
# token and used through the p11ca provider.
set -u
CA_KEY_MODE="token"
export CA_KEY_MODE
. "$top_srcdir/tests/integration/ca-suite.sh"

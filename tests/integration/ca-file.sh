#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The CA suite (ca-suite.sh) with the CA keys in files: an encrypted root
# key file (passphrase from pin_source) and a generated intermediate key.
set -u
CA_KEY_MODE="file"
export CA_KEY_MODE
. "$top_srcdir/tests/integration/ca-suite.sh"

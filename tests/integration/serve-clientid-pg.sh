#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# serve-clientid.sh on PostgreSQL: a throw-away server (tests/lib/pg.sh),
# the CA's registry = postgresql:...; skipped when PostgreSQL is not
# installed.
P11CA_TEST_REGISTRY=pg
export P11CA_TEST_REGISTRY
. "$top_srcdir/tests/integration/serve-clientid.sh"

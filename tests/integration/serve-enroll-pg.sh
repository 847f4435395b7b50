#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# serve-enroll.sh on PostgreSQL (enrollment codes taken by PostgreSQL's
# conditional UPDATE): a throw-away server (tests/lib/pg.sh); skipped when
# PostgreSQL is not installed.
P11CA_TEST_REGISTRY=pg
export P11CA_TEST_REGISTRY
. "$top_srcdir/tests/integration/serve-enroll.sh"

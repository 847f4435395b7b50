#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# serve-renew-confirm.sh on PostgreSQL (pending renewals found by their
# link, enrollment codes asked again): a throw-away server
# (tests/lib/pg.sh); skipped when PostgreSQL is not installed.
P11CA_TEST_REGISTRY=pg
export P11CA_TEST_REGISTRY
. "$top_srcdir/tests/integration/serve-renew-confirm.sh"

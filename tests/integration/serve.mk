# SPDX-License-Identifier: Apache-2.0
# tests/integration: p11ca serve (the registry service), with the shared
# setup serve-setup.sh.
SERVE_TESTS = \
	tests/integration/serve-api.sh \
	tests/integration/serve-api-pg.sh \
	tests/integration/serve-enroll.sh \
	tests/integration/serve-enroll-pg.sh \
	tests/integration/serve-renew-confirm.sh \
	tests/integration/serve-renew-confirm-pg.sh \
	tests/integration/serve-pg-down.sh \
	tests/integration/serve-two-nodes-pg.sh \
	tests/integration/serve-tls.sh \
	tests/integration/serve-security.sh \
	tests/integration/serve-autoreg-race.sh \
	tests/integration/serve-autoreg-pop.sh \
	tests/integration/serve-limits.sh \
	tests/integration/serve-profile-limits.sh \
	tests/integration/serve-clientid.sh \
	tests/integration/serve-clientid-pg.sh \
	tests/integration/serve-slow-token.sh \
	tests/integration/serve-crl-retry.sh \
	tests/integration/serve-signals.sh \
	tests/integration/serve-config.sh \
	tests/integration/serve-ocsp.sh \
	tests/integration/serve-ocsp-dos.sh \
	tests/integration/serve-ocsp-limits.sh \
	tests/integration/serve-enroll-client.sh \
	tests/integration/serve-sigterm-enroll.sh \
	tests/integration/serve-docs.sh
TESTS += $(SERVE_TESTS)
EXTRA_DIST += $(SERVE_TESTS) tests/integration/serve-setup.sh

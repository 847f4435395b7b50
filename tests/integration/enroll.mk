# SPDX-License-Identifier: Apache-2.0
# tests/integration: p11ca enroll and p11ca token show (smartcard
# enrollment and login), with the shared setup enroll-setup.sh; the
# smartcard guide run as written.
ENROLL_TESTS = \
	tests/integration/enroll-tls.sh \
	tests/integration/enroll-recover.sh \
	tests/integration/enroll-renewal.sh \
	tests/integration/enroll-names.sh \
	tests/integration/enroll-valgrind.sh \
	tests/integration/enroll-docs.sh
TESTS += $(ENROLL_TESTS)
EXTRA_DIST += $(ENROLL_TESTS) tests/integration/enroll-setup.sh \
	docs/smartcard-login.md

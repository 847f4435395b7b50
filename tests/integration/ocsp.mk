# SPDX-License-Identifier: Apache-2.0
# tests/integration: the OCSP responder (p11ca ocsp respond, the delegated
# signer, the cache and faults through tests/progs/ocsp-drive), with the
# shared setup ocsp-setup.sh.
OCSP_TESTS = \
	tests/integration/ocsp-respond.sh \
	tests/integration/ocsp-signer.sh \
	tests/integration/ocsp-cache.sh \
	tests/integration/ocsp-faults.sh
TESTS += $(OCSP_TESTS)
EXTRA_DIST += $(OCSP_TESTS) tests/integration/ocsp-setup.sh

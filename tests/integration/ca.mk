# SPDX-License-Identifier: Apache-2.0
# tests/integration: the certificate authority (p11ca ca|issue|crl).
# ca-token.sh and ca-file.sh run the same suite, ca-suite.sh, with the CA
# keys on the token and in files.
CA_TESTS = \
	tests/integration/ca-token.sh \
	tests/integration/ca-file.sh \
	tests/integration/ca-keycheck.sh \
	tests/integration/ca-init-pin.sh \
	tests/integration/ca-concurrent.sh \
	tests/integration/ca-concurrent-pg.sh \
	tests/integration/ca-crl-large.sh \
	tests/integration/ca-valgrind.sh \
	tests/integration/ca-policy.sh \
	tests/integration/ca-csr-fuzz.sh \
	tests/integration/ca-batch.sh \
	tests/integration/ca-outputs.sh \
	tests/integration/ca-registry-safety.sh \
	tests/integration/ca-cnf-include.sh
TESTS += $(CA_TESTS)
# CSRs by the thousand for ca-batch.sh (openssl req makes a few hundred a
# second).
check_PROGRAMS += tests/progs/csr-stream
tests_progs_csr_stream_SOURCES = tests/progs/csr-stream.c
tests_progs_csr_stream_LDADD = $(CRYPTO_LIBS)
EXTRA_DIST += $(CA_TESTS) tests/integration/ca-suite.sh

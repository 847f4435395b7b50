# SPDX-License-Identifier: Apache-2.0
# tests/integration: TAP shell scripts against a per-run SoftHSM2 token.
CLI_TESTS = \
	tests/integration/cli-keygen.sh \
	tests/integration/cli-cert.sh \
	tests/integration/cli-errors.sh \
	tests/integration/cli-p11kit.sh \
	tests/integration/cli-valgrind.sh \
	tests/integration/cli-help.sh \
	tests/integration/cli-interfaces.sh
TESTS += $(CLI_TESTS)
EXTRA_DIST += $(CLI_TESTS)

# The provider through the openssl command and through EVP (tests/progs).
PROVIDER_TESTS = \
	tests/integration/provider-sign.sh \
	tests/integration/provider-pki.sh \
	tests/integration/provider-tls.sh \
	tests/integration/provider-threads.sh \
	tests/integration/provider-errors.sh \
	tests/integration/provider-config.sh \
	tests/integration/provider-order.sh \
	tests/integration/provider-encode.sh \
	tests/integration/provider-decrypt-derive.sh \
	tests/integration/provider-features.sh
TESTS += $(PROVIDER_TESTS)
EXTRA_DIST += $(PROVIDER_TESTS) tests/lib/tls.sh
check_PROGRAMS += tests/progs/prov-evp tests/progs/weak-key
tests_progs_prov_evp_SOURCES = tests/progs/prov-evp.c
tests_progs_prov_evp_LDADD = $(CRYPTO_LIBS) -lpthread
tests_progs_weak_key_SOURCES = tests/progs/weak-key.c
tests_progs_weak_key_LDADD = src/libp11ca-p11.la $(CRYPTO_LIBS) $(P11KIT_LIBS)

# The registry through the p11ca command.
REGISTRY_TESTS = \
	tests/integration/registry-cli.sh \
	tests/integration/registry-migrate.sh
TESTS += $(REGISTRY_TESTS)
EXTRA_DIST += $(REGISTRY_TESTS)

# The operator guide, run as written.
TESTS += tests/integration/docs-ca-guide.sh
EXTRA_DIST += tests/integration/docs-ca-guide.sh

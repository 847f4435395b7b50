# SPDX-License-Identifier: Apache-2.0
# tests/integration: TAP shell scripts against a per-run SoftHSM2 token.
CLI_TESTS = \
	tests/integration/cli-keygen.sh \
	tests/integration/cli-cert.sh \
	tests/integration/cli-errors.sh \
	tests/integration/cli-p11kit.sh \
	tests/integration/cli-valgrind.sh \
	tests/integration/cli-slots.sh \
	tests/integration/cli-help.sh \
	tests/integration/cli-escape.sh \
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
	tests/integration/provider-features.sh \
	tests/integration/provider-slots.sh \
	tests/integration/provider-store-search.sh \
	tests/integration/provider-rsa-pss.sh \
	tests/integration/provider-ed448.sh \
	tests/integration/provider-rand.sh \
	tests/integration/provider-genpkey.sh \
	tests/integration/provider-uri-file.sh \
	tests/integration/provider-pin-prompt.sh \
	tests/integration/provider-ossl35.sh
TESTS += $(PROVIDER_TESTS)
EXTRA_DIST += $(PROVIDER_TESTS) tests/lib/tls.sh
check_PROGRAMS += tests/progs/prov-evp tests/progs/weak-key \
	tests/progs/prov-store tests/progs/prov-rand tests/progs/prov-api
tests_progs_prov_evp_SOURCES = tests/progs/prov-evp.c
tests_progs_prov_evp_LDADD = $(CRYPTO_LIBS) -lpthread
tests_progs_prov_store_SOURCES = tests/progs/prov-store.c
tests_progs_prov_store_LDADD = $(CRYPTO_LIBS)
tests_progs_prov_rand_SOURCES = tests/progs/prov-rand.c
tests_progs_prov_rand_LDADD = $(CRYPTO_LIBS)
tests_progs_prov_api_SOURCES = tests/progs/prov-api.c
tests_progs_prov_api_LDADD = $(CRYPTO_LIBS)
tests_progs_weak_key_SOURCES = tests/progs/weak-key.c
tests_progs_weak_key_LDADD = src/libp11ca-p11.la $(CRYPTO_LIBS) $(P11KIT_LIBS)

# A token that goes away for a while (the fault module's vanish window):
# under s_server, p11ca issue and a key load.
TESTS += tests/integration/p11-vanish.sh
EXTRA_DIST += tests/integration/p11-vanish.sh

# A URI does not load code (module-path=): the provider and the CLI.
TESTS += tests/integration/p11-uri-module.sh
EXTRA_DIST += tests/integration/p11-uri-module.sh

# PINs: refused sources remembered across processes, a token's last try,
# the prompt, the provider's PIN cache.
TESTS += tests/integration/p11-pin-policy.sh
EXTRA_DIST += tests/integration/p11-pin-policy.sh tests/lib/ptyrun.py

# The registry through the p11ca command.
REGISTRY_TESTS = \
	tests/integration/registry-cli.sh \
	tests/integration/registry-rules.sh \
	tests/integration/registry-cli-pg.sh \
	tests/integration/registry-rules-pg.sh \
	tests/integration/registry-pg.sh \
	tests/integration/registry-pg-conninfo.sh \
	tests/integration/registry-schema.sh \
	tests/integration/registry-migrate.sh \
	tests/integration/registry-migrate-pg.sh \
	tests/integration/registry-move-pg.sh \
	tests/integration/audit-signed.sh
TESTS += $(REGISTRY_TESTS)
EXTRA_DIST += $(REGISTRY_TESTS) tests/lib/registry.sh \
	tests/data/registry-v1/ca.cnf.in \
	tests/data/registry-v1/ca.pem tests/data/registry-v1/ca.key \
	tests/data/registry-v1/registry.sql

# The operator guide, run as written.
TESTS += tests/integration/docs-ca-guide.sh
EXTRA_DIST += tests/integration/docs-ca-guide.sh

# README's first command, scripts/demo, with this build.
TESTS += tests/integration/demo.sh tests/integration/demo-out.sh
EXTRA_DIST += tests/integration/demo.sh tests/integration/demo-out.sh

# docs/openapi.yaml: valid, the route tables' routes, each called by a test.
TESTS += tests/integration/openapi.sh
EXTRA_DIST += tests/integration/openapi.sh

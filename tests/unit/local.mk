# SPDX-License-Identifier: Apache-2.0
# tests/unit: cmocka unit tests (TAP output, one line per test case).

if HAVE_CMOCKA
UNIT_TESTS = \
	tests/unit/test_uri \
	tests/unit/test_pin \
	tests/unit/test_ckr \
	tests/unit/test_keygen \
	tests/unit/test_wait \
	tests/unit/test_cli
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)

UNIT_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
UNIT_LDADD = src/libp11ca-p11.la $(CMOCKA_LIBS) $(CRYPTO_LIBS) \
	$(P11KIT_LIBS)

tests_unit_test_uri_SOURCES = tests/unit/test_uri.c
tests_unit_test_uri_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_uri_LDADD = $(UNIT_LDADD)

tests_unit_test_pin_SOURCES = tests/unit/test_pin.c
tests_unit_test_pin_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_pin_LDADD = $(UNIT_LDADD)

tests_unit_test_ckr_SOURCES = tests/unit/test_ckr.c
tests_unit_test_ckr_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_ckr_LDADD = $(UNIT_LDADD) -lpthread

tests_unit_test_wait_SOURCES = tests/unit/test_wait.c
tests_unit_test_wait_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_wait_LDADD = $(UNIT_LDADD) -lpthread

tests_unit_test_keygen_SOURCES = tests/unit/test_keygen.c
tests_unit_test_keygen_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_keygen_LDADD = $(UNIT_LDADD)

# The provider's implicit rejection (RSA PKCS#1 v1.5), compiled in.
check_PROGRAMS += tests/unit/test_rsa_implicit
TESTS += tests/unit/test_rsa_implicit
tests_unit_test_rsa_implicit_SOURCES = tests/unit/test_rsa_implicit.c \
	provider/rsa_implicit.c
tests_unit_test_rsa_implicit_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_rsa_implicit_LDADD = $(UNIT_LDADD)

# The provider's ECDSA-Sig-Value encoding (a header function).
check_PROGRAMS += tests/unit/test_ecdsa_der
TESTS += tests/unit/test_ecdsa_der
tests_unit_test_ecdsa_der_SOURCES = tests/unit/test_ecdsa_der.c
tests_unit_test_ecdsa_der_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_ecdsa_der_LDADD = $(UNIT_LDADD)

# The CLI helpers live in the p11ca program, not in a library: compile
# util.c into the test.
tests_unit_test_cli_SOURCES = tests/unit/test_cli.c src/cli/util.c \
	src/cli/prompt.c
tests_unit_test_cli_CFLAGS = $(UNIT_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_cli_LDADD = src/libp11ca-ca.la $(UNIT_LDADD) $(JANSSON_LIBS)
endif

# The registry: the programs sharing the helpers (a fresh database per
# test, test certificates) in test_registry_util.c.
if HAVE_CMOCKA
REGISTRY_UNIT_TESTS = \
	tests/unit/test_registry \
	tests/unit/test_registry_lifecycle \
	tests/unit/test_registry_audit \
	tests/unit/test_registry_replay \
	tests/unit/test_registry_issuer \
	tests/unit/test_registry_cas
check_PROGRAMS += $(REGISTRY_UNIT_TESTS)
# The same programs on PostgreSQL (skipped when it is not installed).
TESTS += $(REGISTRY_UNIT_TESTS) tests/unit/registry-pg.sh

REGISTRY_UNIT_CFLAGS = $(UNIT_CFLAGS) $(SQLITE_CFLAGS) $(PQ_CFLAGS)
REGISTRY_UNIT_LDADD = src/libp11ca-registry.la $(CMOCKA_LIBS) \
	$(SQLITE_LIBS) $(PQ_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS)

tests_unit_test_registry_SOURCES = tests/unit/test_registry.c \
	tests/unit/test_registry_util.c tests/unit/treg.h
tests_unit_test_registry_CFLAGS = $(REGISTRY_UNIT_CFLAGS)
tests_unit_test_registry_LDADD = $(REGISTRY_UNIT_LDADD)

tests_unit_test_registry_lifecycle_SOURCES = \
	tests/unit/test_registry_lifecycle.c tests/unit/test_registry_util.c \
	tests/unit/treg.h
tests_unit_test_registry_lifecycle_CFLAGS = $(REGISTRY_UNIT_CFLAGS)
tests_unit_test_registry_lifecycle_LDADD = $(REGISTRY_UNIT_LDADD)

tests_unit_test_registry_audit_SOURCES = \
	tests/unit/test_registry_audit.c tests/unit/test_registry_util.c \
	tests/unit/treg.h
tests_unit_test_registry_audit_CFLAGS = $(REGISTRY_UNIT_CFLAGS)
tests_unit_test_registry_audit_LDADD = $(REGISTRY_UNIT_LDADD)

tests_unit_test_registry_replay_SOURCES = \
	tests/unit/test_registry_replay.c tests/unit/test_registry_util.c \
	tests/unit/treg.h
tests_unit_test_registry_replay_CFLAGS = $(REGISTRY_UNIT_CFLAGS)
tests_unit_test_registry_replay_LDADD = $(REGISTRY_UNIT_LDADD)

tests_unit_test_registry_issuer_SOURCES = \
	tests/unit/test_registry_issuer.c tests/unit/test_registry_util.c \
	tests/unit/treg.h
tests_unit_test_registry_issuer_CFLAGS = $(REGISTRY_UNIT_CFLAGS)
tests_unit_test_registry_issuer_LDADD = $(REGISTRY_UNIT_LDADD)

tests_unit_test_registry_cas_SOURCES = \
	tests/unit/test_registry_cas.c tests/unit/test_registry_util.c \
	tests/unit/treg.h
tests_unit_test_registry_cas_CFLAGS = $(REGISTRY_UNIT_CFLAGS)
tests_unit_test_registry_cas_LDADD = $(REGISTRY_UNIT_LDADD)
endif

# The service's pure parts (token bucket, [serve] values, routes, problem
# details), linked with the server library.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_server
TESTS += tests/unit/test_server
tests_unit_test_server_SOURCES = tests/unit/test_server.c
tests_unit_test_server_CFLAGS = $(UNIT_CFLAGS) $(JANSSON_CFLAGS) \
	$(LIBEVENT_CFLAGS) $(SSL_CFLAGS)
tests_unit_test_server_LDADD = src/libp11ca-server.la $(CMOCKA_LIBS) \
	$(LIBEVENT_LIBS) $(JANSSON_LIBS) $(SSL_LIBS) $(CRYPTO_LIBS)
endif
EXTRA_DIST += tests/unit/registry-pg.sh

# The OCSP response cache (src/ca/ocsp_cache.c), on a clock passed in.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_ocsp_cache
TESTS += tests/unit/test_ocsp_cache
tests_unit_test_ocsp_cache_SOURCES = tests/unit/test_ocsp_cache.c
tests_unit_test_ocsp_cache_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_ocsp_cache_LDADD = src/libp11ca-ca.la $(CMOCKA_LIBS) \
	$(CRYPTO_LIBS) -lpthread
endif

# The enrollment flow (src/ca/enroll_flow.c) without the CLI: a per-run
# SoftHSM2 token, a CA in a temporary directory, an issuer that fails on
# demand behind the issuer seam.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_enroll
TESTS += tests/unit/test_enroll
tests_unit_test_enroll_SOURCES = tests/unit/test_enroll.c
tests_unit_test_enroll_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_enroll_LDADD = src/libp11ca-ca.la $(CMOCKA_LIBS) \
	$(CRYPTO_LIBS) $(P11KIT_LIBS) -lpthread
endif

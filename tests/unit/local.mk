# SPDX-License-Identifier: Apache-2.0
# tests/unit: cmocka unit tests (TAP output, one line per test case).

if HAVE_CMOCKA
UNIT_TESTS = \
	tests/unit/test_uri \
	tests/unit/test_pin \
	tests/unit/test_ckr \
	tests/unit/test_keygen \
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

tests_unit_test_keygen_SOURCES = tests/unit/test_keygen.c
tests_unit_test_keygen_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_keygen_LDADD = $(UNIT_LDADD)

# The CLI helpers live in the p11ca program, not in a library: compile
# util.c into the test.
tests_unit_test_cli_SOURCES = tests/unit/test_cli.c src/cli/util.c
tests_unit_test_cli_CFLAGS = $(UNIT_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_cli_LDADD = $(UNIT_LDADD) $(JANSSON_LIBS)
endif

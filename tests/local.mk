# SPDX-License-Identifier: Apache-2.0
# tests/: the fault-injecting module, unit tests, C drivers, TAP scripts.
# Every test speaks TAP; each assertion counts in the summary.

TEST_EXTENSIONS = .sh
LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
SH_LOG_DRIVER = $(LOG_DRIVER)
SH_LOG_COMPILER = $(SHELL)
AM_TESTS_ENVIRONMENT = \
	top_srcdir='$(abs_top_srcdir)'; export top_srcdir; \
	top_builddir='$(abs_top_builddir)'; export top_builddir; \
	SOFTHSM_MODULE='$(SOFTHSM_MODULE)'; export SOFTHSM_MODULE; \
	PG_BINDIR='$(PG_BINDIR)'; export PG_BINDIR; \
	VALGRIND='$(VALGRIND_FOR_TESTS)'; export VALGRIND; \
	CMOCKA_MESSAGE_OUTPUT=TAP; export CMOCKA_MESSAGE_OUTPUT; \
	P11CA_STRICT=1; export P11CA_STRICT; \
	SANITIZER_PRELOAD='$(SANITIZER_PRELOAD)'; export SANITIZER_PRELOAD; \
	ASAN_OPTIONS='$(TEST_ASAN_OPTIONS)'; export ASAN_OPTIONS; \
	LSAN_OPTIONS='suppressions=$(abs_top_srcdir)/tests/lsan.supp:print_suppressions=0'; export LSAN_OPTIONS; \
	UBSAN_OPTIONS='print_stacktrace=1:halt_on_error=1'; export UBSAN_OPTIONS;

# valgrind and ASan do not mix: sanitizer builds run without valgrind.
# The provider, built with ASan, is loaded by the system's openssl, which
# is not: tests preload the runtimes for openssl (tests/lib/prov.sh).
if ENABLE_SANITIZERS
VALGRIND_FOR_TESTS =
SANITIZER_PRELOAD = $(ASAN_RUNTIME):$(UBSAN_RUNTIME)
TEST_ASAN_OPTIONS = detect_odr_violation=0:abort_on_error=0
else
VALGRIND_FOR_TESTS = $(VALGRIND)
SANITIZER_PRELOAD =
TEST_ASAN_OPTIONS =
endif

EXTRA_DIST += tests/lib/tap.sh tests/lib/token.sh tests/lib/pg.sh tests/lib/prov.sh tests/lib/guide.sh \
	tests/valgrind.supp tests/lsan.supp

check_LTLIBRARIES += tests/faulty-pkcs11/libfaulty-pkcs11.la
tests_faulty_pkcs11_libfaulty_pkcs11_la_SOURCES = tests/faulty-pkcs11/faulty-pkcs11.c
tests_faulty_pkcs11_libfaulty_pkcs11_la_CFLAGS = $(AM_CFLAGS)
# -rpath forces a shared module although it is never installed.
tests_faulty_pkcs11_libfaulty_pkcs11_la_LDFLAGS = -module -avoid-version \
	-shared -rpath /nowhere -no-undefined
tests_faulty_pkcs11_libfaulty_pkcs11_la_LIBADD = -ldl -lpthread
EXTRA_DIST += tests/faulty-pkcs11/README.md

include tests/unit/local.mk
include tests/progs/local.mk
include tests/fuzz/local.mk
include tests/integration/local.mk
include tests/integration/ca.mk
include tests/integration/enroll.mk
include tests/integration/ocsp.mk
include tests/integration/serve.mk

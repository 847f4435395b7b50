# SPDX-License-Identifier: Apache-2.0
# tests/progs: C drivers for threads, fork and faults, run by TAP scripts.

PROGS_LDADD = src/libp11ca-p11.la $(CRYPTO_LIBS) $(P11KIT_LIBS) -lpthread
PROGS_COMMON = tests/progs/drive.c tests/progs/drive.h

check_PROGRAMS += tests/progs/p11-threads tests/progs/p11-fork \
	tests/progs/p11-faults
tests_progs_p11_threads_SOURCES = tests/progs/p11-threads.c $(PROGS_COMMON)
tests_progs_p11_threads_LDADD = $(PROGS_LDADD)
tests_progs_p11_fork_SOURCES = tests/progs/p11-fork.c $(PROGS_COMMON)
tests_progs_p11_fork_LDADD = $(PROGS_LDADD)
tests_progs_p11_faults_SOURCES = tests/progs/p11-faults.c $(PROGS_COMMON)
tests_progs_p11_faults_LDADD = $(PROGS_LDADD)

TESTS += tests/integration/p11-threads.sh tests/integration/p11-fork.sh \
	tests/integration/p11-faults.sh tests/integration/p11-two-modules.sh
EXTRA_DIST += tests/integration/p11-threads.sh tests/integration/p11-fork.sh \
	tests/integration/p11-faults.sh tests/integration/p11-two-modules.sh \
	tests/progs/drive.sh

# Allocation failures in the p11 layer (tests/integration/p11-alloc.sh):
# every allocation call of the code linked into the driver goes through
# the counting wrappers of alloc-fail.c.
ALLOC_FAIL_WRAPS = malloc calloc realloc strdup strndup CRYPTO_malloc \
	CRYPTO_zalloc CRYPTO_realloc CRYPTO_strdup CRYPTO_strndup CRYPTO_memdup \
	CRYPTO_secure_malloc CRYPTO_secure_zalloc p11_kit_uri_new \
	p11_kit_uri_parse p11_kit_uri_format p11_kit_module_load \
	p11_kit_modules_load_and_initialize p11_kit_module_initialize
ALLOC_FAIL_LINK = $(ALLOC_FAIL_WRAPS:%=-Wl,--wrap=%)
check_PROGRAMS += tests/progs/p11-alloc
tests_progs_p11_alloc_SOURCES = tests/progs/p11-alloc.c \
	tests/progs/alloc-fail.c tests/progs/alloc-fail.h $(PROGS_COMMON)
tests_progs_p11_alloc_LDFLAGS = $(AM_LDFLAGS) $(ALLOC_FAIL_LINK)
tests_progs_p11_alloc_LDADD = $(PROGS_LDADD)
TESTS += tests/integration/p11-alloc.sh
EXTRA_DIST += tests/integration/p11-alloc.sh

# The OCSP responder in one long-lived process (as p11ca serve runs it).
check_PROGRAMS += tests/progs/ocsp-drive
tests_progs_ocsp_drive_SOURCES = tests/progs/ocsp-drive.c
tests_progs_ocsp_drive_LDADD = src/libp11ca-ca.la $(CRYPTO_LIBS) \
	$(P11KIT_LIBS) -lpthread

# The route tables of p11ca serve, for tests/integration/openapi.sh.
check_PROGRAMS += tests/progs/srv-routes
tests_progs_srv_routes_SOURCES = tests/progs/srv-routes.c
tests_progs_srv_routes_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) \
	$(LIBEVENT_CFLAGS) $(SSL_CFLAGS)
tests_progs_srv_routes_LDADD = src/libp11ca-server.la src/libp11ca-ca.la \
	src/libp11ca-registry.la src/libp11ca-p11.la $(LIBEVENT_LIBS) \
	$(SSL_LIBS) $(CRYPTO_LIBS) $(P11KIT_LIBS) $(SQLITE_LIBS) \
	$(JANSSON_LIBS) -lpthread

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
	tests/integration/p11-faults.sh
EXTRA_DIST += tests/integration/p11-threads.sh tests/integration/p11-fork.sh \
	tests/integration/p11-faults.sh tests/progs/drive.sh

# The OCSP responder in one long-lived process (as p11ca serve runs it).
check_PROGRAMS += tests/progs/ocsp-drive
tests_progs_ocsp_drive_SOURCES = tests/progs/ocsp-drive.c
tests_progs_ocsp_drive_LDADD = src/libp11ca-ca.la $(CRYPTO_LIBS) \
	$(P11KIT_LIBS) -lpthread

# SPDX-License-Identifier: Apache-2.0
# tests/: the fault-injecting module, unit tests, C drivers, TAP scripts.

check_LTLIBRARIES += tests/faulty-pkcs11/libfaulty-pkcs11.la
tests_faulty_pkcs11_libfaulty_pkcs11_la_SOURCES = tests/faulty-pkcs11/faulty-pkcs11.c
tests_faulty_pkcs11_libfaulty_pkcs11_la_CFLAGS = $(AM_CFLAGS)
# -rpath forces a shared module although it is never installed.
tests_faulty_pkcs11_libfaulty_pkcs11_la_LDFLAGS = -module -avoid-version \
	-shared -rpath /nowhere -no-undefined
tests_faulty_pkcs11_libfaulty_pkcs11_la_LIBADD = -ldl -lpthread
EXTRA_DIST += tests/faulty-pkcs11/README.md

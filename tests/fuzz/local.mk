# SPDX-License-Identifier: Apache-2.0
# tests/fuzz: libFuzzer targets, one file each (tests/fuzz/NAME.c defines
# LLVMFuzzerTestOneInput), with their seed corpus in tests/fuzz/corpus/NAME
# and an optional dictionary tests/fuzz/NAME.dict.
#
# FUZZ_TARGETS is the list: scripts/fuzz and tests/fuzz/regress.sh read it
# (make fuzz-targets).  A new target is one more name there and its LDADD
# line (see docs/internals/fuzzing.md).
#
# With --enable-fuzzing (CC=clang) the targets link libFuzzer's engine;
# otherwise tests/fuzz/replay.c is their main, and `make check` replays the
# seed corpus of every target once (tests/fuzz/regress.sh) in every build.

FUZZ_TARGETS = \
	tests/fuzz/uri \
	tests/fuzz/pin-file \
	tests/fuzz/csr-policy \
	tests/fuzz/cnf-profiles \
	tests/fuzz/api-request

if ENABLE_FUZZING
FUZZ_MAIN = $(FUZZ_ENGINE)
else
check_LTLIBRARIES += tests/fuzz/libfuzz-replay.la
tests_fuzz_libfuzz_replay_la_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz.h
FUZZ_MAIN = tests/fuzz/libfuzz-replay.la
endif
FUZZ_LDADD = $(FUZZ_MAIN) src/libp11ca-ca.la src/libp11ca-registry.la \
	src/libp11ca-p11.la $(CRYPTO_LIBS) $(P11KIT_LIBS) $(SQLITE_LIBS) \
	$(JANSSON_LIBS) -lpthread

check_PROGRAMS += $(FUZZ_TARGETS)
tests_fuzz_uri_LDADD = $(FUZZ_LDADD)
tests_fuzz_pin_file_LDADD = $(FUZZ_LDADD)
tests_fuzz_csr_policy_LDADD = $(FUZZ_LDADD)
tests_fuzz_cnf_profiles_LDADD = $(FUZZ_LDADD)
tests_fuzz_api_request_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) \
	$(LIBEVENT_CFLAGS) $(SSL_CFLAGS)
tests_fuzz_api_request_LDADD = src/libp11ca-server.la $(FUZZ_LDADD) \
	$(LIBEVENT_LIBS) $(SSL_LIBS)

TESTS += tests/fuzz/regress.sh
AM_TESTS_ENVIRONMENT += \
	FUZZ_TARGETS='$(FUZZ_TARGETS:tests/fuzz/%=%)'; export FUZZ_TARGETS; \
	FUZZ_ENGINE='$(FUZZ_ENGINE)'; export FUZZ_ENGINE;
EXTRA_DIST += tests/fuzz/regress.sh tests/fuzz/fuzz.h tests/fuzz/fuzz-ca.h \
	tests/fuzz/corpus tests/fuzz/uri.dict tests/fuzz/cnf-profiles.dict \
	tests/fuzz/api-request.dict \
	scripts/fuzz scripts/scan

# The targets by name, for scripts/fuzz and tests/fuzz/regress.sh.
fuzz-targets:
	@echo $(FUZZ_TARGETS:tests/fuzz/%=%)
.PHONY: fuzz-targets

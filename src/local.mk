# SPDX-License-Identifier: Apache-2.0
# src/: the shared code (common, p11) and the p11ca command.

noinst_LTLIBRARIES += src/libp11ca-common.la src/libp11ca-p11.la

src_libp11ca_common_la_SOURCES = \
	src/common/log.c src/common/log.h \
	src/common/rc.c src/common/rc.h \
	src/common/timeparse.c src/common/timeparse.h

src_libp11ca_p11_la_SOURCES = \
	src/p11/p11.h src/p11/internal.h \
	src/p11/ckr.c src/p11/fork.c src/p11/module.c src/p11/uri.c \
	src/p11/pin.c src/p11/login.c src/p11/session.c src/p11/object.c \
	src/p11/keygen.c src/p11/cert.c src/p11/ops.c \
	src/p11/pubkey.c src/p11/wait.c src/p11/pinstate.c src/p11/secmem.c
src_libp11ca_p11_la_LIBADD = src/libp11ca-common.la $(P11KIT_LIBS) \
	$(CRYPTO_LIBS) -lpthread

bin_PROGRAMS += src/p11ca
src_p11ca_SOURCES = \
	src/cli/main.c src/cli/cli.h src/cli/util.c src/cli/prompt.c \
	src/cli/zip.c \
	src/cli/cmd_certreg.c src/cli/cmd_register.c src/cli/cmd_index.c \
	src/cli/cmd_p12.c \
	src/cli/cmd_token.c src/cli/cmd_key.c \
	src/cli/cmd_cert.c \
	src/cli/cmd_enroll.c src/cli/cmd_enroll.h
src_p11ca_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
src_p11ca_LDADD = src/libp11ca-p11.la $(JANSSON_LIBS) $(CRYPTO_LIBS) \
	$(P11KIT_LIBS)

include src/registry/local.mk
include src/ca/local.mk
include src/server/local.mk

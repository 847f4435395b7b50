# SPDX-License-Identifier: Apache-2.0
# src/server: p11ca serve, the registry service (libevent evhttp over
# bufferevent_openssl, a worker pool for token and registry work, the REST
# API in one file per resource).

noinst_LTLIBRARIES += src/libp11ca-server.la

src_libp11ca_server_la_SOURCES = \
	src/server/server.h src/server/internal.h \
	src/server/server.c src/server/config.c src/server/tls.c \
	src/server/http.c src/server/worker.c src/server/ratelimit.c \
	src/server/metrics.c src/server/nodes.c \
	src/server/api_health.c src/server/api_certs.c src/server/api_cas.c \
	src/server/api_crl.c src/server/api_ocsp.c src/server/api_enroll.c
src_libp11ca_server_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) \
	$(LIBEVENT_CFLAGS) $(SSL_CFLAGS)
src_libp11ca_server_la_LIBADD = src/libp11ca-ca.la $(LIBEVENT_LIBS) \
	$(JANSSON_LIBS) $(SSL_LIBS) $(CRYPTO_LIBS) -lpthread -lm

src_p11ca_SOURCES += src/cli/cmd_serve.c
src_p11ca_LDADD += src/libp11ca-server.la $(LIBEVENT_LIBS) $(SSL_LIBS)

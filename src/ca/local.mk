# SPDX-License-Identifier: Apache-2.0
# src/ca: the certificate authority (profiles, CSR policy, issuance, CRLs,
# the OCSP responder, the enrollment flow) and its commands: p11ca ca
# init|import-chain|show, p11ca issue, p11ca crl, p11ca ocsp (p11ca enroll
# is in src/local.mk with the token commands).

noinst_LTLIBRARIES += src/libp11ca-ca.la

src_libp11ca_ca_la_SOURCES = \
	src/ca/ca.h src/ca/internal.h \
	src/ca/config.c src/ca/profile.c src/ca/keys.c src/ca/ext.c \
	src/ca/init.c src/ca/csr.c src/ca/csr_parse.c src/ca/policy.c \
	src/ca/issue.c src/ca/cert_tmpl.c src/ca/batch.c \
	src/ca/crl.c src/ca/io.c src/ca/audit.c src/ca/service.c \
	src/ca/register.c \
	src/ca/ocsp.h src/ca/ocsp_int.h src/ca/ocsp.c src/ca/ocsp_conf.c \
	src/ca/ocsp_refresh.c src/ca/ocsp_cache.c src/ca/ocsp_signer.c \
	src/ca/enroll.h src/ca/enroll_issuer.c src/ca/enroll_csr.c \
	src/ca/enroll_pair.c src/ca/enroll_flow.c
src_libp11ca_ca_la_LIBADD = src/libp11ca-registry.la src/libp11ca-p11.la \
	$(CRYPTO_LIBS) $(P11KIT_LIBS)

# The remote enrollment issuer (p11ca enroll --server): an HTTPS client on
# libevent and jansson, kept out of the CA library.
noinst_LTLIBRARIES += src/libp11ca-enroll-remote.la
src_libp11ca_enroll_remote_la_SOURCES = src/ca/enroll_remote.h \
	src/ca/enroll_remote.c
src_libp11ca_enroll_remote_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) \
	$(LIBEVENT_CFLAGS) $(SSL_CFLAGS)
src_libp11ca_enroll_remote_la_LIBADD = src/libp11ca-ca.la $(LIBEVENT_LIBS) \
	$(JANSSON_LIBS) $(SSL_LIBS) $(CRYPTO_LIBS)

src_p11ca_SOURCES += src/cli/cmd_ca.c src/cli/cmd_issue.c src/cli/cmd_crl.c \
	src/cli/cmd_audit.c src/cli/cmd_ocsp.c src/cli/cmd_registry.c
src_p11ca_LDADD += src/libp11ca-enroll-remote.la src/libp11ca-ca.la

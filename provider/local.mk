# SPDX-License-Identifier: Apache-2.0
# provider/: p11ca.so, the OpenSSL 3 provider, installed in libcrypto's
# modulesdir (or --with-modulesdir).
provmod_LTLIBRARIES = provider/p11ca.la
provmoddir = $(modulesdir)
provider_p11ca_la_SOURCES = \
	provider/prov.h \
	provider/provider.c provider/err.c provider/key.c provider/store.c \
	provider/keymgmt.c \
	provider/signature.h provider/signature.c provider/signature_rsa.c \
	provider/signature_ecdsa.c provider/signature_eddsa.c \
	provider/asym_cipher_rsa.h provider/asym_cipher_rsa.c \
	provider/asym_cipher_rsa_dec.c provider/rsa_implicit.c provider/rsa_pss.c \
	provider/keyexch_ecdh.c provider/encoder.c provider/decoder.c \
	provider/rand.c
provider_p11ca_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden
provider_p11ca_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared \
	-no-undefined -export-symbols-regex '^OSSL_provider_init$$'
provider_p11ca_la_LIBADD = src/libp11ca-p11.la $(CRYPTO_LIBS) $(P11KIT_LIBS) \
	-lpthread

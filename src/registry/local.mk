# SPDX-License-Identifier: Apache-2.0
# src/registry: the certificate registry (lifecycle rules, audit chain) and
# its SQLite and PostgreSQL backends.
#
# The schema migrations are plain SQL files, src/registry/schema/NNN_<what>.sql,
# shipped in the tarball.  At build time schema/embed.awk turns them into
# src/registry/schema_sql.c (one C string per migration, in order; see
# schema.h), so the library needs no file at run time.  To add a migration,
# add the next NNN_<what>.sql to REG_SCHEMA_SQL, never edit a released one.
# PostgreSQL's are schema/pg/NNN_<what>.sql, with the same versions
# (REG_SCHEMA_PG_SQL, embedded as schema_pg_sql.c): add both.

REG_SCHEMA_SQL = src/registry/schema/001_init.sql \
	src/registry/schema/002_issuer_serial.sql \
	src/registry/schema/003_audit_heads.sql \
	src/registry/schema/004_ca_autoreg.sql \
	src/registry/schema/005_enroll_codes.sql \
	src/registry/schema/006_notify_signups.sql
REG_SCHEMA_PG_SQL = src/registry/schema/pg/001_init.sql \
	src/registry/schema/pg/002_issuer_serial.sql \
	src/registry/schema/pg/003_audit_heads.sql \
	src/registry/schema/pg/004_ca_autoreg.sql \
	src/registry/schema/pg/005_enroll_codes.sql \
	src/registry/schema/pg/006_notify_signups.sql

noinst_LTLIBRARIES += src/libp11ca-registry.la

src_libp11ca_registry_la_SOURCES = \
	src/registry/registry.h src/registry/internal.h \
	src/registry/schema.h src/registry/sqlite_int.h src/registry/pg_int.h \
	src/registry/lifecycle.c src/registry/bulk.c src/registry/search.c \
	src/registry/cert.c src/registry/clock.c \
	src/registry/audit.c src/registry/audit_replay.c \
	src/registry/details.c src/registry/copy.c src/registry/enroll_codes.c \
	src/registry/nodes.c \
	src/registry/backend_sqlite.c src/registry/sqlite_certs.c \
	src/registry/sqlite_rows.c \
	src/registry/backend_pg.c src/registry/pg_certs.c src/registry/pg_rows.c \
	src/registry/pg_nodes.c
nodist_src_libp11ca_registry_la_SOURCES = src/registry/schema_sql.c \
	src/registry/schema_pg_sql.c
src_libp11ca_registry_la_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS) \
	$(PQ_CFLAGS) $(JANSSON_CFLAGS)
src_libp11ca_registry_la_LIBADD = src/libp11ca-common.la $(SQLITE_LIBS) \
	$(PQ_LIBS) \
	$(CRYPTO_LIBS) $(JANSSON_LIBS) -lpthread

src/registry/schema_sql.c: $(REG_SCHEMA_SQL:%=$(srcdir)/%) \
		$(srcdir)/src/registry/schema/embed.awk
	$(AM_V_GEN)$(MKDIR_P) src/registry && \
	$(AWK) -f $(srcdir)/src/registry/schema/embed.awk \
		$(REG_SCHEMA_SQL:%=$(srcdir)/%) > $@-t && mv -f $@-t $@

src/registry/schema_pg_sql.c: $(REG_SCHEMA_PG_SQL:%=$(srcdir)/%) \
		$(srcdir)/src/registry/schema/embed.awk
	$(AM_V_GEN)$(MKDIR_P) src/registry && \
	$(AWK) -v backend=pg -f $(srcdir)/src/registry/schema/embed.awk \
		$(REG_SCHEMA_PG_SQL:%=$(srcdir)/%) > $@-t && mv -f $@-t $@

CLEANFILES += src/registry/schema_sql.c src/registry/schema_pg_sql.c
EXTRA_DIST += $(REG_SCHEMA_SQL) $(REG_SCHEMA_PG_SQL) \
	src/registry/schema/embed.awk

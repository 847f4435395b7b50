-- SPDX-License-Identifier: Apache-2.0
-- Registry schema, version 1: CAs, certificates, status history, audit
-- trail, CRL numbers.  Applied once, inside one transaction, by the
-- migration runner in backend_sqlite.c, which records the version in
-- schema_version (created by the runner: version, name, applied_at).
-- Never edit a released migration: add NNN_<what>.sql.

CREATE TABLE cas (
    id INTEGER PRIMARY KEY,
    name TEXT,
    subject TEXT NOT NULL,
    der BLOB NOT NULL UNIQUE,
    added_at INTEGER NOT NULL
);

-- Times are Unix seconds (UTC).  ca_id NULL: issuer unknown.
CREATE TABLE certs (
    serial TEXT NOT NULL PRIMARY KEY
        CHECK (length(serial) BETWEEN 1 AND 63),
    ca_id INTEGER REFERENCES cas(id),
    subject TEXT NOT NULL,
    issuer TEXT NOT NULL,
    cn TEXT,
    ou TEXT,
    client_id TEXT,
    profile TEXT,
    origin TEXT NOT NULL CHECK (origin IN ('issued', 'registered')),
    status TEXT NOT NULL CHECK (status IN ('activated', 'not-activated',
        'registered-not-activated', 'revoked')),
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    revoked_at INTEGER,
    reason INTEGER CHECK (reason IS NULL OR reason BETWEEN 0 AND 10),
    invalidity INTEGER,
    replaces TEXT,
    key_hash TEXT,
    der BLOB NOT NULL
);

CREATE INDEX certs_cn ON certs(cn);
CREATE INDEX certs_ou ON certs(ou);
CREATE INDEX certs_client_id ON certs(client_id);
CREATE INDEX certs_not_after ON certs(not_after);
CREATE INDEX certs_recorded_at ON certs(recorded_at);
CREATE INDEX certs_status ON certs(status);
-- Defence in depth: lifecycle.c checks first to give a good message.
CREATE UNIQUE INDEX certs_active_client_id ON certs(client_id)
    WHERE status = 'activated';
-- CRL entries in numeric serial order (shorter hex first) without a sort:
-- reg_revoked_list streams rows straight from this index.
CREATE INDEX certs_revoked_order ON certs(length(serial), serial)
    WHERE status = 'revoked';

-- A certificate's history goes with it; the audit trail keeps the delete.
CREATE TABLE status_history (
    id INTEGER PRIMARY KEY,
    serial TEXT NOT NULL REFERENCES certs(serial) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT
);
CREATE INDEX status_history_serial ON status_history(serial, id);

-- Hash chain: hash = SHA-256 over (seq, at, actor, action, object,
-- details, prev_hash); see audit.c.
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT,
    details TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE crl_numbers (
    ca_id INTEGER PRIMARY KEY REFERENCES cas(id),
    last INTEGER NOT NULL
);

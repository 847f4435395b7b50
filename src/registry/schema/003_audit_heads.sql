-- SPDX-License-Identifier: Apache-2.0
-- Registry schema, version 3: signed heads of the audit trail.  A head is
-- the CA's signature over one entry's sequence number and hash (with the
-- time and the CA's identity; the signed bytes are src/ca/audit.c's, the
-- registry keeps them as they are).  seq, hash, at and ca_id repeat what
-- the signed bytes say, for look-ups; verification trusts only the
-- signature.  Never edit a released migration: add NNN_<what>.sql.

CREATE TABLE audit_heads (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    at INTEGER NOT NULL,
    ca_id INTEGER REFERENCES cas(id),
    signed BLOB NOT NULL
);

CREATE INDEX audit_heads_ca ON audit_heads(ca_id, id);

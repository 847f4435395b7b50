-- SPDX-License-Identifier: Apache-2.0
-- Registry schema, version 2: a certificate is identified by its issuer
-- and serial (registered certificates of other CAs may reuse a serial),
-- CAs are marked external or not, and a certificate may carry a
-- scheduled revocation (a superseded one's grace period).
--
-- SQLite cannot drop a primary key, so certs is rebuilt: certs_v2 gets
-- every row with its rowid as id (search order breaks ties by it), the
-- status history follows by that id, then the old tables go and the new
-- ones take their names.  The runner applies this in one transaction.

-- external = 1: a CA whose certificates are only registered here (p11ca
-- cert register-ca); this registry makes no CRL for it.  Existing CAs are
-- external when registered certificates are all they have.
ALTER TABLE cas ADD COLUMN external INTEGER NOT NULL DEFAULT 0
    CHECK (external IN (0, 1));
UPDATE cas SET external = 1
    WHERE id IN (SELECT ca_id FROM certs WHERE origin = 'registered')
    AND id NOT IN (SELECT ca_id FROM certs
                   WHERE origin = 'issued' AND ca_id IS NOT NULL)
    AND id NOT IN (SELECT ca_id FROM crl_numbers);

-- ca_id NULL: issuer unknown (one more issuer for uniqueness: 0).
-- revoke_after: revoked (superseded) by the first registry write at or
-- after this time; NULL: nothing scheduled.
CREATE TABLE certs_v2 (
    id INTEGER PRIMARY KEY,
    serial TEXT NOT NULL CHECK (length(serial) BETWEEN 1 AND 63),
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
    der BLOB NOT NULL,
    revoke_after INTEGER
);
INSERT INTO certs_v2 (id, serial, ca_id, subject, issuer, cn, ou, client_id,
        profile, origin, status, not_before, not_after, recorded_at,
        revoked_at, reason, invalidity, replaces, key_hash, der)
    SELECT rowid, serial, ca_id, subject, issuer, cn, ou, client_id, profile,
        origin, status, not_before, not_after, recorded_at, revoked_at,
        reason, invalidity, replaces, key_hash, der
    FROM certs ORDER BY rowid;

CREATE TABLE status_history_v2 (
    id INTEGER PRIMARY KEY,
    cert_id INTEGER NOT NULL REFERENCES certs_v2(id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT
);
INSERT INTO status_history_v2 (id, cert_id, at, from_status, to_status,
        actor, reason)
    SELECT h.id, c.rowid, h.at, h.from_status, h.to_status, h.actor, h.reason
    FROM status_history h JOIN certs c ON c.serial = h.serial ORDER BY h.id;

-- Children first: the foreign keys stay on during the migration.
DROP TABLE status_history;
DROP TABLE certs;
ALTER TABLE certs_v2 RENAME TO certs;
ALTER TABLE status_history_v2 RENAME TO status_history;

CREATE UNIQUE INDEX certs_issuer_serial ON certs(coalesce(ca_id, 0), serial);
CREATE INDEX certs_serial ON certs(serial);
CREATE INDEX certs_cn ON certs(cn);
CREATE INDEX certs_ou ON certs(ou);
CREATE INDEX certs_client_id ON certs(client_id);
CREATE INDEX certs_not_after ON certs(not_after);
CREATE INDEX certs_recorded_at ON certs(recorded_at);
CREATE INDEX certs_status ON certs(status);
-- Defence in depth: lifecycle.c checks first to give a good message.
CREATE UNIQUE INDEX certs_active_client_id ON certs(client_id)
    WHERE status = 'activated';
-- CRL entries in numeric serial order (shorter hex first) without a sort.
CREATE INDEX certs_revoked_order ON certs(length(serial), serial)
    WHERE status = 'revoked';
-- Scheduled revocations: looked at by every write, so kept small.
CREATE INDEX certs_revoke_after ON certs(revoke_after)
    WHERE revoke_after IS NOT NULL;
CREATE INDEX status_history_cert ON status_history(cert_id, id);

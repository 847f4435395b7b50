-- SPDX-License-Identifier: Apache-2.0
-- Registry schema, version 5: one-time enrollment codes (p11ca serve,
-- POST /v1/enrollment-codes and POST /v1/enroll).  A code is bound to a
-- profile and a client ID (and, when given, a subject); the registry keeps
-- only the SHA-256 of the code (hex), never the code.  A code is used once:
-- used_at is set by a conditional UPDATE (used_at IS NULL AND expires >
-- now), so two requests with the same code cannot both take it; used_by is
-- the serial of the certificate issued with it, by the CA ca_id.  A code
-- is bound to the CA of the service that made it (ca_id): another CA's
-- service sharing the registry cannot take it.

CREATE TABLE enroll_codes (
    id INTEGER PRIMARY KEY,
    ca_id INTEGER NOT NULL REFERENCES cas(id),
    hash TEXT NOT NULL UNIQUE CHECK (length(hash) = 64),
    profile TEXT NOT NULL,
    client_id TEXT NOT NULL,
    subject TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    expires INTEGER NOT NULL,
    used_at INTEGER,
    used_by TEXT
);

-- SPDX-License-Identifier: Apache-2.0
-- Registry schema, version 4 (as ../004_ca_autoreg.sql): auto-registration
-- of a registered CA's devices (p11ca serve).  A certificate that chains
-- to a CA with auto_register = 1 and is not in the registry yet is
-- recorded at its first TLS connection with the status auto_status.

ALTER TABLE cas ADD COLUMN auto_register integer NOT NULL DEFAULT 0
    CHECK (auto_register IN (0, 1));
ALTER TABLE cas ADD COLUMN auto_status text NOT NULL
    DEFAULT 'registered-not-activated'
    CHECK (auto_status IN ('activated', 'registered-not-activated'));

-- SPDX-License-Identifier: Apache-2.0
-- Registry schema, version 6 (as ../006_notify_signups.sql): several
-- p11ca serve nodes on one registry.
--
-- 1. Every change a node caches something of is announced on the channel
--    p11ca_registry, in the transaction that makes it (NOTIFY is sent at
--    its commit, never for a rollback).  Payloads:
--      cert CA_ID SERIAL STATUS   a certificate's status changed, or
--                                 the certificate deleted (STATUS
--                                 "deleted"); a new one is not announced
--                                 (nothing caches it yet, and a copy of
--                                 millions of rows sends nothing)
--      ca ID                      a CA added or changed (POST, PATCH /v1/cas)
--      crl CA_ID                  a CRL number taken (a CRL was made)
--    Each node LISTENs on its own connection and drops what it caches of
--    the object named (OCSP responses, the CA list and trust, the CRL).
-- 2. The sign-up limit of p11ca serve counted in the database: one token
--    bucket per scope ("ca ID"), taken by one conditional UPDATE, so the
--    limit is the same whichever node a client reaches.

CREATE FUNCTION p11ca_notify_cert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r certs;
BEGIN
    IF TG_OP = 'DELETE' THEN
        r := OLD;
    ELSE
        r := NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status
       AND NEW.revoked_at IS NOT DISTINCT FROM OLD.revoked_at
       AND NEW.reason IS NOT DISTINCT FROM OLD.reason
       AND NEW.invalidity IS NOT DISTINCT FROM OLD.invalidity THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('p11ca_registry', 'cert ' || coalesce(r.ca_id, 0)
        || ' ' || r.serial || ' '
        || CASE WHEN TG_OP = 'DELETE' THEN 'deleted' ELSE r.status END);
    RETURN NULL;
END;
$$;
CREATE TRIGGER certs_notify AFTER UPDATE OR DELETE ON certs
    FOR EACH ROW EXECUTE FUNCTION p11ca_notify_cert();

CREATE FUNCTION p11ca_notify_ca() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('p11ca_registry', 'ca ' || NEW.id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER cas_notify AFTER INSERT OR UPDATE ON cas
    FOR EACH ROW EXECUTE FUNCTION p11ca_notify_ca();

CREATE FUNCTION p11ca_notify_crl() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('p11ca_registry', 'crl ' || NEW.ca_id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER crl_numbers_notify AFTER INSERT OR UPDATE ON crl_numbers
    FOR EACH ROW EXECUTE FUNCTION p11ca_notify_crl();

CREATE TABLE signup_buckets (
    scope text PRIMARY KEY,
    tokens double precision NOT NULL,
    at_ms bigint NOT NULL
);

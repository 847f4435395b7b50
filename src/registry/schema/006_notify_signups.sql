-- SPDX-License-Identifier: Apache-2.0
-- Registry schema, version 6: nothing changes on SQLite.  On PostgreSQL
-- (pg/006_notify_signups.sql) the registry announces its changes to the
-- nodes of p11ca serve (LISTEN/NOTIFY) and counts their sign-ups; a
-- SQLite registry has one node, whose caches and sign-up limit are its
-- own.  The versions stay the same on both backends.

SELECT 1;

-- Several daemons on one database (PostgreSQL; the tables exist on SQLite too, so both engines have
-- the same schema and `db copy` maps table to table).

-- One row per running daemon process: it refreshes heartbeat_at every few seconds; a daemon whose
-- heartbeat is older than database.lease is dead, and its outbox claims are recovered by the others.
CREATE TABLE daemons (
    owner        TEXT    NOT NULL PRIMARY KEY,   -- the process's random claim id (outbox.lease_owner)
    host         TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);

-- Who polls a mailbox: exactly one daemon holds a mailbox's lease at a time, renewing it well
-- before expires_at; the others stand by and take it once it has expired.
CREATE TABLE mailbox_leases (
    mailbox     TEXT    NOT NULL PRIMARY KEY,
    owner       TEXT    NOT NULL,
    host        TEXT    NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);

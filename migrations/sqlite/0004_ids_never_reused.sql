-- no-transaction
-- Ids a person sees or exports are never handed out again. Without AUTOINCREMENT, SQLite gives a
-- new row max(id) + 1, so after `cities remove` of the newest city its id came back, and a stale
-- `cities export` imported again "updated" the new city. Rebuilds cities, staff and quarantine
-- with AUTOINCREMENT, keeping every row, id, foreign key and index. (contacts are keyed by their
-- address and have no id; the other tables' rows are never deleted.)
--
-- SQLite's procedure for changing a table (https://www.sqlite.org/lang_altertable.html#otheralter):
-- foreign keys off, outside any transaction (dropping the old cities table would otherwise cascade
-- to city_domains and contacts and null requests.city_id), then one transaction, then a check.
-- Hence `no-transaction` above: this file brings its own BEGIN/COMMIT. Each step can run again
-- after a crash between COMMIT and sqlx's bookkeeping.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

DROP TABLE IF EXISTS cities_new;
CREATE TABLE cities_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    population     INTEGER,
    eligible       INTEGER NOT NULL DEFAULT 1 CHECK (eligible IN (0, 1)),
    eligible_from  TEXT,
    eligible_until TEXT,
    notes          TEXT    NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
INSERT INTO cities_new (id, name, state, population, eligible, eligible_from, eligible_until, notes, created_at, updated_at)
    SELECT id, name, state, population, eligible, eligible_from, eligible_until, notes, created_at, updated_at FROM cities;
DROP TABLE cities;
ALTER TABLE cities_new RENAME TO cities;
CREATE INDEX cities_name_state ON cities (state, name);

DROP TABLE IF EXISTS staff_new;
CREATE TABLE staff_new (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    email      TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL DEFAULT '',
    role       TEXT    NOT NULL DEFAULT 'staff' CHECK (role IN ('staff', 'admin')),
    active     INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at INTEGER NOT NULL
);
INSERT INTO staff_new (id, email, name, role, active, created_at)
    SELECT id, email, name, role, active, created_at FROM staff;
DROP TABLE staff;
ALTER TABLE staff_new RENAME TO staff;

DROP TABLE IF EXISTS quarantine_new;
CREATE TABLE quarantine_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id  INTEGER REFERENCES messages (id) ON DELETE SET NULL,
    mailbox     TEXT    NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    from_addr   TEXT    NOT NULL DEFAULT '',
    subject     TEXT    NOT NULL DEFAULT '',
    size        INTEGER NOT NULL DEFAULT 0,
    header_id   TEXT    NOT NULL DEFAULT '',
    reason      TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'held' CHECK (status IN ('held', 'released', 'retried')),
    created_at  INTEGER NOT NULL
);
INSERT INTO quarantine_new (id, message_id, mailbox, uidvalidity, uid, from_addr, subject, size, header_id, reason, status, created_at)
    SELECT id, message_id, mailbox, uidvalidity, uid, from_addr, subject, size, header_id, reason, status, created_at
    FROM quarantine;
DROP TABLE quarantine;
ALTER TABLE quarantine_new RENAME TO quarantine;
CREATE UNIQUE INDEX quarantine_position ON quarantine (mailbox, uidvalidity, uid);

-- New ids continue above the highest ever used: the rows' own maximum, and for cities also every
-- id the audit log names (`cities add #7 …`, `cities remove #7 …`, `contact add … → city #7`), so
-- a city removed before this migration does not hand its id out either.
DELETE FROM sqlite_sequence WHERE name IN ('cities', 'staff', 'quarantine');
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'cities', MAX(n) FROM (
        SELECT COALESCE(MAX(id), 0) AS n FROM cities
        UNION ALL
        SELECT CAST(substr(detail, 2) AS INTEGER) FROM audit_log
            WHERE action IN ('cities add', 'cities set', 'cities remove') AND detail LIKE '#%'
        UNION ALL
        SELECT CAST(substr(detail, instr(detail, '→ city #') + length('→ city #')) AS INTEGER) FROM audit_log
            WHERE action = 'contact add' AND instr(detail, '→ city #') > 0
    );
INSERT INTO sqlite_sequence (name, seq) SELECT 'staff', COALESCE(MAX(id), 0) FROM staff;
INSERT INTO sqlite_sequence (name, seq) SELECT 'quarantine', COALESCE(MAX(id), 0) FROM quarantine;

-- Every foreign key still points at a row (the ids were copied, so they must): a violation fails
-- the CHECK and the migration, and the transaction is never committed.
DROP TABLE IF EXISTS temp.fk_violations;
CREATE TEMP TABLE fk_violations (n INTEGER NOT NULL CHECK (n = 0));
INSERT INTO temp.fk_violations SELECT COUNT(*) FROM pragma_foreign_key_check;
DROP TABLE temp.fk_violations;

COMMIT;
PRAGMA foreign_keys = ON;

-- intake311 initial schema (SQLite). Never edit once landed: add a new migration instead.
-- Timestamps are Unix milliseconds (INTEGER) so the same queries work on PostgreSQL (BIGINT).

CREATE TABLE cities (
    id             INTEGER PRIMARY KEY,
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
-- Not unique: a state can have two cities of the same name (told apart by id and domains).
CREATE INDEX cities_name_state ON cities (state, name);

CREATE TABLE city_domains (
    domain  TEXT    NOT NULL PRIMARY KEY,
    city_id INTEGER NOT NULL REFERENCES cities (id) ON DELETE CASCADE
);
CREATE INDEX city_domains_city ON city_domains (city_id);

CREATE TABLE staff (
    id         INTEGER PRIMARY KEY,
    email      TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL DEFAULT '',
    role       TEXT    NOT NULL DEFAULT 'staff' CHECK (role IN ('staff', 'admin')),
    active     INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at INTEGER NOT NULL
);

-- One row per (prefix, year): the last sequence number handed out. Only ever increases.
CREATE TABLE tracking_counters (
    prefix   TEXT    NOT NULL,
    year     INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (prefix, year)
);

CREATE TABLE requests (
    id                 INTEGER PRIMARY KEY,
    tracking           TEXT    NOT NULL UNIQUE,
    city_id            INTEGER REFERENCES cities (id) ON DELETE SET NULL,
    official_email     TEXT    NOT NULL,
    official_name      TEXT    NOT NULL DEFAULT '',
    subject            TEXT    NOT NULL DEFAULT '',
    status             TEXT    NOT NULL,
    eligibility        TEXT    NOT NULL CHECK (eligibility IN ('eligible', 'not_eligible', 'unknown')),
    eligibility_reason TEXT    NOT NULL DEFAULT '',
    due_date           TEXT,
    assignee           TEXT    NOT NULL DEFAULT '',
    -- Message-ID of the staff notice that opened the request's staff thread ('' = none yet).
    staff_thread_id    TEXT    NOT NULL DEFAULT '',
    -- A request opened by a reply to a closed one points at it.
    parent_id          INTEGER REFERENCES requests (id) ON DELETE SET NULL,
    -- Waiting for a person to decide the city ('' = not in review), and a suggestion if any.
    review_reason      TEXT    NOT NULL DEFAULT '',
    suggested_city_id  INTEGER REFERENCES cities (id) ON DELETE SET NULL,
    -- When the question arrived (eligibility is evaluated on this date).
    received_on        TEXT    NOT NULL DEFAULT '',
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX requests_status ON requests (status, created_at);
CREATE INDEX requests_official ON requests (official_email);

-- Every mail in and out. Inbound rows keep the raw bytes; outbound rows point at their outbox row.
CREATE TABLE messages (
    id          INTEGER PRIMARY KEY,
    request_id  INTEGER REFERENCES requests (id) ON DELETE SET NULL,
    direction   TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    kind        TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    in_reply_to TEXT    NOT NULL DEFAULT '',
    refs        TEXT    NOT NULL DEFAULT '',
    from_addr   TEXT    NOT NULL DEFAULT '',
    from_name   TEXT    NOT NULL DEFAULT '',
    to_addrs    TEXT    NOT NULL DEFAULT '',
    cc_addrs    TEXT    NOT NULL DEFAULT '',
    subject     TEXT    NOT NULL DEFAULT '',
    body_text   TEXT    NOT NULL DEFAULT '',
    -- What a reply adds: body_text without quoted history and signature.
    new_text    TEXT    NOT NULL DEFAULT '',
    raw         BLOB,
    size        INTEGER NOT NULL DEFAULT 0,
    mailbox     TEXT,
    uidvalidity INTEGER,
    uid         INTEGER,
    outbox_id   INTEGER,
    note        TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX messages_imap_position ON messages (mailbox, uidvalidity, uid);
CREATE INDEX messages_message_id ON messages (message_id);
CREATE INDEX messages_request ON messages (request_id, created_at);

-- Known officials: an address that identifies its city even without a city mail domain.
CREATE TABLE contacts (
    email      TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL DEFAULT '',
    title      TEXT    NOT NULL DEFAULT '',
    city_id    INTEGER NOT NULL REFERENCES cities (id) ON DELETE CASCADE,
    -- How the contact became known: added by an administrator, or confirmed by a reply.
    source     TEXT    NOT NULL CHECK (source IN ('admin', 'confirmed')),
    created_at INTEGER NOT NULL
);
CREATE INDEX contacts_city ON contacts (city_id);

-- One-time confirmation tokens for administrators' changes by mail.
CREATE TABLE admin_tokens (
    token      TEXT    NOT NULL PRIMARY KEY,
    admin      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    detail     TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);

-- Who belongs to a request's city-side thread: the official and whoever they copied.
CREATE TABLE request_participants (
    request_id INTEGER NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    email      TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('official', 'cc')),
    PRIMARY KEY (request_id, email)
);

-- Attachment bytes, content-addressed: the same file twice is stored once.
CREATE TABLE attachment_blobs (
    sha256 TEXT    NOT NULL PRIMARY KEY,
    size   INTEGER NOT NULL,
    data   BLOB    NOT NULL
);

CREATE TABLE attachments (
    id           INTEGER PRIMARY KEY,
    message_id   INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    filename     TEXT    NOT NULL DEFAULT '',
    content_type TEXT    NOT NULL DEFAULT '',
    size         INTEGER NOT NULL DEFAULT 0,
    sha256       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX attachments_message ON attachments (message_id);

-- Mail waiting to be sent. The whole RFC 5322 message is rendered when the row is written, so
-- a resend after a crash is byte-identical and keeps its Message-ID.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    request_id      INTEGER REFERENCES requests (id) ON DELETE SET NULL,
    kind            TEXT    NOT NULL,
    message_id      TEXT    NOT NULL UNIQUE,
    envelope_from   TEXT    NOT NULL,
    recipients      TEXT    NOT NULL,
    raw             BLOB    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    -- A worker that claims a row holds it until this time; a crashed worker's claim expires.
    lease_until     INTEGER NOT NULL DEFAULT 0,
    -- The recipient of automatic city-facing mail, for the per-address rate limit ('' = none).
    rate_key        TEXT    NOT NULL DEFAULT '',
    -- Set when a bounce reported this message: the status code and hard/soft.
    bounce_status   TEXT    NOT NULL DEFAULT '',
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);
CREATE INDEX outbox_request ON outbox (request_id, status, id);
CREATE INDEX outbox_rate ON outbox (rate_key, created_at);

-- Addresses that bounced hard: no automatic mail to them until `until`.
CREATE TABLE suppressions (
    email      TEXT    NOT NULL PRIMARY KEY,
    until      INTEGER NOT NULL,
    reason     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- Where the poller stands in each mailbox.
CREATE TABLE mailbox_state (
    mailbox       TEXT    NOT NULL PRIMARY KEY,
    uidvalidity   INTEGER NOT NULL,
    last_uid      INTEGER NOT NULL DEFAULT 0,
    last_poll_at  INTEGER
);

-- Mail that could not be handled; the message itself sits in the quarantine folder.
CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY,
    message_id  INTEGER REFERENCES messages (id) ON DELETE SET NULL,
    mailbox     TEXT    NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    from_addr   TEXT    NOT NULL DEFAULT '',
    subject     TEXT    NOT NULL DEFAULT '',
    size        INTEGER NOT NULL DEFAULT 0,
    -- The message's own Message-ID header ('' when it has none), to find it in the folder.
    header_id   TEXT    NOT NULL DEFAULT '',
    reason      TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'held' CHECK (status IN ('held', 'released', 'retried')),
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX quarantine_position ON quarantine (mailbox, uidvalidity, uid);

-- A request's timeline: who did what, when, and from where (mail, cli, system).
CREATE TABLE request_events (
    id         INTEGER PRIMARY KEY,
    request_id INTEGER NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    source     TEXT    NOT NULL CHECK (source IN ('mail', 'cli', 'system')),
    event      TEXT    NOT NULL,
    detail     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX request_events_request ON request_events (request_id, at);

-- Who changed the registry or staff list, when, and with what file.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    detail     TEXT    NOT NULL DEFAULT ''
);

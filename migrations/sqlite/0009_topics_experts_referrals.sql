-- Topics, the expert roster and referrals (issue 15), and the day a request was resolved.
--
-- request_topics: the topics of a request, by their name in config/topics.toml. `suggested` rows
-- come from the subject and text when the request is made; `staff` rows are confirmed by a person
-- (#topic, requests topic), and a confirmation replaces all suggestions of that request.
CREATE TABLE request_topics (
    request_id INTEGER NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    topic      TEXT    NOT NULL,
    source     TEXT    NOT NULL CHECK (source IN ('suggested', 'staff')),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (request_id, topic)
);
CREATE INDEX request_topics_topic ON request_topics (topic);

-- National experts a request can be referred to. Ids are never handed out again.
CREATE TABLE experts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    email      TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    org        TEXT    NOT NULL DEFAULT '',
    topics     TEXT    NOT NULL DEFAULT '', -- topic names, comma-separated
    notes      TEXT    NOT NULL DEFAULT '',
    active     INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- One introduction of a city official to an expert. The expert's name and address are kept as
-- they were, so a referral still reads right after the expert leaves the roster.
CREATE TABLE referrals (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id   INTEGER NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    expert_id    INTEGER REFERENCES experts (id) ON DELETE SET NULL,
    expert_email TEXT    NOT NULL,
    expert_name  TEXT    NOT NULL DEFAULT '',
    referred_by  TEXT    NOT NULL,
    note         TEXT    NOT NULL DEFAULT '',
    message_id   TEXT    NOT NULL DEFAULT '', -- the introduction mail
    referred_on  TEXT    NOT NULL,            -- local date (YYYY-MM-DD)
    outcome      TEXT    NOT NULL DEFAULT '', -- the note staff closed it with
    bounced      TEXT    NOT NULL DEFAULT '', -- why the introduction to the expert bounced, if it did
    created_at   INTEGER NOT NULL
);
CREATE INDEX referrals_request ON referrals (request_id);
CREATE INDEX referrals_day ON referrals (referred_on);

-- The local date the request was resolved (responded, referred, or closed unanswered) and how;
-- resolution_days (0007) counts the business days to it. NULL / '' until then.
ALTER TABLE requests ADD COLUMN resolved_on TEXT;
ALTER TABLE requests ADD COLUMN resolved_by TEXT NOT NULL DEFAULT '';

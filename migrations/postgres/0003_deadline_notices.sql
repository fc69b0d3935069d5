-- What the deadline scheduler sent, so each reminder and each day's digest goes out exactly once,
-- across restarts and across several daemons: a notice's key is claimed in the same transaction
-- that queues its mail, and a second claim of the same key finds it taken.
CREATE TABLE deadline_notices (
    key        TEXT    NOT NULL PRIMARY KEY, -- before:REQUEST:DUE, due:REQUEST:DUE, overdue:REQUEST:DUE, digest:DAY
    kind       TEXT    NOT NULL,             -- remind_before | due_today | overdue | digest
    request_id BIGINT  REFERENCES requests (id) ON DELETE CASCADE, -- NULL for a digest
    day        TEXT    NOT NULL,             -- the local date it was sent on (YYYY-MM-DD)
    sent_to    TEXT    NOT NULL DEFAULT '',  -- '' when a digest had nothing to report
    message_id TEXT    NOT NULL DEFAULT '',
    detail     TEXT    NOT NULL DEFAULT '',  -- what it said, in one line
    created_at BIGINT  NOT NULL
);
CREATE INDEX deadline_notices_day ON deadline_notices (day);

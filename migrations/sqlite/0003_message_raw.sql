-- Raw mail over 1 MiB is kept here instead of in messages.raw, written in place in 1 MiB pieces
-- (SQLite incremental blob I/O). SQLite leaves a zeroblob unexpanded only when it is the last
-- column of a row; in the middle of a messages row, a 20 MB zeroblob was expanded twice in
-- memory (40 MB) before the first piece was written. Smaller mail stays in messages.raw.
CREATE TABLE message_raw (
    message_id INTEGER PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    raw        BLOB    NOT NULL
);

-- The mail-loop limit asks, for every new question, whether the same mail (sender, subject and
-- text) was already acknowledged: this index makes that one short lookup, whatever the size of
-- the database and however many questions one official sends.
CREATE INDEX messages_sender_subject ON messages (from_addr, subject);

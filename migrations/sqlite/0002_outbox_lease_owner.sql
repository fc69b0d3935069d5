-- Who holds an outbox row's claim (a daemon process's random id), so a worker only ever renews
-- or sends rows it holds itself: a row whose claim ran out and was taken by another worker is
-- never sent twice.
ALTER TABLE outbox ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';

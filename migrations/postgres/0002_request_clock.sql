-- The clock per request. While a request waits on the city its clock stops: clock_paused_on is
-- the local date waiting began (NULL while the clock runs), and when the city answers, due_date
-- moves by the business days it waited (added up in waited_days). first_response_days and
-- resolution_days are business days from the arrival date to the first reply or response a
-- person sent, and to the response (or closing, when none was sent); NULL until then.
ALTER TABLE requests ADD COLUMN clock_paused_on     TEXT;
ALTER TABLE requests ADD COLUMN waited_days         BIGINT  NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN first_response_days BIGINT;
ALTER TABLE requests ADD COLUMN resolution_days     BIGINT;

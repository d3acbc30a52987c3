-- Retention ([retention] days): webhook deliveries, the steps of finished publications,
-- finished jobs and deleted-tag rows older than it are purged. The ledger (tag_events,
-- tags), releases, builds and publications are kept forever.

-- The newest received_at of any purged delivery, in unix seconds. A push whose
-- repository.pushed_at is not later than this (with a day for clock skew) could be a
-- replay of a delivery hoist no longer remembers, so it changes nothing.
CREATE TABLE purge_horizon (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    deliveries_before INTEGER NOT NULL
) STRICT;

CREATE INDEX deliveries_by_received_at ON deliveries (received_at);
CREATE INDEX publications_finished_by_time ON publications (state, updated_at);

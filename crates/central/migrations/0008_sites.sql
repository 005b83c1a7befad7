-- Sites: piles that share a grid connection, the allocator's terms for it, and the record of
-- every decision it made (issue 18).

CREATE TABLE sites (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    -- A per phase.
    capacity_a DOUBLE PRECISION NOT NULL,
    phases BIGINT NOT NULL,
    min_a DOUBLE PRECISION NOT NULL,
    failsafe_a DOUBLE PRECISION NOT NULL,
    -- How long a session's draw stays below its limit before the rest goes to others, and how
    -- long after a change a limit is not raised again.
    settle_ms BIGINT NOT NULL,
    -- The lower limits by time of day or week (JSON), none: the capacity always.
    schedule TEXT,
    -- The priority groups of idTags (JSON: idTag to group), none: one group.
    priorities TEXT,
    created_at BIGINT NOT NULL
);

-- A pile belongs to at most one site: all its connectors, or the one named.
CREATE TABLE site_piles (
    pile TEXT PRIMARY KEY,
    site BIGINT NOT NULL,
    connector BIGINT
);
CREATE INDEX site_piles_by_site ON site_piles (site);

-- What the allocator granted each session, and why, as it decided.
CREATE TABLE site_allocations (
    site BIGINT NOT NULL,
    time BIGINT NOT NULL,
    pile TEXT NOT NULL,
    connector BIGINT NOT NULL,
    transaction_id BIGINT NOT NULL,
    granted_a DOUBLE PRECISION NOT NULL,
    -- 1: the session waits for capacity (granted 0 A).
    queued BIGINT NOT NULL,
    why TEXT NOT NULL
);
CREATE INDEX site_allocations_by_time ON site_allocations (site, time);

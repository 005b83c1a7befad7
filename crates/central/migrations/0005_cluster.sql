-- The central system on several nodes: which node holds a pile's connection and since when (the
-- presence record, beside `connection`), the live nodes, the leases of work that runs once, and
-- the settings every node shares.

ALTER TABLE piles ADD COLUMN node TEXT;
ALTER TABLE piles ADD COLUMN connected_at BIGINT;
CREATE INDEX piles_by_node ON piles (node);

CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    heard_at BIGINT NOT NULL,
    -- Where the node listens (host:port), as it reports it.
    address TEXT NOT NULL
);

CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

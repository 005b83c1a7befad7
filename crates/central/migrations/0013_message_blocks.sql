-- The raw message log in blocks: each group commit's frames compressed together (the central's
-- store/log_block.rs), appended and never updated. The rows of `message_log` an older version
-- wrote stay where they are and are read after the blocks, until they are pruned.
-- A pile's frames are found through `message_block_piles` (migrations_sqlite and
-- migrations_postgres: SQLite keeps it in its primary key's tree alone).

CREATE TABLE message_blocks (
    id BIGINT PRIMARY KEY,
    first_time BIGINT NOT NULL,
    last_time BIGINT NOT NULL,
    frames BIGINT NOT NULL,
    data BYTEA NOT NULL
);
CREATE INDEX message_blocks_by_time ON message_blocks (last_time);

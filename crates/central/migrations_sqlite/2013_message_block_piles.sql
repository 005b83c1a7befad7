-- SQLite only, after 0013_message_blocks.sql: a row per pile and block the pile has frames
-- in, with a bit per action among them (store/log_block.rs), in its primary key's tree alone.

CREATE TABLE message_block_piles (
    pile TEXT NOT NULL,
    block BIGINT NOT NULL,
    actions BIGINT NOT NULL,
    PRIMARY KEY (pile, block)
) WITHOUT ROWID;

-- PostgreSQL only, after 0013_message_blocks.sql: a row per pile and block the pile has
-- frames in, with a bit per action among them (store/log_block.rs); the blocks' ids from a
-- sequence, in the order many nodes insert them.

CREATE TABLE message_block_piles (
    pile TEXT NOT NULL,
    block BIGINT NOT NULL,
    actions BIGINT NOT NULL,
    PRIMARY KEY (pile, block)
);
CREATE SEQUENCE message_blocks_id_seq OWNED BY message_blocks.id;

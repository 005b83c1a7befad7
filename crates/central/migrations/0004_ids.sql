-- Many nodes on one database: a StartTransaction is one transaction by a constraint, and the
-- firmware images' bytes live in the database. (PostgreSQL's ids and the message log's order
-- come from sequences: migrations_postgres/1004_sequences.sql.)

-- One StartTransaction's content is one transaction, whichever node inserts it: the columns
-- the central matched before each insert, so a database carried over holds no two rows with
-- the same content (a reconciled transaction has no start: NULLs are never equal here).
CREATE UNIQUE INDEX transactions_by_content
    ON transactions (pile, connector, start_time, meter_start, id_tag);
-- A prefix of the index above.
DROP INDEX transactions_by_start;

-- An image's bytes, in rows of 1 MiB numbered from 0. BYTEA is PostgreSQL's type for bytes;
-- SQLite keeps a blob as it is given whatever the declared type.
CREATE TABLE firmware_chunks (
    image BIGINT NOT NULL,
    n BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (image, n)
);

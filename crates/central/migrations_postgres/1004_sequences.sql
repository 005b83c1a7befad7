-- PostgreSQL only, applied after the shared migrations: ids and the message log's order from
-- sequences, so that many nodes writing at once never hand out one id twice (SQLite has one
-- writer and numbers with MAX + 1). Each sequence starts past the ids a database carried over
-- holds.

CREATE SEQUENCE transactions_id_seq OWNED BY transactions.id;
SELECT setval('transactions_id_seq', COALESCE((SELECT MAX(id) FROM transactions), 0) + 1, false);
CREATE SEQUENCE commands_id_seq OWNED BY commands.id;
SELECT setval('commands_id_seq', COALESCE((SELECT MAX(id) FROM commands), 0) + 1, false);
CREATE SEQUENCE firmware_images_id_seq OWNED BY firmware_images.id;
SELECT setval('firmware_images_id_seq', COALESCE((SELECT MAX(id) FROM firmware_images), 0) + 1, false);
CREATE SEQUENCE campaigns_id_seq OWNED BY campaigns.id;
SELECT setval('campaigns_id_seq', COALESCE((SELECT MAX(id) FROM campaigns), 0) + 1, false);

-- The message log's total order: a pile's rows are numbered as they are inserted, whichever
-- node inserts them, and read back in that order.
CREATE SEQUENCE message_log_seq OWNED BY message_log.seq;
SELECT setval('message_log_seq', COALESCE((SELECT MAX(seq) FROM message_log), 0) + 1, false);
CREATE INDEX message_log_by_seq ON message_log (pile, seq);

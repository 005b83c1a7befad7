-- PostgreSQL only, after 0008_sites.sql: the sites' ids from a sequence, like the others
-- (1004_sequences.sql).

CREATE SEQUENCE sites_id_seq OWNED BY sites.id;
SELECT setval('sites_id_seq', COALESCE((SELECT MAX(id) FROM sites), 0) + 1, false);

-- PostgreSQL only: a meter value's sampled values are kept packed (bytes; see the central's
-- store/samples.rs), a tenth of their JSON. The JSON of the rows already there stays as it
-- is, as bytes, and is read as JSON. (SQLite keeps bytes in the TEXT column as they are given.)

ALTER TABLE meter_values ALTER COLUMN sampled TYPE BYTEA USING convert_to(sampled, 'UTF8');

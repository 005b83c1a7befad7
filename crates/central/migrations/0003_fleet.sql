-- The fleet's pages: which piles are online, a running transaction's last energy reading, and
-- the indexes the paged and filtered pile list uses.

-- The number of the pile's live connection to this central system; NULL while it is offline
-- (cleared at every start of the central system).
ALTER TABLE piles ADD COLUMN connection BIGINT;
-- The last Energy.Active.Import.Register reading (Wh) of a running transaction and its time.
ALTER TABLE transactions ADD COLUMN meter_last BIGINT;
ALTER TABLE transactions ADD COLUMN meter_last_time BIGINT;

CREATE INDEX piles_by_model ON piles (model, id);
CREATE INDEX piles_by_firmware ON piles (firmware_version, id);
CREATE INDEX piles_by_registration ON piles (registration, id);
CREATE INDEX connectors_by_status ON connectors (status, pile);
CREATE INDEX transactions_by_stop ON transactions (stop_time);

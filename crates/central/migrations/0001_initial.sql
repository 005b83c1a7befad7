-- The central system's schema. Portable SQL: the same statements run on SQLite and PostgreSQL.
-- Times are milliseconds since the Unix epoch (UTC); flags are 0 or 1.

CREATE TABLE piles (
    id TEXT PRIMARY KEY,
    password_hash TEXT,
    registration TEXT NOT NULL,
    vendor TEXT,
    model TEXT,
    serial_number TEXT,
    charge_box_serial_number TEXT,
    firmware_version TEXT,
    iccid TEXT,
    imsi TEXT,
    meter_type TEXT,
    meter_serial_number TEXT,
    firmware_status TEXT,
    diagnostics_status TEXT,
    created_at BIGINT NOT NULL,
    last_boot BIGINT,
    last_seen BIGINT
);

CREATE TABLE connectors (
    pile TEXT NOT NULL,
    connector BIGINT NOT NULL,
    status TEXT NOT NULL,
    error_code TEXT NOT NULL,
    vendor_error_code TEXT,
    info TEXT,
    vendor_id TEXT,
    time BIGINT NOT NULL,
    PRIMARY KEY (pile, connector)
);

CREATE TABLE status_history (
    pile TEXT NOT NULL,
    connector BIGINT NOT NULL,
    time BIGINT NOT NULL,
    status TEXT NOT NULL,
    error_code TEXT NOT NULL,
    vendor_error_code TEXT,
    info TEXT,
    PRIMARY KEY (pile, connector, time, status, error_code)
);

CREATE TABLE id_tags (
    id_tag TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    expiry_date BIGINT,
    parent_id_tag TEXT
);

CREATE TABLE transactions (
    id BIGINT PRIMARY KEY,
    pile TEXT NOT NULL,
    connector BIGINT,
    id_tag TEXT,
    start_time BIGINT,
    meter_start BIGINT,
    reservation_id BIGINT,
    stop_time BIGINT,
    meter_stop BIGINT,
    stop_id_tag TEXT,
    reason TEXT,
    reconciled BIGINT NOT NULL
);
CREATE INDEX transactions_by_start ON transactions (pile, connector, start_time);

CREATE TABLE meter_values (
    pile TEXT NOT NULL,
    connector BIGINT NOT NULL,
    transaction_id BIGINT,
    time BIGINT NOT NULL,
    digest BIGINT NOT NULL,
    sampled TEXT NOT NULL,
    PRIMARY KEY (pile, connector, time, digest)
);
CREATE INDEX meter_values_by_transaction ON meter_values (transaction_id, time);

CREATE TABLE configuration (
    pile TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT,
    readonly BIGINT NOT NULL,
    read_at BIGINT NOT NULL,
    PRIMARY KEY (pile, key)
);

CREATE TABLE configuration_history (
    pile TEXT NOT NULL,
    key TEXT NOT NULL,
    time BIGINT NOT NULL,
    old_value TEXT,
    new_value TEXT
);
CREATE INDEX configuration_history_by_pile ON configuration_history (pile, key, time);

CREATE TABLE pile_events (
    pile TEXT NOT NULL,
    time BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX pile_events_by_pile ON pile_events (pile, time);

CREATE TABLE commands (
    id BIGINT PRIMARY KEY,
    pile TEXT NOT NULL,
    action TEXT NOT NULL,
    payload TEXT NOT NULL,
    sent_at BIGINT NOT NULL,
    answered_at BIGINT,
    outcome TEXT,
    result TEXT
);
CREATE INDEX commands_by_pile ON commands (pile, id);

CREATE TABLE refused_handshakes (
    time BIGINT NOT NULL,
    remote TEXT NOT NULL,
    identity TEXT,
    reason TEXT NOT NULL,
    http_status BIGINT NOT NULL
);
CREATE INDEX refused_handshakes_by_time ON refused_handshakes (time);

CREATE TABLE message_log (
    pile TEXT NOT NULL,
    time BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    direction TEXT NOT NULL,
    action TEXT,
    message_id TEXT,
    frame TEXT NOT NULL
);
CREATE INDEX message_log_by_pile ON message_log (pile, time, seq);
CREATE INDEX message_log_by_time ON message_log (time);

CREATE TABLE deviations (
    pile TEXT NOT NULL,
    time BIGINT NOT NULL,
    action TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX deviations_by_pile ON deviations (pile, time);

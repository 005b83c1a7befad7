-- The security extension (issue 17): the security events piles send and the central's own
-- (a CSR it refused), and the certificates its CA signed. The CA itself is the setting
-- `security_ca` (its certificate and private key as PEM), which every node shares.

-- A security event: SecurityEventNotification of a pile (`source` 'pile', `time` its
-- timestamp), or the central's own (`source` 'central'). The same event sent again (after a
-- reconnect) is one row: its key is its content, tech_info by its digest.
CREATE TABLE security_events (
    pile TEXT NOT NULL,
    time BIGINT NOT NULL,
    kind TEXT NOT NULL,
    tech_info TEXT,
    digest BIGINT NOT NULL,
    source TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (pile, time, kind, digest)
);
CREATE INDEX security_events_by_time ON security_events (time);

-- A certificate the CA signed for a pile, and the pile's answer to its CertificateSigned
-- (null while it is sent).
CREATE TABLE pile_certificates (
    serial TEXT PRIMARY KEY,
    pile TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    signed_at BIGINT NOT NULL,
    certificate TEXT NOT NULL,
    delivery TEXT
);
CREATE INDEX pile_certificates_by_pile ON pile_certificates (pile, signed_at);

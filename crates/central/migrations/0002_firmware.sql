-- Firmware images served to piles, and the campaigns that install them (FAQ 3.10, 3.17).

CREATE TABLE firmware_images (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    target TEXT NOT NULL,
    model TEXT,
    version TEXT,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE campaigns (
    id BIGINT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    -- The images, batch size, retrieve delay, deadline and the piles refused up front (JSON).
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    finished_at BIGINT
);

CREATE TABLE campaign_piles (
    campaign BIGINT NOT NULL,
    position BIGINT NOT NULL,
    pile TEXT NOT NULL,
    phase TEXT NOT NULL,
    outcome TEXT,
    -- The pile's upgrade state machine (JSON).
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (campaign, pile)
);

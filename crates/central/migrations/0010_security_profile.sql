-- Each pile's Security Profile (issue 17): the one an operator set (0: nothing, 1: Basic,
-- 2: TLS and Basic, 3: TLS and a client certificate naming the pile), and the highest one it
-- has connected with, so that it is never taken down silently (a handshake below either is
-- refused until an operator lowers them through the API). After a password rotation the
-- pile accepted, its former password's hash stays valid until it connects with the new one.

ALTER TABLE piles ADD COLUMN security_profile BIGINT NOT NULL DEFAULT 0;
ALTER TABLE piles ADD COLUMN connected_profile BIGINT NOT NULL DEFAULT 0;
ALTER TABLE piles ADD COLUMN previous_password_hash TEXT;

-- A pile with a password had to connect with it: profile 1.
UPDATE piles SET security_profile = 1 WHERE password_hash IS NOT NULL;

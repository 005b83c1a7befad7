-- A pile is in at most one campaign at a time: its row in a campaign stays in this index until
-- its upgrade is done, so that two campaigns created at once (on two nodes) cannot both take it.

CREATE UNIQUE INDEX campaign_piles_active ON campaign_piles (pile) WHERE phase <> 'done';

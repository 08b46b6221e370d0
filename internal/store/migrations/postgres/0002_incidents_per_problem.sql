-- nsguard schema, version 2: incidents per problem, acknowledgements, and
-- outbox claims. PostgreSQL spelling of migrations/sqlite/0002 (the same
-- statements; TEXT columns COLLATE "C", as in 0001).
--
-- A domain may now hold several open incidents (one per problem: a hijack
-- and, later, an unrelated lame server are two pages), so the one-open-per-
-- domain unique index becomes a plain partial index.
DROP INDEX incidents_one_open;
CREATE INDEX incidents_open ON incidents (domain, id) WHERE status = 'open';

-- title: the incident's one-line summary (lists, pages). An acknowledged
-- incident stops repeating; acked_at is NULL until someone says "I have it".
ALTER TABLE incidents ADD COLUMN title TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN acked_at BIGINT;
ALTER TABLE incidents ADD COLUMN acked_by TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN ack_reason TEXT COLLATE "C" NOT NULL DEFAULT '';

-- absent: consecutive observations of its class without the finding, kept
-- only while the finding belongs to an open incident: an incident resolves
-- after as many clean observations as it took to confirm it.
ALTER TABLE finding_states ADD COLUMN absent INTEGER NOT NULL DEFAULT 0;

-- Every sender claims a message before sending it: claim_owner names the
-- process, claim_until is when the claim lapses (a killed sender's claim is
-- taken over after it), claim_epoch is the leader's fencing token (0 on a
-- single node). incident_id lets `nsguard incident show` list what was sent.
ALTER TABLE outbox ADD COLUMN incident_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN claim_owner TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN claim_until BIGINT;
ALTER TABLE outbox ADD COLUMN claim_epoch BIGINT NOT NULL DEFAULT 0;
CREATE INDEX outbox_incident ON outbox (incident_id, id) WHERE incident_id <> 0;

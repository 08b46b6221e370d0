-- nsguard schema, version 4: past one machine (issue 14). PostgreSQL
-- spelling of migrations/sqlite/0004 (the same statements; TEXT columns
-- COLLATE "C", as in 0001).
--
-- Every replica (and every `nsguard probe`) is a vantage point: it writes
-- its own latest observation of each domain, tagged with its name
-- (cluster.vantage); a single node writes '' there. The key grows a
-- column, which SQLite cannot add to a primary key in place: the table is
-- rebuilt (the same statements here, so both spell it alike).
-- report is what the vantage saw, for the leader to judge without decoding
-- the observation: {"error": "...", "findings": [...]} (JSON; '' for rows
-- written before this version).
CREATE TABLE observations_v4 (
    domain      TEXT COLLATE "C" NOT NULL,
    class       TEXT COLLATE "C" NOT NULL,
    vantage     TEXT COLLATE "C" NOT NULL,
    observed_at BIGINT           NOT NULL,
    changed_at  BIGINT           NOT NULL,
    hash        TEXT COLLATE "C" NOT NULL,
    data        TEXT COLLATE "C" NOT NULL,
    report      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (domain, class, vantage)
);
INSERT INTO observations_v4 (domain, class, vantage, observed_at, changed_at, hash, data, report)
    SELECT domain, class, '', observed_at, changed_at, hash, data, '' FROM observations;
DROP TABLE observations;
ALTER TABLE observations_v4 RENAME TO observations;

ALTER TABLE observation_history ADD COLUMN vantage TEXT COLLATE "C" NOT NULL DEFAULT '';

-- The leader's lease: one row (id 1) naming the replica that leads, its
-- epoch — bumped on every takeover, the fencing token every incident and
-- outbox write of the leader is checked against — and when the lease
-- lapses unless renewed (times from the database's clock, so the
-- replicas' clocks do not matter).
CREATE TABLE leader_lease (
    id          INTEGER          NOT NULL PRIMARY KEY,
    holder      TEXT COLLATE "C" NOT NULL,
    epoch       BIGINT           NOT NULL,
    acquired_at BIGINT           NOT NULL,
    renewed_at  BIGINT           NOT NULL,
    expires_at  BIGINT           NOT NULL
);

-- The leader asks every vantage to check a domain again at due_at (a
-- finding not yet confirmed: after alerts.recheck; vantages that disagree
-- and have not all looked since the change: at once): each vantage polls
-- this small table and checks the domain when it is due, and the leader
-- judges once their fresh reports are in.
CREATE TABLE recheck_requests (
    domain       TEXT COLLATE "C" NOT NULL,
    class        TEXT COLLATE "C" NOT NULL,
    due_at BIGINT           NOT NULL,
    PRIMARY KEY (domain, class)
);
CREATE INDEX recheck_requests_due ON recheck_requests (class, due_at);

-- nsguard schema, version 1, PostgreSQL spelling.
--
-- The same schema as migrations/sqlite/0001_init.sql, statement for
-- statement (TestPostgresMigrationsMirrorSQLite compares them), with two
-- differences:
--
-- * "INTEGER PRIMARY KEY AUTOINCREMENT" is "BIGINT GENERATED ALWAYS AS
--   IDENTITY PRIMARY KEY": ids are never reused and never set by hand
--   (nsguard store migrate copies them with COPY, which keeps them);
-- * every TEXT column is COLLATE "C": bytewise order, as SQLite's BINARY
--   collation, so lists sort the same on both backends whatever locale
--   the database was created with ("a-b.com" before "ab.com").

-- Latest observation per domain and check class ("dns", "registration",
-- "audit"); data is the monitor's canonical JSON, opaque here.
CREATE TABLE observations (
    domain      TEXT COLLATE "C" NOT NULL,
    class       TEXT COLLATE "C" NOT NULL,
    observed_at BIGINT           NOT NULL,
    changed_at  BIGINT           NOT NULL,
    hash        TEXT COLLATE "C" NOT NULL,
    data        TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (domain, class)
);

-- History keeps an observation only when it differs from the previous one,
-- so a steady domain costs nothing per cycle.
CREATE TABLE observation_history (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain      TEXT COLLATE "C" NOT NULL,
    class       TEXT COLLATE "C" NOT NULL,
    observed_at BIGINT           NOT NULL,
    hash        TEXT COLLATE "C" NOT NULL,
    data        TEXT COLLATE "C" NOT NULL
);
CREATE INDEX observation_history_domain ON observation_history (domain, class, id);

CREATE TABLE baselines (
    domain      TEXT COLLATE "C" NOT NULL,
    version     INTEGER          NOT NULL,
    data        TEXT COLLATE "C" NOT NULL,
    approved_by TEXT COLLATE "C" NOT NULL,
    approved_at BIGINT           NOT NULL,
    reason      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (domain, version)
);

CREATE TABLE changes (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain           TEXT COLLATE "C" NOT NULL,
    class            TEXT COLLATE "C" NOT NULL,
    detected_at      BIGINT           NOT NULL,
    baseline_version INTEGER          NOT NULL,
    data             TEXT COLLATE "C" NOT NULL
);
CREATE INDEX changes_domain ON changes (domain, id);

-- One row per finding present in the latest observation of its class: the
-- consecutive-observation count that confirmations are measured against.
CREATE TABLE finding_states (
    domain     TEXT COLLATE "C" NOT NULL,
    class      TEXT COLLATE "C" NOT NULL,
    fkey       TEXT COLLATE "C" NOT NULL,
    severity   TEXT COLLATE "C" NOT NULL,
    streak     INTEGER          NOT NULL,
    first_seen BIGINT           NOT NULL,
    last_seen  BIGINT           NOT NULL,
    data       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (domain, class, fkey)
);

CREATE TABLE incidents (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain           TEXT COLLATE "C" NOT NULL,
    status           TEXT COLLATE "C" NOT NULL,
    severity         TEXT COLLATE "C" NOT NULL,
    thread_key       TEXT COLLATE "C" NOT NULL,
    channel          TEXT COLLATE "C" NOT NULL,
    opened_at        BIGINT           NOT NULL,
    updated_at       BIGINT           NOT NULL,
    resolved_at      BIGINT,
    paged_at         BIGINT,
    last_notified_at BIGINT,
    notifications    INTEGER          NOT NULL,
    data             TEXT COLLATE "C" NOT NULL
);
CREATE INDEX incidents_domain ON incidents (domain, id);
-- At most one open incident per domain: the engine relies on it, the
-- database enforces it.
CREATE UNIQUE INDEX incidents_one_open ON incidents (domain) WHERE status = 'open';

CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at      BIGINT           NOT NULL,
    kind            TEXT COLLATE "C" NOT NULL,
    channel         TEXT COLLATE "C" NOT NULL,
    thread_key      TEXT COLLATE "C" NOT NULL,
    payload         TEXT COLLATE "C" NOT NULL,
    attempts        INTEGER          NOT NULL,
    next_attempt_at BIGINT           NOT NULL,
    delivered_at    BIGINT,
    dead_at         BIGINT,
    last_error      TEXT COLLATE "C" NOT NULL
);
-- Pending rows only: the dispatcher's "head of each thread" query and the
-- depth gauge read this small index, never the delivered history.
CREATE INDEX outbox_pending ON outbox (thread_key, id) WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX outbox_dead ON outbox (id) WHERE dead_at IS NOT NULL;

CREATE TABLE slack_threads (
    thread_key TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    channel    TEXT COLLATE "C" NOT NULL,
    ts         TEXT COLLATE "C" NOT NULL,
    created_at BIGINT           NOT NULL
);

CREATE TABLE silences (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain     TEXT COLLATE "C" NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL,
    reason     TEXT COLLATE "C" NOT NULL,
    created_at BIGINT           NOT NULL,
    starts_at  BIGINT           NOT NULL,
    ends_at    BIGINT           NOT NULL,
    expired_at BIGINT
);
CREATE INDEX silences_ends ON silences (ends_at);

CREATE TABLE failover_runs (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    playbook    TEXT COLLATE "C" NOT NULL,
    started_by  TEXT COLLATE "C" NOT NULL,
    started_at  BIGINT           NOT NULL,
    finished_at BIGINT,
    dry_run     INTEGER          NOT NULL,
    plan        TEXT COLLATE "C" NOT NULL,
    checksum    TEXT COLLATE "C" NOT NULL,
    status      TEXT COLLATE "C" NOT NULL,
    error       TEXT COLLATE "C" NOT NULL
);
CREATE INDEX failover_runs_playbook ON failover_runs (playbook, id);

CREATE TABLE failover_steps (
    run_id      BIGINT           NOT NULL REFERENCES failover_runs (id),
    step_index  INTEGER          NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL,
    request     TEXT COLLATE "C" NOT NULL,
    response    TEXT COLLATE "C" NOT NULL,
    status      TEXT COLLATE "C" NOT NULL,
    error       TEXT COLLATE "C" NOT NULL,
    started_at  BIGINT,
    finished_at BIGINT,
    PRIMARY KEY (run_id, step_index)
);

CREATE TABLE failover_locks (
    playbook     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    holder       TEXT COLLATE "C" NOT NULL,
    pid          INTEGER          NOT NULL,
    host         TEXT COLLATE "C" NOT NULL,
    run_id       BIGINT           NOT NULL,
    acquired_at  BIGINT           NOT NULL,
    heartbeat_at BIGINT           NOT NULL
);

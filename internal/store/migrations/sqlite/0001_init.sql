-- nsguard schema, version 1.
--
-- Portable on purpose: times are BIGINT Unix milliseconds (NULL = never),
-- JSON is TEXT, booleans are not used. The only SQLite-specific spelling is
-- "INTEGER PRIMARY KEY AUTOINCREMENT"; the PostgreSQL migration writes
-- "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY" there, TEXT COLLATE "C"
-- for TEXT, and is otherwise the same text. Queries use $1-style
-- placeholders, which both accept.

-- Latest observation per domain and check class ("dns", "registration",
-- "audit"); data is the monitor's canonical JSON, opaque here.
CREATE TABLE observations (
    domain      TEXT   NOT NULL,
    class       TEXT   NOT NULL,
    observed_at BIGINT NOT NULL,
    changed_at  BIGINT NOT NULL,
    hash        TEXT   NOT NULL,
    data        TEXT   NOT NULL,
    PRIMARY KEY (domain, class)
);

-- History keeps an observation only when it differs from the previous one,
-- so a steady domain costs nothing per cycle.
CREATE TABLE observation_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    domain      TEXT   NOT NULL,
    class       TEXT   NOT NULL,
    observed_at BIGINT NOT NULL,
    hash        TEXT   NOT NULL,
    data        TEXT   NOT NULL
);
CREATE INDEX observation_history_domain ON observation_history (domain, class, id);

CREATE TABLE baselines (
    domain      TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    data        TEXT    NOT NULL,
    approved_by TEXT    NOT NULL,
    approved_at BIGINT  NOT NULL,
    reason      TEXT    NOT NULL,
    PRIMARY KEY (domain, version)
);

CREATE TABLE changes (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    domain           TEXT    NOT NULL,
    class            TEXT    NOT NULL,
    detected_at      BIGINT  NOT NULL,
    baseline_version INTEGER NOT NULL,
    data             TEXT    NOT NULL
);
CREATE INDEX changes_domain ON changes (domain, id);

-- One row per finding present in the latest observation of its class: the
-- consecutive-observation count that confirmations are measured against.
CREATE TABLE finding_states (
    domain     TEXT    NOT NULL,
    class      TEXT    NOT NULL,
    fkey       TEXT    NOT NULL,
    severity   TEXT    NOT NULL,
    streak     INTEGER NOT NULL,
    first_seen BIGINT  NOT NULL,
    last_seen  BIGINT  NOT NULL,
    data       TEXT    NOT NULL,
    PRIMARY KEY (domain, class, fkey)
);

CREATE TABLE incidents (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    domain           TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    severity         TEXT    NOT NULL,
    thread_key       TEXT    NOT NULL,
    channel          TEXT    NOT NULL,
    opened_at        BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    resolved_at      BIGINT,
    paged_at         BIGINT,
    last_notified_at BIGINT,
    notifications    INTEGER NOT NULL,
    data             TEXT    NOT NULL
);
CREATE INDEX incidents_domain ON incidents (domain, id);
-- At most one open incident per domain: the engine relies on it, the
-- database enforces it.
CREATE UNIQUE INDEX incidents_one_open ON incidents (domain) WHERE status = 'open';

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at      BIGINT  NOT NULL,
    kind            TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    thread_key      TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at BIGINT  NOT NULL,
    delivered_at    BIGINT,
    dead_at         BIGINT,
    last_error      TEXT    NOT NULL
);
-- Pending rows only: the dispatcher's "head of each thread" query and the
-- depth gauge read this small index, never the delivered history.
CREATE INDEX outbox_pending ON outbox (thread_key, id) WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX outbox_dead ON outbox (id) WHERE dead_at IS NOT NULL;

CREATE TABLE slack_threads (
    thread_key TEXT   NOT NULL PRIMARY KEY,
    channel    TEXT   NOT NULL,
    ts         TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE silences (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    domain     TEXT   NOT NULL,
    created_by TEXT   NOT NULL,
    reason     TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    starts_at  BIGINT NOT NULL,
    ends_at    BIGINT NOT NULL,
    expired_at BIGINT
);
CREATE INDEX silences_ends ON silences (ends_at);

CREATE TABLE failover_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    playbook    TEXT    NOT NULL,
    started_by  TEXT    NOT NULL,
    started_at  BIGINT  NOT NULL,
    finished_at BIGINT,
    dry_run     INTEGER NOT NULL,
    plan        TEXT    NOT NULL,
    checksum    TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    error       TEXT    NOT NULL
);
CREATE INDEX failover_runs_playbook ON failover_runs (playbook, id);

CREATE TABLE failover_steps (
    run_id      BIGINT  NOT NULL REFERENCES failover_runs (id),
    step_index  INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    request     TEXT    NOT NULL,
    response    TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    error       TEXT    NOT NULL,
    started_at  BIGINT,
    finished_at BIGINT,
    PRIMARY KEY (run_id, step_index)
);

CREATE TABLE failover_locks (
    playbook     TEXT    NOT NULL PRIMARY KEY,
    holder       TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    host         TEXT    NOT NULL,
    run_id       BIGINT  NOT NULL,
    acquired_at  BIGINT  NOT NULL,
    heartbeat_at BIGINT  NOT NULL
);

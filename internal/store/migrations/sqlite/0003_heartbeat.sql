-- nsguard schema, version 3: heartbeats.
--
-- Each daemon (and, on a cluster, each replica or probe) writes its row
-- every few seconds: a write that fails says at once that the store cannot
-- take writes (a full disk, a read-only file, a corrupt page), before a
-- cycle's results are lost to it; and the rows say who is alive.
CREATE TABLE heartbeats (
    owner TEXT   NOT NULL PRIMARY KEY,
    at    BIGINT NOT NULL,
    info  TEXT   NOT NULL
);

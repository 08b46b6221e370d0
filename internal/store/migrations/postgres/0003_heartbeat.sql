-- nsguard schema, version 3: heartbeats. PostgreSQL spelling of
-- migrations/sqlite/0003 (TEXT columns COLLATE "C", as in 0001).
--
-- Each daemon (and, on a cluster, each replica or probe) writes its row
-- every few seconds: a write that fails says at once that the store cannot
-- take writes (a full disk, a read-only file, a corrupt page), before a
-- cycle's results are lost to it; and the rows say who is alive.
CREATE TABLE heartbeats (
    owner TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    at    BIGINT           NOT NULL,
    info  TEXT COLLATE "C" NOT NULL
);

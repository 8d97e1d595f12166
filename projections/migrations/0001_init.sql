-- Read-model database, owned by the projectors. The query API only reads it.

-- Where each projection is in each partition of each topic. Updated in the
-- same transaction as the view rows, so a restart resumes exactly.
CREATE TABLE projection_positions (
    projection  text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    next_offset bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, topic, partition)
);

-- Records a projector could not apply, with enough to find and replay them.
CREATE TABLE dead_letters (
    id          bigserial   PRIMARY KEY,
    projection  text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    record_key  text,
    payload     bytea,
    error       text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (projection, topic, partition, "offset")
);

-- Pipeline probes as seen by the projector.
CREATE TABLE probes (
    probe_id     uuid        PRIMARY KEY,
    sent_at      timestamptz NOT NULL,
    committed_at timestamptz NOT NULL,
    projected_at timestamptz NOT NULL DEFAULT now()
);

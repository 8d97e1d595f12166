-- The saga worker's database: one row per saga, the outbox of messages it
-- wants published, and its positions on the event topics. A consumed event,
-- the saga rows it changed, the messages it caused and the new position are
-- committed in one transaction.

CREATE TABLE sagas (
    order_id     uuid PRIMARY KEY,
    state        jsonb       NOT NULL,
    status       text        NOT NULL,
    -- When the timer must fire the current step's deadline; NULL when nothing waits.
    deadline_at  timestamptz,
    -- Saga events emitted so far (the sequence of the saga's stream).
    version      bigint      NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX sagas_deadline ON sagas (deadline_at) WHERE deadline_at IS NOT NULL;
CREATE INDEX sagas_status ON sagas (status);

-- Messages to publish: commands to the aggregates, the saga's own events and
-- replies to operator commands. `message_id` is the command or event id, so a
-- message written twice is stored once.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    message_id    uuid        NOT NULL UNIQUE,
    order_id      uuid        NOT NULL,
    topic_stream  text        NOT NULL,
    kind          text        NOT NULL CHECK (kind IN ('command', 'event', 'reply')),
    message_key   text        NOT NULL,
    payload       bytea       NOT NULL,
    -- The envelope of an event (CloudEvents headers are built from it).
    meta          jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);

CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Where the worker is on each partition of the topics it consumes.
CREATE TABLE saga_positions (
    topic        text   NOT NULL,
    partition    int    NOT NULL,
    next_offset  bigint NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- Operator commands already answered, so a redelivered one gets the same reply.
CREATE TABLE operator_replies (
    command_id  uuid PRIMARY KEY,
    reply       jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Records the worker could not read (undecodable, unknown type); the rest keeps flowing.
CREATE TABLE dead_letters (
    topic          text   NOT NULL,
    partition      int    NOT NULL,
    record_offset  bigint NOT NULL,
    error          text   NOT NULL,
    payload        bytea,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, record_offset)
);

-- The provider gateway's memory of each payment: captures, voids and refunds
-- are asked for by order and need the token and the provider's reference.
CREATE TABLE gateway_payments (
    order_id      uuid PRIMARY KEY,
    token         text NOT NULL,
    provider_ref  text,
    void_requested boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Rows a saga hop rewrites without touching an index.
--
-- At 250 orders/s every saga update and every outbox mark wrote new index
-- entries: a saga row's state, deadline and status were all read by some
-- index (the open-order count's expression on the state, the timer's
-- deadline index), so no update could be HOT, and marking an outbox row
-- published moved it out of the partial index of unpublished rows. Index
-- insertion was a fifth of the saga database's CPU, and reading the state
-- in as jsonb (a parsed tree, its keys sorted, numbers made numeric) about
-- as much (BENCHMARKS.md, "Saga rows rewritten in place").
--
-- After this migration:
-- - the customer is a column of its own, set once;
-- - the deadlines are indexed in a table of their own, one row per waiting
--   saga, keyed by time (moving a deadline deletes one row and inserts one);
--   `sagas.deadline_at` stays the saga's current deadline, unindexed;
-- - the state and an event's envelope are `json`: checked on the way in,
--   stored as the text the service wrote;
-- - unpublished outbox rows are listed in `outbox_pending` and a publish
--   deletes from it, so an outbox row is written once;
-- - saga pages are filled to three quarters by inserts, leaving room for a
--   version of the same saga's next hop on its page.
--
-- It rewrites the sagas and outbox tables (an exclusive lock for that time).

DROP INDEX sagas_open_by_customer;
DROP INDEX sagas_deadline;

ALTER TABLE sagas
    ADD COLUMN customer_id text,
    ALTER COLUMN state TYPE json USING state::json;
UPDATE sagas SET customer_id = state->'order'->>'customer_id';
ALTER TABLE sagas ALTER COLUMN customer_id SET NOT NULL;
ALTER TABLE sagas ALTER COLUMN state SET COMPRESSION lz4;
ALTER TABLE sagas ALTER COLUMN state SET STATISTICS 0;
ALTER TABLE sagas SET (fillfactor = 75);

-- The per-customer cap on open orders counts a customer's running and
-- compensating sagas when a new order arrives.
CREATE INDEX sagas_open_by_customer ON sagas (customer_id)
    WHERE status IN ('running', 'compensating');

-- The timer's index: the sagas waiting for a deadline, by time.
CREATE TABLE saga_deadlines (
    deadline_at  timestamptz NOT NULL,
    order_id     uuid        NOT NULL,
    PRIMARY KEY (deadline_at, order_id)
);
INSERT INTO saga_deadlines (deadline_at, order_id)
    SELECT deadline_at, order_id FROM sagas WHERE deadline_at IS NOT NULL;

-- Outbox rows not yet published, with the start of the transaction that
-- wrote them (the watermark holds deadlines back to the oldest).
CREATE TABLE outbox_pending (
    id          bigint      PRIMARY KEY,
    created_at  timestamptz NOT NULL
);
INSERT INTO outbox_pending (id, created_at)
    SELECT id, created_at FROM outbox WHERE published_at IS NULL;
DROP INDEX outbox_unpublished;
ALTER TABLE outbox
    DROP COLUMN published_at,
    ALTER COLUMN meta TYPE json USING meta::json;
ALTER TABLE outbox ALTER COLUMN meta SET STATISTICS 0;

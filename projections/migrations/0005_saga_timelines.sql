-- The saga timeline per order, from sagas.events. Every saga event carries the
-- saga's whole progress, so a row is the latest event of its saga (by
-- `version`, the saga stream's sequence); `reason` and `note` keep the last
-- one given. Written only by the projectors.
CREATE TABLE saga_timelines (
    order_id     uuid        PRIMARY KEY,
    customer_id  text        NOT NULL,
    status       text        NOT NULL,
    current_step text        NOT NULL,
    attempt      bigint      NOT NULL,
    deadline_at  timestamptz,
    last_error   text,
    -- Why the saga is compensating, compensated or parked (the last reason given).
    reason       text,
    -- The operator's note when the saga was resolved by hand.
    note         text,
    last_event   text        NOT NULL,
    -- [{step, started_at, attempts, outcome}]
    history      jsonb       NOT NULL,
    version      bigint      NOT NULL,
    started_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- Operators list sagas by status (`needs_attention`), newest first.
CREATE INDEX saga_timelines_by_status ON saga_timelines (status, started_at DESC, order_id DESC);

-- Confirmed orders and revenue per bucket (minute, hour, day) and currency,
-- from orders.events. Running sums, added to in the same transaction as the
-- positions, so each event counts exactly once.
CREATE TABLE sales (
    bucket        text        NOT NULL,
    starts_at     timestamptz NOT NULL,
    currency      text        NOT NULL,
    orders        bigint      NOT NULL,
    revenue_minor bigint      NOT NULL,
    PRIMARY KEY (bucket, starts_at, currency)
);

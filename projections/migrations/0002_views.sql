-- The business views. Each row carries the sequence (`version`) of the last
-- event of its stream that was folded into it; readers compare it with a
-- consistency token's version. Written only by the projectors.

-- Price and stock per SKU, from catalog.events.
CREATE TABLE catalog_items (
    sku              text        PRIMARY KEY,
    name             text        NOT NULL,
    unit_price_minor bigint      NOT NULL,
    currency         text        NOT NULL,
    on_hand          bigint      NOT NULL,
    reserved         bigint      NOT NULL,
    available        bigint      GENERATED ALWAYS AS (on_hand - reserved) STORED,
    version          bigint      NOT NULL,
    updated_at       timestamptz NOT NULL
);

-- Order detail, from orders.events. Also serves the customer order history
-- through orders_customer_history, so history and detail never disagree.
CREATE TABLE orders (
    order_id            uuid        PRIMARY KEY,
    customer_id         text        NOT NULL,
    status              text        NOT NULL,
    status_reason       text,
    cancellation_reason text,
    currency            text        NOT NULL,
    -- [{sku, quantity, unit_price: {minor, currency} | null, line_total}]
    lines               jsonb       NOT NULL,
    total_minor         bigint,
    version             bigint      NOT NULL,
    placed_at           timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);

CREATE INDEX orders_customer_history ON orders (customer_id, placed_at DESC, order_id DESC);

-- Payment status per order, from payments.events (keyed by order id). A table
-- of its own so every row has exactly one feeding stream.
CREATE TABLE order_payments (
    order_id            uuid        PRIMARY KEY,
    status              text        NOT NULL,
    authorization_state text        NOT NULL,
    capture_state       text        NOT NULL,
    void_state          text        NOT NULL,
    refund_state        text        NOT NULL,
    amount_minor        bigint      NOT NULL,
    currency            text        NOT NULL,
    version             bigint      NOT NULL,
    updated_at          timestamptz NOT NULL
);

-- Shipment status per order, from shipments.events (keyed by order id).
CREATE TABLE order_shipments (
    order_id     uuid        PRIMARY KEY,
    status       text        NOT NULL,
    tracking_ref text,
    version      bigint      NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- Every order, payment and shipment event of an order; `source` is the stream.
CREATE TABLE order_timeline (
    order_id    uuid        NOT NULL,
    source      text        NOT NULL,
    sequence    bigint      NOT NULL,
    event_type  text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    detail      jsonb       NOT NULL,
    PRIMARY KEY (order_id, source, sequence)
);

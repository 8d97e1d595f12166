-- The per-customer cap on open orders counts a customer's running and
-- compensating sagas when a new order arrives.
CREATE INDEX sagas_open_by_customer ON sagas ((state->'order'->>'customer_id'))
    WHERE status IN ('running', 'compensating');

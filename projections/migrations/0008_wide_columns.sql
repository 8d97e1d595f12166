-- No statement filters or sorts by these JSON values, yet every ANALYZE
-- sorted a sample of them, compared key by key. Autovacuum analyzes these
-- tables at every tenth of growth, and sorting samples was most of its CPU,
-- half of it comparing JSON. A rebuild's shadow tables copy these targets
-- (replay::shadow).
ALTER TABLE orders ALTER COLUMN lines SET STATISTICS 0;
ALTER TABLE order_timeline ALTER COLUMN detail SET STATISTICS 0;
ALTER TABLE saga_timelines ALTER COLUMN history SET STATISTICS 0;

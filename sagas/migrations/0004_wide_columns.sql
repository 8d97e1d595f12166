-- The wide columns: every saga hop rewrites a state of about 2 KB of JSON,
-- and every message the worker causes is an outbox row.
--
-- Compression: a saga's state is over the size at which PostgreSQL
-- compresses a row. With pglz that took about a twentieth of PostgreSQL's
-- CPU at 250 orders/s; lz4 does the same work several times faster
-- (BENCHMARKS.md, "Plans that scan"). Values already stored keep their pglz
-- form and stay readable.
ALTER TABLE sagas ALTER COLUMN state SET COMPRESSION lz4;

-- Statistics: no statement filters or sorts by these values (the open-order
-- count reads the state through its own expression index, whose statistics
-- are kept), yet every ANALYZE sorted a sample of them, JSON compared key
-- by key. Autovacuum analyzes these tables at every tenth of growth, and
-- sorting samples was most of its CPU, half of it comparing JSON.
ALTER TABLE sagas ALTER COLUMN state SET STATISTICS 0;
ALTER TABLE outbox ALTER COLUMN payload SET STATISTICS 0;
ALTER TABLE outbox ALTER COLUMN meta SET STATISTICS 0;

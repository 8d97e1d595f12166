-- The views' JSON values are written far more often than read, and nothing
-- filters, sorts or indexes on them: an order's priced lines, a timeline
-- entry's payload, a saga's step history. As `jsonb` every write parsed the
-- text into a tree (keys sorted, numbers made numeric) and every read for a
-- document printed the tree again; as `json` a write checks the text and
-- stores it, and a read returns it. Measured on this machine's PostgreSQL,
-- 300,000 rows of two priced lines: 1.9 s to insert as jsonb against 0.7 s
-- as json, 1.1 s against 0.2 s to read back as text, 127 against 88 MB
-- (BENCHMARKS.md, "The views' JSON as text").
--
-- Each ALTER rewrites its table under an exclusive lock. Older projectors
-- still bind `jsonb[]`, which PostgreSQL assigns to a `json` column, so they
-- keep working beside this schema.
ALTER TABLE orders ALTER COLUMN lines TYPE json USING lines::json;
ALTER TABLE order_timeline ALTER COLUMN detail TYPE json USING detail::json;
ALTER TABLE saga_timelines ALTER COLUMN history TYPE json USING history::json;

-- As 0008 set them: no statement reads statistics of these values.
ALTER TABLE orders ALTER COLUMN lines SET STATISTICS 0;
ALTER TABLE order_timeline ALTER COLUMN detail SET STATISTICS 0;
ALTER TABLE saga_timelines ALTER COLUMN history SET STATISTICS 0;

-- Event-time watermarks: how far the worker has read each partition it
-- consumes, in the time of the records (or the time it saw itself caught up
-- to the partition's end). The timer fires a deadline only once every
-- partition that may carry the answer has been read up to the deadline, so
-- a backlog in front of the worker never counts against the other side.
ALTER TABLE saga_positions ADD COLUMN watermark_at timestamptz;

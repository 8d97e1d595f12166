-- When the broker appended the last record applied in each partition, so the
-- projector can report how far behind the log it is in seconds.
ALTER TABLE projection_positions ADD COLUMN last_appended_at timestamptz;

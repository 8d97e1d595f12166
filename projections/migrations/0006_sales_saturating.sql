-- Sales sums saturate at the bounds of bigint instead of failing the batch
-- (an error here would stall every view of the orders stream): see
-- projections/src/views/sales.rs.
CREATE OR REPLACE FUNCTION sales_saturating_add(a bigint, b bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT LEAST(GREATEST(a::numeric + b, -9223372036854775808), 9223372036854775807)::bigint
$$;

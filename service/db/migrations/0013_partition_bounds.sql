-- The bounds of a set of time ranges, and the first month a call started in them can be
-- stored in, as IMMUTABLE functions: given a query's parameters they are computed when the
-- query is planned, so the planner sees constants — it skips the months before, and
-- reads each month's started_at index rather than every row (a subquery over the ranges
-- would only be known at run time, and the planner would plan for the whole table).
-- OR REPLACE: for a while these were written into 0012, and databases migrated then have
-- them already.
CREATE OR REPLACE FUNCTION ranges_start(timestamptz[]) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT min(x) FROM unnest($1) AS x';
CREATE OR REPLACE FUNCTION ranges_end(timestamptz[]) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT max(x) FROM unnest($1) AS x';
-- A call's month comes from its first events, which are never long before its start: the
-- month before the start's is a safe floor.
CREATE OR REPLACE FUNCTION first_month_of(timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$SELECT (date_trunc('month', $1 AT TIME ZONE 'UTC') - interval '1 month')::date$$;

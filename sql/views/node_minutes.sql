-- flowcore_node_minutes(since, until [, settle]): node durations per minute
-- (finished attempts by the minute they STARTED): attempts, p50, p95 and
-- max, for the "p95 node duration per minute" dashboard panel.
--   SELECT minute, p95_ms
--     FROM flowcore_node_minutes(now() - interval '6 hours', now());
--
-- The answer is the one of the plain query
--   SELECT date_trunc('minute', started_at), count(*),
--          percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms), ...
--     FROM flowcore_run_timeline
--    WHERE started_at >= since AND started_at < until
--      AND attempt >= 1 AND status <> 'running'
--    GROUP BY 1 ORDER BY 1
-- (minutes with no finished attempt have no row), but a minute is
-- aggregated from the node rows once and kept in flowcore_node_minutes:
-- that plain query sorts every duration of the window on every refresh,
-- 181 ms over 6 h at 10^7 node rows in 10 days (docs/performance.md).
--
-- Which minutes are kept: the whole minutes of [since, until) that ended
-- at least `settle` (default 1 hour; less than 0 counts as 0) ago. The
-- store is shared by every caller: a short settle stores minutes whose
-- attempts may still be running, and every later call reads them so. The first call over a window
-- aggregates and stores the minutes not kept yet (one pass over their node
-- rows, in the caller's transaction; a first 7-day window at 10^7 rows
-- takes seconds); later calls read the stored minutes and aggregate only
-- the last `settle` and a partial first minute from the node rows. In a
-- read-only transaction (a hot standby, say) nothing is stored: the stored
-- minutes are used when the window has all of them, else everything comes
-- from the node rows.
--
-- What a stored minute does not see: an attempt that finishes more than
-- `settle` after its minute was stored (it was `running` then), and rows
-- written later for that minute (a spool replayed after a long outage).
-- Forget the minutes concerned and they are aggregated again on the next
-- call:
--   SELECT flowcore_node_minutes_forget('2026-12-01', '2026-12-02');
-- (flowcore_maintainer may). Stored minutes are not removed by pruning
-- (about 60 bytes a minute, 32 MB a year); flowcore_node_minutes_forget(
-- NULL, horizon) removes those before a horizon.
--
-- Columns: minute (the minute's start), attempts (finished attempts that
-- started in it), p50_ms and p95_ms (percentile_cont, as
-- flowcore_node_stats), max_ms. Durations are the engine's duration_ms,
-- else completed_at - started_at.
--
-- SECURITY DEFINER: it runs as the role that migrated, which owns
-- flowcore_node_minutes, so flowcore_reader (a dashboard) may call it
-- without any write privilege of its own.
CREATE TABLE IF NOT EXISTS flowcore_node_minutes (
    minute timestamptz NOT NULL CONSTRAINT flowcore_node_minutes_pkey PRIMARY KEY,
    attempts bigint NOT NULL,
    p50_ms double precision,
    p95_ms double precision,
    max_ms double precision,
    stored_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON flowcore_node_minutes FROM PUBLIC;
GRANT SELECT ON flowcore_node_minutes TO flowcore_reader, flowcore_maintainer;

CREATE OR REPLACE FUNCTION flowcore_node_minutes(since timestamptz, until timestamptz,
                                                 settle interval DEFAULT interval '1 hour')
RETURNS TABLE (minute timestamptz, attempts bigint, p50_ms double precision,
               p95_ms double precision, max_ms double precision)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp SET jit = off
AS $fn$
#variable_conflict use_column
DECLARE
    lo timestamptz; -- the first whole minute of the window
    hi timestamptz; -- the end of the stored part: whole, settled minutes
    kept bigint;
    gap_lo timestamptz;
    gap_hi timestamptz;
BEGIN
    IF since IS NULL OR until IS NULL OR until <= since THEN
        RETURN;
    END IF;
    lo := date_trunc('minute', since);
    IF lo < since THEN
        lo := lo + interval '1 minute';
    END IF;
    hi := least(date_trunc('minute', until),
                date_trunc('minute', now() - greatest(COALESCE(settle, interval '0'), interval '0')));
    IF hi < lo THEN
        hi := lo;
    END IF;
    IF hi > lo THEN
        SELECT count(*) INTO kept FROM flowcore_node_minutes r WHERE r.minute >= lo AND r.minute < hi;
        IF kept < extract(epoch FROM hi - lo) / 60 THEN
            IF current_setting('transaction_read_only') = 'on' THEN
                hi := lo; -- cannot store: all from the node rows
            ELSE
                SELECT min(m), max(m) INTO gap_lo, gap_hi
                  FROM generate_series(lo, hi - interval '1 minute', interval '1 minute') m
                 WHERE NOT EXISTS (SELECT 1 FROM flowcore_node_minutes r WHERE r.minute = m);
                INSERT INTO flowcore_node_minutes AS r (minute, attempts, p50_ms, p95_ms, max_ms)
                SELECT g.m, count(s.ms),
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY s.ms),
                       percentile_cont(0.95) WITHIN GROUP (ORDER BY s.ms),
                       max(s.ms)
                  FROM generate_series(gap_lo, gap_hi, interval '1 minute') g(m)
                  LEFT JOIN (
                        SELECT date_trunc('minute', n.started_at) AS m,
                               COALESCE(n.duration_ms,
                                        (extract(epoch FROM n.completed_at - n.started_at)
                                         * 1000)::double precision) AS ms
                          FROM node_executions n
                         WHERE n.started_at >= gap_lo
                           AND n.started_at < gap_hi + interval '1 minute'
                           AND n.attempt >= 1
                           AND n.status <> 'running') s ON s.m = g.m
                 GROUP BY g.m
                ON CONFLICT ON CONSTRAINT flowcore_node_minutes_pkey DO NOTHING;
            END IF;
        END IF;
    END IF;
    RETURN QUERY
    SELECT r.minute, r.attempts, r.p50_ms, r.p95_ms, r.max_ms
      FROM flowcore_node_minutes r
     WHERE r.minute >= lo AND r.minute < hi AND r.attempts > 0
    UNION ALL
    SELECT date_trunc('minute', n.started_at), count(*),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY d.ms),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY d.ms),
           max(d.ms)
      FROM node_executions n
     CROSS JOIN LATERAL (
           SELECT COALESCE(n.duration_ms,
                           (extract(epoch FROM n.completed_at - n.started_at) * 1000)::double precision)
                      AS ms
           ) d
     WHERE ((n.started_at >= since AND n.started_at < least(lo, until))
            OR (n.started_at >= hi AND n.started_at < until))
       AND n.attempt >= 1
       AND n.status <> 'running'
     GROUP BY 1
     ORDER BY 1;
END
$fn$;
REVOKE ALL ON FUNCTION flowcore_node_minutes(timestamptz, timestamptz, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flowcore_node_minutes(timestamptz, timestamptz, interval)
    TO flowcore_reader, flowcore_maintainer;

-- flowcore_node_minutes_forget(since, until): drops the stored minutes of
-- [since, until) (NULL: open), so that the next flowcore_node_minutes call
-- aggregates them again from the node rows. Returns how many it dropped.
CREATE OR REPLACE FUNCTION flowcore_node_minutes_forget(since timestamptz, until timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $fn$
DECLARE
    n bigint;
BEGIN
    DELETE FROM flowcore_node_minutes r
     WHERE r.minute >= COALESCE(since, '-infinity')
       AND r.minute < COALESCE(until, 'infinity');
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$fn$;
REVOKE ALL ON FUNCTION flowcore_node_minutes_forget(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flowcore_node_minutes_forget(timestamptz, timestamptz)
    TO flowcore_maintainer;

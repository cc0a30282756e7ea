-- flowcore_node_stats: duration statistics per workflow and node over all
-- finished attempts in the history.
--
-- Answers "which nodes are slow or flaky, and how slow is slow?".
--   SELECT * FROM flowcore_node_stats WHERE workflow_name = 'nightly-etl'
--    ORDER BY p95_ms DESC;
-- A filter on workflow_name is applied before aggregating (it uses the
-- (workflow_name, started_at) index and then node_executions' primary key).
-- For a time window use sql/queries/slowest_nodes.sql.
--
-- A finished attempt is a node_executions row with attempt >= 1 whose status
-- is not `running`: completed, failed, timed_out or cancelled. Rows of nodes
-- that never ran (attempt 0) and attempts still running are left out.
--
-- Columns:
--   workflow_name, node_id
--   runs              distinct runs with a finished attempt of the node
--   attempts          finished attempts
--   failures          attempts that ended `failed` (timeouts not included)
--   timeouts          attempts that ended `timed_out`
--   p50_ms, p95_ms    percentile_cont (linear interpolation) of the
--                     durations of the finished attempts, all statuses
--   mean_ms, max_ms   mean and maximum of the same durations
-- Durations are the engine's monotonic duration_ms, else completed_at -
-- started_at.
CREATE OR REPLACE VIEW flowcore_node_stats AS
SELECT w.workflow_name,
       n.node_id,
       count(DISTINCT n.workflow_id) AS runs,
       count(*) AS attempts,
       count(*) FILTER (WHERE n.status = 'failed') AS failures,
       count(*) FILTER (WHERE n.status = 'timed_out') AS timeouts,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY d.ms) AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY d.ms) AS p95_ms,
       avg(d.ms) AS mean_ms,
       max(d.ms) AS max_ms
  FROM node_executions n
  JOIN workflow_executions w ON w.workflow_id = n.workflow_id
 CROSS JOIN LATERAL (
       SELECT COALESCE(n.duration_ms,
                       (extract(epoch FROM n.completed_at - n.started_at) * 1000)::double precision)
                  AS ms
       ) d
 WHERE n.attempt >= 1
   AND n.status <> 'running'
 GROUP BY w.workflow_name, n.node_id;

-- flowcore_node_stats(since, until): the same columns over the finished
-- attempts that STARTED in [since, until) only, for dashboards and for
-- "which nodes were slow this morning?".
--   SELECT * FROM flowcore_node_stats(now() - interval '6 hours', now())
--    ORDER BY p95_ms DESC LIMIT 20;
-- An inlinable SQL function: the window is a range scan of
-- node_executions_started_at_brin. The run's name comes from
-- workflow_executions, in one of two shapes (UNION ALL of two branches of
-- which a one-time filter runs exactly one, so the answer is the same):
--   - a window of at most a day: the window's node rows are gathered
--     first and only the runs whose workflow_id lies between the smallest
--     and the largest workflow_id of those rows are read (a range of the
--     primary key; the partitions outside it are pruned at run time). A
--     plain join read every run row: 250 ms at 10^6 node rows for 1 h,
--     now 7 ms (docs/performance.md);
--   - a longer or open window: the plain join (a parallel hash join),
--     faster when most of the history is in the window anyway.
-- A NULL bound is open (NULL, NULL gives the whole history, as the view,
-- except attempts with no started_at, which no window holds). The bounds
-- are written as COALESCE(...) rather than `since IS NULL OR ...` so that
-- they stay index conditions once the function is inlined.
CREATE OR REPLACE FUNCTION flowcore_node_stats(since timestamptz, until timestamptz)
RETURNS TABLE (workflow_name text, node_id text, runs bigint, attempts bigint,
               failures bigint, timeouts bigint, p50_ms double precision,
               p95_ms double precision, mean_ms double precision,
               max_ms double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $fn$
WITH n AS MATERIALIZED (
       SELECT n.workflow_id, n.node_id, n.status,
              COALESCE(n.duration_ms,
                       (extract(epoch FROM n.completed_at - n.started_at) * 1000)::double precision)
                  AS ms
         FROM node_executions n
        WHERE n.attempt >= 1
          AND n.status <> 'running'
          AND n.started_at >= COALESCE(since, '-infinity')
          AND n.started_at < COALESCE(until, 'infinity'))
SELECT w.workflow_name,
       n.node_id,
       count(DISTINCT n.workflow_id),
       count(*),
       count(*) FILTER (WHERE n.status = 'failed'),
       count(*) FILTER (WHERE n.status = 'timed_out'),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY n.ms),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY n.ms),
       avg(n.ms),
       max(n.ms)
  FROM n
  JOIN workflow_executions w ON w.workflow_id = n.workflow_id
 WHERE since IS NOT NULL AND until IS NOT NULL AND until - since <= interval '1 day'
   AND w.workflow_id >= (SELECT n1.workflow_id FROM n n1 ORDER BY 1 LIMIT 1)
   AND w.workflow_id <= (SELECT n2.workflow_id FROM n n2 ORDER BY 1 DESC LIMIT 1)
 GROUP BY w.workflow_name, n.node_id
UNION ALL
SELECT w.workflow_name,
       n.node_id,
       count(DISTINCT n.workflow_id),
       count(*),
       count(*) FILTER (WHERE n.status = 'failed'),
       count(*) FILTER (WHERE n.status = 'timed_out'),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY d.ms),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY d.ms),
       avg(d.ms),
       max(d.ms)
  FROM node_executions n
  JOIN workflow_executions w ON w.workflow_id = n.workflow_id
 CROSS JOIN LATERAL (
       SELECT COALESCE(n.duration_ms,
                       (extract(epoch FROM n.completed_at - n.started_at) * 1000)::double precision)
                  AS ms
       ) d
 WHERE NOT (since IS NOT NULL AND until IS NOT NULL AND until - since <= interval '1 day')
   AND n.attempt >= 1
   AND n.status <> 'running'
   AND n.started_at >= COALESCE(since, '-infinity')
   AND n.started_at < COALESCE(until, 'infinity')
 GROUP BY w.workflow_name, n.node_id
$fn$;
GRANT EXECUTE ON FUNCTION flowcore_node_stats(timestamptz, timestamptz) TO flowcore_reader;

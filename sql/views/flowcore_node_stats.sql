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
-- node_executions_started_at_idx, joined to workflow_executions for the
-- name (by primary-key lookups for a small window; for a large one the
-- planner may prefer a hash join that reads every run row, see
-- examples/grafana/README.md). A NULL bound is open (NULL, NULL gives the whole history, as the
-- view, except attempts with no started_at, which no window holds). The
-- bounds are written as COALESCE(...) rather than `since IS NULL OR ...` so
-- that they stay index conditions once the function is inlined.
CREATE OR REPLACE FUNCTION flowcore_node_stats(since timestamptz, until timestamptz)
RETURNS TABLE (workflow_name text, node_id text, runs bigint, attempts bigint,
               failures bigint, timeouts bigint, p50_ms double precision,
               p95_ms double precision, mean_ms double precision,
               max_ms double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $fn$
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
 WHERE n.attempt >= 1
   AND n.status <> 'running'
   AND n.started_at >= COALESCE(since, '-infinity')
   AND n.started_at < COALESCE(until, 'infinity')
 GROUP BY w.workflow_name, n.node_id
$fn$;
GRANT EXECUTE ON FUNCTION flowcore_node_stats(timestamptz, timestamptz) TO flowcore_reader;

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

-- Slowest nodes this week: the 20 workflow/node pairs with the highest p95
-- duration over the finished attempts of runs started in the last 7 days
-- (a rolling week, not the calendar week).
--
-- Use:   psql "$FLOWCORE_DB" -f sql/queries/slowest_nodes.sql
-- No variables; change the interval or the LIMIT below as needed.
--
-- The window is on the run's started_at (indexed) rather than the node's,
-- so node_executions is reached through its primary key only.
-- Finished attempts, durations and percentiles are as in flowcore_node_stats.
--
-- Columns: workflow_name, node_id, runs, attempts, failures, timeouts,
--   p50_ms, p95_ms, mean_ms, max_ms.
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
  FROM workflow_executions w
  JOIN node_executions n ON n.workflow_id = w.workflow_id
 CROSS JOIN LATERAL (
       SELECT COALESCE(n.duration_ms,
                       (extract(epoch FROM n.completed_at - n.started_at) * 1000)::double precision)
                  AS ms
       ) d
 WHERE w.started_at >= now() - interval '7 days'
   AND n.attempt >= 1
   AND n.status <> 'running'
 GROUP BY w.workflow_name, n.node_id
 ORDER BY p95_ms DESC NULLS LAST, max_ms DESC NULLS LAST, w.workflow_name, n.node_id
 LIMIT 20;

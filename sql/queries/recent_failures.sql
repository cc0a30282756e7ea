-- Recent failures: the runs that ended `failed` among those started in the
-- last 24 hours, newest first, with the nodes that failed and the last error
-- the run reported.
--
-- Use:   psql "$FLOWCORE_DB" -f sql/queries/recent_failures.sql
-- No variables; for another window change the interval below.
--
-- Columns: workflow_id, workflow_name, started_at, completed_at, duration_ms,
--   failed_nodes (node ids whose final status is failed or timed_out, comma
--   separated), error_count, last_error_node, last_error_type,
--   last_error_message (the run's latest error by occurred_at; its node is
--   NULL for a workflow-level error).
SELECT r.workflow_id,
       r.workflow_name,
       r.started_at,
       r.completed_at,
       r.duration_ms,
       f.failed_nodes,
       r.error_count,
       e.node_id AS last_error_node,
       e.error_type AS last_error_type,
       e.error_message AS last_error_message
  FROM flowcore_recent_runs r
  LEFT JOIN LATERAL (
       SELECT string_agg(s.node_id, ', ' ORDER BY s.node_id) AS failed_nodes
         FROM (SELECT DISTINCT ON (x.node_id) x.node_id, x.status
                 FROM node_executions x
                WHERE x.workflow_id = r.workflow_id
                ORDER BY x.node_id, x.attempt DESC) s
        WHERE s.status IN ('failed', 'timed_out')
       ) f ON true
  LEFT JOIN LATERAL (
       SELECT x.node_id, x.error_type, x.error_message
         FROM execution_errors x
        WHERE x.workflow_id = r.workflow_id
        ORDER BY x.occurred_at DESC, x.error_id DESC
        LIMIT 1
       ) e ON true
 WHERE r.status = 'failed'
   AND r.started_at >= now() - interval '1 day'
 ORDER BY r.started_at DESC, r.workflow_id;

-- flowcore_error_rollup: errors counted per workflow, node, error type and
-- severity, with when they were first and last seen.
--
-- Answers "which errors happen, where, how often, and are they still
-- happening?".
--   SELECT * FROM flowcore_error_rollup ORDER BY last_seen DESC LIMIT 20;
--   SELECT * FROM flowcore_error_rollup
--    WHERE workflow_name = 'nightly-etl' AND severity IN ('error', 'critical')
--    ORDER BY errors DESC;
-- This covers the whole history; for a time window filter execution_errors
-- by occurred_at yourself (see sql/queries/error_rate_hourly.sql).
--
-- Columns:
--   workflow_name, node_id (NULL for workflow-level errors), error_type,
--   severity          the group
--   errors            error rows in the group
--   first_seen, last_seen   min and max occurred_at (engine time)
--   last_message      error_message of the group's latest error
CREATE OR REPLACE VIEW flowcore_error_rollup AS
SELECT g.workflow_name,
       g.node_id,
       g.error_type,
       g.severity,
       g.errors,
       g.first_seen,
       g.last_seen,
       (SELECT x.error_message
          FROM execution_errors x
          JOIN workflow_executions xw ON xw.workflow_id = x.workflow_id
         WHERE x.occurred_at = g.last_seen
           AND x.error_type IS NOT DISTINCT FROM g.error_type
           AND x.node_id IS NOT DISTINCT FROM g.node_id
           AND x.severity = g.severity
           AND xw.workflow_name = g.workflow_name
         ORDER BY x.error_id DESC
         LIMIT 1) AS last_message
  FROM (SELECT w.workflow_name,
               e.node_id,
               e.error_type,
               e.severity,
               count(*) AS errors,
               min(e.occurred_at) AS first_seen,
               max(e.occurred_at) AS last_seen
          FROM execution_errors e
          JOIN workflow_executions w ON w.workflow_id = e.workflow_id
         GROUP BY w.workflow_name, e.node_id, e.error_type, e.severity) g;

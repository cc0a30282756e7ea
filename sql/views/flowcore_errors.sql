-- flowcore_errors: one row per reported error, with its run's workflow name.
--
-- Answers "which errors happened in this window?" for dashboards, without
-- the whole-history grouping of flowcore_error_rollup.
--   SELECT date_trunc('hour', occurred_at) AS hour, count(*)
--     FROM flowcore_errors
--    WHERE occurred_at >= now() - interval '7 days' GROUP BY 1 ORDER BY 1;
-- A window on occurred_at reads execution_errors_occurred_at_idx; the run's
-- name is a scalar subquery, evaluated only when selected (PostgreSQL 15
-- does not remove a LEFT JOIN to a partitioned table).
--
-- Columns:
--   workflow_id, workflow_name (NULL if the run's own row is not written yet)
--   error_id, node_id (NULL for workflow-level errors), node_type, attempt,
--   error_type, error_message, severity, occurred_at
--                     as in execution_errors (stack_trace is left out: read
--                     it from execution_errors when needed)
CREATE OR REPLACE VIEW flowcore_errors AS
SELECT e.workflow_id,
       (SELECT w.workflow_name FROM workflow_executions w
         WHERE w.workflow_id = e.workflow_id) AS workflow_name,
       e.error_id,
       e.node_id,
       e.node_type,
       e.attempt,
       e.error_type,
       e.error_message,
       e.severity,
       e.occurred_at
  FROM execution_errors e;
GRANT SELECT ON flowcore_errors TO flowcore_reader;

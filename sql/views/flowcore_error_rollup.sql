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
--   last_message      error_message of the group's latest error (the
--                     highest error_id among those at last_seen)
-- One pass over the errors joined with their runs, the group's figures and
-- its latest message taken by window functions: no correlated subquery,
-- which Citus refuses here (docs/scaling.md).
CREATE OR REPLACE VIEW flowcore_error_rollup AS
SELECT s.workflow_name,
       s.node_id,
       s.error_type,
       s.severity,
       s.errors,
       s.first_seen,
       s.last_seen,
       s.last_message
  FROM (SELECT w.workflow_name,
               e.node_id,
               e.error_type,
               e.severity,
               count(*) OVER g AS errors,
               min(e.occurred_at) OVER g AS first_seen,
               max(e.occurred_at) OVER g AS last_seen,
               e.error_message AS last_message,
               row_number() OVER (g ORDER BY e.occurred_at DESC, e.error_id DESC) AS latest
          FROM execution_errors e
          JOIN workflow_executions w ON w.workflow_id = e.workflow_id
        WINDOW g AS (PARTITION BY w.workflow_name, e.node_id, e.error_type, e.severity)) s
 WHERE s.latest = 1;

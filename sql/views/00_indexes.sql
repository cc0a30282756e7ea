-- Indexes the views of sql/views/ need. Installed with them by the views
-- migration; running this file again is harmless (IF NOT EXISTS).
--
-- flowcore_run_timeline (and the canned queries built on it) looks up the
-- errors of one node attempt. The primary key of execution_errors,
-- (workflow_id, error_id), finds all errors of a run but not those of one
-- attempt, so a run with many failing nodes would scan its errors once per
-- node row. This index serves (workflow_id, node_id, attempt) directly.
-- It is not unique and starts with workflow_id, like every key of the
-- per-workflow tables (Citus co-location, docs/scaling.md). Errors are rare
-- next to node rows, so the writer pays little for it.
--
-- On a large existing execution_errors table the migration builds it inside
-- its transaction and blocks error inserts meanwhile (the writer keeps the
-- records queued and retries). To avoid that, create it beforehand with
--   CREATE INDEX CONCURRENTLY execution_errors_node_attempt_idx
--       ON execution_errors (workflow_id, node_id, attempt);
-- and the migration finds it in place.
CREATE INDEX IF NOT EXISTS execution_errors_node_attempt_idx
    ON execution_errors (workflow_id, node_id, attempt);

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

-- Time-window indexes for dashboards (examples/grafana/, issue 11). Each is a
-- plain CREATE INDEX IF NOT EXISTS with no ONLY and no CONCURRENTLY, so the
-- same statement works on a plain table and on a partitioned one (where it
-- creates the index on every partition). The indexes added here are:
--
--   node_executions_started_at_brin         node_executions USING brin (started_at)
--       node rows started in a window: p95 duration per minute
--       (flowcore_run_timeline WHERE started_at ...) and
--       flowcore_node_stats(since, until)
--   workflow_executions_status_started_at_idx
--                                            workflow_executions (status, started_at)
--       runs of one status in a window: recent failed runs
--
-- Already present since 0001 and used by the same dashboards:
-- workflow_executions_started_at_idx (started_at DESC; runs per minute) and
-- execution_errors_occurred_at_idx (occurred_at DESC; errors per hour,
-- flowcore_errors).
--
-- node_executions_started_at_brin costs the writer next to nothing (a BRIN
-- summary is updated per page range, not per row). On a large table build them beforehand with
-- CREATE INDEX CONCURRENTLY (same names and columns) and the migration finds
-- them in place.
--
-- Since 0010 the node rows' started_at index is a BRIN index
-- (node_executions_started_at_brin) instead of 0008's B-tree
-- node_executions_started_at_idx, which is dropped: node rows are written
-- in about the order they start, so the minimum and maximum started_at of
-- every 32 pages say which pages a window needs (autosummarize: autovacuum
-- summarizes each range once it is full). It takes well under 1 byte
-- per node row where the B-tree took 20 (bench/history-scale,
-- docs/performance.md), and the windowed panels stay as fast. A row written
-- late (a replayed spool) only widens its page range's bounds.
DROP INDEX IF EXISTS node_executions_started_at_idx;
CREATE INDEX IF NOT EXISTS node_executions_started_at_brin
    ON node_executions USING brin (started_at) WITH (pages_per_range = 32, autosummarize = on);
CREATE INDEX IF NOT EXISTS workflow_executions_status_started_at_idx
    ON workflow_executions (status, started_at);

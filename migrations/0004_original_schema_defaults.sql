-- flowcore 0004: the statements of the original callback documentation work
-- unchanged against this schema.
--
-- The Python callback documentation that flowcore implements writes its
-- history with four statements that name only some columns:
--   INSERT INTO workflow_executions (workflow_id, status, input_data, started_at)
--   UPDATE workflow_executions SET status = $1, output_data = $2, completed_at = $3
--    WHERE workflow_id = $4
--   INSERT INTO node_executions (workflow_id, node_id, status, input_data, started_at)
--   INSERT INTO execution_errors (workflow_id, error_type, error_message,
--                                 stack_trace, occurred_at)
-- The columns they leave out get defaults here, chosen so that the rows
-- read correctly in `flowcore history` and every view (docs/history.md,
-- "Writing history from another program"). flowcore's own writer always
-- sets these columns, so nothing changes for it.

-- A run written without a name is listed under this one.
ALTER TABLE workflow_executions ALTER COLUMN workflow_name SET DEFAULT 'unnamed';
-- A node row written without an attempt number is the node's first attempt
-- (the engine counts attempts from 1; 0 is its row of a node that never ran).
ALTER TABLE node_executions ALTER COLUMN attempt SET DEFAULT 1;
-- flowcore's writer makes error ids itself, so that a replayed batch cannot
-- duplicate an error; another program may leave that to the server.
-- gen_random_uuid() is built into PostgreSQL 13 and later.
ALTER TABLE execution_errors ALTER COLUMN error_id SET DEFAULT gen_random_uuid();

COMMENT ON TABLE workflow_executions IS
    'flowcore: one row per workflow execution (see docs/history.md)';

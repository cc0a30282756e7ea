-- flowcore 0001: the execution history (DESIGN.md §5).
--
-- Applied once by `flowcore migrate` (src/pg/migrate.c) inside one
-- transaction, so this file must not contain BEGIN/COMMIT or statements that
-- cannot run in a transaction (CREATE INDEX CONCURRENTLY). Never edit it once
-- released: the runner refuses a migration whose checksum changed. Add
-- 0002_<what>.sql instead.
--
-- Rules kept by every table below:
--  * Every primary key and unique index of a per-workflow table contains
--    workflow_id, so the three history tables can be distributed and
--    co-located with Citus by workflow_id (docs/scaling.md).
--  * Event timestamps are the engine's wall clock (written by the writer from
--    the event), never the server's now(): replaying a batch must reproduce
--    the same rows, and the history must tell when things happened, not when
--    they were written. Hence no DEFAULT now() on them.
--  * Durations come from the engine's monotonic clock (duration_ms) when it
--    has one; completed_at - started_at is the wall-clock fallback.
--  * CHECK constraints hold only what the engine guarantees (status and
--    severity vocabularies, non-negative counters), because a row the server
--    rejects would stall the writer's batch.

-- One row per workflow execution.
CREATE TABLE workflow_executions (
    workflow_id   uuid        NOT NULL,          -- UUIDv7, made by the engine
    workflow_name text        NOT NULL,
    status        text        NOT NULL,
    input_data    jsonb,
    output_data   jsonb,
    started_at    timestamptz NOT NULL,
    completed_at  timestamptz,                   -- NULL while running
    node_count    int         NOT NULL DEFAULT 0, -- nodes in the definition
    error_count   int         NOT NULL DEFAULT 0, -- errors reported during the run
    duration_ms   double precision,              -- monotonic, set at the end
    error_type    text,                          -- why it failed/was cancelled
    error_message text,
    host          text,                          -- where it ran (fleets)
    pid           int,
    -- Engine time of the latest event applied to this row (not now(): a
    -- replay must leave the row as it was). Lets a dashboard tell a live
    -- `running` row from one whose process died.
    updated_at    timestamptz,
    CONSTRAINT workflow_executions_pkey PRIMARY KEY (workflow_id),
    CONSTRAINT workflow_executions_status_check
        CHECK (status IN ('running', 'completed', 'failed', 'cancelled')),
    CONSTRAINT workflow_executions_counts_check
        CHECK (node_count >= 0 AND error_count >= 0),
    CONSTRAINT workflow_executions_duration_check
        CHECK (duration_ms IS NULL OR duration_ms >= 0)
);

-- Recent runs (ORDER BY started_at DESC LIMIT n).
CREATE INDEX workflow_executions_started_at_idx
    ON workflow_executions (started_at DESC);
-- Runs of one workflow, newest first; also the entry point for per-workflow
-- node statistics: node_executions carries no workflow_name, so the stats
-- view joins through this index and then node_executions' primary key
-- (workflow_id, node_id, ...) -- a co-located join under Citus.
CREATE INDEX workflow_executions_name_started_at_idx
    ON workflow_executions (workflow_name, started_at DESC);
-- Progress of running workflows; small because finished runs leave it.
CREATE INDEX workflow_executions_running_idx
    ON workflow_executions (started_at)
    WHERE status = 'running';

-- One row per node attempt, and one `skipped` row for a node that never ran.
CREATE TABLE node_executions (
    workflow_id   uuid        NOT NULL,
    node_id       text        NOT NULL,
    attempt       int         NOT NULL,          -- the engine's attempt number
    node_type     text,
    status        text        NOT NULL,
    input_data    jsonb,
    output_data   jsonb,
    started_at    timestamptz,                   -- NULL if it never started (skipped)
    completed_at  timestamptz,                   -- NULL while running
    duration_ms   double precision,              -- monotonic, set at the end
    error_type    text,                          -- last error of this attempt
    error_message text,
    CONSTRAINT node_executions_pkey PRIMARY KEY (workflow_id, node_id, attempt),
    CONSTRAINT node_executions_status_check
        CHECK (status IN ('running', 'completed', 'failed', 'skipped',
                          'timed_out', 'cancelled')),
    CONSTRAINT node_executions_attempt_check CHECK (attempt >= 0),
    CONSTRAINT node_executions_duration_check
        CHECK (duration_ms IS NULL OR duration_ms >= 0)
);
-- A run's timeline and a node's statistics are served by the primary key
-- (workflow_id first); no other index, so the writer's upserts stay cheap.

-- Errors, one row per reported error; error_id is made by the client so a
-- replayed batch cannot duplicate it.
CREATE TABLE execution_errors (
    workflow_id   uuid        NOT NULL,
    error_id      uuid        NOT NULL,
    node_id       text,                          -- NULL for workflow-level errors
    node_type     text,
    attempt       int,
    error_type    text,
    error_message text,
    stack_trace   text,                          -- detail, e.g. tail of stderr
    severity      text        NOT NULL DEFAULT 'error',
    occurred_at   timestamptz NOT NULL,
    CONSTRAINT execution_errors_pkey PRIMARY KEY (workflow_id, error_id),
    CONSTRAINT execution_errors_severity_check
        CHECK (severity IN ('info', 'warning', 'error', 'critical')),
    CONSTRAINT execution_errors_attempt_check CHECK (attempt IS NULL OR attempt >= 0)
);

-- Error rollups over a time window.
CREATE INDEX execution_errors_occurred_at_idx
    ON execution_errors (occurred_at DESC);
-- Rollups by type ("which errors, how often, lately").
CREATE INDEX execution_errors_type_occurred_at_idx
    ON execution_errors (error_type, occurred_at DESC);

-- The writer's own loss accounting (DESIGN §6, promise 3): every record a
-- policy dropped or a deadline abandoned, counted per kind and reason, and
-- written here once the server is reachable again. Not per-workflow data, so
-- its key does not contain workflow_id (under Citus it stays a local or
-- reference table).
CREATE TABLE flowcore_writer_losses (
    -- Made by the client when it can (so a replayed report is not counted
    -- twice); the default serves writers that do not.
    loss_id     uuid        NOT NULL DEFAULT gen_random_uuid(),
    writer      text        NOT NULL,            -- writer instance name/id
    host        text,
    pid         int,
    kind        text        NOT NULL,            -- record kind, e.g. node_end
    reason      text        NOT NULL,            -- e.g. queue_full_drop, deadline
    count       bigint      NOT NULL,
    recorded_at timestamptz NOT NULL,            -- writer's clock when counted
    CONSTRAINT flowcore_writer_losses_pkey PRIMARY KEY (loss_id),
    CONSTRAINT flowcore_writer_losses_count_check CHECK (count >= 0)
);

CREATE INDEX flowcore_writer_losses_recorded_at_idx
    ON flowcore_writer_losses (recorded_at DESC);

COMMENT ON TABLE workflow_executions IS
    'flowcore: one row per workflow execution (DESIGN.md section 5)';
COMMENT ON TABLE node_executions IS
    'flowcore: one row per node attempt; one skipped row for a node that never ran';
COMMENT ON TABLE execution_errors IS
    'flowcore: errors reported during executions; error_id is client-made';
COMMENT ON TABLE flowcore_writer_losses IS
    'flowcore: records the history writer dropped or abandoned, per kind and reason';
COMMENT ON COLUMN workflow_executions.updated_at IS
    'engine time of the latest event applied to this row (not the server clock)';

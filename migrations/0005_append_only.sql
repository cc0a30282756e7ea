-- flowcore 0005: finished history is append-only; runs whose process is
-- gone can be marked `abandoned`, and every such mark is recorded.
--
-- Applied once by `flowcore migrate` inside one transaction (no BEGIN/COMMIT
-- here). Never edit it once released; add the next number instead.
--
-- 1. `abandoned`: a new terminal status of workflow_executions. A run is
--    marked abandoned by `flowcore history reap` (src/cli/reap.c) or by the
--    SQL shown in docs/history.md, never by the engine: it means "this run
--    was still `running` but the process running it is gone (same host, pid
--    not alive) or nothing was heard of it for longer than the stale
--    threshold". Its node rows are left as they are (a node that was
--    running when the process died stays `running`: that is the last thing
--    known of it); node_executions' statuses are unchanged.
--
-- 2. flowcore_reaps: one row per run marked abandoned, saying who (role,
--    host, pid of the reaper), when (server clock), by which rule
--    (process_gone or stale) and what was known of the run (its host, pid,
--    last activity). A run is reaped at most once (it is finished after).
--
-- 3. Append-only history: a BEFORE UPDATE trigger refuses any change to a
--    finished row of workflow_executions or node_executions (status other
--    than `running`), any change to an execution_errors row, and any
--    change to a flowcore_reaps row, whoever asks (SQLSTATE 23000). One
--    thing only may still happen to a finished row: what its start record
--    carries, if missing, is filled in once (input_data, and started_at
--    and node_type of a node attempt, host and pid of a run), because a
--    replay may bring a start after its end (a writer that gave up at its
--    deadline spools its in-flight batch after the later ones). A value
--    once written never changes. Rows still `running` can be updated as
--    before (the writer's upserts; the reap, which turns a running row into
--    an abandoned one). The writer's upserts leave finished rows alone
--    themselves except for that filling (ON CONFLICT ... DO UPDATE ...
--    WHERE), so a replayed batch that meets a finished row is a no-op,
--    never an error. An owner who must repair a row can ALTER TABLE ...
--    DISABLE TRIGGER flowcore_append_only, repair, and enable it again.

ALTER TABLE workflow_executions DROP CONSTRAINT workflow_executions_status_check;
ALTER TABLE workflow_executions ADD CONSTRAINT workflow_executions_status_check
    CHECK (status IN ('running', 'completed', 'failed', 'cancelled', 'abandoned'));

CREATE TABLE flowcore_reaps (
    workflow_id      uuid        NOT NULL,
    reaped_at        timestamptz NOT NULL DEFAULT now(),  -- server clock
    reaped_by        text        NOT NULL DEFAULT current_user,
    reaper_host      text,                                -- where the reaper ran
    reaper_pid       int,
    rule             text        NOT NULL,
    run_host         text,                                -- the run's host and pid
    run_pid          int,
    last_activity_at timestamptz,                         -- engine time
    stale_after      interval,                            -- threshold of the stale rule
    message          text        NOT NULL,
    CONSTRAINT flowcore_reaps_pkey PRIMARY KEY (workflow_id),
    CONSTRAINT flowcore_reaps_rule_check CHECK (rule IN ('process_gone', 'stale'))
);

CREATE INDEX flowcore_reaps_reaped_at_idx ON flowcore_reaps (reaped_at DESC);

COMMENT ON TABLE flowcore_reaps IS
    'flowcore: runs marked abandoned (process gone or stale): who, when, why';

CREATE FUNCTION flowcore_refuse_finished_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    w workflow_executions;
    n node_executions;
BEGIN
    -- The new row with the start columns that were missing put back to
    -- NULL must equal the old row: only NULL -> value there.
    IF TG_TABLE_NAME = 'workflow_executions' THEN
        w := NEW;
        IF OLD.input_data IS NULL THEN w.input_data := NULL; END IF;
        IF OLD.host IS NULL AND OLD.pid IS NULL THEN w.host := NULL; w.pid := NULL; END IF;
        IF w IS NOT DISTINCT FROM OLD THEN RETURN NEW; END IF;
    ELSIF TG_TABLE_NAME = 'node_executions' THEN
        n := NEW;
        IF OLD.input_data IS NULL THEN n.input_data := NULL; END IF;
        IF OLD.started_at IS NULL THEN n.started_at := NULL; END IF;
        IF OLD.node_type IS NULL THEN n.node_type := NULL; END IF;
        IF n IS NOT DISTINCT FROM OLD THEN RETURN NEW; END IF;
    END IF;
    IF TG_TABLE_NAME IN ('execution_errors', 'flowcore_reaps') THEN
        RAISE EXCEPTION 'flowcore: % rows cannot be changed (the history is append-only)',
                        TG_TABLE_NAME
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RAISE EXCEPTION 'flowcore: this % row is finished (status %) and cannot be changed '
                    '(the history is append-only)', TG_TABLE_NAME, OLD.status
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

-- WHEN keeps the cost off the writer's path: updates of running rows do not
-- call the function.
CREATE TRIGGER flowcore_append_only BEFORE UPDATE ON workflow_executions
    FOR EACH ROW WHEN (OLD.status <> 'running')
    EXECUTE FUNCTION flowcore_refuse_finished_update();
CREATE TRIGGER flowcore_append_only BEFORE UPDATE ON node_executions
    FOR EACH ROW WHEN (OLD.status <> 'running')
    EXECUTE FUNCTION flowcore_refuse_finished_update();
CREATE TRIGGER flowcore_append_only BEFORE UPDATE ON execution_errors
    FOR EACH ROW EXECUTE FUNCTION flowcore_refuse_finished_update();
CREATE TRIGGER flowcore_append_only BEFORE UPDATE ON flowcore_reaps
    FOR EACH ROW EXECUTE FUNCTION flowcore_refuse_finished_update();

-- The writer role may reap too (it can update running rows anyway): a
-- writer login can run `flowcore history reap` on its own host. It reads
-- the progress view for that. Readers see the reaps.
GRANT SELECT, INSERT ON flowcore_reaps TO flowcore_writer;
GRANT SELECT ON flowcore_running_progress TO flowcore_writer;
GRANT SELECT ON flowcore_reaps TO flowcore_reader;

-- flowcore_recent_runs: one row per workflow execution, with its duration and
-- how its nodes ended.
--
-- Answers "what ran lately, how long did it take, how did its nodes end?".
--   SELECT * FROM flowcore_recent_runs ORDER BY started_at DESC LIMIT 20;
--   SELECT * FROM flowcore_recent_runs
--    WHERE workflow_name = 'nightly-etl' AND status <> 'completed'
--    ORDER BY started_at DESC LIMIT 20;
-- With ORDER BY started_at DESC LIMIT n the server walks the started_at index
-- and computes the node counts for the n rows returned only. A query that
-- selects none of the node counts does not compute them at all (the counts
-- are a LEFT JOIN LATERAL aggregate, which always yields one row, so the
-- planner removes the join when no column of it is used), and error_count
-- is looked up only when selected: a dashboard counting runs per minute
-- reads workflow_executions alone (examples/grafana/README.md).
--
-- Columns:
--   workflow_id, workflow_name, status, started_at, completed_at
--                    as in workflow_executions (completed_at NULL while
--                    running). status is running, completed, failed,
--                    cancelled or abandoned (marked by `flowcore history
--                    reap`: the process was gone; completed_at is then the
--                    last activity heard of the run, see flowcore_reaps)
--   duration_ms      the engine's monotonic duration; when absent the wall
--                    clock completed_at - started_at; NULL while running
--   node_count       nodes in the workflow's definition
--   nodes_completed, nodes_failed, nodes_skipped, nodes_timed_out,
--   nodes_cancelled, nodes_running
--                    nodes by their FINAL status, i.e. the status of the row
--                    of each node's highest attempt: a node that failed once
--                    and then succeeded counts as completed. A node the run
--                    has not reached yet has no row, so while a run is going
--                    these add up to less than node_count.
--   attempts         node attempts that started (rows with attempt >= 1; the
--                    attempt-0 row of a node that never ran is not one)
--   error_count      errors reported during the run: the engine's count,
--                    written at the end, or the error rows stored so far,
--                    whichever is larger (so it is live while running)
--   host, pid        where the run's process ran (NULL if not recorded)
CREATE OR REPLACE VIEW flowcore_recent_runs AS
SELECT w.workflow_id,
       w.workflow_name,
       w.status,
       w.started_at,
       w.completed_at,
       COALESCE(w.duration_ms,
                (extract(epoch FROM w.completed_at - w.started_at) * 1000)::double precision)
           AS duration_ms,
       w.node_count,
       n.nodes_completed,
       n.nodes_failed,
       n.nodes_skipped,
       n.nodes_timed_out,
       n.nodes_cancelled,
       n.nodes_running,
       n.attempts,
       GREATEST(w.error_count::bigint,
                (SELECT count(*) FROM execution_errors e
                  WHERE e.workflow_id = w.workflow_id)) AS error_count,
       w.host,
       w.pid
  FROM workflow_executions w
 LEFT JOIN LATERAL (
       SELECT count(*) FILTER (WHERE a.last AND a.status = 'completed') AS nodes_completed,
              count(*) FILTER (WHERE a.last AND a.status = 'failed')    AS nodes_failed,
              count(*) FILTER (WHERE a.last AND a.status = 'skipped')   AS nodes_skipped,
              count(*) FILTER (WHERE a.last AND a.status = 'timed_out') AS nodes_timed_out,
              count(*) FILTER (WHERE a.last AND a.status = 'cancelled') AS nodes_cancelled,
              count(*) FILTER (WHERE a.last AND a.status = 'running')   AS nodes_running,
              count(*) FILTER (WHERE a.attempt >= 1)                    AS attempts
         FROM (SELECT x.status,
                      x.attempt,
                      x.attempt = max(x.attempt) OVER (PARTITION BY x.node_id) AS last
                 FROM node_executions x
                WHERE x.workflow_id = w.workflow_id) a
       ) n ON true;

-- flowcore_run(run uuid): the row of flowcore_recent_runs of one run (none
-- for an id of no run), the way to read one run.
--   SELECT * FROM flowcore_run('0190c3f2-5b1e-7c3a-9d2e-4f6a8b0c1d2e');
-- As for flowcore_run_timeline(run uuid): through the view only
-- workflow_executions learns the id when the query is planned, and the node
-- counts and the error count are planned on every partition of their
-- tables (60 ms of planning on a new connection with 100 day partitions).
-- Here every lookup names the id, and PostgreSQL inlines this plain SQL
-- function, so all three tables are pruned to the run's partition when
-- planned.
CREATE OR REPLACE FUNCTION flowcore_run(run uuid)
RETURNS SETOF flowcore_recent_runs
LANGUAGE sql STABLE PARALLEL SAFE
AS $fn$
SELECT w.workflow_id,
       w.workflow_name,
       w.status,
       w.started_at,
       w.completed_at,
       COALESCE(w.duration_ms,
                (extract(epoch FROM w.completed_at - w.started_at) * 1000)::double precision),
       w.node_count,
       n.nodes_completed,
       n.nodes_failed,
       n.nodes_skipped,
       n.nodes_timed_out,
       n.nodes_cancelled,
       n.nodes_running,
       n.attempts,
       GREATEST(w.error_count::bigint,
                (SELECT count(*) FROM execution_errors e WHERE e.workflow_id = run)),
       w.host,
       w.pid
  FROM workflow_executions w
 CROSS JOIN (
       SELECT count(*) FILTER (WHERE a.last AND a.status = 'completed') AS nodes_completed,
              count(*) FILTER (WHERE a.last AND a.status = 'failed')    AS nodes_failed,
              count(*) FILTER (WHERE a.last AND a.status = 'skipped')   AS nodes_skipped,
              count(*) FILTER (WHERE a.last AND a.status = 'timed_out') AS nodes_timed_out,
              count(*) FILTER (WHERE a.last AND a.status = 'cancelled') AS nodes_cancelled,
              count(*) FILTER (WHERE a.last AND a.status = 'running')   AS nodes_running,
              count(*) FILTER (WHERE a.attempt >= 1)                    AS attempts
         FROM (SELECT x.status,
                      x.attempt,
                      x.attempt = max(x.attempt) OVER (PARTITION BY x.node_id) AS last
                 FROM node_executions x
                WHERE x.workflow_id = run) a
       ) n
 WHERE w.workflow_id = run
$fn$;
GRANT EXECUTE ON FUNCTION flowcore_run(uuid) TO flowcore_reader;

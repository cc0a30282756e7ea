-- flowcore_run_timeline: one row per node attempt of a run (and one for each
-- node that never ran), with when it started relative to the run and the
-- error that attempt reported.
--
-- Answers "what happened in this run, in what order, and what went wrong?".
--   SELECT * FROM flowcore_run_timeline
--    WHERE workflow_id = '0190c3f2-5b1e-7c3a-9d2e-4f6a8b0c1d2e'
--    ORDER BY started_at NULLS LAST, node_id, attempt;
-- (Order it when you query it: NULLS LAST puts the nodes that never ran at
-- the end.) sql/queries/run_timeline.sql takes an id prefix instead.
--
-- It also serves time windows over node rows, e.g. p95 node duration per
-- minute (examples/grafana/):
--   SELECT date_trunc('minute', started_at) AS t,
--          percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)
--     FROM flowcore_run_timeline
--    WHERE started_at >= now() - interval '6 hours' GROUP BY 1;
-- Such a query reads node_executions_started_at_brin and nothing else: the
-- run's name and start and the error columns are scalar subqueries (by
-- primary key, and through execution_errors_node_attempt_idx), evaluated
-- only when selected. (A LEFT JOIN to the runs would be removed by the
-- planner only on a plain table: PostgreSQL 15 does not remove joins to
-- partitioned ones.)
--
-- Columns:
--   workflow_id, workflow_name (NULL if the run's own row is not written yet)
--   node_id, attempt  attempt 0 is the row of a node that never ran
--   node_type, status, started_at, completed_at
--                     as in node_executions (started_at NULL if it never
--                     ran, completed_at NULL while running)
--   duration_ms       the engine's monotonic duration; when absent the wall
--                     clock completed_at - started_at
--   offset_ms         started_at - the run's started_at, in milliseconds
--   error_type, error_message
--                     the error this attempt reported (from execution_errors;
--                     the latest if it reported several), else
--                     node_executions' own columns, else NULL
CREATE OR REPLACE VIEW flowcore_run_timeline AS
SELECT n.workflow_id,
       (SELECT w.workflow_name FROM workflow_executions w
         WHERE w.workflow_id = n.workflow_id) AS workflow_name,
       n.node_id,
       n.attempt,
       n.node_type,
       n.status,
       n.started_at,
       n.completed_at,
       COALESCE(n.duration_ms,
                (extract(epoch FROM n.completed_at - n.started_at) * 1000)::double precision)
           AS duration_ms,
       (extract(epoch FROM n.started_at - (SELECT w.started_at FROM workflow_executions w
                                             WHERE w.workflow_id = n.workflow_id))
        * 1000)::double precision AS offset_ms,
       COALESCE((SELECT x.error_type
                   FROM execution_errors x
                  WHERE x.workflow_id = n.workflow_id
                    AND x.node_id = n.node_id
                    AND x.attempt = n.attempt
                  ORDER BY x.occurred_at DESC, x.error_id DESC
                  LIMIT 1),
                n.error_type) AS error_type,
       COALESCE((SELECT x.error_message
                   FROM execution_errors x
                  WHERE x.workflow_id = n.workflow_id
                    AND x.node_id = n.node_id
                    AND x.attempt = n.attempt
                  ORDER BY x.occurred_at DESC, x.error_id DESC
                  LIMIT 1),
                n.error_message) AS error_message
  FROM node_executions n;

-- flowcore_run_timeline(run uuid): the same rows for one run, the way to
-- read one run's timeline.
--   SELECT * FROM flowcore_run_timeline('0190c3f2-5b1e-7c3a-9d2e-4f6a8b0c1d2e')
--    ORDER BY started_at NULLS LAST, node_id, attempt;
-- Through the view, only node_executions learns the run's id when the
-- query is planned: the run and error lookups are correlated subqueries,
-- planned once for every partition of their tables and pruned only when
-- they run (45 ms of planning with 100 day partitions, against 4 ms for
-- this function). Here every lookup names the run's id itself, so a plain
-- SQL function that PostgreSQL inlines prunes all three tables to the
-- run's partition at plan time, whatever the number of partitions; the
-- run is read once, and an attempt's error type and message in one
-- lookup. An id of no run gives no rows.
CREATE OR REPLACE FUNCTION flowcore_run_timeline(run uuid)
RETURNS SETOF flowcore_run_timeline
LANGUAGE sql STABLE PARALLEL SAFE
AS $fn$
SELECT n.workflow_id,
       w.workflow_name,
       n.node_id,
       n.attempt,
       n.node_type,
       n.status,
       n.started_at,
       n.completed_at,
       COALESCE(n.duration_ms,
                (extract(epoch FROM n.completed_at - n.started_at) * 1000)::double precision),
       (extract(epoch FROM n.started_at - w.started_at) * 1000)::double precision,
       COALESCE(e.error_type, n.error_type),
       COALESCE(e.error_message, n.error_message)
  FROM node_executions n
  LEFT JOIN (SELECT r.workflow_name, r.started_at
               FROM workflow_executions r
              WHERE r.workflow_id = run) w ON true
  LEFT JOIN LATERAL (
        SELECT x.error_type, x.error_message
          FROM execution_errors x
         WHERE x.workflow_id = run
           AND x.node_id = n.node_id
           AND x.attempt = n.attempt
         ORDER BY x.occurred_at DESC, x.error_id DESC
         LIMIT 1) e ON true
 WHERE n.workflow_id = run
$fn$;
GRANT EXECUTE ON FUNCTION flowcore_run_timeline(uuid) TO flowcore_reader;

-- flowcore_running_progress: how far each run still marked `running` is,
-- where it runs and when it was last heard of.
--
-- Answers "what is running now, how far along is it, and is it alive?".
--   SELECT * FROM flowcore_running_progress ORDER BY started_at;
--   SELECT * FROM flowcore_running_progress WHERE idle_for > interval '1 hour';
-- It reads the partial index of running workflows, so it stays cheap however
-- long the history is. A run whose process died stays `running` here until
-- it is marked `abandoned` (`flowcore history reap`, docs/history.md); the
-- server cannot see whether a process is alive, so this view gives what
-- tells it: host and pid (checked by `flowcore history running`/`reap` on
-- that host) and idle_for (how long nothing was heard of the run).
--
-- Columns:
--   workflow_id, workflow_name, started_at, node_count
--   nodes_finished    nodes whose latest attempt has ended, in any status
--                     (a node between a failed attempt and its retry counts
--                     as finished until the retry starts)
--   nodes_running     nodes whose latest attempt is running
--   percent           100 * nodes_finished / node_count, one decimal
--                     (NULL if node_count is 0)
--   elapsed           now() - started_at: the server's clock against the
--                     engine's, so clock skew between hosts shows here
--   host, pid         where the run's process runs (NULL if not recorded:
--                     rows written before flowcore recorded them, or
--                     replayed from another process's spool)
--   last_activity_at  the latest engine time heard of the run: its start,
--                     the run row's updated_at, any node start or end, any
--                     error
--   idle_for          now() - last_activity_at (same clock caveat)
CREATE OR REPLACE VIEW flowcore_running_progress AS
SELECT w.workflow_id,
       w.workflow_name,
       w.started_at,
       w.node_count,
       n.nodes_finished,
       n.nodes_running,
       round(100.0 * n.nodes_finished / NULLIF(w.node_count, 0), 1) AS percent,
       now() - w.started_at AS elapsed,
       w.host,
       w.pid,
       GREATEST(w.started_at, w.updated_at, n.last_node_at, e.last_error_at) AS last_activity_at,
       now() - GREATEST(w.started_at, w.updated_at, n.last_node_at, e.last_error_at) AS idle_for
  FROM workflow_executions w
 CROSS JOIN LATERAL (
       SELECT count(*) FILTER (WHERE a.status <> 'running') AS nodes_finished,
              count(*) FILTER (WHERE a.status = 'running') AS nodes_running,
              max(a.t) AS last_node_at
         FROM (SELECT x.status,
                      GREATEST(x.started_at, x.completed_at) AS t,
                      x.attempt = max(x.attempt) OVER (PARTITION BY x.node_id) AS last
                 FROM node_executions x
                WHERE x.workflow_id = w.workflow_id) a
        WHERE a.last
       ) n
 CROSS JOIN LATERAL (
       SELECT max(x.occurred_at) AS last_error_at
         FROM execution_errors x
        WHERE x.workflow_id = w.workflow_id
       ) e
 WHERE w.status = 'running';

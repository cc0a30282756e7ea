-- flowcore_running_progress: how far each run still marked `running` is.
--
-- Answers "what is running now, and how far along is it?".
--   SELECT * FROM flowcore_running_progress ORDER BY started_at;
-- It reads the partial index of running workflows, so it stays cheap however
-- long the history is. A run whose process died stays `running` here; see
-- sql/queries/stuck_runs.sql to find those.
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
CREATE OR REPLACE VIEW flowcore_running_progress AS
SELECT w.workflow_id,
       w.workflow_name,
       w.started_at,
       w.node_count,
       n.nodes_finished,
       n.nodes_running,
       round(100.0 * n.nodes_finished / NULLIF(w.node_count, 0), 1) AS percent,
       now() - w.started_at AS elapsed
  FROM workflow_executions w
 CROSS JOIN LATERAL (
       SELECT count(*) FILTER (WHERE a.status <> 'running') AS nodes_finished,
              count(*) FILTER (WHERE a.status = 'running') AS nodes_running
         FROM (SELECT x.status,
                      x.attempt = max(x.attempt) OVER (PARTITION BY x.node_id) AS last
                 FROM node_executions x
                WHERE x.workflow_id = w.workflow_id) a
        WHERE a.last
       ) n
 WHERE w.status = 'running';

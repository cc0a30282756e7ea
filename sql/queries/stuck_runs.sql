-- Stuck runs: runs still marked `running` that started more than `minutes`
-- minutes ago, oldest first, with when anything last happened in them.
--
-- Use:   psql "$FLOWCORE_DB" -v minutes=60 -f sql/queries/stuck_runs.sql
-- A long idle_for with nodes_running = 0 usually means the process running
-- the workflow died (its end was never written); a long idle_for with a node
-- running means a node that does not finish (check its timeout).
--
-- Columns: those of flowcore_running_progress (workflow_id, workflow_name,
--   started_at, node_count, nodes_finished, nodes_running, percent, elapsed),
--   then
--   last_activity_at  the latest engine timestamp of the run: its start or
--                     any node start or end
--   idle_for          now() - last_activity_at
SELECT p.*,
       GREATEST(p.started_at, a.last_node_at) AS last_activity_at,
       now() - GREATEST(p.started_at, a.last_node_at) AS idle_for
  FROM flowcore_running_progress p
  LEFT JOIN LATERAL (
       SELECT max(GREATEST(x.started_at, x.completed_at)) AS last_node_at
         FROM node_executions x
        WHERE x.workflow_id = p.workflow_id
       ) a ON true
 WHERE p.started_at < now() - make_interval(mins => :'minutes'::int)
 ORDER BY p.started_at, p.workflow_id;

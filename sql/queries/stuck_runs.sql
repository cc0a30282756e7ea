-- Stuck runs: runs still marked `running` that started more than `minutes`
-- minutes ago, oldest first, with when anything last happened in them.
--
-- Use:   psql "$FLOWCORE_DB" -v minutes=60 -f sql/queries/stuck_runs.sql
-- A long idle_for with nodes_running = 0 usually means the process running
-- the workflow died (its end was never written); a long idle_for with a node
-- running means a node that does not finish (check its timeout), or a
-- process that died in the middle of it. `flowcore history running` tells
-- the two apart on the run's host (it checks the pid), and `flowcore
-- history reap` marks the dead ones `abandoned` (docs/history.md).
--
-- Columns: those of flowcore_running_progress (workflow_id, workflow_name,
--   started_at, node_count, nodes_finished, nodes_running, percent, elapsed,
--   host, pid, last_activity_at, idle_for); last_activity_at is the latest
--   engine timestamp of the run (its start, any node start or end, any
--   error) and idle_for is now() - last_activity_at.
SELECT p.*
  FROM flowcore_running_progress p
 WHERE p.started_at < now() - make_interval(mins => :'minutes'::int)
 ORDER BY p.started_at, p.workflow_id;

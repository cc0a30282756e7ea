-- Runs per status per day: how many runs started on each of the last `days`
-- days (today included) and how they ended, newest day first.
--
-- Use:   psql "$FLOWCORE_DB" -v days=7 -f sql/queries/runs_per_status_per_day.sql
-- Days are those of the session's TimeZone (SET TimeZone = 'UTC' for UTC).
-- Days without runs have no rows; a status without runs that day has none.
--
-- Columns: day (date), status (running, completed, failed, cancelled), runs.
SELECT date_trunc('day', w.started_at)::date AS day,
       w.status,
       count(*) AS runs
  FROM workflow_executions w
 WHERE w.started_at >= date_trunc('day', now()) - make_interval(days => :'days'::int - 1)
 GROUP BY 1, 2
 ORDER BY 1 DESC, 2;

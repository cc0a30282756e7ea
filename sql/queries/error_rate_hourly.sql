-- Error rate per workflow per hour: for each hour of the last `hours` hours
-- (plus the current one) and each workflow, the runs started, how many of
-- them failed, and the errors reported in that hour.
--
-- Use:   psql "$FLOWCORE_DB" -v hours=24 -f sql/queries/error_rate_hourly.sql
-- Hours are those of the session's TimeZone (SET TimeZone = 'UTC' for UTC).
--
-- Columns:
--   hour            start of the hour (timestamptz)
--   workflow_name
--   runs            runs started in the hour
--   failed_runs     of those, the ones whose status is `failed`
--   errors          error rows whose occurred_at falls in the hour
--   failure_rate    failed_runs / runs, 3 decimals (NULL if no runs)
--   errors_per_run  errors / runs, 3 decimals (NULL if no runs)
-- An hour with errors but no run started (a long run) still has a row.
WITH runs AS (
    SELECT w.workflow_name,
           date_trunc('hour', w.started_at) AS hour,
           count(*) AS runs,
           count(*) FILTER (WHERE w.status = 'failed') AS failed_runs
      FROM workflow_executions w
     WHERE w.started_at >= date_trunc('hour', now()) - make_interval(hours => :'hours'::int)
     GROUP BY 1, 2
), errs AS (
    SELECT w.workflow_name,
           date_trunc('hour', e.occurred_at) AS hour,
           count(*) AS errors
      FROM execution_errors e
      JOIN workflow_executions w ON w.workflow_id = e.workflow_id
     WHERE e.occurred_at >= date_trunc('hour', now()) - make_interval(hours => :'hours'::int)
     GROUP BY 1, 2
)
SELECT hour,
       workflow_name,
       COALESCE(runs.runs, 0) AS runs,
       COALESCE(runs.failed_runs, 0) AS failed_runs,
       COALESCE(errs.errors, 0) AS errors,
       round(runs.failed_runs::numeric / NULLIF(runs.runs, 0), 3) AS failure_rate,
       round(COALESCE(errs.errors, 0)::numeric / NULLIF(runs.runs, 0), 3) AS errors_per_run
  FROM runs
  FULL JOIN errs USING (workflow_name, hour)
 ORDER BY hour DESC, workflow_name;

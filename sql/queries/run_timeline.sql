-- One run's timeline: every node attempt of the run whose workflow_id starts
-- with the given prefix, in the order they started (nodes that never ran
-- last), with offsets from the run's start and each attempt's error.
--
-- Use:   psql "$FLOWCORE_DB" -v run=0190c3f2-5b1e -f sql/queries/run_timeline.sql
-- `run` is a workflow id or a prefix of one; hyphens and case do not matter
-- (0190c3f2-5b1e, 0190C3F25B1E). Ids are UUIDv7: their first 12 hex digits
-- are the start time in milliseconds, so runs started close together share
-- short prefixes. A prefix that matches several runs shows them all, one
-- after the other (workflow_id tells them apart); type more digits to pick
-- one. Anything but hex digits and hyphens is an error (invalid uuid).
--
-- Columns: those of flowcore_run_timeline.
SELECT t.*
  FROM flowcore_run_timeline t
 CROSS JOIN (SELECT lower(replace(:'run', '-', '')) AS hex) p
 WHERE t.workflow_id BETWEEN rpad(p.hex, 32, '0')::uuid AND rpad(p.hex, 32, 'f')::uuid
 ORDER BY t.workflow_id, t.started_at NULLS LAST, t.node_id, t.attempt;

-- The size and speed check of the HTML run report (scripts/check-report-browser,
-- docs/report.md): a finished run of 10,000 nodes written straight into the
-- history. Node nK depends on n(K/2) (a binary tree, 14 layers); every
-- 500th node failed its first attempt and completed its second after a
-- backoff; node n9999 failed. psql -v id=<uuid>.
INSERT INTO workflow_executions (workflow_id, workflow_name, status, input_data, started_at,
                                 completed_at, node_count, error_count, duration_ms)
VALUES (:'id', 'big', 'failed', '{"size": 10000}', now() - interval '70 seconds',
        now() - interval '10 seconds', 10000, 21, 60000);

INSERT INTO node_executions (workflow_id, node_id, attempt, node_type, status, input_data,
                             output_data, started_at, completed_at, duration_ms)
SELECT :'id'::uuid, 'n' || g, 1, 'exec',
       CASE WHEN g % 500 = 0 OR g = 9999 THEN 'failed' ELSE 'completed' END,
       CASE WHEN g = 1 THEN '{"input": {"size": 10000}}'::jsonb
            ELSE jsonb_build_object('input', '{"size": 10000}'::jsonb, 'n' || (g / 2),
                                    jsonb_build_object('v', g / 2)) END,
       CASE WHEN g % 500 = 0 OR g = 9999 THEN NULL ELSE jsonb_build_object('v', g) END,
       now() - interval '70 seconds' + (floor(log(2, g)) * 4 + (g % 7) * 0.3) * interval '1 second',
       now() - interval '70 seconds' + (floor(log(2, g)) * 4 + (g % 7) * 0.3 + 1) * interval '1 second',
       1000
  FROM generate_series(1, 10000) g;

INSERT INTO node_executions (workflow_id, node_id, attempt, node_type, status, input_data,
                             output_data, started_at, completed_at, duration_ms)
SELECT :'id'::uuid, 'n' || g, 2, 'exec', 'completed',
       jsonb_build_object('input', '{"size": 10000}'::jsonb, 'n' || (g / 2),
                          jsonb_build_object('v', g / 2)),
       jsonb_build_object('v', g),
       now() - interval '70 seconds' + (floor(log(2, g)) * 4 + (g % 7) * 0.3 + 1.5) * interval '1 second',
       now() - interval '70 seconds' + (floor(log(2, g)) * 4 + (g % 7) * 0.3 + 2.5) * interval '1 second',
       1000
  FROM generate_series(500, 10000, 500) g;

INSERT INTO execution_errors (workflow_id, error_id, node_id, node_type, attempt, error_type,
                              error_message, stack_trace, severity, occurred_at)
SELECT :'id'::uuid, gen_random_uuid(), 'n' || g, 'exec', 1, 'exit_status',
       'command exited with status 1', 'the tail of stderr of n' || g, 'error', now() - interval '30 seconds'
  FROM generate_series(500, 10000, 500) g
UNION ALL
SELECT :'id'::uuid, gen_random_uuid(), 'n9999', 'exec', 1, 'exit_status',
       'command exited with status 2', NULL, 'error', now() - interval '20 seconds';

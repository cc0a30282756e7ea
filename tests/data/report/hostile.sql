-- The browser test of the HTML reports (scripts/check-report-browser): a
-- failed run written straight into the history whose node ids, error
-- messages, stack traces and payloads are markup that would set data-pwned
-- on the page's <html> if it ran. psql -v id=<uuid>.
INSERT INTO workflow_executions (workflow_id, workflow_name, status, input_data, started_at,
                                 completed_at, node_count, error_count, duration_ms,
                                 error_type, error_message, host, pid)
VALUES (:'id', 'hostile_sql', 'failed',
        '{"x": "</pre><script>document.documentElement.setAttribute(\"data-pwned\",\"run-input\")</script>"}',
        now() - interval '2 seconds', now(), 4, 2, 2000, 'node_failed',
        '<script>document.documentElement.setAttribute("data-pwned","run-error")</script>',
        '<b>host</b>', 1);

INSERT INTO node_executions (workflow_id, node_id, attempt, node_type, status, input_data,
                             output_data, started_at, completed_at, duration_ms, error_type,
                             error_message)
VALUES
  (:'id', '<script>document.documentElement.setAttribute("data-pwned","id")</script>', 1,
   'exec', 'completed', '{"input": {}}', '{"v": "</svg><script>document.documentElement.setAttribute(\"data-pwned\",\"output\")</script>"}',
   now() - interval '2 seconds', now() - interval '1500 ms', 500, NULL, NULL),
  (:'id', '</svg><img src=x onerror="document.documentElement.setAttribute(''data-pwned'',''svg-id'')">', 1,
   '"type''', 'failed',
   '{"input": {}, "<script>document.documentElement.setAttribute(\"data-pwned\",\"id\")</script>": {}}',
   NULL, now() - interval '1400 ms', now() - interval '1200 ms', 200, '<i>type</i>',
   '<img src=x onerror="document.documentElement.setAttribute(''data-pwned'',''message'')">'),
  (:'id', '</svg><img src=x onerror="document.documentElement.setAttribute(''data-pwned'',''svg-id'')">', 2,
   '"type''', 'timed_out', '{"input": {}}', NULL, now() - interval '1 second',
   now() - interval '500 ms', 500, 'timeout', '"quoted" & ''single'' </title>'),
  (:'id', 'ünïcødé 😀 & "quotes"', 0, 'pass', 'skipped', NULL, NULL, NULL, NULL, NULL, NULL, NULL);

INSERT INTO execution_errors (workflow_id, error_id, node_id, node_type, attempt, error_type,
                              error_message, stack_trace, severity, occurred_at)
VALUES
  (:'id', gen_random_uuid(),
   '</svg><img src=x onerror="document.documentElement.setAttribute(''data-pwned'',''svg-id'')">',
   '"type''', 1, '<i>type</i>',
   '<img src=x onerror="document.documentElement.setAttribute(''data-pwned'',''message'')">',
   E'line 1\n</pre></details><script>document.documentElement.setAttribute("data-pwned","stack")</script>\nline 3',
   'error', now() - interval '1200 ms'),
  (:'id', gen_random_uuid(), NULL, NULL, NULL, 'node_failed',
   '<script>document.documentElement.setAttribute("data-pwned","run-error")</script>', NULL,
   'critical', now());

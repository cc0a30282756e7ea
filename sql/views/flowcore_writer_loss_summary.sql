-- flowcore_writer_loss_summary: what history writers lost, per writer,
-- record kind and reason. The writer promises never to lose a record
-- silently: every record it drops (queue full under the `drop` policy, the
-- shutdown deadline, a full spool, a row the server refuses) is counted and
-- reported here (docs/reliability.md).
--
-- Answers "is the history complete? if not, what is missing and why?".
--   SELECT * FROM flowcore_writer_loss_summary ORDER BY last_recorded_at DESC;
-- No rows means no writer reported a loss. A writer records its losses once
-- the server is reachable again, so losses during an outage appear later.
--
-- Columns:
--   writer            the writer instance (a UUID per writer; host and pid
--                     are in flowcore_writer_losses)
--   kind              record kind: workflow, node or error
--   reason            queue_full, deadline, spool_full or rejected
--   total             records lost (sum of the reported counts)
--   first_recorded_at, last_recorded_at
--                     when the writer counted the first and last of them
--                     (the writer's clock)
CREATE OR REPLACE VIEW flowcore_writer_loss_summary AS
SELECT l.writer,
       l.kind,
       l.reason,
       sum(l.count)::bigint AS total,
       min(l.recorded_at) AS first_recorded_at,
       max(l.recorded_at) AS last_recorded_at
  FROM flowcore_writer_losses l
 GROUP BY l.writer, l.kind, l.reason;

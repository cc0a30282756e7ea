/* Partitions ahead of the runs: the writer calls flowcore_ensure_partitions
 * (migrations/0007_partitions.sql) itself.
 *
 * `flowcore migrate` creates the day partitions of the history tables up to
 * 7 days ahead; a writer that runs for weeks without a migrate would reach
 * their edge, and its rows would go to the default partition (kept, never
 * refused, but out of the day partitions that retention drops). So the
 * writer asks for partitions once it is connected, and again when a run
 * starts within FC__PART_MARGIN_DAYS of the edge it knows of.
 *
 * The call is one short transaction on shard 0's connection, between two
 * batches, on the writer's thread (never the engine's). A failure (a
 * database before 0007, a role without EXECUTE, a lock held too long) is
 * counted in stats.partition_failures and never fails the writer: the
 * default partition takes the rows meanwhile. It is tried again after
 * FC__PART_RETRY_MS, or never again when the function does not exist.
 */
#include "history/writer_int.h"

#define MS_PER_DAY 86400000LL

static const char sql_ensure[] =
    "SET LOCAL lock_timeout = '5s';"
    "SELECT flowcore_ensure_partitions(" FC__PART_AHEAD_STR ")";

/* The start of the run (ms since the epoch) from its UUIDv7. */
static int64_t run_start_ms(const fc__hrun_t *run) {
  int64_t ms = 0;
  int i;
  for (i = 0; i < 6; i++)
    ms = (ms << 8) | run->uuid[i];
  return ms;
}

void fc__partitions_note(fc_history_writer_t *w, const fc__hrec_t *rec) {
  if (rec->kind != FC_EVENT_WORKFLOW_START || w->part_edge_ms == INT64_MAX)
    return;
  if (run_start_ms(rec->run) + FC__PART_MARGIN_DAYS * MS_PER_DAY >= w->part_edge_ms)
    w->part_wanted = 1;
}

static void ensure_done(fc__pgconn_t *c, int ok, const char *sqlstate, const char *msg,
                        void *data) {
  shard_t *s = data;
  fc_history_writer_t *w = s->w;
  (void)c;
  (void)msg;
  w->part_inflight = 0;
  uv_mutex_lock(&w->mu);
  w->stats.partition_checks++;
  if (ok) {
    w->part_wanted = 0;
    w->part_edge_ms = w->part_asked_edge_ms;
  } else {
    w->stats.partition_failures++;
    /* 42883: no such function (a database before 0007, unpartitioned):
     * nothing to create, ever. */
    if (strcmp(sqlstate, "42883") == 0) {
      w->part_wanted = 0;
      w->part_edge_ms = INT64_MAX;
    }
    w->part_next_ns = fc__mono_ns() + FC__PART_RETRY_MS * 1000000ULL;
  }
  uv_mutex_unlock(&w->mu);
  if (!ok && fc__pgconn_ready(&s->conn))
    fc__shard_pump(s);
}

int fc__partitions_pump(shard_t *s) {
  fc_history_writer_t *w = s->w;
  int64_t today;
  if (s->id != 0 || w->part_inflight)
    return w->part_inflight && s->id == 0;
  if (!w->part_wanted || w->close_started || fc__mono_ns() < w->part_next_ns)
    return 0;
  /* Partitions for days up to today + ahead: the edge is the end of that
   * day (a weekly period ends later; this is the least). */
  today = fc__wall_us() / 1000 / MS_PER_DAY;
  w->part_asked_edge_ms = (today + 1 + FC__PART_AHEAD_DAYS) * MS_PER_DAY;
  w->part_step.sql = sql_ensure;
  w->part_step.copy = NULL;
  if (fc__pgconn_exec(&s->conn, &w->part_step, 1, ensure_done, s) != 0)
    return 0;
  w->part_inflight = 1;
  return 1;
}

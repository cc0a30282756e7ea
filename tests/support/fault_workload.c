/* The synthetic workload of the fault tests and its fault scenario (see
 * fault_workload.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_test.h"
#include "fault_workload.h"

enum { K_SYNC, K_ASYNC, K_FLAKY };
static const char *const kind_type[] = {"sync", "async", "flaky"};

struct fc_test_wl_node_s {
  fc_test_wl_t *t;
  int idx;
  int kind;
  char id[16];
};

static int kind_of(const fc_test_wl_shape_t *s, int i) {
  if (s->flaky_every > 0 && i % s->flaky_every == s->flaky_every - 1)
    return K_FLAKY;
  if (s->async_every > 0 && i % s->async_every == 0)
    return K_ASYNC;
  return K_SYNC;
}

static json_t *node_output(const fc_test_wl_node_t *a) { return json_pack("{s:s}", "node", a->id); }

static void sync_fn(fc_node_ctx_t *ctx, void *ud) {
  fc_test_wl_node_t *a = ud;
  atomic_fetch_add(&a->t->ended, 1);
  fc_node_succeed(ctx, node_output(a));
}

static void flaky_fn(fc_node_ctx_t *ctx, void *ud) {
  fc_test_wl_node_t *a = ud;
  atomic_fetch_add(&a->t->ended, 1);
  if (fc_node_ctx_attempt(ctx) == 1)
    fc_node_failf(ctx, FC_SEVERITY_WARNING, "flaky", "first attempt of %s fails", a->id);
  else
    fc_node_succeed(ctx, node_output(a));
}

typedef struct {
  uv_timer_t timer; /* first member: the timer's address is the box's */
  fc_node_ctx_t *ctx;
  fc_test_wl_node_t *a;
} abox_t;

static void abox_closed(uv_handle_t *h) { free(h); }

static int held(const fc_test_wl_node_t *a) {
  const fc_test_wl_shape_t *s = &a->t->s;
  int level = a->idx >= s->hold[1] ? 2 : a->idx >= s->hold[0] ? 1 : 0;
  return atomic_load(&a->t->release) < level;
}

static void abox_fire(uv_timer_t *tm) {
  abox_t *b = (abox_t *)tm;
  if (held(b->a)) {
    uv_timer_start(tm, abox_fire, 2, 0); /* look again soon */
    return;
  }
  atomic_fetch_add(&b->a->t->ended, 1);
  fc_node_succeed(b->ctx, node_output(b->a));
  uv_close((uv_handle_t *)tm, abox_closed);
}

static void async_fn(fc_node_ctx_t *ctx, void *ud) {
  fc_test_wl_node_t *a = ud;
  abox_t *b = malloc(sizeof *b);
  if (b == NULL) {
    fc_node_failf(ctx, FC_SEVERITY_ERROR, "oom", "out of memory");
    return;
  }
  b->ctx = ctx;
  b->a = a;
  uv_timer_init(fc_node_ctx_loop(ctx), &b->timer);
  uv_timer_start(&b->timer, abox_fire, a->t->s.delay_ms, 0);
}

void fc_test_wl_build(fc_test_wl_t *t, const char *name, const fc_test_wl_shape_t *shape) {
  static fc_node_fn const fns[] = {sync_fn, async_fn, flaky_fn};
  fc_error_t err;
  int i;
  memset(t, 0, sizeof *t);
  t->s = *shape;
  if (t->s.hold[0] <= 0)
    t->s.hold[0] = INT_MAX;
  if (t->s.hold[1] <= 0)
    t->s.hold[1] = INT_MAX;
  atomic_init(&t->ended, 0);
  atomic_init(&t->release, 0);
  atomic_init(&t->run_done, 0);
  fc_error_clear(&err);
  t->nodes = calloc((size_t)t->s.n_nodes, sizeof *t->nodes);
  assert_non_null(t->nodes);
  assert_int_equal(fc_workflow_new(&t->wf, name), 0);
  for (i = 0; i < t->s.n_nodes; i++) {
    fc_test_wl_node_t *a = &t->nodes[i];
    fc_node_t *node;
    a->t = t;
    a->idx = i;
    a->kind = kind_of(&t->s, i);
    snprintf(a->id, sizeof a->id, "%c%05d", kind_type[a->kind][0], i);
    assert_int_equal(fc_workflow_add_node(t->wf, a->id, fns[a->kind], a, &node), 0);
    assert_int_equal(fc_node_set_type(node, kind_type[a->kind]), 0);
    if (a->kind == K_FLAKY) {
      assert_int_equal(fc_node_set_retries(node, 1, 0, 0), 0);
      t->n_flaky++;
    } else if (a->kind == K_ASYNC) {
      t->n_async++;
    }
  }
  assert_int_equal(fc_workflow_set_max_parallel(t->wf, t->s.max_parallel), 0);
  if (fc_workflow_validate(t->wf, &err) != 0)
    fail_msg("validate: %s", err.text);
}

void fc_test_wl_free(fc_test_wl_t *t) {
  fc_workflow_free(t->wf);
  t->wf = NULL;
  free(t->nodes);
  t->nodes = NULL;
}

int64_t fc_test_wl_records(const fc_test_wl_t *t) {
  return 2 + 2 * (int64_t)(t->s.n_nodes + t->n_flaky) + t->n_flaky;
}

void fc_test_wl_release(fc_test_wl_t *t, int level) { atomic_store(&t->release, level); }

void fc_test_wl_wait_ended(fc_test_wl_t *t, int n) {
  uint64_t end = uv_hrtime() + 60ULL * 1000000000ULL;
  while (atomic_load(&t->ended) < n && !atomic_load(&t->run_done) && uv_hrtime() < end)
    fc_test_sleep_ms(1);
}

typedef struct {
  fc_test_wl_t *t;
  fc_history_writer_t *w;
  fc_test_wl_out_t *out;
} run_ctx_t;

static void run_ended(void *data) {
  run_ctx_t *r = data;
  fc_history_writer_stats(r->w, &r->out->at_end);
  atomic_store(&r->t->run_done, 1);
}

void fc_test_wl_run(fc_test_wl_t *t, fc_history_writer_t *w, const char *label,
                    void (*fault)(void *arg), void *fault_arg, fc_test_wl_out_t *out) {
  run_ctx_t r = {t, w, out};
  json_t *input = json_pack("{s:s}", "case", label);
  uv_thread_t thread;
  assert_non_null(input);
  memset(out, 0, sizeof *out);
  if (fault != NULL)
    assert_int_equal(uv_thread_create(&thread, fault, fault_arg), 0);
  fc_test_run_with_history(t->wf, w, input, &out->run, run_ended, &r);
  json_decref(input);
  out->ms = out->run.rc == 0 ? (double)(out->run.t_end_ns - out->run.t_start_ns) / 1e6 : 0;
  /* Whatever happened, let a fault thread finish. */
  fc_test_wl_release(t, 2);
  atomic_store(&t->run_done, 1);
  if (fault != NULL)
    uv_thread_join(&thread);
}

void fc_test_check_invariant(const char *label, const fc_history_stats_t *st) {
  if (st->accepted != st->written + st->spooled + st->dropped_total + st->queue_depth)
    fail_msg("%s: accepted %llu != written %llu + spooled %llu + dropped %llu + queued %llu", label,
             (unsigned long long)st->accepted, (unsigned long long)st->written,
             (unsigned long long)st->spooled, (unsigned long long)st->dropped_total,
             (unsigned long long)st->queue_depth);
}

void fc_test_check_lossless(const fc_history_stats_t *rep, int close_rc, const fc_test_wl_t *t) {
  int k, r;
  assert_int_equal(close_rc, 0);
  fc_test_check_invariant("report", rep);
  assert_int_equal(rep->accepted, fc_test_wl_records(t));
  assert_int_equal(rep->written, fc_test_wl_records(t));
  assert_int_equal(rep->spooled, 0);
  assert_int_equal(rep->dropped_total, 0);
  for (k = 0; k < FC_REC_KIND_COUNT; k++)
    for (r = 0; r < FC_DROP_REASON_COUNT; r++)
      assert_int_equal(rep->dropped[k][r], 0);
}

/* ---- checks against the database ---------------------------------------------------------- */

/* Records of run `wf` present in the database (see fault_workload.h). */
int64_t fc_test_wl_db_records(const char *db, const char *wf) {
  return fc_test_pg_int(db,
                        "SELECT (SELECT count(*) FILTER (WHERE input_data IS NOT NULL) + "
                        "count(*) FILTER (WHERE status <> 'running') FROM workflow_executions "
                        "WHERE workflow_id = '%s') + "
                        "(SELECT count(*) FILTER (WHERE input_data IS NOT NULL) + "
                        "count(*) FILTER (WHERE status <> 'running') FROM node_executions "
                        "WHERE workflow_id = '%s') + "
                        "(SELECT count(*) FROM execution_errors WHERE workflow_id = '%s')",
                        wf, wf, wf);
}

/* Whatever was lost: nothing is there twice, nothing that never happened is
 * there, and no finished row went back to running. */
void fc_test_wl_check_no_duplicates(const char *db, const char *wf) {
  /* Only this run in this fresh database. */
  assert_int_equal(fc_test_pg_int(db,
                                  "SELECT (SELECT count(*) FROM node_executions WHERE "
                                  "workflow_id <> '%s') + (SELECT count(*) FROM "
                                  "execution_errors WHERE workflow_id <> '%s') + (SELECT "
                                  "count(*) FROM workflow_executions WHERE workflow_id <> '%s')",
                                  wf, wf, wf),
                   0);
  /* The primary key enforces this one: it is "none twice" as a dashboard
   * would ask it, and it would catch a schema that lost the key. */
  assert_int_equal(fc_test_pg_int(db,
                                  "SELECT count(*) - count(DISTINCT (node_id, attempt)) "
                                  "FROM node_executions WHERE workflow_id = '%s'",
                                  wf),
                   0);
  /* Only attempts that ran: 1, and 2 for flaky nodes. */
  assert_int_equal(
      fc_test_pg_int(db,
                     "SELECT count(*) FROM node_executions WHERE workflow_id = '%s' "
                     "AND NOT (attempt = 1 OR (left(node_id, 1) = 'f' AND attempt = 2))",
                     wf),
      0);
  /* Errors have client-made ids: a replay that made new ones would show
   * here as a second error for the same attempt. */
  assert_int_equal(fc_test_pg_int(db,
                                  "SELECT count(*) - count(DISTINCT (node_id, attempt)) "
                                  "FROM execution_errors WHERE workflow_id = '%s'",
                                  wf),
                   0);
  assert_int_equal(fc_test_pg_int(db,
                                  "SELECT count(*) FROM execution_errors WHERE workflow_id = '%s' "
                                  "AND NOT (left(node_id, 1) = 'f' AND attempt = 1)",
                                  wf),
                   0);
  assert_true(fc_test_pg_int(db,
                             "SELECT count(*) FROM workflow_executions WHERE workflow_id = '%s'",
                             wf) <= 1);
  assert_int_equal(fc_test_pg_int(db,
                                  "SELECT (SELECT count(*) FROM node_executions WHERE "
                                  "workflow_id = '%s' AND status = 'running' AND completed_at IS "
                                  "NOT NULL) + (SELECT count(*) FROM workflow_executions WHERE "
                                  "workflow_id = '%s' AND status = 'running' AND completed_at IS "
                                  "NOT NULL)",
                                  wf, wf),
                   0);
}

/* The whole run is there, each record once. */
void fc_test_wl_check_exact(const char *db, const char *wf, const fc_test_wl_t *t) {
  int64_t attempts = t->s.n_nodes + t->n_flaky;
  fc_test_wl_check_no_duplicates(db, wf);
  assert_int_equal(
      fc_test_pg_int(db, "SELECT count(*) FROM node_executions WHERE workflow_id = '%s'", wf),
      attempts);
  assert_int_equal(fc_test_pg_int(db,
                                  "SELECT count(DISTINCT (workflow_id, node_id, attempt)) FROM "
                                  "node_executions WHERE workflow_id = '%s'",
                                  wf),
                   attempts);
  assert_int_equal(fc_test_pg_int(db,
                                  "SELECT count(DISTINCT node_id) FROM node_executions "
                                  "WHERE workflow_id = '%s'",
                                  wf),
                   t->s.n_nodes);
  assert_int_equal(fc_test_pg_int(db,
                                  "SELECT count(*) FROM node_executions WHERE workflow_id = '%s' "
                                  "AND status = 'running'",
                                  wf),
                   0);
  /* Each node completed on its last attempt, with its own output. */
  assert_int_equal(
      fc_test_pg_int(db,
                     "SELECT count(*) FROM node_executions WHERE workflow_id = '%s' "
                     "AND status = 'completed' AND output_data->>'node' = node_id "
                     "AND attempt = CASE WHEN left(node_id, 1) = 'f' THEN 2 ELSE 1 END",
                     wf),
      t->s.n_nodes);
  assert_int_equal(fc_test_pg_int(db,
                                  "SELECT count(*) FROM node_executions WHERE workflow_id = '%s' "
                                  "AND status = 'failed' AND attempt = 1 AND node_type = 'flaky'",
                                  wf),
                   t->n_flaky);
  /* Both halves of every row. */
  assert_int_equal(fc_test_pg_int(db,
                                  "SELECT count(*) FROM node_executions WHERE workflow_id = '%s' "
                                  "AND (input_data IS NULL OR started_at IS NULL OR completed_at "
                                  "IS NULL OR duration_ms IS NULL OR completed_at < started_at)",
                                  wf),
                   0);
  assert_int_equal(
      fc_test_pg_int(db, "SELECT count(*) FROM execution_errors WHERE workflow_id = '%s'", wf),
      t->n_flaky);
  assert_int_equal(
      fc_test_pg_int(db,
                     "SELECT count(*) FROM workflow_executions WHERE workflow_id = "
                     "'%s' AND status = 'completed' AND input_data IS NOT NULL AND "
                     "output_data IS NOT NULL AND node_count = %d AND error_count = %d",
                     wf, t->s.n_nodes, t->n_flaky),
      1);
  assert_int_equal(fc_test_wl_db_records(db, wf), fc_test_wl_records(t));
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM flowcore_writer_losses"), 0);
}

/* The batched handler: batches cut at batch_size exactly, at the flush
 * interval (events trickling in from timers; nothing for an empty interval),
 * on flush and on close; a timer that keeps the loop alive only while events
 * are pending (or never, with unref_timer) and is closed properly; deep
 * copies; the batch function's data freed exactly once. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_test.h"
#include "handlers/handlers_int.h"

#define WF "01890a5d-ac96-774b-bcce-b302099a8057"
#define MAXB 64

typedef struct {
  uv_loop_t *loop;
  size_t nbatches;
  size_t sizes[MAXB];
  fc_batch_reason_t reasons[MAXB];
  uint64_t at_ms[MAXB]; /* loop time of each call */
  char ids[256][16];    /* node ids, in order, across batches */
  size_t nids;
  int fail_with;
  int freed;
  int shared;       /* events pointing into the originals */
  json_t *orig;     /* the payload the test sends */
} sink_t;

static int sink_fn(void *data, const fc_event_t *const *events, size_t n,
                   fc_batch_reason_t reason) {
  sink_t *s = data;
  size_t i;
  assert_true(n >= 1);
  assert_true(s->nbatches < MAXB);
  s->sizes[s->nbatches] = n;
  s->reasons[s->nbatches] = reason;
  s->at_ms[s->nbatches] = s->loop != NULL ? uv_now(s->loop) : 0;
  s->nbatches++;
  for (i = 0; i < n; i++) {
    const fc_event_t *e = events[i];
    if (e->workflow != NULL || (s->orig != NULL && (e->input == s->orig || e->output == s->orig)))
      s->shared++;
    if (s->orig != NULL && e->input != NULL)
      assert_true(json_equal(e->input, s->orig));
    if (s->nids < 256)
      snprintf(s->ids[s->nids++], sizeof s->ids[0], "%s", e->node_id ? e->node_id : "-");
  }
  return s->fail_with;
}

static void sink_free(void *data) {
  sink_t *s = data;
  s->freed++;
}

static fc_batch_options_t options(sink_t *s, size_t size, uint64_t interval_ms) {
  fc_batch_options_t o;
  fc_batch_options_init(&o);
  o.fn = sink_fn;
  o.data = s;
  o.data_free = sink_free;
  o.batch_size = size;
  o.flush_interval_ms = interval_ms;
  return o;
}

static fc_event_t event(fc_event_kind_t kind, const char *node, json_t *input) {
  fc_event_t e;
  memset(&e, 0, sizeof e);
  e.kind = kind;
  e.workflow = (const struct fc_workflow_s *)&e; /* any non-NULL pointer */
  e.workflow_id = WF;
  e.workflow_name = "wf";
  e.node_id = node;
  e.attempt = node ? 1 : 0;
  e.input = input;
  return e;
}

/* Destroys the handler and runs the loop so the timer's close callback
 * frees the state; then the loop closes cleanly. */
static void finish(uv_loop_t *loop, fc_handler_t *h) {
  fc_handler_destroy(h);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  fc_test_loop_close(loop);
}

/* ---- size ---------------------------------------------------------------- */

/* fc_batch_options_init: the documented defaults, fn left to set. */
static void test_options_init(void **state) {
  fc_batch_options_t o;
  (void)state;
  memset(&o, 0xff, sizeof o);
  fc_batch_options_init(&o);
  assert_null(o.fn);
  assert_null(o.data);
  assert_null(o.data_free);
  assert_int_equal(o.batch_size, 100);
  assert_int_equal(o.flush_interval_ms, 5000);
  assert_int_equal(o.kinds, 0);
  assert_int_equal(o.unref_timer, 0);
}

static void test_size_boundaries(void **state) {
  uv_loop_t loop;
  sink_t s;
  fc_batch_options_t o;
  fc_batch_stats_t st;
  fc_handler_t h;
  char id[16];
  json_t *payload = json_pack("{s:s}", "k", "v");
  int i;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  memset(&s, 0, sizeof s);
  s.orig = payload;
  o = options(&s, 4, UINT64_MAX); /* no timer */
  assert_int_equal(fc_batch_handler(&loop, &o, &h), 0);
  assert_string_equal(h.name, "batch");

  for (i = 0; i < 10; i++) {
    fc_event_t ev;
    snprintf(id, sizeof id, "e%d", i);
    ev = event(FC_EVENT_NODE_START, id, payload);
    assert_int_equal(fc_handler_call(&h, &ev), 0);
    /* a batch exactly when the 4th and the 8th event arrive */
    assert_int_equal(s.nbatches, (size_t)(i + 1) / 4);
  }
  assert_int_equal(fc_batch_handler_stats(&h, &st), 0);
  assert_int_equal(st.events, 10);
  assert_int_equal(st.pending, 2);
  assert_int_equal(st.batches, 2);
  assert_int_equal(st.by_reason[FC_BATCH_SIZE], 2);
  assert_int_equal(st.largest_batch, 4);
  assert_int_equal(uv_loop_alive(&loop), 0); /* no timer: nothing keeps it */

  fc_handler_destroy(&h); /* close: the last 2 */
  assert_int_equal(s.nbatches, 3);
  assert_int_equal(s.sizes[0], 4);
  assert_int_equal(s.sizes[1], 4);
  assert_int_equal(s.sizes[2], 2);
  assert_int_equal(s.reasons[0], FC_BATCH_SIZE);
  assert_int_equal(s.reasons[1], FC_BATCH_SIZE);
  assert_int_equal(s.reasons[2], FC_BATCH_CLOSE);
  assert_int_equal(s.nids, 10);
  for (i = 0; i < 10; i++) {
    snprintf(id, sizeof id, "e%d", i);
    assert_string_equal(s.ids[i], id);
  }
  assert_int_equal(s.shared, 0); /* deep copies, workflow NULL */
  assert_int_equal(s.freed, 1);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  fc_test_loop_close(&loop);
  json_decref(payload);
}

/* batch_size 1: every event is its own batch; a failing batch function's
 * error is returned by the event callback that cut the batch. */
static void test_size_one_and_failures(void **state) {
  uv_loop_t loop;
  sink_t s;
  fc_batch_options_t o;
  fc_batch_stats_t st;
  fc_handler_t h;
  fc_event_t ev = event(FC_EVENT_ERROR, "x", NULL);
  fc_error_info_t info;
  int i;
  (void)state;
  memset(&info, 0, sizeof info);
  info.type = "t";
  info.message = "m";
  ev.error = &info;
  assert_int_equal(uv_loop_init(&loop), 0);
  memset(&s, 0, sizeof s);
  o = options(&s, 1, 1000);
  assert_int_equal(fc_batch_handler(&loop, &o, &h), 0);
  for (i = 0; i < 3; i++)
    assert_int_equal(fc_handler_call(&h, &ev), 0);
  s.fail_with = FC_EDB;
  assert_int_equal(fc_handler_call(&h, &ev), FC_EDB);
  assert_int_equal(s.nbatches, 4);
  assert_int_equal(fc_batch_handler_stats(&h, &st), 0);
  assert_int_equal(st.failures, 1);
  assert_int_equal(st.last_error, FC_EDB);
  assert_int_equal(st.pending, 0);
  /* nothing pending: the timer is stopped and the loop is not alive */
  assert_int_equal(uv_loop_alive(&loop), 0);
  assert_int_equal(fc_batch_handler_flush(&h), 0); /* nothing to flush */
  assert_int_equal(s.nbatches, 4);
  finish(&loop, &h);
  assert_int_equal(s.nbatches, 4); /* close with nothing pending calls nothing */
  assert_int_equal(s.freed, 1);
}

/* ---- interval ------------------------------------------------------------ */

typedef struct {
  uv_timer_t t;
  fc_handler_t *h;
  sink_t *s;
  int tick;
  uint64_t sent_at[8];
  int nsent;
  size_t batches_at_350;
} driver_t;

/* Every 10 ms: events at ticks 1, 2, 3 (~10-30 ms) and 40, 41 (~400 ms);
 * at tick 35 the batches so far are noted; at tick 80 the driver stops. */
static void driver_cb(uv_timer_t *t) {
  driver_t *d = t->data;
  static const char *const ids[] = {"a", "b", "c", "d", "e"};
  d->tick++;
  if (d->tick <= 3 || d->tick == 40 || d->tick == 41) {
    fc_event_t ev = event(FC_EVENT_NODE_END, ids[d->nsent], NULL);
    d->sent_at[d->nsent++] = uv_now(t->loop);
    assert_int_equal(fc_handler_call(d->h, &ev), 0);
  }
  if (d->tick == 35)
    d->batches_at_350 = d->s->nbatches;
  if (d->tick == 80) {
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
  }
}

static void test_interval_boundaries(void **state) {
  uv_loop_t loop;
  sink_t s;
  fc_batch_options_t o;
  fc_batch_stats_t st;
  fc_handler_t h;
  driver_t d;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  memset(&s, 0, sizeof s);
  s.loop = &loop;
  o = options(&s, 100, 100);
  assert_int_equal(fc_batch_handler(&loop, &o, &h), 0);
  /* idle: the handler's timer does not keep the loop alive */
  assert_int_equal(uv_loop_alive(&loop), 0);

  memset(&d, 0, sizeof d);
  d.h = &h;
  d.s = &s;
  assert_int_equal(uv_timer_init(&loop, &d.t), 0);
  d.t.data = &d;
  assert_int_equal(uv_timer_start(&d.t, driver_cb, 10, 10), 0);
  /* returns once the driver stopped: the handler, still registered and
   * idle, keeps nothing alive */
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(d.tick, 80);

  assert_int_equal(s.nbatches, 2);
  /* one batch for the first three, the interval after the first of them */
  assert_int_equal(s.sizes[0], 3);
  assert_int_equal(s.reasons[0], FC_BATCH_INTERVAL);
  assert_true(s.at_ms[0] >= d.sent_at[0] + 100);
  assert_true(s.at_ms[0] >= d.sent_at[2]);
  /* the empty intervals between ~130 and ~400 ms called nothing */
  assert_int_equal(d.batches_at_350, 1);
  /* one batch for the two later ones */
  assert_int_equal(s.sizes[1], 2);
  assert_int_equal(s.reasons[1], FC_BATCH_INTERVAL);
  assert_true(s.at_ms[1] >= d.sent_at[3] + 100);
  assert_int_equal(s.nids, 5);
  assert_string_equal(s.ids[0], "a");
  assert_string_equal(s.ids[2], "c");
  assert_string_equal(s.ids[3], "d");
  assert_string_equal(s.ids[4], "e");

  assert_int_equal(fc_batch_handler_stats(&h, &st), 0);
  assert_int_equal(st.by_reason[FC_BATCH_INTERVAL], 2);
  assert_int_equal(st.pending, 0);
  finish(&loop, &h);
  assert_int_equal(s.nbatches, 2);
  assert_int_equal(s.freed, 1);
}

/* While events are pending the timer keeps the loop alive until the
 * interval flush; with unref_timer it never does (flush by hand). */
static void test_keep_alive_and_unref(void **state) {
  uv_loop_t loop;
  sink_t s;
  fc_batch_options_t o;
  fc_handler_t h;
  fc_event_t ev = event(FC_EVENT_WORKFLOW_START, NULL, NULL);
  uint64_t t0;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);

  memset(&s, 0, sizeof s);
  s.loop = &loop;
  o = options(&s, 10, 30);
  assert_int_equal(fc_batch_handler(&loop, &o, &h), 0);
  uv_update_time(&loop);
  t0 = uv_now(&loop);
  assert_int_equal(fc_handler_call(&h, &ev), 0);
  assert_int_equal(uv_loop_alive(&loop), 1);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(s.nbatches, 1);
  assert_int_equal(s.reasons[0], FC_BATCH_INTERVAL);
  assert_true(s.at_ms[0] >= t0 + 30);
  assert_int_equal(uv_loop_alive(&loop), 0);
  fc_handler_destroy(&h);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);

  memset(&s, 0, sizeof s);
  s.loop = &loop;
  o = options(&s, 10, 30);
  o.unref_timer = 1;
  assert_int_equal(fc_batch_handler(&loop, &o, &h), 0);
  assert_int_equal(fc_handler_call(&h, &ev), 0);
  assert_int_equal(fc_handler_call(&h, &ev), 0);
  assert_int_equal(uv_loop_alive(&loop), 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0); /* returns at once */
  assert_int_equal(s.nbatches, 0);
  assert_int_equal(fc_batch_handler_flush(&h), 0);
  assert_int_equal(s.nbatches, 1);
  assert_int_equal(s.sizes[0], 2);
  assert_int_equal(s.reasons[0], FC_BATCH_FLUSH);
  finish(&loop, &h);
  assert_int_equal(s.nbatches, 1);
  assert_int_equal(s.freed, 1);
}

/* ---- with the engine ----------------------------------------------------- */

static void node_ok(fc_node_ctx_t *ctx, void *user_data) {
  (void)user_data;
  fc_node_succeed(ctx, json_pack("{s:s}", "node", fc_node_ctx_node_id(ctx)));
}

static void on_done(fc_run_t *run, void *data) {
  int *done = data;
  (void)run;
  (*done)++;
}

/* A 5-node run, collecting node_end only, batches of 2 with a 20 ms
 * interval: two batches at size, the fifth event at the interval (the
 * pending event keeps the loop running until then). */
static void test_with_engine(void **state) {
  uv_loop_t loop;
  sink_t s;
  fc_batch_options_t o;
  fc_handler_t h;
  fc_manager_t *m;
  fc_workflow_t *wf;
  fc_run_t *run;
  char id[8];
  int i, done = 0, hid;
  (void)state;
  assert_int_equal(fc_workflow_new(&wf, "five"), 0);
  for (i = 0; i < 5; i++) {
    snprintf(id, sizeof id, "n%d", i);
    assert_int_equal(fc_workflow_add_node(wf, id, node_ok, NULL, NULL), 0);
  }
  assert_int_equal(fc_workflow_validate(wf, NULL), 0);
  assert_int_equal(uv_loop_init(&loop), 0);
  memset(&s, 0, sizeof s);
  s.loop = &loop;
  o = options(&s, 2, 20);
  o.kinds = FC_EVENT_KIND_BIT(FC_EVENT_NODE_END);
  assert_int_equal(fc_batch_handler(&loop, &o, &h), 0);
  assert_non_null(h.on_node_end);
  assert_null(h.on_node_start);
  assert_null(h.on_workflow_start);
  assert_null(h.on_workflow_end);
  assert_null(h.on_error);
  assert_int_equal(fc_manager_new(&m), 0);
  assert_int_equal(fc_manager_add(m, &h, 0, &hid), 0);
  assert_int_equal(fc_run_new(&run, &loop, wf, m, NULL), 0);
  assert_int_equal(fc_run_start(run, NULL, on_done, &done), 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(done, 1);
  assert_int_equal(s.nbatches, 3);
  assert_int_equal(s.sizes[0], 2);
  assert_int_equal(s.sizes[1], 2);
  assert_int_equal(s.sizes[2], 1);
  assert_int_equal(s.reasons[0], FC_BATCH_SIZE);
  assert_int_equal(s.reasons[1], FC_BATCH_SIZE);
  assert_int_equal(s.reasons[2], FC_BATCH_INTERVAL);
  assert_int_equal(s.nids, 5);
  assert_int_equal(s.shared, 0);
  fc_run_close(run, NULL, NULL);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(fc_manager_remove(m, hid), 0); /* destroy: close */
  assert_int_equal(s.freed, 1);
  assert_int_equal(s.nbatches, 3);
  fc_manager_free(m);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0); /* the timer's close */
  fc_test_loop_close(&loop);
  fc_workflow_free(wf);
}

/* ---- ownership and failures ---------------------------------------------- */

static void test_close_and_failures(void **state) {
  uv_loop_t loop;
  sink_t s;
  fc_batch_options_t o;
  fc_batch_stats_t st;
  fc_handler_t h;
  fc_manager_t *m;
  fc_event_t ev = event(FC_EVENT_NODE_END, "q", NULL);
  long k;
  int rc, failures = 0;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);

  /* bad options: data_free is called once anyway */
  memset(&s, 0, sizeof s);
  o = options(&s, 0, 0);
  o.fn = NULL;
  assert_int_equal(fc_batch_handler(&loop, &o, &h), FC_EINVAL);
  assert_int_equal(s.freed, 1);
  o = options(&s, 0, 0);
  o.kinds = 1u << 9;
  assert_int_equal(fc_batch_handler(&loop, &o, &h), FC_EINVAL);
  assert_int_equal(s.freed, 2);
  assert_int_equal(fc_batch_handler(NULL, &o, &h), FC_EINVAL);
  assert_int_equal(s.freed, 3);
  assert_int_equal(fc_batch_handler(&loop, NULL, &h), FC_EINVAL);

  /* injected allocation failure in the constructor */
  for (k = 1;; k++) {
    memset(&s, 0, sizeof s);
    o = options(&s, 0, 0);
    fc__handlers_fail_countdown = k;
    rc = fc_batch_handler(&loop, &o, &h);
    fc__handlers_fail_countdown = 0;
    if (rc == 0)
      break;
    failures++;
    assert_int_equal(rc, FC_ENOMEM);
    assert_int_equal(s.freed, 1);
    assert_true(k < 10);
  }
  assert_int_equal(failures, 1);

  /* no memory for a copy: FC_ENOMEM, counted, nothing batched */
  fc__handlers_fail_countdown = 1;
  assert_int_equal(fc_handler_call(&h, &ev), FC_ENOMEM);
  fc__handlers_fail_countdown = 0;
  assert_int_equal(fc_handler_call(&h, &ev), 0);
  assert_int_equal(fc_batch_handler_stats(&h, &st), 0);
  assert_int_equal(st.dropped, 1);
  assert_int_equal(st.events, 1);
  assert_int_equal(st.pending, 1);
  assert_int_equal(fc_batch_handler_stats(NULL, &st), FC_EINVAL);
  assert_int_equal(fc_batch_handler_flush(NULL), FC_EINVAL);

  /* close through the manager: the pending event is handed over, data
   * freed once, the timer closed (its memory freed by the loop) */
  assert_int_equal(fc_manager_new(&m), 0);
  assert_int_equal(fc_manager_add(m, &h, 0, NULL), 0);
  fc_manager_free(m);
  assert_int_equal(s.nbatches, 1);
  assert_int_equal(s.sizes[0], 1);
  assert_int_equal(s.reasons[0], FC_BATCH_CLOSE);
  assert_int_equal(s.freed, 1);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  fc_test_loop_close(&loop);

  assert_string_equal(fc_batch_reason_name(FC_BATCH_SIZE), "size");
  assert_string_equal(fc_batch_reason_name(FC_BATCH_INTERVAL), "interval");
  assert_string_equal(fc_batch_reason_name(FC_BATCH_FLUSH), "flush");
  assert_string_equal(fc_batch_reason_name(FC_BATCH_CLOSE), "close");
}

/* The batch function removes its own handler from the manager during an
 * interval flush (outside any dispatch: destroyed at once). The state lives
 * until the timer's close callback; nothing leaks, nothing is called twice. */
typedef struct {
  sink_t s;
  fc_manager_t *m;
  int id;
} self_remove_t;

static int remove_self_fn(void *data, const fc_event_t *const *events, size_t n,
                          fc_batch_reason_t reason) {
  self_remove_t *x = data;
  int rc = sink_fn(&x->s, events, n, reason);
  if (reason == FC_BATCH_INTERVAL)
    assert_int_equal(fc_manager_remove(x->m, x->id), 0);
  return rc;
}

static void test_destroy_from_batch_fn(void **state) {
  uv_loop_t loop;
  self_remove_t x;
  fc_batch_options_t o;
  fc_handler_t h;
  fc_event_t ev = event(FC_EVENT_NODE_END, "r", NULL);
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  memset(&x, 0, sizeof x);
  x.s.loop = &loop;
  o = options(&x.s, 10, 10);
  o.fn = remove_self_fn;
  o.data = &x;
  o.data_free = NULL;
  assert_int_equal(fc_batch_handler(&loop, &o, &h), 0);
  assert_int_equal(fc_manager_new(&x.m), 0);
  assert_int_equal(fc_manager_add(x.m, &h, 0, &x.id), 0);
  assert_int_equal(fc_manager_dispatch(x.m, &ev), 0);
  assert_int_equal(fc_manager_dispatch(x.m, &ev), 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(x.s.nbatches, 1); /* the interval batch; close had nothing */
  assert_int_equal(x.s.sizes[0], 2);
  assert_int_equal(fc_manager_count(x.m), 0);
  fc_manager_free(x.m);
  fc_test_loop_close(&loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_options_init),
      cmocka_unit_test(test_size_boundaries),
      cmocka_unit_test(test_size_one_and_failures),
      cmocka_unit_test(test_interval_boundaries),
      cmocka_unit_test(test_keep_alive_and_unref),
      cmocka_unit_test(test_with_engine),
      cmocka_unit_test(test_close_and_failures),
      cmocka_unit_test(test_destroy_from_batch_fn),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

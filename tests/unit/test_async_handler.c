/* The async handler: deep copies delivered in order on a worker thread, the
 * block and drop policies with exact counts, close with a deadline that
 * reports delivered + dropped + abandoned exactly, ownership of the wrapped
 * handler, and a 50 ms-per-event handler that does not hold up a 1,000-node
 * workflow -- shown by the order of things, not by wall-clock time. */
#define _POSIX_C_SOURCE 200809L

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_test.h"
#include "handlers/handlers_int.h"

#define WF "01890a5d-ac96-774b-bcce-b302099a8057"

/* ---- events -------------------------------------------------------------- */

#define NEVENTS 300

typedef struct {
  char ids[NEVENTS][16];
  json_t *payload[NEVENTS];
  fc_error_info_t info;
  uint8_t uuid[16];
  int counts[FC_NODE_STATUS_COUNT];
  fc_event_t ev[NEVENTS];
} stream_t;

/* Events of every kind with payloads; kind = i % 5, node "n<i>". */
static void stream_init(stream_t *s) {
  int i;
  memset(s, 0, sizeof *s);
  s->info.type = "exit_status";
  s->info.message = "exit 1";
  s->info.stack_trace = "tail of stderr";
  s->info.severity = FC_SEVERITY_ERROR;
  s->info.node_id = "n3";
  s->info.attempt = 1;
  for (i = 0; i < 16; i++)
    s->uuid[i] = (uint8_t)i;
  s->counts[FC_NODE_COMPLETED] = 5;
  for (i = 0; i < NEVENTS; i++) {
    fc_event_t *e = &s->ev[i];
    snprintf(s->ids[i], sizeof s->ids[i], "n%d", i);
    s->payload[i] = json_pack("{s:i,s:[s,s]}", "i", i, "list", "a", "b");
    assert_non_null(s->payload[i]);
    e->kind = (fc_event_kind_t)(i % FC_EVENT_KIND_COUNT);
    e->workflow = (const struct fc_workflow_s *)s; /* any non-NULL pointer */
    e->workflow_id = WF;
    e->workflow_uuid = s->uuid;
    e->workflow_name = "stream";
    e->node_id = s->ids[i];
    e->node_type = "exec";
    e->attempt = 1;
    e->time_us = 1000 + i;
    if (e->kind == FC_EVENT_NODE_END || e->kind == FC_EVENT_WORKFLOW_END)
      e->output = s->payload[i];
    else
      e->input = s->payload[i];
    if (e->kind == FC_EVENT_ERROR)
      e->error = &s->info;
    if (e->kind == FC_EVENT_WORKFLOW_END)
      e->status_counts = s->counts;
  }
}

static void stream_free(stream_t *s) {
  int i;
  for (i = 0; i < NEVENTS; i++)
    json_decref(s->payload[i]);
}

/* ---- a handler that checks the copies it gets (runs on the worker) -------- */

typedef struct {
  const stream_t *orig;
  uv_thread_t loop_thread;
  size_t n;
  int shared;      /* events that pointed into the originals */
  int on_loop;     /* calls made on the loop thread */
  int wrong;       /* events not equal to their original */
  int destroyed;
} copycheck_t;

static int copycheck_cb(void *self, const fc_event_t *ev) {
  copycheck_t *c = self;
  const fc_event_t *o;
  uv_thread_t me = uv_thread_self();
  if (uv_thread_equal(&me, &c->loop_thread))
    c->on_loop++;
  if (c->n >= NEVENTS) {
    c->wrong++;
    return 0;
  }
  o = &c->orig->ev[c->n++];
  if (ev->workflow != NULL || ev->workflow_id == o->workflow_id ||
      ev->workflow_uuid == o->workflow_uuid || ev->node_id == o->node_id ||
      (o->input != NULL && ev->input == o->input) ||
      (o->output != NULL && ev->output == o->output) ||
      (o->error != NULL && ev->error == o->error) ||
      (o->status_counts != NULL && ev->status_counts == o->status_counts))
    c->shared++;
  if (ev->kind != o->kind || strcmp(ev->node_id, o->node_id) != 0 ||
      strcmp(ev->workflow_id, o->workflow_id) != 0 || ev->time_us != o->time_us ||
      memcmp(ev->workflow_uuid, o->workflow_uuid, 16) != 0 ||
      !json_equal(ev->kind == FC_EVENT_NODE_END || ev->kind == FC_EVENT_WORKFLOW_END
                      ? ev->output
                      : ev->input,
                  c->orig->payload[c->n - 1]))
    c->wrong++;
  if (o->error != NULL && (ev->error == NULL || strcmp(ev->error->message, "exit 1") != 0 ||
                           strcmp(ev->error->stack_trace, "tail of stderr") != 0))
    c->wrong++;
  if (o->status_counts != NULL &&
      (ev->status_counts == NULL || ev->status_counts[FC_NODE_COMPLETED] != 5))
    c->wrong++;
  return 0;
}

static void copycheck_destroy(void *self) {
  copycheck_t *c = self;
  c->destroyed++;
}

static fc_handler_t copycheck_handler(copycheck_t *c) {
  fc_handler_t h;
  memset(&h, 0, sizeof h);
  h.name = "copycheck";
  h.self = c;
  h.on_workflow_start = h.on_workflow_end = h.on_node_start = h.on_node_end = h.on_error =
      copycheck_cb;
  h.destroy = copycheck_destroy;
  return h;
}

/* Block policy with a tiny queue: the producer waits for room, nothing is
 * lost, everything arrives in order as private deep copies, off the loop
 * thread. */
static void test_in_order_deep_copies(void **state) {
  static stream_t s;
  copycheck_t c;
  fc_handler_t inner, h;
  fc_async_t *a;
  fc_async_options_t o;
  fc_async_stats_t r;
  int i;
  (void)state;
  stream_init(&s);
  memset(&c, 0, sizeof c);
  c.orig = &s;
  c.loop_thread = uv_thread_self();
  inner = copycheck_handler(&c);
  memset(&o, 0, sizeof o);
  o.queue_capacity = 4;
  o.policy = FC_ASYNC_BLOCK;
  assert_int_equal(fc_async_handler_owned(&inner, &o, &a, &h), 0);
  assert_string_equal(h.name, "async");
  for (i = 0; i < NEVENTS; i++)
    assert_int_equal(fc_handler_call(&h, &s.ev[i]), 0);
  assert_int_equal(fc_async_close(a, 10000, &r), 0);
  assert_int_equal(c.destroyed, 1); /* close destroyed inner */
  assert_int_equal(r.received, NEVENTS);
  assert_int_equal(r.queued, NEVENTS);
  assert_int_equal(r.delivered, NEVENTS);
  assert_int_equal(r.dropped, 0);
  assert_int_equal(r.abandoned, 0);
  assert_int_equal(r.failed, 0);
  assert_int_equal(r.queue_depth, 0);
  assert_true(r.queue_high_water >= 1 && r.queue_high_water <= 4);
  assert_int_equal(c.n, NEVENTS);
  assert_int_equal(c.shared, 0);
  assert_int_equal(c.wrong, 0);
  assert_int_equal(c.on_loop, 0);
  /* after close the handler refuses events; its destroy frees the rest */
  assert_int_equal(fc_handler_call(&h, &s.ev[0]), FC_ESTATE);
  fc_handler_destroy(&h);
  assert_int_equal(c.destroyed, 1);
  stream_free(&s);
}

/* ---- gate: a handler that holds the worker ------------------------------- */

typedef struct {
  uv_sem_t entered; /* posted when a call begins */
  uv_sem_t gate;    /* each call waits for one post (if gated) */
  int gated;
  unsigned first_sleep_ms; /* the first call sleeps this long */
  atomic_int calls;
  int fail_with;
  int destroyed;
} gate_t;

static int gate_cb(void *self, const fc_event_t *ev) {
  gate_t *g = self;
  int n = atomic_fetch_add(&g->calls, 1);
  (void)ev;
  uv_sem_post(&g->entered);
  if (g->gated)
    uv_sem_wait(&g->gate);
  if (n == 0 && g->first_sleep_ms > 0)
    uv_sleep(g->first_sleep_ms);
  return g->fail_with;
}

static void gate_destroy(void *self) {
  gate_t *g = self;
  g->destroyed++;
}

static fc_handler_t gate_handler(gate_t *g) {
  fc_handler_t h;
  memset(g, 0, sizeof *g);
  assert_int_equal(uv_sem_init(&g->entered, 0), 0);
  assert_int_equal(uv_sem_init(&g->gate, 0), 0);
  atomic_init(&g->calls, 0);
  memset(&h, 0, sizeof h);
  h.name = "gate";
  h.self = g;
  h.on_node_start = gate_cb;
  h.on_node_end = gate_cb;
  h.destroy = gate_destroy;
  return h;
}

static void gate_free(gate_t *g) {
  uv_sem_destroy(&g->entered);
  uv_sem_destroy(&g->gate);
}

static fc_event_t node_event(fc_event_kind_t kind, const char *node) {
  fc_event_t e;
  memset(&e, 0, sizeof e);
  e.kind = kind;
  e.workflow_id = WF;
  e.workflow_name = "wf";
  e.node_id = node;
  e.attempt = 1;
  return e;
}

/* Drop policy, queue of 2: with the worker held inside the first event,
 * exactly 2 of the next 10 are queued and 8 dropped. Only the kinds the
 * wrapped handler handles are taken at all. */
static void test_drop_policy_exact(void **state) {
  gate_t g;
  fc_handler_t inner, h;
  fc_async_t *a;
  fc_async_options_t o;
  fc_async_stats_t st, r;
  fc_event_t ev = node_event(FC_EVENT_NODE_START, "x");
  int i;
  (void)state;
  inner = gate_handler(&g);
  g.gated = 1;
  memset(&o, 0, sizeof o);
  o.queue_capacity = 2;
  o.policy = FC_ASYNC_DROP;
  assert_int_equal(fc_async_handler_owned(&inner, &o, &a, &h), 0);
  assert_null(h.on_workflow_start); /* gate handles node events only */
  assert_null(h.on_error);
  assert_non_null(h.on_node_start);

  assert_int_equal(fc_handler_call(&h, &ev), 0);
  uv_sem_wait(&g.entered); /* the worker holds event 1; the queue is empty */
  for (i = 0; i < 10; i++)
    assert_int_equal(fc_handler_call(&h, &ev), 0); /* a policy drop is no error */
  fc_async_stats(a, &st);
  assert_int_equal(st.received, 11);
  assert_int_equal(st.queued, 3);
  assert_int_equal(st.dropped, 8);
  assert_int_equal(st.dropped_nomem, 0);
  assert_int_equal(st.queue_depth, 2);
  assert_int_equal(st.delivered, 0);

  for (i = 0; i < 3; i++)
    uv_sem_post(&g.gate);
  assert_int_equal(fc_async_close(a, 10000, &r), 0);
  assert_int_equal(r.received, 11);
  assert_int_equal(r.delivered, 3);
  assert_int_equal(r.dropped, 8);
  assert_int_equal(r.abandoned, 0);
  assert_int_equal(r.delivered + r.dropped + r.abandoned, r.received);
  assert_int_equal(atomic_load(&g.calls), 3);
  assert_int_equal(g.destroyed, 1);
  fc_handler_destroy(&h);
  gate_free(&g);
}

/* The deadline passes while the worker is inside a 300 ms call: that call
 * completes (delivered), the 5 events behind it are abandoned, exactly. */
static void test_close_deadline_abandons_exact(void **state) {
  gate_t g;
  fc_handler_t inner, h;
  fc_async_t *a;
  fc_async_stats_t r;
  fc_event_t ev = node_event(FC_EVENT_NODE_END, "y");
  int i;
  (void)state;
  inner = gate_handler(&g);
  g.first_sleep_ms = 300;
  assert_int_equal(fc_async_handler_owned(&inner, NULL, &a, &h), 0);
  assert_int_equal(fc_handler_call(&h, &ev), 0);
  uv_sem_wait(&g.entered);
  for (i = 0; i < 5; i++)
    assert_int_equal(fc_handler_call(&h, &ev), 0);
  assert_int_equal(fc_async_close(a, 20, &r), FC_ETIMEDOUT);
  assert_int_equal(r.received, 6);
  assert_int_equal(r.delivered, 1);
  assert_int_equal(r.abandoned, 5);
  assert_int_equal(r.dropped, 0);
  assert_int_equal(atomic_load(&g.calls), 1);
  assert_int_equal(g.destroyed, 1);
  fc_handler_destroy(&h);
  gate_free(&g);
}

/* fc_async_handler borrows inner: close delivers to it but leaves it to the
 * caller, also when the constructor fails; the options' defaults work. */
static void test_borrowed_inner(void **state) {
  gate_t g;
  fc_handler_t inner, h;
  fc_async_t *a;
  fc_async_options_t o;
  fc_async_stats_t r;
  fc_event_t ev = node_event(FC_EVENT_NODE_END, "b");
  (void)state;
  fc_async_options_init(&o);
  assert_int_equal(o.queue_capacity, FC_ASYNC_DEFAULT_CAPACITY);
  assert_int_equal(o.policy, FC_ASYNC_BLOCK);
  inner = gate_handler(&g);
  assert_int_equal(fc_async_handler(&inner, &o, &a, &h), 0);
  assert_int_equal(fc_handler_call(&h, &ev), 0);
  assert_int_equal(fc_async_close(a, 1000, &r), 0);
  assert_int_equal(r.delivered, 1);
  assert_int_equal(atomic_load(&g.calls), 1);
  assert_int_equal(g.destroyed, 0); /* borrowed: close leaves it */
  fc_handler_destroy(&h);
  assert_int_equal(g.destroyed, 0);
  o.policy = (fc_async_policy_t)5;
  assert_int_equal(fc_async_handler(&inner, &o, &a, &h), FC_EINVAL);
  assert_int_equal(g.destroyed, 0); /* not even on failure */
  fc_handler_destroy(&inner);
  assert_int_equal(g.destroyed, 1);
  gate_free(&g);
}

/* What the wrapped handler returns is counted, not propagated. */
static void test_inner_failures_counted(void **state) {
  gate_t g;
  fc_handler_t inner, h;
  fc_async_t *a;
  fc_async_stats_t r;
  fc_event_t ev = node_event(FC_EVENT_NODE_START, "z");
  fc_manager_t *m;
  int i;
  (void)state;
  inner = gate_handler(&g);
  g.fail_with = FC_EDB;
  assert_int_equal(fc_async_handler_owned(&inner, NULL, &a, &h), 0);
  assert_int_equal(fc_manager_new(&m), 0);
  assert_int_equal(fc_manager_add(m, &h, 0, NULL), 0);
  for (i = 0; i < 7; i++)
    assert_int_equal(fc_manager_dispatch(m, &ev), 0);
  /* the manager goes first this time: the async object outlives it */
  fc_manager_free(m);
  assert_int_equal(g.destroyed, 0); /* inner is destroyed by close */
  assert_int_equal(fc_async_close(a, 10000, &r), 0);
  assert_int_equal(r.delivered, 7);
  assert_int_equal(r.failed, 7);
  assert_int_equal(r.last_error, FC_EDB);
  assert_int_equal(g.destroyed, 1);
  gate_free(&g);
}

/* No memory for a copy: FC_ENOMEM to the manager, counted as dropped. */
static void test_copy_failure_counted(void **state) {
  gate_t g;
  fc_handler_t inner, h;
  fc_async_t *a;
  fc_async_stats_t r;
  fc_event_t ev = node_event(FC_EVENT_NODE_START, "z");
  (void)state;
  inner = gate_handler(&g);
  assert_int_equal(fc_async_handler_owned(&inner, NULL, &a, &h), 0);
  assert_int_equal(fc_handler_call(&h, &ev), 0);
  fc__handlers_fail_countdown = 1;
  assert_int_equal(fc_handler_call(&h, &ev), FC_ENOMEM);
  fc__handlers_fail_countdown = 0;
  assert_int_equal(fc_handler_call(&h, &ev), 0);
  assert_int_equal(fc_async_close(a, 10000, &r), 0);
  assert_int_equal(r.received, 3);
  assert_int_equal(r.delivered, 2);
  assert_int_equal(r.dropped, 1);
  assert_int_equal(r.dropped_nomem, 1);
  fc_handler_destroy(&h);
  gate_free(&g);
}

/* The wrapped handler is destroyed exactly once, also when the constructor
 * fails (bad options, injected allocation failures). */
static void test_ownership(void **state) {
  gate_t g;
  fc_handler_t inner, h;
  fc_async_t *a;
  fc_async_options_t o;
  long k;
  int rc, failures = 0;
  (void)state;

  memset(&o, 0, sizeof o);
  o.policy = (fc_async_policy_t)5;
  inner = gate_handler(&g);
  assert_int_equal(fc_async_handler_owned(&inner, &o, &a, &h), FC_EINVAL);
  assert_null(a);
  assert_null(h.self);
  assert_int_equal(g.destroyed, 1);
  gate_free(&g);

  o.policy = FC_ASYNC_DROP;
  o.queue_capacity = (size_t)FC_ASYNC_MAX_CAPACITY + 1;
  inner = gate_handler(&g);
  assert_int_equal(fc_async_handler_owned(&inner, &o, &a, &h), FC_EINVAL);
  assert_int_equal(g.destroyed, 1);
  gate_free(&g);

  inner = gate_handler(&g);
  assert_int_equal(fc_async_handler_owned(&inner, NULL, NULL, &h), FC_EINVAL);
  assert_int_equal(g.destroyed, 1);
  gate_free(&g);
  assert_int_equal(fc_async_handler_owned(NULL, NULL, &a, &h), FC_EINVAL);

  for (k = 1;; k++) {
    inner = gate_handler(&g);
    fc__handlers_fail_countdown = k;
    rc = fc_async_handler_owned(&inner, NULL, &a, &h);
    fc__handlers_fail_countdown = 0;
    if (rc == 0) {
      assert_int_equal(g.destroyed, 0);
      fc_handler_destroy(&h); /* handler first, close second */
      assert_int_equal(fc_async_close(a, 1000, NULL), 0);
      assert_int_equal(g.destroyed, 1);
      gate_free(&g);
      break;
    }
    failures++;
    assert_int_equal(rc, FC_ENOMEM);
    assert_int_equal(g.destroyed, 1);
    gate_free(&g);
    assert_true(k < 10);
  }
  assert_int_equal(failures, 2); /* the object and its ring */

  assert_string_equal(fc_async_policy_name(FC_ASYNC_BLOCK), "block");
  assert_string_equal(fc_async_policy_name(FC_ASYNC_DROP), "drop");
  {
    fc_async_policy_t p;
    assert_int_equal(fc_async_policy_parse("drop", &p), 0);
    assert_int_equal(p, FC_ASYNC_DROP);
    assert_int_equal(fc_async_policy_parse("spool", &p), FC_EINVAL);
  }
}

/* ---- a slow handler and a 1,000-node workflow ---------------------------- */

#define BIG_NODES 1000
#define BIG_EVENTS (2 + 2 * BIG_NODES)

typedef struct {
  atomic_int seen;
  atomic_int saw_workflow_end;
} slow_t;

static int slow_cb(void *self, const fc_event_t *ev) {
  slow_t *s = self;
  uv_sleep(50);
  if (ev->kind == FC_EVENT_WORKFLOW_END)
    atomic_store(&s->saw_workflow_end, 1);
  atomic_fetch_add(&s->seen, 1);
  return 0;
}

typedef struct {
  fc_async_t *a;
  slow_t *slow;
  fc_recorder_t *rec;
  int done;
  int slow_seen_at_done;
  int slow_saw_end_at_done;
  size_t engine_events_at_done;
  size_t engine_ends_at_done;
  fc_async_stats_t stats_at_done;
} big_t;

static void big_done(fc_run_t *run, void *data) {
  big_t *b = data;
  (void)run;
  b->done++;
  b->slow_seen_at_done = atomic_load(&b->slow->seen);
  b->slow_saw_end_at_done = atomic_load(&b->slow->saw_workflow_end);
  b->engine_events_at_done = fc_recorder_size(b->rec);
  b->engine_ends_at_done = fc_recorder_count(b->rec, FC_EVENT_WORKFLOW_END, NULL);
  fc_async_stats(b->a, &b->stats_at_done);
}

static void node_ok(fc_node_ctx_t *ctx, void *user_data) {
  (void)user_data;
  fc_node_succeed(ctx, json_integer(1));
}

static void test_slow_handler_does_not_delay_workflow(void **state) {
  uv_loop_t loop;
  fc_workflow_t *wf;
  fc_manager_t *m;
  fc_recorder_t *rec;
  fc_run_t *run;
  fc_handler_t inner, h;
  fc_async_options_t o;
  fc_async_stats_t r;
  slow_t slow;
  big_t b;
  char id[16];
  int i, rc;
  (void)state;

  assert_int_equal(fc_workflow_new(&wf, "big"), 0);
  for (i = 0; i < BIG_NODES; i++) {
    snprintf(id, sizeof id, "n%d", i);
    assert_int_equal(fc_workflow_add_node(wf, id, node_ok, NULL, NULL), 0);
  }
  assert_int_equal(fc_workflow_validate(wf, NULL), 0);

  atomic_init(&slow.seen, 0);
  atomic_init(&slow.saw_workflow_end, 0);
  memset(&inner, 0, sizeof inner);
  inner.name = "slow";
  inner.self = &slow;
  inner.on_workflow_start = inner.on_workflow_end = inner.on_node_start = inner.on_node_end =
      inner.on_error = slow_cb;
  memset(&o, 0, sizeof o);
  o.queue_capacity = 4096; /* room for the whole run: the engine never waits */
  o.policy = FC_ASYNC_BLOCK;

  memset(&b, 0, sizeof b);
  b.slow = &slow;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(fc_manager_new(&m), 0);
  assert_int_equal(fc_recorder_new(&rec), 0);
  b.rec = rec;
  assert_int_equal(fc_async_handler_owned(&inner, &o, &b.a, &h), 0);
  assert_int_equal(fc_manager_add(m, &h, 0, NULL), 0);
  assert_int_equal(fc_recorder_handler(rec, &h), 0); /* the engine side */
  assert_int_equal(fc_manager_add(m, &h, 0, NULL), 0);

  assert_int_equal(fc_run_new(&run, &loop, wf, m, NULL), 0);
  assert_int_equal(fc_run_start(run, NULL, big_done, &b), 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(b.done, 1);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_COMPLETED);

  /* When the run was done, the engine side had every event, workflow_end
   * included, and every event was already queued for the slow handler
   * (none waited, none dropped) -- while the slow handler had seen only a
   * few and not workflow_end: it did not set the engine's pace. */
  assert_int_equal(b.engine_events_at_done, BIG_EVENTS);
  assert_int_equal(b.engine_ends_at_done, 1);
  assert_int_equal(b.stats_at_done.received, BIG_EVENTS);
  assert_int_equal(b.stats_at_done.queued, BIG_EVENTS);
  assert_int_equal(b.stats_at_done.dropped, 0);
  assert_int_equal(b.slow_saw_end_at_done, 0);
  if (b.slow_seen_at_done >= BIG_EVENTS / 10)
    fail_msg("the slow handler had seen %d of %d events when the run was done",
             b.slow_seen_at_done, BIG_EVENTS);

  fc_run_close(run, NULL, NULL);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);

  /* Close drains for 1 s: about 20 more events at 50 ms each; the rest are
   * abandoned, and the report adds up exactly. */
  rc = fc_async_close(b.a, 1000, &r);
  assert_int_equal(rc, FC_ETIMEDOUT);
  print_message("slow handler: %d of %d events seen at done_cb; close: delivered %llu, "
                "dropped %llu, abandoned %llu\n",
                b.slow_seen_at_done, BIG_EVENTS, (unsigned long long)r.delivered,
                (unsigned long long)r.dropped, (unsigned long long)r.abandoned);
  assert_int_equal(r.received, BIG_EVENTS);
  assert_int_equal(r.delivered + r.dropped + r.abandoned, BIG_EVENTS);
  assert_int_equal(r.dropped, 0);
  assert_true(r.abandoned > 0);
  assert_int_equal(r.delivered, (uint64_t)atomic_load(&slow.seen));
  assert_true(r.delivered >= (uint64_t)b.slow_seen_at_done);
  assert_int_equal(atomic_load(&slow.saw_workflow_end), 0);

  fc_manager_free(m);
  fc_recorder_free(rec);
  fc_test_loop_close(&loop);
  fc_workflow_free(wf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_in_order_deep_copies),
      cmocka_unit_test(test_drop_policy_exact),
      cmocka_unit_test(test_close_deadline_abandons_exact),
      cmocka_unit_test(test_inner_failures_counted),
      cmocka_unit_test(test_copy_failure_counted),
      cmocka_unit_test(test_ownership),
      cmocka_unit_test(test_borrowed_inner),
      cmocka_unit_test(test_slow_handler_does_not_delay_workflow),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

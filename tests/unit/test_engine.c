/* Unit tests: the engine (fc_run_*), written against include/flowcore/run.h,
 * workflow.h, event.h, handler.h and recorder.h.
 *
 * Every test gets its own loop, manager and recorder from env_setup; the
 * teardown closes the loop (asserting uv_loop_close() == 0) before it frees
 * the manager. Node behaviour is described by an nparam_t given as the
 * node's user data and interpreted by fn_generic. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strtok_r */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_test.h"

#define MAX_OBS 8

typedef struct env_s env_t;

/* What a node does, and what it observed. */
typedef struct {
  env_t *e;
  int async;          /* complete from a timer after delay_ms */
  uint64_t delay_ms;
  int fail_first;     /* attempts 1..fail_first fail */
  int hang_first;     /* attempts 1..hang_first never complete on their own */
  int stop_sync;      /* a hung attempt completes inside its stop callback */
  int late_fail;      /* a hung attempt's late completion is a failure */
  uint64_t late_ms;   /* delay of the late completion after the stop */
  const char *route;  /* output {"route": route} */
  int no_route_field; /* routers only: output without "route" */
  /* observations */
  int calls;
  int attempts[MAX_OBS];
  uint64_t start_ns[MAX_OBS];
  int stop_calls;
  fc_node_status_t stop_reason;
  uint64_t stop_ns;
  int late_done;
} nparam_t;

struct env_s {
  uv_loop_t loop;
  fc_manager_t *mgr;
  fc_recorder_t *rec;
  uv_thread_t loop_thread;
  int check_loop;   /* node contexts must report &loop */
  /* run callbacks */
  fc_run_t *run;
  int done_calls;
  int close_calls;
  fc_workflow_status_t status_at_done;
  size_t wf_end_at_done;
  int done_before_close; /* done had fired when close_cb ran */
  int late_at_close;     /* late completions seen when close_cb ran */
  /* node bookkeeping */
  int running, peak, limit, violations;
  int bad_ctx;
  int stopped_input_bad; /* fc_node_ctx_input invalid on a stopped context */
  int late_total;
  int keep_inputs;
  json_t *inputs; /* node id -> deep copy of the last input it got */
  char ctx_wf_id[FC_UUID_STRING_LENGTH];
};

/* ---- environment ----------------------------------------------------------- */

static int env_setup(void **state) {
  env_t *e = calloc(1, sizeof *e);
  assert_non_null(e);
  assert_int_equal(uv_loop_init(&e->loop), 0);
  assert_int_equal(fc_manager_new(&e->mgr), 0);
  assert_int_equal(fc_recorder_new(&e->rec), 0);
  fc_handler_t h;
  assert_int_equal(fc_recorder_handler(e->rec, &h), 0);
  assert_int_equal(fc_manager_add(e->mgr, &h, 0, NULL), 0);
  e->loop_thread = uv_thread_self();
  e->check_loop = 1;
  e->keep_inputs = 1;
  e->inputs = json_object();
  *state = e;
  return 0;
}

static int env_teardown(void **state) {
  env_t *e = *state;
  /* A test that failed half-way may leave its run open. */
  if (e->run != NULL)
    fc_run_close(e->run, NULL, NULL);
  fc_test_loop_close(&e->loop);
  fc_manager_free(e->mgr);
  fc_recorder_free(e->rec);
  json_decref(e->inputs);
  free(e);
  return 0;
}

static void on_done(fc_run_t *run, void *data) {
  env_t *e = data;
  e->done_calls++;
  e->status_at_done = fc_run_status(run);
  e->wf_end_at_done = fc_recorder_count(e->rec, FC_EVENT_WORKFLOW_END, NULL);
}

static void on_close(fc_run_t *run, void *data) {
  env_t *e = data;
  if (e->run == run)
    e->run = NULL;
  e->close_calls++;
  e->done_before_close = e->done_calls;
  e->late_at_close = e->late_total;
}

static fc_run_t *new_run(env_t *e, fc_workflow_t *wf) {
  fc_run_t *run = NULL;
  fc_error_t err;
  fc_error_clear(&err);
  int rc = fc_run_new(&run, &e->loop, wf, e->mgr, &err);
  if (rc != 0)
    fail_msg("fc_run_new: %s (%s)", fc_err_name(rc), err.text);
  assert_non_null(run);
  return run;
}

/* Runs wf to its end on e->loop (max_par < 0: the workflow's setting) and
 * returns the (still open) run. */
static fc_run_t *run_wf(env_t *e, fc_workflow_t *wf, json_t *input, int max_par) {
  fc_run_t *run = new_run(e, wf);
  e->run = run;
  size_t ends_before = fc_recorder_count(e->rec, FC_EVENT_WORKFLOW_END, NULL);
  if (max_par >= 0)
    assert_int_equal(fc_run_set_max_parallel(run, max_par), 0);
  assert_int_equal(fc_run_start(run, input, on_done, e), 0);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(e->done_calls, 1);
  /* done_cb came after this run's workflow_end */
  assert_int_equal(e->wf_end_at_done, ends_before + 1);
  assert_int_equal(e->status_at_done, fc_run_status(run));
  return run;
}

static void assert_stopped_input_ok(const env_t *e) {
  if (e->stopped_input_bad != 0)
    fail_msg("fc_node_ctx_input was not the attempt's input %d time(s) after a "
             "stop, before the completion (the context is valid until then)",
             e->stopped_input_bad);
}

/* Closes the run, runs the loop, checks close_cb fired once after done. */
static void close_run(env_t *e, fc_run_t *run) {
  int done = e->done_calls;
  fc_run_close(run, on_close, e);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(e->close_calls, 1);
  assert_int_equal(e->done_calls, done);
  e->run = NULL;
  assert_int_equal(e->bad_ctx, 0);
  assert_stopped_input_ok(e);
}

static fc_workflow_t *new_wf(const char *name) {
  fc_workflow_t *wf = NULL;
  assert_int_equal(fc_workflow_new(&wf, name), 0);
  return wf;
}

static void add_deps(fc_node_t *n, const char *deps) {
  if (deps == NULL || deps[0] == '\0')
    return;
  char buf[512];
  snprintf(buf, sizeof buf, "%s", deps);
  char *save = NULL;
  for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
    assert_int_equal(fc_node_add_dep(n, t), 0);
}

static void fn_generic(fc_node_ctx_t *ctx, void *user_data);

static fc_node_t *add(fc_workflow_t *wf, const char *id, nparam_t *p, const char *deps) {
  fc_node_t *n = NULL;
  assert_int_equal(fc_workflow_add_node(wf, id, fn_generic, p, &n), 0);
  add_deps(n, deps);
  return n;
}

static void validate(fc_workflow_t *wf) {
  fc_error_t err;
  fc_error_clear(&err);
  int rc = fc_workflow_validate(wf, &err);
  if (rc != 0)
    fail_msg("validate: %s (%s)", fc_err_name(rc), err.text);
}

static size_t idx_of(const fc_workflow_t *wf, const char *id) {
  for (size_t i = 0; i < fc_workflow_node_count(wf); i++)
    if (strcmp(fc_node_id(fc_workflow_node_at(wf, i)), id) == 0)
      return i;
  fail_msg("no node %s", id);
  return 0;
}

static fc_node_status_t node_status(const fc_run_t *run, const char *id) {
  return fc_run_node_status(run, idx_of(fc_run_workflow(run), id));
}

static json_t *node_output(const fc_run_t *run, const char *id) {
  return fc_run_node_output(run, idx_of(fc_run_workflow(run), id));
}

static void assert_json_eq(json_t *a, json_t *b) {
  if (!json_equal(a, b)) {
    char *sa = a ? json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    char *sb = b ? json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    char msg[512];
    snprintf(msg, sizeof msg, "json differs: %.240s vs %.240s", sa ? sa : "NULL",
             sb ? sb : "NULL");
    free(sa);
    free(sb);
    fail_msg("%s", msg);
  }
}

/* The object has exactly these keys (comma-separated). */
static void assert_keys(json_t *obj, const char *keys) {
  assert_non_null(obj);
  assert_true(json_is_object(obj));
  char buf[512];
  snprintf(buf, sizeof buf, "%s", keys);
  size_t n = 0;
  char *save = NULL;
  for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
    if (json_object_get(obj, t) == NULL) {
      char *s = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
      char msg[400];
      snprintf(msg, sizeof msg, "key %s missing in %.300s", t, s ? s : "?");
      free(s);
      fail_msg("%s", msg);
    }
    n++;
  }
  assert_int_equal(json_object_size(obj), n);
}

static void assert_uuid7(const char *s) {
  assert_non_null(s);
  assert_int_equal(strlen(s), 36);
  for (size_t i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-')
        fail_msg("uuid %s: no '-' at %zu", s, i);
    } else if (strchr("0123456789abcdef", s[i]) == NULL || s[i] == '\0') {
      fail_msg("uuid %s: bad character at %zu", s, i);
    }
  }
  if (s[14] != '7')
    fail_msg("uuid %s: version nibble is not 7", s);
  if (strchr("89ab", s[19]) == NULL)
    fail_msg("uuid %s: variant nibble is not 8/9/a/b", s);
}

static void assert_contract(const fc_recorder_t *r) {
  fc_assert_contract(r);
  size_t n = fc_recorder_size(r);
  assert_true(n >= 2);
  assert_int_equal(fc_recorder_at(r, 0)->kind, FC_EVENT_WORKFLOW_START);
  assert_int_equal(fc_recorder_at(r, n - 1)->kind, FC_EVENT_WORKFLOW_END);
}

/* The single node_end of a node that never ran. */
static void assert_never_ran(const fc_recorder_t *r, const char *id,
                             fc_node_status_t status) {
  fc_assert_node_called(r, FC_EVENT_NODE_START, id, 0);
  fc_assert_node_called(r, FC_EVENT_NODE_END, id, 1);
  const fc_recorded_event_t *ev = fc_recorder_last(r, FC_EVENT_NODE_END, id);
  assert_non_null(ev);
  if (ev->status != (int)status)
    fail_msg("node %s ended %s, expected %s", id,
             fc_node_status_name((fc_node_status_t)ev->status), fc_node_status_name(status));
  assert_int_equal(ev->attempt, 0);
}

static void assert_last_end(const fc_recorder_t *r, const char *id,
                            fc_node_status_t status, int attempt) {
  const fc_recorded_event_t *ev = fc_recorder_last(r, FC_EVENT_NODE_END, id);
  assert_non_null(ev);
  if (ev->status != (int)status)
    fail_msg("node %s ended %s, expected %s", id,
             fc_node_status_name((fc_node_status_t)ev->status), fc_node_status_name(status));
  assert_int_equal(ev->attempt, attempt);
}

static void assert_wf_end(const fc_recorder_t *r, fc_workflow_status_t status) {
  const fc_recorded_event_t *ev = fc_recorder_last(r, FC_EVENT_WORKFLOW_END, NULL);
  assert_non_null(ev);
  if (ev->status != (int)status)
    fail_msg("workflow ended %s, expected %s",
             fc_workflow_status_name((fc_workflow_status_t)ev->status),
             fc_workflow_status_name(status));
}

/* ---- the generic node ------------------------------------------------------ */

enum { DO_SUCCEED, DO_FAIL, DO_LATE };

typedef struct {
  uv_timer_t timer;
  fc_node_ctx_t *ctx;
  nparam_t *p;
  int what;
} pending_t;

static void pending_closed(uv_handle_t *h) { free(h->data); }

static json_t *make_output(nparam_t *p, fc_node_ctx_t *ctx) {
  json_t *out = json_object();
  json_object_set_new(out, "id", json_string(fc_node_ctx_node_id(ctx)));
  json_object_set_new(out, "attempt", json_integer(fc_node_ctx_attempt(ctx)));
  json_t *v = json_object_get(json_object_get(fc_node_ctx_input(ctx), "input"), "v");
  if (v != NULL)
    json_object_set_new(out, "v", json_deep_copy(v));
  if (p->route != NULL && !p->no_route_field)
    json_object_set_new(out, "route", json_string(p->route));
  return out;
}

static void complete(nparam_t *p, fc_node_ctx_t *ctx, int what) {
  if (what == DO_FAIL) {
    fc_node_failf(ctx, FC_SEVERITY_ERROR, "test_failure", "attempt %d of %s failed",
                  fc_node_ctx_attempt(ctx), fc_node_ctx_node_id(ctx));
  } else if (what == DO_LATE) {
    p->late_done++;
    p->e->late_total++;
    if (p->late_fail)
      fc_node_failf(ctx, FC_SEVERITY_ERROR, "late_failure", "late failure of %s",
                    fc_node_ctx_node_id(ctx));
    else
      fc_node_succeed(ctx, json_pack("{s:b}", "late", 1));
  } else {
    fc_node_succeed(ctx, make_output(p, ctx));
  }
}

static void pending_fire(uv_timer_t *t) {
  pending_t *pd = t->data;
  nparam_t *p = pd->p;
  fc_node_ctx_t *ctx = pd->ctx;
  uv_close((uv_handle_t *)t, pending_closed);
  if (pd->what == DO_LATE) {
    /* Still stopped, still valid until the completion. */
    if (fc_node_ctx_stopped(ctx) != p->stop_reason)
      p->e->bad_ctx++;
    if (!json_is_object(fc_node_ctx_input(ctx)) ||
        json_object_get(fc_node_ctx_input(ctx), "input") == NULL)
      p->e->stopped_input_bad++;
  } else {
    p->e->running--;
  }
  complete(p, ctx, pd->what);
}

static void schedule(nparam_t *p, fc_node_ctx_t *ctx, int what, uint64_t ms) {
  pending_t *pd = calloc(1, sizeof *pd);
  assert_non_null(pd);
  pd->ctx = ctx;
  pd->p = p;
  pd->what = what;
  pd->timer.data = pd;
  assert_int_equal(uv_timer_init(fc_node_ctx_loop(ctx), &pd->timer), 0);
  assert_int_equal(uv_timer_start(&pd->timer, pending_fire, ms, 0), 0);
}

static void on_stop(fc_node_ctx_t *ctx, fc_node_status_t reason, void *data) {
  nparam_t *p = data;
  p->stop_calls++;
  p->stop_reason = reason;
  p->stop_ns = uv_hrtime();
  if (fc_node_ctx_stopped(ctx) != reason)
    p->e->bad_ctx++;
  if (!json_is_object(fc_node_ctx_input(ctx)) ||
      json_object_get(fc_node_ctx_input(ctx), "input") == NULL)
    p->e->stopped_input_bad++;
  p->e->running--;
  if (p->stop_sync)
    complete(p, ctx, DO_LATE);
  else
    schedule(p, ctx, DO_LATE, p->late_ms);
}

static void check_ctx(env_t *e, fc_node_ctx_t *ctx, void *user_data) {
  const fc_node_t *n = fc_node_ctx_node(ctx);
  if (n == NULL || strcmp(fc_node_id(n), fc_node_ctx_node_id(ctx)) != 0)
    e->bad_ctx++;
  if (fc_node_ctx_user_data(ctx) != user_data)
    e->bad_ctx++;
  if (e->check_loop && fc_node_ctx_loop(ctx) != &e->loop)
    e->bad_ctx++;
  if (fc_node_ctx_stopped(ctx) != 0)
    e->bad_ctx++;
  if (fc_node_ctx_attempt(ctx) < 1)
    e->bad_ctx++;
  const char *wid = fc_node_ctx_workflow_id(ctx);
  if (wid == NULL || strlen(wid) != 36)
    e->bad_ctx++;
  else
    memcpy(e->ctx_wf_id, wid, sizeof e->ctx_wf_id);
  if (!json_is_object(fc_node_ctx_input(ctx)) ||
      json_object_get(fc_node_ctx_input(ctx), "input") == NULL)
    e->bad_ctx++;
  if (!uv_thread_equal(&e->loop_thread, &(uv_thread_t){uv_thread_self()}))
    e->bad_ctx++;
}

static void fn_generic(fc_node_ctx_t *ctx, void *user_data) {
  nparam_t *p = user_data;
  env_t *e = p->e;
  int attempt = fc_node_ctx_attempt(ctx);
  check_ctx(e, ctx, user_data);
  if (p->calls < MAX_OBS) {
    p->attempts[p->calls] = attempt;
    p->start_ns[p->calls] = uv_hrtime();
  }
  p->calls++;
  e->running++;
  if (e->running > e->peak)
    e->peak = e->running;
  if (e->limit > 0 && e->running > e->limit)
    e->violations++;
  if (e->keep_inputs)
    json_object_set_new(e->inputs, fc_node_ctx_node_id(ctx),
                        json_deep_copy(fc_node_ctx_input(ctx)));

  if (attempt <= p->hang_first) {
    fc_node_ctx_on_stop(ctx, on_stop, p);
    return;
  }
  int what = attempt <= p->fail_first ? DO_FAIL : DO_SUCCEED;
  if (p->async) {
    schedule(p, ctx, what, p->delay_ms);
  } else {
    e->running--;
    complete(p, ctx, what);
  }
}

/* ---- basic runs ------------------------------------------------------------ */

/* a -> b, c -> d (plus e after a): inputs and the workflow output. */
static void test_diamond(void **state) {
  env_t *e = *state;
  nparam_t p = {.e = e};
  fc_workflow_t *wf = new_wf("diamond");
  add(wf, "a", &p, NULL);
  add(wf, "b", &p, "a");
  add(wf, "c", &p, "a");
  add(wf, "d", &p, "b,c");
  add(wf, "e", &p, "a");
  json_t *input = json_pack("{s:s, s:i}", "k", "v", "n", 3);
  fc_run_t *run = run_wf(e, wf, input, -1);

  assert_int_equal(fc_run_status(run), FC_WORKFLOW_COMPLETED);
  assert_int_equal(p.calls, 5);
  static const char *const ids[] = {"a", "b", "c", "d", "e"};
  for (size_t i = 0; i < 5; i++) {
    assert_int_equal(node_status(run, ids[i]), FC_NODE_COMPLETED);
    assert_int_equal(fc_run_node_attempts(run, i), 1);
    json_t *out = node_output(run, ids[i]);
    assert_non_null(out);
    assert_string_equal(json_string_value(json_object_get(out, "id")), ids[i]);
  }
  json_t *d_in = json_object_get(e->inputs, "d");
  assert_keys(d_in, "input,b,c");
  assert_json_eq(json_object_get(d_in, "input"), input);
  assert_json_eq(json_object_get(d_in, "b"), node_output(run, "b"));
  assert_json_eq(json_object_get(d_in, "c"), node_output(run, "c"));
  json_t *b_in = json_object_get(e->inputs, "b");
  assert_keys(b_in, "input,a");
  assert_json_eq(json_object_get(b_in, "a"), node_output(run, "a"));
  assert_keys(json_object_get(e->inputs, "a"), "input");

  /* Workflow output: completed sinks by id. */
  json_t *out = fc_run_output(run);
  assert_keys(out, "d,e");
  assert_json_eq(json_object_get(out, "d"), node_output(run, "d"));
  assert_json_eq(json_object_get(out, "e"), node_output(run, "e"));

  /* Order: d starts after both b and c ended. */
  const fc_event_kind_t k[] = {FC_EVENT_NODE_END, FC_EVENT_NODE_START};
  const char *const n1[] = {"b", "d"};
  const char *const n2[] = {"c", "d"};
  const char *const n3[] = {"a", "b"};
  fc_assert_in_order(e->rec, k, n1, 2);
  fc_assert_in_order(e->rec, k, n2, 2);
  fc_assert_in_order(e->rec, k, n3, 2);
  assert_contract(e->rec);
  fc_assert_called(e->rec, FC_EVENT_NODE_START, 5);
  fc_assert_called(e->rec, FC_EVENT_NODE_END, 5);
  fc_assert_called(e->rec, FC_EVENT_ERROR, 0);
  assert_int_equal(fc_run_error_count(run), 0);
  /* The workflow_end event carries the output. */
  assert_json_eq(fc_recorder_last(e->rec, FC_EVENT_WORKFLOW_END, NULL)->output, out);
  close_run(e, run);
  json_decref(input);
  fc_workflow_free(wf);
}

static void test_fan_out_1000(void **state) {
  env_t *e = *state;
  enum { N = 1000 };
  nparam_t p = {.e = e};
  fc_workflow_t *wf = new_wf("fan out");
  add(wf, "root", &p, NULL);
  fc_node_t *join = add(wf, "join", &p, NULL);
  char id[16];
  for (int i = 0; i < N; i++) {
    snprintf(id, sizeof id, "c%04d", i);
    add(wf, id, &p, "root");
    assert_int_equal(fc_node_add_dep(join, id), 0);
  }
  validate(wf);
  fc_run_t *run = run_wf(e, wf, NULL, -1);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_COMPLETED);
  assert_int_equal(p.calls, N + 2);
  json_t *jin = json_object_get(e->inputs, "join");
  assert_non_null(jin);
  assert_int_equal(json_object_size(jin), N + 1);
  assert_non_null(json_object_get(jin, "input"));
  for (int i = 0; i < N; i++) {
    snprintf(id, sizeof id, "c%04d", i);
    json_t *v = json_object_get(jin, id);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "id")), id);
    assert_keys(json_object_get(e->inputs, id), "input,root");
    assert_int_equal(node_status(run, id), FC_NODE_COMPLETED);
  }
  assert_keys(fc_run_output(run), "join");
  fc_assert_called(e->rec, FC_EVENT_NODE_START, N + 2);
  fc_assert_called(e->rec, FC_EVENT_NODE_END, N + 2);
  assert_int_equal(fc_recorder_count_status(e->rec, NULL, FC_NODE_COMPLETED), N + 2);
  /* join starts after the last child ends. */
  const fc_event_kind_t k[] = {FC_EVENT_NODE_END, FC_EVENT_NODE_START};
  const char *const nodes[] = {"c0999", "join"};
  fc_assert_in_order(e->rec, k, nodes, 2);
  assert_contract(e->rec);
  close_run(e, run);
  fc_workflow_free(wf);
}

/* The keys of the object, in its order, comma-separated. */
static void key_order(json_t *obj, char *buf, size_t size) {
  const char *key;
  json_t *v;
  size_t used = 0;
  buf[0] = '\0';
  json_object_foreach (obj, key, v)
    used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? "," : "", key);
}

/* A node's input lists its predecessors in the order they were added to
 * the workflow, whatever the order of its dependencies, with or without
 * routes in the workflow (validation builds the lists two ways). */
static void test_input_order(void **state) {
  env_t *e = *state;
  for (int routed = 0; routed < 2; routed++) {
    nparam_t p = {.e = e}, pr = {.e = e, .route = "go"};
    fc_workflow_t *wf = new_wf("order");
    char keys[128];
    add(wf, "a", &p, NULL);
    add(wf, "b", &p, NULL);
    add(wf, "c", &p, NULL);
    add(wf, "z", &p, "c,a,b");
    add(wf, "y", &p, "b,c,a");
    if (routed) {
      fc_node_t *r = add(wf, "r", &pr, "c");
      add(wf, "x", &p, "b");
      assert_int_equal(fc_node_add_route(r, "go", "x"), 0);
    }
    e->done_calls = 0;
    fc_run_t *run = run_wf(e, wf, NULL, -1);
    assert_int_equal(fc_run_status(run), FC_WORKFLOW_COMPLETED);
    key_order(json_object_get(e->inputs, "z"), keys, sizeof keys);
    assert_string_equal(keys, "input,a,b,c");
    key_order(json_object_get(e->inputs, "y"), keys, sizeof keys);
    assert_string_equal(keys, "input,a,b,c");
    if (routed) {
      key_order(json_object_get(e->inputs, "x"), keys, sizeof keys);
      assert_string_equal(keys, "input,b,r");
    }
    close_run(e, run);
    e->close_calls = 0;
    fc_workflow_free(wf);
  }
}

/* ---- fc_run_set_keep_outputs(run, 0) ---------------------------------------------- */

/* A node that notes, when it starts, whether node `watch` still has an
 * output in the run and whether node `other` has ended. */
typedef struct {
  env_t *e;
  size_t watch, other;
  int seen, had_output, other_ended;
} probe_t;

static void fn_probe(fc_node_ctx_t *ctx, void *user_data) {
  probe_t *p = user_data;
  p->seen++;
  p->had_output = fc_run_node_output(p->e->run, p->watch) != NULL;
  p->other_ended = fc_run_node_status(p->e->run, p->other) != FC_NODE_PENDING;
  fc_node_succeed(ctx, json_pack("{s:s}", "id", fc_node_ctx_node_id(ctx)));
}

/* a -> b -> c (c probes a), a -> d, router r -> x (taken), r -> y
 * (skipped). Released: an output once all its node's successors have a
 * final status, whatever that status; kept: those of nodes without
 * successors (the workflow's output) and every one with keep = 1. */
static void run_release(env_t *e, int keep) {
  fc_workflow_t *wf = new_wf("release");
  nparam_t pa = {.e = e}, pb = {.e = e}, pd = {.e = e}, px = {.e = e}, py = {.e = e};
  nparam_t pr = {.e = e, .route = "take"};
  probe_t probe = {.e = e};
  fc_node_t *c = NULL, *r;
  add(wf, "a", &pa, NULL);
  add(wf, "b", &pb, "a");
  assert_int_equal(fc_workflow_add_node(wf, "c", fn_probe, &probe, &c), 0);
  add_deps(c, "b");
  add(wf, "d", &pd, "a");
  r = add(wf, "r", &pr, NULL);
  add(wf, "x", &px, NULL);
  add(wf, "y", &py, NULL);
  assert_int_equal(fc_node_add_route(r, "take", "x"), 0);
  assert_int_equal(fc_node_add_route(r, "leave", "y"), 0);
  validate(wf);
  probe.watch = idx_of(wf, "a");
  probe.other = idx_of(wf, "d");

  fc_run_t *run = new_run(e, wf);
  e->run = run;
  assert_int_equal(fc_run_set_keep_outputs(NULL, 0), FC_EINVAL);
  if (!keep)
    assert_int_equal(fc_run_set_keep_outputs(run, 0), 0);
  assert_int_equal(fc_run_start(run, NULL, on_done, e), 0);
  assert_int_equal(fc_run_set_keep_outputs(run, 1), FC_ESTATE);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_COMPLETED);
  assert_int_equal(node_status(run, "y"), FC_NODE_SKIPPED);
  assert_int_equal(probe.seen, 1);
  /* Ready nodes start in order, so d (ready with b) ended before c
   * started: both successors of a had ended, a was released. */
  assert_true(probe.other_ended);
  assert_int_equal(probe.had_output, keep);
  const char *inner[] = {"a", "b", "r"};
  for (size_t i = 0; i < 3; i++)
    if ((node_output(run, inner[i]) != NULL) != keep)
      fail_msg("keep = %d: node %s %s an output after the run", keep, inner[i],
               keep ? "lost" : "still has");
  /* the successors got the outputs before they were released */
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(json_object_get(e->inputs, "b"), "a"), "id")),
                      "a");
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(json_object_get(e->inputs, "x"), "r"), "id")),
                      "r");
  json_t *out = fc_run_output(run);
  assert_keys(out, "c,d,x");
  assert_string_equal(json_string_value(json_object_get(json_object_get(out, "c"), "id")), "c");
  assert_json_eq(json_object_get(out, "d"), node_output(run, "d"));
  close_run(e, run);
  fc_workflow_free(wf);
}

static void test_keep_outputs(void **state) { run_release(*state, 1); }
static void test_release_outputs(void **state) { run_release(*state, 0); }

/* The workflow's output holds the nodes without successors that completed,
 * in definition order whatever order they ended in (here the reverse),
 * over more than one 64-node word of the run's record of them; a sink that
 * failed and one that was skipped are not in it. Released or kept, the
 * outputs of the sinks stay for it. */
static void test_output_sinks_in_order(void **state) {
  env_t *e = *state;
  enum { N = 150 };
  static const int sinks[] = {0, 1, 63, 64, 65, 100, 111, 127, 128, 149};
  enum { NS = sizeof sinks / sizeof sinks[0] };
  nparam_t plain = {.e = e}, failing = {.e = e, .fail_first = 1}, late[NS];
  fc_workflow_t *wf = new_wf("sinks");
  char id[16], prev[16] = "";
  int is_sink[N] = {0};
  for (int k = 0; k < NS; k++) {
    is_sink[sinks[k]] = 1;
    late[k] = (nparam_t){.e = e, .async = 1, .delay_ms = (uint64_t)(NS - k) * 3};
  }
  for (int i = 0, k = 0; i < N; i++) {
    nparam_t *p = i == 100 || i == 110 ? &failing : is_sink[i] ? &late[k++] : &plain;
    snprintf(id, sizeof id, "x%03d", i);
    /* each node that is not a sink has the next node as its successor */
    add(wf, id, p, i > 0 && !is_sink[i - 1] ? prev : NULL);
    memcpy(prev, id, sizeof id);
  }
  validate(wf);
  fc_run_t *run = run_wf(e, wf, NULL, -1);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_FAILED);
  assert_int_equal(node_status(run, "x100"), FC_NODE_FAILED);
  assert_int_equal(node_status(run, "x111"), FC_NODE_SKIPPED);
  /* they ended last first */
  const fc_event_kind_t k[] = {FC_EVENT_NODE_END, FC_EVENT_NODE_END, FC_EVENT_NODE_END};
  const char *const order[] = {"x149", "x064", "x000"};
  fc_assert_in_order(e->rec, k, order, 3);
  char keys[256];
  key_order(fc_run_output(run), keys, sizeof keys);
  assert_string_equal(keys, "x000,x001,x063,x064,x065,x127,x128,x149");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(fc_run_output(run), "x128"), "id")),
      "x128");
  close_run(e, run);
  fc_workflow_free(wf);
}

/* 10,000 nodes in a chain, all completing synchronously inside their node
 * function: the engine must not recurse per node. */
static void test_chain_10000_sync(void **state) {
  env_t *e = *state;
  enum { N = 10000 };
  nparam_t p = {.e = e};
  e->keep_inputs = 0;
  fc_workflow_t *wf = new_wf("chain");
  char id[16], dep[16];
  for (int i = 0; i < N; i++) {
    snprintf(id, sizeof id, "n%05d", i);
    snprintf(dep, sizeof dep, "n%05d", i - 1);
    add(wf, id, &p, i > 0 ? dep : NULL);
  }
  fc_run_t *run = run_wf(e, wf, NULL, -1);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_COMPLETED);
  assert_int_equal(p.calls, N);
  assert_int_equal(fc_run_node_status(run, 0), FC_NODE_COMPLETED);
  assert_int_equal(fc_run_node_status(run, N - 1), FC_NODE_COMPLETED);
  json_t *out = fc_run_output(run);
  assert_keys(out, "n09999");
  assert_json_eq(json_object_get(out, "n09999"), fc_run_node_output(run, N - 1));
  fc_assert_called(e->rec, FC_EVENT_NODE_START, N);
  assert_int_equal(fc_recorder_count_status(e->rec, NULL, FC_NODE_COMPLETED), N);
  /* n09999's node_start input names its predecessor. */
  const fc_recorded_event_t *st = fc_recorder_last(e->rec, FC_EVENT_NODE_START, "n09999");
  assert_non_null(st);
  assert_keys(st->input, "input,n09998");
  /* Only one node can ever be running in a chain. */
  assert_int_equal(fc_run_peak_parallel(run), 1);
  assert_int_equal(e->peak, 1);
  close_run(e, run);
  fc_workflow_free(wf);
}

/* Synchronous and asynchronous completion mixed; nothing runs inside
 * fc_run_start. */
static void test_sync_async_mix(void **state) {
  env_t *e = *state;
  nparam_t sync = {.e = e};
  nparam_t async2 = {.e = e, .async = 1, .delay_ms = 2};
  nparam_t async0 = {.e = e, .async = 1, .delay_ms = 0};
  fc_workflow_t *wf = new_wf("mix");
  add(wf, "s1", &sync, NULL);
  add(wf, "a1", &async2, "s1");
  add(wf, "s2", &sync, "a1");
  add(wf, "a2", &async0, "s2");
  add(wf, "s3", &sync, "a2");
  fc_run_t *run = new_run(e, wf);
  e->run = run;
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_PENDING);
  json_t *input = json_pack("{s:i}", "v", 5);
  assert_int_equal(fc_run_start(run, input, on_done, e), 0);
  /* The run took its own reference. */
  json_decref(input);
  assert_int_equal(sync.calls + async0.calls + async2.calls, 0);
  fc_assert_called(e->rec, FC_EVENT_NODE_START, 0);
  assert_int_equal(e->done_calls, 0);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_RUNNING);
  assert_uuid7(fc_run_id(run));
  assert_null(fc_run_output(run));
  assert_int_equal(fc_run_node_status(run, 0), FC_NODE_PENDING);
  /* Started twice: refused; max_parallel can no longer change. */
  assert_int_equal(fc_run_start(run, NULL, on_done, e), FC_ESTATE);
  assert_int_not_equal(fc_run_set_max_parallel(run, 1), 0);

  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(e->done_calls, 1);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_COMPLETED);
  assert_int_equal(sync.calls, 3);
  assert_int_equal(async2.calls, 1);
  assert_int_equal(async0.calls, 1);
  static const char *const ids[] = {"s1", "a1", "s2", "a2", "s3"};
  for (size_t i = 0; i < 5; i++) {
    assert_int_equal(fc_run_node_status(run, i), FC_NODE_COMPLETED);
    json_t *o = node_output(run, ids[i]);
    assert_int_equal(json_integer_value(json_object_get(o, "v")), 5);
  }
  assert_keys(json_object_get(e->inputs, "s2"), "input,a1");
  assert_json_eq(json_object_get(json_object_get(e->inputs, "s2"), "a1"),
                 node_output(run, "a1"));
  assert_keys(fc_run_output(run), "s3");
  const fc_event_kind_t k[] = {FC_EVENT_WORKFLOW_START, FC_EVENT_NODE_END, FC_EVENT_NODE_END,
                               FC_EVENT_NODE_END,       FC_EVENT_NODE_END, FC_EVENT_NODE_END,
                               FC_EVENT_WORKFLOW_END};
  const char *const n[] = {NULL, "s1", "a1", "s2", "a2", "s3", NULL};
  fc_assert_in_order(e->rec, k, n, 7);
  assert_contract(e->rec);
  /* After the end, cancel is refused. */
  assert_int_equal(fc_run_cancel(run), FC_ESTATE);
  close_run(e, run);
  fc_workflow_free(wf);
}

/* The workflow input reaches every node as input["input"]; NULL means {}. */
static void test_workflow_input(void **state) {
  env_t *e = *state;
  nparam_t p = {.e = e};
  fc_workflow_t *wf = new_wf("input");
  add(wf, "first", &p, NULL);
  add(wf, "second", &p, "first");
  json_t *input = json_pack("{s:i, s:{s:[i,i]}, s:s}", "x", 42, "nested", "y", 1, 2,
                            "s", "text");
  json_t *copy = json_deep_copy(input);
  fc_run_t *run = new_run(e, wf);
  assert_int_equal(fc_run_start(run, input, on_done, e), 0);
  json_decref(input); /* the run keeps its own reference */
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(e->done_calls, 1);
  assert_json_eq(json_object_get(json_object_get(e->inputs, "first"), "input"), copy);
  assert_json_eq(json_object_get(json_object_get(e->inputs, "second"), "input"), copy);
  const fc_recorded_event_t *ws = fc_recorder_last(e->rec, FC_EVENT_WORKFLOW_START, NULL);
  assert_non_null(ws);
  assert_json_eq(ws->input, copy);
  close_run(e, run);
  json_decref(copy);

  /* NULL input: {} */
  e->done_calls = 0;
  e->close_calls = 0;
  run = run_wf(e, wf, NULL, -1);
  json_t *empty = json_object();
  assert_json_eq(json_object_get(json_object_get(e->inputs, "first"), "input"), empty);
  assert_json_eq(json_object_get(json_object_get(e->inputs, "second"), "input"), empty);
  json_decref(empty);
  close_run(e, run);
  fc_workflow_free(wf);
}

/* workflow_id: a UUIDv7, the same in the run, the events and the contexts,
 * different for two runs. A run without a manager works. */
static void test_workflow_id(void **state) {
  env_t *e = *state;
  nparam_t p = {.e = e};
  fc_workflow_t *wf = new_wf("ids");
  add(wf, "only", &p, NULL);
  fc_run_t *run = run_wf(e, wf, NULL, -1);
  char first[FC_UUID_STRING_LENGTH];
  snprintf(first, sizeof first, "%s", fc_run_id(run));
  assert_uuid7(first);
  assert_string_equal(e->ctx_wf_id, first);
  for (size_t i = 0; i < fc_recorder_size(e->rec); i++) {
    const fc_recorded_event_t *ev = fc_recorder_at(e->rec, i);
    assert_string_equal(ev->workflow_id, first);
    assert_string_equal(ev->workflow_name, "ids");
  }
  close_run(e, run);

  /* Second run, no manager. */
  fc_run_t *run2 = NULL;
  assert_int_equal(fc_run_new(&run2, &e->loop, wf, NULL, NULL), 0);
  e->done_calls = 0;
  e->close_calls = 0;
  size_t events = fc_recorder_size(e->rec);
  assert_int_equal(fc_run_start(run2, NULL, on_done, e), 0);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(e->done_calls, 1);
  assert_int_equal(fc_run_status(run2), FC_WORKFLOW_COMPLETED);
  assert_uuid7(fc_run_id(run2));
  assert_string_not_equal(fc_run_id(run2), first);
  assert_string_equal(e->ctx_wf_id, fc_run_id(run2));
  assert_int_equal(fc_recorder_size(e->rec), events); /* no manager: no events */
  assert_int_equal(p.calls, 2);
  close_run(e, run2);
  fc_workflow_free(wf);
}

/* Event fields: names, types, counts, payloads, error info. */
static void fn_fail_info(fc_node_ctx_t *ctx, void *user_data) {
  (void)user_data;
  fc_error_info_t info = {0};
  info.type = "custom_error";
  info.message = "boom 7";
  info.stack_trace = "line 1\nline 2";
  info.severity = FC_SEVERITY_CRITICAL;
  fc_node_fail(ctx, &info);
}

static void test_event_fields(void **state) {
  env_t *e = *state;
  nparam_t p = {.e = e};
  fc_workflow_t *wf = new_wf("fields flow");
  fc_node_t *a = add(wf, "a", &p, NULL);
  assert_int_equal(fc_node_set_type(a, "exec"), 0);
  add(wf, "b", &p, "a");
  fc_node_t *f = NULL;
  assert_int_equal(fc_workflow_add_node(wf, "f", fn_fail_info, NULL, &f), 0);
  assert_int_equal(fc_node_set_type(f, "http"), 0);
  add(wf, "g", &p, "f");
  json_t *input = json_pack("{s:i}", "v", 9);
  fc_run_t *run = run_wf(e, wf, input, -1);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_FAILED);
  assert_contract(e->rec);

  for (size_t i = 0; i < fc_recorder_size(e->rec); i++) {
    const fc_recorded_event_t *ev = fc_recorder_at(e->rec, i);
    assert_string_equal(ev->workflow_id, fc_run_id(run));
    assert_string_equal(ev->workflow_name, "fields flow");
    assert_int_equal(ev->node_count, 4);
    assert_true(ev->duration_us >= 0);
    assert_true(ev->time_us > 1600000000LL * 1000000LL);
    if (ev->kind == FC_EVENT_NODE_START)
      assert_int_equal(ev->status, FC_NODE_RUNNING);
    if (ev->kind == FC_EVENT_WORKFLOW_START) {
      assert_int_equal(ev->status, FC_WORKFLOW_RUNNING);
      assert_null(ev->node_id);
    }
  }
  const fc_recorded_event_t *as = fc_recorder_last(e->rec, FC_EVENT_NODE_START, "a");
  assert_non_null(as);
  assert_string_equal(as->node_type, "exec");
  assert_int_equal(as->attempt, 1);
  assert_json_eq(as->input, json_object_get(e->inputs, "a"));
  const fc_recorded_event_t *bs = fc_recorder_last(e->rec, FC_EVENT_NODE_START, "b");
  assert_non_null(bs);
  assert_string_equal(bs->node_type, "");
  assert_keys(bs->input, "input,a");
  const fc_recorded_event_t *ae = fc_recorder_last(e->rec, FC_EVENT_NODE_END, "a");
  assert_json_eq(ae->output, node_output(run, "a"));
  assert_int_equal(ae->status, FC_NODE_COMPLETED);

  /* The failure: error info copied, node id and attempt filled in. */
  const fc_recorded_event_t *er = fc_recorder_last(e->rec, FC_EVENT_ERROR, "f");
  assert_non_null(er);
  assert_string_equal(er->error_type, "custom_error");
  assert_string_equal(er->error_message, "boom 7");
  assert_non_null(er->error_stack_trace);
  assert_string_equal(er->error_stack_trace, "line 1\nline 2");
  assert_int_equal(er->error_severity, FC_SEVERITY_CRITICAL);
  assert_int_equal(er->attempt, 1);
  assert_string_equal(er->node_type, "http");
  const fc_recorded_event_t *fe = fc_recorder_last(e->rec, FC_EVENT_NODE_END, "f");
  assert_int_equal(fe->status, FC_NODE_FAILED);
  assert_null(fe->output);
  assert_null(node_output(run, "f"));
  /* error between node_start and node_end of the failing attempt */
  const fc_event_kind_t k[] = {FC_EVENT_WORKFLOW_START, FC_EVENT_NODE_START, FC_EVENT_ERROR,
                               FC_EVENT_NODE_END, FC_EVENT_NODE_END, FC_EVENT_WORKFLOW_END};
  const char *const n[] = {NULL, "f", "f", "f", "g", NULL};
  fc_assert_in_order(e->rec, k, n, 6);
  assert_never_ran(e->rec, "g", FC_NODE_SKIPPED);
  assert_int_equal(fc_run_error_count(run), 1);
  assert_wf_end(e->rec, FC_WORKFLOW_FAILED);
  /* The workflow output holds the completed sink b only. */
  assert_keys(fc_run_output(run), "b");
  close_run(e, run);
  json_decref(input);
  fc_workflow_free(wf);
}

/* node_start times, for a handler that listens to node_start only. */
typedef struct {
  int n;
  int64_t time_us[8];
} start_times_t;

static int64_t wall_us(void) {
  uv_timeval64_t tv;
  assert_int_equal(uv_gettimeofday(&tv), 0);
  return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

static int record_start(void *self, const fc_event_t *ev) {
  start_times_t *t = self;
  if (t->n < 8)
    t->time_us[t->n++] = ev->time_us;
  return 0;
}

/* Without a node_end listener, the clock read at a completion times the
 * next attempt the same pump starts. It must not outlive that pump: a
 * node started after a 30 ms asynchronous one is timed 30 ms later, not
 * with the clock of the synchronous completion before it. */
static void test_start_times_without_end_listener(void **state) {
  env_t *e = *state;
  nparam_t sync = {.e = e};
  nparam_t slow = {.e = e, .async = 1, .delay_ms = 30};
  start_times_t t = {0};
  fc_handler_t h = {.name = "starts", .self = &t, .on_node_start = record_start};
  fc_workflow_t *wf = new_wf("times");
  fc_run_t *run;
  int64_t before = wall_us(), after;
  add(wf, "s1", &sync, NULL);
  add(wf, "s2", &sync, "s1");
  add(wf, "slow", &slow, "s2");
  add(wf, "s3", &sync, "slow");
  fc_manager_free(e->mgr);
  assert_int_equal(fc_manager_new(&e->mgr), 0);
  assert_int_equal(fc_manager_add(e->mgr, &h, 0, NULL), 0);
  run = new_run(e, wf);
  assert_int_equal(fc_run_start(run, NULL, on_done, e), 0);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  after = wall_us();
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_COMPLETED);
  assert_int_equal(t.n, 4);
  for (int i = 0; i < 4; i++) {
    assert_true(t.time_us[i] >= before - 1000 && t.time_us[i] <= after + 1000);
    if (i > 0)
      assert_true(t.time_us[i] >= t.time_us[i - 1]);
  }
  assert_true(t.time_us[3] - t.time_us[2] >= 25000); /* s3 after slow's 30 ms */
  close_run(e, run);
  fc_workflow_free(wf);

  /* A completion that starts nothing (c waits for b) leaves no clock for
   * later: b's retry, 30 ms on, is timed then. */
  nparam_t once = {.e = e, .fail_first = 1};
  t.n = 0;
  e->close_calls = e->done_calls = 0;
  wf = new_wf("retry times");
  fc_node_t *b = add(wf, "b", &once, NULL);
  assert_int_equal(fc_node_set_retries(b, 1, 30, 30), 0);
  add(wf, "a", &sync, NULL);
  add(wf, "c", &sync, "a");
  assert_int_equal(fc_node_add_dep(fc_workflow_find_node(wf, "c"), "b"), 0);
  run = new_run(e, wf);
  assert_int_equal(fc_run_start(run, NULL, on_done, e), 0);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_COMPLETED);
  assert_int_equal(t.n, 4); /* b, a, b again, c */
  assert_true(t.time_us[2] - t.time_us[0] >= 25000);
  close_run(e, run);
  fc_workflow_free(wf);
}

/* ---- parallel limit -------------------------------------------------------- */

static void test_parallel_limit_workflow(void **state) {
  env_t *e = *state;
  enum { N = 24, LIMIT = 3 };
  nparam_t p[N];
  fc_workflow_t *wf = new_wf("parallel");
  char id[16];
  for (int i = 0; i < N; i++) {
    p[i] = (nparam_t){.e = e, .async = 1, .delay_ms = (uint64_t)(1 + (i * 7) % 5)};
    snprintf(id, sizeof id, "p%02d", i);
    add(wf, id, &p[i], NULL);
  }
  assert_int_equal(fc_workflow_set_max_parallel(wf, LIMIT), 0);
  e->limit = LIMIT;
  fc_run_t *run = run_wf(e, wf, NULL, -1);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_COMPLETED);
  for (int i = 0; i < N; i++)
    assert_int_equal(p[i].calls, 1);
  assert_int_equal(e->violations, 0);
  assert_int_equal(e->peak, LIMIT);
  assert_int_equal(fc_run_peak_parallel(run), LIMIT);
  assert_int_equal(e->running, 0);
  assert_contract(e->rec);
  close_run(e, run);
  fc_workflow_free(wf);
}

/* fc_run_set_max_parallel overrides the workflow (unlimited) for one run;
 * with dependencies in the mix. */
static void test_parallel_limit_run_override(void **state) {
  env_t *e = *state;
  enum { N = 16, LIMIT = 4 };
  nparam_t p[N + 2];
  fc_workflow_t *wf = new_wf("parallel override");
  p[0] = (nparam_t){.e = e, .async = 1, .delay_ms = 1};
  add(wf, "root", &p[0], NULL);
  p[1] = (nparam_t){.e = e, .async = 1, .delay_ms = 2};
  fc_node_t *join = add(wf, "join", &p[1], NULL);
  char id[16];
  for (int i = 0; i < N; i++) {
    p[i + 2] = (nparam_t){.e = e, .async = 1, .delay_ms = (uint64_t)(1 + (i * 3) % 4)};
    snprintf(id, sizeof id, "k%02d", i);
    add(wf, id, &p[i + 2], i % 2 ? "root" : NULL);
    assert_int_equal(fc_node_add_dep(join, id), 0);
  }
  e->limit = LIMIT;
  fc_run_t *run = run_wf(e, wf, NULL, LIMIT);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_COMPLETED);
  assert_int_equal(e->violations, 0);
  assert_int_equal(e->peak, LIMIT);
  assert_int_equal(fc_run_peak_parallel(run), LIMIT);
  assert_int_equal(p[1].calls, 1);
  close_run(e, run);

  /* Same workflow, unlimited: all 9 roots run at once. */
  e->limit = 0;
  e->peak = 0;
  e->done_calls = 0;
  e->close_calls = 0;
  run = run_wf(e, wf, NULL, -1);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_COMPLETED);
  assert_true(e->peak > LIMIT);
  assert_int_equal(fc_run_peak_parallel(run), e->peak);
  close_run(e, run);
  fc_workflow_free(wf);
}

/* ---- routing --------------------------------------------------------------- */

static void test_routing_skip_propagation(void **state) {
  env_t *e = *state;
  nparam_t p = {.e = e};
  nparam_t router = {.e = e, .route = "accept"};
  fc_workflow_t *wf = new_wf("routing");
  fc_node_t *r = add(wf, "r", &router, NULL);
  add(wf, "publish", &p, NULL);
  add(wf, "notify", &p, "publish");
  add(wf, "rewrite", &p, NULL);
  add(wf, "review", &p, "rewrite");
  add(wf, "final", &p, "notify,review");
  add(wf, "both", &p, NULL);
  add(wf, "audit", &p, "r");
  add(wf, "side", &p, NULL);
  assert_int_equal(fc_node_add_route(r, "accept", "publish"), 0);
  assert_int_equal(fc_node_add_route(r, "accept", "both"), 0);
  assert_int_equal(fc_node_add_route(r, "improve", "rewrite"), 0);
  assert_int_equal(fc_node_add_route(r, "improve", "both"), 0);
  fc_run_t *run = run_wf(e, wf, NULL, -1);

  assert_int_equal(fc_run_status(run), FC_WORKFLOW_COMPLETED);
  assert_string_equal(json_string_value(json_object_get(node_output(run, "r"), "route")),
                      "accept");
  static const char *const done[] = {"r", "publish", "notify", "both", "audit", "side"};
  for (size_t i = 0; i < 6; i++) {
    assert_int_equal(node_status(run, done[i]), FC_NODE_COMPLETED);
    assert_last_end(e->rec, done[i], FC_NODE_COMPLETED, 1);
  }
  static const char *const skipped[] = {"rewrite", "review", "final"};
  for (size_t i = 0; i < 3; i++) {
    assert_never_ran(e->rec, skipped[i], FC_NODE_SKIPPED);
    assert_int_equal(node_status(run, skipped[i]), FC_NODE_SKIPPED);
    assert_int_equal(fc_run_node_attempts(run, idx_of(wf, skipped[i])), 0);
    assert_null(node_output(run, skipped[i]));
  }
  /* A route target depends on its router. */
  assert_keys(json_object_get(e->inputs, "publish"), "input,r");
  assert_int_equal(p.calls, 5);
  /* Sinks of the definition: final (skipped), both, audit, side. notify is
   * not a sink (final depends on it), so it is not in the output. */
  assert_keys(fc_run_output(run), "both,audit,side");
  assert_int_equal(fc_recorder_count_status(e->rec, NULL, FC_NODE_SKIPPED), 3);
  const fc_event_kind_t k[] = {FC_EVENT_NODE_END, FC_EVENT_NODE_START};
  const char *const n[] = {"r", "publish"};
  fc_assert_in_order(e->rec, k, n, 2);
  assert_contract(e->rec);
  assert_wf_end(e->rec, FC_WORKFLOW_COMPLETED);
  close_run(e, run);
  fc_workflow_free(wf);
}

static void routing_default_case(env_t *e, const char *route, int no_field) {
  nparam_t p = {.e = e};
  nparam_t router = {.e = e, .route = route, .no_route_field = no_field};
  fc_workflow_t *wf = new_wf("routing default");
  fc_node_t *r = add(wf, "r", &router, NULL);
  add(wf, "accepted", &p, NULL);
  add(wf, "fallback", &p, NULL);
  add(wf, "after_fallback", &p, "fallback");
  assert_int_equal(fc_node_add_route(r, "accept", "accepted"), 0);
  assert_int_equal(fc_node_add_route(r, "default", "fallback"), 0);
  fc_run_t *run = run_wf(e, wf, NULL, -1);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_COMPLETED);
  assert_never_ran(e->rec, "accepted", FC_NODE_SKIPPED);
  assert_int_equal(node_status(run, "fallback"), FC_NODE_COMPLETED);
  assert_int_equal(node_status(run, "after_fallback"), FC_NODE_COMPLETED);
  assert_keys(fc_run_output(run), "after_fallback");
  assert_contract(e->rec);
  close_run(e, run);
  fc_workflow_free(wf);
}

static void test_routing_default(void **state) {
  routing_default_case(*state, "weird", 0);
}

static void test_routing_default_no_route_field(void **state) {
  routing_default_case(*state, "accept", 1);
}

static void test_routing_unknown_route(void **state) {
  env_t *e = *state;
  nparam_t p = {.e = e};
  nparam_t router = {.e = e, .route = "nope"};
  fc_workflow_t *wf = new_wf("routing unknown");
  fc_node_t *r = add(wf, "r", &router, NULL);
  add(wf, "accepted", &p, NULL);
  add(wf, "improved", &p, NULL);
  add(wf, "independent", &p, NULL);
  assert_int_equal(fc_node_add_route(r, "accept", "accepted"), 0);
  assert_int_equal(fc_node_add_route(r, "improve", "improved"), 0);
  fc_run_t *run = run_wf(e, wf, NULL, -1);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_FAILED);
  assert_int_equal(node_status(run, "r"), FC_NODE_FAILED);
  assert_last_end(e->rec, "r", FC_NODE_FAILED, 1);
  fc_assert_node_called(e->rec, FC_EVENT_ERROR, "r", 1);
  const fc_recorded_event_t *er = fc_recorder_last(e->rec, FC_EVENT_ERROR, "r");
  assert_string_equal(er->error_type, "route_error");
  assert_non_null(er->error_message);
  assert_never_ran(e->rec, "accepted", FC_NODE_SKIPPED);
  assert_never_ran(e->rec, "improved", FC_NODE_SKIPPED);
  assert_int_equal(node_status(run, "independent"), FC_NODE_COMPLETED);
  assert_wf_end(e->rec, FC_WORKFLOW_FAILED);
  assert_contract(e->rec);
  close_run(e, run);
  fc_workflow_free(wf);
}

/* ---- retries --------------------------------------------------------------- */

static void test_retry_then_succeed(void **state) {
  env_t *e = *state;
  nparam_t p = {.e = e};
  nparam_t flaky = {.e = e, .fail_first = 2};
  fc_workflow_t *wf = new_wf("retry");
  fc_node_t *n = add(wf, "flaky", &flaky, NULL);
  assert_int_equal(fc_node_set_retries(n, 2, 0, 0), 0);
  add(wf, "next", &p, "flaky");
  fc_run_t *run = run_wf(e, wf, NULL, -1);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_COMPLETED);
  assert_int_equal(flaky.calls, 3);
  assert_int_equal(flaky.attempts[0], 1);
  assert_int_equal(flaky.attempts[1], 2);
  assert_int_equal(flaky.attempts[2], 3);
  fc_assert_node_called(e->rec, FC_EVENT_NODE_START, "flaky", 3);
  fc_assert_node_called(e->rec, FC_EVENT_ERROR, "flaky", 2);
  assert_int_equal(fc_recorder_count_status(e->rec, "flaky", FC_NODE_FAILED), 2);
  assert_int_equal(fc_recorder_count_status(e->rec, "flaky", FC_NODE_COMPLETED), 1);
  assert_last_end(e->rec, "flaky", FC_NODE_COMPLETED, 3);
  /* attempts 1..3 in the events */
  int seen[4] = {0};
  for (size_t i = 0; i < fc_recorder_size(e->rec); i++) {
    const fc_recorded_event_t *ev = fc_recorder_at(e->rec, i);
    if (ev->kind == FC_EVENT_NODE_START && strcmp(ev->node_id, "flaky") == 0) {
      assert_in_range(ev->attempt, 1, 3);
      seen[ev->attempt]++;
    }
    if (ev->kind == FC_EVENT_ERROR)
      assert_in_range(ev->attempt, 1, 2);
  }
  assert_int_equal(seen[1] + seen[2] + seen[3], 3);
  assert_int_equal(seen[1] * seen[2] * seen[3], 1);
  assert_int_equal(fc_run_node_attempts(run, 0), 3);
  assert_int_equal(node_status(run, "flaky"), FC_NODE_COMPLETED);
  assert_int_equal(fc_run_error_count(run), 2);
  /* next got the output of attempt 3 */
  json_t *nin = json_object_get(e->inputs, "next");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(nin, "flaky"), "attempt")), 3);
  assert_int_equal(node_status(run, "next"), FC_NODE_COMPLETED);
  assert_contract(e->rec);
  close_run(e, run);
  fc_workflow_free(wf);
}

static void test_retries_exhausted(void **state) {
  env_t *e = *state;
  nparam_t p = {.e = e};
  nparam_t slow = {.e = e, .async = 1, .delay_ms = 5};
  nparam_t bad = {.e = e, .fail_first = 100};
  fc_workflow_t *wf = new_wf("exhausted");
  fc_node_t *n = add(wf, "bad", &bad, NULL);
  assert_int_equal(fc_node_set_retries(n, 1, 0, 0), 0);
  add(wf, "after_bad", &p, "bad");
  add(wf, "after_after", &p, "after_bad");
  add(wf, "ind1", &slow, NULL);
  add(wf, "ind2", &slow, "ind1");
  add(wf, "mixed", &p, "ind2,bad");
  fc_run_t *run = run_wf(e, wf, NULL, -1);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_FAILED);
  assert_int_equal(bad.calls, 2);
  fc_assert_node_called(e->rec, FC_EVENT_NODE_START, "bad", 2);
  fc_assert_node_called(e->rec, FC_EVENT_ERROR, "bad", 2);
  assert_int_equal(fc_recorder_count_status(e->rec, "bad", FC_NODE_FAILED), 2);
  assert_last_end(e->rec, "bad", FC_NODE_FAILED, 2);
  assert_int_equal(node_status(run, "bad"), FC_NODE_FAILED);
  assert_int_equal(fc_run_node_attempts(run, 0), 2);
  assert_never_ran(e->rec, "after_bad", FC_NODE_SKIPPED);
  assert_never_ran(e->rec, "after_after", FC_NODE_SKIPPED);
  assert_never_ran(e->rec, "mixed", FC_NODE_SKIPPED);
  /* The independent branch, still running when bad failed, completes. */
  assert_int_equal(node_status(run, "ind1"), FC_NODE_COMPLETED);
  assert_int_equal(node_status(run, "ind2"), FC_NODE_COMPLETED);
  assert_int_equal(slow.calls, 2);
  const fc_event_kind_t k[] = {FC_EVENT_NODE_END, FC_EVENT_NODE_END};
  const char *const nn[] = {"bad", "ind2"};
  fc_assert_in_order(e->rec, k, nn, 2);
  assert_int_equal(p.calls, 0);
  /* The only sinks, after_after and mixed, were skipped. */
  assert_keys(fc_run_output(run), "");
  assert_int_equal(fc_run_error_count(run), 2);
  assert_wf_end(e->rec, FC_WORKFLOW_FAILED);
  assert_contract(e->rec);
  close_run(e, run);
  fc_workflow_free(wf);
}

static double gap_ms(const nparam_t *p, int i) {
  return (double)(p->start_ns[i + 1] - p->start_ns[i]) / 1e6;
}

/* Backoff before retry k: min(base * 2^(k-1), max), minus up to 10 %. */
static void test_retry_backoff(void **state) {
  env_t *e = *state;
  nparam_t flaky = {.e = e, .fail_first = 2};
  nparam_t capped = {.e = e, .fail_first = 6};
  nparam_t p = {.e = e};
  fc_workflow_t *wf = new_wf("backoff");
  fc_node_t *n = add(wf, "flaky", &flaky, NULL);
  assert_int_equal(fc_node_set_retries(n, 2, 20, 1000), 0);
  n = add(wf, "capped", &capped, NULL);
  assert_int_equal(fc_node_set_retries(n, 6, 8, 8), 0);
  add(wf, "after", &p, "flaky,capped");
  uint64_t t0 = uv_hrtime();
  fc_run_t *run = run_wf(e, wf, NULL, -1);
  double total_ms = (double)(uv_hrtime() - t0) / 1e6;
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_COMPLETED);
  assert_int_equal(flaky.calls, 3);
  assert_int_equal(capped.calls, 7);
  double g1 = gap_ms(&flaky, 0), g2 = gap_ms(&flaky, 1);
  /* 20 ms then 40 ms, less up to 10 % jitter; generous for timer granularity
   * and a loaded machine, but the second gap must show the doubling. */
  if (g1 < 10.0 || g2 < 25.0)
    fail_msg("backoff gaps %.1f ms, %.1f ms; expected about 18-20 and 36-40", g1, g2);
  if (g1 > 1000.0 || g2 > 1000.0)
    fail_msg("backoff gaps %.1f ms, %.1f ms are far too long", g1, g2);
  for (int i = 0; i < MAX_OBS - 2 && i < 6; i++) {
    double g = gap_ms(&capped, i);
    if (g < 3.0)
      fail_msg("capped backoff gap %d: %.1f ms, expected about 7-8", i, g);
  }
  /* Capped at 8 ms: 6 retries take ~48 ms; uncapped they would take 504. */
  if (total_ms > 400.0)
    fail_msg("run took %.1f ms: max_ms does not cap the backoff", total_ms);
  assert_contract(e->rec);
  close_run(e, run);
  fc_workflow_free(wf);
}

/* ---- timeouts -------------------------------------------------------------- */

static void test_timeout(void **state) {
  env_t *e = *state;
  nparam_t p = {.e = e};
  nparam_t hang = {.e = e, .hang_first = 100, .late_ms = 5, .late_fail = 1};
  fc_workflow_t *wf = new_wf("timeout");
  fc_node_t *n = add(wf, "hang", &hang, NULL);
  assert_int_equal(fc_node_set_timeout(n, 20), 0);
  add(wf, "dep", &p, "hang");
  add(wf, "ind", &p, NULL);
  fc_run_t *run = new_run(e, wf);
  assert_int_equal(fc_run_start(run, NULL, on_done, e), 0);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(e->done_calls, 1);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_FAILED);
  assert_int_equal(hang.calls, 1);
  assert_int_equal(hang.stop_calls, 1);
  assert_int_equal(hang.stop_reason, FC_NODE_TIMED_OUT);
  assert_int_equal(hang.late_done, 1);
  double waited = (double)(hang.stop_ns - hang.start_ns[0]) / 1e6;
  if (waited < 10.0 || waited > 2000.0)
    fail_msg("timed out after %.1f ms, timeout was 20 ms", waited);
  assert_int_equal(node_status(run, "hang"), FC_NODE_TIMED_OUT);
  assert_last_end(e->rec, "hang", FC_NODE_TIMED_OUT, 1);
  fc_assert_node_called(e->rec, FC_EVENT_NODE_END, "hang", 1);
  /* One error (the timeout); the late failure is ignored. */
  fc_assert_node_called(e->rec, FC_EVENT_ERROR, "hang", 1);
  assert_int_equal(fc_run_error_count(run), 1);
  assert_never_ran(e->rec, "dep", FC_NODE_SKIPPED);
  assert_int_equal(node_status(run, "ind"), FC_NODE_COMPLETED);
  assert_null(node_output(run, "hang"));
  assert_contract(e->rec);
  assert_wf_end(e->rec, FC_WORKFLOW_FAILED);
  close_run(e, run);
  assert_int_equal(e->late_at_close, 1);
  fc_workflow_free(wf);
}

/* The workflow ends while the timed-out attempt has not yet called its
 * completion: close_cb waits for it. */
static void on_done_close(fc_run_t *run, void *data) {
  env_t *e = data;
  on_done(run, data);
  fc_run_close(run, on_close, e);
}

static void test_timeout_close_waits_for_completion(void **state) {
  env_t *e = *state;
  nparam_t hang = {.e = e, .hang_first = 100, .late_ms = 30};
  fc_workflow_t *wf = new_wf("timeout close");
  fc_node_t *n = add(wf, "hang", &hang, NULL);
  assert_int_equal(fc_node_set_timeout(n, 5), 0);
  fc_run_t *run = new_run(e, wf);
  assert_int_equal(fc_run_start(run, NULL, on_done_close, e), 0);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(e->done_calls, 1);
  assert_int_equal(e->status_at_done, FC_WORKFLOW_FAILED);
  assert_int_equal(e->close_calls, 1);
  assert_int_equal(e->done_before_close, 1);
  assert_int_equal(hang.stop_calls, 1);
  assert_int_equal(hang.late_done, 1);
  /* close_cb came after the late completion */
  assert_int_equal(e->late_at_close, 1);
  assert_int_equal(e->bad_ctx, 0);
  assert_stopped_input_ok(e);
  fc_workflow_free(wf);
}

static void test_timeout_then_retry(void **state) {
  env_t *e = *state;
  nparam_t p = {.e = e};
  nparam_t hang = {.e = e, .hang_first = 1, .late_ms = 10};
  fc_workflow_t *wf = new_wf("timeout retry");
  fc_node_t *n = add(wf, "hang", &hang, NULL);
  assert_int_equal(fc_node_set_timeout(n, 10), 0);
  assert_int_equal(fc_node_set_retries(n, 1, 0, 0), 0);
  add(wf, "dep", &p, "hang");
  fc_run_t *run = run_wf(e, wf, NULL, -1);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_COMPLETED);
  assert_int_equal(hang.calls, 2);
  assert_int_equal(hang.attempts[1], 2);
  assert_int_equal(hang.stop_calls, 1);
  assert_int_equal(hang.stop_reason, FC_NODE_TIMED_OUT);
  assert_int_equal(hang.late_done, 1);
  assert_int_equal(fc_recorder_count_status(e->rec, "hang", FC_NODE_TIMED_OUT), 1);
  assert_int_equal(fc_recorder_count_status(e->rec, "hang", FC_NODE_COMPLETED), 1);
  assert_last_end(e->rec, "hang", FC_NODE_COMPLETED, 2);
  fc_assert_node_called(e->rec, FC_EVENT_NODE_START, "hang", 2);
  fc_assert_node_called(e->rec, FC_EVENT_ERROR, "hang", 1);
  assert_int_equal(fc_run_node_attempts(run, 0), 2);
  /* The output is attempt 2's, not the late one of attempt 1. */
  json_t *out = node_output(run, "hang");
  assert_int_equal(json_integer_value(json_object_get(out, "attempt")), 2);
  assert_null(json_object_get(out, "late"));
  assert_int_equal(node_status(run, "dep"), FC_NODE_COMPLETED);
  assert_contract(e->rec);
  close_run(e, run);
  fc_workflow_free(wf);
}

/* ---- cancellation ---------------------------------------------------------- */

static void cancel_fire(uv_timer_t *t) {
  env_t *e = t->data;
  uv_close((uv_handle_t *)t, NULL);
  assert_int_equal(fc_run_cancel(e->run), 0);
}

static void test_cancel(void **state) {
  env_t *e = *state;
  nparam_t p = {.e = e};
  nparam_t s1 = {.e = e, .hang_first = 100, .stop_sync = 1};
  nparam_t s2 = {.e = e, .hang_first = 100, .late_ms = 3};
  fc_workflow_t *wf = new_wf("cancel");
  add(wf, "s1", &s1, NULL);
  add(wf, "s2", &s2, NULL);
  add(wf, "fast", &p, NULL);
  add(wf, "later", &p, "s1");
  add(wf, "later2", &p, "later");
  fc_run_t *run = new_run(e, wf);
  e->run = run;
  uv_timer_t t;
  assert_int_equal(uv_timer_init(&e->loop, &t), 0);
  t.data = e;
  assert_int_equal(uv_timer_start(&t, cancel_fire, 10, 0), 0);
  assert_int_equal(fc_run_start(run, NULL, on_done, e), 0);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);

  assert_int_equal(e->done_calls, 1);
  assert_int_equal(e->status_at_done, FC_WORKFLOW_CANCELLED);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_CANCELLED);
  assert_int_equal(s1.stop_calls, 1);
  assert_int_equal(s1.stop_reason, FC_NODE_CANCELLED);
  assert_int_equal(s2.stop_calls, 1);
  assert_int_equal(s2.stop_reason, FC_NODE_CANCELLED);
  assert_int_equal(s1.late_done + s2.late_done, 2);
  assert_last_end(e->rec, "s1", FC_NODE_CANCELLED, 1);
  assert_last_end(e->rec, "s2", FC_NODE_CANCELLED, 1);
  fc_assert_node_called(e->rec, FC_EVENT_NODE_END, "s1", 1);
  fc_assert_node_called(e->rec, FC_EVENT_NODE_END, "s2", 1);
  assert_int_equal(fc_recorder_count_status(e->rec, NULL, FC_NODE_COMPLETED), 1);
  assert_int_equal(node_status(run, "s1"), FC_NODE_CANCELLED);
  assert_int_equal(node_status(run, "s2"), FC_NODE_CANCELLED);
  assert_int_equal(node_status(run, "fast"), FC_NODE_COMPLETED);
  assert_never_ran(e->rec, "later", FC_NODE_CANCELLED);
  assert_never_ran(e->rec, "later2", FC_NODE_CANCELLED);
  assert_int_equal(node_status(run, "later"), FC_NODE_CANCELLED);
  assert_int_equal(p.calls, 1);
  assert_wf_end(e->rec, FC_WORKFLOW_CANCELLED);
  fc_assert_called(e->rec, FC_EVENT_WORKFLOW_END, 1);
  assert_contract(e->rec);
  assert_int_equal(fc_run_cancel(run), FC_ESTATE);
  close_run(e, run);
  assert_int_equal(e->late_at_close, 2);
  fc_workflow_free(wf);
}

/* Nodes waiting for a parallel slot are cancelled without starting. */
static void test_cancel_queued(void **state) {
  env_t *e = *state;
  enum { N = 5 };
  nparam_t s[N];
  fc_workflow_t *wf = new_wf("cancel queued");
  char id[8];
  for (int i = 0; i < N; i++) {
    s[i] = (nparam_t){.e = e, .hang_first = 100, .stop_sync = i % 2, .late_ms = 1};
    snprintf(id, sizeof id, "q%d", i);
    add(wf, id, &s[i], NULL);
  }
  assert_int_equal(fc_workflow_set_max_parallel(wf, 2), 0);
  fc_run_t *run = new_run(e, wf);
  e->run = run;
  uv_timer_t t;
  assert_int_equal(uv_timer_init(&e->loop, &t), 0);
  t.data = e;
  assert_int_equal(uv_timer_start(&t, cancel_fire, 5, 0), 0);
  assert_int_equal(fc_run_start(run, NULL, on_done, e), 0);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(e->done_calls, 1);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_CANCELLED);
  int started = 0;
  for (int i = 0; i < N; i++) {
    snprintf(id, sizeof id, "q%d", i);
    if (s[i].calls > 0) {
      started++;
      assert_int_equal(s[i].stop_calls, 1);
      assert_int_equal(s[i].stop_reason, FC_NODE_CANCELLED);
      assert_last_end(e->rec, id, FC_NODE_CANCELLED, 1);
    } else {
      assert_int_equal(s[i].stop_calls, 0);
      assert_never_ran(e->rec, id, FC_NODE_CANCELLED);
    }
    assert_int_equal(fc_run_node_status(run, (size_t)i), FC_NODE_CANCELLED);
  }
  assert_int_equal(started, 2);
  assert_int_equal(fc_run_peak_parallel(run), 2);
  assert_contract(e->rec);
  close_run(e, run);
  fc_workflow_free(wf);
}

/* fc_run_close on a running run cancels it; done_cb still fires. */
static void close_fire(uv_timer_t *t) {
  env_t *e = t->data;
  uv_close((uv_handle_t *)t, NULL);
  fc_run_close(e->run, on_close, e);
}

static void test_close_while_running(void **state) {
  env_t *e = *state;
  nparam_t hang = {.e = e, .hang_first = 100, .late_ms = 2};
  nparam_t p = {.e = e};
  fc_workflow_t *wf = new_wf("close running");
  add(wf, "hang", &hang, NULL);
  add(wf, "after", &p, "hang");
  fc_run_t *run = new_run(e, wf);
  e->run = run;
  uv_timer_t t;
  assert_int_equal(uv_timer_init(&e->loop, &t), 0);
  t.data = e;
  assert_int_equal(uv_timer_start(&t, close_fire, 5, 0), 0);
  assert_int_equal(fc_run_start(run, NULL, on_done, e), 0);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(e->done_calls, 1);
  assert_int_equal(e->status_at_done, FC_WORKFLOW_CANCELLED);
  assert_int_equal(e->close_calls, 1);
  assert_int_equal(e->done_before_close, 1);
  assert_int_equal(e->late_at_close, 1);
  assert_int_equal(hang.stop_calls, 1);
  assert_int_equal(hang.stop_reason, FC_NODE_CANCELLED);
  assert_last_end(e->rec, "hang", FC_NODE_CANCELLED, 1);
  assert_never_ran(e->rec, "after", FC_NODE_CANCELLED);
  assert_wf_end(e->rec, FC_WORKFLOW_CANCELLED);
  assert_contract(e->rec);
  assert_int_equal(e->bad_ctx, 0);
  assert_stopped_input_ok(e);
  fc_workflow_free(wf);
}

/* ---- thread pool ----------------------------------------------------------- */

typedef struct {
  env_t *e;
  uv_thread_t work_thread, after_thread;
  int work_calls, after_calls;
  long long in, result;
} work_t;

static void work_cb(fc_node_ctx_t *ctx, void *data) {
  work_t *w = data;
  w->work_thread = uv_thread_self();
  w->work_calls++;
  json_t *in = json_object_get(fc_node_ctx_input(ctx), "input");
  w->in = json_integer_value(json_object_get(in, "n"));
  uv_sleep(2);
  w->result = w->in * w->in;
}

static void after_cb(fc_node_ctx_t *ctx, void *data) {
  work_t *w = data;
  w->after_thread = uv_thread_self();
  w->after_calls++;
  fc_node_succeed(ctx, json_pack("{s:I}", "square", (json_int_t)w->result));
}

static void fn_work(fc_node_ctx_t *ctx, void *user_data) {
  work_t *w = user_data;
  if (fc_node_queue_work(ctx, work_cb, after_cb, w) != 0)
    fc_node_failf(ctx, FC_SEVERITY_ERROR, "queue_work", "could not queue");
}

static void test_queue_work(void **state) {
  env_t *e = *state;
  enum { N = 4 };
  work_t w[N];
  memset(w, 0, sizeof w);
  fc_workflow_t *wf = new_wf("pool");
  char id[8];
  for (int i = 0; i < N; i++) {
    w[i].e = e;
    snprintf(id, sizeof id, "w%d", i);
    assert_int_equal(fc_workflow_add_node(wf, id, fn_work, &w[i], NULL), 0);
  }
  json_t *input = json_pack("{s:i}", "n", 7);
  fc_run_t *run = run_wf(e, wf, input, -1);
  json_decref(input);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_COMPLETED);
  uv_thread_t self = uv_thread_self();
  for (int i = 0; i < N; i++) {
    assert_int_equal(w[i].work_calls, 1);
    assert_int_equal(w[i].after_calls, 1);
    assert_false(uv_thread_equal(&w[i].work_thread, &self));
    assert_true(uv_thread_equal(&w[i].after_thread, &self));
    assert_int_equal(w[i].in, 7);
    json_t *out = fc_run_node_output(run, (size_t)i);
    assert_int_equal(json_integer_value(json_object_get(out, "square")), 49);
  }
  assert_contract(e->rec);
  close_run(e, run);
  fc_workflow_free(wf);
}

/* ---- handlers: order, isolation, priority --------------------------------- */

typedef struct {
  int tag;
  int *log;
  size_t *len;
  size_t cap;
  int fail_with;
} tag_handler_t;

static int tag_cb(void *self, const fc_event_t *ev) {
  tag_handler_t *t = self;
  (void)ev;
  if (*t->len < t->cap)
    t->log[(*t->len)++] = t->tag;
  return t->fail_with;
}

static fc_handler_t tag_handler(tag_handler_t *t, const char *name) {
  fc_handler_t h;
  memset(&h, 0, sizeof h);
  h.name = name;
  h.self = t;
  h.on_workflow_start = tag_cb;
  h.on_workflow_end = tag_cb;
  h.on_node_start = tag_cb;
  h.on_node_end = tag_cb;
  h.on_error = tag_cb;
  return h;
}

/* a -> b, a -> c: 9 events when c fails (8 when it does not). */
static fc_workflow_t *small_wf(nparam_t *p, nparam_t *bad) {
  fc_workflow_t *wf = new_wf("small");
  add(wf, "a", p, NULL);
  add(wf, "b", p, "a");
  add(wf, "c", bad, "a");
  return wf;
}

static void test_handler_priority(void **state) {
  env_t *e = *state;
  enum { CAP = 512 };
  int log[CAP];
  size_t len = 0;
  /* Added in this order with these priorities; expected call order is
   * 10 (tag 2), 5 (tag 3, then tag 4: same priority, order of adding),
   * 0 (tag 1), -3 (tag 5). */
  tag_handler_t t[5] = {{1, log, &len, CAP, 0}, {2, log, &len, CAP, 0},
                        {3, log, &len, CAP, 0}, {4, log, &len, CAP, 0},
                        {5, log, &len, CAP, 0}};
  const int prio[5] = {0, 10, 5, 5, -3};
  for (int i = 0; i < 5; i++) {
    fc_handler_t h = tag_handler(&t[i], "tag");
    assert_int_equal(fc_manager_add(e->mgr, &h, prio[i], NULL), 0);
  }
  nparam_t p = {.e = e};
  nparam_t bad = {.e = e, .fail_first = 10};
  fc_workflow_t *wf = small_wf(&p, &bad);
  fc_run_t *run = run_wf(e, wf, NULL, -1);
  size_t events = fc_recorder_size(e->rec);
  assert_int_equal(events, 9); /* wf start/end, 3 x start/end, 1 error */
  assert_int_equal(len, events * 5);
  static const int want[5] = {2, 3, 4, 1, 5};
  for (size_t i = 0; i < len; i++)
    if (log[i] != want[i % 5])
      fail_msg("event %zu: handler %d called at position %zu, expected %d", i / 5,
               log[i], i % 5, want[i % 5]);
  close_run(e, run);
  fc_workflow_free(wf);
}

static int g_log_lines;
static void count_lines(void *data, const char *line) {
  (void)data;
  (void)line;
  g_log_lines++;
}

static void test_handler_isolation(void **state) {
  env_t *e = *state;
  fc_manager_set_log_sink(e->mgr, count_lines, NULL, 1000);
  g_log_lines = 0;
  /* A recorder that fails on every event, before the good recorder. */
  fc_recorder_t *failing = NULL;
  assert_int_equal(fc_recorder_new(&failing), 0);
  for (int k = 0; k < FC_EVENT_KIND_COUNT; k++)
    fc_recorder_fail_on(failing, (fc_event_kind_t)k, FC_EHANDLER);
  fc_handler_t h;
  assert_int_equal(fc_recorder_handler_owned(failing, &h), 0); /* the manager owns it */
  int failing_id = -1;
  assert_int_equal(fc_manager_add(e->mgr, &h, 100, &failing_id), 0);
  /* A tag handler failing with a libuv code, after the good recorder. */
  enum { CAP = 64 };
  int log[CAP];
  size_t len = 0;
  tag_handler_t t = {7, log, &len, CAP, UV_EIO};
  fc_handler_t th = tag_handler(&t, "tag");
  int tag_id = -1;
  assert_int_equal(fc_manager_add(e->mgr, &th, -100, &tag_id), 0);

  nparam_t p = {.e = e, .async = 1, .delay_ms = 1};
  nparam_t bad = {.e = e, .fail_first = 10};
  fc_workflow_t *wf = small_wf(&p, &bad);
  json_t *input = json_pack("{s:i}", "v", 1);
  fc_run_t *run = run_wf(e, wf, input, -1);
  json_decref(input);
  /* The outcome is what it would be without the failing handlers. */
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_FAILED);
  assert_int_equal(node_status(run, "a"), FC_NODE_COMPLETED);
  assert_int_equal(node_status(run, "b"), FC_NODE_COMPLETED);
  assert_int_equal(node_status(run, "c"), FC_NODE_FAILED);
  assert_keys(fc_run_output(run), "b");
  /* Every handler saw every event. */
  size_t events = fc_recorder_size(e->rec);
  assert_int_equal(events, 9);
  assert_int_equal(fc_recorder_size(failing), events);
  assert_int_equal(len, events);
  assert_contract(e->rec);
  fc_handler_stats_t st;
  assert_int_equal(fc_manager_handler_stats(e->mgr, failing_id, &st), 0);
  assert_int_equal(st.calls, events);
  assert_int_equal(st.failures, events);
  assert_int_equal(st.last_error, FC_EHANDLER);
  assert_int_equal(fc_manager_handler_stats(e->mgr, tag_id, &st), 0);
  assert_int_equal(st.failures, events);
  assert_int_equal(st.last_error, UV_EIO);
  assert_int_equal(fc_manager_failures(e->mgr), 2 * events);
  assert_true(g_log_lines >= 1);
  assert_true((size_t)g_log_lines <= 2 * events);
  close_run(e, run);
  fc_workflow_free(wf);
}

/* The recorder's stats: calls counted, no failures. */
static void test_handler_stats_clean(void **state) {
  env_t *e = *state;
  int id = -1;
  fc_recorder_t *r2 = NULL;
  assert_int_equal(fc_recorder_new(&r2), 0);
  fc_handler_t h;
  assert_int_equal(fc_recorder_handler_owned(r2, &h), 0);
  assert_int_equal(fc_manager_add(e->mgr, &h, 1, &id), 0);
  nparam_t p = {.e = e};
  fc_workflow_t *wf = small_wf(&p, &p);
  fc_run_t *run = run_wf(e, wf, NULL, -1);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_COMPLETED);
  fc_handler_stats_t st;
  assert_int_equal(fc_manager_handler_stats(e->mgr, id, &st), 0);
  assert_int_equal(st.calls, 8);
  assert_int_equal(st.failures, 0);
  assert_int_equal(st.last_error, 0);
  assert_int_equal(fc_manager_failures(e->mgr), 0);
  close_run(e, run);
  fc_workflow_free(wf);
}

/* ---- workflow_end counts --------------------------------------------------- */

typedef struct {
  int calls;
  int counts[FC_NODE_STATUS_COUNT];
  int error_count;
  int node_count;
} end_probe_t;

static int end_probe_cb(void *self, const fc_event_t *ev) {
  end_probe_t *pr = self;
  pr->calls++;
  if (ev->status_counts != NULL)
    memcpy(pr->counts, ev->status_counts, sizeof pr->counts);
  pr->error_count = ev->error_count;
  pr->node_count = ev->node_count;
  return 0;
}

static void test_workflow_end_counts(void **state) {
  env_t *e = *state;
  end_probe_t pr;
  memset(&pr, 0, sizeof pr);
  fc_handler_t h;
  memset(&h, 0, sizeof h);
  h.name = "end probe";
  h.self = &pr;
  h.on_workflow_end = end_probe_cb;
  assert_int_equal(fc_manager_add(e->mgr, &h, 0, NULL), 0);
  nparam_t p = {.e = e};
  nparam_t flaky = {.e = e, .fail_first = 1};
  nparam_t bad = {.e = e, .fail_first = 10};
  fc_workflow_t *wf = new_wf("counts");
  fc_node_t *n = add(wf, "flaky", &flaky, NULL);
  assert_int_equal(fc_node_set_retries(n, 1, 0, 0), 0);
  add(wf, "bad", &bad, NULL);
  add(wf, "skip1", &p, "bad");
  add(wf, "skip2", &p, "skip1");
  add(wf, "ok", &p, "flaky");
  fc_run_t *run = run_wf(e, wf, NULL, -1);
  assert_int_equal(pr.calls, 1);
  assert_int_equal(pr.node_count, 5);
  assert_int_equal(pr.counts[FC_NODE_COMPLETED], 2);
  assert_int_equal(pr.counts[FC_NODE_FAILED], 1);
  assert_int_equal(pr.counts[FC_NODE_SKIPPED], 2);
  assert_int_equal(pr.counts[FC_NODE_CANCELLED] + pr.counts[FC_NODE_TIMED_OUT] +
                       pr.counts[FC_NODE_RUNNING] + pr.counts[FC_NODE_PENDING],
                   0);
  assert_int_equal(pr.error_count, 2);
  assert_int_equal(fc_run_error_count(run), 2);
  close_run(e, run);
  fc_workflow_free(wf);
}

/* ---- concurrent runs ------------------------------------------------------- */

static void test_two_runs_concurrently(void **state) {
  env_t *e = *state;
  nparam_t slow = {.e = e, .async = 1, .delay_ms = 3};
  nparam_t fast = {.e = e, .async = 1, .delay_ms = 1};
  nparam_t sync = {.e = e};
  fc_workflow_t *wf = new_wf("twice");
  add(wf, "a", &slow, NULL);
  add(wf, "b", &fast, "a");
  add(wf, "c", &sync, "a");
  add(wf, "d", &slow, "b,c");
  validate(wf);
  fc_run_t *r1 = new_run(e, wf);
  fc_run_t *r2 = new_run(e, wf);
  json_t *in1 = json_pack("{s:i}", "v", 1);
  json_t *in2 = json_pack("{s:i}", "v", 2);
  assert_int_equal(fc_run_start(r1, in1, on_done, e), 0);
  assert_int_equal(fc_run_start(r2, in2, on_done, e), 0);
  json_decref(in1);
  json_decref(in2);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(e->done_calls, 2);
  assert_int_equal(fc_run_status(r1), FC_WORKFLOW_COMPLETED);
  assert_int_equal(fc_run_status(r2), FC_WORKFLOW_COMPLETED);
  assert_uuid7(fc_run_id(r1));
  assert_uuid7(fc_run_id(r2));
  assert_string_not_equal(fc_run_id(r1), fc_run_id(r2));
  /* Both runs were in flight at the same time. */
  assert_true(e->peak >= 2);
  static const char *const ids[] = {"a", "b", "c", "d"};
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(json_integer_value(json_object_get(node_output(r1, ids[i]), "v")), 1);
    assert_int_equal(json_integer_value(json_object_get(node_output(r2, ids[i]), "v")), 2);
  }
  assert_int_equal(json_integer_value(
                       json_object_get(json_object_get(fc_run_output(r1), "d"), "v")),
                   1);
  assert_int_equal(json_integer_value(
                       json_object_get(json_object_get(fc_run_output(r2), "d"), "v")),
                   2);
  fc_assert_called(e->rec, FC_EVENT_WORKFLOW_START, 2);
  fc_assert_called(e->rec, FC_EVENT_WORKFLOW_END, 2);
  fc_assert_called(e->rec, FC_EVENT_NODE_END, 8);
  fc_assert_contract(e->rec);
  /* Events of each run carry its own id. */
  size_t n1 = 0, n2 = 0;
  for (size_t i = 0; i < fc_recorder_size(e->rec); i++) {
    const char *wid = fc_recorder_at(e->rec, i)->workflow_id;
    if (strcmp(wid, fc_run_id(r1)) == 0)
      n1++;
    else if (strcmp(wid, fc_run_id(r2)) == 0)
      n2++;
  }
  assert_int_equal(n1, 10);
  assert_int_equal(n2, 10);
  fc_run_close(r1, on_close, e);
  fc_run_close(r2, on_close, e);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(e->close_calls, 2);
  assert_int_equal(e->bad_ctx, 0);
  fc_workflow_free(wf);
}

/* ---- fc_workflow_run ------------------------------------------------------- */

static void test_workflow_run_convenience(void **state) {
  env_t *e = *state;
  e->check_loop = 0; /* private loop */
  nparam_t p = {.e = e};
  nparam_t async = {.e = e, .async = 1, .delay_ms = 2};
  fc_workflow_t *wf = new_wf("convenience");
  add(wf, "a", &p, NULL);
  add(wf, "b", &async, "a");
  add(wf, "c", &p, "a");
  fc_run_result_t res;
  memset(&res, 0, sizeof res);
  fc_error_t err;
  fc_error_clear(&err);
  json_t *input = json_pack("{s:i}", "v", 3);
  assert_int_equal(fc_workflow_run(wf, input, e->mgr, &res, &err), 0);
  json_decref(input);
  assert_int_equal(res.status, FC_WORKFLOW_COMPLETED);
  assert_uuid7(res.workflow_id);
  assert_string_equal(res.workflow_id, e->ctx_wf_id);
  assert_keys(res.output, "b,c");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(res.output, "b"), "v")), 3);
  assert_int_equal(res.status_counts[FC_NODE_COMPLETED], 3);
  assert_int_equal(res.error_count, 0);
  assert_int_equal(async.calls, 1);
  /* Events went to the manager. */
  assert_contract(e->rec);
  assert_string_equal(fc_recorder_at(e->rec, 0)->workflow_id, res.workflow_id);
  char first[FC_UUID_STRING_LENGTH];
  memcpy(first, res.workflow_id, sizeof first);
  fc_run_result_clear(&res);
  assert_null(res.output);

  /* A second run of the same workflow: a new id. */
  memset(&res, 0, sizeof res);
  assert_int_equal(fc_workflow_run(wf, NULL, NULL, &res, NULL), 0);
  assert_int_equal(res.status, FC_WORKFLOW_COMPLETED);
  assert_uuid7(res.workflow_id);
  assert_string_not_equal(res.workflow_id, first);
  fc_run_result_clear(&res);
  fc_workflow_free(wf);

  /* A failing workflow: the run happened, return 0, status failed. */
  nparam_t bad = {.e = e, .fail_first = 10};
  wf = new_wf("convenience failing");
  add(wf, "ok", &p, NULL);
  add(wf, "bad", &bad, NULL);
  add(wf, "skipped", &p, "bad");
  memset(&res, 0, sizeof res);
  assert_int_equal(fc_workflow_run(wf, NULL, NULL, &res, NULL), 0);
  assert_int_equal(res.status, FC_WORKFLOW_FAILED);
  assert_int_equal(res.status_counts[FC_NODE_COMPLETED], 1);
  assert_int_equal(res.status_counts[FC_NODE_FAILED], 1);
  assert_int_equal(res.status_counts[FC_NODE_SKIPPED], 1);
  assert_int_equal(res.error_count, 1);
  assert_keys(res.output, "ok");
  fc_run_result_clear(&res);
  fc_workflow_free(wf);

  /* An invalid workflow: an error code and details. */
  wf = new_wf("convenience invalid");
  add(wf, "x_node", &p, "y_node");
  add(wf, "y_node", &p, "x_node");
  memset(&res, 0, sizeof res);
  fc_error_clear(&err);
  assert_int_equal(fc_workflow_run(wf, NULL, NULL, &res, &err), FC_ECYCLE);
  assert_int_equal(err.code, FC_ECYCLE);
  assert_non_null(strstr(err.text, "x_node"));
  fc_run_result_clear(&res);
  fc_workflow_free(wf);
}

/* ---- more cancellation ----------------------------------------------------- */

/* Cancelled right after start, before any node ran. */
static void test_cancel_before_nodes_start(void **state) {
  env_t *e = *state;
  nparam_t p = {.e = e};
  fc_workflow_t *wf = new_wf("cancel early");
  add(wf, "a", &p, NULL);
  add(wf, "b", &p, "a");
  add(wf, "c", &p, NULL);
  fc_run_t *run = new_run(e, wf);
  e->run = run;
  assert_int_equal(fc_run_cancel(run), FC_ESTATE); /* not started */
  assert_int_equal(fc_run_start(run, NULL, on_done, e), 0);
  assert_int_equal(fc_run_cancel(run), 0);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(e->done_calls, 1);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_CANCELLED);
  assert_int_equal(p.calls, 0);
  fc_assert_called(e->rec, FC_EVENT_NODE_START, 0);
  assert_never_ran(e->rec, "a", FC_NODE_CANCELLED);
  assert_never_ran(e->rec, "b", FC_NODE_CANCELLED);
  assert_never_ran(e->rec, "c", FC_NODE_CANCELLED);
  assert_wf_end(e->rec, FC_WORKFLOW_CANCELLED);
  assert_contract(e->rec);
  close_run(e, run);
  fc_workflow_free(wf);
}

/* Cancelled while a node waits for its retry: no further attempt. */
static void test_cancel_during_backoff(void **state) {
  env_t *e = *state;
  nparam_t flaky = {.e = e, .fail_first = 5};
  nparam_t hang = {.e = e, .hang_first = 100, .stop_sync = 1};
  fc_workflow_t *wf = new_wf("cancel backoff");
  fc_node_t *n = add(wf, "flaky", &flaky, NULL);
  assert_int_equal(fc_node_set_retries(n, 3, 60, 1000), 0);
  add(wf, "hang", &hang, NULL);
  fc_run_t *run = new_run(e, wf);
  e->run = run;
  uv_timer_t t;
  assert_int_equal(uv_timer_init(&e->loop, &t), 0);
  t.data = e;
  assert_int_equal(uv_timer_start(&t, cancel_fire, 10, 0), 0);
  assert_int_equal(fc_run_start(run, NULL, on_done, e), 0);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(e->done_calls, 1);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_CANCELLED);
  /* The backoff timer did not start attempt 2. */
  assert_int_equal(flaky.calls, 1);
  assert_int_equal(node_status(run, "flaky"), FC_NODE_CANCELLED);
  fc_assert_node_called(e->rec, FC_EVENT_NODE_START, "flaky", 1);
  assert_int_equal(fc_recorder_count_status(e->rec, "flaky", FC_NODE_FAILED), 1);
  /* (Whether a final node_end says "cancelled" is left open; a node that ran
   * must not get an attempt-0 node_end: checked by the contract below.) */
  assert_last_end(e->rec, "hang", FC_NODE_CANCELLED, 1);
  assert_int_equal(hang.stop_calls, 1);
  assert_wf_end(e->rec, FC_WORKFLOW_CANCELLED);
  assert_contract(e->rec);
  close_run(e, run);
  fc_workflow_free(wf);
}

/* Cancelled while the node's work runs on the thread pool: the context (and
 * its input) stay valid until `after` completes it; close waits for it. */
typedef struct {
  env_t *e;
  int stop_calls;
  int after_calls;
  int after_saw_stop;
  long long in;
} cwork_t;

static void cwork_work(fc_node_ctx_t *ctx, void *data) {
  cwork_t *w = data;
  uv_sleep(40);
  json_t *in = json_object_get(fc_node_ctx_input(ctx), "input");
  w->in = json_integer_value(json_object_get(in, "n"));
}

static void cwork_after(fc_node_ctx_t *ctx, void *data) {
  cwork_t *w = data;
  w->after_calls++;
  w->after_saw_stop = fc_node_ctx_stopped(ctx) == FC_NODE_CANCELLED;
  w->e->late_total++;
  fc_node_succeed(ctx, json_string("ignored"));
}

static void cwork_stop(fc_node_ctx_t *ctx, fc_node_status_t reason, void *data) {
  cwork_t *w = data;
  (void)ctx;
  if (reason == FC_NODE_CANCELLED)
    w->stop_calls++;
}

static void fn_cwork(fc_node_ctx_t *ctx, void *user_data) {
  cwork_t *w = user_data;
  fc_node_ctx_on_stop(ctx, cwork_stop, w);
  if (fc_node_queue_work(ctx, cwork_work, cwork_after, w) != 0)
    fc_node_failf(ctx, FC_SEVERITY_ERROR, "queue_work", "could not queue");
}

static void test_cancel_during_queue_work(void **state) {
  env_t *e = *state;
  cwork_t w = {.e = e};
  fc_workflow_t *wf = new_wf("cancel pool");
  assert_int_equal(fc_workflow_add_node(wf, "pool", fn_cwork, &w, NULL), 0);
  fc_run_t *run = new_run(e, wf);
  e->run = run;
  uv_timer_t t;
  assert_int_equal(uv_timer_init(&e->loop, &t), 0);
  t.data = e;
  assert_int_equal(uv_timer_start(&t, cancel_fire, 5, 0), 0);
  json_t *input = json_pack("{s:i}", "n", 7);
  assert_int_equal(fc_run_start(run, input, on_done, e), 0);
  json_decref(input);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(e->done_calls, 1);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_CANCELLED);
  assert_int_equal(w.stop_calls, 1);
  assert_int_equal(w.after_calls, 1);
  assert_true(w.after_saw_stop);
  assert_last_end(e->rec, "pool", FC_NODE_CANCELLED, 1);
  fc_assert_node_called(e->rec, FC_EVENT_NODE_END, "pool", 1);
  assert_null(fc_run_node_output(run, 0));
  if (w.in != 7)
    fail_msg("the work callback read input.n = %lld after the cancellation, "
             "expected 7: the context's input must stay valid until completion",
             w.in);
  assert_contract(e->rec);
  close_run(e, run);
  assert_int_equal(e->late_at_close, 1);
  fc_workflow_free(wf);
}

/* A cancelled run ended once, every node once per attempt (or once without
 * an attempt), workflow_end last. */
static void assert_cancelled_cleanly(env_t *e, fc_run_t *run, const fc_workflow_t *wf) {
  assert_int_equal(e->done_calls, 1);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_CANCELLED);
  assert_wf_end(e->rec, FC_WORKFLOW_CANCELLED);
  fc_assert_called(e->rec, FC_EVENT_WORKFLOW_END, 1);
  assert_contract(e->rec);
  for (size_t i = 0; i < fc_workflow_node_count(wf); i++) {
    const char *id = fc_node_id(fc_workflow_node_at(wf, i));
    size_t starts = fc_recorder_count(e->rec, FC_EVENT_NODE_START, id);
    size_t ends = fc_recorder_count(e->rec, FC_EVENT_NODE_END, id);
    if (ends != (starts > 0 ? starts : 1))
      fail_msg("node %s: %zu node_start, %zu node_end", id, starts, ends);
    assert_int_not_equal(fc_run_node_status(run, i), FC_NODE_PENDING);
  }
}

/* fc_run_cancel from inside a node function, which then completes at once
 * (its result may count or be ignored; the run must stay consistent). */
static int g_self_cancel_rc = 1;
static void fn_self_cancel(fc_node_ctx_t *ctx, void *user_data) {
  env_t *e = user_data;
  g_self_cancel_rc = fc_run_cancel(e->run);
  fc_node_succeed(ctx, json_string("after cancel"));
}

static void test_cancel_from_node_function(void **state) {
  env_t *e = *state;
  nparam_t hang = {.e = e, .hang_first = 100, .late_ms = 1};
  nparam_t p = {.e = e};
  nparam_t pre = {.e = e, .async = 1, .delay_ms = 2};
  fc_workflow_t *wf = new_wf("cancel in node");
  fc_node_t *c = NULL;
  assert_int_equal(fc_workflow_add_node(wf, "canceller", fn_self_cancel, e, &c), 0);
  add_deps(c, "pre"); /* so hang is surely running by then */
  add(wf, "pre", &pre, NULL);
  add(wf, "hang", &hang, NULL);
  add(wf, "after", &p, "canceller");
  fc_run_t *run = new_run(e, wf);
  e->run = run;
  g_self_cancel_rc = 1;
  assert_int_equal(fc_run_start(run, NULL, on_done, e), 0);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(g_self_cancel_rc, 0);
  assert_cancelled_cleanly(e, run, wf);
  assert_int_equal(p.calls, 0);
  assert_int_equal(hang.stop_calls, 1);
  assert_int_equal(hang.stop_reason, FC_NODE_CANCELLED);
  assert_last_end(e->rec, "hang", FC_NODE_CANCELLED, 1);
  close_run(e, run);
  fc_workflow_free(wf);
}

/* fc_run_cancel from inside a handler callback (on the loop thread). */
typedef struct {
  env_t *e;
  fc_event_kind_t kind;
  const char *node;
  int cancel_rc;
  int cancels;
  int inside; /* set while fc_run_cancel runs */
  int nested; /* events delivered while a handler call was in progress */
} canceller_t;

static int canceller_cb(void *self, const fc_event_t *ev) {
  canceller_t *c = self;
  if (c->inside)
    c->nested++;
  if (ev->kind == c->kind && ev->node_id != NULL && strcmp(ev->node_id, c->node) == 0 &&
      c->cancels == 0) {
    c->cancels++;
    c->inside = 1;
    c->cancel_rc = fc_run_cancel(c->e->run);
    c->inside = 0;
  }
  return 0;
}

static void run_cancel_from_handler(env_t *e, canceller_t *c, fc_workflow_t *wf) {
  fc_handler_t h;
  memset(&h, 0, sizeof h);
  h.name = "canceller";
  h.self = c;
  h.on_workflow_start = canceller_cb;
  h.on_workflow_end = canceller_cb;
  h.on_node_start = canceller_cb;
  h.on_node_end = canceller_cb;
  h.on_error = canceller_cb;
  assert_int_equal(fc_manager_add(e->mgr, &h, 50, NULL), 0);
  fc_run_t *run = new_run(e, wf);
  e->run = run;
  assert_int_equal(fc_run_start(run, NULL, on_done, e), 0);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(c->cancels, 1);
  assert_int_equal(c->cancel_rc, 0);
  assert_cancelled_cleanly(e, run, wf);
  if (c->nested != 0)
    fail_msg("%d event(s) were dispatched while a handler was still handling "
             "another (handlers are called one event at a time)", c->nested);
  close_run(e, run);
}

static void test_cancel_from_error_handler(void **state) {
  env_t *e = *state;
  nparam_t bad = {.e = e, .async = 1, .delay_ms = 2, .fail_first = 10};
  nparam_t hang = {.e = e, .hang_first = 100, .stop_sync = 1};
  nparam_t p = {.e = e};
  fc_workflow_t *wf = new_wf("cancel in on_error");
  add(wf, "bad", &bad, NULL);
  add(wf, "hang", &hang, NULL);
  add(wf, "after", &p, "bad");
  canceller_t c = {.e = e, .kind = FC_EVENT_ERROR, .node = "bad"};
  run_cancel_from_handler(e, &c, wf);
  fc_assert_node_called(e->rec, FC_EVENT_NODE_END, "bad", 1);
  assert_last_end(e->rec, "hang", FC_NODE_CANCELLED, 1);
  assert_int_equal(p.calls, 0);
  fc_workflow_free(wf);
}

static void test_cancel_from_node_end_handler(void **state) {
  env_t *e = *state;
  nparam_t a = {.e = e, .async = 1, .delay_ms = 2};
  nparam_t hang = {.e = e, .hang_first = 100, .stop_sync = 1};
  nparam_t p = {.e = e};
  fc_workflow_t *wf = new_wf("cancel in on_node_end");
  add(wf, "a", &a, NULL);
  add(wf, "hang", &hang, NULL);
  add(wf, "b", &p, "a");
  canceller_t c = {.e = e, .kind = FC_EVENT_NODE_END, .node = "a"};
  run_cancel_from_handler(e, &c, wf);
  fc_assert_node_called(e->rec, FC_EVENT_NODE_END, "a", 1);
  assert_last_end(e->rec, "a", FC_NODE_COMPLETED, 1);
  assert_never_ran(e->rec, "b", FC_NODE_CANCELLED);
  assert_last_end(e->rec, "hang", FC_NODE_CANCELLED, 1);
  assert_int_equal(p.calls, 0);
  fc_workflow_free(wf);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)
  const struct CMUnitTest tests[] = {
      T(test_diamond),
      T(test_fan_out_1000),
      T(test_chain_10000_sync),
      T(test_input_order),
      T(test_keep_outputs),
      T(test_release_outputs),
      T(test_output_sinks_in_order),
      T(test_sync_async_mix),
      T(test_workflow_input),
      T(test_workflow_id),
      T(test_event_fields),
      T(test_start_times_without_end_listener),
      T(test_parallel_limit_workflow),
      T(test_parallel_limit_run_override),
      T(test_routing_skip_propagation),
      T(test_routing_default),
      T(test_routing_default_no_route_field),
      T(test_routing_unknown_route),
      T(test_retry_then_succeed),
      T(test_retries_exhausted),
      T(test_retry_backoff),
      T(test_timeout),
      T(test_timeout_close_waits_for_completion),
      T(test_timeout_then_retry),
      T(test_cancel),
      T(test_cancel_queued),
      T(test_close_while_running),
      T(test_cancel_before_nodes_start),
      T(test_cancel_during_backoff),
      T(test_cancel_during_queue_work),
      T(test_cancel_from_error_handler),
      T(test_cancel_from_node_end_handler),
      T(test_cancel_from_node_function),
      T(test_queue_work),
      T(test_handler_priority),
      T(test_handler_isolation),
      T(test_handler_stats_clean),
      T(test_workflow_end_counts),
      T(test_two_runs_concurrently),
      T(test_workflow_run_convenience),
  };
#undef T
  return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}

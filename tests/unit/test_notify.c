/* The notification handler and the command notifier: every rule fires
 * exactly when it should (recording notifier, hand-built events and real
 * runs); the command notifier really spawns (argv given explicitly, no
 * shell inside flowcore), the JSON on stdin arrives intact; failures
 * (non-zero exit, missing binary, signal, timeout) are counted and never
 * stop a workflow; a slow command does not delay a fast workflow; the
 * concurrency cap drops the excess; close waits for or kills children. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fc_test.h"

#define ID_A "01890a5d-ac96-774b-bcce-b302099a8057"
#define MAX_REC 32

/* ---- a recording notifier ---------------------------------------------------- */

typedef struct {
  int n;
  char channel[MAX_REC][32];
  char message[MAX_REC][512];
  json_t *fields[MAX_REC];
  int fail; /* returned by send */
  int destroyed;
} rec_t;

static int rec_send(void *self, const char *channel, const char *message, json_t *fields) {
  rec_t *r = self;
  assert_true(r->n < MAX_REC);
  snprintf(r->channel[r->n], sizeof r->channel[0], "%s", channel);
  snprintf(r->message[r->n], sizeof r->message[0], "%s", message);
  r->fields[r->n] = json_deep_copy(fields);
  r->n++;
  return r->fail;
}

static void rec_destroy(void *self) { ((rec_t *)self)->destroyed++; }

static void rec_clear(rec_t *r) {
  int i;
  for (i = 0; i < r->n; i++)
    json_decref(r->fields[i]);
  r->n = 0;
}

static const char *fstr(const rec_t *r, int i, const char *key) {
  json_t *v = json_object_get(r->fields[i], key);
  if (!json_is_string(v))
    fail_msg("notification %d: field %s is not a string", i, key);
  return json_string_value(v);
}

static json_int_t fint(const rec_t *r, int i, const char *key) {
  json_t *v = json_object_get(r->fields[i], key);
  if (!json_is_integer(v))
    fail_msg("notification %d: field %s is not an integer", i, key);
  return json_integer_value(v);
}

static fc_notify_t *new_notify(rec_t *r, fc_notify_options_t *o) {
  fc_notify_t *n;
  o->notifier.self = r;
  o->notifier.send = rec_send;
  o->notifier.destroy = rec_destroy;
  assert_int_equal(fc_notify_new(&n, o), 0);
  return n;
}

/* ---- events ------------------------------------------------------------------ */

typedef struct {
  fc_event_t ev;
  fc_error_info_t err;
  int counts[FC_NODE_STATUS_COUNT];
} evbuf_t;

static const fc_event_t *mk(evbuf_t *b, fc_event_kind_t kind, int status, json_t *input) {
  memset(b, 0, sizeof *b);
  b->ev.kind = kind;
  b->ev.workflow_id = ID_A;
  b->ev.workflow_name = "etl";
  b->ev.node_index = -1;
  b->ev.status = status;
  b->ev.input = input;
  b->ev.node_count = 3;
  return &b->ev;
}

static const fc_event_t *mk_err(evbuf_t *b, fc_severity_t sev) {
  mk(b, FC_EVENT_ERROR, 0, NULL);
  b->ev.node_id = "load";
  b->ev.attempt = 2;
  b->err.type = "exit_status";
  b->err.message = "disk on fire";
  b->err.severity = sev;
  b->err.node_id = "load";
  b->err.attempt = 2;
  b->ev.error = &b->err;
  return &b->ev;
}

static const fc_event_t *mk_end(evbuf_t *b, int status, json_t *input) {
  mk(b, FC_EVENT_WORKFLOW_END, status, input);
  b->ev.duration_us = 1500000;
  b->ev.error_count = status == FC_WORKFLOW_COMPLETED ? 0 : 2;
  b->counts[FC_NODE_COMPLETED] = 1;
  b->counts[FC_NODE_FAILED] = status == FC_WORKFLOW_COMPLETED ? 0 : 1;
  b->counts[FC_NODE_TIMED_OUT] = status == FC_WORKFLOW_COMPLETED ? 0 : 1;
  b->ev.status_counts = b->counts;
  return &b->ev;
}

/* Starts a run with `input_json` and returns how many notifications came. */
static int start_with(fc_notify_t *n, rec_t *r, const char *input_json) {
  evbuf_t b;
  json_t *in = input_json != NULL ? json_loads(input_json, 0, NULL) : NULL;
  int before = r->n;
  if (input_json != NULL)
    assert_non_null(in);
  assert_int_equal(fc_notify_observe(n, mk(&b, FC_EVENT_WORKFLOW_START, 1, in)), 0);
  json_decref(in);
  return r->n - before;
}

static int end_with(fc_notify_t *n, rec_t *r, int status, const char *input_json) {
  evbuf_t b;
  json_t *in = input_json != NULL ? json_loads(input_json, 0, NULL) : NULL;
  int before = r->n;
  assert_int_equal(fc_notify_observe(n, mk_end(&b, status, in)), 0);
  json_decref(in);
  return r->n - before;
}

/* ---- rules ------------------------------------------------------------------- */

static void test_default_rules(void **state) {
  fc_notify_options_t o;
  fc_notify_t *n;
  fc_notify_stats_t st;
  rec_t r = {0};
  evbuf_t b;
  (void)state;
  fc_notify_options_init(&o);
  n = new_notify(&r, &o);

  /* long-running: strictly above 300000 ms; ms field or seconds field */
  assert_int_equal(start_with(n, &r, NULL), 0);
  assert_int_equal(start_with(n, &r, "{}"), 0);
  assert_int_equal(start_with(n, &r, "{\"estimated_duration_ms\": 300000}"), 0);
  assert_int_equal(start_with(n, &r, "{\"estimated_duration_ms\": \"long\"}"), 0);
  assert_int_equal(start_with(n, &r, "{\"estimated_duration\": 300}"), 0);
  assert_int_equal(start_with(n, &r, "[1, 2]"), 0);
  assert_int_equal(start_with(n, &r, "{\"estimated_duration_ms\": 300001}"), 1);
  assert_string_equal(r.channel[0], "slack");
  assert_string_equal(fstr(&r, 0, "rule"), "long_running");
  assert_string_equal(fstr(&r, 0, "workflow_id"), ID_A);
  assert_string_equal(fstr(&r, 0, "workflow_name"), "etl");
  assert_int_equal(fint(&r, 0, "estimated_duration_ms"), 300001);
  assert_int_equal(fint(&r, 0, "threshold_ms"), 300000);
  assert_non_null(strstr(r.message[0], "Long-running workflow etl (" ID_A ") started"));
  assert_int_equal(start_with(n, &r, "{\"estimated_duration\": 301.5}"), 1);
  assert_int_equal(fint(&r, 1, "estimated_duration_ms"), 301500);

  /* errors: only critical */
  assert_int_equal(fc_notify_observe(n, mk_err(&b, FC_SEVERITY_INFO)), 0);
  assert_int_equal(fc_notify_observe(n, mk_err(&b, FC_SEVERITY_WARNING)), 0);
  assert_int_equal(fc_notify_observe(n, mk_err(&b, FC_SEVERITY_ERROR)), 0);
  assert_int_equal(r.n, 2);
  assert_int_equal(fc_notify_observe(n, mk_err(&b, FC_SEVERITY_CRITICAL)), 0);
  assert_int_equal(r.n, 3);
  assert_string_equal(r.channel[2], "pagerduty");
  assert_string_equal(fstr(&r, 2, "rule"), "error");
  assert_string_equal(fstr(&r, 2, "severity"), "critical");
  assert_string_equal(fstr(&r, 2, "urgency"), "high");
  assert_string_equal(fstr(&r, 2, "node_id"), "load");
  assert_string_equal(fstr(&r, 2, "type"), "exit_status");
  assert_string_equal(fstr(&r, 2, "message"), "disk on fire");
  assert_int_equal(fint(&r, 2, "attempt"), 2);
  assert_string_equal(r.message[2],
                      "Critical error in workflow etl (" ID_A "), node load: disk on fire");

  /* completion: only when asked for, by the input */
  assert_int_equal(end_with(n, &r, FC_WORKFLOW_COMPLETED, NULL), 0);
  assert_int_equal(end_with(n, &r, FC_WORKFLOW_COMPLETED, "{\"notify_on_complete\": false}"), 0);
  assert_int_equal(end_with(n, &r, FC_WORKFLOW_COMPLETED, "{\"notify_on_complete\": 1}"), 0);
  assert_int_equal(end_with(n, &r, FC_WORKFLOW_COMPLETED, "{\"notify_on_failure\": true}"), 0);
  assert_int_equal(end_with(n, &r, FC_WORKFLOW_FAILED, "{\"notify_on_complete\": true}"), 0);
  assert_int_equal(end_with(n, &r, FC_WORKFLOW_FAILED, NULL), 0);
  assert_int_equal(end_with(n, &r, FC_WORKFLOW_COMPLETED,
                            "{\"notify_on_complete\": true, \"user_email\": \"ops@example.com\"}"),
                   1);
  assert_string_equal(r.channel[3], "email");
  assert_string_equal(fstr(&r, 3, "rule"), "complete");
  assert_string_equal(fstr(&r, 3, "status"), "completed");
  assert_string_equal(fstr(&r, 3, "user_email"), "ops@example.com");
  assert_true(fabs(json_number_value(json_object_get(r.fields[3], "duration_ms")) - 1500.0) < 1e-9);
  assert_string_equal(r.message[3], "Workflow etl (" ID_A ") completed in 1.500 s");
  assert_int_equal(end_with(n, &r, FC_WORKFLOW_FAILED, "{\"notify_on_failure\": true}"), 1);
  assert_string_equal(fstr(&r, 4, "rule"), "failure");
  assert_string_equal(fstr(&r, 4, "status"), "failed");
  assert_int_equal(fint(&r, 4, "failed_nodes"), 2);
  assert_int_equal(fint(&r, 4, "error_count"), 2);
  assert_null(json_object_get(r.fields[4], "user_email"));
  assert_int_equal(end_with(n, &r, FC_WORKFLOW_CANCELLED, "{\"notify_on_failure\": true}"), 1);
  assert_string_equal(fstr(&r, 5, "status"), "cancelled");

  /* node events never notify */
  assert_int_equal(fc_notify_observe(n, mk(&b, FC_EVENT_NODE_START, 1, NULL)), 0);
  assert_int_equal(fc_notify_observe(n, mk(&b, FC_EVENT_NODE_END, FC_NODE_FAILED, NULL)), 0);
  assert_int_equal(r.n, 6);

  fc_notify_stats(n, &st);
  assert_int_equal(st.long_running, 2);
  assert_int_equal(st.errors, 1);
  assert_int_equal(st.completed, 1);
  assert_int_equal(st.failed, 2);
  assert_int_equal(st.sent, 6);
  assert_int_equal(st.send_failures, 0);
  fc_notify_free(n);
  assert_int_equal(r.destroyed, 1);
  rec_clear(&r);
}

static int64_t est_from_data(void *data, const fc_event_t *ev) {
  (void)ev;
  return *(int64_t *)data;
}

static void test_rule_options(void **state) {
  fc_notify_options_t o;
  fc_notify_t *n;
  rec_t r = {0};
  evbuf_t b;
  int64_t est = 5000;
  (void)state;
  /* everything on, low thresholds, own channels, an estimate callback */
  fc_notify_options_init(&o);
  o.long_running_ms = 1000;
  o.estimate = est_from_data;
  o.estimate_data = &est;
  o.error_min_severity = FC_SEVERITY_WARNING;
  o.notify_on_complete = 1;
  o.notify_on_failure = 1;
  o.channel_long_running = "ops";
  o.channel_error = "alerts";
  o.channel_complete = "done";
  o.channel_failure = "oops";
  n = new_notify(&r, &o);
  assert_int_equal(start_with(n, &r, "{\"estimated_duration_ms\": 1}"), 1); /* callback wins */
  assert_string_equal(r.channel[0], "ops");
  assert_int_equal(fint(&r, 0, "estimated_duration_ms"), 5000);
  est = 1000;
  assert_int_equal(start_with(n, &r, NULL), 0);
  est = -1; /* unknown */
  assert_int_equal(start_with(n, &r, "{\"estimated_duration_ms\": 99999}"), 0);
  assert_int_equal(fc_notify_observe(n, mk_err(&b, FC_SEVERITY_INFO)), 0);
  assert_int_equal(r.n, 1);
  assert_int_equal(fc_notify_observe(n, mk_err(&b, FC_SEVERITY_WARNING)), 0);
  assert_string_equal(r.channel[1], "alerts");
  assert_string_equal(fstr(&r, 1, "urgency"), "normal");
  assert_int_equal(end_with(n, &r, FC_WORKFLOW_COMPLETED, NULL), 1);
  assert_string_equal(r.channel[2], "done");
  assert_int_equal(end_with(n, &r, FC_WORKFLOW_FAILED, NULL), 1);
  assert_string_equal(r.channel[3], "oops");
  fc_notify_free(n);
  rec_clear(&r);

  /* everything off; input flags ignored */
  fc_notify_options_init(&o);
  o.long_running = 0;
  o.errors = 0;
  o.input_flags = 0;
  n = new_notify(&r, &o);
  assert_int_equal(start_with(n, &r, "{\"estimated_duration_ms\": 1e12}"), 0);
  assert_int_equal(fc_notify_observe(n, mk_err(&b, FC_SEVERITY_CRITICAL)), 0);
  assert_int_equal(end_with(n, &r, FC_WORKFLOW_COMPLETED, "{\"notify_on_complete\": true}"), 0);
  assert_int_equal(end_with(n, &r, FC_WORKFLOW_FAILED, "{\"notify_on_failure\": true}"), 0);
  assert_int_equal(r.n, 0);
  fc_notify_free(n);
  assert_int_equal(r.destroyed, 2);
}

static void test_ownership_and_failures(void **state) {
  fc_notify_options_t o;
  fc_notify_t *n;
  fc_notify_stats_t st;
  rec_t r = {0};
  evbuf_t b;
  (void)state;
  /* a notifier without send: EINVAL, and the notifier is destroyed */
  fc_notify_options_init(&o);
  o.notifier.self = &r;
  o.notifier.destroy = rec_destroy;
  assert_int_equal(fc_notify_new(&n, &o), FC_EINVAL);
  assert_null(n);
  assert_int_equal(r.destroyed, 1);
  assert_int_equal(fc_notify_new(&n, NULL), FC_EINVAL);

  /* a failing notifier: the error is returned and counted */
  fc_notify_options_init(&o);
  n = new_notify(&r, &o);
  r.fail = FC_EHANDLER;
  assert_int_equal(fc_notify_observe(n, mk_err(&b, FC_SEVERITY_CRITICAL)), FC_EHANDLER);
  fc_notify_stats(n, &st);
  assert_int_equal(st.errors, 1);
  assert_int_equal(st.sent, 0);
  assert_int_equal(st.send_failures, 1);
  assert_int_equal(st.last_error, FC_EHANDLER);
  assert_int_equal(fc_notify_observe(NULL, &b.ev), FC_EINVAL);
  assert_int_equal(fc_notify_observe(n, NULL), FC_EINVAL);
  fc_notify_free(n);
  assert_int_equal(r.destroyed, 2);
  rec_clear(&r);
}

/* ---- real runs ---------------------------------------------------------------- */

static void fn_ok(fc_node_ctx_t *ctx, void *ud) {
  (void)ud;
  fc_node_succeed(ctx, json_integer(1));
}

static void fn_critical(fc_node_ctx_t *ctx, void *ud) {
  (void)ud;
  fc_node_failf(ctx, FC_SEVERITY_CRITICAL, "boom", "attempt %d failed", fc_node_ctx_attempt(ctx));
}

/* ok; crit (1 retry) when with_failure. */
static fc_workflow_t *make_workflow(int with_failure) {
  fc_workflow_t *wf;
  fc_node_t *n;
  assert_int_equal(fc_workflow_new(&wf, "nightly"), 0);
  assert_int_equal(fc_workflow_add_node(wf, "ok", fn_ok, NULL, NULL), 0);
  if (with_failure) {
    assert_int_equal(fc_workflow_add_node(wf, "crit", fn_critical, NULL, &n), 0);
    assert_int_equal(fc_node_set_retries(n, 1, 0, 0), 0);
  }
  assert_int_equal(fc_workflow_validate(wf, NULL), 0);
  return wf;
}

static void test_real_run_rules(void **state) {
  fc_notify_options_t o;
  fc_notify_t *n;
  fc_manager_t *mgr;
  fc_workflow_t *wf = make_workflow(1);
  fc_run_result_t res;
  fc_handler_t h;
  rec_t r = {0};
  json_t *in = json_pack("{sisb}", "estimated_duration_ms", 600000, "notify_on_failure", 1);
  (void)state;
  fc_notify_options_init(&o);
  n = new_notify(&r, &o);
  assert_int_equal(fc_manager_new(&mgr), 0);
  assert_int_equal(fc_notify_handler_owned(n, &h), 0);
  assert_int_equal(fc_manager_add(mgr, &h, 0, NULL), 0);
  memset(&res, 0, sizeof res);
  assert_int_equal(fc_workflow_run(wf, in, mgr, &res, NULL), 0);
  assert_int_equal(res.status, FC_WORKFLOW_FAILED);
  /* long_running, critical x2 (one per attempt), failure: in that order */
  assert_int_equal(r.n, 4);
  assert_string_equal(fstr(&r, 0, "rule"), "long_running");
  assert_string_equal(fstr(&r, 0, "workflow_id"), res.workflow_id);
  assert_string_equal(fstr(&r, 0, "workflow_name"), "nightly");
  assert_string_equal(fstr(&r, 1, "rule"), "error");
  assert_int_equal(fint(&r, 1, "attempt"), 1);
  assert_string_equal(fstr(&r, 1, "node_id"), "crit");
  assert_string_equal(fstr(&r, 2, "rule"), "error");
  assert_int_equal(fint(&r, 2, "attempt"), 2);
  assert_string_equal(fstr(&r, 3, "rule"), "failure");
  assert_int_equal(fint(&r, 3, "failed_nodes"), 1);
  assert_int_equal(fint(&r, 3, "error_count"), 2);
  fc_run_result_clear(&res);
  fc_manager_free(mgr); /* frees n, which destroys the notifier */
  assert_int_equal(r.destroyed, 1);
  rec_clear(&r);
  json_decref(in);
  fc_workflow_free(wf);
}

/* ---- the command notifier ----------------------------------------------------- */

typedef struct {
  uv_loop_t loop;
  char dir[64];
  fc_cmd_notifier_t *cmd;
  int closed;        /* close_cb calls */
  int closed_inside; /* close_cb ran inside fc_cmd_notifier_close */
  int in_close;
  fc_cmd_notifier_stats_t at_close; /* stats seen in close_cb */
  uint64_t closed_ns;
  /* runs */
  int done;
  uint64_t done_ns;
  fc_cmd_notifier_stats_t at_done;
} env_t;

static int env_setup(void **state) {
  env_t *e = calloc(1, sizeof *e);
  assert_non_null(e);
  assert_int_equal(uv_loop_init(&e->loop), 0);
  snprintf(e->dir, sizeof e->dir, "/tmp/fc-notify-XXXXXX");
  assert_non_null(mkdtemp(e->dir));
  *state = e;
  return 0;
}

static int env_teardown(void **state) {
  env_t *e = *state;
  char cmd[128];
  fc_test_loop_close(&e->loop);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
  assert_int_equal(system(cmd), 0);
  free(e);
  return 0;
}

static void on_closed(fc_cmd_notifier_t *c, void *data) {
  env_t *e = data;
  e->closed++;
  e->closed_inside = e->in_close;
  e->closed_ns = uv_hrtime();
  fc_cmd_notifier_stats(c, &e->at_close);
}

/* Closes e->cmd and runs the loop until close_cb. */
static void close_cmd(env_t *e, uint64_t deadline_ms) {
  e->in_close = 1;
  fc_cmd_notifier_close(e->cmd, deadline_ms, on_closed, e);
  e->in_close = 0;
  while (!e->closed)
    uv_run(&e->loop, UV_RUN_ONCE);
  assert_int_equal(e->closed, 1);
  assert_false(e->closed_inside);
  e->cmd = NULL;
}

static void new_cmd(env_t *e, const char *const *argv, unsigned max_concurrent,
                    uint64_t timeout_ms) {
  fc_cmd_notifier_options_t o;
  fc_cmd_notifier_options_init(&o);
  assert_int_equal(o.max_concurrent, 4);
  assert_int_equal(o.timeout_ms, 30000);
  assert_null(o.loop);
  assert_null(o.argv);
  o.loop = &e->loop;
  o.argv = argv;
  o.max_concurrent = max_concurrent;
  o.timeout_ms = timeout_ms;
  assert_int_equal(fc_cmd_notifier_new(&e->cmd, &o), 0);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;
  if (f == NULL)
    fail_msg("cannot open %s", path);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  n = ftell(f);
  rewind(f);
  buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void test_cmd_delivers_json(void **state) {
  env_t *e = *state;
  char out[128], big_out[128];
  const char *argv[] = {"/bin/sh", "-c", "cat > \"$1\"", "sh", out, NULL};
  const char *argv_big[] = {"sh", "-c", "cat > \"$1\"", "sh", big_out, NULL}; /* PATH search */
  json_t *fields, *got, *big;
  char *text, *pad;
  size_t len;
  fc_cmd_notifier_t *big_cmd;
  fc_cmd_notifier_options_t o;
  snprintf(out, sizeof out, "%s/one.json", e->dir);
  snprintf(big_out, sizeof big_out, "%s/big.json", e->dir);
  new_cmd(e, argv, 0, 0);
  fields = json_pack("{sss[iii]s{sn}sf}", "text", "h\xc3\xa9llo \xe2\x9c\x93 \"q\" \\ \n\t end",
                     "list", 1, 2, 3, "nested", "null", "pi", 3.25);
  assert_non_null(fields);
  assert_int_equal(fc_cmd_notifier_send(e->cmd, "slack", "Long-running \xe2\x9c\x93", fields), 0);

  /* a second notifier: fields over 32 KiB are replaced */
  memset(&o, 0, sizeof o);
  o.loop = &e->loop;
  o.argv = argv_big;
  assert_int_equal(fc_cmd_notifier_new(&big_cmd, &o), 0);
  pad = malloc(40000);
  assert_non_null(pad);
  memset(pad, 'x', 39999);
  pad[39999] = '\0';
  big = json_pack("{ss}", "pad", pad);
  free(pad);
  assert_int_equal(fc_cmd_notifier_send(big_cmd, "email", "big", big), 0);
  json_decref(big);
  fc_cmd_notifier_close(big_cmd, 5000, NULL, NULL);

  close_cmd(e, 5000);
  assert_int_equal(e->at_close.spawned, 1);
  assert_int_equal(e->at_close.succeeded, 1);
  assert_int_equal(e->at_close.failed, 0);
  assert_int_equal(e->at_close.write_errors, 0);
  assert_int_equal(e->at_close.running, 0);
  uv_run(&e->loop, UV_RUN_DEFAULT); /* the other one too */

  text = slurp(out);
  len = strlen(text);
  assert_true(len > 0 && text[len - 1] == '\n');
  assert_null(memchr(text, '\n', len - 1)); /* one line */
  got = json_loads(text, 0, NULL);
  assert_non_null(got);
  assert_string_equal(json_string_value(json_object_get(got, "channel")), "slack");
  assert_string_equal(json_string_value(json_object_get(got, "message")),
                      "Long-running \xe2\x9c\x93");
  assert_true(json_equal(json_object_get(got, "fields"), fields));
  json_decref(got);
  free(text);
  json_decref(fields);

  text = slurp(big_out);
  assert_true(strlen(text) <= 32 * 1024);
  got = json_loads(text, 0, NULL);
  assert_non_null(got);
  assert_true(json_is_true(json_object_get(json_object_get(got, "fields"), "truncated")));
  assert_string_equal(json_string_value(json_object_get(got, "message")), "big");
  json_decref(got);
  free(text);
}

static void on_run_done(fc_run_t *run, void *data) {
  env_t *e = data;
  (void)run;
  e->done++;
  e->done_ns = uv_hrtime();
  if (e->cmd != NULL)
    fc_cmd_notifier_stats(e->cmd, &e->at_done);
}

/* Runs wf on e->loop with mgr until done_cb; returns the run's status. */
static fc_workflow_status_t run_on_loop(env_t *e, fc_workflow_t *wf, fc_manager_t *mgr,
                                        json_t *input, uint64_t *elapsed_ns) {
  fc_run_t *run;
  fc_workflow_status_t status;
  uint64_t t0;
  e->done = 0;
  assert_int_equal(fc_run_new(&run, &e->loop, wf, mgr, NULL), 0);
  t0 = uv_hrtime();
  assert_int_equal(fc_run_start(run, input, on_run_done, e), 0);
  while (!e->done)
    uv_run(&e->loop, UV_RUN_ONCE);
  if (elapsed_ns != NULL)
    *elapsed_ns = e->done_ns - t0;
  status = fc_run_status(run);
  fc_run_close(run, NULL, NULL);
  return status;
}

static int log_lines;
static void count_log(void *data, const char *line) {
  (void)data;
  (void)line;
  log_lines++;
}

static fc_manager_t *manager_with_cmd(env_t *e, int complete) {
  fc_notify_options_t o;
  fc_notify_t *n;
  fc_manager_t *mgr;
  fc_handler_t h;
  fc_notify_options_init(&o);
  o.notifier = fc_cmd_notifier(e->cmd);
  assert_null(o.notifier.destroy); /* borrowed */
  o.long_running_ms = 1000;
  o.notify_on_complete = complete;
  assert_int_equal(fc_notify_new(&n, &o), 0);
  assert_int_equal(fc_manager_new(&mgr), 0);
  fc_manager_set_log_sink(mgr, count_log, NULL, 0); /* expected failures, quietly */
  assert_int_equal(fc_notify_handler_owned(n, &h), 0);
  assert_int_equal(fc_manager_add(mgr, &h, 0, NULL), 0);
  return mgr;
}

static void test_cmd_through_handler(void **state) {
  env_t *e = *state;
  char out[128];
  const char *argv[] = {"/bin/sh", "-c", "cat > \"$1\"", "sh", out, NULL};
  fc_workflow_t *wf = make_workflow(0);
  fc_manager_t *mgr;
  json_t *got;
  char *text;
  snprintf(out, sizeof out, "%s/done.json", e->dir);
  new_cmd(e, argv, 0, 0);
  mgr = manager_with_cmd(e, 1);
  assert_int_equal(run_on_loop(e, wf, mgr, NULL, NULL), FC_WORKFLOW_COMPLETED);
  assert_int_equal(fc_manager_failures(mgr), 0);
  fc_manager_free(mgr);
  close_cmd(e, 5000);
  assert_int_equal(e->at_close.succeeded, 1);
  text = slurp(out);
  got = json_loads(text, 0, NULL);
  assert_non_null(got);
  assert_string_equal(json_string_value(json_object_get(got, "channel")), "email");
  assert_string_equal(json_string_value(json_object_get(json_object_get(got, "fields"), "rule")),
                      "complete");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(got, "fields"), "workflow_name")),
      "nightly");
  json_decref(got);
  free(text);
  fc_workflow_free(wf);
}

static void test_cmd_failures_counted(void **state) {
  env_t *e = *state;
  const char *const argv_false[] = {"/bin/false", NULL};
  const char *const argv_missing[] = {"/nonexistent/flowcore-notify-cmd", NULL};
  const char *const argv_nopath[] = {"flowcore-no-such-command-anywhere", NULL};
  const char *const argv_signal[] = {"/bin/sh", "-c", "kill -9 $$", NULL};
  const char *const argv_slow[] = {"/bin/sleep", "10", NULL};
  fc_workflow_t *wf = make_workflow(0);
  fc_manager_t *mgr;
  uint64_t t0;

  /* non-zero exit: the workflow completes, the failure is counted later */
  new_cmd(e, argv_false, 0, 0);
  mgr = manager_with_cmd(e, 1);
  assert_int_equal(run_on_loop(e, wf, mgr, NULL, NULL), FC_WORKFLOW_COMPLETED);
  assert_int_equal(fc_manager_failures(mgr), 0); /* the spawn itself worked */
  fc_manager_free(mgr);
  close_cmd(e, 5000);
  assert_int_equal(e->at_close.spawned, 1);
  assert_int_equal(e->at_close.exit_nonzero, 1);
  assert_int_equal(e->at_close.failed, 1);
  assert_int_equal(e->at_close.succeeded, 0);
  assert_int_equal(e->at_close.last_exit_status, 1);

  /* missing binary: a spawn error, returned to the manager (isolated) */
  e->closed = 0;
  new_cmd(e, argv_missing, 0, 0);
  mgr = manager_with_cmd(e, 1);
  assert_int_equal(run_on_loop(e, wf, mgr, NULL, NULL), FC_WORKFLOW_COMPLETED);
  assert_int_equal(fc_manager_failures(mgr), 1);
  assert_int_equal(log_lines, 1);
  assert_int_equal(e->at_done.spawn_errors, 1);
  assert_int_equal(e->at_done.last_spawn_error, UV_ENOENT);
  assert_int_equal(fc_cmd_notifier_send(e->cmd, "x", "y", NULL), UV_ENOENT);
  fc_manager_free(mgr);
  close_cmd(e, 5000);
  assert_int_equal(e->at_close.spawn_errors, 2);
  assert_int_equal(e->at_close.failed, 2);
  assert_int_equal(e->at_close.spawned, 0);

  /* not found in PATH */
  e->closed = 0;
  new_cmd(e, argv_nopath, 0, 0);
  assert_int_equal(fc_cmd_notifier_send(e->cmd, "x", "y", NULL), UV_ENOENT);
  close_cmd(e, 0);
  assert_int_equal(e->at_close.spawn_errors, 1);

  /* death by a signal */
  e->closed = 0;
  new_cmd(e, argv_signal, 0, 0);
  assert_int_equal(fc_cmd_notifier_send(e->cmd, "x", "y", NULL), 0);
  close_cmd(e, 5000);
  assert_int_equal(e->at_close.signaled, 1);
  assert_int_equal(e->at_close.failed, 1);
  assert_int_equal(e->at_close.timed_out, 0);

  /* a child outliving timeout_ms is killed and counted */
  e->closed = 0;
  new_cmd(e, argv_slow, 0, 200);
  t0 = uv_hrtime();
  assert_int_equal(fc_cmd_notifier_send(e->cmd, "x", "y", NULL), 0);
  close_cmd(e, 10000);
  assert_true(e->closed_ns - t0 < UINT64_C(5000000000)); /* well before sleep's 10 s */
  assert_int_equal(e->at_close.timed_out, 1);
  assert_int_equal(e->at_close.signaled, 1);
  assert_int_equal(e->at_close.killed_at_close, 0);
  fc_workflow_free(wf);
}

static void test_cmd_does_not_block(void **state) {
  env_t *e = *state;
  const char *const argv[] = {"/bin/sleep", "1", NULL};
  fc_workflow_t *wf = make_workflow(0);
  fc_manager_t *mgr;
  json_t *in = json_pack("{si}", "estimated_duration_ms", 3600000);
  uint64_t elapsed, t0;
  new_cmd(e, argv, 0, 0);
  mgr = manager_with_cmd(e, 0);
  t0 = uv_hrtime();
  assert_int_equal(run_on_loop(e, wf, mgr, in, &elapsed), FC_WORKFLOW_COMPLETED);
  /* the run ended long before the notification command (1 s) did */
  assert_true(elapsed < UINT64_C(500000000));
  assert_int_equal(e->at_done.spawned, 1); /* long_running, at start */
  assert_int_equal(e->at_done.running, 1); /* still sleeping */
  fc_manager_free(mgr);
  close_cmd(e, 10000); /* waits for it */
  assert_true(e->closed_ns - t0 >= UINT64_C(900000000));
  assert_int_equal(e->at_close.succeeded, 1);
  assert_int_equal(e->at_close.killed_at_close, 0);
  json_decref(in);
  fc_workflow_free(wf);
}

static void test_cmd_cap_and_close_deadline(void **state) {
  env_t *e = *state;
  const char *const argv[] = {"/bin/sleep", "10", NULL};
  fc_cmd_notifier_stats_t st;
  uint64_t t0;
  new_cmd(e, argv, 2, 60000);
  assert_int_equal(fc_cmd_notifier_send(e->cmd, "a", "1", NULL), 0);
  assert_int_equal(fc_cmd_notifier_send(e->cmd, "a", "2", NULL), 0);
  assert_int_equal(fc_cmd_notifier_send(e->cmd, "a", "3", NULL), UV_EBUSY);
  fc_cmd_notifier_stats(e->cmd, &st);
  assert_int_equal(st.requested, 3);
  assert_int_equal(st.spawned, 2);
  assert_int_equal(st.dropped, 1);
  assert_int_equal(st.running, 2);
  t0 = uv_hrtime();
  e->in_close = 1;
  fc_cmd_notifier_close(e->cmd, 200, on_closed, e);
  e->in_close = 0;
  /* sends after close are dropped */
  assert_int_equal(fc_cmd_notifier_send(e->cmd, "a", "4", NULL), FC_ECANCELED);
  while (!e->closed)
    uv_run(&e->loop, UV_RUN_ONCE);
  assert_false(e->closed_inside);
  assert_true(e->closed_ns - t0 >= UINT64_C(150000000));
  assert_true(e->closed_ns - t0 < UINT64_C(5000000000));
  assert_int_equal(e->at_close.killed_at_close, 2);
  assert_int_equal(e->at_close.signaled, 2);
  assert_int_equal(e->at_close.dropped, 2);
  assert_int_equal(e->at_close.running, 0);

  /* closing with nothing running: close_cb still comes from the loop */
  e->closed = 0;
  new_cmd(e, argv, 0, 0);
  close_cmd(e, 1000);
  assert_int_equal(e->at_close.requested, 0);
}

/* Children that close stdin at once or never read it: every payload write
 * that races with them must be survived (SIGPIPE is blocked and consumed),
 * and every outcome counted. */
static void test_cmd_children_not_reading(void **state) {
  env_t *e = *state;
  const char *const argv[] = {"/bin/sh", "-c", "exec 0<&-; exit 0", NULL};
  json_t *fields = json_pack("{ss}", "pad", "0123456789abcdef0123456789abcdef");
  int i;
  new_cmd(e, argv, 64, 0);
  for (i = 0; i < 40; i++) {
    assert_int_equal(fc_cmd_notifier_send(e->cmd, "x", "y", fields), 0);
    uv_run(&e->loop, UV_RUN_NOWAIT);
  }
  close_cmd(e, 10000);
  assert_int_equal(e->at_close.spawned, 40);
  assert_int_equal(e->at_close.succeeded, 40);
  assert_int_equal(e->at_close.failed, 0);
  json_decref(fields);
}

static void test_cmd_options(void **state) {
  env_t *e = *state;
  fc_cmd_notifier_options_t o;
  fc_cmd_notifier_t *c;
  const char *const empty[] = {NULL};
  const char *const blank[] = {"", NULL};
  memset(&o, 0, sizeof o);
  assert_int_equal(fc_cmd_notifier_new(&c, &o), FC_EINVAL); /* no loop */
  o.loop = &e->loop;
  assert_int_equal(fc_cmd_notifier_new(&c, &o), FC_EINVAL); /* no argv */
  o.argv = empty;
  assert_int_equal(fc_cmd_notifier_new(&c, &o), FC_EINVAL);
  o.argv = blank;
  assert_int_equal(fc_cmd_notifier_new(&c, &o), FC_EINVAL);
  assert_int_equal(fc_cmd_notifier_new(&c, NULL), FC_EINVAL);
  assert_int_equal(fc_cmd_notifier_send(NULL, "a", "b", NULL), FC_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_rules),
      cmocka_unit_test(test_rule_options),
      cmocka_unit_test(test_ownership_and_failures),
      cmocka_unit_test(test_real_run_rules),
      cmocka_unit_test_setup_teardown(test_cmd_delivers_json, env_setup, env_teardown),
      cmocka_unit_test_setup_teardown(test_cmd_through_handler, env_setup, env_teardown),
      cmocka_unit_test_setup_teardown(test_cmd_failures_counted, env_setup, env_teardown),
      cmocka_unit_test_setup_teardown(test_cmd_does_not_block, env_setup, env_teardown),
      cmocka_unit_test_setup_teardown(test_cmd_cap_and_close_deadline, env_setup, env_teardown),
      cmocka_unit_test_setup_teardown(test_cmd_children_not_reading, env_setup, env_teardown),
      cmocka_unit_test_setup_teardown(test_cmd_options, env_setup, env_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

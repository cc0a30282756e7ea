/* The recording handler: deep copies, queries, order checks, the contract
 * checker and the fc_assert_* macros. Events are built by hand. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fc_test.h"

#define WF1 "01890a5d-ac96-774b-bcce-b302099a8057"
#define WF2 "01890a5d-ac96-774b-bcce-b302099a8058"

typedef struct {
  fc_recorder_t *r;
  fc_handler_t h;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  if (f == NULL || fc_recorder_new(&f->r) != 0)
    return -1;
  if (fc_recorder_handler(f->r, &f->h) != 0)
    return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  fc_recorder_free(f->r);
  free(f);
  return 0;
}

static fc_event_t make_event(fc_event_kind_t kind, const char *wf, const char *node, int attempt,
                             int status) {
  fc_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = kind;
  ev.workflow_id = wf;
  ev.workflow_name = "demo";
  ev.node_id = node;
  ev.node_type = node ? "task" : NULL;
  ev.node_index = node ? 0 : -1;
  ev.attempt = attempt;
  ev.status = status;
  ev.time_us = 1795753853123456;
  return ev;
}

/* Records one event through the handler. */
static void rec(fixture_t *f, fc_event_kind_t kind, const char *wf, const char *node, int attempt,
                int status) {
  fc_event_t ev = make_event(kind, wf, node, attempt, status);
  fc_error_info_t info;
  if (kind == FC_EVENT_ERROR) {
    memset(&info, 0, sizeof info);
    info.type = "exit_status";
    info.message = "boom";
    info.severity = FC_SEVERITY_ERROR;
    info.node_id = node;
    info.attempt = attempt;
    ev.error = &info;
  }
  assert_int_equal(fc_handler_call(&f->h, &ev), 0);
}

#define WS(f, wf) rec((f), FC_EVENT_WORKFLOW_START, (wf), NULL, 0, FC_WORKFLOW_RUNNING)
#define WE(f, wf) rec((f), FC_EVENT_WORKFLOW_END, (wf), NULL, 0, FC_WORKFLOW_COMPLETED)
#define NS(f, wf, n, a) rec((f), FC_EVENT_NODE_START, (wf), (n), (a), FC_NODE_RUNNING)
#define NE(f, wf, n, a, s) rec((f), FC_EVENT_NODE_END, (wf), (n), (a), (s))
#define ER(f, wf, n, a) rec((f), FC_EVENT_ERROR, (wf), (n), (a), 0)

/* A valid run: a ok; b fails once (error), then succeeds; c skipped. */
static void record_valid_run(fixture_t *f, const char *wf) {
  WS(f, wf);
  NS(f, wf, "a", 1);
  NE(f, wf, "a", 1, FC_NODE_COMPLETED);
  NS(f, wf, "b", 1);
  ER(f, wf, "b", 1);
  NE(f, wf, "b", 1, FC_NODE_FAILED);
  NS(f, wf, "b", 2);
  NE(f, wf, "b", 2, FC_NODE_COMPLETED);
  NE(f, wf, "c", 0, FC_NODE_SKIPPED);
  WE(f, wf);
}

/* ---- copies -------------------------------------------------------------- */

static void test_deep_copy(void **state) {
  fixture_t *f = *state;
  json_t *input = json_pack("{s:[i,i], s:s, s:{s:b}}", "list", 1, 2, "name", "x", "obj", "flag", 1);
  json_t *expect = json_deep_copy(input);
  json_t *output = json_string("result");
  char node[16], wf[40], etype[16], emsg[16], stack[16];
  fc_error_info_t info;
  fc_event_t ev;
  const fc_recorded_event_t *e;

  snprintf(node, sizeof node, "fetch");
  snprintf(wf, sizeof wf, WF1);
  ev = make_event(FC_EVENT_NODE_START, wf, node, 1, FC_NODE_RUNNING);
  ev.input = input;
  ev.node_count = 4;
  ev.duration_us = 77;
  assert_int_equal(fc_handler_call(&f->h, &ev), 0);
  ev = make_event(FC_EVENT_NODE_END, wf, node, 1, FC_NODE_COMPLETED);
  ev.output = output;
  assert_int_equal(fc_handler_call(&f->h, &ev), 0);

  snprintf(etype, sizeof etype, "timeout");
  snprintf(emsg, sizeof emsg, "too slow");
  snprintf(stack, sizeof stack, "line 1");
  memset(&info, 0, sizeof info);
  info.type = etype;
  info.message = emsg;
  info.stack_trace = stack;
  info.severity = FC_SEVERITY_CRITICAL;
  ev = make_event(FC_EVENT_ERROR, wf, node, 1, 0);
  ev.error = &info;
  assert_int_equal(fc_handler_call(&f->h, &ev), 0);

  /* mutate and release everything the events pointed to */
  json_array_append_new(json_object_get(input, "list"), json_integer(3));
  json_object_set_new(input, "name", json_string("changed"));
  json_object_del(input, "obj");
  json_decref(input);
  json_string_set(output, "changed");
  json_decref(output);
  memset(node, 'z', sizeof node - 1);
  memset(wf, 'z', sizeof wf - 1);
  memset(etype, 'z', sizeof etype - 1);
  memset(emsg, 'z', sizeof emsg - 1);
  memset(stack, 'z', sizeof stack - 1);

  assert_int_equal(fc_recorder_size(f->r), 3);
  e = fc_recorder_at(f->r, 0);
  assert_non_null(e);
  assert_int_equal(e->kind, FC_EVENT_NODE_START);
  assert_string_equal(e->node_id, "fetch");
  assert_string_equal(e->workflow_id, WF1);
  assert_string_equal(e->workflow_name, "demo");
  assert_string_equal(e->node_type, "task");
  assert_int_equal(e->attempt, 1);
  assert_int_equal(e->status, FC_NODE_RUNNING);
  assert_int_equal(e->node_count, 4);
  assert_int_equal(e->duration_us, 77);
  assert_int_equal(e->time_us, 1795753853123456);
  assert_int_equal(e->seq, 0);
  assert_non_null(e->input);
  assert_true(json_equal(e->input, expect));
  assert_null(e->output);
  assert_null(e->error_type);

  e = fc_recorder_at(f->r, 1);
  assert_int_equal(e->seq, 1);
  assert_null(e->input);
  assert_string_equal(json_string_value(e->output), "result");

  e = fc_recorder_at(f->r, 2);
  assert_string_equal(e->error_type, "timeout");
  assert_string_equal(e->error_message, "too slow");
  assert_string_equal(e->error_stack_trace, "line 1");
  assert_int_equal(e->error_severity, FC_SEVERITY_CRITICAL);
  assert_null(fc_recorder_at(f->r, 3));
  json_decref(expect);
}

/* An error event that names its node only in the error info. */
static void test_error_node_from_info(void **state) {
  fixture_t *f = *state;
  fc_error_info_t info;
  fc_event_t ev = make_event(FC_EVENT_ERROR, WF1, NULL, 0, 0);
  const fc_recorded_event_t *e;
  memset(&info, 0, sizeof info);
  info.type = "t";
  info.message = "m";
  info.node_id = "n9";
  info.attempt = 3;
  ev.error = &info;
  assert_int_equal(fc_handler_call(&f->h, &ev), 0);
  e = fc_recorder_at(f->r, 0);
  assert_string_equal(e->node_id, "n9");
  assert_int_equal(e->attempt, 3);
  assert_null(e->error_stack_trace);
}

/* ---- queries ------------------------------------------------------------- */

static void test_counts_and_find(void **state) {
  fixture_t *f = *state;
  const fc_recorded_event_t *e;
  record_valid_run(f, WF1);
  assert_int_equal(fc_recorder_size(f->r), 10);
  assert_int_equal(fc_recorder_count(f->r, FC_EVENT_NODE_START, NULL), 3);
  assert_int_equal(fc_recorder_count(f->r, FC_EVENT_NODE_START, "b"), 2);
  assert_int_equal(fc_recorder_count(f->r, FC_EVENT_NODE_START, "c"), 0);
  assert_int_equal(fc_recorder_count(f->r, FC_EVENT_NODE_END, "c"), 1);
  assert_int_equal(fc_recorder_count(f->r, FC_EVENT_NODE_END, "nope"), 0);
  assert_int_equal(fc_recorder_count(f->r, FC_EVENT_WORKFLOW_START, NULL), 1);
  assert_int_equal(fc_recorder_count(f->r, FC_EVENT_ERROR, NULL), 1);
  assert_int_equal(fc_recorder_count_status(f->r, NULL, FC_NODE_COMPLETED), 2);
  assert_int_equal(fc_recorder_count_status(f->r, "b", FC_NODE_FAILED), 1);
  assert_int_equal(fc_recorder_count_status(f->r, "b", FC_NODE_COMPLETED), 1);
  assert_int_equal(fc_recorder_count_status(f->r, "a", FC_NODE_FAILED), 0);
  assert_int_equal(fc_recorder_count_status(f->r, NULL, FC_NODE_SKIPPED), 1);
  /* node_start has status RUNNING, but only node_end counts */
  assert_int_equal(fc_recorder_count_status(f->r, NULL, FC_NODE_RUNNING), 0);

  assert_int_equal(fc_recorder_find(f->r, FC_EVENT_NODE_START, "b", 0), 3);
  assert_int_equal(fc_recorder_find(f->r, FC_EVENT_NODE_START, "b", 4), 6);
  assert_int_equal(fc_recorder_find(f->r, FC_EVENT_NODE_START, "b", 7), -1);
  assert_int_equal(fc_recorder_find(f->r, FC_EVENT_NODE_END, NULL, 0), 2);
  assert_int_equal(fc_recorder_find(f->r, FC_EVENT_WORKFLOW_END, NULL, 0), 9);
  assert_int_equal(fc_recorder_find(f->r, FC_EVENT_WORKFLOW_END, NULL, 100), -1);

  e = fc_recorder_last(f->r, FC_EVENT_NODE_END, "b");
  assert_non_null(e);
  assert_int_equal(e->seq, 7);
  assert_int_equal(e->attempt, 2);
  e = fc_recorder_last(f->r, FC_EVENT_NODE_END, NULL);
  assert_int_equal(e->seq, 8);
  assert_null(fc_recorder_last(f->r, FC_EVENT_NODE_START, "c"));

  fc_recorder_clear(f->r);
  assert_int_equal(fc_recorder_size(f->r), 0);
  assert_null(fc_recorder_at(f->r, 0));
  assert_int_equal(fc_recorder_count(f->r, FC_EVENT_NODE_START, NULL), 0);
  /* recording goes on after a clear, numbered from 0 */
  WS(f, WF1);
  assert_int_equal(fc_recorder_at(f->r, 0)->seq, 0);
}

static void test_in_order(void **state) {
  fixture_t *f = *state;
  char msg[256];
  const fc_event_kind_t ok_kinds[] = {FC_EVENT_WORKFLOW_START, FC_EVENT_NODE_END, FC_EVENT_ERROR,
                                      FC_EVENT_NODE_START, FC_EVENT_WORKFLOW_END};
  const char *const ok_nodes[] = {NULL, "a", "b", "b", NULL};
  const fc_event_kind_t bad_kinds[] = {FC_EVENT_NODE_END, FC_EVENT_NODE_START};
  const char *const bad_nodes[] = {"b", "a"};
  const fc_event_kind_t kinds3[] = {FC_EVENT_NODE_START, FC_EVENT_NODE_START, FC_EVENT_NODE_START};
  const char *const nodes3[] = {"b", "b", "b"};

  record_valid_run(f, WF1);
  strcpy(msg, "untouched");
  assert_true(fc_recorder_in_order(f->r, ok_kinds, ok_nodes, 5, msg, sizeof msg));
  assert_string_equal(msg, "");
  assert_true(fc_recorder_in_order(f->r, ok_kinds, NULL, 5, NULL, 0));
  assert_true(fc_recorder_in_order(f->r, ok_kinds, ok_nodes, 0, msg, sizeof msg));

  /* node_end of b comes after node_start of a: reversed is not in order */
  assert_false(fc_recorder_in_order(f->r, bad_kinds, bad_nodes, 2, msg, sizeof msg));
  assert_non_null(strstr(msg, "step 1"));
  assert_non_null(strstr(msg, "node_start a"));
  /* b started twice, not three times */
  assert_false(fc_recorder_in_order(f->r, kinds3, nodes3, 3, msg, sizeof msg));
  assert_non_null(strstr(msg, "step 2 (node_start b)"));
  assert_true(fc_recorder_in_order(f->r, kinds3, nodes3, 2, msg, sizeof msg));
  /* a step that never happened at all */
  assert_false(
      fc_recorder_in_order(f->r, bad_kinds + 1, (const char *const[]){"zz"}, 1, msg, sizeof msg));
  assert_non_null(strstr(msg, "step 0 (node_start zz) not found"));
  assert_false(fc_recorder_in_order(f->r, bad_kinds, bad_nodes, 2, NULL, 0));
}

/* ---- contract ------------------------------------------------------------ */

static void expect_violation(fixture_t *f, const char *needle) {
  char msg[256];
  msg[0] = '\0';
  if (fc_recorder_check_contract(f->r, msg, sizeof msg))
    fail_msg("contract accepted a recording that should fail with \"%s\"", needle);
  if (strstr(msg, needle) == NULL)
    fail_msg("message \"%s\" does not contain \"%s\"", msg, needle);
}

static void test_contract_valid(void **state) {
  fixture_t *f = *state;
  char msg[256] = "untouched";
  /* an empty recording is fine */
  assert_true(fc_recorder_check_contract(f->r, msg, sizeof msg));
  /* two runs interleaved, with a workflow-level error */
  WS(f, WF1);
  WS(f, WF2);
  NS(f, WF1, "a", 1);
  NS(f, WF2, "a", 1);
  ER(f, WF2, "a", 1);
  NE(f, WF1, "a", 1, FC_NODE_COMPLETED);
  NE(f, WF2, "a", 1, FC_NODE_TIMED_OUT);
  NS(f, WF2, "a", 2);
  NE(f, WF2, "a", 2, FC_NODE_COMPLETED);
  ER(f, WF1, NULL, 0);
  NE(f, WF1, "b", 0, FC_NODE_CANCELLED);
  WE(f, WF1);
  WE(f, WF2);
  assert_true(fc_recorder_check_contract(f->r, msg, sizeof msg));
  assert_string_equal(msg, "");
  record_valid_run(f, "01890a5d-ac96-774b-bcce-b302099a8059");
  assert_true(fc_recorder_check_contract(f->r, NULL, 0));
}

static void test_contract_node_count(void **state) {
  fixture_t *f = *state;
  fc_event_t ev = make_event(FC_EVENT_WORKFLOW_END, WF1, NULL, 0, FC_WORKFLOW_COMPLETED);
  WS(f, WF1);
  NS(f, WF1, "a", 1);
  NE(f, WF1, "a", 1, FC_NODE_FAILED);
  NS(f, WF1, "a", 2);
  NE(f, WF1, "a", 2, FC_NODE_COMPLETED);
  NE(f, WF1, "b", 0, FC_NODE_SKIPPED);
  ev.node_count = 3; /* c never got a node_end */
  assert_int_equal(fc_handler_call(&f->h, &ev), 0);
  expect_violation(f, "2 of 3 nodes");
  fc_recorder_clear(f->r);
  WS(f, WF1);
  NS(f, WF1, "a", 1);
  NE(f, WF1, "a", 1, FC_NODE_COMPLETED);
  NE(f, WF1, "b", 0, FC_NODE_SKIPPED);
  ev.node_count = 2;
  assert_int_equal(fc_handler_call(&f->h, &ev), 0);
  assert_true(fc_recorder_check_contract(f->r, NULL, 0));
}

static void test_contract_violations(void **state) {
  fixture_t *f = *state;

  /* node event before workflow_start */
  NS(f, WF1, "a", 1);
  WS(f, WF1);
  expect_violation(f, "before the workflow_start");
  fc_recorder_clear(f->r);

  /* two workflow_starts */
  WS(f, WF1);
  WS(f, WF1);
  WE(f, WF1);
  expect_violation(f, "second workflow_start");
  fc_recorder_clear(f->r);

  /* anything after workflow_end */
  record_valid_run(f, WF1);
  NE(f, WF1, "d", 0, FC_NODE_SKIPPED);
  expect_violation(f, "after the workflow_end");
  fc_recorder_clear(f->r);

  /* no workflow_end */
  WS(f, WF1);
  NS(f, WF1, "a", 1);
  NE(f, WF1, "a", 1, FC_NODE_COMPLETED);
  expect_violation(f, "has no workflow_end");
  fc_recorder_clear(f->r);

  /* a second attempt before the node_end of the first */
  WS(f, WF1);
  NS(f, WF1, "a", 1);
  NS(f, WF1, "a", 2);
  NE(f, WF1, "a", 2, FC_NODE_COMPLETED);
  WE(f, WF1);
  expect_violation(f, "while attempt 1 has no node_end");
  fc_recorder_clear(f->r);

  /* attempts not numbered from 1 */
  WS(f, WF1);
  NS(f, WF1, "a", 2);
  NE(f, WF1, "a", 2, FC_NODE_COMPLETED);
  WE(f, WF1);
  expect_violation(f, "attempt 2, expected 1");
  fc_recorder_clear(f->r);

  /* an attempt skipped */
  WS(f, WF1);
  NS(f, WF1, "a", 1);
  NE(f, WF1, "a", 1, FC_NODE_FAILED);
  NS(f, WF1, "a", 3);
  NE(f, WF1, "a", 3, FC_NODE_COMPLETED);
  WE(f, WF1);
  expect_violation(f, "attempt 3, expected 2");
  fc_recorder_clear(f->r);

  /* node_end without node_start */
  WS(f, WF1);
  NE(f, WF1, "a", 1, FC_NODE_COMPLETED);
  WE(f, WF1);
  expect_violation(f, "without its node_start");
  fc_recorder_clear(f->r);

  /* node_end of another attempt */
  WS(f, WF1);
  NS(f, WF1, "a", 1);
  NE(f, WF1, "a", 1, FC_NODE_FAILED);
  NS(f, WF1, "a", 2);
  NE(f, WF1, "a", 1, FC_NODE_COMPLETED);
  WE(f, WF1);
  expect_violation(f, "attempt 1 while attempt 2 is open");
  fc_recorder_clear(f->r);

  /* error after the node_end of its attempt */
  WS(f, WF1);
  NS(f, WF1, "a", 1);
  NE(f, WF1, "a", 1, FC_NODE_FAILED);
  ER(f, WF1, "a", 1);
  WE(f, WF1);
  expect_violation(f, "error of node a attempt 1 outside");
  fc_recorder_clear(f->r);

  /* error naming the wrong attempt */
  WS(f, WF1);
  NS(f, WF1, "a", 1);
  ER(f, WF1, "a", 2);
  NE(f, WF1, "a", 1, FC_NODE_FAILED);
  WE(f, WF1);
  expect_violation(f, "attempt 2 outside");
  fc_recorder_clear(f->r);

  /* attempt 0 for a node that ran */
  WS(f, WF1);
  NS(f, WF1, "a", 1);
  NE(f, WF1, "a", 1, FC_NODE_FAILED);
  NE(f, WF1, "a", 0, FC_NODE_SKIPPED);
  WE(f, WF1);
  expect_violation(f, "attempt 0, but it ran");
  fc_recorder_clear(f->r);

  /* attempt 0 twice */
  WS(f, WF1);
  NE(f, WF1, "a", 0, FC_NODE_SKIPPED);
  NE(f, WF1, "a", 0, FC_NODE_SKIPPED);
  WE(f, WF1);
  expect_violation(f, "already ended");
  fc_recorder_clear(f->r);

  /* a start after "never ran" */
  WS(f, WF1);
  NE(f, WF1, "a", 0, FC_NODE_CANCELLED);
  NS(f, WF1, "a", 1);
  NE(f, WF1, "a", 1, FC_NODE_COMPLETED);
  WE(f, WF1);
  expect_violation(f, "after its node_end with attempt 0");
  fc_recorder_clear(f->r);

  /* attempt 0 with a status other than skipped/cancelled */
  WS(f, WF1);
  NE(f, WF1, "a", 0, FC_NODE_COMPLETED);
  WE(f, WF1);
  expect_violation(f, "status completed");
  fc_recorder_clear(f->r);

  /* workflow_end while a node is running */
  WS(f, WF1);
  NS(f, WF1, "a", 1);
  WE(f, WF1);
  expect_violation(f, "node a attempt 1 has no node_end");
  fc_recorder_clear(f->r);

  /* node event without node id; event without workflow id */
  WS(f, WF1);
  NS(f, WF1, NULL, 1);
  expect_violation(f, "has no node_id");
  fc_recorder_clear(f->r);
  WS(f, NULL);
  expect_violation(f, "has no workflow_id");
  fc_recorder_clear(f->r);

  /* a violation in one run is found among valid runs */
  record_valid_run(f, WF2);
  WS(f, WF1);
  NS(f, WF1, "x", 1);
  record_valid_run(f, "01890a5d-ac96-774b-bcce-b302099a8059");
  NE(f, WF1, "x", 2, FC_NODE_COMPLETED);
  WE(f, WF1);
  expect_violation(f, "attempt 2 while attempt 1 is open");
}

/* A large recording (many nodes): the checker stays correct past its table
 * growth. */
static void test_contract_many_nodes(void **state) {
  fixture_t *f = *state;
  char id[32];
  int i;
  WS(f, WF1);
  for (i = 0; i < 2000; i++) {
    snprintf(id, sizeof id, "n%d", i);
    NS(f, WF1, id, 1);
    NE(f, WF1, id, 1, FC_NODE_COMPLETED);
  }
  WE(f, WF1);
  assert_true(fc_recorder_check_contract(f->r, NULL, 0));
  fc_recorder_clear(f->r);
  WS(f, WF1);
  for (i = 0; i < 2000; i++) {
    snprintf(id, sizeof id, "n%d", i);
    NS(f, WF1, id, 1);
    if (i != 1234)
      NE(f, WF1, id, 1, FC_NODE_COMPLETED);
  }
  WE(f, WF1);
  expect_violation(f, "node n1234 attempt 1 has no node_end");
}

/* ---- handlers and the manager -------------------------------------------- */

static void test_fail_on_and_manager(void **state) {
  fc_recorder_t *r, *owned;
  fc_manager_t *m;
  fc_handler_t h;
  fc_handler_stats_t st;
  fc_event_t ev = make_event(FC_EVENT_NODE_END, WF1, "a", 1, FC_NODE_COMPLETED);
  int id, id_owned;
  (void)state;
  assert_int_equal(fc_recorder_new(&r), 0);
  assert_int_equal(fc_recorder_new(&owned), 0);
  assert_int_equal(fc_manager_new(&m), 0);
  assert_int_equal(fc_recorder_handler(r, &h), 0);
  assert_string_equal(h.name, "recorder");
  assert_null(h.destroy);
  assert_int_equal(fc_manager_add(m, &h, 0, &id), 0);
  assert_int_equal(fc_recorder_handler(NULL, &h), FC_EINVAL);
  assert_null(h.self);
  assert_int_equal(fc_recorder_handler(r, NULL), FC_EINVAL);
  {
    fc_recorder_t *lost = NULL; /* owned even on failure: freed (ASan and
                                   valgrind would report the leak) */
    assert_int_equal(fc_recorder_new(&lost), 0);
    assert_int_equal(fc_recorder_handler_owned(lost, NULL), FC_EINVAL);
  }
  assert_int_equal(fc_recorder_handler_owned(owned, &h), 0);
  assert_non_null(h.destroy);
  assert_int_equal(fc_manager_add(m, &h, 0, &id_owned), 0);
  fc_manager_set_log_sink(m, NULL, NULL, 1); /* stderr, one line */

  fc_recorder_fail_on(r, FC_EVENT_NODE_END, FC_EHANDLER);
  assert_int_equal(fc_manager_dispatch(m, &ev), 1);
  ev.kind = FC_EVENT_NODE_START;
  assert_int_equal(fc_manager_dispatch(m, &ev), 0);
  fc_recorder_fail_on(r, FC_EVENT_NODE_END, 0);
  ev.kind = FC_EVENT_NODE_END;
  assert_int_equal(fc_manager_dispatch(m, &ev), 0);

  /* failing events are still recorded; the other recorder saw all */
  assert_int_equal(fc_recorder_size(r), 3);
  assert_int_equal(fc_recorder_size(owned), 3);
  assert_int_equal(fc_manager_handler_stats(m, id, &st), 0);
  assert_int_equal(st.calls, 3);
  assert_int_equal(st.failures, 1);
  assert_int_equal(st.last_error, FC_EHANDLER);
  assert_int_equal(fc_manager_handler_stats(m, id_owned, &st), 0);
  assert_int_equal(st.failures, 0);
  fc_manager_free(m); /* frees `owned` (valgrind/ASan would see a leak) */
  fc_recorder_free(r);
}

/* ---- the fc_assert_* macros ---------------------------------------------- */

static void test_assert_macros_pass(void **state) {
  fixture_t *f = *state;
  const fc_event_kind_t kinds[] = {FC_EVENT_WORKFLOW_START, FC_EVENT_ERROR, FC_EVENT_WORKFLOW_END};
  const char *const nodes[] = {NULL, "b", NULL};
  record_valid_run(f, WF1);
  fc_assert_called(f->r, FC_EVENT_NODE_START, 3);
  fc_assert_called(f->r, FC_EVENT_WORKFLOW_END, 1);
  fc_assert_node_called(f->r, FC_EVENT_NODE_START, "b", 2);
  fc_assert_node_called(f->r, FC_EVENT_NODE_START, "c", 0);
  fc_assert_in_order(f->r, kinds, nodes, 3);
  fc_assert_contract(f->r);
}

/* Tests that must fail; run in a child process (below). */
static void must_fail_called(void **state) {
  fixture_t *f = *state;
  record_valid_run(f, WF1);
  fc_assert_called(f->r, FC_EVENT_NODE_START, 2);
}

static void must_fail_node_called(void **state) {
  fixture_t *f = *state;
  record_valid_run(f, WF1);
  fc_assert_node_called(f->r, FC_EVENT_NODE_END, "c", 2);
}

static void must_fail_in_order(void **state) {
  fixture_t *f = *state;
  const fc_event_kind_t kinds[] = {FC_EVENT_WORKFLOW_END, FC_EVENT_WORKFLOW_START};
  record_valid_run(f, WF1);
  fc_assert_in_order(f->r, kinds, NULL, 2);
}

static void must_fail_contract(void **state) {
  fixture_t *f = *state;
  WS(f, WF1);
  NS(f, WF1, "a", 1);
  fc_assert_contract(f->r);
}

static void test_assert_macros_fail(void **state) {
  const struct CMUnitTest failing[] = {
      cmocka_unit_test_setup_teardown(must_fail_called, setup, teardown),
      cmocka_unit_test_setup_teardown(must_fail_node_called, setup, teardown),
      cmocka_unit_test_setup_teardown(must_fail_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(must_fail_contract, setup, teardown),
  };
  int status;
  pid_t pid;
  (void)state;
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    /* quiet: the child's report is four expected failures */
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
      dup2(devnull, 1);
      dup2(devnull, 2);
    }
    _exit(cmocka_run_group_tests(failing, NULL, NULL));
  }
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 4); /* every macro failed its test */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_deep_copy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_error_node_from_info, setup, teardown),
      cmocka_unit_test_setup_teardown(test_counts_and_find, setup, teardown),
      cmocka_unit_test_setup_teardown(test_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_contract_valid, setup, teardown),
      cmocka_unit_test_setup_teardown(test_contract_node_count, setup, teardown),
      cmocka_unit_test_setup_teardown(test_contract_violations, setup, teardown),
      cmocka_unit_test_setup_teardown(test_contract_many_nodes, setup, teardown),
      cmocka_unit_test(test_fail_on_and_manager),
      cmocka_unit_test_setup_teardown(test_assert_macros_pass, setup, teardown),
      cmocka_unit_test(test_assert_macros_fail),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

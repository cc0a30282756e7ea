/* The history writer against a real PostgreSQL: what a run leaves in the
 * database, exactly. The server is started by the fixture (tests/support/
 * pg_server.h); each test gets a fresh, migrated database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_test.h"
#include "history_fixture.h"
#include "pg_server.h"

static fc_test_pg_t pg;
static char db[FC_TEST_PG_CONNINFO_LENGTH];
static int db_seq;

static int group_setup(void **state) {
  (void)state;
  return fc_test_pg_start(&pg) == 0 ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  return fc_test_pg_stop(&pg);
}

/* A fresh database with the migrations applied. */
static int test_setup(void **state) {
  char name[64];
  fc_migrate_report_t rep;
  fc_error_t err;
  (void)state;
  snprintf(name, sizeof name, "hist_%d", ++db_seq);
  if (fc_test_pg_create_db(&pg, name, db, sizeof db) != 0)
    return -1;
  fc_error_clear(&err);
  if (fc_migrate_run(db, FLOWCORE_SOURCE_DIR "/migrations", &rep, &err) != 0) {
    fprintf(stderr, "migrate: %s\n", err.text);
    return -1;
  }
  fc_migrate_report_free(&rep);
  return 0;
}

/* ---- a harness: a loop, a manager with the database handler and a recorder */

typedef struct {
  uv_loop_t loop;
  fc_manager_t *mgr;
  fc_recorder_t *rec;
  fc_history_writer_t *w;
  int db_id;
} harness;

static void harness_init(harness *h, const fc_history_config_t *cfg_in) {
  fc_history_config_t cfg;
  fc_handler_t dbh;
  fc_error_t err;
  if (cfg_in != NULL)
    cfg = *cfg_in;
  else
    fc_history_config_init(&cfg);
  cfg.conninfo = db;
  cfg.reconnect_min_ms = 20;
  cfg.reconnect_max_ms = 200;
  assert_int_equal(uv_loop_init(&h->loop), 0);
  assert_int_equal(fc_manager_new(&h->mgr), 0);
  assert_int_equal(fc_recorder_new(&h->rec), 0);
  fc_handler_t rh;
  assert_int_equal(fc_recorder_handler(h->rec, &rh), 0);
  assert_int_equal(fc_manager_add(h->mgr, &rh, 0, NULL), 0);
  fc_error_clear(&err);
  assert_int_equal(fc_history_writer_new(&h->w, &cfg, &err), 0);
  assert_int_equal(fc_history_handler(h->w, &h->loop, &dbh), 0);
  assert_int_equal(fc_manager_add(h->mgr, &dbh, 0, &h->db_id), 0);
}

/* Runs wf to the end on the harness loop; returns the run (closed by
 * harness_run_close). */
static fc_run_t *harness_run(harness *h, fc_workflow_t *wf, json_t *input) {
  fc_run_t *run;
  fc_error_t err;
  fc_error_clear(&err);
  assert_int_equal(fc_run_new(&run, &h->loop, wf, h->mgr, &err), 0);
  assert_int_equal(fc_run_start(run, input, NULL, NULL), 0);
  uv_run(&h->loop, UV_RUN_DEFAULT);
  assert_int_not_equal(fc_run_status(run), FC_WORKFLOW_RUNNING);
  return run;
}

static void harness_close(harness *h, fc_history_stats_t *report) {
  assert_int_equal(fc_manager_remove(h->mgr, h->db_id), 0);
  uv_run(&h->loop, UV_RUN_DEFAULT); /* the handler's handles close */
  fc_history_stats_t st;
  int rc = fc_history_writer_close(h->w, &st);
  if (report != NULL)
    *report = st;
  assert_int_equal(rc, 0);
  assert_int_equal(st.dropped_total, 0);
  assert_int_equal(st.accepted, st.written);
  fc_manager_free(h->mgr);
  fc_recorder_free(h->rec);
  fc_test_loop_close(&h->loop);
}

/* ---- node functions ---------------------------------------------------------- */

static void ok_fn(fc_node_ctx_t *ctx, void *data) {
  (void)data;
  fc_node_succeed(ctx, json_pack("{s:s,s:i}", "node", fc_node_ctx_node_id(ctx), "attempt",
                                 fc_node_ctx_attempt(ctx)));
}

/* Fails attempt 1, succeeds after. */
static void flaky_fn(fc_node_ctx_t *ctx, void *data) {
  (void)data;
  if (fc_node_ctx_attempt(ctx) == 1)
    fc_node_failf(ctx, FC_SEVERITY_WARNING, "flaky", "first attempt of %s fails",
                  fc_node_ctx_node_id(ctx));
  else
    fc_node_succeed(ctx, json_pack("{s:b}", "recovered", 1));
}

static void fail_fn(fc_node_ctx_t *ctx, void *data) {
  (void)data;
  fc_node_failf(ctx, FC_SEVERITY_CRITICAL, "broken", "node %s always fails",
                fc_node_ctx_node_id(ctx));
}

static void router_fn(fc_node_ctx_t *ctx, void *data) {
  (void)data;
  fc_node_succeed(ctx, json_pack("{s:s}", "route", "accept"));
}

typedef struct {
  uv_timer_t t;
  fc_node_ctx_t *ctx;
} async_job;

static void async_done(uv_timer_t *t) {
  async_job *j = (async_job *)t;
  fc_node_succeed(j->ctx, json_pack("{s:s}", "async", "yes"));
  uv_close((uv_handle_t *)t, (uv_close_cb)free);
}

static void async_fn(fc_node_ctx_t *ctx, void *data) {
  async_job *j = malloc(sizeof *j);
  (void)data;
  assert_non_null(j);
  j->ctx = ctx;
  uv_timer_init(fc_node_ctx_loop(ctx), &j->t);
  uv_timer_start(&j->t, async_done, 1 + (uint64_t)(rand() % 3), 0);
}

static fc_node_t *add(fc_workflow_t *wf, const char *id, fc_node_fn fn, const char *type) {
  fc_node_t *n;
  assert_int_equal(fc_workflow_add_node(wf, id, fn, NULL, &n), 0);
  assert_int_equal(fc_node_set_type(n, type), 0);
  return n;
}

/* ---- tests ------------------------------------------------------------------------ */

/* A few hundred nodes with failures, retries and routing land exactly. */
static void test_run_lands_exactly(void **state) {
  harness h;
  fc_workflow_t *wf;
  fc_run_t *run;
  char id[32], dep[32];
  int i;
  size_t k, expect_rows = 0, n;
  (void)state;
  harness_init(&h, NULL);
  assert_int_equal(fc_workflow_new(&wf, "exact-landing"), 0);
  fc_workflow_set_max_parallel(wf, 8);
  add(wf, "root", ok_fn, "pass");
  /* 100 branches of: a (sync or async) -> b (flaky, 1 retry) */
  for (i = 0; i < 100; i++) {
    fc_node_t *a, *b;
    snprintf(id, sizeof id, "a%d", i);
    a = add(wf, id, i % 2 ? async_fn : ok_fn, i % 2 ? "async" : "sync");
    assert_int_equal(fc_node_add_dep(a, "root"), 0);
    snprintf(dep, sizeof dep, "a%d", i);
    snprintf(id, sizeof id, "b%d", i);
    b = add(wf, id, i % 10 == 0 ? flaky_fn : ok_fn, "work");
    assert_int_equal(fc_node_add_dep(b, dep), 0);
    assert_int_equal(fc_node_set_retries(b, 1, 1, 5), 0);
  }
  /* a failing node with 50 dependents (skipped) */
  add(wf, "broken", fail_fn, "fail");
  for (i = 0; i < 50; i++) {
    fc_node_t *s;
    snprintf(id, sizeof id, "after_broken%d", i);
    s = add(wf, id, ok_fn, "pass");
    assert_int_equal(fc_node_add_dep(s, "broken"), 0);
  }
  /* routing: router -> accept (publish) | reject (rewrite -> rewrite2..) */
  {
    fc_node_t *r = add(wf, "router", router_fn, "route");
    fc_node_t *rw;
    add(wf, "publish", ok_fn, "pass");
    add(wf, "rewrite", ok_fn, "pass");
    assert_int_equal(fc_node_add_route(r, "accept", "publish"), 0);
    assert_int_equal(fc_node_add_route(r, "reject", "rewrite"), 0);
    for (i = 0; i < 40; i++) {
      snprintf(id, sizeof id, "rewrite%d", i);
      rw = add(wf, id, ok_fn, "pass");
      assert_int_equal(fc_node_add_dep(rw, "rewrite"), 0);
    }
  }
  {
    json_t *input = json_pack("{s:s}", "day", "2026-11-27");
    run = harness_run(&h, wf, input); /* the run takes its own reference */
    json_decref(input);
  }
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_FAILED);
  assert_int_equal(fc_history_writer_flush(h.w, 30000), 0);

  n = fc_workflow_node_count(wf);
  for (k = 0; k < n; k++) {
    int att = fc_run_node_attempts(run, k);
    expect_rows += att > 0 ? (size_t)att : 1;
  }
  assert_int_equal(n, 1 + 200 + 1 + 50 + 3 + 40);
  assert_int_equal(expect_rows, n + 10); /* 10 flaky nodes ran twice */

  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions"), 1);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions"), expect_rows);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(DISTINCT (node_id, attempt)) FROM node_executions"),
                   expect_rows);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(DISTINCT node_id) FROM node_executions"), n);
  /* statuses, per the recorder's node_end events */
  {
    static const fc_node_status_t sts[] = {FC_NODE_COMPLETED, FC_NODE_FAILED, FC_NODE_SKIPPED};
    for (k = 0; k < sizeof sts / sizeof sts[0]; k++) {
      size_t want = fc_recorder_count_status(h.rec, NULL, sts[k]);
      assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions WHERE status = '%s'",
                                      fc_node_status_name(sts[k])),
                       want);
    }
    assert_int_equal(fc_recorder_count_status(h.rec, NULL, FC_NODE_SKIPPED), 50 + 41);
    assert_int_equal(fc_recorder_count_status(h.rec, NULL, FC_NODE_FAILED), 10 + 1);
  }
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions WHERE status = 'running'"), 0);
  /* skipped nodes: one row, attempt 0, never started */
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions WHERE status = 'skipped' "
                                      "AND attempt = 0 AND started_at IS NULL"),
                   91);
  /* errors: one row per error event, with severity */
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM execution_errors"),
                   fc_recorder_count(h.rec, FC_EVENT_ERROR, NULL));
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM execution_errors WHERE severity = 'warning' "
                                      "AND error_type = 'flaky' AND attempt = 1"),
                   10);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM execution_errors WHERE node_id = 'broken' "
                                      "AND severity = 'critical' AND error_message = 'node broken always fails'"),
                   1);
  /* the workflow row */
  {
    const fc_recorded_event_t *ws = fc_recorder_last(h.rec, FC_EVENT_WORKFLOW_START, NULL);
    const fc_recorded_event_t *we = fc_recorder_last(h.rec, FC_EVENT_WORKFLOW_END, NULL);
    char *s;
    assert_non_null(ws);
    assert_non_null(we);
    s = fc_test_pg_text(db, "SELECT workflow_id::text || ' ' || workflow_name || ' ' || status || ' ' || "
                            "node_count || ' ' || error_count || ' ' || (input_data->>'day') FROM workflow_executions");
    {
      char want[256];
      snprintf(want, sizeof want, "%s exact-landing failed %zu %zu 2026-11-27", ws->workflow_id, n,
               fc_recorder_count(h.rec, FC_EVENT_ERROR, NULL));
      assert_string_equal(s, want);
    }
    free(s);
    /* timestamps are the engine's, to the microsecond */
    assert_int_equal(fc_test_pg_int(db, "SELECT (extract(epoch FROM started_at) * 1000000)::bigint "
                                        "FROM workflow_executions"),
                     ws->time_us);
    assert_int_equal(fc_test_pg_int(db, "SELECT (extract(epoch FROM completed_at) * 1000000)::bigint "
                                        "FROM workflow_executions"),
                     we->time_us);
    /* a node's start and end time, from the events */
    {
      const fc_recorded_event_t *ns = fc_recorder_last(h.rec, FC_EVENT_NODE_START, "b10");
      const fc_recorded_event_t *ne = fc_recorder_last(h.rec, FC_EVENT_NODE_END, "b10");
      assert_non_null(ns);
      assert_non_null(ne);
      assert_int_equal(ns->attempt, 2);
      assert_int_equal(fc_test_pg_int(db, "SELECT (extract(epoch FROM started_at) * 1000000)::bigint "
                                          "FROM node_executions WHERE node_id = 'b10' AND attempt = 2"),
                       ns->time_us);
      assert_int_equal(fc_test_pg_int(db, "SELECT (extract(epoch FROM completed_at) * 1000000)::bigint "
                                          "FROM node_executions WHERE node_id = 'b10' AND attempt = 2"),
                       ne->time_us);
    }
    /* node input holds the workflow input and the dependency's output
     * (stored as references since migration 0009: flowcore_node_input
     * rebuilds it) */
    s = fc_test_pg_text(db, "SELECT (i->'input'->>'day') || ' ' || (i->'a3'->>'async') "
                            "|| ' ' || node_type FROM node_executions, "
                            "flowcore_node_input(workflow_id, node_id, attempt) i "
                            "WHERE node_id = 'b3'");
    assert_string_equal(s, "2026-11-27 yes work");
    free(s);
    s = fc_test_pg_text(db, "SELECT output_data::text FROM node_executions WHERE node_id = 'b10' AND attempt = 2");
    assert_string_equal(s, "{\"recovered\": true}");
    free(s);
  }
  fc_run_close(run, NULL, NULL);
  {
    fc_history_stats_t st;
    harness_close(&h, &st);
    assert_true(st.coalesced > 0);
    assert_true(st.batches >= 1);
  }
  fc_workflow_free(wf);
}

/* 100,000 node events (50,000 nodes): row counts exact, no duplicates. */
static void test_hundred_thousand_events(void **state) {
  harness h;
  fc_workflow_t *wf;
  fc_run_t *run;
  fc_history_config_t cfg;
  char id[32];
  int i;
  (void)state;
  fc_history_config_init(&cfg);
  cfg.batch_size = 1000;
  harness_init(&h, &cfg);
  assert_int_equal(fc_workflow_new(&wf, "hundred-k"), 0);
  add(wf, "root", ok_fn, "pass");
  for (i = 1; i < 50000; i++) {
    fc_node_t *n;
    snprintf(id, sizeof id, "n%d", i);
    n = add(wf, id, ok_fn, "pass");
    assert_int_equal(fc_node_add_dep(n, "root"), 0);
  }
  run = harness_run(&h, wf, NULL);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_COMPLETED);
  assert_int_equal(fc_history_writer_flush(h.w, 60000), 0);
  assert_int_equal(fc_recorder_count(h.rec, FC_EVENT_NODE_START, NULL) +
                       fc_recorder_count(h.rec, FC_EVENT_NODE_END, NULL),
                   100000);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions"), 50000);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(DISTINCT node_id) FROM node_executions"), 50000);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions WHERE status = 'completed' "
                                      "AND completed_at >= started_at AND duration_ms >= 0"),
                   50000);
  fc_run_close(run, NULL, NULL);
  {
    fc_history_stats_t st;
    harness_close(&h, &st);
    assert_int_equal(st.written, 100002);
    assert_true(st.batches >= 50); /* batch_size 1000 rows */
  }
  fc_workflow_free(wf);
}

/* Payloads jsonb would refuse, and oversized ones, are stored with a marker;
 * their neighbours in the same batch are stored untouched. */
static void bad_output_fn(fc_node_ctx_t *ctx, void *data) {
  const char *id = fc_node_ctx_node_id(ctx);
  (void)data;
  if (strcmp(id, "nul") == 0) {
    fc_node_succeed(ctx, json_pack("{s:s%}", "text", "a\0b", (size_t)3));
  } else if (strcmp(id, "badutf8") == 0) {
    json_t *o = json_object();
    json_object_set_new(o, "text", json_stringn_nocheck("ok\xff\xfe end", 8));
    fc_node_succeed(ctx, o);
  } else if (strcmp(id, "huge") == 0) {
    char *big = malloc(5000);
    assert_non_null(big);
    memset(big, 'x', 4999);
    big[4999] = '\0';
    fc_node_succeed(ctx, json_pack("{s:s}", "big", big));
    free(big);
  } else if (strcmp(id, "hostile") == 0) {
    fc_node_failf(ctx, FC_SEVERITY_ERROR, "x'); DROP TABLE node_executions; --",
                  "quote ' backslash \\ tab \t newline \n bad \xc3\x28 end");
  } else {
    fc_node_succeed(ctx, json_pack("{s:s}", "plain", "\\N \t\n'\""));
  }
}

static void test_bad_data(void **state) {
  harness h;
  fc_workflow_t *wf;
  fc_run_t *run;
  fc_history_config_t cfg;
  char *s;
  (void)state;
  fc_history_config_init(&cfg);
  cfg.max_payload_bytes = 1000;
  harness_init(&h, &cfg);
  assert_int_equal(fc_workflow_new(&wf, "bad-data"), 0);
  add(wf, "before", bad_output_fn, "pass");
  add(wf, "nul", bad_output_fn, "pass");
  add(wf, "badutf8", bad_output_fn, "pass");
  add(wf, "huge", bad_output_fn, "pass");
  add(wf, "hostile", bad_output_fn, "fail");
  add(wf, "after", bad_output_fn, "pass");
  run = harness_run(&h, wf, NULL);
  assert_int_equal(fc_history_writer_flush(h.w, 30000), 0);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions"), 6);
  s = fc_test_pg_text(db, "SELECT output_data->>'plain' FROM node_executions WHERE node_id = 'after'");
  assert_string_equal(s, "\\N \t\n'\"");
  free(s);
  s = fc_test_pg_text(db, "SELECT (output_data->'$flowcore'->'changed')::text || ' ' || "
                          "(output_data->'value'->>'text') FROM node_executions WHERE node_id = 'nul'");
  assert_string_equal(s, "[\"nul\"] a\xef\xbf\xbd" "b");
  free(s);
  s = fc_test_pg_text(db, "SELECT (output_data->'$flowcore'->'changed')::text FROM node_executions "
                          "WHERE node_id = 'badutf8'");
  assert_string_equal(s, "[\"invalid_utf8\"]");
  free(s);
  s = fc_test_pg_text(db, "SELECT (output_data->'$flowcore'->'changed')::text || ' ' || "
                          "(output_data->'$flowcore'->>'original_bytes') FROM node_executions "
                          "WHERE node_id = 'huge'");
  assert_string_equal(s, "[\"truncated\"] 5009");
  free(s);
  s = fc_test_pg_text(db, "SELECT error_type || '|' || error_message FROM execution_errors "
                          "WHERE node_id = 'hostile'");
  assert_string_equal(s, "x'); DROP TABLE node_executions; --|quote ' backslash \\ tab \t newline \n bad "
                         "\xef\xbf\xbd( end");
  free(s);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'node_executions'"), 1);
  fc_run_close(run, NULL, NULL);
  harness_close(&h, NULL);
  fc_workflow_free(wf);
}

/* Replays: the same records sent again yield the same rows, and a start
 * replayed after its end never moves the row back to running. Events are
 * fed to the database handler directly, as the engine would. */
static void test_replay_is_idempotent(void **state) {
  harness h;
  fc_workflow_t *wf;
  fc_handler_t dbh;
  uint8_t uuid[16];
  json_t *in = json_pack("{s:i}", "x", 1), *out = json_pack("{s:i}", "y", 2);
  int round;
  int64_t t0 = 1800000000000000LL; /* 2027-01-15 */
  (void)state;
  harness_init(&h, NULL);
  assert_int_equal(fc_workflow_new(&wf, "replay"), 0);
  add(wf, "a", ok_fn, "pass");
  assert_int_equal(fc_workflow_validate(wf, NULL), 0);
  assert_int_equal(fc_uuid7(uuid), 0);
  assert_int_equal(fc_history_handler(h.w, &h.loop, &dbh), 0);

  for (round = 0; round < 3; round++) {
    /* rounds 0 and 1: the ends too (round 1 replays round 0 exactly) */
    fc_test_feed_run(&dbh, wf, uuid, t0, in, out, round != 2);
    if (round == 2)
      uv_run(&h.loop, UV_RUN_NOWAIT); /* the handler hands over before the loop waits */
    assert_int_equal(fc_history_writer_flush(h.w, 30000), 0);
    assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions"), 1);
    assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions"), 1);
    assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions WHERE status = 'completed' "
                                        "AND output_data = '{\"y\": 2}' AND input_data = '{\"x\": 1}' "
                                        "AND duration_ms = 0.02"),
                     1);
    assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions WHERE status = 'completed' "
                                        "AND completed_at = to_timestamp(1800000000.00004)"),
                     1);
  }
  {
    fc_history_stats_t st;
    fc_history_writer_stats(h.w, &st);
    assert_true(st.retries >= 1); /* the replays met existing rows: upsert path */
    assert_int_equal(st.written, st.accepted);
  }
  fc_handler_destroy(&dbh);
  json_decref(in);
  json_decref(out);
  harness_close(&h, NULL);
  fc_workflow_free(wf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_run_lands_exactly, test_setup),
      cmocka_unit_test_setup(test_hundred_thousand_events, test_setup),
      cmocka_unit_test_setup(test_bad_data, test_setup),
      cmocka_unit_test_setup(test_replay_is_idempotent, test_setup),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

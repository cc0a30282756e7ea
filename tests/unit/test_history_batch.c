/* Unit tests for src/history/batch.c: a batch encoded in slices (as the
 * writer does ahead of sending, between its I/O) gives the very bytes of
 * one encoded at once, also when it must start over for the upsert path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_test.h"
#include "history/writer_int.h"

enum { NODES = 5, PAIRS = 700 };

static void fn_nop(fc_node_ctx_t *ctx, void *user_data) {
  (void)ctx;
  (void)user_data;
}

typedef struct {
  fc_workflow_t *wf;
  fc__hrun_t *run;
  fc_history_writer_t w;
} fixture_t;

static void fixture_init(fixture_t *f) {
  static const uint8_t uuid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  fc_event_t ev;
  char id[16];
  int i;
  memset(f, 0, sizeof *f);
  assert_int_equal(fc_workflow_new(&f->wf, "batch_test"), 0);
  for (i = 0; i < NODES; i++) {
    fc_node_t *n = NULL;
    snprintf(id, sizeof id, "node_%d", i);
    assert_int_equal(fc_workflow_add_node(f->wf, id, fn_nop, NULL, &n), 0);
    assert_int_equal(fc_node_set_type(n, i % 2 ? "exec" : "set"), 0);
  }
  memset(&ev, 0, sizeof ev);
  ev.kind = FC_EVENT_WORKFLOW_START;
  ev.workflow = f->wf;
  ev.workflow_uuid = uuid;
  ev.workflow_name = "batch_test";
  f->run = fc__hrun_new(&ev);
  assert_non_null(f->run);
  f->w.cfg.max_payload_bytes = 1024 * 1024;
  snprintf(f->w.host, sizeof f->w.host, "%s", "test-host");
  f->w.pid = 4242;
}

static void fixture_free(fixture_t *f) {
  fc__hrun_decref(f->run);
  fc_workflow_free(f->wf);
}

static fc__hrec_t rec(fixture_t *f, int kind, int node, int attempt, int64_t t_us) {
  fc__hrec_t r;
  memset(&r, 0, sizeof r);
  r.kind = (uint8_t)kind;
  r.node = node;
  r.attempt = attempt;
  r.t_us = t_us;
  r.run = f->run;
  fc__hrun_incref(f->run);
  return r;
}

/* The same records every time: PAIRS node attempts with their start and
 * end (one row each), ends whose start is not in the batch (the upsert
 * path), the workflow's start and an error. */
static batch_t *make_batch(fixture_t *f) {
  batch_t *b = fc__batch_new();
  fc__hrec_t r;
  int i;
  assert_non_null(b);
  r = rec(f, FC_EVENT_WORKFLOW_START, -1, 0, 1000);
  r.count = NODES;
  r.payload = json_pack("{s:s}", "goal", "slices");
  assert_true(fc__batch_add(b, &r) >= 0);
  for (i = 0; i < PAIRS; i++) {
    int node = i % NODES, attempt = i / NODES + 1;
    r = rec(f, FC_EVENT_NODE_START, node, attempt, 2000 + i);
    r.payload = json_pack("{s:i,s:[i,s]}", "n", i, "list", i * 7, "text é");
    assert_true(fc__batch_add(b, &r) >= 0);
    r = rec(f, FC_EVENT_NODE_END, node, attempt, 2500 + i);
    r.status = (uint8_t)(i % 11 == 0 ? FC_NODE_FAILED : FC_NODE_COMPLETED);
    r.started_us = 2000 + i;
    r.duration_us = 500;
    r.payload = json_pack("{s:i}", "out", i);
    assert_int_equal(fc__batch_add(b, &r), 1); /* merged into its start */
  }
  for (i = 0; i < 40; i++) {
    r = rec(f, FC_EVENT_NODE_END, i % NODES, 1000 + i, 9000 + i);
    r.status = FC_NODE_COMPLETED;
    r.payload = json_pack("{s:b}", "late", 1);
    assert_true(fc__batch_add(b, &r) >= 0);
  }
  r = rec(f, FC_EVENT_ERROR, 2, 1, 9900);
  r.severity = 2;
  r.err = malloc(32);
  assert_non_null(r.err);
  memcpy(r.err, "Boom\0it failed\0trace\0", 21);
  r.error_id[0] = 7;
  assert_true(fc__batch_add(b, &r) >= 0);
  return b;
}

static void assert_same_buf(const fc__buf_t *a, const fc__buf_t *b, const char *what) {
  assert_false(a->oom);
  assert_false(b->oom);
  if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0)
    fail_msg("%s: %zu bytes encoded at once, %zu in slices, or different bytes", what, a->len,
             b->len);
}

static void assert_same_batch(const batch_t *a, const batch_t *b) {
  size_t i;
  assert_same_buf(&a->copy_new, &b->copy_new, "copy_new");
  assert_same_buf(&a->copy_upd, &b->copy_upd, "copy_upd");
  assert_same_buf(&a->copy_wf, &b->copy_wf, "copy_wf");
  assert_same_buf(&a->copy_err, &b->copy_err, "copy_err");
  assert_int_equal(a->nsteps, b->nsteps);
  for (i = 0; i < a->nsteps; i++) {
    assert_string_equal(a->steps[i].sql, b->steps[i].sql);
    assert_true((a->steps[i].copy == NULL) == (b->steps[i].copy == NULL));
  }
}

static void test_slices_equal_whole(void **state) {
  static const size_t slices[] = {1, 7, 256, 100000};
  fixture_t f;
  batch_t *whole;
  size_t k;
  (void)state;
  fixture_init(&f);
  whole = make_batch(&f);
  assert_int_equal(fc__batch_encode(&f.w, whole), 0);
  /* new rows, updates, the workflow row and the error, then the upserts */
  assert_int_equal(whole->nnew, PAIRS);
  assert_int_equal(whole->nupd, 40);
  assert_int_equal(whole->nsteps, 5);
  for (k = 0; k < sizeof slices / sizeof *slices; k++) {
    batch_t *b = make_batch(&f);
    int calls = 0;
    while (!fc__batch_encode_some(&f.w, b, slices[k]))
      calls++;
    assert_int_equal((size_t)calls, (b->nrows - 1) / slices[k]);
    assert_int_equal(fc__batch_encode(&f.w, b), 0);
    assert_same_batch(whole, b);
    /* sending it again (a retry on the same path) keeps the same bytes */
    assert_int_equal(fc__batch_encode(&f.w, b), 0);
    assert_same_batch(whole, b);
    fc__batch_free(b);
  }
  fc__batch_free(whole);
  fixture_free(&f);
}

/* A batch partly encoded for the fast path that must go through the
 * upserts (safe, after a failure) is encoded again from its first row. */
static void test_slices_start_over_when_safe(void **state) {
  fixture_t f;
  batch_t *safe_whole, *b;
  (void)state;
  fixture_init(&f);
  safe_whole = make_batch(&f);
  safe_whole->safe = 1;
  assert_int_equal(fc__batch_encode(&f.w, safe_whole), 0);
  assert_int_equal(safe_whole->nnew, 0);
  assert_int_equal(safe_whole->nupd, PAIRS + 40);

  b = make_batch(&f);
  assert_int_equal(fc__batch_encode_some(&f.w, b, 300), 0);
  assert_true(b->nnew > 0);
  b->safe = 1;
  assert_int_equal(fc__batch_encode(&f.w, b), 0);
  assert_same_batch(safe_whole, b);
  fc__batch_free(b);

  /* also once fully encoded for the fast path */
  b = make_batch(&f);
  assert_int_equal(fc__batch_encode(&f.w, b), 0);
  b->safe = 1;
  assert_int_equal(fc__batch_encode(&f.w, b), 0);
  assert_same_batch(safe_whole, b);
  fc__batch_free(b);
  fc__batch_free(safe_whole);
  fixture_free(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_slices_equal_whole),
      cmocka_unit_test(test_slices_start_over_when_safe),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

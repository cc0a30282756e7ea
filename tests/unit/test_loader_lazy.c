/* Lazy constants (FC_LOAD_LAZY_CONSTANTS, include/flowcore/loader.h): a
 * `set` node loaded from a file's text keeps its output as that text
 * (src/nodes/set.c) and the engine makes the output when something first
 * reads it (src/run.c, output_of). Every case loads the same text eagerly
 * and lazily, split over two threads and not, and compares what the runs
 * show: the workflow's output, each node_end's output, each node's output
 * after the run, the routes chosen. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_test.h"
#include "nodes/node_type.h"

/* Constants as a file may write them: whitespace around and inside,
 * escapes, brackets inside strings, every kind of value. */
static const char *const constants[] = {
    "{\"n\":1}",
    " { \"a\" : [1, 2.5, -3e2, true, false, null] ,\n\t\"b\":{} } ",
    "\"quotes \\\" and \\\\ and \\u00e9 and } ] , : {\"",
    "12345678901234",
    "-0.5",
    "true",
    "false",
    "null",
    "[]",
    "{}",
    "[{\"x\":\"]\"},\"{\",[[[]]],{\"y\":{\"z\":[\"\\\\\"]}}]",
    "{\"output\":{\"output\":\"output\"}}",
    "\"\"",
    "1E+2",
};
#define NCONST (sizeof constants / sizeof constants[0])

/* Node k of the file: a set node (its constant, with the "output" key
 * first, last or among others, once with other fields that say "output"),
 * then a pass node reading it; every third set node is a sink. */
static void set_node(fc_test_text_t *t, size_t k, size_t i) {
  const char *c = constants[k % NCONST];
  switch (k % 4) {
  case 0:
    fc_test_put(t, "{\"output\":%s,\"id\":\"s%zu\",\"type\":\"set\"}", c, i);
    break;
  case 1:
    fc_test_put(t, "{\"id\":\"s%zu\",\"type\":\"set\",\"output\":%s}", i, c);
    break;
  case 2:
    fc_test_put(t, "{ \"id\" : \"s%zu\" ,\n \"description\": \"output\\\" \\\\\" , \"output\"\t:%s , "
           "\"type\":\"set\" }",
        i, c);
    break;
  default:
    fc_test_put(t, "{\"id\":\"s%zu\",\"description\":\"{\\\"output\\\":1}\",\"type\":\"set\",\"retries\":1,"
           "\"output\":%s,\"timeout_ms\":0}",
        i, c);
    break;
  }
}

/* n set nodes and their readers: n sinks. */
static void make_file(fc_test_text_t *t, size_t n) {
  size_t i;
  fc_test_put(t, "{\"name\":\"lazy\",\"nodes\":[\n");
  for (i = 0; i < n; i++) {
    set_node(t, i, i);
    if (i % 3 != 2)
      fc_test_put(t, ",\n{\"id\":\"p%zu\",\"type\":\"pass\",\"after\":[\"s%zu\"]}", i, i);
    fc_test_put(t, "%s\n", i + 1 < n ? "," : "");
  }
  fc_test_put(t, "]}\n");
}

/* Loads t; split_min 0: on two threads (the part must be appended),
 * SIZE_MAX: on one. */
static fc_workflow_t *load(const fc_test_text_t *t, unsigned flags, size_t split_min) {
  fc_load_errors_t errors;
  fc_workflow_t *wf = NULL;
  size_t saved = fc__load_split_min, merged = atomic_load(&fc__load_parts_merged);
  int rc;
  fc_load_errors_init(&errors);
  fc__load_split_min = split_min;
  rc = fc_workflow_load_buffer_ex(t->text, t->len, flags, &wf, NULL, &errors);
  fc__load_split_min = saved;
  if (rc != 0)
    fail_msg("load: %s", errors.count > 0 ? errors.items[0].text : fc_strerror(rc));
  if (split_min == 0)
    assert_int_equal(atomic_load(&fc__load_parts_merged), merged + 1);
  fc_load_errors_free(&errors);
  return wf;
}

/* ---- a run on a loop, left open to read each node's output ------------------------- */

typedef struct {
  uv_loop_t loop;
  fc_manager_t *manager;
  fc_run_t *run;
  int done, closed;
  json_t *seen; /* node id -> the output its node_end carried */
} env_t;

static void on_done(fc_run_t *run, void *data) {
  (void)run;
  ((env_t *)data)->done = 1;
}

static void on_closed(fc_run_t *run, void *data) {
  (void)run;
  ((env_t *)data)->closed = 1;
}

static int on_node_end(void *self, const fc_event_t *ev) {
  env_t *e = self;
  if (ev->status == FC_NODE_COMPLETED) {
    assert_non_null(ev->output);
    json_object_set(e->seen, ev->node_id, ev->output);
  }
  return 0;
}

/* Runs wf to its end (with a node_end handler when `listen`; every output
 * kept when `keep`) and leaves the run open in e->run. */
static void run_open(env_t *e, fc_workflow_t *wf, int listen, int keep) {
  fc_error_t err;
  memset(e, 0, sizeof *e);
  assert_int_equal(uv_loop_init(&e->loop), 0);
  e->seen = json_object();
  if (listen) {
    fc_handler_t h;
    memset(&h, 0, sizeof h);
    h.name = "seen";
    h.self = e;
    h.on_node_end = on_node_end;
    assert_int_equal(fc_manager_new(&e->manager), 0);
    assert_int_equal(fc_manager_add(e->manager, &h, 0, NULL), 0);
  }
  fc_error_clear(&err);
  if (fc_run_new(&e->run, &e->loop, wf, e->manager, &err) != 0)
    fail_msg("fc_run_new: %s", err.text);
  assert_int_equal(fc_run_set_keep_outputs(e->run, keep), 0);
  assert_int_equal(fc_run_start(e->run, NULL, on_done, e), 0);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(e->done, 1);
}

static void run_close(env_t *e) {
  fc_run_close(e->run, on_closed, e);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(e->closed, 1);
  assert_int_equal(uv_loop_close(&e->loop), 0);
  fc_manager_free(e->manager);
  json_decref(e->seen);
}

/* ---- jansson's allocations ----------------------------------------------------------- */

static atomic_long json_live; /* allocations less frees while counted */
static atomic_long json_made; /* allocations while counted */

static void *count_malloc(size_t n) {
  atomic_fetch_add(&json_live, 1);
  atomic_fetch_add(&json_made, 1);
  return malloc(n);
}

static void count_free(void *p) {
  if (p != NULL)
    atomic_fetch_sub(&json_live, 1);
  free(p);
}

static void count_start(json_malloc_t *m, json_free_t *f) {
  json_get_alloc_funcs(m, f);
  atomic_store(&json_live, 0);
  atomic_store(&json_made, 0);
  json_set_alloc_funcs(count_malloc, count_free);
}

/* ---- the cases -------------------------------------------------------------------------- */

/* Eager and lazy loads, split over two threads or not, run to the same
 * outputs: the workflow's, every node_end's, and every node's after the
 * run, which are the constants as jansson reads them alone. */
static void test_same_outputs(void **state) {
  fc_test_text_t t = {NULL, 0, 0};
  size_t splits[2] = {SIZE_MAX, 0}, s, i;
  (void)state;
  make_file(&t, 12 * NCONST);
  for (s = 0; s < 2; s++) {
    fc_workflow_t *eager = load(&t, 0, splits[s]);
    fc_workflow_t *lazy = load(&t, FC_LOAD_LAZY_CONSTANTS, splits[s]);
    int listen;
    assert_int_equal(fc_workflow_node_count(eager), fc_workflow_node_count(lazy));
    for (listen = 0; listen < 2; listen++) {
      env_t a, b;
      run_open(&a, eager, listen, 1);
      run_open(&b, lazy, listen, 1);
      assert_int_equal(fc_run_status(b.run), FC_WORKFLOW_COMPLETED);
      assert_int_equal(json_object_size(fc_run_output(a.run)), 12 * NCONST);
      assert_true(json_equal(fc_run_output(a.run), fc_run_output(b.run)));
      assert_int_equal(json_object_size(b.seen), listen ? fc_workflow_node_count(lazy) : 0);
      assert_true(json_equal(a.seen, b.seen));
      for (i = 0; i < fc_workflow_node_count(lazy); i++) {
        json_t *x = fc_run_node_output(a.run, i), *y = fc_run_node_output(b.run, i);
        assert_non_null(y);
        assert_true(json_equal(x, y));
        assert_ptr_equal(fc_run_node_output(b.run, i), y); /* made once */
      }
      for (i = 0; i < NCONST; i++) {
        char id[32];
        json_error_t jerr;
        json_t *want = json_loads(constants[i], JSON_DECODE_ANY, &jerr);
        assert_non_null(want);
        snprintf(id, sizeof id, "s%zu", i);
        assert_true(json_equal(fc_run_node_output(b.run, fc_test_node_index(lazy, id)), want));
        if (listen)
          assert_true(json_equal(json_object_get(b.seen, id), want));
        json_decref(want);
      }
      run_close(&a);
      run_close(&b);
    }
    fc_workflow_free(eager);
    fc_workflow_free(lazy);
  }
  free(t.text);
}

/* What the laziness is for: after a lazy load the constants are not
 * jansson values, and a run without handlers makes only the outputs it
 * reads (here the last node's, the workflow's output). */
static void test_constants_not_kept(void **state) {
  enum { N = 2000 };
  fc_test_text_t t = {NULL, 0, 0};
  json_malloc_t m;
  json_free_t f;
  fc_workflow_t *eager, *lazy;
  long eager_live, lazy_live;
  env_t e;
  size_t i;
  (void)state;
  fc_test_put(&t, "{\"name\":\"chain\",\"nodes\":[");
  for (i = 0; i < N; i++) {
    fc_test_put(&t, "{\"id\":\"n%zu\",\"type\":\"set\",\"output\":{\"v\":[%zu,2,3]}", i, i);
    if (i > 0)
      fc_test_put(&t, ",\"after\":[\"n%zu\"]", i - 1);
    fc_test_put(&t, "}%s", i + 1 < N ? "," : "");
  }
  fc_test_put(&t, "]}");

  count_start(&m, &f);
  eager = load(&t, 0, 0);
  eager_live = atomic_load(&json_live);
  json_set_alloc_funcs(m, f);
  count_start(&m, &f);
  lazy = load(&t, FC_LOAD_LAZY_CONSTANTS, 0);
  lazy_live = atomic_load(&json_live);
  json_set_alloc_funcs(m, f);
  assert_true(eager_live >= 5 * N); /* object, buckets, pair, array and its table, ints */
  assert_true(lazy_live < 50);

  memset(&e, 0, sizeof e);
  count_start(&m, &f);
  run_open(&e, lazy, 0, 0);
  json_set_alloc_funcs(m, f);
  assert_true(atomic_load(&json_made) < 50);
  assert_int_equal(json_integer_value(json_array_get(
                       json_object_get(json_object_get(fc_run_output(e.run), "n1999"), "v"), 0)),
                   N - 1);
  /* Released with its last successor, never made: NULL, as any released output. */
  assert_null(fc_run_node_output(e.run, 5));
  assert_non_null(fc_run_node_output(e.run, N - 1));
  run_close(&e);
  fc_workflow_free(eager);
  fc_workflow_free(lazy);
  free(t.text);
}

/* A set node with routes: its output is made at its end (it chooses the
 * route), from the text. */
static void test_routes(void **state) {
  fc_test_text_t t = {NULL, 0, 0};
  fc_workflow_t *wf;
  env_t e;
  (void)state;
  fc_test_put(&t, "{\"name\":\"r\",\"nodes\":["
          "{\"id\":\"pick\",\"type\":\"set\",\"output\":{ \"route\" : \"b\" },"
          "\"routes\":{\"a\":[\"x\"],\"b\":[\"y\"]}},"
          "{\"id\":\"x\",\"type\":\"pass\"},{\"id\":\"y\",\"type\":\"pass\"}]}");
  wf = load(&t, FC_LOAD_LAZY_CONSTANTS, SIZE_MAX);
  run_open(&e, wf, 0, 1);
  assert_int_equal(fc_run_status(e.run), FC_WORKFLOW_COMPLETED);
  assert_int_equal(fc_run_node_status(e.run, 1), FC_NODE_SKIPPED);
  assert_int_equal(fc_run_node_status(e.run, 2), FC_NODE_COMPLETED);
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(fc_run_node_output(e.run, 2), "pick"), "route")),
                      "b");
  run_close(&e);
  fc_workflow_free(wf);
  free(t.text);
}

/* Where the loader has no text of the constant, the node keeps the parsed
 * value: an "output" key written with an escape, a file parsed whole
 * ("nodes" before "name" is not the usual shape). Both run the same. */
static void test_parsed_value_kept(void **state) {
  static const char *const files[] = {
      "{\"name\":\"e\",\"nodes\":[{\"id\":\"a\",\"type\":\"set\","
      "\"outp\\u0075t\":[1,{\"k\":\"v\"}]},"
      "{\"id\":\"b\",\"type\":\"set\",\"output\":\"plain\"}]}",
      "{\"nodes\":[{\"id\":\"a\",\"type\":\"set\",\"output\":[1,{\"k\":\"v\"}]},"
      "{\"id\":\"b\",\"type\":\"set\",\"output\":\"plain\"}],\"name\":\"e\"}",
  };
  size_t k;
  (void)state;
  for (k = 0; k < 2; k++) {
    fc_test_text_t t = {NULL, 0, 0};
    fc_workflow_t *wf;
    env_t e;
    json_error_t jerr;
    json_t *want = json_loads("{\"a\":[1,{\"k\":\"v\"}],\"b\":\"plain\"}", 0, &jerr);
    fc_test_put(&t, "%s", files[k]);
    wf = load(&t, FC_LOAD_LAZY_CONSTANTS, SIZE_MAX);
    run_open(&e, wf, 1, 1);
    assert_true(json_equal(fc_run_output(e.run), want));
    assert_true(json_equal(e.seen, want));
    run_close(&e);
    json_decref(want);
    fc_workflow_free(wf);
    free(t.text);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_outputs),
      cmocka_unit_test(test_constants_not_kept),
      cmocka_unit_test(test_routes),
      cmocka_unit_test(test_parsed_value_kept),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

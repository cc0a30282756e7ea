/* Unit tests: the workflow loader and builder when memory runs out.
 *
 * Linked with -Wl,--wrap=malloc,calloc,realloc (CMakeLists.txt, tests whose
 * name ends in _oom), and jansson's allocations routed through the same
 * wrappers, so allocation number N can be made to fail. Each case loads the
 * same text with N = 0, 1, 2, ... until a load makes no failing call: every
 * load must end with 0 (the failure was absorbed, and the workflow is the
 * same) or FC_ENOMEM, never crash, and free what it took (ASan and the
 * valgrind stage check that). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_test.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);

static long g_fail_at = -1; /* the allocation that fails, -1: none */
static long g_count;        /* allocations since the case started */

static int fail_now(void) { return g_fail_at >= 0 && g_count++ == g_fail_at; }

void *__wrap_malloc(size_t size) { return fail_now() ? NULL : __real_malloc(size); }

void *__wrap_calloc(size_t n, size_t size) { return fail_now() ? NULL : __real_calloc(n, size); }

void *__wrap_realloc(void *p, size_t size) { return fail_now() ? NULL : __real_realloc(p, size); }

/* jansson's allocations. Some of its failures come out as syntax errors
 * (its lexer drops a token it cannot store, then reports what it expected
 * instead): a load whose failed allocation was jansson's may end with
 * FC_EDEFINITION "invalid JSON"; one whose failed allocation was flowcore's
 * must end with FC_ENOMEM. */
static int g_jansson_failed;

static void *jansson_malloc(size_t size) {
  if (fail_now()) {
    g_jansson_failed = 1;
    return NULL;
  }
  return __real_malloc(size);
}

/* A workflow of every node type, forward and backward dependencies,
 * routes, retries, and more ids than the id table's first size. */
static void chain_text(char *buf, size_t size, int nodes_last) {
  size_t n = 0;
  int i;
  n += (size_t)snprintf(buf + n, size - n, "{\"name\": \"oom\", %s\"nodes\": [",
                        nodes_last ? "\"input\": {\"k\": [1, 2]}, " : "");
  n += (size_t)snprintf(buf + n, size - n,
                        "{\"id\": \"first\", \"type\": \"set\", \"output\": {\"a\": [1, {\"b\": "
                        "\"c\"}]}},"
                        "{\"id\": \"route\", \"type\": \"pass\", \"routes\": {\"yes\": [\"n1\"], "
                        "\"default\": [\"n2\"]}, \"after\": [\"first\"]},"
                        "{\"id\": \"sleepy\", \"type\": \"sleep\", \"ms\": 1, \"retries\": 2, "
                        "\"timeout_ms\": 100},"
                        "{\"id\": \"ext\", \"type\": \"exec\", \"command\": [\"true\"], \"after\": "
                        "[\"n39\"]},"
                        "{\"id\": \"bad\", \"type\": \"fail\", \"message\": \"no\"}");
  for (i = 0; i < 40; i++) {
    char dep[16] = "sleepy";
    if (i > 0)
      snprintf(dep, sizeof dep, "n%d", i - 1);
    n += (size_t)snprintf(buf + n, size - n,
                          ", {\"id\": \"n%d\", \"type\": \"pass\", \"after\": [\"%s\"]}", i, dep);
  }
  if (nodes_last)
    snprintf(buf + n, size - n, "]}");
  else
    snprintf(buf + n, size - n, "], \"input\": {\"k\": [1, 2]}}");
}

/* Loads text (with fc_workflow_load_buffer_ex's `flags`) with allocation N
 * failing for N = 0, 1, ...; returns how many loads were made. `want` is
 * the code of a load that runs out of nothing;
 * `nodes` the node count of its workflow (want == 0); *syntax how many
 * loads jansson reported as syntax errors. */
static long load_failing_each(const char *text, unsigned flags, int want, size_t nodes,
                              long *syntax) {
  long n, jansson_syntax = 0;
  for (n = 0;; n++) {
    fc_workflow_t *wf = NULL;
    json_t *input = NULL;
    fc_load_errors_t errors;
    int rc;
    fc_load_errors_init(&errors);
    g_count = 0;
    g_jansson_failed = 0;
    g_fail_at = n;
    rc = fc_workflow_load_buffer_ex(text, strlen(text), flags, &wf, &input, &errors);
    g_fail_at = -1;
    if (rc == FC_EDEFINITION && want != FC_EDEFINITION) {
      if (!g_jansson_failed || errors.count == 0 ||
          strstr(errors.items[0].text, "invalid JSON") == NULL)
        fail_msg("allocation %ld failing: FC_EDEFINITION: %s", n,
                 errors.count > 0 ? errors.items[0].text : "(no message)");
      jansson_syntax++;
    } else if (rc != want && rc != FC_ENOMEM)
      fail_msg("allocation %ld failing: load returned %d (%s), expected %d or FC_ENOMEM", n, rc,
               fc_strerror(rc), want);
    if (rc == 0) {
      assert_non_null(wf);
      assert_int_equal(fc_workflow_node_count(wf), nodes);
    } else {
      assert_null(wf);
      assert_null(input);
    }
    json_decref(input);
    fc_workflow_free(wf);
    fc_load_errors_free(&errors);
    if (g_count <= n) { /* nothing failed: every allocation was tried */
      *syntax = jansson_syntax;
      return n + 1;
    }
  }
}

static void test_valid_streamed(void **state) {
  static char text[8192];
  long syntax;
  (void)state;
  chain_text(text, sizeof text, 1);
  assert_true(load_failing_each(text, 0, 0, 45, &syntax) > 500);
  /* A node that jansson fails to parse sends the load back to the whole
   * text, which then parses: none of these loads ends as a syntax error. */
  assert_int_equal(syntax, 0);
  /* The same with the `set` constants kept as text. */
  assert_true(load_failing_each(text, FC_LOAD_LAZY_CONSTANTS, 0, 45, &syntax) > 500);
  assert_int_equal(syntax, 0);
}

/* A run of a lazily loaded workflow whose outputs are made from their
 * text as they are read, with allocation N failing: it ends (completed or
 * failed, or it cannot start), never crashes, frees what it took, and
 * when it completes its output is the one a run without failures gives. */
static void test_lazy_run(void **state) {
  const char *text = "{\"name\": \"lazy\", \"nodes\": ["
                     "{\"id\": \"a\", \"type\": \"set\", \"output\": {\"k\": [1, \"x\"]}},"
                     "{\"id\": \"b\", \"type\": \"pass\", \"after\": [\"a\"]},"
                     "{\"id\": \"c\", \"type\": \"pass\", \"after\": [\"a\"]},"
                     "{\"id\": \"d\", \"type\": \"set\", \"output\": [true, null], "
                     "\"after\": [\"b\", \"c\"]}]}";
  fc_workflow_t *wf = NULL;
  fc_run_result_t res;
  json_t *want;
  long n;
  (void)state;
  assert_int_equal(
      fc_workflow_load_buffer_ex(text, strlen(text), FC_LOAD_LAZY_CONSTANTS, &wf, NULL, NULL), 0);
  assert_int_equal(fc_workflow_run(wf, NULL, NULL, &res, NULL), 0);
  assert_int_equal(res.status, FC_WORKFLOW_COMPLETED);
  want = json_incref(res.output);
  fc_run_result_clear(&res);
  for (n = 0;; n++) {
    int rc;
    memset(&res, 0, sizeof res);
    g_count = 0;
    g_fail_at = n;
    rc = fc_workflow_run(wf, NULL, NULL, &res, NULL);
    g_fail_at = -1;
    if (rc == 0 && res.status == FC_WORKFLOW_COMPLETED)
      assert_true(json_equal(res.output, want));
    else if (rc == 0)
      assert_int_equal(res.status, FC_WORKFLOW_FAILED);
    fc_run_result_clear(&res);
    if (g_count <= n)
      break;
  }
  assert_true(n > 20);
  json_decref(want);
  fc_workflow_free(wf);
}

static void test_valid_whole(void **state) {
  static char text[8192];
  long syntax;
  (void)state;
  chain_text(text, sizeof text, 0); /* "nodes" not last: parsed whole */
  assert_true(load_failing_each(text, 0, 0, 45, &syntax) > 500);
}

static void test_invalid(void **state) {
  const char *text = "{\"name\": \"bad\", \"nodes\": [\"no\", {\"id\": 7, \"type\": \"pass\"},"
                     "{\"id\": \"a\", \"type\": \"pass\", \"after\": [\"zz\", \"b\"]},"
                     "{\"id\": \"a\", \"type\": \"pass\"}, {\"id\": \"b\", \"type\": \"nope\"},"
                     "{\"id\": \"c\", \"type\": \"pass\", \"routes\": {\"r\": [\"yy\"]}}]}";
  long syntax;
  (void)state;
  assert_true(load_failing_each(text, 0, FC_EDEFINITION, 0, &syntax) > 50);
}

static void nop(fc_node_ctx_t *ctx, void *user_data) {
  (void)ctx;
  (void)user_data;
}

/* The builder alone: the id table grows, dependencies are found when added
 * or at validation; any failure leaves a workflow that frees cleanly. */
static void test_builder(void **state) {
  long n;
  (void)state;
  for (n = 0;; n++) {
    fc_workflow_t *wf = NULL;
    fc_node_t *node;
    char id[16], dep[16];
    int i, rc = 0;
    g_count = 0;
    g_fail_at = n;
    if (fc_workflow_new(&wf, "b") != 0) {
      g_fail_at = -1;
      assert_null(wf);
      continue;
    }
    for (i = 0; i < 40 && rc == 0; i++) {
      snprintf(id, sizeof id, "n%d", i);
      snprintf(dep, sizeof dep, "n%d", i % 2 == 0 ? i + 1 : i - 1);
      rc = fc_workflow_add_node(wf, id, nop, NULL, &node);
      if (rc == 0)
        rc = fc_node_add_dep(node, dep);
      if (rc == 0)
        rc = fc_node_add_route(node, "r", dep);
    }
    if (rc == 0)
      rc = fc_workflow_validate(wf, NULL);
    g_fail_at = -1;
    /* n0 and n1 depend on each other: the cycle is found once every id,
     * dependency and route target was. */
    if (rc != FC_ENOMEM && rc != FC_ECYCLE)
      fail_msg("allocation %ld failing: %d (%s)", n, rc, fc_strerror(rc));
    if (rc == FC_ECYCLE)
      assert_int_equal(fc_workflow_node_count(wf), 40);
    fc_workflow_free(wf);
    if (g_count <= n)
      break;
  }
  assert_true(n > 100);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_streamed),
      cmocka_unit_test(test_valid_whole),
      cmocka_unit_test(test_lazy_run),
      cmocka_unit_test(test_invalid),
      cmocka_unit_test(test_builder),
  };
  json_set_alloc_funcs(jansson_malloc, free);
  return cmocka_run_group_tests(tests, NULL, NULL);
}

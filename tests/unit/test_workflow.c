/* Unit tests: workflow definitions (builder, accessors, validation).
 * Written against include/flowcore/workflow.h, common.h and run.h, and
 * src/workflow_int.h for the loader's fc__workflow_append. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strtok_r */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_test.h"
#include "workflow_int.h"

/* ---- helpers --------------------------------------------------------------- */

/* A node function for definitions that are never run. */
static void fn_nop(fc_node_ctx_t *ctx, void *user_data) {
  (void)user_data;
  fc_node_succeed(ctx, NULL);
}

static fc_workflow_t *new_wf(const char *name) {
  fc_workflow_t *wf = NULL;
  assert_int_equal(fc_workflow_new(&wf, name), 0);
  assert_non_null(wf);
  return wf;
}

/* Adds node `id` with dependencies given as a comma-separated list ("" or
 * NULL: none). Returns the node handle. */
static fc_node_t *add_node(fc_workflow_t *wf, const char *id, const char *deps) {
  fc_node_t *n = NULL;
  assert_int_equal(fc_workflow_add_node(wf, id, fn_nop, NULL, &n), 0);
  assert_non_null(n);
  if (deps != NULL && deps[0] != '\0') {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", deps);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save))
      assert_int_equal(fc_node_add_dep(n, tok), 0);
  }
  return n;
}

/* Adds the chain n<from> .. n<to - 1>, each node after the one before it
 * (n0 after none). */
static void add_chain(fc_workflow_t *wf, int from, int to) {
  char id[32], dep[32];
  for (int i = from; i < to; i++) {
    snprintf(id, sizeof id, "n%d", i);
    snprintf(dep, sizeof dep, "n%d", i - 1);
    add_node(wf, id, i > 0 ? dep : NULL);
  }
}

static void assert_text_names(const fc_error_t *err, const char *name) {
  if (strstr(err->text, name) == NULL)
    fail_msg("error text \"%s\" does not name \"%s\"", err->text, name);
}

static void assert_text_omits(const fc_error_t *err, const char *name) {
  if (strstr(err->text, name) != NULL)
    fail_msg("error text \"%s\" names \"%s\", which is not part of the problem",
             err->text, name);
}

/* Validates wf expecting `code`; checks the detail struct (`where` NULL: not
 * checked) and that validate accepts a NULL err with the same result. */
static void expect_invalid(fc_workflow_t *wf, int code, const char *where,
                           fc_error_t *err) {
  fc_error_clear(err);
  int rc = fc_workflow_validate(wf, err);
  if (rc != code)
    fail_msg("validate returned %d (%s), expected %d (%s); text: %s", rc,
             fc_err_name(rc), code, fc_err_name(code), err->text);
  assert_int_equal(err->code, code);
  assert_true(strlen(err->text) > 0);
  if (where != NULL)
    assert_string_equal(err->where, where);
  /* NULL err is allowed and gives the same result. */
  assert_int_equal(fc_workflow_validate(wf, NULL), code);
}

static char *repeat_char(char c, size_t n) {
  char *s = malloc(n + 1);
  assert_non_null(s);
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

/* ---- error struct ---------------------------------------------------------- */

static void test_error_clear(void **state) {
  (void)state;
  fc_error_t err;
  memset(&err, 'x', sizeof err);
  err.code = 17;
  fc_error_clear(&err);
  assert_int_equal(err.code, 0);
  assert_string_equal(err.where, "");
  assert_string_equal(err.text, "");
}

/* The first error recorded in an fc_error_t is kept. */
static void test_error_first_kept(void **state) {
  (void)state;
  fc_workflow_t *dup = new_wf("dup");
  add_node(dup, "twice", NULL);
  add_node(dup, "twice", NULL);
  fc_workflow_t *cyc = new_wf("cyc");
  add_node(cyc, "selfish", "selfish");

  fc_error_t err;
  fc_error_clear(&err);
  assert_int_equal(fc_workflow_validate(dup, &err), FC_EDUPLICATE);
  assert_int_equal(err.code, FC_EDUPLICATE);
  char text[FC_ERROR_TEXT_LENGTH];
  memcpy(text, err.text, sizeof text);
  /* The return code is the new error, the struct keeps the first one. */
  assert_int_equal(fc_workflow_validate(cyc, &err), FC_ECYCLE);
  assert_int_equal(err.code, FC_EDUPLICATE);
  assert_string_equal(err.text, text);
  fc_workflow_free(dup);
  fc_workflow_free(cyc);
}

/* ---- builder and accessors ------------------------------------------------- */

static void test_builder_accessors(void **state) {
  (void)state;
  fc_workflow_t *wf = new_wf("my flow");
  assert_string_equal(fc_workflow_name(wf), "my flow");
  assert_int_equal(fc_workflow_node_count(wf), 0);
  assert_int_equal(fc_workflow_max_parallel(wf), 0);

  fc_node_t *a = add_node(wf, "a", NULL);
  fc_node_t *b = add_node(wf, "b", "a");
  fc_node_t *c = add_node(wf, "c", "a,b");
  assert_int_equal(fc_workflow_node_count(wf), 3);
  assert_ptr_equal(fc_workflow_node_at(wf, 0), a);
  assert_ptr_equal(fc_workflow_node_at(wf, 1), b);
  assert_ptr_equal(fc_workflow_node_at(wf, 2), c);
  assert_null(fc_workflow_node_at(wf, 3));
  assert_string_equal(fc_node_id(b), "b");
  assert_string_equal(fc_node_type(a), "");
  assert_int_equal(fc_node_set_type(a, "exec"), 0);
  assert_string_equal(fc_node_type(a), "exec");
  assert_ptr_equal(fc_workflow_find_node(wf, "c"), c);
  assert_null(fc_workflow_find_node(wf, "zz"));

  assert_int_equal(fc_workflow_set_max_parallel(wf, 4), 0);
  assert_int_equal(fc_workflow_max_parallel(wf), 4);
  assert_int_equal(fc_workflow_set_max_parallel(wf, -1), FC_EINVAL);
  assert_int_equal(fc_workflow_max_parallel(wf), 4);
  assert_int_equal(fc_node_set_retries(b, -1, 0, 0), FC_EINVAL);
  assert_int_equal(fc_node_set_retries(b, 2, 10, 100), 0);
  assert_int_equal(fc_node_set_timeout(b, 50), 0);

  /* Ids are copied. */
  char id[8];
  snprintf(id, sizeof id, "d");
  fc_node_t *d = NULL;
  assert_int_equal(fc_workflow_add_node(wf, id, fn_nop, NULL, &d), 0);
  id[0] = 'X';
  assert_string_equal(fc_node_id(d), "d");

  fc_error_t err;
  fc_error_clear(&err);
  assert_int_equal(fc_workflow_validate(wf, &err), 0);
  assert_int_equal(err.code, 0);
  /* After validation: same handles, lookups still work. */
  assert_ptr_equal(fc_workflow_find_node(wf, "b"), b);
  assert_ptr_equal(fc_workflow_find_node(wf, "d"), d);
  assert_null(fc_workflow_find_node(wf, "zz"));
  assert_ptr_equal(fc_workflow_node_at(wf, 0), a);
  assert_string_equal(fc_workflow_name(wf), "my flow");
  fc_workflow_free(wf);
}

static void test_builder_invalid_args(void **state) {
  (void)state;
  fc_workflow_t *wf = NULL;
  assert_int_equal(fc_workflow_new(&wf, NULL), FC_EINVAL);
  wf = new_wf("w");
  assert_int_equal(fc_workflow_add_node(wf, NULL, fn_nop, NULL, NULL), FC_EINVAL);
  assert_int_equal(fc_workflow_node_count(wf), 0);
  /* node_out may be NULL. */
  assert_int_equal(fc_workflow_add_node(wf, "n", fn_nop, NULL, NULL), 0);
  assert_int_equal(fc_workflow_node_count(wf), 1);
  fc_workflow_free(wf);
  fc_workflow_free(NULL);
}

static void test_frozen_after_validate(void **state) {
  (void)state;
  fc_workflow_t *wf = new_wf("frozen");
  fc_node_t *a = add_node(wf, "a", NULL);
  fc_node_t *b = add_node(wf, "b", "a");
  fc_error_t err;
  fc_error_clear(&err);
  assert_int_equal(fc_workflow_validate(wf, &err), 0);

  fc_node_t *n = NULL;
  assert_int_equal(fc_workflow_add_node(wf, "c", fn_nop, NULL, &n), FC_EFROZEN);
  assert_int_equal(fc_workflow_set_max_parallel(wf, 2), FC_EFROZEN);
  assert_int_equal(fc_node_set_type(a, "x"), FC_EFROZEN);
  assert_int_equal(fc_node_add_dep(a, "b"), FC_EFROZEN);
  assert_int_equal(fc_node_add_route(a, "accept", "b"), FC_EFROZEN);
  assert_int_equal(fc_node_set_retries(b, 1, 0, 0), FC_EFROZEN);
  assert_int_equal(fc_node_set_timeout(b, 10), FC_EFROZEN);
  assert_int_equal(fc_node_set_data_free(b, free), FC_EFROZEN);

  /* Nothing changed. */
  assert_int_equal(fc_workflow_node_count(wf), 2);
  assert_null(fc_workflow_find_node(wf, "c"));
  assert_int_equal(fc_workflow_max_parallel(wf), 0);
  assert_string_equal(fc_node_type(a), "");
  /* Validating again returns 0 at once; the error struct stays clear. */
  assert_int_equal(fc_workflow_validate(wf, &err), 0);
  assert_int_equal(err.code, 0);
  assert_int_equal(fc_workflow_validate(wf, NULL), 0);
  fc_workflow_free(wf);
}

/* A failed validation leaves the workflow editable: fixing it helps. */
static void test_failed_validation_not_frozen(void **state) {
  (void)state;
  fc_workflow_t *wf = new_wf("fixable");
  add_node(wf, "needs_later", "added_later");
  fc_error_t err;
  expect_invalid(wf, FC_EUNKNOWNDEP, "needs_later", &err);
  assert_text_names(&err, "added_later");
  add_node(wf, "added_later", NULL);
  fc_error_clear(&err);
  assert_int_equal(fc_workflow_validate(wf, &err), 0);
  assert_int_equal(err.code, 0);
  fc_workflow_free(wf);
}

/* ---- validation errors ----------------------------------------------------- */

static void test_duplicate_id(void **state) {
  (void)state;
  fc_workflow_t *wf = new_wf("dups");
  add_node(wf, "first_one", NULL);
  fc_node_t *first = add_node(wf, "dup_node", NULL);
  add_node(wf, "other", "first_one");
  fc_node_t *second = add_node(wf, "dup_node", "first_one");
  add_node(wf, "first_one", NULL); /* a later duplicate: not the one reported */
  /* Before validation the id finds the first node added with it. */
  assert_ptr_equal(fc_workflow_find_node(wf, "dup_node"), first);
  assert_ptr_not_equal(first, second);
  fc_error_t err;
  expect_invalid(wf, FC_EDUPLICATE, "dup_node", &err);
  assert_text_names(&err, "dup_node");
  assert_text_names(&err, "#3");
  assert_text_names(&err, "already used by node #1");
  assert_text_omits(&err, "first_one");
  fc_workflow_free(wf);
}

/* A dependency on an id that two nodes have is on the first of them, found
 * when the dependency is added or, for an id added later, at validation. */
static void test_dependency_on_duplicate_id(void **state) {
  (void)state;
  fc_workflow_t *wf = new_wf("dups");
  add_node(wf, "early", "shared");
  fc_node_t *shared = add_node(wf, "shared", NULL);
  add_node(wf, "late", "shared");
  add_node(wf, "shared", NULL);
  assert_ptr_equal(fc_workflow_find_node(wf, "shared"), shared);
  /* Both dependencies resolve to the first "shared", so the only error is
   * the duplicate (an unknown dependency would be reported as such). */
  fc_error_t err;
  expect_invalid(wf, FC_EDUPLICATE, "shared", &err);
  assert_text_names(&err, "#3");
  assert_text_names(&err, "node #1");
  fc_workflow_free(wf);
}

/* Many ids: every one is found (the id table grows as nodes are added),
 * before and after validation, and the chain in file order validates. */
static void test_many_ids(void **state) {
  (void)state;
  enum { N = 50000 };
  fc_workflow_t *wf = new_wf("many");
  char id[32];
  add_chain(wf, 0, N);
  for (int i = 0; i < N; i += 7) {
    snprintf(id, sizeof id, "n%d", i);
    assert_ptr_equal(fc_workflow_find_node(wf, id), fc_workflow_node_at(wf, (size_t)i));
  }
  assert_null(fc_workflow_find_node(wf, "n50000"));
  assert_null(fc_workflow_find_node(wf, "n"));
  fc_error_t err;
  fc_error_clear(&err);
  assert_int_equal(fc_workflow_validate(wf, &err), 0);
  for (int i = 0; i < N; i += 7) {
    snprintf(id, sizeof id, "n%d", i);
    assert_ptr_equal(fc_workflow_find_node(wf, id), fc_workflow_node_at(wf, (size_t)i));
  }
  fc_workflow_free(wf);
}

/* fc__workflow_append (the loader's second part, src/workflow_int.h): the
 * part's nodes follow wf's with their ids and dependencies renumbered; an
 * id wf already has refuses the whole part and leaves wf's table as it
 * was, and the part's nodes as they were; a part with a duplicate of its
 * own is refused. */
static void append_part(size_t thread_min) {
  enum { N = 3000 };
  size_t saved = fc__workflow_thread_min;
  int known = -1;
  fc_workflow_t *wf = new_wf("first"), *part = new_wf("part"), *bad = new_wf("bad");
  char id[32];
  fc_error_t err;
  add_chain(wf, 0, N);
  /* part: a chain whose first node depends on wf's last, ending with an
   * id of wf's: refused, wf unchanged */
  add_chain(part, N, 2 * N);
  add_node(part, "n17", NULL);
  fc__workflow_thread_min = thread_min;
  assert_int_equal(fc__workflow_append(wf, part, &known), FC_EDUPLICATE);
  assert_int_equal(fc_workflow_node_count(wf), N);
  assert_int_equal(fc_workflow_node_count(part), N + 1);
  for (int i = 0; i <= N; i++) { /* the part's nodes as they were */
    fc_node_t *n = fc_workflow_node_at(part, (size_t)i);
    assert_ptr_equal(n->wf, part);
    assert_int_equal(n->index, i);
    assert_ptr_equal(fc_workflow_find_node(part, n->id), n);
  }
  assert_int_equal(fc_workflow_node_at(part, 1)->deps[0].node, 1); /* n3000, index 0 */
  for (int i = 0; i < 2 * N; i++) {
    snprintf(id, sizeof id, "n%d", i);
    if (i < N)
      assert_ptr_equal(fc_workflow_find_node(wf, id), fc_workflow_node_at(wf, (size_t)i));
    else
      assert_null(fc_workflow_find_node(wf, id));
  }
  fc_workflow_free(part);

  /* the same without the duplicate: appended */
  part = new_wf("part");
  add_chain(part, N, 2 * N);
  add_node(part, "late", "n2999,n5999");
  assert_int_equal(fc__workflow_append(wf, part, &known), 0);
  assert_int_equal(known, 1); /* n2999 is wf's, n5999 the part's */
  assert_int_equal(fc_workflow_node_count(wf), 2 * N + 1);
  for (int i = 0; i < 2 * N; i++) {
    snprintf(id, sizeof id, "n%d", i);
    assert_ptr_equal(fc_workflow_find_node(wf, id), fc_workflow_node_at(wf, (size_t)i));
  }
  assert_ptr_equal(fc_workflow_find_node(wf, "late"), fc_workflow_node_at(wf, 2 * N));
  for (int i = 0; i <= 2 * N; i++) {
    fc_node_t *n = fc_workflow_node_at(wf, (size_t)i);
    assert_ptr_equal(n->wf, wf);
    assert_int_equal(n->index, i);
    /* a dependency found in the part points at the node before */
    if (i > N && i < 2 * N)
      assert_int_equal(n->deps[0].node, i);
  }
  /* references of a part to wf's nodes, its own and none */
  part = new_wf("refs");
  add_node(part, "r1", "n17");
  assert_int_equal(fc_node_add_route(add_node(part, "r2", "r1"), "go", "n5"), 0);
  known = -1;
  assert_int_equal(fc__workflow_append(wf, part, &known), 0);
  assert_int_equal(known, 1);
  part = new_wf("route to none");
  add_node(part, "r3a", NULL);
  assert_int_equal(fc_node_add_route(add_node(part, "r3", "r3a"), "go", "gone"), 0);
  assert_int_equal(fc__workflow_append(wf, part, &known), 0);
  assert_int_equal(known, 0);
  part = new_wf("dependency on none");
  add_node(part, "r4", "r3,nowhere");
  assert_int_equal(fc__workflow_append(wf, part, &known), 0);
  assert_int_equal(known, 0);
  fc_error_clear(&err);
  assert_int_equal(fc_workflow_validate(wf, &err), FC_EUNKNOWNDEP);

  /* a part with a duplicate of its own */
  add_node(bad, "x", NULL);
  add_node(bad, "x", NULL);
  assert_int_equal(fc__workflow_append(wf, bad, &known), FC_EINVAL);
  fc__workflow_thread_min = saved;
  fc_workflow_free(bad);
  fc_workflow_free(wf);
}

/* Renumbered on a thread of its own while the ids are entered, and not. */
static void test_append_part(void **state) {
  (void)state;
  append_part(0);
  append_part(SIZE_MAX);
}

/* The same chain built in one workflow and in two appended ones runs the
 * same way: dependencies found in the part point at the right nodes. */
static void test_append_then_validate(void **state) {
  (void)state;
  enum { N = 1000 };
  fc_workflow_t *wf = new_wf("first"), *part = new_wf("part");
  fc_error_t err;
  add_chain(wf, 0, N);
  add_chain(part, N, 2 * N);
  /* n0 after the part's last node: a cycle through both halves */
  assert_int_equal(fc_node_add_dep(fc_workflow_node_at(wf, 0), "n1999"), 0);
  assert_int_equal(fc__workflow_append(wf, part, NULL), 0);
  fc_error_clear(&err);
  assert_int_equal(fc_workflow_validate(wf, &err), FC_ECYCLE);
  assert_text_names(&err, "dependency cycle of 2000 nodes");
  fc_workflow_free(wf);
}

/* Node specs for two_halves: "id:dep,dep" (no dependencies: "id:"). */
typedef struct {
  const char *const *nodes;
  size_t count, split; /* nodes[split...] are appended as a part */
  const char *late_deps; /* "node:dep,dep" added after the append, or NULL */
} halves_t;

static void add_spec(fc_workflow_t *wf, const char *spec) {
  char id[64];
  const char *colon = strchr(spec, ':');
  snprintf(id, sizeof id, "%.*s", (int)(colon - spec), spec);
  add_node(wf, id, colon + 1);
}

static void add_late_deps(fc_workflow_t *wf, const char *spec) {
  char id[64], deps[64], *save = NULL, *d;
  const char *colon;
  if (spec == NULL)
    return;
  colon = strchr(spec, ':');
  snprintf(id, sizeof id, "%.*s", (int)(colon - spec), spec);
  snprintf(deps, sizeof deps, "%s", colon + 1);
  for (d = strtok_r(deps, ",", &save); d != NULL; d = strtok_r(NULL, ",", &save))
    assert_int_equal(fc_node_add_dep(fc_workflow_find_node(wf, id), d), 0);
}

/* Validates the nodes built in one workflow, and built in two parts
 * appended (validation then does the two halves at once): the same
 * result, error, edges in the same order, predecessor lists and roots. */
static void two_halves(const halves_t *h, int code) {
  fc_workflow_t *one = new_wf("one"), *two = new_wf("two"), *part = new_wf("part");
  size_t saved = fc__workflow_thread_min, k;
  fc_error_t e1, e2;
  for (k = 0; k < h->count; k++) {
    add_spec(one, h->nodes[k]);
    add_spec(k < h->split ? two : part, h->nodes[k]);
  }
  fc__workflow_thread_min = 0;
  assert_int_equal(fc__workflow_append(two, part, NULL), 0);
  assert_int_equal(two->split_at, h->split);
  add_late_deps(one, h->late_deps);
  add_late_deps(two, h->late_deps);
  fc_error_clear(&e1);
  fc_error_clear(&e2);
  assert_int_equal(fc_workflow_validate(one, &e1), code);
  assert_int_equal(fc_workflow_validate(two, &e2), code);
  fc__workflow_thread_min = saved;
  assert_string_equal(e1.text, e2.text);
  assert_string_equal(e1.where, e2.where);
  if (code == 0)
    fc_test_same_edges(one, two);
  fc_workflow_free(one);
  fc_workflow_free(two);
}

/* Validation of a workflow appended in two parts does its halves on two
 * threads (workflow.c, deps_edges) and must give what one pass gives. */
static void test_validate_two_halves(void **state) {
  /* edges within each half and from the first to the second, repeated
   * dependencies (right after each other: one edge; not: two), a node of
   * the first half with successors in both, roots in both */
  static const char *const mixed[] = {"a:",        "b:a",       "c:a,a,b,a", "d:",
                                      "e:c,a,d,a", "f:e,e,b",   "g:",        "h:a,g,f,a"};
  /* a dependency of the first half on the second: one pass again */
  static const char *const forward[] = {"a:", "b:a,d", "c:b", "d:", "e:d,a", "f:b,e"};
  /* unknown dependencies in both halves: the first half's is reported */
  static const char *const unknown_both[] = {"a:", "b:a,x1", "c:b", "d:c,x2", "e:d"};
  static const char *const unknown_second[] = {"a:", "b:a", "c:b", "d:c,a,x2", "e:d"};
  /* a cycle through both halves */
  static const char *const cycle[] = {"a:e", "b:a", "c:b", "d:c", "e:d"};
  const halves_t cases[] = {
      {mixed, 8, 4, NULL},          {mixed, 8, 1, NULL},          {mixed, 8, 7, NULL},
      {forward, 6, 3, NULL},        {unknown_both, 5, 3, NULL},   {unknown_second, 5, 3, NULL},
      {cycle, 5, 2, NULL},          {mixed, 8, 4, "b:h"},         {mixed, 8, 4, "f:a"},
      {mixed, 8, 4, "d:c,b"}, /* more dependencies in the first half, after the append */
  };
  const int codes[] = {0, 0, 0, 0, FC_EUNKNOWNDEP, FC_EUNKNOWNDEP, FC_ECYCLE, FC_ECYCLE, 0, 0};
  size_t k;
  (void)state;
  for (k = 0; k < sizeof cases / sizeof cases[0]; k++)
    two_halves(&cases[k], codes[k]);
}

/* Repeated dependencies (right after each other or not), one named
 * before its node exists, and a validation that fails then succeeds give
 * successor lists that match the predecessor lists edge for edge, and a
 * run that completes. */
static void test_successors_match_predecessors(void **state) {
  fc_workflow_t *wf = new_wf("edges");
  fc_run_result_t res;
  size_t i, j, k, outs = 0, ins = 0;
  (void)state;
  add_node(wf, "a", NULL);
  add_node(wf, "b", "a");
  add_node(wf, "y", "a,a");
  add_node(wf, "x", "a,b,a,later,later");
  add_node(wf, "w", "missing");
  assert_int_equal(fc_workflow_validate(wf, NULL), FC_EUNKNOWNDEP);
  add_node(wf, "later", "b");
  add_node(wf, "missing", NULL);
  assert_int_equal(fc_workflow_validate(wf, NULL), 0);
  for (i = 0; i < wf->nnodes; i++) {
    const fc_node_t *n = wf->nodes[i];
    outs += n->nout;
    ins += n->nin;
    for (j = 0; j < n->nin; j++) { /* each predecessor edge is a successor edge */
      const fc_node_t *p = wf->nodes[fc__node_in(n)[j]];
      size_t want = 0, have = 0;
      for (k = 0; k < n->nin; k++)
        want += fc__node_in(n)[k] == fc__node_in(n)[j];
      for (k = 0; k < p->nout; k++)
        have += p->out[k].to == i;
      assert_int_equal(want, have);
    }
  }
  assert_int_equal(outs, ins);
  assert_int_equal(wf->nodes[2]->nin, 1); /* y: "a" twice in a row is one edge */
  assert_int_equal(fc_workflow_run(wf, NULL, NULL, &res, NULL), 0);
  assert_int_equal(res.status, FC_WORKFLOW_COMPLETED);
  assert_int_equal(res.status_counts[FC_NODE_COMPLETED], 7);
  fc_run_result_clear(&res);
  fc_workflow_free(wf);
}

static void test_unknown_dependency(void **state) {
  (void)state;
  fc_workflow_t *wf = new_wf("deps");
  add_node(wf, "root", NULL);
  add_node(wf, "needs_ghost", "root,ghost_dep");
  fc_error_t err;
  expect_invalid(wf, FC_EUNKNOWNDEP, "needs_ghost", &err);
  assert_text_names(&err, "needs_ghost");
  assert_text_names(&err, "ghost_dep");
  fc_workflow_free(wf);
}

static void test_unknown_route_target(void **state) {
  (void)state;
  fc_workflow_t *wf = new_wf("routes");
  fc_node_t *r = add_node(wf, "router_node", NULL);
  add_node(wf, "real_target", NULL);
  assert_int_equal(fc_node_add_route(r, "accept", "real_target"), 0);
  assert_int_equal(fc_node_add_route(r, "improve", "ghost_target"), 0);
  fc_error_t err;
  expect_invalid(wf, FC_EUNKNOWNDEP, "router_node", &err);
  assert_text_names(&err, "router_node");
  assert_text_names(&err, "ghost_target");
  fc_workflow_free(wf);
}

static void test_cycle_self(void **state) {
  (void)state;
  fc_workflow_t *wf = new_wf("self");
  add_node(wf, "root", NULL);
  add_node(wf, "selfish", "root,selfish");
  fc_error_t err;
  expect_invalid(wf, FC_ECYCLE, "selfish", &err);
  assert_text_names(&err, "selfish");
  assert_text_omits(&err, "root");
  fc_workflow_free(wf);
}

static void test_cycle_two(void **state) {
  (void)state;
  fc_workflow_t *wf = new_wf("two");
  add_node(wf, "start_node", NULL);
  add_node(wf, "ping_node", "start_node,pong_node");
  add_node(wf, "pong_node", "ping_node");
  fc_error_t err;
  expect_invalid(wf, FC_ECYCLE, NULL, &err);
  assert_text_names(&err, "ping_node");
  assert_text_names(&err, "pong_node");
  assert_text_omits(&err, "start_node");
  assert_true(strcmp(err.where, "ping_node") == 0 || strcmp(err.where, "pong_node") == 0);
  fc_workflow_free(wf);
}

static void test_cycle_long(void **state) {
  (void)state;
  fc_workflow_t *wf = new_wf("long cycle");
  /* Nodes downstream of the cycle come first: they are stuck too, but are
   * not part of the cycle. */
  add_node(wf, "cyc_exit", "cyc_beta");
  add_node(wf, "cyc_exit_2", "cyc_exit");
  add_node(wf, "cyc_entry", NULL);
  add_node(wf, "cyc_alpha", "cyc_entry,cyc_delta");
  add_node(wf, "cyc_beta", "cyc_alpha");
  add_node(wf, "cyc_gamma", "cyc_beta");
  add_node(wf, "cyc_delta", "cyc_gamma");
  add_node(wf, "bystander", NULL);
  fc_error_t err;
  expect_invalid(wf, FC_ECYCLE, NULL, &err);
  static const char *const members[] = {"cyc_alpha", "cyc_beta", "cyc_gamma",
                                        "cyc_delta"};
  int where_ok = 0;
  for (size_t i = 0; i < 4; i++) {
    assert_text_names(&err, members[i]);
    if (strcmp(err.where, members[i]) == 0)
      where_ok = 1;
  }
  if (!where_ok)
    fail_msg("where \"%s\" is not a node of the cycle", err.where);
  assert_text_omits(&err, "cyc_entry");
  assert_text_omits(&err, "cyc_exit");
  assert_text_omits(&err, "bystander");
  fc_workflow_free(wf);
}

/* Route targets depend on their router: a route back up closes a cycle. */
static void test_cycle_through_route(void **state) {
  (void)state;
  fc_workflow_t *wf = new_wf("route cycle");
  add_node(wf, "loop_head", NULL);
  fc_node_t *r = add_node(wf, "loop_router", "loop_head");
  add_node(wf, "loop_other", NULL);
  assert_int_equal(fc_node_add_route(r, "again", "loop_head"), 0);
  assert_int_equal(fc_node_add_route(r, "done", "loop_other"), 0);
  fc_error_t err;
  expect_invalid(wf, FC_ECYCLE, NULL, &err);
  assert_text_names(&err, "loop_head");
  assert_text_names(&err, "loop_router");
  assert_text_omits(&err, "loop_other");
  fc_workflow_free(wf);
}

/* A very long cycle: validation must not recurse per node. */
static void test_cycle_very_long(void **state) {
  (void)state;
  enum { N = 20000 };
  fc_workflow_t *wf = new_wf("huge cycle");
  char id[32], dep[32];
  for (int i = 0; i < N; i++) {
    snprintf(id, sizeof id, "c%05d", i);
    snprintf(dep, sizeof dep, "c%05d", (i + 1) % N);
    add_node(wf, id, dep);
  }
  fc_error_t err;
  expect_invalid(wf, FC_ECYCLE, NULL, &err);
  assert_true(strlen(err.text) < FC_ERROR_TEXT_LENGTH);
  fc_workflow_free(wf);
}

/* A long chain added in reverse order (forward references) validates. */
static void test_long_chain_reverse_order(void **state) {
  (void)state;
  enum { N = 20000 };
  fc_workflow_t *wf = new_wf("chain");
  char id[32], dep[32];
  for (int i = N - 1; i >= 0; i--) {
    snprintf(id, sizeof id, "n%05d", i);
    snprintf(dep, sizeof dep, "n%05d", i - 1);
    add_node(wf, id, i > 0 ? dep : NULL);
  }
  fc_error_t err;
  fc_error_clear(&err);
  assert_int_equal(fc_workflow_validate(wf, &err), 0);
  assert_int_equal(fc_workflow_node_count(wf), N);
  assert_ptr_equal(fc_workflow_find_node(wf, "n00000"), fc_workflow_node_at(wf, N - 1));
  fc_workflow_free(wf);
}

static void test_node_without_function(void **state) {
  (void)state;
  fc_workflow_t *wf = new_wf("nofn");
  add_node(wf, "has_fn", NULL);
  fc_node_t *n = NULL;
  assert_int_equal(fc_workflow_add_node(wf, "no_fn_node", NULL, NULL, &n), 0);
  assert_non_null(n);
  assert_int_equal(fc_node_add_dep(n, "has_fn"), 0);
  fc_error_t err;
  expect_invalid(wf, FC_ENOFN, "no_fn_node", &err);
  assert_text_names(&err, "no_fn_node");
  fc_workflow_free(wf);
}

/* Validation skips its look at every node when each id passed as it was
 * added and no node has routes: a bad route name, or a bad id that came
 * with an appended part, must still be found. */
static void test_names_checked_when_needed(void **state) {
  (void)state;
  fc_workflow_t *wf = new_wf("names"), *part = new_wf("part");
  fc_node_t *r;
  fc_error_t err;
  add_chain(wf, 0, 50);
  r = add_node(wf, "router_node", "n49");
  assert_int_equal(fc_node_add_route(r, "bad/route", "n0"), 0);
  expect_invalid(wf, FC_EBADNAME, "router_node", &err);
  assert_text_names(&err, "bad/route");
  fc_workflow_free(wf);

  wf = new_wf("names");
  add_chain(wf, 0, 50);
  r = add_node(wf, "router_node", "n49");
  for (int i = 0; i <= FC__MAX_ROUTES; i++) {
    char name[32];
    snprintf(name, sizeof name, "route_%d", i);
    assert_int_equal(fc_node_add_route(r, name, "n0"), 0);
  }
  expect_invalid(wf, FC_EDEFINITION, "router_node", &err);
  fc_workflow_free(wf);

  wf = new_wf("names");
  add_chain(wf, 0, 50);
  add_chain(part, 50, 100);
  add_node(part, "bad id", "n99");
  assert_int_equal(fc__workflow_append(wf, part, NULL), 0);
  expect_invalid(wf, FC_EBADNAME, "bad id", &err);
  fc_workflow_free(wf);
}

/* A node id that the builder accepts but validation rejects. */
static void expect_bad_node_id(const char *id) {
  fc_workflow_t *wf = new_wf("names");
  add_node(wf, "fine_node", NULL);
  fc_node_t *n = NULL;
  int rc = fc_workflow_add_node(wf, id, fn_nop, NULL, &n);
  if (rc != 0)
    fail_msg("add_node(\"%.40s\") returned %s; names are checked by validate",
             id, fc_err_name(rc));
  fc_error_t err;
  fc_error_clear(&err);
  rc = fc_workflow_validate(wf, &err);
  if (rc != FC_EBADNAME)
    fail_msg("node id \"%.40s\" (%zu bytes): validate returned %s, expected FC_EBADNAME",
             id, strlen(id), fc_err_name(rc));
  assert_int_equal(err.code, FC_EBADNAME);
  assert_true(strlen(err.text) > 0);
  assert_int_equal(fc_workflow_validate(wf, NULL), FC_EBADNAME);
  fc_workflow_free(wf);
}

static void expect_good_node_id(const char *id) {
  fc_workflow_t *wf = new_wf("names");
  add_node(wf, id, NULL);
  fc_error_t err;
  fc_error_clear(&err);
  int rc = fc_workflow_validate(wf, &err);
  if (rc != 0)
    fail_msg("node id \"%.40s\" (%zu bytes) rejected: %s (%s)", id, strlen(id),
             fc_err_name(rc), err.text);
  assert_non_null(fc_workflow_find_node(wf, id));
  fc_workflow_free(wf);
}

static void test_bad_node_ids(void **state) {
  (void)state;
  char *longest = repeat_char('x', FC_NAME_MAX);
  char *too_long = repeat_char('y', FC_NAME_MAX + 1);
  expect_good_node_id(longest);
  expect_good_node_id("Az09_.:-x");
  expect_bad_node_id("");
  expect_bad_node_id(too_long);
  expect_bad_node_id("has space");
  expect_bad_node_id("slash/x");
  expect_bad_node_id("tab\tx");
  expect_bad_node_id("quote\"x");
  expect_bad_node_id("caf\xc3\xa9");
  /* "input" would collide with the key of the workflow input in a node's
   * input object; the engine reserves it. */
  expect_bad_node_id("input");
  free(longest);
  free(too_long);
}

static void expect_workflow_name(const char *name, int want) {
  fc_workflow_t *wf = new_wf(name);
  assert_string_equal(fc_workflow_name(wf), name);
  add_node(wf, "a", NULL);
  fc_error_t err;
  fc_error_clear(&err);
  int rc = fc_workflow_validate(wf, &err);
  if (rc != want)
    fail_msg("workflow name \"%.40s\" (%zu bytes): validate returned %s, expected %s",
             name, strlen(name), fc_err_name(rc), want ? fc_err_name(want) : "0");
  assert_int_equal(err.code, want);
  if (want != 0)
    assert_true(strlen(err.text) > 0);
  fc_workflow_free(wf);
}

static void test_workflow_names(void **state) {
  (void)state;
  char *longest = repeat_char('w', FC_WORKFLOW_NAME_MAX);
  longest[5] = ' ';
  char *too_long = repeat_char('v', FC_WORKFLOW_NAME_MAX + 1);
  expect_workflow_name("nightly build 2:x_y.z-w", 0);
  expect_workflow_name(longest, 0);
  expect_workflow_name("", FC_EBADNAME);
  expect_workflow_name(too_long, FC_EBADNAME);
  expect_workflow_name("bad/name", FC_EBADNAME);
  expect_workflow_name("new\nline", FC_EBADNAME);
  free(longest);
  free(too_long);
}

/* ---- user data ownership --------------------------------------------------- */

static int g_freed;
static void count_free(void *p) {
  g_freed++;
  free(p);
}

static void test_data_free(void **state) {
  (void)state;
  g_freed = 0;
  fc_workflow_t *wf = new_wf("owned");
  fc_node_t *n = NULL;
  assert_int_equal(fc_workflow_add_node(wf, "a", fn_nop, malloc(8), &n), 0);
  assert_int_equal(fc_node_set_data_free(n, count_free), 0);
  assert_int_equal(fc_workflow_add_node(wf, "b", fn_nop, malloc(8), &n), 0);
  assert_int_equal(fc_node_set_data_free(n, count_free), 0);
  add_node(wf, "c", NULL); /* not owned */
  fc_error_t err;
  fc_error_clear(&err);
  assert_int_equal(fc_workflow_validate(wf, &err), 0);
  assert_int_equal(g_freed, 0);
  fc_workflow_free(wf);
  assert_int_equal(g_freed, 2);

  /* Also when validation failed. */
  g_freed = 0;
  wf = new_wf("owned bad");
  assert_int_equal(fc_workflow_add_node(wf, "a", fn_nop, malloc(8), &n), 0);
  assert_int_equal(fc_node_set_data_free(n, count_free), 0);
  assert_int_equal(fc_node_add_dep(n, "missing"), 0);
  assert_int_equal(fc_workflow_validate(wf, NULL), FC_EUNKNOWNDEP);
  assert_int_equal(g_freed, 0);
  fc_workflow_free(wf);
  assert_int_equal(g_freed, 1);
}

/* ---- fc_run_new validates ------------------------------------------------- */

static int g_closed;
static void on_close_count(fc_run_t *run, void *data) {
  (void)run;
  (void)data;
  g_closed++;
}

static void test_run_new_validates(void **state) {
  (void)state;
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);

  fc_workflow_t *wf = new_wf("validated by run");
  add_node(wf, "a", NULL);
  add_node(wf, "b", "a");
  fc_run_t *run = NULL;
  fc_error_t err;
  fc_error_clear(&err);
  assert_int_equal(fc_run_new(&run, &loop, wf, NULL, &err), 0);
  assert_non_null(run);
  assert_int_equal(err.code, 0);
  assert_ptr_equal(fc_run_workflow(run), wf);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_PENDING);
  assert_string_equal(fc_run_id(run), "");
  assert_null(fc_run_output(run));
  /* The workflow is now frozen. */
  assert_int_equal(fc_workflow_add_node(wf, "c", fn_nop, NULL, NULL), FC_EFROZEN);
  /* Not running: cancel is refused. */
  assert_int_equal(fc_run_cancel(run), FC_ESTATE);

  /* An invalid workflow: no run, error details filled in. */
  fc_workflow_t *bad = new_wf("invalid");
  add_node(bad, "p_node", "q_node");
  add_node(bad, "q_node", "p_node");
  fc_run_t *bad_run = NULL;
  fc_error_clear(&err);
  assert_int_equal(fc_run_new(&bad_run, &loop, bad, NULL, &err), FC_ECYCLE);
  assert_int_equal(err.code, FC_ECYCLE);
  assert_text_names(&err, "p_node");
  assert_text_names(&err, "q_node");
  assert_int_equal(fc_run_new(&bad_run, &loop, bad, NULL, NULL), FC_ECYCLE);

  /* Closing a run that never started: close_cb once. */
  g_closed = 0;
  fc_run_close(run, on_close_count, NULL);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(g_closed, 1);
  fc_workflow_free(wf);
  fc_workflow_free(bad);
  fc_test_loop_close(&loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_clear),
      cmocka_unit_test(test_error_first_kept),
      cmocka_unit_test(test_builder_accessors),
      cmocka_unit_test(test_builder_invalid_args),
      cmocka_unit_test(test_frozen_after_validate),
      cmocka_unit_test(test_failed_validation_not_frozen),
      cmocka_unit_test(test_duplicate_id),
      cmocka_unit_test(test_dependency_on_duplicate_id),
      cmocka_unit_test(test_many_ids),
      cmocka_unit_test(test_append_part),
      cmocka_unit_test(test_append_then_validate),
      cmocka_unit_test(test_validate_two_halves),
      cmocka_unit_test(test_successors_match_predecessors),
      cmocka_unit_test(test_unknown_dependency),
      cmocka_unit_test(test_unknown_route_target),
      cmocka_unit_test(test_cycle_self),
      cmocka_unit_test(test_cycle_two),
      cmocka_unit_test(test_cycle_long),
      cmocka_unit_test(test_cycle_through_route),
      cmocka_unit_test(test_cycle_very_long),
      cmocka_unit_test(test_long_chain_reverse_order),
      cmocka_unit_test(test_names_checked_when_needed),
      cmocka_unit_test(test_node_without_function),
      cmocka_unit_test(test_bad_node_ids),
      cmocka_unit_test(test_workflow_names),
      cmocka_unit_test(test_data_free),
      cmocka_unit_test(test_run_new_validates),
  };
  return cmocka_run_group_tests_name("workflow", tests, NULL, NULL);
}

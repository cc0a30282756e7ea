/* The loader's two parts at once (src/loader.c, "two parts at once"): a
 * big "nodes" array is loaded by two threads when the second one's guessed
 * boundary is right, and the result must be exactly that of one thread.
 * Every case here loads the same text twice, never split and always split
 * (fc__load_split_min 0), and compares the outcome, the errors in order and
 * the graph; the cases say whether the part must have been appended. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_test.h"
#include "nodes/node_type.h"
#include "workflow_int.h"

/* Two workflows are the same graph: ids in order, and after validation
 * the same edges. */
static void same_graph(const fc_workflow_t *a, const fc_workflow_t *b) {
  size_t k;
  fc_test_same_edges(a, b);
  for (k = 0; k < a->nnodes; k++) {
    const fc_node_t *x = a->nodes[k], *y = b->nodes[k];
    assert_string_equal(x->id, y->id);
    assert_int_equal(x->index, k);
    assert_int_equal(y->index, k);
    assert_ptr_equal(y->wf, b);
    assert_string_equal(x->type, y->type);
    assert_int_equal(x->ndeps, y->ndeps);
    assert_ptr_equal(fc_workflow_find_node((fc_workflow_t *)b, x->id), y);
  }
}

/* Loads text never split, then always split; checks they agree. Returns
 * how many parts the split load appended (0 or 1), and the return code. */
static size_t load_both(const char *text, size_t len, int *rc_out) {
  fc_load_errors_t e1, e2;
  fc_workflow_t *w1 = NULL, *w2 = NULL;
  json_t *in1 = NULL, *in2 = NULL;
  size_t saved = fc__load_split_min, saved_thread = fc__workflow_thread_min, before, k;
  int rc1, rc2;
  fc_load_errors_init(&e1);
  fc_load_errors_init(&e2);
  fc__load_split_min = SIZE_MAX;
  rc1 = fc_workflow_load_buffer(text, len, &w1, &in1, &e1);
  fc__load_split_min = 0;
  fc__workflow_thread_min = 0; /* appended and validated with a thread of its own */
  before = atomic_load(&fc__load_parts_merged);
  rc2 = fc_workflow_load_buffer(text, len, &w2, &in2, &e2);
  before = atomic_load(&fc__load_parts_merged) - before;
  fc__load_split_min = saved;
  fc__workflow_thread_min = saved_thread;

  assert_int_equal(rc1, rc2);
  assert_int_equal(e1.count, e2.count);
  assert_int_equal(e1.omitted, e2.omitted);
  for (k = 0; k < e1.count; k++) {
    assert_int_equal(e1.items[k].code, e2.items[k].code);
    assert_string_equal(e1.items[k].where, e2.items[k].where);
    assert_string_equal(e1.items[k].text, e2.items[k].text);
  }
  assert_int_equal(w1 == NULL, w2 == NULL);
  if (w1 != NULL)
    same_graph(w1, w2);
  assert_int_equal(in1 == NULL, in2 == NULL);
  if (in1 != NULL)
    assert_true(json_equal(in1, in2));
  json_decref(in1);
  json_decref(in2);
  fc_workflow_free(w1);
  fc_workflow_free(w2);
  fc_load_errors_free(&e1);
  fc_load_errors_free(&e2);
  *rc_out = rc1;
  return before;
}

/* A chain of n set nodes, one per line (sep "\n") or all on one line
 * (sep ""); `edit(t, i)` may write node i itself and return 1. */
typedef int (*edit_fn)(fc_test_text_t *t, size_t i);

static void chain(fc_test_text_t *t, size_t n, const char *sep, edit_fn edit) {
  size_t i;
  fc_test_put(t, "{\"name\":\"chain\",\"nodes\":[%s", sep);
  for (i = 0; i < n; i++) {
    if (edit == NULL || !edit(t, i)) {
      fc_test_put(t, "{\"id\":\"n%zu\",\"type\":\"set\",\"output\":{\"n\":%zu}", i, i);
      if (i > 0)
        fc_test_put(t, ",\"after\":[\"n%zu\"]", i - 1);
      fc_test_put(t, "}");
    }
    fc_test_put(t, "%s%s", i + 1 < n ? "," : "", sep);
  }
  fc_test_put(t, "]}%s", sep);
}

static size_t chain_load(size_t n, const char *sep, edit_fn edit, int *rc) {
  fc_test_text_t t = {NULL, 0, 0};
  size_t merged;
  chain(&t, n, sep, edit);
  merged = load_both(t.text, t.len, rc);
  free(t.text);
  return merged;
}

static void test_chain_one_per_line(void **state) {
  int rc;
  (void)state;
  assert_int_equal(chain_load(2000, "\n", NULL, &rc), 1);
  assert_int_equal(rc, 0);
}

static void test_chain_one_line(void **state) {
  int rc;
  (void)state;
  assert_int_equal(chain_load(2000, "", NULL, &rc), 1);
  assert_int_equal(rc, 0);
}

/* The middle falls inside one node's array of objects: the guess is an
 * inner object, the part is dropped and one thread loads everything. */
static int big_inner_array(fc_test_text_t *t, size_t i) {
  size_t k;
  if (i != 100)
    return 0;
  fc_test_put(t, "{\"id\":\"n100\",\"type\":\"set\",\"after\":[\"n99\"],\"output\":{\"list\":[");
  for (k = 0; k < 5000; k++)
    fc_test_put(t, "%s{\"a\":%zu}", k > 0 ? "," : "", k);
  fc_test_put(t, "]}}");
  return 1;
}

static void test_guess_inside_a_node(void **state) {
  int rc;
  (void)state;
  assert_int_equal(chain_load(300, "\n", big_inner_array, &rc), 0);
  assert_int_equal(rc, 0);
}

/* The guess lands inside a string that looks like nodes. */
static int node_like_string(fc_test_text_t *t, size_t i) {
  size_t k;
  if (i != 100)
    return 0;
  fc_test_put(t, "{\"id\":\"n100\",\"type\":\"pass\",\"after\":[\"n99\"],\"description\":\"");
  for (k = 0; k < 3000; k++)
    fc_test_put(t, "},{ x ");
  fc_test_put(t, "\"}");
  return 1;
}

static void test_guess_inside_a_string(void **state) {
  int rc;
  (void)state;
  assert_int_equal(chain_load(300, "\n", node_like_string, &rc), 0);
  assert_int_equal(rc, 0);
}

/* A node of the second half reuses an id of the first: the part is not
 * appended and the duplicate is reported as by one thread. */
static int duplicate_late(fc_test_text_t *t, size_t i) {
  if (i != 1800)
    return 0;
  fc_test_put(t, "{\"id\":\"n10\",\"type\":\"pass\",\"after\":[\"n1799\"]}");
  return 1;
}

static void test_duplicate_across_the_parts(void **state) {
  int rc;
  (void)state;
  assert_int_equal(chain_load(2000, "\n", duplicate_late, &rc), 0);
  assert_int_equal(rc, FC_EDUPLICATE);
}

/* A reference of the part names no node: found after the append, and the
 * text is loaded again on one thread for the messages. */
static int unknown_late(fc_test_text_t *t, size_t i) {
  if (i != 1800 && i != 1900)
    return 0;
  fc_test_put(t, "{\"id\":\"n%zu\",\"type\":\"pass\",\"after\":[\"n%zu\",\"nope%zu\"]}", i, i - 1, i);
  return 1;
}

static void test_unknown_reference_in_the_part(void **state) {
  int rc;
  (void)state;
  assert_int_equal(chain_load(2000, "\n", unknown_late, &rc), 1);
  assert_int_equal(rc, FC_EUNKNOWNDEP);
}

static int bad_route_late(fc_test_text_t *t, size_t i) {
  if (i != 1800)
    return 0;
  fc_test_put(t, "{\"id\":\"n1800\",\"type\":\"pass\",\"after\":[\"n1799\"],\"routes\":{\"x\":[\"gone\"]}}");
  return 1;
}

static void test_unknown_route_in_the_part(void **state) {
  int rc;
  (void)state;
  assert_int_equal(chain_load(2000, "\n", bad_route_late, &rc), 1);
  assert_int_equal(rc, FC_EUNKNOWNDEP);
}

/* Errors of a node of the part: the part is dropped, messages as usual. */
static int bad_type_late(fc_test_text_t *t, size_t i) {
  if (i != 1500 && i != 1600)
    return 0;
  fc_test_put(t, "{\"id\":\"n%zu\",\"type\":\"nosuch\",\"after\":[\"n%zu\"]}", i, i - 1);
  return 1;
}

static void test_errors_in_the_part(void **state) {
  int rc;
  (void)state;
  assert_int_equal(chain_load(2000, "\n", bad_type_late, &rc), 0);
  assert_int_equal(rc, FC_EDEFINITION);
}

/* References across the parts, both ways: a node of the first half after
 * the last node, routes from the part to the first half, and a cycle. */
static int cross_refs(fc_test_text_t *t, size_t i) {
  if (i == 5) {
    fc_test_put(t, "{\"id\":\"n5\",\"type\":\"pass\",\"after\":[\"n4\",\"n1999\"]}");
    return 1;
  }
  if (i == 3) {
    fc_test_put(t, "{\"id\":\"n3\",\"type\":\"pass\",\"after\":[\"n2\"]}");
    return 1;
  }
  return 0;
}

static void test_cycle_across_the_parts(void **state) {
  int rc;
  (void)state;
  assert_int_equal(chain_load(2000, "\n", cross_refs, &rc), 1);
  assert_int_equal(rc, FC_ECYCLE);
}

static int side_refs(fc_test_text_t *t, size_t i) {
  if (i == 7) {
    fc_test_put(t, "{\"id\":\"n7\",\"type\":\"pass\",\"after\":[\"n6\"]},{\"id\":\"side\",\"type\":\"pass\","
           "\"after\":[\"n1999\",\"n1500\"]}");
    return 1;
  }
  if (i == 1700) {
    fc_test_put(t, "{\"id\":\"n1700\",\"type\":\"pass\",\"after\":[\"n1699\"],\"routes\":{\"a\":[\"n1701\"],"
           "\"default\":[\"n1702\"]}}");
    return 1;
  }
  return 0;
}

static void test_references_across_the_parts(void **state) {
  int rc;
  (void)state;
  assert_int_equal(chain_load(2000, "\n", side_refs, &rc), 1);
  assert_int_equal(rc, 0);
}

/* "nodes" not last: the text is parsed whole, whatever the part did. */
static void test_field_after_nodes(void **state) {
  fc_test_text_t t = {NULL, 0, 0};
  int rc;
  (void)state;
  chain(&t, 2000, "\n", NULL);
  t.len -= 2; /* "}\n" */
  fc_test_put(&t, ",\"input\":{\"k\":1}}\n");
  assert_int_equal(load_both(t.text, t.len, &rc), 0);
  assert_int_equal(rc, 0);
  free(t.text);
}

/* Every workflow file of the tests and the examples, valid or not. */
static void load_dir(const char *rel) {
  char dir[4096];
  const char *f = __FILE__, *p = strstr(f, "tests/unit/");
  DIR *d;
  struct dirent *e;
  snprintf(dir, sizeof dir, "%.*s%s", p != NULL ? (int)(p - f) : 0, f, rel);
  d = opendir(dir);
  assert_non_null(d);
  while ((e = readdir(d)) != NULL) {
    char path[8192];
    FILE *fp;
    fc_test_text_t t = {NULL, 0, 0};
    char buf[65536];
    size_t n;
    int rc;
    size_t nlen = strlen(e->d_name);
    if (nlen < 5 || strcmp(e->d_name + nlen - 5, ".json") != 0 ||
        (nlen > 12 && strcmp(e->d_name + nlen - 12, ".expect.json") == 0))
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    fp = fopen(path, "rb");
    assert_non_null(fp);
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
      fc_test_put(&t, "%.*s", (int)n, buf);
    fclose(fp);
    (void)load_both(t.text != NULL ? t.text : "", t.len, &rc);
    free(t.text);
  }
  closedir(d);
}

static void test_every_file(void **state) {
  (void)state;
  load_dir("tests/data/workflows/valid");
  load_dir("tests/data/workflows/invalid");
  load_dir("examples");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chain_one_per_line),
      cmocka_unit_test(test_chain_one_line),
      cmocka_unit_test(test_guess_inside_a_node),
      cmocka_unit_test(test_guess_inside_a_string),
      cmocka_unit_test(test_duplicate_across_the_parts),
      cmocka_unit_test(test_unknown_reference_in_the_part),
      cmocka_unit_test(test_unknown_route_in_the_part),
      cmocka_unit_test(test_errors_in_the_part),
      cmocka_unit_test(test_cycle_across_the_parts),
      cmocka_unit_test(test_references_across_the_parts),
      cmocka_unit_test(test_field_after_nodes),
      cmocka_unit_test(test_every_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

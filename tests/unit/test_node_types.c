/* Unit tests: the table of node types (src/nodes/registry.c) and how the
 * loader uses it. Every registered type is checked, so a new type is
 * covered by adding its table line. */
#include <stdio.h>
#include <string.h>

#include "fc_test.h"
#include "nodes/node_type.h"

/* The fields the loader accepts on every node (src/loader.c). */
static const char *const common[] = {
    "id",        "type",    "description",      "after",
    "routes",    "retries", "retry_backoff_ms", "retry_backoff_max_ms",
    "timeout_ms"};

static int owns(const fc__node_type_t *t, const char *field) {
  size_t k;
  for (k = 0; t->fields != NULL && t->fields[k] != NULL; k++)
    if (strcmp(t->fields[k], field) == 0)
      return 1;
  return 0;
}

static size_t owners(const char *field) {
  size_t i, n = 0;
  for (i = 0; i < fc__node_type_count; i++)
    if (owns(fc__node_types[i], field))
      n++;
  return n;
}

/* Loads a one-node workflow and returns whether any error text contains
 * `fragment` (NULL: whether it loaded). */
static int load_says(const char *text, const char *fragment) {
  fc_load_errors_t errors;
  fc_workflow_t *wf = NULL;
  size_t i;
  int rc, found = 0;
  fc_load_errors_init(&errors);
  rc = fc_workflow_load_buffer(text, strlen(text), &wf, NULL, &errors);
  for (i = 0; fragment != NULL && i < errors.count; i++)
    if (strstr(errors.items[i].text, fragment) != NULL)
      found = 1;
  fc_load_errors_free(&errors);
  fc_workflow_free(wf);
  return fragment == NULL ? rc == 0 : found;
}

static void test_table(void **state) {
  size_t i, j, k;
  (void)state;
  assert_true(fc__node_type_count >= 5);
  assert_null(fc__node_type_find("teleport"));
  assert_null(fc__node_type_find(""));
  for (i = 0; i < fc__node_type_count; i++) {
    const fc__node_type_t *t = fc__node_types[i];
    assert_non_null(t->name);
    assert_true(t->name[0] != '\0');
    assert_non_null(t->add);
    assert_ptr_equal(fc__node_type_find(t->name), t);
    for (j = 0; j < i; j++)
      assert_string_not_equal(fc__node_types[j]->name, t->name);
    /* A type's own field never shadows a common one. */
    for (k = 0; k < FC__ARRAY_SIZE(common); k++)
      assert_false(owns(t, common[k]));
  }
}

/* Every type's name is accepted; a type's own fields are accepted on it
 * and refused on every other type, naming the owner. */
static void test_fields_by_type(void **state) {
  size_t i, j, k;
  char text[512], want[256];
  (void)state;
  for (i = 0; i < fc__node_type_count; i++) {
    const fc__node_type_t *t = fc__node_types[i];
    snprintf(text, sizeof text, "{\"name\":\"w\",\"nodes\":[{\"id\":\"a\",\"type\":\"%s\"}]}",
             t->name);
    assert_false(load_says(text, "unknown type"));
    for (k = 0; t->fields != NULL && t->fields[k] != NULL; k++) {
      const char *f = t->fields[k];
      snprintf(text, sizeof text,
               "{\"name\":\"w\",\"nodes\":[{\"id\":\"a\",\"type\":\"%s\",\"%s\":1}]}", t->name, f);
      assert_false(load_says(text, "does not apply"));
      assert_false(load_says(text, "unknown field"));
      for (j = 0; j < fc__node_type_count; j++) {
        const fc__node_type_t *u = fc__node_types[j];
        if (owns(u, f))
          continue;
        snprintf(text, sizeof text,
                 "{\"name\":\"w\",\"nodes\":[{\"id\":\"a\",\"type\":\"%s\",\"%s\":1}]}", u->name,
                 f);
        snprintf(want, sizeof want, "field \"%s\" does not apply to type \"%s\" (it belongs to", f,
                 u->name);
        assert_true(load_says(text, want));
        snprintf(want, sizeof want,
                 "field \"%s\" does not apply to type \"%s\" (it belongs to %s nodes)", f, u->name,
                 t->name);
        assert_true(owners(f) > 1 || load_says(text, want));
      }
    }
  }
}

/* The messages list the types of the table, in its order. */
static void test_type_list(void **state) {
  char list[256] = "", want[320];
  size_t i, used = 0;
  (void)state;
  for (i = 0; i < fc__node_type_count; i++)
    used += (size_t)snprintf(list + used, sizeof list - used, "%s%s",
                             i == 0                         ? ""
                             : i + 1 == fc__node_type_count ? " or "
                                                            : ", ",
                             fc__node_types[i]->name);
  assert_true(used < sizeof list);
  snprintf(want, sizeof want, "unknown type \"x\": expected %s", list);
  assert_true(load_says("{\"name\":\"w\",\"nodes\":[{\"id\":\"a\",\"type\":\"x\"}]}", want));
  snprintf(want, sizeof want, "missing required field \"type\" (%s)", list);
  assert_true(load_says("{\"name\":\"w\",\"nodes\":[{\"id\":\"a\"}]}", want));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_fields_by_type),
      cmocka_unit_test(test_type_list),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

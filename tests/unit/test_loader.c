/* Unit tests: the workflow file loader (include/flowcore/loader.h) and the
 * example workflows under examples/workflows/.
 *
 * Data-driven suites, found by listing directories at run time:
 *   tests/data/workflows/valid/<case>.json   loads, runs, and matches
 *       <case>.expect.json: {"status", "output"?, "node_status"?,
 *       "attempts"?, "error_count"?}
 *   tests/data/workflows/invalid/<case>.json fails to load with every
 *       fragment of <case>.expect (one per line) in its error texts; lines
 *       starting with '#' are comments, except "#count N": exactly N errors.
 * The source tree is located from __FILE__ (an absolute path under CMake),
 * so the tests run from any directory. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fc_test.h"

/* ---- paths ------------------------------------------------------------------ */

static char g_root[4096]; /* the source tree, without a trailing slash */

static void find_root(void) {
  const char *f = __FILE__;
  const char *p = strstr(f, "tests/unit/test_loader.c");
  size_t n = p != NULL ? (size_t)(p - f) : 0;
  if (n == 0) {
    snprintf(g_root, sizeof g_root, ".");
  } else {
    snprintf(g_root, sizeof g_root, "%.*s", (int)(n - 1), f);
  }
}

static void path_of(char *buf, size_t size, const char *rel) {
  snprintf(buf, size, "%s/%s", g_root, rel);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The "<case>" names of dir/<case>.json (not *.expect.json), sorted. */
static size_t list_cases(const char *dir, char ***out) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char **names = NULL;
  size_t n = 0, cap = 0;
  if (d == NULL)
    fail_msg("cannot open %s", dir);
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (len <= 5 || strcmp(e->d_name + len - 5, ".json") != 0)
      continue;
    if (len > 12 && strcmp(e->d_name + len - 12, ".expect.json") == 0)
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      names = realloc(names, cap * sizeof *names);
      assert_non_null(names);
    }
    names[n] = strndup(e->d_name, len - 5);
    assert_non_null(names[n]);
    n++;
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmp_str);
  *out = names;
  return n;
}

static void free_cases(char **names, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

static char *all_texts(const fc_load_errors_t *errors) {
  size_t i, size = 1;
  char *s;
  for (i = 0; i < errors->count; i++)
    size += strlen(errors->items[i].text) + 3;
  s = calloc(1, size);
  assert_non_null(s);
  for (i = 0; i < errors->count; i++) {
    strcat(s, "  ");
    strcat(s, errors->items[i].text);
    strcat(s, "\n");
  }
  return s;
}

static int any_text_has(const fc_load_errors_t *errors, const char *fragment) {
  size_t i;
  for (i = 0; i < errors->count; i++)
    if (strstr(errors->items[i].text, fragment) != NULL)
      return 1;
  return 0;
}

/* ---- running --------------------------------------------------------------- */

typedef struct {
  fc_manager_t *mgr;
  fc_recorder_t *rec;
} obs_t;

static void obs_init(obs_t *o) {
  fc_handler_t h;
  assert_int_equal(fc_manager_new(&o->mgr), 0);
  assert_int_equal(fc_recorder_new(&o->rec), 0);
  assert_int_equal(fc_recorder_handler(o->rec, &h), 0);
  assert_int_equal(fc_manager_add(o->mgr, &h, 0, NULL), 0);
}

static void obs_free(obs_t *o) {
  fc_manager_free(o->mgr);
  fc_recorder_free(o->rec);
}

/* Loads path (relative to the source tree), runs it with its own input. */
static void load_and_run(const char *rel, obs_t *o, fc_run_result_t *res, fc_workflow_t **wf_out) {
  char path[4600];
  fc_load_errors_t errors;
  fc_workflow_t *wf = NULL;
  json_t *input = NULL;
  fc_error_t err;
  int rc;
  path_of(path, sizeof path, rel);
  fc_load_errors_init(&errors);
  rc = fc_workflow_load_file(path, &wf, &input, &errors);
  if (rc != 0) {
    char *texts = all_texts(&errors);
    fail_msg("%s: load failed (%s):\n%s", rel, fc_err_name(rc), texts);
  }
  assert_int_equal(errors.count, 0);
  fc_load_errors_free(&errors);
  fc_error_clear(&err);
  assert_int_equal(fc_workflow_run(wf, input, o->mgr, res, &err), 0);
  json_decref(input);
  {
    char msg[256];
    if (!fc_recorder_check_contract(o->rec, msg, sizeof msg))
      fail_msg("%s: event contract: %s", rel, msg);
  }
  *wf_out = wf;
}

/* Final node statuses and attempts as seen by the recorder (node_end). */
static const char *node_final_status(obs_t *o, const char *id) {
  const fc_recorded_event_t *ev = fc_recorder_last(o->rec, FC_EVENT_NODE_END, id);
  return ev != NULL ? fc_node_status_name((fc_node_status_t)ev->status) : "(none)";
}

/* ---- valid files ------------------------------------------------------------- */

static void check_expectation(const char *name, const json_t *expect, obs_t *o,
                              const fc_run_result_t *res, const fc_workflow_t *wf) {
  const char *status = json_string_value(json_object_get(expect, "status"));
  json_t *out = json_object_get(expect, "output"), *v;
  const char *key;
  assert_non_null(status);
  if (strcmp(status, fc_workflow_status_name(res->status)) != 0)
    fail_msg("%s: status %s, expected %s", name, fc_workflow_status_name(res->status), status);
  if (out != NULL && !json_equal(out, res->output)) {
    char *got = json_dumps(res->output, JSON_COMPACT | JSON_SORT_KEYS);
    char *want = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    fail_msg("%s: output\n  got  %s\n  want %s", name, got, want);
  }
  json_object_foreach (json_object_get(expect, "node_status"), key, v) {
    const char *got = node_final_status(o, key);
    (void)fc_test_node_index(wf, key);
    if (strcmp(got, json_string_value(v)) != 0)
      fail_msg("%s: node %s ended %s, expected %s", name, key, got, json_string_value(v));
  }
  json_object_foreach (json_object_get(expect, "attempts"), key, v) {
    size_t starts = fc_recorder_count(o->rec, FC_EVENT_NODE_START, key);
    if ((json_int_t)starts != json_integer_value(v))
      fail_msg("%s: node %s made %zu attempts, expected %lld", name, key, starts,
               (long long)json_integer_value(v));
  }
  v = json_object_get(expect, "error_count");
  if (v != NULL && res->error_count != (int)json_integer_value(v))
    fail_msg("%s: %d errors, expected %lld", name, res->error_count,
             (long long)json_integer_value(v));
}

static void test_valid_files(void **state) {
  char dir[4600], **cases;
  size_t n, i;
  (void)state;
  path_of(dir, sizeof dir, "tests/data/workflows/valid");
  n = list_cases(dir, &cases);
  assert_true(n >= 5);
  for (i = 0; i < n; i++) {
    char rel[512], expect_path[4700];
    json_error_t jerr;
    json_t *expect;
    obs_t o;
    fc_run_result_t res;
    fc_workflow_t *wf;
    snprintf(rel, sizeof rel, "tests/data/workflows/valid/%s.json", cases[i]);
    snprintf(expect_path, sizeof expect_path, "%s/%s.expect.json", dir, cases[i]);
    expect = json_load_file(expect_path, 0, &jerr);
    if (expect == NULL)
      fail_msg("%s: %s", expect_path, jerr.text);
    obs_init(&o);
    load_and_run(rel, &o, &res, &wf);
    check_expectation(cases[i], expect, &o, &res, wf);
    fc_run_result_clear(&res);
    fc_workflow_free(wf);
    obs_free(&o);
    json_decref(expect);
  }
  free_cases(cases, n);
}

/* ---- invalid files -------------------------------------------------------------- */

static void check_invalid_case(const char *dir, const char *name) {
  char path[4700], expect_path[4700], line[1024];
  fc_load_errors_t errors;
  fc_workflow_t *wf = (fc_workflow_t *)1;
  json_t *input = (json_t *)1;
  FILE *f;
  int rc, fragments = 0;
  char *texts;
  snprintf(path, sizeof path, "%s/%s.json", dir, name);
  snprintf(expect_path, sizeof expect_path, "%s/%s.expect", dir, name);
  fc_load_errors_init(&errors);
  rc = fc_workflow_load_file(path, &wf, &input, &errors);
  texts = all_texts(&errors);
  if (rc == 0)
    fail_msg("%s: loaded, expected errors", name);
  assert_null(wf);
  assert_null(input);
  assert_true(errors.count > 0);
  assert_int_equal(rc, errors.items[0].code);
  f = fopen(expect_path, "r");
  if (f == NULL)
    fail_msg("%s: no %s", name, expect_path);
  while (fgets(line, sizeof line, f) != NULL) {
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
      line[--len] = '\0';
    if (len == 0)
      continue;
    if (strncmp(line, "#count ", 7) == 0) {
      size_t want = (size_t)strtoul(line + 7, NULL, 10);
      if (fc_load_errors_total(&errors) != want)
        fail_msg("%s: %zu errors, expected %zu:\n%s", name, fc_load_errors_total(&errors), want,
                 texts);
      continue;
    }
    if (line[0] == '#')
      continue;
    fragments++;
    if (!any_text_has(&errors, line))
      fail_msg("%s: no error contains\n  %s\nerrors:\n%s", name, line, texts);
  }
  fclose(f);
  if (fragments == 0)
    fail_msg("%s: %s lists no fragment", name, expect_path);
  free(texts);
  fc_load_errors_free(&errors);
}

static void test_invalid_files(void **state) {
  char dir[4600], **cases;
  size_t n, i;
  (void)state;
  path_of(dir, sizeof dir, "tests/data/workflows/invalid");
  n = list_cases(dir, &cases);
  assert_true(n >= 15);
  for (i = 0; i < n; i++)
    check_invalid_case(dir, cases[i]);
  free_cases(cases, n);
}

/* ---- API details ------------------------------------------------------------------- */

static int load_text(const char *text, fc_load_errors_t *errors, fc_workflow_t **wf) {
  return fc_workflow_load_buffer(text, strlen(text), wf, NULL, errors);
}

static void test_input_returned(void **state) {
  const char *text = "{\"name\": \"in\", \"input\": {\"day\": 3}, "
                     "\"nodes\": [{\"id\": \"a\", \"type\": \"pass\"}]}";
  fc_workflow_t *wf = NULL;
  json_t *input = NULL;
  (void)state;
  assert_int_equal(fc_workflow_load_buffer(text, strlen(text), &wf, &input, NULL), 0);
  assert_non_null(wf);
  assert_non_null(input);
  assert_int_equal(json_integer_value(json_object_get(input, "day")), 3);
  assert_string_equal(fc_workflow_name(wf), "in");
  assert_int_equal(fc_workflow_node_count(wf), 1);
  assert_string_equal(fc_node_type(fc_workflow_node_at(wf, 0)), "pass");
  /* Validated and frozen: no more changes. */
  assert_int_equal(fc_workflow_add_pass_node(wf, "b", NULL), FC_EFROZEN);
  json_decref(input);
  fc_workflow_free(wf);

  /* No "input": NULL. No errors struct: fine. */
  text = "{\"name\": \"in\", \"nodes\": [{\"id\": \"a\", \"type\": \"pass\"}]}";
  input = (json_t *)1;
  assert_int_equal(fc_workflow_load_buffer(text, strlen(text), &wf, &input, NULL), 0);
  assert_null(input);
  fc_workflow_free(wf);
}

static void test_errors_without_list(void **state) {
  fc_workflow_t *wf = (fc_workflow_t *)1;
  (void)state;
  assert_int_equal(
      load_text("{\"name\": \"x\", \"nodes\": [{\"id\": \"a\", \"type\": \"nope\"}]}", NULL, &wf),
      FC_EDEFINITION);
  assert_null(wf);
  assert_int_equal(load_text("{\"name\": \"x\", \"nodes\": [{\"id\": \"a\", \"type\": \"pass\", "
                             "\"after\": [\"a\"]}]}",
                             NULL, &wf),
                   FC_ECYCLE);
  assert_int_equal(load_text("{\"name\": \"x\", \"nodes\": [{\"id\": \"a\", \"type\": \"pass\"}, "
                             "{\"id\": \"a\", \"type\": \"pass\"}]}",
                             NULL, &wf),
                   FC_EDUPLICATE);
}

static void test_missing_file_and_directory(void **state) {
  fc_load_errors_t errors;
  fc_workflow_t *wf = NULL;
  char dir[4600];
  (void)state;
  fc_load_errors_init(&errors);
  assert_int_equal(fc_workflow_load_file("/nonexistent/flowcore/wf.json", &wf, NULL, &errors),
                   UV_ENOENT);
  assert_int_equal(errors.count, 1);
  assert_non_null(strstr(errors.items[0].text, "cannot open \"/nonexistent/flowcore/wf.json\""));
  assert_string_equal(errors.items[0].where, "/nonexistent/flowcore/wf.json");
  fc_load_errors_free(&errors);

  path_of(dir, sizeof dir, "tests/data/workflows");
  assert_int_equal(fc_workflow_load_file(dir, &wf, NULL, &errors), UV_EISDIR);
  assert_int_equal(errors.count, 1);
  fc_load_errors_free(&errors);
  assert_null(wf);
}

/* A 10 MB id: rejected by the name check, with a short message. */
static void test_huge_id(void **state) {
  size_t n = 10 * 1024 * 1024, i;
  const char *head = "{\"name\": \"big\", \"nodes\": [{\"type\": \"pass\", \"id\": \"";
  const char *tail = "\"}, {\"id\": \"b\", \"type\": \"pass\", \"after\": [\"";
  const char *end = "\"]}]}";
  size_t hl = strlen(head), tl = strlen(tail), el = strlen(end);
  char *text = malloc(hl + n + tl + n + el + 1), *p = text;
  fc_load_errors_t errors;
  fc_workflow_t *wf = NULL;
  (void)state;
  assert_non_null(text);
  memcpy(p, head, hl);
  p += hl;
  memset(p, 'x', n);
  p += n;
  memcpy(p, tail, tl);
  p += tl;
  memset(p, 'x', n);
  p += n;
  memcpy(p, end, el + 1);
  fc_load_errors_init(&errors);
  assert_int_equal(fc_workflow_load_buffer(text, strlen(text), &wf, NULL, &errors), FC_EBADNAME);
  assert_null(wf);
  assert_int_equal(fc_load_errors_total(&errors), 2);
  assert_non_null(strstr(errors.items[0].text, "nodes[0].id: invalid id \"xxxx"));
  assert_non_null(strstr(errors.items[0].text, "(10485760 bytes)"));
  assert_non_null(strstr(errors.items[1].text, "depends on unknown node \"xxx"));
  for (i = 0; i < errors.count; i++)
    assert_true(strlen(errors.items[i].text) < 300);
  fc_load_errors_free(&errors);
  free(text);
}

static void test_too_many_nodes(void **state) {
  size_t n = FC_LOAD_MAX_NODES + 1, i;
  const char *head = "{\"name\": \"many\", \"nodes\": [";
  char *text = malloc(strlen(head) + 2 * n + 8), *p = text;
  fc_load_errors_t errors;
  fc_workflow_t *wf = NULL;
  (void)state;
  assert_non_null(text);
  p += sprintf(p, "%s", head);
  for (i = 0; i < n; i++) {
    *p++ = '0';
    *p++ = i + 1 < n ? ',' : ']';
  }
  strcpy(p, "}");
  fc_load_errors_init(&errors);
  assert_int_equal(fc_workflow_load_buffer(text, strlen(text), &wf, NULL, &errors), FC_EDEFINITION);
  assert_int_equal(errors.count, 1);
  assert_non_null(strstr(errors.items[0].text, "more than the limit of 1000000"));
  fc_load_errors_free(&errors);
  free(text);
}

static void test_file_too_large(void **state) {
  char path[128];
  fc_load_errors_t errors;
  fc_workflow_t *wf = NULL;
  FILE *f;
  (void)state;
  snprintf(path, sizeof path, "/tmp/flowcore-test-loader-big-%ld.json", (long)getpid());
  f = fopen(path, "wb");
  assert_non_null(f);
  /* Sparse: 64 MiB + 1 of zero bytes, no disk used. */
  assert_int_equal(fseek(f, (long)FC_LOAD_MAX_FILE_BYTES, SEEK_SET), 0);
  assert_int_equal(fputc(' ', f), ' ');
  fclose(f);
  fc_load_errors_init(&errors);
  assert_int_equal(fc_workflow_load_file(path, &wf, NULL, &errors), FC_EDEFINITION);
  assert_int_equal(errors.count, 1);
  assert_non_null(strstr(errors.items[0].text, "larger than the limit"));
  fc_load_errors_free(&errors);
  unlink(path);
}

static void test_deep_nesting(void **state) {
  size_t depth = 100000, i;
  const char *head = "{\"name\": \"deep\", \"nodes\": [{\"id\": \"a\", \"type\": \"pass\"}], "
                     "\"input\": ";
  char *text = malloc(strlen(head) + 2 * depth + 4), *p = text;
  fc_load_errors_t errors;
  fc_workflow_t *wf = NULL;
  (void)state;
  assert_non_null(text);
  p += sprintf(p, "%s", head);
  for (i = 0; i < depth; i++)
    *p++ = '[';
  for (i = 0; i < depth; i++)
    *p++ = ']';
  strcpy(p, "}");
  fc_load_errors_init(&errors);
  assert_int_equal(fc_workflow_load_buffer(text, strlen(text), &wf, NULL, &errors), FC_EDEFINITION);
  assert_int_equal(errors.count, 1);
  assert_non_null(strstr(errors.items[0].text, "invalid JSON"));
  assert_non_null(strstr(errors.items[0].text, "depth"));
  fc_load_errors_free(&errors);
  free(text);
}

/* The loader looks at the raw text of each node's id before jansson
 * parses the node (src/loader.c, peek_id): every prefix of a text whose
 * ids are written in several ways is loaded from a buffer of exactly its
 * length (so that the sanitizers see any read past it); only the whole
 * text loads, with the ids as jansson reads them. */
static void test_every_prefix(void **state) {
  const char *text = "{\"name\":\"w\",\"nodes\":[{\"id\":\"ab\\u0063d\",\"type\":\"pass\"},"
                     "{ \"id\" : \"b\" ,\"type\":\"pass\",\"after\":[\"abcd\"]},"
                     "{\"type\":\"pass\",\"id\":\"c\"}]}";
  size_t len = strlen(text), n;
  fc_load_errors_t errors;
  fc_workflow_t *wf = NULL;
  (void)state;
  for (n = 0; n <= len; n++) {
    char *copy = malloc(n > 0 ? n : 1);
    int rc;
    assert_non_null(copy);
    memcpy(copy, text, n);
    fc_load_errors_init(&errors);
    rc = fc_workflow_load_buffer(copy, n, &wf, NULL, &errors);
    free(copy);
    if (n == len)
      break;
    assert_int_equal(rc, FC_EDEFINITION);
    assert_null(wf);
    assert_non_null(strstr(errors.items[0].text, "invalid JSON"));
    fc_load_errors_free(&errors);
  }
  assert_int_equal(errors.count, 0);
  assert_non_null(wf);
  assert_int_equal(fc_workflow_node_count(wf), 3);
  assert_string_equal(fc_node_id(fc_workflow_node_at(wf, 0)), "abcd");
  assert_string_equal(fc_node_id(fc_workflow_node_at(wf, 1)), "b");
  assert_string_equal(fc_node_id(fc_workflow_node_at(wf, 2)), "c");
  fc_workflow_free(wf);
  fc_load_errors_free(&errors);
}

/* Hundreds of errors: the first FC_LOAD_MAX_ERRORS are kept, the rest
 * counted. */
static void test_error_cap(void **state) {
  size_t n = 500, i;
  char *text = malloc(64 + n * 64), *p = text;
  fc_load_errors_t errors;
  fc_workflow_t *wf = NULL;
  (void)state;
  assert_non_null(text);
  p += sprintf(p, "{\"name\": \"cap\", \"nodes\": [");
  for (i = 0; i < n; i++)
    p += sprintf(p, "%s{\"id\": \"n%zu\", \"type\": \"bogus\"}", i ? "," : "", i);
  strcpy(p, "]}");
  fc_load_errors_init(&errors);
  assert_int_equal(fc_workflow_load_buffer(text, strlen(text), &wf, NULL, &errors), FC_EDEFINITION);
  assert_int_equal(errors.count, FC_LOAD_MAX_ERRORS);
  assert_int_equal(errors.omitted, n - FC_LOAD_MAX_ERRORS);
  assert_int_equal(fc_load_errors_total(&errors), n);
  fc_load_errors_free(&errors);
  assert_int_equal(errors.count, 0);
  assert_null(errors.items);
  free(text);
}

/* load_json: the document is borrowed; the input reference is new. */
static void test_load_json(void **state) {
  json_t *root = json_pack("{s:s, s:{s:i}, s:[{s:s, s:s, s:o}]}", "name", "j", "input", "k", 7,
                           "nodes", "id", "c", "type", "set", "output", json_string("v"));
  fc_workflow_t *wf = NULL;
  json_t *input = NULL;
  fc_run_result_t res;
  (void)state;
  assert_non_null(root);
  assert_int_equal(fc_workflow_load_json(root, &wf, &input, NULL), 0);
  assert_int_equal(root->refcount, 1);
  assert_true(input == json_object_get(root, "input"));
  json_decref(root);
  assert_int_equal(fc_workflow_run(wf, input, NULL, &res, NULL), 0);
  assert_int_equal(res.status, FC_WORKFLOW_COMPLETED);
  assert_string_equal(json_string_value(json_object_get(res.output, "c")), "v");
  fc_run_result_clear(&res);
  json_decref(input);
  fc_workflow_free(wf);

  /* A string with NUL inside (possible from C): an error, not a crash. */
  root = json_pack("{s:s, s:[{s:s, s:s, s:[s#]}]}", "name", "j", "nodes", "id", "c", "type", "exec",
                   "command", "ab\0c", (size_t)4);
  assert_non_null(root);
  {
    fc_load_errors_t errors;
    fc_load_errors_init(&errors);
    assert_int_equal(fc_workflow_load_json(root, &wf, NULL, &errors), FC_EDEFINITION);
    assert_true(any_text_has(&errors, "nodes[0].command[0] (id \"c\"): contains a NUL"));
    fc_load_errors_free(&errors);
  }
  json_decref(root);
}

static void test_load_input(void **state) {
  json_t *v = NULL;
  fc_error_t err;
  char path[128];
  FILE *f;
  (void)state;
  fc_error_clear(&err);
  assert_int_equal(fc_workflow_load_input("{\"day\": \"2026-11-27\"}", &v, &err), 0);
  assert_string_equal(json_string_value(json_object_get(v, "day")), "2026-11-27");
  json_decref(v);
  assert_int_equal(fc_workflow_load_input("42", &v, &err), 0);
  assert_int_equal(json_integer_value(v), 42);
  json_decref(v);

  assert_int_equal(fc_workflow_load_input("{\"day\": }", &v, &err), FC_EINVAL);
  assert_null(v);
  assert_non_null(strstr(err.text, "input: 1:"));
  assert_non_null(strstr(err.text, "invalid JSON"));

  snprintf(path, sizeof path, "/tmp/flowcore-test-input-%ld.json", (long)getpid());
  f = fopen(path, "w");
  assert_non_null(f);
  fputs("{\n  \"rows\": [1, 2]\n}\n", f);
  fclose(f);
  {
    char arg[140];
    snprintf(arg, sizeof arg, "@%s", path);
    assert_int_equal(fc_workflow_load_input(arg, &v, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(v, "rows")), 2);
    json_decref(v);
    f = fopen(path, "w");
    fputs("{\n  \"rows\": [1, 2\n", f);
    fclose(f);
    fc_error_clear(&err);
    assert_int_equal(fc_workflow_load_input(arg, &v, &err), FC_EINVAL);
    assert_non_null(strstr(err.text, "input file \""));
    assert_non_null(strstr(err.text, "invalid JSON"));
  }
  unlink(path);
  fc_error_clear(&err);
  assert_int_equal(fc_workflow_load_input("@/nonexistent/in.json", &v, &err), UV_ENOENT);
  assert_non_null(strstr(err.text, "cannot open"));
  assert_int_equal(fc_workflow_load_input(NULL, &v, NULL), FC_EINVAL);
}

/* ---- the examples ------------------------------------------------------------------- */

static void test_example_etl(void **state) {
  obs_t o;
  fc_run_result_t res;
  fc_workflow_t *wf;
  json_t *load;
  (void)state;
  obs_init(&o);
  load_and_run("examples/workflows/etl.json", &o, &res, &wf);
  assert_int_equal(res.status, FC_WORKFLOW_COMPLETED);
  assert_int_equal(res.status_counts[FC_NODE_COMPLETED], 4);
  load = json_object_get(res.output, "load");
  assert_true(json_is_true(json_object_get(load, "loaded")));
  assert_true(json_integer_value(json_object_get(load, "bytes")) > 50);
  /* The two transforms ran in parallel after extract. */
  assert_true(fc_recorder_find(o.rec, FC_EVENT_NODE_START, "transform_b", 0) <
                  fc_recorder_find(o.rec, FC_EVENT_NODE_END, "transform_a", 0) ||
              fc_recorder_find(o.rec, FC_EVENT_NODE_START, "transform_a", 0) <
                  fc_recorder_find(o.rec, FC_EVENT_NODE_END, "transform_b", 0));
  fc_run_result_clear(&res);
  fc_workflow_free(wf);
  obs_free(&o);
}

static void test_example_retries(void **state) {
  obs_t o;
  fc_run_result_t res;
  fc_workflow_t *wf;
  const fc_recorded_event_t *ev;
  (void)state;
  obs_init(&o);
  load_and_run("examples/workflows/retries.json", &o, &res, &wf);
  assert_int_equal(res.status, FC_WORKFLOW_COMPLETED);
  assert_int_equal(fc_recorder_count(o.rec, FC_EVENT_NODE_START, "flaky"), 2);
  assert_int_equal(fc_recorder_count_status(o.rec, "flaky", FC_NODE_FAILED), 1);
  assert_int_equal(fc_recorder_count(o.rec, FC_EVENT_NODE_START, "slow_once"), 2);
  assert_int_equal(fc_recorder_count_status(o.rec, "slow_once", FC_NODE_TIMED_OUT), 1);
  ev = fc_recorder_last(o.rec, FC_EVENT_ERROR, "flaky");
  assert_non_null(ev);
  assert_string_equal(ev->error_type, "exit_status");
  assert_non_null(strstr(ev->error_stack_trace, "fails on purpose"));
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(json_object_get(res.output, "report"), "flaky"), "attempt")),
                   2);
  fc_run_result_clear(&res);
  fc_workflow_free(wf);
  obs_free(&o);
}

static void test_example_routing(void **state) {
  obs_t o;
  fc_run_result_t res;
  fc_workflow_t *wf;
  json_t *load;
  (void)state;
  obs_init(&o);
  load_and_run("examples/workflows/routing.json", &o, &res, &wf);
  assert_int_equal(res.status, FC_WORKFLOW_COMPLETED);
  assert_string_equal(node_final_status(&o, "alert"), "skipped");
  assert_string_equal(node_final_status(&o, "load"), "completed");
  load = json_object_get(res.output, "load");
  assert_string_equal(json_string_value(json_object_get(json_object_get(load, "input"), "source")),
                      "orders.csv");
  assert_string_equal(json_string_value(json_object_get(json_object_get(load, "check"), "route")),
                      "ok");
  fc_run_result_clear(&res);
  fc_workflow_free(wf);
  obs_free(&o);
}

static void test_example_failing(void **state) {
  obs_t o;
  fc_run_result_t res;
  fc_workflow_t *wf;
  const fc_recorded_event_t *ev;
  (void)state;
  obs_init(&o);
  load_and_run("examples/workflows/failing.json", &o, &res, &wf);
  assert_int_equal(res.status, FC_WORKFLOW_FAILED);
  ev = fc_recorder_last(o.rec, FC_EVENT_ERROR, "stop");
  assert_non_null(ev);
  assert_int_equal(ev->error_severity, FC_SEVERITY_CRITICAL);
  assert_string_equal(ev->error_type, "missing_data");
  assert_string_equal(ev->error_message, "the upstream data is missing");
  assert_string_equal(node_final_status(&o, "report"), "skipped");
  fc_run_result_clear(&res);
  fc_workflow_free(wf);
  obs_free(&o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_files),
      cmocka_unit_test(test_invalid_files),
      cmocka_unit_test(test_input_returned),
      cmocka_unit_test(test_errors_without_list),
      cmocka_unit_test(test_missing_file_and_directory),
      cmocka_unit_test(test_huge_id),
      cmocka_unit_test(test_too_many_nodes),
      cmocka_unit_test(test_file_too_large),
      cmocka_unit_test(test_deep_nesting),
      cmocka_unit_test(test_error_cap),
      cmocka_unit_test(test_load_json),
      cmocka_unit_test(test_load_input),
      cmocka_unit_test(test_example_etl),
      cmocka_unit_test(test_example_retries),
      cmocka_unit_test(test_example_routing),
      cmocka_unit_test(test_example_failing),
      cmocka_unit_test(test_every_prefix),
  };
  find_root();
  return cmocka_run_group_tests(tests, NULL, NULL);
}

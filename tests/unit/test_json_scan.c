/* Unit tests for src/json_scan.c, the quick reader of plain JSON: what it
 * reads it reads as jansson does (an equal value, keys in order, the same
 * bytes used), and it gives up on everything outside its subset, jansson
 * deciding then. fuzz/fuzz_json_scan.c makes the same comparison on any
 * bytes. */
#include <stdio.h>
#include <string.h>

#include "fc_test.h"
#include "json_scan.h"

/* Reads `text` with both; the quick reader must succeed, and agree. */
static void agrees(const char *text) {
  json_error_t jerr;
  size_t used = 0, len = strlen(text);
  json_t *quick = fc__json_scan(text, len, &used);
  json_t *ref = json_loadb(
      text, len, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &jerr);
  if (quick == NULL)
    fail_msg("the quick reader gave up on: %s", text);
  if (ref == NULL)
    fail_msg("jansson rejects what the quick reader read: %s (%s)", text, jerr.text);
  if (!json_equal(quick, ref))
    fail_msg("different values for: %s", text);
  if ((size_t)jerr.position != used)
    fail_msg("%zu bytes used, jansson used %d: %s", used, jerr.position, text);
  json_decref(quick);
  json_decref(ref);
}

/* The quick reader must give up (and leave *used alone). */
static void gives_up(const char *text) {
  size_t used = 12345;
  json_t *v = fc__json_scan(text, strlen(text), &used);
  if (v != NULL)
    fail_msg("the quick reader read what it must leave to jansson: %s", text);
  assert_int_equal(used, 12345);
}

static void test_plain_values(void **state) {
  (void)state;
  agrees("{\"id\":\"n1\",\"type\":\"set\",\"output\":{\"n\":1},\"after\":[\"n0\"]}");
  agrees("  {\n\t\"a\" : [ 1 , -2 , 0 , -0 ] ,\r\n \"b\" : { } , \"c\" : [ ] }");
  agrees("[true, false, null, \"\", {\"\": 0}]");
  agrees("123456789012345678");
  agrees("-123456789012345678");
  agrees("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  /* It stops after the value, as jansson does without the EOF check. */
  agrees("12 3");
  agrees("{\"a\":1} trailing");
  agrees("null,");
  agrees("7]");
}

static void test_key_order(void **state) {
  size_t used;
  json_t *v = fc__json_scan("{\"z\":1,\"a\":2,\"m\":3}", 19, &used);
  void *it;
  const char *want[] = {"z", "a", "m"};
  int i = 0;
  (void)state;
  assert_non_null(v);
  for (it = json_object_iter(v); it != NULL; it = json_object_iter_next(v, it))
    assert_string_equal(json_object_iter_key(it), want[i++]);
  assert_int_equal(i, 3);
  json_decref(v);
}

static void test_outside_the_subset(void **state) {
  char deep[2 * FC__JSON_SCAN_DEPTH + 8];
  char key[FC__JSON_SCAN_KEY + 8];
  int i;
  (void)state;
  /* Valid JSON it leaves to jansson. */
  gives_up("1.5");
  gives_up("1e3");
  gives_up("-2E-1");
  gives_up("1234567890123456789"); /* 19 digits */
  gives_up("\"a\\nb\"");
  gives_up("\"\\u00e9\"");
  gives_up("{\"a\":{\"b\":\"\\\"\"}}");
  /* Invalid JSON: jansson gives the error. */
  gives_up("");
  gives_up("   ");
  gives_up("01");
  gives_up("-");
  gives_up("-a");
  gives_up("truex");
  gives_up("nul");
  gives_up("[1,]");
  gives_up("{\"a\":1,}");
  gives_up("{\"a\" 1}");
  gives_up("{a:1}");
  gives_up("[1 2]");
  gives_up("[1");
  gives_up("\"abc");
  gives_up("\"a\tb\"");             /* a control character */
  gives_up("\"\xed\xa0\x80\"");     /* a surrogate */
  gives_up("\"\xc0\xaf\"");         /* overlong */
  gives_up("\"\xf4\x90\x80\x80\""); /* past U+10FFFF */
  gives_up("{\"a\":1,\"a\":2}");    /* jansson rejects duplicates */
  gives_up("\xef\xbb\xbf{}");       /* a byte order mark */
  /* Deeper than its limit; a key longer than its buffer. */
  for (i = 0; i <= FC__JSON_SCAN_DEPTH; i++)
    deep[i] = '[';
  for (i = 0; i <= FC__JSON_SCAN_DEPTH; i++)
    deep[FC__JSON_SCAN_DEPTH + 1 + i] = ']';
  deep[2 * FC__JSON_SCAN_DEPTH + 2] = '\0';
  gives_up(deep);
  deep[FC__JSON_SCAN_DEPTH - 1] = ' '; /* one level less: read */
  deep[FC__JSON_SCAN_DEPTH + 1] = ' ';
  agrees(deep + 0);
  key[0] = '{';
  key[1] = '"';
  memset(key + 2, 'k', FC__JSON_SCAN_KEY);
  snprintf(key + 2 + FC__JSON_SCAN_KEY, 6, "\":1}");
  gives_up(key);
}

/* Memory running out at every allocation in turn: the reader gives up
 * (NULL) and keeps nothing, never frees twice (ASan and valgrind run this
 * test), and reads the value once allocations succeed. */
static int g_allocs_left;
static void *failing_malloc(size_t size) {
  if (g_allocs_left == 0)
    return NULL;
  g_allocs_left--;
  return malloc(size);
}

static void test_out_of_memory(void **state) {
  static const char text[] = "{\"id\":\"n1\",\"output\":{\"n\":[1,\"two\",{\"k\":null}]},"
                             "\"after\":[\"n0\"]}";
  json_malloc_t old_malloc;
  json_free_t old_free;
  size_t used;
  json_t *v = NULL;
  int n;
  (void)state;
  json_get_alloc_funcs(&old_malloc, &old_free);
  for (n = 0; n < 1000 && v == NULL; n++) {
    g_allocs_left = n;
    json_set_alloc_funcs(failing_malloc, free);
    v = fc__json_scan(text, sizeof text - 1, &used);
    json_set_alloc_funcs(old_malloc, old_free);
  }
  assert_non_null(v);
  assert_true(n > 10); /* it did fail at the allocations before */
  assert_int_equal(used, sizeof text - 1);
  json_decref(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_values),
      cmocka_unit_test(test_key_order),
      cmocka_unit_test(test_outside_the_subset),
      cmocka_unit_test(test_out_of_memory),
  };
  return cmocka_run_group_tests_name("json_scan", tests, NULL, NULL);
}

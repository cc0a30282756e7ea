/* The command line's text tables (src/cli/table.c) and duration format
 * (src/cli/util.c): columns aligned by display width, "µs" only for UTF-8
 * output. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_test.h"

#include "cli/cli.h"

/* What cli_table_print writes, as a malloc'd string. */
static char *printed(const cli_table_t *t) {
  FILE *f = tmpfile();
  long n;
  char *text;
  assert_non_null(f);
  cli_table_print(t, f);
  assert_int_equal(fflush(f), 0);
  n = ftell(f);
  assert_true(n >= 0);
  rewind(f);
  text = calloc(1, (size_t)n + 1);
  assert_non_null(text);
  assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  return text;
}

static void expect_text(const char *got, const char *want) {
  if (strcmp(got, want) != 0)
    fail_msg("table:\n%s\nexpected:\n%s", got, want);
}

/* A µs cell is as wide as any other 5-character cell, a CJK character takes
 * two columns, a combining accent none, an emoji two. */
static void test_aligned_by_display_width(void **state) {
  static const char *const headers[] = {"NAME", "DURATION", "NOTE"};
  static const char *const rows[][3] = {
      {"a", "850\xc2\xb5s", "x"},                 /* 850µs */
      {"bb", "12ms", "y"},                        /* ASCII */
      {"\xe5\x90\x8d\xe5\x89\x8d", "1.25s", "z"}, /* 名前: 4 columns */
      {"e\xcc\x81te\xcc\x81", "3\xc2\xb5s", "w"}, /* été, combining: 3 */
      {"\xf0\x9f\x9a\x80!", "2m05s", "v"}};       /* 🚀!: 3 columns */
  cli_table_t *t;
  char *text;
  size_t i;
  (void)state;
  t = cli_table_new(3, headers, "lrl");
  assert_non_null(t);
  for (i = 0; i < sizeof rows / sizeof rows[0]; i++)
    assert_int_equal(cli_table_add(t, rows[i]), 0);
  text = printed(t);
  expect_text(text, "NAME  DURATION  NOTE\n"
                    "a        850\xc2\xb5s  x\n"
                    "bb        12ms  y\n"
                    "\xe5\x90\x8d\xe5\x89\x8d     1.25s  z\n"
                    "e\xcc\x81te\xcc\x81        3\xc2\xb5s  w\n"
                    "\xf0\x9f\x9a\x80!      2m05s  v\n");
  free(text);
  cli_table_free(t);
}

/* A capped column cuts by display width, between whole characters. */
static void test_cut_by_display_width(void **state) {
  static const char *const headers[] = {"NAME", "N"};
  static const char *const wide[] = {"\xe5\x90\x8d\xe5\x89\x8d\xe5\x90\x8d\xe5\x89\x8d", "1"};
  static const char *const ascii[] = {"abcdefghij", "2"};
  static const char *const fits[] = {"\xe5\x90\x8d\xe5\x89\x8d\xe5\x90\x8d", "3"};
  static const char *const bad[] = {"\xff\xfe"
                                    "ab",
                                    "4"}; /* invalid UTF-8: a column a byte */
  cli_table_t *t = cli_table_new(2, headers, "ll");
  char *text;
  (void)state;
  assert_non_null(t);
  cli_table_max_width(t, 0, 6);
  assert_int_equal(cli_table_add(t, wide), 0);
  assert_int_equal(cli_table_add(t, ascii), 0);
  assert_int_equal(cli_table_add(t, fits), 0);
  assert_int_equal(cli_table_add(t, bad), 0);
  text = printed(t);
  expect_text(text, "NAME    N\n"
                    "\xe5\x90\x8d...   1\n" /* 名 + "..." = 5 columns */
                    "abc...  2\n"
                    "\xe5\x90\x8d\xe5\x89\x8d\xe5\x90\x8d  3\n" /* 6 columns: not cut */
                    "\xff\xfe"
                    "ab    4\n");
  free(text);
  cli_table_free(t);
}

static void test_duration_units(void **state) {
  char buf[32];
  (void)state;
  cli_set_utf8(1);
  assert_int_equal(cli_utf8(), 1);
  cli_format_duration_ms(0.85, buf, sizeof buf);
  assert_string_equal(buf, "850\xc2\xb5s");
  cli_set_utf8(0);
  assert_int_equal(cli_utf8(), 0);
  cli_format_duration_ms(0.85, buf, sizeof buf);
  assert_string_equal(buf, "850us");
  cli_format_duration_ms(0.0, buf, sizeof buf);
  assert_string_equal(buf, "0us");
  /* The other units are ASCII whatever the locale. */
  cli_format_duration_ms(5.5, buf, sizeof buf);
  assert_string_equal(buf, "5.5ms");
  cli_format_duration_ms(1250, buf, sizeof buf);
  assert_string_equal(buf, "1.25s");
  cli_format_duration_ms(-1, buf, sizeof buf);
  assert_string_equal(buf, "-");
}

static void test_parse_size(void **state) {
  uint64_t v = 0;
  (void)state;
  assert_int_equal(cli_parse_size("4096", 1, UINT64_MAX, &v), 0);
  assert_int_equal(v, 4096);
  assert_int_equal(cli_parse_size("64K", 1, UINT64_MAX, &v), 0);
  assert_int_equal(v, 65536);
  assert_int_equal(cli_parse_size("256M", 1, UINT64_MAX, &v), 0);
  assert_int_equal(v, (uint64_t)256 << 20);
  assert_int_equal(cli_parse_size("2GiB", 1, UINT64_MAX, &v), 0);
  assert_int_equal(v, (uint64_t)2 << 30);
  v = 7;
  assert_int_equal(cli_parse_size("", 1, UINT64_MAX, &v), -1);
  assert_int_equal(cli_parse_size("-1", 0, UINT64_MAX, &v), -1);
  assert_int_equal(cli_parse_size("12X", 1, UINT64_MAX, &v), -1);
  assert_int_equal(cli_parse_size("1m", 1, UINT64_MAX, &v), -1);
  assert_int_equal(cli_parse_size("0", 1, UINT64_MAX, &v), -1);
  assert_int_equal(cli_parse_size("2G", 1, (uint64_t)1 << 30, &v), -1);
  assert_int_equal(cli_parse_size("99999999999999999999", 1, UINT64_MAX, &v), -1);
  assert_int_equal(cli_parse_size("17179869184G", 1, UINT64_MAX, &v), -1); /* 2^64 */
  assert_int_equal(v, 7);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_aligned_by_display_width),
      cmocka_unit_test(test_cut_by_display_width),
      cmocka_unit_test(test_duration_units),
      cmocka_unit_test(test_parse_size),
  };
  return cmocka_run_group_tests_name("cli_table", tests, NULL, NULL);
}

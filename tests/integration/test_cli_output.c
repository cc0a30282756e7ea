/* `flowcore run` printing a deep output (src/cli/util.c, cli_print_json):
 * the text goes to the stream piece by piece, so memory stays bounded
 * whatever the size of the text (a chain of N `pass` nodes has an output N
 * objects deep, and its indented text grows with N squared), and secrets
 * are still removed, also where one falls across two pieces. */
#define _GNU_SOURCE /* mkdtemp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <jansson.h>

#include "fc_test.h"
#include "history_fixture.h"
#include "pg_server.h"

#define CLI FLOWCORE_BINARY_DIR "/flowcore"

/* Peak RSS allowed to the CLI printing the deep outputs below; the
 * indented text of the 6,000-node chain alone is about 180 MB, which the
 * CLI used to hold twice. A sanitized CLI gets twice the limit. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RSS_LIMIT_KB (200L * 1024)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define RSS_LIMIT_KB (200L * 1024)
#endif
#endif
#ifndef RSS_LIMIT_KB
#define RSS_LIMIT_KB (100L * 1024)
#endif

static fc_test_pg_t pg;
static char tmp[64];

static int group_setup(void **state) {
  (void)state;
  if (fc_test_tmpdir_make(tmp, sizeof tmp, "/tmp/fc-cli-output-XXXXXX") != 0)
    return -1;
  return fc_test_pg_start(&pg);
}

static int group_teardown(void **state) {
  (void)state;
  fc_test_tmpdir_remove(tmp);
  return fc_test_pg_stop(&pg);
}

/* A chain of n pass nodes c0..c{n-1} with input {"s": s}. */
static void write_chain(const char *path, int n, const char *s) {
  FILE *f = fopen(path, "w");
  int i;
  assert_non_null(f);
  fprintf(f, "{\"name\":\"deep\",\"input\":{\"s\":\"%s\"},\"nodes\":[{\"id\":\"c0\",\"type\":\"pass\"}",
          s);
  for (i = 1; i < n; i++)
    fprintf(f, ",{\"id\":\"c%d\",\"type\":\"pass\",\"after\":[\"c%d\"]}", i, i - 1);
  fprintf(f, "]}\n");
  assert_int_equal(fclose(f), 0);
}

/* Runs `flowcore run <args>` (stdout to out_path); returns its exit code,
 * *rss_kb the peak RSS of the children so far (this one the largest). */
static int run_cli(const char *args, const char *out_path, long *rss_kb) {
  char cmd[FC_TEST_PG_CONNINFO_LENGTH + 2048];
  struct rusage ru;
  int st;
  snprintf(cmd, sizeof cmd, "%s run %s > '%s'", CLI, args, out_path);
  st = system(cmd);
  assert_int_equal(getrusage(RUSAGE_CHILDREN, &ru), 0);
  *rss_kb = ru.ru_maxrss;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *read_text(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  n = ftell(f);
  assert_true(n >= 0);
  assert_int_equal(fseek(f, 0, SEEK_SET), 0);
  buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  buf[n] = '\0';
  fclose(f);
  *len = (size_t)n;
  return buf;
}

/* The output of the chain of n nodes as --output prints it. */
static char *chain_output(int n, const char *s) {
  size_t cap = (size_t)n * (64 + strlen(s)) + 64, used = 0;
  char *out = malloc(cap);
  int i;
  assert_non_null(out);
  out[used++] = '{';
  for (i = n - 1; i >= 1; i--)
    used += (size_t)snprintf(out + used, cap - used, "\"c%d\":{\"input\":{\"s\":\"%s\"},", i, s);
  used += (size_t)snprintf(out + used, cap - used, "\"c0\":{\"input\":{\"s\":\"%s\"}}", s);
  for (i = 0; i < n; i++)
    out[used++] = '}';
  out[used++] = '\n';
  out[used] = '\0';
  return out;
}

/* The default (indented) output of a 6,000-deep value: about 180 MB of
 * text, printed in bounded memory. */
static void test_indented_deep_output_in_bounded_memory(void **state) {
  char path[128], out[128], args[512];
  long rss = 0;
  (void)state;
  snprintf(path, sizeof path, "%s/deep6k.json", tmp);
  snprintf(out, sizeof out, "%s/deep6k.out", tmp);
  write_chain(path, 6000, "x");
  snprintf(args, sizeof args, "'%s' --no-history", path);
  assert_int_equal(run_cli(args, "/dev/null", &rss), 0);
  fprintf(stderr, "indented output of a 6,000-deep value: peak RSS %ld KB\n", rss);
  assert_true(rss < RSS_LIMIT_KB);
  /* The text itself, on a smaller chain: as jansson indents it. */
  write_chain(path, 2, "x");
  snprintf(args, sizeof args, "'%s' --no-history 2>/dev/null", path);
  {
    const char *want = "{\n"
                       "  \"c1\": {\n"
                       "    \"input\": {\n"
                       "      \"s\": \"x\"\n"
                       "    },\n"
                       "    \"c0\": {\n"
                       "      \"input\": {\n"
                       "        \"s\": \"x\"\n"
                       "      }\n"
                       "    }\n"
                       "  }\n"
                       "}\n";
    size_t len;
    char *got;
    assert_int_equal(run_cli(args, out, &rss), 0);
    got = read_text(out, &len);
    assert_int_equal(len, strlen(want));
    assert_string_equal(got, want);
    free(got);
  }
}

/* --output of a 20,000-deep value: the whole text, on one line. */
static void test_compact_deep_output_whole(void **state) {
  char path[128], out[128], args[512], *got, *want;
  size_t len;
  long rss = 0;
  (void)state;
  snprintf(path, sizeof path, "%s/deep20k.json", tmp);
  snprintf(out, sizeof out, "%s/deep20k.out", tmp);
  write_chain(path, 20000, "x");
  snprintf(args, sizeof args, "'%s' --no-history --quiet --output", path);
  assert_int_equal(run_cli(args, out, &rss), 0);
  got = read_text(out, &len);
  want = chain_output(20000, "x");
  assert_int_equal(len, strlen(want));
  assert_true(strcmp(got, want) == 0);
  free(got);
  free(want);
}

/* A secret in the output is removed everywhere, also where the pieces of
 * text the CLI writes (64 KiB) split it: its 20,000 copies at a period of
 * 40 bytes fall across every boundary. */
static void test_secret_removed_across_pieces(void **state) {
  char db[FC_TEST_PG_CONNINFO_LENGTH], path[128], out[128], args[FC_TEST_PG_CONNINFO_LENGTH + 512], *got, *want, *p;
  const char *secret = "Sekr3tPassw0rdXY";
  size_t len, hits = 0;
  long rss = 0;
  (void)state;
  fc_test_make_db(&pg, "cli_output_secret", db, sizeof db);
  snprintf(path, sizeof path, "%s/secret.json", tmp);
  snprintf(out, sizeof out, "%s/secret.out", tmp);
  write_chain(path, 20000, "Sekr3tPassw0rdXY");
  setenv("PGPASSWORD", secret, 1); /* the server trusts: only registered */
  snprintf(args, sizeof args, "'%s' --db '%s' --quiet --output", path, db);
  assert_int_equal(run_cli(args, out, &rss), 0);
  unsetenv("PGPASSWORD");
  got = read_text(out, &len);
  assert_null(strstr(got, secret));
  for (p = strstr(got, "\"s\":\"***\""); p != NULL; p = strstr(p + 1, "\"s\":\"***\""))
    hits++;
  assert_int_equal(hits, 20000);
  want = chain_output(20000, "***");
  assert_true(strcmp(got, want) == 0);
  free(got);
  free(want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_indented_deep_output_in_bounded_memory),
      cmocka_unit_test(test_compact_deep_output_whole),
      cmocka_unit_test(test_secret_removed_across_pieces),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/* bench/history-scale in its quick mode (--rows 20000) against a real
 * PostgreSQL, so the benchmark cannot rot: it migrates, fills, measures every
 * panel of examples/grafana/flowcore.json (whose SQL must therefore run on
 * the migrated schema) and prints each figure. Also checked: the synthetic
 * history is what the benchmark says (rows, failed runs, errors, UUIDv7 ids
 * whose time is the run's started_at), and a non-empty history is refused
 * without --reset. Skipped when the benchmarks are not built
 * (FLOWCORE_BUILD_BENCH=OFF, e.g. the sanitizer builds of scripts/test). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fc_test.h"
#include "pg_server.h"

#define BENCH FLOWCORE_BINARY_DIR "/bench/history-scale"
#define SRC FLOWCORE_SOURCE_DIR

static fc_test_pg_t pg;
static char db[FC_TEST_PG_CONNINFO_LENGTH];

static int group_setup(void **state) {
  (void)state;
  if (fc_test_pg_start(&pg) != 0)
    return -1;
  return fc_test_pg_create_db(&pg, "bench_scale", db, sizeof db);
}

static int group_teardown(void **state) {
  (void)state;
  return fc_test_pg_stop(&pg);
}

/* Runs the benchmark with `more` options; returns its exit code, its
 * stdout+stderr in *out (malloc'd). */
static int run_bench(const char *more, char **out) {
  char cmd[2048];
  size_t len = 0, cap = 4096;
  char *buf = malloc(cap);
  FILE *f;
  int status;
  assert_non_null(buf);
  snprintf(cmd, sizeof cmd,
           "'%s' --db '%s' --migrations '%s/migrations' --dashboard "
           "'%s/examples/grafana/flowcore.json' %s 2>&1",
           BENCH, db, SRC, SRC, more);
  f = popen(cmd, "r");
  assert_non_null(f);
  while (1) {
    size_t n;
    if (len + 1024 + 1 > cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      assert_non_null(buf);
    }
    n = fread(buf + len, 1, 1024, f);
    if (n == 0)
      break;
    len += n;
  }
  buf[len] = '\0';
  status = pclose(f);
  *out = buf;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void expect_contains(const char *text, const char *needle) {
  if (strstr(text, needle) == NULL)
    fail_msg("expected \"%s\" in the benchmark's output:\n%s", needle, text);
}

static void test_quick_mode(void **state) {
  static const char *const lines[] = {
      "session: jit = off",
      "filled 20,000 node rows",
      "bytes per node row",
      "Runs per minute by status",
      "p95 node duration per minute",
      "Errors per hour",
      "Slowest nodes in window (p95)",
      "Recent failed runs",
      "p95 per minute, first call (stores minutes)",
      "one run's timeline (flowcore_run_timeline(id))",
      "the same through the view",
      "prune one day",
  };
  char *out;
  int rc;
  int64_t runs, failed;
  (void)state;
  if (access(BENCH, X_OK) != 0)
    skip(); /* benchmarks not built in this build directory */
  rc = run_bench("--rows 20000 --runs-per-query 1", &out);
  if (rc != 0)
    fail_msg("history-scale exited %d:\n%s", rc, out);
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
    expect_contains(out, lines[i]);
  {
    /* The size counts the partitions (a partitioned parent alone is 0). */
    const char *p = strstr(out, "bytes per node row");
    const char *colon = p;
    while (colon > out && colon[-1] != ':')
      colon--;
    assert_true(p != NULL && colon > out);
    if (atof(colon) < 50.0)
      fail_msg("bytes per node row below 50:\n%s", out);
  }
  free(out);

  /* 4,000 runs of 5 nodes over 10 days; 1 in 40 failed, with one error
   * each; then the oldest day's partition was pruned (a tenth, give or
   * take the day boundaries). */
  runs = fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions");
  assert_true(runs >= 3000 && runs < 4000);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions"), 5 * runs);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions_default"), 0);
  failed = fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions WHERE status = 'failed'");
  assert_true(failed >= runs / 40 - 3 && failed <= runs / 40 + 3);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM execution_errors"), failed);
  /* Every id is a UUIDv7 whose 48-bit time is the run's started_at in ms. */
  assert_int_equal(
      fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions WHERE "
                         "substr(replace(workflow_id::text, '-', ''), 1, 12) <> "
                         "lpad(to_hex((extract(epoch FROM started_at) * 1000)::bigint), 12, '0') "
                         "OR substr(workflow_id::text, 15, 1) <> '7'"),
      0);
  /* Runs span the 10 days before now. */
  assert_true(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions "
                                 "WHERE started_at >= now() - interval '1 hour'") > 0);
  assert_true(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions "
                                 "WHERE started_at < now() - interval '8 days'") > 0);

  /* The history is not empty now: refused without --reset. */
  rc = run_bench("--rows 20000 --runs-per-query 1", &out);
  assert_int_equal(rc, 1);
  expect_contains(out, "the history tables are not empty; pass --reset");
  free(out);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions"), 5 * runs);

  /* --reset: a fresh fill, here over 20 days (--days): 200 runs, the
   * oldest day (a twentieth) pruned; every day has its partition. */
  rc = run_bench("--rows 1000 --days 20 --runs-per-query 1 --reset", &out);
  if (rc != 0)
    fail_msg("history-scale --reset exited %d:\n%s", rc, out);
  expect_contains(out, "over the 20 days before");
  free(out);
  runs = fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions");
  assert_true(runs >= 180 && runs < 200);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions"), 5 * runs);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions_default"), 0);
  assert_true(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions "
                                 "WHERE started_at < now() - interval '17 days'") > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_quick_mode),
  };
  return cmocka_run_group_tests_name("bench_history_scale", tests, group_setup, group_teardown);
}

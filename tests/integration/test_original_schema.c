/* A program that writes history the way the original callback documentation
 * does (four statements naming only some columns, run as the writer role)
 * gets rows that `flowcore history` and every view read correctly
 * (migrations/0004_original_schema_defaults.sql, docs/history.md "Writing
 * history from another program"). */
#define _GNU_SOURCE /* popen, setenv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "fc_test.h"
#include "history_fixture.h"
#include "pg_server.h"

#define CLI FLOWCORE_BINARY_DIR "/flowcore"
#define RUN_ID "0190c3f2-5b1e-7000-8000-00000000c0de"

static fc_test_pg_t pg;
static char db[FC_TEST_PG_CONNINFO_LENGTH];

static int group_setup(void **state) {
  (void)state;
  if (fc_test_pg_start(&pg) != 0)
    return -1;
  fc_test_make_db(&pg, "original", db, sizeof db);
  /* The other program logs in with a role that only has the writer's
   * rights, as docs/history.md advises. */
  if (fc_test_pg_exec(db, "DROP ROLE IF EXISTS fc_python; "
                          "CREATE ROLE fc_python LOGIN IN ROLE flowcore_writer") != 0)
    return -1;
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  return fc_test_pg_stop(&pg);
}

/* Runs one of the documentation's statements with untyped text parameters,
 * as a driver that sends json.dumps() strings does; fails the test with the
 * server's message if it is refused. */
static void doc_exec(PGconn *c, const char *sql, int n, const char *const *params) {
  PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    fail_msg("refused: %s\n%s", sql, PQresultErrorMessage(r));
  assert_string_equal(PQcmdTuples(r), "1");
  PQclear(r);
}

/* Runs `flowcore ARGS --json` with FLOWCORE_DB set to db and returns its
 * parsed standard output (a new reference). */
static json_t *cli_json(const char *args) {
  char cmd[512];
  json_error_t jerr;
  json_t *out;
  FILE *f;
  int status;
  snprintf(cmd, sizeof cmd, "%s %s --json", CLI, args);
  assert_int_equal(setenv("FLOWCORE_DB", db, 1), 0);
  f = popen(cmd, "r");
  assert_non_null(f);
  out = json_loadf(f, 0, &jerr);
  status = pclose(f);
  unsetenv("FLOWCORE_DB");
  if (out == NULL)
    fail_msg("flowcore %s: no JSON on stdout (%s)", args, jerr.text);
  assert_int_equal(status, 0);
  return out;
}

/* The statements of the original documentation, unchanged but for the
 * workflow_id the history tables need, then what flowcore shows. */
static void test_documented_statements(void **state) {
  char ci[FC_TEST_PG_CONNINFO_LENGTH + 32];
  PGconn *c;
  json_t *runs, *run, *show, *nodes, *errors;
  size_t i;
  (void)state;
  snprintf(ci, sizeof ci, "%s user=fc_python", db);
  c = PQconnectdb(ci);
  assert_int_equal(PQstatus(c), CONNECTION_OK);

  {
    const char *p[] = {RUN_ID, "running", "{\"day\": \"2026-12-01\"}",
                       "2026-12-01 10:00:00+00"};
    doc_exec(c,
             "INSERT INTO workflow_executions (workflow_id, status, input_data, started_at) "
             "VALUES ($1, $2, $3, $4)",
             4, p);
  }
  {
    const char *p[] = {RUN_ID, "extract", "running", "{\"day\": \"2026-12-01\"}",
                       "2026-12-01 10:00:00.5+00"};
    doc_exec(c,
             "INSERT INTO node_executions (workflow_id, node_id, status, input_data, started_at) "
             "VALUES ($1, $2, $3, $4, $5)",
             5, p);
  }
  {
    const char *p[] = {RUN_ID, "ValueError", "bad row 7", "Traceback (most recent call last)",
                       "2026-12-01 10:00:01+00"};
    doc_exec(c,
             "INSERT INTO execution_errors (workflow_id, error_type, error_message, "
             "stack_trace, occurred_at) VALUES ($1, $2, $3, $4, $5)",
             5, p);
  }
  /* Still running: the progress view lists it. */
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM flowcore_running_progress "
                                      "WHERE workflow_id = '" RUN_ID "' AND nodes_running = 1"),
                   1);
  /* The documentation has no statement for a node's end; the one
   * docs/history.md suggests, before the run's end. */
  {
    const char *p[] = {"completed", "{\"rows\": 42}", "2026-12-01 10:00:01.75+00", RUN_ID,
                       "extract"};
    doc_exec(c,
             "UPDATE node_executions SET status = $1, output_data = $2, completed_at = $3 "
             "WHERE workflow_id = $4 AND node_id = $5 AND attempt = 1",
             5, p);
  }
  {
    const char *p[] = {"completed", "{\"rows\": 42}", "2026-12-01 10:00:02+00", RUN_ID};
    doc_exec(c,
             "UPDATE workflow_executions SET status = $1, output_data = $2, completed_at = $3 "
             "WHERE workflow_id = $4",
             4, p);
  }
  PQfinish(c);

  /* The defaults the statements rely on. */
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions WHERE "
                                      "workflow_id = '" RUN_ID "' AND workflow_name = 'unnamed' "
                                      "AND output_data = '{\"rows\": 42}'"),
                   1);
  assert_int_equal(fc_test_pg_int(db, "SELECT attempt FROM node_executions"), 1);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM execution_errors "
                                      "WHERE error_id IS NOT NULL AND severity = 'error'"),
                   1);

  /* Every view reads the rows. */
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM flowcore_running_progress"), 0);
  assert_int_equal(fc_test_pg_int(db, "SELECT duration_ms::int FROM flowcore_recent_runs "
                                      "WHERE workflow_id = '" RUN_ID "' AND status = 'completed' "
                                      "AND workflow_name = 'unnamed' AND attempts = 1 "
                                      "AND nodes_completed = 1 AND error_count = 1"),
                   2000);
  assert_int_equal(fc_test_pg_int(db, "SELECT offset_ms::int FROM flowcore_run_timeline "
                                      "WHERE node_id = 'extract' AND attempt = 1 "
                                      "AND status = 'completed' AND workflow_name = 'unnamed' "
                                      "AND duration_ms = 1250"),
                   500);
  assert_int_equal(fc_test_pg_int(db, "SELECT attempts FROM flowcore_node_stats "
                                      "WHERE workflow_name = 'unnamed' AND node_id = 'extract' "
                                      "AND runs = 1 AND p50_ms = 1250"),
                   1);
  assert_int_equal(fc_test_pg_int(db, "SELECT errors FROM flowcore_error_rollup "
                                      "WHERE workflow_name = 'unnamed' AND node_id IS NULL "
                                      "AND error_type = 'ValueError' AND severity = 'error' "
                                      "AND last_message = 'bad row 7'"),
                   1);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM flowcore_writer_loss_summary"), 0);

  /* And `flowcore history` shows them. */
  runs = cli_json("history runs");
  assert_int_equal(json_array_size(runs), 1);
  run = json_array_get(runs, 0);
  assert_string_equal(json_string_value(json_object_get(run, "workflow_id")), RUN_ID);
  assert_string_equal(json_string_value(json_object_get(run, "workflow_name")), "unnamed");
  assert_string_equal(json_string_value(json_object_get(run, "status")), "completed");
  assert_int_equal(json_integer_value(json_object_get(run, "error_count")), 1);
  json_decref(runs);

  show = cli_json("history show 0190c3f2-5b1e");
  assert_string_equal(json_string_value(json_object_get(show, "workflow_id")), RUN_ID);
  nodes = json_object_get(show, "nodes");
  assert_int_equal(json_array_size(nodes), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(nodes, 0), "node_id")),
                      "extract");
  assert_int_equal(json_integer_value(json_object_get(json_array_get(nodes, 0), "attempt")), 1);
  json_decref(show);

  errors = cli_json("history errors --since 30000d");
  assert_true(json_array_size(errors) >= 1);
  for (i = 0; i < json_array_size(errors); i++) {
    json_t *e = json_array_get(errors, i);
    if (strcmp(json_string_value(json_object_get(e, "error_type")), "ValueError") == 0)
      break;
  }
  assert_true(i < json_array_size(errors));
  json_decref(errors);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_documented_statements),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

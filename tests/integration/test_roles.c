/* Least privilege: the writer role can do what the writer needs and no
 * more; the reader role can only read. And the password of a connection
 * string never shows in the writer's stats or errors. */
#define _DEFAULT_SOURCE /* usleep */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "fc_test.h"
#include "history_fixture.h"
#include "pg_server.h"

static fc_test_pg_t pg;
static char db[FC_TEST_PG_CONNINFO_LENGTH];

static int group_setup(void **state) {
  fc_migrate_report_t rep;
  fc_error_t err;
  (void)state;
  if (fc_test_pg_start(&pg) != 0)
    return -1;
  if (fc_test_pg_create_db(&pg, "roles", db, sizeof db) != 0)
    return -1;
  fc_error_clear(&err);
  if (fc_migrate_run(db, FLOWCORE_SOURCE_DIR "/migrations", &rep, &err) != 0)
    return -1;
  fc_migrate_report_free(&rep);
  /* login roles that only inherit the group roles */
  if (fc_test_pg_exec(db, "DROP ROLE IF EXISTS fc_app; DROP ROLE IF EXISTS fc_dash; "
                          "CREATE ROLE fc_app LOGIN IN ROLE flowcore_writer; "
                          "CREATE ROLE fc_dash LOGIN IN ROLE flowcore_reader") != 0)
    return -1;
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  return fc_test_pg_stop(&pg);
}

/* The conninfo of db as another user. */
static void as_user(const char *user, char *out, size_t size) {
  snprintf(out, size, "%s user=%s", db, user);
}

/* Runs sql as user; returns the SQLSTATE ("" on success) in state. */
static void try_sql(const char *user, const char *sql, char state[6]) {
  char ci[FC_TEST_PG_CONNINFO_LENGTH + 32];
  PGconn *c;
  PGresult *r;
  as_user(user, ci, sizeof ci);
  c = PQconnectdb(ci);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  r = PQexec(c, sql);
  if (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)
    state[0] = '\0';
  else
    snprintf(state, 6, "%s", PQresultErrorField(r, PG_DIAG_SQLSTATE));
  PQclear(r);
  PQfinish(c);
}

#define ALLOWED(user, sql)                                                     \
  do {                                                                         \
    char st_[6];                                                               \
    try_sql(user, sql, st_);                                                   \
    if (st_[0] != '\0')                                                        \
      fail_msg("%s should be allowed: %s (SQLSTATE %s)", user, sql, st_);       \
  } while (0)

/* Refused by the append-only trigger of migration 0005 (SQLSTATE 23000). */
#define REFUSED_FINISHED(user, sql)                                            \
  do {                                                                         \
    char st_[6];                                                               \
    try_sql(user, sql, st_);                                                   \
    if (strcmp(st_, "23000") != 0)                                             \
      fail_msg("%s should be refused (23000): %s (got '%s')", user, sql, st_);  \
  } while (0)

#define REFUSED(user, sql)                                                     \
  do {                                                                         \
    char st_[6];                                                               \
    try_sql(user, sql, st_);                                                   \
    if (strcmp(st_, "42501") != 0)                                             \
      fail_msg("%s should be refused (42501): %s (got '%s')", user, sql, st_);  \
  } while (0)

static void ok_fn(fc_node_ctx_t *ctx, void *data) {
  (void)data;
  fc_node_succeed(ctx, json_pack("{s:i}", "n", 1));
}

static void fail_fn(fc_node_ctx_t *ctx, void *data) {
  (void)data;
  fc_node_failf(ctx, FC_SEVERITY_ERROR, "x", "fails");
}

/* The writer, connected as the writer role, writes a run with an error. */
static void test_writer_role_writes(void **state) {
  fc_history_config_t cfg;
  fc_history_writer_t *w;
  fc_history_stats_t st;
  fc_workflow_t *wf;
  fc_test_hrun_t r;
  char ci[FC_TEST_PG_CONNINFO_LENGTH + 32];
  (void)state;
  as_user("fc_app", ci, sizeof ci);
  fc_history_config_init(&cfg);
  cfg.conninfo = ci;
  assert_int_equal(fc_history_writer_new(&w, &cfg, NULL), 0);
  assert_int_equal(fc_workflow_new(&wf, "roles"), 0);
  assert_int_equal(fc_workflow_add_node(wf, "a", ok_fn, NULL, NULL), 0);
  assert_int_equal(fc_workflow_add_node(wf, "b", fail_fn, NULL, NULL), 0);
  fc_test_run_with_history(wf, w, NULL, &r, NULL, NULL);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.status, FC_WORKFLOW_FAILED);
  assert_int_equal(fc_history_writer_flush(w, 20000), 0);
  assert_int_equal(fc_history_writer_close(w, &st), 0);
  assert_int_equal(st.written, 7); /* 2 run + 4 node + 1 error records */
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions"), 2);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM execution_errors"), 1);
  /* Where the run happened: this process, on this host. */
  {
    char host[256], *got;
    assert_int_equal(gethostname(host, sizeof host), 0);
    got = fc_test_pg_text(db, "SELECT host FROM workflow_executions WHERE workflow_id = '%s'",
                          r.wf_id);
    assert_string_equal(got, host);
    free(got);
    assert_int_equal(fc_test_pg_int(db, "SELECT pid FROM workflow_executions WHERE workflow_id = '%s'",
                                    r.wf_id),
                     (int64_t)getpid());
  }
  fc_workflow_free(wf);
}

/* The history is append-only for the writer role: a finished run, node
 * attempt or error cannot be changed, while rows still running can, and
 * the writer's own upserts of running rows (an end arriving in a later
 * batch than its start) keep working. Needs test_writer_role_writes' run. */
static void test_writer_append_only(void **state) {
  static const char text[] =
      "{\"name\": \"roles-slow\", \"nodes\": [{\"id\": \"nap\", \"type\": \"sleep\", \"ms\": 400}]}";
  fc_history_config_t cfg;
  fc_history_writer_t *w;
  fc_history_stats_t st;
  fc_workflow_t *wf;
  fc_test_hrun_t r;
  char ci[FC_TEST_PG_CONNINFO_LENGTH + 32];
  (void)state;
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions "
                                      "WHERE workflow_name = 'roles' AND status = 'failed'"),
                   1);
  /* a failed run turned into a completed one: refused */
  REFUSED_FINISHED("fc_app", "UPDATE workflow_executions SET status = 'completed', "
                             "error_type = NULL WHERE workflow_name = 'roles'");
  REFUSED_FINISHED("fc_app", "UPDATE workflow_executions SET completed_at = now() "
                             "WHERE workflow_name = 'roles'");
  REFUSED_FINISHED("fc_app", "UPDATE node_executions SET status = 'completed' "
                             "WHERE status = 'failed'");
  REFUSED_FINISHED("fc_app", "UPDATE node_executions SET output_data = '{\"n\": 2}' "
                             "WHERE status = 'completed'");
  REFUSED_FINISHED("fc_app", "UPDATE execution_errors SET error_message = 'nothing happened'");
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions "
                                      "WHERE workflow_name = 'roles' AND status = 'failed'"),
                   1);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM execution_errors "
                                      "WHERE error_message = 'fails'"),
                   1);
  /* a running row can still be written */
  ALLOWED("fc_app", "INSERT INTO workflow_executions (workflow_id, workflow_name, status, "
                    "started_at) VALUES ('018f0000-0000-7000-8000-0000000000a1', 'by-hand', "
                    "'running', now())");
  ALLOWED("fc_app", "UPDATE workflow_executions SET status = 'completed', completed_at = now() "
                    "WHERE workflow_id = '018f0000-0000-7000-8000-0000000000a1'");
  REFUSED_FINISHED("fc_app", "UPDATE workflow_executions SET status = 'running' "
                             "WHERE workflow_id = '018f0000-0000-7000-8000-0000000000a1'");
  /* A finished attempt whose start came late (a replay): what the start
   * carries is filled in once, and never changed after. */
  ALLOWED("fc_app", "INSERT INTO node_executions (workflow_id, node_id, attempt, status, "
                    "completed_at, duration_ms) VALUES ('018f0000-0000-7000-8000-0000000000a1', "
                    "'late', 1, 'completed', now(), 5)");
  ALLOWED("fc_app", "UPDATE node_executions SET input_data = '{\"k\": 1}', started_at = now(), "
                    "node_type = 'exec' WHERE node_id = 'late'");
  REFUSED_FINISHED("fc_app", "UPDATE node_executions SET input_data = '{\"k\": 2}' "
                             "WHERE node_id = 'late'");
  REFUSED_FINISHED("fc_app", "UPDATE node_executions SET duration_ms = 6 WHERE node_id = 'late'");

  /* The writer as fc_app: the node's start is committed in one batch, its
   * end 400 ms later in another, through the upserts of running rows. */
  as_user("fc_app", ci, sizeof ci);
  fc_history_config_init(&cfg);
  cfg.conninfo = ci;
  cfg.flush_interval_ms = 20;
  assert_int_equal(fc_history_writer_new(&w, &cfg, NULL), 0);
  assert_int_equal(fc_workflow_load_buffer(text, sizeof text - 1, &wf, NULL, NULL), 0);
  fc_test_run_with_history(wf, w, NULL, &r, NULL, NULL);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.status, FC_WORKFLOW_COMPLETED);
  assert_int_equal(fc_history_writer_flush(w, 20000), 0);
  assert_int_equal(fc_history_writer_close(w, &st), 0);
  assert_int_equal(st.written, 4);
  assert_int_equal(st.dropped_total, 0);
  assert_true(st.batches >= 2); /* start and end were not coalesced */
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions "
                                      "WHERE workflow_id = '%s' AND status = 'completed'",
                                  r.wf_id),
                   1);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions WHERE workflow_id = "
                                      "'%s' AND status = 'completed' AND duration_ms >= 300",
                                  r.wf_id),
                   1);
  fc_workflow_free(wf);
}

static void test_writer_role_limits(void **state) {
  (void)state;
  ALLOWED("fc_app", "SELECT count(*) FROM node_executions");
  ALLOWED("fc_app", "INSERT INTO flowcore_writer_losses (writer, kind, reason, count, recorded_at) "
                    "VALUES ('t', 'node', 'deadline', 1, now())");
  REFUSED("fc_app", "DELETE FROM node_executions");
  REFUSED("fc_app", "TRUNCATE node_executions");
  REFUSED("fc_app", "DROP TABLE node_executions");
  REFUSED("fc_app", "DELETE FROM flowcore_writer_losses");
  REFUSED("fc_app", "UPDATE flowcore_writer_losses SET count = 0");
  REFUSED("fc_app", "CREATE TABLE public.intruder (x int)");
  REFUSED("fc_app", "ALTER TABLE node_executions ADD COLUMN x int");
}

static void test_reader_role_limits(void **state) {
  (void)state;
  ALLOWED("fc_dash", "SELECT count(*) FROM workflow_executions");
  ALLOWED("fc_dash", "SELECT count(*) FROM execution_errors");
  ALLOWED("fc_dash", "SELECT count(*) FROM flowcore_writer_losses");
  ALLOWED("fc_dash", "SELECT count(*) FROM flowcore_recent_runs");
  ALLOWED("fc_dash", "SELECT count(*) FROM flowcore_run_timeline(gen_random_uuid())");
  ALLOWED("fc_dash", "SELECT count(*) FROM flowcore_run(gen_random_uuid())");
  REFUSED("fc_dash", "INSERT INTO workflow_executions (workflow_id, workflow_name, status, started_at) "
                     "VALUES (gen_random_uuid(), 'x', 'running', now())");
  REFUSED("fc_dash", "UPDATE node_executions SET status = 'failed'");
  REFUSED("fc_dash", "DELETE FROM execution_errors");
  REFUSED("fc_dash", "TRUNCATE workflow_executions");
  REFUSED("fc_dash", "CREATE TABLE public.t (x int)");
}

/* A password that is easy to grep never shows in stats or errors, even
 * when the connection fails. */
static void test_password_never_shown(void **state) {
  fc_history_config_t cfg;
  fc_history_writer_t *w;
  fc_history_stats_t st;
  char ci[FC_TEST_PG_CONNINFO_LENGTH + 64];
  int i;
  (void)state;
  /* a port nothing listens on, in the test server's socket directory */
  snprintf(ci, sizeof ci, "host=%s port=1 dbname=x user=fc_app password=Sw0rdf1shSECRET connect_timeout=2",
           pg.sockdir);
  fc_history_config_init(&cfg);
  cfg.conninfo = ci;
  cfg.reconnect_min_ms = 10;
  cfg.reconnect_max_ms = 50;
  cfg.shutdown_deadline_ms = 200;
  assert_int_equal(fc_history_writer_new(&w, &cfg, NULL), 0);
  for (i = 0; i < 100; i++) {
    fc_history_writer_stats(w, &st);
    if (st.last_error[0] != '\0' && st.reconnects > 1)
      break;
    usleep(20000);
  }
  assert_true(st.last_error[0] != '\0');
  assert_null(strstr(st.last_error, "Sw0rdf1sh"));
  assert_int_equal(fc_history_writer_close(w, &st), 0);
  assert_null(strstr(st.last_error, "Sw0rdf1sh"));
}

/* Counts the server's backends with this application_name. */
static int64_t backends_named(const char *name) {
  return fc_test_pg_int(db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'",
                        name);
}

/* Waits until the writer is connected (or 5 s passed). */
static void wait_connected(fc_history_writer_t *w) {
  fc_history_stats_t st;
  int i;
  for (i = 0; i < 250; i++) {
    fc_history_writer_stats(w, &st);
    if (st.connected > 0)
      return;
    usleep(20000);
  }
  fail_msg("the writer did not connect: %s", st.last_error);
}

/* libpq options pass through untouched: an application_name in the
 * connection string reaches the server; without one, the writer's
 * backends are named "flowcore-writer" (a fallback only). */
static void test_libpq_options_pass_through(void **state) {
  fc_history_config_t cfg;
  fc_history_writer_t *w;
  char ci[FC_TEST_PG_CONNINFO_LENGTH + 64];
  (void)state;
  fc_history_config_init(&cfg);
  snprintf(ci, sizeof ci, "%s application_name=fc_passthrough", db);
  cfg.conninfo = ci;
  assert_int_equal(fc_history_writer_new(&w, &cfg, NULL), 0);
  wait_connected(w);
  assert_true(backends_named("fc_passthrough") >= 1);
  assert_int_equal(backends_named("flowcore-writer"), 0);
  assert_int_equal(fc_history_writer_close(w, NULL), 0);

  cfg.conninfo = db;
  assert_int_equal(fc_history_writer_new(&w, &cfg, NULL), 0);
  wait_connected(w);
  assert_true(backends_named("flowcore-writer") >= 1);
  assert_int_equal(fc_history_writer_close(w, NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_writer_role_writes),
      cmocka_unit_test(test_writer_append_only),
      cmocka_unit_test(test_writer_role_limits),
      cmocka_unit_test(test_reader_role_limits),
      cmocka_unit_test(test_password_never_shown),
      cmocka_unit_test(test_libpq_options_pass_through),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

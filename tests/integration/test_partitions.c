/* The partitioned history (migration 0007) and retention: day partitions
 * made by migrate, the default partition and its rescue, the upgrade of an
 * unpartitioned 0006 database written by the real writer, and `flowcore
 * history prune` (dry run, DROP of old days, running runs kept, per-workflow
 * deletes, flowcore_prunes, the maintainer and writer roles). */
#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fc_test.h"
#include "history_fixture.h"
#include "pg_server.h"

#include "flowcore.h"
#include "flowcore/migrate.h"

#define CLI FLOWCORE_BINARY_DIR "/flowcore"
#define CI_LEN FC_TEST_PG_CONNINFO_LENGTH

static fc_test_pg_t pg;

static int group_setup(void **state) {
  (void)state;
  return fc_test_pg_start(&pg);
}

static int group_teardown(void **state) {
  (void)state;
  return fc_test_pg_stop(&pg);
}

/* Runs `flowcore ARGS --db DB` as user (NULL: the superuser); returns its
 * exit status and its stdout (caller frees). */
static int run_cli(const char *db, const char *user, const char *args, char **out) {
  char cmd[2048], buf[4096];
  size_t len = 0;
  FILE *p;
  int st;
  snprintf(cmd, sizeof cmd, "%s %s --db '%s%s%s' 2>&1", CLI, args, db, user ? " user=" : "",
           user ? user : "");
  p = popen(cmd, "r");
  assert_non_null(p);
  *out = calloc(1, 65536);
  assert_non_null(*out);
  while (fgets(buf, sizeof buf, p) != NULL && len + strlen(buf) < 65535) {
    memcpy(*out + len, buf, strlen(buf) + 1);
    len += strlen(buf);
  }
  st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A run (finished unless status is running) of workflow name started
 * days_ago days ago (at noon UTC of that day, so that the runs of one day
 * stay in one partition whatever the time; days_ago 0: 5 to 65 seconds ago,
 * so that a horizon of '1 second' surely passed it), with
 * nodes node rows and one error. */
static void old_run(const char *db, const char *name, const char *status, int days_ago,
                    int nodes) {
  assert_int_equal(
      fc_test_pg_exec(db,
                      "WITH r AS (INSERT INTO workflow_executions (workflow_id, workflow_name,"
                      " status, started_at) SELECT flowcore_uuid_floor(t)::text::uuid, '%s', '%s',"
                      " t FROM (SELECT CASE WHEN %d = 0 THEN now() - interval '5 seconds'"
                      " - random() * interval '1 minute' ELSE (date_trunc('day', now() AT TIME ZONE 'UTC') + interval"
                      " '12 hours' + random() * interval '1 hour') AT TIME ZONE 'UTC'"
                      " - interval '%d days' END AS t) s RETURNING workflow_id),"
                      " n AS (INSERT INTO node_executions (workflow_id, node_id, attempt, status)"
                      " SELECT workflow_id, 'n' || g, 1, 'completed' FROM r, generate_series(1, %d) g)"
                      " INSERT INTO execution_errors (workflow_id, error_id, occurred_at)"
                      " SELECT workflow_id, gen_random_uuid(), now() FROM r",
                      name, status, days_ago, days_ago, nodes),
      0);
}

static void test_fresh_partitions(void **state) {
  char db[CI_LEN], *out;
  (void)state;
  fc_test_make_db(&pg, "part_fresh", db, sizeof db);
  assert_int_equal(run_cli(db, NULL, "migrate", &out), 0);
  assert_non_null(strstr(out, "partitions: 9 per table"));
  free(out);
  /* today-1 .. today+7 and a default, on each table */
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM pg_class WHERE relname IN ("
                                      " SELECT t || '_p' || to_char(d, 'YYYYMMDD') FROM"
                                      " unnest(ARRAY['workflow_executions', 'node_executions',"
                                      " 'execution_errors']) t, generate_series("
                                      " (now() AT TIME ZONE 'UTC')::date - 1,"
                                      " (now() AT TIME ZONE 'UTC')::date + 7, interval '1 day') d)"),
                   27);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM pg_partitioned_table p JOIN"
                                      " pg_class c ON c.oid = p.partdefid"),
                   3);
  /* every unique key of the history tables contains workflow_id */
  assert_int_equal(fc_test_pg_int(db,
                                  "SELECT count(*) FROM pg_index i WHERE i.indisunique AND"
                                  " i.indrelid IN ('workflow_executions'::regclass,"
                                  " 'node_executions'::regclass, 'execution_errors'::regclass)"
                                  " AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE"
                                  " a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
                                  " AND a.attname = 'workflow_id')"),
                   0);
  assert_int_equal(run_cli(db, NULL, "migrate --status", &out), 0);
  assert_non_null(strstr(out, "0 row(s) in the default"));
  free(out);
}

/* The days of [today - 1, today + last] not covered by a partition of one
 * of the three tables (bounds read from the catalog). */
static int64_t days_uncovered(const char *db, int last) {
  return fc_test_pg_int(
      db,
      "WITH parts AS (SELECT i.inhparent::regclass::text AS t, m[1]::uuid AS lo,"
      " m[2]::uuid AS hi FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,"
      " regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']+)''\\) TO"
      " \\(''([^'']+)''\\)') m WHERE m IS NOT NULL)"
      " SELECT count(*) FROM unnest(ARRAY['workflow_executions', 'node_executions',"
      " 'execution_errors']) t, generate_series((now() AT TIME ZONE 'UTC')::date - 1,"
      " (now() AT TIME ZONE 'UTC')::date + %d, interval '1 day') d WHERE NOT EXISTS (SELECT 1"
      " FROM parts p WHERE p.t = t.t AND p.lo <= flowcore_uuid_floor(d::timestamp AT TIME ZONE"
      " 'UTC') AND flowcore_uuid_floor(d::timestamp AT TIME ZONE 'UTC') < p.hi)",
      last);
}

/* Switching to week partitions after migrate made day partitions ahead
 * (0013): the weeks get the parts that no day partition covers, and
 * every day stays covered. */
static void test_period_change(void **state) {
  char db[CI_LEN], *out;
  (void)state;
  fc_test_make_db(&pg, "part_period", db, sizeof db);
  assert_int_equal(run_cli(db, NULL, "migrate", &out), 0);
  free(out);
  old_run(db, "today", "completed", 0, 2);
  assert_int_equal(fc_test_pg_exec(db, "UPDATE flowcore_partitioning SET period = 'week'"), 0);
  assert_true(fc_test_pg_int(db, "SELECT flowcore_ensure_partitions(21)") > 0);
  assert_int_equal(days_uncovered(db, 21), 0);
  /* beyond the day partitions: whole weeks, named by their Monday */
  assert_true(fc_test_pg_int(db, "SELECT count(*) FROM pg_class WHERE relname ~"
                                 " '^node_executions_p[0-9]{8}$' AND extract(isodow FROM"
                                 " to_date(right(relname, 8), 'YYYYMMDD')) = 1 AND"
                                 " to_date(right(relname, 8), 'YYYYMMDD') > (now() AT TIME ZONE"
                                 " 'UTC')::date + 7") >= 2);
  /* nothing more to make; runs ahead land in a partition, not the default */
  assert_int_equal(fc_test_pg_int(db, "SELECT flowcore_ensure_partitions(21)"), 0);
  old_run(db, "ahead", "completed", -15, 2);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions_default"), 0);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions_default"), 0);
  /* migrate again, and its status, accept the mixed partitions */
  assert_int_equal(run_cli(db, NULL, "migrate", &out), 0);
  free(out);
  assert_int_equal(days_uncovered(db, 21), 0);
  /* the rows of the run of today are where they were */
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions w WHERE"
                                      " w.workflow_name = 'today' AND w.tableoid::regclass::text ="
                                      " 'workflow_executions_p' || to_char(w.started_at AT TIME"
                                      " ZONE 'UTC', 'YYYYMMDD')"),
                   1);
}

static void test_default_and_rescue(void **state) {
  char db[CI_LEN];
  (void)state;
  fc_test_make_db(&pg, "part_rescue", db, sizeof db);
  old_run(db, "far", "completed", -60, 2); /* 60 days ahead */
  old_run(db, "old", "completed", 400, 1);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions_default"), 2);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions_default"), 3);
  assert_int_equal(fc_test_pg_int(db, "SELECT flowcore_rescue_default_partition()"), 2 + 3 + 2);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions_default"), 0);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions w WHERE"
                                      " w.tableoid::regclass::text = 'workflow_executions_p'"
                                      " || to_char(w.started_at AT TIME ZONE 'UTC', 'YYYYMMDD')"),
                   2);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions"), 3);
  /* append-only still holds on a partition */
  assert_int_not_equal(fc_test_pg_exec(db, "UPDATE workflow_executions SET status = 'failed'"
                                           " WHERE workflow_name = 'old'"),
                       0);
}

static void ok_fn(fc_node_ctx_t *ctx, void *data) {
  (void)data;
  fc_node_succeed(ctx, json_pack("{s:i}", "n", 1));
}

#define VIEWS_DIGEST                                                                               \
  "SELECT md5(string_agg(x, '|' ORDER BY x)) FROM ("                                              \
  " SELECT 'r' || v::text AS x FROM flowcore_recent_runs v"                                       \
  " UNION ALL SELECT 't' || v::text FROM flowcore_run_timeline v"                                 \
  " UNION ALL SELECT 's' || v::text FROM flowcore_node_stats v"                                   \
  " UNION ALL SELECT 'e' || v::text FROM flowcore_error_rollup v) s"

static void test_upgrade_from_0006(void **state) {
  char db[CI_LEN], dir[64], cmd[512];
  char *before, *after;
  fc_migrate_report_t rep;
  fc_history_config_t cfg;
  fc_history_writer_t *w;
  fc_workflow_t *wf;
  fc_test_hrun_t r;
  int rc;
  int64_t runs, nodes, errors;
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/fc_part_mig_%ld", (long)getpid());
  snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir %s && cp %s/migrations/000[1-6]_*.sql %s", dir,
           dir, FLOWCORE_SOURCE_DIR, dir);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(fc_test_pg_create_db(&pg, "part_upgrade", db, sizeof db), 0);
  assert_int_equal(fc_migrate_run(db, dir, &rep, NULL), 0);
  fc_migrate_report_free(&rep);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM pg_partitioned_table"), 0);

  /* History as a writer of the 0006 schema left it (today's writer needs
   * the columns of 0009): five runs of a completed node a and a failed node
   * b with its error, UUIDv7 ids of the last minutes. */
  assert_int_equal(
      fc_test_pg_exec(
          db,
          "INSERT INTO workflow_executions (workflow_id, workflow_name, status, started_at,"
          " completed_at, input_data, output_data, node_count, error_count)"
          " SELECT (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7'"
          " || substr(md5(g::text), 1, 3) || '8' || substr(md5(g::text), 4, 15))::uuid,"
          " 'upgrade', 'failed', t, t + interval '1 second', '{\"k\": 1}', '{}', 2, 1"
          " FROM (SELECT g, now() - g * interval '1 minute' AS t FROM generate_series(1, 5) g) s;"
          " INSERT INTO node_executions (workflow_id, node_id, attempt, node_type, status,"
          " started_at, completed_at, input_data, output_data)"
          " SELECT workflow_id, 'a', 1, 'c', 'completed', started_at, started_at + interval"
          " '0.2 second', '{\"input\": {\"k\": 1}}', '{\"ok\": 1}' FROM workflow_executions;"
          " INSERT INTO node_executions (workflow_id, node_id, attempt, node_type, status,"
          " started_at, completed_at, input_data, error_type, error_message)"
          " SELECT workflow_id, 'b', 1, 'c', 'failed', started_at, started_at + interval"
          " '0.5 second', '{}', 'boom', 'it failed' FROM workflow_executions;"
          " INSERT INTO execution_errors (workflow_id, error_id, node_id, attempt, error_type,"
          " error_message, occurred_at)"
          " SELECT workflow_id, gen_random_uuid(), 'b', 1, 'boom', 'it failed',"
          " started_at + interval '0.5 second' FROM workflow_executions"),
      0);
  fc_history_config_init(&cfg);
  cfg.conninfo = db;
  runs = fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions");
  nodes = fc_test_pg_int(db, "SELECT count(*) FROM node_executions");
  errors = fc_test_pg_int(db, "SELECT count(*) FROM execution_errors");
  assert_int_equal(runs, 5);
  assert_true(nodes >= 10 && errors >= 5);
  before = fc_test_pg_text(db, VIEWS_DIGEST);

  rc = fc_migrate_run(db, FLOWCORE_SOURCE_DIR "/migrations", &rep, NULL);
  fc_migrate_report_free(&rep);
  assert_int_equal(rc, 0);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM pg_partitioned_table"), 3);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions"), runs);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions"), nodes);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM execution_errors"), errors);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions_default"), 0);
  after = fc_test_pg_text(db, VIEWS_DIGEST);
  assert_string_equal(before, after);
  free(before);
  free(after);

  /* the writer keeps working after the upgrade */
  w = fc_test_writer_new(&cfg);
  assert_int_equal(fc_workflow_new(&wf, "after"), 0);
  assert_int_equal(fc_workflow_add_node(wf, "a", ok_fn, NULL, NULL), 0);
  fc_test_run_with_history(wf, w, NULL, &r, NULL, NULL);
  assert_int_equal(r.rc, 0);
  assert_int_equal(fc_history_writer_flush(w, 20000), 0);
  assert_int_equal(fc_history_writer_close(w, NULL), 0);
  fc_workflow_free(wf);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions"), runs + 1);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

/* Drops the day partitions of the three tables from today on. */
static void drop_future_partitions(const char *db) {
  assert_int_equal(
      fc_test_pg_exec(db, "DO $$ DECLARE r record; BEGIN FOR r IN SELECT p.relname, i.inhparent"
                          " FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid WHERE"
                          " p.relname ~ '_p[0-9]{8}$' AND substring(p.relname from '([0-9]{8})$')"
                          " >= to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD') LOOP"
                          " EXECUTE format('ALTER TABLE %%s DETACH PARTITION %%I; DROP TABLE %%I',"
                          " r.inhparent::regclass, r.relname, r.relname); END LOOP; END $$"),
      0);
}

#define TODAY_PARTS                                                                                \
  "SELECT count(*) FROM pg_class, (SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD') AS d) s"  \
  " WHERE relname IN ('workflow_executions_p' || d, 'node_executions_p' || d,"                     \
  " 'execution_errors_p' || d) AND relispartition"

/* Waits until the writer has made its first flowcore_ensure_partitions call. */
static void wait_partition_check(fc_history_writer_t *w) {
  fc_history_stats_t st;
  int i;
  for (i = 0; i < 1000; i++) {
    fc_history_writer_stats(w, &st);
    if (st.partition_checks > 0)
      return;
    fc_test_sleep_ms(10);
  }
  fail_msg("the writer made no flowcore_ensure_partitions call in 10 s");
}

/* A writer on conninfo makes its first flowcore_ensure_partitions call,
 * then runs a one-node workflow `name` and closes; its final stats in *st. */
static void writer_run_one(const char *conninfo, const char *name, fc_history_stats_t *st) {
  fc_history_config_t cfg;
  fc_history_writer_t *w;
  fc_workflow_t *wf;
  fc_test_hrun_t r;
  fc_history_config_init(&cfg);
  cfg.conninfo = conninfo;
  w = fc_test_writer_new(&cfg);
  wait_partition_check(w);
  assert_int_equal(fc_workflow_new(&wf, name), 0);
  assert_int_equal(fc_workflow_add_node(wf, "a", ok_fn, NULL, NULL), 0);
  fc_test_run_with_history(wf, w, NULL, &r, NULL, NULL);
  assert_int_equal(r.rc, 0);
  assert_int_equal(fc_history_writer_flush(w, 20000), 0);
  assert_int_equal(fc_history_writer_close(w, st), 0);
  fc_workflow_free(wf);
}

/* The writer creates the partitions it needs at connect: a database whose
 * day partitions end yesterday gets today's (and a week ahead), and a run
 * lands there, not in the default partition. */
static void test_writer_makes_partitions(void **state) {
  char db[CI_LEN];
  fc_history_stats_t st;
  (void)state;
  fc_test_make_db(&pg, "part_writer", db, sizeof db);
  drop_future_partitions(db);
  assert_int_equal(fc_test_pg_int(db, TODAY_PARTS), 0);
  writer_run_one(db, "edge", &st);
  assert_int_equal(st.partition_checks, 1);
  assert_int_equal(st.partition_failures, 0);
  assert_int_equal(fc_test_pg_int(db, TODAY_PARTS), 3);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM pg_class WHERE relname ="
                                      " 'node_executions_p' || to_char((now() + interval"
                                      " '7 days') AT TIME ZONE 'UTC', 'YYYYMMDD')"),
                   1);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions WHERE"
                                      " workflow_name = 'edge'"),
                   1);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions_default"), 0);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions_default"), 0);
}

/* One run of a one-node workflow fed to the database handler directly
 * under the id uuid (whose time puts the run in that day's partition),
 * then written. */
static void feed_run(fc_history_writer_t *w, uv_loop_t *loop, const uint8_t uuid[16],
                     int64_t t_us) {
  fc_workflow_t *wf;
  fc_handler_t dbh;
  json_t *in = json_object();
  assert_int_equal(fc_workflow_new(&wf, "near_edge"), 0);
  assert_int_equal(fc_workflow_add_node(wf, "a", ok_fn, NULL, NULL), 0);
  assert_int_equal(fc_workflow_validate(wf, NULL), 0);
  assert_int_equal(fc_history_handler(w, loop, &dbh), 0);
  fc_test_feed_run(&dbh, wf, uuid, t_us, in, in, 1);
  assert_int_equal(fc_history_writer_flush(w, 20000), 0);
  fc_handler_destroy(&dbh);
  uv_run(loop, UV_RUN_NOWAIT); /* the handler's handles close */
  json_decref(in);
  fc_workflow_free(wf);
}

/* A writer that has run for days reaches the edge of the partitions it
 * made: a run that starts within FC__PART_MARGIN_DAYS (2) of that edge
 * makes it call flowcore_ensure_partitions again; one far from it does
 * not. The edge after the first call is the end of today + 7 days, so a
 * run of today + 6 days (an id with that time) is near it; the call
 * succeeds and the run is in that day's partition, not the default. */
static void test_writer_partitions_near_edge(void **state) {
  char db[CI_LEN];
  fc_history_config_t cfg;
  fc_history_writer_t *w;
  fc_history_stats_t st;
  uv_loop_t loop;
  uint8_t uuid[16];
  struct timespec ts;
  int64_t now_ms, later_ms;
  int i;
  (void)state;
  clock_gettime(CLOCK_REALTIME, &ts);
  now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  later_ms = now_ms + 6LL * 86400000;
  fc_test_make_db(&pg, "part_near_edge", db, sizeof db);
  assert_int_equal(uv_loop_init(&loop), 0);
  fc_history_config_init(&cfg);
  cfg.conninfo = db;
  w = fc_test_writer_new(&cfg);
  wait_partition_check(w);
  /* Today: far from the edge, no second call. */
  assert_int_equal(fc_uuid7(uuid), 0);
  feed_run(w, &loop, uuid, now_ms * 1000);
  fc_history_writer_stats(w, &st);
  assert_int_equal(st.partition_checks, 1);
  /* Six days on: near it. */
  for (i = 0; i < 6; i++)
    uuid[i] = (uint8_t)(later_ms >> (40 - 8 * i));
  feed_run(w, &loop, uuid, later_ms * 1000);
  for (i = 0; i < 1000 && st.partition_checks < 2; i++) {
    fc_test_sleep_ms(10);
    fc_history_writer_stats(w, &st);
  }
  assert_int_equal(fc_history_writer_close(w, &st), 0);
  assert_int_equal(st.partition_checks, 2);
  assert_int_equal(st.partition_failures, 0);
  assert_int_equal(st.dropped_total, 0);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions"), 2);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions_default"), 0);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions_default"), 0);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions w JOIN pg_class c"
                                      " ON c.oid = w.tableoid WHERE c.relname ="
                                      " 'workflow_executions_p' || to_char((now() + interval"
                                      " '6 days') AT TIME ZONE 'UTC', 'YYYYMMDD')"),
                   1);
  fc_test_loop_close(&loop);
}

/* A writer role that may not create partitions still writes everything
 * (to the default partition) and counts the failed call. */
static void test_writer_partitions_refused(void **state) {
  char db[CI_LEN], ci[CI_LEN + 32];
  fc_history_stats_t st;
  (void)state;
  fc_test_make_db(&pg, "part_writer_no", db, sizeof db);
  drop_future_partitions(db);
  assert_int_equal(fc_test_pg_exec(db, "DROP ROLE IF EXISTS fc_w_nopart;"
                                       " CREATE ROLE fc_w_nopart LOGIN IN ROLE flowcore_writer;"
                                       " REVOKE EXECUTE ON FUNCTION flowcore_ensure_partitions(int)"
                                       " FROM flowcore_writer"),
                   0);
  snprintf(ci, sizeof ci, "%s user=fc_w_nopart", db);
  writer_run_one(ci, "refused", &st);
  assert_int_equal(st.partition_failures, 1);
  assert_int_equal(st.dropped_total, 0);
  assert_int_equal(fc_test_pg_int(db, TODAY_PARTS), 0);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions_default"), 1);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions_default"), 1);
}

static void test_prune(void **state) {
  char db[CI_LEN], *out;
  (void)state;
  fc_test_make_db(&pg, "part_prune", db, sizeof db);
  assert_int_equal(fc_test_pg_exec(db, "DROP ROLE IF EXISTS fc_maint; DROP ROLE IF EXISTS fc_w;"
                                       " CREATE ROLE fc_maint LOGIN IN ROLE flowcore_maintainer;"
                                       " CREATE ROLE fc_w LOGIN IN ROLE flowcore_writer"),
                   0);
  old_run(db, "old", "completed", 40, 3);
  old_run(db, "old", "failed", 40, 2);
  old_run(db, "stuck", "running", 45, 1);
  old_run(db, "recent", "completed", 0, 1);
  assert_int_equal(fc_test_pg_int(db, "SELECT flowcore_rescue_default_partition()"), 7 + 2 + 3);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM pg_class WHERE relname ="
                                      " 'node_executions_p' || to_char((now() - interval"
                                      " '40 days') AT TIME ZONE 'UTC', 'YYYYMMDD')"),
                   1);

  /* dry run: says what it would do, changes nothing */
  assert_int_equal(run_cli(db, "fc_maint", "history prune --older-than 30d --dry-run", &out), 0);
  assert_non_null(strstr(out, "would drop partition"));
  assert_non_null(strstr(out, "1 partition would be dropped"));
  free(out);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions"), 7);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM flowcore_prunes WHERE dry_run"), 1);

  /* the writer may not delete, nor prune */
  assert_int_not_equal(run_cli(db, "fc_w", "history prune --older-than 30d", &out), 0);
  free(out);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions"), 7);

  /* the maintainer prunes: the 40-day partition is dropped, the running
   * run's partition kept */
  assert_int_equal(run_cli(db, "fc_maint", "history prune --older-than 30d", &out), 0);
  assert_non_null(strstr(out, "1 partition dropped"));
  free(out);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM pg_class WHERE relname LIKE"
                                      " '%%_p' || to_char((now() - interval '40 days')"
                                      " AT TIME ZONE 'UTC', 'YYYYMMDD')"),
                   0);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions WHERE"
                                      " workflow_name = 'stuck'"),
                   1);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions"), 2);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions"), 2);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM flowcore_prunes WHERE NOT dry_run"
                                      " AND pruned_by = 'fc_maint' AND"
                                      " cardinality(partitions_dropped) = 1"),
                   1);
}

static void test_prune_workflow_batches(void **state) {
  char db[CI_LEN], *out;
  int i;
  (void)state;
  fc_test_make_db(&pg, "part_wf", db, sizeof db);
  for (i = 0; i < 3; i++)
    old_run(db, "wa", "completed", 0, 2);
  old_run(db, "wa", "running", 0, 1);
  old_run(db, "wb", "completed", 0, 2);
  /* batches of 1 run: three calls delete the three finished runs of wa */
  assert_int_equal(fc_test_pg_int(db, "SELECT flowcore_prune_runs(now(), 'wa', 1)"), 4);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions WHERE"
                                      " workflow_name = 'wa'"),
                   3);
  assert_int_equal(run_cli(db, NULL, "history prune --older-than 1s --workflow wa", &out), 0);
  assert_non_null(strstr(out, "0 partitions dropped, 8 rows deleted"));
  free(out);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions WHERE"
                                      " workflow_name = 'wa'"),
                   1);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions"), 1 + 2);
  assert_int_equal(fc_test_pg_int(db, "SELECT rows_deleted FROM flowcore_prunes WHERE"
                                      " workflow_name = 'wa'"),
                   8);
  /* without --workflow only whole partitions go: today's is kept whole */
  assert_int_equal(run_cli(db, NULL, "history prune --older-than 1s", &out), 0);
  assert_non_null(strstr(out, "dropped, 0 rows deleted")); /* yesterday's, empty */
  free(out);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions"), 2);
  /* policies from flowcore_retention when prune has no arguments: a
   * default alone drops partitions only... */
  assert_int_equal(fc_test_pg_exec(db, "INSERT INTO flowcore_retention VALUES (NULL, '1 second')"),
                   0);
  assert_int_equal(run_cli(db, NULL, "history prune", &out), 0);
  free(out);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions"), 2);
  /* ... a workflow's own horizon deletes its finished runs in batches */
  assert_int_equal(fc_test_pg_exec(db, "UPDATE flowcore_retention SET horizon = '30 days';"
                                       " INSERT INTO flowcore_retention VALUES ('wb', '1 second')"),
                   0);
  assert_int_equal(run_cli(db, NULL, "history prune", &out), 0);
  assert_non_null(strstr(out, "0 partitions dropped, 4 rows deleted")); /* run, 2 nodes, error */
  free(out);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions"), 1);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions WHERE"
                                      " status = 'running'"),
                   1);
}

/* A prune that fails part-way is recorded with what it did. */
static void test_prune_recorded_on_failure(void **state) {
  char db[CI_LEN], *out;
  (void)state;
  fc_test_make_db(&pg, "part_fail", db, sizeof db);
  old_run(db, "old", "completed", 40, 2);
  old_run(db, "wa", "completed", 0, 1);
  assert_int_equal(fc_test_pg_int(db, "SELECT flowcore_rescue_default_partition()"), 1 + 2 + 1);
  /* deleting node rows fails (dropping partitions does not) */
  assert_int_equal(
      fc_test_pg_exec(db, "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
                          " $$ BEGIN RAISE EXCEPTION 'no delete'; END $$;"
                          " CREATE TRIGGER refuse BEFORE DELETE ON node_executions FOR EACH ROW"
                          " EXECUTE FUNCTION refuse();"
                          " INSERT INTO flowcore_retention VALUES (NULL, '30 days'), ('wa', '1 second')"),
      0);
  assert_int_not_equal(run_cli(db, NULL, "history prune", &out), 0);
  free(out);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions WHERE"
                                      " workflow_name = 'old'"),
                   0);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM flowcore_prunes WHERE NOT dry_run"
                                      " AND cardinality(partitions_dropped) = 1 AND"
                                      " rows_deleted = 0"),
                   1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fresh_partitions),
      cmocka_unit_test(test_default_and_rescue),
      cmocka_unit_test(test_period_change),
      cmocka_unit_test(test_upgrade_from_0006),
      cmocka_unit_test(test_writer_makes_partitions),
      cmocka_unit_test(test_writer_partitions_refused),
      cmocka_unit_test(test_writer_partitions_near_edge),
      cmocka_unit_test(test_prune),
      cmocka_unit_test(test_prune_workflow_batches),
      cmocka_unit_test(test_prune_recorded_on_failure),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

#define _DEFAULT_SOURCE /* usleep, truncate */
/* The spool policy against a real PostgreSQL: an outage goes to disk and is
 * replayed when the server is back, also by the next process; a torn last
 * record is skipped and counted; the byte cap drops and counts. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fc_test.h"
#include "history_fixture.h"
#include "pg_server.h"

static fc_test_pg_t pg;
static char db[FC_TEST_PG_CONNINFO_LENGTH];
static char spool_dir[256];
static int db_seq;

static int group_setup(void **state) {
  (void)state;
  return fc_test_pg_start(&pg) == 0 ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  return fc_test_pg_stop(&pg);
}

static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  char p[512];
  if (d == NULL)
    return;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

static int count_files(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  int n = 0;
  if (d == NULL)
    return 0;
  while ((de = readdir(d)) != NULL)
    n += strstr(de->d_name, ".spool") != NULL;
  closedir(d);
  return n;
}

static int test_setup(void **state) {
  char name[64];
  fc_migrate_report_t rep;
  fc_error_t err;
  (void)state;
  if (!pg.external && !pg.running && fc_test_pg_start_again(&pg) != 0)
    return -1;
  snprintf(name, sizeof name, "spool_%d", ++db_seq);
  if (fc_test_pg_create_db(&pg, name, db, sizeof db) != 0)
    return -1;
  fc_error_clear(&err);
  if (fc_migrate_run(db, FLOWCORE_SOURCE_DIR "/migrations", &rep, &err) != 0)
    return -1;
  fc_migrate_report_free(&rep);
  snprintf(spool_dir, sizeof spool_dir, "/tmp/fc-spool-test-%d-%d", (int)getpid(), db_seq);
  remove_dir(spool_dir);
  return 0;
}

static int test_teardown(void **state) {
  (void)state;
  remove_dir(spool_dir);
  if (!pg.external && !pg.running)
    return fc_test_pg_start_again(&pg);
  return 0;
}

/* Every test here stops the server: not possible against an external one
 * (FLOWCORE_TEST_PG), where they are skipped. */
#define NEEDS_OWN_SERVER()                                                     \
  do {                                                                         \
    if (pg.external)                                                           \
      skip();                                                                  \
  } while (0)

static fc_history_writer_t *writer_new_conns(uint64_t max_bytes, int connections) {
  fc_history_config_t cfg;
  fc_history_writer_t *w;
  fc_error_t err;
  fc_history_config_init(&cfg);
  cfg.conninfo = db;
  cfg.policy = FC_QUEUE_SPOOL;
  cfg.spool_dir = spool_dir;
  cfg.spool_max_bytes = max_bytes;
  cfg.reconnect_min_ms = 20;
  cfg.reconnect_max_ms = 200;
  cfg.shutdown_deadline_ms = 2000;
  if (connections > 0)
    cfg.connections = connections;
  fc_error_clear(&err);
  assert_int_equal(fc_history_writer_new(&w, &cfg, &err), 0);
  return w;
}

static fc_history_writer_t *writer_new(uint64_t max_bytes) { return writer_new_conns(max_bytes, 0); }

static void ok_fn(fc_node_ctx_t *ctx, void *data) {
  (void)data;
  fc_node_succeed(ctx, json_pack("{s:s}", "id", fc_node_ctx_node_id(ctx)));
}

/* Runs a fan-out of n nodes with the database handler of w. */
static void run_workflow(fc_history_writer_t *w, int n, char *wf_id_out) {
  fc_workflow_t *wf;
  fc_test_hrun_t r;
  int i;
  char id[32];
  assert_int_equal(fc_workflow_new(&wf, "spooled"), 0);
  for (i = 0; i < n; i++) {
    snprintf(id, sizeof id, "n%d", i);
    assert_int_equal(fc_workflow_add_node(wf, id, ok_fn, NULL, NULL), 0);
  }
  fc_test_run_with_history(wf, w, NULL, &r, NULL, NULL);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.status, FC_WORKFLOW_COMPLETED);
  strcpy(wf_id_out, r.wf_id);
  fc_workflow_free(wf);
}

/* Waits until the writer replayed `want` records (or 30 s passed). */
static void wait_replayed(fc_history_writer_t *w, uint64_t want) {
  fc_history_stats_t st;
  int i;
  for (i = 0; i < 1500; i++) {
    fc_history_writer_stats(w, &st);
    if (st.replayed >= want)
      break;
    usleep(20000);
  }
  fc_history_writer_stats(w, &st);
  assert_int_equal(st.replayed, want);
}

/* Outage in one process: the run is spooled, then replayed when the server
 * comes back; every row exactly once. */
static void test_outage_spooled_and_replayed(void **state) {
  fc_history_writer_t *w;
  fc_history_stats_t st;
  char wf_id[FC_UUID_STRING_LENGTH];
  (void)state;
  NEEDS_OWN_SERVER();
  assert_int_equal(fc_test_pg_stop_only(&pg), 0);
  w = writer_new(0);
  run_workflow(w, 3000, wf_id);
  assert_int_equal(fc_history_writer_flush(w, 10000), 0); /* spooled counts */
  fc_history_writer_stats(w, &st);
  assert_int_equal(st.accepted, 6002);
  assert_int_equal(st.spooled, 6002);
  assert_int_equal(st.written, 0);
  assert_true(st.spool_bytes > 0);
  assert_int_equal(fc_test_pg_start_again(&pg), 0);
  wait_replayed(w, 6002);
  assert_int_equal(fc_history_writer_close(w, &st), 0);
  assert_int_equal(st.dropped_total, 0);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions WHERE status = 'completed' "
                                      "AND workflow_id = '%s'",
                                  wf_id),
                   3000);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(DISTINCT node_id) FROM node_executions"), 3000);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions WHERE status = 'completed' "
                                      "AND node_count = 3000"),
                   1);
  assert_int_equal(count_files(spool_dir), 0); /* replayed files are deleted */
}

/* Across a process restart: writer A spools and closes; writer B, started
 * later on the same directory with the server up, replays it. */
static void test_replay_by_next_writer(void **state) {
  fc_history_writer_t *a, *b;
  fc_history_stats_t st;
  char wf_id[FC_UUID_STRING_LENGTH];
  (void)state;
  NEEDS_OWN_SERVER();
  assert_int_equal(fc_test_pg_stop_only(&pg), 0);
  a = writer_new(0);
  run_workflow(a, 500, wf_id);
  assert_int_equal(fc_history_writer_close(a, &st), 0);
  assert_int_equal(st.spooled, 1002);
  assert_int_equal(st.written + st.dropped_total, 0);
  assert_true(count_files(spool_dir) >= 1);
  assert_int_equal(fc_test_pg_start_again(&pg), 0);
  b = writer_new(0);
  wait_replayed(b, 1002);
  assert_int_equal(fc_history_writer_close(b, &st), 0);
  assert_int_equal(st.accepted, 0);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions WHERE status = 'completed' "
                                      "AND output_data->>'id' = node_id"),
                   500);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions WHERE status = 'completed' "
                                      "AND workflow_id = '%s'",
                                  wf_id),
                   1);
  assert_int_equal(count_files(spool_dir), 0);
}

/* A record cut in mid-write (a crash) is detected by its checksum and
 * skipped with a count; every record before it arrives. */
static void test_torn_record_skipped(void **state) {
  fc_history_writer_t *a, *b;
  fc_history_stats_t st;
  char wf_id[FC_UUID_STRING_LENGTH];
  DIR *d;
  struct dirent *de;
  char path[512] = "";
  struct stat sb;
  (void)state;
  NEEDS_OWN_SERVER();
  assert_int_equal(fc_test_pg_stop_only(&pg), 0);
  a = writer_new(0);
  run_workflow(a, 200, wf_id);
  assert_int_equal(fc_history_writer_close(a, &st), 0);
  assert_int_equal(st.spooled, 402);
  d = opendir(spool_dir);
  assert_non_null(d);
  while ((de = readdir(d)) != NULL)
    if (strstr(de->d_name, ".spool") != NULL)
      snprintf(path, sizeof path, "%s/%s", spool_dir, de->d_name);
  closedir(d);
  assert_int_equal(count_files(spool_dir), 1);
  assert_int_equal(stat(path, &sb), 0);
  /* Cut the last record (the workflow end) in its middle. */
  assert_int_equal(truncate(path, sb.st_size - 7), 0);
  assert_int_equal(fc_test_pg_start_again(&pg), 0);
  b = writer_new(0);
  wait_replayed(b, 401);
  usleep(200000);
  assert_int_equal(fc_history_writer_close(b, &st), 0);
  assert_int_equal(st.replayed, 401);
  assert_int_equal(st.spool_corrupt, 1);
  /* Every row is there; exactly one end (the torn record's) is missing, so
   * exactly one row stays as its start left it. */
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions"), 200);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions"), 1);
  assert_int_equal(fc_test_pg_int(db, "SELECT (SELECT count(*) FROM node_executions WHERE status = 'running') "
                                      "+ (SELECT count(*) FROM workflow_executions WHERE status = 'running')"),
                   1);
}

/* The byte cap: what the spool cannot take is dropped and counted, and the
 * accounting adds up exactly. */
static void test_spool_byte_cap(void **state) {
  fc_history_writer_t *w;
  fc_history_stats_t st;
  char wf_id[FC_UUID_STRING_LENGTH];
  (void)state;
  NEEDS_OWN_SERVER();
  assert_int_equal(fc_test_pg_stop_only(&pg), 0);
  w = writer_new(20000); /* bytes: room for some records, not 2,002 */
  run_workflow(w, 1000, wf_id);
  assert_int_not_equal(fc_history_writer_close(w, &st), 0);
  assert_int_equal(st.accepted, 2002);
  assert_true(st.spooled > 0);
  assert_true(st.dropped_total > 0);
  assert_int_equal(st.spooled + st.dropped_total, st.accepted);
  assert_int_equal(st.dropped[FC_REC_NODE][FC_DROP_SPOOL_FULL] +
                       st.dropped[FC_REC_WORKFLOW][FC_DROP_SPOOL_FULL],
                   st.dropped_total);

  /* The server was away at close, so the losses went to the spool as loss
   * reports (past the cap); the next writer records them, under the first
   * writer's pid, once. */
  assert_int_equal(fc_test_pg_start_again(&pg), 0);
  {
    fc_history_writer_t *b = writer_new(0);
    fc_history_stats_t st2;
    wait_replayed(b, st.spooled);
    assert_int_equal(fc_history_writer_close(b, &st2), 0);
    assert_int_equal(st2.replayed, st.spooled);
    assert_int_equal(st2.dropped_total, 0);
  }
  assert_int_equal(count_files(spool_dir), 0);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM flowcore_writer_losses"),
                   (st.dropped[FC_REC_NODE][FC_DROP_SPOOL_FULL] > 0) +
                       (st.dropped[FC_REC_WORKFLOW][FC_DROP_SPOOL_FULL] > 0));
  assert_int_equal(fc_test_pg_int(db, "SELECT coalesce(sum(count), 0) FROM flowcore_writer_losses "
                                      "WHERE kind = 'node' AND reason = 'spool_full'"),
                   st.dropped[FC_REC_NODE][FC_DROP_SPOOL_FULL]);
  assert_int_equal(fc_test_pg_int(db, "SELECT coalesce(sum(count), 0) FROM flowcore_writer_losses "
                                      "WHERE kind = 'workflow' AND reason = 'spool_full'"),
                   st.dropped[FC_REC_WORKFLOW][FC_DROP_SPOOL_FULL]);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM flowcore_writer_losses WHERE pid = %d",
                                  (int)getpid()),
                   fc_test_pg_int(db, "SELECT count(*) FROM flowcore_writer_losses"));
  /* What the cap let in was replayed too. */
  assert_true(fc_test_pg_int(db, "SELECT count(*) FROM node_executions") > 0);
}

/* A spooled record the server refuses when it is replayed (a CHECK added in
 * between): the replayed batch is split around it, every other record is
 * committed, the refused one is counted (replay_rejected) and recorded as
 * `rejected`, and the loss reports read back with it (the byte cap's)
 * still arrive. */
static void test_replay_refused_record(void **state) {
  fc_history_writer_t *w;
  fc_history_stats_t st, st2;
  char wf_id[FC_UUID_STRING_LENGTH];
  (void)state;
  NEEDS_OWN_SERVER();
  assert_int_equal(fc_test_pg_stop_only(&pg), 0);
  /* One connection, so one shard: records reach the spool in the order they
   * came, and n0's start and end are among the first spooled (with two,
   * the other shard's batches may fill the cap first). */
  w = writer_new_conns(20000, 1);
  run_workflow(w, 1000, wf_id);
  assert_int_not_equal(fc_history_writer_close(w, &st), 0);
  assert_true(st.spooled > 2);
  assert_true(st.dropped_total > 0);

  assert_int_equal(fc_test_pg_start_again(&pg), 0);
  assert_int_equal(fc_test_pg_exec(db, "ALTER TABLE node_executions ADD CONSTRAINT no_n0 "
                                       "CHECK (node_id <> 'n0')"),
                   0);
  w = writer_new(0);
  wait_replayed(w, st.spooled - 2);
  assert_int_equal(fc_history_writer_close(w, &st2), 0);
  assert_int_equal(st2.replayed, st.spooled - 2);
  assert_int_equal(st2.replay_rejected, 2); /* n0's start and end, one row */
  assert_int_equal(st2.dropped_total, 0);
  assert_true(st2.retries >= 2); /* the whole read, then its halves */
  assert_int_equal(count_files(spool_dir), 0);

  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions WHERE node_id = 'n0'"), 0);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions WHERE workflow_id = '%s'",
                                  wf_id),
                   1);
  /* Each spooled record but n0's two is in a row: a start and an end per
   * finished row, a start for a row still running. */
  assert_int_equal(fc_test_pg_int(db, "SELECT (SELECT count(*) + count(*) FILTER (WHERE status <> "
                                      "'running') FROM node_executions) + (SELECT count(*) + "
                                      "count(*) FILTER (WHERE status <> 'running') FROM "
                                      "workflow_executions)"),
                   (int64_t)st.spooled - 2);
  assert_int_equal(fc_test_pg_int(db, "SELECT coalesce(sum(count), 0) FROM flowcore_writer_losses "
                                      "WHERE reason = 'spool_full'"),
                   st.dropped_total);
  assert_int_equal(fc_test_pg_int(db, "SELECT coalesce(sum(count), 0) FROM flowcore_writer_losses "
                                      "WHERE reason = 'rejected' AND kind = 'node'"),
                   2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_outage_spooled_and_replayed, test_setup, test_teardown),
      cmocka_unit_test_setup_teardown(test_replay_by_next_writer, test_setup, test_teardown),
      cmocka_unit_test_setup_teardown(test_torn_record_skipped, test_setup, test_teardown),
      cmocka_unit_test_setup_teardown(test_spool_byte_cap, test_setup, test_teardown),
      cmocka_unit_test_setup_teardown(test_replay_refused_record, test_setup, test_teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

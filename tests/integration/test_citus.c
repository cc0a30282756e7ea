/* The history on a Citus cluster (docs/scaling.md, "Past one server").
 * Runs only against a cluster made by scripts/citus-cluster and named by
 * FLOWCORE_TEST_CITUS (its directory), with FLOWCORE_TEST_PG its
 * coordinator (.ci/run's stage "the history on a Citus cluster"); skipped
 * otherwise. Each test gets a fresh database on every node
 * (citus_cluster.h), migrated by fc_migrate_run, which distributes it.
 *
 *   distributed        the four history tables distributed by workflow_id,
 *                      co-located, their day partitions too, shards on every
 *                      worker; the small tables reference tables; the
 *                      migration table local; a second migrate changes
 *                      nothing (flowcore_distribution has one row)
 *   append_only        the append-only trigger runs on the shards: a
 *                      running row may finish, a finished one may only get
 *                      its missing start columns, anything else is refused
 *   partitions         flowcore_ensure_partitions makes distributed
 *                      partitions; flowcore_prune_partitions drops a day
 *                      from the coordinator and its shards from every
 *                      worker, and keeps the other days' rows
 *   worker_restart     the worker holding the run (all its rows are in
 *                      one shard group) stopped and started again mid-run:
 *                      the writer's transactions fail while it is down and
 *                      are retried; every record once
 *   coordinator_restart  the same with the coordinator: the writer
 *                      reconnects; every record once
 */
#define _GNU_SOURCE

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "citus_cluster.h"
#include "fc_test.h"
#include "fault_workload.h"
#include "history_fixture.h"
#include "pg_server.h"

#include "flowcore/migrate.h"

#define NCONN 2 /* writer connections */
#define DOWN_MS 300

static fc_test_pg_t g_pg;

static void need_cluster(void) {
  if (fc_test_citus_dir() == NULL || !g_pg.external)
    skip();
}

/* ---- the distributed schema ---------------------------------------------------------------- */

static void test_distributed(void **state) {
  char db[FC_TEST_PG_CONNINFO_LENGTH];
  fc_error_t err;
  int workers = fc_test_citus_worker_count();
  (void)state;
  need_cluster();
  assert_true(workers >= 1);
  fc_test_make_db(&g_pg, "fccitus_dist", db, sizeof db);

  /* Hash-distributed by workflow_id, all in one co-location group. */
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM pg_dist_partition"
                                      " WHERE logicalrelid::text IN ('workflow_executions',"
                                      " 'node_executions', 'execution_errors', 'flowcore_reaps')"
                                      " AND partmethod = 'h'"
                                      " AND column_to_column_name(logicalrelid, partkey)"
                                      "     = 'workflow_id'"),
                   4);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(DISTINCT colocationid) FROM pg_dist_partition"
                                      " WHERE logicalrelid::text IN ('workflow_executions',"
                                      " 'node_executions', 'execution_errors', 'flowcore_reaps')"),
                   1);
  /* Every day partition and the default partitions too, in the same group. */
  assert_int_equal(
      fc_test_pg_int(db, "SELECT count(*) FROM pg_inherits i"
                         " WHERE i.inhparent::regclass::text IN ('workflow_executions',"
                         " 'node_executions', 'execution_errors')"
                         " AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p"
                         "  WHERE p.logicalrelid = i.inhrelid AND p.partmethod = 'h' AND"
                         "  p.colocationid = (SELECT colocationid FROM pg_dist_partition"
                         "   WHERE logicalrelid = 'workflow_executions'::regclass))"),
      0);
  assert_true(fc_test_pg_int(db, "SELECT count(*) FROM pg_inherits"
                                 " WHERE inhparent = 'node_executions'::regclass") >= 9);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM pg_dist_partition"
                                      " WHERE logicalrelid::text IN ('flowcore_partitioning',"
                                      " 'flowcore_retention', 'flowcore_prunes',"
                                      " 'flowcore_writer_losses') AND partmethod = 'n'"),
                   4);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid"
                                      " IN ('flowcore_schema_migrations'::regclass,"
                                      " 'flowcore_distribution'::regclass)"),
                   0);
  /* Shards of the runs on every worker. */
  assert_int_equal(fc_test_pg_int(db, "SELECT count(DISTINCT p.nodeport) FROM pg_dist_shard s"
                                      " JOIN pg_dist_placement pl USING (shardid)"
                                      " JOIN pg_dist_node p USING (groupid)"
                                      " WHERE s.logicalrelid = 'workflow_executions'::regclass"),
                   workers);
  assert_int_equal(fc_test_pg_int(db, "SELECT workers FROM flowcore_distribution"), workers);
  assert_int_equal(fc_test_pg_int(db, "SELECT cardinality(changed) FROM flowcore_distribution"),
                   8);

  /* Once. */
  fc_error_clear(&err);
  assert_int_equal(fc_migrate_run(db, FLOWCORE_SOURCE_DIR "/migrations", NULL, &err), 0);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM flowcore_distribution"), 1);
  assert_int_equal(fc_test_pg_drop_db(&g_pg, "fccitus_dist"), 0);
}

/* ---- the append-only trigger on the shards ----------------------------------------------- */

static void test_append_only(void **state) {
  char db[FC_TEST_PG_CONNINFO_LENGTH];
  const char *id = "00000000-0000-7000-8000-000000000001";
  (void)state;
  need_cluster();
  fc_test_make_db(&g_pg, "fccitus_append", db, sizeof db);

  assert_int_equal(fc_test_pg_exec(db,
                                   "INSERT INTO workflow_executions (workflow_id, workflow_name,"
                                   " status, started_at) VALUES ('%s', 'a', 'running', now())",
                                   id),
                   0);
  assert_int_equal(fc_test_pg_exec(db,
                                   "INSERT INTO node_executions (workflow_id, node_id, attempt,"
                                   " node_type, status, started_at) VALUES ('%s', 'n', 1, 't',"
                                   " 'running', now())",
                                   id),
                   0);
  /* Running rows finish (the writer's end of a slow node or run). */
  assert_int_equal(fc_test_pg_exec(db,
                                   "UPDATE node_executions SET status = 'completed',"
                                   " completed_at = now() WHERE workflow_id = '%s'",
                                   id),
                   0);
  assert_int_equal(fc_test_pg_exec(db,
                                   "UPDATE workflow_executions SET status = 'completed',"
                                   " completed_at = now() WHERE workflow_id = '%s'",
                                   id),
                   0);
  /* A finished row may still get the start columns it lacks (a start
   * record committed after its end, or a batch replayed over its own rows):
   * the trigger must know the shard for its table to allow that. */
  assert_int_equal(fc_test_pg_exec(db,
                                   "UPDATE workflow_executions SET input_data = '{\"late\": 1}',"
                                   " host = 'h', pid = 1 WHERE workflow_id = '%s'",
                                   id),
                   0);
  assert_int_equal(fc_test_pg_exec(db,
                                   "UPDATE node_executions SET input_data = '{\"late\": 2}'"
                                   " WHERE workflow_id = '%s'",
                                   id),
                   0);
  /* Finished rows stay as they are. */
  assert_int_equal(fc_test_pg_exec(db,
                                   "UPDATE workflow_executions SET status = 'running'"
                                   " WHERE workflow_id = '%s'",
                                   id),
                   -1);
  assert_int_equal(fc_test_pg_exec(db,
                                   "UPDATE node_executions SET output_data = '1'"
                                   " WHERE workflow_id = '%s'",
                                   id),
                   -1);
  assert_int_equal(fc_test_pg_int(db,
                                  "SELECT count(*) FROM workflow_executions w JOIN"
                                  " node_executions n USING (workflow_id) WHERE w.status ="
                                  " 'completed' AND n.status = 'completed' AND n.output_data IS"
                                  " NULL AND w.input_data->>'late' = '1' AND"
                                  " n.input_data->>'late' = '2'"),
                   1);
  assert_int_equal(fc_test_pg_drop_db(&g_pg, "fccitus_append"), 0);
}

/* ---- partitions on every worker --------------------------------------------------------------- */

/* Tables on worker i whose names start with prefix (shards are
 * <table>_<shard id>). */
static int64_t worker_tables(int i, const char *dbname, const char *prefix) {
  fc_test_pg_t node;
  char db[FC_TEST_PG_CONNINFO_LENGTH];
  assert_int_equal(fc_test_citus_node(i, &node), 0);
  assert_int_equal(fc_test_pg_conninfo_with_db(node.conninfo, dbname, db, sizeof db), 0);
  return fc_test_pg_int(db,
                        "SELECT count(*) FROM pg_class WHERE relkind IN ('r', 'p')"
                        " AND relname LIKE '%s%%'",
                        prefix);
}

static void test_partitions(void **state) {
  char db[FC_TEST_PG_CONNINFO_LENGTH], prefix[64];
  int i, workers = fc_test_citus_worker_count();
  char *day;
  (void)state;
  need_cluster();
  fc_test_make_db(&g_pg, "fccitus_parts", db, sizeof db);

  /* Days ahead: new partitions, distributed like the others. */
  assert_true(fc_test_pg_int(db, "SELECT flowcore_ensure_partitions(12)") >= 3);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM pg_inherits i"
                                      " WHERE i.inhparent = 'execution_errors'::regclass"
                                      " AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p"
                                      "  WHERE p.logicalrelid = i.inhrelid)"),
                   0);

  /* A finished run 40 days ago, in a partition made for it, and one now. */
  assert_int_equal(fc_test_pg_exec(db, "SELECT flowcore__create_partition(current_date - 40)"),
                   0);
  day = fc_test_pg_text(db, "SELECT to_char(current_date - 40, 'YYYYMMDD')");
  assert_int_equal(
      fc_test_pg_exec(db,
                      "INSERT INTO workflow_executions (workflow_id, workflow_name, status,"
                      " started_at, completed_at) SELECT lower, 'old',"
                      " 'completed', now() - interval '40 days', now() - interval '40 days'"
                      " FROM flowcore_partition_bounds(current_date - 40)"),
      0);
  assert_int_equal(fc_test_pg_exec(db,
                                   "INSERT INTO workflow_executions (workflow_id, workflow_name,"
                                   " status, started_at) VALUES (flowcore_uuid_floor(now()),"
                                   " 'new', 'running', now())"),
                   0);
  snprintf(prefix, sizeof prefix, "workflow_executions_p%s", day);
  for (i = 1; i <= workers; i++)
    assert_true(worker_tables(i, "fccitus_parts", prefix) >= 1);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions"), 2);

  /* Pruned: gone from the coordinator and from every worker. */
  assert_true(fc_test_pg_int(db, "SELECT count(*) FROM flowcore_prune_partitions("
                                 "now() - interval '30 days')") >= 1);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM pg_class WHERE relname = '%s'",
                                  prefix),
                   0);
  for (i = 1; i <= workers; i++)
    assert_int_equal(worker_tables(i, "fccitus_parts", prefix), 0);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions"), 1);
  assert_int_equal(
      fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions WHERE workflow_name = 'new'"),
      1);
  free(day);
  assert_int_equal(fc_test_pg_drop_db(&g_pg, "fccitus_parts"), 0);
}

/* ---- a node restarted mid-run -------------------------------------------------------------- */

typedef struct {
  fc_test_wl_t *t;
  fc_history_writer_t *w;
  const char *db;
  int node; /* 0: the coordinator; -1: the worker holding the run, found mid-run */
  int rc;
  char why[128];
  int ended_at_down, ended_at_up;
  fc_history_stats_t before;
} restart_t;

/* The fault thread: once some records are written, the node goes down
 * (pg_ctl stop -m fast), the held nodes up to level 1 end while it is down,
 * it comes back after DOWN_MS, the rest end. */
static void restart_main(void *arg) {
  restart_t *f = arg;
  fc_test_pg_t node;
  int64_t port = 0;
  int i, n = fc_test_citus_worker_count();
  fc_test_wl_wait_ended(f->t, 300);
  fc_history_writer_stats(f->w, &f->before);
  /* All rows of a run are on one worker (its shard of workflow_id). The
   * run's row may not be committed yet when 300 nodes have ended (the
   * writer batches): wait for it (port 0 until then). */
  for (i = 0; f->node < 0 && port == 0 && i < 3000; i++)
    if (fc_test_pg_query_int(f->db, &port,
                             "SELECT coalesce(max(nodeport), 0) FROM pg_dist_shard_placement"
                             " WHERE shardid = (SELECT get_shard_id_for_distribution_column("
                             "'workflow_executions', workflow_id) FROM workflow_executions"
                             " LIMIT 1)") != 0 ||
        port == 0)
      fc_test_sleep_ms(10);
  if (f->node < 0 && port > 0)
    for (i = 1; i <= n; i++)
      if (fc_test_citus_node(i, &node) == 0 && node.port == port)
        f->node = i;
  if (f->node < 0 || fc_test_citus_node(f->node, &node) != 0 || fc_test_pg_stop_only(&node) != 0) {
    f->rc = -1;
    snprintf(f->why, sizeof f->why, "cannot stop node %d", f->node);
    fc_test_wl_release(f->t, 2);
    return;
  }
  f->ended_at_down = atomic_load(&f->t->ended);
  fc_test_wl_release(f->t, 1);
  fc_test_sleep_ms(DOWN_MS);
  f->ended_at_up = atomic_load(&f->t->ended);
  if (fc_test_pg_start_again(&node) != 0) {
    f->rc = -1;
    snprintf(f->why, sizeof f->why, "cannot start node %d again", f->node);
  }
  fc_test_wl_release(f->t, 2);
}

static void restart_case(int node, const char *dbname) {
  static const fc_test_wl_shape_t shape = {
      .n_nodes = 2000,
      .async_every = 1,
      .flaky_every = 100,
      .delay_ms = 3,
      .max_parallel = 50,
      .hold = {800, 1400},
  };
  char db[FC_TEST_PG_CONNINFO_LENGTH];
  fc_history_config_t cfg;
  fc_history_writer_t *w;
  fc_history_stats_t rep;
  fc_test_wl_t t;
  fc_test_wl_out_t o;
  restart_t f;
  int flush_rc, close_rc;

  fc_test_make_db(&g_pg, dbname, db, sizeof db);
  fc_test_wl_build(&t, dbname, &shape);
  fc_history_config_init(&cfg);
  cfg.conninfo = db;
  cfg.reconnect_min_ms = 20;
  cfg.reconnect_max_ms = 300;
  cfg.batch_size = 200; /* many transactions: the fault meets some */
  cfg.flush_interval_ms = 10;
  cfg.connections = NCONN;
  w = fc_test_writer_new(&cfg);
  assert_int_equal(fc_test_wait_connected(w, NCONN, 10000), 0);

  memset(&f, 0, sizeof f);
  f.t = &t;
  f.w = w;
  f.node = node;
  f.db = db;
  fc_test_wl_run(&t, w, dbname, restart_main, &f, &o);
  flush_rc = fc_history_writer_flush(w, 60000);
  close_rc = fc_history_writer_close(w, &rep);
  printf("[citus] %s %d down %d ms: %d node attempts ended while it was down; run %.0f ms;"
         " written %llu, batches %llu, retries %llu, reconnects %llu\n",
         node == 0 ? "coordinator" : "worker", f.node, DOWN_MS, f.ended_at_up - f.ended_at_down,
         o.ms, (unsigned long long)rep.written, (unsigned long long)rep.batches,
         (unsigned long long)rep.retries, (unsigned long long)rep.reconnects);

  if (f.rc != 0)
    fail_msg("fault thread: %s", f.why);
  assert_int_equal(o.run.rc, 0);
  assert_int_equal(o.run.status, FC_WORKFLOW_COMPLETED);
  /* Nothing failed before the fault; records came while the node was down. */
  assert_int_equal(f.before.retries + f.before.reconnects, 0);
  assert_true(f.ended_at_up > f.ended_at_down);
  if (node == 0)
    assert_true(rep.reconnects >= NCONN); /* both connections lost and made again */
  else
    assert_true(rep.retries >= 1); /* transactions failed on the worker and were retried */
  assert_int_equal(flush_rc, 0);
  fc_test_check_lossless(&rep, close_rc, &t);
  /* A worker stopped between the two phases of a commit leaves that
   * transaction prepared on it: Citus has reported it committed, and its
   * maintenance daemon commits it on the worker up to
   * citus.recover_2pc_interval (1 min) later; until then its rows show
   * their state before it (a node's end written, the row still
   * "running"). Finish those now, as an operator would, so that the check
   * sees what Citus has committed (docs/scaling.md §2). */
  assert_true(fc_test_pg_int(db, "SELECT recover_prepared_transactions()") >= 0);
  fc_test_wl_check_exact(db, o.run.wf_id, &t);
  fc_test_wl_free(&t);
  assert_int_equal(fc_test_pg_drop_db(&g_pg, dbname), 0);
}

static void test_worker_restart(void **state) {
  (void)state;
  need_cluster();
  restart_case(-1, "fccitus_worker");
}

static void test_coordinator_restart(void **state) {
  (void)state;
  need_cluster();
  restart_case(0, "fccitus_coord");
}

static int group_setup(void **state) {
  (void)state;
  setvbuf(stdout, NULL, _IOLBF, 0);
  return fc_test_pg_start(&g_pg);
}

static int group_teardown(void **state) {
  (void)state;
  return fc_test_pg_stop(&g_pg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_distributed),   cmocka_unit_test(test_append_only),
      cmocka_unit_test(test_partitions),    cmocka_unit_test(test_worker_restart),
      cmocka_unit_test(test_coordinator_restart),
  };
  return cmocka_run_group_tests_name("citus", tests, group_setup, group_teardown);
}

/* Fault tests of the history writer (the promises of docs/reliability.md):
 * a real PostgreSQL is restarted, stopped, has its backends killed, or
 * (through a small protocol proxy in this file) loses the acknowledgement of a COMMIT it performed,
 * while workflows run with the database handler attached. After each fault
 * the database must hold every record exactly once, finished, and the
 * writer's stats must account for every record exactly.
 *
 * Every test makes its own database on one server started by the group
 * setup. Tests that stop or restart the server use that shared server (the
 * tests of this file run one at a time, and nothing else runs concurrently:
 * the CMake test is RUN_SERIAL); a per-test teardown starts it again if a
 * failed test left it down.
 *
 * The workload (tests/support/fault_workload.h) is n_nodes independent
 * nodes, sync, async (from a timer; those from hold[0] on wait until the
 * test releases them, which lets it put a fault precisely mid-run) and
 * flaky (attempt 1 fails, the retry succeeds), each outputting its own id;
 * that header says how records are counted in the database.
 *
 * The tests:
 *   restart_mid_run        pg_ctl restart -m fast in the middle of a run
 *   outage_mid_run         the server stopped for 3 s in the middle of a run
 *   outage_run_on_time     down from before the run: the run takes its own
 *                          time, the queue absorbs the outage
 *   kill_backends_loop     the writer's backends terminated every ~50 ms
 *   block_policy_waits     queue_capacity 1000, outage: the producer waits
 *   drop_policy_counts     queue_capacity 1000, outage: exact loss accounting
 *   shutdown_deadline      close with the server down keeps its deadline
 *   lost_commit_acks_replayed  every 2nd COMMIT performed but unacknowledged
 *   loss_report_replay     the same for the COMMIT carrying the loss report
 * Where a fault stops or restarts the server, a batch is first pinned in
 * flight (a lock held by the test makes a writer transaction wait; see
 * pin_batch), so the fault always interrupts a transaction that must then
 * be replayed, not just an idle connection.
 *
 * Measured numbers (restart recovery, outage absorption, ...) are printed
 * with a "[fault]" prefix. */
#define _GNU_SOURCE

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fc_test.h"
#include "fault_workload.h"
#include "history_fixture.h"
#include "pg_server.h"

#include <libpq-fe.h>

#define CONNECTIONS 2

static fc_test_pg_t g_pg;

/* ---- small helpers -------------------------------------------------------- */

static uint64_t now_ns(void) { return uv_hrtime(); }

static double ms_between(uint64_t a, uint64_t b) { return (double)(b - a) / 1e6; }

static void skip_without_own_server(void) {
  if (g_pg.external)
    skip(); /* FLOWCORE_TEST_PG: we may not stop or restart that server */
}

static void config_for(fc_history_config_t *cfg, const char *conninfo) {
  fc_history_config_init(cfg);
  cfg->conninfo = conninfo;
  cfg->reconnect_min_ms = 20;
  cfg->reconnect_max_ms = 500;
  cfg->batch_size = 200;      /* many transactions: faults meet some in flight */
  cfg->flush_interval_ms = 10;
  cfg->connections = CONNECTIONS;
}

static void print_stats(const char *label, const fc_history_stats_t *st) {
  printf("[fault] %s: accepted=%llu written=%llu coalesced=%llu batches=%llu retries=%llu "
         "reconnects=%llu dropped=%llu high_water=%llu last_error=\"%s\"\n",
         label, (unsigned long long)st->accepted, (unsigned long long)st->written,
         (unsigned long long)st->coalesced, (unsigned long long)st->batches,
         (unsigned long long)st->retries, (unsigned long long)st->reconnects,
         (unsigned long long)st->dropped_total, (unsigned long long)st->queue_high_water,
         st->last_error);
  fflush(stdout);
}

static int64_t q_int(const char *db, const char *sql, const char *wf_id) {
  return fc_test_pg_int(db, sql, wf_id);
}

/* ---- the fault thread ------------------------------------------------------------ */

enum { F_RESTART, F_OUTAGE, F_KILL_LOOP, F_UP_AFTER };

typedef struct {
  fc_test_wl_t *t;
  fc_history_writer_t *w;
  const char *db;      /* the test database (direct, not through a proxy) */
  int pin_batch;       /* F_RESTART/F_OUTAGE: fault while a batch is surely in flight */
  int mode;
  int trigger_at;      /* fault when this many node attempts ended */
  int busy_after_up;   /* F_OUTAGE: the released nodes outlast the outage, so
                        * there is no caught-up moment to measure */
  int outage_ms;       /* F_OUTAGE: down this long; F_UP_AFTER: up at t_down_ns + this */
  int kill_every_ms;   /* F_KILL_LOOP */
  int kill_after_ms;   /* F_KILL_LOOP: keep killing this long after the run ended */
  int release_after_kills;
  /* results */
  int rc;
  fc_history_stats_t before, at_down, before_up;
  double op_ms;       /* pg_ctl restart / stop duration */
  double recovery_ms; /* server up again -> writer connected and caught up */
  double catchup_ms;  /* fault began -> writer connected and caught up */
  int pinned;         /* writer transactions waiting on the lock when the fault hit */
  double pin_ms;      /* how long it took to get one waiting */
  uint64_t t_fault_ns;
  int completed_at_fault, completed_at_up;
  uint64_t t_down_ns, t_up_call_ns, t_up_ns;
  int kills, effective_kills, killed_total;
} fault_t;

static void wait_trigger(fault_t *f) { fc_test_wl_wait_ended(f->t, f->trigger_at); }

/* After the server came back: until the writer has its connections and has
 * committed everything handed to it so far (held nodes produce nothing). */
static void measure_recovery(fault_t *f) {
  uint64_t end = f->t_up_ns + 30ULL * 1000000000ULL;
  fc_history_stats_t st;
  for (;;) {
    fc_history_writer_stats(f->w, &st);
    if (st.connected == CONNECTIONS && st.queue_depth == 0)
      break;
    if (now_ns() > end) {
      f->rc = -1;
      fprintf(stderr, "[fault] the writer did not recover within 30 s: %s\n", st.last_error);
      break;
    }
    fc_test_sleep_ms(2);
  }
  f->recovery_ms = ms_between(f->t_up_ns, now_ns());
  f->catchup_ms = ms_between(f->t_fault_ns, now_ns());
}

/* Makes sure a batch is in flight when the fault hits: a transaction of
 * ours holds a lock on node_executions that every batch needs (SHARE ROW
 * EXCLUSIVE conflicts with the ROW EXCLUSIVE of COPY/INSERT), and we wait
 * until a writer transaction is blocked on it. The fault then kills both;
 * the writer must replay that batch. Returns our connection (the caller
 * finishes it after the fault) or NULL, with f->rc set. */
static PGconn *pin_batch(fault_t *f) {
  PGconn *c = PQconnectdb(f->db);
  PGresult *res;
  uint64_t t0 = now_ns(), end = t0 + 5ULL * 1000000000ULL;
  int64_t n = 0;
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "[fault] pin: cannot connect: %s\n", PQerrorMessage(c));
    PQfinish(c);
    f->rc = -1;
    return NULL;
  }
  res = PQexec(c, "BEGIN");
  PQclear(res);
  res = PQexec(c, "LOCK TABLE node_executions IN SHARE ROW EXCLUSIVE MODE");
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    fprintf(stderr, "[fault] pin: cannot lock: %s\n", PQerrorMessage(c));
    f->rc = -1;
  }
  PQclear(res);
  while (f->rc == 0) {
    if (fc_test_pg_query_int(f->db, &n,
                             "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                             "current_database() AND backend_type = 'client backend' "
                             "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()") != 0) {
      f->rc = -1;
    } else if (n > 0) {
      break;
    } else if (now_ns() > end) {
      fprintf(stderr, "[fault] pin: no writer transaction waited on the lock within 5 s\n");
      f->rc = -1;
    } else {
      fc_test_sleep_ms(2);
    }
  }
  f->pinned = (int)n;
  f->pin_ms = ms_between(t0, now_ns());
  return c;
}

static void fault_main(void *arg) {
  fault_t *f = arg;
  PGconn *pin = NULL;
  uint64_t t0;
  switch (f->mode) {
  case F_RESTART:
    wait_trigger(f);
    pin = f->pin_batch ? pin_batch(f) : NULL;
    f->completed_at_fault = atomic_load(&f->t->ended);
    fc_history_writer_stats(f->w, &f->before);
    t0 = f->t_fault_ns = now_ns();
    /* Held nodes go on during the restart. The nodes before hold[0] may
     * all have ended already: on a loaded machine this thread can be
     * descheduled for longer than they take. */
    fc_test_wl_release(f->t, 1);
    if (fc_test_pg_restart(&g_pg) != 0)
      f->rc = -1;
    f->t_up_ns = now_ns();
    f->op_ms = ms_between(t0, f->t_up_ns);
    f->completed_at_up = atomic_load(&f->t->ended);
    PQfinish(pin);
    measure_recovery(f);
    break;
  case F_OUTAGE:
    wait_trigger(f);
    pin = f->pin_batch ? pin_batch(f) : NULL;
    f->completed_at_fault = atomic_load(&f->t->ended);
    fc_history_writer_stats(f->w, &f->before);
    t0 = f->t_fault_ns = now_ns();
    if (fc_test_pg_stop_only(&g_pg) != 0)
      f->rc = -1;
    f->t_down_ns = now_ns();
    PQfinish(pin);
    f->op_ms = ms_between(t0, f->t_down_ns);
    fc_history_writer_stats(f->w, &f->at_down);
    /* Held nodes run while the server is down (see F_RESTART). */
    fc_test_wl_release(f->t, 1);
    fc_test_sleep_ms(f->outage_ms);
    fc_history_writer_stats(f->w, &f->before_up);
    f->completed_at_up = atomic_load(&f->t->ended);
    f->t_up_call_ns = now_ns();
    if (fc_test_pg_start_again(&g_pg) != 0)
      f->rc = -1;
    f->t_up_ns = now_ns();
    if (!f->busy_after_up)
      measure_recovery(f);
    break;
  case F_UP_AFTER: {
    uint64_t up_at = f->t_down_ns + (uint64_t)f->outage_ms * 1000000ULL;
    while (now_ns() < up_at)
      fc_test_sleep_ms(1);
    fc_history_writer_stats(f->w, &f->before_up);
    f->t_up_call_ns = now_ns();
    if (fc_test_pg_start_again(&g_pg) != 0)
      f->rc = -1;
    f->t_up_ns = now_ns();
    break;
  }
  case F_KILL_LOOP: {
    uint64_t done_at = 0, end = now_ns() + 120ULL * 1000000000ULL;
    fc_history_writer_stats(f->w, &f->before);
    for (;;) {
      int n;
      if (atomic_load(&f->t->run_done)) {
        if (done_at == 0)
          done_at = now_ns();
        else if (now_ns() - done_at >= (uint64_t)f->kill_after_ms * 1000000ULL)
          break;
      }
      if (now_ns() > end) {
        f->rc = -1;
        break;
      }
      n = fc_test_pg_kill_backends(&g_pg);
      f->kills++;
      if (n < 0) {
        f->rc = -1;
      } else if (n > 0) {
        f->effective_kills++;
        f->killed_total += n;
      }
      if (f->effective_kills >= f->release_after_kills)
        fc_test_wl_release(f->t, 1);
      fc_test_sleep_ms(f->kill_every_ms);
    }
    break;
  }
  default:
    break;
  }
  fc_test_wl_release(f->t, 1);
}

/* ---- checks ------------------------------------------------------------------------- */

/* The stats invariant on every snapshot taken during a test (zeroed
 * snapshots, never taken, hold it trivially). */
static void check_snapshots(const fc_test_wl_out_t *o, const fault_t *f) {
  fc_test_check_invariant("at the end of the run", &o->at_end);
  if (f != NULL) {
    fc_test_check_invariant("before the fault", &f->before);
    fc_test_check_invariant("when the server was down", &f->at_down);
    fc_test_check_invariant("before the server came back", &f->before_up);
  }
}

/* The database holds this run exactly: one row per node attempt, none twice,
 * none unfinished, each with its own content; the errors; the workflow row;
 * and no loss report (nothing was lost). */
static void check_exact(const char *db, const char *wf, const fc_test_wl_t *t) {
  int64_t rows = t->s.n_nodes + t->n_flaky;

  /* Nothing else in this fresh database (e.g. rows under another id). */
  assert_int_equal(q_int(db, "SELECT count(*) FROM node_executions WHERE workflow_id <> '%s'", wf),
                   0);
  assert_int_equal(q_int(db, "SELECT count(*) FROM node_executions WHERE workflow_id = '%s'", wf),
                   rows);
  /* The primary key makes these two equal by itself; kept as the SQL
   * statement of "none twice" that a dashboard would run. */
  assert_int_equal(q_int(db,
                         "SELECT count(DISTINCT (workflow_id, node_id, attempt)) FROM "
                         "node_executions WHERE workflow_id = '%s'",
                         wf),
                   rows);
  assert_int_equal(q_int(db,
                         "SELECT count(DISTINCT node_id) FROM node_executions "
                         "WHERE workflow_id = '%s'",
                         wf),
                   t->s.n_nodes);
  assert_int_equal(q_int(db,
                         "SELECT count(*) FROM node_executions WHERE workflow_id = '%s' "
                         "AND status = 'running'",
                         wf),
                   0);
  /* Every node completed on its last attempt, with its own output. */
  assert_int_equal(q_int(db,
                         "SELECT count(*) FROM node_executions WHERE workflow_id = '%s' "
                         "AND status = 'completed' AND output_data->>'node' = node_id "
                         "AND attempt = CASE WHEN node_type = 'flaky' THEN 2 ELSE 1 END",
                         wf),
                   t->s.n_nodes);
  assert_int_equal(q_int(db,
                         "SELECT count(*) FROM node_executions WHERE workflow_id = '%s' "
                         "AND status = 'failed' AND attempt = 1 AND node_type = 'flaky'",
                         wf),
                   t->n_flaky);
  /* Both halves of every row arrived: start (input, started_at) and end. */
  assert_int_equal(q_int(db,
                         "SELECT count(*) FROM node_executions WHERE workflow_id = '%s' "
                         "AND (input_data IS NULL OR started_at IS NULL OR completed_at IS NULL "
                         "OR duration_ms IS NULL OR node_type IS NULL "
                         "OR node_type <> CASE left(node_id, 1) WHEN 's' THEN 'sync' "
                         "WHEN 'a' THEN 'async' ELSE 'flaky' END "
                         "OR completed_at < started_at)",
                         wf),
                   0);
  /* Errors: one per failed attempt, none twice (client-made error_id). */
  assert_int_equal(q_int(db, "SELECT count(*) FROM execution_errors WHERE workflow_id = '%s'", wf),
                   t->n_flaky);
  assert_int_equal(q_int(db,
                         "SELECT count(DISTINCT node_id) FROM execution_errors "
                         "WHERE workflow_id = '%s' AND attempt = 1 AND error_type = 'flaky'",
                         wf),
                   t->n_flaky);
  assert_int_equal(q_int(db, "SELECT count(*) FROM execution_errors WHERE workflow_id <> '%s'", wf),
                   0);
  /* The workflow row. */
  assert_int_equal(q_int(db, "SELECT count(*) FROM workflow_executions WHERE workflow_id = '%s'", wf),
                   1);
  assert_int_equal(q_int(db,
                         "SELECT count(*) FROM workflow_executions WHERE workflow_id = '%s' "
                         "AND status = 'completed' AND completed_at IS NOT NULL "
                         "AND input_data IS NOT NULL AND output_data IS NOT NULL",
                         wf),
                   1);
  assert_int_equal(q_int(db, "SELECT node_count FROM workflow_executions WHERE workflow_id = '%s'",
                         wf),
                   t->s.n_nodes);
  assert_int_equal(q_int(db, "SELECT error_count FROM workflow_executions WHERE workflow_id = '%s'",
                         wf),
                   t->n_flaky);
  assert_int_equal(q_int(db, "SELECT count(*) FROM workflow_executions WHERE workflow_id <> '%s'",
                         wf),
                   0);
  /* Nothing was lost, so there is no loss report. */
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM flowcore_writer_losses"), 0);
}

static int ensure_server_up(void **state) {
  (void)state;
  if (!g_pg.external && !g_pg.running && g_pg.dir[0] != '\0')
    return fc_test_pg_start_again(&g_pg);
  return 0;
}

/* The workload of a fault in the middle of a run: the fault comes after
 * 400 node attempts (trigger_at), while the 200 held async nodes keep the
 * run going; they are let go when the fault begins. */
static const fc_test_wl_shape_t mid_run = {
    .n_nodes = 2000,
    .async_every = 1,
    .flaky_every = 100,
    .delay_ms = 3,
    .max_parallel = 50,
    .hold = {1800},
};

/* The workload of the queue policies: far more records than a queue of
 * 1000 holds are made while the server is down (the nodes from 1200 on
 * run then). */
static const fc_test_wl_shape_t outage_fills_queue = {
    .n_nodes = 6000,
    .async_every = 2,
    .flaky_every = 200,
    .delay_ms = 5,
    .max_parallel = 20,
    .hold = {1200},
};

/* ---- 1. restart mid-run ------------------------------------------------------------- */

static void test_restart_mid_run(void **state) {
  char db[FC_TEST_PG_CONNINFO_LENGTH];
  fc_history_config_t cfg;
  fc_history_writer_t *w;
  fc_history_stats_t rep;
  fc_test_wl_t t;
  fault_t f;
  fc_test_wl_out_t o;
  uint64_t t0;
  int flush_rc, close_rc;
  double flush_ms;
  (void)state;
  skip_without_own_server();

  fc_test_make_db(&g_pg, "fcfault_restart", db, sizeof db);
  fc_test_wl_build(&t, "fault-restart", &mid_run);

  config_for(&cfg, db);
  w = fc_test_writer_new(&cfg);
  assert_int_equal(fc_test_wait_connected(w, CONNECTIONS, 10000), 0);

  memset(&f, 0, sizeof f);
  f.t = &t;
  f.w = w;
  f.mode = F_RESTART;
  f.db = db;
  f.pin_batch = 1;
  f.trigger_at = 400;
  fc_test_wl_run(&t, w, "restart", fault_main, &f, &o);

  t0 = now_ns();
  flush_rc = fc_history_writer_flush(w, 60000);
  flush_ms = ms_between(t0, now_ns());
  close_rc = fc_history_writer_close(w, &rep);
  fc_test_wl_free(&t);

  printf("[fault] restart: %d writer transaction(s) in flight (pinned in %.0f ms); pg_ctl restart took %.0f ms; "
         "the writer was connected and caught up %.0f ms after the restart began (%.0f ms after "
         "pg_ctl returned); node attempts ended during the restart: %d; run %.0f ms; flush "
         "after the run %.1f ms\n",
         f.pinned, f.pin_ms, f.op_ms, f.catchup_ms, f.recovery_ms, f.completed_at_up - f.completed_at_fault,
         o.ms, flush_ms);
  print_stats("restart", &rep);

  assert_int_equal(o.run.rc, 0);
  assert_int_equal(f.rc, 0);
  check_snapshots(&o, &f);
  assert_int_equal(o.run.status, FC_WORKFLOW_COMPLETED);
  /* The fault really hit this writer, and only the fault did. */
  assert_int_equal(f.before.retries + f.before.reconnects, 0);
  /* A batch was in flight (pinned) when the fault hit: it was retried. */
  assert_true(f.pinned >= 1);
  assert_true(rep.retries >= 1);
  assert_true(rep.reconnects >= 1);
  /* The workflow kept running while the server restarted. */
  assert_true(f.completed_at_up > f.completed_at_fault);
  assert_int_equal(flush_rc, 0);
  fc_test_check_lossless(&rep, close_rc, &t);
  check_exact(db, o.run.wf_id, &t);
  assert_int_equal(fc_test_pg_drop_db(&g_pg, "fcfault_restart"), 0);
}

/* ---- 2. outage mid-run -------------------------------------------------------------- */

static void test_outage_mid_run(void **state) {
  char db[FC_TEST_PG_CONNINFO_LENGTH];
  fc_history_config_t cfg;
  fc_history_writer_t *w;
  fc_history_stats_t rep;
  fc_test_wl_t t;
  fault_t f;
  fc_test_wl_out_t o;
  int flush_rc, close_rc;
  (void)state;
  skip_without_own_server();

  fc_test_make_db(&g_pg, "fcfault_outage", db, sizeof db);
  fc_test_wl_build(&t, "fault-outage", &mid_run);

  config_for(&cfg, db);
  w = fc_test_writer_new(&cfg);
  assert_int_equal(fc_test_wait_connected(w, CONNECTIONS, 10000), 0);

  memset(&f, 0, sizeof f);
  f.t = &t;
  f.w = w;
  f.mode = F_OUTAGE;
  f.db = db;
  f.pin_batch = 1;
  f.trigger_at = 400;
  f.outage_ms = 3000;
  fc_test_wl_run(&t, w, "outage", fault_main, &f, &o);

  flush_rc = fc_history_writer_flush(w, 60000);
  close_rc = fc_history_writer_close(w, &rep);
  fc_test_wl_free(&t);

  printf("[fault] outage: %d writer transaction(s) in flight (pinned in %.0f ms); pg_ctl stop took %.0f ms; down "
         "%d ms; %d node attempts ended while down; queued while down: %llu; writer connected "
         "and caught up %.0f ms after the start; run %.0f ms\n",
         f.pinned, f.pin_ms, f.op_ms, f.outage_ms, f.completed_at_up - f.completed_at_fault,
         (unsigned long long)f.before_up.queue_depth, f.recovery_ms, o.ms);
  print_stats("outage", &rep);

  assert_int_equal(o.run.rc, 0);
  assert_int_equal(f.rc, 0);
  check_snapshots(&o, &f);
  assert_int_equal(o.run.status, FC_WORKFLOW_COMPLETED);
  assert_int_equal(f.before.retries + f.before.reconnects, 0);
  /* A batch was in flight (pinned) when the fault hit: it was retried. */
  assert_true(f.pinned >= 1);
  assert_true(rep.retries >= 1);
  assert_true(rep.reconnects >= 1);
  /* While the server was down: the workflow went on, the writer wrote
   * nothing and held what came in. */
  assert_true(f.completed_at_up > f.completed_at_fault);
  assert_int_equal(f.before_up.written, f.at_down.written);
  assert_true(f.before_up.queue_depth > 0);
  assert_int_equal(f.before_up.connected, 0);
  assert_int_equal(flush_rc, 0);
  fc_test_check_lossless(&rep, close_rc, &t);
  check_exact(db, o.run.wf_id, &t);
  assert_int_equal(fc_test_pg_drop_db(&g_pg, "fcfault_outage"), 0);
}

/* ---- 2b. down from the start: the workflow finishes on time ------------------------- */

static void test_outage_run_on_time(void **state) {
  char db[FC_TEST_PG_CONNINFO_LENGTH];
  fc_history_config_t cfg;
  fc_history_writer_t *w;
  fc_history_stats_t rep;
  fc_test_wl_t t;
  fault_t f;
  fc_test_wl_out_t o;
  uint64_t t0;
  int flush_rc, close_rc;
  double flush_ms, nodes_ms;
  (void)state;
  skip_without_own_server();

  fc_test_make_db(&g_pg, "fcfault_ontime", db, sizeof db);
  static const fc_test_wl_shape_t shape = {
      .n_nodes = 300,
      .async_every = 1,
      .flaky_every = 50,
      .delay_ms = 25,
      .max_parallel = 25,
  };
  fc_test_wl_build(&t, "fault-on-time", &shape);
  /* The nodes' own time: waves of max_parallel async nodes of delay_ms. */
  nodes_ms = (double)((t.n_async + t.s.max_parallel - 1) / t.s.max_parallel) * t.s.delay_ms;

  config_for(&cfg, db);
  w = fc_test_writer_new(&cfg);
  assert_int_equal(fc_test_wait_connected(w, CONNECTIONS, 10000), 0);

  memset(&f, 0, sizeof f);
  f.t = &t;
  f.w = w;
  f.mode = F_UP_AFTER;
  f.outage_ms = 4000;
  assert_int_equal(fc_test_pg_stop_only(&g_pg), 0);
  f.t_down_ns = now_ns();
  fc_test_wl_run(&t, w, "on-time", fault_main, &f, &o);

  t0 = now_ns();
  flush_rc = fc_history_writer_flush(w, 60000);
  flush_ms = ms_between(t0, now_ns());
  close_rc = fc_history_writer_close(w, &rep);
  fc_test_wl_free(&t);

  printf("[fault] on time: server down %d ms from before the run; run took %.0f ms for "
         "%.0f ms of node time; %llu records queued at the end of the run; backlog committed "
         "%.0f ms after the start call returned\n",
         f.outage_ms, o.ms, nodes_ms, (unsigned long long)o.at_end.queue_depth,
         ms_between(f.t_up_ns, t0) + flush_ms);
  print_stats("on time", &rep);

  assert_int_equal(o.run.rc, 0);
  assert_int_equal(f.rc, 0);
  check_snapshots(&o, &f);
  assert_int_equal(o.run.status, FC_WORKFLOW_COMPLETED);
  /* The server was down for the whole run ... */
  assert_true(o.run.t_end_ns < f.t_up_call_ns);
  /* ... which took about the nodes' own time, not the outage's. */
  assert_true(o.ms >= nodes_ms * 0.9);
  assert_true(o.ms < 2000.0);
  /* Everything of the run sat in the writer's queue at its end. */
  assert_int_equal(o.at_end.accepted, fc_test_wl_records(&t));
  assert_int_equal(o.at_end.written, 0);
  assert_int_equal(o.at_end.queue_depth, fc_test_wl_records(&t));
  assert_int_equal(flush_rc, 0);
  fc_test_check_lossless(&rep, close_rc, &t);
  check_exact(db, o.run.wf_id, &t);
  assert_int_equal(fc_test_pg_drop_db(&g_pg, "fcfault_ontime"), 0);
}

/* ---- 3. backends killed in a loop ----------------------------------------------------- */

static void test_kill_backends_loop(void **state) {
  char db[FC_TEST_PG_CONNINFO_LENGTH];
  fc_history_config_t cfg;
  fc_history_writer_t *w;
  fc_history_stats_t rep;
  fc_test_wl_t t;
  fault_t f;
  fc_test_wl_out_t o;
  int flush_rc, close_rc;
  (void)state;
  skip_without_own_server();

  fc_test_make_db(&g_pg, "fcfault_kill", db, sizeof db);
  static const fc_test_wl_shape_t shape = {
      .n_nodes = 20500,
      .async_every = 41, /* 500 async nodes spread over 20,000 sync no-ops */
      .flaky_every = 1000,
      .delay_ms = 40,
      .max_parallel = 20,
      .hold = {20000}, /* the last async nodes wait for a few effective kills */
  };
  fc_test_wl_build(&t, "fault-kill", &shape);

  config_for(&cfg, db);
  w = fc_test_writer_new(&cfg);
  assert_int_equal(fc_test_wait_connected(w, CONNECTIONS, 10000), 0);

  memset(&f, 0, sizeof f);
  f.t = &t;
  f.w = w;
  f.mode = F_KILL_LOOP;
  f.kill_every_ms = 50;
  f.kill_after_ms = 300;
  f.release_after_kills = 8;
  fc_test_wl_run(&t, w, "kill", fault_main, &f, &o);

  flush_rc = fc_history_writer_flush(w, 60000);
  close_rc = fc_history_writer_close(w, &rep);
  fc_test_wl_free(&t);

  printf("[fault] kill loop: %d kill rounds, %d of them terminated backends (%d writer "
         "backends in all); run %.0f ms\n",
         f.kills, f.effective_kills, f.killed_total, o.ms);
  print_stats("kill loop", &rep);

  assert_int_equal(o.run.rc, 0);
  assert_int_equal(f.rc, 0);
  check_snapshots(&o, &f);
  assert_int_equal(o.run.status, FC_WORKFLOW_COMPLETED);
  assert_true(f.effective_kills >= 8);
  /* Every killed backend was one of the writer's connections: each was
   * noticed and replaced. */
  assert_true(rep.reconnects >= (uint64_t)f.killed_total);
  assert_int_equal(flush_rc, 0);
  fc_test_check_lossless(&rep, close_rc, &t);
  check_exact(db, o.run.wf_id, &t);
  assert_int_equal(fc_test_pg_drop_db(&g_pg, "fcfault_kill"), 0);
}

/* ---- 4. a queue of 1,000 records through an outage ------------------------------------ */

/* What 4a and 4b share: a run that makes far more records while the
 * server is down (2.5 s, from the 200th record, a batch pinned in flight)
 * than the queue holds, under `policy`; then flush and close. */
typedef struct {
  char db[FC_TEST_PG_CONNINFO_LENGTH];
  fc_history_config_t cfg;
  fc_test_wl_t t;
  fault_t f;
  fc_test_wl_out_t o;
  fc_history_stats_t after_flush, rep;
  int flush_rc, close_rc;
} outage_run_t;

static void run_through_outage(outage_run_t *r, const char *db_name, const char *wf_name,
                               const char *label, fc_queue_policy_t policy) {
  fc_history_writer_t *w;
  fc_test_make_db(&g_pg, db_name, r->db, sizeof r->db);
  fc_test_wl_build(&r->t, wf_name, &outage_fills_queue);

  config_for(&r->cfg, r->db);
  /* Above the handler's block of 512 records (the unit of handover), so
   * the bound can be exact; far below what the run produces while down. */
  r->cfg.queue_capacity = 1000;
  r->cfg.policy = policy;
  w = fc_test_writer_new(&r->cfg);
  assert_int_equal(fc_test_wait_connected(w, CONNECTIONS, 10000), 0);

  memset(&r->f, 0, sizeof r->f);
  r->f.t = &r->t;
  r->f.w = w;
  r->f.mode = F_OUTAGE;
  r->f.db = r->db;
  r->f.pin_batch = 1;
  r->f.trigger_at = 200;
  r->f.outage_ms = 2500;
  r->f.busy_after_up = 1;
  fc_test_wl_run(&r->t, w, label, fault_main, &r->f, &r->o);

  r->flush_rc = fc_history_writer_flush(w, 60000);
  fc_history_writer_stats(w, &r->after_flush);
  r->close_rc = fc_history_writer_close(w, &r->rep);
  fc_test_wl_free(&r->t);
}

/* Prints the writer's figures, then what holds under either policy: the
 * run completed, a batch was pinned in flight at the stop and retried. */
static void check_outage_run(outage_run_t *r, const char *label) {
  print_stats(label, &r->rep);
  assert_int_equal(r->o.run.rc, 0);
  assert_int_equal(r->f.rc, 0);
  check_snapshots(&r->o, &r->f);
  assert_true(r->f.pinned >= 1);
  assert_true(r->rep.retries >= 1);
  assert_int_equal(r->o.run.status, FC_WORKFLOW_COMPLETED);
}

/* ---- 4a. block policy: the producer waits, nothing is lost --------------------------- */

static void test_block_policy_waits(void **state) {
  outage_run_t r;
  (void)state;
  skip_without_own_server();
  run_through_outage(&r, "fcfault_block", "fault-block", "block", FC_QUEUE_BLOCK);

  printf("[fault] block: pinned in %.0f ms; down %d ms; run %.0f ms, ended %.0f ms after the server start was "
         "called; queue high water %llu (capacity %zu)\n",
         r.f.pin_ms, r.f.outage_ms, r.o.ms, ms_between(r.f.t_up_call_ns, r.o.run.t_end_ns),
         (unsigned long long)r.rep.queue_high_water, r.cfg.queue_capacity);
  check_outage_run(&r, "block");
  /* The producer waited: far more records than the queue holds were made
   * after the server went down, so the run could only end after it came
   * back. */
  assert_true(r.o.run.t_end_ns > r.f.t_up_call_ns);
  assert_true(fc_test_wl_records(&r.t) - (int64_t)r.f.at_down.accepted > 2 * (int64_t)r.cfg.queue_capacity);
  /* Memory stayed bounded. */
  assert_true(r.rep.queue_high_water <= r.cfg.queue_capacity);
  assert_true(r.rep.queue_high_water >= r.cfg.queue_capacity / 2);
  assert_int_equal(r.flush_rc, 0);
  fc_test_check_lossless(&r.rep, r.close_rc, &r.t);
  check_exact(r.db, r.o.run.wf_id, &r.t);
  assert_int_equal(fc_test_pg_drop_db(&g_pg, "fcfault_block"), 0);
}

/* ---- 4b. drop policy: every loss counted, in the stats and in the database ------------ */

static int64_t losses_sum(const char *db, const char *kind, const char *reason) {
  return fc_test_pg_int(db,
                        "SELECT coalesce(sum(count), 0)::bigint FROM flowcore_writer_losses "
                        "WHERE kind = '%s' AND reason = '%s'",
                        kind, reason);
}

/* The exact accounting of a writer that dropped records, against the
 * database. With P_k the records of kind k the run produced:
 *   (1) every record handed over counts as accepted, also those dropped at
 *       the door (history.h):      accepted == sum_k P_k
 *   (2) after close nothing is queued and nothing was spooled, so
 *         accepted == written + spooled + dropped_total + queue_depth
 *       becomes                    accepted == written + dropped_total
 *   (3) per kind, the records the database holds are exactly those not
 *       dropped: a node row holds (input_data IS NOT NULL) + (status <>
 *       'running') records, the workflow row likewise, an error row one:
 *                                  db_k == P_k - sum_r dropped[k][r]
 *   (4) dropped_total == sum_k sum_r dropped[k][r]
 *   (5) the loss report in the database (flowcore_writer_losses) equals
 *       the stats per kind and reason, hence sum(count) == dropped_total. */
static void check_loss_accounting(const char *db, const char *wf, const fc_test_wl_t *t,
                                  const fc_history_stats_t *rep) {
  int64_t produced[FC_REC_KIND_COUNT], in_db[FC_REC_KIND_COUNT], sum = 0;
  int k, r;

  produced[FC_REC_WORKFLOW] = 2;
  produced[FC_REC_NODE] = 2 * (int64_t)(t->s.n_nodes + t->n_flaky);
  produced[FC_REC_ERROR] = t->n_flaky;
  in_db[FC_REC_WORKFLOW] = q_int(db,
                                 "SELECT count(*) FILTER (WHERE input_data IS NOT NULL) + "
                                 "count(*) FILTER (WHERE status <> 'running') "
                                 "FROM workflow_executions WHERE workflow_id = '%s'",
                                 wf);
  in_db[FC_REC_NODE] = q_int(db,
                             "SELECT count(*) FILTER (WHERE input_data IS NOT NULL) + "
                             "count(*) FILTER (WHERE status <> 'running') "
                             "FROM node_executions WHERE workflow_id = '%s'",
                             wf);
  in_db[FC_REC_ERROR] =
      q_int(db, "SELECT count(*) FROM execution_errors WHERE workflow_id = '%s'", wf);
  for (k = 0; k < FC_REC_KIND_COUNT; k++) {
    int64_t dropped_k = 0;
    for (r = 0; r < FC_DROP_REASON_COUNT; r++) {
      const char *kind = fc_record_kind_name((fc_record_kind_t)k);
      const char *reason = fc_drop_reason_name((fc_drop_reason_t)r);
      int64_t in_report = losses_sum(db, kind, reason);
      dropped_k += (int64_t)rep->dropped[k][r];
      sum += (int64_t)rep->dropped[k][r];
      if (in_report != (int64_t)rep->dropped[k][r])
        fail_msg("loss report for %s/%s: %lld in the database, %llu in the stats", kind, reason,
                 (long long)in_report, (unsigned long long)rep->dropped[k][r]);
    }
    if (in_db[k] != produced[k] - dropped_k)
      fail_msg("%s records: %lld in the database, expected %lld produced - %lld dropped",
               fc_record_kind_name((fc_record_kind_t)k), (long long)in_db[k], (long long)produced[k], (long long)dropped_k);
  }
  assert_int_equal(rep->accepted, fc_test_wl_records(t));
  assert_int_equal(rep->spooled, 0);
  assert_int_equal(rep->queue_depth, 0);
  assert_int_equal(rep->accepted, rep->written + rep->dropped_total);
  assert_int_equal(rep->dropped_total, (uint64_t)sum);
  assert_int_equal(
      fc_test_pg_int(db, "SELECT coalesce(sum(count), 0)::bigint FROM flowcore_writer_losses"),
      sum);
  /* Rows are still unique and no row went back to running after its end. */
  assert_int_equal(q_int(db,
                         "SELECT count(*) - count(DISTINCT (workflow_id, node_id, attempt)) "
                         "FROM node_executions WHERE workflow_id = '%s'",
                         wf),
                   0);
  assert_int_equal(q_int(db,
                         "SELECT count(*) FROM node_executions WHERE workflow_id = '%s' "
                         "AND status = 'running' AND completed_at IS NOT NULL",
                         wf),
                   0);
}

static void test_drop_policy_counts(void **state) {
  outage_run_t r;
  (void)state;
  skip_without_own_server();
  run_through_outage(&r, "fcfault_drop", "fault-drop", "drop", FC_QUEUE_DROP);

  printf("[fault] drop: pinned in %.0f ms; run %.0f ms, ended %.0f ms before the server start was called; "
         "dropped %llu of %lld records (node %llu, workflow %llu, error %llu)\n",
         r.f.pin_ms, r.o.ms, ms_between(r.o.run.t_end_ns, r.f.t_up_call_ns),
         (unsigned long long)r.rep.dropped_total,
         (long long)fc_test_wl_records(&r.t),
         (unsigned long long)r.rep.dropped[FC_REC_NODE][FC_DROP_QUEUE_FULL],
         (unsigned long long)r.rep.dropped[FC_REC_WORKFLOW][FC_DROP_QUEUE_FULL],
         (unsigned long long)r.rep.dropped[FC_REC_ERROR][FC_DROP_QUEUE_FULL]);
  check_outage_run(&r, "drop");
  /* The producer never waited: the run ended while the server was down. */
  assert_true(r.o.run.t_end_ns < r.f.t_up_call_ns);
  assert_true(r.rep.dropped_total > 0);
  assert_true(r.rep.queue_high_water <= r.cfg.queue_capacity);
  /* Only the policy dropped (no deadline: the server was back at close). */
  assert_int_equal(r.rep.dropped_total, r.rep.dropped[FC_REC_WORKFLOW][FC_DROP_QUEUE_FULL] +
                                          r.rep.dropped[FC_REC_NODE][FC_DROP_QUEUE_FULL] +
                                          r.rep.dropped[FC_REC_ERROR][FC_DROP_QUEUE_FULL]);
  assert_int_equal(r.flush_rc, 0);
  fc_test_check_invariant("drop, after flush", &r.after_flush);
  assert_int_equal(r.after_flush.queue_depth, 0);
  assert_int_not_equal(r.close_rc, 0); /* something was lost: close must say so */
  check_loss_accounting(r.db, r.o.run.wf_id, &r.t, &r.rep);
  assert_int_equal(fc_test_pg_drop_db(&g_pg, "fcfault_drop"), 0);
}

/* ---- 5. the shutdown deadline holds --------------------------------------------------- */

static void test_shutdown_deadline(void **state) {
  char db[FC_TEST_PG_CONNINFO_LENGTH];
  fc_history_config_t cfg;
  fc_history_writer_t *w;
  fc_history_stats_t rep, before_close;
  fc_test_wl_t t1, t2;
  fc_test_wl_out_t o1, o2;
  uint64_t t0;
  int flush_rc, close_rc, k;
  double close_ms;
  (void)state;
  skip_without_own_server();

  fc_test_make_db(&g_pg, "fcfault_deadline", db, sizeof db);
  static const fc_test_wl_shape_t shape1 = {
      .n_nodes = 1000,
      .async_every = 10,
      .flaky_every = 100,
      .delay_ms = 2,
      .max_parallel = 50,
  };
  fc_test_wl_build(&t1, "fault-deadline-1", &shape1);
  static const fc_test_wl_shape_t shape2 = {
      .n_nodes = 1500,
      .async_every = 10,
      .flaky_every = 50,
      .delay_ms = 2,
      .max_parallel = 50,
  };
  fc_test_wl_build(&t2, "fault-deadline-2", &shape2);

  config_for(&cfg, db);
  cfg.shutdown_deadline_ms = 500;
  w = fc_test_writer_new(&cfg);
  assert_int_equal(fc_test_wait_connected(w, CONNECTIONS, 10000), 0);

  /* Run 1 lands while the server is up. */
  fc_test_wl_run(&t1, w, "deadline-1", NULL, NULL, &o1);
  flush_rc = fc_history_writer_flush(w, 60000);
  assert_int_equal(o1.run.rc, 0);
  assert_int_equal(flush_rc, 0);

  /* Run 2 happens with the server down; then close must give up at the
   * deadline. */
  assert_int_equal(fc_test_pg_stop_only(&g_pg), 0);
  fc_test_wl_run(&t2, w, "deadline-2", NULL, NULL, &o2);
  fc_history_writer_stats(w, &before_close);
  t0 = now_ns();
  close_rc = fc_history_writer_close(w, &rep);
  close_ms = ms_between(t0, now_ns());
  assert_int_equal(fc_test_pg_start_again(&g_pg), 0);

  printf("[fault] deadline: close with the server down took %.0f ms (deadline %llu ms); "
         "dropped at the deadline: workflow %llu, node %llu, error %llu\n",
         close_ms, (unsigned long long)cfg.shutdown_deadline_ms,
         (unsigned long long)rep.dropped[FC_REC_WORKFLOW][FC_DROP_DEADLINE],
         (unsigned long long)rep.dropped[FC_REC_NODE][FC_DROP_DEADLINE],
         (unsigned long long)rep.dropped[FC_REC_ERROR][FC_DROP_DEADLINE]);
  print_stats("deadline", &rep);

  assert_int_equal(o2.run.rc, 0);
  assert_int_equal(o2.run.status, FC_WORKFLOW_COMPLETED);
  check_snapshots(&o1, NULL);
  check_snapshots(&o2, NULL);
  fc_test_check_invariant("before close", &before_close);
  assert_int_equal(close_rc, FC_ETIMEDOUT);
  assert_true(close_ms >= 450.0);
  assert_true(close_ms < 1500.0);
  /* Written: exactly run 1; dropped at the deadline: exactly run 2. */
  assert_int_equal(before_close.accepted, fc_test_wl_records(&t1) + fc_test_wl_records(&t2));
  assert_int_equal(rep.accepted, fc_test_wl_records(&t1) + fc_test_wl_records(&t2));
  assert_int_equal(rep.written, fc_test_wl_records(&t1));
  assert_int_equal(rep.dropped[FC_REC_WORKFLOW][FC_DROP_DEADLINE], 2);
  assert_int_equal(rep.dropped[FC_REC_NODE][FC_DROP_DEADLINE], 2 * (t2.s.n_nodes + t2.n_flaky));
  assert_int_equal(rep.dropped[FC_REC_ERROR][FC_DROP_DEADLINE], t2.n_flaky);
  for (k = 0; k < FC_REC_KIND_COUNT; k++) {
    assert_int_equal(rep.dropped[k][FC_DROP_QUEUE_FULL], 0);
    assert_int_equal(rep.dropped[k][FC_DROP_SPOOL_FULL], 0);
    assert_int_equal(rep.dropped[k][FC_DROP_REJECTED], 0);
  }
  assert_int_equal(rep.dropped_total, fc_test_wl_records(&t2));
  assert_int_equal(rep.accepted, rep.written + rep.dropped_total);

  /* The database: run 1 whole, nothing of run 2, and no loss report (the
   * server was unreachable when the writer closed). */
  assert_int_equal(q_int(db,
                         "SELECT count(*) FROM node_executions WHERE workflow_id = '%s' "
                         "AND status <> 'running'",
                         o1.run.wf_id),
                   t1.s.n_nodes + t1.n_flaky);
  assert_int_equal(q_int(db, "SELECT count(*) FROM workflow_executions WHERE workflow_id = '%s' "
                             "AND status = 'completed'",
                         o1.run.wf_id),
                   1);
  assert_int_equal(q_int(db, "SELECT count(*) FROM node_executions WHERE workflow_id = '%s'",
                         o2.run.wf_id),
                   0);
  assert_int_equal(q_int(db, "SELECT count(*) FROM workflow_executions WHERE workflow_id = '%s'",
                         o2.run.wf_id),
                   0);
  assert_int_equal(q_int(db, "SELECT count(*) FROM execution_errors WHERE workflow_id = '%s'",
                         o2.run.wf_id),
                   0);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM flowcore_writer_losses"), 0);
  fc_test_wl_free(&t1);
  fc_test_wl_free(&t2);
  assert_int_equal(fc_test_pg_drop_db(&g_pg, "fcfault_deadline"), 0);
}

/* ---- a protocol proxy that loses COMMIT acknowledgements ------------------------------
 *
 * Listens on a unix socket and forwards each connection to the server's
 * socket, framing the server's messages. When the server reports a
 * successful COMMIT (CommandComplete "COMMIT") and the policy says so, the
 * proxy closes both sides instead of passing it on: the transaction is
 * committed, but the writer sees its connection die during COMMIT and
 * cannot know. That is the case replays must survive: the same batch is
 * committed again.
 *
 * Policies: lose the acknowledgement of every `lose_every`-th COMMIT (at
 * most lose_max times), and/or of the first `lose_loss_reports` COMMITs of
 * transactions that inserted into flowcore_writer_losses. `stall` holds
 * the server's answers while set. The client must connect with
 * sslmode=disable (the proxy frames the server's stream from the start). */

typedef struct proxy_s proxy_t;

typedef struct pconn_s {
  proxy_t *p;
  int cfd, sfd;
  uv_thread_t up, down;
  atomic_int tx_has_losses;
  struct pconn_s *next;
} pconn_t;

struct proxy_s {
  char dir[64];
  char path[128];
  char upstream[FC_TEST_PG_PATH_LENGTH + 32];
  int lfd;
  uv_thread_t acceptor;
  atomic_int stop;
  atomic_int stall;
  int lose_every, lose_max, lose_loss_reports;
  uv_mutex_t mu;
  pconn_t *conns;
  /* counters, under mu */
  int connections, commits, acks_lost, loss_acks_lost, upstream_failures;
};

static int read_n(int fd, void *buf, size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t r = recv(fd, (char *)buf + off, n - off, 0);
    if (r > 0)
      off += (size_t)r;
    else if (r < 0 && errno == EINTR)
      continue;
    else
      return -1;
  }
  return 0;
}

static int write_n(int fd, const void *buf, size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t r = send(fd, (const char *)buf + off, n - off, MSG_NOSIGNAL);
    if (r > 0)
      off += (size_t)r;
    else if (r < 0 && errno == EINTR)
      continue;
    else
      return -1;
  }
  return 0;
}

static uint32_t be32(const unsigned char *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Reads one typed message (type, length, body) into *buf. Returns its total
 * size, or 0 at end of stream or on error. */
static size_t read_msg(int fd, char **buf, size_t *cap) {
  unsigned char hdr[5];
  uint32_t len;
  size_t total;
  if (read_n(fd, hdr, 5) != 0)
    return 0;
  len = be32(hdr + 1);
  if (len < 4 || len > (64u << 20))
    return 0;
  total = (size_t)len + 1;
  if (total + 1 > *cap) {
    char *nb = realloc(*buf, total + 1);
    if (nb == NULL)
      return 0;
    *buf = nb;
    *cap = total + 1;
  }
  memcpy(*buf, hdr, 5);
  if (read_n(fd, *buf + 5, total - 5) != 0)
    return 0;
  (*buf)[total] = '\0';
  return total;
}

static void pconn_cut(pconn_t *c) {
  shutdown(c->cfd, SHUT_RDWR);
  shutdown(c->sfd, SHUT_RDWR);
}

/* client -> server: the startup packet, then typed messages. */
static void proxy_up(void *arg) {
  pconn_t *c = arg;
  char *buf = NULL;
  size_t cap = 0, n;
  unsigned char lenb[4];
  uint32_t len;

  if (read_n(c->cfd, lenb, 4) != 0)
    goto out;
  len = be32(lenb);
  if (len < 8 || len > 10000)
    goto out;
  buf = malloc(len);
  if (buf == NULL)
    goto out;
  cap = len;
  memcpy(buf, lenb, 4);
  if (read_n(c->cfd, buf + 4, len - 4) != 0 || write_n(c->sfd, buf, len) != 0)
    goto out;
  while ((n = read_msg(c->cfd, &buf, &cap)) > 0) {
    if (buf[0] == 'Q' && memmem(buf + 5, n - 5, "flowcore_writer_losses", 22) != NULL)
      atomic_store(&c->tx_has_losses, 1);
    if (write_n(c->sfd, buf, n) != 0)
      break;
  }
out:
  free(buf);
  pconn_cut(c);
}

/* server -> client: typed messages; may lose a COMMIT's acknowledgement. */
static void proxy_down(void *arg) {
  pconn_t *c = arg;
  proxy_t *p = c->p;
  char *buf = NULL;
  size_t cap = 0, n;

  while ((n = read_msg(c->sfd, &buf, &cap)) > 0) {
    while (atomic_load(&p->stall) && !atomic_load(&p->stop))
      fc_test_sleep_ms(2);
    if (buf[0] == 'C') {
      int lose = 0;
      if (strcmp(buf + 5, "COMMIT") == 0) {
        int losses = atomic_load(&c->tx_has_losses);
        uv_mutex_lock(&p->mu);
        p->commits++;
        if (losses && p->loss_acks_lost < p->lose_loss_reports) {
          p->loss_acks_lost++;
          p->acks_lost++;
          lose = 1;
        } else if (p->lose_every > 0 && p->commits % p->lose_every == 0 &&
                   p->acks_lost < p->lose_max) {
          p->acks_lost++;
          lose = 1;
        }
        uv_mutex_unlock(&p->mu);
      }
      if (strcmp(buf + 5, "COMMIT") == 0 || strcmp(buf + 5, "ROLLBACK") == 0)
        atomic_store(&c->tx_has_losses, 0);
      if (lose)
        break; /* the transaction is committed; its acknowledgement is not sent */
    }
    if (write_n(c->cfd, buf, n) != 0)
      break;
  }
  free(buf);
  pconn_cut(c);
}

/* Fills a unix socket address; -1 if the path does not fit. */
static int unix_addr(struct sockaddr_un *sa, const char *path) {
  size_t n = strlen(path);
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (n >= sizeof sa->sun_path)
    return -1;
  memcpy(sa->sun_path, path, n + 1);
  return 0;
}

static int unix_connect(const char *path) {
  struct sockaddr_un sa;
  int fd;
  if (unix_addr(&sa, path) != 0)
    return -1;
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void proxy_accept_loop(void *arg) {
  proxy_t *p = arg;
  while (!atomic_load(&p->stop)) {
    struct pollfd pfd = {p->lfd, POLLIN, 0};
    pconn_t *c;
    int cfd, sfd;
    if (poll(&pfd, 1, 20) <= 0)
      continue;
    cfd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0)
      continue;
    sfd = unix_connect(p->upstream);
    c = sfd >= 0 ? calloc(1, sizeof *c) : NULL;
    if (c == NULL) {
      uv_mutex_lock(&p->mu);
      p->upstream_failures++;
      uv_mutex_unlock(&p->mu);
      if (sfd >= 0)
        close(sfd);
      close(cfd);
      continue;
    }
    c->p = p;
    c->cfd = cfd;
    c->sfd = sfd;
    atomic_init(&c->tx_has_losses, 0);
    uv_mutex_lock(&p->mu);
    c->next = p->conns;
    p->conns = c;
    p->connections++;
    uv_mutex_unlock(&p->mu);
    if (uv_thread_create(&c->up, proxy_up, c) != 0 ||
        uv_thread_create(&c->down, proxy_down, c) != 0)
      abort(); /* test infrastructure: no partial state to unwind */
  }
}

static void proxy_start(proxy_t *p) {
  struct sockaddr_un sa;
  memset(p, 0, sizeof *p);
  atomic_init(&p->stop, 0);
  atomic_init(&p->stall, 0);
  snprintf(p->dir, sizeof p->dir, "/tmp/fc-proxy-XXXXXX");
  assert_non_null(mkdtemp(p->dir));
  snprintf(p->path, sizeof p->path, "%s/.s.PGSQL.%d", p->dir, g_pg.port);
  snprintf(p->upstream, sizeof p->upstream, "%s/.s.PGSQL.%d", g_pg.sockdir, g_pg.port);
  uv_mutex_init(&p->mu);
  p->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(p->lfd >= 0);
  assert_int_equal(unix_addr(&sa, p->path), 0);
  assert_int_equal(bind(p->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(p->lfd, 64), 0);
  assert_int_equal(uv_thread_create(&p->acceptor, proxy_accept_loop, p), 0);
}

static void proxy_stop(proxy_t *p) {
  pconn_t *c;
  atomic_store(&p->stop, 1);
  uv_thread_join(&p->acceptor);
  close(p->lfd);
  while ((c = p->conns) != NULL) {
    p->conns = c->next;
    pconn_cut(c);
    uv_thread_join(&c->up);
    uv_thread_join(&c->down);
    close(c->cfd);
    close(c->sfd);
    free(c);
  }
  unlink(p->path);
  rmdir(p->dir);
  uv_mutex_destroy(&p->mu);
}

/* The writer's conninfo through the proxy, for database `dbname`. */
static void proxy_conninfo(const proxy_t *p, const char *dbname, char *out, size_t size) {
  snprintf(out, size,
           "host=%s port=%d dbname=%s user=postgres sslmode=disable gssencmode=disable", p->dir,
           g_pg.port, dbname);
}

/* ---- 6. lost COMMIT acknowledgements: every batch committed again ----------------------- */

static void test_lost_commit_acks_replayed(void **state) {
  char db[FC_TEST_PG_CONNINFO_LENGTH], via[FC_TEST_PG_CONNINFO_LENGTH];
  fc_history_config_t cfg;
  fc_history_writer_t *w;
  fc_history_stats_t rep;
  proxy_t p;
  fc_test_wl_t t;
  fc_test_wl_out_t o;
  int flush_rc, close_rc;
  (void)state;
  skip_without_own_server();

  fc_test_make_db(&g_pg, "fcfault_ack", db, sizeof db);
  static const fc_test_wl_shape_t shape = {
      .n_nodes = 3000,
      .async_every = 3,
      .flaky_every = 100,
      .delay_ms = 5,
      .max_parallel = 50,
  };
  fc_test_wl_build(&t, "fault-lost-ack", &shape);

  proxy_start(&p);
  p.lose_every = 2; /* every second COMMIT is performed but not acknowledged */
  p.lose_max = 100000;
  proxy_conninfo(&p, "fcfault_ack", via, sizeof via);
  config_for(&cfg, via);
  cfg.batch_size = 100;
  w = fc_test_writer_new(&cfg);
  if (fc_test_wait_connected(w, CONNECTIONS, 10000) != 0) {
    fc_history_writer_close(w, NULL);
    proxy_stop(&p);
    fail_msg("the writer did not connect through the proxy");
  }

  fc_test_wl_run(&t, w, "lost-ack", NULL, NULL, &o);
  flush_rc = fc_history_writer_flush(w, 60000);
  close_rc = fc_history_writer_close(w, &rep);
  proxy_stop(&p);
  fc_test_wl_free(&t);

  printf("[fault] lost acks: %d COMMITs, %d acknowledgements lost (the batch was committed, "
         "the writer could not know), %d connections; run %.0f ms\n",
         p.commits, p.acks_lost, p.connections, o.ms);
  print_stats("lost acks", &rep);

  assert_int_equal(o.run.rc, 0);
  assert_int_equal(o.run.status, FC_WORKFLOW_COMPLETED);
  assert_int_equal(p.upstream_failures, 0);
  check_snapshots(&o, NULL);
  assert_true(p.acks_lost >= 10);
  /* Each lost acknowledgement made exactly one batch attempt fail and be
   * retried, or the writer's partition check (flowcore_ensure_partitions,
   * its own transaction) fail; each acknowledged COMMIT is one batch or
   * one successful partition check. */
  assert_true(rep.partition_checks >= 1);
  assert_int_equal(rep.retries + rep.partition_failures, p.acks_lost);
  assert_int_equal(rep.batches + (rep.partition_checks - rep.partition_failures),
                   p.commits - p.acks_lost);
  assert_int_equal(flush_rc, 0);
  /* Each record counted written once, though committed up to twice. */
  fc_test_check_lossless(&rep, close_rc, &t);
  check_exact(db, o.run.wf_id, &t);
  assert_int_equal(fc_test_pg_drop_db(&g_pg, "fcfault_ack"), 0);
}

/* ---- 7. a loss report whose acknowledgement is lost is not counted twice ----------------
 *
 * flowcore_writer_losses is the one table whose key (loss_id) a replay does
 * not reproduce unless the writer keeps the ids of a report until it is
 * acknowledged (migrations/0001: "so a replayed report is not counted
 * twice"). Here the COMMIT carrying the first loss report is performed but
 * its acknowledgement lost; the sum of the report must still equal the
 * stats. */

static void test_loss_report_replay(void **state) {
  char db[FC_TEST_PG_CONNINFO_LENGTH], via[FC_TEST_PG_CONNINFO_LENGTH];
  fc_history_config_t cfg;
  fc_history_writer_t *w;
  fc_history_stats_t rep;
  proxy_t p;
  fc_test_wl_t t;
  fc_test_wl_out_t o;
  int flush_rc, close_rc;
  (void)state;
  skip_without_own_server();

  fc_test_make_db(&g_pg, "fcfault_lossrep", db, sizeof db);
  static const fc_test_wl_shape_t shape = {
      .n_nodes = 4000,
      .flaky_every = 100,
      .max_parallel = 0,
  };
  fc_test_wl_build(&t, "fault-loss-report", &shape);

  proxy_start(&p);
  p.lose_loss_reports = 1; /* the first COMMIT carrying a loss report */
  proxy_conninfo(&p, "fcfault_lossrep", via, sizeof via);
  config_for(&cfg, via);
  cfg.queue_capacity = 1000;
  cfg.policy = FC_QUEUE_DROP;
  w = fc_test_writer_new(&cfg);
  if (fc_test_wait_connected(w, CONNECTIONS, 10000) != 0) {
    fc_history_writer_close(w, NULL);
    proxy_stop(&p);
    fail_msg("the writer did not connect through the proxy");
  }

  /* The server's answers are held during the run: the queue fills and the
   * drop policy sheds (deterministically: ~8,000 records, capacity 1,000). */
  atomic_store(&p.stall, 1);
  fc_test_wl_run(&t, w, "loss-report", NULL, NULL, &o);
  atomic_store(&p.stall, 0);
  flush_rc = fc_history_writer_flush(w, 60000);
  close_rc = fc_history_writer_close(w, &rep);
  proxy_stop(&p);
  fc_test_wl_free(&t);

  printf("[fault] loss report: dropped %llu; %d loss-report COMMIT acknowledgements lost; "
         "loss rows in the database: %lld, sum(count) %lld\n",
         (unsigned long long)rep.dropped_total, p.loss_acks_lost,
         (long long)fc_test_pg_int(db, "SELECT count(*) FROM flowcore_writer_losses"),
         (long long)fc_test_pg_int(db, "SELECT coalesce(sum(count), 0)::bigint FROM "
                                       "flowcore_writer_losses"));
  print_stats("loss report", &rep);

  assert_int_equal(o.run.rc, 0);
  assert_int_equal(o.run.status, FC_WORKFLOW_COMPLETED);
  check_snapshots(&o, NULL);
  assert_true(rep.dropped_total > 0);
  assert_int_equal(flush_rc, 0);
  assert_int_not_equal(close_rc, 0);
  /* The fault happened: a COMMIT with the loss report was performed and its
   * acknowledgement lost. */
  assert_int_equal(p.loss_acks_lost, 1);
  check_loss_accounting(db, o.run.wf_id, &t, &rep);
  assert_int_equal(fc_test_pg_drop_db(&g_pg, "fcfault_lossrep"), 0);
}

/* ---- main ------------------------------------------------------------------------------- */

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
      cmocka_unit_test_teardown(test_restart_mid_run, ensure_server_up),
      cmocka_unit_test_teardown(test_outage_mid_run, ensure_server_up),
      cmocka_unit_test_teardown(test_outage_run_on_time, ensure_server_up),
      cmocka_unit_test_teardown(test_kill_backends_loop, ensure_server_up),
      cmocka_unit_test_teardown(test_block_policy_waits, ensure_server_up),
      cmocka_unit_test_teardown(test_drop_policy_counts, ensure_server_up),
      cmocka_unit_test_teardown(test_shutdown_deadline, ensure_server_up),
      cmocka_unit_test_teardown(test_lost_commit_acks_replayed, ensure_server_up),
      cmocka_unit_test_teardown(test_loss_report_replay, ensure_server_up),
  };
  return cmocka_run_group_tests_name("fault_history", tests, group_setup, group_teardown);
}

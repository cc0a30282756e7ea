/* Server-side faults of the history writer (issue "Reliability", item 2):
 * the PostgreSQL server itself misbehaves while workflows run with the
 * database handler attached, and afterwards the database and the writer's
 * report must agree exactly.
 *
 *   postmaster_sigkill      kill -9 of the postmaster mid-run (a writer
 *                           transaction pinned in flight), its children
 *                           left to die on their own, then pg_ctl start
 *                           (crash recovery): every record once.
 *   unreachable_at_start    the server is down when the writer is made and
 *                           comes up 10 s later; the run does not wait for
 *                           it; then flush returns 0 and the rows are exact.
 *   stall_table_lock        the server accepts the writer's statements and
 *                           then stalls them: ACCESS EXCLUSIVE lock held by
 *                           another session; close keeps its 1 s deadline.
 *   stall_table_lock_check_interval
 *                           the same with client_connection_check_interval
 *                           set for the database (what changes on the
 *                           server side).
 *   stall_sigstop           the writer's backends are SIGSTOPped; close
 *                           keeps its deadline; SIGCONT afterwards.
 *   stall_sigstop_spool     the same under the spool policy: the stalled
 *                           records are spooled at the deadline and a new
 *                           writer on the same directory replays them.
 *   stall_in_commit         a deferred trigger makes COMMIT itself wait on
 *                           an advisory lock: the writer gives up on a batch
 *                           whose COMMIT the server already has.
 *
 * Every test uses a fresh database on one server that the group setup
 * starts; reconnect backoff is 20..300 ms. The workload (sync, async and
 * flaky nodes; async nodes from hold[0] wait for release level 1, from
 * hold[1] for level 2, so a test can stop the flow of records, put a fault
 * in place, and let records come again) is tests/support/fault_workload.h.
 *
 * What "exact" means here. A run emits 2 workflow records, 2 records per
 * node attempt (start, end) and 1 per failed attempt (error). A node or
 * workflow row holds its start record when input_data IS NOT NULL and its
 * end record when status <> 'running'; an error row is one record. So the
 * records present in the database can be counted (db_records) and compared
 * with the report (written, spooled, dropped).
 *
 * Findings (PostgreSQL 15, default settings, 2 cores; the numbers are
 * printed with a "[server]" prefix on every run):
 *  - kill -9 of the postmaster: every child (the writer's backends, ours,
 *    checkpointer, ...) exits on its own within 10-20 ms (postmaster-death
 *    detection); none lingered in any run, so nothing had to be killed by
 *    hand. The postmaster itself stays a zombie until its parent (init, as
 *    pg_ctl has exited) reaps it, and until then PostgreSQL refuses to
 *    start ("lock file postmaster.pid already exists": a zombie's pid
 *    answers kill(pid, 0)). Here init reaps within 1-2 s; the test waits
 *    for that (and would remove the stale postmaster.pid after 15 s). Then
 *    pg_ctl start performs crash recovery ("database system was not
 *    properly shut down; automatic recovery in progress") in 0.3-3 s, and
 *    the writer is connected and caught up 100-250 ms after pg_ctl returns.
 *    Nothing lost, nothing twice; the pinned batch was retried.
 *  - Unreachable at start: the run takes its own ~120 ms; the writer keeps
 *    trying (about 100 failed connection attempts in 10 s, all counted in
 *    stats.reconnects) and commits the backlog 30-200 ms after pg_ctl
 *    start returns.
 *  - A batch the writer abandons at the shutdown deadline is NOT
 *    necessarily uncommitted. The writer sends its statements one at a time
 *    and COMMIT only after every other statement of the batch succeeded,
 *    and at the deadline it just closes the socket (PQfinish). The server
 *    does not notice the closed socket while a backend waits on a lock
 *    (client_connection_check_interval is 0 by default): the abandoned
 *    backend stays, waiting, after close returned. Then:
 *      * if it waits on a statement before COMMIT (table lock), it resumes
 *        when the lock is released, fails on the closed socket and rolls
 *        back (10-20 ms after the release): nothing of the abandoned batch
 *        is committed (stall_table_lock asserts db_records == written);
 *      * if COMMIT was already sent (stall_in_commit; or a SIGSTOPped
 *        backend with COMMIT in its socket buffer, seen in some
 *        stall_sigstop runs: e.g. 336 of 776 records dropped at the
 *        deadline were committed after SIGCONT), the transaction commits
 *        when the backend resumes, after the writer reported those records
 *        as dropped(deadline) (stall_in_commit asserts db_records > written:
 *        typically ~670 of ~2300 "dropped" records end up committed).
 *    So "dropped at the deadline" means "not known to be committed": the
 *    honest invariant, asserted by every stall test, is
 *        written <= db_records <= written + dropped[*][deadline]
 *    with no duplicate rows. With client_connection_check_interval set
 *    (stall_table_lock_check_interval, 100 ms) the server notices the
 *    closed socket during the lock wait and ends the abandoned backends
 *    within about one interval, while the lock is still held; that cannot
 *    help a COMMIT the server already has.
 *  - Under the spool policy the abandoned records are spooled instead
 *    (close returns 0, not FC_ETIMEDOUT), so a batch that did commit after
 *    all is replayed over its own rows: the upserts make that harmless
 *    (stall_sigstop_spool: exact rows, also in runs where a few hundred
 *    spooled records had been committed by the resumed backend).
 *  - The loss report of deadline drops never reaches the database (the
 *    writer is stalled until it closes, and no later process knows of
 *    them): the report returned by close is the only account.
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "fc_test.h"
#include "fault_workload.h"
#include "history_fixture.h"
#include "pg_server.h"

#include <libpq-fe.h>

#define NCONN 2 /* writer connections */
#define STALL_DEADLINE_MS 1000
#define CLOSE_LIMIT_MS 2500.0 /* the deadline plus a margin for a busy machine */
#define MAX_PIDS 64

static fc_test_pg_t g_pg;

/* State the per-test teardown must undo whatever happened in the test. */
static pid_t g_stopped[MAX_PIDS]; /* SIGSTOPped backends, resumed by teardown */
static int g_nstopped;
static PGconn *g_ctl; /* a session holding a lock */
static char g_spool[64];

/* ---- time ----------------------------------------------------------------- */

static uint64_t now_ns(void) { return uv_hrtime(); }
static double ms_between(uint64_t a, uint64_t b) { return (double)(int64_t)(b - a) / 1e6; }
static double ms_since(uint64_t a) { return ms_between(a, now_ns()); }

/* ---- processes -------------------------------------------------------------- */

/* Reads state, parent and start time of a process from /proc. Returns 0, or
 * -1 when there is no such process. */
static int proc_stat(pid_t pid, char *state, pid_t *ppid, unsigned long long *start) {
  char path[64], buf[2048];
  const char *p;
  FILE *f;
  size_t n;
  int pp;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  f = fopen(path, "r");
  if (f == NULL)
    return -1;
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  p = strrchr(buf, ')'); /* the command name may hold spaces and parens */
  if (p == NULL)
    return -1;
  /* fields 3 (state), 4 (ppid), 5..21 skipped, 22 (starttime) */
  if (sscanf(p + 1,
             " %c %d %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu",
             state, &pp, start) != 3)
    return -1;
  *ppid = pp;
  return 0;
}

/* The process that had start time `start` still runs (a zombie does not:
 * it holds no memory, no shared memory attachment, no socket). */
static int proc_alive(pid_t pid, unsigned long long start) {
  char st;
  pid_t pp;
  unsigned long long s;
  if (proc_stat(pid, &st, &pp, &s) != 0)
    return 0;
  return s == start && st != 'Z' && st != 'X' && st != 'x';
}

/* The children of `parent`, with their start times. */
static int proc_children(pid_t parent, pid_t *pids, unsigned long long *starts, int max) {
  DIR *d = opendir("/proc");
  struct dirent *de;
  int n = 0;
  if (d == NULL)
    return -1;
  while ((de = readdir(d)) != NULL && n < max) {
    char *end, st;
    long v = strtol(de->d_name, &end, 10);
    pid_t pp;
    unsigned long long s;
    if (end == de->d_name || *end != '\0' || v <= 0)
      continue;
    if (proc_stat((pid_t)v, &st, &pp, &s) == 0 && pp == parent && st != 'Z') {
      pids[n] = (pid_t)v;
      starts[n] = s;
      n++;
    }
  }
  closedir(d);
  return n;
}

static pid_t postmaster_pid(void) {
  char path[FC_TEST_PG_PATH_LENGTH + 32];
  FILE *f;
  long pid = -1;
  snprintf(path, sizeof path, "%s/postmaster.pid", g_pg.datadir);
  f = fopen(path, "r");
  if (f == NULL)
    return -1;
  if (fscanf(f, "%ld", &pid) != 1)
    pid = -1;
  fclose(f);
  return (pid_t)pid;
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* 1 if `needle` occurs in the file after byte `from`. */
static int file_has_after(const char *path, long from, const char *needle) {
  FILE *f = fopen(path, "r");
  char *buf;
  long size = file_size(path);
  size_t n;
  int found;
  if (f == NULL || size < 0 || from < 0 || from > size) {
    if (f != NULL)
      fclose(f);
    return 0;
  }
  buf = malloc((size_t)(size - from) + 1);
  if (buf == NULL || fseek(f, from, SEEK_SET) != 0) {
    free(buf);
    fclose(f);
    return 0;
  }
  n = fread(buf, 1, (size_t)(size - from), f);
  fclose(f);
  buf[n] = '\0';
  found = strstr(buf, needle) != NULL;
  free(buf);
  return found;
}

/* ---- database helpers ------------------------------------------------------------ */

static void quiet_notice(void *arg, const char *msg) {
  (void)arg;
  (void)msg;
}

static PGconn *connect_quiet(const char *conninfo) {
  PGconn *c = PQconnectdb(conninfo);
  if (c != NULL && PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "[server] connect: %s\n", PQerrorMessage(c));
    PQfinish(c);
    return NULL;
  }
  if (c != NULL)
    PQsetNoticeProcessor(c, quiet_notice, NULL);
  return c;
}

static int exec_ok(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  ExecStatusType s = PQresultStatus(r);
  int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
  if (!ok)
    fprintf(stderr, "[server] %s: %s\n", sql, PQerrorMessage(c));
  PQclear(r);
  return ok ? 0 : -1;
}

/* The pids of the client backends connected to the database of `db`, other
 * than the one asking and than `except` (0: none), that match `cond` (SQL,
 * may be NULL). Returns how many, or -1. */
static int backends(const char *db, pid_t except, const char *cond, pid_t *out, int max) {
  char sql[1024];
  PGconn *c = connect_quiet(db);
  PGresult *r;
  int n, i;
  if (c == NULL)
    return -1;
  snprintf(sql, sizeof sql,
           "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
           "AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND pid <> %d%s%s "
           "ORDER BY pid",
           (int)except, cond != NULL ? " AND " : "", cond != NULL ? cond : "");
  r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    fprintf(stderr, "[server] backends: %s\n", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return -1;
  }
  n = PQntuples(r);
  for (i = 0; out != NULL && i < n && i < max; i++)
    out[i] = (pid_t)atoi(PQgetvalue(r, i, 0));
  PQclear(r);
  PQfinish(c);
  return n;
}

/* Waits until `want` backends match (>= want, or == 0 when want is 0).
 * Returns the last count, or -1. */
static int wait_backends(const char *db, pid_t except, const char *cond, int want, int timeout_ms) {
  uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ULL;
  int n;
  for (;;) {
    n = backends(db, except, cond, NULL, 0);
    if (n < 0 || (want == 0 ? n == 0 : n >= want) || now_ns() > end)
      return n;
    fc_test_sleep_ms(5);
  }
}

/* ---- the writer ------------------------------------------------------------------ */

static void cfg_for(fc_history_config_t *cfg, const char *db) {
  fc_history_config_init(cfg);
  cfg->conninfo = db;
  cfg->reconnect_min_ms = 20;
  cfg->reconnect_max_ms = 300;
  cfg->batch_size = 200; /* many transactions: faults meet some in flight */
  cfg->flush_interval_ms = 10;
  cfg->connections = NCONN;
}

/* Records given up at the deadline: never sent (deadline) plus those of a
 * transaction sent but not confirmed (unconfirmed). */
static uint64_t deadline_drops(const fc_history_stats_t *st) {
  uint64_t n = 0;
  int k;
  for (k = 0; k < FC_REC_KIND_COUNT; k++)
    n += st->dropped[k][FC_DROP_DEADLINE] + st->dropped[k][FC_DROP_UNCONFIRMED];
  return n;
}

static uint64_t unconfirmed_drops(const fc_history_stats_t *st) {
  uint64_t n = 0;
  int k;
  for (k = 0; k < FC_REC_KIND_COUNT; k++)
    n += st->dropped[k][FC_DROP_UNCONFIRMED];
  return n;
}

static void print_stats(const char *label, const fc_history_stats_t *st) {
  printf("[server] %s: accepted=%llu written=%llu spooled=%llu replayed=%llu dropped=%llu "
         "(deadline %llu) batches=%llu retries=%llu reconnects=%llu high_water=%llu "
         "last_error=\"%s\"\n",
         label, (unsigned long long)st->accepted, (unsigned long long)st->written,
         (unsigned long long)st->spooled, (unsigned long long)st->replayed,
         (unsigned long long)st->dropped_total, (unsigned long long)deadline_drops(st),
         (unsigned long long)st->batches, (unsigned long long)st->retries,
         (unsigned long long)st->reconnects, (unsigned long long)st->queue_high_water,
         st->last_error);
  fflush(stdout);
}

/* ---- checks against the database ------------------------------------------------------- */

/* ---- 1. kill -9 of the postmaster mid-run ------------------------------------------------- */

typedef struct {
  fc_test_wl_t *t;
  fc_history_writer_t *w;
  const char *db;
  int trigger_at;
  int down_ms;
  /* results */
  int rc;
  char why[256];
  int pinned;
  fc_history_stats_t before;
  pid_t pm;
  int nchildren, lingered;
  double children_gone_ms; /* kill -> the postmaster and all children gone */
  double reaped_ms;        /* kill -> the postmaster's zombie reaped */
  int pidfile_removed;
  double start_ms;    /* pg_ctl start (with crash recovery) */
  double recovery_ms; /* pg_ctl start returned -> writer connected and caught up */
  int ended_at_kill, ended_at_up;
  int crash_recovery_logged;
} kill9_t;

static void kill9_fail(kill9_t *f, const char *why) {
  if (f->rc == 0)
    snprintf(f->why, sizeof f->why, "%s", why);
  f->rc = -1;
}

/* A transaction of ours holds a lock every batch needs (SHARE ROW EXCLUSIVE
 * conflicts with the ROW EXCLUSIVE of COPY and INSERT); held nodes are let
 * go so that records come, and we wait until a writer transaction waits on
 * the lock. The fault then hits a transaction in flight. */
static PGconn *pin_batch(kill9_t *f) {
  PGconn *c = connect_quiet(f->db);
  if (c == NULL || exec_ok(c, "BEGIN") != 0 ||
      exec_ok(c, "LOCK TABLE node_executions IN SHARE ROW EXCLUSIVE MODE") != 0) {
    kill9_fail(f, "pin: cannot take the lock");
    return c;
  }
  fc_test_wl_release(f->t, 1);
  f->pinned = wait_backends(f->db, PQbackendPID(c), "wait_event_type = 'Lock'", 1, 10000);
  if (f->pinned < 1)
    kill9_fail(f, "pin: no writer transaction waited on the lock within 10 s");
  return c;
}

static void kill9_main(void *arg) {
  kill9_t *f = arg;
  pid_t kids[MAX_PIDS];
  unsigned long long kid_start[MAX_PIDS], pm_start = 0, pm_start_now = 0;
  PGconn *pin;
  uint64_t t_kill, t0, end;
  fc_history_stats_t st;
  char state;
  pid_t pp;
  long log_off;
  int i, alive;

  fc_test_wl_wait_ended(f->t, f->trigger_at);
  pin = pin_batch(f);
  fc_history_writer_stats(f->w, &f->before);
  f->pm = postmaster_pid();
  if (f->pm <= 0 || proc_stat(f->pm, &state, &pp, &pm_start) != 0) {
    kill9_fail(f, "cannot find the postmaster");
    PQfinish(pin);
    fc_test_wl_release(f->t, 2);
    return;
  }
  f->nchildren = proc_children(f->pm, kids, kid_start, MAX_PIDS);
  log_off = file_size(g_pg.logfile);
  f->ended_at_kill = atomic_load(&f->t->ended);

  t_kill = now_ns();
  if (kill(f->pm, SIGKILL) != 0) {
    kill9_fail(f, "kill -9 of the postmaster failed");
    PQfinish(pin);
    fc_test_wl_release(f->t, 2);
    return;
  }
  g_pg.running = 0; /* the fixture's view: down, start_again may start it */
  PQfinish(pin);    /* its backend dies with the postmaster */

  /* What happens to the children: they are left alone for 10 s. */
  end = t_kill + 10ULL * 1000000000ULL;
  do {
    alive = proc_alive(f->pm, pm_start);
    for (i = 0; i < f->nchildren; i++)
      alive += proc_alive(kids[i], kid_start[i]);
    if (alive == 0)
      break;
    fc_test_sleep_ms(1);
  } while (now_ns() < end);
  f->children_gone_ms = ms_since(t_kill);
  f->lingered = alive;
  if (alive > 0) {
    /* They would keep the old shared memory attached and the new server
     * from starting: finish them. */
    for (i = 0; i < f->nchildren; i++)
      if (proc_alive(kids[i], kid_start[i]))
        kill(kids[i], SIGKILL);
    fc_test_sleep_ms(500);
  }
  /* The dead postmaster stays a zombie until its parent (init: pg_ctl has
   * exited long ago) reaps it, and PostgreSQL refuses to start while the
   * pid in postmaster.pid answers kill(pid, 0), which a zombie does
   * ("lock file postmaster.pid already exists"). Wait for the reaping; an
   * init that never reaps gets the stale lock file removed, as the
   * server's hint says an administrator would. */
  end = t_kill + 15ULL * 1000000000ULL;
  while (proc_stat(f->pm, &state, &pp, &pm_start_now) == 0 && pm_start_now == pm_start &&
         now_ns() < end)
    fc_test_sleep_ms(5);
  f->reaped_ms = ms_since(t_kill);
  if (proc_stat(f->pm, &state, &pp, &pm_start_now) == 0 && pm_start_now == pm_start) {
    char path[FC_TEST_PG_PATH_LENGTH + 32];
    snprintf(path, sizeof path, "%s/postmaster.pid", g_pg.datadir);
    f->pidfile_removed = unlink(path) == 0;
  }

  /* The rest of the run happens while the server is down. */
  fc_test_wl_release(f->t, 2);
  fc_test_sleep_ms(f->down_ms);
  f->ended_at_up = atomic_load(&f->t->ended);
  t0 = now_ns();
  if (fc_test_pg_start_again(&g_pg) != 0) {
    kill9_fail(f, "pg_ctl start after the crash failed");
    return;
  }
  f->start_ms = ms_since(t0);
  f->crash_recovery_logged =
      file_has_after(g_pg.logfile, log_off, "database system was not properly shut down");

  t0 = now_ns();
  end = t0 + 30ULL * 1000000000ULL;
  for (;;) {
    fc_history_writer_stats(f->w, &st);
    if (st.connected == NCONN && st.queue_depth == 0)
      break;
    if (now_ns() > end) {
      kill9_fail(f, "the writer did not catch up within 30 s of the restart");
      break;
    }
    fc_test_sleep_ms(2);
  }
  f->recovery_ms = ms_since(t0);
}

static void test_postmaster_sigkill(void **state) {
  char db[FC_TEST_PG_CONNINFO_LENGTH];
  fc_history_config_t cfg;
  fc_history_writer_t *w;
  fc_history_stats_t rep;
  fc_test_wl_t t;
  fc_test_wl_out_t o;
  kill9_t f;
  int flush_rc, close_rc;
  (void)state;
  if (g_pg.external)
    skip();

  fc_test_make_db(&g_pg, "fcsrv_kill9", db, sizeof db);
  static const fc_test_wl_shape_t shape = {
      .n_nodes = 2000,
      .async_every = 1,
      .flaky_every = 100,
      .delay_ms = 3,
      .max_parallel = 50,
      .hold = {
          800, /* let go once the lock is held: records pile up on it */
          1400, /* let go once the server is down */
      },
  };
  fc_test_wl_build(&t, "server-kill9", &shape);

  cfg_for(&cfg, db);
  w = fc_test_writer_new(&cfg);
  assert_int_equal(fc_test_wait_connected(w, NCONN, 10000), 0);

  memset(&f, 0, sizeof f);
  f.t = &t;
  f.w = w;
  f.db = db;
  f.trigger_at = 300;
  f.down_ms = 300;
  fc_test_wl_run(&t, w, "kill9", kill9_main, &f, &o);

  flush_rc = fc_history_writer_flush(w, 60000);
  close_rc = fc_history_writer_close(w, &rep);

  printf("[server] kill -9 postmaster %d: %d writer transaction(s) pinned in flight; %d children; "
         "postmaster and children gone %.1f ms after the kill, %d lingered (killed by the "
         "test); the postmaster's zombie reaped after %.0f ms%s; pg_ctl start with crash "
         "recovery %.0f ms (recovery logged: %s); writer connected and caught up %.0f ms after "
         "pg_ctl returned; %d node attempts ended while the server was down; run %.0f ms\n",
         (int)f.pm, f.pinned, f.nchildren, f.children_gone_ms, f.lingered, f.reaped_ms,
         f.pidfile_removed ? " (never: stale postmaster.pid removed)" : "", f.start_ms,
         f.crash_recovery_logged ? "yes" : "no", f.recovery_ms, f.ended_at_up - f.ended_at_kill,
         o.ms);
  print_stats("kill9", &rep);

  if (f.rc != 0)
    fail_msg("fault thread: %s", f.why);
  assert_int_equal(o.run.rc, 0);
  assert_int_equal(o.run.status, FC_WORKFLOW_COMPLETED);
  fc_test_check_invariant("at the end of the run", &o.at_end);
  fc_test_check_invariant("before the kill", &f.before);
  /* The fault hit this writer, and nothing else did before. */
  assert_int_equal(f.before.retries + f.before.reconnects, 0);
  assert_true(f.pinned >= 1);
  assert_true(f.nchildren >= NCONN + 1); /* the writer's backends and ours at least */
  assert_true(f.crash_recovery_logged);
  /* The pinned batch was lost with its backend and sent again; both
   * connections were lost and made again. */
  assert_true(rep.retries >= 1);
  assert_true(rep.reconnects >= NCONN);
  /* The workflow went on while the server was down. */
  assert_true(f.ended_at_up > f.ended_at_kill);
  assert_int_equal(flush_rc, 0);
  fc_test_check_lossless(&rep, close_rc, &t);
  fc_test_wl_check_exact(db, o.run.wf_id, &t);
  fc_test_wl_free(&t);
  assert_int_equal(fc_test_pg_drop_db(&g_pg, "fcsrv_kill9"), 0);
}

/* ---- 2. unreachable at start, reachable 10 s later ---------------------------------------- */

typedef struct {
  fc_history_writer_t *w;
  uint64_t t_down, t_up_call, t_up;
  int up_after_ms;
  int rc;
  fc_history_stats_t before_up; /* just before the server is started */
  uv_thread_t thread;
} late_t;

static void late_main(void *arg) {
  late_t *f = arg;
  uint64_t at = f->t_down + (uint64_t)f->up_after_ms * 1000000ULL;
  while (now_ns() < at)
    fc_test_sleep_ms(5);
  fc_history_writer_stats(f->w, &f->before_up);
  f->t_up_call = now_ns();
  f->rc = fc_test_pg_start_again(&g_pg);
  f->t_up = now_ns();
}

static void test_unreachable_at_start(void **state) {
  char db[FC_TEST_PG_CONNINFO_LENGTH];
  fc_history_config_t cfg;
  fc_history_writer_t *w;
  fc_history_stats_t rep;
  fc_test_wl_t t;
  fc_test_wl_out_t o;
  late_t f;
  uint64_t t0;
  int early_flush_rc, flush_rc, close_rc;
  double flush_ms;
  (void)state;
  if (g_pg.external)
    skip();

  fc_test_make_db(&g_pg, "fcsrv_late", db, sizeof db);
  static const fc_test_wl_shape_t shape = {
      .n_nodes = 300,
      .async_every = 2,
      .flaky_every = 50,
      .delay_ms = 20,
      .max_parallel = 25,
  };
  fc_test_wl_build(&t, "server-late", &shape);

  assert_int_equal(fc_test_pg_stop_only(&g_pg), 0);
  memset(&f, 0, sizeof f);
  f.t_down = now_ns();
  f.up_after_ms = 10000;
  cfg_for(&cfg, db);
  w = fc_test_writer_new(&cfg); /* nothing to connect to */
  f.w = w;
  /* The server comes back 10 s later, long after the run: that thread is
   * joined after the early flush, not by fc_test_wl_run. */
  assert_int_equal(uv_thread_create(&f.thread, late_main, &f), 0);

  fc_test_wl_run(&t, w, "late", NULL, NULL, &o);
  /* Nothing can be committed yet. */
  early_flush_rc = fc_history_writer_flush(w, 200);
  uv_thread_join(&f.thread);

  t0 = now_ns();
  flush_rc = fc_history_writer_flush(w, 60000);
  flush_ms = ms_since(t0);
  close_rc = fc_history_writer_close(w, &rep);

  printf("[server] unreachable at start: run took %.0f ms and ended %.0f ms before the server "
         "start was called; %llu records queued then; %llu connection attempts failed while "
         "down; pg_ctl start %.0f ms; everything committed %.0f ms after pg_ctl returned\n",
         o.ms, ms_between(o.run.t_end_ns, f.t_up_call), (unsigned long long)o.at_end.queue_depth,
         (unsigned long long)f.before_up.reconnects, ms_between(f.t_up_call, f.t_up),
         ms_between(f.t_up, t0) + flush_ms);
  print_stats("unreachable at start", &rep);

  assert_int_equal(f.rc, 0);
  assert_int_equal(o.run.rc, 0);
  assert_int_equal(o.run.status, FC_WORKFLOW_COMPLETED);
  /* The workflow did not wait for the database: it ended long before the
   * server came up, in far less than the 10 s outage. */
  assert_true(o.run.t_end_ns < f.t_up_call);
  assert_true(o.ms < 3000.0);
  /* Everything was held by the writer, nothing written, nothing dropped. */
  fc_test_check_invariant("at the end of the run", &o.at_end);
  fc_test_check_invariant("before the server came up", &f.before_up);
  assert_int_equal(o.at_end.accepted, fc_test_wl_records(&t));
  assert_int_equal(o.at_end.written, 0);
  assert_int_equal(o.at_end.queue_depth, fc_test_wl_records(&t));
  assert_int_equal(early_flush_rc, FC_ETIMEDOUT);
  assert_int_equal(f.before_up.written, 0);
  assert_int_equal(f.before_up.connected, 0);
  assert_int_equal(f.before_up.queue_depth, fc_test_wl_records(&t));
  assert_true(f.before_up.reconnects > 0); /* it kept trying, behind its backoff */
  assert_true(f.before_up.last_error[0] != '\0');
  /* After it came up. */
  assert_int_equal(flush_rc, 0);
  assert_true(rep.reconnects > 0);
  fc_test_check_lossless(&rep, close_rc, &t);
  fc_test_wl_check_exact(db, o.run.wf_id, &t);
  fc_test_wl_free(&t);
  assert_int_equal(fc_test_pg_drop_db(&g_pg, "fcsrv_late"), 0);
}

/* ---- 3. a server that accepts, then stalls ---------------------------------------------------
 *
 * The stall is put in place while the run is held, then the held nodes are
 * let go: every record made after that point meets the stall. The run
 * ends; close(deadline 1 s) must give up on the stalled batches. */

enum { STALL_LOCK, STALL_SIGSTOP, STALL_GATE };

typedef struct {
  int how;
  fc_test_wl_t *t;
  fc_history_writer_t *w;
  const char *db;
  int trigger_at;
  /* results */
  int rc;
  char why[256];
  int stalled;       /* writer backends seen stalled */
  int stop_delay_ms; /* STALL_SIGSTOP: records flowed this long before the stop */
  double stall_ms;
  fc_history_stats_t at_stall;
} stall_t;

static void stall_fail(stall_t *f, const char *why) {
  if (f->rc == 0)
    snprintf(f->why, sizeof f->why, "%s", why);
  f->rc = -1;
}

static int proc_stopped(pid_t pid) {
  char st;
  pid_t pp;
  unsigned long long s;
  return proc_stat(pid, &st, &pp, &s) == 0 && (st == 'T' || st == 't');
}

static void stall_main(void *arg) {
  stall_t *f = arg;
  fc_history_stats_t st;
  uint64_t t0, end = now_ns() + 10ULL * 1000000000ULL;
  fc_test_wl_wait_ended(f->t, f->trigger_at);
  /* Some records committed before the stall: the report must then tell
   * written from dropped. */
  do {
    fc_history_writer_stats(f->w, &st);
    if (st.written > 0)
      break;
    fc_test_sleep_ms(1);
  } while (now_ns() < end);
  t0 = now_ns();
  switch (f->how) {
  case STALL_LOCK:
    /* Another session holds the table every batch writes to. */
    g_ctl = connect_quiet(f->db);
    if (g_ctl == NULL || exec_ok(g_ctl, "BEGIN") != 0 ||
        exec_ok(g_ctl, "LOCK TABLE node_executions IN ACCESS EXCLUSIVE MODE") != 0) {
      stall_fail(f, "cannot lock node_executions");
      break;
    }
    fc_history_writer_stats(f->w, &f->at_stall);
    fc_test_wl_release(f->t, 2);
    f->stalled = wait_backends(f->db, PQbackendPID(g_ctl), "wait_event_type = 'Lock'", 1, 10000);
    if (f->stalled < 1)
      stall_fail(f, "no writer statement waited on the table lock within 10 s");
    break;
  case STALL_GATE:
    /* COMMIT runs the deferred trigger, which waits for this lock. */
    g_ctl = connect_quiet(f->db);
    if (g_ctl == NULL || exec_ok(g_ctl, "SELECT pg_advisory_lock(7311)") != 0) {
      stall_fail(f, "cannot take the advisory lock");
      break;
    }
    fc_history_writer_stats(f->w, &f->at_stall);
    fc_test_wl_release(f->t, 2);
    f->stalled = wait_backends(f->db, PQbackendPID(g_ctl),
                               "wait_event = 'advisory' AND query = 'COMMIT'", 1, 10000);
    if (f->stalled < 1)
      stall_fail(f, "no writer COMMIT waited on the gate within 10 s");
    break;
  case STALL_SIGSTOP: {
    /* Every client backend of the database but the one asking: the
     * writer's connections, nothing else is connected. */
    pid_t pids[MAX_PIDS];
    int n = backends(f->db, 0, NULL, pids, MAX_PIDS), i, k;
    if (n != NCONN) {
      char why[128];
      snprintf(why, sizeof why, "expected %d writer backends, found %d", NCONN, n);
      stall_fail(f, why);
      break;
    }
    /* Records are flowing when the signal lands, a varying time after they
     * started (a batch is sealed after flush_interval_ms = 10), so that
     * over runs it catches transactions anywhere: before BEGIN, in COPY,
     * with COMMIT sent but unanswered. The assertions hold for all. */
    f->stop_delay_ms = (int)((now_ns() / 1000) % 31);
    fc_test_wl_release(f->t, 2);
    fc_test_sleep_ms(f->stop_delay_ms);
    for (i = 0; i < n; i++) {
      if (kill(pids[i], SIGSTOP) != 0) {
        stall_fail(f, "SIGSTOP failed");
        continue;
      }
      g_stopped[g_nstopped++] = pids[i];
    }
    /* No query of ours may run from here until SIGCONT: a stopped backend
     * may hold a lightweight lock that others need. */
    for (k = 0; k < 1000; k++) {
      int stopped = 0;
      for (i = 0; i < g_nstopped; i++)
        stopped += proc_stopped(g_stopped[i]);
      f->stalled = stopped;
      if (stopped == n)
        break;
      fc_test_sleep_ms(1);
    }
    if (f->stalled != n)
      stall_fail(f, "the writer backends did not stop");
    fc_history_writer_stats(f->w, &f->at_stall);
    break;
  }
  default:
    break;
  }
  f->stall_ms = ms_since(t0);
  fc_test_wl_release(f->t, 2);
}

static void resume_stopped(void) {
  int i;
  for (i = 0; i < g_nstopped; i++)
    kill(g_stopped[i], SIGCONT);
  g_nstopped = 0;
}

typedef struct {
  char db[FC_TEST_PG_CONNINFO_LENGTH];
  const char *dbname;
  fc_test_wl_t t;
  fc_test_wl_out_t o;
  stall_t f;
  fc_history_stats_t before_close, rep;
  int close_rc;
  double close_ms;
  pid_t ctl_pid;
} stall_case_t;

/* Makes the database (with `extra_sql` applied), a writer with `policy`,
 * runs the workflow with the stall `how` put in place mid-run, and closes
 * the writer with a 1 s deadline while the stall holds. */
static void stall_run(stall_case_t *c, const char *dbname, int how, fc_queue_policy_t policy,
                      const char *const *extra_sql) {
  fc_history_config_t cfg;
  fc_history_writer_t *w;
  uint64_t t0;

  c->dbname = dbname;
  fc_test_make_db(&g_pg, dbname, c->db, sizeof c->db);
  for (; extra_sql != NULL && *extra_sql != NULL; extra_sql++)
    assert_int_equal(fc_test_pg_exec(c->db, "%s", *extra_sql), 0);
  static const fc_test_wl_shape_t shape = {
      .n_nodes = 1500,
      .async_every = 2,
      .flaky_every = 100,
      .delay_ms = 3,
      .max_parallel = 40,
      .hold = {700},
  };
  fc_test_wl_build(&c->t, dbname, &shape);

  cfg_for(&cfg, c->db);
  cfg.shutdown_deadline_ms = STALL_DEADLINE_MS;
  cfg.policy = policy;
  if (policy == FC_QUEUE_SPOOL)
    cfg.spool_dir = g_spool;
  w = fc_test_writer_new(&cfg);
  assert_int_equal(fc_test_wait_connected(w, NCONN, 10000), 0);

  memset(&c->f, 0, sizeof c->f);
  c->f.how = how;
  c->f.t = &c->t;
  c->f.w = w;
  c->f.db = c->db;
  c->f.trigger_at = 300;
  fc_test_wl_run(&c->t, w, dbname, stall_main, &c->f, &c->o);
  c->ctl_pid = g_ctl != NULL ? PQbackendPID(g_ctl) : 0;

  fc_history_writer_stats(w, &c->before_close);
  t0 = now_ns();
  c->close_rc = fc_history_writer_close(w, &c->rep);
  c->close_ms = ms_since(t0);
}

/* What every stall case asserts about the run and the report. */
static void check_stall_report(stall_case_t *c) {
  if (c->f.rc != 0) {
    resume_stopped();
    fail_msg("stall thread: %s", c->f.why);
  }
  assert_int_equal(c->o.run.rc, 0);
  assert_int_equal(c->o.run.status, FC_WORKFLOW_COMPLETED);
  fc_test_check_invariant("at the end of the run", &c->o.at_end);
  fc_test_check_invariant("when the stall was in place", &c->f.at_stall);
  fc_test_check_invariant("before close", &c->before_close);
  /* The stall came after some batches were committed. */
  assert_true(c->f.at_stall.written > 0);
  /* Records were still in the writer's custody when close began: the
   * stall held them. */
  assert_true(c->before_close.queue_depth > 0);
  /* close keeps its deadline (it had to wait for it: nothing could be
   * committed) plus a margin. */
  assert_true(c->close_ms >= STALL_DEADLINE_MS - 50.0);
  assert_true(c->close_ms < CLOSE_LIMIT_MS);
  /* The report is exact. */
  fc_test_check_invariant("report", &c->rep);
  assert_int_equal(c->rep.queue_depth, 0);
  assert_int_equal(c->rep.accepted, fc_test_wl_records(&c->t));
  assert_int_equal(c->rep.accepted, c->rep.written + c->rep.spooled + c->rep.dropped_total);
}

/* After the stall is released and the abandoned backends are gone: rows
 * for every record reported written, none twice, and nothing beyond what
 * the deadline dropped. Returns db_records. */
static int64_t check_abandoned_honest(stall_case_t *c) {
  int64_t in_db = fc_test_wl_db_records(c->db, c->o.run.wf_id);
  int64_t losses_sum =
      fc_test_pg_int(c->db, "SELECT coalesce(sum(count), 0)::bigint FROM flowcore_writer_losses");
  printf("[server] %s: %lld records in the database: written %llu, dropped at the deadline %llu, "
         "of which committed anyway: %lld; loss report rows in the database: %lld\n",
         c->dbname, (long long)in_db, (unsigned long long)c->rep.written,
         (unsigned long long)deadline_drops(&c->rep), (long long)(in_db - (int64_t)c->rep.written),
         (long long)losses_sum);
  fc_test_wl_check_no_duplicates(c->db, c->o.run.wf_id);
  assert_true(in_db >= (int64_t)c->rep.written);
  /* Records never sent cannot be there: only those of the transactions the
   * report calls unconfirmed may have been committed after all. */
  assert_true(in_db <= (int64_t)(c->rep.written + unconfirmed_drops(&c->rep)));
  /* The loss report never counts more than was dropped. */
  assert_true(losses_sum <= (int64_t)c->rep.dropped_total);
  return in_db;
}

/* Drop policy report after a stall: the stalled records dropped at the
 * deadline, and only there. */
static void check_deadline_drops(stall_case_t *c) {
  int k;
  assert_int_equal(c->close_rc, FC_ETIMEDOUT);
  assert_int_equal(c->rep.spooled, 0);
  assert_true(c->rep.dropped[FC_REC_NODE][FC_DROP_DEADLINE] +
                  c->rep.dropped[FC_REC_NODE][FC_DROP_UNCONFIRMED] >
              0);
  assert_int_equal(c->rep.dropped_total, deadline_drops(&c->rep));
  for (k = 0; k < FC_REC_KIND_COUNT; k++)
    assert_int_equal(c->rep.dropped[k][FC_DROP_QUEUE_FULL] + c->rep.dropped[k][FC_DROP_SPOOL_FULL] +
                         c->rep.dropped[k][FC_DROP_REJECTED],
                     0);
}

static void release_ctl(void) {
  if (g_ctl != NULL) {
    PQfinish(g_ctl); /* ends its transaction and its session locks */
    g_ctl = NULL;
  }
}

/* 3a. A table lock held by another session. check_interval_ms > 0 sets
 * client_connection_check_interval for the database first. */
static void table_lock_case(const char *dbname, int check_interval_ms) {
  stall_case_t c;
  char sql[256];
  const char *extra[2] = {NULL, NULL};
  int lingering, left_while_locked = -1;
  uint64_t t0;
  double gone_ms = 0;

  if (check_interval_ms > 0) {
    snprintf(sql, sizeof sql, "ALTER DATABASE %s SET client_connection_check_interval = %d", dbname,
             check_interval_ms);
    extra[0] = sql;
  }
  memset(&c, 0, sizeof c);
  stall_run(&c, dbname, STALL_LOCK, FC_QUEUE_BLOCK, extra);
  print_stats(dbname, &c.rep);
  check_stall_report(&c);
  check_deadline_drops(&c);

  /* What the server did with the abandoned transactions while the lock was
   * still held: their backends stay, waiting, unless the server checks the
   * client connection. */
  lingering = backends(c.db, c.ctl_pid, "wait_event_type = 'Lock'", NULL, 0);
  if (check_interval_ms > 0) {
    t0 = now_ns();
    left_while_locked = wait_backends(c.db, c.ctl_pid, NULL, 0, 5000);
    gone_ms = ms_since(t0);
  }
  t0 = now_ns();
  release_ctl();
  assert_int_equal(wait_backends(c.db, 0, NULL, 0, 10000), 0);
  if (check_interval_ms <= 0)
    gone_ms = ms_since(t0);
  printf("[server] %s: close took %.0f ms (deadline %d ms); right after close %d abandoned "
         "backend(s) still waited on the lock; %s %.0f ms %s\n",
         dbname, c.close_ms, STALL_DEADLINE_MS, lingering,
         check_interval_ms > 0 ? "they ended, with the lock still held, within" : "they ended",
         gone_ms, check_interval_ms > 0 ? "of the check" : "after the lock was released");

  assert_true(c.f.stalled >= 1);
  if (check_interval_ms > 0) {
    /* The server noticed the closed sockets during the lock wait. */
    assert_int_equal(left_while_locked, 0);
  } else {
    /* Default settings: the server does not notice while it waits. */
    assert_true(lingering >= 1);
  }
  /* The abandoned statements ran before any COMMIT was sent: when they got
   * the lock they found the socket closed and rolled back. Exactly the
   * records reported written are in the database. */
  assert_int_equal(check_abandoned_honest(&c), (int64_t)c.rep.written);
  fc_test_wl_free(&c.t);
  assert_int_equal(fc_test_pg_drop_db(&g_pg, dbname), 0);
}

static void test_stall_table_lock(void **state) {
  (void)state;
  table_lock_case("fcsrv_lock", 0);
}

static void test_stall_table_lock_check_interval(void **state) {
  (void)state;
  table_lock_case("fcsrv_lockcci", 100);
}

/* 3b. The writer's backends SIGSTOPped. */
static void test_stall_sigstop(void **state) {
  stall_case_t c;
  int stopped_after_close = 0, i;
  uint64_t t0;
  (void)state;
  if (g_pg.external)
    skip(); /* signals to the server's processes */

  memset(&c, 0, sizeof c);
  stall_run(&c, "fcsrv_stop", STALL_SIGSTOP, FC_QUEUE_BLOCK, NULL);
  for (i = 0; i < g_nstopped; i++)
    stopped_after_close += proc_stopped(g_stopped[i]);
  t0 = now_ns();
  resume_stopped();
  assert_int_equal(wait_backends(c.db, 0, NULL, 0, 10000), 0);
  printf("[server] fcsrv_stop: SIGSTOP %d ms after records flowed again; close took %.0f ms; "
         "%d stopped backend(s) outlived the writer; after SIGCONT they ended in %.0f ms\n",
         c.f.stop_delay_ms, c.close_ms, stopped_after_close, ms_since(t0));
  print_stats("fcsrv_stop", &c.rep);
  check_stall_report(&c);
  check_deadline_drops(&c);
  assert_int_equal(c.f.stalled, NCONN);
  assert_int_equal(stopped_after_close, NCONN);
  /* Nothing handed over after the stop could be committed. */
  assert_true(c.rep.written <= c.f.at_stall.accepted);
  assert_true(c.rep.written >= c.f.at_stall.written);
  check_abandoned_honest(&c);
  fc_test_wl_free(&c.t);
  assert_int_equal(fc_test_pg_drop_db(&g_pg, "fcsrv_stop"), 0);
}

static int count_spool_files(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  int n = 0;
  if (d == NULL)
    return -1;
  while ((de = readdir(d)) != NULL)
    n += strstr(de->d_name, ".spool") != NULL;
  closedir(d);
  return n;
}

static void remove_spool_dir(void) {
  DIR *d;
  struct dirent *de;
  char p[512];
  if (g_spool[0] == '\0')
    return;
  d = opendir(g_spool);
  if (d != NULL) {
    while ((de = readdir(d)) != NULL) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
        continue;
      snprintf(p, sizeof p, "%s/%s", g_spool, de->d_name);
      unlink(p);
    }
    closedir(d);
  }
  rmdir(g_spool);
  g_spool[0] = '\0';
}

/* 3c. The same stall under the spool policy, then replay by a new writer. */
static void test_stall_sigstop_spool(void **state) {
  stall_case_t c;
  fc_history_config_t cfg;
  fc_history_writer_t *w2;
  fc_history_stats_t st2, rep2;
  int64_t before_replay;
  uint64_t t0;
  int close2_rc, files_after_close;
  double replay_ms;
  (void)state;
  if (g_pg.external)
    skip();

  snprintf(g_spool, sizeof g_spool, "/tmp/fc-srv-spool-XXXXXX");
  assert_non_null(mkdtemp(g_spool));
  memset(&c, 0, sizeof c);
  stall_run(&c, "fcsrv_spool", STALL_SIGSTOP, FC_QUEUE_SPOOL, NULL);
  files_after_close = count_spool_files(g_spool);
  resume_stopped();
  assert_int_equal(wait_backends(c.db, 0, NULL, 0, 10000), 0);
  print_stats("fcsrv_spool, first writer", &c.rep);
  check_stall_report(&c);
  /* Spooled at the deadline instead of dropped. */
  assert_int_equal(c.close_rc, 0);
  assert_true(c.rep.spooled > 0);
  assert_int_equal(c.rep.dropped_total, 0);
  assert_int_equal(c.rep.accepted, c.rep.written + c.rep.spooled);
  assert_true(c.rep.spool_bytes > 0);
  assert_true(files_after_close >= 1);
  assert_true(c.rep.written <= c.f.at_stall.accepted);

  /* Before the replay: what the resumed backends did with the abandoned
   * batches (committed or not, within the honest bounds). */
  before_replay = fc_test_wl_db_records(c.db, c.o.run.wf_id);
  fc_test_wl_check_no_duplicates(c.db, c.o.run.wf_id);
  assert_true(before_replay >= (int64_t)c.rep.written);
  assert_true(before_replay <= (int64_t)(c.rep.written + c.rep.spooled));

  /* A new writer on the same directory replays the spool. */
  cfg_for(&cfg, c.db);
  cfg.policy = FC_QUEUE_SPOOL;
  cfg.spool_dir = g_spool;
  cfg.shutdown_deadline_ms = 10000;
  t0 = now_ns();
  w2 = fc_test_writer_new(&cfg);
  for (;;) {
    fc_history_writer_stats(w2, &st2);
    if (st2.replayed >= c.rep.spooled || ms_since(t0) > 30000.0)
      break;
    fc_test_sleep_ms(5);
  }
  replay_ms = ms_since(t0);
  close2_rc = fc_history_writer_close(w2, &rep2);
  printf("[server] fcsrv_spool: SIGSTOP %d ms after records flowed again; %llu records spooled "
         "at the deadline (%d file(s)); %lld were "
         "in the database before the replay (%lld of them committed after the writer gave up); "
         "the next writer replayed %llu in %.0f ms\n",
         c.f.stop_delay_ms, (unsigned long long)c.rep.spooled, files_after_close,
         (long long)before_replay, (long long)(before_replay - (int64_t)c.rep.written),
         (unsigned long long)rep2.replayed, replay_ms);
  print_stats("fcsrv_spool, second writer", &rep2);

  assert_int_equal(close2_rc, 0);
  assert_int_equal(rep2.accepted, 0);
  assert_int_equal(rep2.replayed, c.rep.spooled);
  assert_int_equal(rep2.spool_corrupt, 0);
  assert_int_equal(rep2.dropped_total, 0);
  assert_int_equal(count_spool_files(g_spool), 0);
  fc_test_wl_check_exact(c.db, c.o.run.wf_id, &c.t);
  fc_test_wl_free(&c.t);
  remove_spool_dir();
  assert_int_equal(fc_test_pg_drop_db(&g_pg, "fcsrv_spool"), 0);
}

/* 3d. The server has the COMMIT when the writer gives up. */
static void test_stall_in_commit(void **state) {
  static const char *const gate[] = {
      "CREATE FUNCTION fc_test_commit_gate() RETURNS trigger LANGUAGE plpgsql AS "
      "$$ BEGIN PERFORM pg_advisory_xact_lock_shared(7311); RETURN NULL; END $$",
      "CREATE CONSTRAINT TRIGGER fc_test_commit_gate AFTER INSERT OR UPDATE ON node_executions "
      "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fc_test_commit_gate()",
      NULL};
  stall_case_t c;
  int in_commit;
  int64_t in_db;
  uint64_t t0;
  (void)state;

  memset(&c, 0, sizeof c);
  stall_run(&c, "fcsrv_gate", STALL_GATE, FC_QUEUE_BLOCK, gate);
  print_stats("fcsrv_gate", &c.rep);
  check_stall_report(&c);
  check_deadline_drops(&c);
  assert_true(c.f.stalled >= 1);
  /* The writer is gone; its COMMITs are still being worked on. */
  in_commit = backends(c.db, c.ctl_pid, "wait_event = 'advisory' AND query = 'COMMIT'", NULL, 0);
  t0 = now_ns();
  release_ctl();
  assert_int_equal(wait_backends(c.db, 0, NULL, 0, 10000), 0);
  printf("[server] fcsrv_gate: close took %.0f ms; %d abandoned COMMIT(s) still waiting after "
         "close; they finished %.0f ms after the gate opened\n",
         c.close_ms, in_commit, ms_since(t0));
  assert_true(in_commit >= 1);
  /* Those COMMITs went through: records the report counts as dropped at
   * the deadline are in the database. "Dropped at the deadline" means "not
   * known to be committed", not "not committed". */
  in_db = check_abandoned_honest(&c);
  assert_true(in_db > (int64_t)c.rep.written);
  fc_test_wl_free(&c.t);
  assert_int_equal(fc_test_pg_drop_db(&g_pg, "fcsrv_gate"), 0);
}

/* ---- main ----------------------------------------------------------------------------------- */

static uint64_t g_test_start;

static int setup(void **state) {
  (void)state;
  g_test_start = now_ns();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  printf("[server] test time %.1f s\n", ms_since(g_test_start) / 1000.0);
  resume_stopped();
  release_ctl();
  remove_spool_dir();
  if (!g_pg.external && !g_pg.running && g_pg.dir[0] != '\0')
    return fc_test_pg_start_again(&g_pg);
  return 0;
}

static int group_setup(void **state) {
  (void)state;
  setvbuf(stdout, NULL, _IOLBF, 0);
  return fc_test_pg_start(&g_pg);
}

static int group_teardown(void **state) {
  (void)state;
  resume_stopped();
  release_ctl();
  return fc_test_pg_stop(&g_pg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_postmaster_sigkill, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unreachable_at_start, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stall_table_lock, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stall_table_lock_check_interval, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stall_sigstop, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stall_sigstop_spool, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stall_in_commit, setup, teardown),
  };
  return cmocka_run_group_tests_name("fault_server", tests, group_setup, group_teardown);
}

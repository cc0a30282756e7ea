/* The views and canned queries of sql/ against a real PostgreSQL.
 *
 * The database is filled through the real history writer: the database
 * handler is fed hand-made events (as the engine would send them, with exact
 * timestamps and monotonic durations), so every answer of every view and of
 * every query in sql/queries/ is known in advance and checked exactly. One
 * more test runs a real workflow through the engine, and one makes the
 * writer really drop records to check the loss summary.
 *
 * The canned queries are read from their files and their psql variables
 * (:'name') are replaced here by literals we control, as psql -v would.
 * Also checked: migrations/ (with the views migration) applies to a fresh
 * database and re-running it is a no-op, and the newest generated views
 * migration is byte for byte the concatenation of the files of sql/views/ (the
 * single source, see sql/README.md). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fc_test.h"
#include "citus_cluster.h"
#include "pg_server.h"

#include <libpq-fe.h>

#define SRC FLOWCORE_SOURCE_DIR
#define MAX_FILES 64

static fc_test_pg_t pg;
static char db[FC_TEST_PG_CONNINFO_LENGTH];
static int db_seq;
static PGconn *conn;         /* to db, TimeZone UTC */
static const char *ctx = ""; /* what is being checked, for failure messages */

/* ---- files ------------------------------------------------------------------ */

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;
  if (f == NULL)
    fail_msg("cannot open %s", path);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  n = ftell(f);
  assert_true(n >= 0);
  rewind(f);
  buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of dir's *.sql files (not hidden), sorted bytewise; returns the
 * count. Free with free_names. */
static size_t list_sql(const char *dir, char *names[MAX_FILES]) {
  DIR *d = opendir(dir);
  struct dirent *de;
  size_t n = 0;
  if (d == NULL)
    fail_msg("cannot open directory %s", dir);
  while ((de = readdir(d)) != NULL) {
    size_t len = strlen(de->d_name);
    if (de->d_name[0] == '.' || len < 5 || strcmp(de->d_name + len - 4, ".sql") != 0)
      continue;
    assert_true(n < MAX_FILES);
    names[n] = strdup(de->d_name);
    assert_non_null(names[n]);
    n++;
  }
  closedir(d);
  qsort(names, n, sizeof names[0], cmp_str);
  return n;
}

static void free_names(char *names[], size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    free(names[i]);
}

/* ---- psql variables ------------------------------------------------------------ */

typedef struct {
  const char *name;
  const char *value;
} qvar_t;

typedef struct {
  char *p;
  size_t len, cap;
} sbuf_t;

static void sb_put(sbuf_t *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    b->cap = (b->len + n + 1) * 2;
    b->p = realloc(b->p, b->cap);
    assert_non_null(b->p);
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

/* Replaces psql's :'name' by the value as a quoted SQL literal, the way
 * `psql -v name=value` does, leaving string literals, quoted identifiers,
 * comments and :: casts alone. A variable not in vars, or a form this does
 * not handle (:name, :"name", dollar quoting), fails the test: the query
 * files use only :'name'. */
static char *substitute(const char *file, const char *text, const qvar_t *vars, size_t nvars) {
  sbuf_t out = {NULL, 0, 0};
  const char *p = text;
  sb_put(&out, "", 0);
  while (*p != '\0') {
    if (p[0] == '-' && p[1] == '-') { /* comment to the end of the line */
      size_t n = strcspn(p, "\n");
      sb_put(&out, p, n);
      p += n;
    } else if (p[0] == '/' && p[1] == '*') {
      const char *e = strstr(p + 2, "*/");
      if (e == NULL)
        fail_msg("%s: unterminated comment", file);
      sb_put(&out, p, (size_t)(e + 2 - p));
      p = e + 2;
    } else if (p[0] == '\'' || p[0] == '"') { /* literal or quoted identifier */
      const char q = p[0];
      const char *e = p + 1;
      for (;;) {
        if (*e == '\0')
          fail_msg("%s: unterminated quote", file);
        if (*e == q && e[1] == q) {
          e += 2;
          continue;
        }
        if (*e == q)
          break;
        e++;
      }
      sb_put(&out, p, (size_t)(e + 1 - p));
      p = e + 1;
    } else if (p[0] == '$') {
      if (p[1] == '$' || p[1] == '_' || (p[1] >= 'a' && p[1] <= 'z') ||
          (p[1] >= 'A' && p[1] <= 'Z'))
        fail_msg("%s: dollar quoting or $n parameters are not expected in a query file", file);
      sb_put(&out, p, 1);
      p++;
    } else if (p[0] == ':' && p[1] == ':') {
      sb_put(&out, p, 2);
      p += 2;
    } else if (p[0] == ':' && p[1] == '\'') {
      const char *name = p + 2, *e = strchr(name, '\'');
      size_t i, n;
      if (e == NULL)
        fail_msg("%s: unterminated :'variable'", file);
      n = (size_t)(e - name);
      for (i = 0; i < nvars; i++)
        if (strlen(vars[i].name) == n && strncmp(vars[i].name, name, n) == 0)
          break;
      if (i == nvars)
        fail_msg("%s: the test has no value for :'%.*s'", file, (int)n, name);
      sb_put(&out, "'", 1);
      {
        const char *v;
        for (v = vars[i].value; *v != '\0'; v++) {
          if (*v == '\'')
            sb_put(&out, "''", 2); /* a quote inside a literal is doubled */
          else
            sb_put(&out, v, 1);
        }
      }
      sb_put(&out, "'", 1);
      p = e + 1;
    } else if (p[0] == ':' && (p[1] == '"' || p[1] == '_' || (p[1] >= 'a' && p[1] <= 'z') ||
                               (p[1] >= 'A' && p[1] <= 'Z'))) {
      fail_msg("%s: use :'name' for psql variables (found :%.10s)", file, p + 1);
    } else if (p[0] == '\\' && (p == text || p[-1] == '\n')) {
      fail_msg("%s: psql meta-commands are not expected in a query file", file);
    } else {
      sb_put(&out, p, 1);
      p++;
    }
  }
  return out.p;
}

/* The text of sql/queries/<name> with its variables replaced. */
static char *load_query(const char *name, const qvar_t *vars, size_t nvars) {
  char path[512];
  char *text, *sql;
  snprintf(path, sizeof path, "%s/sql/queries/%s", SRC, name);
  text = read_file(path);
  sql = substitute(name, text, vars, nvars);
  free(text);
  return sql;
}

/* ---- results ------------------------------------------------------------------ */

static PGresult *query(const char *sql) {
  PGresult *r = PQexec(conn, sql);
  if (PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("[%s] query failed: %s\n%s", ctx, PQresultErrorMessage(r), sql);
  return r;
}

static void exec_ok(const char *sql) {
  PGresult *r = PQexec(conn, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("[%s] statement failed: %s\n%s", ctx, PQresultErrorMessage(r), sql);
  PQclear(r);
}

static PGresult *queryf(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static PGresult *queryf(const char *fmt, ...) {
  char sql[4096];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(sql, sizeof sql, fmt, ap);
  va_end(ap);
  assert_true(n > 0 && (size_t)n < sizeof sql);
  return query(sql);
}

static int col(const PGresult *r, const char *name) {
  int c = PQfnumber(r, name);
  if (c < 0)
    fail_msg("[%s] no column %s", ctx, name);
  return c;
}

/* NULL for SQL NULL. */
static const char *val(const PGresult *r, int row, const char *name) {
  int c = col(r, name);
  if (row >= PQntuples(r))
    fail_msg("[%s] no row %d (%d rows)", ctx, row, PQntuples(r));
  return PQgetisnull(r, row, c) ? NULL : PQgetvalue(r, row, c);
}

static void expect_rows(const PGresult *r, int n) {
  if (PQntuples(r) != n)
    fail_msg("[%s] %d rows, want %d", ctx, PQntuples(r), n);
}

static void expect_text(const PGresult *r, int row, const char *name, const char *want) {
  const char *v = val(r, row, name);
  if (want == NULL && v == NULL)
    return;
  if (want == NULL || v == NULL || strcmp(v, want) != 0)
    fail_msg("[%s] row %d %s = %s, want %s", ctx, row, name, v ? v : "NULL", want ? want : "NULL");
}

static void expect_int(const PGresult *r, int row, const char *name, long long want) {
  const char *v = val(r, row, name);
  char w[32];
  snprintf(w, sizeof w, "%lld", want);
  if (v == NULL || strcmp(v, w) != 0)
    fail_msg("[%s] row %d %s = %s, want %lld", ctx, row, name, v ? v : "NULL", want);
}

/* want NAN: SQL NULL. Floating point, so within 1e-9 relative. */
static void expect_num(const PGresult *r, int row, const char *name, double want) {
  const char *v = val(r, row, name);
  double got;
  if (isnan(want)) {
    if (v != NULL)
      fail_msg("[%s] row %d %s = %s, want NULL", ctx, row, name, v);
    return;
  }
  if (v == NULL)
    fail_msg("[%s] row %d %s = NULL, want %.9g", ctx, row, name, want);
  got = strtod(v, NULL);
  if (fabs(got - want) > 1e-9 * fmax(1.0, fabs(want)))
    fail_msg("[%s] row %d %s = %s, want %.12g", ctx, row, name, v, want);
}

/* A timestamp column against µs since the epoch (0: SQL NULL). */
static void expect_ts(const PGresult *r, int row, const char *name, int64_t us) {
  const char *v = val(r, row, name);
  PGresult *t;
  if (us == 0) {
    if (v != NULL)
      fail_msg("[%s] row %d %s = %s, want NULL", ctx, row, name, v);
    return;
  }
  if (v == NULL)
    fail_msg("[%s] row %d %s = NULL, want a timestamp", ctx, row, name);
  t = queryf("SELECT (timestamptz 'epoch' + %lld * interval '1 microsecond')::text", (long long)us);
  if (strcmp(PQgetvalue(t, 0, 0), v) != 0)
    fail_msg("[%s] row %d %s = %s, want %s", ctx, row, name, v, PQgetvalue(t, 0, 0));
  PQclear(t);
}

static void expect_columns(const PGresult *r, const char *want) {
  char got[1024] = "";
  int i;
  for (i = 0; i < PQnfields(r); i++) {
    if (i > 0)
      strncat(got, ",", sizeof got - strlen(got) - 1);
    strncat(got, PQfname(r, i), sizeof got - strlen(got) - 1);
  }
  if (strcmp(got, want) != 0)
    fail_msg("[%s] columns\n  %s\nwant\n  %s", ctx, got, want);
}

/* ---- databases ------------------------------------------------------------------ */

static int group_setup(void **state) {
  (void)state;
  return fc_test_pg_start(&pg) == 0 ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  return fc_test_pg_stop(&pg);
}

/* A fresh database (not migrated) and conn to it. */
static void fresh_db(char name[64]) {
  snprintf(name, 64, "sqlviews_%d", ++db_seq);
  assert_int_equal(fc_test_pg_create_db(&pg, name, db, sizeof db), 0);
  conn = PQconnectdb(db);
  assert_int_equal(PQstatus(conn), CONNECTION_OK);
  exec_ok("SET TimeZone = 'UTC'");
  exec_ok("SET client_min_messages = warning");
}

static size_t migrate(void) {
  fc_migrate_report_t rep;
  fc_error_t err;
  size_t n;
  fc_error_clear(&err);
  if (fc_migrate_run(db, SRC "/migrations", &rep, &err) != 0)
    fail_msg("migrate: %s", err.text);
  n = rep.applied_now;
  fc_migrate_report_free(&rep);
  return n;
}

static int setup_migrated(void **state) {
  char name[64];
  (void)state;
  fresh_db(name);
  migrate();
  return 0;
}

static int teardown_conn(void **state) {
  (void)state;
  if (conn != NULL)
    PQfinish(conn);
  conn = NULL;
  return 0;
}

/* ---- the writer, fed by hand ---------------------------------------------------------- */

typedef struct {
  uv_loop_t loop;
  fc_history_writer_t *w;
  fc_handler_t dbh;
  uv_timer_t alive; /* keeps the loop alive for one turn (see hand_over) */
} feeder_t;

static void feeder_init(feeder_t *f, const fc_history_config_t *cfg_in) {
  fc_history_config_t cfg;
  fc_error_t err;
  if (cfg_in != NULL)
    cfg = *cfg_in;
  else
    fc_history_config_init(&cfg);
  cfg.conninfo = db;
  cfg.reconnect_min_ms = 20;
  cfg.reconnect_max_ms = 200;
  assert_int_equal(uv_loop_init(&f->loop), 0);
  fc_error_clear(&err);
  assert_int_equal(fc_history_writer_new(&f->w, &cfg, &err), 0);
  assert_int_equal(fc_history_handler(f->w, &f->loop, &f->dbh), 0);
  assert_int_equal(uv_timer_init(&f->loop, &f->alive), 0);
}

static void never_cb(uv_timer_t *t) { (void)t; }

/* One turn of the loop, so that the handler's prepare/check hands over the
 * block it is filling (the engine's loop does that before it waits). The
 * handler's handles do not keep a loop alive, and uv_run() returns at once
 * from a loop that is not alive, so a timer does for this turn. */
static void hand_over(feeder_t *f) {
  assert_int_equal(uv_timer_start(&f->alive, never_cb, 3600 * 1000, 0), 0);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  uv_timer_stop(&f->alive);
}

/* Hands over what the handler holds and waits until it is committed. */
static void feeder_flush(feeder_t *f) {
  hand_over(f);
  assert_int_equal(fc_history_writer_flush(f->w, 30000), 0);
}

static int feeder_close(feeder_t *f, fc_history_stats_t *st) {
  int rc;
  fc_handler_destroy(&f->dbh);
  uv_close((uv_handle_t *)&f->alive, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  rc = fc_history_writer_close(f->w, st);
  fc_test_loop_close(&f->loop);
  return rc;
}

/* One node attempt of a hand-made run. Times are ms after the run's start. */
typedef struct {
  const char *node;
  int attempt;             /* 0: the node never ran */
  fc_node_status_t status; /* FC_NODE_RUNNING: no end event yet */
  int64_t start_ms;        /* -1 when attempt is 0 */
  int64_t end_ms;          /* -1 while running */
} step_t;

/* An error event; node NULL for a workflow-level error. */
typedef struct {
  const char *node;
  int attempt;
  fc_severity_t severity;
  const char *type, *message;
  int64_t at_ms;
} err_t;

typedef struct {
  fc_workflow_t *wf;
  int64_t offset_ms; /* start, after T0 */
  const step_t *steps;
  size_t nsteps;
  const err_t *errs;
  size_t nerrs;
  fc_workflow_status_t end; /* FC_WORKFLOW_RUNNING: never ends */
  int64_t end_ms;
  int64_t mono_us; /* monotonic duration of the run */
  int error_count;
  /* filled by feed_run */
  uint8_t uuid[16];
  char id[FC_UUID_STRING_LENGTH];
  int64_t t0_us;
} run_t;

/* A UUIDv7 we choose: the run's start in ms, then fixed bits and k. */
static void make_uuid(uint8_t u[16], int64_t ms, int k) {
  int i;
  for (i = 0; i < 6; i++)
    u[i] = (uint8_t)((uint64_t)ms >> (40 - 8 * i));
  u[6] = 0x70;
  u[7] = (uint8_t)k;
  u[8] = 0x80;
  for (i = 9; i < 15; i++)
    u[i] = 0x5a;
  u[15] = (uint8_t)k;
}

static int node_index(const fc_workflow_t *wf, const char *id) {
  size_t i, n = fc_workflow_node_count(wf);
  for (i = 0; i < n; i++)
    if (strcmp(fc_node_id(fc_workflow_node_at(wf, i)), id) == 0)
      return (int)i;
  fail_msg("no node %s", id);
  return -1;
}

static void ev_init(fc_event_t *ev, const run_t *r, fc_event_kind_t kind, const char *node) {
  memset(ev, 0, sizeof *ev);
  ev->kind = kind;
  ev->workflow = r->wf;
  ev->workflow_id = r->id;
  ev->workflow_uuid = r->uuid;
  ev->workflow_name = fc_workflow_name(r->wf);
  ev->node_count = (int)fc_workflow_node_count(r->wf);
  ev->node_index = -1;
  if (node != NULL) {
    ev->node_id = node;
    ev->node_index = node_index(r->wf, node);
    ev->node_type = fc_node_type(fc_workflow_node_at(r->wf, (size_t)ev->node_index));
  }
}

static void feed_error(feeder_t *f, const run_t *r, const err_t *e) {
  fc_event_t ev;
  fc_error_info_t info;
  memset(&info, 0, sizeof info);
  info.type = e->type;
  info.message = e->message;
  info.severity = e->severity;
  info.node_id = e->node;
  info.attempt = e->attempt;
  info.occurred_at_us = r->t0_us + e->at_ms * 1000;
  ev_init(&ev, r, FC_EVENT_ERROR, e->node);
  ev.attempt = e->attempt;
  ev.time_us = info.occurred_at_us;
  ev.error = &info;
  assert_int_equal(f->dbh.on_error(f->dbh.self, &ev), 0);
}

/* Sends the run's events, in the engine's order, to the database handler. */
static void feed_run(feeder_t *f, run_t *r, int64_t T0_us, int k) {
  fc_event_t ev;
  size_t i, j;
  r->t0_us = T0_us + r->offset_ms * 1000;
  make_uuid(r->uuid, r->t0_us / 1000, k);
  fc_uuid_format(r->uuid, r->id);
  ev_init(&ev, r, FC_EVENT_WORKFLOW_START, NULL);
  ev.status = FC_WORKFLOW_RUNNING;
  ev.time_us = r->t0_us;
  assert_int_equal(f->dbh.on_workflow_start(f->dbh.self, &ev), 0);
  for (i = 0; i < r->nsteps; i++) {
    const step_t *s = &r->steps[i];
    if (s->attempt > 0) {
      ev_init(&ev, r, FC_EVENT_NODE_START, s->node);
      ev.attempt = s->attempt;
      ev.status = FC_NODE_RUNNING;
      ev.time_us = r->t0_us + s->start_ms * 1000;
      assert_int_equal(f->dbh.on_node_start(f->dbh.self, &ev), 0);
    }
    for (j = 0; j < r->nerrs; j++)
      if (r->errs[j].node != NULL && strcmp(r->errs[j].node, s->node) == 0 &&
          r->errs[j].attempt == s->attempt)
        feed_error(f, r, &r->errs[j]);
    if (s->status != FC_NODE_RUNNING) {
      ev_init(&ev, r, FC_EVENT_NODE_END, s->node);
      ev.attempt = s->attempt;
      ev.status = (int)s->status;
      ev.time_us = r->t0_us + s->end_ms * 1000;
      if (s->attempt > 0) {
        ev.started_at_us = r->t0_us + s->start_ms * 1000;
        ev.duration_us = (s->end_ms - s->start_ms) * 1000;
      }
      assert_int_equal(f->dbh.on_node_end(f->dbh.self, &ev), 0);
    }
  }
  for (j = 0; j < r->nerrs; j++)
    if (r->errs[j].node == NULL)
      feed_error(f, r, &r->errs[j]);
  if (r->end != FC_WORKFLOW_RUNNING) {
    ev_init(&ev, r, FC_EVENT_WORKFLOW_END, NULL);
    ev.status = (int)r->end;
    ev.time_us = r->t0_us + r->end_ms * 1000;
    ev.started_at_us = r->t0_us;
    ev.duration_us = r->mono_us;
    ev.error_count = r->error_count;
    assert_int_equal(f->dbh.on_workflow_end(f->dbh.self, &ev), 0);
  }
}

static void noop_fn(fc_node_ctx_t *c, void *data) {
  (void)data;
  fc_node_succeed(c, NULL);
}

static fc_workflow_t *make_wf(const char *name, const char *const *nodes) {
  fc_workflow_t *wf;
  assert_int_equal(fc_workflow_new(&wf, name), 0);
  for (; *nodes != NULL; nodes++) {
    fc_node_t *n;
    assert_int_equal(fc_workflow_add_node(wf, *nodes, noop_fn, NULL, &n), 0);
    assert_int_equal(fc_node_set_type(n, "exec"), 0);
  }
  assert_int_equal(fc_workflow_validate(wf, NULL), 0);
  return wf;
}

/* ---- the data set ------------------------------------------------------------------------
 *
 * T0 is the start of the previous UTC hour, so every run below (T0 .. T0+4
 * min) lies 56 minutes to 2 hours in the past, within one hour and one day:
 * inside "the last day", "this week", "the last 24 hours" and "running longer
 * than 30 minutes", whatever the time the test runs.
 *
 * etl (extract, transform, load):
 *   A  completed  all three nodes completed: 100, 200, 300 ms
 *   B  failed     extract fails (50 ms, warning) then completes on its retry
 *                 (150 ms); transform fails (400 ms, critical); load skipped
 *   C  cancelled  extract fails (30 ms, warning) and completes (120 ms);
 *                 transform cancelled after 80 ms; load cancelled, never ran;
 *                 a workflow-level info error (the signal)
 * report (fetch, parse, render, publish):
 *   D  running    fetch completed (1000 ms); parse timed out (500 ms, error)
 *                 and its retry is running; render and publish not reached
 */
static const step_t steps_a[] = {
    {"extract", 1, FC_NODE_COMPLETED, 10, 110},
    {"transform", 1, FC_NODE_COMPLETED, 120, 320},
    {"load", 1, FC_NODE_COMPLETED, 330, 630},
};
static const step_t steps_b[] = {
    {"extract", 1, FC_NODE_FAILED, 10, 60},
    {"extract", 2, FC_NODE_COMPLETED, 100, 250},
    {"transform", 1, FC_NODE_FAILED, 260, 660},
    {"load", 0, FC_NODE_SKIPPED, -1, 660},
};
static const err_t errs_b[] = {
    {"extract", 1, FC_SEVERITY_WARNING, "exit_status", "extract exited with status 1", 60},
    {"transform", 1, FC_SEVERITY_CRITICAL, "exit_status", "transform exited with status 2", 660},
};
static const step_t steps_c[] = {
    {"extract", 1, FC_NODE_FAILED, 10, 40},
    {"extract", 2, FC_NODE_COMPLETED, 50, 170},
    {"transform", 1, FC_NODE_CANCELLED, 180, 260},
    {"load", 0, FC_NODE_CANCELLED, -1, 260},
};
static const err_t errs_c[] = {
    {"extract", 1, FC_SEVERITY_WARNING, "exit_status", "extract exited with status 3", 40},
    {NULL, 0, FC_SEVERITY_INFO, "signal", "cancelled by SIGTERM", 250},
};
static const step_t steps_d[] = {
    {"fetch", 1, FC_NODE_COMPLETED, 10, 1010},
    {"parse", 1, FC_NODE_TIMED_OUT, 1020, 1520},
    {"parse", 2, FC_NODE_RUNNING, 1600, -1},
};
static const err_t errs_d[] = {
    {"parse", 1, FC_SEVERITY_ERROR, "timeout", "parse timed out after 500 ms", 1520},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
  fc_workflow_t *etl, *report;
  run_t runs[4]; /* A, B, C, D: in order of start and of workflow_id */
  int64_t T0;
} dataset_t;

static void dataset_load(dataset_t *ds) {
  static const char *const etl_nodes[] = {"extract", "transform", "load", NULL};
  static const char *const report_nodes[] = {"fetch", "parse", "render", "publish", NULL};
  feeder_t f;
  fc_history_stats_t st;
  int i;
  memset(ds, 0, sizeof *ds);
  ds->T0 = ((int64_t)time(NULL) / 3600 - 1) * 3600 * 1000000;
  ds->etl = make_wf("etl", etl_nodes);
  ds->report = make_wf("report", report_nodes);
  ds->runs[0] = (run_t){ds->etl, 0,      steps_a, N(steps_a), NULL, 0, FC_WORKFLOW_COMPLETED,
                        640,     639500, 0,       {0},        "",   0};
  ds->runs[1] = (run_t){ds->etl, 60000,  steps_b, N(steps_b), errs_b, N(errs_b), FC_WORKFLOW_FAILED,
                        670,     670000, 2,       {0},        "",     0};
  ds->runs[2] =
      (run_t){ds->etl, 120000, steps_c, N(steps_c), errs_c, N(errs_c), FC_WORKFLOW_CANCELLED,
              270,     270000, 2,       {0},        "",     0};
  ds->runs[3] =
      (run_t){ds->report, 180000, steps_d, N(steps_d), errs_d, N(errs_d), FC_WORKFLOW_RUNNING,
              0,          0,      0,       {0},        "",     0};
  feeder_init(&f, NULL);
  for (i = 0; i < 4; i++)
    feed_run(&f, &ds->runs[i], ds->T0, i + 1);
  feeder_flush(&f);
  /* what the writer stored (committed by now: D never ends), before any view */
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions"), 4);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions"), 14);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM execution_errors"), 5);
  assert_int_equal(feeder_close(&f, &st), 0);
  assert_int_equal(st.dropped_total, 0);
  /* records: A 1 + 3 starts + 3 ends + 1 = 8; B 1 + 3 + 4 + 2 errors + 1 = 11;
   * C 1 + 3 + 4 + 2 + 1 = 11; D 1 + 3 + 2 + 1 error = 7 */
  assert_int_equal(st.written, 8 + 11 + 11 + 7);
}

static void dataset_free(dataset_t *ds) {
  fc_workflow_free(ds->etl);
  fc_workflow_free(ds->report);
}

static int64_t at(const run_t *r, int64_t ms) { return r->t0_us + ms * 1000; }

/* ---- views -------------------------------------------------------------------------------- */

static const char RECENT_RUNS_COLS[] =
    "workflow_id,workflow_name,status,started_at,completed_at,duration_ms,node_count,"
    "nodes_completed,nodes_failed,nodes_skipped,nodes_timed_out,nodes_cancelled,nodes_running,"
    "attempts,error_count,host,pid";
static const char TIMELINE_COLS[] = "workflow_id,workflow_name,node_id,attempt,node_type,status,"
                                    "started_at,completed_at,duration_ms,offset_ms,error_type,"
                                    "error_message";
static const char NODE_STATS_COLS[] =
    "workflow_name,node_id,runs,attempts,failures,timeouts,p50_ms,p95_ms,mean_ms,max_ms";
static const char ERROR_ROLLUP_COLS[] =
    "workflow_name,node_id,error_type,severity,errors,first_seen,last_seen,last_message";
static const char RUNNING_PROGRESS_COLS[] =
    "workflow_id,workflow_name,started_at,node_count,nodes_finished,nodes_running,percent,elapsed,"
    "host,pid,last_activity_at,idle_for";
static const char LOSS_SUMMARY_COLS[] =
    "writer,kind,reason,total,first_recorded_at,last_recorded_at";
static const char ERRORS_COLS[] = "workflow_id,workflow_name,error_id,node_id,node_type,attempt,"
                                  "error_type,error_message,severity,occurred_at";

static const struct {
  const char *view, *cols;
} views[] = {
    {"flowcore_error_rollup", ERROR_ROLLUP_COLS},
    {"flowcore_errors", ERRORS_COLS},
    {"flowcore_node_stats", NODE_STATS_COLS},
    {"flowcore_recent_runs", RECENT_RUNS_COLS},
    {"flowcore_run_timeline", TIMELINE_COLS},
    {"flowcore_running_progress", RUNNING_PROGRESS_COLS},
    {"flowcore_writer_loss_summary", LOSS_SUMMARY_COLS},
};

/* How many lines of the plan of `fmt` (with the run id) mention `what`. */
static int explain_mentions(const char *id, const char *fmt, const char *what) {
  char sql[512];
  PGresult *r;
  int row, n = 0;
  assert_true(snprintf(sql, sizeof sql, "EXPLAIN (COSTS OFF) ") < (int)sizeof sql);
  assert_true((size_t)snprintf(sql + strlen(sql), sizeof sql - strlen(sql), fmt, id) <
              sizeof sql - strlen(sql));
  r = query(sql);
  for (row = 0; row < PQntuples(r); row++)
    if (strstr(PQgetvalue(r, row, 0), what) != NULL)
      n++;
  PQclear(r);
  return n;
}

/* The function `fn` of run `id` plans one scan of `table`, where `view`
 * filtered by the id plans more than two (one a partition). Not on Citus,
 * whose plans are the workers'. */
static void expect_pruned(const char *id, const char *fn, const char *view, const char *table) {
  char fn_sql[128], view_sql[128];
  int in_fn, in_view;
  if (fc_test_citus_dir() != NULL)
    return;
  snprintf(fn_sql, sizeof fn_sql, "SELECT * FROM %s('%%s')", fn);
  snprintf(view_sql, sizeof view_sql, "SELECT * FROM %s WHERE workflow_id = '%%s'", view);
  in_fn = explain_mentions(id, fn_sql, table);
  in_view = explain_mentions(id, view_sql, table);
  if (in_fn != 1 || in_view <= 2)
    fail_msg("[%s] plans scan %s %d times (%s) and %d (%s); want 1 and more than 2", ctx, table,
             in_fn, fn, in_view, view);
}

/* Row `row` of r is run i of the dataset, as flowcore_recent_runs shows it. */
static void expect_run_row(const PGresult *r, int row, const dataset_t *ds, int i) {
  static const struct {
    const char *status;
    double duration_ms;
    int node_count, completed, failed, skipped, timed_out, cancelled, running, attempts, errors;
  } want[4] = {
      {"completed", 639.5, 3, 3, 0, 0, 0, 0, 0, 3, 0},
      {"failed", 670, 3, 1, 1, 1, 0, 0, 0, 3, 2},
      {"cancelled", 270, 3, 1, 0, 0, 0, 2, 0, 3, 2},
      /* running: no duration; errors so far from execution_errors */
      {"running", NAN, 4, 1, 0, 0, 0, 0, 1, 3, 1},
  };
  const run_t *run = &ds->runs[i];
  expect_text(r, row, "workflow_id", run->id);
  expect_text(r, row, "workflow_name", i < 3 ? "etl" : "report");
  expect_text(r, row, "status", want[i].status);
  expect_ts(r, row, "started_at", run->t0_us);
  expect_ts(r, row, "completed_at", i < 3 ? at(run, run->end_ms) : 0);
  expect_num(r, row, "duration_ms", want[i].duration_ms);
  expect_int(r, row, "node_count", want[i].node_count);
  expect_int(r, row, "nodes_completed", want[i].completed);
  expect_int(r, row, "nodes_failed", want[i].failed);
  expect_int(r, row, "nodes_skipped", want[i].skipped);
  expect_int(r, row, "nodes_timed_out", want[i].timed_out);
  expect_int(r, row, "nodes_cancelled", want[i].cancelled);
  expect_int(r, row, "nodes_running", want[i].running);
  expect_int(r, row, "attempts", want[i].attempts);
  expect_int(r, row, "error_count", want[i].errors);
}

static void check_recent_runs(const dataset_t *ds) {
  PGresult *r;
  int i;
  ctx = "flowcore_recent_runs";
  r = query("SELECT * FROM flowcore_recent_runs ORDER BY started_at");
  expect_columns(r, RECENT_RUNS_COLS);
  expect_rows(r, 4);
  for (i = 0; i < 4; i++)
    expect_run_row(r, i, ds, i);
  PQclear(r);
  /* The documented use: newest first, limited. */
  r = query("SELECT workflow_id FROM flowcore_recent_runs ORDER BY started_at DESC LIMIT 2");
  expect_rows(r, 2);
  expect_text(r, 0, "workflow_id", ds->runs[3].id);
  expect_text(r, 1, "workflow_id", ds->runs[2].id);
  PQclear(r);

  /* flowcore_run(id): the same row for each run, none for an id of no run. */
  ctx = "flowcore_run(id)";
  for (i = 0; i < 4; i++) {
    r = queryf("SELECT * FROM flowcore_run('%s')", ds->runs[i].id);
    expect_columns(r, RECENT_RUNS_COLS);
    expect_rows(r, 1);
    expect_run_row(r, 0, ds, i);
    PQclear(r);
  }
  r = query("SELECT * FROM flowcore_run('00000000-0000-7000-8000-000000000000')");
  expect_rows(r, 0);
  PQclear(r);
  /* ... its node counts planned on the run's partition only, where the
   * view's are planned on every partition. */
  expect_pruned(ds->runs[1].id, "flowcore_run", "flowcore_recent_runs", "on node_executions");
}

static const err_t *error_of(const run_t *run, const char *node, int attempt) {
  size_t j;
  for (j = 0; j < run->nerrs; j++)
    if (run->errs[j].node != NULL && strcmp(run->errs[j].node, node) == 0 &&
        run->errs[j].attempt == attempt)
      return &run->errs[j];
  return NULL;
}

static const char *status_name(fc_node_status_t s) { return fc_node_status_name(s); }

/* The timeline rows of `run`, from row `first` of r, against its steps
 * (listed in start order, nodes that never ran last). */
static void check_timeline_rows(const PGresult *r, int first, const run_t *run) {
  size_t i;
  for (i = 0; i < run->nsteps; i++) {
    const step_t *s = &run->steps[i];
    const err_t *e = error_of(run, s->node, s->attempt);
    int row = first + (int)i;
    int ran = s->attempt > 0, ended = s->status != FC_NODE_RUNNING;
    expect_text(r, row, "workflow_id", run->id);
    expect_text(r, row, "workflow_name", fc_workflow_name(run->wf));
    expect_text(r, row, "node_id", s->node);
    expect_int(r, row, "attempt", s->attempt);
    expect_text(r, row, "node_type", "exec");
    expect_text(r, row, "status", status_name(s->status));
    expect_ts(r, row, "started_at", ran ? at(run, s->start_ms) : 0);
    expect_ts(r, row, "completed_at", ended ? at(run, s->end_ms) : 0);
    expect_num(r, row, "duration_ms", ran && ended ? (double)(s->end_ms - s->start_ms) : NAN);
    expect_num(r, row, "offset_ms", ran ? (double)s->start_ms : NAN);
    expect_text(r, row, "error_type", e ? e->type : NULL);
    expect_text(r, row, "error_message", e ? e->message : NULL);
  }
}

static void check_run_timeline(const dataset_t *ds) {
  PGresult *r;
  int i, row = 0;
  ctx = "flowcore_run_timeline";
  r = query("SELECT * FROM flowcore_run_timeline ORDER BY workflow_id, started_at NULLS LAST, "
            "node_id, attempt");
  expect_columns(r, TIMELINE_COLS);
  expect_rows(r, 3 + 4 + 4 + 3);
  for (i = 0; i < 4; i++) {
    check_timeline_rows(r, row, &ds->runs[i]);
    row += (int)ds->runs[i].nsteps;
  }
  PQclear(r);
  /* By hand, for run B: what a reader sees. */
  r = queryf(
      "SELECT string_agg(node_id || '/' || attempt || ':' || status || ':' || "
      "COALESCE(offset_ms::text, '-') || ':' || COALESCE(duration_ms::text, '-') || ':' || "
      "COALESCE(error_type, '-'), ' ' ORDER BY started_at NULLS LAST, node_id, attempt) AS t "
      "FROM flowcore_run_timeline WHERE workflow_id = '%s'",
      ds->runs[1].id);
  expect_text(r, 0, "t",
              "extract/1:failed:10:50:exit_status extract/2:completed:100:150:- "
              "transform/1:failed:260:400:exit_status load/0:skipped:-:-:-");
  PQclear(r);

  /* flowcore_run_timeline(id): the same rows for each run, none for an id
   * of no run. */
  ctx = "flowcore_run_timeline(id)";
  for (i = 0; i < 4; i++) {
    r = queryf("SELECT * FROM flowcore_run_timeline('%s') ORDER BY started_at NULLS LAST, "
               "node_id, attempt",
               ds->runs[i].id);
    expect_columns(r, TIMELINE_COLS);
    expect_rows(r, (int)ds->runs[i].nsteps);
    check_timeline_rows(r, 0, &ds->runs[i]);
    PQclear(r);
  }
  r = query("SELECT * FROM flowcore_run_timeline('00000000-0000-7000-8000-000000000000')");
  expect_rows(r, 0);
  PQclear(r);
  /* ... and its error lookup planned on the run's partition only (one
   * scan for type and message), where the view's two are planned on every
   * partition. */
  expect_pruned(ds->runs[1].id, "flowcore_run_timeline", "flowcore_run_timeline",
                "execution_errors");
}

static void check_node_stats(void) {
  static const struct {
    const char *wf, *node;
    int runs, attempts, failures, timeouts;
    double p50, p95, mean, max;
  } want[] = {
      /* extract: 100 (A), 50 + 150 (B), 30 + 120 (C) -> 30 50 100 120 150
       * p50 = 100; p95 at 0.95 * 4 = 3.8 -> 120 + 0.8 * 30 = 144; mean 450/5 */
      {"etl", "extract", 3, 5, 2, 0, 100, 144, 90, 150},
      /* load: only A ran it (B skipped, C cancelled before it started) */
      {"etl", "load", 1, 1, 0, 0, 300, 300, 300, 300},
      /* transform: 200 (A), 400 failed (B), 80 cancelled (C) -> 80 200 400
       * p50 = 200; p95 at 0.95 * 2 = 1.9 -> 200 + 0.9 * 200 = 380 */
      {"etl", "transform", 3, 3, 1, 0, 200, 380, 680.0 / 3.0, 400},
      {"report", "fetch", 1, 1, 0, 0, 1000, 1000, 1000, 1000},
      /* parse: the timed-out attempt; the running retry is not finished */
      {"report", "parse", 1, 1, 0, 1, 500, 500, 500, 500},
  };
  PGresult *r;
  int i;
  ctx = "flowcore_node_stats";
  r = query("SELECT * FROM flowcore_node_stats ORDER BY workflow_name, node_id");
  expect_columns(r, NODE_STATS_COLS);
  expect_rows(r, (int)N(want));
  for (i = 0; i < (int)N(want); i++) {
    expect_text(r, i, "workflow_name", want[i].wf);
    expect_text(r, i, "node_id", want[i].node);
    expect_int(r, i, "runs", want[i].runs);
    expect_int(r, i, "attempts", want[i].attempts);
    expect_int(r, i, "failures", want[i].failures);
    expect_int(r, i, "timeouts", want[i].timeouts);
    expect_num(r, i, "p50_ms", want[i].p50);
    expect_num(r, i, "p95_ms", want[i].p95);
    expect_num(r, i, "mean_ms", want[i].mean);
    expect_num(r, i, "max_ms", want[i].max);
  }
  PQclear(r);
  /* A filter on workflow_name gives the same rows. */
  r = query("SELECT count(*) AS n FROM flowcore_node_stats WHERE workflow_name = 'report'");
  expect_int(r, 0, "n", 2);
  PQclear(r);
}

/* flowcore_node_stats(T0 - 1 hour, T0 + span) has exactly the view's rows. */
static void expect_window_is_view(long long t0, const char *span) {
  PGresult *r = queryf("WITH w AS (SELECT * FROM flowcore_node_stats(to_timestamp(%lld / 1e6)"
                       " - interval '1 hour', to_timestamp(%lld / 1e6) + interval '%s'))"
                       " SELECT count(*) AS n FROM ((SELECT * FROM flowcore_node_stats EXCEPT ALL"
                       " SELECT * FROM w) UNION ALL (SELECT * FROM w EXCEPT ALL SELECT * FROM"
                       " flowcore_node_stats)) x",
                       t0, t0, span);
  expect_int(r, 0, "n", 0);
  PQclear(r);
}

/* flowcore_node_stats(since, until): the view's rows over the attempts that
 * started in the window; open bounds give the whole history. */
static void check_node_stats_window(const dataset_t *ds) {
  PGresult *r;
  long long t0 = (long long)ds->T0;
  ctx = "flowcore_node_stats(since, until)";
  r = query("SELECT count(*) AS n FROM ((SELECT * FROM flowcore_node_stats EXCEPT ALL "
            "SELECT * FROM flowcore_node_stats(NULL, NULL)) UNION ALL (SELECT * FROM "
            "flowcore_node_stats(NULL, NULL) EXCEPT ALL SELECT * FROM flowcore_node_stats)) x");
  expect_int(r, 0, "n", 0);
  PQclear(r);
  /* [B's start, C's start): run B only. extract 50 (failed) and 150:
   * p50 100, p95 50 + 0.95 * 100 = 145; transform 400 (failed). */
  r = queryf("SELECT * FROM flowcore_node_stats(to_timestamp(%lld / 1e6) + interval '60 s', "
             "to_timestamp(%lld / 1e6) + interval '120 s') ORDER BY workflow_name, node_id",
             t0, t0);
  expect_columns(r, NODE_STATS_COLS);
  expect_rows(r, 2);
  expect_text(r, 0, "node_id", "extract");
  expect_int(r, 0, "runs", 1);
  expect_int(r, 0, "attempts", 2);
  expect_int(r, 0, "failures", 1);
  expect_num(r, 0, "p50_ms", 100);
  expect_num(r, 0, "p95_ms", 145);
  expect_num(r, 0, "mean_ms", 100);
  expect_num(r, 0, "max_ms", 150);
  expect_text(r, 1, "node_id", "transform");
  expect_int(r, 1, "attempts", 1);
  expect_int(r, 1, "failures", 1);
  expect_num(r, 1, "p95_ms", 400);
  PQclear(r);
  /* Both shapes of the function (a window of at most a day reads only
   * the runs of a workflow_id range; a longer one joins every run) give
   * the view's rows when the window holds the whole dataset. */
  expect_window_is_view(t0, "23 hours");
  expect_window_is_view(t0, "3 days");
  /* A window before the first run is empty. */
  r = queryf("SELECT count(*) AS n FROM flowcore_node_stats(NULL, to_timestamp(%lld / 1e6))", t0);
  expect_int(r, 0, "n", 0);
  PQclear(r);
}

/* The rows of flowcore_node_minutes(since, until, settle) that differ
 * from the plain per-minute query over the same window (0: the same). */
static long long minutes_differ(long long t0, const char *since, const char *until,
                                const char *settle) {
  char settle_arg[64] = "";
  PGresult *r;
  long long n;
  if (settle != NULL) /* NULL: the default */
    snprintf(settle_arg, sizeof settle_arg, ", %s", settle);
  r = queryf("WITH f AS (SELECT * FROM flowcore_node_minutes(to_timestamp(%lld / 1e6) + %s, "
             "to_timestamp(%lld / 1e6) + %s%s)), "
             "p AS (SELECT date_trunc('minute', started_at) AS minute, count(*) AS attempts, "
             "percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50_ms, "
             "percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_ms, "
             "max(duration_ms) AS max_ms FROM flowcore_run_timeline "
             "WHERE started_at >= to_timestamp(%lld / 1e6) + %s "
             "AND started_at < to_timestamp(%lld / 1e6) + %s "
             "AND attempt >= 1 AND status <> 'running' GROUP BY 1) "
             "SELECT count(*) AS n FROM ((SELECT * FROM f EXCEPT ALL SELECT * FROM p) UNION ALL "
             "(SELECT * FROM p EXCEPT ALL SELECT * FROM f)) x",
             t0, since, t0, until, settle_arg, t0, since, t0, until);
  n = strtoll(val(r, 0, "n"), NULL, 10);
  PQclear(r);
  return n;
}

static long long count_of(const char *sql) {
  PGresult *r = query(sql);
  long long n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  return n;
}

/* flowcore_node_minutes(since, until, settle): the plain per-minute
 * query's answer, settled whole minutes stored once in
 * flowcore_node_minutes and read from there afterwards. */
static void check_node_minutes(const dataset_t *ds) {
  long long t0 = (long long)ds->T0;
  PGresult *r;
  ctx = "flowcore_node_minutes";
  /* T0 - 9.5 min .. T0 + 1 h (the start of this hour, in the past): the
   * first, partial minute from the node rows, the 69 whole minutes after
   * it stored (settle 0). */
  assert_int_equal(minutes_differ(t0, "interval '-570 s'", "interval '1 hour'", "interval '0'"), 0);
  assert_int_equal(count_of("SELECT count(*) FROM flowcore_node_minutes"), 69);
  /* The dataset's finished attempts start in its first 4 minutes. */
  r = queryf("SELECT count(*) AS n, sum(attempts) AS a FROM flowcore_node_minutes WHERE "
             "attempts > 0 AND minute >= to_timestamp(%lld / 1e6) AND minute < "
             "to_timestamp(%lld / 1e6) + interval '5 minutes'",
             t0, t0);
  assert_true(strtoll(val(r, 0, "n"), NULL, 10) >= 1);
  expect_int(r, 0, "a",
             count_of("SELECT count(*) FROM node_executions WHERE attempt >= 1 AND "
                      "status <> 'running'"));
  PQclear(r);
  /* Again: the same answer, nothing stored twice. */
  assert_int_equal(minutes_differ(t0, "interval '-570 s'", "interval '1 hour'", "interval '0'"), 0);
  assert_int_equal(count_of("SELECT count(*) FROM flowcore_node_minutes"), 69);
  /* Stored minutes are read, not recomputed: changed by hand, the change
   * shows (what a row written after its minute was stored does not). */
  exec_ok("UPDATE flowcore_node_minutes SET p95_ms = -1 WHERE attempts > 0");
  r = queryf("SELECT count(*) AS n FROM flowcore_node_minutes(to_timestamp(%lld / 1e6), "
             "to_timestamp(%lld / 1e6) + interval '1 hour', interval '0') WHERE p95_ms = -1",
             t0, t0);
  assert_true(strtoll(val(r, 0, "n"), NULL, 10) >= 1);
  PQclear(r);
  /* Forgotten, they are aggregated again from the node rows. */
  assert_int_equal(count_of("SELECT flowcore_node_minutes_forget(NULL, NULL)"), 69);
  assert_int_equal(minutes_differ(t0, "interval '0'", "interval '1 hour'", "interval '0'"), 0);
  assert_int_equal(count_of("SELECT count(*) FROM flowcore_node_minutes"), 60);
  assert_int_equal(count_of("SELECT flowcore_node_minutes_forget(NULL, NULL)"), 60);
  /* A read-only transaction stores nothing and answers the same. */
  exec_ok("BEGIN READ ONLY");
  assert_int_equal(minutes_differ(t0, "interval '-2 hours'", "interval '1 hour'", "interval '0'"),
                   0);
  exec_ok("COMMIT");
  assert_int_equal(count_of("SELECT count(*) FROM flowcore_node_minutes"), 0);
  /* The default settle (1 hour), up to now: the minutes of the last hour
   * from the node rows, the older ones stored; the answer is the same. */
  {
    char until_now[96];
    snprintf(until_now, sizeof until_now, "(now() - to_timestamp(%lld / 1e6))", t0);
    assert_int_equal(minutes_differ(t0, "interval '-1 hour'", until_now, NULL), 0);
  }
  /* A window inside one minute (no whole minute): from the node rows,
   * bounded by until too. */
  assert_int_equal(minutes_differ(t0, "interval '70 s'", "interval '110 s'", "interval '0'"), 0);
  assert_int_equal(minutes_differ(t0, "interval '10 ms'", "interval '50 ms'", "interval '0'"), 0);
  /* An empty or reversed window has no rows. */
  assert_int_equal(count_of("SELECT count(*) FROM flowcore_node_minutes(now(), now() - "
                            "interval '1 hour')"),
                   0);
  /* A dashboard's role may call it (it stores as the function's owner)
   * but not forget. Not on Citus (tests/support/citus_cluster.h): there
   * the coordinator reaches the workers as the current role, and
   * flowcore_reader may not log in. */
  if (fc_test_citus_dir() != NULL)
    return;
  exec_ok("SELECT flowcore_node_minutes_forget(NULL, NULL)");
  exec_ok("SET ROLE flowcore_reader");
  assert_int_equal(minutes_differ(t0, "interval '0'", "interval '1 hour'", "interval '0'"), 0);
  r = PQexec(conn, "SELECT flowcore_node_minutes_forget(NULL, NULL)");
  assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
  assert_non_null(strstr(PQresultErrorMessage(r), "permission denied"));
  PQclear(r);
  exec_ok("RESET ROLE");
  assert_int_equal(count_of("SELECT count(*) FROM flowcore_node_minutes"), 60);
}

/* flowcore_errors: every error row, with its run's name. */
static void check_errors(const dataset_t *ds) {
  PGresult *r;
  ctx = "flowcore_errors";
  r = query("SELECT * FROM flowcore_errors ORDER BY occurred_at, error_id");
  expect_columns(r, ERRORS_COLS);
  expect_rows(r, 5);
  PQclear(r);
  r = query("SELECT count(*) AS n FROM flowcore_errors f JOIN execution_errors e USING "
            "(workflow_id, error_id) JOIN workflow_executions w USING (workflow_id) WHERE "
            "f.workflow_name = w.workflow_name AND f.occurred_at = e.occurred_at AND "
            "f.node_id IS NOT DISTINCT FROM e.node_id AND f.attempt IS NOT DISTINCT FROM "
            "e.attempt AND f.severity = e.severity AND f.error_message = e.error_message");
  expect_int(r, 0, "n", 5);
  PQclear(r);
  r = queryf("SELECT string_agg(severity || ':' || COALESCE(node_id, '-'), ' ' ORDER BY "
             "occurred_at) AS s FROM flowcore_errors WHERE workflow_id = '%s'",
             ds->runs[2].id);
  expect_text(r, 0, "s", "warning:extract info:-");
  PQclear(r);
}

/* The plan of sql (EXPLAIN), as one string. */
static char *plan_of(const char *sql) {
  PGresult *r = queryf("EXPLAIN %s", sql);
  size_t len = 0;
  char *out = malloc(1);
  assert_non_null(out);
  out[0] = '\0';
  for (int i = 0; i < PQntuples(r); i++) {
    const char *line = PQgetvalue(r, i, 0);
    out = realloc(out, len + strlen(line) + 2);
    assert_non_null(out);
    memcpy(out + len, line, strlen(line));
    len += strlen(line);
    out[len++] = '\n';
    out[len] = '\0';
  }
  PQclear(r);
  return out;
}

/* A dashboard query reads the index of its window and only the tables of
 * the columns it selects (examples/grafana/README.md). */
/* Whether the plan scans `index`, or on a partitioned table the index of a
 * partition made from it ("<table>_pYYYYMMDD_<rest of the name>", where the
 * planner may also pick a partition's index whose name ends the same way). */
static int plan_uses(const char *plan, const char *index) {
  static const char *const tables[] = {"workflow_executions", "node_executions",
                                       "execution_errors"};
  if (strstr(plan, index) != NULL)
    return 1;
  {
    /* The partitions' indexes made from it, by the catalog (an index
     * created on the partitioned table after its partitions has names
     * PostgreSQL chose, e.g. <partition>_<column>_idx). */
    PGresult *r = queryf("SELECT c.relname FROM pg_partition_tree(to_regclass('%s')) p"
                         " JOIN pg_class c ON c.oid = p.relid WHERE p.isleaf",
                         index);
    int found = 0;
    for (int i = 0; i < PQntuples(r) && !found; i++) {
      char on[160];
      snprintf(on, sizeof on, " on %s ", PQgetvalue(r, i, 0));
      found = strstr(plan, on) != NULL;
    }
    PQclear(r);
    if (found)
      return 1;
  }
  for (size_t t = 0; t < sizeof tables / sizeof *tables; t++) {
    size_t tl = strlen(tables[t]);
    const char *suffix = index + tl, *p = plan;
    char prefix[64];
    if (strncmp(index, tables[t], tl) != 0)
      continue;
    snprintf(prefix, sizeof prefix, "using %s_p", tables[t]);
    while ((p = strstr(p, prefix)) != NULL) {
      const char *end = strchr(p + strlen(prefix), ' ');
      size_t sl = strlen(suffix);
      if (end != NULL && (size_t)(end - p) > sl && strncmp(end - sl, suffix, sl) == 0)
        return 1;
      p += strlen(prefix);
    }
  }
  return 0;
}

static void expect_plan(const char *sql, const char *index, const char *const *absent) {
  char *plan = plan_of(sql);
  if (index != NULL && !plan_uses(plan, index))
    fail_msg("%s: expected %s in the plan of\n%s\n%s", ctx, index, sql, plan);
  for (; absent != NULL && *absent != NULL; absent++)
    if (strstr(plan, *absent) != NULL)
      fail_msg("%s: did not expect %s in the plan of\n%s\n%s", ctx, *absent, sql, plan);
  free(plan);
}

static void check_dashboard_plans(void) {
  static const char *const no_nodes_errors[] = {"node_executions", "execution_errors", NULL};
  static const char *const no_runs_errors[] = {"workflow_executions", "execution_errors", NULL};
  static const char *const no_runs[] = {"workflow_executions", NULL};
  ctx = "dashboard plans";
  /* On Citus (tests/support/citus_cluster.h) each worker plans its shards'
   * part: these are the plans of one server. */
  if (fc_test_citus_dir() != NULL)
    return;
  /* Tiny tables: make the planner show which index it can use. */
  exec_ok("SET enable_seqscan = off");
  expect_plan("SELECT date_trunc('minute', started_at), status, count(*) FROM "
              "flowcore_recent_runs WHERE started_at >= now() - interval '6 hours' GROUP BY 1, 2",
              "workflow_executions_started_at_idx", no_nodes_errors);
  expect_plan("SELECT date_trunc('minute', started_at), percentile_cont(0.95) WITHIN GROUP "
              "(ORDER BY duration_ms) FROM flowcore_run_timeline WHERE started_at >= now() - "
              "interval '6 hours' GROUP BY 1",
              "node_executions_started_at_brin", no_runs_errors);
  expect_plan("SELECT date_trunc('hour', occurred_at), count(*) FROM flowcore_errors WHERE "
              "occurred_at >= now() - interval '7 days' GROUP BY 1",
              "execution_errors_occurred_at_idx", no_runs);
  /* A window of at most a day reads only the runs between the smallest
   * and the largest workflow_id of its node rows (a key range), not every
   * run. (The BRIN index is not checked here: on these tiny tables a full
   * scan of the primary key looks cheaper to the planner.) */
  expect_plan("SELECT * FROM flowcore_node_stats(now() - interval '6 hours', now())",
              "workflow_executions_pkey", NULL);
  {
    char *plan = plan_of("SELECT * FROM flowcore_node_stats(now() - interval '6 hours', now())");
    if (strstr(plan, "Index Cond: ((workflow_id >= $") == NULL)
      fail_msg("%s: flowcore_node_stats(6 h) reads runs without a workflow_id range:\n%s", ctx,
               plan);
    free(plan);
  }
  expect_plan("SELECT workflow_id FROM flowcore_recent_runs WHERE status = 'failed' AND "
              "started_at >= now() - interval '6 hours'",
              "workflow_executions_status_started_at_idx", no_nodes_errors);
  exec_ok("RESET enable_seqscan");
}

static void check_error_rollup(const dataset_t *ds) {
  const run_t *b = &ds->runs[1], *c = &ds->runs[2], *d = &ds->runs[3];
  PGresult *r;
  ctx = "flowcore_error_rollup";
  r = query("SELECT * FROM flowcore_error_rollup "
            "ORDER BY workflow_name, node_id NULLS LAST, error_type, severity");
  expect_columns(r, ERROR_ROLLUP_COLS);
  expect_rows(r, 4);
  /* extract failed in B and in C: two errors, the last one C's */
  expect_text(r, 0, "workflow_name", "etl");
  expect_text(r, 0, "node_id", "extract");
  expect_text(r, 0, "error_type", "exit_status");
  expect_text(r, 0, "severity", "warning");
  expect_int(r, 0, "errors", 2);
  expect_ts(r, 0, "first_seen", at(b, 60));
  expect_ts(r, 0, "last_seen", at(c, 40));
  expect_text(r, 0, "last_message", "extract exited with status 3");
  expect_text(r, 1, "node_id", "transform");
  expect_text(r, 1, "error_type", "exit_status");
  expect_text(r, 1, "severity", "critical");
  expect_int(r, 1, "errors", 1);
  expect_ts(r, 1, "first_seen", at(b, 660));
  expect_ts(r, 1, "last_seen", at(b, 660));
  expect_text(r, 1, "last_message", "transform exited with status 2");
  /* the workflow-level error: node_id NULL */
  expect_text(r, 2, "workflow_name", "etl");
  expect_text(r, 2, "node_id", NULL);
  expect_text(r, 2, "error_type", "signal");
  expect_text(r, 2, "severity", "info");
  expect_int(r, 2, "errors", 1);
  expect_ts(r, 2, "first_seen", at(c, 250));
  expect_ts(r, 2, "last_seen", at(c, 250));
  expect_text(r, 2, "last_message", "cancelled by SIGTERM");
  expect_text(r, 3, "workflow_name", "report");
  expect_text(r, 3, "node_id", "parse");
  expect_text(r, 3, "error_type", "timeout");
  expect_text(r, 3, "severity", "error");
  expect_int(r, 3, "errors", 1);
  expect_ts(r, 3, "first_seen", at(d, 1520));
  expect_ts(r, 3, "last_seen", at(d, 1520));
  expect_text(r, 3, "last_message", "parse timed out after 500 ms");
  PQclear(r);
}

static void check_running_progress(const dataset_t *ds) {
  PGresult *r;
  ctx = "flowcore_running_progress";
  r = query("SELECT *, elapsed = now() - started_at AS elapsed_ok FROM flowcore_running_progress");
  expect_columns(r, "workflow_id,workflow_name,started_at,node_count,nodes_finished,nodes_running,"
                    "percent,elapsed,host,pid,last_activity_at,idle_for,elapsed_ok");
  expect_rows(r, 1);
  expect_text(r, 0, "workflow_id", ds->runs[3].id);
  expect_text(r, 0, "workflow_name", "report");
  expect_ts(r, 0, "started_at", ds->runs[3].t0_us);
  expect_int(r, 0, "node_count", 4);
  expect_int(r, 0, "nodes_finished", 1); /* fetch; parse's latest attempt runs */
  expect_int(r, 0, "nodes_running", 1);
  expect_text(r, 0, "percent", "25.0");
  expect_text(r, 0, "elapsed_ok", "t");
  {
    /* written by this process's writer */
    char host[256];
    assert_int_equal(gethostname(host, sizeof host), 0);
    expect_text(r, 0, "host", host);
    expect_int(r, 0, "pid", (long long)getpid());
  }
  expect_ts(r, 0, "last_activity_at", at(&ds->runs[3], 1600)); /* the retry of parse started */
  PQclear(r);
  r = query("SELECT * FROM flowcore_running_progress");
  expect_columns(r, RUNNING_PROGRESS_COLS);
  PQclear(r);
}

/* The fallbacks: wall-clock durations where the monotonic one is missing,
 * and node_executions' own error columns where execution_errors has none.
 * (The writer always stores a monotonic duration for an ended attempt, so
 * these rows are edited by hand, as an older writer could have left them.) */
static void check_fallbacks(const dataset_t *ds) {
  const run_t *a = &ds->runs[0], *b = &ds->runs[1];
  PGresult *r;
  ctx = "fallbacks";
  exec_ok("BEGIN");
  /* These rows are finished: the history is append-only (migration 0005),
   * so the owner lifts the guard for this transaction only (on Citus that
   * takes the setting flowcore migrate uses for the trigger, docs/scaling.md). */
  if (fc_test_citus_dir() != NULL)
    exec_ok("SET LOCAL citus.enable_unsafe_triggers = on");
  exec_ok("ALTER TABLE workflow_executions DISABLE TRIGGER flowcore_append_only");
  exec_ok("ALTER TABLE node_executions DISABLE TRIGGER flowcore_append_only");
  r = queryf(
      "UPDATE workflow_executions SET duration_ms = NULL WHERE workflow_id = '%s' RETURNING 1",
      a->id);
  PQclear(r);
  r = queryf(
      "UPDATE node_executions SET duration_ms = NULL, error_type = 'own', error_message = 'own "
      "message' WHERE workflow_id = '%s' AND node_id = 'load' RETURNING 1",
      a->id);
  PQclear(r);
  r = queryf("UPDATE node_executions SET error_type = 'ignored' WHERE workflow_id = '%s' AND "
             "node_id = 'extract' AND attempt = 1 RETURNING 1",
             b->id);
  PQclear(r);
  r = queryf("SELECT duration_ms FROM flowcore_recent_runs WHERE workflow_id = '%s'", a->id);
  expect_num(r, 0, "duration_ms", 640); /* completed_at - started_at, not 639.5 */
  PQclear(r);
  r = queryf("SELECT duration_ms, error_type, error_message FROM flowcore_run_timeline "
             "WHERE workflow_id = '%s' AND node_id = 'load'",
             a->id);
  expect_num(r, 0, "duration_ms", 300);
  expect_text(r, 0, "error_type", "own");
  expect_text(r, 0, "error_message", "own message");
  PQclear(r);
  r = queryf("SELECT error_type FROM flowcore_run_timeline WHERE workflow_id = '%s' AND "
             "node_id = 'extract' AND attempt = 1",
             b->id);
  expect_text(r, 0, "error_type", "exit_status");
  PQclear(r);
  r = query("SELECT p50_ms, max_ms FROM flowcore_node_stats WHERE node_id = 'load'");
  expect_num(r, 0, "p50_ms", 300);
  PQclear(r);
  exec_ok("ROLLBACK");
}

/* `abandoned`: the running run marked so (as `flowcore history reap` does)
 * leaves the progress view and the stuck-runs query, shows in the runs
 * view and the per-status counts, and is finished history from then on. */
static void check_abandoned(const dataset_t *ds) {
  const run_t *d = &ds->runs[3];
  PGresult *r;
  char *sql;
  qvar_t v = {"days", "7"};
  ctx = "abandoned";
  exec_ok("BEGIN");
  /* timestamptz + interval is STABLE (time zones), which Citus refuses on
   * a column in an UPDATE: the same instant by immutable steps. */
  r = queryf("UPDATE workflow_executions SET status = 'abandoned', error_type = 'abandoned', "
             "completed_at = (started_at AT TIME ZONE 'UTC' + interval '1600 milliseconds') "
             "AT TIME ZONE 'UTC' "
             "WHERE workflow_id = '%s' AND status = 'running' RETURNING 1",
             d->id);
  expect_rows(r, 1);
  PQclear(r);
  r = queryf("SELECT status, duration_ms, nodes_running FROM flowcore_recent_runs "
             "WHERE workflow_id = '%s'",
             d->id);
  expect_text(r, 0, "status", "abandoned");
  expect_num(r, 0, "duration_ms", 1600); /* wall clock to the last activity */
  expect_int(r, 0, "nodes_running", 1);  /* parse's retry: the last known of it */
  PQclear(r);
  r = query("SELECT * FROM flowcore_running_progress");
  expect_rows(r, 0);
  PQclear(r);
  sql = load_query("runs_per_status_per_day.sql", &v, 1);
  r = query(sql);
  free(sql);
  expect_rows(r, 4);
  expect_text(r, 0, "status", "abandoned");
  PQclear(r);
  exec_ok("SAVEPOINT s");
  r = PQexec(conn, "UPDATE workflow_executions SET status = 'completed' WHERE status = "
                   "'abandoned'");
  if (PQresultStatus(r) != PGRES_FATAL_ERROR ||
      strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23000") != 0)
    fail_msg("%s: an abandoned run could be changed", ctx);
  PQclear(r);
  exec_ok("ROLLBACK TO SAVEPOINT s");
  exec_ok("ROLLBACK");
}

/* ---- canned queries -----------------------------------------------------------------------------
 */

static void q_recent_failures(const dataset_t *ds) {
  const run_t *b = &ds->runs[1];
  char *sql = load_query("recent_failures.sql", NULL, 0);
  PGresult *r = query(sql);
  expect_columns(r, "workflow_id,workflow_name,started_at,completed_at,duration_ms,failed_nodes,"
                    "error_count,last_error_node,last_error_type,last_error_message");
  expect_rows(r, 1); /* B; C was cancelled, not failed */
  expect_text(r, 0, "workflow_id", b->id);
  expect_text(r, 0, "workflow_name", "etl");
  expect_ts(r, 0, "started_at", b->t0_us);
  expect_ts(r, 0, "completed_at", at(b, 670));
  expect_num(r, 0, "duration_ms", 670);
  expect_text(r, 0, "failed_nodes", "transform"); /* extract failed, then completed */
  expect_int(r, 0, "error_count", 2);
  expect_text(r, 0, "last_error_node", "transform");
  expect_text(r, 0, "last_error_type", "exit_status");
  expect_text(r, 0, "last_error_message", "transform exited with status 2");
  PQclear(r);
  free(sql);
}

static void q_slowest_nodes(const dataset_t *ds) {
  static const char *const order[] = {"report/fetch", "report/parse", "etl/transform", "etl/load",
                                      "etl/extract"};
  char *sql = load_query("slowest_nodes.sql", NULL, 0);
  PGresult *r = query(sql);
  int i;
  (void)ds;
  expect_columns(r, NODE_STATS_COLS);
  expect_rows(r, 5);
  for (i = 0; i < 5; i++) {
    char key[64];
    snprintf(key, sizeof key, "%s/%s", val(r, i, "workflow_name"), val(r, i, "node_id"));
    if (strcmp(key, order[i]) != 0)
      fail_msg("[%s] row %d is %s, want %s", ctx, i, key, order[i]);
  }
  expect_num(r, 0, "p95_ms", 1000);
  expect_num(r, 1, "p95_ms", 500);
  expect_int(r, 1, "timeouts", 1);
  expect_num(r, 2, "p95_ms", 380);
  expect_num(r, 2, "p50_ms", 200);
  expect_int(r, 2, "failures", 1);
  expect_num(r, 3, "p95_ms", 300);
  expect_num(r, 4, "p95_ms", 144);
  expect_num(r, 4, "p50_ms", 100);
  expect_num(r, 4, "mean_ms", 90);
  expect_num(r, 4, "max_ms", 150);
  expect_int(r, 4, "attempts", 5);
  expect_int(r, 4, "runs", 3);
  PQclear(r);
  free(sql);
}

static void q_run_timeline(const dataset_t *ds) {
  const run_t *b = &ds->runs[1], *d = &ds->runs[3];
  char prefix[40], upper[40];
  size_t i, j;
  PGresult *r;
  char *sql;
  /* 13 characters: the 48-bit millisecond time, unique per run here */
  snprintf(prefix, sizeof prefix, "%.13s", b->id);
  {
    qvar_t v = {"run", prefix};
    sql = load_query("run_timeline.sql", &v, 1);
  }
  r = query(sql);
  free(sql);
  expect_columns(r, TIMELINE_COLS);
  expect_rows(r, 4);
  check_timeline_rows(r, 0, b);
  PQclear(r);
  /* Without hyphens, in upper case: the same run. */
  for (i = 0, j = 0; b->id[i] != '\0' && j < 12; i++)
    if (b->id[i] != '-')
      upper[j++] = (char)(b->id[i] >= 'a' && b->id[i] <= 'f' ? b->id[i] - 'a' + 'A' : b->id[i]);
  upper[j] = '\0';
  {
    qvar_t v = {"run", upper};
    sql = load_query("run_timeline.sql", &v, 1);
  }
  r = query(sql);
  free(sql);
  expect_rows(r, 4);
  expect_text(r, 3, "node_id", "load");
  expect_text(r, 3, "started_at", NULL); /* never ran: last */
  PQclear(r);
  /* The full id of the running run. */
  {
    qvar_t v = {"run", d->id};
    sql = load_query("run_timeline.sql", &v, 1);
  }
  r = query(sql);
  free(sql);
  expect_rows(r, 3);
  check_timeline_rows(r, 0, d);
  PQclear(r);
  /* A prefix all four runs share: all of them, run after run. */
  snprintf(prefix, sizeof prefix, "%.4s", b->id);
  {
    qvar_t v = {"run", prefix};
    sql = load_query("run_timeline.sql", &v, 1);
  }
  r = query(sql);
  free(sql);
  expect_rows(r, 14);
  expect_text(r, 0, "workflow_id", ds->runs[0].id);
  expect_text(r, 13, "workflow_id", d->id);
  PQclear(r);
  /* A value with a quote in it stays a literal (and is no uuid). */
  {
    qvar_t v = {"run", "x'; DROP TABLE node_executions; --"};
    PGresult *bad;
    sql = load_query("run_timeline.sql", &v, 1);
    bad = PQexec(conn, sql);
    free(sql);
    assert_int_equal(PQresultStatus(bad), PGRES_FATAL_ERROR);
    assert_non_null(strstr(PQresultErrorMessage(bad), "uuid"));
    PQclear(bad);
  }
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions"), 14);
}

static void q_error_rate_hourly(const dataset_t *ds) {
  qvar_t v = {"hours", "24"};
  char *sql = load_query("error_rate_hourly.sql", &v, 1);
  PGresult *r = query(sql);
  int i;
  free(sql);
  expect_columns(r, "hour,workflow_name,runs,failed_runs,errors,failure_rate,errors_per_run");
  expect_rows(r, 2);
  for (i = 0; i < 2; i++)
    expect_ts(r, i, "hour", ds->T0);
  /* etl: A, B, C started; B failed; errors B 2 + C 2 */
  expect_text(r, 0, "workflow_name", "etl");
  expect_int(r, 0, "runs", 3);
  expect_int(r, 0, "failed_runs", 1);
  expect_int(r, 0, "errors", 4);
  expect_text(r, 0, "failure_rate", "0.333");
  expect_text(r, 0, "errors_per_run", "1.333");
  expect_text(r, 1, "workflow_name", "report");
  expect_int(r, 1, "runs", 1);
  expect_int(r, 1, "failed_runs", 0);
  expect_int(r, 1, "errors", 1);
  expect_text(r, 1, "failure_rate", "0.000");
  expect_text(r, 1, "errors_per_run", "1.000");
  PQclear(r);
}

static void q_stuck_runs(const dataset_t *ds) {
  const run_t *d = &ds->runs[3];
  qvar_t v = {"minutes", "30"};
  char *sql = load_query("stuck_runs.sql", &v, 1);
  PGresult *r = query(sql);
  free(sql);
  expect_columns(r, "workflow_id,workflow_name,started_at,node_count,nodes_finished,nodes_running,"
                    "percent,elapsed,host,pid,last_activity_at,idle_for");
  expect_rows(r, 1);
  expect_text(r, 0, "workflow_id", d->id);
  expect_int(r, 0, "nodes_finished", 1);
  expect_int(r, 0, "nodes_running", 1);
  expect_text(r, 0, "percent", "25.0");
  expect_ts(r, 0, "last_activity_at", at(d, 1600)); /* the retry of parse started */
  PQclear(r);
  /* Not stuck by a threshold of ~70 days. */
  v.value = "100000";
  sql = load_query("stuck_runs.sql", &v, 1);
  r = query(sql);
  free(sql);
  expect_rows(r, 0);
  PQclear(r);
}

static void q_runs_per_status_per_day(const dataset_t *ds) {
  static const char *const statuses[] = {"cancelled", "completed", "failed", "running"};
  qvar_t v = {"days", "7"};
  char *sql = load_query("runs_per_status_per_day.sql", &v, 1);
  PGresult *r = query(sql), *day;
  int i;
  free(sql);
  expect_columns(r, "day,status,runs");
  expect_rows(r, 4);
  day = queryf("SELECT (timestamptz 'epoch' + %lld * interval '1 microsecond')::date::text AS d",
               (long long)ds->T0);
  for (i = 0; i < 4; i++) {
    expect_text(r, i, "day", PQgetvalue(day, 0, 0));
    expect_text(r, i, "status", statuses[i]);
    expect_int(r, i, "runs", 1);
  }
  PQclear(day);
  PQclear(r);
}

static const struct {
  const char *file;
  void (*check)(const dataset_t *ds);
} queries[] = {
    {"error_rate_hourly.sql", q_error_rate_hourly},
    {"recent_failures.sql", q_recent_failures},
    {"run_timeline.sql", q_run_timeline},
    {"runs_per_status_per_day.sql", q_runs_per_status_per_day},
    {"slowest_nodes.sql", q_slowest_nodes},
    {"stuck_runs.sql", q_stuck_runs},
};

/* ---- tests
 * ---------------------------------------------------------------------------------------- */

/* Every view and every canned query, against data with known answers. */
static void test_views_and_queries(void **state) {
  dataset_t ds;
  char *files[MAX_FILES];
  size_t n, i, k;
  (void)state;
  dataset_load(&ds);

  check_recent_runs(&ds);
  check_run_timeline(&ds);
  check_node_stats();
  check_node_stats_window(&ds);
  check_node_minutes(&ds);
  check_error_rollup(&ds);
  check_errors(&ds);
  check_dashboard_plans();
  check_running_progress(&ds);
  ctx = "flowcore_writer_loss_summary";
  {
    PGresult *r = query("SELECT * FROM flowcore_writer_loss_summary");
    expect_columns(r, LOSS_SUMMARY_COLS);
    expect_rows(r, 0); /* nothing was lost */
    PQclear(r);
  }

  /* Every file of sql/queries has its check, and every check its file. */
  n = list_sql(SRC "/sql/queries", files);
  assert_int_equal(n, N(queries));
  for (i = 0; i < n; i++) {
    for (k = 0; k < N(queries); k++)
      if (strcmp(files[i], queries[k].file) == 0)
        break;
    if (k == N(queries))
      fail_msg("sql/queries/%s has no check in test_sql_views.c", files[i]);
    ctx = files[i];
    queries[k].check(&ds);
  }
  free_names(files, n);

  check_fallbacks(&ds);
  check_abandoned(&ds);
  dataset_free(&ds);
}

/* A real run through the engine: the views agree with what it did. */
static void ok_fn(fc_node_ctx_t *c, void *data) {
  (void)data;
  fc_node_succeed(c, json_pack("{s:s}", "node", fc_node_ctx_node_id(c)));
}

static void flaky_fn(fc_node_ctx_t *c, void *data) {
  (void)data;
  if (fc_node_ctx_attempt(c) == 1)
    fc_node_failf(c, FC_SEVERITY_WARNING, "flaky", "first attempt of %s fails",
                  fc_node_ctx_node_id(c));
  else
    fc_node_succeed(c, NULL);
}

static void fail_fn(fc_node_ctx_t *c, void *data) {
  (void)data;
  fc_node_failf(c, FC_SEVERITY_CRITICAL, "broken", "node %s always fails", fc_node_ctx_node_id(c));
}

static void test_engine_run(void **state) {
  uv_loop_t loop;
  fc_manager_t *mgr;
  fc_history_writer_t *w;
  fc_history_config_t cfg;
  fc_handler_t dbh;
  fc_workflow_t *wf;
  fc_node_t *n;
  fc_run_t *run;
  fc_error_t err;
  fc_history_stats_t st;
  PGresult *r;
  int db_id;
  (void)state;
  assert_int_equal(fc_workflow_new(&wf, "live"), 0);
  assert_int_equal(fc_workflow_add_node(wf, "a", ok_fn, NULL, &n), 0);
  assert_int_equal(fc_workflow_add_node(wf, "b", flaky_fn, NULL, &n), 0);
  assert_int_equal(fc_node_add_dep(n, "a"), 0);
  assert_int_equal(fc_node_set_retries(n, 1, 1, 5), 0);
  assert_int_equal(fc_workflow_add_node(wf, "c", fail_fn, NULL, &n), 0);
  assert_int_equal(fc_workflow_add_node(wf, "d", ok_fn, NULL, &n), 0);
  assert_int_equal(fc_node_add_dep(n, "c"), 0);

  fc_history_config_init(&cfg);
  cfg.conninfo = db;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(fc_manager_new(&mgr), 0);
  fc_error_clear(&err);
  assert_int_equal(fc_history_writer_new(&w, &cfg, &err), 0);
  assert_int_equal(fc_history_handler(w, &loop, &dbh), 0);
  assert_int_equal(fc_manager_add(mgr, &dbh, 0, &db_id), 0);
  assert_int_equal(fc_run_new(&run, &loop, wf, mgr, &err), 0);
  assert_int_equal(fc_run_start(run, NULL, NULL, NULL), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(fc_run_status(run), FC_WORKFLOW_FAILED);
  assert_int_equal(fc_history_writer_flush(w, 30000), 0);

  ctx = "engine run: flowcore_recent_runs";
  r = query("SELECT r.*, r.duration_ms = w.duration_ms AS same_duration "
            "FROM flowcore_recent_runs r JOIN workflow_executions w USING (workflow_id)");
  expect_rows(r, 1);
  expect_text(r, 0, "status", "failed");
  expect_int(r, 0, "node_count", 4);
  expect_int(r, 0, "nodes_completed", 2); /* a, and b on its retry */
  expect_int(r, 0, "nodes_failed", 1);    /* c */
  expect_int(r, 0, "nodes_skipped", 1);   /* d */
  expect_int(r, 0, "nodes_running", 0);
  expect_int(r, 0, "attempts", 4);
  expect_int(r, 0, "error_count", 2);
  expect_text(r, 0, "same_duration", "t");
  PQclear(r);

  ctx = "engine run: flowcore_run_timeline";
  r = query("SELECT * FROM flowcore_run_timeline ORDER BY started_at NULLS LAST, node_id, attempt");
  expect_rows(r, 5);
  expect_text(r, 4, "node_id", "d");
  expect_text(r, 4, "status", "skipped");
  expect_text(r, 4, "offset_ms", NULL);
  PQclear(r);
  r = query("SELECT node_id, attempt, error_type FROM flowcore_run_timeline "
            "WHERE error_type IS NOT NULL ORDER BY node_id, attempt");
  expect_rows(r, 2);
  expect_text(r, 0, "node_id", "b");
  expect_int(r, 0, "attempt", 1);
  expect_text(r, 0, "error_type", "flaky");
  expect_text(r, 1, "node_id", "c");
  expect_text(r, 1, "error_type", "broken");
  PQclear(r);
  r = query("SELECT count(*) AS n FROM flowcore_run_timeline "
            "WHERE offset_ms < 0 OR duration_ms < 0 OR (attempt > 0 AND offset_ms IS NULL)");
  expect_int(r, 0, "n", 0);
  PQclear(r);

  ctx = "engine run: flowcore_node_stats";
  r = query("SELECT s.*, abs(s.p50_ms - (SELECT avg(duration_ms) FROM node_executions "
            "WHERE node_id = 'b')) < 1e-9 AS p50_is_mean_of_two FROM flowcore_node_stats s WHERE "
            "node_id = 'b'");
  expect_rows(r, 1);
  expect_int(r, 0, "runs", 1);
  expect_int(r, 0, "attempts", 2);
  expect_int(r, 0, "failures", 1);
  expect_text(r, 0, "p50_is_mean_of_two", "t");
  PQclear(r);

  ctx = "engine run: flowcore_error_rollup";
  r = query(
      "SELECT node_id, error_type, severity, errors FROM flowcore_error_rollup ORDER BY node_id");
  expect_rows(r, 2);
  expect_text(r, 0, "severity", "warning");
  expect_text(r, 1, "severity", "critical");
  PQclear(r);
  r = query("SELECT count(*) AS n FROM flowcore_running_progress");
  expect_int(r, 0, "n", 0);
  PQclear(r);

  fc_run_close(run, NULL, NULL);
  assert_int_equal(fc_manager_remove(mgr, db_id), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(fc_history_writer_close(w, &st), 0);
  assert_int_equal(st.dropped_total, 0);
  fc_manager_free(mgr);
  fc_test_loop_close(&loop);
  fc_workflow_free(wf);
}

/* flowcore_writer_loss_summary: losses the writer really had (a full queue
 * under the drop policy), plus rows written by hand for exact sums. */
static void test_loss_summary(void **state) {
  static const char *const nodes[] = {"n", NULL};
  fc_history_config_t cfg;
  fc_history_stats_t st;
  feeder_t f;
  run_t x, y;
  PGconn *holder;
  PGresult *r;
  fc_workflow_t *wf = make_wf("lossy", nodes);
  int64_t now_us = (int64_t)time(NULL) * 1000000;
  const err_t e = {"n", 1, FC_SEVERITY_ERROR, "boom", "lost", 5};
  (void)state;

  /* While this lock is held the writer cannot set its connections up, so
   * what it accepted stays in its custody. */
  holder = PQconnectdb(db);
  assert_int_equal(PQstatus(holder), CONNECTION_OK);
  r = PQexec(holder, "BEGIN; LOCK TABLE workflow_executions IN ACCESS EXCLUSIVE MODE");
  assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);

  fc_history_config_init(&cfg);
  cfg.policy = FC_QUEUE_DROP;
  cfg.queue_capacity = 1;
  feeder_init(&f, &cfg);
  memset(&x, 0, sizeof x);
  x.wf = wf;
  x.end = FC_WORKFLOW_RUNNING;
  y = x;
  y.offset_ms = 1;
  /* x: one record, accepted (the queue was empty) */
  feed_run(&f, &x, now_us, 1);
  hand_over(&f);
  /* y: a workflow start, a node start and an error in one block: the queue
   * is full, so all three are dropped and counted */
  {
    static const step_t s = {"n", 1, FC_NODE_RUNNING, 2, -1};
    y.steps = &s;
    y.nsteps = 1;
    y.errs = &e;
    y.nerrs = 1;
    feed_run(&f, &y, now_us, 2);
  }
  hand_over(&f);
  fc_history_writer_stats(f.w, &st);
  assert_int_equal(st.dropped_total, 3);
  assert_int_equal(st.dropped[FC_REC_WORKFLOW][FC_DROP_QUEUE_FULL], 1);
  assert_int_equal(st.dropped[FC_REC_NODE][FC_DROP_QUEUE_FULL], 1);
  assert_int_equal(st.dropped[FC_REC_ERROR][FC_DROP_QUEUE_FULL], 1);

  r = PQexec(holder, "COMMIT");
  assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  PQfinish(holder);
  assert_int_equal(fc_history_writer_flush(f.w, 30000), 0);
  {
    /* close reports the loss: FC_ELOST (dropped for a reason other than the
     * deadline) per history.h; older writers said FC_ETIMEDOUT for any loss */
    int rc = feeder_close(&f, &st);
    assert_true(rc == FC_ELOST || rc == FC_ETIMEDOUT);
  }
  assert_int_equal(st.dropped_total, 3);
  assert_int_equal(st.dropped[FC_REC_WORKFLOW][FC_DROP_QUEUE_FULL] +
                       st.dropped[FC_REC_NODE][FC_DROP_QUEUE_FULL] +
                       st.dropped[FC_REC_ERROR][FC_DROP_QUEUE_FULL],
                   3);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions"), 1);

  /* By hand: another writer's reports, at known times. */
  exec_ok("INSERT INTO flowcore_writer_losses (writer, kind, reason, count, recorded_at) VALUES "
          "('hand', 'node', 'queue_full', 5, '2026-01-01 10:00:00+00'), "
          "('hand', 'node', 'queue_full', 7, '2026-01-01 11:30:00+00'), "
          "('hand', 'node', 'deadline', 2, '2026-01-01 12:00:00+00'), "
          "('hand', 'error', 'deadline', 0, '2026-01-01 09:00:00+00')");

  ctx = "flowcore_writer_loss_summary";
  r = query(
      "SELECT * FROM flowcore_writer_loss_summary WHERE writer = 'hand' ORDER BY kind, reason");
  expect_columns(r, LOSS_SUMMARY_COLS);
  expect_rows(r, 3);
  expect_text(r, 0, "kind", "error");
  expect_text(r, 0, "reason", "deadline");
  expect_int(r, 0, "total", 0);
  expect_text(r, 0, "first_recorded_at", "2026-01-01 09:00:00+00");
  expect_text(r, 0, "last_recorded_at", "2026-01-01 09:00:00+00");
  expect_text(r, 1, "kind", "node");
  expect_text(r, 1, "reason", "deadline");
  expect_int(r, 1, "total", 2);
  expect_text(r, 1, "first_recorded_at", "2026-01-01 12:00:00+00");
  expect_text(r, 1, "last_recorded_at", "2026-01-01 12:00:00+00");
  expect_text(r, 2, "reason", "queue_full");
  expect_int(r, 2, "total", 12);
  expect_text(r, 2, "first_recorded_at", "2026-01-01 10:00:00+00");
  expect_text(r, 2, "last_recorded_at", "2026-01-01 11:30:00+00");
  PQclear(r);
  /* the real writer's report: one writer (its UUID), per kind */
  r = query(
      "SELECT writer, kind, reason, total, first_recorded_at <= last_recorded_at AS ordered, "
      "writer ~ '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' AS uuid7 "
      "FROM flowcore_writer_loss_summary WHERE writer <> 'hand' ORDER BY kind");
  expect_rows(r, 3);
  expect_text(r, 0, "kind", "error");
  expect_text(r, 1, "kind", "node");
  expect_text(r, 2, "kind", "workflow");
  {
    int i;
    for (i = 0; i < 3; i++) {
      expect_text(r, i, "reason", "queue_full");
      expect_int(r, i, "total", 1);
      expect_text(r, i, "ordered", "t");
      expect_text(r, i, "uuid7", "t");
      expect_text(r, i, "writer", val(r, 0, "writer"));
    }
  }
  PQclear(r);
  fc_workflow_free(wf);
}

/* migrations/ applies to a fresh database (views included), re-running is a
 * no-op, and the view files can be run again by hand. */
static void test_migration(void **state) {
  char name[64], *files[MAX_FILES], *before, *after;
  size_t n, nmig, i, views_found = 0;
  PGresult *r;
  (void)state;
  fresh_db(name);
  nmig = list_sql(SRC "/migrations", files);
  free_names(files, nmig);
  assert_true(nmig >= 2);
  assert_int_equal(migrate(), nmig);
  ctx = "migration";
  r = query("SELECT name FROM flowcore_schema_migrations WHERE version = 2");
  expect_text(r, 0, "name", "views");
  PQclear(r);

  /* the views, with the column lists the CLI reads */
  for (i = 0; i < N(views); i++) {
    r = queryf("SELECT string_agg(column_name::text, ',' ORDER BY ordinal_position) AS cols "
               "FROM information_schema.columns WHERE table_schema = current_schema() "
               "AND table_name = '%s'",
               views[i].view);
    ctx = views[i].view;
    expect_text(r, 0, "cols", views[i].cols);
    PQclear(r);
  }
  /* exactly the views of sql/views/, one per file named after it */
  n = list_sql(SRC "/sql/views", files);
  for (i = 0; i < n; i++) {
    if (strncmp(files[i], "flowcore_", 9) != 0)
      continue;
    r = queryf("SELECT count(*) AS n FROM pg_views WHERE schemaname = current_schema() AND "
               "viewname || '.sql' = '%s'",
               files[i]);
    ctx = files[i];
    expect_int(r, 0, "n", 1);
    PQclear(r);
    views_found++;
  }
  assert_int_equal(views_found, N(views));
  ctx = "migration";
  r = query("SELECT count(*) AS n FROM pg_views WHERE schemaname = current_schema() "
            "AND viewname LIKE 'flowcore\\_%'");
  expect_int(r, 0, "n", (long long)N(views));
  PQclear(r);
  /* the index the views use; like every key, it starts with workflow_id (on
   * the partitioned table of 0007, hence ON ONLY: each partition has its own) */
  r = query(
      "SELECT indexdef FROM pg_indexes WHERE indexname = 'execution_errors_node_attempt_idx'");
  expect_text(r, 0, "indexdef",
              "CREATE INDEX execution_errors_node_attempt_idx ON ONLY public.execution_errors "
              "USING btree (workflow_id, node_id, attempt)");
  PQclear(r);
  r = query(
      "SELECT count(*) AS n FROM pg_index i WHERE i.indrelid IN ('workflow_executions'::regclass,"
      " 'node_executions'::regclass, 'execution_errors'::regclass) AND NOT EXISTS ("
      " SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indrelid"
      " AND a.attnum = ANY (i.indkey) AND a.attname = 'workflow_id') AND i.indisunique");
  expect_int(r, 0, "n", 0);
  PQclear(r);

  /* re-running: nothing applied, nothing recorded again */
  r = query("SELECT string_agg(version || '@' || applied_at, ',' ORDER BY version) AS s "
            "FROM flowcore_schema_migrations");
  before = strdup(val(r, 0, "s"));
  PQclear(r);
  assert_int_equal(migrate(), 0);
  r = query("SELECT string_agg(version || '@' || applied_at, ',' ORDER BY version) AS s "
            "FROM flowcore_schema_migrations");
  after = strdup(val(r, 0, "s"));
  PQclear(r);
  assert_string_equal(before, after);
  free(before);
  free(after);
  {
    fc_migrate_report_t st;
    assert_int_equal(fc_migrate_status(db, SRC "/migrations", &st, NULL), 0);
    assert_int_equal(st.applied, nmig);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.modified, 0);
    fc_migrate_report_free(&st);
  }

  /* the sql/views files, run by hand on top: accepted, definitions unchanged */
  r = query("SELECT string_agg(viewname || ':' || definition, E'\\n' ORDER BY viewname) AS d "
            "FROM pg_views WHERE schemaname = current_schema()");
  before = strdup(val(r, 0, "d"));
  PQclear(r);
  for (i = 0; i < n; i++) {
    char path[512];
    char *text;
    snprintf(path, sizeof path, "%s/sql/views/%s", SRC, files[i]);
    text = read_file(path);
    ctx = files[i];
    exec_ok(text);
    free(text);
  }
  r = query("SELECT string_agg(viewname || ':' || definition, E'\\n' ORDER BY viewname) AS d "
            "FROM pg_views WHERE schemaname = current_schema()");
  assert_string_equal(before, val(r, 0, "d"));
  PQclear(r);
  free(before);
  free_names(files, n);
}

/* One source of truth: the newest generated views migration is exactly the
 * files of sql/views/ (scripts/gen-views-migration, sql/README.md). */
static void test_migration_matches_sql_views(void **state) {
  static const char marker[] = "\n-- flowcore-generated-views: sql/views\n";
  char *migs[MAX_FILES], *views_[MAX_FILES], path[512];
  char *text = NULL, *p;
  const char *newest = NULL;
  size_t nm, nv, i;
  (void)state;
  nm = list_sql(SRC "/migrations", migs);
  for (i = 0; i < nm; i++) { /* sorted: the last generated one wins */
    char *t;
    snprintf(path, sizeof path, "%s/migrations/%s", SRC, migs[i]);
    t = read_file(path);
    if (strstr(t, marker) != NULL) {
      free(text);
      text = t;
      newest = migs[i];
    } else {
      free(t);
    }
  }
  if (text == NULL)
    fail_msg("no migration generated by scripts/gen-views-migration in migrations/");
  assert_true(strcmp(newest, "0002_views.sql") >= 0);

  /* the header: comments only */
  p = strstr(text, marker) + strlen(marker);
  {
    const char *l;
    for (l = text; l < p; l = strchr(l, '\n') + 1)
      if (strncmp(l, "--", 2) != 0 && *l != '\n')
        fail_msg("%s: the header has a line that is not a comment: %.40s", newest, l);
  }
  /* then each file of sql/views/, in name order, verbatim */
  nv = list_sql(SRC "/sql/views", views_);
  assert_true(nv > 0);
  for (i = 0; i < nv; i++) {
    char head[256];
    char *body;
    size_t hl, bl;
    snprintf(head, sizeof head, "-- >>> sql/views/%s\n", views_[i]);
    hl = strlen(head);
    if (strncmp(p, head, hl) != 0)
      fail_msg("%s: expected the section of sql/views/%s here, found: %.60s\n"
               "(run scripts/gen-views-migration NNNN_name to generate a new migration)",
               newest, views_[i], p);
    p += hl;
    snprintf(path, sizeof path, "%s/sql/views/%s", SRC, views_[i]);
    body = read_file(path);
    bl = strlen(body);
    if (strncmp(p, body, bl) != 0)
      fail_msg("%s differs from sql/views/%s: sql/views/ changed since the migration was "
               "generated; generate a new migration (scripts/gen-views-migration NNNN_name), "
               "never edit a released one",
               newest, views_[i]);
    p += bl;
    free(body);
  }
  if (*p != '\0')
    fail_msg("%s has more than sql/views/: %.60s", newest, p);
  free(text);
  free_names(migs, nm);
  free_names(views_, nv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_migration_matches_sql_views),
      cmocka_unit_test_setup_teardown(test_migration, NULL, teardown_conn),
      cmocka_unit_test_setup_teardown(test_views_and_queries, setup_migrated, teardown_conn),
      cmocka_unit_test_setup_teardown(test_engine_run, setup_migrated, teardown_conn),
      cmocka_unit_test_setup_teardown(test_loss_summary, setup_migrated, teardown_conn),
  };
  return cmocka_run_group_tests_name("sql_views", tests, group_setup, group_teardown);
}

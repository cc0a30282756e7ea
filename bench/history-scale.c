/* bench/history-scale: size and dashboard-query latency of a large history.
 *
 *   history-scale --db CONNINFO [--rows N] [--days D] [--runs-per-query K]
 *                 [--reset] [--migrations DIR] [--dashboard FILE]
 *
 * Migrates the database (the migrate API, as `flowcore migrate`), then fills
 * the three history tables with N synthetic node rows (default 1,000,000) in
 * the server itself (generate_series, not the engine): 5 nodes per run, runs
 * spread evenly over the D days before now (default 10), 1 run in 40 failed with one error
 * row. Every workflow_id is a UUIDv7 whose 48-bit time is the run's
 * started_at, as the engine makes them, so a table partitioned by
 * workflow_id holds each run in the partition of its day. Then ANALYZE, and
 * it prints:
 *   - bytes per node row: pg_total_relation_size (table + indexes + TOAST) of
 *     the three history tables (every partition) over the node rows;
 *   - the latency (median of K runs, default 5, after one warm-up) of every
 *     panel of the Grafana dashboard (examples/grafana/flowcore.json, its SQL
 *     read from the file with the $__timeFilter/$__timeFrom/$__timeTo macros
 *     expanded as Grafana does) over the 1 h, 6 h and 7 d before now;
 *   - the first call of flowcore_node_minutes (0012) over 6 h and 7 d with
 *     nothing stored (what the warm-up of the p95 panel paid);
 *   - the latency of one run's timeline (flowcore_run_timeline(id), and the
 *     view flowcore_run_timeline with the id in WHERE);
 *   - the time to prune the oldest day, if the schema has flowcore_prune_partitions() (0007);
 *     else it says it skipped that.
 * The history tables must be empty (the figures would mean nothing
 * otherwise); --reset TRUNCATEs them first. Never point it at a database
 * whose history you want to keep. */
#include <flowcore.h>

#include "bench_util.h"
#include <jansson.h>
#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char *prog = "history-scale";

#define NODES_PER_RUN 5
#define DEFAULT_DAYS 10
#define MAX_DAYS 3650
#define MAX_RUNS_PER_QUERY 101
#define CHUNK_RUNS 100000LL

typedef struct {
  const char *db, *migrations, *dashboard;
  long long rows;
  int runs;
  int days; /* the span the runs are spread over, ending now */
  int weekly; /* partitions of a week (flowcore_partitioning) instead of a day */
  int reset;
} options_t;

static void usage(void) {
  printf("usage: %s --db CONNINFO [--rows N] [--days D] [--period day|week]\n"
         "       [--runs-per-query K] [--reset] [--migrations DIR] [--dashboard FILE]\n"
         "\n"
         "Fills an EMPTY flowcore history (migrated first) with N synthetic node rows\n"
         "(default 1,000,000; 5 per run, runs over the last D days (default %d), 1 run in\n"
         "40 failed; more rows in the same days make each window denser),\n"
         "then prints bytes per node row and the median latency of K runs (default 5)\n"
         "of each Grafana panel's SQL over 1 h / 6 h / 7 d, of one run's timeline and\n"
         "of pruning a day (if the schema has flowcore_prune_partitions()).\n"
         "  --db CONNINFO       the database (or FLOWCORE_DB)\n"
         "  --period day|week   the period of a partition (flowcore_partitioning; day)\n"
         "  --reset             TRUNCATE the history tables first (destroys history!)\n"
         "  --migrations DIR    default: migrations or ../migrations\n"
         "  --dashboard FILE    default: examples/grafana/flowcore.json (or ../)\n",
         prog, DEFAULT_DAYS);
}

static int parse_options(int argc, char **argv, options_t *o) {
  memset(o, 0, sizeof *o);
  o->db = getenv("FLOWCORE_DB");
  o->rows = 1000000;
  o->runs = 5;
  o->days = DEFAULT_DAYS;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    long v;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage();
      exit(0);
    } else if (strcmp(a, "--reset") == 0) {
      o->reset = 1;
    } else if (strcmp(a, "--db") == 0 || strcmp(a, "--migrations") == 0 ||
               strcmp(a, "--dashboard") == 0) {
      if (val == NULL) {
        fprintf(stderr, "%s: %s needs a value\n", prog, a);
        return -1;
      }
      i++;
      if (strcmp(a, "--db") == 0)
        o->db = val;
      else if (strcmp(a, "--migrations") == 0)
        o->migrations = val;
      else
        o->dashboard = val;
    } else if (strcmp(a, "--rows") == 0) {
      if (parse_count(prog, a, val, NODES_PER_RUN, &v))
        return -1;
      o->rows = v;
      i++;
    } else if (strcmp(a, "--period") == 0) {
      if (val == NULL || (strcmp(val, "day") != 0 && strcmp(val, "week") != 0)) {
        fprintf(stderr, "%s: --period is day or week\n", prog);
        return -1;
      }
      o->weekly = strcmp(val, "week") == 0;
      i++;
    } else if (strcmp(a, "--days") == 0) {
      if (parse_count(prog, a, val, 2, &v) || v > MAX_DAYS) {
        if (v > MAX_DAYS)
          fprintf(stderr, "%s: --days is at most %d\n", prog, MAX_DAYS);
        return -1;
      }
      o->days = (int)v;
      i++;
    } else if (strcmp(a, "--runs-per-query") == 0) {
      if (parse_count(prog, a, val, 1, &v) || v > MAX_RUNS_PER_QUERY - 1) {
        if (v > MAX_RUNS_PER_QUERY - 1)
          fprintf(stderr, "%s: --runs-per-query is at most %d\n", prog, MAX_RUNS_PER_QUERY - 1);
        return -1;
      }
      o->runs = (int)v;
      i++;
    } else {
      fprintf(stderr, "%s: unknown option '%s' (try --help)\n", prog, a);
      return -1;
    }
  }
  if (o->db == NULL || o->db[0] == '\0') {
    fprintf(stderr, "%s: no database: pass --db CONNINFO or set FLOWCORE_DB\n", prog);
    return -1;
  }
  return 0;
}

static int is_file(const char *path, int dir) {
  struct stat st;
  return stat(path, &st) == 0 && (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
}

/* given, else the first of `a`, `b` that exists, else NULL. */
static const char *find_path(const char *given, const char *a, const char *b, int dir) {
  if (given != NULL)
    return given;
  if (is_file(a, dir))
    return a;
  return is_file(b, dir) ? b : NULL;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Runs sql (params as text); returns the result if it succeeded, else
 * prints the error and returns NULL. */
static PGresult *run_sql(PGconn *pg, const char *sql, int n, const char *const *params) {
  PGresult *r = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
    return r;
  fprintf(stderr, "%s: %s\n  in: %s\n", prog, PQresultErrorMessage(r), sql);
  PQclear(r);
  return NULL;
}

static int exec_sql(PGconn *pg, const char *sql, int n, const char *const *params) {
  PGresult *r = run_sql(pg, sql, n, params);
  PQclear(r);
  return r != NULL ? 0 : -1;
}

/* One value of a one-row query, as text copied into out. */
static int query_text(PGconn *pg, const char *sql, char *out, size_t size) {
  PGresult *r = run_sql(pg, sql, 0, NULL);
  if (r == NULL)
    return -1;
  int ok = PQntuples(r) == 1 && PQnfields(r) == 1;
  if (ok)
    snprintf(out, size, "%s", PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
  else
    fprintf(stderr, "%s: expected one value from: %s\n", prog, sql);
  PQclear(r);
  return ok ? 0 : -1;
}

/* ---- the synthetic history --------------------------------------------------- */

/* Runs [$1, $2) of $3 runs, run i starting at $4 ms (epoch) - $5 ms (the span) +
 * i/$3 of the span; its id a UUIDv7 of that millisecond (random part from
 * md5(i), version 7, variant 8). */
static const char FILL_RUNS[] =
    "CREATE TEMP TABLE fill_runs ON COMMIT DROP AS "
    "SELECT i, failed, to_timestamp(ms / 1000.0) AS t, "
    "       (substr(x, 1, 8) || '-' || substr(x, 9, 4) || '-7' || substr(h, 1, 3) || '-8' ||"
    "        substr(h, 4, 3) || '-' || substr(h, 7, 12))::uuid AS id "
    "  FROM (SELECT i, ms, lpad(to_hex(ms), 12, '0') AS x, md5(i::text) AS h, "
    "               i % 40 = 7 AS failed "
    "          FROM (SELECT i, $4::bigint - $5::bigint + ($5::bigint * i / $3::bigint) AS ms "
    "                  FROM generate_series($1::bigint, $2::bigint - 1) i) s) u";

/* Node k (1..5) of run i starts at t + 400 (k - 1) ms and lasts
 * 20 + (i * 7 + k * 131) % 350 ms; node 5 of a failed run fails. */
static const char FILL_NODES[] =
    "INSERT INTO node_executions (workflow_id, node_id, attempt, node_type, status, input_data,"
    "  output_data, started_at, completed_at, duration_ms, error_type, error_message) "
    "SELECT r.id, 'n' || k, 1, 'exec', CASE WHEN r.failed AND k = 5 THEN 'failed' ELSE "
    "  'completed' END, jsonb_build_object('input', jsonb_build_object('seq', r.i)), "
    "  CASE WHEN r.failed AND k = 5 THEN NULL ELSE '{\"ok\": true}'::jsonb END, "
    "  r.t + (400 * (k - 1)) * interval '1 ms', "
    "  r.t + (400 * (k - 1) + d) * interval '1 ms', d, "
    "  CASE WHEN r.failed AND k = 5 THEN 'exit_status' END, "
    "  CASE WHEN r.failed AND k = 5 THEN 'exit status 1' END "
    "  FROM fill_runs r CROSS JOIN generate_series(1, 5) k "
    " CROSS JOIN LATERAL (SELECT (20 + (r.i * 7 + k * 131) % 350)::double precision AS d) dd";

static const char FILL_WORKFLOWS[] =
    "INSERT INTO workflow_executions (workflow_id, workflow_name, status, input_data,"
    "  output_data, started_at, completed_at, node_count, error_count, duration_ms, host, pid,"
    "  updated_at) "
    "SELECT id, 'wf-' || (i % 20), CASE WHEN failed THEN 'failed' ELSE 'completed' END, "
    "  jsonb_build_object('seq', i), CASE WHEN failed THEN NULL ELSE '{\"ok\": true}'::jsonb END,"
    "  t, t + interval '2 s', 5, CASE WHEN failed THEN 1 ELSE 0 END, 2000, 'bench', 1, "
    "  t + interval '2 s' FROM fill_runs";

static const char FILL_ERRORS[] =
    "INSERT INTO execution_errors (workflow_id, error_id, node_id, node_type, attempt,"
    "  error_type, error_message, severity, occurred_at) "
    "SELECT id, gen_random_uuid(), 'n5', 'exec', 1, 'exit_status', 'exit status 1', 'error', "
    "  t + interval '1.9 s' FROM fill_runs WHERE failed";

static int fill(PGconn *pg, long long runs, long long end_ms, int days) {
  char lo[32], hi[32], total[32], end[32], span[32];
  const char *params[] = {lo, hi, total, end, span};
  snprintf(total, sizeof total, "%lld", runs);
  snprintf(end, sizeof end, "%lld", end_ms);
  snprintf(span, sizeof span, "%lld", (long long)days * 86400000LL);
  for (long long first = 0; first < runs; first += CHUNK_RUNS) {
    long long last = first + CHUNK_RUNS < runs ? first + CHUNK_RUNS : runs;
    snprintf(lo, sizeof lo, "%lld", first);
    snprintf(hi, sizeof hi, "%lld", last);
    if (exec_sql(pg, "BEGIN", 0, NULL) != 0 || exec_sql(pg, FILL_RUNS, 5, params) != 0 ||
        exec_sql(pg, FILL_WORKFLOWS, 0, NULL) != 0 || exec_sql(pg, FILL_NODES, 0, NULL) != 0 ||
        exec_sql(pg, FILL_ERRORS, 0, NULL) != 0 || exec_sql(pg, "COMMIT", 0, NULL) != 0) {
      (void)exec_sql(pg, "ROLLBACK", 0, NULL);
      return -1;
    }
  }
  return 0;
}

/* ---- the dashboard's queries ------------------------------------------------- */

/* Appends s[0..n) to the growing string *buf. */
static int put(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
  if (*len + n + 1 > *cap) {
    size_t c = (*len + n + 1) * 2;
    char *b = realloc(*buf, c);
    if (b == NULL)
      return -1;
    *buf = b;
    *cap = c;
  }
  memcpy(*buf + *len, s, n);
  *len += n;
  (*buf)[*len] = '\0';
  return 0;
}

/* Expands the Grafana macros of sql as Grafana's PostgreSQL data source
 * does: $__timeFilter(expr) -> expr BETWEEN 'from' AND 'to', $__timeFrom()
 * -> 'from', $__timeTo() -> 'to'. Returns a malloc'd string (caller frees),
 * NULL (with a message) on any other macro. */
static char *expand(const char *title, const char *sql, const char *from, const char *to) {
  char *buf = NULL, lit[128];
  size_t len = 0, cap = 0;
  const char *p = sql;
  while (1) {
    const char *m = strstr(p, "$__");
    if (m == NULL) {
      if (put(&buf, &len, &cap, p, strlen(p)) != 0)
        break;
      return buf;
    }
    if (put(&buf, &len, &cap, p, (size_t)(m - p)) != 0)
      break;
    if (strncmp(m, "$__timeFilter(", 14) == 0) {
      const char *close = strchr(m + 14, ')');
      if (close == NULL)
        goto bad;
      snprintf(lit, sizeof lit, " BETWEEN '%s' AND '%s'", from, to);
      if (put(&buf, &len, &cap, m + 14, (size_t)(close - (m + 14))) != 0 ||
          put(&buf, &len, &cap, lit, strlen(lit)) != 0)
        break;
      p = close + 1;
    } else if (strncmp(m, "$__timeFrom()", 13) == 0 || strncmp(m, "$__timeTo()", 11) == 0) {
      int is_from = m[7] == 'F';
      snprintf(lit, sizeof lit, "'%s'", is_from ? from : to);
      if (put(&buf, &len, &cap, lit, strlen(lit)) != 0)
        break;
      p = m + (is_from ? 13 : 11);
    } else {
      goto bad;
    }
  }
  fprintf(stderr, "%s: out of memory\n", prog);
  free(buf);
  return NULL;
bad:
  fprintf(stderr, "%s: panel '%s': a macro this benchmark does not expand: %.40s\n", prog, title,
          strstr(p, "$__"));
  free(buf);
  return NULL;
}

/* Median latency in ms of `runs` runs of sql (after one warm-up). */
static int time_query(PGconn *pg, const char *sql, int nparams, const char *const *params, int runs,
                      double *out_ms) {
  uint64_t t[MAX_RUNS_PER_QUERY];
  for (int i = 0; i <= runs; i++) {
    uint64_t t0 = now_ns();
    PGresult *r = run_sql(pg, sql, nparams, params);
    if (r == NULL)
      return -1;
    PQclear(r);
    t[i] = now_ns() - t0;
  }
  *out_ms = ms(bench_median(t + 1, (size_t)runs));
  return 0;
}

/* ISO 8601 UTC of epoch milliseconds. */
static void iso(long long epoch_ms, char *out, size_t size) {
  time_t s = (time_t)(epoch_ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, size - n, ".%03lldZ", epoch_ms % 1000);
}

static int measure_panels(PGconn *pg, const char *path, long long end_ms, int runs) {
  static const struct {
    const char *name;
    long long ms;
  } windows[] = {{"1 h", 3600000LL}, {"6 h", 6 * 3600000LL}, {"7 d", 7 * 86400000LL}};
  json_error_t jerr;
  json_t *doc = json_load_file(path, 0, &jerr);
  json_t *panels = json_object_get(doc, "panels");
  char to[40], from[40];
  size_t i;
  int rc = 0;
  if (doc == NULL || !json_is_array(panels)) {
    fprintf(stderr, "%s: %s:%d: %s\n", prog, path, jerr.line,
            doc == NULL ? jerr.text : "no \"panels\" array");
    json_decref(doc);
    return -1;
  }
  iso(end_ms, to, sizeof to);
  printf("\ndashboard panels (%s), median of %d, ms:  %8s %8s %8s\n", path, runs, windows[0].name,
         windows[1].name, windows[2].name);
  for (i = 0; i < json_array_size(panels) && rc == 0; i++) {
    json_t *panel = json_array_get(panels, i);
    const char *title = json_string_value(json_object_get(panel, "title"));
    json_t *target = json_array_get(json_object_get(panel, "targets"), 0);
    const char *sql = json_string_value(json_object_get(target, "rawSql"));
    if (title == NULL || sql == NULL) {
      fprintf(stderr, "%s: %s: panel %zu has no title or no targets[0].rawSql\n", prog, path, i);
      rc = -1;
      break;
    }
    printf("  %-46.46s", title);
    for (size_t w = 0; w < sizeof windows / sizeof windows[0] && rc == 0; w++) {
      double lat;
      char *q;
      iso(end_ms - windows[w].ms, from, sizeof from);
      q = expand(title, sql, from, to);
      rc = q == NULL ? -1 : time_query(pg, q, 0, NULL, runs, &lat);
      if (rc == 0)
        printf(" %8.2f", lat);
      free(q);
    }
    printf("\n");
    fflush(stdout);
  }
  json_decref(doc);
  return rc;
}

/* The first call of flowcore_node_minutes (0012) over 6 h and over 7 d,
 * each with nothing stored: it aggregates the window's settled minutes
 * from the node rows and stores them (the panels above are timed after a
 * warm-up call, i.e. with the minutes stored). */
static int measure_first_minutes(PGconn *pg, long long end_ms) {
  static const struct {
    const char *name;
    long long ms;
  } windows[] = {{"6 h", 6 * 3600000LL}, {"7 d", 7 * 86400000LL}};
  char n[32], from[40], to[40];
  const char *params[] = {from, to};
  if (query_text(pg,
                 "SELECT count(*) FROM pg_proc WHERE proname = 'flowcore_node_minutes_forget'",
                 n, sizeof n) != 0)
    return -1;
  if (strcmp(n, "0") == 0)
    return 0;
  iso(end_ms, to, sizeof to);
  printf("  %-46s", "p95 per minute, first call (stores minutes)");
  for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
    uint64_t t0;
    PGresult *r;
    if (exec_sql(pg, "SELECT flowcore_node_minutes_forget(NULL, NULL)", 0, NULL) != 0)
      return -1;
    iso(end_ms - windows[w].ms, from, sizeof from);
    t0 = now_ns();
    r = run_sql(pg, "SELECT count(*) FROM flowcore_node_minutes($1::timestamptz, $2::timestamptz)",
                2, params);
    if (r == NULL)
      return -1;
    PQclear(r);
    printf(" %s: %.2f ms", windows[w].name, ms(now_ns() - t0));
  }
  printf("\n");
  return 0;
}

static int measure_timeline(PGconn *pg, int runs) {
  char id[64];
  const char *params[] = {id};
  double lat;
  if (query_text(pg,
                 "SELECT workflow_id FROM workflow_executions WHERE status = 'failed' "
                 "ORDER BY started_at DESC LIMIT 1",
                 id, sizeof id) != 0)
    return -1;
  /* The function (what `flowcore history show` reads), then the view with
   * the id in WHERE (what a hand-written query does). */
  if (time_query(pg,
                 "SELECT * FROM flowcore_run_timeline($1::uuid) "
                 "ORDER BY started_at NULLS LAST, node_id, attempt",
                 1, params, runs, &lat) != 0)
    return -1;
  printf("  %-46s %8.2f ms (median of %d)\n", "one run's timeline (flowcore_run_timeline(id))",
         lat, runs);
  if (time_query(pg,
                 "SELECT * FROM flowcore_run_timeline WHERE workflow_id = $1 "
                 "ORDER BY started_at NULLS LAST, node_id, attempt",
                 1, params, runs, &lat) != 0)
    return -1;
  printf("  %-46s %8.2f ms (median of %d)\n", "the same through the view", lat, runs);
  return 0;
}

/* The prune of the oldest day, if the schema has a way to prune. */
static int measure_prune(PGconn *pg, long long end_ms, int days) {
  char n[32], horizon[40];
  const char *params[] = {horizon};
  if (query_text(pg, "SELECT count(*) FROM pg_proc WHERE proname = 'flowcore_prune_partitions'", n,
                 sizeof n) != 0)
    return -1;
  if (strcmp(n, "0") == 0) {
    printf("  %-46s skipped: this schema has no flowcore_prune_partitions()\n", "prune one day");
    return 0;
  }
  /* Everything older than the first of the span's days, i.e. one day. */
  iso(end_ms - (long long)(days - 1) * 86400000LL, horizon, sizeof horizon);
  uint64_t t0 = now_ns();
  PGresult *r =
      run_sql(pg, "SELECT * FROM flowcore_prune_partitions($1::timestamptz, false)", 1, params);
  uint64_t t = now_ns() - t0;
  if (r == NULL) {
    printf("  %-46s failed: flowcore_prune_partitions() did not run (see above)\n",
           "prune one day");
    return 0;
  }
  PQclear(r);
  printf("  %-46s %8.2f ms (flowcore_prune_partitions('%s'))\n", "prune one day", ms(t), horizon);
  return 0;
}

int main(int argc, char **argv) {
  options_t o;
  fc_migrate_report_t rep;
  fc_error_t err;
  PGconn *pg;
  char text[64], b1[32], b2[32];
  const char *migrations, *dashboard;
  long long runs, end_ms, nodes, bytes;
  int rc;

  if (parse_options(argc, argv, &o) != 0)
    return 2;
  migrations = find_path(o.migrations, "migrations", "../migrations", 1);
  dashboard = find_path(o.dashboard, "examples/grafana/flowcore.json",
                        "../examples/grafana/flowcore.json", 0);
  if (migrations == NULL || dashboard == NULL) {
    fprintf(stderr, "%s: no %s (run from the source tree or pass %s)\n", prog,
            migrations == NULL ? "migrations directory" : "examples/grafana/flowcore.json",
            migrations == NULL ? "--migrations DIR" : "--dashboard FILE");
    return 2;
  }
  fc_error_clear(&err);
  rc = fc_migrate_run(o.db, migrations, &rep, &err);
  fc_migrate_report_free(&rep);
  if (rc != 0) {
    fprintf(stderr, "%s: migrations in %s: %s %s\n", prog, migrations, fc_strerror(rc), err.text);
    return 1;
  }
  pg = PQconnectdb(o.db);
  if (PQstatus(pg) != CONNECTION_OK) {
    fprintf(stderr, "%s: cannot connect: %s", prog, PQerrorMessage(pg));
    PQfinish(pg);
    return 1;
  }
  rc = exec_sql(pg, "SET client_min_messages = warning", 0, NULL);
  if (rc == 0 && o.reset)
    rc = exec_sql(pg, "TRUNCATE workflow_executions, node_executions, execution_errors", 0, NULL);
  if (rc == 0)
    rc = query_text(pg,
                    "SELECT (SELECT count(*) FROM (SELECT 1 FROM node_executions LIMIT 1) a) + "
                    "(SELECT count(*) FROM (SELECT 1 FROM workflow_executions LIMIT 1) b)",
                    text, sizeof text);
  if (rc == 0 && strcmp(text, "0") != 0) {
    fprintf(stderr, "%s: the history tables are not empty; pass --reset to TRUNCATE them\n", prog);
    rc = -1;
  }
  runs = (o.rows + NODES_PER_RUN - 1) / NODES_PER_RUN;
  if (rc == 0)
    rc = query_text(pg, "SELECT (extract(epoch FROM date_trunc('minute', now())) * 1000)::bigint",
                    text, sizeof text);
  end_ms = strtoll(text, NULL, 10);

  printf("flowcore %s history-scale benchmark\n", fc_version_string());
  printf("  server: PostgreSQL %s; %s runs x %d nodes over the %d days before %s UTC\n",
         PQparameterStatus(pg, "server_version") ? PQparameterStatus(pg, "server_version") : "?",
         group((double)runs, b1, sizeof b1), NODES_PER_RUN, o.days,
         rc == 0 ? (iso(end_ms, text, sizeof text), text) : "?");
  /* The queries' session is a new one, as a dashboard's: it has the
   * database's settings of the migrations (0012: jit off). */
  if (rc == 0 && query_text(pg, "SELECT current_setting('jit')", text, sizeof text) == 0)
    printf("  session: jit = %s; a partition per %s\n", text, o.weekly ? "week" : "day");
  fflush(stdout);

  uint64_t t0 = now_ns();
  /* A partition for every day of the span (0007; a week's partition
   * holds 7 of them), as the writer and
   * migrate keep them: else the older days would all land in the default
   * partition. */
  /* A new period applies to partitions made after the change: the day
   * partitions that migrate made ahead are dropped first (they are empty:
   * the history is), so that every partition measured is a whole week. */
  if (rc == 0 && o.weekly)
    rc = exec_sql(pg,
                  "DO $w$ DECLARE r record; BEGIN "
                  "UPDATE flowcore_partitioning SET period = 'week'; "
                  "FOR r IN SELECT c.oid::regclass AS t FROM pg_inherits i JOIN pg_class c "
                  "ON c.oid = i.inhrelid WHERE i.inhparent IN ('workflow_executions'::regclass, "
                  "'node_executions'::regclass, 'execution_errors'::regclass) "
                  "AND c.relname !~ '_default$' LOOP EXECUTE format('DROP TABLE %s', r.t); "
                  "END LOOP; END $w$",
                  0, NULL);
  if (rc == 0) {
    char end[32], ndays[16];
    const char *p2[] = {end, ndays};
    snprintf(end, sizeof end, "%lld", end_ms);
    snprintf(ndays, sizeof ndays, "%d", o.days);
    rc = exec_sql(pg,
                  "SELECT count(flowcore__create_partition(d::date)) FROM generate_series("
                  "(to_timestamp($1::bigint / 1000.0) AT TIME ZONE 'UTC') - $2::int * interval "
                  "'1 day', to_timestamp($1::bigint / 1000.0) AT TIME ZONE 'UTC',"
                  " interval '1 day') d"
                  " WHERE to_regprocedure('flowcore__create_partition(date)') IS NOT NULL",
                  2, p2);
  }
  if (rc == 0)
    rc = fill(pg, runs, end_ms, o.days);
  uint64_t t_fill = now_ns() - t0;
  t0 = now_ns();
  if (rc == 0)
    /* VACUUM as autovacuum would after such inserts: visibility map, and
     * the summaries of node_executions' BRIN index (0010). */
    rc = exec_sql(pg, "VACUUM (ANALYZE) workflow_executions, node_executions, execution_errors",
                  0, NULL);
  uint64_t t_analyze = now_ns() - t0;
  if (rc == 0)
    rc = query_text(pg, "SELECT count(*) FROM node_executions", text, sizeof text);
  nodes = strtoll(text, NULL, 10);
  if (rc == 0)
    rc = query_text(pg,
                    /* pg_total_relation_size of a partitioned table is 0:
                     * its partitions hold the rows (a plain table is its
                     * own one-member tree). */
                    "SELECT sum(pg_total_relation_size(p.relid))::bigint FROM"
                    " unnest(ARRAY['workflow_executions', 'node_executions',"
                    " 'execution_errors']::regclass[]) t, pg_partition_tree(t) p",
                    text, sizeof text);
  bytes = strtoll(text, NULL, 10);
  if (rc == 0) {
    printf("  filled %s node rows in %.1f s, VACUUM (ANALYZE) %.1f s\n", group((double)nodes, b1, sizeof b1),
           ms(t_fill) / 1000, ms(t_analyze) / 1000);
    printf("  size: %s bytes for the three tables with indexes: %.0f bytes per node row\n",
           group((double)bytes, b2, sizeof b2), nodes > 0 ? (double)bytes / (double)nodes : 0.0);
  }
  if (rc == 0)
    rc = measure_panels(pg, dashboard, end_ms, o.runs);
  if (rc == 0)
    rc = measure_first_minutes(pg, end_ms);
  if (rc == 0)
    rc = measure_timeline(pg, o.runs);
  if (rc == 0)
    rc = measure_prune(pg, end_ms, o.days);
  PQfinish(pg);
  return rc == 0 ? 0 : 1;
}

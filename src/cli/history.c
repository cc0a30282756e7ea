/* flowcore command line: `flowcore history ...`, blocking libpq.
 *
 * Every query reads the views of sql/views/ (installed by the migrations)
 * and takes user input only as parameters of PQexecParams: no SQL text is
 * built from what the user typed. Timestamps are selected as µs since the
 * epoch and formatted here: local time in tables, RFC 3339 UTC in JSON.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../pg/pq.h"
#include "cli.h"
#include "report.h"

#define DEFAULT_LIMIT 20
/* history report: the runs shown by default, and at most. */
#define REPORT_DEFAULT_LIMIT 100
#define REPORT_DEFAULT_SINCE "7d"
#define MAX_LIMIT 1000000
/* --stale: a run on another host (or without host/pid) is taken for
 * abandoned after this long without any activity (docs/history.md). */
#define DEFAULT_STALE_MS (60.0 * 60 * 1000)

/* µs since the epoch of a timestamptz column, as the column's own name. */
#define US(col) "(extract(epoch FROM " col ") * 1000000)::bigint AS " col

typedef struct {
  const char *sub; /* "runs", "show", ... */
  char cmd[32];    /* "history runs", for messages */
  const char *db_opt;
  const char *workflow;
  const char *status;
  const char *since;
  const char *id;
  uint64_t limit;
  double stale_ms;
  int json;
  int dry_run;
  double older_than_s; /* prune --older-than, seconds; 0: flowcore_retention */
  int input;           /* show --input */
  const char *html;    /* show/report --html FILE ("-": stdout) */
  cli_db_t db;
  PGconn *conn;
} hist_t;

/* ---- connection and queries ------------------------------------------------ */

/* A libpq message on one line (a new string, or NULL on ENOMEM). */
static char *one_line(const char *msg) { return cli_one_line(strdup(msg != NULL ? msg : "")); }

static int connect_db(hist_t *h) {
  const char *keys[4], *vals[4];
  int n = 0;
  char *msg;
  if (getenv("PGCONNECT_TIMEOUT") == NULL) {
    keys[n] = "connect_timeout";
    vals[n++] = "10";
  }
  keys[n] = "application_name";
  vals[n++] = "flowcore";
  /* Last, so that what the connection string says wins. */
  keys[n] = "dbname";
  vals[n++] = h->db.conninfo;
  keys[n] = NULL;
  vals[n] = NULL;
  h->conn = PQconnectdbParams(keys, vals, 1); /* libpq: cli_db_resolve loaded it */
  if (h->conn != NULL && PQstatus(h->conn) == CONNECTION_OK)
    return 0;
  msg = one_line(h->conn != NULL ? PQerrorMessage(h->conn) : "out of memory");
  cli_error("cannot connect to the database (%s): %s", h->db.source,
            msg != NULL ? msg : "out of memory");
  cli_db_hint(&h->db, msg);
  free(msg);
  PQfinish(h->conn);
  h->conn = NULL;
  return CLI_EXIT_FAILED;
}

/* Runs a query with text parameters (NULL entries are SQL NULL). Returns
 * the result, or NULL after printing the error. */
static PGresult *query(hist_t *h, const char *sql, int nparams, const char *const *params) {
  PGresult *res = PQexecParams(h->conn, sql, nparams, NULL, params, NULL, NULL, 0);
  const char *state;
  char *msg;
  if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK)
    return res;
  state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  msg = one_line(res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(h->conn));
  if (state != NULL &&
      (strcmp(state, "42P01") == 0 || strcmp(state, "42703") == 0 || strcmp(state, "42883") == 0)) {
    cli_error("the history schema is missing or older than this flowcore (%s)",
              msg != NULL ? msg : "?");
    cli_error("hint: run 'flowcore migrate' against this database");
  } else {
    cli_error("query failed: %s", msg != NULL ? msg : "out of memory");
  }
  free(msg);
  PQclear(res);
  return NULL;
}

/* ---- cells ---------------------------------------------------------------- */

/* Cells by column name (the queries name every column). */
static const char *text(const PGresult *res, int row, const char *name) {
  int c = PQfnumber(res, name);
  if (c < 0 || PQgetisnull(res, row, c))
    return NULL;
  return PQgetvalue(res, row, c);
}

static int is_null(const PGresult *res, int row, const char *name) {
  int c = PQfnumber(res, name);
  return c < 0 || PQgetisnull(res, row, c);
}

static long long integer(const PGresult *res, int row, const char *name) {
  const char *s = text(res, row, name);
  return s != NULL ? strtoll(s, NULL, 10) : 0;
}

static double real(const PGresult *res, int row, const char *name) {
  const char *s = text(res, row, name);
  return s != NULL ? strtod(s, NULL) : 0.0;
}

/* Table cell helpers: each formats into its own buffer. */
static const char *cell_int(const PGresult *res, int row, const char *name, char *buf,
                            size_t size) {
  if (is_null(res, row, name))
    return "-";
  snprintf(buf, size, "%lld", integer(res, row, name));
  return buf;
}

static const char *cell_ms(const PGresult *res, int row, const char *name, char *buf, size_t size) {
  if (is_null(res, row, name))
    return "-";
  cli_format_duration_ms(real(res, row, name), buf, size);
  return buf;
}

static const char *cell_time(const PGresult *res, int row, const char *name, char *buf,
                             size_t size) {
  if (is_null(res, row, name))
    return "-";
  cli_format_local_time((int64_t)integer(res, row, name), buf, size);
  return buf;
}

/* Column types for JSON: 's' text, 'i' integer, 'f' number, 't' time (µs
 * since the epoch -> RFC 3339 UTC string). One letter per result column. */
static json_t *row_json(const PGresult *res, int row, const char *types) {
  json_t *obj = json_object();
  int c, n = PQnfields(res);
  if (obj == NULL)
    return NULL;
  for (c = 0; c < n; c++) {
    const char *name = PQfname(res, c), *v = PQgetvalue(res, row, c);
    json_t *jv;
    char when[40];
    if (PQgetisnull(res, row, c)) {
      jv = json_null();
    } else {
      switch (types[c]) {
      case 'i':
        jv = json_integer((json_int_t)strtoll(v, NULL, 10));
        break;
      case 'f':
        jv = json_real(strtod(v, NULL));
        break;
      case 't':
        cli_format_utc_time((int64_t)strtoll(v, NULL, 10), when, sizeof when);
        jv = json_string(when);
        break;
      default:
        jv = json_string(v);
        break;
      }
    }
    if (json_object_set_new(obj, name, jv) != 0) {
      json_decref(obj);
      return NULL;
    }
  }
  return obj;
}

static json_t *rows_json(const PGresult *res, const char *types) {
  json_t *arr = json_array();
  int r;
  if (arr == NULL)
    return NULL;
  for (r = 0; r < PQntuples(res); r++)
    if (json_array_append_new(arr, row_json(res, r, types)) != 0) {
      json_decref(arr);
      return NULL;
    }
  return arr;
}

/* Prints v (takes ownership even on failure; NULL: out of memory) on
 * stdout and returns the exit code. */
static int print_json_new(json_t *v) {
  int rc;
  if (v == NULL) {
    cli_error("out of memory");
    return CLI_EXIT_FAILED;
  }
  rc = cli_print_json(stdout, v, 0);
  json_decref(v);
  return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}

static int print_rows_json(const PGresult *res, const char *types) {
  return print_json_new(rows_json(res, types));
}

static int print_table(cli_table_t *t) {
  if (t == NULL) {
    cli_error("out of memory");
    return CLI_EXIT_FAILED;
  }
  cli_table_print(t, stdout);
  cli_table_free(t);
  return CLI_EXIT_OK;
}

/* ---- history runs ------------------------------------------------------------ */

#define RUN_FIELDS                                                                                 \
  "SELECT workflow_id::text AS workflow_id, workflow_name, status, " US("started_at") ", " US(     \
      "completed_at") ", duration_ms, node_count, nodes_completed, nodes_failed, "                 \
                      "nodes_skipped, nodes_timed_out, nodes_cancelled, nodes_running, attempts, " \
                      "error_count, host, pid, "
#define RUN_COLUMNS                                                                                \
  RUN_FIELDS "(SELECT (extract(epoch FROM p.idle_for) * 1000)::double precision "                  \
             "FROM flowcore_running_progress p WHERE p.workflow_id = r.workflow_id) AS idle_ms "   \
             "FROM flowcore_recent_runs r "
/* Run $1 alone: flowcore_run(uuid) prunes every table to the run's
 * partition when the query is planned (through the view, the node and
 * error counts are planned on every partition: 60 ms of the command with
 * 100 day partitions). idle_ms is only for a running run, read then with
 * RUN_COLUMNS. */
#define RUN_ONE RUN_FIELDS "NULL::double precision AS idle_ms FROM flowcore_run($1::uuid) r"
#define RUN_TYPES "sssttfiiiiiiiiisif"

/* Liveness of row r of res, a run marked running (columns host, pid,
 * started_at, idle_ms): CLI_RUN_*, with the reason in why. */
static int row_liveness(const hist_t *h, const PGresult *res, int r, char *why, size_t size) {
  return cli_run_liveness(text(res, r, "host"), is_null(res, r, "pid") ? 0 : integer(res, r, "pid"),
                          (int64_t)integer(res, r, "started_at"),
                          is_null(res, r, "idle_ms") ? 0.0 : real(res, r, "idle_ms"), h->stale_ms,
                          why, size);
}

/* Adds "liveness" (live or abandoned; null for a finished run) and
 * "liveness_reason" to the JSON object of row r. Returns 0 or -1. */
static int json_add_liveness(const hist_t *h, json_t *obj, const PGresult *res, int r) {
  const char *st = text(res, r, "status");
  char why[512];
  int lv;
  if (st != NULL && strcmp(st, "running") != 0)
    return json_object_set_new(obj, "liveness", json_null()) != 0 ||
                   json_object_set_new(obj, "liveness_reason", json_null()) != 0
               ? -1
               : 0;
  lv = row_liveness(h, res, r, why, sizeof why);
  return json_object_set_new(obj, "liveness",
                             json_string(lv == CLI_RUN_LIVE ? "live" : "abandoned")) != 0 ||
                 json_object_set_new(obj, "liveness_reason", json_string(why)) != 0
             ? -1
             : 0;
}

/* Prints rows as a JSON array, each object with its liveness. */
static int print_runs_json(const hist_t *h, const PGresult *res, const char *types) {
  json_t *arr = rows_json(res, types);
  int r;
  for (r = 0; arr != NULL && r < PQntuples(res); r++)
    if (json_add_liveness(h, json_array_get(arr, (size_t)r), res, r) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  return print_json_new(arr);
}

static void note_abandoned(const hist_t *h, int n) {
  char stale[32];
  if (n == 0)
    return;
  cli_format_duration_ms(h->stale_ms, stale, sizeof stale);
  cli_error("note: %d run%s marked running look%s abandoned (process gone on this host, or "
            "nothing heard for over %s); 'flowcore history reap' marks them",
            n, n == 1 ? "" : "s", n == 1 ? "s" : "", stale);
}

static void note_losses(hist_t *h) {
  PGresult *res = PQexec(h->conn, "SELECT coalesce(sum(total), 0)::bigint AS lost "
                                  "FROM flowcore_writer_loss_summary");
  if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
    long long lost = integer(res, 0, "lost");
    if (lost > 0)
      cli_error("note: history writers reported %lld lost record%s; see 'flowcore history "
                "losses'",
                lost, lost == 1 ? "" : "s");
  }
  PQclear(res);
}

/* The opening shared by the run lists: runs the query, then either prints
 * the rows as JSON, or says `empty` when there are none (and the writers'
 * losses when `losses`), or returns the result for the caller's table. A NULL
 * return means the command is done with exit code *rc. */
static PGresult *runs_list(hist_t *h, const char *sql, int nparams, const char *const *params,
                           const char *types, const char *empty, int losses, int *rc) {
  PGresult *res = query(h, sql, nparams, params);
  *rc = CLI_EXIT_OK;
  if (res == NULL) {
    *rc = CLI_EXIT_FAILED;
    return NULL;
  }
  if (h->json)
    *rc = print_runs_json(h, res, types);
  else if (PQntuples(res) == 0) {
    cli_printf(stdout, "%s\n", empty);
    if (losses)
      note_losses(h);
  } else
    return res;
  PQclear(res);
  return NULL;
}

static int cmd_runs(hist_t *h, const char *since_param) {
  static const char *const headers[] = {"ID",       "WORKFLOW",  "STATUS", "STARTED",
                                        "DURATION", "NODES",     "DONE",   "FAILED",
                                        "SKIPPED",  "CANCELLED", "ERRORS"};
  char limit[32];
  const char *params[4];
  PGresult *res;
  cli_table_t *t;
  int r, rc, abandoned = 0;
  snprintf(limit, sizeof limit, "%llu", (unsigned long long)h->limit);
  params[0] = h->workflow;
  params[1] = h->status;
  params[2] = since_param;
  params[3] = limit;
  res = runs_list(h,
                  RUN_COLUMNS "WHERE ($1::text IS NULL OR workflow_name = $1::text) "
                              "AND ($2::text IS NULL OR status = $2::text) "
                              "AND ($3::timestamptz IS NULL OR started_at >= $3::timestamptz) "
                              "ORDER BY r.started_at DESC, r.workflow_id DESC LIMIT $4::bigint",
                  4, params, RUN_TYPES, "no runs found", 1, &rc);
  if (res == NULL)
    return rc;
  t = cli_table_new(11, headers, "llllrrrrrrr");
  cli_table_max_width(t, 1, 40);
  for (r = 0; t != NULL && r < PQntuples(res); r++) {
    char started[32], dur[32], n[7][24], why[512];
    const char *cells[11];
    cells[0] = text(res, r, "workflow_id");
    cells[1] = text(res, r, "workflow_name");
    cells[2] = text(res, r, "status");
    if (cells[2] != NULL && strcmp(cells[2], "running") == 0 &&
        row_liveness(h, res, r, why, sizeof why) != CLI_RUN_LIVE) {
      cells[2] = "running (abandoned)";
      abandoned++;
    }
    cells[3] = cell_time(res, r, "started_at", started, sizeof started);
    cells[4] = cell_ms(res, r, "duration_ms", dur, sizeof dur);
    cells[5] = cell_int(res, r, "node_count", n[0], sizeof n[0]);
    cells[6] = cell_int(res, r, "nodes_completed", n[1], sizeof n[1]);
    snprintf(n[2], sizeof n[2], "%lld",
             integer(res, r, "nodes_failed") + integer(res, r, "nodes_timed_out"));
    cells[7] = n[2];
    cells[8] = cell_int(res, r, "nodes_skipped", n[3], sizeof n[3]);
    cells[9] = cell_int(res, r, "nodes_cancelled", n[4], sizeof n[4]);
    cells[10] = cell_int(res, r, "error_count", n[5], sizeof n[5]);
    if (cli_table_add(t, cells) != 0) {
      cli_table_free(t);
      t = NULL;
    }
  }
  PQclear(res);
  rc = print_table(t);
  note_abandoned(h, abandoned);
  note_losses(h);
  return rc;
}

/* ---- history show ID ------------------------------------------------------------- */

/* Turns an id prefix into the smallest and largest UUIDs that start with
 * it. Accepts 1-32 hex digits, with dashes anywhere (ignored). Returns 0 or
 * -1. */
static int prefix_bounds(const char *prefix, char lo[37], char hi[37]) {
  char hex[33];
  size_t n = 0, i, o = 0;
  for (; *prefix != '\0'; prefix++) {
    if (*prefix == '-')
      continue;
    if (!isxdigit((unsigned char)*prefix) || n == 32)
      return -1;
    hex[n++] = (char)tolower((unsigned char)*prefix);
  }
  if (n == 0)
    return -1;
  for (i = 0; i < 32; i++) {
    if (i == 8 || i == 12 || i == 16 || i == 20) {
      lo[o] = '-';
      hi[o] = '-';
      o++;
    }
    lo[o] = i < n ? hex[i] : '0';
    hi[o] = i < n ? hex[i] : 'f';
    o++;
  }
  lo[o] = '\0';
  hi[o] = '\0';
  return 0;
}

static int invalid_id(const hist_t *h) {
  return cli_usage_error(h->cmd,
                         "invalid run id '%s': expected a run id or a prefix of one "
                         "(hexadecimal digits and dashes)",
                         h->id);
}

/* Finds the one run whose id starts with h->id. Returns 0 with the id in
 * out, or an exit code after printing why not. */
static int resolve_id(hist_t *h, char out[37]) {
  static const char *const sources[] = {
      "SELECT workflow_id::text AS workflow_id FROM flowcore_recent_runs "
      "WHERE workflow_id BETWEEN $1::uuid AND $2::uuid "
      "ORDER BY started_at DESC LIMIT 6",
      /* A run whose own row was never written still has node rows. */
      "SELECT DISTINCT workflow_id::text AS workflow_id FROM flowcore_run_timeline "
      "WHERE workflow_id BETWEEN $1::uuid AND $2::uuid "
      "ORDER BY 1 DESC LIMIT 6"};
  char lo[37], hi[37];
  const char *params[2];
  size_t s;
  if (prefix_bounds(h->id, lo, hi) != 0)
    return invalid_id(h);
  params[0] = lo;
  params[1] = hi;
  for (s = 0; s < sizeof sources / sizeof sources[0]; s++) {
    PGresult *res = query(h, sources[s], 2, params);
    int n, r;
    if (res == NULL)
      return CLI_EXIT_FAILED;
    n = PQntuples(res);
    if (n == 1) {
      snprintf(out, 37, "%s", PQgetvalue(res, 0, 0));
      PQclear(res);
      return 0;
    }
    if (n > 1) {
      cli_error("run id prefix '%s' is ambiguous; it matches:", h->id);
      for (r = 0; r < n && r < 5; r++)
        cli_printf(stderr, "  %s\n", PQgetvalue(res, r, 0));
      if (n > 5)
        cli_printf(stderr, "  ...\n");
      cli_printf(stderr, "Give more digits of the id.\n");
      PQclear(res);
      return CLI_EXIT_USAGE;
    }
    PQclear(res);
  }
  cli_error("no run with an id starting with '%s'", h->id);
  return CLI_EXIT_USAGE;
}

/* The node rows of run $1: flowcore_run_timeline(uuid) prunes every table to
 * the run's partition when the query is planned (the view does it only for
 * node_executions). */
#define NODE_COLUMNS                                                                               \
  "SELECT node_id, attempt, node_type, status, " US("started_at") ", " US(                         \
      "completed_at") ", duration_ms, offset_ms, error_type, error_message FROM "                  \
                      "flowcore_run_timeline($1::uuid) t "
#define NODE_TYPES "sissttffss"
/* show --input: the full inputs, rebuilt from compact storage
 * (migrations/0009_compact_inputs.sql), as JSON text. */
#define NODE_COLUMNS_INPUT                                                                         \
  "SELECT node_id, attempt, node_type, status, " US("started_at") ", " US(                         \
      "completed_at") ", duration_ms, offset_ms, error_type, error_message, "                      \
                      "flowcore_node_input_text(t.workflow_id, t.node_id, t.attempt) AS input "    \
                      "FROM flowcore_run_timeline($1::uuid) t "

/* The reap record of an abandoned run (flowcore_reaps), or NULL. */
#define REAP_COLUMNS                                                                               \
  "SELECT " US("reaped_at") ", reaped_by, reaper_host, reaper_pid, rule, message "                 \
  "FROM flowcore_reaps WHERE workflow_id = $1::uuid"
#define REAP_TYPES "tssiss"

static void print_run_header(const hist_t *h, const PGresult *run, const PGresult *reap,
                             const char *id) {
  char buf[64];
  long long nc = integer(run, 0, "node_count");
  static const struct {
    const char *col, *label;
  } counts[] = {{"nodes_completed", "completed"}, {"nodes_failed", "failed"},
                {"nodes_timed_out", "timed_out"}, {"nodes_skipped", "skipped"},
                {"nodes_cancelled", "cancelled"}, {"nodes_running", "running"}};
  char line[256];
  size_t len = 0, i;
  cli_printf(stdout, "run       %s\n", id);
  cli_printf(stdout, "workflow  %s\n", text(run, 0, "workflow_name"));
  cli_printf(stdout, "status    %s\n", text(run, 0, "status"));
  if (!is_null(run, 0, "host"))
    cli_printf(stdout, "host      %s (pid %lld)\n", text(run, 0, "host"), integer(run, 0, "pid"));
  if (strcmp(text(run, 0, "status"), "running") == 0) {
    char why[512];
    int lv = row_liveness(h, run, 0, why, sizeof why);
    cli_printf(stdout, "liveness  %s: %s\n", lv == CLI_RUN_LIVE ? "live" : "abandoned", why);
  }
  if (reap != NULL && PQntuples(reap) == 1) {
    cli_printf(stdout, "reaped    %s by %s on %s (pid %lld): %s\n",
               cell_time(reap, 0, "reaped_at", buf, sizeof buf), text(reap, 0, "reaped_by"),
               is_null(reap, 0, "reaper_host") ? "?" : text(reap, 0, "reaper_host"),
               integer(reap, 0, "reaper_pid"), text(reap, 0, "message"));
  }
  cli_printf(stdout, "started   %s\n", cell_time(run, 0, "started_at", buf, sizeof buf));
  if (!is_null(run, 0, "completed_at"))
    cli_printf(stdout, "finished  %s\n", cell_time(run, 0, "completed_at", buf, sizeof buf));
  cli_printf(stdout, "duration  %s\n", cell_ms(run, 0, "duration_ms", buf, sizeof buf));
  line[0] = '\0';
  for (i = 0; i < sizeof counts / sizeof counts[0]; i++) {
    long long n = integer(run, 0, counts[i].col);
    if (n == 0)
      continue;
    len += (size_t)snprintf(line + len, sizeof line - len, "%s%lld %s", len > 0 ? ", " : "", n,
                            counts[i].label);
    if (len >= sizeof line)
      break;
  }
  cli_printf(stdout, "nodes     %lld%s%s\n", nc, line[0] != '\0' ? ": " : "", line);
  cli_printf(stdout, "attempts  %lld\n", integer(run, 0, "attempts"));
  cli_printf(stdout, "errors    %lld\n", integer(run, 0, "error_count"));
}

static int show_html(hist_t *h, const char *id, const PGresult *run, const PGresult *nodes);

static int cmd_show(hist_t *h) {
  static const char *const headers[] = {"NODE",  "ATTEMPT",  "TYPE", "STATUS",
                                        "START", "DURATION", "ERROR"};
  char id[37];
  const char *params[1];
  PGresult *run, *nodes, *reap = NULL;
  cli_table_t *t;
  int rc, r;
  rc = resolve_id(h, id);
  if (rc != 0)
    return rc;
  params[0] = id;
  run = query(h, RUN_ONE, 1, params);
  if (run != NULL && PQntuples(run) == 1 && strcmp(text(run, 0, "status"), "running") == 0) {
    PQclear(run); /* how long it has been idle, too */
    run = query(h, RUN_COLUMNS "WHERE workflow_id = $1::uuid", 1, params);
  }
  if (run == NULL)
    return CLI_EXIT_FAILED;
  if (PQntuples(run) == 1 && strcmp(text(run, 0, "status"), "abandoned") == 0) {
    reap = query(h, REAP_COLUMNS, 1, params);
    if (reap == NULL) {
      PQclear(run);
      return CLI_EXIT_FAILED;
    }
  }
  nodes = query(h,
                h->input && h->html == NULL
                    ? NODE_COLUMNS_INPUT "ORDER BY t.started_at NULLS LAST, t.node_id, t.attempt"
                    : NODE_COLUMNS "ORDER BY t.started_at NULLS LAST, t.node_id, t.attempt",
                1, params);
  if (nodes == NULL) {
    PQclear(run);
    PQclear(reap);
    return CLI_EXIT_FAILED;
  }
  if (h->html != NULL) {
    rc = show_html(h, id, run, nodes);
    PQclear(run);
    PQclear(reap);
    PQclear(nodes);
    return rc;
  }
  if (h->json) {
    json_t *obj =
        PQntuples(run) == 1 ? row_json(run, 0, RUN_TYPES) : json_pack("{s:s}", "workflow_id", id);
    json_t *arr = rows_json(nodes, h->input ? NODE_TYPES "s" : NODE_TYPES);
    json_t *rj = reap != NULL && PQntuples(reap) == 1 ? row_json(reap, 0, REAP_TYPES) : json_null();
    if (obj != NULL && PQntuples(run) == 1 && json_add_liveness(h, obj, run, 0) != 0) {
      json_decref(obj);
      obj = NULL;
    }
    if (obj == NULL) {
      json_decref(rj);
      json_decref(arr);
    } else {
      /* json_object_set_new steals its value even on failure: call both. */
      int bad = json_object_set_new(obj, "reap", rj) != 0;
      bad |= json_object_set_new(obj, "nodes", arr) != 0;
      if (bad) {
        json_decref(obj);
        obj = NULL;
      }
    }
    rc = print_json_new(obj);
    PQclear(run);
    PQclear(reap);
    PQclear(nodes);
    return rc;
  }
  if (PQntuples(run) == 1)
    print_run_header(h, run, reap, id);
  else
    cli_printf(stdout, "run       %s (its run record is not in the history)\n", id);
  PQclear(run);
  PQclear(reap);
  cli_printf(stdout, "\n");
  t = cli_table_new(7, headers, "lrllrrl");
  cli_table_max_width(t, 6, 100);
  for (r = 0; t != NULL && r < PQntuples(nodes); r++) {
    char attempt[24], start[32], dur[32], err[1024];
    const char *cells[7], *et = text(nodes, r, "error_type"), *em = text(nodes, r, "error_message");
    long long a = integer(nodes, r, "attempt");
    if (a > 0)
      snprintf(attempt, sizeof attempt, "%lld", a);
    else
      snprintf(attempt, sizeof attempt, "-");
    if (is_null(nodes, r, "offset_ms")) {
      snprintf(start, sizeof start, "-");
    } else {
      double off = real(nodes, r, "offset_ms");
      start[0] = '+';
      cli_format_duration_ms(off < 0 ? 0 : off, start + 1, sizeof start - 1);
    }
    if (et != NULL || em != NULL)
      snprintf(err, sizeof err, "%s%s%s", et != NULL ? et : "",
               et != NULL && em != NULL ? ": " : "", em != NULL ? em : "");
    else
      err[0] = '\0';
    cells[0] = text(nodes, r, "node_id");
    cells[1] = attempt;
    cells[2] = text(nodes, r, "node_type");
    cells[3] = text(nodes, r, "status");
    cells[4] = start;
    cells[5] = cell_ms(nodes, r, "duration_ms", dur, sizeof dur);
    cells[6] = err;
    if (cli_table_add(t, cells) != 0) {
      cli_table_free(t);
      t = NULL;
    }
  }
  rc = print_table(t);
  for (r = 0; h->input && rc == CLI_EXIT_OK && r < PQntuples(nodes); r++) {
    const char *in = text(nodes, r, "input");
    cli_printf(stdout, "\ninput of %s attempt %lld:\n%s\n", text(nodes, r, "node_id"),
               integer(nodes, r, "attempt"), in != NULL ? in : "(none)");
  }
  PQclear(nodes);
  return rc;
}


/* ---- history show ID --html, history report ------------------------------------ */

/* types (see row_json) with every 't' made 'i': the reports compute with
 * the times, as µs since the epoch. */
static const char *types_us(const char *types, char *buf, size_t size) {
  size_t i;
  for (i = 0; types[i] != '\0' && i + 1 < size; i++)
    buf[i] = types[i] == 't' ? 'i' : types[i];
  buf[i] = '\0';
  return buf;
}

/* Sets data[key] to the rows of a query (types as row_json, times as µs),
 * or to the first row's object when `one` (null when there is none).
 * Returns 0, or CLI_EXIT_FAILED after printing why. */
static int html_rows(hist_t *h, json_t *data, const char *key, const char *sql, int nparams,
                     const char *const *params, const char *types, int one) {
  char tbuf[64];
  PGresult *res = query(h, sql, nparams, params);
  json_t *v;
  if (res == NULL)
    return CLI_EXIT_FAILED;
  types_us(types, tbuf, sizeof tbuf);
  if (one)
    v = PQntuples(res) > 0 ? row_json(res, 0, tbuf) : json_null();
  else
    v = rows_json(res, tbuf);
  PQclear(res);
  if (v == NULL || json_object_set_new(data, key, v) != 0) {
    cli_error("out of memory");
    return CLI_EXIT_FAILED;
  }
  return 0;
}

/* Moves member `from` of the first element of data[arr] to data[to] (the
 * queries' count(*) OVER ()); 0 when the array is empty. */
static void html_total(json_t *data, const char *arr, const char *from, const char *to) {
  json_t *first = json_array_get(json_object_get(data, arr), 0);
  json_t *v = json_object_get(first, from);
  json_object_set_new(data, to, json_integer(json_is_integer(v) ? json_integer_value(v) : 0));
}

/* Renders a report into memory, removes the secrets from it (as every
 * output of the command), and writes it to h->html ("-": stdout). */
static int write_html(hist_t *h, int (*render)(FILE *, const json_t *), const json_t *data) {
  char *buf = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&buf, &len);
  int failed;
  if (mem == NULL) {
    cli_error("out of memory");
    return CLI_EXIT_FAILED;
  }
  failed = render(mem, data) != 0;
  failed |= fclose(mem) != 0;
  if (failed || buf == NULL) {
    free(buf);
    cli_error("out of memory");
    return CLI_EXIT_FAILED;
  }
  buf = cli_redact(buf);
  if (buf == NULL) {
    cli_error("out of memory");
    return CLI_EXIT_FAILED;
  }
  len = strlen(buf);
  if (strcmp(h->html, "-") == 0) {
    failed = fwrite(buf, 1, len, stdout) != len;
  } else {
    FILE *f = fopen(h->html, "w");
    if (f == NULL) {
      cli_error("%s: cannot write the report: %s", h->html, strerror(errno));
      free(buf);
      return CLI_EXIT_FAILED;
    }
    failed = fwrite(buf, 1, len, f) != len;
    failed |= fclose(f) != 0;
    if (failed) {
      cli_error("%s: cannot write the report: %s", h->html, strerror(errno));
      free(buf);
      return CLI_EXIT_FAILED;
    }
  }
  free(buf);
  return CLI_EXIT_OK;
}

/* The edges of a run's DAG: a node's input holds each dependency's output
 * under the dependency's id (and the run's input under "input"); stored
 * inline (input_data) or as a reference (input_refs, 0009). */
static const char EDGES_SQL[] =
    "SELECT DISTINCT k.key AS \"from\", n.node_id AS \"to\" FROM node_executions n"
    " CROSS JOIN LATERAL (SELECT jsonb_object_keys(CASE WHEN jsonb_typeof(n.input_data) ="
    " 'object' THEN n.input_data ELSE '{}'::jsonb END) AS key UNION SELECT"
    " jsonb_object_keys(CASE WHEN jsonb_typeof(n.input_refs) = 'object' THEN n.input_refs"
    " ELSE '{}'::jsonb END)) k"
    " WHERE n.workflow_id = $1::uuid AND k.key <> 'input' ORDER BY 2, 1";

static const char RUN_PAYLOAD_SQL[] =
    "SELECT left(i, $2::int) AS input, octet_length(i) AS input_bytes,"
    " left(o, $2::int) AS output, octet_length(o) AS output_bytes"
    " FROM (SELECT w.input_data::text AS i, flowcore_run_output_text(w.workflow_id) AS o"
    " FROM workflow_executions w WHERE w.workflow_id = $1::uuid) s";

/* The inputs and outputs of the first attempts in start order: the limit
 * applies before the payloads are rebuilt. */
static const char PAYLOADS_SQL[] =
    "SELECT s.node_id, s.attempt, left(p.i, $2::int) AS input,"
    " octet_length(p.i) AS input_bytes, left(p.o, $2::int) AS output,"
    " octet_length(p.o) AS output_bytes, s.total"
    " FROM (SELECT t.workflow_id, t.node_id, t.attempt, t.started_at, count(*) OVER () AS total"
    " FROM node_executions t WHERE t.workflow_id = $1::uuid AND t.started_at IS NOT NULL"
    " ORDER BY t.started_at, t.node_id, t.attempt LIMIT $3::int) s"
    " CROSS JOIN LATERAL (SELECT flowcore_node_input_text(s.workflow_id, s.node_id, s.attempt)"
    " AS i, flowcore_node_output_text(s.workflow_id, s.node_id, s.attempt) AS o) p"
    " ORDER BY s.started_at, s.node_id, s.attempt";

static const char ERRORS_SQL[] =
    "SELECT node_id, attempt, severity, error_type, error_message, stack_trace, " US(
        "occurred_at") ", count(*) OVER () AS total FROM execution_errors e"
                       " WHERE e.workflow_id = $1::uuid ORDER BY e.occurred_at, e.error_id"
                       " LIMIT $2::int";

/* show ID --html: the run's row and attempts are the ones `show` read. */
static int show_html(hist_t *h, const char *id, const PGresult *run, const PGresult *nodes) {
  char tbuf[64], cap[24], max_payloads[24], max_errors[24];
  const char *params[3] = {id, cap, max_payloads}, *eparams[2] = {id, max_errors};
  json_t *data = json_object(), *payload;
  int rc = CLI_EXIT_FAILED;
  snprintf(cap, sizeof cap, "%d", CLI_REPORT_PAYLOAD_CAP);
  snprintf(max_payloads, sizeof max_payloads, "%d", CLI_REPORT_MAX_PAYLOADS);
  snprintf(max_errors, sizeof max_errors, "%d", CLI_REPORT_MAX_ERRORS);
  if (data == NULL)
    goto oom;
  if (json_object_set_new(data, "workflow_id", json_string(id)) != 0 ||
      json_object_set_new(data, "now", json_integer((json_int_t)cli_now_us())) != 0 ||
      json_object_set_new(data, "run", PQntuples(run) == 1
                                            ? row_json(run, 0, types_us(RUN_TYPES, tbuf,
                                                                        sizeof tbuf))
                                            : json_null()) != 0 ||
      json_object_set_new(data, "attempts",
                          rows_json(nodes, types_us(NODE_TYPES, tbuf, sizeof tbuf))) != 0)
    goto oom;
  if (html_rows(h, data, "edges", EDGES_SQL, 1, params, "ss", 0) != 0 ||
      html_rows(h, data, "errors", ERRORS_SQL, 2, eparams, "sissssti", 0) != 0 ||
      html_rows(h, data, "payloads", PAYLOADS_SQL, 3, params, "sisisii", 0) != 0 ||
      html_rows(h, data, "run_payload", RUN_PAYLOAD_SQL, 2, params, "sisi", 1) != 0)
    goto done;
  html_total(data, "errors", "total", "errors_total");
  html_total(data, "payloads", "total", "payloads_total");
  payload = json_object_get(data, "run_payload");
  if (json_is_object(payload))
    json_object_update(data, payload);
  rc = write_html(h, cli_report_run, data);
  goto done;
oom:
  cli_error("out of memory");
done:
  json_decref(data);
  return rc;
}

/* history report --workflow NAME --html FILE: the runs of the window, then
 * their nodes. */
static int cmd_report(hist_t *h, const char *since_param) {
  static const char RUNS_SQL[] =
      "SELECT workflow_id::text AS workflow_id, status, " US("started_at") ", duration_ms,"
      " error_count, count(*) OVER () AS total FROM flowcore_recent_runs r"
      " WHERE r.workflow_name = $1::text AND r.started_at >= $2::timestamptz"
      " ORDER BY r.started_at DESC, r.workflow_id DESC LIMIT $3::bigint";
  static const char CELLS_SQL[] =
      "SELECT DISTINCT ON (t.workflow_id, t.node_id) t.workflow_id::text AS workflow_id,"
      " t.node_id, t.status, count(t.started_at) OVER (PARTITION BY t.workflow_id, t.node_id)"
      " AS attempts FROM node_executions t WHERE t.workflow_id = ANY ($1::uuid[])"
      " ORDER BY t.workflow_id, t.node_id, t.attempt DESC";
  static const char STATS_SQL[] =
      "SELECT t.node_id, count(t.started_at) AS attempts,"
      " count(*) FILTER (WHERE t.status IN ('failed', 'timed_out')) AS failures,"
      " percentile_cont(0.5) WITHIN GROUP (ORDER BY t.duration_ms) AS p50_ms,"
      " percentile_cont(0.95) WITHIN GROUP (ORDER BY t.duration_ms) AS p95_ms"
      " FROM flowcore_run_timeline t WHERE t.workflow_id = ANY ($1::uuid[])"
      " GROUP BY t.node_id ORDER BY min(t.offset_ms) NULLS LAST, t.node_id";
  static const char DAYS_SQL[] =
      "SELECT to_char(d AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, coalesce(c.n, 0) AS errors"
      " FROM generate_series(date_trunc('day', $2::timestamptz, 'UTC'), now(),"
      " interval '1 day') d LEFT JOIN (SELECT date_trunc('day', e.occurred_at, 'UTC') AS day,"
      " count(*) AS n FROM flowcore_errors e WHERE e.workflow_name = $1::text"
      " AND e.occurred_at >= $2::timestamptz GROUP BY 1) c ON c.day = d ORDER BY d";
  char limit[32], *ids = NULL;
  const char *params[3];
  json_t *data = json_object(), *runs;
  size_t i, n, len = 0;
  int64_t since_us;
  int rc = CLI_EXIT_FAILED;
  if (data == NULL)
    goto oom;
  (void)cli_parse_since(since_param, cli_now_us(), &since_us);
  snprintf(limit, sizeof limit, "%llu", (unsigned long long)h->limit);
  params[0] = h->workflow;
  params[1] = since_param;
  params[2] = limit;
  if (json_object_set_new(data, "workflow", json_string(h->workflow)) != 0 ||
      json_object_set_new(data, "since", json_integer((json_int_t)since_us)) != 0 ||
      json_object_set_new(data, "now", json_integer((json_int_t)cli_now_us())) != 0)
    goto oom;
  if (html_rows(h, data, "runs", RUNS_SQL, 3, params, "sstfii", 0) != 0)
    goto done;
  html_total(data, "runs", "total", "runs_total");
  /* Oldest first, and the ids as a uuid[] literal. */
  runs = json_object_get(data, "runs");
  n = json_array_size(runs);
  for (i = 0; i < n / 2; i++) {
    json_t *a = json_incref(json_array_get(runs, i));
    json_t *b = json_incref(json_array_get(runs, n - 1 - i));
    json_array_set_new(runs, i, b);
    json_array_set_new(runs, n - 1 - i, a);
  }
  ids = malloc(n * 38 + 3);
  if (ids == NULL)
    goto oom;
  ids[len++] = '{';
  for (i = 0; i < n; i++) {
    const char *id = cli_json_str(json_array_get(runs, i), "workflow_id");
    len += (size_t)sprintf(ids + len, "%s%s", i > 0 ? "," : "", id != NULL ? id : "");
  }
  ids[len++] = '}';
  ids[len] = '\0';
  params[0] = ids;
  if (html_rows(h, data, "cells", CELLS_SQL, 1, params, "sssi", 0) != 0 ||
      html_rows(h, data, "node_stats", STATS_SQL, 1, params, "siiff", 0) != 0)
    goto done;
  params[0] = h->workflow;
  if (html_rows(h, data, "errors_per_day", DAYS_SQL, 2, params, "si", 0) != 0)
    goto done;
  rc = write_html(h, cli_report_workflow, data);
  goto done;
oom:
  cli_error("out of memory");
done:
  free(ids);
  json_decref(data);
  return rc;
}

/* ---- history errors ---------------------------------------------------------------- */

/* The reports whose shape is the same: one query, printed as JSON (`types`,
 * see row_json) or as a table of the listed columns, or `empty` when it has
 * no rows. runs, show, running and reap have their own code. */
typedef struct {
  const char *name;    /* the result column */
  char kind;           /* 's' text, 'i' integer, 'd' duration (ms), 't' time (µs) */
  const char *if_null; /* for 's': shown instead of NULL (NULL: as is) */
} report_column_t;

enum { REPORT_MAX_COLUMNS = 10 };

typedef struct {
  const char *sql;
  const char *types; /* JSON types, one letter per result column */
  const char *empty; /* printed when there is no row */
  int ncolumns;
  const char *const *headers;
  const char *align;
  int wide_column[2]; /* column indices capped at wide_width[i] (-1: none) */
  int wide_width[2];
  report_column_t columns[REPORT_MAX_COLUMNS];
} report_t;

static const char *report_cell(const report_column_t *c, const PGresult *res, int r, char *buf,
                               size_t size) {
  const char *v;
  switch (c->kind) {
  case 'i':
    return cell_int(res, r, c->name, buf, size);
  case 'd':
    return cell_ms(res, r, c->name, buf, size);
  case 't':
    return cell_time(res, r, c->name, buf, size);
  default:
    v = text(res, r, c->name);
    return v == NULL && c->if_null != NULL ? c->if_null : v;
  }
}

static int print_report(hist_t *h, const report_t *rep, int nparams, const char *const *params) {
  PGresult *res;
  cli_table_t *t;
  int r, i, rc;
  res = query(h, rep->sql, nparams, params);
  if (res == NULL)
    return CLI_EXIT_FAILED;
  if (h->json) {
    rc = print_rows_json(res, rep->types);
    PQclear(res);
    return rc;
  }
  if (PQntuples(res) == 0) {
    cli_printf(stdout, "%s\n", rep->empty);
    PQclear(res);
    return CLI_EXIT_OK;
  }
  t = cli_table_new((size_t)rep->ncolumns, rep->headers, rep->align);
  for (i = 0; i < 2; i++)
    if (rep->wide_column[i] >= 0)
      cli_table_max_width(t, (size_t)rep->wide_column[i], (size_t)rep->wide_width[i]);
  for (r = 0; t != NULL && r < PQntuples(res); r++) {
    char bufs[REPORT_MAX_COLUMNS][32];
    const char *cells[REPORT_MAX_COLUMNS];
    for (i = 0; i < rep->ncolumns; i++)
      cells[i] = report_cell(&rep->columns[i], res, r, bufs[i], sizeof bufs[i]);
    if (cli_table_add(t, cells) != 0) {
      cli_table_free(t);
      t = NULL;
    }
  }
  PQclear(res);
  return print_table(t);
}

/* ---- history errors ---------------------------------------------------------------- */

static const char *const ERRORS_HEADERS[] = {"LAST SEEN", "WORKFLOW", "NODE",        "TYPE",
                                             "SEVERITY",  "COUNT",    "LAST MESSAGE"};
static const report_t ERRORS = {
    "SELECT workflow_name, node_id, error_type, severity, errors, " US("first_seen") ", " US(
        "last_seen") ", last_message FROM flowcore_error_rollup e "
                     "WHERE ($1::text IS NULL OR workflow_name = $1::text) "
                     "AND ($2::timestamptz IS NULL OR last_seen >= $2::timestamptz) "
                     "ORDER BY e.last_seen DESC, e.errors DESC, e.workflow_name, e.node_id "
                     "LIMIT $3::bigint",
    "ssssitts",
    "no errors found",
    7,
    ERRORS_HEADERS,
    "lllllrl",
    {1, 6},
    {40, 100},
    {{"last_seen", 't', NULL},
     {"workflow_name", 's', NULL},
     {"node_id", 's', "(workflow)"},
     {"error_type", 's', NULL},
     {"severity", 's', NULL},
     {"errors", 'i', NULL},
     {"last_message", 's', NULL}}};

static int cmd_errors(hist_t *h, const char *since_param) {
  char limit[32];
  const char *params[3];
  snprintf(limit, sizeof limit, "%llu", (unsigned long long)h->limit);
  params[0] = h->workflow;
  params[1] = since_param;
  params[2] = limit;
  return print_report(h, &ERRORS, 3, params);
}

/* ---- history stats ------------------------------------------------------------------- */

static const char *const STATS_HEADERS[] = {"WORKFLOW", "NODE", "RUNS", "ATTEMPTS", "FAILURES",
                                            "TIMEOUTS", "P50",  "P95",  "MEAN",     "MAX"};
static const report_t STATS = {"SELECT workflow_name, node_id, runs, attempts, failures, timeouts, "
                               "p50_ms, p95_ms, mean_ms, max_ms FROM flowcore_node_stats "
                               "WHERE ($1::text IS NULL OR workflow_name = $1::text) "
                               "ORDER BY workflow_name, node_id",
                               "ssiiiiffff",
                               "no finished node attempts found",
                               10,
                               STATS_HEADERS,
                               "llrrrrrrrr",
                               {0, -1},
                               {40, 0},
                               {{"workflow_name", 's', NULL},
                                {"node_id", 's', NULL},
                                {"runs", 'i', NULL},
                                {"attempts", 'i', NULL},
                                {"failures", 'i', NULL},
                                {"timeouts", 'i', NULL},
                                {"p50_ms", 'd', NULL},
                                {"p95_ms", 'd', NULL},
                                {"mean_ms", 'd', NULL},
                                {"max_ms", 'd', NULL}}};

static int cmd_stats(hist_t *h) {
  const char *params[1];
  params[0] = h->workflow;
  return print_report(h, &STATS, 1, params);
}

/* ---- history running / losses ----------------------------------------------------- */

#define RUNNING_COLUMNS                                                                            \
  "SELECT workflow_id::text AS workflow_id, workflow_name, 'running' AS status, " US(              \
      "started_at") ", node_count, nodes_finished, nodes_running, percent::double precision AS "   \
                    "percent, (extract(epoch FROM elapsed) * 1000)::double precision AS "          \
                    "elapsed_ms, host, pid, " US("last_activity_at") ", (extract(epoch FROM "      \
                    "idle_for) * 1000)::double precision AS idle_ms "                              \
                    "FROM flowcore_running_progress p ORDER BY p.started_at, p.workflow_id"
#define RUNNING_TYPES "ssstiiiffsitf"

static int cmd_running(hist_t *h) {
  static const char *const headers[] = {"ID",      "WORKFLOW", "STARTED",  "PROGRESS",
                                        "RUNNING", "ELAPSED",  "LIVENESS"};
  PGresult *res;
  cli_table_t *t;
  int r, rc, abandoned = 0;
  res = runs_list(h, RUNNING_COLUMNS, 0, NULL, RUNNING_TYPES, "no running runs", 0, &rc);
  if (res == NULL)
    return rc;
  t = cli_table_new(7, headers, "lllrrrl");
  cli_table_max_width(t, 6, 100);
  for (r = 0; t != NULL && r < PQntuples(res); r++) {
    char started[32], progress[64], running[24], elapsed[32], why[512], state[600];
    const char *cells[7];
    int lv = row_liveness(h, res, r, why, sizeof why);
    abandoned += lv != CLI_RUN_LIVE;
    snprintf(state, sizeof state, "%s: %s", lv == CLI_RUN_LIVE ? "live" : "abandoned", why);
    snprintf(progress, sizeof progress, "%lld/%lld (%.1f%%)", integer(res, r, "nodes_finished"),
             integer(res, r, "node_count"), real(res, r, "percent"));
    cells[0] = text(res, r, "workflow_id");
    cells[1] = text(res, r, "workflow_name");
    cells[2] = cell_time(res, r, "started_at", started, sizeof started);
    cells[3] = progress;
    cells[4] = cell_int(res, r, "nodes_running", running, sizeof running);
    cells[5] = cell_ms(res, r, "elapsed_ms", elapsed, sizeof elapsed);
    cells[6] = state;
    if (cli_table_add(t, cells) != 0) {
      cli_table_free(t);
      t = NULL;
    }
  }
  PQclear(res);
  rc = print_table(t);
  note_abandoned(h, abandoned);
  return rc;
}

/* ---- history reap ------------------------------------------------------------------ */

/* Marks one run abandoned and records the reap, in one statement. It
 * changes nothing when the run is no longer running or something was heard
 * of it since it was judged (its last activity moved): never a live run.
 * $1 id, $2 rule, $3 last activity (µs), $4 message, $5 reaper host,
 * $6 reaper pid, $7 stale threshold (ms). */
static const char REAP_SQL[] =
    "WITH r AS ("
    " UPDATE workflow_executions w"
    "    SET status = 'abandoned',"
    "        completed_at = timestamptz 'epoch' + $3::bigint * interval '1 microsecond',"
    "        error_type = 'abandoned', error_message = $4::text"
    "  WHERE w.workflow_id = $1::uuid AND w.status = 'running'"
    "    AND NOT EXISTS (SELECT 1 FROM flowcore_running_progress p"
    "                     WHERE p.workflow_id = w.workflow_id"
    "                       AND p.last_activity_at >"
    "                           timestamptz 'epoch' + $3::bigint * interval '1 microsecond')"
    "  RETURNING w.workflow_id, w.host, w.pid, w.completed_at)"
    " INSERT INTO flowcore_reaps (workflow_id, reaper_host, reaper_pid, rule, run_host, run_pid,"
    "                             last_activity_at, stale_after, message)"
    " SELECT r.workflow_id, $5::text, $6::int, $2::text, r.host, r.pid, r.completed_at,"
    "        $7::bigint * interval '1 millisecond', $4::text FROM r"
    " RETURNING workflow_id";

static int cmd_reap(hist_t *h) {
  static const char *const headers[] = {"ID", "WORKFLOW", "RULE", "REASON"};
  PGresult *res;
  cli_table_t *t = NULL;
  json_t *arr = NULL;
  char here[256], pid[24], stale[32];
  int r, rc = CLI_EXIT_OK, reaped = 0, judged = 0;
  res = query(h, RUNNING_COLUMNS, 0, NULL);
  if (res == NULL)
    return CLI_EXIT_FAILED;
  if (cli_local_host(here, sizeof here) != 0)
    snprintf(here, sizeof here, "?");
  snprintf(pid, sizeof pid, "%d", (int)getpid());
  snprintf(stale, sizeof stale, "%.0f", h->stale_ms);
  if (h->json)
    arr = json_array();
  else
    t = cli_table_new(4, headers, "llll");
  if (arr == NULL && t == NULL) {
    PQclear(res);
    cli_error("out of memory");
    return CLI_EXIT_FAILED;
  }
  cli_table_max_width(t, 3, 100);
  for (r = 0; r < PQntuples(res); r++) {
    char why[512], msg[600], last[32];
    const char *params[7], *rule;
    int lv = row_liveness(h, res, r, why, sizeof why), done = 0;
    if (lv == CLI_RUN_LIVE)
      continue;
    judged++;
    rule = lv == CLI_RUN_GONE ? "process_gone" : "stale";
    snprintf(msg, sizeof msg, "abandoned: %s", why);
    snprintf(last, sizeof last, "%lld", integer(res, r, "last_activity_at"));
    if (!h->dry_run) {
      PGresult *u;
      params[0] = text(res, r, "workflow_id");
      params[1] = rule;
      params[2] = last;
      params[3] = msg;
      params[4] = here;
      params[5] = pid;
      params[6] = stale;
      u = query(h, REAP_SQL, 7, params);
      if (u == NULL) {
        rc = CLI_EXIT_FAILED;
        break;
      }
      done = PQntuples(u) == 1;
      PQclear(u);
      if (!done)
        continue; /* it finished or moved meanwhile: left alone */
      reaped++;
    }
    if (arr != NULL) {
      json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b}", "workflow_id",
                            text(res, r, "workflow_id"), "workflow_name",
                            text(res, r, "workflow_name"), "rule", rule, "message", msg,
                            "reaped", done);
      if (o == NULL || json_array_append_new(arr, o) != 0) {
        rc = CLI_EXIT_FAILED;
        break;
      }
    } else {
      const char *cells[4];
      cells[0] = text(res, r, "workflow_id");
      cells[1] = text(res, r, "workflow_name");
      cells[2] = rule;
      cells[3] = why;
      if (cli_table_add(t, cells) != 0) {
        rc = CLI_EXIT_FAILED;
        break;
      }
    }
  }
  PQclear(res);
  if (rc != CLI_EXIT_OK) {
    json_decref(arr);
    cli_table_free(t);
    return rc;
  }
  if (arr != NULL)
    return print_json_new(arr);
  if (cli_table_rows(t) > 0)
    cli_table_print(t, stdout);
  cli_table_free(t);
  if (h->dry_run)
    cli_printf(stdout, "%d run%s would be marked abandoned (dry run: nothing changed)\n", judged,
               judged == 1 ? "" : "s");
  else
    cli_printf(stdout, "%d run%s marked abandoned\n", reaped, reaped == 1 ? "" : "s");
  return CLI_EXIT_OK;
}

/* ---- history prune --------------------------------------------------------------------- */

#define PRUNE_BATCH "10000"

typedef struct {
  char dropped[4096]; /* "{p20261025,...}", a text[] literal */
  size_t ndropped;
  long long rows;
} prune_tally_t;

/* Drops (or lists, dry run) the partitions entirely older than now - secs. */
static int prune_partitions(hist_t *h, const char *secs, prune_tally_t *tally) {
  const char *params[2] = {secs, h->dry_run ? "true" : "false"};
  PGresult *res = query(h,
                        "SELECT partition_name, day::text AS day, estimated_rows"
                        " FROM flowcore_prune_partitions(now() - make_interval(secs => $1::float8),"
                        " $2::boolean)",
                        2, params);
  int r;
  if (res == NULL)
    return CLI_EXIT_FAILED;
  for (r = 0; r < PQntuples(res); r++) {
    size_t len = strlen(tally->dropped);
    cli_printf(stdout, "%s partition %s (day %s, about %lld rows)\n",
               h->dry_run ? "would drop" : "dropped", text(res, r, "partition_name"),
               text(res, r, "day"), integer(res, r, "estimated_rows"));
    snprintf(tally->dropped + len, sizeof tally->dropped - len, "%s%s", len > 0 ? "," : "",
             text(res, r, "partition_name"));
    tally->ndropped++;
  }
  PQclear(res);
  return CLI_EXIT_OK;
}

/* Deletes finished runs started before now - secs (of workflow, or all but
 * the ones with their own horizon when except), a batch per transaction. */
static int prune_rows(hist_t *h, const char *secs, const char *workflow, int except,
                      prune_tally_t *tally) {
  const char *params[5] = {secs, workflow, PRUNE_BATCH, h->dry_run ? "true" : "false",
                           except ? "true" : "false"};
  for (;;) {
    PGresult *res = query(h,
                          "SELECT flowcore_prune_runs(now() - make_interval(secs => $1::float8),"
                          " $2, $3::int, $4::boolean, $5::boolean) AS n",
                          5, params);
    long long n;
    if (res == NULL)
      return CLI_EXIT_FAILED;
    n = integer(res, 0, "n");
    PQclear(res);
    tally->rows += n;
    if (n == 0 || h->dry_run)
      return CLI_EXIT_OK;
  }
}

/* The horizons of flowcore_retention: workflow_name ('' for the default)
 * and seconds, the default first. */
static PGresult *retention(hist_t *h) {
  return query(h,
               "SELECT coalesce(workflow_name, '') AS workflow_name,"
               " extract(epoch FROM horizon)::text AS secs FROM flowcore_retention"
               " ORDER BY workflow_name NULLS FIRST",
               0, NULL);
}

static int cmd_prune(hist_t *h) {
  prune_tally_t tally;
  char secs[40], rows[32], dry[8];
  const char *params[5];
  PGresult *res = NULL;
  int rc = CLI_EXIT_OK, r;
  memset(&tally, 0, sizeof tally);
  /* Partitions ahead too, so that a timer running prune keeps them. */
  if (!h->dry_run) {
    res = query(h, "SELECT flowcore_ensure_partitions(7)", 0, NULL);
    if (res == NULL)
      return CLI_EXIT_FAILED;
    PQclear(res);
    res = NULL;
  }
  if (h->older_than_s > 0) {
    /* Every workflow: whole partitions only (a DROP; the boundary day is
     * kept whole). One workflow: its runs, deleted in batches. */
    snprintf(secs, sizeof secs, "%.0f", h->older_than_s);
    if (h->workflow == NULL)
      rc = prune_partitions(h, secs, &tally);
    else
      rc = prune_rows(h, secs, h->workflow, 0, &tally);
  } else {
    const char *def = NULL, *max = NULL;
    res = retention(h);
    if (res == NULL)
      return CLI_EXIT_FAILED;
    for (r = 0; r < PQntuples(res); r++) {
      if (text(res, r, "workflow_name")[0] == '\0')
        def = text(res, r, "secs");
      if (max == NULL || atof(text(res, r, "secs")) > atof(max))
        max = text(res, r, "secs");
    }
    if (h->workflow != NULL) {
      const char *own = def;
      for (r = 0; r < PQntuples(res); r++)
        if (strcmp(text(res, r, "workflow_name"), h->workflow) == 0)
          own = text(res, r, "secs");
      if (own == NULL) {
        PQclear(res);
        cli_error("history prune: no --older-than and no horizon for '%s' or default in "
                  "flowcore_retention",
                  h->workflow);
        return CLI_EXIT_USAGE;
      }
      rc = prune_rows(h, own, h->workflow, 0, &tally);
    } else {
      if (PQntuples(res) == 0) {
        PQclear(res);
        cli_error("history prune: no --older-than and flowcore_retention is empty "
                  "(INSERT INTO flowcore_retention VALUES (NULL, '30 days'))");
        return CLI_EXIT_USAGE;
      }
      /* Whole partitions only past the longest horizon: a workflow kept
       * longer keeps its rows. Rows are deleted only where a per-workflow
       * policy asks: the runs of a workflow with a shorter horizon, and,
       * when some workflow is kept longer than the default, the runs of
       * the others between the default and the longest horizon. */
      if (def != NULL)
        rc = prune_partitions(h, max, &tally);
      if (rc == CLI_EXIT_OK && def != NULL && atof(max) > atof(def))
        rc = prune_rows(h, def, NULL, 1, &tally);
      for (r = 0; rc == CLI_EXIT_OK && r < PQntuples(res); r++)
        if (text(res, r, "workflow_name")[0] != '\0' &&
            (def == NULL || atof(text(res, r, "secs")) < atof(max)))
          rc = prune_rows(h, text(res, r, "secs"), text(res, r, "workflow_name"), 0, &tally);
    }
  }
  /* Recorded whenever something was removed, also when a later step
   * failed (each partition drop and each batch commits on its own). */
  if (rc == CLI_EXIT_OK || tally.ndropped > 0 || tally.rows > 0) {
    char arr[sizeof tally.dropped + 2];
    PGresult *ins;
    snprintf(arr, sizeof arr, "{%s}", tally.dropped);
    snprintf(rows, sizeof rows, "%lld", tally.rows);
    snprintf(dry, sizeof dry, "%s", h->dry_run ? "true" : "false");
    if (h->older_than_s > 0)
      snprintf(secs, sizeof secs, "%.0f", h->older_than_s);
    params[0] = h->older_than_s > 0 ? secs : NULL;
    params[1] = h->workflow;
    params[2] = arr;
    params[3] = rows;
    params[4] = dry;
    ins = query(h,
                "INSERT INTO flowcore_prunes (horizon, workflow_name, partitions_dropped,"
                " rows_deleted, dry_run) VALUES (make_interval(secs => $1::float8), $2,"
                " $3::text[], $4::bigint, $5::boolean) RETURNING prune_id",
                5, params);
    if (ins == NULL)
      rc = CLI_EXIT_FAILED;
    PQclear(ins);
  }
  PQclear(res);
  if (rc != CLI_EXIT_OK)
    return rc;
  if (h->dry_run)
    cli_printf(stdout, "%zu partition%s would be dropped, %lld row%s deleted (dry run: nothing "
               "changed)\n",
               tally.ndropped, tally.ndropped == 1 ? "" : "s", tally.rows,
               tally.rows == 1 ? "" : "s");
  else
    cli_printf(stdout, "%zu partition%s dropped, %lld row%s deleted\n", tally.ndropped,
               tally.ndropped == 1 ? "" : "s", tally.rows, tally.rows == 1 ? "" : "s");
  return CLI_EXIT_OK;
}

static const char *const LOSSES_HEADERS[] = {"WRITER", "KIND",  "REASON",
                                             "TOTAL",  "FIRST", "LAST"};
static const report_t LOSSES = {
    "SELECT writer, kind, reason, total, " US("first_recorded_at") ", " US(
        "last_recorded_at") " FROM flowcore_writer_loss_summary l "
                            "ORDER BY l.last_recorded_at DESC, l.writer, l.kind, l.reason",
    "sssitt",
    "no history losses reported",
    6,
    LOSSES_HEADERS,
    "lllrll",
    {-1, -1},
    {0, 0},
    {{"writer", 's', NULL},
     {"kind", 's', NULL},
     {"reason", 's', NULL},
     {"total", 'i', NULL},
     {"first_recorded_at", 't', NULL},
     {"last_recorded_at", 't', NULL}}};

static int cmd_losses(hist_t *h) { return print_report(h, &LOSSES, 0, NULL); }

/* ---- dispatch -------------------------------------------------------------------------- */

enum {
  OPT_HELP = 'h',
  OPT_DB = 256,
  OPT_JSON,
  OPT_WORKFLOW,
  OPT_STATUS,
  OPT_SINCE,
  OPT_LIMIT,
  OPT_STALE,
  OPT_DRY_RUN,
  OPT_OLDER_THAN,
  OPT_INPUT,
  OPT_HTML
};

/* The options each subcommand accepts. */
static const cli_opt_t *options_for(const char *sub) {
  static const cli_opt_t runs[] = {{"help", 'h', 0, OPT_HELP},   {"db", 0, 1, OPT_DB},
                                   {"json", 0, 0, OPT_JSON},     {"workflow", 0, 1, OPT_WORKFLOW},
                                   {"status", 0, 1, OPT_STATUS}, {"since", 0, 1, OPT_SINCE},
                                   {"limit", 0, 1, OPT_LIMIT},   {"stale", 0, 1, OPT_STALE},
                                   {NULL, 0, 0, 0}};
  static const cli_opt_t errors[] = {{"help", 'h', 0, OPT_HELP},
                                     {"db", 0, 1, OPT_DB},
                                     {"json", 0, 0, OPT_JSON},
                                     {"workflow", 0, 1, OPT_WORKFLOW},
                                     {"since", 0, 1, OPT_SINCE},
                                     {"limit", 0, 1, OPT_LIMIT},
                                     {NULL, 0, 0, 0}};
  static const cli_opt_t stats[] = {{"help", 'h', 0, OPT_HELP},
                                    {"db", 0, 1, OPT_DB},
                                    {"json", 0, 0, OPT_JSON},
                                    {"workflow", 0, 1, OPT_WORKFLOW},
                                    {NULL, 0, 0, 0}};
  static const cli_opt_t plain[] = {
      {"help", 'h', 0, OPT_HELP}, {"db", 0, 1, OPT_DB}, {"json", 0, 0, OPT_JSON}, {NULL, 0, 0, 0}};
  static const cli_opt_t running[] = {{"help", 'h', 0, OPT_HELP},
                                      {"db", 0, 1, OPT_DB},
                                      {"json", 0, 0, OPT_JSON},
                                      {"stale", 0, 1, OPT_STALE},
                                      {NULL, 0, 0, 0}};
  static const cli_opt_t show[] = {{"help", 'h', 0, OPT_HELP}, {"db", 0, 1, OPT_DB},
                                   {"json", 0, 0, OPT_JSON},   {"stale", 0, 1, OPT_STALE},
                                   {"input", 0, 0, OPT_INPUT}, {"html", 0, 1, OPT_HTML},
                                   {NULL, 0, 0, 0}};
  static const cli_opt_t report[] = {{"help", 'h', 0, OPT_HELP},
                                     {"db", 0, 1, OPT_DB},
                                     {"workflow", 0, 1, OPT_WORKFLOW},
                                     {"since", 0, 1, OPT_SINCE},
                                     {"limit", 0, 1, OPT_LIMIT},
                                     {"html", 0, 1, OPT_HTML},
                                     {NULL, 0, 0, 0}};
  static const cli_opt_t reap[] = {{"help", 'h', 0, OPT_HELP},  {"db", 0, 1, OPT_DB},
                                   {"json", 0, 0, OPT_JSON},    {"stale", 0, 1, OPT_STALE},
                                   {"dry-run", 0, 0, OPT_DRY_RUN}, {NULL, 0, 0, 0}};
  static const cli_opt_t prune[] = {{"help", 'h', 0, OPT_HELP},
                                    {"db", 0, 1, OPT_DB},
                                    {"older-than", 0, 1, OPT_OLDER_THAN},
                                    {"workflow", 0, 1, OPT_WORKFLOW},
                                    {"dry-run", 0, 0, OPT_DRY_RUN},
                                    {NULL, 0, 0, 0}};
  if (strcmp(sub, "runs") == 0)
    return runs;
  if (strcmp(sub, "prune") == 0)
    return prune;
  if (strcmp(sub, "running") == 0)
    return running;
  if (strcmp(sub, "show") == 0)
    return show;
  if (strcmp(sub, "report") == 0)
    return report;
  if (strcmp(sub, "reap") == 0)
    return reap;
  if (strcmp(sub, "errors") == 0)
    return errors;
  if (strcmp(sub, "stats") == 0)
    return stats;
  if (strcmp(sub, "losses") == 0)
    return plain;
  return NULL;
}

static int parse_history_options(int argc, char **argv, hist_t *h, int *done) {
  const cli_opt_t *table = options_for(h->sub);
  cli_opts_t p;
  int id;
  *done = 0;
  cli_opts_init(&p, argc, argv, 3, h->cmd);
  while ((id = cli_opt_next(&p, table)) != CLI_OPT_END) {
    switch (id) {
    case CLI_OPT_ERROR:
      return CLI_EXIT_USAGE;
    case CLI_OPT_POSITIONAL:
      if (strcmp(h->sub, "show") != 0 || h->id != NULL)
        return cli_usage_error(h->cmd, "unexpected argument '%s'", p.positional);
      h->id = p.positional;
      break;
    case OPT_HELP:
      cli_usage_history_sub(stdout, h->sub);
      *done = 1;
      return CLI_EXIT_OK;
    case OPT_DB:
      h->db_opt = p.value;
      break;
    case OPT_JSON:
      h->json = 1;
      break;
    case OPT_WORKFLOW:
      h->workflow = p.value;
      break;
    case OPT_STATUS:
      if (strcmp(p.value, "running") != 0 && strcmp(p.value, "completed") != 0 &&
          strcmp(p.value, "failed") != 0 && strcmp(p.value, "cancelled") != 0 &&
          strcmp(p.value, "abandoned") != 0)
        return cli_usage_error(h->cmd,
                               "--status: expected running, completed, failed, cancelled "
                               "or abandoned, got '%s'",
                               p.value);
      h->status = p.value;
      break;
    case OPT_SINCE:
      h->since = p.value;
      break;
    case OPT_STALE: {
      double seconds;
      if (cli_parse_duration(p.value, &seconds) != 0 || seconds < 1)
        return cli_usage_error(h->cmd,
                               "--stale: expected a duration of at least 1s (90s, 10m, 2h, "
                               "1h30m), got '%s'",
                               p.value);
      h->stale_ms = seconds * 1000.0;
      break;
    }
    case OPT_INPUT:
      h->input = 1;
      break;
    case OPT_HTML:
      if (p.value[0] == '\0')
        return cli_usage_error(h->cmd, "--html: expected a file name or '-' (stdout)");
      h->html = p.value;
      break;
    case OPT_DRY_RUN:
      h->dry_run = 1;
      break;
    case OPT_OLDER_THAN:
      if (cli_parse_duration(p.value, &h->older_than_s) != 0 || h->older_than_s < 1)
        return cli_usage_error(h->cmd,
                               "--older-than: expected a duration of at least 1s (30d, 2w, "
                               "12h), got '%s'",
                               p.value);
      break;
    case OPT_LIMIT:
      if (cli_parse_uint(p.value, 1, MAX_LIMIT, &h->limit) != 0)
        return cli_usage_error(h->cmd, "--limit: expected an integer from 1 to %d, got '%s'",
                               MAX_LIMIT, p.value);
      break;
    default:
      return cli_usage_error(h->cmd, "unexpected option");
    }
  }
  if (h->html != NULL && h->json)
    return cli_usage_error(h->cmd, "--html and --json exclude each other");
  if (strcmp(h->sub, "report") == 0) {
    if (h->workflow == NULL)
      return cli_usage_error(h->cmd, "missing --workflow NAME");
    if (h->html == NULL)
      return cli_usage_error(h->cmd, "missing --html FILE ('-' for stdout)");
    if (h->limit > CLI_REPORT_MAX_GRID_RUNS)
      return cli_usage_error(h->cmd, "--limit: at most %d runs in a report, got %llu",
                             CLI_REPORT_MAX_GRID_RUNS, (unsigned long long)h->limit);
  }
  if (strcmp(h->sub, "show") == 0) {
    char lo[37], hi[37];
    if (h->id == NULL)
      return cli_usage_error(h->cmd, "missing the run ID (or a prefix of it)");
    /* Checked before connecting: a malformed id is a usage error even
     * without a database. */
    if (prefix_bounds(h->id, lo, hi) != 0)
      return invalid_id(h);
  }
  return CLI_EXIT_OK;
}

void cli_usage_history(FILE *out) {
  fputs("Usage: flowcore history <subcommand> [options]\n"
        "\n"
        "Subcommands:\n"
        "  runs      recent runs with their duration and node counts\n"
        "  show ID   one run's nodes in start order (an unambiguous id prefix is enough;\n"
        "            --html FILE: the run as a page with its timeline and graph)\n"
        "  report    a workflow's recent runs as a page (--workflow NAME --html FILE)\n"
        "  errors    errors by workflow, node, type and severity\n"
        "  stats     duration statistics per workflow and node (runs, failures, p50, p95)\n"
        "  running   progress of the runs still marked running, live or abandoned\n"
        "  reap      mark running runs whose process is gone (or stale) abandoned\n"
        "  losses    history records the writers reported lost\n"
        "  prune     remove finished history older than a horizon (drops day partitions)\n"
        "\n"
        "Common options: --db CONNINFO, --json (arrays of objects for scripts),\n"
        "--help. Run 'flowcore history <subcommand> --help' for the others.\n"
        "\n"
        "Exit codes: 0 done; 1 database error, or stdout could not be written;\n"
        "2 usage error (also a malformed, unknown or ambiguous run id).\n",
        out);
}

void cli_usage_history_sub(FILE *out, const char *sub) {
  if (strcmp(sub, "runs") == 0) {
    fputs("Usage: flowcore history runs [options]\n"
          "\n"
          "Lists runs, newest first (view flowcore_recent_runs). A run marked running\n"
          "whose process is gone shows as 'running (abandoned)' (see 'history reap\n"
          "--help'; JSON: \"liveness\" and \"liveness_reason\").\n"
          "\n"
          "Options:\n"
          "  --workflow NAME   only runs of this workflow\n"
          "  --status S        only runs with status S: running, completed, failed,\n"
          "                    cancelled, abandoned\n"
          "  --since WHEN      only runs started since WHEN: a duration back from now\n"
          "                    (90s, 15m, 2h, 7d, 1w, 1h30m) or a time (2026-11-27,\n"
          "                    \"2026-11-27 08:00\", 2026-11-27T08:00:00Z; no zone: local)\n"
          "  --limit N         at most N runs (default 20)\n"
          "  --stale DURATION  a running run on another host (or without host/pid) is\n"
          "                    taken for abandoned after DURATION without activity\n"
          "                    (default 60m)\n"
          "  --json            a JSON array of objects\n"
          "  --db CONNINFO     PostgreSQL connection string or URL\n"
          "  --help, -h        this help\n",
          out);
  } else if (strcmp(sub, "show") == 0) {
    fputs("Usage: flowcore history show ID [options]\n"
          "\n"
          "Shows one run and its node attempts in start order, with attempt, status,\n"
          "duration and error (functions flowcore_run, flowcore_run_timeline).\n"
          "ID may be a prefix of the run id when only one run matches. Also where the\n"
          "run ran (host, pid), whether a running run is live or abandoned, and for\n"
          "an abandoned run who marked it so, when and why (table flowcore_reaps).\n"
          "\n"
          "Options:\n"
          "  --stale DURATION  see 'history running --help' (default 60m)\n"
          "  --input           also each attempt's full input (JSON text rebuilt by\n"
          "                    flowcore_node_input_text: node rows store references)\n"
          "  --json            a JSON object: the run's fields, \"liveness\", \"reap\"\n"
          "                    and \"nodes\" (an array; with --input each has \"input\")\n"
          "  --html FILE       write the run as one self-contained HTML page to FILE\n"
          "                    ('-': stdout): header, Gantt timeline of the attempts,\n"
          "                    graph, errors with stack traces, inputs and outputs\n"
          "                    (docs/report.md)\n"
          "  --db CONNINFO     PostgreSQL connection string or URL\n"
          "  --help, -h        this help\n",
          out);
  } else if (strcmp(sub, "report") == 0) {
    fputs("Usage: flowcore history report --workflow NAME --html FILE [options]\n"
          "\n"
          "Writes a workflow's recent runs as one self-contained HTML page: a grid of\n"
          "runs x nodes coloured by status, run duration over time, p50/p95 per node\n"
          "and errors per day (docs/report.md). No network is needed to view it.\n"
          "\n"
          "Options:\n"
          "  --workflow NAME   the workflow (required)\n"
          "  --html FILE       where to write the page ('-': stdout; required)\n"
          "  --since WHEN      the window: runs started since WHEN (default 7d; see\n"
          "                    'history runs --help')\n"
          "  --limit N         at most the latest N runs of the window (default 100,\n"
          "                    at most 1000)\n"
          "  --db CONNINFO     PostgreSQL connection string or URL\n"
          "  --help, -h        this help\n",
          out);
  } else if (strcmp(sub, "errors") == 0) {
    fputs("Usage: flowcore history errors [options]\n"
          "\n"
          "Errors grouped by workflow, node, error type and severity, with their\n"
          "count, first and last time seen and the latest message, most recently\n"
          "seen first (view flowcore_error_rollup; counts cover the whole history).\n"
          "\n"
          "Options:\n"
          "  --workflow NAME   only errors of this workflow\n"
          "  --since WHEN      only groups seen since WHEN (see 'history runs --help')\n"
          "  --limit N         at most N groups (default 20)\n"
          "  --json            a JSON array of objects\n"
          "  --db CONNINFO     PostgreSQL connection string or URL\n"
          "  --help, -h        this help\n",
          out);
  } else if (strcmp(sub, "stats") == 0) {
    fputs("Usage: flowcore history stats [options]\n"
          "\n"
          "Duration statistics per workflow and node over all finished attempts:\n"
          "runs, attempts, failures, timeouts, p50, p95, mean and max\n"
          "(view flowcore_node_stats).\n"
          "\n"
          "Options:\n"
          "  --workflow NAME   only this workflow\n"
          "  --json            a JSON array of objects\n"
          "  --db CONNINFO     PostgreSQL connection string or URL\n"
          "  --help, -h        this help\n",
          out);
  } else if (strcmp(sub, "running") == 0) {
    fputs("Usage: flowcore history running [options]\n"
          "\n"
          "Runs still marked running, oldest first, with how far along they are\n"
          "(view flowcore_running_progress) and their LIVENESS:\n"
          "  abandoned  the run's host is this host and its process is gone (no such\n"
          "             pid, or the pid now belongs to a later process), or the run\n"
          "             is elsewhere (or its host/pid is unknown) and nothing was\n"
          "             heard of it for longer than --stale\n"
          "  live       otherwise (on this host: its process is alive, however idle)\n"
          "A run whose process died stays here until 'flowcore history reap'.\n"
          "\n"
          "Options:\n"
          "  --stale DURATION  threshold of the stale rule (default 60m; 90s, 10m, 2h)\n"
          "  --json            a JSON array of objects\n"
          "  --db CONNINFO     PostgreSQL connection string or URL\n"
          "  --help, -h        this help\n",
          out);
  } else if (strcmp(sub, "reap") == 0) {
    fputs("Usage: flowcore history reap [options]\n"
          "\n"
          "Marks the runs that 'history running' calls abandoned as status\n"
          "'abandoned' (error_type 'abandoned', completed_at = their last activity)\n"
          "and records each in the table flowcore_reaps: who (role, host, pid),\n"
          "when, by which rule (process_gone or stale) and why. Live runs are never\n"
          "touched: a run on this host whose process is alive, or one heard of\n"
          "within --stale; a run that finishes or shows activity meanwhile is left\n"
          "alone. Run it on the host where the runs ran for the exact pid check;\n"
          "elsewhere only the stale rule applies. Needs a role that may update\n"
          "workflow_executions and insert into flowcore_reaps (the owner, or a\n"
          "login in flowcore_writer).\n"
          "\n"
          "Options:\n"
          "  --stale DURATION  threshold of the stale rule (default 60m; 90s, 10m, 2h)\n"
          "  --dry-run         list what would be marked, change nothing\n"
          "  --json            a JSON array of objects (\"reaped\": true when marked)\n"
          "  --db CONNINFO     PostgreSQL connection string or URL\n"
          "  --help, -h        this help\n",
          out);
  } else if (strcmp(sub, "prune") == 0) {
    fputs("Usage: flowcore history prune [--older-than DURATION] [--workflow NAME]\n"
          "                              [--dry-run] [options]\n"
          "\n"
          "Removes finished history older than a horizon. Without --workflow, the day\n"
          "partitions entirely older than it are detached and dropped (no partition\n"
          "holding a running run): a DROP, no DELETE; the day across the horizon is\n"
          "kept whole. With --workflow, that workflow's finished runs older than it\n"
          "are deleted with their nodes and errors, 10000 runs per transaction\n"
          "(nothing is dropped). Runs still running are never removed.\n"
          "Without --older-than the horizons come from the table flowcore_retention\n"
          "(workflow_name NULL: the default; a row per workflow overrides it): whole\n"
          "partitions are dropped past the longest horizon, and rows are deleted\n"
          "only where a workflow's own horizon asks for it (its runs, or the other\n"
          "workflows' runs kept in partitions a longer horizon keeps). Every prune,\n"
          "dry runs too, is recorded in flowcore_prunes, also one that failed part-\n"
          "way. Needs the owner or a login in flowcore_maintainer.\n"
          "\n"
          "Options:\n"
          "  --older-than D    the horizon: history started more than D ago (30d, 2w)\n"
          "  --workflow NAME   only this workflow's runs (deleted, never dropped)\n"
          "  --dry-run         say what would be removed, change nothing\n"
          "  --db CONNINFO     PostgreSQL connection string or URL\n"
          "  --help, -h        this help\n",
          out);
  } else if (strcmp(sub, "losses") == 0) {
    fputs("Usage: flowcore history losses [options]\n"
          "\n"
          "History records that writers reported lost, per writer, record kind and\n"
          "reason (view flowcore_writer_loss_summary). No rows: nothing was lost.\n"
          "\n"
          "Options:\n"
          "  --json            a JSON array of objects\n"
          "  --db CONNINFO     PostgreSQL connection string or URL\n"
          "  --help, -h        this help\n",
          out);
  } else {
    cli_usage_history(out);
  }
}

int cli_cmd_history(int argc, char **argv) {
  hist_t h;
  char since_buf[40];
  const char *since_param = NULL;
  int rc, done;
  memset(&h, 0, sizeof h);
  h.limit = DEFAULT_LIMIT;
  h.stale_ms = DEFAULT_STALE_MS;
  if (argc < 3) {
    cli_usage_history(stderr);
    return CLI_EXIT_USAGE;
  }
  h.sub = argv[2];
  if (strcmp(h.sub, "report") == 0) {
    h.limit = REPORT_DEFAULT_LIMIT;
    h.since = REPORT_DEFAULT_SINCE;
  }
  if (strcmp(h.sub, "--help") == 0 || strcmp(h.sub, "-h") == 0 || strcmp(h.sub, "help") == 0) {
    if (argc > 3 && options_for(argv[3]) != NULL)
      cli_usage_history_sub(stdout, argv[3]);
    else
      cli_usage_history(stdout);
    return CLI_EXIT_OK;
  }
  if (options_for(h.sub) == NULL) {
    if (h.sub[0] == '-')
      return cli_usage_error("history",
                             "unknown option '%s' for 'history' (a subcommand comes "
                             "first)",
                             h.sub);
    return cli_usage_error("history", "unknown history subcommand '%s'", h.sub);
  }
  snprintf(h.cmd, sizeof h.cmd, "history %s", h.sub);
  rc = parse_history_options(argc, argv, &h, &done);
  if (rc != 0 || done)
    return rc;
  if (h.since != NULL) {
    int64_t us;
    if (cli_parse_since(h.since, cli_now_us(), &us) != 0)
      return cli_usage_error(h.cmd,
                             "--since: expected a duration (90s, 15m, 2h, 7d, 1w, 1h30m) "
                             "or a time (2026-11-27, \"2026-11-27 08:00\", "
                             "2026-11-27T08:00:00Z), got '%s'",
                             h.since);
    cli_format_utc_time(us, since_buf, sizeof since_buf);
    since_param = since_buf;
  }
  rc = cli_db_resolve(h.db_opt, &h.db);
  if (rc != 0)
    return rc;
  rc = connect_db(&h);
  if (rc != 0)
    return rc;
  if (strcmp(h.sub, "runs") == 0)
    rc = cmd_runs(&h, since_param);
  else if (strcmp(h.sub, "show") == 0)
    rc = cmd_show(&h);
  else if (strcmp(h.sub, "report") == 0)
    rc = cmd_report(&h, since_param);
  else if (strcmp(h.sub, "errors") == 0)
    rc = cmd_errors(&h, since_param);
  else if (strcmp(h.sub, "stats") == 0)
    rc = cmd_stats(&h);
  else if (strcmp(h.sub, "running") == 0)
    rc = cmd_running(&h);
  else if (strcmp(h.sub, "reap") == 0)
    rc = cmd_reap(&h);
  else if (strcmp(h.sub, "prune") == 0)
    rc = cmd_prune(&h);
  else
    rc = cmd_losses(&h);
  PQfinish(h.conn);
  (void)cli_flush_stdout();
  return rc;
}

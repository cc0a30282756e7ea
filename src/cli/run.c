/* flowcore command line: `flowcore run FILE` and `flowcore validate FILE`.
 *
 * run: load the file, then on a uv loop: the run, a progress handler on
 * stderr, the metrics handler (--metrics-file), the database handler and
 * history writer (when a database is configured), and uv_signal_t handles
 * for SIGINT/SIGTERM that cancel the run. When the run is closed the
 * manager is freed (the database handler hands over its last records) and
 * the writer is closed on a helper thread, so that the loop keeps watching
 * signals while the writer drains within its shutdown deadline: a second
 * signal stops waiting (and says how much history may be missing).
 *
 * Between the end of the run and its close, nodes may still be stopping
 * (an exec node's processes get up to kill_grace_ms, then its pipes the
 * same again). A second signal then stops waiting for them: every event
 * of the run has been dispatched already, so the handlers are freed and
 * the writer closed as usual, the result is printed, and the process exits
 * without waiting for the loop (it is "abandoned").
 */
#include <ctype.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "../internal.h"
#include "cli.h"

#define MAX_ERRORS_KEPT 1000
#define DEFAULT_DEADLINE_MS 10000
#define TTY_TICK_MS 100    /* progress redraws on a terminal */
#define PLAIN_TICK_MS 1000 /* progress lines otherwise */

/* ---- loading -------------------------------------------------------------- */

static const char *display_name(const char *path) {
  return strcmp(path, "-") == 0 ? "<stdin>" : path;
}

/* A flowcore error code (as opposed to a libuv one, e.g. a file that cannot
 * be read, whose message names the file already). */
static int is_fc_code(int code) { return code <= -5000 && code > -5100; }

static void print_load_errors(const char *path, const fc_load_errors_t *errors) {
  const char *name = display_name(path);
  size_t i;
  for (i = 0; i < errors->count; i++) {
    const fc_error_t *e = &errors->items[i];
    size_t wlen = strlen(e->where);
    (void)cli_flush_stdout();
    if (!is_fc_code(e->code))
      cli_printf(stderr, "flowcore: %s\n", e->text);
    else if (wlen > 0 && isdigit((unsigned char)e->text[0]) &&
             strncmp(e->text, e->where, wlen) == 0)
      cli_printf(stderr, "%s:%s\n", name, e->text); /* "12:5: invalid JSON: ..." */
    else
      cli_printf(stderr, "%s: %s\n", name, e->text);
  }
  if (errors->omitted > 0)
    cli_printf(stderr, "%s: ... and %zu more error%s\n", name, errors->omitted,
               errors->omitted == 1 ? "" : "s");
  if (fc_load_errors_total(errors) > 1)
    cli_printf(stderr, "%s: %zu errors\n", name, fc_load_errors_total(errors));
}

/* The workflow a command loaded, left to the process's exit. Freeing a
 * big workflow node by node is work the exit does at once: for the
 * 200,000-node chain of bench/cli, about 40 ms of a 0.4 s `validate`
 * (docs/performance.md). Kept here, it stays reachable for leak checkers. */
static fc_workflow_t *left_at_exit;

static void leave_at_exit(fc_workflow_t *wf) {
  fc_workflow_free(left_at_exit);
  left_at_exit = wf;
}

/* Loads and validates a workflow file (`flags`: fc_workflow_load_file_ex's);
 * on failure prints every error and returns CLI_EXIT_USAGE. */
static int load_workflow(const char *path, unsigned flags, fc_workflow_t **wf, json_t **input) {
  fc_load_errors_t errors;
  int rc;
  fc_load_errors_init(&errors);
  rc = fc_workflow_load_file_ex(path, flags, wf, input, &errors);
  if (rc != 0) {
    if (errors.count == 0 && errors.omitted == 0)
      cli_error("%s: %s", display_name(path), fc_strerror(rc));
    else
      print_load_errors(path, &errors);
    fc_load_errors_free(&errors);
    return CLI_EXIT_USAGE;
  }
  fc_load_errors_free(&errors);
  return CLI_EXIT_OK;
}

void cli_usage_validate(FILE *out) {
  fputs("Usage: flowcore validate FILE\n"
        "\n"
        "Checks the workflow file FILE ('-' reads standard input): JSON syntax,\n"
        "fields, node types, ids, dependencies, routes and cycles. Prints every\n"
        "error with its JSON path or node id, or \"FILE: ok (N nodes)\". Nothing runs.\n"
        "\n"
        "Options:\n"
        "  --help, -h   this help\n"
        "\n"
        "Exit codes: 0 valid; 2 invalid (or a usage error).\n",
        out);
}

int cli_cmd_validate(int argc, char **argv) {
  static const cli_opt_t opts[] = {{"help", 'h', 0, 'h'}, {NULL, 0, 0, 0}};
  cli_opts_t p;
  const char *file = NULL;
  fc_workflow_t *wf = NULL;
  json_t *input = NULL;
  int id, rc;
  cli_opts_init(&p, argc, argv, 2, "validate");
  while ((id = cli_opt_next(&p, opts)) != CLI_OPT_END) {
    if (id == CLI_OPT_ERROR)
      return CLI_EXIT_USAGE;
    if (id == 'h') {
      cli_usage_validate(stdout);
      return CLI_EXIT_OK;
    }
    if (file != NULL)
      return cli_usage_error("validate", "unexpected argument '%s'", p.positional);
    file = p.positional;
  }
  if (file == NULL)
    return cli_usage_error("validate", "missing the workflow FILE");
  rc = load_workflow(file, FC_LOAD_LAZY_CONSTANTS, &wf, &input); /* nothing reads them */
  if (rc != 0)
    return rc;
  cli_printf(stdout, "%s: ok (%zu node%s)\n", display_name(file), fc_workflow_node_count(wf),
             fc_workflow_node_count(wf) == 1 ? "" : "s");
  json_decref(input);
  leave_at_exit(wf);
  return CLI_EXIT_OK;
}

/* ---- run state ---------------------------------------------------------------- */

enum { PHASE_RUNNING = 0, PHASE_CLOSING, PHASE_HISTORY, PHASE_DONE };

typedef struct {
  /* options */
  const char *file;
  const char *input_arg;
  const char *db_opt;
  const char *metrics_file;
  const char *spool_dir;
  int no_history, quiet, json;
  int print_output; /* --output: the output on one line, even with --quiet */
  int max_parallel; /* -1: the file's */
  uint64_t deadline_ms;
  uint64_t history_max_bytes; /* --history-max-bytes; 0: the writer's default */

  /* machinery */
  uv_loop_t loop;
  fc_workflow_t *wf;
  fc_run_t *run;
  fc_manager_t *manager;
  fc_metrics_t *metrics;
  fc_history_writer_t *writer;
  uv_signal_t sig_int, sig_term;
  uv_timer_t tick;
  uv_async_t writer_closed;
  uv_thread_t closer;
  fc_progress_t *progress; /* owned by its handler in the manager */
  uint64_t tick_ms;        /* progress redraw interval */
  int phase;
  int signals_running, signals_history;
  int cancelled_by; /* signal number that cancelled the run, or 0 */
  int abandoned;    /* not waiting for the run's close: exit once history is done */
  int metrics_failed;
  const char *history_off; /* why history is off, or NULL when on */
  cli_db_t db;

  /* results, from the events and the run */
  char workflow_id[FC_UUID_STRING_LENGTH];
  fc_workflow_status_t status;
  int counts[FC_NODE_STATUS_COUNT];
  int node_count;
  int error_count;
  int64_t duration_us;
  json_t *errors; /* array of objects */
  size_t errors_omitted;
  json_t *output; /* new reference or NULL */
  fc_history_stats_t report;
  uint64_t pending_at_close; /* records in the writer when its close began */
} run_state_t;

/* ---- a handler collecting what the summary needs -------------------------------- */

static int on_workflow_start(void *self, const fc_event_t *ev) {
  run_state_t *st = self;
  snprintf(st->workflow_id, sizeof st->workflow_id, "%s", ev->workflow_id);
  st->node_count = ev->node_count;
  return 0;
}

static int on_workflow_end(void *self, const fc_event_t *ev) {
  run_state_t *st = self;
  int i;
  if (ev->status_counts != NULL)
    for (i = 0; i < FC_NODE_STATUS_COUNT; i++)
      st->counts[i] = ev->status_counts[i];
  st->duration_us = ev->duration_us;
  st->error_count = ev->error_count;
  return 0;
}

static int on_error(void *self, const fc_event_t *ev) {
  run_state_t *st = self;
  const fc_error_info_t *e = ev->error;
  json_t *obj;
  char when[40];
  if (e == NULL)
    return 0;
  if (json_array_size(st->errors) >= MAX_ERRORS_KEPT) {
    st->errors_omitted++;
    return 0;
  }
  cli_format_utc_time(e->occurred_at_us != 0 ? e->occurred_at_us : ev->time_us, when, sizeof when);
  obj = json_pack("{s:s?, s:i, s:s, s:s, s:s, s:s?, s:s}", "node_id",
                  e->node_id != NULL ? e->node_id : ev->node_id, "attempt",
                  e->attempt != 0 ? e->attempt : ev->attempt, "type",
                  e->type != NULL ? e->type : "error", "message",
                  e->message != NULL ? e->message : "", "severity", fc_severity_name(e->severity),
                  "stack_trace", e->stack_trace, "occurred_at", when);
  if (obj == NULL || json_array_append_new(st->errors, obj) != 0)
    return FC_ENOMEM;
  return 0;
}

static fc_handler_t collector_handler(run_state_t *st) {
  fc_handler_t h;
  memset(&h, 0, sizeof h);
  h.name = "cli";
  h.self = st;
  h.on_workflow_start = on_workflow_start;
  h.on_workflow_end = on_workflow_end;
  h.on_error = on_error;
  return h;
}

/* ---- end of the run ------------------------------------------------------------- */

static int report_result(run_state_t *st);

static void close_handles(run_state_t *st) {
  uv_close((uv_handle_t *)&st->sig_int, NULL);
  uv_close((uv_handle_t *)&st->sig_term, NULL);
  uv_close((uv_handle_t *)&st->tick, NULL);
  uv_close((uv_handle_t *)&st->writer_closed, NULL);
  st->phase = PHASE_DONE;
  if (st->abandoned) {
    /* The run is still closing (node processes stopping): the history is
     * done, so the result is complete; do not wait for the loop. */
    int code = cli_close_stdout(report_result(st));
    fflush(stderr);
    _exit(code);
  }
}

/* With a spool, records may sit in it although the database is reachable
 * (spooled before the first connection came up, or left by an earlier
 * run): give the writer time to replay them before closing it. Stops when
 * the spool is empty, when connecting failed (the database is down: the
 * spool keeps them), or at the shutdown deadline. The stats are refreshed
 * by the writer every flush interval, hence the first 250 ms. */
static void wait_for_spool(run_state_t *st) {
  uint64_t start = uv_hrtime(), limit = st->deadline_ms * UINT64_C(1000000);
  for (;;) {
    fc_history_stats_t s;
    uint64_t elapsed = uv_hrtime() - start;
    fc_history_writer_stats(st->writer, &s);
    if (elapsed >= limit)
      return;
    if (elapsed >= UINT64_C(250000000)) {
      if (s.spool_bytes == 0 && s.queue_depth == 0 && s.replayed >= s.spooled)
        return;
      if (s.connected == 0 && s.reconnects > 0)
        return;
    }
    uv_sleep(50);
  }
}

static void closer_thread(void *arg) {
  run_state_t *st = arg;
  if (st->spool_dir != NULL)
    wait_for_spool(st);
  (void)fc_history_writer_close(st->writer, &st->report);
  uv_async_send(&st->writer_closed);
}

static void writer_closed_cb(uv_async_t *a) {
  run_state_t *st = a->data;
  uv_thread_join(&st->closer);
  st->writer = NULL;
  close_handles(st);
}

/* Runs from the loop once the run is freed (or abandoned, after its end):
 * metrics, handlers, writer. */
static void finish_run(run_state_t *st) {
  int rc;
  if (st->metrics != NULL && st->metrics_file != NULL) {
    rc = fc_metrics_write_prometheus_file(st->metrics, st->metrics_file);
    if (rc != 0) {
      cli_error("cannot write the metrics file \"%s\": %s", st->metrics_file, fc_strerror(rc));
      st->metrics_failed = 1;
    }
  }
  /* Destroys every handler; the database handler hands its last records to
   * the writer and closes its loop handles. */
  fc_manager_free(st->manager);
  st->manager = NULL;
  st->progress = NULL;
  fc_metrics_free(st->metrics);
  st->metrics = NULL;
  if (st->writer == NULL) {
    close_handles(st);
    return;
  }
  {
    fc_history_stats_t now;
    fc_history_writer_stats(st->writer, &now);
    st->pending_at_close = now.queue_depth;
  }
  st->phase = PHASE_HISTORY;
  rc = fc__thread_create(&st->closer, closer_thread, st);
  if (rc != 0) {
    /* Close it here, blocking: signals wait until it is done. */
    (void)fc_history_writer_close(st->writer, &st->report);
    st->writer = NULL;
    close_handles(st);
  }
}

static void finish_cb(uv_timer_t *t) { finish_run(t->data); }

static void run_closed_cb(fc_run_t *run, void *data) {
  run_state_t *st = data;
  (void)run;
  st->run = NULL;
  if (st->abandoned)
    return; /* finish_run already ran */
  /* The run is freed when this returns; the manager it borrowed is freed
   * from the next loop iteration. */
  uv_timer_start(&st->tick, finish_cb, 0, 0);
}

static void run_done_cb(fc_run_t *run, void *data) {
  run_state_t *st = data;
  json_t *out = fc_run_output(run);
  st->status = fc_run_status(run);
  st->output = out != NULL ? json_incref(out) : NULL;
  uv_timer_stop(&st->tick);
  st->phase = PHASE_CLOSING;
  fc_run_close(run, run_closed_cb, st);
}

/* Redraws the progress while nodes run silently (a long exec node). */
static void tick_cb(uv_timer_t *t) {
  run_state_t *st = t->data;
  if (st->phase == PHASE_RUNNING && st->progress != NULL)
    (void)fc_progress_refresh(st->progress);
}

static const char *signal_name(int signum) {
  return signum == SIGINT ? "SIGINT" : signum == SIGTERM ? "SIGTERM" : "signal";
}

static int signal_ignored(int signum) {
  struct sigaction sa;
  return sigaction(signum, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN;
}

static void signal_cb(uv_signal_t *h, int signum) {
  run_state_t *st = h->data;
  /* Leave the progress bar's line (drawn with "\r") before saying more. */
  if (st->progress != NULL && st->tick_ms == TTY_TICK_MS)
    fputc('\n', stderr);
  if (st->phase == PHASE_CLOSING) {
    /* The run has ended (all its events are out); nodes are stopping. */
    if (st->signals_running++ == 0) {
      cli_error("%s received: the run has ended; waiting for its nodes to stop (send it again "
                "to stop waiting)",
                signal_name(signum));
      return;
    }
    cli_error("%s received again: not waiting for the nodes to stop; finishing the history%s",
              signal_name(signum),
              st->writer != NULL ? " (send it again to stop waiting for the writer)" : "");
    st->abandoned = 1;
    st->signals_history = 1; /* the next signal stops waiting for the writer */
    uv_timer_stop(&st->tick);
    finish_run(st);
    return;
  }
  if (st->phase == PHASE_RUNNING) {
    if (st->signals_running++ == 0) {
      if (st->run != NULL) {
        /* Said first: the cancellation ends the run (and draws its last
         * progress line) from inside fc_run_cancel. */
        cli_error("%s received: cancelling the run (send it again not to wait for its nodes to stop)",
                  signal_name(signum));
        if (fc_run_cancel(st->run) == 0)
          st->cancelled_by = signum;
      }
      return;
    }
    cli_error("%s received again: stopping at once", signal_name(signum));
    if (st->writer != NULL)
      cli_error("history LOST: records of this run not yet written are not saved");
    fflush(stdout);
    fflush(stderr);
    _exit(st->writer != NULL ? CLI_EXIT_HISTORY : CLI_EXIT_FAILED);
  }
  if (st->phase == PHASE_HISTORY) {
    if (st->signals_history++ == 0) {
      cli_error("%s received: still writing the history (at most %.1fs more); send it again to "
                "stop waiting",
                signal_name(signum), (double)st->deadline_ms / 1000.0);
      return;
    }
    cli_error("%s received again: not waiting for the history writer", signal_name(signum));
    if (st->pending_at_close > 0) {
      cli_error("history LOST: up to %llu history records of this run may not have been "
                "written",
                (unsigned long long)st->pending_at_close);
      fflush(stdout);
      fflush(stderr);
      _exit(CLI_EXIT_HISTORY);
    }
    fflush(stdout);
    fflush(stderr);
    _exit(st->status == FC_WORKFLOW_COMPLETED ? CLI_EXIT_OK : CLI_EXIT_FAILED);
  }
}

/* ---- the result ------------------------------------------------------------------- */


static json_t *history_json(const run_state_t *st) {
  json_t *h, *by_reason;
  int r, k;
  if (st->history_off != NULL)
    return json_pack("{s:b, s:s}", "enabled", 0, "reason", st->history_off);
  by_reason = json_object();
  for (r = 0; r < FC_DROP_REASON_COUNT; r++) {
    uint64_t n = 0;
    for (k = 0; k < FC_REC_KIND_COUNT; k++)
      n += st->report.dropped[k][r];
    json_object_set_new(by_reason, fc_drop_reason_name((fc_drop_reason_t)r), json_integer((json_int_t)n));
  }
  h = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:s?}", "enabled", 1, "accepted",
                (json_int_t)st->report.accepted, "written", (json_int_t)st->report.written,
                "spooled", (json_int_t)st->report.spooled, "replayed",
                (json_int_t)st->report.replayed, "replay_rejected",
                (json_int_t)st->report.replay_rejected, "spool_bytes", (json_int_t)st->report.spool_bytes,
                "dropped", (json_int_t)st->report.dropped_total, "dropped_by_reason", by_reason,
                "last_error", st->report.last_error[0] != '\0' ? st->report.last_error : NULL);
  json_object_set_new(h, "bytes_held_peak", json_integer((json_int_t)st->report.bytes_held_peak));
  json_object_set_new(h, "dropped_byte_budget",
                      json_integer((json_int_t)st->report.dropped_byte_budget));
  return h;
}

static json_t *result_json(const run_state_t *st, int exit_code) {
  json_t *nodes =
      json_pack("{s:i, s:i, s:i, s:i, s:i, s:i}", "total", st->node_count, "completed",
                st->counts[FC_NODE_COMPLETED], "failed", st->counts[FC_NODE_FAILED], "skipped",
                st->counts[FC_NODE_SKIPPED], "timed_out", st->counts[FC_NODE_TIMED_OUT],
                "cancelled", st->counts[FC_NODE_CANCELLED]);
  return json_pack("{s:s, s:s, s:s, s:f, s:o, s:i, s:O, s:I, s:O, s:o, s:i}", "workflow_id",
                   st->workflow_id, "workflow", fc_workflow_name(st->wf), "status",
                   fc_workflow_status_name(st->status), "duration_ms",
                   (double)st->duration_us / 1000.0, "nodes", nodes, "error_count", st->error_count,
                   "errors", st->errors, "errors_omitted", (json_int_t)st->errors_omitted, "output",
                   st->output != NULL ? st->output : json_null(), "history", history_json(st),
                   "exit_code", exit_code);
}

/* Prints the last `max` non-empty lines of a stack trace, indented. */
static void print_trace_tail(const char *trace, int max) {
  const char *end, *p;
  int lines = 0;
  if (trace == NULL || trace[0] == '\0')
    return;
  end = trace + strlen(trace);
  while (end > trace && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
    end--;
  p = end;
  while (p > trace && lines < max) {
    p--;
    if (*p == '\n') {
      lines++;
      if (lines == max) {
        p++;
        break;
      }
    }
  }
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *stop = nl != NULL ? nl : end;
    if (stop > p)
      cli_printf(stderr, "      | %.*s\n", (int)(stop - p), p);
    p = stop + 1;
  }
}

static void print_counts(const run_state_t *st) {
  static const fc_node_status_t order[] = {FC_NODE_COMPLETED, FC_NODE_FAILED, FC_NODE_TIMED_OUT,
                                           FC_NODE_SKIPPED, FC_NODE_CANCELLED};
  char buf[256];
  size_t len = 0, i;
  buf[0] = '\0';
  for (i = 0; i < sizeof order / sizeof order[0]; i++) {
    int n = st->counts[order[i]];
    if (n == 0 && order[i] != FC_NODE_COMPLETED)
      continue;
    len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%d %s", len > 0 ? ", " : "", n,
                            fc_node_status_name(order[i]));
    if (len >= sizeof buf)
      break;
  }
  cli_printf(stderr, "  nodes:   %s (of %d)\n", buf, st->node_count);
}

static void print_summary(const run_state_t *st) {
  char dur[32];
  size_t i;
  json_t *e;
  cli_format_duration_ms((double)st->duration_us / 1000.0, dur, sizeof dur);
  (void)cli_flush_stdout();
  cli_printf(stderr, "workflow \"%s\" %s in %s (run %s)\n", fc_workflow_name(st->wf),
             fc_workflow_status_name(st->status), dur,
             st->workflow_id[0] != '\0' ? st->workflow_id : "-");
  print_counts(st);
  if (st->error_count > 0) {
    cli_printf(stderr, "  errors:  %d\n", st->error_count);
    json_array_foreach (st->errors, i, e) {
      const char *node = json_string_value(json_object_get(e, "node_id"));
      cli_printf(stderr, "    %s (attempt %d) [%s] %s: %s\n", node != NULL ? node : "(workflow)",
                 (int)json_integer_value(json_object_get(e, "attempt")),
                 json_string_value(json_object_get(e, "severity")),
                 json_string_value(json_object_get(e, "type")),
                 json_string_value(json_object_get(e, "message")));
      print_trace_tail(json_string_value(json_object_get(e, "stack_trace")), 5);
      if (i == 19 && json_array_size(st->errors) > 20) {
        cli_printf(stderr, "    ... and %zu more (see --json or 'flowcore history show')\n",
                   json_array_size(st->errors) - 20 + st->errors_omitted);
        break;
      }
    }
  }
  if (st->history_off != NULL) {
    cli_printf(stderr, "  history: off (%s)\n", st->history_off);
  } else {
    cli_printf(stderr, "  history: %llu record%s written", (unsigned long long)st->report.written,
               st->report.written == 1 ? "" : "s");
    if (st->report.spooled > 0)
      cli_printf(stderr, ", %llu spooled to %s", (unsigned long long)st->report.spooled,
                 st->spool_dir);
    if (st->report.replayed > 0)
      cli_printf(stderr, ", %llu replayed from the spool into the database",
                 (unsigned long long)st->report.replayed);
    if (st->report.spool_bytes > 0)
      cli_printf(stderr,
                 " (%llu bytes still in the spool: replayed by the next run with this "
                 "--spool-dir once the database is reachable)",
                 (unsigned long long)st->report.spool_bytes);
    cli_printf(stderr, ", %llu dropped\n", (unsigned long long)st->report.dropped_total);
  }
  if (st->metrics_file != NULL && !st->metrics_failed)
    cli_printf(stderr, "  metrics: %s\n", st->metrics_file);
}

/* Data loss is never silent: printed whatever --quiet and --json say. */
static void print_loss(const run_state_t *st) {
  char buf[512];
  size_t len = 0;
  int k, r;
  if (st->history_off != NULL || st->report.dropped_total == 0)
    return;
  buf[0] = '\0';
  for (k = 0; k < FC_REC_KIND_COUNT; k++)
    for (r = 0; r < FC_DROP_REASON_COUNT; r++) {
      uint64_t n = st->report.dropped[k][r];
      if (n == 0 || len >= sizeof buf)
        continue;
      len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%llu %s record%s (%s)",
                              len > 0 ? ", " : "", (unsigned long long)n, fc_record_kind_name((fc_record_kind_t)k),
                              n == 1 ? "" : "s", fc_drop_reason_name((fc_drop_reason_t)r));
    }
  cli_error("history LOST: %llu record%s of this run were neither written to the database nor "
            "spooled: %s",
            (unsigned long long)st->report.dropped_total, st->report.dropped_total == 1 ? "" : "s",
            buf);
  if (st->report.last_error[0] != '\0') {
    char one[sizeof st->report.last_error];
    snprintf(one, sizeof one, "%s", st->report.last_error);
    cli_error("last database error: %s", cli_one_line(one));
  }
  if (cli_db_missing(st->report.last_error))
    cli_db_hint(&st->db, st->report.last_error);
  else if (strstr(st->report.last_error, "does not exist") != NULL)
    cli_error("hint: create the history schema with 'flowcore migrate'");
  if (st->spool_dir == NULL)
    cli_error("hint: --spool-dir DIR keeps history on disk while the database is unreachable");
}

/* Prints the result (--json object, or output and summary), any loss and
 * the cancellation; returns the exit code. */
static int report_result(run_state_t *st) {
  int exit_code;
  if (st->status == FC_WORKFLOW_COMPLETED)
    exit_code = CLI_EXIT_OK;
  else
    exit_code = CLI_EXIT_FAILED;
  if (st->history_off == NULL && st->report.dropped_total > 0)
    exit_code = CLI_EXIT_HISTORY;

  if (st->json) {
    json_t *result = result_json(st, exit_code);
    if (result == NULL || cli_print_json(stdout, result, 1) != 0) {
      cli_error("cannot format the result as JSON");
      if (exit_code == CLI_EXIT_OK)
        exit_code = CLI_EXIT_FAILED;
    }
    json_decref(result);
  } else {
    /* the output: indented by default, on one line with --output, not at
     * all with --quiet alone (a big fan-out's output can be large) */
    if (st->output != NULL && (st->print_output || !st->quiet) &&
        cli_print_json(stdout, st->output, st->print_output) != 0 && exit_code == CLI_EXIT_OK)
      exit_code = CLI_EXIT_FAILED;
    if (!st->quiet || exit_code != CLI_EXIT_OK)
      print_summary(st);
  }
  print_loss(st);
  if (st->cancelled_by != 0 && !st->json)
    cli_error("the run was cancelled by %s", signal_name(st->cancelled_by));
  return exit_code;
}

/* ---- the command ------------------------------------------------------------------ */

enum {
  OPT_HELP = 'h',
  OPT_QUIET = 'q',
  OPT_INPUT = 256,
  OPT_DB,
  OPT_NO_HISTORY,
  OPT_JSON,
  OPT_OUTPUT,
  OPT_METRICS,
  OPT_SPOOL,
  OPT_MAX_PARALLEL,
  OPT_DEADLINE,
  OPT_MAX_BYTES
};

static int parse_run_options(int argc, char **argv, run_state_t *st, int *done) {
  static const cli_opt_t opts[] = {{"help", 'h', 0, OPT_HELP},
                                   {"quiet", 'q', 0, OPT_QUIET},
                                   {"input", 0, 1, OPT_INPUT},
                                   {"db", 0, 1, OPT_DB},
                                   {"no-history", 0, 0, OPT_NO_HISTORY},
                                   {"json", 0, 0, OPT_JSON},
                                   {"output", 0, 0, OPT_OUTPUT},
                                   {"metrics-file", 0, 1, OPT_METRICS},
                                   {"spool-dir", 0, 1, OPT_SPOOL},
                                   {"max-parallel", 0, 1, OPT_MAX_PARALLEL},
                                   {"shutdown-deadline", 0, 1, OPT_DEADLINE},
                                   {"history-max-bytes", 0, 1, OPT_MAX_BYTES},
                                   {NULL, 0, 0, 0}};
  cli_opts_t p;
  int id, deadline_set = 0;
  uint64_t v;
  *done = 0;
  cli_opts_init(&p, argc, argv, 2, "run");
  while ((id = cli_opt_next(&p, opts)) != CLI_OPT_END) {
    switch (id) {
    case CLI_OPT_ERROR:
      return CLI_EXIT_USAGE;
    case CLI_OPT_POSITIONAL:
      if (st->file != NULL)
        return cli_usage_error("run", "unexpected argument '%s'", p.positional);
      st->file = p.positional;
      break;
    case OPT_HELP:
      cli_usage_run(stdout);
      *done = 1;
      return CLI_EXIT_OK;
    case OPT_QUIET:
      st->quiet = 1;
      break;
    case OPT_INPUT:
      st->input_arg = p.value;
      break;
    case OPT_DB:
      st->db_opt = p.value;
      break;
    case OPT_NO_HISTORY:
      st->no_history = 1;
      break;
    case OPT_JSON:
      st->json = 1;
      break;
    case OPT_OUTPUT:
      st->print_output = 1;
      break;
    case OPT_METRICS:
      if (p.value[0] == '\0')
        return cli_usage_error("run", "--metrics-file needs a path");
      st->metrics_file = p.value;
      break;
    case OPT_SPOOL:
      if (p.value[0] == '\0')
        return cli_usage_error("run", "--spool-dir needs a directory");
      st->spool_dir = p.value;
      break;
    case OPT_MAX_PARALLEL:
      if (cli_parse_uint(p.value, 0, 1000000, &v) != 0)
        return cli_usage_error("run",
                               "--max-parallel: expected an integer from 0 to 1000000, "
                               "got '%s'",
                               p.value);
      st->max_parallel = (int)v;
      break;
    case OPT_DEADLINE:
      if (cli_parse_uint(p.value, 0, UINT64_C(86400000), &v) != 0)
        return cli_usage_error("run",
                               "--shutdown-deadline: expected milliseconds (0 to "
                               "86400000), got '%s'",
                               p.value);
      st->deadline_ms = v;
      deadline_set = 1;
      break;
    case OPT_MAX_BYTES:
      if (cli_parse_size(p.value, 4096, UINT64_C(1) << 40, &st->history_max_bytes) != 0)
        return cli_usage_error("run",
                               "--history-max-bytes: expected a size from 4K to 1024G "
                               "(e.g. 64M), got '%s'",
                               p.value);
      break;
    default:
      return cli_usage_error("run", "unexpected option");
    }
  }
  if (st->file == NULL)
    return cli_usage_error("run", "missing the workflow FILE");
  if (st->input_arg != NULL && strcmp(st->file, "-") == 0 && strcmp(st->input_arg, "@-") == 0)
    return cli_usage_error("run", "the workflow and its input cannot both come from stdin");
  if (!deadline_set) {
    const char *env = getenv("FLOWCORE_SHUTDOWN_DEADLINE_MS");
    st->deadline_ms = DEFAULT_DEADLINE_MS;
    if (env != NULL && env[0] != '\0') {
      if (cli_parse_uint(env, 0, UINT64_C(86400000), &v) != 0)
        return cli_usage_error("run",
                               "FLOWCORE_SHUTDOWN_DEADLINE_MS: expected milliseconds (0 "
                               "to 86400000), got '%s'",
                               env);
      st->deadline_ms = v;
    }
  }
  return CLI_EXIT_OK;
}

/* The directory of --metrics-file must exist and be writable (checked
 * before running, so that a typo does not cost a whole run). */
static int check_metrics_path(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir;
  int ok;
  if (slash == NULL)
    dir = strdup(".");
  else if (slash == path)
    dir = strdup("/");
  else {
    dir = malloc((size_t)(slash - path) + 1);
    if (dir != NULL) {
      memcpy(dir, path, (size_t)(slash - path));
      dir[slash - path] = '\0';
    }
  }
  if (dir == NULL)
    return -1;
  ok = access(dir, W_OK | X_OK) == 0;
  if (!ok)
    cli_error("--metrics-file: the directory \"%s\" does not exist or is not writable", dir);
  free(dir);
  return ok ? 0 : -1;
}

static int setup_history(run_state_t *st) {
  fc_history_config_t cfg;
  fc_error_t err;
  int rc;
  if (st->no_history) {
    st->history_off = "--no-history";
    return 0;
  }
  rc = cli_db_resolve(st->db_opt, &st->db);
  if (rc != 0)
    return rc;
  if (!st->db.configured) {
    st->history_off = "no database configured: use --db, FLOWCORE_DB or DATABASE_URL";
    return 0;
  }
  fc_history_config_init(&cfg);
  cfg.conninfo = st->db.conninfo;
  cfg.shutdown_deadline_ms = st->deadline_ms;
  cfg.max_bytes = st->history_max_bytes; /* 0: the default */
  if (st->spool_dir != NULL) {
    cfg.policy = FC_QUEUE_SPOOL;
    cfg.spool_dir = st->spool_dir;
  }
  fc_error_clear(&err);
  rc = fc_history_writer_new(&st->writer, &cfg, &err);
  if (rc != 0) {
    cli_error("cannot start the history writer: %s",
              err.text[0] != '\0' ? err.text : fc_strerror(rc));
    return rc == FC_ENOMEM ? CLI_EXIT_FAILED : CLI_EXIT_USAGE;
  }
  return 0;
}

/* Whether a handler that setup_handlers adds will listen to node_end, the
 * event that carries every node's output: progress (without --quiet),
 * metrics and history do. Without one, the `set` constants stay text
 * while the file loads (FC_LOAD_LAZY_CONSTANTS): only those the run reads
 * are parsed. With one, every constant is parsed anyway, and parsing them
 * as the file loads, on two threads, costs less than on the loop. */
static int outputs_read_at_node_end(const run_state_t *st) {
  return !st->quiet || st->metrics_file != NULL || st->writer != NULL;
}

/* The handlers of the run; outputs_read_at_node_end says which of them
 * listen to node_end. */
static int setup_handlers(run_state_t *st) {
  fc_handler_t h;
  int rc;
  if (fc_manager_new(&st->manager) != 0)
    return FC_ENOMEM;
  if (!st->quiet) {
    fc_progress_options_t po;
    fc_progress_t *progress;
    fc_progress_options_init(&po);
    po.out = stderr;
    po.mode = isatty(STDERR_FILENO) ? FC_PROGRESS_TTY : FC_PROGRESS_PLAIN;
    rc = fc_progress_new(&progress, &po);
    if (rc != 0)
      return rc;
    rc = fc_progress_handler_owned(progress, &h);
    if (rc == 0)
      rc = fc_manager_add(st->manager, &h, 0, NULL);
    if (rc != 0)
      return rc;
    st->tick_ms = po.mode == FC_PROGRESS_TTY ? TTY_TICK_MS : PLAIN_TICK_MS;
    st->progress = progress; /* for the refresh timer, until the manager is freed */
  }
  if (st->metrics_file != NULL) {
    rc = fc_metrics_new(&st->metrics, NULL);
    if (rc != 0)
      return rc;
    rc = fc_metrics_handler(st->metrics, &h);
    if (rc == 0)
      rc = fc_manager_add(st->manager, &h, 0, NULL);
    if (rc != 0)
      return rc;
  }
  h = collector_handler(st);
  rc = fc_manager_add(st->manager, &h, 10, NULL);
  if (rc != 0)
    return rc;
  if (st->writer != NULL) {
    rc = fc_history_handler(st->writer, &st->loop, &h);
    if (rc != 0)
      return rc;
    rc = fc_manager_add(st->manager, &h, 20, NULL);
    if (rc != 0)
      return rc;
  }
  return 0;
}

void cli_usage_run(FILE *out) {
  fputs("Usage: flowcore run FILE [options]\n"
        "\n"
        "Runs the workflow file FILE ('-' reads standard input). Progress goes to\n"
        "stderr (a bar on a terminal, plain lines otherwise), then a summary; the\n"
        "workflow's output (JSON) goes to stdout. History is recorded when a\n"
        "database is configured. SIGINT/SIGTERM cancel the run cleanly and the\n"
        "history is still written; a second signal stops waiting for nodes that\n"
        "are still stopping, a third stops waiting for the history writer.\n"
        "\n"
        "Options:\n"
        "  --input JSON|@FILE      the workflow input (replaces the file's \"input\";\n"
        "                          @FILE reads it from a file, @- from stdin)\n"
        "  --db CONNINFO           PostgreSQL connection string or URL for the history\n"
        "  --no-history            do not record history, even if a database is set\n"
        "  --quiet, -q             no progress, no output, and no summary unless\n"
        "                          something failed\n"
        "  --output                print the output on one line (also with --quiet)\n"
        "  --json                  print one JSON object with the result on one line\n"
        "                          of stdout instead of the output and the summary\n"
        "  --metrics-file PATH     write Prometheus metrics to PATH at the end (atomic;\n"
        "                          this run's counters, and per workflow the\n"
        "                          flowcore_last_run_* and _last_success_* gauges)\n"
        "  --spool-dir DIR         keep history in DIR while the database is down (it\n"
        "                          is replayed once reachable); without it, history\n"
        "                          not written by the deadline is lost\n"
        "  --max-parallel N        run at most N nodes at once (0: unlimited)\n"
        "  --shutdown-deadline MS  wait at most MS ms for the history at the end\n"
        "                          (default $FLOWCORE_SHUTDOWN_DEADLINE_MS, else 10000)\n"
        "  --history-max-bytes SIZE  payload bytes the history writer holds at most\n"
        "                          (4K to 1024G, suffix K/M/G; default 256M); the\n"
        "                          run waits for the writer when it is reached\n"
        "  --help, -h              this help\n"
        "\n"
        "Exit codes: 0 completed; 1 failed or cancelled, or stdout could not be\n"
        "written; 2 usage error or invalid workflow file; 3 history records lost\n"
        "(printed), whatever the status or a write error.\n",
        out);
}

int cli_cmd_run(int argc, char **argv) {
  run_state_t st;
  json_t *file_input = NULL, *input = NULL;
  fc_error_t err;
  int rc, done, exit_code;

  memset(&st, 0, sizeof st);
  st.max_parallel = -1;
  rc = parse_run_options(argc, argv, &st, &done);
  if (rc != 0 || done)
    return rc;
  /* The writer's thread connects and checks the schema while the file
   * loads. */
  rc = setup_history(&st);
  if (rc != 0)
    return rc;
  rc = load_workflow(st.file, outputs_read_at_node_end(&st) ? 0 : FC_LOAD_LAZY_CONSTANTS, &st.wf,
                     &file_input);
  if (rc == 0 && st.input_arg != NULL) {
    fc_error_clear(&err);
    if (fc_workflow_load_input(st.input_arg, &input, &err) != 0) {
      cli_error("%s", err.text);
      rc = CLI_EXIT_USAGE;
    }
    json_decref(file_input);
  } else {
    input = file_input;
  }
  if (rc == 0 && st.metrics_file != NULL && check_metrics_path(st.metrics_file) != 0)
    rc = CLI_EXIT_USAGE;
  if (rc != 0) { /* nothing was recorded: the writer only goes */
    if (st.writer != NULL)
      (void)fc_history_writer_close(st.writer, NULL);
    json_decref(input);
    fc_workflow_free(st.wf);
    return rc;
  }
  st.errors = json_array();

  /* The loop and its handles. */
  uv_loop_init(&st.loop);
  uv_timer_init(&st.loop, &st.tick);
  st.tick.data = &st;
  uv_signal_init(&st.loop, &st.sig_int);
  uv_signal_init(&st.loop, &st.sig_term);
  st.sig_int.data = &st;
  st.sig_term.data = &st;
  uv_async_init(&st.loop, &st.writer_closed, writer_closed_cb);
  st.writer_closed.data = &st;
  /* A signal ignored when we started (`nohup`, a background job of a
   * non-interactive shell) stays ignored. */
  if (!signal_ignored(SIGINT))
    uv_signal_start(&st.sig_int, signal_cb, SIGINT);
  if (!signal_ignored(SIGTERM))
    uv_signal_start(&st.sig_term, signal_cb, SIGTERM);

  rc = st.errors == NULL ? FC_ENOMEM : setup_handlers(&st);
  fc_error_clear(&err);
  if (rc == 0)
    rc = fc_run_new(&st.run, &st.loop, st.wf, st.manager, &err);
  if (rc == 0 && st.max_parallel >= 0)
    rc = fc_run_set_max_parallel(st.run, st.max_parallel);
  if (rc == 0) /* the command reads the workflow's output only */
    rc = fc_run_set_keep_outputs(st.run, 0);
  if (rc == 0)
    rc = fc_run_start(st.run, input, run_done_cb, &st);
  json_decref(input);
  if (rc != 0) {
    cli_error("cannot start the run: %s", err.text[0] != '\0' ? err.text : fc_strerror(rc));
    if (st.run != NULL)
      fc_run_close(st.run, NULL, NULL);
    st.run = NULL;
    fc_manager_free(st.manager);
    st.manager = NULL;
    st.progress = NULL;
    fc_metrics_free(st.metrics);
    st.metrics = NULL;
    if (st.writer != NULL)
      (void)fc_history_writer_close(st.writer, &st.report);
    st.writer = NULL;
    close_handles(&st);
    uv_run(&st.loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&st.loop);
    json_decref(st.errors);
    fc_workflow_free(st.wf);
    return CLI_EXIT_FAILED;
  }
  if (st.progress != NULL)
    uv_timer_start(&st.tick, tick_cb, st.tick_ms, st.tick_ms);
  cli_malloc_settle(); /* the load is over (main.c) */

  uv_run(&st.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&st.loop) != 0)
    cli_error("warning: the event loop did not close cleanly");

  exit_code = report_result(&st);
  (void)cli_flush_stdout();
  json_decref(st.output);
  json_decref(st.errors);
  leave_at_exit(st.wf);
  return exit_code;
}

/* flowcore in five minutes.
 *
 * This program builds a small workflow with the C API and runs it on a libuv
 * loop, with the logging, progress and metrics handlers attached, and the
 * database handler too when FLOWCORE_DB names a PostgreSQL database:
 *
 *              .-> parse ----.
 *     fetch --<               >--> report
 *              '-> validate -'
 *
 *   fetch     asynchronous: finishes from a uv_timer callback, like a node
 *             waiting for the network would.
 *   parse     blocking work: runs on the libuv thread pool
 *             (fc_node_queue_work), then completes on the loop thread.
 *   validate  flaky: fails on its first attempt, succeeds on the retry
 *             (fc_node_set_retries). parse and validate run in parallel.
 *   report    synchronous: completes inside its function.
 *
 * Every node gets one JSON input, {"input": <workflow input>, "<dependency
 * id>": <its output>, ...}, and finishes by calling exactly one completion
 * function: fc_node_succeed(ctx, output) or fc_node_fail*(ctx, ...). The
 * workflow's output is the outputs of its sink nodes, keyed by node id.
 *
 * Usage: hello [--verbose]   (or FLOWCORE_LOG=debug) for node-level logs.
 * Exits 0 when the workflow completed.
 */
/* libuv's headers use POSIX types (pthread_*); a strict -std=c11 build must
 * ask for them before the first system header. */
#define _POSIX_C_SOURCE 200809L

#include <flowcore.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- fetch: asynchronous, completed from a timer ------------------------ */

/* State of one fetch attempt. The timer is freed in its close callback, as
 * libuv requires; the attempt's context is valid until we complete it. */
typedef struct {
  uv_timer_t timer;
  fc_node_ctx_t *ctx;
} fetch_state_t;

static void fetch_free(uv_handle_t *handle) { free(handle->data); }

static void fetch_done(uv_timer_t *timer) {
  fetch_state_t *st = timer->data;
  json_t *input = fc_node_ctx_input(st->ctx);
  /* The workflow input is under "input"; borrowed, valid until completion. */
  json_int_t count = json_integer_value(json_object_get(json_object_get(input, "input"), "count"));

  /* Pretend these lines came from a server: "name=value". */
  json_t *lines = json_array();
  for (json_int_t i = 1; i <= count; i++)
    json_array_append_new(lines, json_sprintf("item%d=%d", (int)i, (int)(i * 10)));

  fc_node_succeed(st->ctx, json_pack("{s:o}", "lines", lines)); /* takes the reference */
  uv_close((uv_handle_t *)&st->timer, fetch_free);
}

/* Called by the engine if the attempt times out or the run is cancelled.
 * The node must still complete (the result is then ignored). */
static void fetch_stop(fc_node_ctx_t *ctx, fc_node_status_t reason, void *data) {
  fetch_state_t *st = data;
  (void)reason;
  uv_timer_stop(&st->timer);
  fc_node_failf(ctx, FC_SEVERITY_WARNING, "stopped", "fetch was stopped");
  uv_close((uv_handle_t *)&st->timer, fetch_free);
}

static void fetch_fn(fc_node_ctx_t *ctx, void *user_data) {
  (void)user_data;
  fetch_state_t *st = malloc(sizeof *st);
  if (st == NULL) {
    fc_node_failf(ctx, FC_SEVERITY_ERROR, "oom", "out of memory");
    return;
  }
  st->ctx = ctx;
  uv_timer_init(fc_node_ctx_loop(ctx), &st->timer);
  st->timer.data = st;
  fc_node_ctx_on_stop(ctx, fetch_stop, st);
  uv_timer_start(&st->timer, fetch_done, 50, 0); /* "network latency": 50 ms */
}

/* ---- parse: blocking work on the thread pool ----------------------------- */

typedef struct {
  long total;
  int lines;
} parse_result_t;

/* Runs on a thread-pool thread: it may only read the input. */
static void parse_work(fc_node_ctx_t *ctx, void *data) {
  parse_result_t *res = data;
  json_t *lines = json_object_get(json_object_get(fc_node_ctx_input(ctx), "fetch"), "lines");
  size_t i;
  json_t *line;
  json_array_foreach (lines, i, line) {
    const char *eq = strchr(json_string_value(line), '=');
    if (eq != NULL) {
      res->total += strtol(eq + 1, NULL, 10);
      res->lines++;
    }
  }
}

/* Back on the loop thread: complete the attempt. */
static void parse_after(fc_node_ctx_t *ctx, void *data) {
  parse_result_t *res = data;
  fc_node_succeed(ctx,
                  json_pack("{s:i, s:I}", "lines", res->lines, "total", (json_int_t)res->total));
  free(res);
}

static void parse_fn(fc_node_ctx_t *ctx, void *user_data) {
  (void)user_data;
  parse_result_t *res = calloc(1, sizeof *res);
  int rc = res ? fc_node_queue_work(ctx, parse_work, parse_after, res) : UV_ENOMEM;
  if (rc != 0) { /* then neither callback runs: complete here */
    free(res);
    fc_node_failf(ctx, FC_SEVERITY_ERROR, "queue_work", "%s", fc_strerror(rc));
  }
}

/* ---- validate: fails once, succeeds on the retry ------------------------- */

static void validate_fn(fc_node_ctx_t *ctx, void *user_data) {
  (void)user_data;
  if (fc_node_ctx_attempt(ctx) == 1) {
    /* Becomes an `error` event and a failed attempt; the engine retries. */
    fc_node_failf(ctx, FC_SEVERITY_WARNING, "unavailable",
                  "schema service unavailable (attempt %d)", fc_node_ctx_attempt(ctx));
    return;
  }
  json_t *lines = json_object_get(json_object_get(fc_node_ctx_input(ctx), "fetch"), "lines");
  fc_node_succeed(ctx, json_pack("{s:b, s:i}", "valid", json_array_size(lines) > 0, "attempt",
                                 fc_node_ctx_attempt(ctx)));
}

/* ---- report: synchronous --------------------------------------------------- */

static void report_fn(fc_node_ctx_t *ctx, void *user_data) {
  const char *title = user_data; /* the pointer given to fc_workflow_add_node */
  json_t *in = fc_node_ctx_input(ctx);
  json_t *parsed = json_object_get(in, "parse");
  json_t *checked = json_object_get(in, "validate");
  fc_node_succeed(ctx, json_pack("{s:s, s:O, s:O, s:O}", "title", title, "lines",
                                 json_object_get(parsed, "lines"), "total",
                                 json_object_get(parsed, "total"), "valid",
                                 json_object_get(checked, "valid")));
}

/* ---- the workflow ---------------------------------------------------------- */

/* Builder calls fail only with FC_EINVAL, FC_ENOMEM or FC_EFROZEN; this
 * macro keeps the example short by jumping to one cleanup path. */
#define TRY(call)                                                                                  \
  do {                                                                                             \
    if ((rc = (call)) != 0)                                                                        \
      goto fail;                                                                                   \
  } while (0)

/* Builds and validates the workflow. Returns 0 or an error code. */
static int build_workflow(fc_workflow_t **out) {
  fc_workflow_t *wf = NULL;
  fc_node_t *fetch, *parse, *validate, *report;
  fc_error_t err;
  int rc;

  TRY(fc_workflow_new(&wf, "hello"));

  /* A node: id, function, user data (borrowed), then its settings. */
  TRY(fc_workflow_add_node(wf, "fetch", fetch_fn, NULL, &fetch));
  TRY(fc_node_set_type(fetch, "timer")); /* reported in events */
  TRY(fc_node_set_timeout(fetch, 2000)); /* ms, per attempt */

  TRY(fc_workflow_add_node(wf, "parse", parse_fn, NULL, &parse));
  TRY(fc_node_set_type(parse, "threadpool"));
  TRY(fc_node_add_dep(parse, "fetch"));

  TRY(fc_workflow_add_node(wf, "validate", validate_fn, NULL, &validate));
  TRY(fc_node_set_type(validate, "flaky"));
  TRY(fc_node_add_dep(validate, "fetch"));
  TRY(fc_node_set_retries(validate, 2, 20, 200)); /* 2 extra attempts, 20 ms backoff */

  TRY(fc_workflow_add_node(wf, "report", report_fn, (void *)"hello report", &report));
  TRY(fc_node_set_type(report, "sync"));
  TRY(fc_node_add_dep(report, "parse"));
  TRY(fc_node_add_dep(report, "validate"));

  /* Unique ids, known dependencies, no cycles; then the workflow is frozen
   * and can be run any number of times. */
  fc_error_clear(&err);
  if ((rc = fc_workflow_validate(wf, &err)) != 0) {
    fprintf(stderr, "hello: invalid workflow: %s\n", err.text);
    goto fail;
  }
  *out = wf;
  return 0;

fail:
  fc_workflow_free(wf);
  return rc;
}

/* ---- running it ------------------------------------------------------------ */

typedef struct {
  fc_workflow_status_t status;
} app_t;

static void on_closed(fc_run_t *run, void *data) {
  (void)run;
  (void)data; /* the run is freed right after this returns */
}

/* Called once on the loop after the workflow_end event. The run's output is
 * valid until fc_run_close. */
static void on_done(fc_run_t *run, void *data) {
  app_t *app = data;
  app->status = fc_run_status(run);
  char *text = json_dumps(fc_run_output(run), JSON_INDENT(2) | JSON_SORT_KEYS);
  printf("workflow %s %s\noutput: %s\n", fc_run_id(run), fc_workflow_status_name(app->status),
         text ? text : "null");
  fflush(stdout);
  free(text);
  fc_run_close(run, on_closed, NULL);
}

static int want_debug(int argc, char **argv) {
  const char *env = getenv("FLOWCORE_LOG");
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--verbose") == 0 || strcmp(argv[i], "-v") == 0)
      return 1;
  return env != NULL && strcmp(env, "debug") == 0;
}

int main(int argc, char **argv) {
  uv_loop_t loop;
  fc_workflow_t *wf = NULL;
  fc_manager_t *manager = NULL;
  fc_handler_t log_handler;
  fc_run_t *run = NULL;
  fc_progress_t *progress = NULL; /* owned by its handler once added */
  fc_metrics_t *metrics = NULL;   /* ours: its handler borrows it */
  fc_history_writer_t *writer = NULL; /* ours: the database handler borrows it */
  app_t app = {FC_WORKFLOW_PENDING};
  int rc;

  /* 1. The workflow definition. */
  if ((rc = build_workflow(&wf)) != 0) {
    fprintf(stderr, "hello: cannot build the workflow: %s\n", fc_strerror(rc));
    return 1;
  }

  /* 2. The callback manager and its handlers: logging, progress and metrics.
   * INFO shows workflow start/end and errors; DEBUG adds every node event.
   * Handlers with a higher priority see each event first. */
  fc_log_options_t log_opts;
  fc_progress_options_t progress_opts;
  fc_handler_t progress_handler, metrics_handler;
  fc_log_options_init(&log_opts); /* text at INFO */
  log_opts.out = stderr;
  if (want_debug(argc, argv))
    log_opts.min_level = FC_LOG_DEBUG;
  fc_progress_options_init(&progress_opts); /* AUTO */
  progress_opts.out = stderr;
  if ((rc = fc_manager_new(&manager)) != 0)
    goto setup_failed;
  if ((rc = fc_log_handler(&log_opts, &log_handler)) != 0 ||
      (rc = fc_manager_add(manager, &log_handler, 10, NULL)) != 0) /* takes ownership */
    goto setup_failed;
  if ((rc = fc_progress_new(&progress, &progress_opts)) != 0)
    goto setup_failed;
  rc = fc_progress_handler_owned(progress, &progress_handler); /* the handler owns it now */
  progress = NULL;
  if (rc != 0 || (rc = fc_manager_add(manager, &progress_handler, 0, NULL)) != 0)
    goto setup_failed;
  if ((rc = fc_metrics_new(&metrics, NULL)) != 0)
    goto setup_failed;
  if ((rc = fc_metrics_handler(metrics, &metrics_handler)) != 0 || /* borrows: we read it later */
      (rc = fc_manager_add(manager, &metrics_handler, 0, NULL)) != 0) {
  setup_failed:
    fprintf(stderr, "hello: cannot set up the handlers: %s\n", fc_strerror(rc));
    fc_manager_free(manager);
    fc_metrics_free(metrics);
    fc_workflow_free(wf);
    return 1;
  }

  /* 3. The execution history, when a database is configured: the database
   * handler hands compact records to the writer, which commits them in
   * batches from its own thread (docs/history.md). */
  uv_loop_init(&loop);
  if (getenv("FLOWCORE_DB") != NULL) {
    fc_history_config_t hcfg;
    fc_handler_t db_handler;
    fc_history_config_init(&hcfg); /* conninfo NULL: FLOWCORE_DB */
    if ((rc = fc_history_writer_new(&writer, &hcfg, NULL)) != 0 ||
        (rc = fc_history_handler(writer, &loop, &db_handler)) != 0 ||
        (rc = fc_manager_add(manager, &db_handler, 0, NULL)) != 0) {
      fprintf(stderr, "hello: cannot set up the history: %s\n", fc_strerror(rc));
      return 1;
    }
  }

  /* 4. A run of the workflow on the libuv loop, with its input. */
  json_t *input = json_pack("{s:i}", "count", 5);
  if ((rc = fc_run_new(&run, &loop, wf, manager, NULL)) != 0) {
    fprintf(stderr, "hello: cannot create the run: %s\n", fc_strerror(rc));
  } else if ((rc = fc_run_start(run, input, on_done, &app)) != 0) { /* input borrowed */
    fprintf(stderr, "hello: cannot start the run: %s\n", fc_strerror(rc));
    fc_run_close(run, NULL, NULL);
  }
  json_decref(input);

  /* 5. Turn the loop until the run is done and closed. */
  uv_run(&loop, UV_RUN_DEFAULT);

  /* 6. The metrics report (the documented get_report fields and more). */
  {
    json_t *report = fc_metrics_report_json(metrics), *doc = json_object();
    static const char *const fields[] = {"total_workflows", "total_nodes", "error_rate",
                                         "avg_workflow_duration", "slowest_nodes"};
    char *text;
    size_t i;
    for (i = 0; i < sizeof fields / sizeof fields[0]; i++)
      json_object_set(doc, fields[i], json_object_get(report, fields[i]));
    text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(4));
    json_decref(doc);
    if (text != NULL)
      fprintf(stderr, "metrics: %s\n", text);
    free(text);
    json_decref(report);
  }

  /* 7. The manager outlives its runs; freeing it destroys its handlers (the
   * database handler closes its loop handles: turn the loop once more).
   * Then what the handlers borrowed: the metrics and the writer, whose close
   * commits what is left within its deadline and reports exactly. */
  fc_manager_free(manager);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0)
    fprintf(stderr, "hello: loop still has open handles\n");
  fc_metrics_free(metrics);
  if (writer != NULL) {
    fc_history_stats_t report;
    rc = fc_history_writer_close(writer, &report);
    fprintf(stderr, "history: %llu records written, %llu dropped%s%s\n",
            (unsigned long long)report.written, (unsigned long long)report.dropped_total,
            report.last_error[0] ? "; last error: " : "", report.last_error);
    if (rc != 0)
      app.status = FC_WORKFLOW_FAILED; /* history lost: not a clean run */
  }
  fc_workflow_free(wf);
  return app.status == FC_WORKFLOW_COMPLETED ? 0 : 1;
}

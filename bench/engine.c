/* Engine throughput benchmark.
 *
 * Builds two workflows of no-op nodes (a node's function is
 * fc_node_succeed(ctx, NULL)):
 *   chain    n0 -> n1 -> ... -> n(N-1)     every node waits for the previous
 *   fan-out  n0 -> {n1 ... n(N-1)}         one source, N-1 parallel sinks
 * and runs each with 0 handlers (an empty manager) and with 5 no-op handlers
 * (all five callbacks set, each returning 0) on a private libuv loop.
 *
 * Timed: from fc_run_start() to the run's done callback, with uv_hrtime().
 * Not timed (printed apart): building and validating the workflow,
 * fc_run_new() and closing the run.
 *
 * Reports, per configuration, the median of --runs runs in node executions
 * per second; the mean cost of one handler call, (median time with 5 handlers
 * - median time with 0) / handler calls per run; and the ratio against the
 * Python implementation's 37,500 nodes/s (chain, 5 handlers).
 *
 * Usage: engine [--nodes N] [--runs N] [--warmup N] [--check]
 *   --warmup N  untimed runs per configuration before the timed ones
 *               (default 1; with N > 0 one untimed build comes first too)
 *   --check  exit 1 when the goal (chain, 5 handlers >= 1,000,000 nodes/s)
 *            is not met.
 */
/* libuv's headers use POSIX types; a strict -std=c11 build asks for them. */
#define _POSIX_C_SOURCE 200809L

#include <flowcore.h>

#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASELINE_NODES_PER_S 37500.0 /* Python, chain, 5 handlers */
#define GOAL_NODES_PER_S 1000000.0   /* chain, 5 handlers */
#define HANDLERS 5

typedef enum { SHAPE_CHAIN = 0, SHAPE_FANOUT = 1, SHAPE_COUNT = 2 } shape_t;

static const char *const shape_names[SHAPE_COUNT] = {"chain", "fan-out"};

typedef struct {
  size_t nodes;
  int runs;
  int warmup;
  int check;
} options_t;

/* Results of one configuration (shape x handler count). */
typedef struct {
  uint64_t median_ns;
  uint64_t min_ns;
  uint64_t max_ns;
  uint64_t setup_ns;      /* median of fc_run_new + close, not in median_ns */
  uint64_t handler_calls; /* per run */
} result_t;

typedef struct {
  uv_loop_t *loop;
  uint64_t end_ns;
  int done;
} run_state_t;

/* ---- nodes and handlers ---------------------------------------------------- */

static void noop_node(fc_node_ctx_t *ctx, void *user_data) {
  (void)user_data;
  fc_node_succeed(ctx, NULL);
}

static int noop_cb(void *self, const fc_event_t *ev) {
  (void)self;
  (void)ev;
  return 0;
}

/* ---- helpers --------------------------------------------------------------- */

static int parse_options(int argc, char **argv, options_t *o) {
  o->nodes = 200000;
  o->runs = 5;
  o->warmup = 1;
  o->check = 0;
  for (int i = 1; i < argc; i++) {
    long v;
    if (strcmp(argv[i], "--nodes") == 0) {
      if (parse_count("engine", "--nodes", i + 1 < argc ? argv[++i] : NULL, 2, &v))
        return -1;
      o->nodes = (size_t)v;
    } else if (strcmp(argv[i], "--runs") == 0) {
      if (parse_count("engine", "--runs", i + 1 < argc ? argv[++i] : NULL, 1, &v))
        return -1;
      o->runs = (int)v;
    } else if (strcmp(argv[i], "--warmup") == 0) {
      if (parse_count("engine", "--warmup", i + 1 < argc ? argv[++i] : NULL, 0, &v))
        return -1;
      o->warmup = (int)v;
    } else if (strcmp(argv[i], "--check") == 0) {
      o->check = 1;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      printf("usage: engine [--nodes N (200000)] [--runs N (5)] [--warmup N (1)] [--check]\n");
      exit(0);
    } else {
      fprintf(stderr, "engine: unknown option '%s' (try --help)\n", argv[i]);
      return -1;
    }
  }
  return 0;
}

/* ---- building -------------------------------------------------------------- */

/* Builds the workflow (timed into *build_ns) and validates it (*validate_ns). */
static int build_workflow(shape_t shape, size_t nodes, fc_workflow_t **out, uint64_t *build_ns,
                          uint64_t *validate_ns) {
  fc_workflow_t *wf;
  fc_error_t err;
  char id[32], dep[32];
  uint64_t t0 = uv_hrtime();
  int rc = fc_workflow_new(&wf, shape == SHAPE_CHAIN ? "bench-chain" : "bench-fanout");
  if (rc != 0)
    return rc;
  for (size_t i = 0; i < nodes && rc == 0; i++) {
    fc_node_t *n;
    snprintf(id, sizeof id, "n%zu", i);
    rc = fc_workflow_add_node(wf, id, noop_node, NULL, &n);
    if (rc == 0 && i > 0) {
      snprintf(dep, sizeof dep, "n%zu", shape == SHAPE_CHAIN ? i - 1 : (size_t)0);
      rc = fc_node_add_dep(n, dep);
    }
  }
  uint64_t t1 = uv_hrtime();
  if (rc == 0) {
    fc_error_clear(&err);
    rc = fc_workflow_validate(wf, &err);
    if (rc != 0)
      fprintf(stderr, "engine: validate: %s\n", err.text);
  }
  uint64_t t2 = uv_hrtime();
  if (rc != 0) {
    fc_workflow_free(wf);
    return rc;
  }
  *build_ns = t1 - t0;
  *validate_ns = t2 - t1;
  *out = wf;
  return 0;
}

/* A manager with `count` no-op handlers; their ids go to ids[]. */
static int make_manager(int count, fc_manager_t **out, int *ids) {
  fc_manager_t *m;
  int rc = fc_manager_new(&m);
  if (rc != 0)
    return rc;
  for (int i = 0; i < count && rc == 0; i++) {
    char name[16];
    snprintf(name, sizeof name, "noop%d", i);
    fc_handler_t h = {
        .name = name,
        .on_workflow_start = noop_cb,
        .on_workflow_end = noop_cb,
        .on_node_start = noop_cb,
        .on_node_end = noop_cb,
        .on_error = noop_cb,
    };
    rc = fc_manager_add(m, &h, 0, &ids[i]);
  }
  if (rc != 0) {
    fc_manager_free(m);
    return rc;
  }
  *out = m;
  return 0;
}

static uint64_t handler_calls(const fc_manager_t *m, const int *ids, int count) {
  uint64_t total = 0;
  for (int i = 0; i < count; i++) {
    fc_handler_stats_t st;
    if (fc_manager_handler_stats(m, ids[i], &st) == 0)
      total += st.calls;
  }
  return total;
}

/* ---- running --------------------------------------------------------------- */

static void on_done(fc_run_t *run, void *data) {
  run_state_t *st = data;
  (void)run;
  st->end_ns = uv_hrtime();
  st->done = 1;
  uv_stop(st->loop); /* return from uv_run even if the run still holds handles */
}

/* One run: *run_ns is start -> done, *setup_ns is fc_run_new + close. */
static int run_once(uv_loop_t *loop, fc_workflow_t *wf, fc_manager_t *m, uint64_t *run_ns,
                    uint64_t *setup_ns) {
  run_state_t st = {loop, 0, 0};
  fc_run_t *run;
  fc_error_t err;
  fc_error_clear(&err);

  uint64_t t0 = uv_hrtime();
  int rc = fc_run_new(&run, loop, wf, m, &err);
  if (rc != 0) {
    fprintf(stderr, "engine: fc_run_new: %s %s\n", fc_strerror(rc), err.text);
    return rc;
  }
  uint64_t t1 = uv_hrtime();
  rc = fc_run_start(run, NULL, on_done, &st);
  if (rc != 0) {
    fprintf(stderr, "engine: fc_run_start: %s\n", fc_strerror(rc));
    fc_run_close(run, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    return rc;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  if (!st.done) {
    fprintf(stderr, "engine: the loop stopped before the run was done\n");
    return FC_ESTATE;
  }
  fc_workflow_status_t status = fc_run_status(run);
  uint64_t t2 = uv_hrtime();
  fc_run_close(run, NULL, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  uint64_t t3 = uv_hrtime();

  if (status != FC_WORKFLOW_COMPLETED) {
    fprintf(stderr, "engine: run ended %s\n", fc_workflow_status_name(status));
    return FC_ESTATE;
  }
  *run_ns = st.end_ns - t1;
  *setup_ns = (t1 - t0) + (t3 - t2);
  return 0;
}

static int measure(const options_t *o, uv_loop_t *loop, fc_workflow_t *wf, int handlers,
                   result_t *res) {
  fc_manager_t *m;
  int ids[HANDLERS];
  uint64_t *times = calloc((size_t)o->runs, sizeof *times);
  uint64_t *setups = calloc((size_t)o->runs, sizeof *setups);
  int rc = times && setups ? make_manager(handlers, &m, ids) : FC_ENOMEM;
  if (rc != 0)
    goto out;

  for (int i = 0; i < o->warmup && rc == 0; i++) {
    uint64_t ignored_run, ignored_setup;
    rc = run_once(loop, wf, m, &ignored_run, &ignored_setup);
  }
  uint64_t calls_before = handler_calls(m, ids, handlers);
  for (int i = 0; i < o->runs && rc == 0; i++)
    rc = run_once(loop, wf, m, &times[i], &setups[i]);
  if (rc == 0) {
    res->handler_calls = (handler_calls(m, ids, handlers) - calls_before) / (uint64_t)o->runs;
    res->median_ns = bench_median(times, (size_t)o->runs); /* sorts times */
    res->min_ns = times[0];
    res->max_ns = times[o->runs - 1];
    res->setup_ns = bench_median(setups, (size_t)o->runs);
  }
  fc_manager_free(m);
out:
  free(times);
  free(setups);
  return rc;
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv) {
  options_t o;
  uv_loop_t loop;
  result_t res[SHAPE_COUNT][2]; /* [shape][0: no handlers, 1: 5 handlers] */
  uint64_t build_ns[SHAPE_COUNT], validate_ns[SHAPE_COUNT];
  char b1[32], b2[32];
  int rc = 0;

  if (parse_options(argc, argv, &o) != 0)
    return 2;
  if (uv_loop_init(&loop) != 0)
    return 1;

  printf("flowcore %s engine benchmark\n", fc_version_string());
  printf("  %s no-op nodes per workflow, %d runs per configuration (+%d warm-up), median "
         "reported\n",
         group((double)o.nodes, b1, sizeof b1), o.runs, o.warmup);
  printf("  timed: fc_run_start() -> done callback (uv_hrtime); building, validation,\n"
         "  fc_run_new() and closing the run are not in the timed figures\n\n");
  fflush(stdout);

  /* Warm-up: the first large build pays for growing the heap; do it once
   * untimed so build and validation figures compare across shapes. */
  if (o.warmup > 0) {
    fc_workflow_t *wf;
    uint64_t ignored_build, ignored_validate;
    rc = build_workflow(SHAPE_CHAIN, o.nodes, &wf, &ignored_build, &ignored_validate);
    if (rc == 0)
      fc_workflow_free(wf);
  }

  for (int s = 0; s < SHAPE_COUNT && rc == 0; s++) {
    fc_workflow_t *wf;
    rc = build_workflow((shape_t)s, o.nodes, &wf, &build_ns[s], &validate_ns[s]);
    if (rc != 0) {
      fprintf(stderr, "engine: cannot build the %s workflow: %s\n", shape_names[s],
              fc_strerror(rc));
      break;
    }
    for (int h = 0; h < 2 && rc == 0; h++)
      rc = measure(&o, &loop, wf, h ? HANDLERS : 0, &res[s][h]);
    fc_workflow_free(wf);
  }
  uv_loop_close(&loop);
  if (rc != 0) {
    fprintf(stderr, "engine: benchmark failed: %s\n", fc_strerror(rc));
    return 1;
  }

  printf("  %-8s %10s %12s\n", "shape", "build ms", "validate ms");
  for (int s = 0; s < SHAPE_COUNT; s++)
    printf("  %-8s %10.1f %12.1f\n", shape_names[s], ms(build_ns[s]), ms(validate_ns[s]));

  printf("\n  %-8s %8s %10s %10s %10s %13s %16s %10s\n", "shape", "handlers", "median ms", "min ms",
         "max ms", "nodes/s", "handler calls", "setup ms");
  for (int s = 0; s < SHAPE_COUNT; s++) {
    for (int h = 0; h < 2; h++) {
      const result_t *r = &res[s][h];
      printf("  %-8s %8d %10.1f %10.1f %10.1f %13s %16s %10.1f\n", shape_names[s], h ? HANDLERS : 0,
             ms(r->median_ns), ms(r->min_ns), ms(r->max_ns),
             group(per_second(o.nodes, r->median_ns), b1, sizeof b1),
             group((double)r->handler_calls, b2, sizeof b2), ms(r->setup_ns));
    }
  }
  printf("  (handler calls: per run, over all handlers; setup: fc_run_new + close, median)\n");

  printf("\n  mean cost per handler call = (median with %d - median with 0) / handler calls\n",
         HANDLERS);
  for (int s = 0; s < SHAPE_COUNT; s++) {
    double delta = (double)res[s][1].median_ns - (double)res[s][0].median_ns;
    double calls = (double)res[s][1].handler_calls;
    printf("  %-8s %8.1f ns\n", shape_names[s], calls > 0 ? delta / calls : 0.0);
  }

  double chain5 = per_second(o.nodes, res[SHAPE_CHAIN][1].median_ns);
  int met = chain5 >= GOAL_NODES_PER_S;
  printf("\n  Python baseline (chain, %d handlers): %s nodes/s\n", HANDLERS,
         group(BASELINE_NODES_PER_S, b1, sizeof b1));
  printf("  flowcore        (chain, %d handlers): %s nodes/s = %.1fx the baseline\n", HANDLERS,
         group(chain5, b2, sizeof b2), chain5 / BASELINE_NODES_PER_S);
  printf("  goal: chain with %d handlers >= %s nodes/s: %s\n", HANDLERS,
         group(GOAL_NODES_PER_S, b1, sizeof b1), met ? "met" : "NOT met");
  return o.check && !met ? 1 : 0;
}

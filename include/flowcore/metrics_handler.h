/* flowcore: the metrics handler (the documented MetricsCallback).
 *
 * Counts workflows and nodes by status and errors by severity, and keeps
 * duration statistics for workflows (per workflow name) and for node
 * attempts (per (workflow_name, node_id) key). Memory is bounded whatever
 * the number of runs: no per-run state is kept (durations come from the
 * end events), each key holds a fixed-size log-linear histogram, and the
 * number of distinct keys is capped; observations for keys beyond the cap
 * go to one "(other)" bucket and are counted.
 *
 * Quantiles (p50, p95, p99) are nearest-rank quantiles estimated from the
 * histogram: exact below 32 µs, otherwise within 1/32 (3.125 %) relative
 * error of the exact nearest-rank value, and always within [min, max].
 * Counts, sums, means, min and max are exact (µs resolution).
 *
 * Reports: fc_metrics_report_json (the documented get_report fields plus
 * richer ones) and the Prometheus text exposition format, to a FILE * or
 * atomically to a file (the node_exporter textfile-collector convention).
 *
 * Threading: like every handler, a metrics object is used from the loop
 * thread only (events, reports and queries alike); it has no locks.
 */
#ifndef FLOWCORE_METRICS_HANDLER_H
#define FLOWCORE_METRICS_HANDLER_H

#include <stdio.h>

#include "handler.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fc_metrics_s fc_metrics_t;

/* Most histogram buckets of the Prometheus output (besides +Inf). */
#define FC_METRICS_MAX_BUCKETS 32

typedef struct {
  /* Cap on distinct (workflow_name, node_id) keys; 0 means 1000. Each key
   * costs about 5.4 KB, so the default bounds node statistics to ~5.4 MB. */
  size_t max_node_keys;
  /* Cap on distinct workflow names; 0 means 100. */
  size_t max_workflow_keys;
  /* Metric name prefix, copied; NULL means "flowcore". Must match
   * [a-zA-Z_:][a-zA-Z0-9_:]*. */
  const char *prefix;
  /* Upper bounds (seconds) of the Prometheus histogram buckets, strictly
   * increasing, finite and > 0; copied. NULL means the default 0.001,
   * 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
   * 60, 120, 300, 600, 1800, 3600. At most FC_METRICS_MAX_BUCKETS. */
  const double *buckets;
  size_t bucket_count;
} fc_metrics_options_t;

/* Fills *opts with the defaults: 1000 node keys, 100 workflow keys, prefix
 * "flowcore", the default buckets (a zeroed struct means the same). */
FC_EXTERN void fc_metrics_options_init(fc_metrics_options_t *opts);

/* Creates a metrics object. `opts` may be NULL (defaults) and is not kept.
 * Returns 0 and a new object in *out (free it with fc_metrics_free), or
 * FC_EINVAL (bad option) or FC_ENOMEM. */
FC_EXTERN int fc_metrics_new(fc_metrics_t **out, const fc_metrics_options_t *opts) FC_WARN_UNUSED;

/* Frees the object. NULL ok. Not while a borrowing handler is registered. */
FC_EXTERN void fc_metrics_free(fc_metrics_t *m);

/* Makes a handler feeding m into *out (see "The handler convention" in
 * docs/handlers.md). Borrowed: the handler's destroy does nothing; m must
 * outlive the handler's registration and the caller frees m afterwards.
 * Returns 0 or FC_EINVAL (m or out NULL). */
FC_EXTERN int fc_metrics_handler(fc_metrics_t *m, fc_handler_t *out);

/* The same, but takes ownership of m, even on failure: the handler's
 * destroy (manager removal or free) frees m. The caller may keep using m
 * only while the handler is registered. Returns 0 or FC_EINVAL. */
FC_EXTERN int fc_metrics_handler_owned(fc_metrics_t *m, fc_handler_t *out);

/* Accounts one event (what the handler's callbacks do; handy for events
 * built by hand). `ev` is borrowed. Returns 0, FC_EINVAL or FC_ENOMEM
 * (a new key could not be allocated; the event then goes to "(other)"). */
FC_EXTERN int fc_metrics_observe(fc_metrics_t *m, const fc_event_t *ev);

/* Forgets every counter, key and statistic. */
FC_EXTERN void fc_metrics_reset(fc_metrics_t *m);

/* Counters. What counts as what:
 *  - workflows_started: workflow_start events; workflows_ended[s]:
 *    workflow_end events by fc_workflow_status_t;
 *  - node_attempts: node_start events (the documented "node_count");
 *  - attempts_ended[s]: node_end events of attempts that ran (attempt > 0)
 *    by fc_node_status_t (a retried failure counts once per attempt);
 *  - nodes_final[s]: final node statuses of ended runs, from the
 *    workflow_end's status_counts (every node of a run exactly once,
 *    including skipped and cancelled nodes that never ran);
 *  - errors[sev]: error events by fc_severity_t, errors_total their sum. */
typedef struct {
  uint64_t workflows_started;
  uint64_t workflows_ended[FC_WORKFLOW_STATUS_COUNT]; /* by fc_workflow_status_t */
  uint64_t node_attempts;
  uint64_t attempts_ended[FC_NODE_STATUS_COUNT]; /* by fc_node_status_t */
  uint64_t nodes_final[FC_NODE_STATUS_COUNT]; /* by fc_node_status_t */
  uint64_t errors[FC_SEVERITY_COUNT];         /* by fc_severity_t */
  uint64_t errors_total;
} fc_metrics_counters_t;

FC_EXTERN void fc_metrics_counters(const fc_metrics_t *m, fc_metrics_counters_t *out);

/* Duration statistics in seconds (0 when count is 0). */
typedef struct {
  uint64_t count;
  double sum, mean, min, max;
  double p50, p95, p99; /* estimated, see the top of this header */
} fc_metrics_summary_t;

/* Statistics of node attempts for one key. node_id NULL means the
 * "(other)" bucket (workflow_name is then ignored). Returns 0 or
 * FC_ENOTFOUND (no such key: never seen, or beyond the cap). */
FC_EXTERN int fc_metrics_node_summary(const fc_metrics_t *m, const char *workflow_name,
                                      const char *node_id, fc_metrics_summary_t *out);

/* Statistics of workflow durations for one workflow name, or of all
 * workflows when workflow_name is NULL. Returns 0 or FC_ENOTFOUND. */
FC_EXTERN int fc_metrics_workflow_summary(const fc_metrics_t *m, const char *workflow_name,
                                          fc_metrics_summary_t *out);

/* Key caps and the memory the object holds. */
typedef struct {
  size_t node_keys, max_node_keys;
  size_t workflow_keys, max_workflow_keys;
  uint64_t node_overflow;     /* observations counted under "(other)" */
  uint64_t workflow_overflow; /* workflow ends counted under "(other)" */
  size_t memory_bytes;        /* bytes allocated by the object, all in */
} fc_metrics_info_t;

FC_EXTERN void fc_metrics_info(const fc_metrics_t *m, fc_metrics_info_t *out);

/* The report as JSON. Returns a NEW reference (json_decref it), or NULL on
 * FC_ENOMEM. Durations are in seconds. Fields:
 *   total_workflows       workflows_started
 *   total_nodes           node_attempts (node_start events, as documented)
 *   error_rate            errors_total / max(total_nodes, 1)
 *   avg_workflow_duration mean duration of ended workflows (0 if none)
 *   slowest_nodes         top 5 keys by mean attempt duration:
 *                         [[node_id, mean_seconds], ...], slowest first
 *   workflows   {"started","running","completed","failed","cancelled"}
 *   nodes       {"attempts", "attempts_by_status": {...}, "final": {...}}
 *   errors      {"total","info","warning","error","critical"}
 *   last_error  {"type","message","severity","workflow_id","workflow_name",
 *                "node_id","attempt","occurred_at_us"} or null
 *   workflow_duration  summary of all workflows
 *   workflow_stats     [{"workflow", "completed", "failed", "cancelled",
 *                        + summary}], by name
 *   node_stats         [{"workflow","node","failed" + summary}] by key,
 *                      sorted by workflow then node
 *   other              summary of the "(other)" node bucket
 *   keys        {"node_keys","max_node_keys","node_overflow",
 *                "workflow_keys","max_workflow_keys","workflow_overflow"}
 * where a summary is {"count","sum","mean","min","p50","p95","p99","max"}.
 */
FC_EXTERN json_t *fc_metrics_report_json(const fc_metrics_t *m) FC_WARN_UNUSED;

/* Writes every metric in the Prometheus text exposition format (0.0.4):
 * counters <prefix>_workflows_started_total, _workflows_ended_total{status},
 * _node_attempts_started_total, _node_attempts_total{status},
 * _nodes_total{status}, _errors_total{severity},
 * _metrics_overflow_total{kind}; gauges _workflows_running,
 * _metrics_node_keys, _metrics_workflow_keys, and per workflow name
 * (not "(other)") the batch-job gauges _last_run_timestamp_seconds,
 * _last_success_timestamp_seconds (only once a run completed),
 * _last_run_duration_seconds and _last_run_status (1 completed, 0 failed
 * or cancelled), of the run with the latest workflow_end time_us
 * (timestamps in seconds since the epoch, exact to the µs); histograms
 * _workflow_duration_seconds{workflow} and
 * _node_duration_seconds{workflow,node} (the "(other)" bucket has
 * workflow="(other)",node="(other)"). `out` is borrowed. Returns 0,
 * FC_EINVAL or UV_EIO (a write failed). */
FC_EXTERN int fc_metrics_write_prometheus(const fc_metrics_t *m, FILE *out);

/* Writes the same text ATOMICALLY to `path`, except that the
 * _last_success_timestamp_seconds of the file being replaced is kept for a
 * workflow m has seen when it is newer than m's own (a batch run that
 * failed keeps the previous run's success time): into a temporary file
 * ".<name>.tmp.XXXXXX" in the same directory (not matching *.prom), then
 * fsync, chmod 0644, rename over `path`, fsync of the directory. Readers
 * see the old file or the complete new one, never a part; no temporary file
 * is left behind, even on failure. Returns 0, FC_EINVAL or a libuv error
 * code (negative errno, e.g. UV_EACCES, UV_ENOENT, UV_EIO). */
FC_EXTERN int fc_metrics_write_prometheus_file(const fc_metrics_t *m, const char *path);

#ifdef __cplusplus
}
#endif
#endif

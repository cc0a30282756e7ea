/* flowcore: the engine. Runs a validated workflow on a libuv loop.
 *
 * Lifecycle (libuv style): fc_run_new -> fc_run_start -> done_cb ->
 * fc_run_close -> close_cb, after which the memory is gone. All calls and
 * callbacks happen on the loop's thread. Events go to the manager given at
 * fc_run_new (borrowed: it must outlive the run).
 *
 * Order of events: workflow_start first; for each attempt node_start, then
 * (on failure or timeout) error, then node_end; a node that never ran gets a
 * single node_end (status skipped or cancelled, attempt 0); workflow_end
 * last, after every node event.
 */
#ifndef FLOWCORE_RUN_H
#define FLOWCORE_RUN_H

#include <uv.h>

#include "handler.h"
#include "workflow.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fc_run_s fc_run_t;

typedef void (*fc_run_done_cb)(fc_run_t *run, void *data);
typedef void (*fc_run_close_cb)(fc_run_t *run, void *data);

/* Creates a run of `wf` on `loop`. Validates wf if it is not yet validated
 * (details in *err, may be NULL). `manager` may be NULL (no events).
 * Returns 0 and a new run in *out, or an error code. */
FC_EXTERN int fc_run_new(fc_run_t **out, uv_loop_t *loop, fc_workflow_t *wf,
                         fc_manager_t *manager, fc_error_t *err) FC_WARN_UNUSED;

/* Overrides the workflow's max_parallel for this run (before start). */
FC_EXTERN int fc_run_set_max_parallel(fc_run_t *run, int max_parallel);

/* Whether the run keeps the output of every completed node until it is
 * closed, for fc_run_node_output (keep = 1, the default). With keep = 0 a
 * node's output is released as soon as every successor of the node has
 * its final status, and fc_run_node_output returns NULL for it from then
 * on; the outputs of nodes without successors (the workflow's output)
 * are kept. A handler that needs an output longer takes a reference in
 * its node_end. Memory then follows the nodes still in flight, not the
 * size of the workflow. Before start: 0, FC_ESTATE or FC_EINVAL. */
FC_EXTERN int fc_run_set_keep_outputs(fc_run_t *run, int keep);

/* Starts the run: assigns its UUIDv7, emits workflow_start, and schedules
 * the ready nodes from the loop (nothing runs inside this call). `input` is
 * borrowed (the run takes its own reference; NULL means {}). done_cb is
 * called once, on the loop, after workflow_end. Returns 0, FC_ESTATE (already
 * started) or FC_EINVAL. */
FC_EXTERN int fc_run_start(fc_run_t *run, json_t *input, fc_run_done_cb done_cb,
                           void *data);

/* Cancels a running run: running attempts end `cancelled` and are told to
 * stop (their stop callbacks), nodes not yet started end `cancelled`, the
 * workflow ends `cancelled`. Returns 0 or FC_ESTATE if not running. */
FC_EXTERN int fc_run_cancel(fc_run_t *run);

/* Closes the run. If it is still running it is cancelled first (done_cb
 * still fires). close_cb (may be NULL) is called on the loop once every
 * internal handle is closed and every attempt has called its completion;
 * the run is freed right after it returns. Must be called exactly once. */
FC_EXTERN void fc_run_close(fc_run_t *run, fc_run_close_cb close_cb, void *data);

/* Accessors. Strings and JSON are borrowed, valid until close. */
FC_EXTERN fc_workflow_status_t fc_run_status(const fc_run_t *run);
FC_EXTERN const char *fc_run_id(const fc_run_t *run); /* "" before start */
FC_EXTERN json_t *fc_run_output(const fc_run_t *run); /* NULL until the end */
FC_EXTERN const fc_workflow_t *fc_run_workflow(const fc_run_t *run);
/* Final status of a node by definition index (FC_NODE_PENDING while open). */
FC_EXTERN fc_node_status_t fc_run_node_status(const fc_run_t *run, size_t index);
/* Attempts made for a node by definition index. */
FC_EXTERN int fc_run_node_attempts(const fc_run_t *run, size_t index);
/* The output of a completed node by index (borrowed, read-only: it may be
 * shared with other nodes and runs), else NULL (also once released, see
 * fc_run_set_keep_outputs). A `set` node of a file loaded with
 * FC_LOAD_LAZY_CONSTANTS has its output made by the first reader, which
 * may be this call: then NULL also when out of memory. From the loop's
 * thread, as every call on a run. */
FC_EXTERN json_t *fc_run_node_output(const fc_run_t *run, size_t index);
FC_EXTERN int fc_run_error_count(const fc_run_t *run);
/* Most nodes that were running at the same instant during the run. */
FC_EXTERN int fc_run_peak_parallel(const fc_run_t *run);

/* Convenience: runs wf to completion on a private loop.
 * On return *result holds the status, the workflow id and a new reference to
 * the output (release with fc_run_result_clear). Returns 0 when the run
 * happened (whatever its status), else an error code (details in *err). */
typedef struct {
  fc_workflow_status_t status;
  char workflow_id[FC_UUID_STRING_LENGTH];
  json_t *output; /* new reference or NULL */
  int status_counts[FC_NODE_STATUS_COUNT]; /* by fc_node_status_t */
  int error_count;
} fc_run_result_t;
FC_EXTERN int fc_workflow_run(fc_workflow_t *wf, json_t *input,
                              fc_manager_t *manager, fc_run_result_t *result,
                              fc_error_t *err);
FC_EXTERN void fc_run_result_clear(fc_run_result_t *result);

/* ---- inside a node function ---------------------------------------------- */

/* Accessors of the running attempt (borrowed, valid until its completion).
 * The input is read-only (other nodes may share it); it is NULL for the
 * built-in types that never read it (set, sleep, fail). */
FC_EXTERN json_t *fc_node_ctx_input(const fc_node_ctx_t *ctx);
FC_EXTERN const char *fc_node_ctx_workflow_id(const fc_node_ctx_t *ctx);
FC_EXTERN const char *fc_node_ctx_node_id(const fc_node_ctx_t *ctx);
FC_EXTERN const fc_node_t *fc_node_ctx_node(const fc_node_ctx_t *ctx);
FC_EXTERN int fc_node_ctx_attempt(const fc_node_ctx_t *ctx);
FC_EXTERN void *fc_node_ctx_user_data(const fc_node_ctx_t *ctx);
FC_EXTERN uv_loop_t *fc_node_ctx_loop(const fc_node_ctx_t *ctx);

/* Why an attempt is told to stop. */
typedef void (*fc_node_stop_cb)(fc_node_ctx_t *ctx, fc_node_status_t reason,
                                void *data);
/* Registers the callback the engine calls (on the loop) when the attempt
 * times out or the run is cancelled; reason is FC_NODE_TIMED_OUT or
 * FC_NODE_CANCELLED. The node must still call its completion afterwards
 * (the result is then ignored); that frees the context. */
FC_EXTERN void fc_node_ctx_on_stop(fc_node_ctx_t *ctx, fc_node_stop_cb cb,
                                   void *data);
/* 0 while the attempt counts, else FC_NODE_TIMED_OUT or FC_NODE_CANCELLED. */
FC_EXTERN fc_node_status_t fc_node_ctx_stopped(const fc_node_ctx_t *ctx);

/* Completes the attempt successfully. Takes ownership of `output` (NULL
 * means JSON null), even when the attempt was already stopped. The context
 * is invalid after this call. */
FC_EXTERN void fc_node_succeed(fc_node_ctx_t *ctx, json_t *output);

/* Completes the attempt as failed. `info` is copied (type and message are
 * required; node_id, attempt and occurred_at are filled in by the engine).
 * The context is invalid after this call. */
FC_EXTERN void fc_node_fail(fc_node_ctx_t *ctx, const fc_error_info_t *info);

/* Shorthand for fc_node_fail with a formatted message. */
FC_EXTERN void fc_node_failf(fc_node_ctx_t *ctx, fc_severity_t severity,
                             const char *type, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Runs work(ctx, data) on the libuv thread pool, then after(ctx, data) on
 * the loop thread; `after` must complete the attempt. `work` must not call
 * any fc_ function except fc_node_ctx_input/_user_data (read-only). Returns
 * 0 or a libuv error (then neither callback runs). */
typedef void (*fc_node_work_cb)(fc_node_ctx_t *ctx, void *data);
FC_EXTERN int fc_node_queue_work(fc_node_ctx_t *ctx, fc_node_work_cb work,
                                 fc_node_work_cb after, void *data);

#ifdef __cplusplus
}
#endif
#endif

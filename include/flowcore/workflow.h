/* flowcore: workflow definitions.
 *
 * A workflow is a name and nodes. Build it with fc_workflow_new() and
 * fc_workflow_add_node() plus the fc_node_set_* calls, then validate it with
 * fc_workflow_validate(): unique ids, known dependencies and route targets,
 * no cycles (the error names the nodes of the cycle), valid names. After a
 * successful validation the workflow is immutable and may be run any number
 * of times, concurrently, on one loop. Errors of the builder calls are only
 * FC_EINVAL, FC_ENOMEM and FC_EFROZEN; everything that depends on the whole
 * graph is reported by fc_workflow_validate().
 *
 * Names: workflow and node ids are 1..128 bytes of [A-Za-z0-9_.:-]
 * (workflow names may also contain spaces, up to 200 bytes).
 */
#ifndef FLOWCORE_WORKFLOW_H
#define FLOWCORE_WORKFLOW_H

#include "event.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FC_NAME_MAX 128
#define FC_WORKFLOW_NAME_MAX 200

typedef struct fc_workflow_s fc_workflow_t;
typedef struct fc_node_s fc_node_t;     /* a node of a definition */
typedef struct fc_node_ctx_s fc_node_ctx_t; /* one running attempt */

/* A node function. It runs on the loop thread and finishes the attempt by
 * calling exactly one of fc_node_succeed / fc_node_fail* (at once, or later
 * from the loop thread), or by handing blocking work to fc_node_queue_work.
 * `user_data` is the pointer given to fc_workflow_add_node (borrowed). */
typedef void (*fc_node_fn)(fc_node_ctx_t *ctx, void *user_data);

/* Creates an empty workflow. `name` is copied. Returns 0, FC_EINVAL (NULL
 * name) or FC_ENOMEM. The name is checked by fc_workflow_validate. */
FC_EXTERN int fc_workflow_new(fc_workflow_t **out, const char *name) FC_WARN_UNUSED;

/* Frees a workflow and its nodes. It must not be used by any run. NULL ok. */
FC_EXTERN void fc_workflow_free(fc_workflow_t *wf);

/* Adds a node with its function and user data (borrowed: it must outlive
 * every run). `id` is copied. On success *node_out (if not NULL) receives a
 * handle, borrowed, valid as long as the workflow. Returns 0, FC_EINVAL,
 * FC_ENOMEM or FC_EFROZEN. */
FC_EXTERN int fc_workflow_add_node(fc_workflow_t *wf, const char *id,
                                   fc_node_fn fn, void *user_data,
                                   fc_node_t **node_out);

/* At most this many nodes of one run run at once (default 0: unlimited). */
FC_EXTERN int fc_workflow_set_max_parallel(fc_workflow_t *wf, int max_parallel);

/* Node settings. Strings are copied. Each returns 0, FC_EINVAL, FC_ENOMEM or
 * FC_EFROZEN. */
/* The node's declared type, reported in events (e.g. "exec"). Default "". */
FC_EXTERN int fc_node_set_type(fc_node_t *n, const char *type);
/* Adds a dependency: this node runs after `dep_id` completed. */
FC_EXTERN int fc_node_add_dep(fc_node_t *n, const char *dep_id);
/* Adds `target_id` to the route named `route`. When this node completes, the
 * `route` string field of its output chooses a route; targets of the other
 * routes are skipped (and so is every node that then can no longer run).
 * A route target implicitly depends on this node. If the output names no
 * declared route, the route "default" is chosen when declared; otherwise the
 * attempt fails with an error of type "route_error". */
FC_EXTERN int fc_node_add_route(fc_node_t *n, const char *route,
                                const char *target_id);
/* Extra attempts after a failure or timeout (default 0), and the backoff
 * before retry k (1-based): min(base_ms * 2^(k-1), max_ms), with up to 10 %
 * jitter removed. base_ms 0 retries at once. */
FC_EXTERN int fc_node_set_retries(fc_node_t *n, int retries, uint64_t base_ms,
                                  uint64_t max_ms);
/* Per-attempt timeout (0 = none). A timed-out attempt ends `timed_out`; the
 * node's stop callback (fc_node_ctx_on_stop) is called. */
FC_EXTERN int fc_node_set_timeout(fc_node_t *n, uint64_t timeout_ms);

/* Makes the workflow own the node's user data: fc_workflow_free calls
 * free_fn(user_data) (also when the add failed later in validation). */
FC_EXTERN int fc_node_set_data_free(fc_node_t *n, void (*free_fn)(void *));

/* Validates and freezes the workflow. Returns 0, or an error code (FC_EDUPLICATE,
 * FC_EUNKNOWNDEP, FC_ECYCLE, FC_EBADNAME, FC_ENOFN, FC_EDEFINITION) with
 * details in *err (may be NULL) naming the node. Validating a frozen
 * workflow returns 0 at once. */
FC_EXTERN int fc_workflow_validate(fc_workflow_t *wf, fc_error_t *err);

/* Accessors (borrowed). */
FC_EXTERN const char *fc_workflow_name(const fc_workflow_t *wf);
FC_EXTERN size_t fc_workflow_node_count(const fc_workflow_t *wf);
FC_EXTERN int fc_workflow_max_parallel(const fc_workflow_t *wf);
/* The node at `index` (order of adding), or NULL. */
FC_EXTERN fc_node_t *fc_workflow_node_at(const fc_workflow_t *wf, size_t index);
/* The first node added with this id, or NULL (a hash table lookup). */
FC_EXTERN fc_node_t *fc_workflow_find_node(const fc_workflow_t *wf, const char *id);
FC_EXTERN const char *fc_node_id(const fc_node_t *n);
FC_EXTERN const char *fc_node_type(const fc_node_t *n);

#ifdef __cplusplus
}
#endif
#endif

/* Shared by the built-in node types (src/nodes/). Internal. */
#ifndef FLOWCORE_NODES_INT_H
#define FLOWCORE_NODES_INT_H

#include "internal.h"

/* fc__nodes_add's flags. */
enum {
  /* fn never reads its input (fc_node_ctx_input): the engine builds one
   * only when a handler listens to node_start, which shows it. */
  FC__NODE_NO_INPUT = 1,
  /* fn always ends the attempt before it returns, on the loop's thread:
   * an attempt that no handler of node_start or node_end can see is not
   * timed (src/run.c, start_attempt). */
  FC__NODE_SYNC = 2
};

/* Adds a node running fn(ctx, data), of declared type `type` (a string with
 * static storage, kept as is), and makes the
 * workflow own `data` (free_fn, may be NULL). On any failure before the node
 * exists, free_fn(data) is called here: the caller never cleans up `data`.
 * Returns 0, FC_EINVAL, FC_ENOMEM or FC_EFROZEN. */
int fc__nodes_add(fc_workflow_t *wf, const char *id, const char *type, unsigned flags,
                  fc_node_fn fn, void *data, void (*free_fn)(void *), fc_node_t **node_out);

/* ---- outputs made when first read (src/run.c) ------------------------------ */

/* Ends the attempt in success like fc_node_succeed, with an output the
 * engine makes only when something reads it: a successor's input, a
 * node_end handler, the workflow's output, fc_run_node_output. When a
 * node_end handler listens or the node has routes, it is made here and
 * now. An output that is never read is never made: a chain of `set` nodes
 * run without handlers makes only its last one. Out of memory making it
 * fails the attempt (here) or the reader (later), as any allocation. */
void fc__node_succeed_deferred(fc_node_ctx_t *ctx);

/* The output of `node`, which ended its attempt with
 * fc__node_succeed_deferred: a new reference, or NULL when out of memory.
 * The node types that defer define it (src/nodes/set.c: a `set` node
 * whose constant is JSON text; for any `set` node, its constant). */
json_t *fc__node_deferred_output(const fc_node_t *node);

#endif

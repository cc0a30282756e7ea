/* Shared by the built-in node types (src/nodes/). Internal. */
#ifndef FLOWCORE_NODES_INT_H
#define FLOWCORE_NODES_INT_H

#include "internal.h"

/* fc__nodes_add's flags. */
enum {
  /* fn never reads its input (fc_node_ctx_input): the engine builds one
   * only when a handler listens to node_start, which shows it. */
  FC__NODE_NO_INPUT = 1
};

/* Adds a node running fn(ctx, data), of declared type `type` (a string with
 * static storage, kept as is), and makes the
 * workflow own `data` (free_fn, may be NULL). On any failure before the node
 * exists, free_fn(data) is called here: the caller never cleans up `data`.
 * Returns 0, FC_EINVAL, FC_ENOMEM or FC_EFROZEN. */
int fc__nodes_add(fc_workflow_t *wf, const char *id, const char *type, unsigned flags,
                  fc_node_fn fn, void *data, void (*free_fn)(void *), fc_node_t **node_out);

#endif

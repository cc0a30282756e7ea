/* The pass node: its output is its input object itself. Completes its
 * attempt at once, on the loop thread. No fields of its own. */
#include "node_type.h"
#include "nodes_int.h"

static void pass_fn(fc_node_ctx_t *ctx, void *data) {
  (void)data;
  fc_node_succeed(ctx, json_incref(fc_node_ctx_input(ctx)));
}

int fc_workflow_add_pass_node(fc_workflow_t *wf, const char *id, fc_node_t **node_out) {
  return fc__nodes_add(wf, id, "pass", FC__NODE_SYNC, pass_fn, NULL, NULL, node_out);
}

/* ---- in a workflow file --------------------------------------------------- */

static int pass_add(fc_workflow_t *wf, const char *id, json_t *node, fc_node_t **node_out) {
  (void)node;
  return fc_workflow_add_pass_node(wf, id, node_out);
}

const fc__node_type_t fc__node_type_pass = {.name = "pass", .add = pass_add};

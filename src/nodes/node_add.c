/* Adding a built-in node: what every type's fc_workflow_add_<type>_node
 * does once its configuration is made (see nodes_int.h). */
#include "nodes_int.h"
#include "workflow_int.h"

int fc__nodes_add(fc_workflow_t *wf, const char *id, const char *type, unsigned flags,
                  fc_node_fn fn, void *data, void (*free_fn)(void *), fc_node_t **node_out) {
  fc_node_t *node = NULL;
  int rc;
  if (node_out != NULL)
    *node_out = NULL;
  rc = fc_workflow_add_node(wf, id, fn, data, &node);
  if (rc != 0) {
    if (free_fn != NULL)
      free_fn(data);
    return rc;
  }
  /* From here on the workflow owns data, whatever happens. */
  if (free_fn != NULL)
    (void)fc_node_set_data_free(node, free_fn); /* cannot fail: node exists, not frozen */
  node->type = type; /* static: no copy per node */
  node->no_input = (flags & FC__NODE_NO_INPUT) != 0;
  node->sync = (flags & FC__NODE_SYNC) != 0;
  if (node_out != NULL)
    *node_out = node;
  return 0;
}

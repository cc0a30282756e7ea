/* The node types of workflow files: one line each (see node_type.h). The
 * order is the order in which messages list them. */
#include "node_type.h"

#define FC__NODE_TYPES(X)                                                                          \
  X(exec)                                                                                          \
  X(sleep)                                                                                         \
  X(pass)                                                                                          \
  X(set)                                                                                           \
  X(fail)

#define FC__NODE_TYPE_DECLARE(name) extern const fc__node_type_t fc__node_type_##name;
#define FC__NODE_TYPE_ENTRY(name) &fc__node_type_##name,

FC__NODE_TYPES(FC__NODE_TYPE_DECLARE)

const fc__node_type_t *const fc__node_types[] = {FC__NODE_TYPES(FC__NODE_TYPE_ENTRY)};
const size_t fc__node_type_count = FC__ARRAY_SIZE(fc__node_types);

const fc__node_type_t *fc__node_type_find(const char *name) {
  size_t i;
  for (i = 0; i < FC__ARRAY_SIZE(fc__node_types); i++)
    if (fc__streq(fc__node_types[i]->name, name))
      return fc__node_types[i];
  return NULL;
}

/* Node types as the workflow-file loader sees them. Internal.
 *
 * A node type is one file under src/nodes/ that defines
 *   const fc__node_type_t fc__node_type_<name> = {...};
 * (its name, its own fields, how it checks them and how it adds a node),
 * and one line of the table in src/nodes/registry.c. The loader
 * (src/loader.c) checks what every node has (id, type, description, after,
 * routes, retries, retry_backoff_ms, retry_backoff_max_ms, timeout_ms),
 * looks the type up in the table, and lets the type do the rest. A type
 * reports its errors through the fc__load_* calls below, which src/loader.c
 * implements, so every message has the loader's form and JSON path. */
#ifndef FLOWCORE_NODE_TYPE_H
#define FLOWCORE_NODE_TYPE_H

#include <stdatomic.h>
#include "internal.h"

#if defined(__GNUC__)
#define FC__LOAD_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define FC__LOAD_PRINTF(f, a)
#endif

/* The node being loaded: its index in "nodes", its id (when valid) and
 * the loader it reports to. Defined in src/loader.c; lives on the
 * loader's stack while one node is checked. */
typedef struct fc__load_node fc__load_node_t;

typedef struct {
  /* The value of "type" in a file, and the name the node declares at run
   * time (fc_node_type). */
  const char *name;
  /* The fields this type adds to the common ones, NULL-terminated; NULL
   * when it adds none. Another type's field on a node of this type is an
   * error that names the type the field belongs to. */
  const char *const *fields;
  /* Checks the type's fields of `node` (a JSON object), reporting each
   * error with fc__load_error(); a missing required field is an error
   * without a sub-path. NULL when there is nothing to check. */
  void (*check)(fc__load_node_t *N, json_t *node);
  /* Adds the node `id` to wf from `node`, which passed check() without an
   * error (the node's data is the type's own copy: `node` is borrowed).
   * Returns what fc_workflow_add_<type>_node returns; *node_out is the
   * node on success. */
  int (*add)(fc_workflow_t *wf, const char *id, json_t *node, fc_node_t **node_out);
  /* Like add, when the loader owns the tree and frees `node` right after:
   * the type may keep references to node's values instead of copies (the
   * tree is nobody else's, so nothing changes them), or their text
   * (fc__load_field_text). NULL: add is used. */
  int (*add_owned)(fc__load_node_t *N, fc_workflow_t *wf, const char *id, json_t *node,
                   fc_node_t **node_out);
} fc__node_type_t;

/* ---- the table (src/nodes/registry.c) ----------------------------------- */

/* Every type, in the order messages list them ("exec, sleep, ..."). */
extern const fc__node_type_t *const fc__node_types[];
extern const size_t fc__node_type_count;

/* The type called `name`, or NULL. */
const fc__node_type_t *fc__node_type_find(const char *name);

/* ---- reporting, for check() (src/loader.c) ------------------------------ */

/* Records the node's error "nodes[i].<sub> (id "x"): <message>" at the
 * path "nodes[i].<sub>" ("nodes[i]" when sub is NULL). */
void fc__load_error(fc__load_node_t *N, int code, const char *sub, const char *fmt, ...)
    FC__LOAD_PRINTF(4, 5);

/* node[key], when present, must be an integer from min to max: then *out
 * is set and 1 returned; otherwise an error at `key` and 0. Absent: 0,
 * no error. */
int fc__load_uint(fc__load_node_t *N, json_t *node, const char *key, uint64_t min, uint64_t max,
                  uint64_t *out);

/* v must be a string without NUL (non_empty: and not ""); otherwise an
 * error at `sub`. Returns 1 if it is. */
int fc__load_string(fc__load_node_t *N, json_t *v, const char *sub, int non_empty);

/* The text of the node's field `key` as the file wrote it (*len bytes,
 * not NUL-terminated, valid JSON: jansson parsed it with the node), when
 * the node was parsed alone from a file's text, the loader's usual way;
 * NULL otherwise (a tree given to fc_workflow_load_json, a file loaded
 * whole after an error) or when the key is written with an escape. The
 * text lives until the load returns: keep a copy. */
const char *fc__load_field_text(const fc__load_node_t *N, const char *key, size_t *len);

/* s as it may appear in a message: at most `max` bytes of printable ASCII
 * ('?' for any other byte), "..." when longer; written to buf (size > 4). */
const char *fc__load_show(char *buf, size_t size, const char *s, size_t max);

/* Text after "[" of "nodes" from which the loader uses a second thread
 * (512 KiB; src/loader.c). Tests and the fuzzer set it to 0 to split every
 * file, or SIZE_MAX to never split, before they load. */
extern size_t fc__load_split_min;
/* Parts appended so far (a load that then has to start again counts too). */
extern atomic_size_t fc__load_parts_merged;

#endif

/* The set node: its output is a constant ("output"). Completes its
 * attempt at once, on the loop thread. */
#include "node_type.h"
#include "nodes_int.h"
#include "workflow_int.h"

/* A copy of the constant for one attempt (a new reference, NULL when out
 * of memory). The constant is a tree: parsed from a file, or deep-copied
 * by jansson when it was added, and jansson refuses loops. So this copy
 * skips the loop check of json_deep_copy, which in jansson 2.14 formats
 * the address of each object and array it enters with snprintf into a
 * table: most of the cost of copying a small object, and a node of a big
 * chain of `set` nodes spent more time there than in the engine. */
static json_t *copy_tree(json_t *v) {
  json_t *copy, *m;
  size_t i;
  void *it;
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    if ((copy = json_object()) == NULL)
      return NULL;
    for (it = json_object_iter(v); it != NULL; it = json_object_iter_next(v, it))
      if (json_object_setn_new_nocheck(copy, json_object_iter_key(it), json_object_iter_key_len(it),
                                       copy_tree(json_object_iter_value(it))) != 0) {
        json_decref(copy);
        return NULL;
      }
    return copy;
  case JSON_ARRAY:
    if ((copy = json_array()) == NULL)
      return NULL;
    json_array_foreach (v, i, m)
      if (json_array_append_new(copy, copy_tree(m)) != 0) {
        json_decref(copy);
        return NULL;
      }
    return copy;
  case JSON_STRING:
    return json_stringn_nocheck(json_string_value(v), json_string_length(v));
  case JSON_INTEGER:
    return json_integer(json_integer_value(v));
  case JSON_REAL:
    return json_real(json_real_value(v));
  default: /* true, false, null: jansson's singletons */
    return json_incref(v);
  }
}

/* A node with successors hands them the constant itself: they, and the
 * handlers that see it, only read it (payloads are read-only, as the
 * shared inputs already are). A sink's output goes into the workflow's
 * output, which its caller owns and may change: that one is a copy. */
static void set_fn(fc_node_ctx_t *ctx, void *data) {
  json_t *copy = fc_node_ctx_node(ctx)->nout > 0 ? json_incref((json_t *)data)
                                                 : copy_tree((json_t *)data);
  if (copy == NULL) {
    fc_node_failf(ctx, FC_SEVERITY_ERROR, "node_error", "out of memory copying the output");
    return;
  }
  fc_node_succeed(ctx, copy);
}

static void set_free(void *data) { json_decref((json_t *)data); }

int fc_workflow_add_set_node(fc_workflow_t *wf, const char *id, json_t *output,
                             fc_node_t **node_out) {
  json_t *constant;
  if (node_out != NULL)
    *node_out = NULL;
  if (wf == NULL || id == NULL)
    return FC_EINVAL;
  constant = output != NULL ? json_deep_copy(output) : json_null();
  if (constant == NULL)
    return FC_ENOMEM;
  return fc__nodes_add(wf, id, "set", FC__NODE_NO_INPUT | FC__NODE_SYNC, set_fn, constant,
                       set_free, node_out);
}

/* ---- in a workflow file --------------------------------------------------- */

static const char *const set_fields[] = {"output", NULL};

static void set_check(fc__load_node_t *N, json_t *node) {
  if (json_object_get(node, "output") == NULL)
    fc__load_error(N, FC_EDEFINITION, NULL, "missing required field \"output\"");
}

static int set_add(fc_workflow_t *wf, const char *id, json_t *node, fc_node_t **node_out) {
  return fc_workflow_add_set_node(wf, id, json_object_get(node, "output"), node_out);
}

/* ---- a constant kept as text ----
 * A node of a file keeps its constant as the JSON text the file wrote,
 * in the workflow's slabs (fc__workflow_alloc: no malloc, nothing to
 * free), and the engine parses it only when something reads the output
 * (fc__node_succeed_deferred). A big file's `set` nodes keep a few bytes
 * each instead of jansson's values (`{"n":1}` is 296 bytes of them), and
 * a run that reads no output, as a chain of them run without handlers,
 * parses none of them again. */
typedef struct {
  uint32_t len;
  char text[];
} set_text_t;

static void set_text_fn(fc_node_ctx_t *ctx, void *data) {
  (void)data;
  fc__node_succeed_deferred(ctx);
}

/* set_text_fn's nodes are the only ones that defer their output. The
 * text parsed with the node, with the same flags (JSON_REJECT_DUPLICATES
 * found none then), so this makes the same value, or fails for memory.
 * A set node that keeps its value gives that value (the fuzzer compares
 * the two kinds); any other node, NULL. */
json_t *fc__node_deferred_output(const fc_node_t *node) {
  json_error_t jerr;
  if (node->fn == set_text_fn) {
    const set_text_t *c = node->user_data;
    return json_loadb(c->text, c->len, JSON_DECODE_ANY, &jerr);
  }
  return node->fn == set_fn ? json_incref((json_t *)node->user_data) : NULL;
}

/* The loader's own tree: the constant's text when the loader has it,
 * else the value itself, by reference (not copied). */
static int set_add_owned(fc__load_node_t *N, fc_workflow_t *wf, const char *id, json_t *node,
                         fc_node_t **node_out) {
  size_t len;
  const char *text = fc__load_field_text(N, "output", &len);
  if (text != NULL) {
    set_text_t *c = fc__workflow_alloc(wf, sizeof *c + len);
    if (c == NULL)
      return FC_ENOMEM;
    c->len = (uint32_t)len; /* < FC_LOAD_MAX_FILE_BYTES */
    memcpy(c->text, text, len);
    return fc__nodes_add(wf, id, "set", FC__NODE_NO_INPUT | FC__NODE_SYNC, set_text_fn, c, NULL,
                         node_out);
  }
  return fc__nodes_add(wf, id, "set", FC__NODE_NO_INPUT | FC__NODE_SYNC, set_fn,
                       json_incref(json_object_get(node, "output")), set_free, node_out);
}

const fc__node_type_t fc__node_type_set = {.name = "set",
                                           .fields = set_fields,
                                           .check = set_check,
                                           .add = set_add,
                                           .add_owned = set_add_owned};

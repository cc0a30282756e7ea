/* The simple built-in node types: pass, set, fail. Each completes its
 * attempt at once, on the loop thread. */
#include "nodes_int.h"

int fc__nodes_add(fc_workflow_t *wf, const char *id, const char *type, fc_node_fn fn, void *data,
                  void (*free_fn)(void *), fc_node_t **node_out) {
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
  rc = fc_node_set_type(node, type);
  if (node_out != NULL)
    *node_out = node;
  return rc;
}

/* ---- pass -------------------------------------------------------------------- */

static void pass_fn(fc_node_ctx_t *ctx, void *data) {
  (void)data;
  fc_node_succeed(ctx, json_incref(fc_node_ctx_input(ctx)));
}

int fc_workflow_add_pass_node(fc_workflow_t *wf, const char *id, fc_node_t **node_out) {
  return fc__nodes_add(wf, id, "pass", pass_fn, NULL, NULL, node_out);
}

/* ---- set --------------------------------------------------------------------- */

static void set_fn(fc_node_ctx_t *ctx, void *data) {
  json_t *copy = json_deep_copy((json_t *)data);
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
  return fc__nodes_add(wf, id, "set", set_fn, constant, set_free, node_out);
}

/* ---- fail -------------------------------------------------------------------- */

typedef struct {
  char *message;
  char *error_type;
  fc_severity_t severity;
} fail_cfg;

static void fail_fn(fc_node_ctx_t *ctx, void *data) {
  const fail_cfg *cfg = data;
  fc_error_info_t info;
  memset(&info, 0, sizeof info);
  info.type = cfg->error_type;
  info.message = cfg->message;
  info.severity = cfg->severity;
  fc_node_fail(ctx, &info);
}

static void fail_free(void *data) {
  fail_cfg *cfg = data;
  if (cfg == NULL)
    return;
  fc__free(cfg->message);
  fc__free(cfg->error_type);
  fc__free(cfg);
}

int fc_workflow_add_fail_node(fc_workflow_t *wf, const char *id, const char *message,
                              fc_severity_t severity, const char *error_type,
                              fc_node_t **node_out) {
  fail_cfg *cfg;
  if (node_out != NULL)
    *node_out = NULL;
  if (wf == NULL || id == NULL || message == NULL || message[0] == '\0' ||
      (error_type != NULL && error_type[0] == '\0') || (int)severity < FC_SEVERITY_INFO ||
      (int)severity > FC_SEVERITY_CRITICAL)
    return FC_EINVAL;
  cfg = fc__calloc(1, sizeof *cfg);
  if (cfg == NULL)
    return FC_ENOMEM;
  cfg->message = fc__strdup(message);
  cfg->error_type = fc__strdup(error_type != NULL ? error_type : "fail");
  cfg->severity = severity;
  if (cfg->message == NULL || cfg->error_type == NULL) {
    fail_free(cfg);
    return FC_ENOMEM;
  }
  return fc__nodes_add(wf, id, "fail", fail_fn, cfg, fail_free, node_out);
}

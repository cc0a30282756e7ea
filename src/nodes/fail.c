/* The fail node: every attempt fails with the configured error ("message",
 * "severity", "error_type"). Completes its attempt at once, on the loop
 * thread. */
#include "nodes_int.h"

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

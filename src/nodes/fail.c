/* The fail node: every attempt fails with the configured error ("message",
 * "severity", "error_type"). Completes its attempt at once, on the loop
 * thread. */
#include "node_type.h"
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
  return fc__nodes_add(wf, id, "fail", FC__NODE_NO_INPUT | FC__NODE_SYNC, fail_fn, cfg, fail_free,
                       node_out);
}

/* ---- in a workflow file --------------------------------------------------- */

static const char *const fail_fields[] = {"message", "severity", "error_type", NULL};

static void fail_check(fc__load_node_t *N, json_t *node) {
  fc_severity_t sev;
  json_t *v;
  if ((v = json_object_get(node, "message")) == NULL)
    fc__load_error(N, FC_EDEFINITION, NULL, "missing required field \"message\"");
  else
    fc__load_string(N, v, "message", 1);
  if ((v = json_object_get(node, "severity")) != NULL) {
    if (!json_is_string(v) || fc_severity_parse(json_string_value(v), &sev) != 0) {
      char shown[80];
      fc__load_error(
          N, FC_EDEFINITION, "severity",
          "expected \"info\", \"warning\", \"error\" or \"critical\"%s%s%s",
          json_is_string(v) ? ", got \"" : "",
          json_is_string(v) ? fc__load_show(shown, sizeof shown, json_string_value(v), 32) : "",
          json_is_string(v) ? "\"" : "");
    }
  }
  if ((v = json_object_get(node, "error_type")) != NULL)
    fc__load_string(N, v, "error_type", 1);
}

static int fail_add(fc_workflow_t *wf, const char *id, json_t *node, fc_node_t **node_out) {
  fc_severity_t sev = FC_SEVERITY_ERROR;
  json_t *v;
  if ((v = json_object_get(node, "severity")) != NULL)
    (void)fc_severity_parse(json_string_value(v), &sev);
  return fc_workflow_add_fail_node(wf, id, json_string_value(json_object_get(node, "message")), sev,
                                   json_string_value(json_object_get(node, "error_type")),
                                   node_out);
}

const fc__node_type_t fc__node_type_fail = {
    .name = "fail", .fields = fail_fields, .check = fail_check, .add = fail_add};

/* Names of event kinds, statuses and severities. */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

static const char *const kind_names[FC_EVENT_KIND_COUNT] = {"workflow_start", "workflow_end",
                                                            "node_start", "node_end", "error"};

static const char *const node_status_names[] = {"pending", "running",   "completed", "failed",
                                                "skipped", "timed_out", "cancelled"};

static const char *const workflow_status_names[] = {"pending", "running", "completed", "failed",
                                                    "cancelled"};

static const char *const severity_names[] = {"info", "warning", "error", "critical"};

/* Every name function returns "unknown" for a value outside its enum. */
const char *fc_event_kind_name(fc_event_kind_t kind) {
  if ((unsigned)kind >= FC__ARRAY_SIZE(kind_names))
    return "unknown";
  return kind_names[kind];
}

const char *fc_node_status_name(fc_node_status_t status) {
  if ((unsigned)status >= FC__ARRAY_SIZE(node_status_names))
    return "unknown";
  return node_status_names[status];
}

const char *fc_workflow_status_name(fc_workflow_status_t status) {
  if ((unsigned)status >= FC__ARRAY_SIZE(workflow_status_names))
    return "unknown";
  return workflow_status_names[status];
}

const char *fc_severity_name(fc_severity_t severity) {
  if ((unsigned)severity >= FC__ARRAY_SIZE(severity_names))
    return "unknown";
  return severity_names[severity];
}

/* ASCII case-insensitive equality (the C locale's idea of letters). */
static int name_equal(const char *a, const char *b) {
  for (;; a++, b++) {
    unsigned char ca = (unsigned char)*a, cb = (unsigned char)*b;
    if (ca >= 'A' && ca <= 'Z')
      ca = (unsigned char)(ca - 'A' + 'a');
    if (ca != cb)
      return 0;
    if (ca == '\0')
      return 1;
  }
}

/* Accepts the names of fc_severity_name in any letter case. */
int fc_severity_parse(const char *name, fc_severity_t *out) {
  size_t i;
  if (name == NULL || out == NULL)
    return FC_EINVAL;
  for (i = 0; i < FC__ARRAY_SIZE(severity_names); i++) {
    if (name_equal(name, severity_names[i])) {
      *out = (fc_severity_t)i;
      return 0;
    }
  }
  return FC_EINVAL;
}

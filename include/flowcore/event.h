/* flowcore: the lifecycle event every handler receives.
 *
 * One struct for all five kinds. Everything an event points to is borrowed
 * for the duration of the handler call: a handler that keeps a string or a
 * json_t copies it or takes a reference (json_incref), and says so.
 */
#ifndef FLOWCORE_EVENT_H
#define FLOWCORE_EVENT_H

#include <jansson.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  FC_EVENT_WORKFLOW_START = 0,
  FC_EVENT_WORKFLOW_END = 1,
  FC_EVENT_NODE_START = 2,
  FC_EVENT_NODE_END = 3,
  FC_EVENT_ERROR = 4,
  FC_EVENT_KIND_COUNT = 5
} fc_event_kind_t;

/* Node statuses. FC_NODE_PENDING never appears in an event. */
typedef enum {
  FC_NODE_PENDING = 0,
  FC_NODE_RUNNING,
  FC_NODE_COMPLETED,
  FC_NODE_FAILED,
  FC_NODE_SKIPPED,
  FC_NODE_TIMED_OUT,
  FC_NODE_CANCELLED
} fc_node_status_t;

/* How many fc_node_status_t values there are (arrays indexed by status). */
#define FC_NODE_STATUS_COUNT 7

/* Workflow statuses. */
typedef enum {
  FC_WORKFLOW_PENDING = 0,
  FC_WORKFLOW_RUNNING,
  FC_WORKFLOW_COMPLETED,
  FC_WORKFLOW_FAILED,
  FC_WORKFLOW_CANCELLED
} fc_workflow_status_t;

/* How many fc_workflow_status_t values there are. */
#define FC_WORKFLOW_STATUS_COUNT 5

typedef enum {
  FC_SEVERITY_INFO = 0,
  FC_SEVERITY_WARNING,
  FC_SEVERITY_ERROR,
  FC_SEVERITY_CRITICAL
} fc_severity_t;

/* How many fc_severity_t values there are. */
#define FC_SEVERITY_COUNT 4

/* Error information (the `execution_errors` row of the history). Strings may be NULL except type and
 * message. `details` is optional extra JSON (may be NULL). */
typedef struct {
  const char *type;        /* e.g. "exit_status", "timeout", "route_error" */
  const char *message;     /* one line, human readable */
  const char *stack_trace; /* detail text, e.g. the tail of stderr; may be NULL */
  fc_severity_t severity;
  const char *node_id; /* NULL for workflow-level errors */
  int attempt;         /* 0 for workflow-level errors */
  int64_t occurred_at_us; /* wall clock, µs since the epoch */
  json_t *details;        /* optional, borrowed */
} fc_error_info_t;

#define FC_UUID_STRING_LENGTH 37 /* 36 characters + NUL */

struct fc_workflow_s;

typedef struct fc_event_s {
  fc_event_kind_t kind;
  /* The definition being run (borrowed; see workflow.h for accessors). */
  const struct fc_workflow_s *workflow;
  const char *workflow_id;       /* UUIDv7 text form, 36 characters */
  const uint8_t *workflow_uuid;  /* the same 16 bytes in binary */
  const char *workflow_name;
  /* Node events (and errors raised by a node); NULL/0 otherwise. */
  const char *node_id;
  const char *node_type; /* the node's declared type, e.g. "exec"; "" if none */
  int node_index;        /* position in the definition, 0-based; -1 if none */
  int attempt;           /* 1-based; 0 on a node_end for a node that never ran */
  /* Status: for NODE_END a fc_node_status_t, for WORKFLOW_END a
   * fc_workflow_status_t, RUNNING on start events, 0 on errors. */
  int status;
  int64_t time_us;      /* wall clock at the event, µs since the epoch */
  int64_t started_at_us; /* for end events: when the attempt or run started
                            (0 for a node that never ran) */
  int64_t duration_us;  /* for end events: monotonic duration, else 0 */
  int node_count;       /* number of nodes in the definition (all events) */
  /* Payloads, borrowed; NULL when absent.
   * WORKFLOW_START: input = workflow input.
   * WORKFLOW_END: output = outputs of the completed sink nodes by id.
   * NODE_START: input = {"input": <workflow input>, "<dep>": <output>...}.
   * NODE_END: output = the node's output when completed, else NULL. */
  json_t *input;
  json_t *output;
  const fc_error_info_t *error; /* ERROR events; NULL otherwise */
  /* WORKFLOW_END only: how many nodes ended in each fc_node_status_t, and
   * how many error events the run emitted. */
  const int *status_counts; /* indexable by fc_node_status_t,
                               FC_NODE_STATUS_COUNT entries */
  int error_count;
} fc_event_t;

/* "workflow_start", "workflow_end", "node_start", "node_end", "error". */
FC_EXTERN const char *fc_event_kind_name(fc_event_kind_t kind);
/* "pending", "running", "completed", "failed", "skipped", "timed_out",
 * "cancelled". */
FC_EXTERN const char *fc_node_status_name(fc_node_status_t status);
/* "pending", "running", "completed", "failed", "cancelled". */
FC_EXTERN const char *fc_workflow_status_name(fc_workflow_status_t status);
/* "info", "warning", "error", "critical". */
FC_EXTERN const char *fc_severity_name(fc_severity_t severity);
/* Parses a severity name; returns 0 and sets *out, or FC_EINVAL. */
FC_EXTERN int fc_severity_parse(const char *name, fc_severity_t *out);

#ifdef __cplusplus
}
#endif
#endif

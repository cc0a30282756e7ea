/* flowcore: the recording handler (the documented MockCallback), for tests.
 *
 * Records every event it receives, deep-copying what it keeps (strings and
 * JSON payloads), and offers count and order queries a cmocka test can
 * assert on. Not thread-safe (handlers run on the loop thread).
 */
#ifndef FLOWCORE_RECORDER_H
#define FLOWCORE_RECORDER_H

#include "handler.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fc_recorder_s fc_recorder_t;

/* One recorded event: an owned deep copy of an fc_event_t. */
typedef struct {
  fc_event_kind_t kind;
  char *workflow_id;
  char *workflow_name;
  char *node_id; /* NULL for workflow events */
  char *node_type;
  int attempt;
  int status;
  int64_t time_us;
  int64_t duration_us;
  int node_count;
  json_t *input;  /* owned deep copy or NULL */
  json_t *output; /* owned deep copy or NULL */
  /* ERROR events: owned copies; NULL otherwise. */
  char *error_type;
  char *error_message;
  char *error_stack_trace;
  fc_severity_t error_severity;
  size_t seq; /* 0-based position in the recording */
} fc_recorded_event_t;

/* Creates a recorder. Returns 0 or FC_ENOMEM. */
FC_EXTERN int fc_recorder_new(fc_recorder_t **out) FC_WARN_UNUSED;
/* Frees the recorder and its events. NULL ok. Do not call this while the
 * recorder is registered through a handler made by fc_recorder_handler. */
FC_EXTERN void fc_recorder_free(fc_recorder_t *r);

/* Makes a handler that records into r, in *out. Borrowed: the handler's
 * destroy does nothing; the caller keeps r and frees it after the manager.
 * Returns 0 or FC_EINVAL (r or out NULL). */
FC_EXTERN int fc_recorder_handler(fc_recorder_t *r, fc_handler_t *out);
/* The same, but takes ownership of r, even on failure: the handler's
 * destroy frees r. Returns 0 or FC_EINVAL. */
FC_EXTERN int fc_recorder_handler_owned(fc_recorder_t *r, fc_handler_t *out);

/* Makes the recorder's callback fail (return `err`) for events of `kind`;
 * err 0 turns it off. For isolation tests. The event is still recorded. */
FC_EXTERN void fc_recorder_fail_on(fc_recorder_t *r, fc_event_kind_t kind, int err);

/* Number of events recorded. */
FC_EXTERN size_t fc_recorder_size(const fc_recorder_t *r);
/* The event at position i (borrowed), or NULL. */
FC_EXTERN const fc_recorded_event_t *fc_recorder_at(const fc_recorder_t *r, size_t i);
/* Forgets every recorded event. */
FC_EXTERN void fc_recorder_clear(fc_recorder_t *r);

/* How many events of `kind` were recorded; node_id NULL means any node. */
FC_EXTERN size_t fc_recorder_count(const fc_recorder_t *r, fc_event_kind_t kind,
                                   const char *node_id);
/* How many node_end events for node_id (NULL: any) ended with `status`. */
FC_EXTERN size_t fc_recorder_count_status(const fc_recorder_t *r,
                                          const char *node_id, fc_node_status_t status);
/* Position of the first event of `kind` for node_id (NULL: any) with
 * seq >= from; -1 if none. */
FC_EXTERN long fc_recorder_find(const fc_recorder_t *r, fc_event_kind_t kind,
                                const char *node_id, size_t from);
/* The last event of `kind` for node_id (NULL: any), or NULL. */
FC_EXTERN const fc_recorded_event_t *fc_recorder_last(const fc_recorder_t *r,
                                                      fc_event_kind_t kind,
                                                      const char *node_id);

/* Checks that the events of `kinds[i]`/`node_ids[i]` (node id NULL: any node
 * or a workflow event) occur in this order as a subsequence. Returns 1 if
 * so; otherwise 0, and if msg is not NULL writes which step was not found. */
FC_EXTERN int fc_recorder_in_order(const fc_recorder_t *r, const fc_event_kind_t *kinds,
                                   const char *const *node_ids, size_t n,
                                   char *msg, size_t msg_size);

/* Checks the order contract of a whole recording of one or more runs:
 * workflow_start first and workflow_end last of each run, every node_start
 * followed by its node_end (same node and attempt) before the next attempt,
 * every error before the node_end of its attempt, attempts numbered 1, 2,
 * ... Returns 1 if it holds; otherwise 0 and a description in msg. */
FC_EXTERN int fc_recorder_check_contract(const fc_recorder_t *r, char *msg,
                                         size_t msg_size);

#ifdef __cplusplus
}
#endif
#endif

/* flowcore: the notification handler (the documented NotificationCallback)
 * and a notifier that runs a command.
 *
 * The handler applies rules to events and hands notifications to a
 * notifier (an interface: send(self, channel, message, fields)):
 *
 *  - long_running: at workflow_start, when the estimated duration is above
 *    long_running_ms (default 300000 ms, the documented 300 s). The
 *    estimate comes from the `estimate` callback when one is given, else
 *    from the workflow input: "estimated_duration_ms" (number, ms), or
 *    "estimated_duration" (number, seconds, as in the Python documentation).
 *    No estimate, no notification.
 *  - error: at an error event whose severity is at least error_min_severity
 *    (default critical). Fields carry "urgency": "high" for critical.
 *  - complete / failure: at workflow_end, status completed (resp. failed or
 *    cancelled), when notify_on_complete (resp. notify_on_failure) is set,
 *    or, with input_flags, when the workflow input has
 *    "notify_on_complete": true (resp. "notify_on_failure": true).
 *
 * Default channels follow the documentation: "slack" (long_running),
 * "pagerduty" (error), "email" (complete and failure). `fields` is a JSON
 * object with "rule", "workflow_id", "workflow_name" and the rule's details
 * ("estimated_duration_ms" + "threshold_ms"; "node_id", "attempt",
 * "severity", "type", "message", "urgency"; "status", "duration_ms",
 * "error_count", "failed_nodes", "user_email" when the input has one).
 *
 * A notifier failure is counted (fc_notify_stats) and returned to the
 * manager, which isolates it; it never reaches the workflow.
 *
 * Threading: loop thread only, like every handler. A notifier's send is
 * called on the loop thread and must not block (the command notifier below
 * spawns asynchronously and returns at once).
 */
#ifndef FLOWCORE_NOTIFY_HANDLER_H
#define FLOWCORE_NOTIFY_HANDLER_H

#include <uv.h>

#include "handler.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The notification service. `channel` and `message` are borrowed strings,
 * `fields` a borrowed JSON object (take a reference or copy to keep it).
 * send returns 0 or a negative error. `destroy` (may be NULL) is called
 * once by the notifier's owner. */
typedef struct {
  void *self;
  int (*send)(void *self, const char *channel, const char *message, json_t *fields);
  void (*destroy)(void *self);
} fc_notifier_t;

/* Estimated duration in ms of the run starting with `ev` (workflow_start:
 * ev->input is the workflow input), or a negative value for "unknown". */
typedef int64_t (*fc_notify_estimate_cb)(void *data, const fc_event_t *ev);

typedef struct {
  fc_notifier_t notifier;         /* required (send != NULL) */
  int long_running;               /* rule on (1) or off (0) */
  int64_t long_running_ms;        /* threshold: notify when estimate > this */
  fc_notify_estimate_cb estimate; /* NULL: the input fields above */
  void *estimate_data;
  int errors;                       /* rule on/off */
  fc_severity_t error_min_severity; /* notify at this severity or above */
  int notify_on_complete;           /* every completed run */
  int notify_on_failure;            /* every failed or cancelled run */
  int input_flags; /* honour "notify_on_complete"/"notify_on_failure" in the input */
  /* Channels, copied; NULL means the default. */
  const char *channel_long_running; /* "slack" */
  const char *channel_error;        /* "pagerduty" */
  const char *channel_complete;     /* "email" */
  const char *channel_failure;      /* "email" */
} fc_notify_options_t;

/* Fills *opts with the defaults: long_running on at 300000 ms, errors on at
 * critical, notify_on_complete and notify_on_failure off, input_flags on,
 * default channels, no notifier. Start from this, then set the notifier. */
FC_EXTERN void fc_notify_options_init(fc_notify_options_t *opts);

typedef struct fc_notify_s fc_notify_t;

/* Creates a notification handler object. It takes ownership of
 * opts->notifier.self (notifier.destroy is called by fc_notify_free), even
 * when this call fails. Returns 0 and a new object in *out, FC_EINVAL
 * (opts or notifier.send NULL) or FC_ENOMEM. */
FC_EXTERN int fc_notify_new(fc_notify_t **out, const fc_notify_options_t *opts) FC_WARN_UNUSED;

/* Destroys the notifier (notifier.destroy) and frees the object. NULL ok. */
FC_EXTERN void fc_notify_free(fc_notify_t *n);

/* Makes a handler feeding n into *out. Borrowed: the handler's destroy
 * does nothing. Returns 0 or FC_EINVAL (n or out NULL). */
FC_EXTERN int fc_notify_handler(fc_notify_t *n, fc_handler_t *out);
/* The same, but takes ownership of n, even on failure: the handler's
 * destroy calls fc_notify_free(n). Returns 0 or FC_EINVAL. */
FC_EXTERN int fc_notify_handler_owned(fc_notify_t *n, fc_handler_t *out);

/* Applies the rules to one event (what the handler does). Returns 0,
 * FC_EINVAL, FC_ENOMEM or the notifier's error. */
FC_EXTERN int fc_notify_observe(fc_notify_t *n, const fc_event_t *ev);

typedef struct {
  uint64_t long_running; /* notifications by rule (sent or not) */
  uint64_t errors;
  uint64_t completed;
  uint64_t failed;
  uint64_t sent;          /* send returned 0 */
  uint64_t send_failures; /* send returned an error */
  int last_error;         /* last error of send, 0 if none */
} fc_notify_stats_t;

FC_EXTERN void fc_notify_stats(const fc_notify_t *n, fc_notify_stats_t *out);

/* ---- the command notifier -------------------------------------------------
 *
 * Runs a configured command for each notification, with argv given
 * explicitly (no shell; argv[0] is searched in PATH when it has no '/'),
 * and writes the notification to its stdin as one line of JSON:
 *   {"channel": "...", "message": "...", "fields": {...}}\n
 * then closes stdin. Everything is asynchronous on the given loop
 * (uv_spawn): send returns at once and never waits for the child. The
 * payload is at most 32 KiB (a larger "fields" is replaced by
 * {"truncated": true}, the message cut), so it is written at once without
 * blocking; SIGPIPE from a child that exits without reading is blocked and
 * consumed during that write.
 *
 * Failures are counted, never fatal: spawn errors (e.g. missing binary),
 * non-zero exit, death by a signal, timeouts. At most max_concurrent
 * children run at once; sends beyond that are dropped (counted) and return
 * UV_EBUSY. The child's stdout and stderr go to /dev/null unless
 * inherit_output is set. Loop thread only. */

typedef struct fc_cmd_notifier_s fc_cmd_notifier_t;

typedef struct {
  uv_loop_t *loop;         /* required, borrowed: must outlive the notifier */
  const char *const *argv; /* required, NULL-terminated, copied */
  unsigned max_concurrent; /* 0 means 4 */
  uint64_t timeout_ms;     /* a child running longer is killed (SIGKILL); 0 means 30000 */
  int inherit_output;      /* 1: the child shares our stdout and stderr */
} fc_cmd_notifier_options_t;

/* Fills *opts with the defaults: no loop and no argv (both required: set
 * them), 4 children at once, 30000 ms timeout, output to /dev/null. */
FC_EXTERN void fc_cmd_notifier_options_init(fc_cmd_notifier_options_t *opts);

/* Creates a command notifier. Returns 0 and a new notifier in *out (release
 * it with fc_cmd_notifier_close), FC_EINVAL or FC_ENOMEM. */
FC_EXTERN int fc_cmd_notifier_new(fc_cmd_notifier_t **out,
                                  const fc_cmd_notifier_options_t *opts) FC_WARN_UNUSED;

/* The notifier interface over c. It BORROWS c (destroy is NULL): close c
 * only once nothing can send through it any more (the handler using it was
 * removed or freed). */
FC_EXTERN fc_notifier_t fc_cmd_notifier(fc_cmd_notifier_t *c);

/* What the interface's send does: starts one child. `fields` is borrowed
 * (serialized at once). Returns 0 (spawned; the outcome is counted later),
 * UV_EBUSY (dropped: max_concurrent running), FC_ECANCELED (dropped:
 * closing), FC_ENOMEM, or the spawn error (e.g. UV_ENOENT). */
FC_EXTERN int fc_cmd_notifier_send(fc_cmd_notifier_t *c, const char *channel, const char *message,
                                   json_t *fields);

typedef struct {
  uint64_t requested; /* send calls */
  uint64_t spawned;   /* children started */
  uint64_t succeeded; /* exited with status 0 */
  uint64_t failed;    /* spawn_errors + exit_nonzero + signaled */
  uint64_t spawn_errors;
  uint64_t exit_nonzero;
  uint64_t signaled;        /* ended by a signal (including our kills) */
  uint64_t timed_out;       /* killed after timeout_ms (also in signaled) */
  uint64_t killed_at_close; /* killed at the close deadline (also in signaled) */
  uint64_t write_errors;    /* stdin not fully delivered (not a failure by itself) */
  uint64_t dropped;         /* not started: max_concurrent reached or closing */
  unsigned running;         /* children not yet exited */
  int last_spawn_error;     /* 0 if none */
  int last_exit_status;     /* of the last child that exited (0 if signaled) */
} fc_cmd_notifier_stats_t;

FC_EXTERN void fc_cmd_notifier_stats(const fc_cmd_notifier_t *c, fc_cmd_notifier_stats_t *out);

typedef void (*fc_cmd_notifier_close_cb)(fc_cmd_notifier_t *c, void *data);

/* Closes the notifier: later sends are dropped; children still running get
 * until deadline_ms (0: none, killed at once) to exit, then are killed
 * (SIGKILL). close_cb (may be NULL) is called on the loop, never from
 * inside this call, once every child has exited and every handle is closed
 * (fc_cmd_notifier_stats still works inside it); c is freed right after it
 * returns. The loop must run for this to complete. Call exactly once. */
FC_EXTERN void fc_cmd_notifier_close(fc_cmd_notifier_t *c, uint64_t deadline_ms,
                                     fc_cmd_notifier_close_cb close_cb, void *data);

#ifdef __cplusplus
}
#endif
#endif

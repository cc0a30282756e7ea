/* flowcore: handlers and the callback manager.
 *
 * A handler is a struct of optional function pointers plus `self` and a
 * destroy function. A NULL pointer means "not interested in that event".
 * Each callback returns 0 or a negative error code; a failure is isolated by
 * the manager (counted per handler, logged rate-limited) and never reaches
 * the workflow or the other handlers.
 *
 * Threading: the manager calls handlers on the engine's loop thread, one
 * event at a time. A manager is not thread-safe; add and remove handlers
 * from the loop thread (adding or removing from inside a callback is
 * allowed: the change takes effect with the next event).
 */
#ifndef FLOWCORE_HANDLER_H
#define FLOWCORE_HANDLER_H

#include "event.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int (*fc_handler_cb)(void *self, const fc_event_t *ev);

typedef struct fc_handler_s {
  const char *name; /* for logs and stats; copied by fc_manager_add */
  void *self;       /* passed to every callback */
  fc_handler_cb on_workflow_start;
  fc_handler_cb on_workflow_end;
  fc_handler_cb on_node_start;
  fc_handler_cb on_node_end;
  fc_handler_cb on_error;
  /* Called once when the owner lets go of the handler (manager removal or
   * free, or a wrapper's destroy). May be NULL. */
  void (*destroy)(void *self);
} fc_handler_t;

/* Returns the callback of `h` for `kind`, or NULL. */
FC_EXTERN fc_handler_cb fc_handler_get_cb(const fc_handler_t *h,
                                          fc_event_kind_t kind);
/* Calls the callback of `h` for ev->kind if it has one; returns its result
 * (0 when it has none). The building block of wrapper handlers. */
FC_EXTERN int fc_handler_call(const fc_handler_t *h, const fc_event_t *ev);
/* Calls h->destroy(h->self) if set, then clears *h. */
FC_EXTERN void fc_handler_destroy(fc_handler_t *h);

typedef struct fc_manager_s fc_manager_t;

/* Creates an empty manager. Returns 0 and a new manager in *out, or
 * FC_ENOMEM. Free it with fc_manager_free(). */
FC_EXTERN int fc_manager_new(fc_manager_t **out) FC_WARN_UNUSED;

/* Destroys every handler still registered (in order of adding), then frees
 * the manager. NULL is allowed. */
FC_EXTERN void fc_manager_free(fc_manager_t *m);

/* Adds a handler with a priority: higher priorities are called first, equal
 * priorities in the order they were added. The struct is copied; the manager
 * takes ownership of h->self (it calls h->destroy on removal or free) --
 * even on failure, in which case h->destroy has been called before return.
 * On success *id_out (if not NULL) receives an id for fc_manager_remove.
 * Returns 0, FC_EINVAL (h NULL) or FC_ENOMEM. */
FC_EXTERN int fc_manager_add(fc_manager_t *m, const fc_handler_t *h,
                             int priority, int *id_out);

/* Removes the handler with this id and destroys it. Safe from inside a
 * callback (destruction is deferred until the current dispatch returns).
 * Returns 0 or FC_ENOTFOUND. */
FC_EXTERN int fc_manager_remove(fc_manager_t *m, int id);

/* Removes the handler without destroying it: ownership of its `self` goes
 * back to the caller. Not allowed during a dispatch (FC_ESTATE).
 * Returns 0, FC_ENOTFOUND or FC_ESTATE. */
FC_EXTERN int fc_manager_detach(fc_manager_t *m, int id, fc_handler_t *out);

/* Delivers an event to every interested handler in priority order.
 * Failures are isolated; returns the number of handlers that failed on this
 * event (0 when all succeeded). */
FC_EXTERN int fc_manager_dispatch(fc_manager_t *m, const fc_event_t *ev);

/* Number of handlers registered. */
FC_EXTERN size_t fc_manager_count(const fc_manager_t *m);

typedef struct {
  uint64_t calls;    /* callbacks invoked */
  uint64_t failures; /* callbacks that returned an error */
  int last_error;    /* the last error code returned, 0 if none */
} fc_handler_stats_t;

/* Stats of one handler. Returns 0 or FC_ENOTFOUND. */
FC_EXTERN int fc_manager_handler_stats(const fc_manager_t *m, int id,
                                       fc_handler_stats_t *out);

/* Total handler failures seen by this manager. */
FC_EXTERN uint64_t fc_manager_failures(const fc_manager_t *m);

/* Where handler-failure log lines go: a sink gets one formatted line (no
 * trailing newline). The default writes to stderr. Lines are rate-limited to
 * `per_second` per handler (default 5); suppressed lines are counted and
 * summarized in the next line that gets through. Pass sink NULL to restore
 * stderr. */
typedef void (*fc_log_sink_cb)(void *data, const char *line);
FC_EXTERN void fc_manager_set_log_sink(fc_manager_t *m, fc_log_sink_cb sink,
                                       void *data, unsigned per_second);

#ifdef __cplusplus
}
#endif
#endif

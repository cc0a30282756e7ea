/* flowcore: the async handler (the documented AsyncCallback): a slow
 * handler that never slows the engine.
 *
 * The async handler wraps another handler (`inner`). Its callbacks, called
 * by the manager on the loop thread, only deep-copy the event (strings, the
 * error info and the JSON payloads, with json_deep_copy) into a bounded FIFO
 * queue and return. One worker thread (uv_thread) takes events from the
 * queue and calls `inner`, one at a time, in the order they were queued.
 * When the queue is full the policy decides: FC_ASYNC_BLOCK makes the
 * engine wait for room (lossless), FC_ASYNC_DROP drops the event and counts
 * it. fc_async_close drains the queue within a deadline and reports exactly
 * what was delivered, dropped and abandoned.
 *
 * Threading contract:
 * - `inner`'s callbacks run on the worker thread, never on the loop
 *   thread, and never two at a time. They must not touch the engine: no
 *   fc_run_*, fc_manager_*, no libuv handle of the engine's loop, nothing
 *   the loop thread changes without a lock. What they share with other
 *   threads they must lock themselves.
 * - The event `inner` receives is a private deep copy, valid during the
 *   call (as always); nothing in it is shared with the engine. Its
 *   `workflow` member is NULL (the definition may be freed by then);
 *   everything else is there.
 * - `inner`'s return value is counted (stats.failed, stats.last_error) but
 *   reaches no manager: the async handler's own callbacks return 0 when the
 *   event was queued.
 * - fc_async_handler_owned, fc_async_close and the handler's callbacks and
 *   destroy are for the loop thread (the thread that dispatches events);
 *   fc_async_stats may be called from any thread.
 *
 * Ownership (see "The handler convention" in docs/handlers.md):
 * fc_async_handler borrows `inner`; fc_async_handler_owned TAKES OWNERSHIP
 * of it (even when it fails), and then `inner` is destroyed by
 * fc_async_close, on the calling thread, after the worker has stopped.
 * The fc_async_t lives until both fc_async_close has returned and the handler made with it has been
 * destroyed (by the manager, or fc_handler_destroy), in either order.
 * Events given to the handler after fc_async_close are refused (its
 * callbacks return FC_ESTATE).
 */
#ifndef FLOWCORE_ASYNC_HANDLER_H
#define FLOWCORE_ASYNC_HANDLER_H

#include "handler.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  FC_ASYNC_BLOCK = 0, /* full queue: the producer waits for room (default) */
  FC_ASYNC_DROP = 1   /* full queue: the event is dropped and counted */
} fc_async_policy_t;

#define FC_ASYNC_DEFAULT_CAPACITY 1024
#define FC_ASYNC_MAX_CAPACITY (1u << 24)

typedef struct {
  size_t queue_capacity;    /* events queued at most; 0: 1024; max 2^24 */
  fc_async_policy_t policy; /* default FC_ASYNC_BLOCK */
} fc_async_options_t;

/* Fills *opts with the defaults: a queue of FC_ASYNC_DEFAULT_CAPACITY
 * events, policy FC_ASYNC_BLOCK (a zeroed struct means the same). */
FC_EXTERN void fc_async_options_init(fc_async_options_t *opts);

typedef struct {
  uint64_t received;  /* events given to the async handler (before close) */
  uint64_t queued;    /* of those, copied into the queue */
  uint64_t delivered; /* events given to inner (whatever it returned) */
  uint64_t failed;    /* of those, events inner returned an error for */
  int last_error;     /* the last error inner returned, 0 if none */
  uint64_t dropped;   /* never queued: queue full (policy drop) or no
                         memory for the copy */
  uint64_t dropped_nomem; /* of the dropped, those for want of memory */
  uint64_t abandoned; /* queued but still undelivered at the close deadline */
  uint64_t queue_depth;      /* events in the queue now */
  uint64_t queue_high_water; /* most events queued at once */
} fc_async_stats_t;

typedef struct fc_async_s fc_async_t;

/* Makes the async handler around `inner` and starts its worker thread.
 * `opts` may be NULL (fc_async_options_init's defaults). On success *out
 * receives the object to pass to fc_async_close/fc_async_stats and
 * *handler the handler to register (fc_manager_add); the handler refers to
 * *out.
 *
 * Borrowed: `inner` stays the caller's (the struct is copied; fc_async_close
 * never destroys it): destroy it after fc_async_close. Returns 0,
 * FC_EINVAL (inner, out or handler NULL, a bad policy, a capacity over
 * FC_ASYNC_MAX_CAPACITY), FC_ENOMEM, or a libuv error from creating the
 * thread (then *out is NULL and *handler zeroed). Only the event kinds
 * `inner` handles are queued.
 *
 * The handler's callbacks return 0 when the event was queued and also when
 * the policy dropped it (counted in stats.dropped); FC_ENOMEM when there was
 * no memory for the copy (also counted as dropped); FC_ESTATE after close. */
FC_EXTERN int fc_async_handler(const fc_handler_t *inner, const fc_async_options_t *opts,
                               fc_async_t **out, fc_handler_t *handler) FC_WARN_UNUSED;

/* The same, but takes ownership of `inner`, even on failure: it is
 * destroyed by fc_async_close (see above), or before return on failure. */
FC_EXTERN int fc_async_handler_owned(const fc_handler_t *inner, const fc_async_options_t *opts,
                                     fc_async_t **out, fc_handler_t *handler) FC_WARN_UNUSED;

/* Stops accepting events and lets the worker deliver what is queued, for
 * at most deadline_ms milliseconds. At the deadline the worker is told to
 * stop: it finishes the event it is delivering (if any: a call in progress
 * is never interrupted, so close can return later than the deadline by one
 * delivery) and the events still queued are freed undelivered and counted
 * as `abandoned`. Then the thread is joined and `inner` destroyed.
 *
 * The final counts go to *report (may be NULL); then
 * received == delivered + dropped + abandoned, exactly. Returns 0 when
 * everything queued was delivered, FC_ETIMEDOUT when events were abandoned.
 * Call it exactly once, from the loop thread (not from inner). */
FC_EXTERN int fc_async_close(fc_async_t *a, uint64_t deadline_ms, fc_async_stats_t *report);

/* A snapshot of the counts. Thread-safe. */
FC_EXTERN void fc_async_stats(fc_async_t *a, fc_async_stats_t *out);

/* "block", "drop"; parse returns 0 or FC_EINVAL. */
FC_EXTERN const char *fc_async_policy_name(fc_async_policy_t p);
FC_EXTERN int fc_async_policy_parse(const char *name, fc_async_policy_t *out);

#ifdef __cplusplus
}
#endif
#endif

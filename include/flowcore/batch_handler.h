/* flowcore: the batched handler (the documented BatchedCallback).
 *
 * Collects copies of the events it receives and hands them to a batch
 * function in one call: when `batch_size` events are pending, when
 * `flush_interval_ms` has passed since the oldest pending event arrived, on
 * fc_batch_handler_flush, and when the handler is destroyed (close). A
 * batch is never empty: an interval with no events calls nothing.
 *
 * The interval is a uv_timer_t on the engine's loop. It runs only while
 * events are pending (started by the first event of a batch, stopped when
 * the batch is handed over), so an idle handler never keeps the loop alive
 * and never wakes it up. While events are pending the timer does keep the
 * loop alive, so they are delivered on time even when nothing else runs;
 * set `unref_timer` to let uv_run return anyway (pending events then wait
 * for the next flush, at the latest the handler's destroy).
 *
 * Threading: everything runs on the loop thread -- the handler's callbacks,
 * the timer and the batch function. Not thread-safe.
 *
 * Lifetime: the handler owns its state; its destroy (by the manager, or
 * fc_handler_destroy) hands the pending events to the batch function, calls
 * `data_free(data)` if set, and closes the timer. The timer's memory is
 * freed in its libuv close callback, so run the loop once after destroying
 * the handler, and destroy the handler before closing the loop.
 */
#ifndef FLOWCORE_BATCH_HANDLER_H
#define FLOWCORE_BATCH_HANDLER_H

#include <uv.h>

#include "compose.h"
#include "handler.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Why a batch is handed over. */
typedef enum {
  FC_BATCH_SIZE = 0,     /* batch_size events were pending */
  FC_BATCH_INTERVAL = 1, /* flush_interval_ms passed */
  FC_BATCH_FLUSH = 2,    /* fc_batch_handler_flush */
  FC_BATCH_CLOSE = 3     /* the handler is being destroyed */
} fc_batch_reason_t;

/* How many fc_batch_reason_t values there are. */
#define FC_BATCH_REASON_COUNT 4

/* The batch function. events[0..n) are copies, in the order received,
 * borrowed for the call: the handler frees them when the function returns
 * (a function that keeps something copies it or takes a JSON reference).
 * Each copy is a deep copy (strings, error info, JSON payloads) whose
 * `workflow` member is NULL. n >= 1. Returns 0 or a negative error code:
 * counted in the stats and, for a batch handed over from inside an event
 * callback (FC_BATCH_SIZE), returned by that callback to the manager. */
typedef int (*fc_batch_cb)(void *data, const fc_event_t *const *events, size_t n,
                           fc_batch_reason_t reason);

typedef struct {
  fc_batch_cb fn;             /* required */
  void *data;                 /* passed to fn */
  void (*data_free)(void *data); /* called by the handler's destroy; may be NULL */
  size_t batch_size;          /* default (0) 100 */
  uint64_t flush_interval_ms; /* default (0) 5000; UINT64_MAX: no timer */
  unsigned kinds;             /* FC_EVENT_KIND_BIT mask of what to collect; 0: all */
  int unref_timer;            /* nonzero: the timer never keeps the loop alive */
} fc_batch_options_t;

/* Fills *opts with the defaults: no fn (required: set it), batches of 100,
 * a 5000 ms interval, every kind, a timer that keeps the loop alive while
 * events are pending. */
FC_EXTERN void fc_batch_options_init(fc_batch_options_t *opts);

typedef struct {
  uint64_t events;      /* events collected */
  uint64_t batches;     /* calls of the batch function */
  uint64_t by_reason[FC_BATCH_REASON_COUNT]; /* batches by fc_batch_reason_t */
  uint64_t failures;    /* batches fn returned an error for */
  int last_error;       /* the last error fn returned, 0 if none */
  uint64_t dropped;     /* events lost for want of memory (callback got FC_ENOMEM) */
  size_t pending;       /* events waiting now */
  size_t largest_batch;
} fc_batch_stats_t;

/* Makes a batched handler on `loop` in *out. Borrowed: `loop` (the
 * engine's loop). `opts` is copied; opts->data is handed to the handler
 * when data_free is set (data_free is called by destroy -- also when this
 * call fails), else it stays the caller's. The handler owns only its own
 * state. On success *out is ready for fc_manager_add. Returns 0,
 * FC_EINVAL (loop, opts, opts->fn or out NULL, a kind bit out of range),
 * FC_ENOMEM or a libuv error. */
FC_EXTERN int fc_batch_handler(uv_loop_t *loop, const fc_batch_options_t *opts,
                               fc_handler_t *out) FC_WARN_UNUSED;

/* Hands the pending events (if any) to the batch function now. `h` is the
 * handler made by fc_batch_handler (or a copy of the struct) while it
 * lives. Returns what fn returned, 0 when nothing was pending, or
 * FC_EINVAL when h is not a batched handler. */
FC_EXTERN int fc_batch_handler_flush(const fc_handler_t *h);

/* The counts of a batched handler. Returns 0 or FC_EINVAL. */
FC_EXTERN int fc_batch_handler_stats(const fc_handler_t *h, fc_batch_stats_t *out);

FC_EXTERN const char *fc_batch_reason_name(fc_batch_reason_t reason);

#ifdef __cplusplus
}
#endif
#endif

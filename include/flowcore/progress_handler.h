/* flowcore: the progress handler (the documented ProgressCallback).
 *
 * Tracks the progress of every run it sees, by workflow_id (several runs
 * at once are fine). The total is the node_count of workflow_start, never
 * guessed; node events of a run whose workflow_start was not seen are
 * ignored. After each event of a run it stores the run's state under
 * "<key_prefix><workflow_id>" (default "workflow:<id>") in a store, as
 *
 *   {"status": "started" | "running" | "completed" | "failed" | "cancelled",
 *    "workflow_id", "workflow_name", "total", "completed", "failed",
 *    "skipped", "cancelled", "running", "finished", "errors", "percent",
 *    "elapsed_ms", "last_node" (after a node_end)}
 *
 * Counting: a node counts under the status of its latest attempt; a failed
 * attempt that is retried moves back to "running" at its next node_start.
 * "failed" includes timed_out; "finished" = completed + failed + skipped +
 * cancelled; percent = 100 * finished / total (100 when total is 0 at the
 * end). At workflow_end the engine's final status counts are authoritative.
 *
 * It can also render the progress to a terminal:
 *  - TTY mode: one line redrawn in place with "\r" (and "\033[K" to clear
 *    the rest), at most every tty_interval_ms (default 100 ms, 10 Hz):
 *      "<name> [#####...............] 3/12  25% running 2 failed 0 skipped 0 1.2s"
 *    (with several runs active, "<n> runs" and the sums over them); at each
 *    workflow_end a final line ending in "\n":
 *      "<name> [####################] 12/12 100% completed failed 0 skipped 0 4.0s"
 *  - plain mode (not a TTY): at most every plain_interval_ms (default
 *    1000 ms) one line per active run, and one line at each run's end:
 *      progress wf="<name>" id=<id> completed=3 total=12 running=2 failed=0
 *               skipped=0 cancelled=0 percent=25.0 elapsed_ms=1200
 *      done wf="<name>" id=<id> status=completed completed=12 total=12 ...
 *    (each on one line; wf is quoted with \" and \\ escaped).
 * The redraws happen on events (nothing runs between events); call
 * fc_progress_refresh from a timer of yours to tick a long silent node.
 * Mode AUTO picks TTY when isatty(fileno(out)), else plain.
 *
 * Memory: per active run, its strings and one byte per node; a run is
 * forgotten at its workflow_end. At most max_runs runs are tracked at once
 * (further starts are counted in fc_progress_stats and ignored).
 *
 * Threading: loop thread only, like every handler.
 */
#ifndef FLOWCORE_PROGRESS_HANDLER_H
#define FLOWCORE_PROGRESS_HANDLER_H

#include <stdio.h>

#include "handler.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where the progress values go. `set` gets a key (borrowed) and a value
 * (borrowed: a store that keeps it takes a reference or a copy) and returns
 * 0 or a negative error (counted; the handler then returns it too).
 * `destroy` (may be NULL) is called once by the progress object's owner. */
typedef struct {
  void *self;
  int (*set)(void *self, const char *key, json_t *value);
  void (*destroy)(void *self);
} fc_progress_store_t;

typedef enum {
  FC_PROGRESS_AUTO = 0, /* TTY if isatty(fileno(out)), else plain */
  FC_PROGRESS_TTY = 1,
  FC_PROGRESS_PLAIN = 2,
  FC_PROGRESS_OFF = 3 /* no rendering (store only) */
} fc_progress_mode_t;

typedef struct {
  /* The store (optional: set == NULL means none). The progress object takes
   * ownership of store.self (it calls store.destroy in fc_progress_free),
   * even when fc_progress_new fails. */
  fc_progress_store_t store;
  FILE *out;                  /* renderer output, borrowed; NULL means stderr */
  fc_progress_mode_t mode;    /* default AUTO */
  unsigned tty_interval_ms;   /* 0 means 100 */
  unsigned plain_interval_ms; /* 0 means 1000 */
  unsigned bar_width;         /* 0 means 20 */
  size_t max_runs;            /* 0 means 1024 */
  const char *key_prefix;     /* copied; NULL means "workflow:" */
  /* Monotonic clock in ns for the rate limits and elapsed times; NULL means
   * uv_hrtime. For tests. */
  uint64_t (*clock_ns)(void *data);
  void *clock_data;
} fc_progress_options_t;

/* Fills *opts with the defaults: no store, AUTO rendering to stderr, 100 ms
 * (TTY) and 1000 ms (plain) between renders, a 20-cell bar, 1024 runs,
 * keys "workflow:<id>", uv_hrtime (a zeroed struct means the same). */
FC_EXTERN void fc_progress_options_init(fc_progress_options_t *opts);

typedef struct fc_progress_s fc_progress_t;

/* Creates a progress object. `opts` may be NULL (no store, AUTO rendering
 * to stderr). Returns 0 and a new object in *out (free it with
 * fc_progress_free), FC_EINVAL or FC_ENOMEM. */
FC_EXTERN int fc_progress_new(fc_progress_t **out,
                              const fc_progress_options_t *opts) FC_WARN_UNUSED;

/* Destroys the store (store.destroy) and frees the object. NULL ok. */
FC_EXTERN void fc_progress_free(fc_progress_t *p);

/* Makes a handler feeding p into *out. Borrowed: the handler's destroy
 * does nothing. Returns 0 or FC_EINVAL (p or out NULL). */
FC_EXTERN int fc_progress_handler(fc_progress_t *p, fc_handler_t *out);
/* The same, but takes ownership of p, even on failure: the handler's
 * destroy calls fc_progress_free(p). Returns 0 or FC_EINVAL. */
FC_EXTERN int fc_progress_handler_owned(fc_progress_t *p, fc_handler_t *out);

/* Accounts one event (what the handler does). Returns 0, FC_EINVAL,
 * FC_ENOMEM, UV_EIO (rendering failed) or the store's error. */
FC_EXTERN int fc_progress_observe(fc_progress_t *p, const fc_event_t *ev);

/* Redraws now if the mode's interval has passed since the last draw and a
 * run is active (e.g. from a uv_timer of yours). Returns 0 or UV_EIO. */
FC_EXTERN int fc_progress_refresh(fc_progress_t *p);

/* The current value of a run being tracked, as stored (a NEW reference),
 * or NULL when the run is not active (or on ENOMEM). */
FC_EXTERN json_t *fc_progress_get(const fc_progress_t *p, const char *workflow_id);

typedef struct {
  size_t active_runs;
  uint64_t runs_started;   /* workflow_start events tracked */
  uint64_t runs_ended;     /* workflow_end events of tracked runs */
  uint64_t runs_untracked; /* starts ignored because max_runs was reached */
  uint64_t events_ignored; /* events of runs not tracked */
  uint64_t store_failures; /* store.set errors */
  uint64_t draws;          /* renderer outputs (progress and final lines) */
} fc_progress_stats_t;

FC_EXTERN void fc_progress_stats(const fc_progress_t *p, fc_progress_stats_t *out);

/* ---- an in-memory store --------------------------------------------------- */

/* Keeps the latest value of every key as a deep copy. It grows with the
 * number of distinct keys (one per run): for tests and small programs. */
typedef struct fc_progress_memstore_s fc_progress_memstore_t;

/* Returns 0 and a new store in *out, or FC_ENOMEM. */
FC_EXTERN int fc_progress_memstore_new(fc_progress_memstore_t **out) FC_WARN_UNUSED;
/* Frees the store and its values. NULL ok. */
FC_EXTERN void fc_progress_memstore_free(fc_progress_memstore_t *s);
/* A store interface over s that BORROWS it (destroy is NULL): free s
 * yourself after the progress object that uses it. */
FC_EXTERN fc_progress_store_t fc_progress_memstore_store(fc_progress_memstore_t *s);
/* The latest value of `key` (BORROWED: valid until the next set of that key
 * or the store's free), or NULL. */
FC_EXTERN json_t *fc_progress_memstore_get(const fc_progress_memstore_t *s, const char *key);
/* Number of keys, and of set calls so far. */
FC_EXTERN size_t fc_progress_memstore_size(const fc_progress_memstore_t *s);
FC_EXTERN uint64_t fc_progress_memstore_sets(const fc_progress_memstore_t *s);

#ifdef __cplusplus
}
#endif
#endif

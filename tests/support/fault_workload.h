/* The synthetic workload of the fault tests (tests/integration/test_fault_*)
 * and the way a fault scenario runs it: a fault thread started before the
 * run, the run with the database handler attached, the thread joined.
 *
 * Shape: n_nodes independent nodes, max_parallel at a time. Node i is
 *   - "flaky" when i % flaky_every == flaky_every - 1: its first attempt
 *     fails at once with an error of type "flaky", the retry succeeds: two
 *     node rows (attempt 1 failed, attempt 2 completed) and one error row;
 *   - else "async" when i % async_every == 0: it ends from a uv_timer after
 *     delay_ms; an async node at or above hold[0] waits (re-arming its
 *     timer) until the release level is >= 1, at or above hold[1] until it
 *     is >= 2, which lets a test put a fault precisely mid-run and let
 *     records flow again;
 *   - else "sync": it succeeds at once.
 * Its id is the first letter of its kind and i ("s00012", "a00013",
 * "f00099"), its node type the kind's name, and a successful node outputs
 * {"node": "<its id>"}, so each row's content can be checked.
 *
 * Records: a run emits 2 workflow records (start, end), 2 node records per
 * attempt (start, end) and 1 error record per failed attempt. A node or
 * workflow row holds its start record when input_data IS NOT NULL and its
 * end record when status <> 'running'.
 *
 * Everything here fails the current cmocka test on error, except
 * fc_test_wl_run (see there). */
#ifndef FC_TEST_FAULT_WORKLOAD_H
#define FC_TEST_FAULT_WORKLOAD_H

#include <stdatomic.h>
#include <stdint.h>

#include "flowcore.h"
#include "history_fixture.h"

typedef struct {
  int n_nodes;
  int async_every; /* 0: no async nodes */
  int flaky_every; /* 0: no flaky nodes */
  int max_parallel;
  unsigned delay_ms; /* of async nodes */
  int hold[2];       /* 0: no node held at that level */
} fc_test_wl_shape_t;

typedef struct fc_test_wl_node_s fc_test_wl_node_t;

typedef struct {
  fc_test_wl_shape_t s;
  int n_async, n_flaky; /* derived from the shape */
  fc_workflow_t *wf;
  fc_test_wl_node_t *nodes;
  /* shared with a fault thread */
  atomic_int ended;    /* node attempts that ended (success or failure) */
  atomic_int release;  /* the release level: 0, 1, 2 */
  atomic_int run_done; /* the run is over */
} fc_test_wl_t;

/* Builds and validates t's workflow `name` from shape (copied). */
void fc_test_wl_build(fc_test_wl_t *t, const char *name, const fc_test_wl_shape_t *shape);

/* Frees what fc_test_wl_build made. */
void fc_test_wl_free(fc_test_wl_t *t);

/* The records a whole run of t emits. */
int64_t fc_test_wl_records(const fc_test_wl_t *t);

/* Lets held nodes go up to `level` (1 or 2). */
void fc_test_wl_release(fc_test_wl_t *t, int level);

/* Waits until n node attempts ended, the run is over, or 60 s passed. */
void fc_test_wl_wait_ended(fc_test_wl_t *t, int n);

/* What a run saw. */
typedef struct {
  fc_test_hrun_t run;        /* run.rc: 0, or the first error of the harness */
  double ms;                 /* the run's duration (0 when run.rc != 0) */
  fc_history_stats_t at_end; /* the writer's stats when the run ended */
} fc_test_wl_out_t;

/* The fault scenario: starts fault(fault_arg) on a thread of its own (when
 * fault is not NULL), runs t's workflow once on a loop of its own with w's
 * database handler attached and the input {"case": label}, then lets every
 * held node go, marks the run done and joins the thread. No assertion
 * fires between the thread's start and its join (the fault thread may be
 * waiting on the run): check out->run.rc. */
void fc_test_wl_run(fc_test_wl_t *t, fc_history_writer_t *w, const char *label,
                    void (*fault)(void *arg), void *fault_arg, fc_test_wl_out_t *out);

/* history.h: accepted == written + spooled + dropped_total + queue_depth,
 * at any time; fails naming `label` otherwise. */
void fc_test_check_invariant(const char *label, const fc_history_stats_t *st);

/* The report of a writer that lost nothing: close returned 0, every record
 * of t accepted and written, nothing spooled or dropped for any reason. */
void fc_test_check_lossless(const fc_history_stats_t *rep, int close_rc, const fc_test_wl_t *t);

/* Records of run `wf` present in database db (see the top of this file). */
int64_t fc_test_wl_db_records(const char *db, const char *wf);

/* Whatever was lost: nothing of run `wf` is in db twice, nothing that never
 * happened is there, no finished row went back to running, and db holds no
 * other run. */
void fc_test_wl_check_no_duplicates(const char *db, const char *wf);

/* The whole run `wf` of t is in db, each record once, and no loss was
 * reported to flowcore_writer_losses. */
void fc_test_wl_check_exact(const char *db, const char *wf, const fc_test_wl_t *t);

#endif

/* One nonblocking libpq connection driven by a libuv loop.
 *
 * PQconnectStart/PQconnectPoll to connect, PQsetnonblocking, a uv_poll_t on
 * a dup of PQsocket (re-registered whenever the socket changes), writable
 * interest only while libpq has output pending, and reconnection behind a
 * jittered exponential backoff. No blocking libpq call runs on the loop
 * (host names in the connection string are resolved by libpq itself; use
 * an address or a socket directory to avoid that lookup).
 *
 * A job is a list of steps run in order: a plain query (possibly several
 * statements) or a COPY ... FROM STDIN with its data. fc__pgconn_exec runs
 * one job as one transaction (BEGIN ... COMMIT) and calls done_cb once:
 * ok = 1 only after the server reported the COMMIT.
 */
#ifndef FLOWCORE_PG_CONN_H
#define FLOWCORE_PG_CONN_H

#include <sys/types.h>

#include <uv.h>

#include "buf.h"
#include "pg/pq.h"

typedef struct {
  const char *sql;       /* a query, or the COPY statement */
  const fc__buf_t *copy; /* data for COPY FROM STDIN, else NULL */
} fc__pgstep_t;

typedef struct fc__pgconn_s fc__pgconn_t;

/* ok: 1 committed. Otherwise sqlstate is the server's code ("" when the
 * connection was lost: the outcome is then unknown) and msg says why. */
typedef void (*fc__pgconn_done_cb)(fc__pgconn_t *c, int ok, const char *sqlstate,
                                   const char *msg, void *data);
/* The connection is up and idle (after connecting and setup). */
typedef void (*fc__pgconn_ready_cb)(fc__pgconn_t *c, void *data);
typedef void (*fc__pgconn_close_cb)(fc__pgconn_t *c, void *data);

#define FC__PGCONN_MSG 256

struct fc__pgconn_s {
  uv_loop_t *loop;
  const char *conninfo;  /* borrowed */
  const char *setup_sql; /* run after each connect, borrowed, may be NULL */
  PGconn *pg;
  int pg_fd;        /* the PQsocket our poll watches, -1 if none */
  ino_t pg_ino;     /* ... and its identity */
  uv_poll_t *poll;  /* on a dup of pg_fd; freed (and the dup closed) on close */
  int poll_events;
  uv_timer_t timer; /* reconnect backoff */
  uint64_t min_ms, max_ms, backoff_ms;
  int state;
  fc__pgstep_t setup_step;
  /* the current job */
  const fc__pgstep_t *steps;
  size_t nsteps;
  size_t step; /* 0 = BEGIN, 1..nsteps = steps, nsteps + 1 = COMMIT */
  int phase;
  int is_tx;
  size_t copy_off;
  int failed;
  char sqlstate[6];
  char msg[FC__PGCONN_MSG];
  fc__pgconn_done_cb done_cb;
  void *done_data;
  fc__pgconn_ready_cb ready_cb;
  void *ready_data;
  fc__pgconn_close_cb close_cb;
  void *close_data;
  int open_handles;
  /* counters, read by the writer on its thread */
  uint64_t reconnects;
  uint64_t error_seq; /* incremented whenever last_error is set */
  uint64_t attempt_ns; /* when the current connection attempt began */
  char last_error[FC__PGCONN_MSG];
};

/* Starts connecting at once. The strings are borrowed. */
int fc__pgconn_init(fc__pgconn_t *c, uv_loop_t *loop, const char *conninfo,
                    const char *setup_sql, uint64_t min_ms, uint64_t max_ms,
                    fc__pgconn_ready_cb ready_cb, void *data);
/* 1 when connected and idle. */
int fc__pgconn_ready(const fc__pgconn_t *c);
/* 1 when the server is known to be unreachable: waiting to reconnect after
 * a failure, or an attempt running for longer than slow_ms. A first attempt
 * in progress is not "down". */
int fc__pgconn_down(const fc__pgconn_t *c, uint64_t slow_ms);
/* Runs one job as a transaction; only when ready. The steps and their
 * buffers must stay valid until done_cb. Returns 0 or FC_ESTATE. */
int fc__pgconn_exec(fc__pgconn_t *c, const fc__pgstep_t *steps, size_t nsteps,
                    fc__pgconn_done_cb done_cb, void *data);
/* Runs one job outside a transaction (each statement on its own). */
int fc__pgconn_exec_plain(fc__pgconn_t *c, const fc__pgstep_t *steps, size_t nsteps,
                          fc__pgconn_done_cb done_cb, void *data);
/* Drops the connection (a running job ends with done_cb(ok 0)), closes the
 * handles, then calls cb. */
void fc__pgconn_close(fc__pgconn_t *c, fc__pgconn_close_cb cb, void *data);

#endif

/* One nonblocking libpq connection on a libuv loop (see conn.h). */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "pg/conn.h"

enum { C_WAIT, C_CONNECTING, C_SETUP, C_READY, C_BUSY, C_CLOSED };
enum { P_SEND, P_RESULTS, P_COPY, P_COPY_END, P_ROLLBACK };

#define COPY_CHUNK (256 * 1024)

static void start_connect(fc__pgconn_t *c);
static void drive(fc__pgconn_t *c);

static void copy_msg(char *dst, const char *src) {
  size_t n;
  snprintf(dst, FC__PGCONN_MSG, "%s", src != NULL ? src : "");
  n = strlen(dst);
  while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == ' '))
    dst[--n] = '\0';
}

/* ---- handles ---------------------------------------------------------------- */

static void maybe_closed(fc__pgconn_t *c) {
  if (c->state == C_CLOSED && c->open_handles == 0 && c->close_cb != NULL) {
    fc__pgconn_close_cb cb = c->close_cb;
    c->close_cb = NULL;
    cb(c, c->close_data);
  }
}

typedef struct {
  uv_poll_t poll;
  int fd;
  fc__pgconn_t *conn;
} poll_box;

static void poll_closed(uv_handle_t *h) {
  poll_box *box = (poll_box *)h;
  fc__pgconn_t *c = box->conn;
  close(box->fd);
  fc__free(box);
  c->open_handles--;
  maybe_closed(c);
}

static void poll_drop(fc__pgconn_t *c) {
  if (c->poll != NULL) {
    uv_close((uv_handle_t *)c->poll, poll_closed);
    c->poll = NULL;
  }
  c->pg_fd = -1;
  c->poll_events = 0;
}

static void poll_cb(uv_poll_t *p, int status, int events);

/* Watches the current PQsocket with `events`; re-registers when it changed.
 * While connecting, libpq may close a socket and open another that gets the
 * same number, so the socket's identity (inode) is compared too. */
static int poll_watch(fc__pgconn_t *c, int events) {
  int fd = PQsocket(c->pg);
  ino_t ino = c->pg_ino;
  if (fd < 0)
    return -1;
  if (c->state == C_CONNECTING) {
    struct stat stbuf;
    if (fstat(fd, &stbuf) == 0)
      ino = stbuf.st_ino;
  }
  if (fd != c->pg_fd || ino != c->pg_ino || c->poll == NULL) {
    poll_box *box;
    int dupfd;
    poll_drop(c);
    box = fc__malloc(sizeof *box);
    dupfd = dup(fd);
    if (box == NULL || dupfd < 0 || uv_poll_init(c->loop, &box->poll, dupfd) != 0) {
      if (dupfd >= 0)
        close(dupfd);
      fc__free(box);
      return -1;
    }
    box->fd = dupfd;
    box->conn = c;
    box->poll.data = c;
    c->open_handles++;
    c->poll = &box->poll;
    c->pg_fd = fd;
    c->pg_ino = ino;
    c->poll_events = 0;
  }
  if (events != c->poll_events) {
    if (uv_poll_start(c->poll, events, poll_cb) != 0)
      return -1;
    c->poll_events = events;
  }
  return 0;
}

/* ---- failure and reconnection ----------------------------------------------- */

static void backoff_cb(uv_timer_t *t) { start_connect(t->data); }

static void finish_job(fc__pgconn_t *c, int ok) {
  fc__pgconn_done_cb cb = c->done_cb;
  c->done_cb = NULL;
  c->steps = NULL;
  if (cb != NULL)
    cb(c, ok, c->sqlstate, c->msg, c->done_data);
}

/* The connection is gone (or never came): report, then retry later. */
static void conn_lost(fc__pgconn_t *c, const char *why) {
  int had_job = c->state == C_BUSY;
  uint64_t delay;
  copy_msg(c->last_error, why);
  c->error_seq++;
  if (c->pg != NULL) {
    PQfinish(c->pg);
    c->pg = NULL;
  }
  poll_drop(c);
  if (c->state == C_CLOSED)
    return;
  c->state = C_WAIT;
  c->reconnects++;
  if (had_job) {
    c->sqlstate[0] = '\0';
    copy_msg(c->msg, c->last_error); /* `why` may have been freed with c->pg */
    finish_job(c, 0);
    if (c->state != C_WAIT)
      return; /* closed from the callback */
  }
  /* Jittered exponential backoff: delay in [b/2, b], b doubling to max. */
  delay = c->backoff_ms / 2 + (uint64_t)rand() % (c->backoff_ms / 2 + 1);
  c->backoff_ms = c->backoff_ms * 2 > c->max_ms ? c->max_ms : c->backoff_ms * 2;
  uv_timer_start(&c->timer, backoff_cb, delay, 0);
}

/* Server notices (e.g. "there is no transaction in progress") are not
 * errors; libpq would print them on stderr. */
static void notice_quiet(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

static void start_connect(fc__pgconn_t *c) {
  const char *why;
  if (c->state == C_CLOSED)
    return;
  if (fc__pq_load(&why) != 0) { /* the writer loaded it: not expected */
    conn_lost(c, why);
    return;
  }
  {
    /* The user's connection string or URL, expanded as given (so sslmode
     * and every other libpq option passes through), plus a fallback
     * application_name that lets operators find the writer's backends. */
    static const char *const keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {c->conninfo, "flowcore-writer", NULL};
    c->pg = PQconnectStartParams(keys, vals, 1);
  }
  if (c->pg == NULL) {
    conn_lost(c, "out of memory");
    return;
  }
  PQsetNoticeProcessor(c->pg, notice_quiet, NULL);
  if (PQstatus(c->pg) == CONNECTION_BAD) {
    conn_lost(c, PQerrorMessage(c->pg));
    return;
  }
  c->state = C_CONNECTING;
  c->attempt_ns = uv_hrtime();
  /* As the libpq docs say: start as if PQconnectPoll returned WRITING. */
  if (poll_watch(c, UV_WRITABLE) != 0)
    conn_lost(c, "cannot watch the connection socket");
}

/* ---- jobs -------------------------------------------------------------------- */

static const char *step_sql(const fc__pgconn_t *c) {
  if (!c->is_tx)
    return c->steps[c->step].sql;
  if (c->step == 0)
    return "BEGIN";
  if (c->step == c->nsteps + 1)
    return "COMMIT";
  return c->steps[c->step - 1].sql;
}

static const fc__buf_t *step_copy(const fc__pgconn_t *c) {
  if (!c->is_tx)
    return c->steps[c->step].copy;
  if (c->step == 0 || c->step == c->nsteps + 1)
    return NULL;
  return c->steps[c->step - 1].copy;
}

static size_t job_len(const fc__pgconn_t *c) { return c->is_tx ? c->nsteps + 2 : c->nsteps; }

static void record_error(fc__pgconn_t *c, const PGresult *res) {
  const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  if (c->failed)
    return;
  c->failed = 1;
  snprintf(c->sqlstate, sizeof c->sqlstate, "%s", state != NULL ? state : "");
  copy_msg(c->msg, PQresultErrorMessage(res));
}

/* The job finished (all results read). */
static void job_done(fc__pgconn_t *c) {
  int ok = !c->failed;
  if (c->state == C_SETUP) {
    if (!ok) {
      char why[FC__PGCONN_MSG + 32];
      snprintf(why, sizeof why, "connection setup failed: %s", c->msg);
      c->state = C_BUSY; /* no job to report; conn_lost resets */
      c->done_cb = NULL;
      conn_lost(c, why);
      return;
    }
    c->state = C_READY;
    c->backoff_ms = c->min_ms;
    if (c->ready_cb != NULL)
      c->ready_cb(c, c->ready_data);
    return;
  }
  if (ok && c->is_tx && PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
    ok = 0;
    snprintf(c->sqlstate, sizeof c->sqlstate, "%s", "");
    copy_msg(c->msg, "transaction did not commit");
  }
  c->state = C_READY;
  finish_job(c, ok);
  if (c->state == C_READY && c->done_cb == NULL && c->ready_cb != NULL)
    c->ready_cb(c, c->ready_data);
}

static int begin_job(fc__pgconn_t *c, const fc__pgstep_t *steps, size_t n, int is_tx,
                     fc__pgconn_done_cb cb, void *data) {
  if (c->state != C_READY)
    return FC_ESTATE;
  c->state = C_BUSY;
  c->steps = steps;
  c->nsteps = n;
  c->is_tx = is_tx;
  c->step = 0;
  c->phase = P_SEND;
  c->failed = 0;
  c->sqlstate[0] = '\0';
  c->msg[0] = '\0';
  c->done_cb = cb;
  c->done_data = data;
  drive(c);
  return 0;
}

int fc__pgconn_exec(fc__pgconn_t *c, const fc__pgstep_t *steps, size_t nsteps,
                    fc__pgconn_done_cb done_cb, void *data) {
  return begin_job(c, steps, nsteps, 1, done_cb, data);
}

int fc__pgconn_exec_plain(fc__pgconn_t *c, const fc__pgstep_t *steps, size_t nsteps,
                          fc__pgconn_done_cb done_cb, void *data) {
  return begin_job(c, steps, nsteps, 0, done_cb, data);
}

int fc__pgconn_ready(const fc__pgconn_t *c) { return c->state == C_READY; }

int fc__pgconn_down(const fc__pgconn_t *c, uint64_t slow_ms) {
  if (c->state == C_WAIT)
    return 1;
  if (c->state == C_CONNECTING || c->state == C_SETUP)
    return uv_hrtime() - c->attempt_ns > slow_ms * 1000000ULL;
  return 0;
}

/* Pushes COPY data; returns 1 when all sent (and ended), 0 to wait for
 * writability, -1 on error. */
static int push_copy(fc__pgconn_t *c) {
  const fc__buf_t *b = step_copy(c);
  if (c->phase == P_COPY) {
    while (b != NULL && c->copy_off < b->len) {
      size_t n = b->len - c->copy_off;
      int r;
      if (n > COPY_CHUNK)
        n = COPY_CHUNK;
      r = PQputCopyData(c->pg, b->data + c->copy_off, (int)n);
      if (r < 0)
        return -1;
      if (r == 0)
        return 0;
      c->copy_off += n;
    }
    c->phase = P_COPY_END;
  }
  if (c->phase == P_COPY_END) {
    int r = PQputCopyEnd(c->pg, NULL);
    if (r < 0)
      return -1;
    if (r == 0)
      return 0;
    c->phase = P_RESULTS;
  }
  return 1;
}

/* Advances the current job as far as libpq lets us without blocking. */
static void drive(fc__pgconn_t *c) {
  for (;;) {
    int want = UV_READABLE, flushed;
    if (c->state != C_SETUP && c->state != C_BUSY)
      return;
    if (c->phase == P_SEND) {
      const char *sql = c->phase == P_SEND && c->failed ? "ROLLBACK" : step_sql(c);
      if (!PQsendQuery(c->pg, sql)) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
      }
      c->phase = c->failed ? P_ROLLBACK : P_RESULTS;
    }
    if (c->phase == P_COPY || c->phase == P_COPY_END) {
      int r = push_copy(c);
      if (r < 0) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
      }
      if (r == 0) {
        flushed = PQflush(c->pg);
        if (flushed < 0) {
          conn_lost(c, PQerrorMessage(c->pg));
          return;
        }
        if (poll_watch(c, UV_READABLE | UV_WRITABLE) != 0)
          conn_lost(c, "cannot watch the connection socket");
        return;
      }
    }
    flushed = PQflush(c->pg);
    if (flushed < 0) {
      conn_lost(c, PQerrorMessage(c->pg));
      return;
    }
    if (flushed == 1)
      want |= UV_WRITABLE;
    if (PQisBusy(c->pg)) {
      if (poll_watch(c, want) != 0)
        conn_lost(c, "cannot watch the connection socket");
      return;
    }
    {
      PGresult *res = PQgetResult(c->pg);
      if (res == NULL) {
        /* The statement (or statements) of this step are done. */
        if (c->phase == P_ROLLBACK) {
          job_done(c);
          return;
        }
        if (c->failed) {
          if (c->is_tx && c->state == C_BUSY) {
            c->phase = P_SEND; /* sends ROLLBACK */
            continue;
          }
          job_done(c);
          return;
        }
        c->step++;
        if (c->step == job_len(c)) {
          job_done(c);
          return;
        }
        c->phase = P_SEND;
        continue;
      }
      switch (PQresultStatus(res)) {
      case PGRES_COPY_IN:
        c->phase = P_COPY;
        c->copy_off = 0;
        break;
      case PGRES_COMMAND_OK:
      case PGRES_TUPLES_OK:
      case PGRES_EMPTY_QUERY:
        break;
      default:
        record_error(c, res);
        break;
      }
      PQclear(res);
      if (PQstatus(c->pg) == CONNECTION_BAD) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
      }
    }
  }
}

static void connect_step(fc__pgconn_t *c) {
  switch (PQconnectPoll(c->pg)) {
  case PGRES_POLLING_FAILED:
    conn_lost(c, PQerrorMessage(c->pg));
    return;
  case PGRES_POLLING_READING:
    if (poll_watch(c, UV_READABLE) != 0)
      conn_lost(c, "cannot watch the connection socket");
    return;
  case PGRES_POLLING_WRITING:
    if (poll_watch(c, UV_WRITABLE) != 0)
      conn_lost(c, "cannot watch the connection socket");
    return;
  case PGRES_POLLING_OK:
    break;
  default:
    return;
  }
  if (PQsetnonblocking(c->pg, 1) != 0) {
    conn_lost(c, PQerrorMessage(c->pg));
    return;
  }
  c->state = C_SETUP;
  if (c->setup_sql == NULL || c->setup_sql[0] == '\0') {
    c->failed = 0;
    job_done(c);
    if (c->state == C_READY && poll_watch(c, UV_READABLE) != 0)
      conn_lost(c, "cannot watch the connection socket");
    return;
  }
  {
    c->setup_step.sql = c->setup_sql;
    c->setup_step.copy = NULL;
    c->steps = &c->setup_step;
    c->nsteps = 1;
    c->is_tx = 0;
    c->step = 0;
    c->phase = P_SEND;
    c->failed = 0;
    drive(c);
  }
}

static void poll_cb(uv_poll_t *p, int status, int events) {
  fc__pgconn_t *c = p->data;
  if (status < 0) {
    /* libuv reports POLLERR (e.g. a refused connect) as UV_EBADF and stops
     * watching: libpq reads the socket's own error ("Connection refused")
     * and says it better; our message only when libpq has none. */
    char why[FC__PGCONN_MSG];
    c->poll_events = 0;
    if (c->state == C_CONNECTING) {
      connect_step(c);
      return;
    }
    if (c->pg != NULL && !PQconsumeInput(c->pg)) {
      conn_lost(c, PQerrorMessage(c->pg));
      return;
    }
    snprintf(why, sizeof why, "connection to the server lost (%s)", uv_strerror(status));
    conn_lost(c, why);
    return;
  }
  if (c->state == C_CONNECTING) {
    connect_step(c);
    return;
  }
  if (events & UV_WRITABLE) {
    if (PQflush(c->pg) < 0) {
      conn_lost(c, PQerrorMessage(c->pg));
      return;
    }
  }
  if (events & UV_READABLE) {
    if (!PQconsumeInput(c->pg)) {
      conn_lost(c, PQerrorMessage(c->pg));
      return;
    }
  }
  if (c->state == C_READY) {
    /* Idle: a notice or the server closing on us. */
    PGresult *res;
    while (!PQisBusy(c->pg) && (res = PQgetResult(c->pg)) != NULL)
      PQclear(res);
    if (PQstatus(c->pg) == CONNECTION_BAD)
      conn_lost(c, PQerrorMessage(c->pg));
    else if (c->poll_events != UV_READABLE && poll_watch(c, UV_READABLE) != 0)
      conn_lost(c, "cannot watch the connection socket");
    return;
  }
  drive(c);
}

/* ---- lifecycle --------------------------------------------------------------- */

static void timer_closed(uv_handle_t *h) {
  fc__pgconn_t *c = h->data;
  c->open_handles--;
  maybe_closed(c);
}

int fc__pgconn_init(fc__pgconn_t *c, uv_loop_t *loop, const char *conninfo,
                    const char *setup_sql, uint64_t min_ms, uint64_t max_ms,
                    fc__pgconn_ready_cb ready_cb, void *data) {
  memset(c, 0, sizeof *c);
  c->loop = loop;
  c->conninfo = conninfo;
  c->setup_sql = setup_sql;
  c->pg_fd = -1;
  c->min_ms = min_ms ? min_ms : 1;
  c->max_ms = max_ms < c->min_ms ? c->min_ms : max_ms;
  c->backoff_ms = c->min_ms;
  c->ready_cb = ready_cb;
  c->ready_data = data;
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  c->open_handles = 1;
  c->state = C_WAIT;
  start_connect(c);
  return 0;
}

void fc__pgconn_close(fc__pgconn_t *c, fc__pgconn_close_cb cb, void *data) {
  int had_job = c->state == C_BUSY;
  c->close_cb = cb;
  c->close_data = data;
  if (had_job) {
    c->sqlstate[0] = '\0';
    copy_msg(c->msg, "connection closed by the writer");
  }
  c->state = C_CLOSED;
  if (c->pg != NULL) {
    PQfinish(c->pg);
    c->pg = NULL;
  }
  poll_drop(c);
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, timer_closed);
  if (had_job)
    finish_job(c, 0);
}

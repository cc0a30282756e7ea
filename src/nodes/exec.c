/* The exec node: runs a command with uv_spawn (see include/flowcore/nodes.h
 * for the contract).
 *
 * One exec_attempt per attempt holds the child's handles: the process, a
 * pipe each for stdout and stderr, a uv_poll_t on our end of the stdin
 * socket, (while stopping) the SIGKILL timer, and (once the process exited
 * with a pipe still open) the drain timer. The attempt completes once, from
 * the close callback of the last of them, after the process exited and both
 * pipes reached EOF or were closed by us.
 *
 * A pipe stays open after the exit while something else holds its other
 * end: a background child, possibly one that left the group (setsid), which
 * no signal to the group reaches. So the pipes get kill_grace_ms after the
 * exit; then what they hold is read without waiting and our ends are
 * closed (the drain timer). The holder is not ours to kill: it only finds
 * its writes failing.
 *
 * stdin is a socketpair we write with send(MSG_NOSIGNAL): a child that exits
 * without reading its input makes the write fail with EPIPE instead of
 * raising SIGPIPE in our process (libuv's stream writes would), and the
 * library does not touch the process's signal dispositions.
 *
 * The child leads its own session (UV_PROCESS_DETACHED makes libuv call
 * setsid), so its pid is also its process group id: stopping it signals the
 * whole group, background children included.
 *
 * libuv learns of the exit from SIGCHLD. Should that signal never reach its
 * handler (a SIGCHLD handler installed over libuv's; ThreadSanitizer builds
 * of a multi-threaded process lose one now and then), the attempt would wait
 * for an exit that already happened. So once the child's stdout and stderr
 * are closed, or the group was told to stop, without the exit seen, the reap
 * timer looks for it with waitpid(WNOHANG) itself: after 50 ms, then at
 * doubling intervals up to a second. What it reaps ends the attempt as the
 * exit callback would; closing the process handle in the same callback takes
 * it off libuv's list, so libuv never waits for that pid again. If another
 * waitpid of the process took the status first (ECHILD), the attempt fails
 * with exec_error: the command ended, but how is unknown. */
#define _GNU_SOURCE /* kill, environ, SIGCONT and friends */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "node_type.h"
#include "nodes_int.h"
#include "utf8.h"

extern char **environ;

#define EXEC_OUT_CHUNK ((size_t)64 * 1024) /* read size for stdout */
#define EXEC_ERR_CHUNK ((size_t)8 * 1024)  /* read size for stderr */
#define EXEC_DISPLAY_MAX 160               /* bytes of the command in messages */

/* ---- configuration (the node's user data, shared by every attempt) ------- */

typedef struct {
  char **argv; /* NULL-terminated copies */
  size_t argc;
  char **env; /* NULL-terminated "NAME=value" copies */
  size_t nenv;
  char *cwd;
  size_t max_output;
  uint64_t grace_ms;
  char *display; /* the command for messages: one line, valid UTF-8 */
} exec_cfg;

/* ---- UTF-8 --------------------------------------------------------------- */

/* Returns a new NUL-terminated copy of s[0..n) with each maximal invalid
 * subpart (see utf8.h) and each NUL replaced by U+FFFD: NUL would cut C
 * strings and PostgreSQL's jsonb refuses \u0000. When ctrl_to_space,
 * control characters become spaces (for one-line messages). Length in
 * *out_len. NULL on ENOMEM. */
static char *utf8_sanitize(const char *s, size_t n, int ctrl_to_space, size_t *out_len) {
  fc__buf_t b;
  size_t i;
  fc__buf_init(&b);
  fc__utf8_sanitize(&b, s, n);
  if (fc__buf_reserve(&b, 0) != 0) { /* also allocates for n == 0 */
    fc__buf_free(&b);
    return NULL;
  }
  b.data[b.len] = '\0';
  /* In valid UTF-8, bytes below 0x80 are only ever ASCII characters. */
  for (i = 0; ctrl_to_space && i < b.len; i++)
    if ((unsigned char)b.data[i] < 0x20 || b.data[i] == 0x7F)
      b.data[i] = ' ';
  if (out_len != NULL)
    *out_len = b.len;
  return b.data;
}

/* ---- signals ------------------------------------------------------------- */

static const char *signal_name(int sig) {
  switch (sig) {
  case SIGHUP:
    return "SIGHUP";
  case SIGINT:
    return "SIGINT";
  case SIGQUIT:
    return "SIGQUIT";
  case SIGILL:
    return "SIGILL";
  case SIGTRAP:
    return "SIGTRAP";
  case SIGABRT:
    return "SIGABRT";
  case SIGBUS:
    return "SIGBUS";
  case SIGFPE:
    return "SIGFPE";
  case SIGKILL:
    return "SIGKILL";
  case SIGUSR1:
    return "SIGUSR1";
  case SIGSEGV:
    return "SIGSEGV";
  case SIGUSR2:
    return "SIGUSR2";
  case SIGPIPE:
    return "SIGPIPE";
  case SIGALRM:
    return "SIGALRM";
  case SIGTERM:
    return "SIGTERM";
  case SIGXCPU:
    return "SIGXCPU";
  case SIGXFSZ:
    return "SIGXFSZ";
  case SIGSYS:
    return "SIGSYS";
  default:
    return "unknown signal";
  }
}

/* ---- one attempt ----------------------------------------------------------- */

typedef struct {
  fc_node_ctx_t *ctx;
  const exec_cfg *cfg;
  uv_process_t proc;
  uv_pipe_t out;
  uv_pipe_t err;
  uv_poll_t in;
  uv_timer_t kill_timer;
  uv_timer_t drain_timer;
  uv_timer_t reap_timer;
  uint64_t reap_ms; /* the reap timer's next interval */
  int in_fd; /* our end of the stdin socket, or -1 */
  char *in_buf;
  size_t in_len, in_off;
  char *out_buf;
  size_t out_len, out_cap;
  char err_buf[FC_EXEC_STDERR_TAIL + EXEC_ERR_CHUNK]; /* the tail of stderr */
  size_t err_len;
  uint64_t err_total;
  int open; /* handles initialised and whose close callback has not run */
  int pid;  /* > 0 once spawned */
  int spawn_err;
  int internal_err;
  const char *internal_what;
  int64_t exit_status;
  int term_signal;
  /* h_*: the handle is initialised and not yet being closed. */
  unsigned h_proc : 1, h_out : 1, h_err : 1, h_in : 1, h_timer : 1, h_drain : 1, h_reap : 1;
  unsigned exited : 1;    /* the exit callback ran, or the spawn failed */
  unsigned drained : 1;   /* the pipes were closed by the drain timer, not at EOF */
  unsigned killing : 1;   /* the group got SIGTERM */
  unsigned too_large : 1; /* stdout exceeded the limit */
  unsigned finished : 1;
  unsigned status_lost : 1; /* another waitpid took the exit status */
} exec_attempt;

static void on_closed(uv_handle_t *h);

static void close_in(exec_attempt *a) {
  if (!a->h_in)
    return;
  a->h_in = 0;
  uv_close((uv_handle_t *)&a->in, on_closed); /* the fd is closed in on_closed */
}

static void close_out(exec_attempt *a) {
  if (!a->h_out)
    return;
  a->h_out = 0;
  uv_close((uv_handle_t *)&a->out, on_closed);
}

static void close_err(exec_attempt *a) {
  if (!a->h_err)
    return;
  a->h_err = 0;
  uv_close((uv_handle_t *)&a->err, on_closed);
}

static void finish(exec_attempt *a);
static void watch_exit(exec_attempt *a);

static void close_kill_timer(exec_attempt *a) {
  if (!a->h_timer)
    return;
  a->h_timer = 0;
  uv_close((uv_handle_t *)&a->kill_timer, on_closed);
}

/* Called whenever something ended: once the process exited and both pipes
 * are closed, the rest (stdin writer, timers) is closed too, and the last
 * close callback completes the attempt. The kill timer is left to fire when
 * the pipes were drained rather than read to EOF: something of the group
 * may still be alive, and it was promised SIGKILL. */
static void maybe_finish(exec_attempt *a) {
  if (!a->finished && !a->exited && !a->h_out && !a->h_err)
    watch_exit(a); /* the pipes are closed: the exit is due */
  if (a->finished || !a->exited || a->h_out || a->h_err)
    return;
  close_in(a);
  if (!a->drained)
    close_kill_timer(a);
  if (a->h_drain) {
    a->h_drain = 0;
    uv_close((uv_handle_t *)&a->drain_timer, on_closed);
  }
  if (a->h_reap) {
    a->h_reap = 0;
    uv_close((uv_handle_t *)&a->reap_timer, on_closed);
  }
  if (a->open == 0)
    finish(a);
}

static void on_closed(uv_handle_t *h) {
  exec_attempt *a = h->data;
  if (h == (uv_handle_t *)&a->in) {
    close(a->in_fd);
    a->in_fd = -1;
  }
  a->open--;
  maybe_finish(a);
}

/* ---- stopping the process group -------------------------------------------- */

static void on_kill_timer(uv_timer_t *t) {
  exec_attempt *a = t->data;
  if (a->pid > 0)
    (void)kill(-(pid_t)a->pid, SIGKILL);
  close_kill_timer(a); /* its work is done */
}

/* SIGTERM (and SIGCONT, so a stopped group sees it) to the whole group,
 * then SIGKILL after the grace period unless everything ended before. */
static void kill_group(exec_attempt *a) {
  pid_t pgid;
  if (a->killing || a->pid <= 0 || a->finished)
    return;
  if (a->exited && !a->h_out && !a->h_err)
    return; /* nothing of it is left */
  a->killing = 1;
  watch_exit(a);
  pgid = (pid_t)a->pid;
  (void)kill(-pgid, SIGTERM);
  (void)kill(-pgid, SIGCONT);
  if (a->cfg->grace_ms == 0 || uv_timer_init(fc_node_ctx_loop(a->ctx), &a->kill_timer) != 0) {
    (void)kill(-pgid, SIGKILL);
    return;
  }
  a->kill_timer.data = a;
  a->h_timer = 1;
  a->open++;
  if (uv_timer_start(&a->kill_timer, on_kill_timer, a->cfg->grace_ms, 0) != 0)
    (void)kill(-pgid, SIGKILL);
}

static void on_stop(fc_node_ctx_t *ctx, fc_node_status_t reason, void *data) {
  (void)ctx;
  (void)reason;
  kill_group(data);
}

/* ---- the child's streams -------------------------------------------------------- */

static void start_drain(exec_attempt *a);

static void on_exit_cb(uv_process_t *p, int64_t exit_status, int term_signal) {
  exec_attempt *a = p->data;
  a->exited = 1;
  a->exit_status = exit_status;
  a->term_signal = term_signal;
  if (a->h_proc) {
    a->h_proc = 0;
    uv_close((uv_handle_t *)p, on_closed);
  }
  /* Whatever it did not read of its input, nobody will. */
  close_in(a);
  if (a->h_out || a->h_err)
    start_drain(a); /* a pipe held open by something else gets a bounded time */
  maybe_finish(a);
}

static void internal_error(exec_attempt *a, int err, const char *what) {
  if (a->internal_err == 0) {
    a->internal_err = err;
    a->internal_what = what;
  }
  kill_group(a);
}

static void out_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  exec_attempt *a = h->data;
  size_t room;
  (void)suggested;
  if (a->out_cap - a->out_len < EXEC_OUT_CHUNK) {
    size_t need = a->out_len + EXEC_OUT_CHUNK;
    size_t limit = a->cfg->max_output > SIZE_MAX - EXEC_OUT_CHUNK
                       ? SIZE_MAX
                       : a->cfg->max_output + EXEC_OUT_CHUNK; /* never more is needed */
    size_t ncap = a->out_cap ? a->out_cap : EXEC_OUT_CHUNK;
    char *p;
    while (ncap < need && ncap <= SIZE_MAX / 2)
      ncap *= 2;
    if (ncap > limit)
      ncap = limit;
    p = ncap >= need ? fc__realloc(a->out_buf, ncap) : NULL;
    if (p == NULL) {
      *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
      return;
    }
    a->out_buf = p;
    a->out_cap = ncap;
  }
  room = a->out_cap - a->out_len;
  if (room > (size_t)1 << 20)
    room = (size_t)1 << 20;
  *buf = uv_buf_init(a->out_buf + a->out_len, (unsigned int)room);
}

static void out_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  exec_attempt *a = s->data;
  (void)buf;
  if (nread > 0) {
    a->out_len += (size_t)nread;
    if (a->out_len > a->cfg->max_output) {
      a->too_large = 1;
      close_out(a); /* a later write by the child gets EPIPE or SIGPIPE */
      kill_group(a);
    }
    return;
  }
  if (nread == 0)
    return;
  if (nread == UV_ENOBUFS)
    internal_error(a, FC_ENOMEM, "reading stdout");
  close_out(a); /* EOF, or a read error: either way nothing more comes */
  maybe_finish(a);
}

static void err_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  exec_attempt *a = h->data;
  (void)suggested;
  *buf = uv_buf_init(a->err_buf + a->err_len, (unsigned int)(sizeof a->err_buf - a->err_len));
}

static void err_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  exec_attempt *a = s->data;
  (void)buf;
  if (nread > 0) {
    a->err_len += (size_t)nread;
    a->err_total += (uint64_t)nread;
    if (a->err_len > FC_EXEC_STDERR_TAIL) { /* keep only the tail */
      memmove(a->err_buf, a->err_buf + a->err_len - FC_EXEC_STDERR_TAIL, FC_EXEC_STDERR_TAIL);
      a->err_len = FC_EXEC_STDERR_TAIL;
    }
    return;
  }
  if (nread == 0)
    return;
  close_err(a);
  maybe_finish(a);
}

/* ---- the exit without SIGCHLD ------------------------------------------------ */

static void on_reap_timer(uv_timer_t *t) {
  exec_attempt *a = t->data;
  int status = 0;
  pid_t r;
  if (a->exited)
    return; /* maybe_finish closes the timer */
  do
    r = waitpid((pid_t)a->pid, &status, WNOHANG);
  while (r == -1 && errno == EINTR);
  if (r == 0 || (r == -1 && errno != ECHILD)) {
    a->reap_ms = a->reap_ms >= 500 ? 1000 : a->reap_ms * 2;
    (void)uv_timer_start(t, on_reap_timer, a->reap_ms, 0);
    return;
  }
  if (r == -1) { /* ECHILD: somebody else's waitpid took it */
    a->status_lost = 1;
    on_exit_cb(&a->proc, 0, 0);
  } else {
    on_exit_cb(&a->proc, WIFEXITED(status) ? WEXITSTATUS(status) : 0,
               WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  }
}

/* Starts the reap timer (see the top of this file) unless the exit was
 * seen or the timer runs already. */
static void watch_exit(exec_attempt *a) {
  if (a->h_reap || a->exited || a->pid <= 0)
    return;
  if (uv_timer_init(fc_node_ctx_loop(a->ctx), &a->reap_timer) != 0)
    return; /* SIGCHLD alone, as before */
  a->reap_timer.data = a;
  a->h_reap = 1;
  a->open++;
  a->reap_ms = 50;
  (void)uv_timer_start(&a->reap_timer, on_reap_timer, a->reap_ms, 0);
}

/* ---- draining the pipes after the exit ---------------------------------------- */

/* Reads what the pipe holds now, without waiting, through the stream's own
 * alloc and read callbacks (which close it at EOF, on error or when stdout
 * is too large), then closes it. The number of reads is bounded, so a
 * holder that keeps writing cannot keep us here. */
static void drain_pipe(uv_pipe_t *p, uv_alloc_cb alloc_cb, uv_read_cb read_cb) {
  uv_os_fd_t fd;
  int reads = 0;
  if (uv_is_closing((uv_handle_t *)p) || uv_fileno((uv_handle_t *)p, &fd) != 0)
    return;
  while (!uv_is_closing((uv_handle_t *)p) && reads < 64) {
    uv_buf_t buf;
    ssize_t n;
    alloc_cb((uv_handle_t *)p, EXEC_OUT_CHUNK, &buf);
    if (buf.base == NULL || buf.len == 0) {
      read_cb((uv_stream_t *)p, UV_ENOBUFS, &buf);
      return;
    }
    n = read(fd, buf.base, buf.len);
    if (n < 0 && errno == EINTR)
      continue;
    reads++;
    if (n > 0)
      read_cb((uv_stream_t *)p, n, &buf);
    else if (n == 0)
      read_cb((uv_stream_t *)p, UV_EOF, &buf);
    else if (errno == EAGAIN || errno == EWOULDBLOCK)
      return; /* nothing more for now */
    else
      read_cb((uv_stream_t *)p, UV_EIO, &buf);
  }
}

static void drain_now(exec_attempt *a) {
  if (a->h_out)
    drain_pipe(&a->out, out_alloc, out_read);
  if (a->h_out) {
    a->drained = 1;
    close_out(a);
  }
  if (a->h_err)
    drain_pipe(&a->err, err_alloc, err_read);
  if (a->h_err) {
    a->drained = 1;
    close_err(a);
  }
  maybe_finish(a);
}

static void on_drain_timer(uv_timer_t *t) { drain_now(t->data); }

/* The process exited with a pipe still open: kill_grace_ms more for it
 * (at once when that is 0). */
static void start_drain(exec_attempt *a) {
  if (a->h_drain || a->finished)
    return;
  if (a->cfg->grace_ms == 0 || uv_timer_init(fc_node_ctx_loop(a->ctx), &a->drain_timer) != 0) {
    drain_now(a);
    return;
  }
  a->drain_timer.data = a;
  a->h_drain = 1;
  a->open++;
  if (uv_timer_start(&a->drain_timer, on_drain_timer, a->cfg->grace_ms, 0) != 0)
    drain_now(a);
}

/* ---- stdin ------------------------------------------------------------------- */

static void in_writable(uv_poll_t *p, int status, int events) {
  exec_attempt *a = p->data;
  (void)events;
  if (status < 0) {
    close_in(a);
    return;
  }
  while (a->in_off < a->in_len) {
    ssize_t n = send(a->in_fd, a->in_buf + a->in_off, a->in_len - a->in_off, MSG_NOSIGNAL);
    if (n > 0) {
      a->in_off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return; /* wait for the next writable event */
    break;    /* EPIPE and the like: the child does not want it */
  }
  close_in(a); /* all written (EOF for the child), or no reader left */
}

/* ---- result ------------------------------------------------------------------ */

static json_t *error_details(const exec_attempt *a) {
  json_t *d = json_object(), *cmd = json_array();
  size_t i;
  if (d == NULL || cmd == NULL) {
    json_decref(d);
    json_decref(cmd);
    return NULL;
  }
  for (i = 0; i < a->cfg->argc; i++) {
    size_t len;
    char *s = utf8_sanitize(a->cfg->argv[i], strlen(a->cfg->argv[i]), 0, &len);
    if (s != NULL)
      json_array_append_new(cmd, json_stringn(s, len));
    fc__free(s);
  }
  json_object_set_new(d, "command", cmd);
  if (a->pid > 0)
    json_object_set_new(d, "pid", json_integer(a->pid));
  if (a->exited && a->spawn_err == 0) {
    json_object_set_new(d, "exit_status",
                        a->term_signal ? json_null() : json_integer((json_int_t)a->exit_status));
    json_object_set_new(d, "signal", a->term_signal ? json_integer(a->term_signal) : json_null());
  }
  json_object_set_new(d, "stderr_bytes", json_integer((json_int_t)a->err_total));
  if (a->too_large)
    json_object_set_new(d, "max_output_bytes", json_integer((json_int_t)a->cfg->max_output));
  return d;
}

/* The tail of stderr as valid UTF-8, with a note when it was cut; NULL when
 * stderr was empty (or on ENOMEM). */
static char *stderr_tail(const exec_attempt *a) {
  const unsigned char *s = (const unsigned char *)a->err_buf;
  size_t n = a->err_len, skip = 0, len;
  char *clean, *out;
  char note[96] = "";
  if (n == 0)
    return NULL;
  if (a->err_total > n) {
    /* Cut: do not start inside a UTF-8 sequence. */
    while (skip < 3 && skip < n && (s[skip] & 0xC0) == 0x80)
      skip++;
    snprintf(note, sizeof note, "[... %llu earlier bytes of stderr omitted]\n",
             (unsigned long long)(a->err_total - (n - skip)));
  }
  clean = utf8_sanitize(a->err_buf + skip, n - skip, 0, &len);
  if (clean == NULL || note[0] == '\0')
    return clean;
  out = fc__malloc(strlen(note) + len + 1);
  if (out != NULL) {
    memcpy(out, note, strlen(note));
    memcpy(out + strlen(note), clean, len + 1);
  }
  fc__free(clean);
  return out;
}

static void attempt_free(exec_attempt *a) {
  fc__free(a->in_buf);
  fc__free(a->out_buf);
  fc__free(a);
}

static void fail_with(exec_attempt *a, const char *type, const char *msg) {
  fc_node_ctx_t *ctx = a->ctx;
  fc_error_info_t info;
  char *trace = stderr_tail(a);
  json_t *details = error_details(a);
  memset(&info, 0, sizeof info);
  info.type = type;
  info.message = msg;
  info.stack_trace = trace;
  info.severity = FC_SEVERITY_ERROR;
  info.details = details;
  attempt_free(a);
  fc_node_fail(ctx, &info); /* copies what it keeps */
  fc__free(trace);
  json_decref(details);
}

static void succeed_with_stdout(exec_attempt *a) {
  fc_node_ctx_t *ctx = a->ctx;
  json_error_t jerr;
  json_t *out =
      json_loadb(a->out_buf != NULL ? a->out_buf : "", a->out_len, JSON_DECODE_ANY, &jerr);
  if (out == NULL) {
    size_t len;
    char *text = utf8_sanitize(a->out_buf != NULL ? a->out_buf : "", a->out_len, 0, &len);
    json_t *str = text != NULL ? json_stringn(text, len) : NULL;
    fc__free(text);
    out = str != NULL ? json_object() : NULL;
    if (out == NULL || json_object_set_new(out, "stdout", str) != 0) {
      json_decref(out);
      if (out == NULL)
        json_decref(str);
      attempt_free(a);
      fc_node_failf(ctx, FC_SEVERITY_ERROR, "exec_error", "out of memory keeping stdout");
      return;
    }
  }
  attempt_free(a);
  fc_node_succeed(ctx, out);
}

static void finish(exec_attempt *a) {
  char msg[FC_ERROR_TEXT_LENGTH];
  const exec_cfg *cfg = a->cfg;
  a->finished = 1;
  if (fc_node_ctx_stopped(a->ctx)) {
    /* Timed out or cancelled: the engine already ended the attempt. */
    fail_with(a, "stopped", "the attempt was stopped");
  } else if (a->spawn_err != 0) {
    if (cfg->cwd != NULL)
      snprintf(msg, sizeof msg, "cannot start command \"%s\" in directory \"%.160s\": %s (%s)",
               cfg->display, cfg->cwd, uv_strerror(a->spawn_err), uv_err_name(a->spawn_err));
    else
      snprintf(msg, sizeof msg, "cannot start command \"%s\": %s (%s)", cfg->display,
               uv_strerror(a->spawn_err), uv_err_name(a->spawn_err));
    fail_with(a, "spawn_error", msg);
  } else if (a->status_lost) {
    snprintf(msg, sizeof msg,
             "command \"%s\" ended, but its exit status was collected by another waitpid() "
             "of this process (a SIGCHLD handler?)",
             cfg->display);
    fail_with(a, "exec_error", msg);
  } else if (a->internal_err != 0) {
    snprintf(msg, sizeof msg, "command \"%s\": %s: %s", cfg->display, a->internal_what,
             fc_strerror(a->internal_err));
    fail_with(a, "exec_error", msg);
  } else if (a->too_large) {
    snprintf(msg, sizeof msg,
             "command \"%s\" wrote more than %zu bytes to stdout (max_output_bytes); it was "
             "stopped",
             cfg->display, cfg->max_output);
    fail_with(a, "output_too_large", msg);
  } else if (a->term_signal != 0) {
    snprintf(msg, sizeof msg, "command \"%s\" was killed by signal %d (%s)", cfg->display,
             a->term_signal, signal_name(a->term_signal));
    fail_with(a, "signal", msg);
  } else if (a->exit_status != 0) {
    snprintf(msg, sizeof msg, "command \"%s\" exited with status %lld", cfg->display,
             (long long)a->exit_status);
    fail_with(a, "exit_status", msg);
  } else {
    succeed_with_stdout(a);
  }
}

/* ---- starting an attempt ----------------------------------------------------- */

/* Length of the NAME part of "NAME=value" (the whole string if no '='). */
static size_t env_name_len(const char *e) {
  const char *eq = strchr(e, '=');
  return eq != NULL ? (size_t)(eq - e) : strlen(e);
}

static int env_overridden(const char *e, char *const *adds, size_t nadds) {
  size_t n = env_name_len(e), j;
  for (j = 0; j < nadds; j++)
    if (env_name_len(adds[j]) == n && strncmp(adds[j], e, n) == 0)
      return 1;
  return 0;
}

/* The child's environment: ours, then FLOWCORE_*, then the node's env; a
 * later entry replaces an earlier one of the same name. The array and
 * *own (the FLOWCORE_* strings) are new; the other strings are borrowed. */
static char **build_env(fc_node_ctx_t *ctx, const exec_cfg *cfg, char **own) {
  const char *wid = fc_node_ctx_workflow_id(ctx), *nid = fc_node_ctx_node_id(ctx);
  size_t nenviron = 0, nadds = 3 + cfg->nenv, i, k = 0, size;
  char **adds, **envp;
  char *buf;
  int w1, w2;
  while (environ != NULL && environ[nenviron] != NULL)
    nenviron++;
  size = strlen(wid) + strlen(nid) + 96;
  buf = fc__malloc(size);
  adds = fc__malloc(nadds * sizeof *adds);
  envp = fc__malloc((nenviron + nadds + 1) * sizeof *envp);
  if (buf == NULL || adds == NULL || envp == NULL) {
    fc__free(buf);
    fc__free(adds);
    fc__free(envp);
    return NULL;
  }
  w1 = snprintf(buf, size, "FLOWCORE_WORKFLOW_ID=%s", wid);
  w2 = snprintf(buf + w1 + 1, size - (size_t)w1 - 1, "FLOWCORE_NODE_ID=%s", nid);
  snprintf(buf + w1 + 1 + w2 + 1, size - (size_t)(w1 + w2) - 2, "FLOWCORE_ATTEMPT=%d",
           fc_node_ctx_attempt(ctx));
  adds[0] = buf;
  adds[1] = buf + w1 + 1;
  adds[2] = buf + w1 + 1 + w2 + 1;
  for (i = 0; i < cfg->nenv; i++)
    adds[3 + i] = cfg->env[i];
  for (i = 0; i < nenviron; i++)
    if (!env_overridden(environ[i], adds, nadds))
      envp[k++] = environ[i];
  for (i = 0; i < nadds; i++)
    if (!env_overridden(adds[i], adds + i + 1, nadds - i - 1))
      envp[k++] = adds[i];
  envp[k] = NULL;
  fc__free(adds);
  *own = buf;
  return envp;
}

/* The node input as compact JSON plus "\n", in a buffer of ours. */
static char *input_text(json_t *input, size_t *len) {
  const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
  size_t n = json_dumpb(input, NULL, 0, flags);
  char *buf;
  if (n == 0)
    return NULL;
  buf = fc__malloc(n + 1);
  if (buf == NULL)
    return NULL;
  if (json_dumpb(input, buf, n, flags) != n) {
    fc__free(buf);
    return NULL;
  }
  buf[n] = '\n';
  *len = n + 1;
  return buf;
}

static void exec_fn(fc_node_ctx_t *ctx, void *data) {
  const exec_cfg *cfg = data;
  uv_loop_t *loop = fc_node_ctx_loop(ctx);
  uv_process_options_t opts;
  uv_stdio_container_t stdio[3];
  uv_os_sock_t fds[2];
  exec_attempt *a;
  char **envp, *env_own = NULL;
  int rc;

  a = fc__calloc(1, sizeof *a);
  if (a == NULL) {
    fc_node_failf(ctx, FC_SEVERITY_ERROR, "exec_error", "command \"%s\": out of memory",
                  cfg->display);
    return;
  }
  a->ctx = ctx;
  a->cfg = cfg;
  a->in_fd = -1;
  a->in_buf = input_text(fc_node_ctx_input(ctx), &a->in_len);
  envp = build_env(ctx, cfg, &env_own);
  if (a->in_buf == NULL || envp == NULL) {
    fc__free(envp);
    fc__free(env_own);
    attempt_free(a);
    fc_node_failf(ctx, FC_SEVERITY_ERROR, "exec_error", "command \"%s\": out of memory",
                  cfg->display);
    return;
  }
  rc = uv_socketpair(SOCK_STREAM, 0, fds, UV_NONBLOCK_PIPE, 0);
  if (rc != 0) {
    fc__free(envp);
    fc__free(env_own);
    attempt_free(a);
    fc_node_failf(ctx, FC_SEVERITY_ERROR, "spawn_error",
                  "cannot start command \"%s\": stdin socket: %s (%s)", cfg->display,
                  uv_strerror(rc), uv_err_name(rc));
    return;
  }
  /* From here on, the attempt ends through the handles' close callbacks. */
  fc_node_ctx_on_stop(ctx, on_stop, a);
  uv_pipe_init(loop, &a->out, 0);
  uv_pipe_init(loop, &a->err, 0);
  a->out.data = a->err.data = a->proc.data = a->in.data = a;
  a->h_out = a->h_err = 1;
  a->open = 2;

  memset(&opts, 0, sizeof opts);
  memset(stdio, 0, sizeof stdio);
  stdio[0].flags = UV_INHERIT_FD;
  stdio[0].data.fd = fds[1];
  stdio[1].flags = (uv_stdio_flags)(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[1].data.stream = (uv_stream_t *)&a->out;
  stdio[2].flags = (uv_stdio_flags)(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[2].data.stream = (uv_stream_t *)&a->err;
  opts.exit_cb = on_exit_cb;
  opts.file = cfg->argv[0];
  opts.args = cfg->argv;
  opts.env = envp;
  opts.cwd = cfg->cwd;
  opts.flags = UV_PROCESS_DETACHED; /* setsid: the child leads its own group */
  opts.stdio_count = 3;
  opts.stdio = stdio;
  rc = uv_spawn(loop, &a->proc, &opts);
  /* uv_spawn initialised the handle even when it failed; the child has its
   * own copies of the environment and of its end of the socket. */
  a->h_proc = 1;
  a->open++;
  a->proc.data = a;
  fc__free(envp);
  fc__free(env_own);
  close(fds[1]);

  if (rc != 0) {
    close(fds[0]);
    a->spawn_err = rc;
    a->exited = 1;
    a->h_proc = 0;
    uv_close((uv_handle_t *)&a->proc, on_closed);
    close_out(a);
    close_err(a);
    return; /* the last close callback fails the attempt */
  }
  a->pid = a->proc.pid;

  rc = uv_poll_init(loop, &a->in, fds[0]);
  if (rc == 0) {
    a->in.data = a;
    a->in_fd = fds[0];
    a->h_in = 1;
    a->open++;
    if (uv_poll_start(&a->in, UV_WRITABLE, in_writable) != 0)
      close_in(a); /* the child reads EOF */
  } else {
    close(fds[0]);
  }
  if (uv_read_start((uv_stream_t *)&a->out, out_alloc, out_read) != 0) {
    internal_error(a, FC_EINVAL, "reading stdout");
    close_out(a);
  }
  if (uv_read_start((uv_stream_t *)&a->err, err_alloc, err_read) != 0) {
    internal_error(a, FC_EINVAL, "reading stderr");
    close_err(a);
  }
  maybe_finish(a);
}

/* ---- configuration ------------------------------------------------------------ */

static void str_list_free(char **l) {
  size_t i;
  if (l == NULL)
    return;
  for (i = 0; l[i] != NULL; i++)
    fc__free(l[i]);
  fc__free(l);
}

static void exec_cfg_free(void *data) {
  exec_cfg *cfg = data;
  if (cfg == NULL)
    return;
  str_list_free(cfg->argv);
  str_list_free(cfg->env);
  fc__free(cfg->cwd);
  fc__free(cfg->display);
  fc__free(cfg);
}

/* Copies a NULL-terminated list (NULL gives an empty one). */
static char **str_list_copy(const char *const *src, size_t *count) {
  size_t n = 0, i;
  char **l;
  while (src != NULL && src[n] != NULL)
    n++;
  l = fc__calloc(n + 1, sizeof *l);
  if (l == NULL)
    return NULL;
  for (i = 0; i < n; i++) {
    l[i] = fc__strdup(src[i]);
    if (l[i] == NULL) {
      str_list_free(l);
      return NULL;
    }
  }
  *count = n;
  return l;
}

/* argv joined with spaces, shortened to EXEC_DISPLAY_MAX bytes, made one
 * line of valid UTF-8 (the argv of a C caller may be anything). */
static char *make_display(char *const *argv) {
  char raw[EXEC_DISPLAY_MAX + 4];
  size_t used = 0, i;
  int cut = 0;
  for (i = 0; argv[i] != NULL && !cut; i++) {
    size_t len = strlen(argv[i]);
    if (i > 0 && used < EXEC_DISPLAY_MAX)
      raw[used++] = ' ';
    if (used + len > EXEC_DISPLAY_MAX) {
      len = EXEC_DISPLAY_MAX - used;
      cut = 1;
    }
    memcpy(raw + used, argv[i], len);
    used += len;
  }
  if (argv[i] != NULL)
    cut = 1;
  if (cut) {
    used = fc__utf8_cut(raw, used); /* do not end inside a character */
    memcpy(raw + used, "...", 3);
    used += 3;
  }
  return utf8_sanitize(raw, used, 1, NULL);
}

void fc_exec_options_init(fc_exec_options_t *opts) {
  if (opts == NULL)
    return;
  memset(opts, 0, sizeof *opts);
  opts->max_output_bytes = FC_EXEC_DEFAULT_MAX_OUTPUT;
  opts->kill_grace_ms = FC_EXEC_DEFAULT_KILL_GRACE_MS;
}

int fc_workflow_add_exec_node(fc_workflow_t *wf, const char *id, const char *const *argv,
                              const fc_exec_options_t *opts, fc_node_t **node_out) {
  fc_exec_options_t defaults;
  exec_cfg *cfg;
  size_t i;
  if (node_out != NULL)
    *node_out = NULL;
  if (opts == NULL) {
    fc_exec_options_init(&defaults);
    opts = &defaults;
  }
  if (wf == NULL || id == NULL || argv == NULL || argv[0] == NULL || argv[0][0] == '\0' ||
      opts->max_output_bytes == 0 || (opts->cwd != NULL && opts->cwd[0] == '\0'))
    return FC_EINVAL;
  for (i = 0; opts->env != NULL && opts->env[i] != NULL; i++) {
    const char *eq = strchr(opts->env[i], '=');
    if (eq == NULL || eq == opts->env[i])
      return FC_EINVAL;
  }
  cfg = fc__calloc(1, sizeof *cfg);
  if (cfg == NULL)
    return FC_ENOMEM;
  cfg->argv = str_list_copy(argv, &cfg->argc);
  cfg->env = str_list_copy(opts->env, &cfg->nenv);
  cfg->cwd = opts->cwd != NULL ? fc__strdup(opts->cwd) : NULL;
  cfg->max_output = opts->max_output_bytes;
  cfg->grace_ms = opts->kill_grace_ms;
  cfg->display = cfg->argv != NULL ? make_display(cfg->argv) : NULL;
  if (cfg->argv == NULL || cfg->env == NULL || cfg->display == NULL ||
      (opts->cwd != NULL && cfg->cwd == NULL)) {
    exec_cfg_free(cfg);
    return FC_ENOMEM;
  }
  return fc__nodes_add(wf, id, "exec", 0, exec_fn, cfg, exec_cfg_free, node_out);
}

/* ---- in a workflow file ----------------------------------------------------- */

static const char *const exec_fields[] = {"command",          "env",           "cwd",
                                          "max_output_bytes", "kill_grace_ms", NULL};

static void check_command(fc__load_node_t *N, json_t *node) {
  json_t *cmd = json_object_get(node, "command"), *v;
  size_t k;
  if (cmd == NULL) {
    fc__load_error(N, FC_EDEFINITION, NULL,
                   "missing required field \"command\" (an array: program and arguments)");
    return;
  }
  if (!json_is_array(cmd) || json_array_size(cmd) == 0) {
    fc__load_error(N, FC_EDEFINITION, "command",
                   "expected a non-empty array of strings (program and arguments)");
    return;
  }
  json_array_foreach (cmd, k, v) {
    char sub[32];
    snprintf(sub, sizeof sub, "command[%zu]", k);
    if (!fc__load_string(N, v, sub, 0))
      continue;
    if (k == 0 && json_string_length(v) == 0)
      fc__load_error(N, FC_EDEFINITION, sub, "the program must not be empty");
  }
}

static void check_env(fc__load_node_t *N, json_t *node) {
  json_t *env = json_object_get(node, "env"), *v;
  const char *name;
  if (env == NULL)
    return;
  if (!json_is_object(env)) {
    fc__load_error(N, FC_EDEFINITION, "env", "expected an object of strings");
    return;
  }
  json_object_foreach (env, name, v) {
    char sub[96], shown[80];
    snprintf(sub, sizeof sub, "env.%s", fc__load_show(shown, sizeof shown, name, 64));
    if (name[0] == '\0' || strchr(name, '=') != NULL)
      fc__load_error(N, FC_EDEFINITION, sub, "invalid variable name (empty or containing '=')");
    fc__load_string(N, v, sub, 0);
  }
}

static void exec_check(fc__load_node_t *N, json_t *node) {
  json_t *v;
  uint64_t x;
  check_command(N, node);
  check_env(N, node);
  if ((v = json_object_get(node, "cwd")) != NULL)
    fc__load_string(N, v, "cwd", 1);
  fc__load_uint(N, node, "max_output_bytes", 1, (uint64_t)1 << 30, &x);
  fc__load_uint(N, node, "kill_grace_ms", 0, (uint64_t)1 << 40, &x);
}

/* The file's command, env ("NAME=value" strings, made here) and options,
 * borrowed from `node` for fc_workflow_add_exec_node, which copies them. */
static int exec_add(fc_workflow_t *wf, const char *id, json_t *node, fc_node_t **node_out) {
  json_t *cmd = json_object_get(node, "command"), *env = json_object_get(node, "env"), *v;
  size_t argc = json_array_size(cmd), nenv = json_object_size(env), e = 0, k;
  const char **argv = fc__calloc(argc + 1, sizeof *argv);
  const char **envv = fc__calloc(nenv + 1, sizeof *envv);
  char **envs = fc__calloc(nenv + 1, sizeof *envs);
  fc_exec_options_t opts;
  int rc = FC_ENOMEM;
  fc_exec_options_init(&opts);
  if (argv != NULL && envv != NULL && envs != NULL) {
    const char *name;
    json_t *val;
    rc = 0;
    json_array_foreach (cmd, k, v)
      argv[k] = json_string_value(v);
    json_object_foreach (env, name, val) {
      size_t ln = strlen(name), lv = json_string_length(val);
      envs[e] = fc__malloc(ln + lv + 2);
      if (envs[e] == NULL) {
        rc = FC_ENOMEM;
        break;
      }
      memcpy(envs[e], name, ln);
      envs[e][ln] = '=';
      memcpy(envs[e] + ln + 1, json_string_value(val), lv + 1);
      envv[e] = envs[e];
      e++;
    }
    if ((v = json_object_get(node, "cwd")) != NULL)
      opts.cwd = json_string_value(v);
    if ((v = json_object_get(node, "max_output_bytes")) != NULL)
      opts.max_output_bytes = (size_t)json_integer_value(v);
    if ((v = json_object_get(node, "kill_grace_ms")) != NULL)
      opts.kill_grace_ms = (uint64_t)json_integer_value(v);
    opts.env = envv;
    if (rc == 0)
      rc = fc_workflow_add_exec_node(wf, id, argv, &opts, node_out);
  }
  for (k = 0; envs != NULL && k < e; k++)
    fc__free(envs[k]);
  fc__free(envs);
  fc__free(envv);
  fc__free(argv);
  return rc;
}

const fc__node_type_t fc__node_type_exec = {
    .name = "exec", .fields = exec_fields, .check = exec_check, .add = exec_add};

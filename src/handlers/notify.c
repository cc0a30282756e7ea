/* The notification handler (rules -> notifier) and the command notifier
 * (one child process per notification, asynchronous on the loop).
 *
 * Child lifecycle: uv_spawn with a stdin pipe; the payload is written at
 * once with uv_try_write (it fits in the pipe: at most PAYLOAD_MAX bytes),
 * then stdin is closed; a timer kills a child that outlives timeout_ms; the
 * exit callback classifies the outcome and closes the process and timer
 * handles. The child record is freed when its last handle is closed, and
 * the notifier (when closing) when its last child is gone. */
#include <signal.h>
#include <stdio.h>
#include <time.h>

#include <uv.h>

#include "internal.h"

#define DEFAULT_LONG_RUNNING_MS INT64_C(300000)
#define DEFAULT_MAX_CONCURRENT 4
#define DEFAULT_CHILD_TIMEOUT_MS 30000
#define PAYLOAD_MAX (32 * 1024)
#define MESSAGE_MAX 1024

/* ---- the handler ------------------------------------------------------------- */

struct fc_notify_s {
  fc_notifier_t notifier;
  int long_running;
  int64_t long_running_ms;
  fc_notify_estimate_cb estimate;
  void *estimate_data;
  int errors;
  fc_severity_t error_min_severity;
  int notify_on_complete, notify_on_failure, input_flags;
  char *channel[4]; /* long_running, error, complete, failure */
  fc_notify_stats_t stats;
};

enum { CH_LONG = 0, CH_ERROR, CH_COMPLETE, CH_FAILURE };

void fc_notify_options_init(fc_notify_options_t *o) {
  if (o == NULL)
    return;
  memset(o, 0, sizeof *o);
  o->long_running = 1;
  o->long_running_ms = DEFAULT_LONG_RUNNING_MS;
  o->errors = 1;
  o->error_min_severity = FC_SEVERITY_CRITICAL;
  o->input_flags = 1;
}

static void notifier_destroy(const fc_notifier_t *nt) {
  if (nt->destroy != NULL)
    nt->destroy(nt->self);
}

int fc_notify_new(fc_notify_t **out, const fc_notify_options_t *opts) {
  static const char *const dflt[4] = {"slack", "pagerduty", "email", "email"};
  const char *given[4];
  fc_notify_t *n;
  int i;
  if (out != NULL)
    *out = NULL;
  if (opts == NULL)
    return FC_EINVAL;
  if (out == NULL || opts->notifier.send == NULL ||
      (unsigned)opts->error_min_severity > (unsigned)FC_SEVERITY_CRITICAL) {
    notifier_destroy(&opts->notifier);
    return FC_EINVAL;
  }
  given[CH_LONG] = opts->channel_long_running;
  given[CH_ERROR] = opts->channel_error;
  given[CH_COMPLETE] = opts->channel_complete;
  given[CH_FAILURE] = opts->channel_failure;
  n = fc__calloc(1, sizeof *n);
  if (n == NULL) {
    notifier_destroy(&opts->notifier);
    return FC_ENOMEM;
  }
  n->notifier = opts->notifier;
  for (i = 0; i < 4; i++) {
    n->channel[i] = fc__strdup(given[i] != NULL ? given[i] : dflt[i]);
    if (n->channel[i] == NULL) {
      fc_notify_free(n);
      return FC_ENOMEM;
    }
  }
  n->long_running = opts->long_running;
  n->long_running_ms = opts->long_running_ms;
  n->estimate = opts->estimate;
  n->estimate_data = opts->estimate_data;
  n->errors = opts->errors;
  n->error_min_severity = opts->error_min_severity;
  n->notify_on_complete = opts->notify_on_complete;
  n->notify_on_failure = opts->notify_on_failure;
  n->input_flags = opts->input_flags;
  *out = n;
  return 0;
}

void fc_notify_free(fc_notify_t *n) {
  int i;
  if (n == NULL)
    return;
  notifier_destroy(&n->notifier);
  for (i = 0; i < 4; i++)
    fc__free(n->channel[i]);
  fc__free(n);
}

void fc_notify_stats(const fc_notify_t *n, fc_notify_stats_t *out) {
  if (out == NULL)
    return;
  if (n == NULL)
    memset(out, 0, sizeof *out);
  else
    *out = n->stats;
}

static const char *or_empty(const char *s) { return s != NULL ? s : ""; }

/* fields with the run's identity, or NULL on ENOMEM. */
static json_t *base_fields(const char *rule, const fc_event_t *ev) {
  json_t *f = json_object();
  if (f == NULL)
    return NULL;
  if (json_object_set_new(f, "rule", json_string(rule)) != 0 ||
      json_object_set_new(f, "workflow_id", json_string(or_empty(ev->workflow_id))) != 0 ||
      json_object_set_new(f, "workflow_name", json_string(or_empty(ev->workflow_name))) != 0) {
    json_decref(f);
    return NULL;
  }
  return f;
}

/* Sends, counts, releases fields (owned). bad: building fields failed. */
static int deliver(fc_notify_t *n, int ch, const char *message, json_t *fields, int bad) {
  int rc;
  if (bad || fields == NULL) {
    json_decref(fields);
    rc = FC_ENOMEM;
  } else {
    rc = n->notifier.send(n->notifier.self, n->channel[ch], message, fields);
    json_decref(fields);
  }
  if (rc == 0) {
    n->stats.sent++;
  } else {
    n->stats.send_failures++;
    n->stats.last_error = rc;
  }
  return rc;
}

static int64_t input_estimate(json_t *input) {
  json_t *v;
  if (!json_is_object(input))
    return -1;
  v = json_object_get(input, "estimated_duration_ms");
  if (json_is_number(v))
    return (int64_t)json_number_value(v);
  v = json_object_get(input, "estimated_duration");
  if (json_is_number(v))
    return (int64_t)(json_number_value(v) * 1000.0);
  return -1;
}

static int on_start(fc_notify_t *n, const fc_event_t *ev) {
  int64_t est;
  json_t *f;
  char msg[MESSAGE_MAX];
  int bad = 0;
  if (!n->long_running)
    return 0;
  est = n->estimate != NULL ? n->estimate(n->estimate_data, ev) : input_estimate(ev->input);
  if (est < 0 || est <= n->long_running_ms)
    return 0;
  n->stats.long_running++;
  snprintf(msg, sizeof msg, "Long-running workflow %s (%s) started: estimated %.1f s",
           or_empty(ev->workflow_name), or_empty(ev->workflow_id), (double)est / 1000.0);
  f = base_fields("long_running", ev);
  if (f != NULL) {
    bad |= json_object_set_new(f, "estimated_duration_ms", json_integer((json_int_t)est));
    bad |= json_object_set_new(f, "threshold_ms", json_integer((json_int_t)n->long_running_ms));
  }
  return deliver(n, CH_LONG, msg, f, bad);
}

static int on_error(fc_notify_t *n, const fc_event_t *ev) {
  const fc_error_info_t *e = ev->error;
  const char *node;
  json_t *f;
  char msg[MESSAGE_MAX], sev[16];
  int bad = 0;
  if (!n->errors || e == NULL || (unsigned)e->severity > (unsigned)FC_SEVERITY_CRITICAL ||
      e->severity < n->error_min_severity)
    return 0;
  n->stats.errors++;
  node = e->node_id != NULL ? e->node_id : ev->node_id;
  snprintf(sev, sizeof sev, "%s", fc_severity_name(e->severity));
  sev[0] = (char)(sev[0] - 'a' + 'A');
  if (node != NULL)
    snprintf(msg, sizeof msg, "%s error in workflow %s (%s), node %s: %s", sev,
             or_empty(ev->workflow_name), or_empty(ev->workflow_id), node, or_empty(e->message));
  else
    snprintf(msg, sizeof msg, "%s error in workflow %s (%s): %s", sev, or_empty(ev->workflow_name),
             or_empty(ev->workflow_id), or_empty(e->message));
  f = base_fields("error", ev);
  if (f != NULL) {
    bad |= json_object_set_new(f, "node_id", node != NULL ? json_string(node) : json_null());
    bad |= json_object_set_new(f, "attempt", json_integer(e->attempt ? e->attempt : ev->attempt));
    bad |= json_object_set_new(f, "severity", json_string(fc_severity_name(e->severity)));
    bad |= json_object_set_new(f, "type", json_string(or_empty(e->type)));
    bad |= json_object_set_new(f, "message", json_string(or_empty(e->message)));
    bad |= json_object_set_new(
        f, "urgency", json_string(e->severity == FC_SEVERITY_CRITICAL ? "high" : "normal"));
  }
  return deliver(n, CH_ERROR, msg, f, bad);
}

static int input_flag(const fc_notify_t *n, const fc_event_t *ev, const char *name) {
  return n->input_flags && json_is_object(ev->input) &&
         json_is_true(json_object_get(ev->input, name));
}

static int on_end(fc_notify_t *n, const fc_event_t *ev) {
  int completed = ev->status == FC_WORKFLOW_COMPLETED;
  int ch = completed ? CH_COMPLETE : CH_FAILURE;
  const char *status;
  json_t *f, *email;
  char msg[MESSAGE_MAX];
  int bad = 0;
  if (completed) {
    if (!n->notify_on_complete && !input_flag(n, ev, "notify_on_complete"))
      return 0;
    n->stats.completed++;
  } else {
    if (ev->status != FC_WORKFLOW_FAILED && ev->status != FC_WORKFLOW_CANCELLED)
      return 0;
    if (!n->notify_on_failure && !input_flag(n, ev, "notify_on_failure"))
      return 0;
    n->stats.failed++;
  }
  status = fc_workflow_status_name((fc_workflow_status_t)ev->status);
  if (completed)
    snprintf(msg, sizeof msg, "Workflow %s (%s) completed in %.3f s", or_empty(ev->workflow_name),
             or_empty(ev->workflow_id), (double)ev->duration_us / 1e6);
  else
    snprintf(msg, sizeof msg, "Workflow %s (%s) %s after %.3f s (%d errors)",
             or_empty(ev->workflow_name), or_empty(ev->workflow_id), status,
             (double)ev->duration_us / 1e6, ev->error_count);
  f = base_fields(completed ? "complete" : "failure", ev);
  if (f != NULL) {
    bad |= json_object_set_new(f, "status", json_string(status));
    bad |= json_object_set_new(f, "duration_ms", json_real((double)ev->duration_us / 1000.0));
    bad |= json_object_set_new(f, "error_count", json_integer(ev->error_count));
    if (ev->status_counts != NULL)
      bad |= json_object_set_new(
          f, "failed_nodes",
          json_integer(ev->status_counts[FC_NODE_FAILED] + ev->status_counts[FC_NODE_TIMED_OUT]));
    email = json_is_object(ev->input) ? json_object_get(ev->input, "user_email") : NULL;
    if (json_is_string(email))
      bad |= json_object_set(f, "user_email", email);
  }
  return deliver(n, ch, msg, f, bad);
}

int fc_notify_observe(fc_notify_t *n, const fc_event_t *ev) {
  if (n == NULL || ev == NULL)
    return FC_EINVAL;
  switch (ev->kind) {
  case FC_EVENT_WORKFLOW_START:
    return on_start(n, ev);
  case FC_EVENT_ERROR:
    return on_error(n, ev);
  case FC_EVENT_WORKFLOW_END:
    return on_end(n, ev);
  case FC_EVENT_NODE_START:
  case FC_EVENT_NODE_END:
    return 0;
  default:
    return FC_EINVAL;
  }
}

static int notify_cb(void *self, const fc_event_t *ev) { return fc_notify_observe(self, ev); }

static void notify_destroy(void *self) { fc_notify_free(self); }

/* The view of n: borrowing (destroy NULL) or owning it. */
static int notify_view(fc_notify_t *n, fc_handler_t *out, void (*destroy)(void *self)) {
  int rc = fc__handler_of(out, "notify", n, notify_cb, destroy);
  /* Node events never notify: leave them out of the manager's tables. */
  if (rc == 0) {
    out->on_node_start = NULL;
    out->on_node_end = NULL;
  }
  return rc;
}

int fc_notify_handler(fc_notify_t *n, fc_handler_t *out) { return notify_view(n, out, NULL); }

int fc_notify_handler_owned(fc_notify_t *n, fc_handler_t *out) {
  return notify_view(n, out, notify_destroy);
}

/* ---- the command notifier ---------------------------------------------------- */

typedef struct child_s child_t;

struct fc_cmd_notifier_s {
  uv_loop_t *loop;
  char **argv;
  unsigned max_concurrent;
  uint64_t timeout_ms;
  int inherit_output;
  child_t *children; /* every child record not freed yet */
  int closing;
  int close_timer_open;
  uv_timer_t close_timer; /* the close deadline */
  fc_cmd_notifier_close_cb close_cb;
  void *close_data;
  fc_cmd_notifier_stats_t stats;
};

struct child_s {
  uv_process_t proc;
  uv_pipe_t in;
  uv_timer_t timer;
  fc_cmd_notifier_t *c;
  child_t *prev, *next;
  int handles;   /* handles not yet closed */
  int running;   /* spawned and not yet exited */
  int timed_out; /* we killed it at its timeout */
  int killed_at_close;
};

static void cmd_maybe_finish(fc_cmd_notifier_t *c);

static void child_handle_closed(uv_handle_t *h) {
  child_t *ch = h->data;
  fc_cmd_notifier_t *c = ch->c;
  if (--ch->handles > 0)
    return;
  if (ch->prev != NULL)
    ch->prev->next = ch->next;
  else
    c->children = ch->next;
  if (ch->next != NULL)
    ch->next->prev = ch->prev;
  fc__free(ch);
  cmd_maybe_finish(c);
}

static void child_close(uv_handle_t *h) {
  if (!uv_is_closing(h))
    uv_close(h, child_handle_closed);
}

static void child_exit_cb(uv_process_t *proc, int64_t exit_status, int term_signal) {
  child_t *ch = proc->data;
  fc_cmd_notifier_t *c = ch->c;
  ch->running = 0;
  c->stats.running--;
  if (term_signal != 0) {
    c->stats.signaled++;
    c->stats.failed++;
    c->stats.last_exit_status = 0;
    if (ch->timed_out)
      c->stats.timed_out++;
    if (ch->killed_at_close)
      c->stats.killed_at_close++;
  } else {
    c->stats.last_exit_status = (int)exit_status;
    if (exit_status != 0) {
      c->stats.exit_nonzero++;
      c->stats.failed++;
    } else {
      c->stats.succeeded++;
    }
  }
  uv_timer_stop(&ch->timer);
  child_close((uv_handle_t *)&ch->proc);
  child_close((uv_handle_t *)&ch->timer);
}

static void child_timeout_cb(uv_timer_t *t) {
  child_t *ch = t->data;
  if (!ch->running)
    return;
  ch->timed_out = 1;
  uv_process_kill(&ch->proc, SIGKILL);
}

typedef struct {
  char *p;
  size_t len;
  int over; /* more than PAYLOAD_MAX - 1 bytes */
} pbuf_t;

static int pbuf_add(const char *buffer, size_t size, void *data) {
  pbuf_t *b = data;
  if (b->len + size + 1 > PAYLOAD_MAX) {
    b->over = 1;
    return -1;
  }
  memcpy(b->p + b->len, buffer, size);
  b->len += size;
  return 0;
}

/* The JSON line for a notification, "{...}\n", in a new buffer of *len
 * bytes (at most PAYLOAD_MAX), or NULL on ENOMEM. */
static char *payload_new(const char *channel, const char *message, json_t *fields, size_t *len) {
  pbuf_t b;
  char cut[MESSAGE_MAX + 1];
  int pass, rc = -1;
  b.p = fc__malloc(PAYLOAD_MAX);
  if (b.p == NULL)
    return NULL;
  for (pass = 0; pass < 2 && rc != 0; pass++) {
    json_t *obj = json_object();
    json_t *fv;
    int bad;
    if (obj == NULL)
      break;
    if (pass == 0) {
      fv = json_is_object(fields) ? json_incref(fields) : json_object();
    } else {
      /* Too large: cut the message, drop the fields. */
      fv = json_pack("{sb}", "truncated", 1);
      snprintf(cut, sizeof cut, "%s", or_empty(message));
      message = cut;
    }
    bad = json_object_set_new(obj, "channel", json_string(or_empty(channel)));
    bad |= json_object_set_new(obj, "message", json_string(or_empty(message)));
    bad |= json_object_set_new(obj, "fields", fv);
    b.len = 0;
    b.over = 0;
    rc = bad ? -1 : json_dump_callback(obj, pbuf_add, &b, JSON_COMPACT);
    json_decref(obj);
    if (bad || (rc != 0 && !b.over))
      break; /* out of memory */
  }
  if (rc != 0) {
    fc__free(b.p);
    return NULL;
  }
  b.p[b.len++] = '\n';
  *len = b.len;
  return b.p;
}

/* Writes buf at once to the child's stdin, with SIGPIPE blocked (a child
 * that exited without reading must not kill us); a SIGPIPE raised by the
 * write is consumed before the mask is restored. Returns 0 or an error. */
static int write_stdin(uv_pipe_t *in, char *buf, size_t len) {
  sigset_t pipe_set, old, pending;
  int was_pending, rc;
  uv_buf_t b = uv_buf_init(buf, (unsigned int)len);
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  sigpending(&pending);
  was_pending = sigismember(&pending, SIGPIPE);
  rc = uv_try_write((uv_stream_t *)in, &b, 1);
  if (!was_pending) {
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE)) {
      struct timespec zero = {0, 0};
      (void)sigtimedwait(&pipe_set, NULL, &zero);
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc < 0)
    return rc;
  return (size_t)rc == len ? 0 : UV_EAGAIN;
}

int fc_cmd_notifier_send(fc_cmd_notifier_t *c, const char *channel, const char *message,
                         json_t *fields) {
  uv_process_options_t po;
  uv_stdio_container_t stdio[3];
  child_t *ch;
  char *buf;
  size_t len = 0;
  int rc;
  if (c == NULL)
    return FC_EINVAL;
  c->stats.requested++;
  if (c->closing) {
    c->stats.dropped++;
    return FC_ECANCELED;
  }
  if (c->stats.running >= c->max_concurrent) {
    c->stats.dropped++;
    return UV_EBUSY;
  }
  buf = payload_new(channel, message, fields, &len);
  ch = fc__calloc(1, sizeof *ch);
  if (buf == NULL || ch == NULL) {
    fc__free(buf);
    fc__free(ch);
    c->stats.dropped++;
    return FC_ENOMEM;
  }
  ch->c = c;
  ch->proc.data = ch;
  ch->in.data = ch;
  ch->timer.data = ch;
  ch->next = c->children;
  if (c->children != NULL)
    c->children->prev = ch;
  c->children = ch;

  uv_pipe_init(c->loop, &ch->in, 0);
  ch->handles++;
  memset(&po, 0, sizeof po);
  memset(stdio, 0, sizeof stdio);
  stdio[0].flags = (uv_stdio_flags)(UV_CREATE_PIPE | UV_READABLE_PIPE);
  stdio[0].data.stream = (uv_stream_t *)&ch->in;
  if (c->inherit_output) {
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = 1;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
  } else {
    stdio[1].flags = UV_IGNORE;
    stdio[2].flags = UV_IGNORE;
  }
  po.file = c->argv[0];
  po.args = c->argv;
  po.exit_cb = child_exit_cb;
  po.stdio = stdio;
  po.stdio_count = 3;
  rc = uv_spawn(c->loop, &ch->proc, &po);
  ch->handles++; /* uv_spawn initialized the handle, even on failure */
  if (rc != 0) {
    c->stats.spawn_errors++;
    c->stats.failed++;
    c->stats.last_spawn_error = rc;
    fc__free(buf);
    child_close((uv_handle_t *)&ch->in);
    child_close((uv_handle_t *)&ch->proc);
    return rc;
  }
  c->stats.spawned++;
  c->stats.running++;
  ch->running = 1;
  if (write_stdin(&ch->in, buf, len) != 0)
    c->stats.write_errors++;
  fc__free(buf);
  child_close((uv_handle_t *)&ch->in); /* EOF for the child */
  uv_timer_init(c->loop, &ch->timer);
  ch->handles++;
  /* send() may be called outside the loop's callbacks, when its cached time
   * is old: the timeout counts from now. */
  uv_update_time(c->loop);
  uv_timer_start(&ch->timer, child_timeout_cb, c->timeout_ms, 0);
  uv_unref((uv_handle_t *)&ch->timer); /* the process keeps the loop alive */
  return 0;
}

static int cmd_send_cb(void *self, const char *channel, const char *message, json_t *fields) {
  return fc_cmd_notifier_send(self, channel, message, fields);
}

fc_notifier_t fc_cmd_notifier(fc_cmd_notifier_t *c) {
  fc_notifier_t nt;
  memset(&nt, 0, sizeof nt);
  nt.self = c;
  nt.send = cmd_send_cb;
  return nt;
}

void fc_cmd_notifier_stats(const fc_cmd_notifier_t *c, fc_cmd_notifier_stats_t *out) {
  if (out == NULL)
    return;
  if (c == NULL)
    memset(out, 0, sizeof *out);
  else
    *out = c->stats;
}

static void argv_free(char **argv) {
  size_t i;
  if (argv == NULL)
    return;
  for (i = 0; argv[i] != NULL; i++)
    fc__free(argv[i]);
  fc__free(argv);
}

void fc_cmd_notifier_options_init(fc_cmd_notifier_options_t *opts) {
  if (opts == NULL)
    return;
  memset(opts, 0, sizeof *opts);
  opts->max_concurrent = DEFAULT_MAX_CONCURRENT;
  opts->timeout_ms = DEFAULT_CHILD_TIMEOUT_MS;
}

int fc_cmd_notifier_new(fc_cmd_notifier_t **out, const fc_cmd_notifier_options_t *opts) {
  fc_cmd_notifier_t *c;
  size_t n = 0, i;
  if (out == NULL)
    return FC_EINVAL;
  *out = NULL;
  if (opts == NULL || opts->loop == NULL || opts->argv == NULL || opts->argv[0] == NULL ||
      opts->argv[0][0] == '\0')
    return FC_EINVAL;
  while (opts->argv[n] != NULL)
    n++;
  c = fc__calloc(1, sizeof *c);
  if (c == NULL)
    return FC_ENOMEM;
  c->argv = fc__calloc(n + 1, sizeof *c->argv);
  if (c->argv == NULL) {
    fc__free(c);
    return FC_ENOMEM;
  }
  for (i = 0; i < n; i++) {
    c->argv[i] = fc__strdup(opts->argv[i]);
    if (c->argv[i] == NULL) {
      argv_free(c->argv);
      fc__free(c);
      return FC_ENOMEM;
    }
  }
  c->loop = opts->loop;
  c->max_concurrent = opts->max_concurrent ? opts->max_concurrent : DEFAULT_MAX_CONCURRENT;
  c->timeout_ms = opts->timeout_ms ? opts->timeout_ms : DEFAULT_CHILD_TIMEOUT_MS;
  c->inherit_output = opts->inherit_output;
  *out = c;
  return 0;
}

static void cmd_freed_cb(uv_handle_t *h) {
  fc_cmd_notifier_t *c = h->data;
  if (c->close_cb != NULL)
    c->close_cb(c, c->close_data);
  argv_free(c->argv);
  fc__free(c);
}

/* When closing and every child is gone, closes the deadline timer; its
 * close callback calls close_cb and frees c. */
static void cmd_maybe_finish(fc_cmd_notifier_t *c) {
  if (!c->closing || c->children != NULL || !c->close_timer_open)
    return;
  c->close_timer_open = 0;
  uv_close((uv_handle_t *)&c->close_timer, cmd_freed_cb);
}

static void kill_children(fc_cmd_notifier_t *c) {
  child_t *ch;
  for (ch = c->children; ch != NULL; ch = ch->next) {
    if (!ch->running)
      continue;
    ch->killed_at_close = 1;
    uv_process_kill(&ch->proc, SIGKILL);
  }
}

static void close_deadline_cb(uv_timer_t *t) { kill_children(t->data); }

void fc_cmd_notifier_close(fc_cmd_notifier_t *c, uint64_t deadline_ms,
                           fc_cmd_notifier_close_cb close_cb, void *data) {
  if (c == NULL || c->closing)
    return;
  c->closing = 1;
  c->close_cb = close_cb;
  c->close_data = data;
  uv_timer_init(c->loop, &c->close_timer);
  c->close_timer.data = c;
  c->close_timer_open = 1;
  if (deadline_ms == 0)
    kill_children(c);
  else if (c->children != NULL) {
    uv_update_time(c->loop); /* the deadline counts from now, as for send() */
    uv_timer_start(&c->close_timer, close_deadline_cb, deadline_ms, 0);
  }
  cmd_maybe_finish(c);
}

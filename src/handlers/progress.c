/* The progress handler: per-run node counts, a store, a terminal renderer.
 *
 * Runs are kept in a small array searched by workflow id (at most max_runs
 * entries; a run leaves it at its workflow_end). Each run remembers the
 * status of every node's latest attempt (one byte per node, indexed by the
 * event's node_index), so a retried failure is not counted twice. Events
 * without a usable node_index (hand-built ones) are counted as they come. */
#include <stdio.h>
#include <unistd.h>

#include <uv.h>

#include "internal.h"

#define DEFAULT_TTY_MS 100
#define DEFAULT_PLAIN_MS 1000
#define DEFAULT_BAR 20
#define MAX_BAR 200
#define DEFAULT_MAX_RUNS 1024
#define TTY_LABEL_MAX 30
#define LINE_SIZE 1024

typedef struct {
  char id[FC_UUID_STRING_LENGTH];
  char name[FC_WORKFLOW_NAME_MAX + 1];
  char last_node[FC_NAME_MAX + 1];
  int total;
  uint8_t *nodes; /* latest status per node index (FC_NODE_PENDING: none) */
  int completed, failed, skipped, cancelled, running, errors;
  int any_node;       /* a node event was seen: status "running" */
  const char *status; /* "started", "running", or the final status */
  uint64_t start_ns;
  int64_t final_elapsed_ms; /* -1 while running */
} prun_t;

struct fc_progress_s {
  fc_progress_store_t store;
  FILE *out;
  fc_progress_mode_t mode; /* resolved: TTY, PLAIN or OFF */
  uint64_t tty_interval_ns, plain_interval_ns;
  unsigned bar_width;
  size_t max_runs;
  char *prefix;
  uint64_t (*clock_ns)(void *data);
  void *clock_data;
  prun_t **runs;
  size_t nruns, cap;
  uint64_t last_draw_ns;
  int drawn; /* something was drawn already (the rate limit applies) */
  fc_progress_stats_t stats;
};

struct fc_progress_memstore_s {
  json_t *values; /* key -> deep copy */
  uint64_t sets;
};

/* ---- runs -------------------------------------------------------------------- */

static uint64_t now_ns(const fc_progress_t *p) {
  return p->clock_ns != NULL ? p->clock_ns(p->clock_data) : fc__mono_ns();
}

static long find_run(const fc_progress_t *p, const char *id) {
  size_t i;
  if (id == NULL)
    return -1;
  for (i = 0; i < p->nruns; i++)
    if (strcmp(p->runs[i]->id, id) == 0)
      return (long)i;
  return -1;
}

static void run_free(prun_t *r) {
  if (r == NULL)
    return;
  fc__free(r->nodes);
  fc__free(r);
}

static void remove_run(fc_progress_t *p, size_t i) {
  run_free(p->runs[i]);
  memmove(&p->runs[i], &p->runs[i + 1], (p->nruns - i - 1) * sizeof *p->runs);
  p->nruns--;
}

static void count_adj(prun_t *r, int status, int delta) {
  switch (status) {
  case FC_NODE_RUNNING:
    r->running += delta;
    break;
  case FC_NODE_COMPLETED:
    r->completed += delta;
    break;
  case FC_NODE_FAILED:
  case FC_NODE_TIMED_OUT:
    r->failed += delta;
    break;
  case FC_NODE_SKIPPED:
    r->skipped += delta;
    break;
  case FC_NODE_CANCELLED:
    r->cancelled += delta;
    break;
  default:
    break;
  }
}

static int finished(const prun_t *r) {
  return r->completed + r->failed + r->skipped + r->cancelled;
}

static double percent(const prun_t *r) {
  double pct;
  if (r->total <= 0)
    return r->final_elapsed_ms >= 0 ? 100.0 : 0.0;
  pct = 100.0 * (double)finished(r) / (double)r->total;
  return pct > 100.0 ? 100.0 : pct;
}

static int64_t elapsed_ms(const prun_t *r, uint64_t now) {
  if (r->final_elapsed_ms >= 0)
    return r->final_elapsed_ms;
  return now > r->start_ns ? (int64_t)((now - r->start_ns) / 1000000u) : 0;
}

static void copy_bounded(char *dst, size_t size, const char *src) {
  snprintf(dst, size, "%s", src != NULL ? src : "");
}

/* ---- the stored value -------------------------------------------------------- */

static json_t *run_value(const prun_t *r, uint64_t now) {
  json_t *v = json_object();
  int bad = 0;
#define SET(k, x) bad |= json_object_set_new(v, (k), (x))
  if (v == NULL)
    return NULL;
  SET("status", json_string(r->status));
  SET("workflow_id", json_string(r->id));
  SET("workflow_name", json_string(r->name));
  SET("total", json_integer(r->total));
  SET("completed", json_integer(r->completed));
  SET("failed", json_integer(r->failed));
  SET("skipped", json_integer(r->skipped));
  SET("cancelled", json_integer(r->cancelled));
  SET("running", json_integer(r->running));
  SET("finished", json_integer(finished(r)));
  SET("errors", json_integer(r->errors));
  SET("percent", json_real(percent(r)));
  SET("elapsed_ms", json_integer((json_int_t)elapsed_ms(r, now)));
  if (r->last_node[0] != '\0')
    SET("last_node", json_string(r->last_node));
#undef SET
  if (bad) {
    json_decref(v);
    return NULL;
  }
  return v;
}

static int store_run(fc_progress_t *p, const prun_t *r, uint64_t now) {
  char key[256 + FC_UUID_STRING_LENGTH];
  json_t *v;
  int rc;
  if (p->store.set == NULL)
    return 0;
  v = run_value(r, now);
  if (v == NULL) {
    p->stats.store_failures++;
    return FC_ENOMEM;
  }
  snprintf(key, sizeof key, "%s%s", p->prefix, r->id);
  rc = p->store.set(p->store.self, key, v);
  json_decref(v);
  if (rc != 0)
    p->stats.store_failures++;
  return rc;
}

/* ---- rendering --------------------------------------------------------------- */

static void bar(char *dst, unsigned width, int done, int total, int full) {
  unsigned filled = 0, i;
  if (full)
    filled = width;
  else if (total > 0 && done > 0)
    filled = done >= total ? width : (unsigned)((uint64_t)done * width / (unsigned)total);
  for (i = 0; i < width; i++)
    dst[i] = i < filled ? '#' : '.';
  dst[width] = '\0';
}

/* The TTY line over the active runs (or one run `only`), without \r. */
static void tty_line(const fc_progress_t *p, const prun_t *only, uint64_t now, char *line,
                     size_t size) {
  char label[TTY_LABEL_MAX + 16], b[MAX_BAR + 1];
  int total = 0, completed = 0, running = 0, failed = 0, skipped = 0, done = 0;
  int64_t el = 0;
  size_t i, n = only != NULL ? 1 : p->nruns;
  double pct;
  for (i = 0; i < n; i++) {
    const prun_t *r = only != NULL ? only : p->runs[i];
    int64_t e = elapsed_ms(r, now);
    total += r->total;
    completed += r->completed;
    running += r->running;
    failed += r->failed;
    skipped += r->skipped + r->cancelled;
    done += finished(r);
    if (e > el)
      el = e;
  }
  if (n == 1) {
    const prun_t *r = only != NULL ? only : p->runs[0];
    const char *nm = r->name[0] ? r->name : r->id;
    int len = (int)strnlen(nm, TTY_LABEL_MAX);
    while (len > 0 && nm[len] != '\0' && ((unsigned char)nm[len] & 0xc0) == 0x80)
      len--; /* do not cut a UTF-8 sequence */
    snprintf(label, sizeof label, "%.*s", len, nm);
    pct = percent(r);
  } else {
    snprintf(label, sizeof label, "%zu runs", n);
    pct = total > 0 ? 100.0 * (double)done / (double)total : 0.0;
  }
  bar(b, p->bar_width, done, total, only != NULL && pct >= 100.0);
  if (only != NULL)
    snprintf(line, size, "%s [%s] %d/%d %3.0f%% %s failed %d skipped %d %.1fs", label, b, completed,
             total, pct, only->status, failed, skipped, (double)el / 1000.0);
  else
    snprintf(line, size, "%s [%s] %d/%d %3.0f%% running %d failed %d skipped %d %.1fs", label, b,
             completed, total, pct, running, failed, skipped, (double)el / 1000.0);
}

/* A plain line for one run ("progress" or "done"), with its newline. */
static void plain_line(const prun_t *r, const char *what, uint64_t now, char *line, size_t size) {
  char name[2 * FC_WORKFLOW_NAME_MAX + 1];
  size_t i, k = 0;
  for (i = 0; r->name[i] != '\0' && k + 2 < sizeof name; i++) {
    if (r->name[i] == '"' || r->name[i] == '\\')
      name[k++] = '\\';
    name[k++] = r->name[i];
  }
  name[k] = '\0';
  snprintf(line, size,
           "%s wf=\"%s\" id=%s status=%s completed=%d total=%d running=%d failed=%d skipped=%d "
           "cancelled=%d percent=%.1f elapsed_ms=%lld\n",
           what, name, r->id, r->status, r->completed, r->total, r->running, r->failed, r->skipped,
           r->cancelled, percent(r), (long long)elapsed_ms(r, now));
}

static int emit(fc_progress_t *p, const char *s) {
  size_t n = strlen(s);
  if (fwrite(s, 1, n, p->out) != n || fflush(p->out) != 0)
    return UV_EIO;
  return 0;
}

/* Draws the progress of the active runs if due (or `force`). */
static int draw(fc_progress_t *p, uint64_t now, int force) {
  char line[LINE_SIZE];
  uint64_t interval;
  size_t i;
  int rc = 0;
  if (p->mode == FC_PROGRESS_OFF || p->nruns == 0)
    return 0;
  interval = p->mode == FC_PROGRESS_TTY ? p->tty_interval_ns : p->plain_interval_ns;
  if (!force && p->drawn && now - p->last_draw_ns < interval)
    return 0;
  if (p->mode == FC_PROGRESS_TTY) {
    line[0] = '\r';
    tty_line(p, NULL, now, line + 1, sizeof line - 8);
    strcat(line, "\033[K");
    rc = emit(p, line);
  } else {
    for (i = 0; i < p->nruns && rc == 0; i++) {
      plain_line(p->runs[i], "progress", now, line, sizeof line);
      rc = emit(p, line);
    }
  }
  p->last_draw_ns = now;
  p->drawn = 1;
  p->stats.draws++;
  return rc;
}

/* The final output of run r (still in the array). */
static int draw_final(fc_progress_t *p, const prun_t *r, uint64_t now) {
  char line[LINE_SIZE];
  if (p->mode == FC_PROGRESS_OFF)
    return 0;
  p->stats.draws++;
  if (p->mode == FC_PROGRESS_TTY) {
    line[0] = '\r';
    tty_line(p, r, now, line + 1, sizeof line - 8);
    strcat(line, "\033[K\n");
  } else {
    plain_line(r, "done", now, line, sizeof line);
  }
  return emit(p, line);
}

/* ---- events ------------------------------------------------------------------ */

static int on_start(fc_progress_t *p, const fc_event_t *ev, uint64_t now) {
  long at = find_run(p, ev->workflow_id);
  prun_t *r;
  int rc;
  if (ev->workflow_id == NULL)
    return FC_EINVAL;
  if (at >= 0)
    remove_run(p, (size_t)at); /* a second start of the same id: start over */
  if (p->nruns >= p->max_runs) {
    p->stats.runs_untracked++;
    return 0;
  }
  if (fc__grow((void **)&p->runs, &p->cap, p->nruns + 1, sizeof *p->runs) != 0)
    return FC_ENOMEM;
  r = fc__calloc(1, sizeof *r);
  if (r == NULL)
    return FC_ENOMEM;
  r->total = ev->node_count > 0 ? ev->node_count : 0;
  if (r->total > 0) {
    r->nodes = fc__calloc((size_t)r->total, 1);
    if (r->nodes == NULL) {
      fc__free(r);
      return FC_ENOMEM;
    }
  }
  copy_bounded(r->id, sizeof r->id, ev->workflow_id);
  copy_bounded(r->name, sizeof r->name, ev->workflow_name);
  r->status = "started";
  r->start_ns = now;
  r->final_elapsed_ms = -1;
  p->runs[p->nruns++] = r;
  p->stats.runs_started++;
  rc = store_run(p, r, now);
  return draw(p, now, 0) != 0 ? UV_EIO : rc;
}

static void on_node(prun_t *r, const fc_event_t *ev) {
  int idx = ev->node_index, s = ev->status;
  int indexed = idx >= 0 && idx < r->total;
  r->any_node = 1;
  r->status = "running";
  if (ev->kind == FC_EVENT_NODE_START) {
    if (indexed) {
      count_adj(r, r->nodes[idx], -1);
      r->nodes[idx] = FC_NODE_RUNNING;
    }
    count_adj(r, FC_NODE_RUNNING, 1);
    return;
  }
  copy_bounded(r->last_node, sizeof r->last_node, ev->node_id);
  if (s <= FC_NODE_RUNNING || s > FC_NODE_CANCELLED)
    return; /* not a final status of an attempt */
  if (indexed) {
    count_adj(r, r->nodes[idx], -1);
    r->nodes[idx] = (uint8_t)s;
  } else if (ev->attempt > 0 && r->running > 0) {
    r->running--;
  }
  count_adj(r, s, 1);
}

static void on_end(prun_t *r, const fc_event_t *ev, uint64_t now) {
  const int *sc = ev->status_counts;
  if (sc != NULL) {
    r->completed = sc[FC_NODE_COMPLETED];
    r->failed = sc[FC_NODE_FAILED] + sc[FC_NODE_TIMED_OUT];
    r->skipped = sc[FC_NODE_SKIPPED];
    r->cancelled = sc[FC_NODE_CANCELLED];
  }
  r->running = 0;
  r->status = ev->status >= FC_WORKFLOW_COMPLETED && ev->status <= FC_WORKFLOW_CANCELLED
                  ? fc_workflow_status_name((fc_workflow_status_t)ev->status)
                  : "failed";
  r->final_elapsed_ms = ev->duration_us > 0 ? ev->duration_us / 1000 : elapsed_ms(r, now);
}

int fc_progress_observe(fc_progress_t *p, const fc_event_t *ev) {
  uint64_t now;
  long at;
  prun_t *r;
  int rc, drc;
  if (p == NULL || ev == NULL)
    return FC_EINVAL;
  now = now_ns(p);
  if (ev->kind == FC_EVENT_WORKFLOW_START)
    return on_start(p, ev, now);
  if ((unsigned)ev->kind >= (unsigned)FC_EVENT_KIND_COUNT)
    return FC_EINVAL;
  at = find_run(p, ev->workflow_id);
  if (at < 0) {
    p->stats.events_ignored++;
    return 0;
  }
  r = p->runs[at];
  switch (ev->kind) {
  case FC_EVENT_NODE_START:
  case FC_EVENT_NODE_END:
    on_node(r, ev);
    break;
  case FC_EVENT_ERROR:
    r->errors++;
    break;
  default: /* FC_EVENT_WORKFLOW_END */
    on_end(r, ev, now);
    rc = store_run(p, r, now);
    drc = draw_final(p, r, now);
    p->stats.runs_ended++;
    remove_run(p, (size_t)at);
    if (drc == 0 && p->mode == FC_PROGRESS_TTY && p->nruns > 0)
      drc = draw(p, now, 1); /* the others' line again */
    return drc != 0 ? drc : rc;
  }
  rc = store_run(p, r, now);
  drc = draw(p, now, 0);
  return drc != 0 ? drc : rc;
}

int fc_progress_refresh(fc_progress_t *p) {
  if (p == NULL)
    return FC_EINVAL;
  return draw(p, now_ns(p), 0);
}

json_t *fc_progress_get(const fc_progress_t *p, const char *workflow_id) {
  long at;
  if (p == NULL)
    return NULL;
  at = find_run(p, workflow_id);
  return at >= 0 ? run_value(p->runs[at], now_ns(p)) : NULL;
}

void fc_progress_stats(const fc_progress_t *p, fc_progress_stats_t *out) {
  if (out == NULL)
    return;
  memset(out, 0, sizeof *out);
  if (p == NULL)
    return;
  *out = p->stats;
  out->active_runs = p->nruns;
}

/* ---- lifecycle --------------------------------------------------------------- */

static int progress_cb(void *self, const fc_event_t *ev) { return fc_progress_observe(self, ev); }

static void progress_destroy(void *self) { fc_progress_free(self); }

int fc_progress_handler(fc_progress_t *p, fc_handler_t *out) {
  return fc__handler_of(out, "progress", p, progress_cb, NULL);
}

int fc_progress_handler_owned(fc_progress_t *p, fc_handler_t *out) {
  return fc__handler_of(out, "progress", p, progress_cb, progress_destroy);
}

static void store_destroy(const fc_progress_store_t *s) {
  if (s->destroy != NULL)
    s->destroy(s->self);
}

void fc_progress_options_init(fc_progress_options_t *opts) {
  if (opts == NULL)
    return;
  memset(opts, 0, sizeof *opts);
  opts->mode = FC_PROGRESS_AUTO;
  opts->tty_interval_ms = DEFAULT_TTY_MS;
  opts->plain_interval_ms = DEFAULT_PLAIN_MS;
  opts->bar_width = DEFAULT_BAR;
  opts->max_runs = DEFAULT_MAX_RUNS;
}

int fc_progress_new(fc_progress_t **out, const fc_progress_options_t *opts) {
  fc_progress_options_t o;
  fc_progress_t *p;
  if (opts != NULL)
    o = *opts;
  else
    memset(&o, 0, sizeof o);
  if (out == NULL || (unsigned)o.mode > (unsigned)FC_PROGRESS_OFF || o.bar_width > MAX_BAR ||
      (o.key_prefix != NULL && strlen(o.key_prefix) > 255)) {
    store_destroy(&o.store);
    if (out != NULL)
      *out = NULL;
    return FC_EINVAL;
  }
  *out = NULL;
  p = fc__calloc(1, sizeof *p);
  if (p != NULL)
    p->prefix = fc__strdup(o.key_prefix != NULL ? o.key_prefix : "workflow:");
  if (p == NULL || p->prefix == NULL) {
    fc__free(p);
    store_destroy(&o.store);
    return FC_ENOMEM;
  }
  p->store = o.store;
  p->out = o.out != NULL ? o.out : stderr;
  p->mode = o.mode;
  if (p->mode == FC_PROGRESS_AUTO) {
    int fd = fileno(p->out);
    p->mode = fd >= 0 && isatty(fd) ? FC_PROGRESS_TTY : FC_PROGRESS_PLAIN;
  }
  p->tty_interval_ns =
      (uint64_t)(o.tty_interval_ms ? o.tty_interval_ms : DEFAULT_TTY_MS) * 1000000u;
  p->plain_interval_ns =
      (uint64_t)(o.plain_interval_ms ? o.plain_interval_ms : DEFAULT_PLAIN_MS) * 1000000u;
  p->bar_width = o.bar_width ? o.bar_width : DEFAULT_BAR;
  p->max_runs = o.max_runs ? o.max_runs : DEFAULT_MAX_RUNS;
  p->clock_ns = o.clock_ns;
  p->clock_data = o.clock_data;
  *out = p;
  return 0;
}

void fc_progress_free(fc_progress_t *p) {
  size_t i;
  if (p == NULL)
    return;
  for (i = 0; i < p->nruns; i++)
    run_free(p->runs[i]);
  fc__free(p->runs);
  store_destroy(&p->store);
  fc__free(p->prefix);
  fc__free(p);
}

/* ---- the in-memory store ----------------------------------------------------- */

static int memstore_set(void *self, const char *key, json_t *value) {
  fc_progress_memstore_t *s = self;
  json_t *copy;
  if (s == NULL || key == NULL || value == NULL)
    return FC_EINVAL;
  copy = json_deep_copy(value);
  if (copy == NULL || json_object_set_new(s->values, key, copy) != 0)
    return FC_ENOMEM; /* set_new released the copy */
  s->sets++;
  return 0;
}

int fc_progress_memstore_new(fc_progress_memstore_t **out) {
  fc_progress_memstore_t *s;
  if (out == NULL)
    return FC_EINVAL;
  *out = NULL;
  s = fc__calloc(1, sizeof *s);
  if (s == NULL)
    return FC_ENOMEM;
  s->values = json_object();
  if (s->values == NULL) {
    fc__free(s);
    return FC_ENOMEM;
  }
  *out = s;
  return 0;
}

void fc_progress_memstore_free(fc_progress_memstore_t *s) {
  if (s == NULL)
    return;
  json_decref(s->values);
  fc__free(s);
}

fc_progress_store_t fc_progress_memstore_store(fc_progress_memstore_t *s) {
  fc_progress_store_t st;
  memset(&st, 0, sizeof st);
  st.self = s;
  st.set = memstore_set;
  return st;
}

json_t *fc_progress_memstore_get(const fc_progress_memstore_t *s, const char *key) {
  if (s == NULL || key == NULL)
    return NULL;
  return json_object_get(s->values, key);
}

size_t fc_progress_memstore_size(const fc_progress_memstore_t *s) {
  return s != NULL ? json_object_size(s->values) : 0;
}

uint64_t fc_progress_memstore_sets(const fc_progress_memstore_t *s) {
  return s != NULL ? s->sets : 0;
}

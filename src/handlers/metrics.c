/* The metrics handler: counters, bounded duration statistics, JSON and
 * Prometheus reports.
 *
 * Durations are kept in µs in a `dist_t`: exact count/sum/min/max, a
 * log-linear histogram for quantiles ("fine": 16 sub-buckets per power of
 * two, exact below 32 µs, values >= 2^42 µs (~51 days) share the last
 * bucket), and exact counts per Prometheus bucket ("coarse"). Keys live in
 * an open-addressing table of fixed capacity (twice the cap, rounded up to
 * a power of two), allocated once; a key is allocated on first use until
 * the cap is reached, after which observations go to the "(other)" entry.
 * Nothing is kept per run, so memory does not grow with the number of
 * runs. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "internal.h"

#define SUB_BITS 4
#define SUB_COUNT (1u << SUB_BITS)
#define MAX_EXP 41 /* the last exponent with its own buckets */
#define FINE_COUNT ((MAX_EXP - SUB_BITS + 2) * SUB_COUNT)

#define DEFAULT_NODE_KEYS 1000
#define DEFAULT_WORKFLOW_KEYS 100
#define MAX_KEYS_LIMIT ((size_t)1 << 20)
#define OTHER_LABEL "(other)"
#define LAST_ERROR_TEXT 512

static const double default_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,  0.5,    1,     2.5,  5,     10,   30,
                                         60,    120,    300,   600,  1800,  3600};

typedef struct {
  uint64_t count;
  uint64_t sum_us;
  uint64_t min_us, max_us;
  uint64_t fine[FINE_COUNT];
  uint64_t coarse[FC_METRICS_MAX_BUCKETS + 1]; /* the last used one is +Inf */
} dist_t;

typedef struct {
  char *workflow;
  char *node; /* NULL in the workflow table */
  uint32_t hash;
  uint64_t by_status[FC_NODE_STATUS_COUNT]; /* node: attempts by fc_node_status_t;
                            workflow: ends by fc_workflow_status_t */
  dist_t d;
  /* Workflow table only: the last ended run (the latest workflow_end). */
  int has_last;
  int last_status;     /* fc_workflow_status_t */
  int64_t last_end_us; /* wall clock, µs since the epoch */
  int64_t last_duration_us;
  int64_t last_success_us; /* end of the last completed run, 0: none */
} entry_t;

typedef struct {
  entry_t **slots;
  size_t cap;   /* power of two */
  size_t count; /* entries allocated */
  size_t max;   /* the key cap */
  entry_t other;
  uint64_t overflow;
} table_t;

typedef struct {
  int set;
  char type[64];
  char message[LAST_ERROR_TEXT];
  fc_severity_t severity;
  char workflow_id[FC_UUID_STRING_LENGTH];
  char workflow_name[FC_WORKFLOW_NAME_MAX + 1];
  char node_id[FC_NAME_MAX + 1];
  int attempt;
  int64_t occurred_at_us;
} last_error_t;

struct fc_metrics_s {
  char *prefix;
  double buckets[FC_METRICS_MAX_BUCKETS];
  size_t nbuckets;
  fc_metrics_counters_t c;
  dist_t all_workflows;
  table_t nodes;
  table_t workflows;
  last_error_t last_error;
  size_t memory;
};

/* ---- distributions ----------------------------------------------------------- */

static unsigned floor_log2(uint64_t v) {
  unsigned e = 0;
  while (v >>= 1)
    e++;
  return e;
}

static size_t fine_index(uint64_t v) {
  unsigned e;
  if (v < SUB_COUNT)
    return (size_t)v;
  e = floor_log2(v);
  if (e > MAX_EXP)
    return FINE_COUNT - 1;
  return (size_t)(e - SUB_BITS + 1) * SUB_COUNT + (size_t)((v >> (e - SUB_BITS)) & (SUB_COUNT - 1));
}

/* The integer values a fine bucket holds: [*lo, *lo + *width). */
static void fine_bounds(size_t i, uint64_t *lo, uint64_t *width) {
  size_t k, sub;
  if (i < SUB_COUNT) {
    *lo = i;
    *width = 1;
    return;
  }
  k = i / SUB_COUNT;
  sub = i % SUB_COUNT;
  *lo = (uint64_t)(SUB_COUNT + sub) << (k - 1);
  *width = (uint64_t)1 << (k - 1);
}

static void dist_add(dist_t *d, const fc_metrics_t *m, int64_t us) {
  uint64_t v = us > 0 ? (uint64_t)us : 0;
  double secs = (double)v / 1e6;
  size_t i;
  if (d->count == 0 || v < d->min_us)
    d->min_us = v;
  if (v > d->max_us)
    d->max_us = v;
  d->count++;
  d->sum_us += v;
  d->fine[fine_index(v)]++;
  i = 0;
  while (i < m->nbuckets && secs > m->buckets[i])
    i++;
  d->coarse[i]++; /* le is inclusive; i == nbuckets is +Inf */
}

/* Nearest-rank quantile in µs (see the header for its error). */
static double dist_quantile(const dist_t *d, double p) {
  uint64_t rank, seen = 0, lo, width;
  double est;
  size_t i;
  if (d->count == 0)
    return 0;
  if (p >= 1.0)
    return (double)d->max_us;
  rank = (uint64_t)ceil(p * (double)d->count);
  if (rank < 1)
    rank = 1;
  for (i = 0; i < FINE_COUNT; i++) {
    seen += d->fine[i];
    if (seen >= rank)
      break;
  }
  if (i == FINE_COUNT)
    return (double)d->max_us;
  fine_bounds(i, &lo, &width);
  est = (double)lo + (double)(width - 1) / 2.0;
  if (est < (double)d->min_us)
    est = (double)d->min_us;
  if (est > (double)d->max_us)
    est = (double)d->max_us;
  return est;
}

static void dist_summary(const dist_t *d, fc_metrics_summary_t *out) {
  memset(out, 0, sizeof *out);
  out->count = d->count;
  if (d->count == 0)
    return;
  out->sum = (double)d->sum_us / 1e6;
  out->mean = out->sum / (double)d->count;
  out->min = (double)d->min_us / 1e6;
  out->max = (double)d->max_us / 1e6;
  out->p50 = dist_quantile(d, 0.50) / 1e6;
  out->p95 = dist_quantile(d, 0.95) / 1e6;
  out->p99 = dist_quantile(d, 0.99) / 1e6;
}

/* ---- key tables -------------------------------------------------------------- */

static uint32_t hash_key(const char *wf, const char *node) {
  uint32_t h = 2166136261u;
  const unsigned char *p;
  for (p = (const unsigned char *)wf; *p != '\0'; p++)
    h = (h ^ *p) * 16777619u;
  h = (h ^ 0xffu) * 16777619u; /* separator: 0xff never appears in names */
  if (node != NULL)
    for (p = (const unsigned char *)node; *p != '\0'; p++)
      h = (h ^ *p) * 16777619u;
  return h;
}

static int table_init(table_t *t, size_t max, size_t *memory) {
  size_t cap = 16;
  while (cap < max * 2)
    cap *= 2;
  t->slots = fc__calloc(cap, sizeof *t->slots);
  if (t->slots == NULL)
    return FC_ENOMEM;
  t->cap = cap;
  t->max = max;
  *memory += cap * sizeof *t->slots;
  return 0;
}

static void entry_free(entry_t *e) {
  fc__free(e->workflow);
  fc__free(e->node);
  fc__free(e);
}

static void table_clear(table_t *t, size_t *memory) {
  size_t i;
  for (i = 0; i < t->cap; i++) {
    entry_t *e = t->slots[i];
    if (e == NULL)
      continue;
    *memory -= sizeof *e + strlen(e->workflow) + 1 + (e->node ? strlen(e->node) + 1 : 0);
    entry_free(e);
    t->slots[i] = NULL;
  }
  t->count = 0;
  t->overflow = 0;
  memset(&t->other, 0, sizeof t->other);
}

/* Copies at most max bytes of s (keys stay bounded whatever the events). */
static char *dup_bounded(const char *s, size_t max, size_t *len) {
  size_t n = strlen(s);
  char *p;
  if (n > max)
    n = max;
  p = fc__malloc(n + 1);
  if (p == NULL)
    return NULL;
  memcpy(p, s, n);
  p[n] = '\0';
  *len = n + 1;
  return p;
}

static int key_equal(const entry_t *e, const char *wf, const char *node) {
  if (strncmp(e->workflow, wf, FC_WORKFLOW_NAME_MAX) != 0)
    return 0;
  if (node == NULL)
    return e->node == NULL;
  return e->node != NULL && strncmp(e->node, node, FC_NAME_MAX) == 0;
}

/* Finds the entry of a key (node NULL in the workflow table); creates it
 * while below the cap if `create`. Returns NULL when absent (or on ENOMEM,
 * then *oom is set). */
static entry_t *table_find(table_t *t, const char *wf, const char *node, int create, size_t *memory,
                           int *oom) {
  char wfb[FC_WORKFLOW_NAME_MAX + 1], nodeb[FC_NAME_MAX + 1];
  uint32_t h;
  size_t i, len1 = 0, len2 = 0;
  entry_t *e;
  /* Hash the bounded form so a long name finds the entry made for it. */
  snprintf(wfb, sizeof wfb, "%s", wf);
  if (node != NULL)
    snprintf(nodeb, sizeof nodeb, "%s", node);
  h = hash_key(wfb, node != NULL ? nodeb : NULL);
  for (i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
    e = t->slots[i];
    if (e == NULL)
      break;
    if (e->hash == h && key_equal(e, wfb, node != NULL ? nodeb : NULL))
      return e;
  }
  if (!create || t->count >= t->max)
    return NULL;
  e = fc__calloc(1, sizeof *e);
  if (e != NULL) {
    e->workflow = dup_bounded(wfb, FC_WORKFLOW_NAME_MAX, &len1);
    if (node != NULL)
      e->node = dup_bounded(nodeb, FC_NAME_MAX, &len2);
  }
  if (e == NULL || e->workflow == NULL || (node != NULL && e->node == NULL)) {
    if (e != NULL)
      entry_free(e);
    *oom = 1;
    return NULL;
  }
  e->hash = h;
  t->slots[i] = e;
  t->count++;
  *memory += sizeof *e + len1 + len2;
  return e;
}

/* The entry an observation goes to: its key's, or "(other)". */
static entry_t *table_slot(table_t *t, const char *wf, const char *node, size_t *memory, int *oom) {
  entry_t *e = table_find(t, wf, node, 1, memory, oom);
  if (e != NULL)
    return e;
  t->overflow++;
  return &t->other;
}

/* Entries sorted by (workflow, node), in a new array of t->count. */
static int cmp_entry_key(const void *a, const void *b) {
  const entry_t *x = *(entry_t *const *)a, *y = *(entry_t *const *)b;
  int c = strcmp(x->workflow, y->workflow);
  if (c != 0)
    return c;
  if (x->node == NULL || y->node == NULL)
    return (x->node != NULL) - (y->node != NULL);
  return strcmp(x->node, y->node);
}

static entry_t **table_sorted(const table_t *t) {
  entry_t **v = fc__malloc((t->count ? t->count : 1) * sizeof *v);
  size_t i, n = 0;
  if (v == NULL)
    return NULL;
  for (i = 0; i < t->cap; i++)
    if (t->slots[i] != NULL)
      v[n++] = t->slots[i];
  qsort(v, n, sizeof *v, cmp_entry_key);
  return v;
}

/* ---- events ------------------------------------------------------------------ */

static const char *str_or(const char *s, const char *dflt) { return s != NULL ? s : dflt; }

static void copy_text(char *dst, size_t size, const char *src) {
  snprintf(dst, size, "%s", src != NULL ? src : "");
}

static void note_error(fc_metrics_t *m, const fc_event_t *ev) {
  const fc_error_info_t *e = ev->error;
  last_error_t *le = &m->last_error;
  fc_severity_t sev = FC_SEVERITY_ERROR;
  if (e != NULL && (unsigned)e->severity <= (unsigned)FC_SEVERITY_CRITICAL)
    sev = e->severity;
  m->c.errors[sev]++;
  m->c.errors_total++;
  memset(le, 0, sizeof *le);
  le->set = 1;
  le->severity = sev;
  copy_text(le->workflow_id, sizeof le->workflow_id, ev->workflow_id);
  copy_text(le->workflow_name, sizeof le->workflow_name, ev->workflow_name);
  if (e != NULL) {
    copy_text(le->type, sizeof le->type, e->type);
    copy_text(le->message, sizeof le->message, e->message);
    copy_text(le->node_id, sizeof le->node_id, e->node_id != NULL ? e->node_id : ev->node_id);
    le->attempt = e->attempt != 0 ? e->attempt : ev->attempt;
    le->occurred_at_us = e->occurred_at_us != 0 ? e->occurred_at_us : ev->time_us;
  } else {
    copy_text(le->node_id, sizeof le->node_id, ev->node_id);
    le->attempt = ev->attempt;
    le->occurred_at_us = ev->time_us;
  }
}

int fc_metrics_observe(fc_metrics_t *m, const fc_event_t *ev) {
  const char *wf;
  entry_t *e;
  int oom = 0, i;
  if (m == NULL || ev == NULL)
    return FC_EINVAL;
  wf = str_or(ev->workflow_name, "");
  switch (ev->kind) {
  case FC_EVENT_WORKFLOW_START:
    m->c.workflows_started++;
    break;
  case FC_EVENT_WORKFLOW_END:
    if (ev->status >= 0 && ev->status < FC_WORKFLOW_STATUS_COUNT)
      m->c.workflows_ended[ev->status]++;
    if (ev->status_counts != NULL)
      for (i = 0; i < FC_NODE_STATUS_COUNT; i++)
        if (ev->status_counts[i] > 0)
          m->c.nodes_final[i] += (uint64_t)ev->status_counts[i];
    dist_add(&m->all_workflows, m, ev->duration_us);
    e = table_slot(&m->workflows, wf, NULL, &m->memory, &oom);
    dist_add(&e->d, m, ev->duration_us);
    if (ev->status >= 0 && ev->status < FC_WORKFLOW_STATUS_COUNT)
      e->by_status[ev->status]++;
    if (!e->has_last || ev->time_us >= e->last_end_us) {
      e->has_last = 1;
      e->last_status = (int)ev->status;
      e->last_end_us = ev->time_us;
      e->last_duration_us = ev->duration_us;
    }
    if (ev->status == FC_WORKFLOW_COMPLETED && ev->time_us > e->last_success_us)
      e->last_success_us = ev->time_us;
    break;
  case FC_EVENT_NODE_START:
    m->c.node_attempts++;
    break;
  case FC_EVENT_NODE_END:
    if (ev->attempt <= 0)
      break; /* never ran: only in the final statuses */
    if (ev->status >= 0 && ev->status < FC_NODE_STATUS_COUNT)
      m->c.attempts_ended[ev->status]++;
    e = table_slot(&m->nodes, wf, str_or(ev->node_id, ""), &m->memory, &oom);
    dist_add(&e->d, m, ev->duration_us);
    if (ev->status >= 0 && ev->status < FC_NODE_STATUS_COUNT)
      e->by_status[ev->status]++;
    break;
  case FC_EVENT_ERROR:
    note_error(m, ev);
    break;
  default:
    return FC_EINVAL;
  }
  return oom ? FC_ENOMEM : 0;
}

static int metrics_cb(void *self, const fc_event_t *ev) { return fc_metrics_observe(self, ev); }

static void metrics_destroy(void *self) { fc_metrics_free(self); }

int fc_metrics_handler(fc_metrics_t *m, fc_handler_t *out) {
  return fc__handler_of(out, "metrics", m, metrics_cb, NULL);
}

int fc_metrics_handler_owned(fc_metrics_t *m, fc_handler_t *out) {
  return fc__handler_of(out, "metrics", m, metrics_cb, metrics_destroy);
}

/* ---- lifecycle and queries --------------------------------------------------- */

static int prefix_valid(const char *p) {
  size_t i;
  if (p[0] == '\0' || (p[0] >= '0' && p[0] <= '9'))
    return 0;
  for (i = 0; p[i] != '\0'; i++) {
    char c = p[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == ':'))
      return 0;
  }
  return i <= 100;
}

void fc_metrics_options_init(fc_metrics_options_t *opts) {
  if (opts == NULL)
    return;
  memset(opts, 0, sizeof *opts);
  opts->max_node_keys = DEFAULT_NODE_KEYS;
  opts->max_workflow_keys = DEFAULT_WORKFLOW_KEYS;
}

int fc_metrics_new(fc_metrics_t **out, const fc_metrics_options_t *opts) {
  fc_metrics_t *m;
  const double *b = default_buckets;
  size_t nb = FC__ARRAY_SIZE(default_buckets), i;
  size_t max_nodes = DEFAULT_NODE_KEYS, max_wfs = DEFAULT_WORKFLOW_KEYS;
  const char *prefix = "flowcore";
  if (out == NULL)
    return FC_EINVAL;
  *out = NULL;
  if (opts != NULL) {
    if (opts->max_node_keys != 0)
      max_nodes = opts->max_node_keys;
    if (opts->max_workflow_keys != 0)
      max_wfs = opts->max_workflow_keys;
    if (opts->prefix != NULL)
      prefix = opts->prefix;
    if (opts->buckets != NULL) {
      b = opts->buckets;
      nb = opts->bucket_count;
      if (nb == 0 || nb > FC_METRICS_MAX_BUCKETS)
        return FC_EINVAL;
      for (i = 0; i < nb; i++)
        if (!isfinite(b[i]) || b[i] <= 0 || (i > 0 && b[i] <= b[i - 1]))
          return FC_EINVAL;
    }
  }
  if (max_nodes > MAX_KEYS_LIMIT || max_wfs > MAX_KEYS_LIMIT || !prefix_valid(prefix))
    return FC_EINVAL;
  m = fc__calloc(1, sizeof *m);
  if (m == NULL)
    return FC_ENOMEM;
  m->memory = sizeof *m;
  m->prefix = fc__strdup(prefix);
  if (m->prefix == NULL || table_init(&m->nodes, max_nodes, &m->memory) != 0 ||
      table_init(&m->workflows, max_wfs, &m->memory) != 0) {
    fc_metrics_free(m);
    return FC_ENOMEM;
  }
  m->memory += strlen(prefix) + 1;
  memcpy(m->buckets, b, nb * sizeof *b);
  m->nbuckets = nb;
  *out = m;
  return 0;
}

void fc_metrics_free(fc_metrics_t *m) {
  if (m == NULL)
    return;
  if (m->nodes.slots != NULL)
    table_clear(&m->nodes, &m->memory);
  if (m->workflows.slots != NULL)
    table_clear(&m->workflows, &m->memory);
  fc__free(m->nodes.slots);
  fc__free(m->workflows.slots);
  fc__free(m->prefix);
  fc__free(m);
}

void fc_metrics_reset(fc_metrics_t *m) {
  if (m == NULL)
    return;
  table_clear(&m->nodes, &m->memory);
  table_clear(&m->workflows, &m->memory);
  memset(&m->c, 0, sizeof m->c);
  memset(&m->all_workflows, 0, sizeof m->all_workflows);
  memset(&m->last_error, 0, sizeof m->last_error);
}

void fc_metrics_counters(const fc_metrics_t *m, fc_metrics_counters_t *out) {
  if (out == NULL)
    return;
  if (m == NULL)
    memset(out, 0, sizeof *out);
  else
    *out = m->c;
}

int fc_metrics_node_summary(const fc_metrics_t *m, const char *workflow_name, const char *node_id,
                            fc_metrics_summary_t *out) {
  entry_t *e;
  int oom = 0;
  size_t mem = 0;
  if (m == NULL || out == NULL)
    return FC_EINVAL;
  if (node_id == NULL) {
    dist_summary(&m->nodes.other.d, out);
    return 0;
  }
  e = table_find((table_t *)&m->nodes, str_or(workflow_name, ""), node_id, 0, &mem, &oom);
  if (e == NULL)
    return FC_ENOTFOUND;
  dist_summary(&e->d, out);
  return 0;
}

int fc_metrics_workflow_summary(const fc_metrics_t *m, const char *workflow_name,
                                fc_metrics_summary_t *out) {
  entry_t *e;
  int oom = 0;
  size_t mem = 0;
  if (m == NULL || out == NULL)
    return FC_EINVAL;
  if (workflow_name == NULL) {
    dist_summary(&m->all_workflows, out);
    return 0;
  }
  e = table_find((table_t *)&m->workflows, workflow_name, NULL, 0, &mem, &oom);
  if (e == NULL)
    return FC_ENOTFOUND;
  dist_summary(&e->d, out);
  return 0;
}

void fc_metrics_info(const fc_metrics_t *m, fc_metrics_info_t *out) {
  if (out == NULL)
    return;
  memset(out, 0, sizeof *out);
  if (m == NULL)
    return;
  out->node_keys = m->nodes.count;
  out->max_node_keys = m->nodes.max;
  out->node_overflow = m->nodes.overflow;
  out->workflow_keys = m->workflows.count;
  out->max_workflow_keys = m->workflows.max;
  out->workflow_overflow = m->workflows.overflow;
  out->memory_bytes = m->memory;
}

/* ---- JSON report ------------------------------------------------------------- */

typedef struct {
  int failed;
} jctx_t;

static void jset(jctx_t *j, json_t *obj, const char *key, json_t *v) {
  if (obj == NULL || v == NULL || json_object_set_new(obj, key, v) != 0)
    j->failed = 1;
}

static void jappend(jctx_t *j, json_t *arr, json_t *v) {
  if (arr == NULL || v == NULL || json_array_append_new(arr, v) != 0)
    j->failed = 1;
}

static json_t *jcount(uint64_t v) { return json_integer((json_int_t)v); }

static json_t *summary_json(jctx_t *j, const dist_t *d, json_t *obj) {
  fc_metrics_summary_t s;
  if (obj == NULL)
    obj = json_object();
  dist_summary(d, &s);
  jset(j, obj, "count", jcount(s.count));
  jset(j, obj, "sum", json_real(s.sum));
  jset(j, obj, "mean", json_real(s.mean));
  jset(j, obj, "min", json_real(s.min));
  jset(j, obj, "p50", json_real(s.p50));
  jset(j, obj, "p95", json_real(s.p95));
  jset(j, obj, "p99", json_real(s.p99));
  jset(j, obj, "max", json_real(s.max));
  return obj;
}

static json_t *node_status_json(jctx_t *j, const uint64_t *counts, int skip_never_ran) {
  json_t *o = json_object();
  int s;
  for (s = FC_NODE_COMPLETED; s <= FC_NODE_CANCELLED; s++) {
    if (skip_never_ran && s == FC_NODE_SKIPPED)
      continue;
    jset(j, o, fc_node_status_name((fc_node_status_t)s), jcount(counts[s]));
  }
  return o;
}

static int cmp_mean_desc(const void *a, const void *b) {
  const entry_t *x = *(entry_t *const *)a, *y = *(entry_t *const *)b;
  double mx = (double)x->d.sum_us / (double)x->d.count;
  double my = (double)y->d.sum_us / (double)y->d.count;
  if (mx != my)
    return mx < my ? 1 : -1;
  return cmp_entry_key(a, b);
}

static json_t *slowest_json(jctx_t *j, entry_t **sorted, size_t n) {
  json_t *arr = json_array();
  entry_t **v;
  size_t i, k = 0;
  if (n == 0)
    return arr;
  v = fc__malloc(n * sizeof *v);
  if (v == NULL) {
    j->failed = 1;
    return arr;
  }
  for (i = 0; i < n; i++)
    if (sorted[i]->d.count > 0)
      v[k++] = sorted[i];
  qsort(v, k, sizeof *v, cmp_mean_desc);
  for (i = 0; i < k && i < 5; i++) {
    json_t *pair = json_array();
    jappend(j, pair, json_string(v[i]->node));
    jappend(j, pair, json_real((double)v[i]->d.sum_us / (double)v[i]->d.count / 1e6));
    jappend(j, arr, pair);
  }
  fc__free(v);
  return arr;
}

static json_t *last_error_json(jctx_t *j, const last_error_t *le) {
  json_t *o;
  if (!le->set)
    return json_null();
  o = json_object();
  jset(j, o, "type", json_string(le->type));
  jset(j, o, "message", json_string(le->message));
  jset(j, o, "severity", json_string(fc_severity_name(le->severity)));
  jset(j, o, "workflow_id", json_string(le->workflow_id));
  jset(j, o, "workflow_name", json_string(le->workflow_name));
  jset(j, o, "node_id", le->node_id[0] ? json_string(le->node_id) : json_null());
  jset(j, o, "attempt", json_integer(le->attempt));
  jset(j, o, "occurred_at_us", json_integer((json_int_t)le->occurred_at_us));
  return o;
}

json_t *fc_metrics_report_json(const fc_metrics_t *m) {
  jctx_t j = {0};
  json_t *r, *o, *arr;
  entry_t **nodes = NULL, **wfs = NULL;
  uint64_t ended = 0;
  size_t i;
  int s;
  if (m == NULL)
    return NULL;
  r = json_object();
  nodes = table_sorted(&m->nodes);
  wfs = table_sorted(&m->workflows);
  if (r == NULL || nodes == NULL || wfs == NULL) {
    j.failed = 1;
    goto done;
  }
  for (s = 0; s < FC_WORKFLOW_STATUS_COUNT; s++)
    ended += m->c.workflows_ended[s];

  /* The documented fields. */
  jset(&j, r, "total_workflows", jcount(m->c.workflows_started));
  jset(&j, r, "total_nodes", jcount(m->c.node_attempts));
  jset(&j, r, "error_rate",
       json_real((double)m->c.errors_total /
                 (double)(m->c.node_attempts > 0 ? m->c.node_attempts : 1)));
  jset(&j, r, "avg_workflow_duration",
       json_real(m->all_workflows.count
                     ? (double)m->all_workflows.sum_us / (double)m->all_workflows.count / 1e6
                     : 0.0));
  jset(&j, r, "slowest_nodes", slowest_json(&j, nodes, m->nodes.count));

  /* Counters. */
  o = json_object();
  jset(&j, o, "started", jcount(m->c.workflows_started));
  jset(&j, o, "running",
       jcount(m->c.workflows_started > ended ? m->c.workflows_started - ended : 0));
  for (s = FC_WORKFLOW_COMPLETED; s <= FC_WORKFLOW_CANCELLED; s++)
    jset(&j, o, fc_workflow_status_name((fc_workflow_status_t)s), jcount(m->c.workflows_ended[s]));
  jset(&j, r, "workflows", o);

  o = json_object();
  jset(&j, o, "attempts", jcount(m->c.node_attempts));
  jset(&j, o, "attempts_by_status", node_status_json(&j, m->c.attempts_ended, 1));
  jset(&j, o, "final", node_status_json(&j, m->c.nodes_final, 0));
  jset(&j, r, "nodes", o);

  o = json_object();
  jset(&j, o, "total", jcount(m->c.errors_total));
  for (s = FC_SEVERITY_INFO; s <= FC_SEVERITY_CRITICAL; s++)
    jset(&j, o, fc_severity_name((fc_severity_t)s), jcount(m->c.errors[s]));
  jset(&j, r, "errors", o);
  jset(&j, r, "last_error", last_error_json(&j, &m->last_error));

  /* Durations. */
  jset(&j, r, "workflow_duration", summary_json(&j, &m->all_workflows, NULL));
  arr = json_array();
  for (i = 0; i < m->workflows.count; i++) {
    const entry_t *e = wfs[i];
    o = json_object();
    jset(&j, o, "workflow", json_string(e->workflow));
    for (s = FC_WORKFLOW_COMPLETED; s <= FC_WORKFLOW_CANCELLED; s++)
      jset(&j, o, fc_workflow_status_name((fc_workflow_status_t)s), jcount(e->by_status[s]));
    jappend(&j, arr, summary_json(&j, &e->d, o));
  }
  jset(&j, r, "workflow_stats", arr);
  arr = json_array();
  for (i = 0; i < m->nodes.count; i++) {
    const entry_t *e = nodes[i];
    o = json_object();
    jset(&j, o, "workflow", json_string(e->workflow));
    jset(&j, o, "node", json_string(e->node));
    jset(&j, o, "failed",
         jcount(e->by_status[FC_NODE_FAILED] + e->by_status[FC_NODE_TIMED_OUT] +
                e->by_status[FC_NODE_CANCELLED]));
    jappend(&j, arr, summary_json(&j, &e->d, o));
  }
  jset(&j, r, "node_stats", arr);
  jset(&j, r, "other", summary_json(&j, &m->nodes.other.d, NULL));

  o = json_object();
  jset(&j, o, "node_keys", jcount(m->nodes.count));
  jset(&j, o, "max_node_keys", jcount(m->nodes.max));
  jset(&j, o, "node_overflow", jcount(m->nodes.overflow));
  jset(&j, o, "workflow_keys", jcount(m->workflows.count));
  jset(&j, o, "max_workflow_keys", jcount(m->workflows.max));
  jset(&j, o, "workflow_overflow", jcount(m->workflows.overflow));
  jset(&j, r, "keys", o);

done:
  fc__free(nodes);
  fc__free(wfs);
  if (j.failed) {
    json_decref(r);
    return NULL;
  }
  return r;
}

/* ---- Prometheus text format -------------------------------------------------- */

/* Shortest text that parses back to v ("+Inf", "-Inf", "NaN" as Prometheus). */
static void fmt_double(char *buf, size_t size, double v) {
  if (isnan(v)) {
    snprintf(buf, size, "NaN");
  } else if (isinf(v)) {
    snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
  } else {
    snprintf(buf, size, "%.15g", v);
    if (strtod(buf, NULL) != v)
      snprintf(buf, size, "%.17g", v);
  }
}

/* A label value: \ " and newline escaped. */
static void put_label_value(FILE *f, const char *s) {
  for (; *s != '\0'; s++) {
    if (*s == '\\')
      fputs("\\\\", f);
    else if (*s == '"')
      fputs("\\\"", f);
    else if (*s == '\n')
      fputs("\\n", f);
    else
      fputc(*s, f);
  }
}

static void put_family(FILE *f, const fc_metrics_t *m, const char *name, const char *type,
                       const char *help) {
  fprintf(f, "# HELP %s_%s %s\n# TYPE %s_%s %s\n", m->prefix, name, help, m->prefix, name, type);
}

static void put_labeled(FILE *f, const fc_metrics_t *m, const char *name, const char *label,
                        const char *value, uint64_t n) {
  fprintf(f, "%s_%s{%s=\"", m->prefix, name, label);
  put_label_value(f, value);
  fprintf(f, "\"} %llu\n", (unsigned long long)n);
}

/* The labels of a histogram series, e.g. workflow="x",node="y". */
static void put_series_labels(FILE *f, const entry_t *e, int with_node, int other) {
  fputs("workflow=\"", f);
  put_label_value(f, other ? OTHER_LABEL : e->workflow);
  fputc('"', f);
  if (with_node) {
    fputs(",node=\"", f);
    put_label_value(f, other ? OTHER_LABEL : e->node);
    fputc('"', f);
  }
}

static void put_histogram(FILE *f, const fc_metrics_t *m, const char *name, const entry_t *e,
                          int with_node, int other) {
  uint64_t cum = 0;
  size_t i;
  char num[40];
  for (i = 0; i <= m->nbuckets; i++) {
    cum += e->d.coarse[i];
    if (i < m->nbuckets)
      fmt_double(num, sizeof num, m->buckets[i]);
    else
      snprintf(num, sizeof num, "+Inf");
    fprintf(f, "%s_%s_bucket{", m->prefix, name);
    put_series_labels(f, e, with_node, other);
    fprintf(f, ",le=\"%s\"} %llu\n", num, (unsigned long long)cum);
  }
  fmt_double(num, sizeof num, (double)e->d.sum_us / 1e6);
  fprintf(f, "%s_%s_sum{", m->prefix, name);
  put_series_labels(f, e, with_node, other);
  fprintf(f, "} %s\n", num);
  fprintf(f, "%s_%s_count{", m->prefix, name);
  put_series_labels(f, e, with_node, other);
  fprintf(f, "} %llu\n", (unsigned long long)e->d.count);
}

/* A last success read back from the previous textfile (see
 * fc_metrics_write_prometheus_file). */
typedef struct {
  char *workflow;
  int64_t us;
} carried_t;

/* Seconds since the epoch of a µs wall clock time, exactly. */
static void fmt_epoch(char *buf, size_t size, int64_t us) {
  int64_t s = us / 1000000, f = us % 1000000;
  if (f < 0) {
    f += 1000000;
    s--;
  }
  snprintf(buf, size, "%lld.%06lld", (long long)s, (long long)f);
}

static void put_workflow_gauge(FILE *f, const fc_metrics_t *m, const char *name, const char *wf,
                               const char *value) {
  fprintf(f, "%s_%s{workflow=\"", m->prefix, name);
  put_label_value(f, wf);
  fprintf(f, "\"} %s\n", value);
}

/* The node_exporter textfile gauges of batch jobs, per workflow name (not
 * for "(other)", which mixes workflows). */
static void put_last_run(FILE *f, const fc_metrics_t *m, entry_t **wfs, size_t n,
                         const carried_t *carried, size_t ncarried) {
  char num[48];
  size_t i, k;
  put_family(f, m, "last_run_timestamp_seconds", "gauge",
             "When the last run of the workflow ended, in seconds since the epoch.");
  for (i = 0; i < n; i++)
    if (wfs[i]->has_last) {
      fmt_epoch(num, sizeof num, wfs[i]->last_end_us);
      put_workflow_gauge(f, m, "last_run_timestamp_seconds", wfs[i]->workflow, num);
    }
  put_family(f, m, "last_success_timestamp_seconds", "gauge",
             "When the last completed run of the workflow ended, in seconds since the epoch.");
  for (i = 0; i < n; i++) {
    int64_t us = wfs[i]->last_success_us;
    for (k = 0; k < ncarried; k++)
      if (strcmp(carried[k].workflow, wfs[i]->workflow) == 0 && carried[k].us > us)
        us = carried[k].us;
    if (us != 0) {
      fmt_epoch(num, sizeof num, us);
      put_workflow_gauge(f, m, "last_success_timestamp_seconds", wfs[i]->workflow, num);
    }
  }
  put_family(f, m, "last_run_duration_seconds", "gauge",
             "Duration of the last run of the workflow.");
  for (i = 0; i < n; i++)
    if (wfs[i]->has_last) {
      fmt_double(num, sizeof num, (double)wfs[i]->last_duration_us / 1e6);
      put_workflow_gauge(f, m, "last_run_duration_seconds", wfs[i]->workflow, num);
    }
  put_family(f, m, "last_run_status", "gauge",
             "1 if the last run of the workflow completed, 0 if it failed or was cancelled.");
  for (i = 0; i < n; i++)
    if (wfs[i]->has_last)
      put_workflow_gauge(f, m, "last_run_status", wfs[i]->workflow,
                         wfs[i]->last_status == FC_WORKFLOW_COMPLETED ? "1" : "0");
}

static int write_prometheus(const fc_metrics_t *m, FILE *f, const carried_t *carried,
                            size_t ncarried);

int fc_metrics_write_prometheus(const fc_metrics_t *m, FILE *f) {
  return write_prometheus(m, f, NULL, 0);
}

static int write_prometheus(const fc_metrics_t *m, FILE *f, const carried_t *carried,
                            size_t ncarried) {
  entry_t **nodes, **wfs;
  uint64_t ended = 0;
  size_t i;
  int s;
  if (m == NULL || f == NULL)
    return FC_EINVAL;
  nodes = table_sorted(&m->nodes);
  wfs = table_sorted(&m->workflows);
  if (nodes == NULL || wfs == NULL) {
    fc__free(nodes);
    fc__free(wfs);
    return FC_ENOMEM;
  }
  for (s = 0; s < FC_WORKFLOW_STATUS_COUNT; s++)
    ended += m->c.workflows_ended[s];

  put_family(f, m, "workflows_started_total", "counter", "Workflow runs started.");
  fprintf(f, "%s_workflows_started_total %llu\n", m->prefix,
          (unsigned long long)m->c.workflows_started);
  put_family(f, m, "workflows_running", "gauge", "Workflow runs started and not ended yet.");
  fprintf(
      f, "%s_workflows_running %llu\n", m->prefix,
      (unsigned long long)(m->c.workflows_started > ended ? m->c.workflows_started - ended : 0));
  put_family(f, m, "workflows_ended_total", "counter", "Workflow runs ended, by final status.");
  for (s = FC_WORKFLOW_COMPLETED; s <= FC_WORKFLOW_CANCELLED; s++)
    put_labeled(f, m, "workflows_ended_total", "status",
                fc_workflow_status_name((fc_workflow_status_t)s), m->c.workflows_ended[s]);
  put_family(f, m, "node_attempts_started_total", "counter", "Node attempts started.");
  fprintf(f, "%s_node_attempts_started_total %llu\n", m->prefix,
          (unsigned long long)m->c.node_attempts);
  put_family(f, m, "node_attempts_total", "counter", "Node attempts ended, by status.");
  for (s = FC_NODE_COMPLETED; s <= FC_NODE_CANCELLED; s++)
    if (s != FC_NODE_SKIPPED)
      put_labeled(f, m, "node_attempts_total", "status", fc_node_status_name((fc_node_status_t)s),
                  m->c.attempts_ended[s]);
  put_family(f, m, "nodes_total", "counter", "Nodes of ended runs, by final status.");
  for (s = FC_NODE_COMPLETED; s <= FC_NODE_CANCELLED; s++)
    put_labeled(f, m, "nodes_total", "status", fc_node_status_name((fc_node_status_t)s),
                m->c.nodes_final[s]);
  put_family(f, m, "errors_total", "counter", "Error events, by severity.");
  for (s = FC_SEVERITY_INFO; s <= FC_SEVERITY_CRITICAL; s++)
    put_labeled(f, m, "errors_total", "severity", fc_severity_name((fc_severity_t)s),
                m->c.errors[s]);

  put_family(f, m, "workflow_duration_seconds", "histogram",
             "Duration of ended workflow runs, by workflow name.");
  for (i = 0; i < m->workflows.count; i++)
    put_histogram(f, m, "workflow_duration_seconds", wfs[i], 0, 0);
  if (m->workflows.overflow > 0)
    put_histogram(f, m, "workflow_duration_seconds", &m->workflows.other, 0, 1);
  put_last_run(f, m, wfs, m->workflows.count, carried, ncarried);
  put_family(f, m, "node_duration_seconds", "histogram",
             "Duration of node attempts that ran, by workflow name and node id.");
  for (i = 0; i < m->nodes.count; i++)
    put_histogram(f, m, "node_duration_seconds", nodes[i], 1, 0);
  if (m->nodes.overflow > 0)
    put_histogram(f, m, "node_duration_seconds", &m->nodes.other, 1, 1);

  put_family(f, m, "metrics_node_keys", "gauge", "Distinct (workflow, node) keys tracked.");
  fprintf(f, "%s_metrics_node_keys %llu\n", m->prefix, (unsigned long long)m->nodes.count);
  put_family(f, m, "metrics_workflow_keys", "gauge", "Distinct workflow names tracked.");
  fprintf(f, "%s_metrics_workflow_keys %llu\n", m->prefix, (unsigned long long)m->workflows.count);
  put_family(f, m, "metrics_overflow_total", "counter",
             "Observations counted under \"(other)\" because the key cap was reached.");
  put_labeled(f, m, "metrics_overflow_total", "kind", "node", m->nodes.overflow);
  put_labeled(f, m, "metrics_overflow_total", "kind", "workflow", m->workflows.overflow);

  fc__free(nodes);
  fc__free(wfs);
  if (fflush(f) != 0 || ferror(f))
    return UV_EIO;
  return 0;
}

static int errno_code(int e) { return e > 0 ? -e : UV_EIO; }

/* fsync of the directory holding `path`, so the rename is durable. */
static void sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}

/* Parses `<prefix>_last_success_timestamp_seconds{workflow="NAME"} SECONDS`
 * (a line of a file written by us). Returns 1 with the unescaped name in
 * `name` and the time in *us, or 0. */
static int parse_carried(const fc_metrics_t *m, const char *line, char *name, size_t size,
                         int64_t *us) {
  size_t plen = strlen(m->prefix), n = 0;
  static const char family[] = "_last_success_timestamp_seconds{workflow=\"";
  const char *p = line;
  char *end;
  double v;
  if (strncmp(p, m->prefix, plen) != 0 || strncmp(p + plen, family, sizeof family - 1) != 0)
    return 0;
  p += plen + sizeof family - 1;
  for (; *p != '"'; p++) {
    char c = *p;
    if (c == '\0' || n + 1 >= size)
      return 0;
    if (c == '\\') {
      p++;
      c = *p == 'n' ? '\n' : *p;
      if (c == '\0')
        return 0;
    }
    name[n++] = c;
  }
  name[n] = '\0';
  if (strncmp(p, "\"} ", 3) != 0)
    return 0;
  v = strtod(p + 3, &end);
  if (end == p + 3 || !(v > 0 && v < 1e11))
    return 0;
  *us = (int64_t)llround(v * 1e6);
  return 1;
}

/* The last successes held by the file at `path` (the previous batch run's
 * textfile): a run that fails rewrites the file, and the time of the last
 * success must survive it. At most max_workflow_keys of them; a missing or
 * unreadable file carries nothing. Free with free_carried. */
static size_t read_carried(const fc_metrics_t *m, const char *path, carried_t **out) {
  char line[4 * FC_WORKFLOW_NAME_MAX + 256], name[FC_WORKFLOW_NAME_MAX + 1];
  size_t n = 0;
  int64_t us;
  FILE *f = fopen(path, "r");
  *out = NULL;
  if (f == NULL)
    return 0;
  while (fgets(line, sizeof line, f) != NULL) {
    size_t len = strlen(line);
    if (len > 0 && line[len - 1] != '\n' && !feof(f)) {
      int c; /* longer than any line of ours: skip the rest */
      while ((c = fgetc(f)) != EOF && c != '\n') {
      }
      continue;
    }
    if (parse_carried(m, line, name, sizeof name, &us)) {
      carried_t *grown;
      if (n == m->workflows.max)
        break;
      grown = fc__realloc(*out, (n + 1) * sizeof **out);
      if (grown == NULL)
        break;
      *out = grown;
      grown[n].workflow = fc__strdup(name);
      if (grown[n].workflow == NULL)
        break;
      grown[n++].us = us;
    }
  }
  fclose(f);
  return n;
}

static void free_carried(carried_t *c, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    fc__free(c[i].workflow);
  fc__free(c);
}

int fc_metrics_write_prometheus_file(const fc_metrics_t *m, const char *path) {
  const char *slash, *base;
  char *dir = NULL, *tmp = NULL;
  size_t dirlen, n;
  int fd, rc = 0;
  FILE *f;
  if (m == NULL || path == NULL || path[0] == '\0')
    return FC_EINVAL;
  slash = strrchr(path, '/');
  base = slash != NULL ? slash + 1 : path;
  if (base[0] == '\0')
    return FC_EINVAL;
  dirlen = slash != NULL ? (size_t)(slash - path) : 0;
  n = dirlen + strlen(base) + 32;
  tmp = fc__malloc(n);
  dir = fc__malloc(dirlen + 2);
  if (tmp == NULL || dir == NULL) {
    fc__free(tmp);
    fc__free(dir);
    return FC_ENOMEM;
  }
  if (slash == NULL)
    snprintf(dir, 2, ".");
  else if (dirlen == 0)
    snprintf(dir, 2, "/");
  else {
    memcpy(dir, path, dirlen);
    dir[dirlen] = '\0';
  }
  snprintf(tmp, n, "%.*s%s.%s.tmp.XXXXXX", (int)dirlen, path, slash != NULL ? "/" : "", base);

  fd = mkstemp(tmp);
  if (fd < 0) {
    rc = errno_code(errno);
    goto out;
  }
  f = fdopen(fd, "w");
  if (f == NULL) {
    rc = errno_code(errno);
    close(fd);
    unlink(tmp);
    goto out;
  }
  {
    carried_t *carried;
    size_t ncarried = read_carried(m, path, &carried);
    rc = write_prometheus(m, f, carried, ncarried);
    free_carried(carried, ncarried);
  }
  if (rc == 0 && fsync(fd) != 0)
    rc = errno_code(errno);
  if (rc == 0 && fchmod(fd, 0644) != 0)
    rc = errno_code(errno);
  if (fclose(f) != 0 && rc == 0)
    rc = errno_code(errno);
  if (rc == 0 && rename(tmp, path) != 0)
    rc = errno_code(errno);
  if (rc != 0)
    unlink(tmp);
  else
    sync_dir(dir);
out:
  fc__free(tmp);
  fc__free(dir);
  return rc;
}

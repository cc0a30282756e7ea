/* The metrics handler: exact counters (hand-built events and real runs),
 * quantile error bounds against known distributions, bounded memory under
 * 100,000 distinct runs, the JSON report, and the Prometheus output checked
 * by a strict parser (which is itself tested on malformed input), written
 * atomically to a file. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fc_test.h"

#define WF_ID "01890a5d-ac96-774b-bcce-b302099a8057"

/* ---- events ------------------------------------------------------------------ */

typedef struct {
  fc_event_t ev;
  fc_error_info_t err;
  int counts[FC_NODE_STATUS_COUNT];
} evbuf_t;

static const fc_event_t *mk(evbuf_t *b, fc_event_kind_t kind, const char *wf, const char *node,
                            int attempt, int status, int64_t dur_us) {
  memset(b, 0, sizeof *b);
  b->ev.kind = kind;
  b->ev.workflow_id = WF_ID;
  b->ev.workflow_name = wf;
  b->ev.node_id = node;
  b->ev.node_type = "";
  b->ev.node_index = -1;
  b->ev.attempt = attempt;
  b->ev.status = status;
  b->ev.duration_us = dur_us;
  b->ev.node_count = 2;
  return &b->ev;
}

static const fc_event_t *mk_err(evbuf_t *b, const char *wf, const char *node, fc_severity_t sev) {
  mk(b, FC_EVENT_ERROR, wf, node, 1, 0, 0);
  b->err.type = "exit_status";
  b->err.message = "it broke";
  b->err.severity = sev;
  b->err.node_id = node;
  b->err.attempt = 1;
  b->ev.error = &b->err;
  return &b->ev;
}

static const fc_event_t *mk_end(evbuf_t *b, const char *wf, int status, int64_t dur_us,
                                int completed, int failed, int skipped) {
  mk(b, FC_EVENT_WORKFLOW_END, wf, NULL, 0, status, dur_us);
  b->counts[FC_NODE_COMPLETED] = completed;
  b->counts[FC_NODE_FAILED] = failed;
  b->counts[FC_NODE_SKIPPED] = skipped;
  b->ev.status_counts = b->counts;
  return &b->ev;
}

static void feed(fc_metrics_t *m, const fc_event_t *ev) {
  assert_int_equal(fc_metrics_observe(m, ev), 0);
}

/* One run of `wf` with one attempt of `node` lasting node_us. */
static void one_run(fc_metrics_t *m, const char *wf, const char *node, int64_t node_us,
                    int64_t wf_us) {
  evbuf_t b;
  feed(m, mk(&b, FC_EVENT_WORKFLOW_START, wf, NULL, 0, FC_WORKFLOW_RUNNING, 0));
  feed(m, mk(&b, FC_EVENT_NODE_START, wf, node, 1, FC_NODE_RUNNING, 0));
  feed(m, mk(&b, FC_EVENT_NODE_END, wf, node, 1, FC_NODE_COMPLETED, node_us));
  feed(m, mk_end(&b, wf, FC_WORKFLOW_COMPLETED, wf_us, 1, 0, 0));
}

static double jnum(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (!json_is_number(v))
    fail_msg("field %s is not a number", key);
  return json_number_value(v);
}

static json_int_t jint(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (!json_is_integer(v))
    fail_msg("field %s is not an integer", key);
  return json_integer_value(v);
}

/* ---- a strict Prometheus text-format checker --------------------------------- */

typedef struct {
  char name[160];
  char labels[512]; /* as written, without le */
  char le[40];      /* "" when absent */
  double value;
  int family;
} psample_t;

typedef struct {
  char name[128];
  char type[16];
  int has_help, has_type, nsamples;
} pfamily_t;

typedef struct {
  psample_t *s;
  size_t n, cap;
  pfamily_t fam[64];
  size_t nfam;
  char err[512];
} prom_t;

static int prom_fail(prom_t *p, int line, const char *what) {
  snprintf(p->err, sizeof p->err, "line %d: %s", line, what);
  return -1;
}

static int is_name_char(char c, int first, int colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':'))
    return 1;
  return !first && c >= '0' && c <= '9';
}

/* Length of a metric (colon 1) or label (colon 0) name at s, 0 if none. */
static size_t name_len(const char *s, int colon) {
  size_t n = 0;
  while (is_name_char(s[n], n == 0, colon))
    n++;
  return n;
}

static int parse_float(const char *s, double *out) {
  char *end;
  if (strcmp(s, "+Inf") == 0) {
    *out = INFINITY;
    return 0;
  }
  if (strcmp(s, "-Inf") == 0) {
    *out = -INFINITY;
    return 0;
  }
  if (strcmp(s, "NaN") == 0) {
    *out = NAN;
    return 0;
  }
  if (s[0] == '\0' || strchr("+-.0123456789", s[0]) == NULL)
    return -1;
  errno = 0;
  *out = strtod(s, &end);
  if (*end != '\0' || errno != 0 || isinf(*out) || isnan(*out))
    return -1;
  return 0;
}

static long family_find(prom_t *p, const char *name) {
  size_t i;
  for (i = 0; i < p->nfam; i++)
    if (strcmp(p->fam[i].name, name) == 0)
      return (long)i;
  return -1;
}

static long family_get(prom_t *p, const char *name, size_t len) {
  char buf[128];
  long f;
  if (len >= sizeof buf)
    return -1;
  memcpy(buf, name, len);
  buf[len] = '\0';
  f = family_find(p, buf);
  if (f >= 0 || p->nfam == 64)
    return f;
  memset(&p->fam[p->nfam], 0, sizeof p->fam[p->nfam]);
  snprintf(p->fam[p->nfam].name, sizeof p->fam[p->nfam].name, "%s", buf);
  return (long)p->nfam++;
}

/* The family a sample name belongs to (histograms: _bucket/_sum/_count). */
static long sample_family(prom_t *p, const char *name) {
  static const char *const suffix[] = {"_bucket", "_sum", "_count"};
  size_t i, n = strlen(name);
  long f;
  for (i = 0; i < 3; i++) {
    size_t k = strlen(suffix[i]);
    if (n > k && strcmp(name + n - k, suffix[i]) == 0) {
      char base[160];
      snprintf(base, sizeof base, "%.*s", (int)(n - k), name);
      f = family_find(p, base);
      if (f >= 0 && strcmp(p->fam[f].type, "histogram") == 0)
        return f;
    }
  }
  f = family_find(p, name);
  if (f >= 0 && strcmp(p->fam[f].type, "histogram") == 0)
    return -1; /* a histogram has no bare sample */
  return f;
}

/* Parses {labels}: fills labels (without le) and le. Returns the length
 * consumed, or -1. */
static long parse_labels(const char *s, char *labels, size_t lsize, char *le, size_t lesize) {
  const char *p = s;
  size_t ll = 0;
  labels[0] = '\0';
  le[0] = '\0';
  if (*p != '{')
    return 0;
  p++;
  if (*p == '}')
    return -1; /* we never write empty braces */
  for (;;) {
    size_t n = name_len(p, 0);
    char val[512];
    size_t vl = 0;
    int is_le;
    if (n == 0 || (n >= 2 && p[0] == '_' && p[1] == '_'))
      return -1;
    is_le = n == 2 && strncmp(p, "le", 2) == 0;
    if (!is_le) {
      if (ll + n + 4 >= lsize)
        return -1;
      if (ll > 0)
        labels[ll++] = ',';
      memcpy(labels + ll, p, n);
      ll += n;
    }
    p += n;
    if (*p++ != '=' || *p++ != '"')
      return -1;
    while (*p != '"') {
      if (*p == '\0' || *p == '\n')
        return -1;
      if (*p == '\\') {
        if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
          return -1;
        if (vl + 2 >= sizeof val)
          return -1;
        val[vl++] = *p++;
      }
      if (vl + 1 >= sizeof val)
        return -1;
      val[vl++] = *p++;
    }
    val[vl] = '\0';
    p++;
    if (is_le) {
      if (le[0] != '\0' || vl + 1 > lesize)
        return -1;
      memcpy(le, val, vl + 1);
    } else {
      if (ll + vl + 4 >= lsize)
        return -1;
      labels[ll++] = '=';
      labels[ll++] = '"';
      memcpy(labels + ll, val, vl);
      ll += vl;
      labels[ll++] = '"';
      labels[ll] = '\0';
    }
    if (*p == ',') {
      p++;
      continue;
    }
    if (*p == '}')
      return (long)(p + 1 - s);
    return -1;
  }
}

static int parse_sample(prom_t *p, const char *line, int ln, long *last_family) {
  psample_t smp;
  size_t n = name_len(line, 1), i;
  long consumed, f;
  const char *rest;
  char val[64];
  memset(&smp, 0, sizeof smp);
  if (n == 0 || n >= sizeof smp.name)
    return prom_fail(p, ln, "bad metric name");
  memcpy(smp.name, line, n);
  consumed = parse_labels(line + n, smp.labels, sizeof smp.labels, smp.le, sizeof smp.le);
  if (consumed < 0)
    return prom_fail(p, ln, "bad labels");
  rest = line + n + consumed;
  if (*rest != ' ')
    return prom_fail(p, ln, "no space before the value");
  rest++;
  if (strchr(rest, ' ') != NULL)
    return prom_fail(p, ln, "extra fields after the value");
  if (strlen(rest) >= sizeof val || parse_float(rest, &smp.value) != 0)
    return prom_fail(p, ln, "bad value");
  f = sample_family(p, smp.name);
  if (f < 0 || !p->fam[f].has_type)
    return prom_fail(p, ln, "sample without a TYPE line");
  if (strcmp(p->fam[f].type, "counter") == 0) {
    size_t k = strlen(smp.name);
    if (k < 6 || strcmp(smp.name + k - 6, "_total") != 0)
      return prom_fail(p, ln, "counter without _total");
    if (smp.value < 0)
      return prom_fail(p, ln, "negative counter");
  }
  if (strcmp(p->fam[f].type, "histogram") == 0) {
    size_t k = strlen(smp.name);
    int bucket = k > 7 && strcmp(smp.name + k - 7, "_bucket") == 0;
    if (bucket != (smp.le[0] != '\0'))
      return prom_fail(p, ln, "le label on a non-bucket or missing on a bucket");
  } else if (smp.le[0] != '\0') {
    return prom_fail(p, ln, "le label outside a histogram");
  }
  if (*last_family != f && p->fam[f].nsamples > 0)
    return prom_fail(p, ln, "samples of a family are not contiguous");
  for (i = 0; i < p->n; i++)
    if (strcmp(p->s[i].name, smp.name) == 0 && strcmp(p->s[i].labels, smp.labels) == 0 &&
        strcmp(p->s[i].le, smp.le) == 0)
      return prom_fail(p, ln, "duplicate series");
  smp.family = (int)f;
  p->fam[f].nsamples++;
  *last_family = f;
  if (p->n == p->cap) {
    p->cap = p->cap ? p->cap * 2 : 256;
    p->s = realloc(p->s, p->cap * sizeof *p->s);
    assert_non_null(p->s);
  }
  p->s[p->n++] = smp;
  return 0;
}

static int parse_comment(prom_t *p, const char *line, int ln) {
  int help = strncmp(line, "# HELP ", 7) == 0, type = strncmp(line, "# TYPE ", 7) == 0;
  const char *name = line + 7;
  size_t n;
  long f;
  if (!help && !type)
    return prom_fail(p, ln, "a comment that is neither HELP nor TYPE");
  n = name_len(name, 1);
  if (n == 0 || name[n] != ' ' || name[n + 1] == '\0')
    return prom_fail(p, ln, "bad HELP/TYPE line");
  f = family_get(p, name, n);
  if (f < 0)
    return prom_fail(p, ln, "too many families");
  if (p->fam[f].nsamples > 0)
    return prom_fail(p, ln, "HELP/TYPE after samples");
  if (help) {
    const char *t;
    if (p->fam[f].has_help)
      return prom_fail(p, ln, "second HELP");
    for (t = name + n + 1; *t; t++)
      if (*t == '\\' && t[1] != '\\' && t[1] != 'n')
        return prom_fail(p, ln, "bad escape in HELP");
      else if (*t == '\\')
        t++;
    p->fam[f].has_help = 1;
  } else {
    const char *t = name + n + 1;
    if (p->fam[f].has_type)
      return prom_fail(p, ln, "second TYPE");
    if (strcmp(t, "counter") != 0 && strcmp(t, "gauge") != 0 && strcmp(t, "histogram") != 0 &&
        strcmp(t, "summary") != 0 && strcmp(t, "untyped") != 0)
      return prom_fail(p, ln, "unknown TYPE");
    snprintf(p->fam[f].type, sizeof p->fam[f].type, "%s", t);
    p->fam[f].has_type = 1;
  }
  return 0;
}

static const psample_t *prom_find(const prom_t *p, const char *name, const char *labels,
                                  const char *le) {
  size_t i;
  for (i = 0; i < p->n; i++)
    if (strcmp(p->s[i].name, name) == 0 && strcmp(p->s[i].labels, labels) == 0 &&
        strcmp(p->s[i].le, le) == 0)
      return &p->s[i];
  return NULL;
}

/* Every histogram series: buckets in increasing le, cumulative, ending at
 * +Inf equal to _count, and a _sum. */
static int check_histograms(prom_t *p) {
  size_t i, j;
  for (i = 0; i < p->n; i++) {
    const psample_t *s = &p->s[i];
    const pfamily_t *f = &p->fam[s->family];
    char nm[200];
    double prev_le = -INFINITY, prev_count = 0;
    int seen_inf = 0;
    const psample_t *cnt, *sum;
    if (strcmp(f->type, "histogram") != 0 || s->le[0] == '\0')
      continue;
    /* the first bucket of a series: check the whole series */
    for (j = 0; j < i; j++)
      if (p->s[j].family == s->family && p->s[j].le[0] != '\0' &&
          strcmp(p->s[j].labels, s->labels) == 0)
        break;
    if (j < i)
      continue;
    for (j = i; j < p->n; j++) {
      const psample_t *b = &p->s[j];
      double le;
      if (b->family != s->family || b->le[0] == '\0' || strcmp(b->labels, s->labels) != 0)
        continue;
      if (seen_inf)
        return prom_fail(p, 0, "bucket after +Inf");
      if (parse_float(b->le, &le) != 0 || isnan(le) || le <= prev_le)
        return prom_fail(p, 0, "le values not increasing");
      if (b->value < prev_count)
        return prom_fail(p, 0, "buckets not cumulative");
      prev_le = le;
      prev_count = b->value;
      seen_inf = isinf(le) && le > 0;
    }
    if (!seen_inf)
      return prom_fail(p, 0, "no le=\"+Inf\" bucket");
    snprintf(nm, sizeof nm, "%s_count", f->name);
    cnt = prom_find(p, nm, s->labels, "");
    snprintf(nm, sizeof nm, "%s_sum", f->name);
    sum = prom_find(p, nm, s->labels, "");
    if (cnt == NULL || sum == NULL)
      return prom_fail(p, 0, "histogram without _count or _sum");
    if (cnt->value != prev_count)
      return prom_fail(p, 0, "+Inf bucket differs from _count");
  }
  return 0;
}

/* Parses a whole exposition; 0 when valid, else -1 and p->err. */
static int prom_parse(const char *text, prom_t *p) {
  char *copy = strdup(text), *line, *save = NULL;
  size_t len = strlen(text);
  long last_family = -1;
  int ln = 0, rc = 0;
  memset(p, 0, sizeof *p);
  assert_non_null(copy);
  if (len == 0 || text[len - 1] != '\n') {
    free(copy);
    return prom_fail(p, 0, "does not end with a newline");
  }
  if (strstr(text, "\n\n") != NULL) {
    free(copy);
    return prom_fail(p, 0, "empty line");
  }
  for (line = strtok_r(copy, "\n", &save); line != NULL && rc == 0;
       line = strtok_r(NULL, "\n", &save)) {
    ln++;
    if (line[0] == '#')
      rc = parse_comment(p, line, ln);
    else
      rc = parse_sample(p, line, ln, &last_family);
  }
  free(copy);
  if (rc == 0)
    rc = check_histograms(p);
  return rc;
}

static void prom_free(prom_t *p) { free(p->s); }

static double prom_value(const prom_t *p, const char *name, const char *labels, const char *le) {
  const psample_t *s = prom_find(p, name, labels, le);
  if (s == NULL)
    fail_msg("no sample %s{%s%sle=%s}", name, labels, labels[0] ? "," : "", le);
  return s->value;
}

static char *prometheus_text(const fc_metrics_t *m) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  assert_int_equal(fc_metrics_write_prometheus(m, f), 0);
  assert_int_equal(fclose(f), 0);
  return buf;
}

static void test_checker_rejects_malformed(void **state) {
  static const char *const bad[] = {
      /* metric name */
      "# TYPE 9bad gauge\n9bad 1\n",
      "# TYPE a_total counter\na-b_total 1\n",
      /* labels */
      "# TYPE g gauge\ng{a=\"1\" 1\n",
      "# TYPE g gauge\ng{a=1} 1\n",
      "# TYPE g gauge\ng{a=\"1\",} 1\n",
      "# TYPE g gauge\ng{1a=\"x\"} 1\n",
      "# TYPE g gauge\ng{a=\"bad\\escape\"} 1\n",
      "# TYPE g gauge\ng{} 1\n",
      /* values */
      "# TYPE g gauge\ng 1.2.3\n",
      "# TYPE g gauge\ng abc\n",
      "# TYPE g gauge\ng inf\n",
      "# TYPE g gauge\ng\n",
      "# TYPE g gauge\ng 1 2 3\n",
      /* HELP/TYPE consistency */
      "g 1\n",
      "# TYPE g gauge\n# TYPE g gauge\ng 1\n",
      "# HELP g x\n# HELP g y\n# TYPE g gauge\ng 1\n",
      "# TYPE g gauge\ng 1\n# HELP g late\n",
      "# TYPE g wibble\ng 1\n",
      "# TYPE c counter\nc 1\n",
      "# TYPE c_total counter\nc_total -1\n",
      "# a free comment\n",
      "# TYPE g gauge\n# TYPE h gauge\ng 1\nh 1\ng{x=\"1\"} 2\n",
      "# TYPE g gauge\ng 1\ng 2\n",
      /* histograms */
      "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
      "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
      "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
      ("# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n"
       "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"),
      "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
      "# TYPE h histogram\nh_bucket 1\nh_sum 1\nh_count 1\n",
      "# TYPE h histogram\nh 1\n",
      /* layout */
      "# TYPE g gauge\ng 1",
      "# TYPE g gauge\n\ng 1\n",
  };
  static const char *good =
      "# HELP h A \\\\ help\\n text.\n# TYPE h histogram\n"
      "h_bucket{a=\"x\\\"y\\\\z\\n\",le=\"0.5\"} 1\nh_bucket{a=\"x\\\"y\\\\z\\n\",le=\"+Inf\"} 3\n"
      "h_sum{a=\"x\\\"y\\\\z\\n\"} 1.5e-3\nh_count{a=\"x\\\"y\\\\z\\n\"} 3\n"
      "# TYPE c_total counter\nc_total{k=\"v\",l=\"w\"} 7\n# TYPE g gauge\ng NaN\n";
  prom_t p;
  size_t i;
  (void)state;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = prom_parse(bad[i], &p);
    prom_free(&p);
    if (rc == 0)
      fail_msg("checker accepted malformed text #%zu:\n%s", i, bad[i]);
  }
  if (prom_parse(good, &p) != 0)
    fail_msg("checker rejected valid text: %s", p.err);
  assert_int_equal((int)prom_value(&p, "c_total", "k=\"v\",l=\"w\"", ""), 7);
  assert_int_equal((int)prom_value(&p, "h_bucket", "a=\"x\\\"y\\\\z\\n\"", "+Inf"), 3);
  prom_free(&p);
}

/* fc_metrics_options_init: the documented caps, the same as opts NULL. */
static void test_options_init(void **state) {
  fc_metrics_options_t o;
  fc_metrics_info_t info;
  fc_metrics_t *m;
  (void)state;
  memset(&o, 0xff, sizeof o);
  fc_metrics_options_init(&o);
  assert_int_equal(o.max_node_keys, 1000);
  assert_int_equal(o.max_workflow_keys, 100);
  assert_null(o.prefix);
  assert_null(o.buckets);
  assert_int_equal(o.bucket_count, 0);
  assert_int_equal(fc_metrics_new(&m, &o), 0);
  fc_metrics_info(m, &info);
  assert_int_equal(info.max_node_keys, 1000);
  assert_int_equal(info.max_workflow_keys, 100);
  fc_metrics_free(m);
}

/* ---- counters ---------------------------------------------------------------- */

static void test_counters_hand_built(void **state) {
  fc_metrics_t *m;
  fc_metrics_counters_t c;
  fc_metrics_summary_t s;
  evbuf_t b;
  json_t *r, *slow, *last;
  (void)state;
  assert_int_equal(fc_metrics_new(&m, NULL), 0);

  /* Run 1 of "etl": a (10 ms) ok; b fails once (30 ms), retried ok (50 ms). */
  feed(m, mk(&b, FC_EVENT_WORKFLOW_START, "etl", NULL, 0, FC_WORKFLOW_RUNNING, 0));
  feed(m, mk(&b, FC_EVENT_NODE_START, "etl", "a", 1, FC_NODE_RUNNING, 0));
  feed(m, mk(&b, FC_EVENT_NODE_END, "etl", "a", 1, FC_NODE_COMPLETED, 10000));
  feed(m, mk(&b, FC_EVENT_NODE_START, "etl", "b", 1, FC_NODE_RUNNING, 0));
  feed(m, mk_err(&b, "etl", "b", FC_SEVERITY_ERROR));
  feed(m, mk(&b, FC_EVENT_NODE_END, "etl", "b", 1, FC_NODE_FAILED, 30000));
  feed(m, mk(&b, FC_EVENT_NODE_START, "etl", "b", 2, FC_NODE_RUNNING, 0));
  feed(m, mk(&b, FC_EVENT_NODE_END, "etl", "b", 2, FC_NODE_COMPLETED, 50000));
  feed(m, mk_end(&b, "etl", FC_WORKFLOW_COMPLETED, 100000, 2, 0, 0));
  /* Run 2: a fails critically (20 ms), b skipped without running. */
  feed(m, mk(&b, FC_EVENT_WORKFLOW_START, "etl", NULL, 0, FC_WORKFLOW_RUNNING, 0));
  feed(m, mk(&b, FC_EVENT_NODE_START, "etl", "a", 1, FC_NODE_RUNNING, 0));
  feed(m, mk_err(&b, "etl", "a", FC_SEVERITY_CRITICAL));
  feed(m, mk(&b, FC_EVENT_NODE_END, "etl", "a", 1, FC_NODE_FAILED, 20000));
  feed(m, mk(&b, FC_EVENT_NODE_END, "etl", "b", 0, FC_NODE_SKIPPED, 0));
  feed(m, mk_end(&b, "etl", FC_WORKFLOW_FAILED, 300000, 0, 1, 1));
  /* A run still going, and a warning. */
  feed(m, mk(&b, FC_EVENT_WORKFLOW_START, "other", NULL, 0, FC_WORKFLOW_RUNNING, 0));
  feed(m, mk_err(&b, "other", NULL, FC_SEVERITY_WARNING));

  fc_metrics_counters(m, &c);
  assert_int_equal(c.workflows_started, 3);
  assert_int_equal(c.workflows_ended[FC_WORKFLOW_COMPLETED], 1);
  assert_int_equal(c.workflows_ended[FC_WORKFLOW_FAILED], 1);
  assert_int_equal(c.workflows_ended[FC_WORKFLOW_CANCELLED], 0);
  assert_int_equal(c.node_attempts, 4);
  assert_int_equal(c.attempts_ended[FC_NODE_COMPLETED], 2);
  assert_int_equal(c.attempts_ended[FC_NODE_FAILED], 2);
  assert_int_equal(c.attempts_ended[FC_NODE_SKIPPED], 0);
  assert_int_equal(c.nodes_final[FC_NODE_COMPLETED], 2);
  assert_int_equal(c.nodes_final[FC_NODE_FAILED], 1);
  assert_int_equal(c.nodes_final[FC_NODE_SKIPPED], 1);
  assert_int_equal(c.errors[FC_SEVERITY_ERROR], 1);
  assert_int_equal(c.errors[FC_SEVERITY_CRITICAL], 1);
  assert_int_equal(c.errors[FC_SEVERITY_WARNING], 1);
  assert_int_equal(c.errors_total, 3);

  assert_int_equal(fc_metrics_node_summary(m, "etl", "b", &s), 0);
  assert_int_equal(s.count, 2);
  assert_true(fabs(s.mean - 0.040) < 1e-12);
  assert_true(fabs(s.min - 0.030) < 1e-12 && fabs(s.max - 0.050) < 1e-12);
  assert_int_equal(fc_metrics_node_summary(m, "etl", "nope", &s), FC_ENOTFOUND);
  assert_int_equal(fc_metrics_workflow_summary(m, NULL, &s), 0);
  assert_int_equal(s.count, 2);
  assert_true(fabs(s.mean - 0.2) < 1e-12);

  r = fc_metrics_report_json(m);
  assert_non_null(r);
  assert_int_equal(jint(r, "total_workflows"), 3);
  assert_int_equal(jint(r, "total_nodes"), 4);
  assert_true(fabs(jnum(r, "error_rate") - 3.0 / 4.0) < 1e-12);
  assert_true(fabs(jnum(r, "avg_workflow_duration") - 0.2) < 1e-12);
  slow = json_object_get(r, "slowest_nodes");
  assert_int_equal(json_array_size(slow), 2);
  assert_string_equal(json_string_value(json_array_get(json_array_get(slow, 0), 0)), "b");
  assert_true(fabs(json_real_value(json_array_get(json_array_get(slow, 0), 1)) - 0.040) < 1e-12);
  assert_string_equal(json_string_value(json_array_get(json_array_get(slow, 1), 0)), "a");
  assert_true(fabs(json_real_value(json_array_get(json_array_get(slow, 1), 1)) - 0.015) < 1e-12);
  assert_int_equal(jint(json_object_get(r, "workflows"), "running"), 1);
  assert_int_equal(jint(json_object_get(r, "errors"), "critical"), 1);
  assert_int_equal(jint(json_object_get(json_object_get(r, "nodes"), "final"), "skipped"), 1);
  last = json_object_get(r, "last_error");
  assert_string_equal(json_string_value(json_object_get(last, "severity")), "warning");
  assert_true(json_is_null(json_object_get(last, "node_id")));
  assert_int_equal(json_array_size(json_object_get(r, "node_stats")), 2);
  assert_int_equal(json_array_size(json_object_get(r, "workflow_stats")), 1);
  json_decref(r);

  /* reset forgets everything */
  fc_metrics_reset(m);
  fc_metrics_counters(m, &c);
  assert_int_equal(c.workflows_started + c.node_attempts + c.errors_total, 0);
  r = fc_metrics_report_json(m);
  assert_non_null(r);
  assert_int_equal(json_array_size(json_object_get(r, "slowest_nodes")), 0);
  assert_true(json_is_null(json_object_get(r, "last_error")));
  assert_true(jnum(r, "avg_workflow_duration") == 0.0);
  json_decref(r);
  fc_metrics_free(m);
}

/* The slowest_nodes list holds at most 5 entries, slowest first. */
static void test_slowest_top5(void **state) {
  fc_metrics_t *m;
  json_t *r, *slow;
  char node[16];
  int i;
  (void)state;
  assert_int_equal(fc_metrics_new(&m, NULL), 0);
  for (i = 0; i < 8; i++) {
    snprintf(node, sizeof node, "n%d", i);
    one_run(m, "wf", node, (int64_t)(i + 1) * 1000, 100);
  }
  r = fc_metrics_report_json(m);
  slow = json_object_get(r, "slowest_nodes");
  assert_int_equal(json_array_size(slow), 5);
  for (i = 0; i < 5; i++) {
    snprintf(node, sizeof node, "n%d", 7 - i);
    assert_string_equal(json_string_value(json_array_get(json_array_get(slow, (size_t)i), 0)),
                        node);
  }
  json_decref(r);
  fc_metrics_free(m);
}

/* ---- a real run -------------------------------------------------------------- */

static void fn_ok(fc_node_ctx_t *ctx, void *ud) {
  (void)ud;
  fc_node_succeed(ctx, json_integer(1));
}

static void fn_critical(fc_node_ctx_t *ctx, void *ud) {
  (void)ud;
  fc_node_failf(ctx, FC_SEVERITY_CRITICAL, "boom", "attempt %d failed", fc_node_ctx_attempt(ctx));
}

/* ok1 -> ok2; bad (1 retry) -> after_bad (skipped). */
static fc_workflow_t *etl_workflow(void) {
  fc_workflow_t *wf;
  fc_node_t *n;
  assert_int_equal(fc_workflow_new(&wf, "etl"), 0);
  assert_int_equal(fc_workflow_add_node(wf, "ok1", fn_ok, NULL, NULL), 0);
  assert_int_equal(fc_workflow_add_node(wf, "ok2", fn_ok, NULL, &n), 0);
  assert_int_equal(fc_node_add_dep(n, "ok1"), 0);
  assert_int_equal(fc_workflow_add_node(wf, "bad", fn_critical, NULL, &n), 0);
  assert_int_equal(fc_node_set_retries(n, 1, 0, 0), 0);
  assert_int_equal(fc_workflow_add_node(wf, "after_bad", fn_ok, NULL, &n), 0);
  assert_int_equal(fc_node_add_dep(n, "bad"), 0);
  assert_int_equal(fc_workflow_validate(wf, NULL), 0);
  return wf;
}

static void test_real_run(void **state) {
  fc_metrics_t *m;
  fc_manager_t *mgr;
  fc_workflow_t *wf = etl_workflow();
  fc_run_result_t res;
  fc_metrics_counters_t c;
  fc_metrics_summary_t s;
  fc_handler_t h;
  json_t *r;
  int i;
  (void)state;
  assert_int_equal(fc_metrics_new(&m, NULL), 0);
  assert_int_equal(fc_manager_new(&mgr), 0);
  assert_int_equal(fc_metrics_handler(m, &h), 0);
  assert_null(h.destroy); /* borrowed */
  assert_int_equal(fc_manager_add(mgr, &h, 0, NULL), 0);
  for (i = 0; i < 3; i++) {
    memset(&res, 0, sizeof res);
    assert_int_equal(fc_workflow_run(wf, NULL, mgr, &res, NULL), 0);
    assert_int_equal(res.status, FC_WORKFLOW_FAILED);
    fc_run_result_clear(&res);
  }
  assert_int_equal(fc_manager_failures(mgr), 0);
  fc_metrics_counters(m, &c);
  assert_int_equal(c.workflows_started, 3);
  assert_int_equal(c.workflows_ended[FC_WORKFLOW_FAILED], 3);
  assert_int_equal(c.node_attempts, 3 * 4); /* ok1, ok2, bad x2 */
  assert_int_equal(c.attempts_ended[FC_NODE_COMPLETED], 3 * 2);
  assert_int_equal(c.attempts_ended[FC_NODE_FAILED], 3 * 2);
  assert_int_equal(c.nodes_final[FC_NODE_COMPLETED], 3 * 2);
  assert_int_equal(c.nodes_final[FC_NODE_FAILED], 3 * 1);
  assert_int_equal(c.nodes_final[FC_NODE_SKIPPED], 3 * 1);
  assert_int_equal(c.errors[FC_SEVERITY_CRITICAL], 3 * 2);
  assert_int_equal(c.errors_total, 3 * 2);
  assert_int_equal(fc_metrics_node_summary(m, "etl", "bad", &s), 0);
  assert_int_equal(s.count, 6);
  assert_int_equal(fc_metrics_node_summary(m, "etl", "after_bad", &s), FC_ENOTFOUND);
  assert_int_equal(fc_metrics_workflow_summary(m, "etl", &s), 0);
  assert_int_equal(s.count, 3);
  r = fc_metrics_report_json(m);
  assert_int_equal(jint(r, "total_nodes"), 12);
  assert_true(fabs(jnum(r, "error_rate") - 0.5) < 1e-12);
  assert_int_equal(json_array_size(json_object_get(r, "slowest_nodes")), 3);
  assert_string_equal(json_string_value(json_object_get(json_object_get(r, "last_error"), "type")),
                      "boom");
  json_decref(r);
  fc_manager_free(mgr); /* borrowed: m survives */
  fc_metrics_counters(m, &c);
  assert_int_equal(c.workflows_started, 3);
  fc_metrics_free(m);

  /* owned: the manager frees it (ASan checks the leak) */
  assert_int_equal(fc_metrics_new(&m, NULL), 0);
  assert_int_equal(fc_manager_new(&mgr), 0);
  assert_int_equal(fc_metrics_handler_owned(m, &h), 0);
  assert_non_null(h.destroy);
  assert_int_equal(fc_manager_add(mgr, &h, 0, NULL), 0);
  memset(&res, 0, sizeof res);
  assert_int_equal(fc_workflow_run(wf, NULL, mgr, &res, NULL), 0);
  fc_run_result_clear(&res);
  fc_metrics_counters(m, &c);
  assert_int_equal(c.workflows_started, 1);
  fc_manager_free(mgr);
  fc_workflow_free(wf);
}

/* ---- quantiles --------------------------------------------------------------- */

static uint64_t lcg_state;
static uint64_t lcg(void) {
  lcg_state = lcg_state * 6364136223846793005u + 1442695040888963407u;
  return lcg_state >> 33;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static void check_quantile(double est_s, const int64_t *sorted, size_t n, double p,
                           const char *what) {
  size_t rank = (size_t)ceil(p * (double)n);
  double exact = (double)sorted[(rank ? rank : 1) - 1];
  double est = est_s * 1e6;
  if (fabs(est - exact) > exact / 32.0 + 1e-6)
    fail_msg("%s p%.0f: estimate %.3f µs, exact %.0f µs (bound %.3f)", what, p * 100, est, exact,
             exact / 32.0);
}

/* in_range 0: values beyond the histogram's range (2^42 µs), where only
 * min <= estimate <= max is promised. */
static void check_distribution(const char *what, int64_t *v, size_t n, int in_range) {
  fc_metrics_t *m;
  fc_metrics_summary_t s;
  evbuf_t b;
  size_t i;
  double sum = 0;
  assert_int_equal(fc_metrics_new(&m, NULL), 0);
  for (i = 0; i < n; i++) {
    feed(m, mk(&b, FC_EVENT_NODE_END, "dist", "x", 1, FC_NODE_COMPLETED, v[i]));
    sum += (double)v[i];
  }
  qsort(v, n, sizeof *v, cmp_i64);
  assert_int_equal(fc_metrics_node_summary(m, "dist", "x", &s), 0);
  assert_int_equal(s.count, n);
  assert_true(fabs(s.sum - sum / 1e6) < 1e-6);
  assert_true(s.min == (double)v[0] / 1e6);
  assert_true(s.max == (double)v[n - 1] / 1e6);
  if (in_range) {
    check_quantile(s.p50, v, n, 0.50, what);
    check_quantile(s.p95, v, n, 0.95, what);
    check_quantile(s.p99, v, n, 0.99, what);
  } else {
    assert_true(s.p50 >= s.min && s.p50 <= s.max);
    assert_true(s.p95 >= s.min && s.p95 <= s.max);
  }
  fc_metrics_free(m);
}

static void test_quantiles(void **state) {
  enum { N = 20000 };
  int64_t *v = malloc(N * sizeof *v);
  size_t i;
  (void)state;
  assert_non_null(v);
  lcg_state = 42;
  /* uniform 1 µs .. 100 ms */
  for (i = 0; i < N; i++)
    v[i] = 1 + (int64_t)(lcg() % 100000);
  check_distribution("uniform", v, N, 1);
  /* log-uniform 1 µs .. ~1 hour (heavy tail) */
  for (i = 0; i < N; i++)
    v[i] = (int64_t)exp((double)(lcg() % 1000000) / 1000000.0 * log(3.6e9));
  check_distribution("log-uniform", v, N, 1);
  /* bimodal: 90 % near 2 ms, 10 % near 3 s */
  for (i = 0; i < N; i++)
    v[i] = (lcg() % 10 == 0) ? 3000000 + (int64_t)(lcg() % 100000) : 2000 + (int64_t)(lcg() % 200);
  check_distribution("bimodal", v, N, 1);
  /* small values are exact */
  for (i = 0; i < N; i++)
    v[i] = (int64_t)(lcg() % 32);
  check_distribution("small", v, N, 1);
  /* a single value, and values above the histogram's range */
  for (i = 0; i < N; i++)
    v[i] = i % 2 ? INT64_C(5000000000000) : INT64_C(7000000000000); /* 58 and 81 days */
  check_distribution("huge", v, N, 0);
  free(v);
}

/* ---- bounded memory ---------------------------------------------------------- */

static void test_bounded_memory(void **state) {
  fc_metrics_options_t o;
  fc_metrics_t *m;
  fc_metrics_info_t info;
  fc_metrics_summary_t s;
  size_t mem_early;
  char wf[32], node[32], big[1000];
  int i;
  (void)state;
  memset(&o, 0, sizeof o);
  o.max_node_keys = 50;
  o.max_workflow_keys = 10;
  assert_int_equal(fc_metrics_new(&m, &o), 0);
  for (i = 0; i < 100000; i++) {
    snprintf(wf, sizeof wf, "wf-%d", i);
    snprintf(node, sizeof node, "n-%d", i);
    one_run(m, wf, node, 1000 + i % 7, 2000);
    if (i == 999) {
      fc_metrics_info(m, &info);
      mem_early = info.memory_bytes;
    }
  }
  fc_metrics_info(m, &info);
  assert_int_equal(info.node_keys, 50);
  assert_int_equal(info.max_node_keys, 50);
  assert_int_equal(info.workflow_keys, 10);
  assert_int_equal(info.node_overflow, 100000 - 50);
  assert_int_equal(info.workflow_overflow, 100000 - 10);
  assert_int_equal(info.memory_bytes, mem_early); /* nothing grew after the caps */
  assert_true(info.memory_bytes < 60 * 6000 + 64 * 1024);
  assert_int_equal(fc_metrics_node_summary(m, NULL, NULL, &s), 0); /* "(other)" */
  assert_int_equal(s.count, 100000 - 50);
  assert_int_equal(fc_metrics_node_summary(m, "wf-49", "n-49", &s), 0);
  assert_int_equal(fc_metrics_node_summary(m, "wf-50", "n-50", &s), FC_ENOTFOUND);
  assert_int_equal(fc_metrics_workflow_summary(m, NULL, &s), 0);
  assert_int_equal(s.count, 100000);
  fc_metrics_free(m);

  /* Defaults: many runs of one workflow keep the same keys; many node ids
   * stop at the cap; over-long names are stored bounded. */
  assert_int_equal(fc_metrics_new(&m, NULL), 0);
  for (i = 0; i < 100000; i++)
    one_run(m, "steady", i % 2 ? "x" : "y", 10, 20);
  fc_metrics_info(m, &info);
  assert_int_equal(info.node_keys, 2);
  assert_int_equal(info.workflow_keys, 1);
  mem_early = info.memory_bytes;
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  one_run(m, big, big, 10, 20);
  one_run(m, big, big, 10, 20); /* the same (bounded) key */
  fc_metrics_info(m, &info);
  assert_int_equal(info.node_keys, 3);
  assert_true(info.memory_bytes - mem_early <
              2 * 6000 + FC_WORKFLOW_NAME_MAX * 2 + 2 * FC_NAME_MAX + 8);
  assert_int_equal(fc_metrics_node_summary(m, big, big, &s), 0);
  assert_int_equal(s.count, 2);
  for (i = 0; i < 5000; i++) {
    snprintf(node, sizeof node, "node-%d", i);
    one_run(m, "wide", node, 10, 20);
  }
  fc_metrics_info(m, &info);
  assert_int_equal(info.node_keys, 1000);
  assert_int_equal(info.node_overflow, 5000 - (1000 - 3));
  fc_metrics_free(m);
}

/* ---- Prometheus -------------------------------------------------------------- */

static void test_prometheus_output(void **state) {
  fc_metrics_options_t o;
  fc_metrics_t *m;
  prom_t p;
  evbuf_t b;
  char *text;
  const char *wq = "we\"ird\\ name\nx"; /* needs escaping in label values */
  const char *lab_a = "workflow=\"etl\",node=\"a\"";
  (void)state;
  memset(&o, 0, sizeof o);
  o.max_node_keys = 3;
  assert_int_equal(fc_metrics_new(&m, &o), 0);

  /* Empty metrics are valid too. */
  text = prometheus_text(m);
  if (prom_parse(text, &p) != 0)
    fail_msg("invalid exposition (%s):\n%s", p.err, text);
  assert_int_equal((int)prom_value(&p, "flowcore_workflows_started_total", "", ""), 0);
  prom_free(&p);
  free(text);

  one_run(m, "etl", "a", 500, 10000);       /* 0.5 ms */
  one_run(m, "etl", "a", 2000, 20000);      /* 2 ms */
  one_run(m, "etl", "a", 2000000, 3000000); /* 2 s */
  one_run(m, "etl", "a", 7200000000, 1000); /* 2 h: only +Inf */
  one_run(m, wq, "b", 1000, 1000);          /* exactly 1 ms: le="0.001" */
  one_run(m, "etl", "c", 10, 10);
  one_run(m, "etl", "d", 10, 10); /* beyond the cap of 3 keys */
  one_run(m, "etl", "e", 10, 10);
  feed(m, mk_err(&b, "etl", "a", FC_SEVERITY_CRITICAL));
  feed(m, mk(&b, FC_EVENT_WORKFLOW_START, "etl", NULL, 0, FC_WORKFLOW_RUNNING, 0));

  text = prometheus_text(m);
  if (prom_parse(text, &p) != 0)
    fail_msg("invalid exposition (%s):\n%s", p.err, text);
  assert_int_equal((int)prom_value(&p, "flowcore_workflows_started_total", "", ""), 9);
  assert_int_equal((int)prom_value(&p, "flowcore_workflows_running", "", ""), 1);
  assert_int_equal(
      (int)prom_value(&p, "flowcore_workflows_ended_total", "status=\"completed\"", ""), 8);
  assert_int_equal((int)prom_value(&p, "flowcore_workflows_ended_total", "status=\"failed\"", ""),
                   0);
  assert_int_equal((int)prom_value(&p, "flowcore_node_attempts_started_total", "", ""), 8);
  assert_int_equal((int)prom_value(&p, "flowcore_node_attempts_total", "status=\"completed\"", ""),
                   8);
  assert_int_equal((int)prom_value(&p, "flowcore_nodes_total", "status=\"completed\"", ""), 8);
  assert_int_equal((int)prom_value(&p, "flowcore_errors_total", "severity=\"critical\"", ""), 1);
  assert_int_equal((int)prom_value(&p, "flowcore_errors_total", "severity=\"info\"", ""), 0);
  /* node histogram of etl/a */
  assert_int_equal((int)prom_value(&p, "flowcore_node_duration_seconds_bucket", lab_a, "0.001"), 1);
  assert_int_equal((int)prom_value(&p, "flowcore_node_duration_seconds_bucket", lab_a, "0.0025"),
                   2);
  assert_int_equal((int)prom_value(&p, "flowcore_node_duration_seconds_bucket", lab_a, "2.5"), 3);
  assert_int_equal((int)prom_value(&p, "flowcore_node_duration_seconds_bucket", lab_a, "3600"), 3);
  assert_int_equal((int)prom_value(&p, "flowcore_node_duration_seconds_bucket", lab_a, "+Inf"), 4);
  assert_int_equal((int)prom_value(&p, "flowcore_node_duration_seconds_count", lab_a, ""), 4);
  assert_true(fabs(prom_value(&p, "flowcore_node_duration_seconds_sum", lab_a, "") -
                   (0.0005 + 0.002 + 2.0 + 7200.0)) < 1e-9);
  /* the escaped workflow name, and le is inclusive */
  assert_int_equal((int)prom_value(&p, "flowcore_node_duration_seconds_bucket",
                                   "workflow=\"we\\\"ird\\\\ name\\nx\",node=\"b\"", "0.001"),
                   1);
  assert_int_equal((int)prom_value(&p, "flowcore_workflow_duration_seconds_count",
                                   "workflow=\"we\\\"ird\\\\ name\\nx\"", ""),
                   1);
  assert_int_equal(
      (int)prom_value(&p, "flowcore_workflow_duration_seconds_count", "workflow=\"etl\"", ""), 7);
  /* the cap: keys a, b, c; d and e under "(other)" */
  assert_int_equal((int)prom_value(&p, "flowcore_metrics_node_keys", "", ""), 3);
  assert_int_equal((int)prom_value(&p, "flowcore_metrics_overflow_total", "kind=\"node\"", ""), 2);
  assert_int_equal((int)prom_value(&p, "flowcore_node_duration_seconds_count",
                                   "workflow=\"(other)\",node=\"(other)\"", ""),
                   2);
  assert_null(
      prom_find(&p, "flowcore_node_duration_seconds_count", "workflow=\"etl\",node=\"d\"", ""));
  prom_free(&p);
  free(text);
  fc_metrics_free(m);
}

static void test_prometheus_options(void **state) {
  static const double buckets[] = {0.1, 1};
  static const double bad_order[] = {1, 0.1};
  static const double bad_zero[] = {0, 1};
  fc_metrics_options_t o;
  fc_metrics_t *m;
  prom_t p;
  char *text;
  (void)state;
  memset(&o, 0, sizeof o);
  o.prefix = "9bad";
  assert_int_equal(fc_metrics_new(&m, &o), FC_EINVAL);
  o.prefix = "my-app";
  assert_int_equal(fc_metrics_new(&m, &o), FC_EINVAL);
  o.prefix = "app:jobs";
  o.buckets = bad_order;
  o.bucket_count = 2;
  assert_int_equal(fc_metrics_new(&m, &o), FC_EINVAL);
  o.buckets = bad_zero;
  assert_int_equal(fc_metrics_new(&m, &o), FC_EINVAL);
  o.buckets = buckets;
  o.bucket_count = 0;
  assert_int_equal(fc_metrics_new(&m, &o), FC_EINVAL);
  o.bucket_count = 2;
  assert_int_equal(fc_metrics_new(&m, &o), 0);
  one_run(m, "w", "n", 50000, 500000);
  one_run(m, "w", "n", 100000, 5000000);
  text = prometheus_text(m);
  if (prom_parse(text, &p) != 0)
    fail_msg("invalid exposition (%s):\n%s", p.err, text);
  assert_int_equal((int)prom_value(&p, "app:jobs_node_duration_seconds_bucket",
                                   "workflow=\"w\",node=\"n\"", "0.1"),
                   2);
  assert_int_equal(
      (int)prom_value(&p, "app:jobs_workflow_duration_seconds_bucket", "workflow=\"w\"", "1"), 1);
  assert_int_equal(
      (int)prom_value(&p, "app:jobs_workflow_duration_seconds_bucket", "workflow=\"w\"", "+Inf"),
      2);
  assert_null(
      prom_find(&p, "app:jobs_node_duration_seconds_bucket", "workflow=\"w\",node=\"n\"", "0.5"));
  prom_free(&p);
  free(text);
  fc_metrics_free(m);
  assert_int_equal(fc_metrics_write_prometheus(NULL, stdout), FC_EINVAL);
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  n = ftell(f);
  assert_true(n >= 0);
  rewind(f);
  buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static int dir_entries(const char *dir, char names[][256], int max) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  assert_non_null(d);
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (n < max)
      snprintf(names[n], 256, "%s", e->d_name);
    n++;
  }
  closedir(d);
  return n;
}

static void test_prometheus_file_atomic(void **state) {
  char dir[] = "/tmp/fc-metrics-XXXXXX";
  char path[512], bad[512], names[8][256];
  fc_metrics_t *m;
  struct stat st1, st2;
  prom_t p;
  char *expect, *got, *old_view;
  int fd, i;
  (void)state;
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/flowcore.prom", dir);
  assert_int_equal(fc_metrics_new(&m, NULL), 0);
  one_run(m, "etl", "a", 1500, 3000);

  assert_int_equal(fc_metrics_write_prometheus_file(m, path), 0);
  expect = prometheus_text(m);
  got = read_file(path);
  assert_string_equal(got, expect); /* complete */
  if (prom_parse(got, &p) != 0)
    fail_msg("invalid file (%s)", p.err);
  prom_free(&p);
  free(got);
  free(expect);
  assert_int_equal(stat(path, &st1), 0);
  assert_int_equal(st1.st_mode & 0777, 0644);
  assert_int_equal(dir_entries(dir, names, 8), 1); /* no temporary file left */
  assert_string_equal(names[0], "flowcore.prom");

  /* A reader holding the old file keeps a complete old version; the path
   * gets a new inode with the complete new text (rename, not rewrite). */
  fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  for (i = 0; i < 20; i++)
    one_run(m, "etl", "b", 2500, 3000);
  assert_int_equal(fc_metrics_write_prometheus_file(m, path), 0);
  assert_int_equal(stat(path, &st2), 0);
  assert_true(st1.st_ino != st2.st_ino);
  {
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    old_view = strdup(buf);
  }
  close(fd);
  assert_non_null(strstr(old_view, "flowcore_workflows_started_total 1\n"));
  free(old_view);
  got = read_file(path);
  expect = prometheus_text(m);
  assert_string_equal(got, expect);
  assert_non_null(strstr(got, "flowcore_workflows_started_total 21\n"));
  free(got);
  free(expect);
  assert_int_equal(dir_entries(dir, names, 8), 1);

  /* Failures return an error and leave nothing behind. */
  snprintf(bad, sizeof bad, "%s/missing-dir/flowcore.prom", dir);
  assert_int_equal(fc_metrics_write_prometheus_file(m, bad), UV_ENOENT);
  assert_int_equal(fc_metrics_write_prometheus_file(m, ""), FC_EINVAL);
  snprintf(bad, sizeof bad, "%s/", dir);
  assert_int_equal(fc_metrics_write_prometheus_file(m, bad), FC_EINVAL);
  snprintf(bad, sizeof bad, "%s/adir", dir);
  assert_int_equal(mkdir(bad, 0755), 0);
  assert_true(fc_metrics_write_prometheus_file(m, bad) < 0); /* rename over a directory */
  assert_int_equal(dir_entries(dir, names, 8), 2);           /* flowcore.prom and adir only */
  assert_int_equal(rmdir(bad), 0);

  /* A relative path writes in the current directory. */
  {
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(fc_metrics_write_prometheus_file(m, "rel.prom"), 0);
    assert_int_equal(chdir(cwd), 0);
  }
  assert_int_equal(dir_entries(dir, names, 8), 2);
  snprintf(bad, sizeof bad, "%s/rel.prom", dir);
  assert_int_equal(unlink(bad), 0);
  assert_int_equal(unlink(path), 0);
  assert_int_equal(rmdir(dir), 0);
  fc_metrics_free(m);
}

/* The node_exporter textfile gauges of batch runs, per workflow name: the
 * last run's end time, duration and status, and the last success, which
 * survives a failed run that rewrites the file. */
static void test_last_run_gauges(void **state) {
  char dir[] = "/tmp/fc-metrics-XXXXXX", path[512];
  const char *wq = "we\"ird\\ name\nx";
  const char *lab_wq = "workflow=\"we\\\"ird\\\\ name\\nx\"";
  fc_metrics_t *m, *m2;
  prom_t p;
  evbuf_t b;
  char *text;
  (void)state;
  assert_int_equal(fc_metrics_new(&m, NULL), 0);
  /* etl: completed at t=1000.5 s (2 s), then failed at t=2000.25 s (3 s);
   * the weird name: cancelled only. Events out of order do not count as
   * "last". */
  mk_end(&b, "etl", FC_WORKFLOW_COMPLETED, 2000000, 1, 0, 0);
  b.ev.time_us = INT64_C(1000500000);
  feed(m, &b.ev);
  mk_end(&b, "etl", FC_WORKFLOW_FAILED, 3000000, 0, 1, 0);
  b.ev.time_us = INT64_C(2000250000);
  feed(m, &b.ev);
  mk_end(&b, "etl", FC_WORKFLOW_COMPLETED, 5000000, 1, 0, 0);
  b.ev.time_us = INT64_C(1500000000); /* ended before the failed one */
  feed(m, &b.ev);
  mk_end(&b, wq, FC_WORKFLOW_CANCELLED, 250000, 0, 0, 0);
  b.ev.time_us = INT64_C(1700000000123456);
  feed(m, &b.ev);

  text = prometheus_text(m);
  if (prom_parse(text, &p) != 0)
    fail_msg("invalid exposition (%s):\n%s", p.err, text);
  assert_non_null(strstr(text, "# TYPE flowcore_last_run_timestamp_seconds gauge\n"));
  assert_non_null(strstr(text, "# TYPE flowcore_last_success_timestamp_seconds gauge\n"));
  assert_non_null(strstr(text, "# TYPE flowcore_last_run_duration_seconds gauge\n"));
  assert_non_null(strstr(text, "# TYPE flowcore_last_run_status gauge\n"));
  /* exact seconds, not rounded to 15 digits */
  assert_non_null(strstr(text, "flowcore_last_run_timestamp_seconds{workflow=\"etl\"} "
                               "2000.250000\n"));
  assert_true(fabs(prom_value(&p, "flowcore_last_run_timestamp_seconds", "workflow=\"etl\"", "") -
                   2000.25) < 1e-9);
  assert_true(
      fabs(prom_value(&p, "flowcore_last_success_timestamp_seconds", "workflow=\"etl\"", "") -
           1500.0) < 1e-9);
  assert_true(fabs(prom_value(&p, "flowcore_last_run_duration_seconds", "workflow=\"etl\"", "") -
                   3.0) < 1e-9);
  assert_int_equal((int)prom_value(&p, "flowcore_last_run_status", "workflow=\"etl\"", ""), 0);
  /* escaped label values; no success yet: no success gauge */
  assert_non_null(strstr(text, "flowcore_last_run_timestamp_seconds{"
                               "workflow=\"we\\\"ird"
                               "\\\\ name\\nx\"} 1700000000.123456\n"));
  assert_int_equal((int)prom_value(&p, "flowcore_last_run_status", lab_wq, ""), 0);
  assert_true(fabs(prom_value(&p, "flowcore_last_run_duration_seconds", lab_wq, "") - 0.25) < 1e-9);
  assert_null(prom_find(&p, "flowcore_last_success_timestamp_seconds", lab_wq, ""));
  prom_free(&p);
  free(text);

  /* Batch runs: each process writes its own textfile. A later process whose
   * run failed keeps the last success of the file it replaces. */
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/flowcore.prom", dir);
  assert_int_equal(fc_metrics_write_prometheus_file(m, path), 0);
  assert_int_equal(fc_metrics_new(&m2, NULL), 0);
  mk_end(&b, "etl", FC_WORKFLOW_FAILED, 1000000, 0, 1, 0);
  b.ev.time_us = INT64_C(3000000000);
  feed(m2, &b.ev);
  mk_end(&b, wq, FC_WORKFLOW_COMPLETED, 1000000, 1, 0, 0);
  b.ev.time_us = INT64_C(1700000001000000);
  feed(m2, &b.ev);
  assert_int_equal(fc_metrics_write_prometheus_file(m2, path), 0);
  text = read_file(path);
  if (prom_parse(text, &p) != 0)
    fail_msg("invalid file (%s):\n%s", p.err, text);
  assert_int_equal((int)prom_value(&p, "flowcore_last_run_status", "workflow=\"etl\"", ""), 0);
  assert_true(fabs(prom_value(&p, "flowcore_last_run_timestamp_seconds", "workflow=\"etl\"", "") -
                   3000.0) < 1e-9);
  assert_true(
      fabs(prom_value(&p, "flowcore_last_success_timestamp_seconds", "workflow=\"etl\"", "") -
           1500.0) < 1e-9); /* carried over */
  assert_int_equal((int)prom_value(&p, "flowcore_last_run_status", lab_wq, ""), 1);
  assert_non_null(strstr(text, "flowcore_last_success_timestamp_seconds{workflow=\"we\\\"ird"
                               "\\\\ name\\nx\"} 1700000001.000000\n"));
  /* counters are this process's own: they restart with each process */
  assert_int_equal((int)prom_value(&p, "flowcore_workflows_ended_total", "status=\"failed\"", ""),
                   1);
  prom_free(&p);
  free(text);
  /* A newer success of this process wins over the carried one. */
  mk_end(&b, "etl", FC_WORKFLOW_COMPLETED, 1000000, 1, 0, 0);
  b.ev.time_us = INT64_C(4000000000);
  feed(m2, &b.ev);
  assert_int_equal(fc_metrics_write_prometheus_file(m2, path), 0);
  text = read_file(path);
  assert_non_null(strstr(text, "flowcore_last_success_timestamp_seconds{workflow=\"etl\"} "
                               "4000.000000\n"));
  assert_non_null(strstr(text, "flowcore_last_run_status{workflow=\"etl\"} 1\n"));
  free(text);
  assert_int_equal(unlink(path), 0);
  assert_int_equal(rmdir(dir), 0);
  fc_metrics_free(m2);
  fc_metrics_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_options_init),
      cmocka_unit_test(test_checker_rejects_malformed),
      cmocka_unit_test(test_counters_hand_built),
      cmocka_unit_test(test_slowest_top5),
      cmocka_unit_test(test_real_run),
      cmocka_unit_test(test_quantiles),
      cmocka_unit_test(test_bounded_memory),
      cmocka_unit_test(test_prometheus_output),
      cmocka_unit_test(test_prometheus_options),
      cmocka_unit_test(test_prometheus_file_atomic),
      cmocka_unit_test(test_last_run_gauges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

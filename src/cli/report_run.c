/* flowcore command line: the HTML page of one run (`flowcore history show
 * ID --html FILE`; report.h has the data it takes, docs/report.md what the
 * page shows). Sections: the header, the Gantt timeline of the attempts,
 * the DAG in layers, the errors with their stack traces, the inputs and
 * outputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "report.h"

/* Gantt geometry (px). */
#define LABEL_W 190.0
#define CHART_W 900.0
#define LANE_H 18.0
#define AXIS_H 22.0
#define AGG_H 40.0
#define AGG_BUCKETS 200
/* DAG geometry (px). */
#define BOX_W 150.0
#define BOX_H 22.0
#define COL_W 200.0
#define ROW_H 30.0
/* Bytes of an error message in a bar's hover text. */
#define TITLE_CAP 300

typedef struct {
  const char *id;
  const char *type;
  const char *status; /* of its last attempt */
  size_t first;       /* its attempts are order[first .. first + count) */
  size_t count;
  int64_t start; /* its first start, µs; INT64_MAX when it never started */
  int lane;      /* shown as a lane (1) or aggregated (0) */
  int layer;
  int row; /* in its DAG layer */
} node_t;

typedef struct {
  FILE *out;
  const json_t *data;
  const json_t *attempts;
  size_t natt;
  node_t *nodes;
  size_t nnodes;
  size_t *node_of; /* attempt -> node */
  size_t *order;   /* attempts grouped by node, each node's by attempt number */
  int64_t t0, span, now;
  size_t *efrom, *eto; /* edges as node indices */
  size_t nedges;
} run_t;

static const json_t *att(const run_t *r, size_t i) { return json_array_get(r->attempts, i); }

/* ---- the model: nodes and their attempts ----------------------------------- */

static int cmp_attempt(const void *a, const void *b, const run_t *r) {
  int64_t x = cli_json_int(att(r, *(const size_t *)a), "attempt");
  int64_t y = cli_json_int(att(r, *(const size_t *)b), "attempt");
  return x < y ? -1 : x > y;
}

/* qsort has no context argument: insertion sort, a node has few attempts. */
static void sort_attempts(const run_t *r, size_t *v, size_t n) {
  size_t i, j;
  for (i = 1; i < n; i++) {
    size_t x = v[i];
    for (j = i; j > 0 && cmp_attempt(&v[j - 1], &x, r) > 0; j--)
      v[j] = v[j - 1];
    v[j] = x;
  }
}

static int64_t att_end(const run_t *r, const json_t *a) {
  int64_t s = cli_json_int(a, "started_at");
  if (!cli_json_null(a, "completed_at"))
    return cli_json_int(a, "completed_at");
  if (!cli_json_null(a, "duration_ms"))
    return s + (int64_t)(cli_json_num(a, "duration_ms") * 1000.0);
  return r->now > s ? r->now : s;
}

static int build_model(run_t *r) {
  json_t *index = json_object();
  size_t i, *fill;
  const json_t *run = json_object_get(r->data, "run");
  int64_t t_end = 0, t_min = INT64_MAX;
  r->natt = json_array_size(r->attempts);
  r->nodes = calloc(r->natt + 1, sizeof *r->nodes);
  r->node_of = calloc(r->natt + 1, sizeof *r->node_of);
  r->order = calloc(r->natt + 1, sizeof *r->order);
  fill = calloc(r->natt + 1, sizeof *fill);
  if (index == NULL || r->nodes == NULL || r->node_of == NULL || r->order == NULL ||
      fill == NULL) {
    json_decref(index);
    free(fill);
    return -1;
  }
  for (i = 0; i < r->natt; i++) {
    const json_t *a = att(r, i);
    const char *id = cli_json_str(a, "node_id");
    json_t *k = json_object_get(index, id != NULL ? id : "");
    size_t n;
    if (k == NULL) {
      n = r->nnodes++;
      r->nodes[n].id = id;
      r->nodes[n].start = INT64_MAX;
      if (json_object_set_new(index, id != NULL ? id : "", json_integer((json_int_t)n)) != 0) {
        json_decref(index);
        free(fill);
        return -1;
      }
    } else {
      n = (size_t)json_integer_value(k);
    }
    r->node_of[i] = n;
    r->nodes[n].count++;
    if (!cli_json_null(a, "started_at")) {
      int64_t s = cli_json_int(a, "started_at"), e = att_end(r, a);
      if (s < r->nodes[n].start)
        r->nodes[n].start = s;
      if (s < t_min)
        t_min = s;
      if (e > t_end)
        t_end = e;
    }
  }
  for (i = 1; i < r->nnodes; i++)
    r->nodes[i].first = r->nodes[i - 1].first + r->nodes[i - 1].count;
  for (i = 0; i < r->natt; i++) {
    node_t *nd = &r->nodes[r->node_of[i]];
    r->order[nd->first + fill[r->node_of[i]]++] = i;
  }
  free(fill);
  for (i = 0; i < r->nnodes; i++) {
    node_t *nd = &r->nodes[i];
    const json_t *last;
    sort_attempts(r, r->order + nd->first, nd->count);
    last = att(r, r->order[nd->first + nd->count - 1]);
    nd->status = cli_json_str(last, "status");
    nd->type = cli_json_str(last, "node_type");
  }
  /* Edges by node index; unknown ends are left out. */
  r->nedges = 0;
  {
    const json_t *edges = json_object_get(r->data, "edges");
    size_t ne = json_array_size(edges);
    r->efrom = calloc(ne + 1, sizeof *r->efrom);
    r->eto = calloc(ne + 1, sizeof *r->eto);
    if (r->efrom == NULL || r->eto == NULL) {
      json_decref(index);
      return -1;
    }
    for (i = 0; i < ne; i++) {
      const json_t *e = json_array_get(edges, i);
      const char *f = cli_json_str(e, "from"), *t = cli_json_str(e, "to");
      json_t *fi = f != NULL ? json_object_get(index, f) : NULL;
      json_t *ti = t != NULL ? json_object_get(index, t) : NULL;
      if (fi == NULL || ti == NULL || fi == ti)
        continue;
      r->efrom[r->nedges] = (size_t)json_integer_value(fi);
      r->eto[r->nedges] = (size_t)json_integer_value(ti);
      r->nedges++;
    }
  }
  json_decref(index);
  r->t0 = !cli_json_null(run, "started_at") ? cli_json_int(run, "started_at")
                                            : (t_min != INT64_MAX ? t_min : r->now);
  if (t_min != INT64_MAX && t_min < r->t0)
    r->t0 = t_min;
  if (!cli_json_null(run, "completed_at") && cli_json_int(run, "completed_at") > t_end)
    t_end = cli_json_int(run, "completed_at");
  r->span = t_end - r->t0;
  if (r->span < 1000)
    r->span = 1000;
  return 0;
}

static int is_final_ok(const char *status) {
  return status != NULL && (strcmp(status, "completed") == 0 || strcmp(status, "skipped") == 0);
}

/* Chooses the lanes: all nodes when they fit, else the nodes that did not
 * complete or were retried first, then the earliest others. Returns the
 * number of lanes. */
static size_t choose_lanes(run_t *r) {
  size_t i, n = 0;
  if (r->nnodes <= CLI_REPORT_MAX_LANES) {
    for (i = 0; i < r->nnodes; i++)
      r->nodes[i].lane = 1;
    return r->nnodes;
  }
  for (i = 0; i < r->nnodes && n < CLI_REPORT_MAX_LANES; i++)
    if (!is_final_ok(r->nodes[i].status) || r->nodes[i].count > 1) {
      r->nodes[i].lane = 1;
      n++;
    }
  for (i = 0; i < r->nnodes && n < CLI_REPORT_MAX_LANES; i++)
    if (!r->nodes[i].lane) {
      r->nodes[i].lane = 1;
      n++;
    }
  return n;
}

/* ---- the header ----------------------------------------------------------- */

static void payload_block(FILE *out, const char *what, const char *text, size_t total) {
  fprintf(out, "<details><summary>%s (%zu bytes)</summary><pre>", what,
          total > 0 ? total : (text != NULL ? strlen(text) : 0));
  if (text != NULL)
    cli_html_capped(out, text, strlen(text), CLI_REPORT_PAYLOAD_CAP, total);
  else
    fputs("<span class=\"muted\">(none)</span>", out);
  fputs("</pre></details>\n", out);
}

static void header(const run_t *r) {
  FILE *out = r->out;
  const json_t *run = json_object_get(r->data, "run");
  const char *status = cli_json_str(run, "status");
  static const struct {
    const char *col, *label;
  } counts[] = {{"nodes_completed", "completed"}, {"nodes_failed", "failed"},
                {"nodes_timed_out", "timed_out"}, {"nodes_skipped", "skipped"},
                {"nodes_cancelled", "cancelled"}, {"nodes_running", "running"}};
  size_t i;
  const char *sep = ": ";
  fputs("<h1>Run of ", out);
  cli_html_str(out, cli_json_str(run, "workflow_name"), "(unknown workflow)");
  fputs("</h1>\n<table class=\"kv\" id=\"header\">\n<tr><th>run</th><td>", out);
  cli_html_str(out, cli_json_str(r->data, "workflow_id"), "?");
  if (run == NULL || json_is_null(run)) {
    fputs(" <span class=\"muted\">(its run record is not in the history)</span></td></tr>\n"
          "</table>\n",
          out);
    return;
  }
  fprintf(out, "</td></tr>\n<tr><th>status</th><td><span class=\"badge %s\">",
          cli_report_status_class(status));
  cli_html_str(out, status, "?");
  fputs("</span></td></tr>\n", out);
  if (!cli_json_null(run, "host")) {
    fputs("<tr><th>host</th><td>", out);
    cli_html_str(out, cli_json_str(run, "host"), NULL);
    fprintf(out, " (pid %lld)</td></tr>\n", (long long)cli_json_int(run, "pid"));
  }
  fputs("<tr><th>started</th><td>", out);
  cli_report_time(out, cli_json_int(run, "started_at"));
  fputs("</td></tr>\n", out);
  if (!cli_json_null(run, "completed_at")) {
    fputs("<tr><th>finished</th><td>", out);
    cli_report_time(out, cli_json_int(run, "completed_at"));
    fputs("</td></tr>\n", out);
  }
  fputs("<tr><th>duration</th><td>", out);
  if (cli_json_null(run, "duration_ms"))
    fputs("-", out);
  else
    cli_report_duration(out, cli_json_num(run, "duration_ms"));
  fprintf(out, "</td></tr>\n<tr><th>nodes</th><td>%lld",
          (long long)cli_json_int(run, "node_count"));
  for (i = 0; i < sizeof counts / sizeof counts[0]; i++) {
    long long n = (long long)cli_json_int(run, counts[i].col);
    if (n == 0)
      continue;
    fprintf(out, "%s%lld %s", sep, n, counts[i].label);
    sep = ", ";
  }
  fprintf(out, "</td></tr>\n<tr><th>attempts</th><td>%lld</td></tr>\n",
          (long long)cli_json_int(run, "attempts"));
  fprintf(out, "<tr><th>errors</th><td>%lld</td></tr>\n",
          (long long)cli_json_int(run, "error_count"));
  fputs("<tr><th>input</th><td>", out);
  payload_block(out, "input", cli_json_str(r->data, "input"),
                (size_t)cli_json_int(r->data, "input_bytes"));
  fputs("</td></tr>\n<tr><th>output</th><td>", out);
  payload_block(out, "output", cli_json_str(r->data, "output"),
                (size_t)cli_json_int(r->data, "output_bytes"));
  fputs("</td></tr>\n</table>\n", out);
}

/* ---- the Gantt timeline --------------------------------------------------- */

static double xpos(const run_t *r, int64_t t) {
  double f = (double)(t - r->t0) / (double)r->span;
  if (f < 0)
    f = 0;
  if (f > 1)
    f = 1;
  return LABEL_W + f * CHART_W;
}

/* Ticks at 1, 2 or 5 times a power of ten, about eight of them. */
static void axis(const run_t *r, double height) {
  FILE *out = r->out;
  double span_ms = (double)r->span / 1000.0, raw = span_ms / 8, p, step, t;
  p = pow(10, floor(log10(raw)));
  step = raw <= p ? p : raw <= 2 * p ? 2 * p : raw <= 5 * p ? 5 * p : 10 * p;
  for (t = 0; t <= span_ms + 1e-9; t += step) {
    double x = LABEL_W + t / span_ms * CHART_W;
    fprintf(out, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", x,
            AXIS_H - 4, x, height);
    fprintf(out, "<text x=\"%.1f\" y=\"12\" text-anchor=\"middle\">", x);
    if (t == 0)
      fputs("0", out);
    else {
      fputs("+", out);
      cli_report_duration(out, t);
    }
    fputs("</text>\n", out);
  }
}

static void bar_title(FILE *out, const json_t *a, double ms) {
  const char *et = cli_json_str(a, "error_type"), *em = cli_json_str(a, "error_message");
  fputs("<title>", out);
  cli_html_str(out, cli_json_str(a, "node_id"), "?");
  fprintf(out, " attempt %lld: ", (long long)cli_json_int(a, "attempt"));
  cli_html_str(out, cli_json_str(a, "status"), "?");
  if (!cli_json_null(a, "started_at")) {
    fputs(", ", out);
    cli_report_duration(out, ms);
  }
  if (et != NULL || em != NULL) {
    fputs("\n", out);
    cli_html_str(out, et, NULL);
    if (et != NULL && em != NULL)
      fputs(": ", out);
    if (em != NULL)
      cli_html_capped(out, em, strlen(em), TITLE_CAP, 0);
  }
  fputs("</title>", out);
}

/* One lane: the node's label and its attempts side by side, with the
 * backoff between them as a dashed line. Returns the bars written. */
static size_t lane(const run_t *r, const node_t *nd, double y, size_t index) {
  FILE *out = r->out;
  size_t k, bars = 0;
  int64_t prev_end = 0;
  int has_prev = 0;
  fprintf(out, "<g><rect class=\"lane%s\" x=\"0\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>",
          index % 2 == 0 ? " alt" : "", y, LABEL_W + CHART_W, LANE_H);
  fprintf(out, "<text x=\"4\" y=\"%.1f\">", y + LANE_H - 5);
  cli_html_label(out, nd->id, 28);
  fputs("<title>", out);
  cli_html_str(out, nd->id, "?");
  fputs("</title></text>\n", out);
  for (k = 0; k < nd->count; k++) {
    const json_t *a = att(r, r->order[nd->first + k]);
    const char *cls = cli_report_status_class(cli_json_str(a, "status"));
    if (cli_json_null(a, "started_at")) {
      fprintf(out,
              "<rect class=\"bar %s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
              "opacity=\"0.45\">",
              cls, LABEL_W, y + 6, CHART_W, LANE_H - 12);
      bar_title(out, a, 0);
      fputs("</rect>\n", out);
    } else {
      int64_t s = cli_json_int(a, "started_at"), e = att_end(r, a);
      double x1 = xpos(r, s), x2 = xpos(r, e), ms;
      ms = !cli_json_null(a, "duration_ms") ? cli_json_num(a, "duration_ms")
                                            : (double)(e - s) / 1000.0;
      if (has_prev && s > prev_end) {
        double bx1 = xpos(r, prev_end);
        fprintf(out,
                "<line class=\"backoff\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\">"
                "<title>waited ",
                bx1, y + LANE_H / 2, x1, y + LANE_H / 2);
        cli_report_duration(out, (double)(s - prev_end) / 1000.0);
        fprintf(out, " before attempt %lld</title></line>", (long long)cli_json_int(a, "attempt"));
      }
      fprintf(out,
              "<rect class=\"bar %s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
              "rx=\"2\">",
              cls, x1, y + 3, x2 - x1 < 2 ? 2 : x2 - x1, LANE_H - 6);
      bar_title(out, a, ms);
      fputs("</rect>\n", out);
      prev_end = e;
      has_prev = 1;
    }
    bars++;
  }
  fputs("</g>\n", out);
  return bars;
}

/* The lane of the nodes that did not get one: active attempts over time. */
static void aggregate_lane(const run_t *r, double y, size_t hidden_nodes) {
  FILE *out = r->out;
  unsigned long counts[AGG_BUCKETS];
  unsigned long max = 0;
  size_t i, b, hidden_atts = 0;
  double bw = CHART_W / AGG_BUCKETS;
  memset(counts, 0, sizeof counts);
  for (i = 0; i < r->natt; i++) {
    const json_t *a = att(r, i);
    int64_t s, e;
    size_t b0, b1;
    if (r->nodes[r->node_of[i]].lane || cli_json_null(a, "started_at"))
      continue;
    hidden_atts++;
    s = cli_json_int(a, "started_at");
    e = att_end(r, a);
    b0 = (size_t)((xpos(r, s) - LABEL_W) / bw);
    b1 = (size_t)((xpos(r, e) - LABEL_W) / bw);
    if (b0 >= AGG_BUCKETS)
      b0 = AGG_BUCKETS - 1;
    if (b1 >= AGG_BUCKETS)
      b1 = AGG_BUCKETS - 1;
    for (b = b0; b <= b1; b++)
      if (++counts[b] > max)
        max = counts[b];
  }
  fprintf(out, "<g class=\"aggregate\"><rect class=\"lane\" x=\"0\" y=\"%.1f\" width=\"%.1f\" "
               "height=\"%.1f\"/>",
          y, LABEL_W + CHART_W, AGG_H);
  fprintf(out, "<text x=\"4\" y=\"%.1f\">%zu other nodes</text>", y + 14, hidden_nodes);
  fprintf(out, "<text x=\"4\" y=\"%.1f\" class=\"muted\">%zu attempts, max %lu at once</text>\n",
          y + 28, hidden_atts, max);
  for (b = 0; b < AGG_BUCKETS && max > 0; b++) {
    double h = (double)counts[b] / (double)max * (AGG_H - 4);
    if (counts[b] == 0)
      continue;
    fprintf(out,
            "<rect class=\"agg st-other\" x=\"%.1f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\">"
            "<title>%lu attempts running</title></rect>",
            LABEL_W + (double)b * bw, y + AGG_H - 2 - h, bw, h, counts[b]);
  }
  fputs("</g>\n", out);
}

static void timeline(run_t *r) {
  FILE *out = r->out;
  size_t lanes = choose_lanes(r), i, bars = 0, hidden = r->nnodes - lanes;
  double height = AXIS_H + (double)lanes * LANE_H + (hidden > 0 ? AGG_H : 0) + 4, y = AXIS_H;
  size_t shown_atts = 0;
  for (i = 0; i < r->nnodes; i++)
    if (r->nodes[i].lane)
      shown_atts += r->nodes[i].count;
  fprintf(out, "<h2>Timeline</h2>\n<section id=\"timeline\" data-attempts=\"%zu\" "
               "data-lanes=\"%zu\" data-shown-attempts=\"%zu\">\n",
          r->natt, lanes, shown_atts);
  if (hidden > 0)
    fprintf(out,
            "<p class=\"note\" id=\"lanes-note\">This run has %zu nodes: %zu are drawn as lanes "
            "(first the nodes that did not complete or were retried, then the earliest), the "
            "other %zu are aggregated in the bottom lane as the number of their attempts "
            "running over time.</p>\n",
            r->nnodes, lanes, hidden);
  if (r->natt == 0) {
    fputs("<p class=\"muted\">No node attempt is recorded.</p>\n</section>\n", out);
    return;
  }
  cli_report_legend(out);
  fprintf(out,
          "<div class=\"chart\"><svg class=\"gantt\" xmlns=\"http://www.w3.org/2000/svg\" "
          "width=\"%.0f\" height=\"%.0f\">\n",
          LABEL_W + CHART_W + 40, height);
  axis(r, height);
  for (i = 0; i < r->nnodes; i++)
    if (r->nodes[i].lane) {
      bars += lane(r, &r->nodes[i], y, (size_t)((y - AXIS_H) / LANE_H));
      y += LANE_H;
    }
  if (hidden > 0)
    aggregate_lane(r, y, hidden);
  fprintf(out, "</svg></div>\n<p class=\"muted\">%zu bars; a dashed line is the wait (retry "
               "backoff) between two attempts. Hover a bar for its details.</p>\n</section>\n",
          bars);
}

/* ---- the DAG ---------------------------------------------------------------- */

/* Layers by longest path from the nodes without inputs (Kahn's order); a
 * node on a cycle (not possible in a valid run) stays in layer 0. Returns
 * the number of layers, or 0 when out of memory. */
static int layers(run_t *r) {
  size_t *indeg = calloc(r->nnodes + 1, sizeof *indeg);
  size_t *start = calloc(r->nnodes + 2, sizeof *start);
  size_t *adj = calloc(r->nedges + 1, sizeof *adj);
  size_t *queue = calloc(r->nnodes + 1, sizeof *queue);
  size_t i, head = 0, tail = 0;
  int nl = 1;
  if (indeg == NULL || start == NULL || adj == NULL || queue == NULL) {
    free(indeg);
    free(start);
    free(adj);
    free(queue);
    return 0;
  }
  for (i = 0; i < r->nedges; i++) {
    indeg[r->eto[i]]++;
    start[r->efrom[i] + 1]++;
  }
  for (i = 0; i < r->nnodes; i++)
    start[i + 1] += start[i];
  {
    size_t *pos = queue; /* borrowed as a cursor before the queue is used */
    for (i = 0; i < r->nnodes; i++)
      pos[i] = start[i];
    for (i = 0; i < r->nedges; i++)
      adj[pos[r->efrom[i]]++] = r->eto[i];
  }
  for (i = 0; i < r->nnodes; i++) {
    r->nodes[i].layer = 0;
    if (indeg[i] == 0)
      queue[tail++] = i;
  }
  while (head < tail) {
    size_t u = queue[head++], k;
    for (k = start[u]; k < start[u + 1]; k++) {
      size_t v = adj[k];
      if (r->nodes[u].layer + 1 > r->nodes[v].layer)
        r->nodes[v].layer = r->nodes[u].layer + 1;
      if (--indeg[v] == 0)
        queue[tail++] = v;
    }
  }
  for (i = 0; i < r->nnodes; i++)
    if (r->nodes[i].layer + 1 > nl)
      nl = r->nodes[i].layer + 1;
  free(indeg);
  free(start);
  free(adj);
  free(queue);
  return nl;
}

static void dag_summary(const run_t *r, int nl) {
  static const char *const statuses[] = {"completed", "failed",  "timed_out", "cancelled",
                                         "skipped",   "running", NULL};
  FILE *out = r->out;
  int l;
  size_t i, s;
  fprintf(out,
          "<p class=\"note\" id=\"dag-note\">%zu nodes are too many to draw (the limit is %d): "
          "the table counts the nodes of each layer by final status.</p>\n"
          "<table><tr><th>layer</th><th class=\"num\">nodes</th>",
          r->nnodes, CLI_REPORT_MAX_DAG_NODES);
  for (s = 0; s < 6; s++)
    fprintf(out, "<th class=\"num\">%s</th>", statuses[s]);
  fputs("<th class=\"num\">other</th></tr>\n", out);
  for (l = 0; l < nl; l++) {
    size_t c[7] = {0}, total = 0;
    for (i = 0; i < r->nnodes; i++) {
      if (r->nodes[i].layer != l)
        continue;
      total++;
      for (s = 0; s < 6 && (r->nodes[i].status == NULL ||
                            strcmp(r->nodes[i].status, statuses[s]) != 0);
           s++)
        ;
      c[s]++;
    }
    fprintf(out, "<tr><td>%d</td><td class=\"num\">%zu</td>", l, total);
    for (s = 0; s < 7; s++)
      fprintf(out, "<td class=\"num\">%zu</td>", c[s]);
    fputs("</tr>\n", out);
  }
  fputs("</table>\n", out);
}

static void dag(run_t *r) {
  FILE *out = r->out;
  int nl = r->nnodes > 0 ? layers(r) : 1, l;
  size_t i, maxrows = 0, *rows;
  double w, h;
  fprintf(out, "<h2>Graph</h2>\n<section id=\"dag\" data-nodes=\"%zu\" data-edges=\"%zu\">\n",
          r->nnodes, r->nedges);
  fputs("<p class=\"muted\">The dependencies come from the recorded inputs (a node's input "
        "holds its dependencies' outputs under their ids): a node that never ran shows "
        "without its incoming edges.</p>\n",
        out);
  if (nl == 0) {
    fputs("</section>\n", out);
    return;
  }
  if (r->nnodes > CLI_REPORT_MAX_DAG_NODES) {
    dag_summary(r, nl);
    fputs("</section>\n", out);
    return;
  }
  rows = calloc((size_t)nl + 1, sizeof *rows);
  if (rows == NULL) {
    fputs("</section>\n", out);
    return;
  }
  for (i = 0; i < r->nnodes; i++) {
    r->nodes[i].row = (int)rows[r->nodes[i].layer]++;
    if (rows[r->nodes[i].layer] > maxrows)
      maxrows = rows[r->nodes[i].layer];
  }
  free(rows);
  w = (double)nl * COL_W + 10;
  h = (double)maxrows * ROW_H + 10;
  fprintf(out,
          "<div class=\"chart\"><svg class=\"dag\" xmlns=\"http://www.w3.org/2000/svg\" "
          "width=\"%.0f\" height=\"%.0f\">\n",
          w, h);
  for (i = 0; i < r->nedges; i++) {
    const node_t *a = &r->nodes[r->efrom[i]], *b = &r->nodes[r->eto[i]];
    double x1 = 5 + a->layer * COL_W + BOX_W, y1 = 5 + a->row * ROW_H + BOX_H / 2;
    double x2 = 5 + b->layer * COL_W, y2 = 5 + b->row * ROW_H + BOX_H / 2;
    double mx = (x1 + x2) / 2;
    fprintf(out,
            "<path class=\"edge\" d=\"M%.1f %.1fC%.1f %.1f %.1f %.1f %.1f %.1f\"/>\n", x1, y1,
            mx, y1, mx, y2, x2, y2);
  }
  for (l = 0; l < nl; l++)
    for (i = 0; i < r->nnodes; i++) {
      const node_t *nd = &r->nodes[i];
      double x = 5 + l * COL_W, y = 5 + nd->row * ROW_H;
      if (nd->layer != l)
        continue;
      fprintf(out,
              "<g><rect class=\"node-box %s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
              "height=\"%.1f\" rx=\"4\"/><text x=\"%.1f\" y=\"%.1f\">",
              cli_report_status_class(nd->status), x, y, BOX_W, BOX_H, x + 6, y + 15);
      cli_html_label(out, nd->id, 22);
      fputs("</text><title>", out);
      cli_html_str(out, nd->id, "?");
      fputs(" (", out);
      cli_html_str(out, nd->type, "?");
      fputs("): ", out);
      cli_html_str(out, nd->status, "?");
      fprintf(out, ", %zu attempt%s</title></g>\n", nd->count, nd->count == 1 ? "" : "s");
    }
  fputs("</svg></div>\n</section>\n", out);
}

/* ---- errors and payloads ------------------------------------------------------- */

static void errors(const run_t *r) {
  FILE *out = r->out;
  const json_t *errs = json_object_get(r->data, "errors");
  size_t n = json_array_size(errs), i;
  long long total = (long long)cli_json_int(r->data, "errors_total");
  fprintf(out, "<h2>Errors</h2>\n<section id=\"errors\" data-errors=\"%zu\">\n", n);
  if (n == 0)
    fputs("<p class=\"muted\">No error is recorded.</p>\n", out);
  if (total > (long long)n)
    fprintf(out, "<p class=\"note\">The first %zu of %lld errors are listed.</p>\n", n, total);
  for (i = 0; i < n; i++) {
    const json_t *e = json_array_get(errs, i);
    const char *msg = cli_json_str(e, "error_message"), *st = cli_json_str(e, "stack_trace");
    const char *sev = cli_json_str(e, "severity");
    fprintf(out, "<div class=\"error\"><p><span class=\"badge %s\">",
            sev != NULL && (strcmp(sev, "error") == 0 || strcmp(sev, "critical") == 0)
                ? "st-failed"
                : "st-other");
    cli_html_str(out, sev, "error");
    fputs("</span> <b>", out);
    cli_html_str(out, cli_json_str(e, "node_id"), "(workflow)");
    fputs("</b>", out);
    if (!cli_json_null(e, "attempt"))
      fprintf(out, " attempt %lld", (long long)cli_json_int(e, "attempt"));
    fputs(" <span class=\"muted\">", out);
    if (!cli_json_null(e, "occurred_at"))
      cli_report_time(out, cli_json_int(e, "occurred_at"));
    fputs("</span><br><code>", out);
    cli_html_str(out, cli_json_str(e, "error_type"), "?");
    fputs("</code>: ", out);
    if (msg != NULL)
      cli_html_capped(out, msg, strlen(msg), CLI_REPORT_STACK_CAP, 0);
    fputs("</p>\n", out);
    if (st != NULL) {
      fprintf(out, "<details%s><summary>stack trace (%zu bytes)</summary><pre>",
              i < 10 ? " open" : "", strlen(st));
      cli_html_capped(out, st, strlen(st), CLI_REPORT_STACK_CAP, 0);
      fputs("</pre></details>\n", out);
    }
    fputs("</div>\n", out);
  }
  fputs("</section>\n", out);
}

static void payloads(const run_t *r) {
  FILE *out = r->out;
  const json_t *p = json_object_get(r->data, "payloads");
  size_t n = json_array_size(p), i;
  long long total = (long long)cli_json_int(r->data, "payloads_total");
  fprintf(out, "<h2>Inputs and outputs</h2>\n<section id=\"payloads\" data-payloads=\"%zu\">\n",
          n);
  fprintf(out, "<p class=\"muted\">Each attempt's input and output, rebuilt from the history "
               "(at most %d bytes of each shown).</p>\n",
          CLI_REPORT_PAYLOAD_CAP);
  if (total > (long long)n)
    fprintf(out, "<p class=\"note\">The first %zu attempts of %lld (in start order) are "
                 "listed.</p>\n",
            n, total);
  for (i = 0; i < n; i++) {
    const json_t *a = json_array_get(p, i);
    fputs("<details class=\"payload\"><summary>", out);
    cli_html_str(out, cli_json_str(a, "node_id"), "?");
    fprintf(out, " attempt %lld</summary>\n", (long long)cli_json_int(a, "attempt"));
    payload_block(out, "input", cli_json_str(a, "input"),
                  (size_t)cli_json_int(a, "input_bytes"));
    payload_block(out, "output", cli_json_str(a, "output"),
                  (size_t)cli_json_int(a, "output_bytes"));
    fputs("</details>\n", out);
  }
  fputs("</section>\n", out);
}

int cli_report_run(FILE *out, const json_t *data) {
  run_t r;
  const json_t *run = json_object_get(data, "run");
  int rc = 0;
  memset(&r, 0, sizeof r);
  r.out = out;
  r.data = data;
  r.attempts = json_object_get(data, "attempts");
  r.now = cli_json_int(data, "now");
  if (build_model(&r) != 0) {
    rc = -1;
  } else {
    {
      char title[300];
      snprintf(title, sizeof title, "flowcore run %s of %s",
               cli_json_str(data, "workflow_id") != NULL ? cli_json_str(data, "workflow_id") : "?",
               cli_json_str(run, "workflow_name") != NULL ? cli_json_str(run, "workflow_name")
                                                          : "?");
      cli_report_head(out, title);
    }
    header(&r);
    timeline(&r);
    dag(&r);
    errors(&r);
    payloads(&r);
    cli_report_foot(out);
  }
  free(r.nodes);
  free(r.node_of);
  free(r.order);
  free(r.efrom);
  free(r.eto);
  if (rc != 0)
    return -1;
  return ferror(out) ? -1 : 0;
}

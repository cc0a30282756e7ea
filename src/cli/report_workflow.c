/* flowcore command line: the HTML page of a workflow's recent runs
 * (`flowcore history report --workflow NAME --html FILE`; report.h has the
 * data it takes). Sections: the runs x nodes grid coloured by status (as
 * Airflow's Grid view), run duration over time, p50/p95 per node, errors
 * per day. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "report.h"

#define LABEL_W 190.0
#define CELL 14.0
#define GAP 2.0
#define PLOT_W 900.0
#define PLOT_H 200.0
#define PAD 40.0

typedef struct {
  FILE *out;
  const json_t *data;
  const json_t *runs;
  size_t nruns;
} wf_t;

static void header(const wf_t *w) {
  FILE *out = w->out;
  static const char *const statuses[] = {"completed", "failed", "cancelled", "running",
                                         "abandoned"};
  size_t i, s;
  long long total = (long long)cli_json_int(w->data, "runs_total");
  fputs("<h1>Recent runs of ", out);
  cli_html_str(out, cli_json_str(w->data, "workflow"), "?");
  fputs("</h1>\n<table class=\"kv\" id=\"header\">\n<tr><th>window</th><td>", out);
  cli_report_time(out, cli_json_int(w->data, "since"));
  fputs(" to ", out);
  cli_report_time(out, cli_json_int(w->data, "now"));
  fprintf(out, "</td></tr>\n<tr><th>runs</th><td>%lld", total);
  for (s = 0; s < sizeof statuses / sizeof statuses[0]; s++) {
    size_t c = 0;
    for (i = 0; i < w->nruns; i++) {
      const char *st = cli_json_str(json_array_get(w->runs, i), "status");
      c += st != NULL && strcmp(st, statuses[s]) == 0;
    }
    if (c > 0)
      fprintf(out, ", %zu %s", c, statuses[s]);
  }
  if (total > (long long)w->nruns)
    fprintf(out, " (of the latest %zu shown)", w->nruns);
  fputs("</td></tr>\n</table>\n", out);
  if (total > (long long)w->nruns)
    fprintf(out,
            "<p class=\"note\" id=\"runs-note\">The window holds %lld runs: the latest %zu are "
            "shown (--limit).</p>\n",
            total, w->nruns);
}

static void run_title(FILE *out, const json_t *run) {
  cli_html_str(out, cli_json_str(run, "workflow_id"), "?");
  fputs("\n", out);
  cli_report_time(out, cli_json_int(run, "started_at"));
  fputs(": ", out);
  cli_html_str(out, cli_json_str(run, "status"), "?");
  if (!cli_json_null(run, "duration_ms")) {
    fputs(", ", out);
    cli_report_duration(out, cli_json_num(run, "duration_ms"));
  }
}

static void grid(const wf_t *w) {
  FILE *out = w->out;
  const json_t *stats = json_object_get(w->data, "node_stats");
  const json_t *cells = json_object_get(w->data, "cells");
  size_t nnodes = json_array_size(stats), rows = nnodes, i, c, drawn = 0;
  json_t *runidx = json_object(), *nodeidx = json_object();
  const json_t **grid = NULL;
  double x0 = LABEL_W, y0 = 30.0, width, height;
  if (rows > CLI_REPORT_MAX_GRID_NODES)
    rows = CLI_REPORT_MAX_GRID_NODES;
  fprintf(out, "<h2>Runs by node</h2>\n<section id=\"grid\" data-runs=\"%zu\" data-nodes=\"%zu\">\n",
          w->nruns, rows);
  if (w->nruns == 0) {
    fputs("<p class=\"muted\">No run in the window.</p>\n</section>\n", out);
    json_decref(runidx);
    json_decref(nodeidx);
    return;
  }
  if (rows < nnodes)
    fprintf(out, "<p class=\"note\" id=\"grid-note\">The workflow has %zu nodes: the first %zu "
                 "are shown.</p>\n",
            nnodes, rows);
  grid = calloc(rows * w->nruns + 1, sizeof *grid);
  if (runidx == NULL || nodeidx == NULL || grid == NULL) {
    fputs("</section>\n", out);
    json_decref(runidx);
    json_decref(nodeidx);
    free(grid);
    return;
  }
  for (i = 0; i < w->nruns; i++) {
    const char *id = cli_json_str(json_array_get(w->runs, i), "workflow_id");
    if (id != NULL)
      json_object_set_new(runidx, id, json_integer((json_int_t)i));
  }
  for (i = 0; i < rows; i++) {
    const char *id = cli_json_str(json_array_get(stats, i), "node_id");
    if (id != NULL)
      json_object_set_new(nodeidx, id, json_integer((json_int_t)i));
  }
  for (i = 0; i < json_array_size(cells); i++) {
    const json_t *cell = json_array_get(cells, i);
    const char *rid = cli_json_str(cell, "workflow_id"), *nid = cli_json_str(cell, "node_id");
    json_t *ri = rid != NULL ? json_object_get(runidx, rid) : NULL;
    json_t *ni = nid != NULL ? json_object_get(nodeidx, nid) : NULL;
    if (ri != NULL && ni != NULL)
      grid[(size_t)json_integer_value(ni) * w->nruns + (size_t)json_integer_value(ri)] = cell;
  }
  cli_report_legend(out);
  width = x0 + (double)w->nruns * (CELL + GAP) + 10;
  height = y0 + (double)rows * (CELL + GAP) + 10;
  fprintf(out,
          "<div class=\"chart\"><svg class=\"grid\" xmlns=\"http://www.w3.org/2000/svg\" "
          "width=\"%.0f\" height=\"%.0f\">\n<text x=\"4\" y=\"20\">run</text>\n",
          width, height);
  for (c = 0; c < w->nruns; c++) {
    const json_t *run = json_array_get(w->runs, c);
    fprintf(out,
            "<rect class=\"run %s\" x=\"%.1f\" y=\"6\" width=\"%.1f\" height=\"%.1f\" rx=\"2\">"
            "<title>",
            cli_report_status_class(cli_json_str(run, "status")), x0 + (double)c * (CELL + GAP),
            CELL, 18.0);
    run_title(out, run);
    fputs("</title></rect>\n", out);
  }
  for (i = 0; i < rows; i++) {
    const char *nid = cli_json_str(json_array_get(stats, i), "node_id");
    double y = y0 + (double)i * (CELL + GAP);
    fprintf(out, "<text x=\"4\" y=\"%.1f\">", y + CELL - 3);
    cli_html_label(out, nid, 28);
    fputs("<title>", out);
    cli_html_str(out, nid, "?");
    fputs("</title></text>\n", out);
    for (c = 0; c < w->nruns; c++) {
      const json_t *cell = grid[i * w->nruns + c];
      double x = x0 + (double)c * (CELL + GAP);
      if (cell == NULL) {
        fprintf(out,
                "<rect class=\"cell st-none\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                "height=\"%.1f\"/>",
                x, y, CELL, CELL);
        continue;
      }
      fprintf(out,
              "<rect class=\"cell %s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
              "rx=\"2\"><title>",
              cli_report_status_class(cli_json_str(cell, "status")), x, y, CELL, CELL);
      cli_html_str(out, nid, "?");
      fputs(" in ", out);
      run_title(out, json_array_get(w->runs, c));
      fputs("\nnode: ", out);
      cli_html_str(out, cli_json_str(cell, "status"), "?");
      fprintf(out, " (%lld attempt%s)</title></rect>", (long long)cli_json_int(cell, "attempts"),
              cli_json_int(cell, "attempts") == 1 ? "" : "s");
      drawn++;
    }
    fputs("\n", out);
  }
  fprintf(out, "</svg></div>\n<p class=\"muted\">Columns are runs, oldest first; the top row "
               "is the run's status, each other row a node's last attempt (%zu cells). Grey: "
               "the node has no row in that run.</p>\n</section>\n",
          drawn);
  json_decref(runidx);
  json_decref(nodeidx);
  free(grid);
}

static void durations(const wf_t *w) {
  FILE *out = w->out;
  size_t i, n = 0;
  int64_t tmin = INT64_MAX, tmax = INT64_MIN;
  double dmax = 0;
  for (i = 0; i < w->nruns; i++) {
    const json_t *run = json_array_get(w->runs, i);
    int64_t t = cli_json_int(run, "started_at");
    if (cli_json_null(run, "duration_ms"))
      continue;
    n++;
    if (t < tmin)
      tmin = t;
    if (t > tmax)
      tmax = t;
    if (cli_json_num(run, "duration_ms") > dmax)
      dmax = cli_json_num(run, "duration_ms");
  }
  fputs("<h2>Run duration</h2>\n<section id=\"durations\">\n", out);
  if (n == 0) {
    fputs("<p class=\"muted\">No finished run in the window.</p>\n</section>\n", out);
    return;
  }
  if (dmax <= 0)
    dmax = 1;
  if (tmax == tmin)
    tmax = tmin + 1;
  fprintf(out,
          "<div class=\"chart\"><svg class=\"durations\" xmlns=\"http://www.w3.org/2000/svg\" "
          "width=\"%.0f\" height=\"%.0f\">\n",
          PLOT_W + 2 * PAD + 40, PLOT_H + 2 * PAD);
  for (i = 0; i <= 2; i++) {
    double y = PAD + PLOT_H - (double)i / 2 * PLOT_H;
    fprintf(out,
            "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
            "<text x=\"4\" y=\"%.1f\">",
            PAD + 40, y, PAD + 40 + PLOT_W, y, y + 4);
    if (i == 0)
      fputs("0", out);
    else
      cli_report_duration(out, dmax * (double)i / 2);
    fputs("</text>\n", out);
  }
  fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">", PAD + 40, PAD + PLOT_H + 20);
  cli_report_time(out, tmin);
  fprintf(out, "</text><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", PAD + 40 + PLOT_W,
          PAD + PLOT_H + 20);
  cli_report_time(out, tmax);
  fputs("</text>\n<polyline class=\"line\" points=\"", out);
  for (i = 0; i < w->nruns; i++) {
    const json_t *run = json_array_get(w->runs, i);
    if (cli_json_null(run, "duration_ms"))
      continue;
    fprintf(out, "%.1f,%.1f ",
            PAD + 40 + (double)(cli_json_int(run, "started_at") - tmin) / (double)(tmax - tmin) *
                           PLOT_W,
            PAD + PLOT_H - cli_json_num(run, "duration_ms") / dmax * PLOT_H);
  }
  fputs("\"/>\n", out);
  for (i = 0; i < w->nruns; i++) {
    const json_t *run = json_array_get(w->runs, i);
    if (cli_json_null(run, "duration_ms"))
      continue;
    fprintf(out, "<circle class=\"pt %s\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\"><title>",
            cli_report_status_class(cli_json_str(run, "status")),
            PAD + 40 + (double)(cli_json_int(run, "started_at") - tmin) / (double)(tmax - tmin) *
                           PLOT_W,
            PAD + PLOT_H - cli_json_num(run, "duration_ms") / dmax * PLOT_H);
    run_title(out, run);
    fputs("</title></circle>\n", out);
  }
  fputs("</svg></div>\n</section>\n", out);
}

static void node_stats(const wf_t *w) {
  FILE *out = w->out;
  const json_t *stats = json_object_get(w->data, "node_stats");
  size_t n = json_array_size(stats), i;
  double max = 0;
  for (i = 0; i < n; i++)
    if (cli_json_num(json_array_get(stats, i), "p95_ms") > max)
      max = cli_json_num(json_array_get(stats, i), "p95_ms");
  if (max <= 0)
    max = 1;
  fputs("<h2>Node durations</h2>\n<section id=\"node-stats\">\n", out);
  if (n == 0) {
    fputs("<p class=\"muted\">No finished attempt in the window.</p>\n</section>\n", out);
    return;
  }
  fputs("<table><tr><th>node</th><th class=\"num\">attempts</th><th class=\"num\">failures</th>"
        "<th class=\"num\">p50</th><th class=\"num\">p95</th><th>p50 (dark) and p95</th></tr>\n",
        out);
  for (i = 0; i < n; i++) {
    const json_t *s = json_array_get(stats, i);
    double p50 = cli_json_num(s, "p50_ms"), p95 = cli_json_num(s, "p95_ms");
    fputs("<tr><td>", out);
    cli_html_str(out, cli_json_str(s, "node_id"), "?");
    fprintf(out, "</td><td class=\"num\">%lld</td><td class=\"num\">%lld</td><td class=\"num\">",
            (long long)cli_json_int(s, "attempts"), (long long)cli_json_int(s, "failures"));
    if (cli_json_null(s, "p50_ms"))
      fputs("-", out);
    else
      cli_report_duration(out, p50);
    fputs("</td><td class=\"num\">", out);
    if (cli_json_null(s, "p95_ms"))
      fputs("-", out);
    else
      cli_report_duration(out, p95);
    fprintf(out,
            "</td><td><svg width=\"300\" height=\"12\"><rect class=\"st-running\" "
            "opacity=\"0.4\" x=\"0\" y=\"1\" width=\"%.1f\" height=\"10\"/><rect "
            "class=\"st-running\" x=\"0\" y=\"1\" width=\"%.1f\" height=\"10\"/></svg></td></tr>\n",
            p95 / max * 300, p50 / max * 300);
  }
  fputs("</table>\n</section>\n", out);
}

static void errors_per_day(const wf_t *w) {
  FILE *out = w->out;
  const json_t *days = json_object_get(w->data, "errors_per_day");
  size_t n = json_array_size(days), i;
  long long max = 0, sum = 0;
  double bw;
  for (i = 0; i < n; i++) {
    long long e = (long long)cli_json_int(json_array_get(days, i), "errors");
    sum += e;
    if (e > max)
      max = e;
  }
  fprintf(out, "<h2>Errors per day</h2>\n<section id=\"errors-per-day\" data-errors=\"%lld\">\n",
          sum);
  if (n == 0) {
    fputs("</section>\n", out);
    return;
  }
  if (max == 0)
    max = 1;
  bw = PLOT_W / (double)n;
  fprintf(out,
          "<div class=\"chart\"><svg class=\"errors\" xmlns=\"http://www.w3.org/2000/svg\" "
          "width=\"%.0f\" height=\"%.0f\">\n",
          PLOT_W + 2 * PAD, 160.0);
  for (i = 0; i < n; i++) {
    const json_t *d = json_array_get(days, i);
    long long e = (long long)cli_json_int(d, "errors");
    double h = (double)e / (double)max * 100.0, x = PAD + (double)i * bw;
    fprintf(out,
            "<rect class=\"st-failed\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
            "<title>",
            x + 1, 120 - h, bw - 2 > 1 ? bw - 2 : 1, h);
    cli_html_str(out, cli_json_str(d, "day"), "?");
    fprintf(out, ": %lld error%s</title></rect>", e, e == 1 ? "" : "s");
    if (e > 0)
      fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%lld</text>", x + bw / 2,
              115 - h, e);
    if (n <= 31) {
      const char *day = cli_json_str(d, "day");
      fprintf(out, "<text x=\"%.1f\" y=\"136\" text-anchor=\"middle\">", x + bw / 2);
      cli_html_str(out, day != NULL && strlen(day) == 10 ? day + 5 : day, "?");
      fputs("</text>", out);
    }
    fputs("\n", out);
  }
  fputs("</svg></div>\n</section>\n", out);
}

int cli_report_workflow(FILE *out, const json_t *data) {
  wf_t w;
  char title[300];
  w.out = out;
  w.data = data;
  w.runs = json_object_get(data, "runs");
  w.nruns = json_array_size(w.runs);
  snprintf(title, sizeof title, "flowcore: recent runs of %s",
           cli_json_str(data, "workflow") != NULL ? cli_json_str(data, "workflow") : "?");
  cli_report_head(out, title);
  header(&w);
  grid(&w);
  durations(&w);
  node_stats(&w);
  errors_per_day(&w);
  cli_report_foot(out);
  return ferror(out) ? -1 : 0;
}

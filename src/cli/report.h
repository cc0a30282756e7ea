/* flowcore command line: the HTML reports of the history (docs/report.md).
 *
 *   flowcore history show ID --html FILE      one run (report_run.c)
 *   flowcore history report --workflow NAME   a workflow's recent runs
 *                                             (report_workflow.c)
 *
 * Each report is one self-contained page: inline CSS and SVG, one small
 * inline script allowed by the page's Content-Security-Policy through its
 * SHA-256 hash (so no other script can run, even one that escaped the
 * escaping), no network access. The renderers take the data as jansson
 * values (history.c queries it with libpq) and know nothing of the
 * database, so they are tested without a server. Every string that comes
 * from the history goes through cli_html_text() (report_html.c): markup
 * characters become entities, invalid UTF-8 and control characters become
 * U+FFFD. CSS classes and numbers are the only other things written, and
 * a class never holds data (cli_report_status_class).
 */
#ifndef FLOWCORE_CLI_REPORT_H
#define FLOWCORE_CLI_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* ---- limits: past them the page aggregates and says so ------------------- */

enum {
  CLI_REPORT_MAX_LANES = 500,       /* Gantt lanes (nodes); the rest: one lane */
  CLI_REPORT_MAX_DAG_NODES = 300,   /* drawn DAG; beyond it a table per layer */
  CLI_REPORT_MAX_ERRORS = 200,      /* errors listed with their stack trace */
  CLI_REPORT_PAYLOAD_CAP = 4096,    /* bytes of one input/output shown */
  CLI_REPORT_STACK_CAP = 16384,     /* bytes of one stack trace shown */
  CLI_REPORT_MAX_PAYLOADS = 500,    /* attempts whose input/output is shown */
  CLI_REPORT_MAX_GRID_NODES = 200,  /* rows of the runs x nodes grid */
  CLI_REPORT_MAX_GRID_RUNS = 1000   /* runs of the workflow report */
};

/* ---- HTML writing (report_html.c) ----------------------------------------- */

/* Writes s[0..n) as HTML text, safe in element content and in a quoted
 * attribute value alike: & < > " ' become entities; each ill-formed UTF-8
 * sequence (fc__utf8_seq's maximal subpart), NUL, the other C0 controls but
 * tab, LF and CR, and DEL become U+FFFD. */
void cli_html_text(FILE *out, const char *s, size_t n);
/* cli_html_text of a NUL-terminated string; NULL writes `if_null` as is
 * (a literal of the caller, may be NULL: nothing). */
void cli_html_str(FILE *out, const char *s, const char *if_null);
/* A short label: s (NULL: "?") as cli_html_text when it has at most max
 * bytes, else its first whole characters within max - 1 bytes and "…"
 * (the full text belongs in a <title>). */
void cli_html_label(FILE *out, const char *s, size_t max);
/* Writes at most cap bytes of s[0..n) (cut before a multi-byte character,
 * never inside one) as cli_html_text, then, when it was cut or when
 * `total` (the full size in bytes, 0: n) is larger, "… (N more bytes)".
 * Returns the number of bytes left out. */
size_t cli_html_capped(FILE *out, const char *s, size_t n, size_t cap, size_t total);
/* The CSS class of a run, node or attempt status: "st-completed",
 * "st-failed", "st-timed_out", "st-cancelled", "st-skipped", "st-running",
 * "st-abandoned"; anything else (also NULL) "st-other". Never the input. */
const char *cli_report_status_class(const char *status);
/* The page's opening up to and including <body>: the doctype, the title
 * (escaped), the Content-Security-Policy (no network; only the page's own
 * inline script, by its hash) and the shared style sheet. */
void cli_report_head(FILE *out, const char *title);
/* The page's end: the inline script (it writes the time the page took to
 * load and lay out into <body data-render-ms>) and the closing tags. */
void cli_report_foot(FILE *out);
/* A duration in ms as cli_format_duration_ms writes it ("1.25s"). */
void cli_report_duration(FILE *out, double ms);
/* µs since the epoch as RFC 3339 UTC ("2026-11-27T04:30:53.123456Z"). */
void cli_report_time(FILE *out, int64_t us);
/* The legend of the status colours. */
void cli_report_legend(FILE *out);

/* Members of the report data (NULL object or missing member: NULL / 0). */
const char *cli_json_str(const json_t *obj, const char *key);
/* A number member (integer or real) as a double. */
double cli_json_num(const json_t *obj, const char *key);
int64_t cli_json_int(const json_t *obj, const char *key);
/* 1 when the member is missing or null. */
int cli_json_null(const json_t *obj, const char *key);

/* ---- the reports ------------------------------------------------------------- */

/* Writes the page of one run. `data` (borrowed) is an object:
 *   "workflow_id"  the run's id (string)
 *   "run"          the run's row (flowcore_recent_runs' columns; times as
 *                  integers, µs since the epoch) or null when the run's own
 *                  row is missing
 *   "input", "output"   the run's input and output as JSON text, or null
 *   "attempts"     array: node_id, attempt, node_type, status, started_at,
 *                  completed_at (µs or null), duration_ms, error_type,
 *                  error_message (flowcore_run_timeline's columns)
 *   "edges"        array of {"from", "to"} node ids (from the inputs)
 *   "errors"       array: node_id, attempt, severity, error_type,
 *                  error_message, stack_trace, occurred_at (µs)
 *   "errors_total" how many errors the run has (the array may hold fewer)
 *   "payloads"     array: node_id, attempt, input, output (JSON text, cut
 *                  by the query), input_bytes, output_bytes (full sizes)
 *   "payloads_total" how many attempts have payloads
 *   "now"          µs since the epoch: the end of a running attempt
 * Missing members count as empty. Returns 0, or -1 when out was not
 * written completely (ferror). */
int cli_report_run(FILE *out, const json_t *data);

/* Writes the page of a workflow's recent runs. `data` (borrowed):
 *   "workflow"     the workflow's name
 *   "since"        µs since the epoch: the start of the window
 *   "now"          µs since the epoch
 *   "runs"         array, oldest first: workflow_id, status, started_at
 *                  (µs), duration_ms, error_count
 *   "runs_total"   runs in the window (the array may hold the latest only)
 *   "cells"        array: workflow_id, node_id, status (its last
 *                  attempt's), attempts
 *   "node_stats"   array: node_id, attempts, failures, p50_ms, p95_ms
 *   "errors_per_day" array: day ("YYYY-MM-DD", UTC), errors
 * Returns 0 or -1 as cli_report_run. */
int cli_report_workflow(FILE *out, const json_t *data);

#endif

/* flowcore command line: HTML writing shared by the reports (report.h):
 * escaping, the status classes, the page's head and foot. */
#include <string.h>

#include "../pg/sha256.h"
#include "../utf8.h"
#include "cli.h"
#include "report.h"

/* The replacement of a byte that must not reach the page. */
#define REPLACEMENT FC__UTF8_REPLACEMENT

void cli_html_text(FILE *out, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, run = 0; /* p[i - run .. i) is waiting to be written as is */
  while (i < n) {
    unsigned char c = p[i];
    const char *rep = NULL;
    size_t len = 1, bad = 1;
    if (c >= 0x80) {
      len = fc__utf8_seq(p + i, n - i, &bad);
      if (len == 0) {
        rep = REPLACEMENT;
        len = bad;
      }
    } else if (c == '&') {
      rep = "&amp;";
    } else if (c == '<') {
      rep = "&lt;";
    } else if (c == '>') {
      rep = "&gt;";
    } else if (c == '"') {
      rep = "&quot;";
    } else if (c == '\'') {
      rep = "&#39;";
    } else if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
      rep = REPLACEMENT;
    }
    if (rep == NULL) {
      run += len;
    } else {
      if (run > 0)
        fwrite(p + i - run, 1, run, out);
      run = 0;
      fputs(rep, out);
    }
    i += len;
  }
  if (run > 0)
    fwrite(p + n - run, 1, run, out);
}

void cli_html_str(FILE *out, const char *s, const char *if_null) {
  if (s != NULL)
    cli_html_text(out, s, strlen(s));
  else if (if_null != NULL)
    fputs(if_null, out);
}

void cli_html_label(FILE *out, const char *s, size_t max) {
  size_t n = s != NULL ? strlen(s) : 0;
  if (n <= max) {
    cli_html_str(out, s, "?");
    return;
  }
  cli_html_text(out, s, fc__utf8_cut(s, max - 1));
  fputs("\xE2\x80\xA6", out);
}

size_t cli_html_capped(FILE *out, const char *s, size_t n, size_t cap, size_t total) {
  size_t keep = n, left;
  if (total < n)
    total = n;
  if (keep > cap)
    keep = fc__utf8_cut(s, cap);
  cli_html_text(out, s, keep);
  left = total - keep;
  if (left > 0)
    fprintf(out, "<span class=\"cut\">\xE2\x80\xA6 (%zu more byte%s)</span>", left,
            left == 1 ? "" : "s");
  return left;
}

const char *cli_report_status_class(const char *status) {
  static const char *const known[] = {"completed", "failed",  "timed_out", "cancelled",
                                      "skipped",   "running", "abandoned"};
  static const char *const classes[] = {"st-completed", "st-failed",  "st-timed_out",
                                        "st-cancelled", "st-skipped", "st-running",
                                        "st-abandoned"};
  size_t i;
  for (i = 0; status != NULL && i < sizeof known / sizeof known[0]; i++)
    if (strcmp(status, known[i]) == 0)
      return classes[i];
  return "st-other";
}

/* The page's one script: how long loading and the first layout took (the
 * browser test and docs/report.md read it). No data from the history. */
static const char SCRIPT[] =
    "addEventListener(\"load\",function(){var b=document.body;b.getBoundingClientRect();"
    "b.setAttribute(\"data-render-ms\",String(Math.round(performance.now())));});";

static const char STYLE[] =
    "body{font:13px/1.4 sans-serif;margin:16px 24px;color:#222;background:#fff}"
    "h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:24px 0 8px;"
    "border-bottom:1px solid #ddd;padding-bottom:2px}"
    "table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left;vertical-align:top}"
    "th{color:#555;font-weight:600}.kv th{width:9em}.num{text-align:right}"
    "pre{background:#f6f6f6;border:1px solid #e2e2e2;padding:6px;margin:4px 0;"
    "white-space:pre-wrap;word-break:break-all;max-height:24em;overflow:auto}"
    "details{margin:2px 0}summary{cursor:pointer}"
    ".note{background:#fff8e1;border:1px solid #f0d58c;padding:4px 8px;margin:6px 0}"
    ".cut{color:#888;font-style:italic}.muted{color:#888}"
    ".badge{display:inline-block;padding:0 6px;border-radius:3px;color:#fff}"
    ".chart{overflow-x:auto}svg text{font:11px sans-serif;fill:#333}"
    "svg .axis{stroke:#ccc}svg .lane{fill:#fff}svg .lane.alt{fill:#f4f4f4}"
    "svg .edge{stroke:#999;fill:none}"
    "svg .backoff{stroke:#555;stroke-dasharray:3 2}"
    "svg .node-box{stroke:#333;stroke-width:.5}svg .line{stroke:#888;fill:none}"
    ".st-completed{fill:#2e9d57;background:#2e9d57}.st-failed{fill:#d64541;background:#d64541}"
    ".st-timed_out{fill:#e67e22;background:#e67e22}"
    ".st-cancelled{fill:#8e6bbf;background:#8e6bbf}"
    ".st-skipped{fill:#c4c4c4;background:#c4c4c4}.st-running{fill:#3b82f6;background:#3b82f6}"
    ".st-abandoned{fill:#7a5a2f;background:#7a5a2f}.st-other{fill:#999;background:#999}"
    ".st-none{fill:#f0f0f0;background:#f0f0f0}"
    ".legend span{display:inline-block;margin-right:12px}"
    ".legend i{display:inline-block;width:10px;height:10px;margin-right:4px}";

/* Standard base64 of data[0..n) into out (4 * ceil(n / 3) + 1 bytes). */
static void base64(const unsigned char *data, size_t n, char *out) {
  static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i, o = 0;
  for (i = 0; i < n; i += 3) {
    unsigned v = (unsigned)data[i] << 16;
    if (i + 1 < n)
      v |= (unsigned)data[i + 1] << 8;
    if (i + 2 < n)
      v |= data[i + 2];
    out[o++] = digits[(v >> 18) & 63];
    out[o++] = digits[(v >> 12) & 63];
    out[o++] = i + 1 < n ? digits[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < n ? digits[v & 63] : '=';
  }
  out[o] = '\0';
}

void cli_report_head(FILE *out, const char *title) {
  fc__sha256_t ctx;
  uint8_t digest[FC__SHA256_DIGEST_LENGTH];
  char hash[48];
  fc__sha256_init(&ctx);
  fc__sha256_update(&ctx, SCRIPT, sizeof SCRIPT - 1);
  fc__sha256_final(&ctx, digest);
  base64(digest, sizeof digest, hash);
  fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n", out);
  fprintf(out,
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
          "style-src 'unsafe-inline'; script-src 'sha256-%s'\">\n",
          hash);
  fputs("<meta name=\"generator\" content=\"flowcore\">\n<title>", out);
  cli_html_str(out, title, NULL);
  fprintf(out, "</title>\n<style>%s</style>\n</head>\n<body>\n", STYLE);
}

void cli_report_foot(FILE *out) { fprintf(out, "<script>%s</script>\n</body>\n</html>\n", SCRIPT); }

void cli_report_duration(FILE *out, double ms) {
  char buf[32];
  cli_format_duration_ms(ms, buf, sizeof buf);
  cli_html_str(out, buf, NULL);
}

void cli_report_time(FILE *out, int64_t us) {
  char buf[40];
  cli_format_utc_time(us, buf, sizeof buf);
  cli_html_str(out, buf, NULL);
}

void cli_report_legend(FILE *out) {
  static const char *const statuses[] = {"completed", "failed",  "timed_out", "cancelled",
                                         "skipped",   "running", "abandoned"};
  size_t i;
  fputs("<p class=\"legend\">", out);
  for (i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
    fprintf(out, "<span><i class=\"%s\"></i>%s</span>", cli_report_status_class(statuses[i]),
            statuses[i]);
  fputs("</p>\n", out);
}

const char *cli_json_str(const json_t *obj, const char *key) {
  const json_t *v = json_object_get(obj, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

double cli_json_num(const json_t *obj, const char *key) {
  return json_number_value(json_object_get(obj, key));
}

int64_t cli_json_int(const json_t *obj, const char *key) {
  const json_t *v = json_object_get(obj, key);
  if (json_is_integer(v))
    return (int64_t)json_integer_value(v);
  return (int64_t)json_number_value(v);
}

int cli_json_null(const json_t *obj, const char *key) {
  const json_t *v = json_object_get(obj, key);
  return v == NULL || json_is_null(v);
}

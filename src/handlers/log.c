/* The logging handler: one line per event, text or JSON lines.
 *
 * Levels: workflow start/end at info; node start/end at debug, except a
 * node_end with status failed or timed_out, at warning; error events at
 * error. Payloads (input, output, error details) are printed only when the
 * handler's min_level is debug, cut to max_payload bytes. Lines are built in
 * a buffer the handler keeps, then written with one fwrite (the stream is
 * flushed after workflow events and errors) or, with a user sink, handed to
 * the sink without the trailing newline. */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include <uv.h>

#include "internal.h"
#include "utf8.h"

#define LOG_DEFAULT_MAX_PAYLOAD 256

typedef struct {
  FILE *out;           /* NULL: stderr */
  fc_log_sink_cb sink; /* when set, lines go here instead of out */
  void *sink_data;
  fc_log_level_t min_level;
  fc_log_format_t format;
  size_t max_payload;
  fc__buf_t line;
  fc__buf_t scratch; /* payload dumps */
} log_state_t;

/* ---- text helpers -------------------------------------------------------- */

/* Appends s[0..n) as a JSON string: quotes, escapes, each maximal invalid
 * UTF-8 subpart (see utf8.h) replaced by \ufffd. */
static void buf_json_str(fc__buf_t *b, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  fc__buf_append(b, "\"", 1);
  while (i < n) {
    unsigned char c = u[i];
    size_t run = i;
    while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\')
      run++;
    if (run > i) {
      fc__buf_append(b, s + i, run - i);
      i = run;
      continue;
    }
    if (c >= 0x80) {
      size_t bad = 1, len = fc__utf8_seq(u + i, n - i, &bad);
      if (len == 0) {
        fc__buf_puts(b, "\\ufffd");
        i += bad;
      } else {
        fc__buf_append(b, s + i, len);
        i += len;
      }
      continue;
    }
    switch (c) {
    case '"':
      fc__buf_puts(b, "\\\"");
      break;
    case '\\':
      fc__buf_puts(b, "\\\\");
      break;
    case '\n':
      fc__buf_puts(b, "\\n");
      break;
    case '\r':
      fc__buf_puts(b, "\\r");
      break;
    case '\t':
      fc__buf_puts(b, "\\t");
      break;
    default:
      fc__buf_printf(b, "\\u%04x", (unsigned)c);
      break;
    }
    i++;
  }
  fc__buf_append(b, "\"", 1);
}

/* Text format value: bare when it is plain printable ASCII without spaces,
 * quotes, backslashes or '='; otherwise JSON-quoted. NULL prints as "-". */
static void buf_text_value(fc__buf_t *b, const char *s) {
  const char *p;
  if (s == NULL) {
    fc__buf_append(b, "-", 1);
    return;
  }
  for (p = s; *p != '\0'; p++) {
    unsigned char c = (unsigned char)*p;
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '=')
      break;
  }
  if (*p == '\0' && p != s)
    fc__buf_append(b, s, (size_t)(p - s));
  else
    buf_json_str(b, s, strlen(s));
}

/* RFC 3339, UTC, microseconds: "2026-11-27T04:30:53.123456Z". Time 0
 * means now. Instants outside years 0000..9999 (which RFC 3339 cannot
 * write) are clamped to the first or last microsecond of that range. */
static void buf_time(fc__buf_t *b, int64_t us) {
  struct tm tm;
  time_t secs;
  int64_t micros;
  if (us == 0)
    us = fc__wall_us();
  secs = (time_t)(us / 1000000);
  micros = us % 1000000;
  if (micros < 0) {
    micros += 1000000;
    secs--;
  }
  if (gmtime_r(&secs, &tm) == NULL || tm.tm_year > 9999 - 1900 || tm.tm_year < -1900) {
    fc__buf_puts(b, us < 0 ? "0000-01-01T00:00:00.000000Z" : "9999-12-31T23:59:59.999999Z");
    return;
  }
  fc__buf_printf(b, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)micros);
}

/* ---- payloads ------------------------------------------------------------ */

typedef struct {
  fc__buf_t *b;
  size_t limit; /* collect at most limit + 1 bytes */
} scratch_t;

static int scratch_dump_cb(const char *buffer, size_t size, void *data) {
  scratch_t *sc = data;
  fc__buf_t *b = sc->b;
  if (b->len + size > sc->limit) {
    fc__buf_append(b, buffer, sc->limit + 1 - b->len);
    return -1; /* enough: the payload gets cut */
  }
  fc__buf_append(b, buffer, size);
  return b->oom ? -1 : 0;
}

/* Dumps v into st->scratch, at most max_payload bytes. Returns 0 (whole),
 * 1 (cut) or -1 (nothing usable). */
static int payload_dump(log_state_t *st, json_t *v) {
  fc__buf_t *s = &st->scratch;
  scratch_t sc;
  int rc;
  fc__buf_reset(s);
  sc.b = s;
  sc.limit = st->max_payload;
  rc = json_dump_callback(v, scratch_dump_cb, &sc, JSON_COMPACT | JSON_ENCODE_ANY);
  if (s->oom)
    return -1;
  if (s->len > st->max_payload) {
    s->len = fc__utf8_cut(s->data, st->max_payload);
    return 1;
  }
  return rc == 0 ? 0 : -1;
}

static void text_payload(log_state_t *st, const char *key, json_t *v) {
  int rc;
  if (v == NULL || st->min_level > FC_LOG_DEBUG)
    return;
  rc = payload_dump(st, v);
  if (rc < 0)
    return;
  fc__buf_printf(&st->line, " %s=", key);
  fc__buf_append(&st->line, st->scratch.data, st->scratch.len);
  if (rc == 1)
    fc__buf_puts(&st->line, "...(truncated)");
}

static void json_payload(log_state_t *st, const char *key, json_t *v) {
  int rc;
  if (v == NULL || st->min_level > FC_LOG_DEBUG)
    return;
  rc = payload_dump(st, v);
  if (rc < 0)
    return;
  fc__buf_printf(&st->line, ",\"%s\":", key);
  if (rc == 0) {
    fc__buf_append(&st->line, st->scratch.data, st->scratch.len);
  } else {
    buf_json_str(&st->line, st->scratch.data, st->scratch.len);
    fc__buf_printf(&st->line, ",\"%s_truncated\":true", key);
  }
}

/* Appends `key` and the stack trace as a JSON string, cut to max_payload
 * bytes on a character boundary. Returns 1 when it was cut. */
static int put_stack_trace(log_state_t *st, fc__buf_t *b, const char *key, const char *trace) {
  size_t n = strlen(trace);
  size_t keep = n > st->max_payload ? fc__utf8_cut(trace, st->max_payload) : n;
  fc__buf_puts(b, key);
  buf_json_str(b, trace, keep);
  return keep < n;
}

/* ---- events -------------------------------------------------------------- */

static fc_log_level_t event_level(const fc_event_t *ev) {
  switch (ev->kind) {
  case FC_EVENT_WORKFLOW_START:
  case FC_EVENT_WORKFLOW_END:
    return FC_LOG_INFO;
  case FC_EVENT_NODE_END:
    if (ev->status == FC_NODE_FAILED || ev->status == FC_NODE_TIMED_OUT)
      return FC_LOG_WARNING;
    return FC_LOG_DEBUG;
  case FC_EVENT_ERROR:
    return FC_LOG_ERROR;
  default:
    return FC_LOG_DEBUG;
  }
}

static const char *level_name(fc_log_level_t level, int text) {
  switch (level) {
  case FC_LOG_DEBUG:
    return text ? "DEBUG" : "debug";
  case FC_LOG_INFO:
    return text ? "INFO " : "info";
  case FC_LOG_WARNING:
    return text ? "WARN " : "warning";
  default:
    return text ? "ERROR" : "error";
  }
}

static const char *event_status_name(const fc_event_t *ev) {
  switch (ev->kind) {
  case FC_EVENT_NODE_END:
    return fc_node_status_name((fc_node_status_t)ev->status);
  case FC_EVENT_WORKFLOW_END:
    return fc_workflow_status_name((fc_workflow_status_t)ev->status);
  case FC_EVENT_WORKFLOW_START:
  case FC_EVENT_NODE_START:
    return "running";
  default:
    return NULL;
  }
}

/* The node an event is about (an error may only name it in its info). */
static const char *event_node(const fc_event_t *ev, int *attempt) {
  *attempt = ev->attempt;
  if (ev->node_id == NULL && ev->kind == FC_EVENT_ERROR && ev->error != NULL &&
      ev->error->node_id != NULL) {
    *attempt = ev->error->attempt;
    return ev->error->node_id;
  }
  return ev->node_id;
}

static const int status_count_kinds[] = {FC_NODE_COMPLETED, FC_NODE_FAILED, FC_NODE_SKIPPED,
                                         FC_NODE_TIMED_OUT, FC_NODE_CANCELLED};

static void format_text(log_state_t *st, const fc_event_t *ev, fc_log_level_t level) {
  fc__buf_t *b = &st->line;
  const fc_error_info_t *err = ev->kind == FC_EVENT_ERROR ? ev->error : NULL;
  int attempt;
  const char *node = event_node(ev, &attempt);
  size_t i;

  buf_time(b, ev->time_us);
  fc__buf_printf(b, " %s %s wf=", level_name(level, 1), fc_event_kind_name(ev->kind));
  buf_text_value(b, ev->workflow_name);
  fc__buf_puts(b, " id=");
  buf_text_value(b, ev->workflow_id);
  if (node != NULL) {
    fc__buf_puts(b, " node=");
    buf_text_value(b, node);
    if (ev->node_type != NULL && ev->node_type[0] != '\0' && ev->kind != FC_EVENT_ERROR) {
      fc__buf_puts(b, " type=");
      buf_text_value(b, ev->node_type);
    }
    fc__buf_printf(b, " attempt=%d", attempt);
  }
  switch (ev->kind) {
  case FC_EVENT_WORKFLOW_START:
    fc__buf_printf(b, " nodes=%d", ev->node_count);
    text_payload(st, "input", ev->input);
    break;
  case FC_EVENT_WORKFLOW_END:
    fc__buf_printf(b, " status=%s duration_ms=%.3f nodes=%d", event_status_name(ev),
                   (double)ev->duration_us / 1000.0, ev->node_count);
    if (ev->status_counts != NULL)
      for (i = 0; i < FC__ARRAY_SIZE(status_count_kinds); i++)
        fc__buf_printf(b, " %s=%d", fc_node_status_name((fc_node_status_t)status_count_kinds[i]),
                       ev->status_counts[status_count_kinds[i]]);
    fc__buf_printf(b, " errors=%d", ev->error_count);
    text_payload(st, "output", ev->output);
    break;
  case FC_EVENT_NODE_START:
    text_payload(st, "input", ev->input);
    break;
  case FC_EVENT_NODE_END:
    fc__buf_printf(b, " status=%s duration_ms=%.3f", event_status_name(ev),
                   (double)ev->duration_us / 1000.0);
    text_payload(st, "output", ev->output);
    break;
  case FC_EVENT_ERROR:
    if (err == NULL)
      break;
    fc__buf_printf(b, " severity=%s type=", fc_severity_name(err->severity));
    buf_text_value(b, err->type);
    fc__buf_puts(b, " message=");
    buf_json_str(b, err->message ? err->message : "", err->message ? strlen(err->message) : 0);
    if (err->stack_trace != NULL && err->stack_trace[0] != '\0' &&
        put_stack_trace(st, b, " stack_trace=", err->stack_trace))
      fc__buf_puts(b, "...(truncated)");
    text_payload(st, "details", err->details);
    break;
  default:
    break;
  }
}

static void json_key_str(fc__buf_t *b, const char *key, const char *value) {
  fc__buf_printf(b, ",\"%s\":", key);
  if (value == NULL)
    fc__buf_puts(b, "null");
  else
    buf_json_str(b, value, strlen(value));
}

static void format_json(log_state_t *st, const fc_event_t *ev, fc_log_level_t level) {
  fc__buf_t *b = &st->line;
  const fc_error_info_t *err = ev->kind == FC_EVENT_ERROR ? ev->error : NULL;
  const char *status = event_status_name(ev);
  int attempt;
  const char *node = event_node(ev, &attempt);
  size_t i;

  fc__buf_puts(b, "{\"time\":\"");
  buf_time(b, ev->time_us);
  fc__buf_printf(b, "\",\"level\":\"%s\",\"event\":\"%s\"", level_name(level, 0),
                 fc_event_kind_name(ev->kind));
  json_key_str(b, "workflow_id", ev->workflow_id);
  json_key_str(b, "workflow_name", ev->workflow_name);
  if (node != NULL) {
    json_key_str(b, "node_id", node);
    if (ev->node_type != NULL && ev->kind != FC_EVENT_ERROR)
      json_key_str(b, "node_type", ev->node_type);
    fc__buf_printf(b, ",\"attempt\":%d", attempt);
  }
  if (status != NULL)
    fc__buf_printf(b, ",\"status\":\"%s\"", status);
  if (ev->kind == FC_EVENT_WORKFLOW_START || ev->kind == FC_EVENT_WORKFLOW_END)
    fc__buf_printf(b, ",\"node_count\":%d", ev->node_count);
  if (ev->kind == FC_EVENT_WORKFLOW_END || ev->kind == FC_EVENT_NODE_END)
    fc__buf_printf(b, ",\"duration_ms\":%.3f", (double)ev->duration_us / 1000.0);

  switch (ev->kind) {
  case FC_EVENT_WORKFLOW_START:
  case FC_EVENT_NODE_START:
    json_payload(st, "input", ev->input);
    break;
  case FC_EVENT_WORKFLOW_END:
    if (ev->status_counts != NULL) {
      fc__buf_puts(b, ",\"status_counts\":{");
      for (i = 0; i < FC__ARRAY_SIZE(status_count_kinds); i++)
        fc__buf_printf(b, "%s\"%s\":%d", i ? "," : "",
                       fc_node_status_name((fc_node_status_t)status_count_kinds[i]),
                       ev->status_counts[status_count_kinds[i]]);
      fc__buf_puts(b, "}");
    }
    fc__buf_printf(b, ",\"error_count\":%d", ev->error_count);
    json_payload(st, "output", ev->output);
    break;
  case FC_EVENT_NODE_END:
    json_payload(st, "output", ev->output);
    break;
  case FC_EVENT_ERROR:
    if (err == NULL)
      break;
    json_key_str(b, "error_type", err->type);
    json_key_str(b, "error_message", err->message);
    fc__buf_printf(b, ",\"severity\":\"%s\"", fc_severity_name(err->severity));
    if (err->occurred_at_us != 0) {
      fc__buf_puts(b, ",\"occurred_at\":\"");
      buf_time(b, err->occurred_at_us);
      fc__buf_puts(b, "\"");
    }
    if (err->stack_trace != NULL && put_stack_trace(st, b, ",\"stack_trace\":", err->stack_trace))
      fc__buf_puts(b, ",\"stack_trace_truncated\":true");
    json_payload(st, "details", err->details);
    break;
  default:
    break;
  }
  fc__buf_puts(b, "}");
}

static int log_cb(void *self, const fc_event_t *ev) {
  log_state_t *st = self;
  fc_log_level_t level;
  FILE *out;

  if (st == NULL || ev == NULL || (unsigned)ev->kind >= (unsigned)FC_EVENT_KIND_COUNT)
    return FC_EINVAL;
  level = event_level(ev);
  if (level < st->min_level)
    return 0;

  fc__buf_reset(&st->line);
  if (st->format == FC_LOG_FORMAT_JSON)
    format_json(st, ev, level);
  else
    format_text(st, ev, level);
  if (st->line.oom)
    return FC_ENOMEM;
  if (st->sink != NULL) {
    st->sink(st->sink_data, st->line.data);
    return 0;
  }
  fc__buf_append(&st->line, "\n", 1);
  if (st->line.oom)
    return FC_ENOMEM;

  out = st->out != NULL ? st->out : stderr;
  if (fwrite(st->line.data, 1, st->line.len, out) != st->line.len)
    return UV_EIO;
  if (ev->kind != FC_EVENT_NODE_START && ev->kind != FC_EVENT_NODE_END && fflush(out) != 0)
    return UV_EIO;
  return 0;
}

static void log_destroy(void *self) {
  log_state_t *st = self;
  if (st == NULL)
    return;
  fc__buf_free(&st->line);
  fc__buf_free(&st->scratch);
  fc__free(st);
}

void fc_log_options_init(fc_log_options_t *opts) {
  if (opts == NULL)
    return;
  memset(opts, 0, sizeof *opts);
  opts->min_level = FC_LOG_INFO;
  opts->format = FC_LOG_FORMAT_TEXT;
  opts->max_payload = LOG_DEFAULT_MAX_PAYLOAD;
}

int fc_log_handler(const fc_log_options_t *opts, fc_handler_t *out) {
  fc_log_options_t defaults;
  log_state_t *st;
  if (out == NULL)
    return FC_EINVAL;
  if (opts == NULL) {
    fc_log_options_init(&defaults);
    opts = &defaults;
  }
  if ((unsigned)opts->min_level > (unsigned)FC_LOG_ERROR ||
      (unsigned)opts->format > (unsigned)FC_LOG_FORMAT_JSON)
    return FC_EINVAL;
  st = fc__calloc(1, sizeof *st);
  if (st == NULL)
    return FC_ENOMEM;
  st->out = opts->out;
  st->sink = opts->sink;
  st->sink_data = opts->sink_data;
  st->min_level = opts->min_level;
  st->format = opts->format;
  st->max_payload = opts->max_payload != 0 ? opts->max_payload : LOG_DEFAULT_MAX_PAYLOAD;
  return fc__handler_of(out, "log", st, log_cb, log_destroy);
}

/* flowcore: the logging handler.
 *
 * Workflow start/end at info, node events at debug (a node_end that failed
 * or timed out at warning), errors at error; one line per event, as text or
 * as JSON lines, to a FILE * (borrowed) or to a user sink (a callback that
 * receives each formatted line). Events below `min_level` are not written.
 *
 * Times are RFC 3339 in UTC with microseconds ("2026-11-27T04:30:53.123456Z").
 * Payloads (input, output, error details) are written only when min_level is
 * FC_LOG_DEBUG, cut to max_payload bytes (on a UTF-8 boundary) and marked as
 * truncated; an error's stack_trace is written at every level, cut likewise.
 *
 * Threading: the handler is called on the loop thread; the sink is called
 * from inside the handler's callback, on the same thread. */
#ifndef FLOWCORE_LOG_HANDLER_H
#define FLOWCORE_LOG_HANDLER_H

#include <stdio.h>

#include "handler.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  FC_LOG_DEBUG = 0,
  FC_LOG_INFO = 1,
  FC_LOG_WARNING = 2,
  FC_LOG_ERROR = 3
} fc_log_level_t;

typedef enum {
  FC_LOG_FORMAT_TEXT = 0, /* "2026-11-27T04:30:53.123456Z INFO workflow_start ..." */
  FC_LOG_FORMAT_JSON = 1  /* one JSON object per line */
} fc_log_format_t;

typedef struct {
  FILE *out;               /* borrowed; NULL means stderr (ignored with a sink) */
  fc_log_level_t min_level; /* FC_LOG_DEBUG (0) logs everything; opts NULL: INFO */
  fc_log_format_t format;  /* default text */
  size_t max_payload;      /* bytes of payload JSON printed at debug; 0 = 256 */
  /* A user sink: when set, every line goes to sink(sink_data, line) instead
   * of `out`: one call per event, the line without its trailing newline,
   * borrowed for the call. fc_log_sink_cb is declared in handler.h.
   * sink_data is borrowed. */
  fc_log_sink_cb sink;
  void *sink_data;
} fc_log_options_t;

/* Fills *opts with the defaults: text at FC_LOG_INFO to stderr (out NULL),
 * max_payload 256, no sink. (A zeroed struct is the same but at
 * FC_LOG_DEBUG.) */
FC_EXTERN void fc_log_options_init(fc_log_options_t *opts);

/* Makes a logging handler in *out. Borrowed: the FILE and the sink data
 * stay the caller's; the handler owns only its own state (destroy frees
 * it). `opts` is copied; NULL means fc_log_options_init's defaults.
 * Returns 0, FC_EINVAL (out NULL, a bad level or format) or FC_ENOMEM; on
 * success *out is ready for fc_manager_add. The handler's callbacks return
 * FC_ENOMEM when a line could not be built and UV_EIO when writing to the
 * FILE failed. */
FC_EXTERN int fc_log_handler(const fc_log_options_t *opts, fc_handler_t *out);

#ifdef __cplusplus
}
#endif
#endif

/* flowcore: the logging handler.
 *
 * Workflow start/end at info, node events at debug, errors at error; one
 * line per event to a FILE * (borrowed) in a readable format. Events below
 * `min_level` are not written. */
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
  FILE *out;               /* borrowed; NULL means stderr */
  fc_log_level_t min_level; /* FC_LOG_DEBUG (0) logs everything; opts NULL: INFO */
  fc_log_format_t format;  /* default text */
  size_t max_payload;      /* bytes of payload JSON printed at debug; 0 = 256 */
} fc_log_options_t;

/* Creates a logging handler (it owns its state; destroy frees it).
 * `opts` may be NULL for the defaults. Returns 0 or FC_ENOMEM; on success
 * *out is ready for fc_manager_add. */
FC_EXTERN int fc_log_handler_new(const fc_log_options_t *opts, fc_handler_t *out);

#ifdef __cplusplus
}
#endif
#endif

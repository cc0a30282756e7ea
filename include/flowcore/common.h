/* flowcore: common definitions (export macro, version, error codes).
 *
 * Error convention (as libuv): every call that can fail returns 0 or a
 * negative error code. libuv codes (UV_E*) pass through unchanged; flowcore's
 * own codes live in the range -5000..-5099 so fc_strerror() can hand any
 * other code to uv_strerror(). If a call that takes a callback fails, the
 * callback is never invoked.
 */
#ifndef FLOWCORE_COMMON_H
#define FLOWCORE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(FC_BUILDING_SHARED) && defined(__GNUC__)
#define FC_EXTERN __attribute__((visibility("default")))
#else
#define FC_EXTERN /* nothing */
#endif

#if defined(__GNUC__)
#define FC_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define FC_WARN_UNUSED
#endif

#define FC_VERSION_MAJOR 0
#define FC_VERSION_MINOR 1
#define FC_VERSION_PATCH 0
#define FC_VERSION_STRING "0.1.0"

/* Returns the library's version, e.g. "0.1.0" (static storage). */
FC_EXTERN const char *fc_version_string(void);

/* XX(name, code, message) */
#define FC_ERRNO_MAP(XX)                                                      \
  XX(EINVAL, -5001, "invalid argument")                                      \
  XX(ENOMEM, -5002, "out of memory")                                         \
  XX(EDEFINITION, -5003, "invalid workflow definition")                      \
  XX(EDUPLICATE, -5004, "duplicate node id")                                 \
  XX(EUNKNOWNDEP, -5005, "unknown node referenced")                          \
  XX(ECYCLE, -5006, "dependency cycle")                                      \
  XX(EBADNAME, -5007, "invalid name")                                        \
  XX(EFROZEN, -5008, "workflow is validated and can no longer change")       \
  XX(ESTATE, -5009, "operation not allowed in the current state")           \
  XX(ECANCELED, -5010, "operation canceled")                                 \
  XX(ETIMEDOUT, -5011, "timed out")                                          \
  XX(ENOTFOUND, -5012, "not found")                                          \
  XX(EHANDLER, -5013, "handler failed")                                      \
  XX(EROUTE, -5014, "node output chose no known route")                      \
  XX(ENOFN, -5015, "node has no function")                                   \
  XX(EDB, -5016, "database error")                                           \
  XX(EMIGRATION, -5017, "migrations do not match the database") \
  XX(ELOST, -5018, "history records were dropped (see the writer's report)")

typedef enum {
#define FC__ERRNO_ENUM(name, code, msg) FC_##name = (code),
  FC_ERRNO_MAP(FC__ERRNO_ENUM)
#undef FC__ERRNO_ENUM
  FC_ERRNO_MAX = -5000
} fc_errno_t;

/* Message for an error code (flowcore's or libuv's). Static storage. */
FC_EXTERN const char *fc_strerror(int err);
/* Symbolic name, e.g. "FC_ECYCLE" or "EINVAL" for libuv codes. Static. */
FC_EXTERN const char *fc_err_name(int err);

/* Detail for definition and loading errors (jansson's json_error_t style):
 * a code, a message naming what is wrong, and where (node id or JSON path).
 * Callers may pass NULL where an fc_error_t * is accepted. The first error
 * recorded is kept. */
#define FC_ERROR_TEXT_LENGTH 512
#define FC_ERROR_WHERE_LENGTH 256
typedef struct {
  int code;                         /* 0 when no error was recorded */
  char where[FC_ERROR_WHERE_LENGTH]; /* node id or JSON path, may be "" */
  char text[FC_ERROR_TEXT_LENGTH];   /* human-readable, names the node */
} fc_error_t;

/* Clears an error detail struct (code 0, empty strings). */
FC_EXTERN void fc_error_clear(fc_error_t *err);

#ifdef __cplusplus
}
#endif
#endif

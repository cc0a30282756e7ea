/* flowcore: loading workflow files (docs/workflows.md) into fc_workflow_t.
 *
 * A workflow file is one JSON object:
 *
 *   name          string, required: the workflow name (1-200 characters of
 *                 A-Z a-z 0-9 _ . : - and inner spaces)
 *   description   string, optional, ignored
 *   max_parallel  integer 0..1000000, optional (0: unlimited)
 *   input         any JSON, optional: the default workflow input
 *   nodes         non-empty array of node objects, required
 *
 * Every node:
 *   id                    string, required (1-128 of A-Z a-z 0-9 _ . : -;
 *                         "input" is reserved)
 *   type                  "exec" | "sleep" | "pass" | "set" | "fail", required
 *   description           string, optional, ignored
 *   after                 array of node ids
 *   routes                object: route name -> non-empty array of node ids
 *   retries               integer 0..1000000: extra attempts after a failure
 *                         or timeout
 *   retry_backoff_ms      integer >= 0: backoff before the first retry
 *                         (doubling per retry; default 0: retry at once)
 *   retry_backoff_max_ms  integer >= retry_backoff_ms: backoff cap
 *                         (default: max(60000, retry_backoff_ms))
 *   timeout_ms            integer >= 0: per attempt (0: none)
 * (all millisecond values are at most 2^40)
 * Per type (see nodes.h for what they do):
 *   exec   command (required, non-empty array of strings, the first
 *          non-empty), env (object of strings: added to the environment),
 *          cwd (non-empty string), max_output_bytes (integer 1..2^30,
 *          default 16 MiB), kill_grace_ms (integer >= 0, default 2000)
 *   sleep  ms (required, integer >= 0)
 *   pass   -
 *   set    output (required, any JSON)
 *   fail   message (required, non-empty string), severity ("info",
 *          "warning", "error" (default) or "critical"), error_type
 *          (non-empty string, default "fail"; "type" is the node type)
 *
 * Unknown fields, fields of another node type, unknown types and wrong
 * value types are errors. The loader reports every error it can find, not
 * only the first: all nodes are checked, every duplicate id and every
 * reference to an unknown node is reported; when none of those (nor a bad
 * name) was found, fc_workflow_validate() runs (cycles) and its error is
 * added. Each error's text names where it is, e.g.
 *   nodes[3] (id "load"): unknown field "comand" (did you mean "command"?)
 *   nodes[0].timeout_ms (id "extract"): expected a non-negative integer
 *   12:5: invalid JSON: '}' expected near ']'
 * (JSON syntax errors give line:column; a key repeated in one object is a
 * syntax error too); `where` holds the JSON path ("nodes[0].timeout_ms"),
 * the node id (graph errors), "line:column", or the path of an unreadable
 * file.
 *
 * Limits against hostile input: files up to FC_LOAD_MAX_FILE_BYTES, up to
 * FC_LOAD_MAX_NODES nodes, nesting depth as jansson allows (2048), and at
 * most FC_LOAD_MAX_ERRORS errors kept (the rest are counted in `omitted`).
 *
 * Threads: fc_workflow_load_file and fc_workflow_load_buffer load a big
 * file (512 KiB or more of nodes) on two threads, the caller's and one
 * they start (all signals blocked) and join before they return; without
 * it (no thread could be started) the load is the same, only slower. The
 * loaded workflow is the caller's like any other.
 */
#ifndef FLOWCORE_LOADER_H
#define FLOWCORE_LOADER_H

#include <jansson.h>

#include "workflow.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FC_LOAD_MAX_FILE_BYTES ((size_t)64 * 1024 * 1024)
#define FC_LOAD_MAX_NODES 1000000
#define FC_LOAD_MAX_ERRORS 200

/* Every error of one load, in the order found. Zero-initialise it (or call
 * fc_load_errors_init), pass it to a load call, read count/items, then call
 * fc_load_errors_free. A load call appends to what is already there. */
typedef struct {
  size_t count;      /* errors in items */
  fc_error_t *items; /* owned by the struct */
  size_t omitted;    /* errors found beyond FC_LOAD_MAX_ERRORS, not kept */
  size_t cap;        /* private */
} fc_load_errors_t;

FC_EXTERN void fc_load_errors_init(fc_load_errors_t *errors);
/* Frees the items and resets the struct to empty. NULL ok. */
FC_EXTERN void fc_load_errors_free(fc_load_errors_t *errors);
/* Total errors found: count + omitted. */
FC_EXTERN size_t fc_load_errors_total(const fc_load_errors_t *errors);

/* Loads the workflow file at `path` ("-" reads stdin).
 * On success returns 0, a new validated workflow in *wf_out (free with
 * fc_workflow_free) and, if input_out is not NULL, a new reference to the
 * file's "input" in *input_out (NULL when the file has none).
 * On failure returns a negative code (the first error's: FC_EDEFINITION for
 * syntax and field errors, FC_EBADNAME, FC_EDUPLICATE, FC_EUNKNOWNDEP,
 * FC_ECYCLE; a libuv code such as UV_ENOENT when the file cannot be read;
 * FC_ENOMEM), sets *wf_out and *input_out to NULL and appends the errors
 * to `errors` (may be NULL). Error texts do not contain the path: prefix
 * it when printing ("etl.json: ..."; "etl.json:12:5: ..." for syntax). */
FC_EXTERN int fc_workflow_load_file(const char *path, fc_workflow_t **wf_out, json_t **input_out,
                                    fc_load_errors_t *errors) FC_WARN_UNUSED;

/* The same from JSON text (need not be NUL-terminated). */
FC_EXTERN int fc_workflow_load_buffer(const char *text, size_t len, fc_workflow_t **wf_out,
                                      json_t **input_out, fc_load_errors_t *errors) FC_WARN_UNUSED;

/* The same from a parsed document (borrowed; nothing of it is kept except
 * a new reference to its "input", given to *input_out). */
FC_EXTERN int fc_workflow_load_json(json_t *root, fc_workflow_t **wf_out, json_t **input_out,
                                    fc_load_errors_t *errors) FC_WARN_UNUSED;

/* Flags of the _ex loads. */
enum {
  /* Each `set` node keeps its "output" as the JSON text the file wrote it
   * in, and a run parses that text when something first reads the output:
   * a successor's input, a node_end handler (before the event), the
   * workflow's output, fc_run_node_output. Without it the loader parses
   * every constant as it loads the file. A big file whose constants are
   * mostly not read (a run without node_end handlers) then loads faster,
   * in much less memory; an output that is read costs a parse in each run,
   * on the loop's thread. (A node is kept as text when the loader parsed
   * it alone from the text, its usual way; a file it had to parse whole,
   * or an "output" key written with an escape, keeps the parsed value.) */
  FC_LOAD_LAZY_CONSTANTS = 1
};

/* fc_workflow_load_file and fc_workflow_load_buffer with flags (0: the
 * same as those). */
FC_EXTERN int fc_workflow_load_file_ex(const char *path, unsigned flags, fc_workflow_t **wf_out,
                                       json_t **input_out, fc_load_errors_t *errors) FC_WARN_UNUSED;
FC_EXTERN int fc_workflow_load_buffer_ex(const char *text, size_t len, unsigned flags,
                                         fc_workflow_t **wf_out, json_t **input_out,
                                         fc_load_errors_t *errors) FC_WARN_UNUSED;

/* Parses a workflow input given on a command line: `arg` is JSON text, or
 * "@path" to read it from a file ("@-": stdin). Any JSON value is accepted.
 * Returns 0 and a new reference in *out, or an error code (FC_EINVAL for
 * bad JSON, a libuv code for an unreadable file) with details in *err
 * (may be NULL), e.g. `input: 1:7: invalid JSON: ...` or
 * `input file "x.json": 3:1: invalid JSON: ...`. */
FC_EXTERN int fc_workflow_load_input(const char *arg, json_t **out, fc_error_t *err) FC_WARN_UNUSED;

#ifdef __cplusplus
}
#endif
#endif

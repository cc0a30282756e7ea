/* flowcore: the built-in node types (docs/workflows.md), usable from C.
 *
 * Each fc_workflow_add_<type>_node() adds a node with its function, sets the
 * node's declared type ("exec", "sleep", "pass", "set", "fail") and makes
 * the workflow own the node's configuration (copied from the arguments; it
 * is freed by fc_workflow_free). Dependencies, routes, retries and timeouts
 * are set on the returned node with the fc_node_* calls of workflow.h.
 *
 * Each returns 0, FC_EINVAL (bad argument, see each call), FC_ENOMEM or
 * FC_EFROZEN. On FC_EINVAL or FC_EFROZEN nothing was added. FC_ENOMEM may
 * leave the node added with a partial setup: free the workflow then.
 *
 * Every node function runs on the loop thread and never blocks it.
 */
#ifndef FLOWCORE_NODES_H
#define FLOWCORE_NODES_H

#include <jansson.h>

#include "workflow.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- exec: run a command ---------------------------------------------------
 *
 * The command runs with uv_spawn (no shell: argv[0] is looked up in PATH
 * when it contains no '/'), as the leader of its own process group, with:
 *   - stdin: the node input as compact JSON followed by "\n", then EOF
 *     (written without blocking; a child that does not read it is fine);
 *   - environment: the parent's, plus FLOWCORE_WORKFLOW_ID,
 *     FLOWCORE_NODE_ID and FLOWCORE_ATTEMPT (1-based), plus opts->env
 *     (which overrides all of the above);
 *   - cwd: opts->cwd, or the parent's.
 * Result of an attempt, once the process has exited AND its stdout and
 * stderr are closed. Something else may hold them open after the exit (a
 * background child, possibly one that left the process group with setsid,
 * which no signal to the group reaches): then they get kill_grace_ms more
 * after the exit, what they hold is read without waiting, and our ends are
 * closed; the result is decided as below from the exit and what was read
 * (the holder is not killed: its later writes fail):
 *   - exit status 0: stdout, if it parses as JSON (any value, surrounding
 *     whitespace allowed), is the output; otherwise the output is
 *     {"stdout": "<text>"}, the text made valid UTF-8 (each invalid
 *     sequence and each NUL byte becomes U+FFFD);
 *   - non-zero status: failure of type "exit_status", message
 *     `command "<argv>" exited with status N`;
 *   - killed by a signal: failure of type "signal", message
 *     `command "<argv>" was killed by signal N (SIGNAME)`;
 *   - stdout longer than max_output_bytes: the process group is stopped
 *     (as below) and the attempt fails with type "output_too_large";
 *   - the command cannot be started (no such file, not executable, bad
 *     cwd): failure of type "spawn_error" naming the command and the reason.
 *   - the exit status was taken by another waitpid() of the process (a
 *     SIGCHLD handler that reaps every child): failure of type
 *     "exec_error". The exit is learnt from libuv's SIGCHLD handler and,
 *     should that signal be lost, by waitpid(WNOHANG) from 50 ms after
 *     stdout and stderr closed (or the group was stopped), at doubling
 *     intervals up to 1 s.
 * Failures carry the tail of stderr (the last FC_EXEC_STDERR_TAIL bytes,
 * made valid UTF-8) as the stack_trace, and details JSON with "command",
 * "pid", "exit_status" / "signal".
 * Stopping (the attempt's timeout, fc_run_cancel, output too large): the
 * whole process group gets SIGTERM (and SIGCONT), then SIGKILL after
 * kill_grace_ms if anything of the group still holds stdout or stderr open
 * or the leader has not exited.
 */

#define FC_EXEC_DEFAULT_MAX_OUTPUT ((size_t)16 * 1024 * 1024) /* 16 MiB */
#define FC_EXEC_DEFAULT_KILL_GRACE_MS 2000
#define FC_EXEC_STDERR_TAIL 4096

typedef struct {
  /* Working directory of the command; NULL means the parent's. */
  const char *cwd;
  /* "NAME=value" strings added to (or overriding) the environment,
   * NULL-terminated; NULL means none. NAME must be non-empty. */
  const char *const *env;
  /* Most bytes of stdout kept (default FC_EXEC_DEFAULT_MAX_OUTPUT; 0 is
   * FC_EINVAL). */
  size_t max_output_bytes;
  /* Time between SIGTERM and SIGKILL when the attempt is stopped
   * (default FC_EXEC_DEFAULT_KILL_GRACE_MS; 0 sends SIGKILL at once). Also
   * how long stdout and stderr may stay open after the process exited (0:
   * what they hold at the exit is read, then they are closed). */
  uint64_t kill_grace_ms;
} fc_exec_options_t;

/* Fills opts with the defaults. */
FC_EXTERN void fc_exec_options_init(fc_exec_options_t *opts);

/* Adds an exec node. `argv` is NULL-terminated with a non-empty argv[0];
 * `opts` may be NULL (defaults). Everything is copied. */
FC_EXTERN int fc_workflow_add_exec_node(fc_workflow_t *wf, const char *id, const char *const *argv,
                                        const fc_exec_options_t *opts, fc_node_t **node_out);

/* ---- sleep: wait `ms` milliseconds on a uv_timer ---------------------------
 * Output {"slept_ms": ms}. A stopped attempt (timeout, cancellation) ends
 * its timer at once. */
FC_EXTERN int fc_workflow_add_sleep_node(fc_workflow_t *wf, const char *id, uint64_t ms,
                                         fc_node_t **node_out);

/* ---- pass: output = the node input ------------------------------------------
 * The output is the input object itself ({"input": ..., "<dep>": ...}), a
 * new reference. */
FC_EXTERN int fc_workflow_add_pass_node(fc_workflow_t *wf, const char *id, fc_node_t **node_out);

/* ---- set: output = a constant ------------------------------------------------
 * `output` is borrowed and deep-copied now (NULL means JSON null). A node
 * with successors outputs the constant itself (a new reference: payloads
 * are read-only, see docs/handlers.md); a node without successors outputs
 * a deep copy on every attempt, so the workflow's output never shares the
 * constant. The node never reads its input. */
FC_EXTERN int fc_workflow_add_set_node(fc_workflow_t *wf, const char *id, json_t *output,
                                       fc_node_t **node_out);

/* ---- fail: fail every attempt ------------------------------------------------
 * The error has this `message` (required, non-empty), `severity`, and type
 * `error_type` (NULL means "fail"). */
FC_EXTERN int fc_workflow_add_fail_node(fc_workflow_t *wf, const char *id, const char *message,
                                        fc_severity_t severity, const char *error_type,
                                        fc_node_t **node_out);

#ifdef __cplusplus
}
#endif
#endif

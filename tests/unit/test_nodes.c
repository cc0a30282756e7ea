/* Unit tests: the built-in node types (include/flowcore/nodes.h).
 *
 * exec runs real commands: /bin/sh -c scripts given as argv. Tests that
 * check a process is gone read a pid the script wrote to a file and poll
 * kill(pid, 0) (a zombie waiting for a reaper counts as gone). Every test
 * gets its own loop, manager and recorder; teardown asserts the loop closes
 * cleanly, so a handle left behind by a node fails the test. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fc_test.h"

typedef struct {
  uv_loop_t loop;
  fc_manager_t *mgr;
  fc_recorder_t *rec;
  fc_workflow_t *wf;
  fc_run_t *run;
  int done;
  int closed;
  uv_timer_t cancel_timer;
  char pidfile[128];
  char strayfile[128];                /* pids of escaped grandchildren, killed by teardown */
  char run_id[FC_UUID_STRING_LENGTH]; /* of the last run_wf */
} env_t;

static int setup(void **state) {
  env_t *e = calloc(1, sizeof *e);
  fc_handler_t h;
  assert_non_null(e);
  assert_int_equal(uv_loop_init(&e->loop), 0);
  assert_int_equal(fc_manager_new(&e->mgr), 0);
  assert_int_equal(fc_recorder_new(&e->rec), 0);
  assert_int_equal(fc_recorder_handler(e->rec, &h), 0);
  assert_int_equal(fc_manager_add(e->mgr, &h, 0, NULL), 0);
  assert_int_equal(fc_workflow_new(&e->wf, "nodes-test"), 0);
  snprintf(e->pidfile, sizeof e->pidfile, "/tmp/flowcore-test-nodes-%ld.pids", (long)getpid());
  unlink(e->pidfile);
  snprintf(e->strayfile, sizeof e->strayfile, "/tmp/flowcore-test-nodes-%ld.strays",
           (long)getpid());
  unlink(e->strayfile);
  *state = e;
  return 0;
}

static size_t read_pids(const char *path, long *pids, size_t max);

static int teardown(void **state) {
  env_t *e = *state;
  long strays[8];
  size_t i, n = read_pids(e->strayfile, strays, 8);
  /* Grandchildren that left the process group: no group kill reaches them. */
  for (i = 0; i < n; i++)
    if (strays[i] > 1)
      (void)kill((pid_t)strays[i], SIGKILL);
  unlink(e->strayfile);
  fc_test_loop_close(&e->loop);
  fc_workflow_free(e->wf);
  fc_manager_free(e->mgr);
  fc_recorder_free(e->rec);
  unlink(e->pidfile);
  free(e);
  return 0;
}

static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

static void on_done(fc_run_t *run, void *data) {
  env_t *e = data;
  (void)run;
  e->done++;
}

static void on_closed(fc_run_t *run, void *data) {
  env_t *e = data;
  (void)run;
  e->closed++;
  e->run = NULL; /* freed right after this callback */
}

/* Runs e->wf on e's loop to the end (close included); returns the status.
 * *out (if not NULL) receives a new reference to the workflow output. */
static fc_workflow_status_t run_wf(env_t *e, json_t *input, json_t **out) {
  fc_workflow_status_t st;
  fc_error_t err;
  char msg[256];
  fc_error_clear(&err);
  if (fc_run_new(&e->run, &e->loop, e->wf, e->mgr, &err) != 0)
    fail_msg("fc_run_new: %s", err.text);
  assert_int_equal(fc_run_start(e->run, input, on_done, e), 0);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(e->done, 1);
  st = fc_run_status(e->run);
  snprintf(e->run_id, sizeof e->run_id, "%s", fc_run_id(e->run));
  if (out != NULL)
    *out = json_incref(fc_run_output(e->run));
  fc_run_close(e->run, on_closed, e);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(e->closed, 1);
  if (!fc_recorder_check_contract(e->rec, msg, sizeof msg))
    fail_msg("event contract: %s", msg);
  return st;
}

static const fc_recorded_event_t *last_error(env_t *e, const char *node) {
  const fc_recorded_event_t *ev = fc_recorder_last(e->rec, FC_EVENT_ERROR, node);
  if (ev == NULL)
    fail_msg("no error event for %s", node);
  return ev;
}

static fc_node_status_t final_status(env_t *e, const char *node) {
  const fc_recorded_event_t *ev = fc_recorder_last(e->rec, FC_EVENT_NODE_END, node);
  assert_non_null(ev);
  return (fc_node_status_t)ev->status;
}

static fc_node_t *add_sh(env_t *e, const char *id, const char *script,
                         const fc_exec_options_t *opts) {
  const char *argv[] = {"/bin/sh", "-c", script, NULL};
  fc_node_t *n = NULL;
  assert_int_equal(fc_workflow_add_exec_node(e->wf, id, argv, opts, &n), 0);
  assert_non_null(n);
  assert_string_equal(fc_node_type(n), "exec");
  return n;
}

/* The output of the only node `id` of the finished run. */
static json_t *output_of(json_t *out, const char *id) {
  json_t *v = json_object_get(out, id);
  if (v == NULL) {
    char *s = json_dumps(out, JSON_COMPACT);
    fail_msg("no output for %s in %s", id, s ? s : "(null)");
  }
  return v;
}

/* Pids written one per line by a script. */
static size_t read_pids(const char *path, long *pids, size_t max) {
  FILE *f = fopen(path, "r");
  size_t n = 0;
  if (f == NULL)
    return 0;
  while (n < max && fscanf(f, "%ld", &pids[n]) == 1)
    n++;
  fclose(f);
  return n;
}

static int is_zombie(long pid) {
  char path[64], buf[512];
  FILE *f;
  char *p;
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  f = fopen(path, "r");
  if (f == NULL)
    return 1; /* gone */
  p = fgets(buf, sizeof buf, f);
  fclose(f);
  if (p == NULL)
    return 1;
  p = strrchr(buf, ')');
  return p != NULL && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* 1 when pid is gone (or a zombie) within `ms`. */
static int pid_gone(long pid, int ms) {
  uint64_t end = now_ms() + (uint64_t)ms;
  do {
    if ((kill((pid_t)pid, 0) != 0 && errno == ESRCH) || is_zombie(pid))
      return 1;
    {
      struct timespec ts = {0, 10 * 1000000};
      nanosleep(&ts, NULL);
    }
  } while (now_ms() < end);
  return 0;
}

/* ---- exec: output ------------------------------------------------------------ */

static void test_exec_echoes_input(void **state) {
  env_t *e = *state;
  json_t *input = json_pack("{s:i, s:s}", "x", 1, "s", "h\xc3\xa9llo");
  json_t *out = NULL, *v;
  add_sh(e, "echo", "cat", NULL);
  assert_int_equal(run_wf(e, input, &out), FC_WORKFLOW_COMPLETED);
  v = output_of(out, "echo");
  /* The node input: {"input": <workflow input>}. */
  assert_true(json_equal(json_object_get(v, "input"), input));
  assert_int_equal(json_object_size(v), 1);
  json_decref(out);
  json_decref(input);
}

static void test_exec_plain_text_and_scalars(void **state) {
  env_t *e = *state;
  json_t *out = NULL;
  fc_node_t *n;
  add_sh(e, "text", "printf 'hello world\\n'", NULL);
  add_sh(e, "number", "printf ' 42 \\n'", NULL);
  add_sh(e, "empty", "true", NULL);
  n = add_sh(e, "after_text", "cat", NULL);
  assert_int_equal(fc_node_add_dep(n, "text"), 0);
  assert_int_equal(run_wf(e, NULL, &out), FC_WORKFLOW_COMPLETED);
  assert_int_equal(json_integer_value(output_of(out, "number")), 42);
  assert_string_equal(json_string_value(json_object_get(output_of(out, "empty"), "stdout")), "");
  /* text is not a sink; its output reached after_text's input. */
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(output_of(out, "after_text"), "text"), "stdout")),
                      "hello world\n");
  json_decref(out);
}

static void test_exec_invalid_utf8_sanitized(void **state) {
  env_t *e = *state;
  json_t *out = NULL;
  const char *s;
  /* a, 0xFF, b, overlong 0xC0 0x80, c, NUL, a valid é, a truncated 3-byte
   * sequence at the end. */
  add_sh(e, "bytes", "printf 'a\\377b\\300\\200c\\000d\\303\\251e\\342\\202'", NULL);
  assert_int_equal(run_wf(e, NULL, &out), FC_WORKFLOW_COMPLETED);
  s = json_string_value(json_object_get(output_of(out, "bytes"), "stdout"));
  assert_non_null(s);
  assert_string_equal(s, "a\xef\xbf\xbd"
                         "b\xef\xbf\xbd\xef\xbf\xbd"
                         "c\xef\xbf\xbd"
                         "d\xc3\xa9"
                         "e\xef\xbf\xbd");
  json_decref(out);
}

static void test_exec_large_io(void **state) {
  env_t *e = *state;
  json_t *out = NULL, *input;
  size_t n = 3 * 1024 * 1024;
  char *big = malloc(n + 1);
  assert_non_null(big);
  memset(big, 'z', n);
  big[n] = '\0';
  input = json_pack("{s:s}", "blob", big);
  /* 3 MiB in through stdin and back out through stdout (many reads and
   * writes, larger than any pipe buffer). */
  add_sh(e, "cat", "cat", NULL);
  /* A child that never reads its stdin: the write fails with EPIPE, no
   * SIGPIPE kills us. */
  add_sh(e, "deaf", "exit 0", NULL);
  assert_int_equal(run_wf(e, input, &out), FC_WORKFLOW_COMPLETED);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(output_of(out, "cat"), "input"), "blob")),
      big);
  json_decref(out);
  json_decref(input);
  free(big);
}

static void test_exec_many_parallel(void **state) {
  env_t *e = *state;
  json_t *out = NULL;
  char id[16];
  int i;
  for (i = 0; i < 24; i++) {
    snprintf(id, sizeof id, "n%d", i);
    add_sh(e, id, "printf '{\"node\": \"%s\"}' \"$FLOWCORE_NODE_ID\"", NULL);
  }
  assert_int_equal(run_wf(e, NULL, &out), FC_WORKFLOW_COMPLETED);
  for (i = 0; i < 24; i++) {
    snprintf(id, sizeof id, "n%d", i);
    assert_string_equal(json_string_value(json_object_get(output_of(out, id), "node")), id);
  }
  json_decref(out);
}

/* ---- exec: environment and cwd ------------------------------------------------ */

static void test_exec_env_and_cwd(void **state) {
  env_t *e = *state;
  json_t *out = NULL, *v;
  const char *env[] = {"FOO=bar baz", "FC_TEST_OVERRIDE=node", "EMPTY=", NULL};
  fc_exec_options_t opts;
  fc_exec_options_init(&opts);
  opts.env = env;
  opts.cwd = "/tmp";
  assert_int_equal(setenv("FC_TEST_PARENT", "parent", 1), 0);
  assert_int_equal(setenv("FC_TEST_OVERRIDE", "parent", 1), 0);
  add_sh(e, "env",
         "printf '{\"foo\":\"%s\",\"parent\":\"%s\",\"override\":\"%s\",\"empty\":\"%s-\","
         "\"pwd\":\"%s\",\"wid\":\"%s\",\"node\":\"%s\",\"attempt\":%s}' \"$FOO\" "
         "\"$FC_TEST_PARENT\" \"$FC_TEST_OVERRIDE\" \"${EMPTY-unset}\" \"$(pwd)\" "
         "\"$FLOWCORE_WORKFLOW_ID\" \"$FLOWCORE_NODE_ID\" \"$FLOWCORE_ATTEMPT\"",
         &opts);
  assert_int_equal(run_wf(e, NULL, &out), FC_WORKFLOW_COMPLETED);
  v = output_of(out, "env");
  assert_string_equal(json_string_value(json_object_get(v, "foo")), "bar baz");
  assert_string_equal(json_string_value(json_object_get(v, "parent")), "parent");
  assert_string_equal(json_string_value(json_object_get(v, "override")), "node");
  assert_string_equal(json_string_value(json_object_get(v, "empty")), "-");
  assert_string_equal(json_string_value(json_object_get(v, "pwd")), "/tmp");
  assert_string_equal(json_string_value(json_object_get(v, "wid")), e->run_id);
  assert_string_equal(json_string_value(json_object_get(v, "node")), "env");
  assert_int_equal(json_integer_value(json_object_get(v, "attempt")), 1);
  unsetenv("FC_TEST_PARENT");
  unsetenv("FC_TEST_OVERRIDE");
  json_decref(out);
}

/* ---- exec: failures ------------------------------------------------------------- */

static void test_exec_exit_status(void **state) {
  env_t *e = *state;
  const fc_recorded_event_t *ev;
  add_sh(e, "three", "echo 'partial' ; echo 'something broke' >&2; exit 3", NULL);
  assert_int_equal(run_wf(e, NULL, NULL), FC_WORKFLOW_FAILED);
  assert_int_equal(final_status(e, "three"), FC_NODE_FAILED);
  ev = last_error(e, "three");
  assert_string_equal(ev->error_type, "exit_status");
  assert_non_null(strstr(ev->error_message, "exited with status 3"));
  assert_non_null(strstr(ev->error_message, "command \"/bin/sh -c echo"));
  assert_string_equal(ev->error_stack_trace, "something broke\n");
  assert_int_equal(ev->error_severity, FC_SEVERITY_ERROR);
}

/* The command in messages is cut to 160 bytes, never inside a character:
 * an "\xc3\xa9" that ends exactly at the cut is kept (until the one UTF-8
 * module it was dropped as well), one cut after its first byte is not. */
static void test_exec_display_cut(void **state) {
  env_t *e = *state;
  char whole[200], split[200], pad[141];
  const fc_recorded_event_t *ev;
  /* "/bin/sh -c " is 11 bytes, "exit 3 #" 8: 139 x end the 2-byte
   * character at byte 160, 140 x cut it after its first byte. */
  memset(pad, 'x', 140);
  pad[140] = '\0';
  snprintf(whole, sizeof whole, "exit 3 #%.*s\xc3\xa9zz", 139, pad);
  snprintf(split, sizeof split, "exit 3 #%.*s\xc3\xa9zz", 140, pad);
  add_sh(e, "whole", whole, NULL);
  add_sh(e, "split", split, NULL);
  assert_int_equal(run_wf(e, NULL, NULL), FC_WORKFLOW_FAILED);
  ev = last_error(e, "whole");
  assert_non_null(strstr(ev->error_message, "x\xc3\xa9...\" exited with status 3"));
  ev = last_error(e, "split");
  assert_non_null(strstr(ev->error_message, "xx...\" exited with status 3"));
}

static void test_exec_stderr_tail(void **state) {
  env_t *e = *state;
  const fc_recorded_event_t *ev;
  size_t len;
  /* 10000 bytes of 'x' then a last line; only the tail is kept. */
  add_sh(e, "noisy",
         "i=0; while [ $i -lt 100 ]; do printf '%0100d' 0 | tr 0 x >&2; i=$((i+1)); done; "
         "echo 'THE END' >&2; exit 1",
         NULL);
  assert_int_equal(run_wf(e, NULL, NULL), FC_WORKFLOW_FAILED);
  ev = last_error(e, "noisy");
  assert_non_null(ev->error_stack_trace);
  len = strlen(ev->error_stack_trace);
  assert_true(len <= FC_EXEC_STDERR_TAIL + 80);
  assert_non_null(strstr(ev->error_stack_trace, "earlier bytes of stderr omitted]\n"));
  assert_string_equal(ev->error_stack_trace + len - 8, "THE END\n");
}

static void test_exec_signal(void **state) {
  env_t *e = *state;
  const fc_recorded_event_t *ev;
  add_sh(e, "killed", "echo 'about to die' >&2; kill -KILL $$", NULL);
  assert_int_equal(run_wf(e, NULL, NULL), FC_WORKFLOW_FAILED);
  ev = last_error(e, "killed");
  assert_string_equal(ev->error_type, "signal");
  assert_non_null(strstr(ev->error_message, "killed by signal 9 (SIGKILL)"));
  assert_string_equal(ev->error_stack_trace, "about to die\n");
}

static void test_exec_missing_binary(void **state) {
  env_t *e = *state;
  const char *abs[] = {"/nonexistent/flowcore-prog", "arg", NULL};
  const char *bare[] = {"flowcore-no-such-program-xyz", NULL};
  const char *sh[] = {"/bin/sh", "-c", "true", NULL};
  const fc_recorded_event_t *ev;
  fc_exec_options_t opts;
  assert_int_equal(fc_workflow_add_exec_node(e->wf, "abs", abs, NULL, NULL), 0);
  assert_int_equal(fc_workflow_add_exec_node(e->wf, "bare", bare, NULL, NULL), 0);
  fc_exec_options_init(&opts);
  opts.cwd = "/nonexistent/dir";
  assert_int_equal(fc_workflow_add_exec_node(e->wf, "badcwd", sh, &opts, NULL), 0);
  assert_int_equal(run_wf(e, NULL, NULL), FC_WORKFLOW_FAILED);
  ev = last_error(e, "abs");
  assert_string_equal(ev->error_type, "spawn_error");
  assert_non_null(strstr(ev->error_message,
                         "cannot start command \"/nonexistent/flowcore-prog arg\": no such file"));
  assert_non_null(strstr(ev->error_message, "ENOENT"));
  ev = last_error(e, "bare");
  assert_string_equal(ev->error_type, "spawn_error");
  assert_non_null(strstr(ev->error_message, "ENOENT"));
  ev = last_error(e, "badcwd");
  assert_string_equal(ev->error_type, "spawn_error");
  assert_non_null(strstr(ev->error_message, "in directory \"/nonexistent/dir\""));
}

static void test_exec_output_too_large(void **state) {
  env_t *e = *state;
  const fc_recorded_event_t *ev;
  fc_exec_options_t opts;
  uint64_t t0;
  fc_exec_options_init(&opts);
  opts.max_output_bytes = 1000;
  /* Endless output: only stopping the process ends it. */
  add_sh(e, "endless", "echo $$ > \"$PIDFILE\"; exec yes flowcore", &opts);
  /* Just over the limit, then a normal exit. */
  add_sh(e, "over", "head -c 1001 /dev/zero | tr '\\0' a", &opts);
  /* Exactly the limit is fine. */
  add_sh(e, "exact", "head -c 1000 /dev/zero | tr '\\0' a", &opts);
  assert_int_equal(setenv("PIDFILE", e->pidfile, 1), 0);
  t0 = now_ms();
  assert_int_equal(run_wf(e, NULL, NULL), FC_WORKFLOW_FAILED);
  unsetenv("PIDFILE");
  assert_true(now_ms() - t0 < 5000);
  ev = last_error(e, "endless");
  assert_string_equal(ev->error_type, "output_too_large");
  assert_non_null(strstr(ev->error_message, "wrote more than 1000 bytes to stdout"));
  assert_non_null(strstr(ev->error_message, "max_output_bytes"));
  ev = last_error(e, "over");
  assert_string_equal(ev->error_type, "output_too_large");
  assert_int_equal(final_status(e, "exact"), FC_NODE_COMPLETED);
  {
    long pid = 0;
    assert_int_equal(read_pids(e->pidfile, &pid, 1), 1);
    assert_true(pid_gone(pid, 2000));
  }
}

/* ---- exec: stopping ---------------------------------------------------------------- */

/* The script starts a background child, writes both pids, and sleeps: the
 * timeout must kill the whole process group. */
static void test_exec_timeout_kills_group(void **state) {
  env_t *e = *state;
  char script[512];
  const fc_recorded_event_t *ev;
  fc_node_t *n;
  long pids[2];
  uint64_t t0;
  snprintf(script, sizeof script, "sleep 30 & echo $! > %s; echo $$ >> %s; sleep 30", e->pidfile,
           e->pidfile);
  n = add_sh(e, "slow", script, NULL);
  assert_int_equal(fc_node_set_timeout(n, 300), 0);
  t0 = now_ms();
  assert_int_equal(run_wf(e, NULL, NULL), FC_WORKFLOW_FAILED);
  /* SIGTERM was enough: no waiting for the 2 s grace period. */
  assert_true(now_ms() - t0 < 1800);
  assert_int_equal(final_status(e, "slow"), FC_NODE_TIMED_OUT);
  ev = last_error(e, "slow");
  assert_string_equal(ev->error_type, "timeout");
  assert_int_equal(read_pids(e->pidfile, pids, 2), 2);
  assert_true(pid_gone(pids[0], 2000)); /* the background sleep */
  assert_true(pid_gone(pids[1], 2000)); /* the shell */
}

/* A group that ignores SIGTERM is killed after kill_grace_ms. */
static void test_exec_sigkill_after_grace(void **state) {
  env_t *e = *state;
  char script[512];
  fc_exec_options_t opts;
  fc_node_t *n;
  long pids[2];
  uint64_t t0, dt;
  fc_exec_options_init(&opts);
  opts.kill_grace_ms = 300;
  snprintf(script, sizeof script, "trap '' TERM; sleep 30 & echo $! > %s; echo $$ >> %s; sleep 30",
           e->pidfile, e->pidfile);
  n = add_sh(e, "stubborn", script, &opts);
  assert_int_equal(fc_node_set_timeout(n, 200), 0);
  t0 = now_ms();
  assert_int_equal(run_wf(e, NULL, NULL), FC_WORKFLOW_FAILED);
  dt = now_ms() - t0;
  assert_true(dt >= 450); /* 200 ms timeout + 300 ms grace, minus slack */
  assert_true(dt < 3000);
  assert_int_equal(final_status(e, "stubborn"), FC_NODE_TIMED_OUT);
  assert_int_equal(read_pids(e->pidfile, pids, 2), 2);
  assert_true(pid_gone(pids[0], 2000));
  assert_true(pid_gone(pids[1], 2000));
}

/* ---- exec: a grandchild that leaves the group keeps stdout open ------------------- */

/* The script for a grandchild that leaves the process group (setsid), keeps
 * the node's stdout and stderr open, writes its pid to e->strayfile and
 * sleeps; `rest` follows in the shell. */
static void escape_script(env_t *e, char *buf, size_t size, const char *rest) {
  snprintf(buf, size, "setsid sh -c 'echo $$ >> %s; exec sleep 20' & %s", e->strayfile, rest);
}

/* The stray's pid, once it wrote it (within 2 s); 0 if it never did. */
static long stray_pid(env_t *e) {
  long pid = 0;
  uint64_t end = now_ms() + 2000;
  while (read_pids(e->strayfile, &pid, 1) == 0 && now_ms() < end) {
    struct timespec ts = {0, 10 * 1000000};
    nanosleep(&ts, NULL);
  }
  return pid;
}

/* The shell exits at once; the stray holds stdout: kill_grace_ms after the
 * exit the node stops reading and completes with what it read. */
static void test_exec_escaped_grandchild(void **state) {
  env_t *e = *state;
  char script[512];
  fc_exec_options_t opts;
  json_t *out = NULL;
  long pid;
  uint64_t t0, dt;
  fc_exec_options_init(&opts);
  opts.kill_grace_ms = 300;
  escape_script(e, script, sizeof script, "echo '{\"ok\":1}'");
  add_sh(e, "esc", script, &opts);
  t0 = now_ms();
  assert_int_equal(run_wf(e, NULL, &out), FC_WORKFLOW_COMPLETED);
  dt = now_ms() - t0;
  pid = stray_pid(e);
  assert_true(pid > 0);
  assert_true(dt >= 250); /* the grace after the exit, minus slack */
  assert_true(dt < 3000); /* not the stray's 20 s */
  assert_int_equal(final_status(e, "esc"), FC_NODE_COMPLETED);
  assert_int_equal(json_integer_value(json_object_get(output_of(out, "esc"), "ok")), 1);
  /* Out of our reach: still alive (the teardown kills it). */
  assert_int_equal(kill((pid_t)pid, 0), 0);
  json_decref(out);
}

/* Same with a timeout: the group is killed, the node ends timed_out, and
 * the run ends about kill_grace_ms after the timeout. */
static void test_exec_escaped_grandchild_timeout(void **state) {
  env_t *e = *state;
  char script[512];
  fc_exec_options_t opts;
  fc_node_t *n;
  uint64_t t0, dt;
  fc_exec_options_init(&opts);
  opts.kill_grace_ms = 300;
  escape_script(e, script, sizeof script, "echo $$ > ");
  snprintf(script + strlen(script), sizeof script - strlen(script), "%s; sleep 20", e->pidfile);
  n = add_sh(e, "esc", script, &opts);
  assert_int_equal(fc_node_set_timeout(n, 300), 0);
  t0 = now_ms();
  assert_int_equal(run_wf(e, NULL, NULL), FC_WORKFLOW_FAILED);
  dt = now_ms() - t0;
  assert_true(stray_pid(e) > 0);
  assert_true(dt >= 550); /* 300 ms timeout + 300 ms grace, minus slack */
  assert_true(dt < 3000);
  assert_int_equal(final_status(e, "esc"), FC_NODE_TIMED_OUT);
  assert_string_equal(last_error(e, "esc")->error_type, "timeout");
  {
    long shell = 0;
    assert_int_equal(read_pids(e->pidfile, &shell, 1), 1);
    assert_true(pid_gone(shell, 2000)); /* the group was killed */
  }
}

/* kill_grace_ms 0: the pipes are drained at the exit, without waiting, and
 * nothing the command wrote before it exited is lost (200 000 bytes: more
 * than the socket buffer, so the last of it is still there at the exit). */
static void test_exec_escaped_grandchild_no_grace(void **state) {
  env_t *e = *state;
  char script[512];
  fc_exec_options_t opts;
  json_t *out = NULL;
  const char *text;
  uint64_t t0;
  size_t i;
  fc_exec_options_init(&opts);
  opts.kill_grace_ms = 0;
  escape_script(e, script, sizeof script, "head -c 200000 /dev/zero | tr '\\0' a");
  add_sh(e, "esc", script, &opts);
  t0 = now_ms();
  assert_int_equal(run_wf(e, NULL, &out), FC_WORKFLOW_COMPLETED);
  assert_true(now_ms() - t0 < 3000);
  assert_true(stray_pid(e) > 0);
  text = json_string_value(json_object_get(output_of(out, "esc"), "stdout"));
  assert_non_null(text);
  assert_int_equal(strlen(text), 200000);
  for (i = 0; i < 200000; i++)
    if (text[i] != 'a')
      fail_msg("byte %zu is 0x%02x", i, (unsigned)(unsigned char)text[i]);
  json_decref(out);
}

/* A timed-out attempt is retried; the retry succeeds. */
static void test_exec_retry_after_failure(void **state) {
  env_t *e = *state;
  json_t *out = NULL;
  fc_node_t *n;
  n = add_sh(e, "flaky",
             "if [ \"$FLOWCORE_ATTEMPT\" -lt 3 ]; then echo \"attempt $FLOWCORE_ATTEMPT\" >&2; "
             "exit 1; fi; printf '{\"attempt\": %s}' \"$FLOWCORE_ATTEMPT\"",
             NULL);
  assert_int_equal(fc_node_set_retries(n, 3, 1, 5), 0);
  assert_int_equal(run_wf(e, NULL, &out), FC_WORKFLOW_COMPLETED);
  assert_int_equal(json_integer_value(json_object_get(output_of(out, "flaky"), "attempt")), 3);
  assert_int_equal(fc_recorder_count(e->rec, FC_EVENT_ERROR, "flaky"), 2);
  json_decref(out);
}

static void cancel_cb(uv_timer_t *t) {
  env_t *e = t->data;
  assert_int_equal(fc_run_cancel(e->run), 0);
  uv_close((uv_handle_t *)t, NULL);
}

/* fc_run_cancel stops a running exec: the node ends cancelled, the process
 * group is gone once the run has closed. */
static void test_exec_cancel(void **state) {
  env_t *e = *state;
  char script[512];
  fc_error_t err;
  long pids[2];
  uint64_t t0;
  snprintf(script, sizeof script, "sleep 30 & echo $! > %s; echo $$ >> %s; sleep 30", e->pidfile,
           e->pidfile);
  add_sh(e, "busy", script, NULL);
  assert_int_equal(fc_workflow_add_sleep_node(e->wf, "nap", 30000, NULL), 0);
  fc_error_clear(&err);
  assert_int_equal(fc_run_new(&e->run, &e->loop, e->wf, e->mgr, &err), 0);
  assert_int_equal(fc_run_start(e->run, NULL, on_done, e), 0);
  assert_int_equal(uv_timer_init(&e->loop, &e->cancel_timer), 0);
  e->cancel_timer.data = e;
  assert_int_equal(uv_timer_start(&e->cancel_timer, cancel_cb, 300, 0), 0);
  t0 = now_ms();
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(e->done, 1);
  assert_int_equal(fc_run_status(e->run), FC_WORKFLOW_CANCELLED);
  fc_run_close(e->run, on_closed, e);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(e->closed, 1);
  assert_true(now_ms() - t0 < 1800);
  assert_int_equal(final_status(e, "busy"), FC_NODE_CANCELLED);
  assert_int_equal(final_status(e, "nap"), FC_NODE_CANCELLED);
  assert_int_equal(fc_recorder_count(e->rec, FC_EVENT_ERROR, NULL), 0);
  assert_int_equal(read_pids(e->pidfile, pids, 2), 2);
  assert_true(pid_gone(pids[0], 2000));
  assert_true(pid_gone(pids[1], 2000));
}

/* Closing a run while an exec runs: close_cb waits for the process. */
static void test_exec_close_while_running(void **state) {
  env_t *e = *state;
  fc_error_t err;
  long pid = 0;
  char script[256];
  snprintf(script, sizeof script, "echo $$ > %s; exec sleep 30", e->pidfile);
  add_sh(e, "busy", script, NULL);
  fc_error_clear(&err);
  assert_int_equal(fc_run_new(&e->run, &e->loop, e->wf, e->mgr, &err), 0);
  assert_int_equal(fc_run_start(e->run, NULL, on_done, e), 0);
  /* Let it spawn, then close. */
  while (read_pids(e->pidfile, &pid, 1) == 0)
    uv_run(&e->loop, UV_RUN_NOWAIT);
  fc_run_close(e->run, on_closed, e);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(e->done, 1);
  assert_int_equal(e->closed, 1);
  assert_true(pid_gone(pid, 2000));
}

/* ---- exec: the exit without SIGCHLD ----------------------------------------------- */

/* SIGCHLD handlers put over libuv's while the child runs: one that does
 * nothing (libuv never hears of the exit), one that reaps every child
 * (the exit status is gone before anybody in flowcore asks). */
static void sigchld_ignore(int sig) { (void)sig; }

static void sigchld_reap_all(int sig) {
  int saved = errno;
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

static void (*g_sigchld_handler)(int);

static void replace_sigchld_cb(uv_timer_t *t) {
  struct sigaction sa;
  (void)t;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = g_sigchld_handler;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGCHLD, &sa, NULL), 0);
}

static void guard_cb(uv_timer_t *t) {
  env_t *e = t->data;
  if (e->run != NULL && e->done == 0)
    (void)fc_run_cancel(e->run); /* the exit was never seen: fail, not hang */
}

/* Runs e->wf with g_sigchld_handler in place of libuv's from 100 ms after
 * the start; a guard cancels the run after 10 s. Restores SIGCHLD's
 * disposition of before. Returns the run's status. */
static fc_workflow_status_t run_without_sigchld(env_t *e, void (*handler)(int)) {
  struct sigaction before;
  uv_timer_t swap, guard;
  fc_workflow_status_t st;
  fc_error_t err;
  assert_int_equal(sigaction(SIGCHLD, NULL, &before), 0);
  g_sigchld_handler = handler;
  fc_error_clear(&err);
  assert_int_equal(fc_run_new(&e->run, &e->loop, e->wf, e->mgr, &err), 0);
  assert_int_equal(fc_run_start(e->run, NULL, on_done, e), 0);
  assert_int_equal(uv_timer_init(&e->loop, &swap), 0);
  assert_int_equal(uv_timer_start(&swap, replace_sigchld_cb, 100, 0), 0);
  assert_int_equal(uv_timer_init(&e->loop, &guard), 0);
  guard.data = e;
  assert_int_equal(uv_timer_start(&guard, guard_cb, 10000, 0), 0);
  uv_unref((uv_handle_t *)&guard);
  while (e->done == 0 && uv_run(&e->loop, UV_RUN_ONCE) != 0) {
  }
  assert_int_equal(e->done, 1);
  st = fc_run_status(e->run);
  uv_close((uv_handle_t *)&swap, NULL);
  uv_close((uv_handle_t *)&guard, NULL);
  fc_run_close(e->run, on_closed, e);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(e->closed, 1);
  assert_int_equal(sigaction(SIGCHLD, &before, NULL), 0);
  return st;
}

/* libuv's SIGCHLD handler is replaced while the command runs: the exit is
 * found by the reap timer, with its status, and the next node runs. */
static void test_exec_exit_without_sigchld(void **state) {
  env_t *e = *state;
  fc_node_t *n;
  const fc_recorded_event_t *ev;
  add_sh(e, "late", "sleep 0.4; echo '{\"rows\": 2}'", NULL);
  n = add_sh(e, "after", "sleep 0.3; exit 3", NULL);
  assert_int_equal(fc_node_add_dep(n, "late"), 0);
  assert_int_equal(run_without_sigchld(e, sigchld_ignore), FC_WORKFLOW_FAILED);
  assert_int_equal(final_status(e, "late"), FC_NODE_COMPLETED);
  assert_int_equal(final_status(e, "after"), FC_NODE_FAILED);
  ev = last_error(e, "after");
  assert_string_equal(ev->error_type, "exit_status");
  assert_non_null(strstr(ev->error_message, "exited with status 3"));
}

/* A handler that reaps every child takes the status first: the attempt
 * fails with exec_error saying so, instead of waiting for ever. */
static void test_exec_exit_status_taken(void **state) {
  env_t *e = *state;
  const fc_recorded_event_t *ev;
  add_sh(e, "taken", "sleep 1", NULL);
  assert_int_equal(run_without_sigchld(e, sigchld_reap_all), FC_WORKFLOW_FAILED);
  assert_int_equal(final_status(e, "taken"), FC_NODE_FAILED);
  ev = last_error(e, "taken");
  assert_string_equal(ev->error_type, "exec_error");
  assert_non_null(strstr(ev->error_message, "collected by another waitpid()"));
}

/* ---- exec: C API arguments -------------------------------------------------------- */

static void test_exec_bad_arguments(void **state) {
  env_t *e = *state;
  const char *argv[] = {"/bin/true", NULL};
  const char *empty[] = {"", NULL};
  const char *none[] = {NULL};
  const char *bad_env[] = {"NOEQUALS", NULL};
  const char *bad_env2[] = {"=value", NULL};
  fc_exec_options_t opts;
  fc_node_t *n = (fc_node_t *)1;
  assert_int_equal(fc_workflow_add_exec_node(e->wf, "a", NULL, NULL, &n), FC_EINVAL);
  assert_null(n);
  assert_int_equal(fc_workflow_add_exec_node(e->wf, "a", none, NULL, NULL), FC_EINVAL);
  assert_int_equal(fc_workflow_add_exec_node(e->wf, "a", empty, NULL, NULL), FC_EINVAL);
  assert_int_equal(fc_workflow_add_exec_node(NULL, "a", argv, NULL, NULL), FC_EINVAL);
  assert_int_equal(fc_workflow_add_exec_node(e->wf, NULL, argv, NULL, NULL), FC_EINVAL);
  fc_exec_options_init(&opts);
  assert_int_equal(opts.max_output_bytes, FC_EXEC_DEFAULT_MAX_OUTPUT);
  assert_int_equal(opts.kill_grace_ms, FC_EXEC_DEFAULT_KILL_GRACE_MS);
  opts.env = bad_env;
  assert_int_equal(fc_workflow_add_exec_node(e->wf, "a", argv, &opts, NULL), FC_EINVAL);
  opts.env = bad_env2;
  assert_int_equal(fc_workflow_add_exec_node(e->wf, "a", argv, &opts, NULL), FC_EINVAL);
  fc_exec_options_init(&opts);
  opts.max_output_bytes = 0;
  assert_int_equal(fc_workflow_add_exec_node(e->wf, "a", argv, &opts, NULL), FC_EINVAL);
  fc_exec_options_init(&opts);
  opts.cwd = "";
  assert_int_equal(fc_workflow_add_exec_node(e->wf, "a", argv, &opts, NULL), FC_EINVAL);
  assert_int_equal(fc_workflow_node_count(e->wf), 0);
  /* The configuration is copied: the caller's strings may go away. */
  {
    char prog[] = "/bin/sh", c[] = "-c", script[] = "printf copied";
    const char *dyn[] = {prog, c, script, NULL};
    json_t *out = NULL;
    assert_int_equal(fc_workflow_add_exec_node(e->wf, "copy", dyn, NULL, NULL), 0);
    memset(script, 'X', sizeof script - 1);
    memset(prog, 'X', sizeof prog - 1);
    assert_int_equal(run_wf(e, NULL, &out), FC_WORKFLOW_COMPLETED);
    assert_string_equal(json_string_value(json_object_get(output_of(out, "copy"), "stdout")),
                        "copied");
    json_decref(out);
  }
  /* Frozen: nothing added, nothing leaked. */
  assert_int_equal(fc_workflow_add_exec_node(e->wf, "late", argv, NULL, NULL), FC_EFROZEN);
  assert_int_equal(fc_workflow_add_sleep_node(e->wf, "late", 1, NULL), FC_EFROZEN);
  assert_int_equal(fc_workflow_add_set_node(e->wf, "late", NULL, NULL), FC_EFROZEN);
  assert_int_equal(fc_workflow_add_fail_node(e->wf, "late", "m", FC_SEVERITY_ERROR, NULL, NULL),
                   FC_EFROZEN);
}

/* ---- sleep, pass, set, fail ---------------------------------------------------------- */

static void test_sleep(void **state) {
  env_t *e = *state;
  json_t *out = NULL;
  fc_node_t *n;
  uint64_t t0 = now_ms();
  assert_int_equal(fc_workflow_add_sleep_node(e->wf, "nap", 60, &n), 0);
  assert_string_equal(fc_node_type(n), "sleep");
  assert_int_equal(fc_workflow_add_sleep_node(e->wf, "zero", 0, NULL), 0);
  assert_int_equal(run_wf(e, NULL, &out), FC_WORKFLOW_COMPLETED);
  assert_true(now_ms() - t0 >= 55);
  assert_int_equal(json_integer_value(json_object_get(output_of(out, "nap"), "slept_ms")), 60);
  assert_int_equal(json_integer_value(json_object_get(output_of(out, "zero"), "slept_ms")), 0);
  json_decref(out);
}

static void test_sleep_timeout(void **state) {
  env_t *e = *state;
  fc_node_t *n;
  uint64_t t0 = now_ms();
  assert_int_equal(fc_workflow_add_sleep_node(e->wf, "long", 60000, &n), 0);
  assert_int_equal(fc_node_set_timeout(n, 50), 0);
  assert_int_equal(run_wf(e, NULL, NULL), FC_WORKFLOW_FAILED);
  assert_true(now_ms() - t0 < 2000);
  assert_int_equal(final_status(e, "long"), FC_NODE_TIMED_OUT);
}

static void test_pass(void **state) {
  env_t *e = *state;
  json_t *out = NULL, *input = json_pack("{s:[i,i]}", "v", 1, 2), *p, *five = json_integer(5);
  fc_node_t *n;
  assert_int_equal(fc_workflow_add_set_node(e->wf, "src", five, NULL), 0);
  json_decref(five);
  assert_int_equal(fc_workflow_add_pass_node(e->wf, "p", &n), 0);
  assert_string_equal(fc_node_type(n), "pass");
  assert_int_equal(fc_node_add_dep(n, "src"), 0);
  assert_int_equal(run_wf(e, input, &out), FC_WORKFLOW_COMPLETED);
  p = output_of(out, "p");
  assert_true(json_equal(json_object_get(p, "input"), input));
  assert_int_equal(json_integer_value(json_object_get(p, "src")), 5);
  assert_int_equal(json_object_size(p), 2);
  json_decref(out);
  json_decref(input);
}

static void test_set(void **state) {
  env_t *e = *state;
  json_t *constant = json_pack("{s:s, s:[i]}", "route", "x", "list", 1);
  json_t *out1 = NULL, *out2 = NULL;
  fc_node_t *n;
  assert_int_equal(fc_workflow_add_set_node(e->wf, "c", constant, &n), 0);
  assert_string_equal(fc_node_type(n), "set");
  assert_int_equal(fc_workflow_add_set_node(e->wf, "nul", NULL, NULL), 0);
  /* The constant was copied: changing ours changes nothing. */
  json_object_set_new(constant, "route", json_string("changed"));
  assert_int_equal(run_wf(e, NULL, &out1), FC_WORKFLOW_COMPLETED);
  assert_string_equal(json_string_value(json_object_get(output_of(out1, "c"), "route")), "x");
  assert_true(json_is_null(output_of(out1, "nul")));
  /* Each run gets its own copy: changing one output changes nothing else. */
  json_array_append_new(json_object_get(output_of(out1, "c"), "list"), json_integer(2));
  e->done = e->closed = 0;
  assert_int_equal(run_wf(e, NULL, &out2), FC_WORKFLOW_COMPLETED);
  assert_int_equal(json_array_size(json_object_get(output_of(out2, "c"), "list")), 1);
  assert_true(output_of(out1, "c") != output_of(out2, "c"));
  json_decref(out1);
  json_decref(out2);
  json_decref(constant);
}

/* Each attempt's copy is the constant exactly: every type, a real, a
 * string with a NUL inside, nesting, key order. (A key with a NUL inside
 * does not survive fc_workflow_add_set_node: jansson's json_deep_copy
 * keeps such a key up to its NUL.) */
static void test_set_copy_exact(void **state) {
  env_t *e = *state;
  json_t *constant =
      json_pack("{s:i, s:f, s:b, s:b, s:n, s:[s, [i, {s:[]}], {}], s:{s:s}}", "int", -42, "real",
                2.5, "t", 1, "f", 0, "null", "list", "a", 7, "deep", "obj", "k", "v");
  json_t *out = NULL, *c;
  void *ia, *ib;
  assert_non_null(constant);
  assert_int_equal(json_object_set_new(constant, "nul", json_stringn("a\0b", 3)), 0);
  assert_int_equal(fc_workflow_add_set_node(e->wf, "c", constant, NULL), 0);
  assert_int_equal(run_wf(e, NULL, &out), FC_WORKFLOW_COMPLETED);
  c = output_of(out, "c");
  assert_true(json_equal(c, constant));
  assert_int_equal(json_string_length(json_object_get(c, "nul")), 3);
  for (ia = json_object_iter(constant), ib = json_object_iter(c); ia != NULL && ib != NULL;
       ia = json_object_iter_next(constant, ia), ib = json_object_iter_next(c, ib)) {
    assert_int_equal(json_object_iter_key_len(ia), json_object_iter_key_len(ib));
    assert_memory_equal(json_object_iter_key(ia), json_object_iter_key(ib),
                        json_object_iter_key_len(ia));
  }
  assert_null(ia);
  assert_null(ib);
  json_decref(out);
  json_decref(constant);
}

/* jansson's allocations while a counter is installed (json_set_alloc_funcs). */
static size_t json_allocs;
static void *count_malloc(size_t n) {
  json_allocs++;
  return malloc(n);
}

/* Runs e->wf with manager m (may be NULL) to the end, close included,
 * counting jansson's allocations of the run in json_allocs, without the
 * recorder's contract check (it may have seen part of the run). Returns
 * the status; *out gets a new reference to the workflow output. */
static fc_workflow_status_t run_counted(env_t *e, fc_manager_t *m, json_t **out) {
  fc_workflow_status_t st;
  fc_error_t err;
  json_malloc_t jm;
  json_free_t jf;
  fc_error_clear(&err);
  e->done = e->closed = 0;
  if (fc_run_new(&e->run, &e->loop, e->wf, m, &err) != 0)
    fail_msg("fc_run_new: %s", err.text);
  assert_int_equal(fc_run_start(e->run, NULL, on_done, e), 0);
  json_get_alloc_funcs(&jm, &jf);
  json_allocs = 0;
  json_set_alloc_funcs(count_malloc, free);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  json_set_alloc_funcs(jm, jf);
  assert_int_equal(e->done, 1);
  st = fc_run_status(e->run);
  *out = json_incref(fc_run_output(e->run));
  fc_run_close(e->run, on_closed, e);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(e->closed, 1);
  return st;
}

/* Nodes that never read their input (set, sleep, fail) get none unless a
 * handler listens to node_start, and a set node with successors hands them
 * its constant itself (payloads are read-only); only a sink's output is a
 * copy. So a chain of set nodes run without handlers makes no JSON per
 * node, while the nodes that read their input still get it whole. */
static void test_set_shares_no_input(void **state) {
  enum { N = 100 };
  env_t *e = *state;
  json_t *k = json_pack("{s:[i]}", "list", 1), *out = NULL, *shared;
  fc_node_t *n;
  const fc_recorded_event_t *ev;
  char id[16], dep[16];
  for (int i = 0; i < N; i++) {
    snprintf(id, sizeof id, "s%d", i);
    snprintf(dep, sizeof dep, "s%d", i - 1);
    assert_int_equal(fc_workflow_add_set_node(e->wf, id, k, &n), 0);
    if (i > 0)
      assert_int_equal(fc_node_add_dep(n, dep), 0);
  }
  /* s99's successors: a set sink first (it takes no input), then two pass
   * nodes sharing one input object. */
  assert_int_equal(fc_workflow_add_set_node(e->wf, "t", k, &n), 0);
  assert_int_equal(fc_node_add_dep(n, "s99"), 0);
  assert_int_equal(fc_workflow_add_pass_node(e->wf, "p1", &n), 0);
  assert_int_equal(fc_node_add_dep(n, "s99"), 0);
  assert_int_equal(fc_workflow_add_pass_node(e->wf, "p2", &n), 0);
  assert_int_equal(fc_node_add_dep(n, "s99"), 0);

  /* No handlers. */
  assert_int_equal(run_counted(e, NULL, &out), FC_WORKFLOW_COMPLETED);
  /* The sink's copy, the pass nodes' one input and the workflow output:
   * a few dozen at most (each node making an input and a copy: 900). */
  assert_true(json_allocs < 40);
  shared = json_object_get(output_of(out, "p1"), "s99");
  assert_true(json_equal(shared, k));
  assert_true(json_object_get(output_of(out, "p2"), "s99") == shared);
  assert_non_null(json_object_get(output_of(out, "p1"), "input"));
  assert_true(json_equal(output_of(out, "t"), k));
  assert_true(output_of(out, "t") != shared);
  /* Changing the workflow's output leaves the constant alone. */
  json_array_append_new(json_object_get(output_of(out, "t"), "list"), json_integer(2));
  assert_int_equal(json_array_size(json_object_get(shared, "list")), 1);
  json_decref(out);

  /* With the recorder listening to node_start, every node's input is made
   * and shown. */
  e->done = e->closed = 0;
  assert_int_equal(run_wf(e, NULL, NULL), FC_WORKFLOW_COMPLETED);
  ev = fc_recorder_last(e->rec, FC_EVENT_NODE_START, "s50");
  assert_non_null(ev);
  assert_true(json_is_object(ev->input) && json_object_size(ev->input) == 2);
  assert_true(json_equal(json_object_get(ev->input, "s49"), k));
  ev = fc_recorder_last(e->rec, FC_EVENT_NODE_START, "t");
  assert_non_null(ev);
  assert_true(json_equal(json_object_get(ev->input, "s99"), k));
  json_decref(k);
}

/* Adds the recorder's handler to the manager (env_t *) at the first error. */
static int add_recorder_on_error(void *self, const fc_event_t *ev) {
  env_t *e = self;
  fc_handler_t h;
  (void)ev;
  if (fc_manager_count(e->mgr) > 1)
    return 0;
  assert_int_equal(fc_recorder_handler(e->rec, &h), 0);
  return fc_manager_add(e->mgr, &h, 0, NULL);
}

/* A node that took no input on its first attempt, because nothing
 * listened, gets one on a retry once a node_start handler was added. */
static void test_no_input_then_listener(void **state) {
  env_t *e = *state;
  fc_handler_t h = {.name = "adder", .on_error = add_recorder_on_error};
  const fc_recorded_event_t *ev;
  json_t *five = json_integer(5), *out = NULL;
  fc_node_t *n;
  /* Only the adder at first. */
  fc_manager_free(e->mgr);
  assert_int_equal(fc_manager_new(&e->mgr), 0);
  h.self = e;
  assert_int_equal(fc_manager_add(e->mgr, &h, 0, NULL), 0);
  assert_int_equal(fc_workflow_add_set_node(e->wf, "a", five, NULL), 0);
  assert_int_equal(fc_workflow_add_fail_node(e->wf, "f", "no", FC_SEVERITY_ERROR, NULL, &n), 0);
  assert_int_equal(fc_node_add_dep(n, "a"), 0);
  assert_int_equal(fc_node_set_retries(n, 1, 0, 0), 0);
  assert_int_equal(run_counted(e, e->mgr, &out), FC_WORKFLOW_FAILED);
  json_decref(out);
  assert_int_equal(fc_recorder_count(e->rec, FC_EVENT_NODE_START, "f"), 1);
  ev = fc_recorder_last(e->rec, FC_EVENT_NODE_START, "f");
  assert_non_null(ev);
  assert_int_equal(ev->attempt, 2);
  assert_true(json_is_object(ev->input));
  assert_int_equal(json_integer_value(json_object_get(ev->input, "a")), 5);
  assert_non_null(json_object_get(ev->input, "input"));
  json_decref(five);
}

static void test_fail(void **state) {
  env_t *e = *state;
  const fc_recorded_event_t *ev;
  fc_node_t *n;
  assert_int_equal(
      fc_workflow_add_fail_node(e->wf, "alert", "bad data", FC_SEVERITY_CRITICAL, NULL, &n), 0);
  assert_string_equal(fc_node_type(n), "fail");
  assert_int_equal(fc_node_set_retries(n, 1, 0, 0), 0);
  assert_int_equal(
      fc_workflow_add_fail_node(e->wf, "warn", "careful", FC_SEVERITY_WARNING, "custom", NULL), 0);
  assert_int_equal(fc_workflow_add_fail_node(e->wf, "x", "", FC_SEVERITY_ERROR, NULL, NULL),
                   FC_EINVAL);
  assert_int_equal(fc_workflow_add_fail_node(e->wf, "x", NULL, FC_SEVERITY_ERROR, NULL, NULL),
                   FC_EINVAL);
  assert_int_equal(fc_workflow_add_fail_node(e->wf, "x", "m", (fc_severity_t)9, NULL, NULL),
                   FC_EINVAL);
  assert_int_equal(run_wf(e, NULL, NULL), FC_WORKFLOW_FAILED);
  assert_int_equal(fc_recorder_count(e->rec, FC_EVENT_ERROR, "alert"), 2);
  ev = last_error(e, "alert");
  assert_string_equal(ev->error_type, "fail");
  assert_string_equal(ev->error_message, "bad data");
  assert_int_equal(ev->error_severity, FC_SEVERITY_CRITICAL);
  ev = last_error(e, "warn");
  assert_string_equal(ev->error_type, "custom");
  assert_string_equal(ev->error_message, "careful");
  assert_int_equal(ev->error_severity, FC_SEVERITY_WARNING);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_exec_echoes_input, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_plain_text_and_scalars, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_invalid_utf8_sanitized, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_large_io, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_many_parallel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_env_and_cwd, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_exit_status, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_exit_without_sigchld, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_exit_status_taken, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_display_cut, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_stderr_tail, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_signal, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_missing_binary, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_output_too_large, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_timeout_kills_group, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_sigkill_after_grace, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_escaped_grandchild, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_escaped_grandchild_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_escaped_grandchild_no_grace, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_retry_after_failure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_close_while_running, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_bad_arguments, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sleep, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sleep_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pass, setup, teardown),
      cmocka_unit_test_setup_teardown(test_set, setup, teardown),
      cmocka_unit_test_setup_teardown(test_set_copy_exact, setup, teardown),
      cmocka_unit_test_setup_teardown(test_set_shares_no_input, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_input_then_listener, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fail, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

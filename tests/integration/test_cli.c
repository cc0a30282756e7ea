/* Integration tests of the `flowcore` command line (src/cli/), driven as a
 * user drives it: fork + exec of FLOWCORE_BINARY_DIR/flowcore with a clean
 * environment, capturing stdout, stderr and the exit status, against a
 * private PostgreSQL (tests/support/pg_server). JSON outputs are parsed
 * back with jansson; the database is checked with SQL. */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fc_test.h"
#include "pg_server.h"

#include <jansson.h>

#define CLI FLOWCORE_BINARY_DIR "/flowcore"
#define DATA FLOWCORE_SOURCE_DIR "/tests/data/cli"
#define SECRET "CliPw-Zq7x9-Secret"
#define CALL_TIMEOUT_MS 60000

extern char **environ;

static fc_test_pg_t g_pg;
static char g_db[FC_TEST_PG_CONNINFO_LENGTH];             /* migrated, for runs and history */
static char g_db_secret[FC_TEST_PG_CONNINFO_LENGTH + 64]; /* the same + password=SECRET */
static char g_dbname[64];
static char g_tmp[64]; /* a scratch directory */
/* When set, the next commands' stdout is this file (e.g. "/dev/full")
 * instead of a pipe; their p->out stays empty. */
static const char *g_child_stdout;

/* ---- running the command ----------------------------------------------------- */

typedef struct {
  pid_t pid;
  int out_fd, err_fd;
  char *out, *err; /* NUL-terminated, malloc'd */
  size_t out_len, err_len;
  int status; /* exit code, or 128 + signal */
} proc_t;

static void append(char **buf, size_t *len, const char *data, size_t n) {
  char *p = realloc(*buf, *len + n + 1);
  assert_non_null(p);
  memcpy(p + *len, data, n);
  *len += n;
  p[*len] = '\0';
  *buf = p;
}

/* A copy of the environment without anything that names a database or
 * changes flowcore's defaults, plus `extra` ("NAME=value", NULL-ended). */
static char **child_env(const char *const *extra) {
  size_t n = 0, i, k = 0;
  char **env;
  while (environ[n] != NULL)
    n++;
  for (i = 0; extra != NULL && extra[i] != NULL; i++)
    n++;
  env = calloc(n + 1, sizeof *env);
  assert_non_null(env);
  for (i = 0; environ[i] != NULL; i++) {
    const char *e = environ[i];
    if (strncmp(e, "PG", 2) == 0 || strncmp(e, "FLOWCORE_", 9) == 0 ||
        strncmp(e, "DATABASE_URL=", 13) == 0)
      continue;
    env[k++] = environ[i];
  }
  for (i = 0; extra != NULL && extra[i] != NULL; i++)
    env[k++] = (char *)extra[i];
  env[k] = NULL;
  return env;
}

static void cli_start(proc_t *p, const char *const *args, const char *const *env_extra) {
  int out[2], err[2];
  const char *argv[64];
  char **env;
  size_t i;
  memset(p, 0, sizeof *p);
  argv[0] = CLI;
  for (i = 0; args[i] != NULL; i++) {
    assert_true(i + 2 < 64);
    argv[i + 1] = args[i];
  }
  argv[i + 1] = NULL;
  env = child_env(env_extra);
  assert_int_equal(pipe(out), 0);
  assert_int_equal(pipe(err), 0);
  p->pid = fork();
  assert_true(p->pid >= 0);
  if (p->pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    signal(SIGPIPE, SIG_DFL); /* ignored in the test process, not in flowcore */
    dup2(devnull, 0);
    if (g_child_stdout != NULL) {
      int fd = open(g_child_stdout, O_WRONLY);
      if (fd < 0)
        _exit(126);
      dup2(fd, 1);
      close(fd);
    } else {
      dup2(out[1], 1);
    }
    dup2(err[1], 2);
    close(out[0]);
    close(err[0]);
    close(out[1]);
    close(err[1]);
    execve(CLI, (char *const *)argv, env);
    _exit(127);
  }
  free(env);
  close(out[1]);
  close(err[1]);
  p->out_fd = out[0];
  p->err_fd = err[0];
  p->out = calloc(1, 1);
  p->err = calloc(1, 1);
  assert_non_null(p->out);
  assert_non_null(p->err);
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits up to wait_ms for output and reads what is there. */
static void pump(proc_t *p, int wait_ms) {
  struct pollfd fds[2];
  nfds_t n = 0, i;
  int rc;
  if (p->out_fd >= 0)
    fds[n++] = (struct pollfd){.fd = p->out_fd, .events = POLLIN};
  if (p->err_fd >= 0)
    fds[n++] = (struct pollfd){.fd = p->err_fd, .events = POLLIN};
  if (n == 0)
    return;
  rc = poll(fds, n, wait_ms);
  if (rc < 0 && errno == EINTR)
    return;
  assert_true(rc >= 0);
  for (i = 0; i < n; i++) {
    char buf[8192];
    ssize_t got;
    if (fds[i].revents == 0)
      continue;
    got = read(fds[i].fd, buf, sizeof buf);
    if (got > 0) {
      if (fds[i].fd == p->out_fd)
        append(&p->out, &p->out_len, buf, (size_t)got);
      else
        append(&p->err, &p->err_len, buf, (size_t)got);
    } else if (got == 0 || errno != EINTR) {
      if (fds[i].fd == p->out_fd)
        p->out_fd = -1;
      else
        p->err_fd = -1;
      close(fds[i].fd);
    }
  }
}

static void kill_and_fail(proc_t *p, const char *why) {
  kill(p->pid, SIGKILL);
  waitpid(p->pid, NULL, 0);
  fail_msg("%s; stderr so far:\n%s", why, p->err);
}

/* Reads both pipes until EOF, then reaps the process (killed and failed
 * after timeout_ms). */
static void cli_finish(proc_t *p, int timeout_ms) {
  int64_t deadline = mono_ms() + timeout_ms;
  int status = 0;
  while (p->out_fd >= 0 || p->err_fd >= 0) {
    int64_t left = deadline - mono_ms();
    if (left <= 0)
      kill_and_fail(p, "flowcore did not finish in time");
    pump(p, (int)(left > 1000 ? 1000 : left));
  }
  while (waitpid(p->pid, &status, 0) < 0)
    assert_int_equal(errno, EINTR);
  p->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Reads until stderr contains `needle` (killed and failed after
 * timeout_ms or at EOF). */
static void cli_wait_stderr(proc_t *p, const char *needle, int timeout_ms) {
  int64_t deadline = mono_ms() + timeout_ms;
  while (strstr(p->err, needle) == NULL) {
    int64_t left = deadline - mono_ms();
    if (left <= 0 || (p->out_fd < 0 && p->err_fd < 0)) {
      char why[256];
      snprintf(why, sizeof why, "flowcore did not print \"%s\"", needle);
      kill_and_fail(p, why);
    }
    pump(p, (int)(left > 200 ? 200 : left));
  }
}

static void proc_free(proc_t *p) {
  free(p->out);
  free(p->err);
  p->out = p->err = NULL;
}

/* Runs flowcore with args (NULL-terminated) and extra environment. */
static void cli_run_env(proc_t *p, const char *const *args, const char *const *env) {
  cli_start(p, args, env);
  cli_finish(p, CALL_TIMEOUT_MS);
}

#define CLI_RUN(p, ...)                                                                            \
  do {                                                                                             \
    const char *const args_[] = {__VA_ARGS__, NULL};                                               \
    cli_run_env((p), args_, NULL);                                                                 \
  } while (0)

/* Asserts the exit code, printing the outputs when it differs. */
static void expect_exit(const proc_t *p, int code) {
  if (p->status != code)
    fail_msg("exit code %d, expected %d\n--- stdout:\n%s\n--- stderr:\n%s", p->status, code, p->out,
             p->err);
}

static void expect_contains(const char *haystack, const char *needle) {
  if (strstr(haystack, needle) == NULL)
    fail_msg("expected to find \"%s\" in:\n%s", needle, haystack);
}

static void expect_absent(const char *haystack, const char *needle) {
  if (strstr(haystack, needle) != NULL)
    fail_msg("did not expect \"%s\" in:\n%s", needle, haystack);
}

/* The one value a query returns (on g_db) equals `expected`. */
#define EXPECT_DB_TEXT(expected, ...)                                                              \
  do {                                                                                             \
    char *t_ = fc_test_pg_text(g_db, __VA_ARGS__);                                                 \
    assert_string_equal(t_, (expected));                                                           \
    free(t_);                                                                                      \
  } while (0)

static json_t *parse_json(const char *text) {
  json_error_t jerr;
  json_t *v = json_loads(text, 0, &jerr);
  if (v == NULL)
    fail_msg("stdout is not JSON (%s at %d:%d):\n%s", jerr.text, jerr.line, jerr.column, text);
  return v;
}

static const char *jstr(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  if (!json_is_string(v))
    fail_msg("field \"%s\" is not a string", key);
  return json_string_value(v);
}

static json_int_t jint(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  if (!json_is_integer(v))
    fail_msg("field \"%s\" is not an integer", key);
  return json_integer_value(v);
}

/* flowcore run --json FILE --db g_db [more...]: returns the parsed result
 * (new reference); the exit code must be `code`. */
static json_t *run_json(const char *file, int code, const char *const *more) {
  const char *args[32];
  size_t n = 0, i;
  proc_t p;
  json_t *res;
  args[n++] = "run";
  args[n++] = file;
  args[n++] = "--json";
  args[n++] = "--db";
  args[n++] = g_db;
  for (i = 0; more != NULL && more[i] != NULL; i++)
    args[n++] = more[i];
  args[n] = NULL;
  cli_run_env(&p, args, NULL);
  expect_exit(&p, code);
  res = parse_json(p.out);
  assert_int_equal(jint(res, "exit_code"), code);
  proc_free(&p);
  return res;
}

/* ---- fixture -------------------------------------------------------------------- */

static int group_setup(void **state) {
  proc_t p;
  (void)state;
  if (fc_test_pg_start(&g_pg) != 0)
    return -1;
  snprintf(g_dbname, sizeof g_dbname, "fccli_%ld", (long)getpid());
  if (fc_test_pg_create_db(&g_pg, g_dbname, g_db, sizeof g_db) != 0)
    return -1;
  snprintf(g_db_secret, sizeof g_db_secret, "%s password=%s", g_db, SECRET);
  if (fc_test_tmpdir_make(g_tmp, sizeof g_tmp, "/tmp/fc-cli-XXXXXX") != 0)
    return -1;
  /* The schema, through the command under test. */
  {
    const char *const args[] = {"migrate", "--db", g_db, NULL};
    cli_run_env(&p, args, NULL);
  }
  if (p.status != 0) {
    fprintf(stderr, "flowcore migrate failed (%d):\n%s%s", p.status, p.out, p.err);
    proc_free(&p);
    return -1;
  }
  proc_free(&p);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  fc_test_tmpdir_remove(g_tmp);
  if (g_dbname[0] != '\0')
    (void)fc_test_pg_drop_db(&g_pg, g_dbname);
  fc_test_pg_stop(&g_pg);
  return 0;
}

/* ---- help, version, usage errors ---------------------------------------------------- */

static void test_help_and_version(void **state) {
  static const char *const cmds[] = {"run", "validate", "migrate", "history"};
  static const char *const subs[] = {"runs",    "show",   "errors", "stats",
                                     "running", "losses", "reap"};
  proc_t p;
  size_t i;
  (void)state;
  CLI_RUN(&p, "--help");
  expect_exit(&p, 0);
  expect_contains(p.out, "Usage: flowcore <command>");
  for (i = 0; i < 4; i++)
    expect_contains(p.out, cmds[i]);
  proc_free(&p);
  CLI_RUN(&p, "help");
  expect_exit(&p, 0);
  expect_contains(p.out, "Exit codes");
  proc_free(&p);

  for (i = 0; i < 4; i++) {
    char want[64];
    snprintf(want, sizeof want, "Usage: flowcore %s", cmds[i]);
    CLI_RUN(&p, cmds[i], "--help");
    expect_exit(&p, 0);
    expect_contains(p.out, want);
    proc_free(&p);
    CLI_RUN(&p, "help", cmds[i]);
    expect_exit(&p, 0);
    expect_contains(p.out, want);
    proc_free(&p);
  }
  CLI_RUN(&p, "run", "-h");
  expect_exit(&p, 0);
  for (i = 0; i < 9; i++) {
    static const char *const run_opts[] = {"--input",     "--db",           "--no-history",
                                           "--quiet",     "--json",         "--metrics-file",
                                           "--spool-dir", "--max-parallel", "--shutdown-deadline"};
    expect_contains(p.out, run_opts[i]);
  }
  proc_free(&p);
  for (i = 0; i < sizeof subs / sizeof subs[0]; i++) {
    char want[64];
    snprintf(want, sizeof want, "Usage: flowcore history %s", subs[i]);
    CLI_RUN(&p, "history", subs[i], "--help");
    expect_exit(&p, 0);
    expect_contains(p.out, want);
    proc_free(&p);
  }

  CLI_RUN(&p, "version");
  expect_exit(&p, 0);
  expect_contains(p.out, "flowcore " FC_VERSION_STRING);
  proc_free(&p);
  CLI_RUN(&p, "--version");
  expect_exit(&p, 0);
  expect_contains(p.out, FC_VERSION_STRING);
  proc_free(&p);

  /* Usage errors: a message and a hint, exit 2, nothing on stdout. */
  {
    const char *const none[] = {NULL};
    cli_run_env(&p, none, NULL);
    expect_exit(&p, 2);
    expect_contains(p.err, "Usage: flowcore");
    proc_free(&p);
  }
  CLI_RUN(&p, "frobnicate");
  expect_exit(&p, 2);
  expect_contains(p.err, "unknown command 'frobnicate'");
  expect_contains(p.err, "flowcore --help");
  assert_int_equal(p.out_len, 0);
  proc_free(&p);
  CLI_RUN(&p, "--frobnicate");
  expect_exit(&p, 2);
  expect_contains(p.err, "unknown option '--frobnicate'");
  proc_free(&p);
  CLI_RUN(&p, "run", "--bogus", DATA "/ok.json");
  expect_exit(&p, 2);
  expect_contains(p.err, "unknown option '--bogus'");
  expect_contains(p.err, "flowcore run --help");
  proc_free(&p);
  CLI_RUN(&p, "run");
  expect_exit(&p, 2);
  expect_contains(p.err, "missing the workflow FILE");
  proc_free(&p);
  CLI_RUN(&p, "run", DATA "/ok.json", "--max-parallel", "many");
  expect_exit(&p, 2);
  expect_contains(p.err, "--max-parallel");
  proc_free(&p);
  CLI_RUN(&p, "run", DATA "/ok.json", "--db");
  expect_exit(&p, 2);
  expect_contains(p.err, "needs a value");
  proc_free(&p);
  CLI_RUN(&p, "validate", DATA "/ok.json", DATA "/ok.json");
  expect_exit(&p, 2);
  expect_contains(p.err, "unexpected argument");
  proc_free(&p);
  CLI_RUN(&p, "migrate", "--stats");
  expect_exit(&p, 2);
  expect_contains(p.err, "unknown option '--stats'");
  proc_free(&p);
  CLI_RUN(&p, "history");
  expect_exit(&p, 2);
  expect_contains(p.err, "Usage: flowcore history");
  proc_free(&p);
  CLI_RUN(&p, "history", "everything");
  expect_exit(&p, 2);
  expect_contains(p.err, "unknown history subcommand 'everything'");
  proc_free(&p);
  CLI_RUN(&p, "history", "runs", "--limit", "0", "--db", g_db);
  expect_exit(&p, 2);
  expect_contains(p.err, "--limit");
  proc_free(&p);
  CLI_RUN(&p, "history", "runs", "--status", "exploded", "--db", g_db);
  expect_exit(&p, 2);
  expect_contains(p.err, "--status");
  proc_free(&p);
  CLI_RUN(&p, "history", "runs", "--since", "last tuesday", "--db", g_db);
  expect_exit(&p, 2);
  expect_contains(p.err, "--since");
  proc_free(&p);
  CLI_RUN(&p, "history", "stats", "--status", "failed", "--db", g_db);
  expect_exit(&p, 2); /* stats has no --status */
  proc_free(&p);
  CLI_RUN(&p, "history", "show", "--db", g_db);
  expect_exit(&p, 2);
  expect_contains(p.err, "missing the run ID");
  proc_free(&p);
}

/* ---- validate and invalid files ----------------------------------------------------- */

static void test_validate(void **state) {
  proc_t p;
  (void)state;
  CLI_RUN(&p, "validate", DATA "/ok.json");
  expect_exit(&p, 0);
  expect_contains(p.out, DATA "/ok.json: ok (5 nodes)");
  proc_free(&p);

  CLI_RUN(&p, "validate", DATA "/malformed.json");
  expect_exit(&p, 2);
  expect_contains(p.err, DATA "/malformed.json:5:3: invalid JSON");
  proc_free(&p);

  CLI_RUN(&p, "validate", DATA "/unknown_type.json");
  expect_exit(&p, 2);
  expect_contains(p.err, DATA "/unknown_type.json: nodes[1].type (id \"b\"): unknown type "
                              "\"teleport\"");
  proc_free(&p);

  CLI_RUN(&p, "validate", DATA "/cycle.json");
  expect_exit(&p, 2);
  expect_contains(p.err, DATA "/cycle.json: dependency cycle of 3 nodes");
  expect_contains(p.err, "first");
  expect_contains(p.err, "second");
  expect_contains(p.err, "third");
  proc_free(&p);

  /* Every error, not only the first, each with its path or node id. */
  CLI_RUN(&p, "validate", DATA "/many_errors.json");
  expect_exit(&p, 2);
  expect_contains(p.err, "nodes[0] (id \"typo\"): unknown field \"comand\" (did you mean "
                         "\"command\"?)");
  expect_contains(p.err, "nodes[1].ms (id \"typo\")");
  expect_contains(p.err, "duplicate id");
  expect_contains(p.err, "nodes[2].after[0] (id \"c\"): depends on unknown node \"nowhere\"");
  expect_contains(p.err, "many_errors.json: 5 errors");
  proc_free(&p);

  CLI_RUN(&p, "validate", DATA "/no-such-file.json");
  expect_exit(&p, 2);
  expect_contains(p.err, "no-such-file.json");
  expect_contains(p.err, "No such file");
  proc_free(&p);

  /* Nothing runs: a workflow that would create a file does not. */
  {
    char wf[256], marker[256], json[1024];
    FILE *f;
    snprintf(wf, sizeof wf, "%s/touch.json", g_tmp);
    snprintf(marker, sizeof marker, "%s/touched", g_tmp);
    snprintf(json, sizeof json,
             "{\"name\": \"touch\", \"nodes\": [{\"id\": \"t\", \"type\": \"exec\", "
             "\"command\": [\"touch\", \"%s\"]}]}",
             marker);
    f = fopen(wf, "w");
    assert_non_null(f);
    fputs(json, f);
    fclose(f);
    CLI_RUN(&p, "validate", wf);
    expect_exit(&p, 0);
    expect_contains(p.out, "ok (1 node)");
    assert_int_not_equal(access(marker, F_OK), 0);
    proc_free(&p);
  }
}

static void test_run_invalid_files(void **state) {
  proc_t p;
  (void)state;
  CLI_RUN(&p, "run", DATA "/cycle.json", "--db", g_db);
  expect_exit(&p, 2);
  expect_contains(p.err, DATA "/cycle.json: dependency cycle of 3 nodes");
  assert_int_equal(p.out_len, 0);
  proc_free(&p);

  CLI_RUN(&p, "run", DATA "/unknown_type.json", "--json", "--db", g_db);
  expect_exit(&p, 2);
  expect_contains(p.err, "unknown type \"teleport\"");
  assert_int_equal(p.out_len, 0);
  proc_free(&p);

  CLI_RUN(&p, "run", DATA "/malformed.json");
  expect_exit(&p, 2);
  expect_contains(p.err, "malformed.json:5:3: invalid JSON");
  proc_free(&p);

  CLI_RUN(&p, "run", DATA "/ok.json", "--input", "{\"broken\": ", "--no-history");
  expect_exit(&p, 2);
  expect_contains(p.err, "input:");
  expect_contains(p.err, "invalid JSON");
  proc_free(&p);

  CLI_RUN(&p, "run", DATA "/ok.json", "--input", "@" DATA "/no-such-input.json", "--no-history");
  expect_exit(&p, 2);
  expect_contains(p.err, "no-such-input.json");
  proc_free(&p);

  /* Nothing of these reached the database. */
  assert_int_equal(fc_test_pg_int(g_db, "SELECT count(*) FROM workflow_executions "
                                        "WHERE workflow_name IN ('cli-cycle', 'cli-unknown-type')"),
                   0);
}

/* ---- runs ------------------------------------------------------------------------------- */

static void test_run_completed_json(void **state) {
  json_t *res, *nodes, *output, *hist;
  const char *id;
  (void)state;
  res = run_json(DATA "/ok.json", 0, NULL);
  id = jstr(res, "workflow_id");
  assert_int_equal(strlen(id), 36);
  assert_string_equal(jstr(res, "workflow"), "cli-ok");
  assert_string_equal(jstr(res, "status"), "completed");
  assert_true(json_is_number(json_object_get(res, "duration_ms")));
  nodes = json_object_get(res, "nodes");
  assert_int_equal(jint(nodes, "total"), 5);
  assert_int_equal(jint(nodes, "completed"), 4);
  assert_int_equal(jint(nodes, "skipped"), 1);
  assert_int_equal(jint(nodes, "failed"), 0);
  assert_int_equal(json_array_size(json_object_get(res, "errors")), 0);
  output = json_object_get(res, "output");
  assert_true(json_is_true(json_object_get(json_object_get(output, "publish"), "published")));
  /* echo (cat) returns its node input: the file's input came through. */
  assert_string_equal(jstr(json_object_get(json_object_get(output, "echo"), "input"), "day"),
                      "2026-11-27");
  hist = json_object_get(res, "history");
  assert_true(json_is_true(json_object_get(hist, "enabled")));
  assert_true(jint(hist, "written") >= 6);
  assert_int_equal(jint(hist, "dropped"), 0);
  assert_int_equal(jint(hist, "spooled"), 0);
  assert_int_equal(jint(json_object_get(hist, "dropped_by_reason"), "deadline"), 0);

  EXPECT_DB_TEXT("completed", "SELECT status FROM workflow_executions WHERE workflow_id = '%s'",
                 id);
  assert_int_equal(
      fc_test_pg_int(g_db, "SELECT count(*) FROM node_executions WHERE workflow_id = '%s'", id), 5);
  assert_int_equal(fc_test_pg_int(g_db,
                                  "SELECT count(*) FROM node_executions WHERE workflow_id = '%s' "
                                  "AND node_id = 'alert' AND status = 'skipped'",
                                  id),
                   1);
  json_decref(res);
}

static void test_run_text_and_input(void **state) {
  proc_t p;
  json_t *out;
  char input_file[256];
  FILE *f;
  (void)state;
  /* Text mode: the output JSON on stdout, progress + summary on stderr
   * (plain lines: stderr is a pipe). */
  CLI_RUN(&p, "run", DATA "/ok.json", "--db", g_db, "--input", "{\"who\": \"cli\"}",
          "--max-parallel", "1");
  expect_exit(&p, 0);
  out = parse_json(p.out);
  assert_string_equal(jstr(json_object_get(json_object_get(out, "echo"), "input"), "who"), "cli");
  json_decref(out);
  expect_contains(p.err, "done wf=\"cli-ok\"");
  expect_contains(p.err, "workflow \"cli-ok\" completed in");
  expect_contains(p.err, "4 completed, 1 skipped (of 5)");
  expect_contains(p.err, "records written");
  proc_free(&p);

  /* --input @file */
  snprintf(input_file, sizeof input_file, "%s/input.json", g_tmp);
  f = fopen(input_file, "w");
  assert_non_null(f);
  fputs("{\"who\": \"file\"}\n", f);
  fclose(f);
  {
    char arg[300];
    snprintf(arg, sizeof arg, "@%s", input_file);
    CLI_RUN(&p, "run", DATA "/ok.json", "--no-history", "--quiet", "--output", "--input", arg);
  }
  expect_exit(&p, 0);
  out = parse_json(p.out);
  assert_string_equal(jstr(json_object_get(json_object_get(out, "echo"), "input"), "who"), "file");
  json_decref(out);
  /* --output: the output on one line */
  assert_true(p.out_len > 2);
  assert_null(memchr(p.out, '\n', p.out_len - 1));
  assert_int_equal(p.out[p.out_len - 1], '\n');
  /* --quiet and a completed run: nothing on stderr. */
  assert_int_equal(p.err_len, 0);
  proc_free(&p);
  /* --quiet alone: nothing on stdout either; without it, indented output */
  CLI_RUN(&p, "run", DATA "/ok.json", "--no-history", "--quiet");
  expect_exit(&p, 0);
  assert_int_equal(p.out_len, 0);
  assert_int_equal(p.err_len, 0);
  proc_free(&p);
  CLI_RUN(&p, "run", DATA "/ok.json", "--no-history");
  expect_exit(&p, 0);
  out = parse_json(p.out);
  json_decref(out);
  expect_contains(p.out, "\n  ");
  proc_free(&p);
  /* --json: one line */
  CLI_RUN(&p, "run", DATA "/ok.json", "--no-history", "--json", "--quiet");
  expect_exit(&p, 0);
  out = parse_json(p.out);
  json_decref(out);
  assert_null(memchr(p.out, '\n', p.out_len - 1));
  proc_free(&p);

  /* No database configured: history is off, and it says so. */
  CLI_RUN(&p, "run", DATA "/ok.json");
  expect_exit(&p, 0);
  expect_contains(p.err, "history: off (no database configured");
  proc_free(&p);
  /* --no-history wins over a database. */
  CLI_RUN(&p, "run", DATA "/ok.json", "--db", g_db, "--no-history", "--json");
  expect_exit(&p, 0);
  out = parse_json(p.out);
  assert_false(json_is_true(json_object_get(json_object_get(out, "history"), "enabled")));
  assert_int_equal(fc_test_pg_int(g_db,
                                  "SELECT count(*) FROM workflow_executions WHERE workflow_id "
                                  "= '%s'",
                                  jstr(out, "workflow_id")),
                   0);
  json_decref(out);
  proc_free(&p);
  /* The database from the environment (FLOWCORE_DB). */
  {
    char env_db[FC_TEST_PG_CONNINFO_LENGTH + 16];
    const char *const env[] = {env_db, NULL};
    const char *const args[] = {"run", DATA "/ok.json", "--json", NULL};
    snprintf(env_db, sizeof env_db, "FLOWCORE_DB=%s", g_db);
    cli_run_env(&p, args, env);
    expect_exit(&p, 0);
    out = parse_json(p.out);
    assert_true(jint(json_object_get(out, "history"), "written") > 0);
    assert_int_equal(fc_test_pg_int(g_db,
                                    "SELECT count(*) FROM workflow_executions WHERE workflow_id "
                                    "= '%s'",
                                    jstr(out, "workflow_id")),
                     1);
    json_decref(out);
    proc_free(&p);
  }
}

/* --history-max-bytes: the writer's byte budget, and what it held in
 * --json; a size it cannot read is a usage error naming the option. */
static void test_run_history_max_bytes(void **state) {
  const char *const more[] = {"--history-max-bytes", "64K", NULL};
  json_t *out, *h;
  proc_t p;
  (void)state;
  out = run_json(DATA "/ok.json", 0, more);
  h = json_object_get(out, "history");
  assert_true(jint(h, "written") > 0);
  assert_true(jint(h, "bytes_held_peak") > 0);
  assert_true(jint(h, "bytes_held_peak") <= 64 * 1024);
  assert_int_equal(jint(h, "dropped_byte_budget"), 0);
  json_decref(out);
  CLI_RUN(&p, "run", DATA "/ok.json", "--history-max-bytes", "12X", "--db", g_db);
  expect_exit(&p, 2);
  assert_non_null(strstr(p.err, "--history-max-bytes"));
  assert_non_null(strstr(p.err, "'12X'"));
  proc_free(&p);
}

static void test_run_failed(void **state) {
  json_t *res, *errors, *e;
  const char *id;
  char *trace;
  proc_t p;
  (void)state;
  res = run_json(DATA "/fail.json", 1, NULL);
  id = jstr(res, "workflow_id");
  assert_string_equal(jstr(res, "status"), "failed");
  assert_int_equal(jint(json_object_get(res, "nodes"), "failed"), 1);
  assert_int_equal(jint(json_object_get(res, "nodes"), "skipped"), 1);
  errors = json_object_get(res, "errors");
  assert_int_equal(json_array_size(errors), 2); /* one per attempt (retries: 1) */
  e = json_array_get(errors, 1);
  assert_string_equal(jstr(e, "node_id"), "broken");
  assert_int_equal(jint(e, "attempt"), 2);
  assert_string_equal(jstr(e, "type"), "exit_status");
  assert_string_equal(jstr(e, "severity"), "error");
  expect_contains(jstr(e, "message"), "exited with status 3");
  expect_contains(jstr(e, "stack_trace"), "disk on fire");
  /* The independent branch finished. */
  assert_non_null(json_object_get(json_object_get(res, "output"), "independent"));

  EXPECT_DB_TEXT("failed", "SELECT status FROM workflow_executions WHERE workflow_id = '%s'", id);
  assert_int_equal(fc_test_pg_int(g_db,
                                  "SELECT count(*) FROM execution_errors WHERE workflow_id = '%s' "
                                  "AND node_id = 'broken' AND error_type = 'exit_status'",
                                  id),
                   2);
  trace = fc_test_pg_text(g_db,
                          "SELECT stack_trace FROM execution_errors WHERE workflow_id = '%s' "
                          "AND attempt = 1",
                          id);
  expect_contains(trace, "disk on fire");
  free(trace);
  json_decref(res);

  /* The text summary names the node, the error and the stderr tail. */
  CLI_RUN(&p, "run", DATA "/fail.json", "--db", g_db);
  expect_exit(&p, 1);
  expect_contains(p.err, "workflow \"cli-fail\" failed");
  expect_contains(p.err, "broken (attempt 2) [error] exit_status");
  expect_contains(p.err, "| disk on fire");
  proc_free(&p);
}

static void test_run_missing_command(void **state) {
  json_t *res, *e;
  const char *id;
  (void)state;
  res = run_json(DATA "/missing_command.json", 1, NULL);
  id = jstr(res, "workflow_id");
  assert_string_equal(jstr(res, "status"), "failed");
  e = json_array_get(json_object_get(res, "errors"), 0);
  assert_non_null(e);
  assert_string_equal(jstr(e, "node_id"), "ghost");
  assert_string_equal(jstr(e, "type"), "spawn_error");
  expect_contains(jstr(e, "message"), "flowcore-no-such-binary");
  EXPECT_DB_TEXT("failed",
                 "SELECT status FROM node_executions WHERE workflow_id = "
                 "'%s' AND node_id = 'ghost' AND attempt = 1",
                 id);
  EXPECT_DB_TEXT("spawn_error",
                 "SELECT error_type FROM execution_errors WHERE "
                 "workflow_id = '%s' AND node_id = 'ghost'",
                 id);
  json_decref(res);
}

/* Waits until a file exists (at most timeout_ms). */
static int wait_for_file(const char *path, int timeout_ms) {
  int64_t deadline = mono_ms() + timeout_ms;
  while (access(path, F_OK) != 0) {
    if (mono_ms() > deadline)
      return -1;
    usleep(20000);
  }
  return 0;
}

static void test_run_sigint_cancels(void **state) {
  char marker[256], env_marker[300];
  const char *const env[] = {env_marker, NULL};
  const char *const args[] = {"run", DATA "/slow.json", "--json", "--db", g_db, NULL};
  proc_t p;
  json_t *res;
  const char *id;
  int64_t t0;
  (void)state;
  snprintf(marker, sizeof marker, "%s/slow-started", g_tmp);
  snprintf(env_marker, sizeof env_marker, "CLI_TEST_MARKER=%s", marker);
  unlink(marker);
  cli_start(&p, args, env);
  if (wait_for_file(marker, 20000) != 0) {
    kill(p.pid, SIGKILL);
    cli_finish(&p, CALL_TIMEOUT_MS);
    fail_msg("the exec node did not start; stderr:\n%s", p.err);
  }
  usleep(100000);
  t0 = mono_ms();
  assert_int_equal(kill(p.pid, SIGINT), 0);
  cli_finish(&p, 30000);
  expect_exit(&p, 1);
  /* Well before the 60 s of the sleeping nodes. */
  assert_true(mono_ms() - t0 < 15000);
  expect_contains(p.err, "SIGINT received: cancelling the run");
  res = parse_json(p.out);
  id = jstr(res, "workflow_id");
  assert_string_equal(jstr(res, "status"), "cancelled");
  assert_int_equal(jint(json_object_get(res, "nodes"), "cancelled"), 3);
  assert_int_equal(jint(json_object_get(res, "history"), "dropped"), 0);
  EXPECT_DB_TEXT("cancelled", "SELECT status FROM workflow_executions WHERE workflow_id = '%s'",
                 id);
  assert_int_equal(fc_test_pg_int(g_db,
                                  "SELECT count(*) FROM node_executions WHERE workflow_id = '%s' "
                                  "AND status = 'cancelled'",
                                  id),
                   3);
  EXPECT_DB_TEXT("cancelled",
                 "SELECT status FROM node_executions WHERE workflow_id = "
                 "'%s' AND node_id = 'long' AND attempt = 1",
                 id);
  json_decref(res);
  proc_free(&p);

  /* SIGTERM too, in text mode. */
  {
    const char *const targs[] = {"run", DATA "/slow.json", "--db", g_db, NULL};
    unlink(marker);
    cli_start(&p, targs, env);
    assert_int_equal(wait_for_file(marker, 20000), 0);
    usleep(100000);
    assert_int_equal(kill(p.pid, SIGTERM), 0);
    cli_finish(&p, 30000);
    expect_exit(&p, 1);
    expect_contains(p.err, "workflow \"cli-slow\" cancelled");
    expect_contains(p.err, "cancelled by SIGTERM");
    proc_free(&p);
  }

  /* The database is down: after the cancellation the writer waits for it
   * (up to the deadline); signals then say so, and a second one stops
   * waiting, saying what may be lost (exit 3). */
  {
    char down[256];
    const char *const dargs[] = {
        "run", DATA "/slow.json", "--db", down, "--shutdown-deadline", "30000", NULL};
    snprintf(down, sizeof down, "host=%s/no-server port=5 dbname=x", g_tmp);
    unlink(marker);
    cli_start(&p, dargs, env);
    assert_int_equal(wait_for_file(marker, 20000), 0);
    usleep(100000);
    t0 = mono_ms();
    assert_int_equal(kill(p.pid, SIGINT), 0);
    cli_wait_stderr(&p, "done wf=\"cli-slow\"", 15000);
    usleep(300000); /* the run is closed, the writer is closing */
    assert_int_equal(kill(p.pid, SIGINT), 0);
    cli_wait_stderr(&p, "still writing the history", 5000);
    assert_int_equal(kill(p.pid, SIGINT), 0);
    cli_finish(&p, 10000);
    expect_exit(&p, 3);
    expect_contains(p.err, "not waiting for the history writer");
    expect_contains(p.err, "history LOST: up to ");
    assert_true(mono_ms() - t0 < 20000); /* well before the 30 s deadline */
    proc_free(&p);
  }
}

/* ---- an exec node whose grandchild leaves the process group ----------------------- */

/* Writes g_tmp/<name>.json: one exec node "esc" whose shell starts a
 * grandchild that leaves the group (setsid), keeps stdout open, appends its
 * pid to $CLI_TEST_STRAYS and sleeps 30 s; then the shell runs `tail`.
 * timeout_ms 0: none. The path goes to path[size]. */
static void write_escape_workflow(char *path, size_t size, const char *name, const char *tail,
                                  int timeout_ms, int grace_ms) {
  char script[512];
  json_t *wf, *node;
  snprintf(script, sizeof script,
           "setsid sh -c 'echo $$ >> \"$CLI_TEST_STRAYS\"; exec sleep 30' & %s", tail);
  node = json_pack("{s:s, s:s, s:[s,s,s], s:i}", "id", "esc", "type", "exec", "command", "sh",
                   "-c", script, "kill_grace_ms", grace_ms);
  assert_non_null(node);
  if (timeout_ms > 0)
    assert_int_equal(json_object_set_new(node, "timeout_ms", json_integer(timeout_ms)), 0);
  wf = json_pack("{s:s, s:[o]}", "name", name, "nodes", node);
  assert_non_null(wf);
  snprintf(path, size, "%s/%s.json", g_tmp, name);
  assert_int_equal(json_dump_file(wf, path, JSON_INDENT(2)), 0);
  json_decref(wf);
}

static void strays_path(char *buf, size_t size) { snprintf(buf, size, "%s/strays", g_tmp); }

/* Teardown of the tests below: the grandchildren left the group, so no
 * group kill reached them; kill them by the pids they wrote. */
static int kill_strays(void **state) {
  char path[256];
  FILE *f;
  long pid;
  (void)state;
  strays_path(path, sizeof path);
  f = fopen(path, "r");
  if (f != NULL) {
    while (fscanf(f, "%ld", &pid) == 1)
      if (pid > 1)
        (void)kill((pid_t)pid, SIGKILL);
    fclose(f);
  }
  unlink(path);
  return 0;
}

/* Runs `file` with --json, with history (--db) or without; checks the exit
 * code, that the --json object is printed, that nothing says history was
 * lost, and the node's status in the result and (with history) in the
 * database. Returns the wall time in ms. */
static int64_t run_escape(const char *file, int with_db, int code, const char *wf_status,
                          const char *node_status) {
  char strays[256], env_strays[300];
  const char *const env[] = {env_strays, NULL};
  const char *const db_args[] = {"run", file, "--json", "--db", g_db, NULL};
  const char *const nodb_args[] = {"run", file, "--json", "--no-history", NULL};
  proc_t p;
  json_t *res;
  int64_t t0, dt;
  strays_path(strays, sizeof strays);
  snprintf(env_strays, sizeof env_strays, "CLI_TEST_STRAYS=%s", strays);
  t0 = mono_ms();
  cli_start(&p, with_db ? db_args : nodb_args, env);
  cli_finish(&p, 20000);
  dt = mono_ms() - t0;
  expect_exit(&p, code);
  expect_absent(p.err, "LOST");
  res = parse_json(p.out);
  assert_int_equal(jint(res, "exit_code"), code);
  assert_string_equal(jstr(res, "status"), wf_status);
  assert_int_equal(jint(json_object_get(res, "nodes"), node_status), 1);
  if (with_db) {
    const char *id = jstr(res, "workflow_id");
    json_t *hist = json_object_get(res, "history");
    assert_int_equal(jint(hist, "dropped"), 0);
    assert_int_equal(jint(hist, "written"), jint(hist, "accepted"));
    EXPECT_DB_TEXT(wf_status, "SELECT status FROM workflow_executions WHERE workflow_id = '%s'",
                   id);
    EXPECT_DB_TEXT(node_status,
                   "SELECT status FROM node_executions WHERE workflow_id = '%s' AND node_id = "
                   "'esc' AND attempt = 1",
                   id);
  }
  json_decref(res);
  proc_free(&p);
  return dt;
}

/* The command exits at once; its grandchild holds stdout for 30 s: the node
 * stops reading kill_grace_ms (500) after the exit and completes with what
 * it read. With a timeout that expires first, the node times out and the
 * run ends about kill_grace_ms after the timeout. */
static void test_run_escaped_grandchild(void **state) {
  char quick[256], slow[256];
  int with_db;
  int64_t dt;
  (void)state;
  /* The case of the issue: echo, exit; timeout 1 s, grace 0.5 s. */
  write_escape_workflow(quick, sizeof quick, "cli-escape", "echo '{\"ok\":1}'", 1000, 500);
  write_escape_workflow(slow, sizeof slow, "cli-escape-timeout", "sleep 30", 1000, 500);
  for (with_db = 0; with_db <= 1; with_db++) {
    dt = run_escape(quick, with_db, 0, "completed", "completed");
    if (dt < 400 || dt > 5000)
      fail_msg("the run took %lld ms, expected the 500 ms grace", (long long)dt);
    dt = run_escape(slow, with_db, 1, "failed", "timed_out");
    if (dt < 1400 || dt > 6000)
      fail_msg("the run took %lld ms, expected 1 s timeout + 500 ms grace", (long long)dt);
  }
}

/* SIGINT while the command runs and its grandchild holds stdout: the run
 * is cancelled and ends promptly (the grace after the shell's death). With
 * a long grace (20 s), a second SIGINT stops waiting for the node: the
 * history is written all the same, the result printed, exit 1, no loss. */
static void test_run_escaped_grandchild_sigint(void **state) {
  char file[256], marker[256], strays[256], env_marker[300], env_strays[300];
  const char *const env[] = {env_marker, env_strays, NULL};
  int grace, k;
  (void)state;
  snprintf(marker, sizeof marker, "%s/escape-started", g_tmp);
  snprintf(env_marker, sizeof env_marker, "CLI_TEST_MARKER=%s", marker);
  strays_path(strays, sizeof strays);
  snprintf(env_strays, sizeof env_strays, "CLI_TEST_STRAYS=%s", strays);
  for (k = 0; k < 2; k++) {
    const char *const args[] = {"run", file, "--json", "--db", g_db, NULL};
    proc_t p;
    json_t *res;
    int64_t t0, dt;
    grace = k == 0 ? 500 : 20000;
    write_escape_workflow(file, sizeof file, k == 0 ? "cli-escape-int" : "cli-escape-int2",
                          ": > \"$CLI_TEST_MARKER\"; sleep 30", 0, grace);
    unlink(marker);
    cli_start(&p, args, env);
    if (wait_for_file(marker, 20000) != 0)
      kill_and_fail(&p, "the exec node did not start");
    usleep(100000);
    t0 = mono_ms();
    assert_int_equal(kill(p.pid, SIGINT), 0);
    if (k == 1) {
      cli_wait_stderr(&p, "done wf=\"cli-escape-int2\"", 10000);
      usleep(200000);
      assert_int_equal(kill(p.pid, SIGINT), 0);
    }
    cli_finish(&p, 10000);
    dt = mono_ms() - t0;
    expect_exit(&p, 1);
    expect_absent(p.err, "LOST");
    if (k == 1)
      expect_contains(p.err, "not waiting for the nodes to stop");
    if (dt > 5000)
      fail_msg("the run took %lld ms after SIGINT", (long long)dt);
    res = parse_json(p.out);
    assert_string_equal(jstr(res, "status"), "cancelled");
    assert_int_equal(jint(json_object_get(res, "nodes"), "cancelled"), 1);
    assert_int_equal(jint(json_object_get(res, "history"), "dropped"), 0);
    EXPECT_DB_TEXT("cancelled", "SELECT status FROM workflow_executions WHERE workflow_id = '%s'",
                   jstr(res, "workflow_id"));
    EXPECT_DB_TEXT("cancelled",
                   "SELECT status FROM node_executions WHERE workflow_id = '%s' AND node_id = "
                   "'esc'",
                   jstr(res, "workflow_id"));
    json_decref(res);
    proc_free(&p);
  }
}

static void test_run_history_lost_exit_3(void **state) {
  char down[256], spool[256];
  proc_t p;
  json_t *res, *hist;
  (void)state;
  /* A server that is not there (no such socket directory). */
  snprintf(down, sizeof down, "host=%s/no-server port=5 dbname=x user=postgres password=%s", g_tmp,
           SECRET);
  CLI_RUN(&p, "run", DATA "/ok.json", "--db", down, "--shutdown-deadline", "200");
  expect_exit(&p, 3);
  expect_contains(p.err, "workflow \"cli-ok\" completed");
  expect_contains(p.err, "history LOST: ");
  expect_contains(p.err, "(deadline)");
  proc_free(&p);

  /* --json: the loss in numbers, and still on stderr. */
  CLI_RUN(&p, "run", DATA "/ok.json", "--json", "--quiet", "--db", down, "--shutdown-deadline",
          "200");
  expect_exit(&p, 3);
  expect_contains(p.err, "history LOST: ");
  res = parse_json(p.out);
  assert_string_equal(jstr(res, "status"), "completed");
  assert_int_equal(jint(res, "exit_code"), 3);
  hist = json_object_get(res, "history");
  assert_int_equal(jint(hist, "written"), 0);
  assert_true(jint(hist, "dropped") > 0);
  assert_int_equal(jint(json_object_get(hist, "dropped_by_reason"), "deadline"),
                   jint(hist, "dropped"));
  assert_int_equal(jint(hist, "accepted"), jint(hist, "dropped"));
  json_decref(res);
  proc_free(&p);

  /* The deadline from the environment. */
  {
    char env_db[400];
    const char *const env[] = {env_db, "FLOWCORE_SHUTDOWN_DEADLINE_MS=100", NULL};
    const char *const args[] = {"run", DATA "/ok.json", "--quiet", NULL};
    snprintf(env_db, sizeof env_db, "FLOWCORE_DB=%s", down);
    cli_run_env(&p, args, env);
    expect_exit(&p, 3);
    expect_contains(p.err, "history LOST: ");
    proc_free(&p);
    {
      const char *const bad_env[] = {"FLOWCORE_SHUTDOWN_DEADLINE_MS=soon", NULL};
      cli_run_env(&p, args, bad_env);
      expect_exit(&p, 2);
      expect_contains(p.err, "FLOWCORE_SHUTDOWN_DEADLINE_MS");
      proc_free(&p);
    }
  }

  /* With a spool directory nothing is lost: exit 0, and the next run with
   * the same spool and a reachable database replays it. */
  snprintf(spool, sizeof spool, "%s/spool", g_tmp);
  assert_int_equal(mkdir(spool, 0700), 0);
  CLI_RUN(&p, "run", DATA "/ok.json", "--json", "--db", down, "--spool-dir", spool,
          "--shutdown-deadline", "200");
  expect_exit(&p, 0);
  res = parse_json(p.out);
  hist = json_object_get(res, "history");
  assert_true(jint(hist, "spooled") > 0);
  assert_int_equal(jint(hist, "dropped"), 0);
  {
    char id[40];
    proc_t q;
    json_t *res2;
    snprintf(id, sizeof id, "%s", jstr(res, "workflow_id"));
    CLI_RUN(&q, "run", DATA "/ok.json", "--json", "--db", g_db, "--spool-dir", spool);
    expect_exit(&q, 0);
    res2 = parse_json(q.out);
    assert_true(jint(json_object_get(res2, "history"), "replayed") > 0);
    EXPECT_DB_TEXT("completed", "SELECT status FROM workflow_executions WHERE workflow_id = '%s'",
                   id);
    json_decref(res2);
    proc_free(&q);
  }
  json_decref(res);
  proc_free(&p);

  /* A spool directory that does not exist is a usage error. */
  CLI_RUN(&p, "run", DATA "/ok.json", "--db", g_db, "--spool-dir", "/nonexistent/fc-spool");
  expect_exit(&p, 2);
  proc_free(&p);
}

static void test_run_metrics_file(void **state) {
  char path[256], *text = NULL, cmd[300];
  proc_t p;
  FILE *f;
  long n;
  (void)state;
  snprintf(path, sizeof path, "%s/flowcore.prom", g_tmp);
  CLI_RUN(&p, "run", DATA "/fail.json", "--no-history", "--metrics-file", path);
  expect_exit(&p, 1);
  proc_free(&p);
  f = fopen(path, "r");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  rewind(f);
  text = calloc(1, (size_t)n + 1);
  assert_non_null(text);
  assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  expect_contains(text, "flowcore_workflows_started_total 1");
  expect_contains(text, "status=\"failed\"");
  expect_contains(text, "flowcore_node_duration_seconds");
  free(text);
  /* No temporary file left next to it. */
  snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q 'tmp'", g_tmp);
  assert_int_not_equal(system(cmd), 0);

  CLI_RUN(&p, "run", DATA "/ok.json", "--no-history", "--metrics-file",
          "/nonexistent/dir/flowcore.prom");
  expect_exit(&p, 2);
  expect_contains(p.err, "--metrics-file");
  proc_free(&p);
}

/* The example workflows of examples/workflows/ validate and run as their
 * descriptions say. */
static void test_examples(void **state) {
  static const struct {
    const char *file;
    int code;
    const char *status;
  } ex[] = {{"etl.json", 0, "completed"},
            {"failing.json", 1, "failed"},
            {"retries.json", 0, "completed"},
            {"routing.json", 0, "completed"}};
  char path[512];
  proc_t p;
  json_t *res;
  size_t i;
  (void)state;
  for (i = 0; i < sizeof ex / sizeof ex[0]; i++) {
    snprintf(path, sizeof path, "%s/examples/workflows/%s", FLOWCORE_SOURCE_DIR, ex[i].file);
    if (access(path, R_OK) != 0)
      fail_msg("missing example %s", path);
    CLI_RUN(&p, "validate", path);
    expect_exit(&p, 0);
    expect_contains(p.out, ": ok (");
    proc_free(&p);
    res = run_json(path, ex[i].code, NULL);
    assert_string_equal(jstr(res, "status"), ex[i].status);
    assert_int_equal(jint(json_object_get(res, "history"), "dropped"), 0);
    if (strcmp(ex[i].file, "failing.json") == 0) {
      json_t *e = json_array_get(json_object_get(res, "errors"), 0);
      assert_non_null(e);
      assert_string_equal(jstr(e, "severity"), "critical");
      assert_string_equal(jstr(e, "type"), "missing_data");
    }
    if (strcmp(ex[i].file, "routing.json") == 0)
      assert_int_equal(jint(json_object_get(res, "nodes"), "skipped"), 1);
    json_decref(res);
  }
}

/* ---- migrate ------------------------------------------------------------------------------ */

static void test_migrate_status(void **state) {
  char db[FC_TEST_PG_CONNINFO_LENGTH], name[64];
  proc_t p;
  (void)state;
  snprintf(name, sizeof name, "fccli_mig_%ld", (long)getpid());
  assert_int_equal(fc_test_pg_create_db(&g_pg, name, db, sizeof db), 0);

  CLI_RUN(&p, "migrate", "--status", "--db", db);
  expect_exit(&p, 0);
  expect_contains(p.out, "0001");
  expect_contains(p.out, "history");
  expect_contains(p.out, "pending");
  expect_contains(p.out, "0 applied,");
  expect_absent(p.out, "applied  ");
  proc_free(&p);
  /* --status changed nothing. */
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM pg_tables WHERE tablename = "
                                      "'workflow_executions'"),
                   0);

  /* History commands on a database without the schema: a clear hint. */
  CLI_RUN(&p, "history", "runs", "--db", db);
  expect_exit(&p, 1);
  expect_contains(p.err, "flowcore migrate");
  proc_free(&p);

  CLI_RUN(&p, "migrate", "--db", db);
  expect_exit(&p, 0);
  expect_contains(p.out, "applied 0001_history.sql");
  expect_contains(p.out, "applied 0002_views.sql");
  proc_free(&p);

  CLI_RUN(&p, "migrate", "--status", "--db", db);
  expect_exit(&p, 0);
  expect_contains(p.out, "applied");
  expect_contains(p.out, " 0 pending");
  expect_absent(p.out, "pending  ");
  proc_free(&p);

  /* Again: nothing to do. */
  CLI_RUN(&p, "migrate", "--db", db);
  expect_exit(&p, 0);
  expect_contains(p.out, "0 applied now");
  expect_contains(p.out, "up to date");
  proc_free(&p);

  /* --dir and FLOWCORE_MIGRATIONS_DIR. */
  CLI_RUN(&p, "migrate", "--status", "--db", db, "--dir", FLOWCORE_SOURCE_DIR "/migrations");
  expect_exit(&p, 0);
  proc_free(&p);
  CLI_RUN(&p, "migrate", "--db", db, "--dir", "/nonexistent/migrations");
  expect_exit(&p, 2);
  expect_contains(p.err, "/nonexistent/migrations");
  proc_free(&p);
  {
    const char *const env[] = {"FLOWCORE_MIGRATIONS_DIR=/nonexistent/env-migrations", NULL};
    const char *const args[] = {"migrate", "--status", "--db", db, NULL};
    cli_run_env(&p, args, env);
    expect_exit(&p, 2);
    expect_contains(p.err, "/nonexistent/env-migrations");
    proc_free(&p);
  }

  /* A server that is down: exit 1 with the reason. */
  {
    char down[256];
    snprintf(down, sizeof down, "host=%s/no-server port=5 dbname=x", g_tmp);
    CLI_RUN(&p, "migrate", "--status", "--db", down);
    expect_exit(&p, 1);
    expect_contains(p.err, "migrate --status failed");
    proc_free(&p);
  }
  assert_int_equal(fc_test_pg_drop_db(&g_pg, name), 0);
}

/* ---- history -------------------------------------------------------------------------------- */

/* In a text table: the column headed `header` starts where `value` starts
 * in the line containing `row_key` (the header is the first occurrence of
 * `header`, in capitals, so lines before the table do not matter). */
static void expect_aligned(const char *table, const char *header, const char *row_key,
                           const char *value) {
  const char *h = strstr(table, header), *hline, *row, *row_end, *v;
  assert_non_null(h);
  for (hline = h; hline > table && hline[-1] != '\n'; hline--) {
  }
  row = strstr(h, row_key);
  assert_non_null(row);
  while (row > table && row[-1] != '\n')
    row--;
  row_end = strchr(row, '\n');
  v = strstr(row, value);
  assert_non_null(v);
  assert_true(row_end == NULL || v < row_end);
  if (v - row != h - hline)
    fail_msg("\"%s\" is not under \"%s\" in:\n%s", value, header, table);
}

static void test_history_commands(void **state) {
  json_t *ok, *failed, *arr, *obj, *e;
  char ok_id[40], fail_id[40], prefix[40];
  const char *args_since[] = {"1h", "2000-01-01", NULL};
  proc_t p;
  size_t i;
  int found;
  (void)state;
  ok = run_json(DATA "/ok.json", 0, NULL);
  failed = run_json(DATA "/fail.json", 1, NULL);
  snprintf(ok_id, sizeof ok_id, "%s", jstr(ok, "workflow_id"));
  snprintf(fail_id, sizeof fail_id, "%s", jstr(failed, "workflow_id"));
  json_decref(ok);
  json_decref(failed);

  /* runs --json: an array of objects, newest first, filtered. */
  CLI_RUN(&p, "history", "runs", "--json", "--db", g_db);
  expect_exit(&p, 0);
  arr = parse_json(p.out);
  assert_true(json_is_array(arr));
  assert_true(json_array_size(arr) >= 2);
  assert_true(json_array_size(arr) <= 20); /* the default limit */
  assert_string_equal(jstr(json_array_get(arr, 0), "workflow_id"), fail_id);
  assert_string_equal(jstr(json_array_get(arr, 1), "workflow_id"), ok_id);
  obj = json_array_get(arr, 0);
  assert_string_equal(jstr(obj, "workflow_name"), "cli-fail");
  assert_string_equal(jstr(obj, "status"), "failed");
  assert_int_equal(jint(obj, "node_count"), 4);
  assert_int_equal(jint(obj, "nodes_failed"), 1);
  assert_int_equal(jint(obj, "nodes_skipped"), 1);
  assert_int_equal(jint(obj, "error_count"), 2);
  assert_int_equal(jint(obj, "attempts"), 4);
  assert_true(json_is_number(json_object_get(obj, "duration_ms")));
  expect_contains(jstr(obj, "started_at"), "T");
  assert_int_equal(jstr(obj, "started_at")[strlen(jstr(obj, "started_at")) - 1], 'Z');
  json_decref(arr);
  proc_free(&p);

  CLI_RUN(&p, "history", "runs", "--json", "--db", g_db, "--workflow", "cli-fail", "--limit", "3");
  expect_exit(&p, 0);
  arr = parse_json(p.out);
  assert_true(json_array_size(arr) >= 1 && json_array_size(arr) <= 3);
  json_array_foreach (arr, i, obj)
    assert_string_equal(jstr(obj, "workflow_name"), "cli-fail");
  json_decref(arr);
  proc_free(&p);

  CLI_RUN(&p, "history", "runs", "--json", "--db", g_db, "--status", "completed", "--limit",
          "1000");
  expect_exit(&p, 0);
  arr = parse_json(p.out);
  found = 0;
  json_array_foreach (arr, i, obj) {
    assert_string_equal(jstr(obj, "status"), "completed");
    found |= strcmp(jstr(obj, "workflow_id"), ok_id) == 0;
  }
  assert_true(found);
  json_decref(arr);
  proc_free(&p);

  for (i = 0; args_since[i] != NULL; i++) {
    CLI_RUN(&p, "history", "runs", "--json", "--db", g_db, "--since", args_since[i]);
    expect_exit(&p, 0);
    arr = parse_json(p.out);
    assert_string_equal(jstr(json_array_get(arr, 0), "workflow_id"), fail_id);
    json_decref(arr);
    proc_free(&p);
  }
  CLI_RUN(&p, "history", "runs", "--json", "--db", g_db, "--since", "2999-01-01T00:00:00Z");
  expect_exit(&p, 0);
  arr = parse_json(p.out);
  assert_int_equal(json_array_size(arr), 0);
  json_decref(arr);
  proc_free(&p);

  /* runs as a table: a header, aligned columns. */
  CLI_RUN(&p, "history", "runs", "--db", g_db);
  expect_exit(&p, 0);
  expect_contains(p.out, "ID");
  expect_contains(p.out, "WORKFLOW");
  expect_contains(p.out, fail_id);
  expect_aligned(p.out, "STATUS", fail_id, "failed");
  expect_aligned(p.out, "STATUS", ok_id, "completed");
  expect_aligned(p.out, "WORKFLOW", ok_id, "cli-ok");
  proc_free(&p);

  /* show: by a prefix, nodes in start order. */
  snprintf(prefix, sizeof prefix, "%.23s", fail_id);
  CLI_RUN(&p, "history", "show", prefix, "--db", g_db);
  expect_exit(&p, 0);
  expect_contains(p.out, fail_id);
  expect_contains(p.out, "cli-fail");
  expect_contains(p.out, "NODE");
  expect_contains(p.out, "ATTEMPT");
  expect_contains(p.out, "exit_status: command");
  expect_contains(p.out, "after_broken");
  expect_aligned(p.out, "STATUS", "after_broken", "skipped");
  proc_free(&p);

  CLI_RUN(&p, "history", "show", fail_id, "--json", "--db", g_db);
  expect_exit(&p, 0);
  obj = parse_json(p.out);
  assert_string_equal(jstr(obj, "workflow_id"), fail_id);
  assert_string_equal(jstr(obj, "status"), "failed");
  arr = json_object_get(obj, "nodes");
  assert_int_equal(json_array_size(arr), 5); /* prepare, independent, broken x2, after_broken */
  {
    const char *prev = "";
    int broken = 0;
    json_array_foreach (arr, i, e) {
      json_t *started = json_object_get(e, "started_at");
      if (strcmp(jstr(e, "node_id"), "broken") == 0) {
        broken++;
        assert_int_equal(jint(e, "attempt"), broken);
        assert_string_equal(jstr(e, "status"), "failed");
        assert_string_equal(jstr(e, "error_type"), "exit_status");
      }
      if (strcmp(jstr(e, "node_id"), "after_broken") == 0) {
        assert_int_equal(jint(e, "attempt"), 0);
        assert_string_equal(jstr(e, "status"), "skipped");
        assert_true(json_is_null(started));
        assert_int_equal(i, json_array_size(arr) - 1); /* never ran: last */
      } else {
        /* RFC 3339 UTC with µs compares in time order. */
        assert_true(strcmp(prev, json_string_value(started)) <= 0);
        prev = json_string_value(started);
      }
    }
    assert_int_equal(broken, 2);
  }
  json_decref(obj);
  proc_free(&p);

  /* Ambiguous, unknown and malformed ids. */
  CLI_RUN(&p, "history", "show", "0", "--db", g_db);
  expect_exit(&p, 2);
  expect_contains(p.err, "ambiguous");
  expect_contains(p.err, fail_id);
  proc_free(&p);
  CLI_RUN(&p, "history", "show", "ffffffff-ffff", "--db", g_db);
  expect_exit(&p, 2);
  expect_contains(p.err, "no run with an id starting with 'ffffffff-ffff'");
  proc_free(&p);
  CLI_RUN(&p, "history", "show", "' OR 1=1 --", "--db", g_db);
  expect_exit(&p, 2);
  expect_contains(p.err, "invalid run id");
  proc_free(&p);

  /* errors */
  CLI_RUN(&p, "history", "errors", "--json", "--db", g_db, "--since", "1h");
  expect_exit(&p, 0);
  arr = parse_json(p.out);
  found = 0;
  json_array_foreach (arr, i, obj) {
    if (strcmp(jstr(obj, "workflow_name"), "cli-fail") == 0 &&
        strcmp(jstr(obj, "node_id"), "broken") == 0) {
      found = 1;
      assert_string_equal(jstr(obj, "error_type"), "exit_status");
      assert_string_equal(jstr(obj, "severity"), "error");
      assert_true(jint(obj, "errors") >= 2);
      expect_contains(jstr(obj, "last_message"), "exited with status 3");
      assert_true(strcmp(jstr(obj, "first_seen"), jstr(obj, "last_seen")) <= 0);
    }
  }
  assert_true(found);
  json_decref(arr);
  proc_free(&p);
  CLI_RUN(&p, "history", "errors", "--json", "--db", g_db, "--since", "2999-01-01");
  expect_exit(&p, 0);
  arr = parse_json(p.out);
  assert_int_equal(json_array_size(arr), 0);
  json_decref(arr);
  proc_free(&p);
  CLI_RUN(&p, "history", "errors", "--db", g_db, "--workflow", "cli-fail");
  expect_exit(&p, 0);
  expect_contains(p.out, "LAST SEEN");
  expect_aligned(p.out, "TYPE", "broken", "exit_status");
  expect_absent(p.out, "cli-missing-command");
  proc_free(&p);

  /* stats */
  CLI_RUN(&p, "history", "stats", "--json", "--db", g_db, "--workflow", "cli-fail");
  expect_exit(&p, 0);
  arr = parse_json(p.out);
  assert_int_equal(json_array_size(arr), 3); /* prepare, broken, independent */
  found = 0;
  json_array_foreach (arr, i, obj) {
    assert_string_equal(jstr(obj, "workflow_name"), "cli-fail");
    assert_true(json_is_number(json_object_get(obj, "p50_ms")));
    assert_true(json_is_number(json_object_get(obj, "p95_ms")));
    if (strcmp(jstr(obj, "node_id"), "broken") == 0) {
      found = 1;
      assert_true(jint(obj, "runs") >= 1);
      assert_int_equal(jint(obj, "failures"), jint(obj, "attempts"));
      assert_true(json_number_value(json_object_get(obj, "p50_ms")) <=
                  json_number_value(json_object_get(obj, "p95_ms")));
    }
  }
  assert_true(found);
  json_decref(arr);
  proc_free(&p);
  CLI_RUN(&p, "history", "stats", "--db", g_db);
  expect_exit(&p, 0);
  expect_contains(p.out, "P50");
  expect_contains(p.out, "P95");
  expect_aligned(p.out, "NODE", "independent", "independent");
  proc_free(&p);

  /* running and losses: arrays (nothing runs now). */
  CLI_RUN(&p, "history", "running", "--json", "--db", g_db);
  expect_exit(&p, 0);
  arr = parse_json(p.out);
  assert_true(json_is_array(arr));
  json_decref(arr);
  proc_free(&p);
  CLI_RUN(&p, "history", "losses", "--json", "--db", g_db);
  expect_exit(&p, 0);
  arr = parse_json(p.out);
  assert_true(json_is_array(arr));
  json_decref(arr);
  proc_free(&p);

  /* A database that is down. */
  {
    char down[256];
    snprintf(down, sizeof down, "host=%s/no-server port=5 dbname=x", g_tmp);
    CLI_RUN(&p, "history", "runs", "--db", down);
    expect_exit(&p, 1);
    expect_contains(p.err, "cannot connect to the database");
    proc_free(&p);
  }
}

/* ---- the password ------------------------------------------------------------------------ */

static void check_no_secret(proc_t *p, const char *what) {
  if (strstr(p->out, SECRET) != NULL || strstr(p->err, SECRET) != NULL)
    fail_msg("the password appeared in the output of %s:\n--- stdout:\n%s\n--- stderr:\n%s", what,
             p->out, p->err);
  proc_free(p);
}

/* ---- output errors, connection diagnostics, units -------------------------------------- */

/* A TCP port on 127.0.0.1 that nothing listens on (bound, then closed). */
static int free_port(void) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM, 0), port;
  assert_true(fd >= 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static int stdout_reset(void **state) {
  (void)state;
  g_child_stdout = NULL; /* also when the test failed half-way */
  return 0;
}

/* Every command that writes to stdout fails when the output cannot be
 * written (here /dev/full: ENOSPC), like coreutils and jq. */
static void test_stdout_write_errors(void **state) {
  char down[256];
  proc_t p;
  (void)state;
  if (access("/dev/full", W_OK) != 0)
    skip();
  snprintf(down, sizeof down, "host=%s/no-server port=5 dbname=x", g_tmp);
  g_child_stdout = "/dev/full";

  CLI_RUN(&p, "run", DATA "/ok.json", "--json", "--no-history");
  expect_exit(&p, 1);
  expect_contains(p.err, "flowcore: write error on standard output: No space left on device");
  proc_free(&p);
  CLI_RUN(&p, "run", DATA "/ok.json", "--quiet", "--output", "--db", g_db); /* the output */
  expect_exit(&p, 1);
  expect_contains(p.err, "write error on standard output");
  proc_free(&p);
  CLI_RUN(&p, "history", "runs", "--json", "--db", g_db);
  expect_exit(&p, 1);
  expect_contains(p.err, "flowcore: write error on standard output: No space left on device");
  proc_free(&p);
  CLI_RUN(&p, "history", "runs", "--db", g_db); /* the table */
  expect_exit(&p, 1);
  expect_contains(p.err, "write error on standard output");
  proc_free(&p);
  CLI_RUN(&p, "validate", DATA "/ok.json");
  expect_exit(&p, 1);
  expect_contains(p.err, "write error on standard output");
  proc_free(&p);
  CLI_RUN(&p, "migrate", "--status", "--db", g_db);
  expect_exit(&p, 1);
  expect_contains(p.err, "write error on standard output");
  proc_free(&p);
  CLI_RUN(&p, "--help");
  expect_exit(&p, 1);
  expect_contains(p.err, "write error on standard output");
  proc_free(&p);
  CLI_RUN(&p, "version");
  expect_exit(&p, 1);
  proc_free(&p);

  /* A more specific exit code stays: history lost (3), invalid file (2). */
  CLI_RUN(&p, "run", DATA "/ok.json", "--json", "--db", down, "--shutdown-deadline", "100");
  expect_exit(&p, 3);
  expect_contains(p.err, "history LOST: ");
  expect_contains(p.err, "write error on standard output");
  proc_free(&p);
  CLI_RUN(&p, "run", DATA "/fail.json", "--json", "--no-history");
  expect_exit(&p, 1);
  expect_contains(p.err, "write error on standard output");
  proc_free(&p);
  CLI_RUN(&p, "validate", DATA "/cycle.json");
  expect_exit(&p, 2);
  expect_absent(p.err, "write error"); /* nothing was written to stdout */
  proc_free(&p);
  g_child_stdout = NULL;

  /* The same commands succeed with a writable stdout. */
  CLI_RUN(&p, "run", DATA "/ok.json", "--json", "--no-history");
  expect_exit(&p, 0);
  expect_absent(p.err, "write error");
  proc_free(&p);
}

/* libpq's own reason for a refused connection, not the poll error. */
static void test_connection_refused(void **state) {
  char refused[256];
  proc_t p;
  json_t *res;
  (void)state;
  snprintf(refused, sizeof refused, "host=127.0.0.1 port=%d dbname=x user=postgres password=%s",
           free_port(), SECRET);
  CLI_RUN(&p, "run", DATA "/ok.json", "--db", refused, "--shutdown-deadline", "500");
  expect_exit(&p, 3);
  expect_contains(p.err, "last database error: ");
  expect_contains(p.err, "Connection refused");
  expect_absent(p.err, "bad file descriptor");
  expect_absent(p.err, "\n\t"); /* libpq's message on one line */
  check_no_secret(&p, "run (refused)");
  CLI_RUN(&p, "run", DATA "/ok.json", "--json", "--quiet", "--db", refused, "--shutdown-deadline",
          "500");
  expect_exit(&p, 3);
  res = parse_json(p.out);
  expect_contains(jstr(json_object_get(res, "history"), "last_error"), "Connection refused");
  json_decref(res);
  check_no_secret(&p, "run --json (refused)");
  CLI_RUN(&p, "history", "runs", "--db", refused);
  expect_exit(&p, 1);
  expect_contains(p.err, "Connection refused");
  check_no_secret(&p, "history runs (refused)");
}

/* A connection string libpq would refuse when connecting is a usage error
 * before anything runs; the message names the value, never the password. */
static void test_conninfo_usage_errors(void **state) {
  char url[256], kv[256];
  proc_t p;
  (void)state;
  snprintf(url, sizeof url, "postgresql://u:%s@localhost:notaport/db", SECRET);
  CLI_RUN(&p, "run", DATA "/ok.json", "--db", url);
  expect_exit(&p, 2);
  expect_contains(p.err, "invalid database connection string (from --db): port \"notaport\"");
  expect_absent(p.err, "cli-ok"); /* the workflow did not run */
  assert_int_equal(p.out_len, 0);
  check_no_secret(&p, "run (notaport)");
  CLI_RUN(&p, "history", "runs", "--db", url);
  expect_exit(&p, 2);
  expect_contains(p.err, "port \"notaport\"");
  check_no_secret(&p, "history runs (notaport)");
  CLI_RUN(&p, "migrate", "--db", url);
  expect_exit(&p, 2);
  check_no_secret(&p, "migrate (notaport)");
  snprintf(kv, sizeof kv, "host=127.0.0.1 port=5432,70000 password=%s", SECRET);
  CLI_RUN(&p, "history", "errors", "--db", kv);
  expect_exit(&p, 2);
  expect_contains(p.err, "port \"5432,70000\"");
  check_no_secret(&p, "history errors (port out of range)");
  snprintf(kv, sizeof kv, "host=127.0.0.1 connect_timeout=soon password=%s", SECRET);
  CLI_RUN(&p, "run", DATA "/ok.json", "--db", kv);
  expect_exit(&p, 2);
  expect_contains(p.err, "connect_timeout \"soon\"");
  check_no_secret(&p, "run (connect_timeout)");
  {
    const char *const env[] = {"PGPORT=notaport", "PGHOST=127.0.0.1", NULL};
    const char *const args[] = {"history", "runs", NULL};
    cli_run_env(&p, args, env);
    expect_exit(&p, 2);
    expect_contains(p.err, "PGPORT \"notaport\"");
    proc_free(&p);
  }
  /* Several hosts with their ports are fine (the server is then tried). */
  snprintf(kv, sizeof kv, "host=127.0.0.1,127.0.0.1 port=%d,%d dbname=x", free_port(), free_port());
  CLI_RUN(&p, "history", "runs", "--db", kv);
  expect_exit(&p, 1);
  expect_contains(p.err, "Connection refused");
  proc_free(&p);
}

/* libpq is opened only by what speaks to a server (src/pg/pq.h): without
 * it, validate and run --no-history work, and the others say why not. */
static void test_libpq_on_demand(void **state) {
  static const char *const env[] = {"FLOWCORE_LIBPQ=/nonexistent/libpq.so.5", NULL};
  static const char *const validate[] = {"validate", DATA "/ok.json", NULL};
  static const char *const nohist[] = {"run", DATA "/ok.json", "--no-history", "--quiet", NULL};
  static const char *const version[] = {"--version", NULL};
  static const char *const hist[] = {"run", DATA "/ok.json", "--db", "dbname=x", NULL};
  static const char *const runs[] = {"history", "runs", "--db", "dbname=x", NULL};
  static const char *const migrate[] = {"migrate", "--db", "dbname=x", NULL};
  const char *const *fails[] = {hist, runs, migrate};
  proc_t p;
  size_t i;
  (void)state;
  cli_run_env(&p, validate, env);
  expect_exit(&p, 0);
  proc_free(&p);
  cli_run_env(&p, nohist, env);
  expect_exit(&p, 0);
  proc_free(&p);
  cli_run_env(&p, version, env);
  expect_exit(&p, 0);
  expect_contains(p.out, "libpq not found");
  proc_free(&p);
  for (i = 0; i < sizeof fails / sizeof fails[0]; i++) {
    cli_run_env(&p, fails[i], env);
    if (p.status == 0)
      fail_msg("flowcore %s %s: exit 0 without libpq", fails[i][0], fails[i][1]);
    expect_contains(p.err, "cannot load libpq (/nonexistent/libpq.so.5)");
    expect_absent(p.err, "completed in"); /* nothing ran */
    proc_free(&p);
  }
  CLI_RUN(&p, "--version"); /* and with it, its version */
  expect_exit(&p, 0);
  expect_contains(p.out, ", libpq 1");
  proc_free(&p);
}

/* A database that does not exist: said so, with createdb, not migrate. */
static void test_missing_database(void **state) {
  char db[FC_TEST_PG_CONNINFO_LENGTH];
  proc_t p;
  (void)state;
  assert_int_equal(fc_test_pg_conninfo_with_db(g_pg.conninfo, "fc_no_such_db", db, sizeof db), 0);
  CLI_RUN(&p, "run", DATA "/ok.json", "--db", db, "--shutdown-deadline", "500");
  expect_exit(&p, 3);
  expect_contains(p.err, "database \"fc_no_such_db\" does not exist");
  expect_contains(p.err, "hint: the database \"fc_no_such_db\" does not exist: create it "
                         "(createdb 'fc_no_such_db')");
  expect_absent(p.err, "flowcore migrate");
  proc_free(&p);
  CLI_RUN(&p, "history", "runs", "--db", db);
  expect_exit(&p, 1);
  expect_contains(p.err, "(createdb 'fc_no_such_db')");
  expect_absent(p.err, "flowcore migrate");
  proc_free(&p);
  CLI_RUN(&p, "migrate", "--db", db);
  expect_exit(&p, 1);
  expect_contains(p.err, "(createdb 'fc_no_such_db')");
  proc_free(&p);
}

/* A malformed run id is a usage error without a database. */
static void test_history_show_bad_id(void **state) {
  char nowhere[128];
  proc_t p;
  (void)state;
  snprintf(nowhere, sizeof nowhere, "host=127.0.0.1 port=%d dbname=x connect_timeout=2",
           free_port());
  CLI_RUN(&p, "history", "show", "BADID", "--db", nowhere);
  expect_exit(&p, 2);
  expect_contains(p.err, "invalid run id 'BADID'");
  expect_absent(p.err, "connect");
  proc_free(&p);
  CLI_RUN(&p, "history", "show", "01a2-zz", "--json", "--db", nowhere);
  expect_exit(&p, 2);
  expect_contains(p.err, "invalid run id '01a2-zz'");
  proc_free(&p);
  /* A well-formed prefix does need the server. */
  CLI_RUN(&p, "history", "show", "01a2", "--db", nowhere);
  expect_exit(&p, 1);
  expect_contains(p.err, "cannot connect to the database");
  proc_free(&p);
}

/* The writer's connections are killed in the middle of a run: it
 * reconnects and writes everything, and then reports no error. */
static void test_last_error_cleared(void **state) {
  char marker[256], env_marker[300];
  const char *const env[] = {env_marker, NULL};
  const char *const args[] = {"run", DATA "/slow.json", "--json", "--db", g_db, NULL};
  proc_t p;
  json_t *res, *hist;
  int i;
  int64_t n = 0;
  (void)state;
  snprintf(marker, sizeof marker, "%s/slow-started-2", g_tmp);
  snprintf(env_marker, sizeof env_marker, "CLI_TEST_MARKER=%s", marker);
  unlink(marker);
  cli_start(&p, args, env);
  if (wait_for_file(marker, 20000) != 0) {
    kill(p.pid, SIGKILL);
    cli_finish(&p, CALL_TIMEOUT_MS);
    fail_msg("the exec node did not start; stderr:\n%s", p.err);
  }
  /* Both writer connections up, then terminated. */
  for (i = 0; i < 100; i++) {
    n = fc_test_pg_int(g_db,
                       "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND "
                       "application_name = 'flowcore-writer'",
                       g_dbname);
    if (n >= 2)
      break;
    usleep(50000);
  }
  assert_true(n >= 2);
  {
    char *killed_at = fc_test_pg_text(g_db, "SELECT now()::text");
    n = fc_test_pg_int(g_db,
                       "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                       "datname = '%s' AND application_name = 'flowcore-writer'",
                       g_dbname);
    assert_true(n >= 2);
    /* The writer sees it, and reconnects behind its backoff. */
    for (i = 0; i < 200; i++) {
      n = fc_test_pg_int(g_db,
                         "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND "
                         "application_name = 'flowcore-writer' AND backend_start > '%s'",
                         g_dbname, killed_at);
      if (n >= 2)
        break;
      usleep(50000);
    }
    free(killed_at);
    assert_true(n >= 2);
  }
  assert_int_equal(kill(p.pid, SIGINT), 0);
  cli_finish(&p, 30000);
  expect_exit(&p, 1); /* cancelled */
  res = parse_json(p.out);
  hist = json_object_get(res, "history");
  assert_int_equal(jint(hist, "dropped"), 0);
  assert_true(jint(hist, "written") > 0);
  if (!json_is_null(json_object_get(hist, "last_error")))
    fail_msg("last_error after everything was written: %s",
             json_string_value(json_object_get(hist, "last_error")));
  EXPECT_DB_TEXT("cancelled", "SELECT status FROM workflow_executions WHERE workflow_id = '%s'",
                 jstr(res, "workflow_id"));
  json_decref(res);
  proc_free(&p);
}

/* Display width of the first n bytes of UTF-8 text whose characters are
 * all one column wide (here: ASCII and µ). */
static size_t columns(const char *s, size_t n) {
  size_t w = 0, i;
  for (i = 0; i < n && s[i] != '\0'; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80)
      w++;
  return w;
}

/* The character at display column `col` (0-based) of a line of len bytes,
 * or '\n' past its end (first byte of a multi-byte character). */
static char char_at_column(const char *line, size_t len, size_t col) {
  size_t i;
  for (i = 0; i < len; i++)
    if (((unsigned char)line[i] & 0xC0) != 0x80 && columns(line, i) == col)
      return line[i];
  return '\n';
}

/* "µs" only in a UTF-8 locale ("us" otherwise), and the table stays
 * aligned: every row of `history show`'s node table ends its DURATION cell
 * (right-aligned) in the same column as the header. */
static void test_microseconds_and_locale(void **state) {
  json_t *res;
  char id[40];
  proc_t p;
  (void)state;
  res = run_json(DATA "/ok.json", 0, NULL); /* its "set" nodes take microseconds */
  snprintf(id, sizeof id, "%s", jstr(res, "workflow_id"));
  json_decref(res);
  {
    const char *const env[] = {"LC_ALL=C", NULL};
    const char *const args[] = {"history", "show", id, "--db", g_db, NULL};
    cli_run_env(&p, args, env);
    expect_exit(&p, 0);
    expect_absent(p.out, "\xc2\xb5");
    expect_contains(p.out, "us  "); /* e.g. "+36us  " in START, "4us" in DURATION */
    proc_free(&p);
  }
  {
    const char *const env[] = {"LC_ALL=C.UTF-8", NULL};
    const char *const args[] = {"history", "show", id, "--db", g_db, NULL};
    const char *line, *header;
    size_t edge, rows = 0;
    cli_run_env(&p, args, env);
    expect_exit(&p, 0);
    expect_contains(p.out, "\xc2\xb5s");
    header = strstr(p.out, "NODE ");
    assert_non_null(header);
    edge = columns(header, (size_t)(strstr(header, "DURATION") - header)) + 8;
    for (line = strchr(header, '\n') + 1; *line != '\0'; line = strchr(line, '\n') + 1) {
      size_t len = (size_t)(strchr(line, '\n') - line);
      char last = char_at_column(line, len, edge - 1), next = char_at_column(line, len, edge);
      if (last == ' ' || last == '\n' || (next != ' ' && next != '\n'))
        fail_msg("DURATION not aligned at column %zu in:\n%s", edge, p.out);
      rows++;
    }
    assert_int_equal(rows, 5);
    proc_free(&p);
  }
}

static void test_password_never_printed(void **state) {
  char down_kv[256], down_url[256], bad_url[256], bad_url2[256], id[40];
  char env_db[FC_TEST_PG_CONNINFO_LENGTH + 16];
  proc_t p;
  json_t *res;
  (void)state;
  snprintf(down_kv, sizeof down_kv, "host=%s/no-server port=5 dbname=x password=%s", g_tmp, SECRET);
  snprintf(down_url, sizeof down_url, "postgresql://postgres:%s@127.0.0.1:1/nodb", SECRET);
  snprintf(bad_url, sizeof bad_url, "postgresql://postgres:%s%%zz@127.0.0.1:1/nodb", SECRET);
  snprintf(bad_url2, sizeof bad_url2, "postgresql://postgres:%s@127.0.0.1:notaport/nodb", SECRET);

  /* A live server (trust authentication ignores the password). */
  CLI_RUN(&p, "run", DATA "/fail.json", "--json", "--db", g_db_secret);
  expect_exit(&p, 1);
  res = parse_json(p.out);
  snprintf(id, sizeof id, "%s", jstr(res, "workflow_id"));
  json_decref(res);
  check_no_secret(&p, "run --json");
  CLI_RUN(&p, "run", DATA "/fail.json", "--db", g_db_secret);
  expect_exit(&p, 1);
  check_no_secret(&p, "run");
  CLI_RUN(&p, "history", "runs", "--db", g_db_secret);
  expect_exit(&p, 0);
  check_no_secret(&p, "history runs");
  CLI_RUN(&p, "history", "runs", "--json", "--db", g_db_secret);
  expect_exit(&p, 0);
  check_no_secret(&p, "history runs --json");
  CLI_RUN(&p, "history", "show", id, "--db", g_db_secret);
  expect_exit(&p, 0);
  check_no_secret(&p, "history show");
  CLI_RUN(&p, "history", "show", id, "--json", "--db", g_db_secret);
  expect_exit(&p, 0);
  check_no_secret(&p, "history show --json");
  CLI_RUN(&p, "history", "errors", "--db", g_db_secret);
  expect_exit(&p, 0);
  check_no_secret(&p, "history errors");
  CLI_RUN(&p, "history", "stats", "--json", "--db", g_db_secret);
  expect_exit(&p, 0);
  check_no_secret(&p, "history stats");
  CLI_RUN(&p, "migrate", "--status", "--db", g_db_secret);
  expect_exit(&p, 0);
  check_no_secret(&p, "migrate --status");
  CLI_RUN(&p, "migrate", "--db", g_db_secret);
  expect_exit(&p, 0);
  check_no_secret(&p, "migrate");

  /* Servers that are down, connection strings that do not parse. */
  CLI_RUN(&p, "run", DATA "/ok.json", "--db", down_kv, "--shutdown-deadline", "100");
  expect_exit(&p, 3);
  check_no_secret(&p, "run (down, key=value)");
  CLI_RUN(&p, "run", DATA "/ok.json", "--json", "--db", down_url, "--shutdown-deadline", "300");
  expect_exit(&p, 3);
  check_no_secret(&p, "run --json (down, URL)");
  CLI_RUN(&p, "history", "runs", "--db", down_url);
  expect_exit(&p, 1);
  check_no_secret(&p, "history runs (down)");
  CLI_RUN(&p, "migrate", "--db", down_kv);
  expect_exit(&p, 1);
  check_no_secret(&p, "migrate (down)");
  CLI_RUN(&p, "history", "runs", "--db", bad_url);
  expect_exit(&p, 2);
  expect_contains(p.err, "invalid database connection string");
  check_no_secret(&p, "history runs (bad URL)");
  CLI_RUN(&p, "run", DATA "/ok.json", "--db", bad_url);
  expect_exit(&p, 2);
  check_no_secret(&p, "run (bad URL)");
  CLI_RUN(&p, "history", "errors", "--db", bad_url2);
  expect_exit(&p, 2);
  check_no_secret(&p, "history errors (bad port)");
  CLI_RUN(&p, "run", DATA "/ok.json", "--json", "--db", bad_url2, "--shutdown-deadline", "200");
  expect_exit(&p, 2);
  check_no_secret(&p, "run (bad port)");

  /* From the environment, and PGPASSWORD. */
  snprintf(env_db, sizeof env_db, "DATABASE_URL=%s", down_url);
  {
    const char *const env[] = {env_db, "PGPASSWORD=" SECRET, NULL};
    const char *const run_args[] = {"run", DATA "/ok.json", "--shutdown-deadline", "100", NULL};
    const char *const hist_args[] = {"history", "runs", NULL};
    cli_run_env(&p, run_args, env);
    expect_exit(&p, 3);
    check_no_secret(&p, "run (DATABASE_URL)");
    cli_run_env(&p, hist_args, env);
    expect_exit(&p, 1);
    check_no_secret(&p, "history runs (DATABASE_URL)");
  }
}

/* ---- abandoned runs: history running / runs / reap ------------------------------------ */

/* The running run of process pid (its history written), or fails after
 * 20 s. The id goes into id. */
static void wait_run_of(pid_t pid, char id[40]) {
  int i;
  for (i = 0; i < 200; i++) {
    if (fc_test_pg_int(g_db,
                       "SELECT count(*) FROM workflow_executions w JOIN node_executions n "
                       "USING (workflow_id) WHERE w.pid = %d AND w.status = 'running' "
                       "AND n.node_id = 'long' AND n.status = 'running'",
                       (int)pid) == 1) {
      char *t = fc_test_pg_text(g_db, "SELECT workflow_id FROM workflow_executions WHERE pid = %d",
                                (int)pid);
      snprintf(id, 40, "%s", t);
      free(t);
      return;
    }
    usleep(100000);
  }
  fail_msg("the history of process %d did not show its running node", (int)pid);
}

/* The object of array arr whose workflow_id is id (fails if none). */
static json_t *find_run(json_t *arr, const char *id) {
  size_t i;
  json_t *o;
  json_array_foreach(arr, i, o) {
    if (strcmp(jstr(o, "workflow_id"), id) == 0)
      return o;
  }
  fail_msg("run %s not in the output", id);
  return NULL;
}

/* A run killed with SIGKILL stays `running` in the history; `history
 * running` and `history runs` tell it abandoned (its process is gone),
 * `history reap` marks it so and records it, and leaves a live run alone;
 * on another host the stale rule decides. */
static void test_history_reap(void **state) {
  char wf_path[256], host[256], dead_id[40], live_id[40], *t;
  const char *run_args[] = {"run", wf_path, "--db", g_db, "--quiet", NULL};
  proc_t dead, live, p;
  json_t *arr, *o;
  FILE *f;
  (void)state;
  assert_int_equal(gethostname(host, sizeof host), 0);
  snprintf(wf_path, sizeof wf_path, "%s/sleepy.json", g_tmp);
  f = fopen(wf_path, "w");
  assert_non_null(f);
  fputs("{\"name\": \"sleepy\", \"nodes\": [{\"id\": \"a\", \"type\": \"pass\"},"
        " {\"id\": \"long\", \"type\": \"sleep\", \"ms\": 60000, \"after\": [\"a\"]}]}",
        f);
  fclose(f);
  cli_start(&dead, run_args, NULL);
  cli_start(&live, run_args, NULL);
  wait_run_of(dead.pid, dead_id);
  wait_run_of(live.pid, live_id);
  /* host and pid are recorded */
  EXPECT_DB_TEXT(host, "SELECT host FROM workflow_executions WHERE workflow_id = '%s'", dead_id);
  assert_int_equal(kill(dead.pid, SIGKILL), 0);
  cli_finish(&dead, CALL_TIMEOUT_MS);
  assert_int_equal(dead.status, 128 + SIGKILL);
  EXPECT_DB_TEXT("running", "SELECT status FROM workflow_executions WHERE workflow_id = '%s'",
                 dead_id);
  /* Two runs of another host, as a fleet's would be: one idle for 3 hours,
   * one heard of a minute ago. */
  assert_int_equal(
      fc_test_pg_exec(g_db,
                      "INSERT INTO workflow_executions (workflow_id, workflow_name, status, "
                      "started_at, updated_at, host, pid) VALUES "
                      "('018f0000-0000-7000-8000-00000000ab01', 'remote', 'running', "
                      "now() - interval '3 hours', now() - interval '3 hours', "
                      "'elsewhere.invalid', 4242), "
                      "('018f0000-0000-7000-8000-00000000ab02', 'remote', 'running', "
                      "now() - interval '3 hours', now() - interval '1 minute', "
                      "'elsewhere.invalid', 4243)"),
      0);

  CLI_RUN(&p, "history", "running", "--json", "--stale", "10m", "--db", g_db);
  expect_exit(&p, 0);
  arr = parse_json(p.out);
  o = find_run(arr, dead_id);
  assert_string_equal(jstr(o, "liveness"), "abandoned");
  expect_contains(jstr(o, "liveness_reason"), "is gone");
  assert_int_equal(jint(o, "pid"), dead.pid);
  assert_string_equal(jstr(find_run(arr, live_id), "liveness"), "live");
  assert_string_equal(jstr(find_run(arr, "018f0000-0000-7000-8000-00000000ab01"), "liveness"),
                      "abandoned");
  assert_string_equal(jstr(find_run(arr, "018f0000-0000-7000-8000-00000000ab02"), "liveness"),
                      "live");
  json_decref(arr);
  proc_free(&p);
  CLI_RUN(&p, "history", "runs", "--status", "running", "--stale", "10m", "--db", g_db);
  expect_exit(&p, 0);
  expect_contains(p.out, "running (abandoned)");
  expect_contains(p.err, "2 runs marked running look abandoned");
  proc_free(&p);

  /* --dry-run changes nothing */
  CLI_RUN(&p, "history", "reap", "--dry-run", "--stale", "10m", "--db", g_db);
  expect_exit(&p, 0);
  expect_contains(p.out, "2 runs would be marked abandoned");
  proc_free(&p);
  assert_int_equal(fc_test_pg_int(g_db, "SELECT count(*) FROM flowcore_reaps"), 0);

  CLI_RUN(&p, "history", "reap", "--stale", "10m", "--db", g_db);
  expect_exit(&p, 0);
  expect_contains(p.out, "2 runs marked abandoned");
  proc_free(&p);
  EXPECT_DB_TEXT("abandoned|abandoned", "SELECT status || '|' || error_type FROM "
                                        "workflow_executions WHERE workflow_id = '%s'",
                 dead_id);
  t = fc_test_pg_text(g_db,
                      "SELECT rule || '|' || run_host || '|' || run_pid || '|' || reaper_host "
                      "|| '|' || reaped_by FROM flowcore_reaps WHERE workflow_id = '%s'",
                      dead_id);
  {
    char want[700], *user = fc_test_pg_text(g_db, "SELECT current_user");
    snprintf(want, sizeof want, "process_gone|%s|%d|%s|%s", host, (int)dead.pid, host, user);
    free(user);
    assert_string_equal(t, want);
  }
  free(t);
  EXPECT_DB_TEXT("stale|elsewhere.invalid|4242",
                 "SELECT rule || '|' || run_host || '|' || run_pid FROM flowcore_reaps "
                 "WHERE workflow_id = '018f0000-0000-7000-8000-00000000ab01'");
  /* live runs untouched: this host's live process, the recent remote run */
  EXPECT_DB_TEXT("running", "SELECT status FROM workflow_executions WHERE workflow_id = '%s'",
                 live_id);
  EXPECT_DB_TEXT("running", "SELECT status FROM workflow_executions WHERE workflow_id = "
                            "'018f0000-0000-7000-8000-00000000ab02'");
  assert_int_equal(fc_test_pg_int(g_db, "SELECT count(*) FROM flowcore_reaps"), 2);
  /* the abandoned run is finished history now, for everyone */
  assert_int_not_equal(fc_test_pg_exec(g_db, "UPDATE workflow_executions SET status = 'failed' "
                                             "WHERE workflow_id = '%s'",
                                       dead_id),
                       0);

  CLI_RUN(&p, "history", "runs", "--status", "abandoned", "--db", g_db);
  expect_exit(&p, 0);
  expect_contains(p.out, dead_id);
  expect_absent(p.out, live_id);
  proc_free(&p);
  CLI_RUN(&p, "history", "show", dead_id, "--db", g_db);
  expect_exit(&p, 0);
  expect_contains(p.out, "status    abandoned");
  expect_contains(p.out, "reaped    ");
  expect_contains(p.out, "is gone");
  proc_free(&p);
  /* a second reap finds nothing more */
  CLI_RUN(&p, "history", "reap", "--stale", "10m", "--db", g_db);
  expect_exit(&p, 0);
  expect_contains(p.out, "0 runs marked abandoned");
  proc_free(&p);

  /* the live run ends normally */
  assert_int_equal(kill(live.pid, SIGTERM), 0);
  cli_finish(&live, CALL_TIMEOUT_MS);
  assert_int_equal(live.status, 1);
  EXPECT_DB_TEXT("cancelled", "SELECT status FROM workflow_executions WHERE workflow_id = '%s'",
                 live_id);
  proc_free(&dead);
  proc_free(&live);
  assert_int_equal(fc_test_pg_exec(g_db, "DELETE FROM flowcore_reaps; DELETE FROM "
                                         "workflow_executions WHERE workflow_name = 'remote'"),
                   0);
}

int main(void) {
  /* clang-format off */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_help_and_version),
      cmocka_unit_test(test_validate),
      cmocka_unit_test(test_run_invalid_files),
      cmocka_unit_test(test_run_completed_json),
      cmocka_unit_test(test_run_text_and_input),
      cmocka_unit_test(test_run_history_max_bytes),
      cmocka_unit_test(test_run_failed),
      cmocka_unit_test(test_run_missing_command),
      cmocka_unit_test(test_run_sigint_cancels),
      cmocka_unit_test_teardown(test_run_escaped_grandchild, kill_strays),
      cmocka_unit_test_teardown(test_run_escaped_grandchild_sigint, kill_strays),
      cmocka_unit_test(test_run_history_lost_exit_3),
      cmocka_unit_test(test_run_metrics_file),
      cmocka_unit_test(test_examples),
      cmocka_unit_test(test_migrate_status),
      cmocka_unit_test(test_history_commands),
      cmocka_unit_test(test_password_never_printed),
      cmocka_unit_test_teardown(test_stdout_write_errors, stdout_reset),
      cmocka_unit_test(test_connection_refused),
      cmocka_unit_test(test_conninfo_usage_errors),
      cmocka_unit_test(test_libpq_on_demand),
      cmocka_unit_test(test_missing_database),
      cmocka_unit_test(test_history_show_bad_id),
      cmocka_unit_test(test_last_error_cleared),
      cmocka_unit_test(test_microseconds_and_locale),
      cmocka_unit_test(test_history_reap),
  };
  /* clang-format on */
  /* A flowcore that dies early must not kill the test with SIGPIPE. */
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests_name("cli", tests, group_setup, group_teardown);
}

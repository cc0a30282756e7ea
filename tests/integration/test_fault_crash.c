/* Crash safety: `flowcore run --spool-dir` killed with SIGKILL while the
 * database is down; a new flowcore process started later against the same
 * spool directory (with the server back) delivers every record the crashed
 * process had spooled, exactly once. */
#define _DEFAULT_SOURCE /* usleep, kill */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fc_test.h"
#include "pg_server.h"

#define FLOWCORE FLOWCORE_BINARY_DIR "/flowcore"

static fc_test_pg_t pg;
static char db[FC_TEST_PG_CONNINFO_LENGTH];
static char dir[256];

static int group_setup(void **state) {
  fc_migrate_report_t rep;
  fc_error_t err;
  (void)state;
  if (fc_test_pg_start(&pg) != 0 || fc_test_pg_create_db(&pg, "crash", db, sizeof db) != 0)
    return -1;
  fc_error_clear(&err);
  if (fc_migrate_run(db, FLOWCORE_SOURCE_DIR "/migrations", &rep, &err) != 0)
    return -1;
  fc_migrate_report_free(&rep);
  snprintf(dir, sizeof dir, "/tmp/fc-crash-%d", (int)getpid());
  mkdir(dir, 0700);
  return 0;
}

static int group_teardown(void **state) {
  char cmd[512];
  (void)state;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    return -1;
  return fc_test_pg_stop(&pg);
}

/* Bytes in the spool directory's files. */
static long long spool_bytes(const char *spool) {
  DIR *d = opendir(spool);
  struct dirent *de;
  long long total = 0;
  if (d == NULL)
    return 0;
  while ((de = readdir(d)) != NULL) {
    char p[1024];
    struct stat st;
    if (strstr(de->d_name, ".spool") == NULL)
      continue;
    snprintf(p, sizeof p, "%s/%s", spool, de->d_name);
    if (stat(p, &st) == 0)
      total += st.st_size;
  }
  closedir(d);
  return total;
}

/* Starts `flowcore run FILE --db DB --spool-dir SPOOL --quiet`, output to
 * /dev/null. Returns the pid. */
static pid_t spawn_run(const char *file, const char *spool) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fd = open("/dev/null", O_WRONLY);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execl(FLOWCORE, "flowcore", "run", file, "--db", db, "--spool-dir", spool, "--quiet",
          (char *)NULL);
    _exit(127);
  }
  return pid;
}

static int wait_exit(pid_t pid) {
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void test_kill9_then_replay_by_next_process(void **state) {
  char wf_path[512], spool[512], small[512];
  FILE *f;
  pid_t pid;
  int i, rc;
  long long before, after;
  (void)state;
  snprintf(spool, sizeof spool, "%s/spool", dir);
  assert_int_equal(mkdir(spool, 0700), 0);
  /* 300 quick nodes, then one that sleeps long enough to be killed in. */
  snprintf(wf_path, sizeof wf_path, "%s/crash.json", dir);
  f = fopen(wf_path, "w");
  assert_non_null(f);
  fprintf(f, "{\"name\": \"crashing\", \"nodes\": [");
  for (i = 0; i < 300; i++)
    fprintf(f, "{\"id\": \"n%d\", \"type\": \"set\", \"output\": {\"i\": %d}},", i, i);
  fprintf(f, "{\"id\": \"long\", \"type\": \"sleep\", \"ms\": 60000}]}");
  fclose(f);
  snprintf(small, sizeof small, "%s/small.json", dir);
  f = fopen(small, "w");
  assert_non_null(f);
  fprintf(f, "{\"name\": \"after-crash\", \"nodes\": [{\"id\": \"a\", \"type\": \"pass\"}]}");
  fclose(f);

  /* The server is down: the run's history goes to the spool. */
  assert_int_equal(fc_test_pg_stop_only(&pg), 0);
  pid = spawn_run(wf_path, spool);
  /* Wait until the spool has the quick nodes' records and stopped growing
   * for longer than the fsync interval (200 ms). */
  before = -1;
  for (i = 0; i < 200; i++) {
    usleep(100000);
    after = spool_bytes(spool);
    if (after > 20000 && after == before)
      break;
    before = after;
  }
  assert_true(after > 20000);
  usleep(400000); /* past one more fsync interval */
  assert_int_equal(kill(pid, SIGKILL), 0);
  assert_int_equal(wait_exit(pid), 128 + SIGKILL);
  assert_true(spool_bytes(spool) >= after);

  /* The server is back; a new process on the same spool replays it. */
  assert_int_equal(fc_test_pg_start_again(&pg), 0);
  pid = spawn_run(small, spool);
  rc = wait_exit(pid);
  assert_int_equal(rc, 0);

  /* Every spooled record arrived, once: the 300 quick nodes completed, the
   * long node's start (it was running when killed), the run's start. */
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions w "
                                      "WHERE workflow_name = 'crashing' AND status = 'running'"),
                   1);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions n JOIN workflow_executions w "
                                      "USING (workflow_id) WHERE w.workflow_name = 'crashing' "
                                      "AND n.status = 'completed' AND CASE WHEN n.node_id ~ '^n[0-9]+$' "
                                      "THEN (n.output_data->>'i')::int = substr(n.node_id, 2)::int "
                                      "END"), /* CASE: the planner may test rows of other runs */
                   300);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM node_executions n JOIN workflow_executions w "
                                      "USING (workflow_id) WHERE w.workflow_name = 'crashing' "
                                      "AND n.node_id = 'long' AND n.status = 'running'"),
                   1);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) - count(DISTINCT (workflow_id, node_id, attempt)) "
                                      "FROM node_executions"),
                   0);
  /* and the new process's own run, written normally */
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM workflow_executions "
                                      "WHERE workflow_name = 'after-crash' AND status = 'completed'"),
                   1);
  assert_int_equal(spool_bytes(spool), 0); /* replayed files are deleted */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kill9_then_replay_by_next_process),
  };
  if (getenv("FLOWCORE_TEST_PG") != NULL) {
    /* It stops the server: needs its own. */
    printf("test_fault_crash: skipped against FLOWCORE_TEST_PG\n");
    return 0;
  }
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/* The spool's disk fills up: `flowcore run --spool-dir` on a small tmpfs
 * with the database down. Every record the run reports as spooled must be
 * on disk and come back in the next process's replay; every other record
 * must be counted as dropped (spool_full), and the run exits 3:
 *   replayed (next process) == spooled, spooled + dropped == accepted.
 * Two shapes: records trickling in over ~3 s onto a nearly full disk, and a
 * burst of 40,002 records onto an empty 2 MiB one. Needs root (mount). */
#define _GNU_SOURCE /* mkdtemp */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fc_test.h"
#include "history_fixture.h"
#include "pg_server.h"

#define FLOWCORE FLOWCORE_BINARY_DIR "/flowcore"

static fc_test_pg_t pg;
static char db[FC_TEST_PG_CONNINFO_LENGTH];
static char dir[64];    /* a scratch directory */
static char mnt[128];   /* dir/mnt: the small tmpfs */
static char spool[160]; /* mnt/spool */
static int db_seq;

static int group_setup(void **state) {
  (void)state;
  return fc_test_pg_start(&pg) == 0 ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  return fc_test_pg_stop(&pg);
}

static int test_setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/fc-spool-full-XXXXXX");
  if (mkdtemp(dir) == NULL)
    return -1;
  snprintf(mnt, sizeof mnt, "%s/mnt", dir);
  snprintf(spool, sizeof spool, "%s/spool", mnt);
  return mkdir(mnt, 0700);
}

static int test_teardown(void **state) {
  char cmd[256];
  (void)state;
  (void)umount2(mnt, MNT_DETACH); /* not mounted when skipped */
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    return -1;
  if (!pg.external && !pg.running) /* an external server is never stopped */
    return fc_test_pg_start_again(&pg);
  return 0;
}

/* Skips unless root, then mounts a tmpfs of `size` bytes on mnt. */
static void mount_small_fs(long size) {
  char opts[64];
  if (geteuid() != 0)
    skip();
  if (pg.external)
    skip(); /* the test stops the server */
  snprintf(opts, sizeof opts, "size=%ld,mode=0700", size);
  if (mount("tmpfs", mnt, "tmpfs", 0, opts) != 0)
    fail_msg("mount -t tmpfs %s: %s", mnt, strerror(errno));
}

/* Fills the filesystem of mnt with mnt/filler until `left` bytes are free. */
static void fill_to(long left) {
  struct statvfs vfs;
  char path[256];
  long fill;
  int fd;
  assert_int_equal(statvfs(mnt, &vfs), 0);
  fill = (long)(vfs.f_bavail * vfs.f_frsize) - left;
  assert_true(fill > 0);
  snprintf(path, sizeof path, "%s/filler", mnt);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(posix_fallocate(fd, 0, fill), 0);
  close(fd);
  assert_int_equal(statvfs(mnt, &vfs), 0);
  assert_int_equal((long)(vfs.f_bavail * vfs.f_frsize), left);
}

/* Bytes in the spool directory's files. */
static long long files_bytes(void) {
  DIR *d = opendir(spool);
  struct dirent *de;
  long long total = 0;
  if (d == NULL)
    return 0;
  while ((de = readdir(d)) != NULL) {
    char p[512];
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

/* Runs `flowcore run FILE --db DB --spool-dir SPOOL --json` and returns its
 * exit code; the parsed JSON result goes to *out, the pid to *pid_out. */
static int run_flowcore(const char *file, json_t **out, pid_t *pid_out) {
  int fds[2], status;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  ssize_t n;
  json_error_t jerr;
  pid_t pid;
  assert_int_equal(pipe(fds), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(fds[1], 1);
    if (null >= 0)
      dup2(null, 2);
    close(fds[0]);
    execl(FLOWCORE, "flowcore", "run", file, "--db", db, "--spool-dir", spool, "--json",
          (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  do {
    if (len + 65536 > cap) {
      cap = cap * 2 + 65536;
      buf = realloc(buf, cap);
      assert_non_null(buf);
    }
    n = read(fds[0], buf + len, cap - 1 - len);
    len += n > 0 ? (size_t)n : 0;
  } while (n > 0);
  close(fds[0]);
  buf[len] = '\0';
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  *out = json_loads(buf, 0, &jerr);
  if (*out == NULL)
    fail_msg("flowcore run printed no JSON (%s): %.2000s", jerr.text, buf);
  free(buf);
  if (pid_out != NULL)
    *pid_out = pid;
  return WEXITSTATUS(status);
}

static long long hist(json_t *result, const char *key) {
  json_t *v = json_object_get(json_object_get(result, "history"), key);
  assert_true(json_is_integer(v));
  return (long long)json_integer_value(v);
}

static long long spool_full(json_t *result) {
  json_t *v = json_object_get(
      json_object_get(json_object_get(result, "history"), "dropped_by_reason"), "spool_full");
  assert_true(json_is_integer(v));
  return (long long)json_integer_value(v);
}

/* The run with the server down (`left` >= 0: only that many bytes free on
 * the tmpfs), then the checks: exit 3, accepted == spooled + dropped, all
 * dropped counted as spool_full, spool_bytes what the files hold; then with
 * the space freed and the server back, the next process replays exactly the
 * records claimed as spooled, once. */
static void run_and_replay(const char *wf_path, const char *wf_name, long long records, long left) {
  char path[512], small[256];
  json_t *a, *b;
  pid_t pid_a;
  long long spooled, dropped;
  FILE *f;
  int rc;

  snprintf(small, sizeof small, "%s/small.json", dir);
  f = fopen(small, "w");
  assert_non_null(f);
  fprintf(f, "{\"name\": \"after\", \"nodes\": [{\"id\": \"a\", \"type\": \"pass\"}]}");
  fclose(f);

  assert_int_equal(fc_test_pg_stop_only(&pg), 0);
  if (left >= 0)
    fill_to(left);
  rc = run_flowcore(wf_path, &a, &pid_a);
  spooled = hist(a, "spooled");
  dropped = hist(a, "dropped");
  printf("%s: exit %d, accepted %lld, spooled %lld, dropped %lld (spool_full %lld), "
         "spool_bytes %lld, on disk %lld, last_error \"%s\"\n",
         wf_name, rc, hist(a, "accepted"), spooled, dropped, spool_full(a), hist(a, "spool_bytes"),
         files_bytes(),
         json_string_value(json_object_get(json_object_get(a, "history"), "last_error")));
  assert_int_equal(hist(a, "accepted"), records);
  assert_int_equal(rc, 3);
  assert_true(spooled > 0);
  assert_true(dropped > 0);
  assert_int_equal(spooled + dropped, records);
  assert_int_equal(spool_full(a), dropped);
  assert_int_equal(hist(a, "spool_bytes"), files_bytes());

  /* Room again, the server back: the next process replays the spool. */
  snprintf(path, sizeof path, "%s/filler", mnt);
  (void)unlink(path);
  assert_int_equal(fc_test_pg_start_again(&pg), 0);
  rc = run_flowcore(small, &b, NULL);
  printf("%s: next process exit %d, replayed %lld, replay_rejected %lld\n", wf_name, rc,
         hist(b, "replayed"), hist(b, "replay_rejected"));
  assert_int_equal(rc, 0);
  assert_int_equal(hist(b, "replayed"), spooled);
  assert_int_equal(hist(b, "replay_rejected"), 0);
  assert_int_equal(files_bytes(), 0);
  assert_int_equal(fc_test_pg_int(db,
                                  "SELECT count(*) FROM workflow_executions "
                                  "WHERE workflow_name = '%s'",
                                  wf_name),
                   1);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) - count(DISTINCT (workflow_id, node_id, "
                                      "attempt)) FROM node_executions"),
                   0);
  /* No more rows than records spooled (a row holds one or two). */
  assert_true(fc_test_pg_int(db, "SELECT count(*) FROM node_executions") < spooled);
  json_decref(a);
  json_decref(b);
}

/* 300 links of a chain: a 10 ms sleep, then a set node with a 300-byte
 * string; 64 KiB free on a 2 MiB tmpfs. */
static void test_slow_trickle_nearly_full(void **state) {
  char wf_path[256], name[32];
  FILE *f;
  int i;
  (void)state;
  mount_small_fs(2 * 1024 * 1024);
  snprintf(name, sizeof name, "spool_full_%d", ++db_seq);
  fc_test_make_db(&pg, name, db, sizeof db);
  snprintf(wf_path, sizeof wf_path, "%s/trickle.json", dir);
  f = fopen(wf_path, "w");
  assert_non_null(f);
  fprintf(f, "{\"name\": \"trickle\", \"nodes\": [");
  for (i = 0; i < 300; i++) {
    if (i == 0)
      fprintf(f, "{\"id\": \"s0\", \"type\": \"sleep\", \"ms\": 10},");
    else
      fprintf(f, "{\"id\": \"s%d\", \"type\": \"sleep\", \"ms\": 10, \"after\": [\"t%d\"]},", i,
              i - 1);
    fprintf(f,
            "{\"id\": \"t%d\", \"type\": \"set\", \"after\": [\"s%d\"], \"output\": {\"s\": "
            "\"%0300d\"}}%s",
            i, i, i, i < 299 ? "," : "");
  }
  fprintf(f, "]}");
  fclose(f);
  run_and_replay(wf_path, "trickle", 1202, 64 * 1024);
}

/* 20,000 quick set nodes at once onto an empty 2 MiB tmpfs. */
static void test_burst_empty(void **state) {
  char wf_path[256], name[32];
  FILE *f;
  int i;
  (void)state;
  mount_small_fs(2 * 1024 * 1024);
  snprintf(name, sizeof name, "spool_full_%d", ++db_seq);
  fc_test_make_db(&pg, name, db, sizeof db);
  snprintf(wf_path, sizeof wf_path, "%s/burst.json", dir);
  f = fopen(wf_path, "w");
  assert_non_null(f);
  fprintf(f, "{\"name\": \"burst\", \"nodes\": [");
  for (i = 0; i < 20000; i++)
    fprintf(f, "{\"id\": \"n%d\", \"type\": \"set\", \"output\": {\"i\": %d}}%s", i, i,
            i < 19999 ? "," : "");
  fprintf(f, "]}");
  fclose(f);
  run_and_replay(wf_path, "burst", 40002, -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_slow_trickle_nearly_full, test_setup, test_teardown),
      cmocka_unit_test_setup_teardown(test_burst_empty, test_setup, test_teardown),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

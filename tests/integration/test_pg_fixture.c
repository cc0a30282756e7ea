/* Tests of the PostgreSQL test fixture itself (tests/support/pg_server.c):
 * the fault tests rely on restart, outage, crash and backend killing doing
 * what they say, and on no server outliving its test process. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fc_test.h"
#include "pg_server.h"

#include <libpq-fe.h>

static fc_test_pg_t g_pg;

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static int can_connect(const char *conninfo) {
  PGconn *c = PQconnectdb(conninfo);
  int ok = PQstatus(c) == CONNECTION_OK;
  PQfinish(c);
  return ok;
}

static void skip_if_external(void) {
  if (g_pg.external)
    skip();
}

static int group_setup(void **state) {
  (void)state;
  return fc_test_pg_start(&g_pg);
}

static int group_teardown(void **state) {
  (void)state;
  return fc_test_pg_stop(&g_pg);
}

static void test_queries(void **state) {
  int64_t v = 0;
  char *t = NULL;
  (void)state;

  assert_int_equal(fc_test_pg_query_int(g_pg.conninfo, &v, "SELECT %d + 1", 41), 0);
  assert_int_equal(v, 42);
  assert_int_equal(fc_test_pg_int(g_pg.conninfo, "SELECT count(*) FROM pg_database"
                                                 " WHERE datname = current_database()"),
                   1);
  assert_int_equal(fc_test_pg_query_text(g_pg.conninfo, &t, "SELECT NULL::text"), 0);
  assert_null(t);
  t = fc_test_pg_text(g_pg.conninfo, "SELECT 'it''s'");
  assert_string_equal(t, "it's");
  free(t);
  if (!g_pg.external) {
    t = fc_test_pg_text(g_pg.conninfo, "SELECT current_database()");
    assert_string_equal(t, "flowcore_test");
    free(t);
    /* Only a unix socket: no TCP listener unless asked for. */
    t = fc_test_pg_text(g_pg.conninfo, "SHOW listen_addresses");
    assert_string_equal(t, "");
    free(t);
    /* Durable by default (fault tests need it). */
    t = fc_test_pg_text(g_pg.conninfo, "SHOW fsync");
    assert_string_equal(t, "on");
    free(t);
  }
  fprintf(stderr, "(errors are expected next)\n");
  assert_int_equal(fc_test_pg_query_int(g_pg.conninfo, &v, "SELECT 1, 2"), -1);
  assert_int_equal(fc_test_pg_query_int(g_pg.conninfo, &v, "SELECT 'x'"), -1);
  assert_int_equal(fc_test_pg_exec(g_pg.conninfo, "SELEC 1"), -1);
  assert_int_equal(fc_test_pg_exec(g_pg.conninfo, "CREATE TABLE IF NOT EXISTS t (x int)"), 0);
}

static void test_conninfo_with_db(void **state) {
  char out[FC_TEST_PG_CONNINFO_LENGTH];
  PQconninfoOption *opts, *o;
  int seen = 0;
  (void)state;

  assert_int_equal(fc_test_pg_conninfo_with_db("postgresql://u:p%27w@/old?host=/tmp/s&port=7",
                                               "new db", out, sizeof out),
                   0);
  opts = PQconninfoParse(out, NULL);
  assert_non_null(opts);
  for (o = opts; o->keyword != NULL; o++) {
    const char *want = NULL;
    if (o->val == NULL)
      continue;
    if (strcmp(o->keyword, "dbname") == 0)
      want = "new db";
    else if (strcmp(o->keyword, "password") == 0)
      want = "p'w";
    else if (strcmp(o->keyword, "host") == 0)
      want = "/tmp/s";
    else if (strcmp(o->keyword, "port") == 0)
      want = "7";
    if (want != NULL) {
      assert_string_equal(o->val, want);
      seen++;
    }
  }
  PQconninfoFree(opts);
  assert_int_equal(seen, 4);
  assert_int_equal(fc_test_pg_conninfo_with_db("host=x", "d", out, 8), -1); /* too long */
}

static void test_create_db(void **state) {
  char db[FC_TEST_PG_CONNINFO_LENGTH];
  char name[64];
  char *t;
  (void)state;

  snprintf(name, sizeof name, "fcfix_%ld", (long)getpid());
  assert_int_equal(fc_test_pg_create_db(&g_pg, name, db, sizeof db), 0);
  assert_int_equal(fc_test_pg_exec(db, "CREATE TABLE x (a int)"), 0);
  t = fc_test_pg_text(db, "SELECT current_database()");
  assert_string_equal(t, name);
  free(t);
  /* Created again: empty again. */
  assert_int_equal(fc_test_pg_create_db(&g_pg, name, db, sizeof db), 0);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'x'"), 0);
  assert_int_equal(fc_test_pg_drop_db(&g_pg, name), 0);
  assert_int_equal(can_connect(db), 0);
}

static void test_kill_backends(void **state) {
  PGconn *c;
  PGresult *res;
  (void)state;
  skip_if_external();

  c = PQconnectdb(g_pg.conninfo);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  assert_true(fc_test_pg_kill_backends(&g_pg) >= 1);
  res = PQexec(c, "SELECT 1");
  assert_int_not_equal(PQresultStatus(res), PGRES_TUPLES_OK);
  PQclear(res);
  PQreset(c);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  PQfinish(c);
  assert_int_equal(fc_test_pg_kill_backends(&g_pg), 0);
}

static void test_restart(void **state) {
  PGconn *c;
  PGresult *res;
  (void)state;
  skip_if_external();

  assert_int_equal(fc_test_pg_exec(g_pg.conninfo, "CREATE TABLE restart_t (x int);"
                                                  " INSERT INTO restart_t VALUES (1)"),
                   0);
  c = PQconnectdb(g_pg.conninfo);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  assert_int_equal(fc_test_pg_restart(&g_pg), 0);
  res = PQexec(c, "SELECT 1");
  assert_int_not_equal(PQresultStatus(res), PGRES_TUPLES_OK); /* the old session is gone */
  PQclear(res);
  PQfinish(c);
  assert_int_equal(fc_test_pg_int(g_pg.conninfo, "SELECT count(*) FROM restart_t"), 1);
}

static void test_outage_and_crash(void **state) {
  (void)state;
  skip_if_external();

  assert_int_equal(fc_test_pg_stop_only(&g_pg), 0);
  assert_int_equal(can_connect(g_pg.conninfo), 0);
  assert_int_equal(fc_test_pg_stop_only(&g_pg), -1); /* not running */
  assert_int_equal(fc_test_pg_start_again(&g_pg), 0);
  assert_int_equal(fc_test_pg_start_again(&g_pg), -1); /* already running */
  assert_int_equal(can_connect(g_pg.conninfo), 1);

  /* A crash loses nothing committed (fsync is on by default). */
  assert_int_equal(fc_test_pg_exec(g_pg.conninfo,
                                   "CREATE TABLE crash_t (x int);"
                                   " INSERT INTO crash_t SELECT generate_series(1, 1000)"),
                   0);
  assert_int_equal(fc_test_pg_crash(&g_pg), 0);
  assert_int_equal(can_connect(g_pg.conninfo), 0);
  assert_int_equal(fc_test_pg_start_again(&g_pg), 0);
  assert_int_equal(fc_test_pg_int(g_pg.conninfo, "SELECT count(*) FROM crash_t"), 1000);
}

/* Options: TCP on 127.0.0.1 only, extra settings, fsync off. */
static void test_options(void **state) {
  fc_test_pg_options_t opts = {1, 1, "max_connections = 17"};
  fc_test_pg_t pg;
  char *t;
  (void)state;
  skip_if_external();

  assert_int_equal(fc_test_pg_start_ex(&pg, &opts), 0);
  assert_int_not_equal(pg.port, g_pg.port);
  t = fc_test_pg_text(pg.conninfo_tcp, "SELECT host(inet_server_addr())");
  assert_string_equal(t, "127.0.0.1");
  free(t);
  t = fc_test_pg_text(pg.conninfo, "SHOW listen_addresses");
  assert_string_equal(t, "127.0.0.1");
  free(t);
  t = fc_test_pg_text(pg.conninfo, "SHOW max_connections");
  assert_string_equal(t, "17");
  free(t);
  t = fc_test_pg_text(pg.conninfo, "SHOW fsync");
  assert_string_equal(t, "off");
  free(t);
  assert_int_equal(fc_test_pg_stop(&pg), 0);
  assert_int_equal(fc_test_pg_stop(&pg), 0); /* twice is fine */
}

/* A test process that dies without fc_test_pg_stop() leaves no server and
 * no directory behind (the watchdog cleans up). */
static void test_watchdog_cleans_up(void **state) {
  int fds[2];
  pid_t pid;
  char info[2 * FC_TEST_PG_PATH_LENGTH + FC_TEST_PG_CONNINFO_LENGTH];
  char *dir, *conninfo;
  ssize_t n, got = 0;
  struct stat st;
  int status, i;
  (void)state;
  skip_if_external();

  assert_int_equal(pipe(fds), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    fc_test_pg_t pg;
    close(fds[0]);
    if (fc_test_pg_start(&pg) != 0)
      _exit(2);
    dprintf(fds[1], "%s\n%s\n", pg.dir, pg.conninfo);
    close(fds[1]);
    _exit(1); /* "crash": no stop */
  }
  close(fds[1]);
  while ((n = read(fds[0], info + got, sizeof info - 1 - (size_t)got)) > 0)
    got += n;
  close(fds[0]);
  info[got] = '\0';
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 1);
  dir = info;
  conninfo = strchr(info, '\n');
  assert_non_null(conninfo);
  *conninfo++ = '\0';
  conninfo[strcspn(conninfo, "\n")] = '\0';
  assert_non_null(strstr(dir, "/tmp/fc-pg-"));

  for (i = 0; i < 300 && stat(dir, &st) == 0; i++)
    sleep_ms(50);
  assert_int_not_equal(stat(dir, &st), 0);
  assert_int_equal(can_connect(conninfo), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_queries),   cmocka_unit_test(test_conninfo_with_db),
      cmocka_unit_test(test_create_db), cmocka_unit_test(test_kill_backends),
      cmocka_unit_test(test_restart),   cmocka_unit_test(test_outage_and_crash),
      cmocka_unit_test(test_options),   cmocka_unit_test(test_watchdog_cleans_up),
  };
  return cmocka_run_group_tests_name("pg_fixture", tests, group_setup, group_teardown);
}

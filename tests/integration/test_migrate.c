/* Integration tests of the migration runner (src/pg/migrate.c) and of
 * migrations/ against a real PostgreSQL started by tests/support/pg_server. */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
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
#include <uv.h>

#include "flowcore/migrate.h"
#include "pg/sha256.h"

#define SOURCE_MIGRATIONS FLOWCORE_SOURCE_DIR "/migrations"
#define CONNINFO_LENGTH FC_TEST_PG_CONNINFO_LENGTH

static fc_test_pg_t g_pg;
static int g_nfiles; /* migrations in the source tree */
static int g_db_seq;
/* What the tests made, removed by group_teardown even after a failure. */
static char g_dbs[32][64];
static char g_dirs[64][64];

/* ---- helpers -------------------------------------------------------------- */

/* A fresh database on the test server; its conninfo goes into out. */
static void fresh_db(const char *tag, char out[CONNINFO_LENGTH]) {
  char name[64];
  snprintf(name, sizeof name, "fcmig_%s_%ld_%d", tag, (long)getpid(), ++g_db_seq);
  assert_true(g_db_seq < 32);
  snprintf(g_dbs[g_db_seq], sizeof g_dbs[g_db_seq], "%s", name);
  assert_int_equal(fc_test_pg_create_db(&g_pg, name, out, CONNINFO_LENGTH), 0);
}

static int count_sql_files(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  int n = 0;
  assert_non_null(d);
  while ((de = readdir(d)) != NULL) {
    size_t len = strlen(de->d_name);
    if (de->d_name[0] != '.' && len > 4 && strcmp(de->d_name + len - 4, ".sql") == 0)
      n++;
  }
  closedir(d);
  return n;
}

static char *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  n = ftell(f);
  assert_true(n >= 0);
  rewind(f);
  buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void write_file(const char *dir, const char *name, const char *text, const char *mode) {
  char path[512];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  f = fopen(path, mode);
  assert_non_null(f);
  assert_int_equal(fputs(text, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
}

/* A temporary directory holding copies of the source migrations (or
 * nothing, when copy is 0). */
static void temp_dir(char out[64], int copy) {
  DIR *d;
  struct dirent *de;
  size_t i;
  snprintf(out, 64, "/tmp/fc-mig-XXXXXX");
  assert_non_null(mkdtemp(out));
  for (i = 0; i < 64 && g_dirs[i][0] != '\0'; i++) {
  }
  assert_true(i < 64);
  snprintf(g_dirs[i], sizeof g_dirs[i], "%s", out);
  if (!copy)
    return;
  d = opendir(SOURCE_MIGRATIONS);
  assert_non_null(d);
  while ((de = readdir(d)) != NULL) {
    char src[512];
    char *text;
    size_t len = strlen(de->d_name);
    if (de->d_name[0] == '.' || len < 5 || strcmp(de->d_name + len - 4, ".sql") != 0)
      continue;
    snprintf(src, sizeof src, "%s/%s", SOURCE_MIGRATIONS, de->d_name);
    text = read_all(src);
    write_file(out, de->d_name, text, "wb");
    free(text);
  }
  closedir(d);
}

static void remove_dir(const char *which) {
  char dir[64];
  DIR *d;
  struct dirent *de;
  size_t i;
  snprintf(dir, sizeof dir, "%s", which); /* which may be a g_dirs slot */
  d = opendir(dir);
  for (i = 0; i < 64; i++)
    if (g_dirs[i][0] != '\0' && strcmp(g_dirs[i], dir) == 0)
      g_dirs[i][0] = '\1'; /* removed; slot not reused */
  if (d == NULL)
    return;
  while ((de = readdir(d)) != NULL) {
    char path[512];
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static int64_t applied_rows(const char *conninfo) {
  return fc_test_pg_int(conninfo, "SELECT count(*) FROM flowcore_schema_migrations");
}

static int table_exists(const char *conninfo, const char *table) {
  return (int)fc_test_pg_int(conninfo, "SELECT (to_regclass('%s') IS NOT NULL)::int", table);
}

static const fc_migration_t *find_item(const fc_migrate_report_t *rep, int version) {
  size_t i;
  for (i = 0; i < rep->count; i++)
    if (rep->items[i].version == version)
      return &rep->items[i];
  return NULL;
}

/* ---- setup ---------------------------------------------------------------- */

static int group_setup(void **state) {
  fc_test_pg_options_t opts;
  (void)state;
  /* No crash here: fsync off makes the many CREATE/DROP DATABASE cheap. */
  memset(&opts, 0, sizeof opts);
  opts.fsync_off = 1;
  if (fc_test_pg_start_ex(&g_pg, &opts) != 0)
    return -1;
  g_nfiles = count_sql_files(SOURCE_MIGRATIONS);
  return g_nfiles > 0 ? 0 : -1;
}

static int group_teardown(void **state) {
  int i;
  (void)state;
  for (i = 0; i < 64; i++)
    if (g_dirs[i][0] == '/')
      remove_dir(g_dirs[i]);
  /* Matters for a server named by FLOWCORE_TEST_PG; ours is removed whole. */
  for (i = 0; i < 32; i++)
    if (g_pg.external && g_dbs[i][0] != '\0')
      fc_test_pg_drop_db(&g_pg, g_dbs[i]);
  return fc_test_pg_stop(&g_pg);
}

/* ---- tests ---------------------------------------------------------------- */

/* Our SHA-256 agrees with the server's on lengths around block bounds. */
static void test_sha256_matches_server(void **state) {
  static const size_t lengths[] = {0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000};
  char text[1001];
  size_t i;
  (void)state;
  for (i = 0; i < sizeof text - 1; i++)
    text[i] = (char)('a' + (i * 7) % 26);
  for (i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
    char hex[FC__SHA256_HEX_LENGTH];
    char *server;
    fc__sha256_hex(text, lengths[i], hex);
    server =
        fc_test_pg_text(g_pg.conninfo, "SELECT encode(sha256(convert_to('%.*s', 'UTF8')), 'hex')",
                        (int)lengths[i], text);
    assert_string_equal(hex, server);
    free(server);
  }
}

static void test_fresh_database(void **state) {
  static const struct {
    const char *table, *column, *type;
  } columns[] = {
      {"workflow_executions", "workflow_id", "uuid"},
      {"workflow_executions", "workflow_name", "text"},
      {"workflow_executions", "status", "text"},
      {"workflow_executions", "input_data", "jsonb"},
      {"workflow_executions", "output_data", "jsonb"},
      {"workflow_executions", "started_at", "timestamp with time zone"},
      {"workflow_executions", "completed_at", "timestamp with time zone"},
      {"workflow_executions", "node_count", "integer"},
      {"workflow_executions", "error_count", "integer"},
      {"workflow_executions", "updated_at", "timestamp with time zone"},
      {"node_executions", "workflow_id", "uuid"},
      {"node_executions", "node_id", "text"},
      {"node_executions", "attempt", "integer"},
      {"node_executions", "node_type", "text"},
      {"node_executions", "status", "text"},
      {"node_executions", "input_data", "jsonb"},
      {"node_executions", "output_data", "jsonb"},
      {"node_executions", "started_at", "timestamp with time zone"},
      {"node_executions", "completed_at", "timestamp with time zone"},
      {"execution_errors", "workflow_id", "uuid"},
      {"execution_errors", "error_id", "uuid"},
      {"execution_errors", "node_id", "text"},
      {"execution_errors", "attempt", "integer"},
      {"execution_errors", "error_type", "text"},
      {"execution_errors", "error_message", "text"},
      {"execution_errors", "stack_trace", "text"},
      {"execution_errors", "severity", "text"},
      {"execution_errors", "occurred_at", "timestamp with time zone"},
      {"flowcore_writer_losses", "writer", "text"},
      {"flowcore_writer_losses", "host", "text"},
      {"flowcore_writer_losses", "pid", "integer"},
      {"flowcore_writer_losses", "kind", "text"},
      {"flowcore_writer_losses", "reason", "text"},
      {"flowcore_writer_losses", "count", "bigint"},
      {"flowcore_writer_losses", "recorded_at", "timestamp with time zone"},
      {"flowcore_schema_migrations", "version", "integer"},
      {"flowcore_schema_migrations", "name", "text"},
      {"flowcore_schema_migrations", "checksum", "text"},
      {"flowcore_schema_migrations", "applied_at", "timestamp with time zone"},
  };
  static const struct {
    const char *table, *key;
  } pkeys[] = {
      {"workflow_executions", "workflow_id"},
      {"node_executions", "workflow_id,node_id,attempt"},
      {"execution_errors", "workflow_id,error_id"},
  };
  char db[CONNINFO_LENGTH];
  fc_migrate_report_t rep;
  fc_error_t err;
  size_t i;
  char *text, *sum;
  (void)state;

  fresh_db("fresh", db);
  fc_error_clear(&err);
  assert_int_equal(fc_migrate_run(db, SOURCE_MIGRATIONS, &rep, &err), 0);
  assert_int_equal(err.code, 0);
  assert_int_equal(rep.count, (size_t)g_nfiles);
  assert_int_equal(rep.applied_now, (size_t)g_nfiles);
  assert_int_equal(rep.applied, (size_t)g_nfiles);
  assert_int_equal(rep.pending, 0);
  for (i = 0; i < rep.count; i++) {
    assert_int_equal(rep.items[i].version, (int)i + 1);
    assert_int_equal(rep.items[i].state, FC_MIGRATION_APPLIED);
    assert_true(rep.items[i].applied_now);
  }
  assert_string_equal(rep.items[0].file, "0001_history.sql");
  assert_string_equal(rep.items[0].name, "history");
  assert_int_equal(applied_rows(db), g_nfiles);

  /* The recorded checksum is the SHA-256 of the file's bytes. */
  text = read_all(SOURCE_MIGRATIONS "/0001_history.sql");
  assert_null(strstr(text, "$fc$"));
  sum = fc_test_pg_text(db, "SELECT encode(sha256(convert_to($fc$%s$fc$, 'UTF8')), 'hex')", text);
  assert_string_equal(sum, rep.items[0].checksum);
  free(sum);
  sum = fc_test_pg_text(db, "SELECT checksum FROM flowcore_schema_migrations WHERE version = 1");
  assert_string_equal(sum, rep.items[0].checksum);
  free(sum);
  free(text);
  fc_migrate_report_free(&rep);
  assert_null(rep.items);

  for (i = 0; i < sizeof columns / sizeof columns[0]; i++) {
    char *type = NULL;
    if (fc_test_pg_query_text(db, &type,
                              "SELECT data_type FROM information_schema.columns"
                              " WHERE table_schema = current_schema()"
                              " AND table_name = '%s' AND column_name = '%s'",
                              columns[i].table, columns[i].column) != 0)
      fail_msg("column %s.%s is missing", columns[i].table, columns[i].column);
    if (type == NULL || strcmp(type, columns[i].type) != 0)
      fail_msg("column %s.%s has type %s, want %s", columns[i].table, columns[i].column,
               type ? type : "NULL", columns[i].type);
    free(type);
  }

  for (i = 0; i < sizeof pkeys / sizeof pkeys[0]; i++) {
    char *key = fc_test_pg_text(db,
                                "SELECT string_agg(a.attname, ',' ORDER BY k.ord)"
                                " FROM pg_index i"
                                " CROSS JOIN LATERAL unnest(i.indkey)"
                                "  WITH ORDINALITY k(attnum, ord)"
                                " JOIN pg_attribute a ON a.attrelid = i.indrelid"
                                "  AND a.attnum = k.attnum"
                                " WHERE i.indrelid = '%s'::regclass AND i.indisprimary",
                                pkeys[i].table);
    assert_string_equal(key, pkeys[i].key);
    free(key);
  }

  /* Every primary key and unique index of the per-workflow tables contains
   * workflow_id (Citus co-location). */
  assert_int_equal(fc_test_pg_int(db,
                                  "SELECT count(*) FROM pg_index i"
                                  " WHERE i.indrelid IN ('workflow_executions'::regclass,"
                                  "  'node_executions'::regclass, 'execution_errors'::regclass)"
                                  " AND i.indisunique AND NOT EXISTS ("
                                  "  SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indrelid"
                                  "  AND a.attnum = ANY (i.indkey) AND a.attname = 'workflow_id')"),
                   0);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM pg_index i"
                                      " WHERE i.indrelid IN ('workflow_executions'::regclass,"
                                      "  'node_executions'::regclass, 'execution_errors'::regclass)"
                                      " AND i.indisunique"),
                   3);

  /* The CHECK constraints hold the vocabularies of the engine
   * (fc_workflow_status_t, fc_node_status_t, fc_severity_t). */
  assert_int_equal(fc_test_pg_exec(db, "INSERT INTO workflow_executions"
                                       " (workflow_id, workflow_name, status, started_at)"
                                       " VALUES ('018f0000-0000-7000-8000-000000000001', 'w',"
                                       " 'running', '2026-01-01T00:00:00Z')"),
                   0);
  fprintf(stderr, "(an error about a check constraint is expected next)\n");
  assert_int_equal(fc_test_pg_exec(db, "INSERT INTO workflow_executions"
                                       " (workflow_id, workflow_name, status, started_at)"
                                       " VALUES ('018f0000-0000-7000-8000-000000000002', 'w',"
                                       " 'exploded', '2026-01-01T00:00:00Z')"),
                   -1);
  assert_int_equal(fc_test_pg_exec(db, "INSERT INTO node_executions (workflow_id, node_id, attempt,"
                                       " status) VALUES ('018f0000-0000-7000-8000-000000000001',"
                                       " 'a', 1, 'skipped')"),
                   0);
  assert_int_equal(fc_test_pg_exec(db, "INSERT INTO execution_errors (workflow_id, error_id,"
                                       " severity, occurred_at) VALUES"
                                       " ('018f0000-0000-7000-8000-000000000001',"
                                       " '018f0000-0000-7000-8000-0000000000e1', 'critical',"
                                       " '2026-01-01T00:00:01Z')"),
                   0);
  fprintf(stderr, "(an error about a check constraint is expected next)\n");
  assert_int_equal(fc_test_pg_exec(db, "INSERT INTO execution_errors (workflow_id, error_id,"
                                       " severity, occurred_at) VALUES"
                                       " ('018f0000-0000-7000-8000-000000000001',"
                                       " '018f0000-0000-7000-8000-0000000000e2', 'fatal',"
                                       " '2026-01-01T00:00:01Z')"),
                   -1);
}

static void test_rerun_is_noop(void **state) {
  char db[CONNINFO_LENGTH];
  fc_migrate_report_t rep;
  char *before, *after;
  (void)state;

  fresh_db("rerun", db);
  assert_int_equal(fc_migrate_run(db, SOURCE_MIGRATIONS, NULL, NULL), 0);
  before = fc_test_pg_text(db, "SELECT string_agg(version || '@' || applied_at, ',')"
                               " FROM flowcore_schema_migrations");
  assert_int_equal(fc_migrate_run(db, SOURCE_MIGRATIONS, &rep, NULL), 0);
  assert_int_equal(rep.applied_now, 0);
  assert_int_equal(rep.applied, (size_t)g_nfiles);
  assert_int_equal(rep.pending, 0);
  assert_true(rep.items[0].applied_at_us > 0);
  fc_migrate_report_free(&rep);
  after = fc_test_pg_text(db, "SELECT string_agg(version || '@' || applied_at, ',')"
                              " FROM flowcore_schema_migrations");
  assert_string_equal(before, after);
  assert_int_equal(applied_rows(db), g_nfiles);
  free(before);
  free(after);
}

/* A migrations dir with the source files plus a slow last migration, so
 * that concurrent runners surely overlap. Returns the number of files. */
static int slow_dir(char dir[64]) {
  char name[32];
  temp_dir(dir, 1);
  snprintf(name, sizeof name, "%04d_slow.sql", g_nfiles + 1);
  write_file(dir, name,
             "SELECT pg_sleep(0.5);\n"
             "CREATE TABLE fc_slow_marker (x int);\n"
             "INSERT INTO fc_slow_marker VALUES (1);\n",
             "wb");
  return g_nfiles + 1;
}

/* Two processes started at once on a fresh database: both succeed and each
 * migration is applied exactly once (the advisory lock serializes them). */
static void test_concurrent_processes(void **state) {
  char db[CONNINFO_LENGTH], dir[64];
  int go[2], total, i, sum = 0, max = 0;
  pid_t pids[2];
  (void)state;

  fresh_db("procs", db);
  total = slow_dir(dir);
  assert_int_equal(pipe(go), 0);
  for (i = 0; i < 2; i++) {
    pids[i] = fork();
    assert_true(pids[i] >= 0);
    if (pids[i] == 0) {
      fc_migrate_report_t rep;
      fc_error_t err;
      char c;
      int rc;
      close(go[1]);
      (void)!read(go[0], &c, 1); /* both start when the parent closes the pipe */
      fc_error_clear(&err);
      rc = fc_migrate_run(db, dir, &rep, &err);
      if (rc != 0)
        fprintf(stderr, "child %d: %s\n", i, err.text);
      _exit(rc == 0 ? (int)rep.applied_now : 100);
    }
  }
  close(go[0]);
  close(go[1]);
  for (i = 0; i < 2; i++) {
    int status;
    assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
    assert_true(WIFEXITED(status));
    assert_true(WEXITSTATUS(status) < 100);
    sum += WEXITSTATUS(status);
    if (WEXITSTATUS(status) > max)
      max = WEXITSTATUS(status);
  }
  assert_int_equal(sum, total); /* one applied everything, the other nothing */
  assert_int_equal(max, total);
  assert_int_equal(applied_rows(db), total);
  assert_int_equal(fc_test_pg_int(db, "SELECT count(*) FROM fc_slow_marker"), 1);
  remove_dir(dir);
}

typedef struct {
  const char *conninfo;
  const char *dir;
  int rc;
  size_t applied_now;
  volatile int done;
  fc_error_t err;
} runner_t;

static void *runner_main(void *arg) {
  runner_t *r = arg;
  fc_migrate_report_t rep;
  fc_error_clear(&r->err);
  r->rc = fc_migrate_run(r->conninfo, r->dir, &rep, &r->err);
  r->applied_now = rep.applied_now;
  fc_migrate_report_free(&rep);
  __atomic_store_n(&r->done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

/* The same with threads (the runner is thread-safe). */
static void test_concurrent_threads(void **state) {
  char db[CONNINFO_LENGTH], dir[64];
  runner_t r[3];
  pthread_t t[3];
  size_t sum = 0;
  int total, i;
  (void)state;

  fresh_db("threads", db);
  total = slow_dir(dir);
  for (i = 0; i < 3; i++) {
    memset(&r[i], 0, sizeof r[i]);
    r[i].conninfo = db;
    r[i].dir = dir;
    assert_int_equal(pthread_create(&t[i], NULL, runner_main, &r[i]), 0);
  }
  for (i = 0; i < 3; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    if (r[i].rc != 0)
      fail_msg("runner %d: %s", i, r[i].err.text);
    sum += r[i].applied_now;
  }
  assert_int_equal(sum, (size_t)total);
  assert_int_equal(applied_rows(db), total);
  remove_dir(dir);
}

/* A runner waits while someone else holds the migration lock. */
static void test_waits_for_lock(void **state) {
  char db[CONNINFO_LENGTH], sql[96];
  runner_t r;
  pthread_t t;
  PGconn *holder;
  PGresult *res;
  int i;
  (void)state;

  fresh_db("lock", db);
  holder = PQconnectdb(db);
  assert_int_equal(PQstatus(holder), CONNECTION_OK);
  snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%" PRId64 ")", FC_MIGRATE_LOCK_KEY);
  res = PQexec(holder, sql);
  assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
  PQclear(res);

  memset(&r, 0, sizeof r);
  r.conninfo = db;
  r.dir = SOURCE_MIGRATIONS;
  assert_int_equal(pthread_create(&t, NULL, runner_main, &r), 0);
  /* Wait until the runner is blocked on the advisory lock. */
  for (i = 0; i < 100; i++) {
    if (fc_test_pg_int(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                           " AND NOT granted") == 1)
      break;
    sleep_ms(50);
  }
  assert_true(i < 100);
  sleep_ms(200);
  assert_int_equal(__atomic_load_n(&r.done, __ATOMIC_SEQ_CST), 0);
  assert_int_equal(table_exists(db, "workflow_executions"), 0);

  snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%" PRId64 ")", FC_MIGRATE_LOCK_KEY);
  res = PQexec(holder, sql);
  assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
  PQclear(res);
  assert_int_equal(pthread_join(t, NULL), 0);
  PQfinish(holder);
  if (r.rc != 0)
    fail_msg("runner: %s", r.err.text);
  assert_int_equal(r.applied_now, (size_t)g_nfiles);
  assert_int_equal(table_exists(db, "workflow_executions"), 1);
}

/* ---- many databases of one server at once ------------------------------- */

#define CLI FLOWCORE_BINARY_DIR "/flowcore"
#define RACE_DBS 8
#define RACE_ROUNDS 10

/* Drops the roles of 0003 and what they own or were granted: DROP OWNED in
 * each database where pg_shdepend lists something of theirs, and once more
 * in the test database for the grants on databases. */
static void drop_flowcore_roles(void) {
  char *roles = NULL, *names = NULL, *save = NULL, *name;
  assert_int_equal(fc_test_pg_query_text(g_pg.conninfo, &roles,
                                         "SELECT string_agg(quote_ident(rolname), ', ')"
                                         " FROM pg_roles WHERE rolname IN"
                                         " ('flowcore_writer', 'flowcore_reader')"),
                   0);
  if (roles == NULL)
    return;
  assert_int_equal(fc_test_pg_query_text(g_pg.conninfo, &names,
                                         "SELECT string_agg(DISTINCT d.datname, ' ')"
                                         " FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid"
                                         " WHERE s.refclassid = 'pg_authid'::regclass"
                                         " AND s.refobjid IN (SELECT oid FROM pg_roles WHERE"
                                         " rolname IN ('flowcore_writer', 'flowcore_reader'))"),
                   0);
  for (name = names ? strtok_r(names, " ", &save) : NULL; name != NULL;
       name = strtok_r(NULL, " ", &save)) {
    char db[CONNINFO_LENGTH];
    assert_int_equal(fc_test_pg_conninfo_with_db(g_pg.conninfo, name, db, sizeof db), 0);
    assert_int_equal(fc_test_pg_exec(db, "DROP OWNED BY %s", roles), 0);
  }
  assert_int_equal(fc_test_pg_exec(g_pg.conninfo, "DROP OWNED BY %s", roles), 0);
  assert_int_equal(fc_test_pg_exec(g_pg.conninfo, "DROP ROLE %s", roles), 0);
  assert_int_equal(fc_test_pg_int(g_pg.conninfo, "SELECT count(*) FROM pg_roles WHERE rolname"
                                                 " IN ('flowcore_writer', 'flowcore_reader')"),
                   0);
  free(names);
  free(roles);
}

/* What 0003 grants on db, counted: CONNECT and TEMPORARY on the database
 * to the writer, CONNECT to the reader (PUBLIC has both by default, so the
 * ACL is read, not has_database_privilege()), INSERT on a table to the
 * writer, SELECT on it and on a view to the reader. 5 when all are there. */
static int64_t granted(const char *db) {
  return fc_test_pg_int(
      db, "SELECT (SELECT count(*) FROM pg_database d, aclexplode(d.datacl) a"
          "  WHERE d.datname = current_database() AND ("
          "   (a.grantee = 'flowcore_writer'::regrole"
          "    AND a.privilege_type IN ('CONNECT', 'TEMPORARY')) OR"
          "   (a.grantee = 'flowcore_reader'::regrole AND a.privilege_type = 'CONNECT')))"
          " + has_table_privilege('flowcore_writer', 'workflow_executions', 'INSERT')::int"
          " + has_table_privilege('flowcore_reader', 'workflow_executions', 'SELECT')::int"
          " + (SELECT count(*) FROM information_schema.views v"
          "    WHERE v.table_schema = 'public' AND v.table_name LIKE 'flowcore\\_%%'"
          "    AND has_table_privilege('flowcore_reader', quote_ident(v.table_name),"
          "                            'SELECT'))::int");
}

/* The case: roles missing, `flowcore migrate` started on 8 new
 * databases of one server at once. Roles are shared by the server while the
 * advisory lock is per database, so the runs race to create them; all must
 * succeed anyway. 10 rounds; every run of every round is counted and the
 * failures printed before the test fails. */
static void test_many_databases_at_once(void **state) {
  char dbs[RACE_DBS][CONNINFO_LENGTH], dir[64];
  int round, k, failed = 0, failed_rounds = 0;
  int64_t views;
  (void)state;

  /* Dropping server-wide roles is only done on our own server. */
  if (g_pg.external)
    skip();
  assert_int_equal(access(CLI, X_OK), 0);
  temp_dir(dir, 0); /* the runs' output */
  for (k = 0; k < RACE_DBS; k++)
    fresh_db("many", dbs[k]);
  for (round = 0; round < RACE_ROUNDS; round++) {
    pid_t pids[RACE_DBS];
    int go[2], round_failed = 0;

    /* New again for flowcore (cheaper than DROP and CREATE DATABASE):
     * roles gone, schema public empty, as PostgreSQL 15 makes it. */
    drop_flowcore_roles();
    for (k = 0; round > 0 && k < RACE_DBS; k++)
      assert_int_equal(fc_test_pg_exec(dbs[k], "DROP SCHEMA public CASCADE;"
                                               " CREATE SCHEMA public AUTHORIZATION"
                                               " pg_database_owner;"
                                               " GRANT USAGE ON SCHEMA public TO PUBLIC"),
                       0);
    for (k = 0; k < RACE_DBS; k++)
      assert_int_equal(table_exists(dbs[k], "flowcore_schema_migrations"), 0);

    assert_int_equal(pipe(go), 0);
    for (k = 0; k < RACE_DBS; k++) {
      char out[96];
      int fd;
      snprintf(out, sizeof out, "%s/run-%d.out", dir, k);
      fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      assert_true(fd >= 0);
      pids[k] = fork();
      assert_true(pids[k] >= 0);
      if (pids[k] == 0) {
        char c;
        close(go[1]);
        if (dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
          _exit(126);
        (void)!read(go[0], &c, 1); /* all start when the parent closes the pipe */
        execl(CLI, CLI, "migrate", "--db", dbs[k], "--dir", SOURCE_MIGRATIONS, (char *)NULL);
        _exit(127);
      }
      close(fd);
    }
    close(go[0]);
    close(go[1]);
    for (k = 0; k < RACE_DBS; k++) {
      char out[96];
      int status;
      assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        continue;
      snprintf(out, sizeof out, "%s/run-%d.out", dir, k);
      {
        char *text = read_all(out);
        print_message("round %d, database %d: exit status 0x%x: %s", round + 1, k + 1, status,
                      text);
        free(text);
      }
      round_failed++;
    }
    failed += round_failed;
    failed_rounds += round_failed > 0;
    if (round_failed > 0)
      continue; /* count every round before failing */

    assert_int_equal(fc_test_pg_int(g_pg.conninfo, "SELECT count(*) FROM pg_roles WHERE rolname"
                                                   " IN ('flowcore_writer', 'flowcore_reader')"),
                     2);
    views = fc_test_pg_int(dbs[0], "SELECT count(*) FROM information_schema.views WHERE"
                                   " table_schema = 'public' AND table_name LIKE 'flowcore\\_%%'");
    assert_true(views > 0);
    for (k = 0; k < RACE_DBS; k++) {
      assert_int_equal(applied_rows(dbs[k]), g_nfiles);
      assert_int_equal(granted(dbs[k]), 5 + views);
    }
  }
  if (failed > 0)
    fail_msg("%d of %d runs failed, in %d of %d rounds", failed, RACE_DBS * RACE_ROUNDS,
             failed_rounds, RACE_ROUNDS);
  remove_dir(dir);
}

/* An applied migration whose file changed is refused, naming the file. */
static void test_edited_migration_refused(void **state) {
  char db[CONNINFO_LENGTH], dir[64], path[128], path2[128];
  fc_migrate_report_t rep;
  fc_error_t err;
  const fc_migration_t *m;
  (void)state;

  fresh_db("edited", db);
  temp_dir(dir, 1);
  assert_int_equal(fc_migrate_run(db, dir, NULL, NULL), 0);

  write_file(dir, "0001_history.sql", "\n-- an innocent-looking edit\n", "ab");
  fc_error_clear(&err);
  assert_int_equal(fc_migrate_run(db, dir, &rep, &err), FC_EMIGRATION);
  assert_int_equal(err.code, FC_EMIGRATION);
  assert_string_equal(err.where, "0001_history.sql");
  assert_non_null(strstr(err.text, "0001_history.sql"));
  assert_non_null(strstr(err.text, "changed"));
  assert_int_equal(rep.applied_now, 0);
  assert_int_equal(rep.modified, 1);
  fc_migrate_report_free(&rep);

  /* status reports it without failing. */
  assert_int_equal(fc_migrate_status(db, dir, &rep, NULL), 0);
  m = find_item(&rep, 1);
  assert_non_null(m);
  assert_int_equal(m->state, FC_MIGRATION_MODIFIED);
  assert_string_not_equal(m->checksum, m->applied_checksum);
  assert_string_equal(fc_migration_state_name(m->state), "modified");
  fc_migrate_report_free(&rep);

  /* A renamed file (same content, other name) is refused too. */
  remove_dir(dir);
  temp_dir(dir, 1);
  snprintf(path, sizeof path, "%s/0001_history.sql", dir);
  snprintf(path2, sizeof path2, "%s/0001_renamed.sql", dir);
  assert_int_equal(rename(path, path2), 0);
  fc_error_clear(&err);
  assert_int_equal(fc_migrate_run(db, dir, NULL, &err), FC_EMIGRATION);
  assert_string_equal(err.where, "0001_renamed.sql");
  assert_non_null(strstr(err.text, "history"));
  remove_dir(dir);
  assert_int_equal(applied_rows(db), g_nfiles);
}

/* Badly named *.sql files are refused before anything is applied; other
 * files are ignored. */
static void test_bad_file_names(void **state) {
  static const char *const bad[] = {"1_history.sql",   "0002-extra.sql",  "00a2_extra.sql",
                                    "0002_.sql",       "0002_Extra.sql",  "extra.sql",
                                    "00002_extra.sql", "0002_ex tra.sql", "0000_zero.sql"};
  char db[CONNINFO_LENGTH], dir[64];
  fc_error_t err;
  size_t i;
  (void)state;

  fresh_db("names", db);
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    temp_dir(dir, 1);
    write_file(dir, bad[i], "SELECT 1;\n", "wb");
    fc_error_clear(&err);
    assert_int_equal(fc_migrate_run(db, dir, NULL, &err), FC_EMIGRATION);
    assert_string_equal(err.where, bad[i]);
    assert_non_null(strstr(err.text, bad[i]));
    assert_non_null(strstr(err.text, "bad migration file name"));
    remove_dir(dir);
  }
  assert_int_equal(table_exists(db, "flowcore_schema_migrations"), 0);

  /* Not *.sql, hidden, editor backups: ignored. */
  temp_dir(dir, 1);
  write_file(dir, "README.md", "notes\n", "wb");
  write_file(dir, ".0002_hidden.sql", "SELECT 1;\n", "wb");
  write_file(dir, "0001_history.sql~", "garbage\n", "wb");
  assert_int_equal(fc_migrate_run(db, dir, NULL, NULL), 0);
  assert_int_equal(applied_rows(db), g_nfiles);
  remove_dir(dir);
}

static void test_gap_and_duplicate(void **state) {
  char db[CONNINFO_LENGTH], dir[64], name[32];
  fc_error_t err;
  (void)state;

  fresh_db("gaps", db);
  temp_dir(dir, 1);
  snprintf(name, sizeof name, "%04d_later.sql", g_nfiles + 2);
  write_file(dir, name, "SELECT 1;\n", "wb");
  fc_error_clear(&err);
  assert_int_equal(fc_migrate_run(db, dir, NULL, &err), FC_EMIGRATION);
  assert_string_equal(err.where, name);
  assert_non_null(strstr(err.text, "missing"));
  remove_dir(dir);

  temp_dir(dir, 1);
  write_file(dir, "0001_other.sql", "SELECT 1;\n", "wb");
  fc_error_clear(&err);
  assert_int_equal(fc_migrate_run(db, dir, NULL, &err), FC_EMIGRATION);
  assert_non_null(strstr(err.text, "duplicate"));
  assert_non_null(strstr(err.text, "0001_other.sql"));
  assert_non_null(strstr(err.text, "0001_history.sql"));
  remove_dir(dir);

  /* An empty directory has nothing to do; a missing one is an error. */
  temp_dir(dir, 0);
  assert_int_equal(fc_migrate_run(db, dir, NULL, NULL), 0);
  remove_dir(dir);
  fc_error_clear(&err);
  assert_int_equal(fc_migrate_run(db, "/nonexistent/flowcore-migrations", NULL, &err), UV_ENOENT);
  assert_non_null(strstr(err.text, "/nonexistent/flowcore-migrations"));
}

/* status lists applied and pending migrations and those without a file. */
static void test_status(void **state) {
  char db[CONNINFO_LENGTH], one[64], two[64], name[32];
  fc_migrate_report_t rep;
  const fc_migration_t *m;
  (void)state;

  fresh_db("status", db);
  temp_dir(one, 1);
  temp_dir(two, 1);
  snprintf(name, sizeof name, "%04d_extra.sql", g_nfiles + 1);
  write_file(two, name, "CREATE TABLE fc_extra (x int);\n", "wb");

  /* Nothing applied yet (no table): all pending, nothing created. */
  assert_int_equal(fc_migrate_status(db, two, &rep, NULL), 0);
  assert_int_equal(rep.count, (size_t)g_nfiles + 1);
  assert_int_equal(rep.pending, (size_t)g_nfiles + 1);
  assert_int_equal(rep.applied, 0);
  assert_int_equal(rep.items[0].applied_at_us, 0);
  assert_string_equal(fc_migration_state_name(rep.items[0].state), "pending");
  fc_migrate_report_free(&rep);
  assert_int_equal(table_exists(db, "flowcore_schema_migrations"), 0);

  assert_int_equal(fc_migrate_run(db, one, NULL, NULL), 0);
  assert_int_equal(fc_migrate_status(db, two, &rep, NULL), 0);
  assert_int_equal(rep.applied, (size_t)g_nfiles);
  assert_int_equal(rep.pending, 1);
  m = find_item(&rep, 1);
  assert_int_equal(m->state, FC_MIGRATION_APPLIED);
  assert_string_equal(m->checksum, m->applied_checksum);
  assert_true(m->applied_at_us > 0);
  m = find_item(&rep, g_nfiles + 1);
  assert_int_equal(m->state, FC_MIGRATION_PENDING);
  assert_string_equal(m->file, name);
  assert_string_equal(m->applied_checksum, "");
  fc_migrate_report_free(&rep);

  /* Applied by a "newer" set: the older set sees it as missing, and running
   * the older set is not an error. */
  assert_int_equal(fc_migrate_run(db, two, &rep, NULL), 0);
  assert_int_equal(rep.applied_now, 1);
  fc_migrate_report_free(&rep);
  assert_int_equal(fc_migrate_status(db, one, &rep, NULL), 0);
  assert_int_equal(rep.missing, 1);
  m = find_item(&rep, g_nfiles + 1);
  assert_int_equal(m->state, FC_MIGRATION_MISSING);
  assert_string_equal(m->name, "extra");
  assert_string_equal(m->file, "");
  fc_migrate_report_free(&rep);
  assert_int_equal(fc_migrate_run(db, one, &rep, NULL), 0);
  assert_int_equal(rep.applied_now, 0);
  assert_int_equal(rep.missing, 1);
  fc_migrate_report_free(&rep);

  /* fc_migrate_status needs a report. */
  assert_int_equal(fc_migrate_status(db, one, NULL, NULL), FC_EINVAL);
  remove_dir(one);
  remove_dir(two);
}

/* A failing migration is rolled back whole, the error names file and line,
 * earlier ones stay applied, and once fixed it applies. */
static void test_failed_migration_rolls_back(void **state) {
  char db[CONNINFO_LENGTH], dir[64], name[32];
  fc_migrate_report_t rep;
  fc_error_t err;
  (void)state;

  fresh_db("rollback", db);
  temp_dir(dir, 1);
  snprintf(name, sizeof name, "%04d_broken.sql", g_nfiles + 1);
  write_file(dir, name,
             "CREATE TABLE fc_partial (x int);\n"
             "-- déjà vu: a comment with multibyte characters\n"
             "CREATE TABLEX oops (y int);\n",
             "wb");
  fc_error_clear(&err);
  assert_int_equal(fc_migrate_run(db, dir, &rep, &err), FC_EDB);
  assert_string_equal(err.where, name);
  assert_non_null(strstr(err.text, name));
  assert_non_null(strstr(err.text, "line 3"));
  assert_non_null(strstr(err.text, "42601")); /* syntax_error */
  assert_int_equal(rep.applied_now, (size_t)g_nfiles);
  assert_int_equal(rep.pending, 1);
  fc_migrate_report_free(&rep);
  assert_int_equal(applied_rows(db), g_nfiles);
  assert_int_equal(table_exists(db, "fc_partial"), 0);

  write_file(dir, name, "CREATE TABLE fc_partial (x int);\n", "wb");
  assert_int_equal(fc_migrate_run(db, dir, &rep, NULL), 0);
  assert_int_equal(rep.applied_now, 1);
  fc_migrate_report_free(&rep);
  assert_int_equal(table_exists(db, "fc_partial"), 1);
  remove_dir(dir);

  /* A file that ends the transaction itself is refused. */
  temp_dir(dir, 1);
  snprintf(name, sizeof name, "%04d_broken.sql", g_nfiles + 1);
  write_file(dir, name, "CREATE TABLE fc_partial (x int);\n", "wb");
  snprintf(name, sizeof name, "%04d_commit.sql", g_nfiles + 2);
  write_file(dir, name, "CREATE TABLE fc_committed (x int);\nCOMMIT;\n", "wb");
  fc_error_clear(&err);
  assert_int_equal(fc_migrate_run(db, dir, NULL, &err), FC_EMIGRATION);
  assert_string_equal(err.where, name);
  assert_non_null(strstr(err.text, "COMMIT"));
  assert_int_equal(applied_rows(db), g_nfiles + 1);
  remove_dir(dir);
}

/* Only a lost race is tried again: a role or a key that was there before
 * the migration began fails at once, with the server's error as it is. */
static void test_duplicate_not_retried(void **state) {
  static const char *const cases[][2] = {
      {"CREATE ROLE flowcore_writer NOLOGIN;\n", "42710"},
      {"CREATE TABLE fc_dup (x int PRIMARY KEY);\nINSERT INTO fc_dup VALUES (1), (1);\n", "23505"},
  };
  char db[CONNINFO_LENGTH], dir[64], name[32];
  fc_error_t err;
  size_t i;
  (void)state;

  fresh_db("dup", db);
  assert_int_equal(fc_migrate_run(db, SOURCE_MIGRATIONS, NULL, NULL), 0);
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    temp_dir(dir, 1);
    snprintf(name, sizeof name, "%04d_dup.sql", g_nfiles + 1);
    write_file(dir, name, cases[i][0], "wb");
    fc_error_clear(&err);
    assert_int_equal(fc_migrate_run(db, dir, NULL, &err), FC_EDB);
    assert_string_equal(err.where, name);
    assert_non_null(strstr(err.text, cases[i][1]));
    assert_null(strstr(err.text, "attempt"));
    assert_int_equal(applied_rows(db), g_nfiles);
    remove_dir(dir);
  }
}

/* Connection errors never show the password of the conninfo. */
static void test_no_password_in_errors(void **state) {
  fc_error_t err;
  (void)state;
  fc_error_clear(&err);
  assert_int_equal(fc_migrate_run("host=/nonexistent-flowcore-socket port=5 user=postgres"
                                  " password=s3cr3t-pw dbname=nope",
                                  SOURCE_MIGRATIONS, NULL, &err),
                   FC_EDB);
  assert_non_null(strstr(err.text, "cannot connect"));
  assert_null(strstr(err.text, "s3cr3t"));
  fc_error_clear(&err);
  assert_int_equal(fc_migrate_status("postgresql://postgres:s3cr3t-pw@/nope?host=/nonexistent"
                                     "-flowcore-socket&port=5",
                                     SOURCE_MIGRATIONS, &(fc_migrate_report_t){0}, &err),
                   FC_EDB);
  assert_null(strstr(err.text, "s3cr3t"));
}

static void test_default_dir(void **state) {
  char db[CONNINFO_LENGTH];
  fc_error_t err;
  (void)state;

  fresh_db("default", db);
  assert_int_equal(setenv("FLOWCORE_MIGRATIONS_DIR", SOURCE_MIGRATIONS, 1), 0);
  assert_string_equal(fc_migrate_default_dir(), SOURCE_MIGRATIONS);
  assert_int_equal(fc_migrate_run(db, NULL, NULL, NULL), 0);
  assert_int_equal(applied_rows(db), g_nfiles);
  assert_int_equal(unsetenv("FLOWCORE_MIGRATIONS_DIR"), 0);
  if (fc_migrate_default_dir() == NULL) {
    fc_error_clear(&err);
    assert_int_equal(fc_migrate_run(db, NULL, NULL, &err), FC_EINVAL);
    assert_non_null(strstr(err.text, "FLOWCORE_MIGRATIONS_DIR"));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sha256_matches_server),
      cmocka_unit_test(test_fresh_database),
      cmocka_unit_test(test_rerun_is_noop),
      cmocka_unit_test(test_concurrent_processes),
      cmocka_unit_test(test_concurrent_threads),
      cmocka_unit_test(test_waits_for_lock),
      cmocka_unit_test(test_many_databases_at_once),
      cmocka_unit_test(test_edited_migration_refused),
      cmocka_unit_test(test_bad_file_names),
      cmocka_unit_test(test_gap_and_duplicate),
      cmocka_unit_test(test_status),
      cmocka_unit_test(test_failed_migration_rolls_back),
      cmocka_unit_test(test_duplicate_not_retried),
      cmocka_unit_test(test_no_password_in_errors),
      cmocka_unit_test(test_default_dir),
  };
  return cmocka_run_group_tests_name("migrate", tests, group_setup, group_teardown);
}

/* A private PostgreSQL server for integration tests.
 *
 * fc_test_pg_start() makes a directory /tmp/fc-pg-XXXXXX (owned by the
 * `postgres` system user when we run as root, because PostgreSQL refuses to
 * run as root), runs initdb there (trust authentication, superuser
 * `postgres`), starts the server with pg_ctl on a private unix socket
 * directory inside it (TCP only on 127.0.0.1 and only if asked), creates the
 * database `flowcore_test` and fills pg->conninfo.
 *
 * If the environment variable FLOWCORE_TEST_PG holds a conninfo, that server
 * is used instead: nothing is started, pg->external is 1, and the functions
 * that stop or restart the server return FC_TEST_PG_EXTERNAL (call skip()).
 *
 * The server never outlives the test process: a small watchdog process
 * (its own session) stops it and removes the directory when the test process
 * exits without calling fc_test_pg_stop() (a crash, an abort, a timeout kill).
 *
 * The PostgreSQL binaries are found in $FLOWCORE_PG_BINDIR, else in
 * /usr/lib/postgresql/<newest>/bin, else on PATH. FLOWCORE_TEST_PG_KEEP=1
 * keeps the directory after fc_test_pg_stop() (its path is printed).
 *
 * All calls are blocking and meant for test code only. Return values: 0 on
 * success, -1 on failure (the reason is printed on stderr; the conninfo is
 * never printed), FC_TEST_PG_EXTERNAL as said above.
 */
#ifndef FC_TEST_PG_SERVER_H
#define FC_TEST_PG_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FC_TEST_PG_EXTERNAL (-2)

#define FC_TEST_PG_PATH_LENGTH 256
#define FC_TEST_PG_CONNINFO_LENGTH 1024

typedef struct {
  /* Append "fsync = off" and "synchronous_commit = off": faster, but a
   * crash (stop -m immediate) may then lose committed data. Leave 0 for
   * fault tests. */
  int fsync_off;
  /* Also listen on 127.0.0.1:<port> (never another address); fills
   * conninfo_tcp. */
  int tcp;
  /* Extra postgresql.conf lines (e.g. "max_connections = 20\n"), or NULL. */
  const char *extra_conf;
} fc_test_pg_options_t;

typedef struct {
  int external; /* 1: FLOWCORE_TEST_PG is used, nothing was started */
  int attached; /* 1: a scripts/pg-server directory (fc_test_pg_attach) */
  int running;  /* 1 while our server is up */
  int port;
  int tcp;
  pid_t watchdog; /* 0 when none */
  int watchdog_fd;
  char dir[FC_TEST_PG_PATH_LENGTH];     /* /tmp/fc-pg-XXXXXX */
  char datadir[FC_TEST_PG_PATH_LENGTH]; /* dir/data */
  char sockdir[FC_TEST_PG_PATH_LENGTH]; /* dir/sock */
  char logfile[FC_TEST_PG_PATH_LENGTH]; /* dir/server.log (the server's) */
  char cmdlog[FC_TEST_PG_PATH_LENGTH];  /* dir/commands.log (initdb, pg_ctl) */
  char bindir[FC_TEST_PG_PATH_LENGTH];  /* "" when found on PATH */
  /* host=<sockdir> port=<port> dbname=flowcore_test user=postgres
   * (or the value of FLOWCORE_TEST_PG). */
  char conninfo[FC_TEST_PG_CONNINFO_LENGTH];
  /* host=127.0.0.1 port=<port> ... when options.tcp, else "". */
  char conninfo_tcp[FC_TEST_PG_CONNINFO_LENGTH];
} fc_test_pg_t;

/* Starts a server with default options (fsync on, unix socket only). */
int fc_test_pg_start(fc_test_pg_t *pg);
/* Starts a server with options (NULL: defaults). */
int fc_test_pg_start_ex(fc_test_pg_t *pg, const fc_test_pg_options_t *opts);
/* Stops the server (-m fast) and removes its directory. Safe to call twice
 * and after a failed start. External: does nothing, returns 0. */
int fc_test_pg_stop(fc_test_pg_t *pg);
/* pg_ctl restart -m fast; waits until it accepts connections again. */
int fc_test_pg_restart(fc_test_pg_t *pg);
/* Stops the server (-m fast) but keeps its directory (outage tests). */
int fc_test_pg_stop_only(fc_test_pg_t *pg);
/* Stops the server with -m immediate: a crash (recovery on next start). */
int fc_test_pg_crash(fc_test_pg_t *pg);
/* Starts a server stopped by fc_test_pg_stop_only()/fc_test_pg_crash(). */
int fc_test_pg_start_again(fc_test_pg_t *pg);

/* Fills pg for the running server of a scripts/pg-server directory (e.g.
 * a node of scripts/citus-cluster) so that fc_test_pg_restart(),
 * fc_test_pg_stop_only(), fc_test_pg_crash() and fc_test_pg_start_again()
 * work on it; fc_test_pg_stop() leaves it running and its directory in
 * place. conninfo names its database (the file dbname of the directory). */
int fc_test_pg_attach(fc_test_pg_t *pg, const char *dir);

/* Terminates every other client backend (for an external server: only
 * those of the same user), waiting up to 5 s for each to exit, through a
 * separate connection. Returns how many were terminated, or -1. */
int fc_test_pg_kill_backends(fc_test_pg_t *pg);

/* Creates (dropping it first if it exists) database `name` on pg's server
 * and writes a conninfo for it into out. Works for external servers too
 * (needs CREATEDB). With FLOWCORE_TEST_CITUS (citus_cluster.h) the database
 * is made on every node of that cluster, with the citus extension and the
 * workers registered. Returns 0 or -1. */
int fc_test_pg_create_db(fc_test_pg_t *pg, const char *name, char *out, size_t size);
/* Drops database `name` (terminating its sessions; on every node of a
 * FLOWCORE_TEST_CITUS cluster). Returns 0 or -1. */
int fc_test_pg_drop_db(fc_test_pg_t *pg, const char *name);

/* Writes into out the conninfo `base` with dbname replaced by `dbname`
 * (base may be key=value or a URI). Returns 0 or -1. */
int fc_test_pg_conninfo_with_db(const char *base, const char *dbname, char *out, size_t size);

/* Runs one statement (printf-style) on a new connection. Returns 0 or -1. */
int fc_test_pg_exec(const char *conninfo, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Runs a query that returns one row with one column and stores it:
 * query_int parses it as an integer (SQL NULL is an error); query_text
 * stores a malloc'd copy in *out, or NULL for SQL NULL (free() it).
 * Returns 0, or -1 on error or when the result is not exactly 1x1. */
int fc_test_pg_query_int(const char *conninfo, int64_t *out, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int fc_test_pg_query_text(const char *conninfo, char **out, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* cmocka conveniences: as above, but fail the current test on error. */
int64_t fc_test_pg_int(const char *conninfo, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Returns a malloc'd string (free() it); SQL NULL fails the test. */
char *fc_test_pg_text(const char *conninfo, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif

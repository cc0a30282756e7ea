/* A private PostgreSQL server for integration tests (see pg_server.h). */
#define _GNU_SOURCE

#include "pg_server.h"
#include "citus_cluster.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include <libpq-fe.h>

#define PG_TMP_PREFIX "/tmp/fc-pg-"
#define PG_PORT_BASE 20000
#define PG_PORT_SPAN 12768 /* 20000..32767: below Linux's ephemeral range */

static int start_count; /* servers started by this process: varies the port */

/* ---- small helpers ------------------------------------------------------ */

static void say(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static void say(const char *fmt, ...) {
  va_list ap;
  fputs("fc_test_pg: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
}

static int is_root(void) { return geteuid() == 0; }

static int join_path(char *out, size_t size, const char *a, const char *b) {
  int n = snprintf(out, size, "%s/%s", a, b);
  return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

static int is_executable(const char *path) { return access(path, X_OK) == 0; }

static const char *runuser_path(void) {
  if (is_executable("/usr/sbin/runuser"))
    return "/usr/sbin/runuser";
  if (is_executable("/sbin/runuser"))
    return "/sbin/runuser";
  return "runuser"; /* PATH */
}

/* Finds the directory of initdb/pg_ctl: $FLOWCORE_PG_BINDIR, else the
 * newest /usr/lib/postgresql/<major>/bin, else "" (use PATH). */
static void find_bindir(char *out, size_t size) {
  const char *env = getenv("FLOWCORE_PG_BINDIR");
  DIR *d;
  struct dirent *de;
  long best = -1;

  out[0] = '\0';
  if (env != NULL && env[0] != '\0') {
    snprintf(out, size, "%s", env);
    return;
  }
  d = opendir("/usr/lib/postgresql");
  if (d == NULL)
    return;
  while ((de = readdir(d)) != NULL) {
    char path[FC_TEST_PG_PATH_LENGTH];
    char *end;
    long major = strtol(de->d_name, &end, 10);
    if (end == de->d_name || *end != '\0')
      continue;
    snprintf(path, sizeof path, "/usr/lib/postgresql/%ld/bin/initdb", major);
    if (major > best && is_executable(path)) {
      best = major;
      snprintf(out, size, "/usr/lib/postgresql/%ld/bin", major);
    }
  }
  closedir(d);
}

static void bin_path(const fc_test_pg_t *pg, const char *prog, char *out, size_t size) {
  if (pg->bindir[0] == '\0')
    snprintf(out, size, "%s", prog);
  else if (join_path(out, size, pg->bindir, prog) != 0)
    snprintf(out, size, "%s", prog); /* absurdly long bindir: try PATH */
}

static void print_tail(const char *label, const char *path) {
  char buf[4096];
  FILE *f = fopen(path, "r");
  long size;
  size_t n;

  if (f == NULL)
    return;
  if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > (long)sizeof buf - 1)
    fseek(f, size - (long)sizeof buf + 1, SEEK_SET);
  else
    fseek(f, 0, SEEK_SET);
  n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  fprintf(stderr, "---- %s (%s), last lines ----\n%s\n---- end ----\n", label, path, buf);
}

static void log_command(const fc_test_pg_t *pg, const char *const *argv) {
  FILE *f = fopen(pg->cmdlog, "a");
  size_t i;
  if (f == NULL)
    return;
  fputs("$", f);
  for (i = 0; argv[i] != NULL; i++)
    fprintf(f, " %s", argv[i]);
  fputc('\n', f);
  fclose(f);
}

/* Runs argv (as the postgres user when we are root) in pg->dir with
 * stdin from /dev/null and stdout+stderr appended to pg->cmdlog. Waits.
 * Returns 0 if it exited with status 0, else -1. */
static int run_cmd(const fc_test_pg_t *pg, const char *const *args) {
  const char *argv[32];
  size_t n = 0, i;
  pid_t pid;
  int status;

  if (is_root()) {
    argv[n++] = runuser_path();
    argv[n++] = "-u";
    argv[n++] = "postgres";
    argv[n++] = "--";
  }
  for (i = 0; args[i] != NULL && n < sizeof argv / sizeof argv[0] - 1; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  log_command(pg, argv);

  pid = fork();
  if (pid < 0) {
    say("fork: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    /* Child: only async-signal-safe calls until exec. */
    int fd = open("/dev/null", O_RDONLY);
    if (fd >= 0)
      dup2(fd, 0);
    fd = open(pg->cmdlog, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (chdir(pg->dir) != 0 && chdir("/") != 0)
      _exit(126);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
  }
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      say("waitpid: %s", strerror(errno));
      return -1;
    }
  }
  return (WIFEXITED(status) && WEXITSTATUS(status) == 0) ? 0 : -1;
}

/* The watchdog: /bin/sh in its own session reading a socket. "quit" means
 * we clean up ourselves; end-of-file (this process died) means it stops
 * the server (-m immediate) and removes the directory. */
static int start_watchdog(fc_test_pg_t *pg) {
  static const char script[] =
      "IFS= read -r line; [ \"$line\" = quit ] && exit 0; "
      "if [ \"$4\" = 1 ]; then \"$5\" -u postgres -- \"$1\" -D \"$2\" stop -m immediate -w; "
      "else \"$1\" -D \"$2\" stop -m immediate -w; fi; "
      "case \"$3\" in /tmp/fc-pg-*) rm -rf -- \"$3\" ;; esac";
  char pg_ctl[FC_TEST_PG_PATH_LENGTH];
  const char *argv[10];
  int sv[2];
  pid_t pid;

  bin_path(pg, "pg_ctl", pg_ctl, sizeof pg_ctl);
  argv[0] = "/bin/sh";
  argv[1] = "-c";
  argv[2] = script;
  argv[3] = "fc-pg-watchdog";
  argv[4] = pg_ctl;
  argv[5] = pg->datadir;
  argv[6] = pg->dir;
  argv[7] = is_root() ? "1" : "0";
  argv[8] = runuser_path();
  argv[9] = NULL;

  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    say("socketpair: %s", strerror(errno));
    return -1;
  }
  pid = fork();
  if (pid < 0) {
    say("fork: %s", strerror(errno));
    close(sv[0]);
    close(sv[1]);
    return -1;
  }
  if (pid == 0) {
    int fd, max;
    setsid();
    dup2(sv[1], 0); /* dup2 clears close-on-exec */
    fd = open("/dev/null", O_WRONLY);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    max = (int)sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
      max = 65536;
    for (fd = 3; fd < max; fd++)
      close(fd);
    if (chdir("/") != 0)
      _exit(126);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(sv[1]);
  pg->watchdog = pid;
  pg->watchdog_fd = sv[0];
  return 0;
}

static void stop_watchdog(fc_test_pg_t *pg) {
  int status;
  if (pg->watchdog_fd >= 0) {
    (void)!send(pg->watchdog_fd, "quit\n", 5, MSG_NOSIGNAL);
    close(pg->watchdog_fd);
    pg->watchdog_fd = -1;
  }
  if (pg->watchdog > 0) {
    while (waitpid(pg->watchdog, &status, 0) < 0 && errno == EINTR) {
    }
    pg->watchdog = 0;
  }
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  if (remove(path) != 0 && errno != ENOENT)
    say("remove %s: %s", path, strerror(errno));
  return 0;
}

static void remove_tree(const char *dir) {
  if (strncmp(dir, PG_TMP_PREFIX, strlen(PG_TMP_PREFIX)) != 0)
    return; /* never remove anything we did not make */
  nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* 1 if nothing listens on 127.0.0.1:port (we can bind it). */
static int tcp_port_free(int port) {
  struct sockaddr_in sa;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int ok;
  if (fd < 0)
    return 0;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  close(fd);
  return ok;
}

static int choose_port(int tcp) {
  int attempt;
  for (attempt = 0; attempt < 64; attempt++) {
    int port = PG_PORT_BASE +
               (int)(((long)getpid() + (long)start_count * 4099 + attempt * 997) % PG_PORT_SPAN);
    if (!tcp || tcp_port_free(port))
      return port;
  }
  return -1;
}

static int append_conf(const fc_test_pg_t *pg, const fc_test_pg_options_t *opts) {
  char path[FC_TEST_PG_PATH_LENGTH + 32];
  FILE *f;
  int rc;

  snprintf(path, sizeof path, "%s/postgresql.conf", pg->datadir);
  f = fopen(path, "a");
  if (f == NULL) {
    say("open %s: %s", path, strerror(errno));
    return -1;
  }
  fprintf(f, "\n# ---- flowcore test fixture ----\n");
  fprintf(f, "listen_addresses = '%s'\n", opts->tcp ? "127.0.0.1" : "");
  fprintf(f, "port = %d\n", pg->port);
  fprintf(f, "unix_socket_directories = '%s'\n", pg->sockdir);
  fprintf(f, "unix_socket_permissions = 0777\n");
  fprintf(f, "logging_collector = off\n");
  fprintf(f, "max_connections = 100\n");
  fprintf(f, "shared_buffers = 32MB\n");
  if (opts->fsync_off)
    fprintf(f, "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
  if (opts->extra_conf != NULL)
    fprintf(f, "%s\n", opts->extra_conf);
  rc = fclose(f) == 0 ? 0 : -1;
  return rc;
}

static int pg_ctl(fc_test_pg_t *pg, const char *action, const char *mode) {
  char prog[FC_TEST_PG_PATH_LENGTH];
  const char *argv[16];
  size_t n = 0;

  bin_path(pg, "pg_ctl", prog, sizeof prog);
  argv[n++] = prog;
  argv[n++] = "-D";
  argv[n++] = pg->datadir;
  argv[n++] = "-w";
  argv[n++] = "-t";
  argv[n++] = "120";
  if (strcmp(action, "stop") != 0) {
    argv[n++] = "-l";
    argv[n++] = pg->logfile;
  }
  if (mode != NULL) {
    argv[n++] = "-m";
    argv[n++] = mode;
  }
  argv[n++] = action;
  argv[n] = NULL;
  if (run_cmd(pg, argv) != 0) {
    say("pg_ctl %s failed", action);
    print_tail("commands", pg->cmdlog);
    print_tail("server log", pg->logfile);
    return -1;
  }
  return 0;
}

static void ignore_notice(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

/* Connects, or prints why not (the message never contains a password).
 * Notices ("... does not exist, skipping") are not printed. */
static PGconn *connect_db(const char *conninfo) {
  PGconn *conn = PQconnectdb(conninfo);
  if (conn == NULL) {
    say("PQconnectdb: out of memory");
    return NULL;
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    say("connection failed: %s", PQerrorMessage(conn));
    PQfinish(conn);
    return NULL;
  }
  PQsetNoticeProcessor(conn, ignore_notice, NULL);
  return conn;
}

static PGresult *exec_checked(PGconn *conn, const char *sql) {
  PGresult *res = PQexec(conn, sql);
  ExecStatusType st = PQresultStatus(res);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    say("query failed: %s  query: %s", PQerrorMessage(conn), sql);
    PQclear(res);
    return NULL;
  }
  return res;
}

static char *vformat(const char *fmt, va_list ap) {
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0)
    return NULL;
  return s;
}

/* ---- server lifecycle --------------------------------------------------- */

int fc_test_pg_start(fc_test_pg_t *pg) { return fc_test_pg_start_ex(pg, NULL); }

int fc_test_pg_start_ex(fc_test_pg_t *pg, const fc_test_pg_options_t *opts) {
  static const fc_test_pg_options_t defaults = {0, 0, NULL};
  const char *external = getenv("FLOWCORE_TEST_PG");
  char prog[FC_TEST_PG_PATH_LENGTH];
  char admin[FC_TEST_PG_CONNINFO_LENGTH];
  struct passwd *pw = NULL;
  PGconn *conn;
  PGresult *res;

  memset(pg, 0, sizeof *pg);
  pg->watchdog_fd = -1;
  if (opts == NULL)
    opts = &defaults;

  if (external != NULL && external[0] != '\0') {
    pg->external = 1;
    if (strlen(external) >= sizeof pg->conninfo) {
      say("FLOWCORE_TEST_PG is too long");
      return -1;
    }
    snprintf(pg->conninfo, sizeof pg->conninfo, "%s", external);
    conn = connect_db(pg->conninfo);
    if (conn == NULL)
      return -1;
    PQfinish(conn);
    return 0;
  }

  find_bindir(pg->bindir, sizeof pg->bindir);
  if (is_root()) {
    pw = getpwnam("postgres");
    if (pw == NULL) {
      say("running as root but there is no `postgres` user to run the server as");
      return -1;
    }
  }

  snprintf(pg->dir, sizeof pg->dir, "%sXXXXXX", PG_TMP_PREFIX);
  if (mkdtemp(pg->dir) == NULL) {
    say("mkdtemp: %s", strerror(errno));
    pg->dir[0] = '\0';
    return -1;
  }
  if (join_path(pg->datadir, sizeof pg->datadir, pg->dir, "data") != 0 ||
      join_path(pg->sockdir, sizeof pg->sockdir, pg->dir, "sock") != 0 ||
      join_path(pg->logfile, sizeof pg->logfile, pg->dir, "server.log") != 0 ||
      join_path(pg->cmdlog, sizeof pg->cmdlog, pg->dir, "commands.log") != 0)
    goto fail;
  if (mkdir(pg->sockdir, 0700) != 0) {
    say("mkdir %s: %s", pg->sockdir, strerror(errno));
    goto fail;
  }
  if (pw != NULL && (chown(pg->dir, pw->pw_uid, pw->pw_gid) != 0 ||
                     chown(pg->sockdir, pw->pw_uid, pw->pw_gid) != 0)) {
    say("chown %s: %s", pg->dir, strerror(errno));
    goto fail;
  }
  if (start_watchdog(pg) != 0)
    goto fail;

  {
    const char *argv[] = {prog,       "-D", pg->datadir, "-A",          "trust",     "-U",
                          "postgres", "-E", "UTF8",      "--no-locale", "--no-sync", NULL};
    bin_path(pg, "initdb", prog, sizeof prog);
    if (run_cmd(pg, argv) != 0) {
      say("initdb failed (is the Debian package `postgresql` installed?)");
      print_tail("commands", pg->cmdlog);
      goto fail;
    }
  }

  pg->tcp = opts->tcp;
  pg->port = choose_port(opts->tcp);
  start_count++;
  if (pg->port < 0) {
    say("no free port on 127.0.0.1");
    goto fail;
  }
  if (append_conf(pg, opts) != 0)
    goto fail;
  if (pg_ctl(pg, "start", NULL) != 0)
    goto fail;
  pg->running = 1;

  snprintf(admin, sizeof admin, "host=%s port=%d dbname=postgres user=postgres", pg->sockdir,
           pg->port);
  conn = connect_db(admin);
  if (conn == NULL)
    goto fail;
  res = exec_checked(conn, "CREATE DATABASE flowcore_test");
  PQclear(res);
  PQfinish(conn);
  if (res == NULL)
    goto fail;

  snprintf(pg->conninfo, sizeof pg->conninfo, "host=%s port=%d dbname=flowcore_test user=postgres",
           pg->sockdir, pg->port);
  if (opts->tcp)
    snprintf(pg->conninfo_tcp, sizeof pg->conninfo_tcp,
             "host=127.0.0.1 port=%d dbname=flowcore_test user=postgres", pg->port);
  return 0;

fail:
  fc_test_pg_stop(pg);
  return -1;
}

int fc_test_pg_stop(fc_test_pg_t *pg) {
  const char *keep = getenv("FLOWCORE_TEST_PG_KEEP");
  int rc = 0;

  if (pg->external || pg->attached)
    return 0;
  if (pg->running) {
    if (pg_ctl(pg, "stop", "fast") != 0 && pg_ctl(pg, "stop", "immediate") != 0)
      rc = -1;
    pg->running = 0;
  }
  stop_watchdog(pg);
  if (pg->dir[0] != '\0') {
    if (keep != NULL && strcmp(keep, "1") == 0)
      say("kept %s (FLOWCORE_TEST_PG_KEEP=1)", pg->dir);
    else
      remove_tree(pg->dir);
    pg->dir[0] = '\0';
  }
  return rc;
}

int fc_test_pg_restart(fc_test_pg_t *pg) {
  if (pg->external)
    return FC_TEST_PG_EXTERNAL;
  if (pg->dir[0] == '\0')
    return -1;
  if (pg_ctl(pg, "restart", "fast") != 0)
    return -1;
  pg->running = 1;
  return 0;
}

int fc_test_pg_stop_only(fc_test_pg_t *pg) {
  if (pg->external)
    return FC_TEST_PG_EXTERNAL;
  if (!pg->running)
    return -1;
  if (pg_ctl(pg, "stop", "fast") != 0)
    return -1;
  pg->running = 0;
  return 0;
}

int fc_test_pg_crash(fc_test_pg_t *pg) {
  if (pg->external)
    return FC_TEST_PG_EXTERNAL;
  if (!pg->running)
    return -1;
  if (pg_ctl(pg, "stop", "immediate") != 0)
    return -1;
  pg->running = 0;
  return 0;
}

int fc_test_pg_start_again(fc_test_pg_t *pg) {
  if (pg->external)
    return FC_TEST_PG_EXTERNAL;
  if (pg->running || pg->dir[0] == '\0')
    return -1;
  if (pg_ctl(pg, "start", NULL) != 0)
    return -1;
  pg->running = 1;
  return 0;
}

/* The first line of dir/file into out. */
static int read_line(const char *dir, const char *file, char *out, size_t size) {
  char path[FC_TEST_PG_PATH_LENGTH];
  FILE *f;
  int ok;

  if (join_path(path, sizeof path, dir, file) != 0 || (f = fopen(path, "r")) == NULL) {
    say("cannot read %s/%s", dir, file);
    return -1;
  }
  ok = fgets(out, (int)size, f) != NULL;
  fclose(f);
  if (!ok)
    return -1;
  out[strcspn(out, "\n")] = '\0';
  return 0;
}

int fc_test_pg_attach(fc_test_pg_t *pg, const char *dir) {
  char port[32], dbname[128];

  memset(pg, 0, sizeof *pg);
  pg->watchdog_fd = -1;
  find_bindir(pg->bindir, sizeof pg->bindir);
  if (read_line(dir, "port", port, sizeof port) != 0 ||
      read_line(dir, "dbname", dbname, sizeof dbname) != 0)
    return -1;
  pg->port = atoi(port);
  pg->attached = 1;
  pg->running = 1;
  if ((size_t)snprintf(pg->dir, sizeof pg->dir, "%s", dir) >= sizeof pg->dir ||
      join_path(pg->datadir, sizeof pg->datadir, dir, "data") != 0 ||
      join_path(pg->sockdir, sizeof pg->sockdir, dir, "sock") != 0 ||
      join_path(pg->logfile, sizeof pg->logfile, dir, "server.log") != 0 ||
      join_path(pg->cmdlog, sizeof pg->cmdlog, dir, "commands.log") != 0)
    return -1;
  snprintf(pg->conninfo, sizeof pg->conninfo, "host=%s port=%d dbname=%s user=postgres",
           pg->sockdir, pg->port, dbname);
  return 0;
}

int fc_test_pg_kill_backends(fc_test_pg_t *pg) {
  char sql[512];
  PGconn *conn = connect_db(pg->conninfo);
  PGresult *res;
  int n;

  if (conn == NULL)
    return -1;
  snprintf(sql, sizeof sql,
           "SELECT count(*) FILTER (WHERE killed) FROM ("
           " SELECT %s AS killed FROM pg_stat_activity"
           " WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'%s) s",
           PQserverVersion(conn) >= 140000 ? "pg_terminate_backend(pid, 5000)"
                                           : "pg_terminate_backend(pid)",
           pg->external ? " AND usename = current_user" : "");
  res = exec_checked(conn, sql);
  n = res != NULL ? atoi(PQgetvalue(res, 0, 0)) : -1;
  PQclear(res);
  PQfinish(conn);
  return n;
}

/* ---- databases and conninfo strings ------------------------------------- */

static int append_str(char *out, size_t size, size_t *len, const char *s) {
  size_t n = strlen(s);
  if (*len + n >= size)
    return -1;
  memcpy(out + *len, s, n + 1);
  *len += n;
  return 0;
}

/* Appends keyword='value' with \ and ' escaped as libpq expects. */
static int append_kv(char *out, size_t size, size_t *len, const char *key, const char *val) {
  char ch[3] = {0, 0, 0};
  if ((*len > 0 && append_str(out, size, len, " ") != 0) || append_str(out, size, len, key) != 0 ||
      append_str(out, size, len, "='") != 0)
    return -1;
  for (; *val != '\0'; val++) {
    if (*val == '\\' || *val == '\'') {
      ch[0] = '\\';
      ch[1] = *val;
    } else {
      ch[0] = *val;
      ch[1] = '\0';
    }
    if (append_str(out, size, len, ch) != 0)
      return -1;
  }
  return append_str(out, size, len, "'");
}

int fc_test_pg_conninfo_with_db(const char *base, const char *dbname, char *out, size_t size) {
  char *errmsg = NULL;
  PQconninfoOption *opts = PQconninfoParse(base, &errmsg), *o;
  size_t len = 0;
  int rc = 0;

  if (opts == NULL) {
    say("cannot parse conninfo: %s", errmsg ? errmsg : "out of memory");
    PQfreemem(errmsg);
    return -1;
  }
  out[0] = '\0';
  for (o = opts; o->keyword != NULL && rc == 0; o++)
    if (o->val != NULL && strcmp(o->keyword, "dbname") != 0)
      rc = append_kv(out, size, &len, o->keyword, o->val);
  if (rc == 0)
    rc = append_kv(out, size, &len, "dbname", dbname);
  PQconninfoFree(opts);
  if (rc != 0)
    say("conninfo too long");
  return rc;
}

static int admin_exec_ident(fc_test_pg_t *pg, const char *fmt, const char *name) {
  PGconn *conn = connect_db(pg->conninfo);
  char *ident, *sql = NULL;
  PGresult *res = NULL;

  if (conn == NULL)
    return -1;
  ident = PQescapeIdentifier(conn, name, strlen(name));
  if (ident != NULL && asprintf(&sql, fmt, ident) >= 0)
    res = exec_checked(conn, sql);
  PQfreemem(ident);
  free(sql);
  PQfinish(conn);
  if (res == NULL)
    return -1;
  PQclear(res);
  return 0;
}

int fc_test_pg_create_db(fc_test_pg_t *pg, const char *name, char *out, size_t size) {
  if (fc_test_pg_drop_db(pg, name) != 0 || admin_exec_ident(pg, "CREATE DATABASE %s", name) != 0)
    return -1;
  if (fc_test_pg_conninfo_with_db(pg->conninfo, name, out, size) != 0)
    return -1;
  return fc_test_citus_dir() != NULL ? fc_test_citus_add_db(out, name) : 0;
}

int fc_test_pg_drop_db(fc_test_pg_t *pg, const char *name) {
  if (fc_test_citus_dir() != NULL && fc_test_citus_end_prepared(pg->conninfo, name) != 0)
    return -1;
  if (admin_exec_ident(pg, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name) != 0)
    return -1;
  return fc_test_citus_dir() != NULL ? fc_test_citus_drop_db(name) : 0;
}

/* ---- queries ------------------------------------------------------------ */

static int exec_v(const char *conninfo, PGresult **out, const char *fmt, va_list ap) {
  char *sql = vformat(fmt, ap);
  PGconn *conn;
  PGresult *res = NULL;

  *out = NULL;
  if (sql == NULL)
    return -1;
  conn = connect_db(conninfo);
  if (conn != NULL)
    res = exec_checked(conn, sql);
  if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK &&
      (PQntuples(res) != 1 || PQnfields(res) != 1)) {
    say("expected 1 row x 1 column, got %d x %d: %s", PQntuples(res), PQnfields(res), sql);
    PQclear(res);
    res = NULL;
  }
  free(sql);
  PQfinish(conn);
  *out = res;
  return res != NULL ? 0 : -1;
}

int fc_test_pg_exec(const char *conninfo, const char *fmt, ...) {
  char *sql;
  PGconn *conn;
  PGresult *res = NULL;
  va_list ap;

  va_start(ap, fmt);
  sql = vformat(fmt, ap);
  va_end(ap);
  if (sql == NULL)
    return -1;
  conn = connect_db(conninfo);
  if (conn != NULL)
    res = exec_checked(conn, sql);
  free(sql);
  PQfinish(conn);
  if (res == NULL)
    return -1;
  PQclear(res);
  return 0;
}

static int query_int_v(const char *conninfo, int64_t *out, const char *fmt, va_list ap) {
  PGresult *res;
  char *end;
  const char *v;
  int rc = -1;

  if (exec_v(conninfo, &res, fmt, ap) != 0)
    return -1;
  if (PQresultStatus(res) != PGRES_TUPLES_OK || PQgetisnull(res, 0, 0)) {
    say("query returned no value (NULL or not a SELECT)");
  } else {
    v = PQgetvalue(res, 0, 0);
    errno = 0;
    *out = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0')
      say("not an integer: %s", v);
    else
      rc = 0;
  }
  PQclear(res);
  return rc;
}

static int query_text_v(const char *conninfo, char **out, const char *fmt, va_list ap) {
  PGresult *res;
  int rc = 0;

  *out = NULL;
  if (exec_v(conninfo, &res, fmt, ap) != 0)
    return -1;
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    say("query returned no rows (not a SELECT)");
    rc = -1;
  } else if (!PQgetisnull(res, 0, 0)) {
    *out = strdup(PQgetvalue(res, 0, 0));
    if (*out == NULL)
      rc = -1;
  }
  PQclear(res);
  return rc;
}

int fc_test_pg_query_int(const char *conninfo, int64_t *out, const char *fmt, ...) {
  va_list ap;
  int rc;
  va_start(ap, fmt);
  rc = query_int_v(conninfo, out, fmt, ap);
  va_end(ap);
  return rc;
}

int fc_test_pg_query_text(const char *conninfo, char **out, const char *fmt, ...) {
  va_list ap;
  int rc;
  va_start(ap, fmt);
  rc = query_text_v(conninfo, out, fmt, ap);
  va_end(ap);
  return rc;
}

int64_t fc_test_pg_int(const char *conninfo, const char *fmt, ...) {
  va_list ap;
  int64_t v = 0;
  int rc;
  va_start(ap, fmt);
  rc = query_int_v(conninfo, &v, fmt, ap);
  va_end(ap);
  if (rc != 0)
    fail_msg("fc_test_pg_int: query failed (see stderr)");
  return v;
}

char *fc_test_pg_text(const char *conninfo, const char *fmt, ...) {
  va_list ap;
  char *v = NULL;
  int rc;
  va_start(ap, fmt);
  rc = query_text_v(conninfo, &v, fmt, ap);
  va_end(ap);
  if (rc != 0 || v == NULL)
    fail_msg("fc_test_pg_text: query failed or returned NULL (see stderr)");
  return v;
}

/* flowcore command line: `flowcore migrate [--status] [--db URL] [--dir DIR]`
 * with the migration runner of flowcore/migrate.h (blocking libpq). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#include "../pg/pq.h"
#include "cli.h"

static int is_dir(const char *path) {
  struct stat sb;
  return path != NULL && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* The installed migrations beside this executable: <exe dir>/
 * FLOWCORE_EXE_MIGRATIONS_DIR (relative, from the install layout, e.g.
 * ../share/flowcore/migrations), so a moved prefix keeps working. Writes it
 * to buf and returns buf when that directory exists, else NULL. */
static const char *exe_relative_dir(char *buf, size_t size) {
#ifdef FLOWCORE_EXE_MIGRATIONS_DIR
  const char *rel = FLOWCORE_EXE_MIGRATIONS_DIR;
  size_t len = size;
  char *slash;
  /* uv_exepath: /proc/self/exe on Linux, symbolic links resolved */
  if (uv_exepath(buf, &len) != 0 || len >= size)
    return NULL;
  slash = strrchr(buf, '/');
  if (slash == NULL || slash == buf)
    return NULL;
  *slash = '\0'; /* the executable's directory */
  /* each leading ../ climbs one directory, so the path printed is plain */
  while (strncmp(rel, "../", 3) == 0 && (slash = strrchr(buf, '/')) != NULL && slash != buf) {
    *slash = '\0';
    rel += 3;
  }
  if (strlen(buf) + 1 + strlen(rel) + 1 > size)
    return NULL;
  strcat(buf, "/");
  strcat(buf, rel);
  return is_dir(buf) ? buf : NULL;
#else
  (void)size;
  (void)buf;
  return NULL;
#endif
}

/* --dir, else $FLOWCORE_MIGRATIONS_DIR, else the installed migrations
 * beside this executable, else the source tree's migrations/ (a binary of a
 * build tree whose source still exists), else the library's compiled-in
 * default (fc_migrate_default_dir). buf holds the one found beside the
 * executable. */
static const char *pick_dir(const char *opt, char *buf, size_t size) {
  const char *env = getenv("FLOWCORE_MIGRATIONS_DIR");
  const char *beside;
  if (opt != NULL)
    return opt;
  if (env != NULL && env[0] != '\0')
    return env;
  beside = exe_relative_dir(buf, size);
  if (beside != NULL)
    return beside;
#ifdef FLOWCORE_SOURCE_MIGRATIONS_DIR
  if (is_dir(FLOWCORE_SOURCE_MIGRATIONS_DIR))
    return FLOWCORE_SOURCE_MIGRATIONS_DIR;
#endif
  return fc_migrate_default_dir();
}

static void print_report(const fc_migrate_report_t *rep, int status_only) {
  static const char *const headers[] = {"VERSION", "NAME", "STATE", "APPLIED AT"};
  cli_table_t *t = cli_table_new(4, headers, "rlll");
  size_t i;
  for (i = 0; t != NULL && i < rep->count; i++) {
    const fc_migration_t *m = &rep->items[i];
    char version[16], applied[40], state[40];
    const char *cells[4];
    snprintf(version, sizeof version, "%04d", m->version);
    if (m->applied_at_us != 0)
      cli_format_local_time(m->applied_at_us, applied, sizeof applied);
    else
      snprintf(applied, sizeof applied, "-");
    snprintf(state, sizeof state, "%s%s", fc_migration_state_name(m->state),
             m->applied_now ? " (now)" : "");
    cells[0] = version;
    cells[1] = m->name;
    cells[2] = state;
    cells[3] = applied;
    if (cli_table_add(t, cells) != 0) {
      cli_table_free(t);
      t = NULL;
    }
  }
  if (t != NULL && rep->count > 0)
    cli_table_print(t, stdout);
  cli_table_free(t);
  if (status_only)
    cli_printf(stdout, "%zu applied, %zu pending%s", rep->applied, rep->pending,
               rep->modified + rep->missing > 0 ? "" : "\n");
  else
    cli_printf(stdout, "%zu applied now, %zu applied in all, %zu pending%s", rep->applied_now,
               rep->applied, rep->pending, rep->modified + rep->missing > 0 ? "" : "\n");
  if (rep->modified + rep->missing > 0)
    cli_printf(stdout, ", %zu modified, %zu missing\n", rep->modified, rep->missing);
}

/* After migrating: the history partitions for today-1 .. today+7 (migration
 * 0007, flowcore_ensure_partitions), then (both modes) how many partitions
 * there are, up to which day, and how many rows wait in the default
 * partitions. Nothing when the schema has no partitions yet. */
static int partitions_report(const char *conninfo, int ensure) {
  PGconn *conn = PQconnectdb(conninfo); /* libpq: cli_db_resolve loaded it */
  PGresult *res;
  int rc = CLI_EXIT_OK;
  if (PQstatus(conn) != CONNECTION_OK) {
    char *msg = cli_one_line(strdup(PQerrorMessage(conn)));
    cli_error("partitions: cannot connect: %s", msg != NULL ? msg : "out of memory");
    free(msg);
    PQfinish(conn);
    return CLI_EXIT_FAILED;
  }
  res = PQexec(conn, "SELECT to_regprocedure('flowcore_ensure_partitions(int)') IS NOT NULL");
  if (PQresultStatus(res) != PGRES_TUPLES_OK || strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
    PQclear(res);
    PQfinish(conn);
    return CLI_EXIT_OK;
  }
  PQclear(res);
  if (ensure) {
    res = PQexec(conn, "SELECT flowcore_ensure_partitions(7)");
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
      cli_printf(stdout, "partitions created: %s\n", PQgetvalue(res, 0, 0));
    else
      rc = CLI_EXIT_FAILED;
  } else {
    res = NULL;
  }
  if (rc == CLI_EXIT_OK) {
    PQclear(res);
    res = PQexec(conn,
                 "SELECT count(*) AS n, coalesce(max(substr(c.relname, 22)), '-') AS last,"
                 " (SELECT count(*) FROM workflow_executions_default)"
                 " + (SELECT count(*) FROM node_executions_default)"
                 " + (SELECT count(*) FROM execution_errors_default) AS in_default"
                 " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                 " WHERE i.inhparent = 'workflow_executions'::regclass"
                 " AND c.relname ~ '^workflow_executions_p[0-9]{8}$'");
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
      cli_printf(stdout,
                 "partitions: %s per table, the last from %s; %s row(s) in the default "
                 "partitions%s\n",
                 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
                 strcmp(PQgetvalue(res, 0, 2), "0") != 0
                     ? " (SELECT flowcore_rescue_default_partition() moves them)"
                     : "");
    else
      rc = CLI_EXIT_FAILED;
  }
  if (rc != CLI_EXIT_OK) {
    char *msg = cli_one_line(strdup(PQresultErrorMessage(res)));
    cli_error("partitions: %s", msg != NULL ? msg : "out of memory");
    free(msg);
  }
  PQclear(res);
  PQfinish(conn);
  return rc;
}

/* On a Citus coordinator (both modes): whether the history is distributed,
 * over how many workers, and in how many shards. Nothing without Citus. */
static int distribution_report(const char *conninfo) {
  PGconn *conn = PQconnectdb(conninfo);
  PGresult *res;
  int rc = CLI_EXIT_OK;
  if (PQstatus(conn) != CONNECTION_OK) {
    PQfinish(conn);
    return CLI_EXIT_OK; /* partitions_report said why */
  }
  res = PQexec(conn, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')");
  if (PQresultStatus(res) != PGRES_TUPLES_OK || strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
    PQclear(res);
    PQfinish(conn);
    return CLI_EXIT_OK;
  }
  PQclear(res);
  res = PQexec(conn,
               "SELECT (SELECT extversion FROM pg_extension WHERE extname = 'citus'),"
               " (SELECT count(*) FROM pg_dist_node WHERE isactive AND noderole = 'primary'"
               "   AND groupid <> 0),"
               " (SELECT count(*) FROM pg_dist_partition WHERE partmethod = 'h' AND logicalrelid"
               "   IN ('workflow_executions'::regclass, 'node_executions'::regclass,"
               "       'execution_errors'::regclass)),"
               " (SELECT count(*) FROM pg_dist_shard WHERE logicalrelid ="
               "   'workflow_executions'::regclass)");
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    char *msg = cli_one_line(strdup(PQresultErrorMessage(res)));
    cli_error("citus: %s", msg != NULL ? msg : "out of memory");
    free(msg);
    rc = CLI_EXIT_FAILED;
  } else if (strcmp(PQgetvalue(res, 0, 2), "3") == 0) {
    cli_printf(stdout,
               "citus %s: the history is distributed by workflow_id over %s worker(s), %s "
               "shards per table\n",
               PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 3));
  } else {
    cli_printf(stdout,
               "citus %s: %s worker(s); the history is not distributed yet (flowcore migrate "
               "distributes it)\n",
               PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
  }
  PQclear(res);
  PQfinish(conn);
  return rc;
}

void cli_usage_migrate(FILE *out) {
  fputs("Usage: flowcore migrate [--status] [--db CONNINFO] [--dir DIR]\n"
        "\n"
        "Applies the pending history schema migrations (each once, in order, under\n"
        "an advisory lock), or with --status lists them without changing anything.\n"
        "Then it creates the history's day partitions for yesterday to 7 days ahead\n"
        "(flowcore_ensure_partitions) and says how many partitions there are, up to\n"
        "which day, and how many rows are in the default partitions. On a database\n"
        "with the citus extension (a Citus coordinator) it distributes the history\n"
        "tables by workflow_id, once, and says over how many workers.\n"
        "\n"
        "Options:\n"
        "  --status         list the migrations and their state; change nothing\n"
        "  --db CONNINFO    PostgreSQL connection string or URL\n"
        "  --dir DIR        the migrations directory (default: $FLOWCORE_MIGRATIONS_DIR,\n"
        "                   else ../share/flowcore/migrations beside this executable,\n"
        "                   else the source tree's migrations/, else the installed one)\n"
        "  --help, -h       this help\n"
        "\n"
        "Exit codes: 0 done (--status: listed); 1 database or migration error, or\n"
        "stdout could not be written; 2 usage error.\n",
        out);
}

int cli_cmd_migrate(int argc, char **argv) {
  enum { OPT_HELP = 'h', OPT_STATUS = 256, OPT_DB, OPT_DIR };
  static const cli_opt_t opts[] = {{"help", 'h', 0, OPT_HELP},
                                   {"status", 0, 0, OPT_STATUS},
                                   {"db", 0, 1, OPT_DB},
                                   {"dir", 0, 1, OPT_DIR},
                                   {NULL, 0, 0, 0}};
  cli_opts_t p;
  cli_db_t db;
  fc_migrate_report_t rep;
  fc_error_t err;
  const char *db_opt = NULL, *dir_opt = NULL, *dir;
  char exe_dir[4096];
  int id, status_only = 0, rc;
  size_t i;

  cli_opts_init(&p, argc, argv, 2, "migrate");
  while ((id = cli_opt_next(&p, opts)) != CLI_OPT_END) {
    switch (id) {
    case CLI_OPT_ERROR:
      return CLI_EXIT_USAGE;
    case CLI_OPT_POSITIONAL:
      return cli_usage_error("migrate", "unexpected argument '%s'", p.positional);
    case OPT_HELP:
      cli_usage_migrate(stdout);
      return CLI_EXIT_OK;
    case OPT_STATUS:
      status_only = 1;
      break;
    case OPT_DB:
      db_opt = p.value;
      break;
    case OPT_DIR:
      dir_opt = p.value;
      break;
    default:
      return cli_usage_error("migrate", "unexpected option");
    }
  }
  dir = pick_dir(dir_opt, exe_dir, sizeof exe_dir);
  if (dir == NULL)
    return cli_usage_error("migrate", "no migrations directory: give --dir or set "
                                      "FLOWCORE_MIGRATIONS_DIR");
  if (!is_dir(dir)) {
    cli_error("the migrations directory \"%s\" does not exist", dir);
    return CLI_EXIT_USAGE;
  }
  rc = cli_db_resolve(db_opt, &db);
  if (rc != 0)
    return rc;

  fc_error_clear(&err);
  memset(&rep, 0, sizeof rep);
  if (status_only)
    rc = fc_migrate_status(db.conninfo, dir, &rep, &err);
  else
    rc = fc_migrate_run(db.conninfo, dir, &rep, &err);
  if (rc != 0) {
    /* Print what was done before the failure (applied ones stay). */
    if (!status_only)
      for (i = 0; i < rep.count; i++)
        if (rep.items[i].applied_now)
          cli_printf(stdout, "applied %s\n", rep.items[i].file);
    cli_one_line(err.text);
    cli_error("migrate%s failed: %s%s%s", status_only ? " --status" : "",
              err.where[0] != '\0' && strstr(err.text, err.where) == NULL ? err.where : "",
              err.where[0] != '\0' && strstr(err.text, err.where) == NULL ? ": " : "",
              err.text[0] != '\0' ? err.text : fc_strerror(rc));
    if (rc == FC_EDB)
      cli_db_hint(&db, err.text);
    fc_migrate_report_free(&rep);
    return rc == FC_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAILED;
  }
  cli_printf(stdout, "migrations: %s\n", dir);
  if (!status_only)
    for (i = 0; i < rep.count; i++)
      if (rep.items[i].applied_now)
        cli_printf(stdout, "applied %s\n", rep.items[i].file);
  print_report(&rep, status_only);
  if (!status_only && rep.applied_now == 0)
    cli_printf(stdout, "the database is up to date\n");
  fc_migrate_report_free(&rep);
  rc = partitions_report(db.conninfo, !status_only);
  if (rc == CLI_EXIT_OK)
    rc = distribution_report(db.conninfo);
  return rc;
}

/* Schema migrations (see include/flowcore/migrate.h). Blocking libpq: never
 * call these from an event loop. */
#define _POSIX_C_SOURCE 200809L

#include "flowcore/migrate.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#include "internal.h"
#include "pg/citus.h"
#include "pg/pq.h"
#include "pg/sha256.h"

#define MIGRATION_MAX_BYTES (16u << 20) /* a larger file is surely a mistake */

/* One NNNN_name.sql file of the directory. */
typedef struct {
  int version;
  char file[FC_MIGRATE_NAME_LENGTH];
  char name[FC_MIGRATE_NAME_LENGTH];
  char checksum[FC_MIGRATE_CHECKSUM_LENGTH];
  char *text; /* the file's contents, NUL-terminated */
} mig_file_t;

/* One row of flowcore_schema_migrations. */
typedef struct {
  int version;
  char name[FC_MIGRATE_NAME_LENGTH];
  char checksum[FC_MIGRATE_CHECKSUM_LENGTH];
  int64_t applied_at_us;
} mig_row_t;

typedef struct {
  mig_file_t *files;
  size_t nfiles;
  mig_row_t *rows;
  size_t nrows;
} mig_set_t;

static const char k_create_table[] =
    "CREATE TABLE IF NOT EXISTS flowcore_schema_migrations ("
    " version int NOT NULL CONSTRAINT flowcore_schema_migrations_pkey PRIMARY KEY"
    "  CONSTRAINT flowcore_schema_migrations_version_check CHECK (version > 0),"
    " name text NOT NULL,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now(),"
    " flowcore_version text,"
    " duration_ms double precision)";

static const char k_select_rows[] = "SELECT version, name, checksum,"
                                    " (extract(epoch FROM applied_at) * 1000000)::bigint"
                                    " FROM flowcore_schema_migrations ORDER BY version";

/* ---- files ---------------------------------------------------------------- */

static void mig_set_free(mig_set_t *set) {
  size_t i;
  for (i = 0; i < set->nfiles; i++)
    fc__free(set->files[i].text);
  fc__free(set->files);
  fc__free(set->rows);
  memset(set, 0, sizeof *set);
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* NNNN_name.sql with name [a-z0-9_]+. Stores the version and name. */
static int parse_file_name(const char *file, int *version, char *name, size_t name_size) {
  size_t len = strlen(file), i, name_len;
  if (len < 4 + 1 + 1 + 4 || len >= FC_MIGRATE_NAME_LENGTH || !ends_with(file, ".sql"))
    return 0;
  for (i = 0; i < 4; i++)
    if (file[i] < '0' || file[i] > '9')
      return 0;
  if (file[4] != '_')
    return 0;
  name_len = len - 5 - 4;
  for (i = 5; i < 5 + name_len; i++) {
    char c = file[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      return 0;
  }
  *version = 0;
  for (i = 0; i < 4; i++)
    *version = *version * 10 + (file[i] - '0');
  if (*version == 0 || name_len >= name_size)
    return 0;
  memcpy(name, file + 5, name_len);
  name[name_len] = '\0';
  return 1;
}

static int read_file(const char *path, const char *file, char **out, size_t *out_len,
                     fc_error_t *err) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t cap = 0, len = 0;
  int rc = 0;

  *out = NULL;
  if (f == NULL) {
    int code = uv_translate_sys_error(errno);
    return fc__error_set(err, code, file, "%s: cannot open: %s", file, uv_strerror(code));
  }
  for (;;) {
    size_t n;
    if (len + 4096 + 1 > cap && fc__grow((void **)&buf, &cap, len + 4096 + 1, 1) != 0) {
      rc = fc__error_set(err, FC_ENOMEM, file, "%s: out of memory", file);
      break;
    }
    n = fread(buf + len, 1, cap - len - 1, f);
    len += n;
    if (len > MIGRATION_MAX_BYTES) {
      rc = fc__error_set(err, FC_EMIGRATION, file, "%s: larger than %u bytes", file,
                         MIGRATION_MAX_BYTES);
      break;
    }
    if (n == 0) {
      if (ferror(f))
        rc = fc__error_set(err, uv_translate_sys_error(errno ? errno : EIO), file, "%s: read error",
                           file);
      break;
    }
  }
  fclose(f);
  if (rc == 0 && buf == NULL && fc__grow((void **)&buf, &cap, 1, 1) != 0)
    rc = fc__error_set(err, FC_ENOMEM, file, "%s: out of memory", file);
  if (rc == 0 && memchr(buf, '\0', len) != NULL)
    rc = fc__error_set(err, FC_EMIGRATION, file, "%s: contains a NUL byte", file);
  if (rc != 0) {
    fc__free(buf);
    return rc;
  }
  buf[len] = '\0';
  *out = buf;
  *out_len = len;
  return 0;
}

static int compare_strings(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int compare_files(const void *a, const void *b) {
  const mig_file_t *x = a, *y = b;
  if (x->version != y->version)
    return x->version < y->version ? -1 : 1;
  return strcmp(x->file, y->file);
}

/* Lists dir's *.sql files in name order (so errors are deterministic). */
static int list_sql_files(const char *dir, char ***names_out, size_t *count_out, fc_error_t *err) {
  DIR *d = fc__opendir(dir);
  struct dirent *de;
  char **names = NULL;
  size_t count = 0, cap = 0, i;
  int rc = 0;

  *names_out = NULL;
  *count_out = 0;
  if (d == NULL) {
    int code = uv_translate_sys_error(errno);
    return fc__error_set(err, code, dir, "migrations directory %s: %s", dir, uv_strerror(code));
  }
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.' || !ends_with(de->d_name, ".sql"))
      continue;
    if (fc__grow((void **)&names, &cap, count + 1, sizeof *names) != 0 ||
        (names[count] = fc__strdup(de->d_name)) == NULL) {
      rc = fc__error_set(err, FC_ENOMEM, dir, "out of memory");
      break;
    }
    count++;
  }
  closedir(d);
  if (rc != 0) {
    for (i = 0; i < count; i++)
      fc__free(names[i]);
    fc__free(names);
    return rc;
  }
  if (count > 0)
    qsort(names, count, sizeof *names, compare_strings);
  *names_out = names;
  *count_out = count;
  return 0;
}

/* Reads and checks every migration file of dir into set->files. */
static int load_files(const char *dir, mig_set_t *set, fc_error_t *err) {
  char **names;
  size_t count, cap = 0, i;
  int rc = list_sql_files(dir, &names, &count, err);

  if (rc != 0)
    return rc;
  for (i = 0; i < count && rc == 0; i++) {
    mig_file_t *m;
    char path[4096];
    struct stat st;
    size_t len = 0;
    int version;
    char name[FC_MIGRATE_NAME_LENGTH];

    if (!parse_file_name(names[i], &version, name, sizeof name)) {
      rc = fc__error_set(err, FC_EMIGRATION, names[i],
                         "%s: bad migration file name (want NNNN_name.sql: a 4-digit "
                         "version from 0001 and a name of [a-z0-9_])",
                         names[i]);
      break;
    }
    if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path) {
      rc = fc__error_set(err, FC_EINVAL, names[i], "%s: path too long", names[i]);
      break;
    }
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
      rc = fc__error_set(err, FC_EMIGRATION, names[i], "%s: not a regular file", names[i]);
      break;
    }
    if (fc__grow((void **)&set->files, &cap, set->nfiles + 1, sizeof *set->files) != 0) {
      rc = fc__error_set(err, FC_ENOMEM, names[i], "out of memory");
      break;
    }
    m = &set->files[set->nfiles];
    memset(m, 0, sizeof *m);
    m->version = version;
    snprintf(m->file, sizeof m->file, "%s", names[i]);
    snprintf(m->name, sizeof m->name, "%s", name);
    rc = read_file(path, names[i], &m->text, &len, err);
    if (rc != 0)
      break;
    fc__sha256_hex(m->text, len, m->checksum);
    set->nfiles++;
  }
  for (i = 0; i < count; i++)
    fc__free(names[i]);
  fc__free(names);
  if (rc != 0)
    return rc;

  if (set->nfiles > 0)
    qsort(set->files, set->nfiles, sizeof *set->files, compare_files);
  for (i = 0; i < set->nfiles; i++) {
    const mig_file_t *m = &set->files[i];
    if (i > 0 && m->version == set->files[i - 1].version)
      return fc__error_set(err, FC_EMIGRATION, m->file,
                           "%s: duplicate migration version %04d (also %s)", m->file, m->version,
                           set->files[i - 1].file);
    if (m->version != (int)i + 1)
      return fc__error_set(err, FC_EMIGRATION, m->file,
                           "%s: migration version %04d is missing before it (versions "
                           "must run 0001, 0002, ... without gaps)",
                           m->file, (int)i + 1);
  }
  return 0;
}

/* ---- database ------------------------------------------------------------- */

static void ignore_notice(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

/* Copies a libpq message without its trailing newline(s). */
static void trim_message(char *out, size_t size, const char *msg) {
  size_t n;
  snprintf(out, size, "%s", msg ? msg : "");
  n = strlen(out);
  while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
    out[--n] = '\0';
}

static int db_connect(const char *conninfo, PGconn **out, fc_error_t *err) {
  /* The conninfo is expanded from dbname; fallback_application_name names
   * us in pg_stat_activity unless the conninfo sets application_name. */
  const char *keys[] = {"dbname", "fallback_application_name", NULL};
  const char *values[] = {conninfo ? conninfo : "", "flowcore-migrate", NULL};
  char msg[FC_ERROR_TEXT_LENGTH];
  const char *why;
  PGconn *conn;

  *out = NULL;
  if (fc__pq_load(&why) != 0)
    return fc__error_set(err, FC_EDB, "", "%s", why);
  conn = PQconnectdbParams(keys, values, 1);
  if (conn == NULL)
    return fc__error_set(err, FC_ENOMEM, "", "cannot connect: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    /* PQerrorMessage names host/port/socket, never the password. */
    trim_message(msg, sizeof msg, PQerrorMessage(conn));
    PQfinish(conn);
    return fc__error_set(err, FC_EDB, "", "cannot connect to the database: %s", msg);
  }
  PQsetNoticeProcessor(conn, ignore_notice, NULL);
  *out = conn;
  return 0;
}

/* 1-based line of the 1-based character position pos (UTF-8) in text. */
static int line_of_position(const char *text, long pos) {
  long chars = 0;
  int line = 1;
  const unsigned char *p;
  for (p = (const unsigned char *)text; *p != '\0'; p++) {
    if ((*p & 0xC0) == 0x80)
      continue; /* continuation byte */
    if (++chars >= pos)
      break;
    if (*p == '\n')
      line++;
  }
  return line;
}

/* Records the error of a failed statement as "<file> line N: message
 * (SQLSTATE x)" when the migration's text is given and the server reported
 * a position, else "<file>: <what>: message (SQLSTATE x)" (parts left out
 * when empty). */
static int db_error(PGconn *conn, const PGresult *res, const char *file, const char *text,
                    const char *what, fc_error_t *err) {
  const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  const char *position = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
  char msg[FC_ERROR_TEXT_LENGTH], state[32] = "";
  char where[FC_MIGRATE_NAME_LENGTH + 32] = "";

  if (primary != NULL)
    trim_message(msg, sizeof msg, primary);
  else
    trim_message(msg, sizeof msg, PQerrorMessage(conn));
  if (sqlstate != NULL)
    snprintf(state, sizeof state, " (SQLSTATE %s)", sqlstate);
  if (file[0] != '\0' && text != NULL && position != NULL)
    snprintf(where, sizeof where, "%s line %d: ", file, line_of_position(text, atol(position)));
  else if (file[0] != '\0')
    snprintf(where, sizeof where, "%s: ", file);
  return fc__error_set(err, FC_EDB, file, "%s%s%s%s%s", where, what, what[0] ? ": " : "", msg,
                       state);
}

/* Runs sql; returns 0 if it succeeded, else records the error. */
static int db_exec(PGconn *conn, const char *sql, const char *what, fc_error_t *err) {
  PGresult *res = PQexec(conn, sql);
  ExecStatusType st = PQresultStatus(res);
  int rc = 0;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    rc = db_error(conn, res, "", NULL, what, err);
  PQclear(res);
  return rc;
}

static int table_exists(PGconn *conn, int *exists, fc_error_t *err) {
  PGresult *res = PQexec(conn, "SELECT to_regclass('flowcore_schema_migrations') IS NOT NULL");
  int rc = 0;
  if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
    rc = db_error(conn, res, "", NULL, "cannot look for flowcore_schema_migrations", err);
  else
    *exists = PQgetvalue(res, 0, 0)[0] == 't';
  PQclear(res);
  return rc;
}

static int load_rows(PGconn *conn, mig_set_t *set, fc_error_t *err) {
  PGresult *res = PQexec(conn, k_select_rows);
  int i, n, rc = 0;

  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    rc = db_error(conn, res, "", NULL, "cannot read flowcore_schema_migrations", err);
    PQclear(res);
    return rc;
  }
  n = PQntuples(res);
  if (n > 0) {
    set->rows = fc__calloc((size_t)n, sizeof *set->rows);
    if (set->rows == NULL) {
      PQclear(res);
      return fc__error_set(err, FC_ENOMEM, "", "out of memory");
    }
  }
  for (i = 0; i < n; i++) {
    mig_row_t *r = &set->rows[i];
    r->version = atoi(PQgetvalue(res, i, 0));
    snprintf(r->name, sizeof r->name, "%s", PQgetvalue(res, i, 1));
    snprintf(r->checksum, sizeof r->checksum, "%s", PQgetvalue(res, i, 2));
    r->applied_at_us = strtoll(PQgetvalue(res, i, 3), NULL, 10);
  }
  set->nrows = (size_t)n;
  PQclear(res);
  return 0;
}

/* ---- report ----------------------------------------------------------------- */

static void report_init(fc_migrate_report_t *rep) {
  if (rep != NULL)
    memset(rep, 0, sizeof *rep);
}

static void report_count(fc_migrate_report_t *rep) {
  size_t i;
  rep->applied = rep->pending = rep->modified = rep->missing = rep->applied_now = 0;
  for (i = 0; i < rep->count; i++) {
    const fc_migration_t *m = &rep->items[i];
    switch (m->state) {
    case FC_MIGRATION_PENDING:
      rep->pending++;
      break;
    case FC_MIGRATION_APPLIED:
      rep->applied++;
      break;
    case FC_MIGRATION_MODIFIED:
      rep->applied++;
      rep->modified++;
      break;
    case FC_MIGRATION_MISSING:
      rep->missing++;
      break;
    }
    if (m->applied_now)
      rep->applied_now++;
  }
}

/* Merges files and rows (both sorted by version) into rep->items. */
static int report_build(fc_migrate_report_t *rep, const mig_set_t *set, fc_error_t *err) {
  size_t fi = 0, ri = 0, n = 0;

  rep->items = fc__calloc(set->nfiles + set->nrows, sizeof *rep->items);
  if (rep->items == NULL)
    return fc__error_set(err, FC_ENOMEM, "", "out of memory");
  while (fi < set->nfiles || ri < set->nrows) {
    const mig_file_t *f = fi < set->nfiles ? &set->files[fi] : NULL;
    const mig_row_t *r = ri < set->nrows ? &set->rows[ri] : NULL;
    fc_migration_t *m = &rep->items[n++];

    if (f != NULL && (r == NULL || f->version < r->version)) {
      m->version = f->version;
      m->state = FC_MIGRATION_PENDING;
      fi++;
    } else if (f == NULL || r->version < f->version) {
      m->version = r->version;
      m->state = FC_MIGRATION_MISSING;
      ri++;
    } else {
      m->version = f->version;
      m->state = (strcmp(f->checksum, r->checksum) == 0 && strcmp(f->name, r->name) == 0)
                     ? FC_MIGRATION_APPLIED
                     : FC_MIGRATION_MODIFIED;
      fi++;
      ri++;
    }
    if (f != NULL && f->version == m->version) {
      snprintf(m->file, sizeof m->file, "%s", f->file);
      snprintf(m->name, sizeof m->name, "%s", f->name);
      snprintf(m->checksum, sizeof m->checksum, "%s", f->checksum);
    }
    if (r != NULL && r->version == m->version) {
      if (m->state == FC_MIGRATION_MISSING)
        snprintf(m->name, sizeof m->name, "%s", r->name);
      snprintf(m->applied_checksum, sizeof m->applied_checksum, "%s", r->checksum);
      m->applied_at_us = r->applied_at_us;
    }
  }
  rep->count = n;
  report_count(rep);
  return 0;
}

/* The checks fc_migrate_run() makes before applying anything. */
static int report_check(const fc_migrate_report_t *rep, const mig_set_t *set, fc_error_t *err) {
  int max_applied = 0;
  size_t i, j;

  for (i = 0; i < rep->count; i++) {
    const fc_migration_t *m = &rep->items[i];
    if (m->state != FC_MIGRATION_PENDING && m->version > max_applied)
      max_applied = m->version;
    if (m->state != FC_MIGRATION_MODIFIED)
      continue;
    for (j = 0; j < set->nrows; j++) {
      const mig_row_t *r = &set->rows[j];
      if (r->version != m->version)
        continue;
      if (strcmp(r->name, m->name) != 0)
        return fc__error_set(err, FC_EMIGRATION, m->file,
                             "%s: version %04d was applied as \"%s\"; a released migration "
                             "must not be renamed",
                             m->file, m->version, r->name);
    }
    return fc__error_set(err, FC_EMIGRATION, m->file,
                         "%s was changed after it was applied (sha256 %.12s..., applied "
                         "%.12s...); restore it and add a new migration instead",
                         m->file, m->checksum, m->applied_checksum);
  }
  for (i = 0; i < rep->count; i++) {
    const fc_migration_t *m = &rep->items[i];
    if (m->state == FC_MIGRATION_PENDING && m->version < max_applied)
      return fc__error_set(err, FC_EMIGRATION, m->file,
                           "%s is not applied but the later version %04d is", m->file, max_applied);
  }
  return 0;
}

/* ---- applying ----------------------------------------------------------------- */

/* Attempts at one migration that keeps losing races on the server-wide
 * catalogs (see apply_one) before its error is returned. */
#define MIGRATION_MAX_ATTEMPTS 10

/* A failed migration statement whose error may come from a race with a
 * migration of another database of the server: roles (and the other
 * objects of the shared catalogs) belong to the whole server, while the
 * advisory lock only serializes runners of one database. */
typedef enum {
  RACE_NONE = 0,
  RACE_SHARED_UNIQUE,   /* unique_violation (23505) on a pg_catalog table */
  RACE_DUPLICATE_OBJECT /* duplicate_object (42710) */
} race_kind_t;

typedef struct {
  race_kind_t kind;
  char table[64]; /* RACE_SHARED_UNIQUE: the catalog named by the error */
} race_t;

static void race_classify(const PGresult *res, race_t *race) {
  const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  const char *schema = PQresultErrorField(res, PG_DIAG_SCHEMA_NAME);
  const char *table = PQresultErrorField(res, PG_DIAG_TABLE_NAME);

  memset(race, 0, sizeof *race);
  if (state == NULL)
    return;
  if (strcmp(state, "23505") == 0 && schema != NULL && strcmp(schema, "pg_catalog") == 0 &&
      table != NULL && strlen(table) < sizeof race->table) {
    race->kind = RACE_SHARED_UNIQUE;
    snprintf(race->table, sizeof race->table, "%s", table);
  } else if (strcmp(state, "42710") == 0) {
    race->kind = RACE_DUPLICATE_OBJECT;
  }
}

/* The server's roles as "count/highest oid": a role created or dropped by
 * anyone changes it. */
static int roles_state(PGconn *conn, char *out, size_t size, fc_error_t *err) {
  PGresult *res = PQexec(conn, "SELECT count(*) || '/' || coalesce(max(oid)::text, '')"
                               " FROM pg_roles");
  int rc = 0;
  if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
    rc = db_error(conn, res, "", NULL, "cannot read the roles", err);
  else
    snprintf(out, size, "%s", PQgetvalue(res, 0, 0));
  PQclear(res);
  return rc;
}

/* 1 if the rolled-back attempt lost a race with another database's
 * migration, so that trying again can succeed: a unique violation in a
 * catalog shared by all databases (its pre-check passed, so another
 * transaction inserted the same key and committed while we waited on it),
 * or a duplicate_object while the server's roles changed since the attempt
 * began (the role appeared between the migration's check and its CREATE).
 * Anything else, and any doubt, is 0. */
static int race_lost(PGconn *conn, const race_t *race, const char *roles_before) {
  char roles_after[64];
  const char *params[1];
  PGresult *res;
  int shared;

  switch (race->kind) {
  case RACE_NONE:
    return 0;
  case RACE_DUPLICATE_OBJECT:
    return roles_state(conn, roles_after, sizeof roles_after, NULL) == 0 &&
           strcmp(roles_after, roles_before) != 0;
  case RACE_SHARED_UNIQUE:
    params[0] = race->table;
    res = PQexecParams(conn,
                       "SELECT c.relisshared FROM pg_class c JOIN pg_namespace n"
                       " ON n.oid = c.relnamespace"
                       " WHERE n.nspname = 'pg_catalog' AND c.relname = $1",
                       1, NULL, params, NULL, NULL, 0);
    shared = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
             PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return shared;
  }
  return 0;
}

/* One attempt at f in its own transaction; rolled back on failure. When the
 * migration's own SQL failed, race says whether that may be a lost race. */
static int apply_once(PGconn *conn, const mig_file_t *f, race_t *race, fc_error_t *err) {
  char version[16], duration[32];
  const char *params[5];
  PGresult *res;
  ExecStatusType st;
  uint64_t t0;
  int rc;

  rc = db_exec(conn, "BEGIN", "cannot begin a transaction", err);
  if (rc != 0)
    return rc;
  t0 = fc__mono_ns();
  res = PQexec(conn, f->text);
  st = PQresultStatus(res);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
    rc = db_error(conn, res, f->file, f->text, "", err);
    race_classify(res, race);
    PQclear(res);
    goto rollback;
  }
  PQclear(res);
  if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
    rc = fc__error_set(err, FC_EMIGRATION, f->file,
                       "%s ended the migration's transaction itself; a migration must not "
                       "contain BEGIN, COMMIT or ROLLBACK",
                       f->file);
    goto rollback;
  }

  snprintf(version, sizeof version, "%d", f->version);
  snprintf(duration, sizeof duration, "%.3f", (double)(fc__mono_ns() - t0) / 1e6);
  params[0] = version;
  params[1] = f->name;
  params[2] = f->checksum;
  params[3] = fc_version_string();
  params[4] = duration;
  res = PQexecParams(conn,
                     "INSERT INTO flowcore_schema_migrations"
                     " (version, name, checksum, flowcore_version, duration_ms)"
                     " VALUES ($1::int, $2, $3, $4, $5::double precision)",
                     5, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    rc = db_error(conn, res, f->file, NULL, "cannot record the migration", err);
    PQclear(res);
    goto rollback;
  }
  PQclear(res);
  res = PQexec(conn, "COMMIT");
  /* A COMMIT of a failed transaction reports success as ROLLBACK. */
  if (PQresultStatus(res) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(res), "COMMIT") != 0) {
    rc = db_error(conn, res, f->file, NULL, "commit failed", err);
    PQclear(res);
    return rc;
  }
  PQclear(res);
  /* Undo plain SETs the file made so they cannot leak into the next one. */
  return db_exec(conn, "RESET ALL", "RESET ALL failed", err);

rollback:
  if (PQtransactionStatus(conn) != PQTRANS_IDLE)
    PQclear(PQexec(conn, "ROLLBACK"));
  return rc;
}

/* Applies f, trying it again (a new transaction, after the rollback) while
 * it fails only because a migration of another database of the same server
 * created the same role first (see race_lost), at most
 * MIGRATION_MAX_ATTEMPTS times in all. Every other error is returned at
 * once. */
static int apply_one(PGconn *conn, const mig_file_t *f, fc_error_t *err) {
  char roles_before[64];
  fc_error_t last;
  race_t race;
  int attempt, rc = 0;

  fc_error_clear(&last);
  for (attempt = 1; attempt <= MIGRATION_MAX_ATTEMPTS; attempt++) {
    rc = roles_state(conn, roles_before, sizeof roles_before, err);
    if (rc != 0)
      return rc;
    memset(&race, 0, sizeof race);
    fc_error_clear(&last);
    rc = apply_once(conn, f, &race, &last);
    if (rc == 0 || PQtransactionStatus(conn) != PQTRANS_IDLE ||
        !race_lost(conn, &race, roles_before))
      break;
  }
  if (rc == 0)
    return 0;
  if (attempt == 1)
    return fc__error_set(err, rc, last.where, "%s", last.text);
  return fc__error_set(err, rc, last.where,
                       "%s (attempt %d of %d: the earlier ones lost a race "
                       "with another database's migration)",
                       last.text,
                       attempt > MIGRATION_MAX_ATTEMPTS ? MIGRATION_MAX_ATTEMPTS : attempt,
                       MIGRATION_MAX_ATTEMPTS);
}

/* ---- public ----------------------------------------------------------------- */

const char *fc_migrate_default_dir(void) {
  const char *env = getenv("FLOWCORE_MIGRATIONS_DIR");
  if (env != NULL && env[0] != '\0')
    return env;
#ifdef FLOWCORE_MIGRATIONS_DIR
  return FLOWCORE_MIGRATIONS_DIR;
#else
  return NULL;
#endif
}

const char *fc_migration_state_name(fc_migration_state_t state) {
  switch (state) {
  case FC_MIGRATION_PENDING:
    return "pending";
  case FC_MIGRATION_APPLIED:
    return "applied";
  case FC_MIGRATION_MODIFIED:
    return "modified";
  case FC_MIGRATION_MISSING:
    return "missing";
  }
  return "unknown";
}

void fc_migrate_report_free(fc_migrate_report_t *rep) {
  if (rep == NULL)
    return;
  fc__free(rep->items);
  memset(rep, 0, sizeof *rep);
}

static int resolve_dir(const char **dir, fc_error_t *err) {
  if (*dir == NULL)
    *dir = fc_migrate_default_dir();
  if (*dir == NULL || (*dir)[0] == '\0')
    return fc__error_set(err, FC_EINVAL, "",
                         "no migrations directory: pass one or set FLOWCORE_MIGRATIONS_DIR");
  return 0;
}

int fc_migrate_status(const char *conninfo, const char *dir, fc_migrate_report_t *rep,
                      fc_error_t *err) {
  mig_set_t set;
  PGconn *conn = NULL;
  int exists = 0, rc;

  memset(&set, 0, sizeof set);
  report_init(rep);
  if (rep == NULL)
    return fc__error_set(err, FC_EINVAL, "", "fc_migrate_status needs a report");
  rc = resolve_dir(&dir, err);
  if (rc == 0)
    rc = load_files(dir, &set, err);
  if (rc == 0)
    rc = db_connect(conninfo, &conn, err);
  if (rc == 0)
    rc = table_exists(conn, &exists, err);
  if (rc == 0 && exists)
    rc = load_rows(conn, &set, err);
  if (rc == 0)
    rc = report_build(rep, &set, err);
  PQfinish(conn);
  mig_set_free(&set);
  return rc;
}

int fc_migrate_run(const char *conninfo, const char *dir, fc_migrate_report_t *rep,
                   fc_error_t *err) {
  fc_migrate_report_t local;
  mig_set_t set;
  PGconn *conn = NULL;
  char sql[96];
  size_t i;
  int rc, locked = 0;

  memset(&set, 0, sizeof set);
  report_init(rep);
  if (rep == NULL) {
    rep = &local;
    report_init(rep);
  }
  rc = resolve_dir(&dir, err);
  if (rc == 0)
    rc = load_files(dir, &set, err); /* a bad directory fails before connecting */
  if (rc == 0)
    rc = db_connect(conninfo, &conn, err);
  if (rc == 0) {
    /* Session lock: held across the per-migration transactions; released
     * below or, if we die, when the connection closes. Waits for a
     * concurrent runner to finish. */
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%" PRId64 ")", FC_MIGRATE_LOCK_KEY);
    rc = db_exec(conn, sql, "cannot take the migration lock", err);
    locked = rc == 0;
  }
  if (rc == 0)
    rc = db_exec(conn, k_create_table, "cannot create flowcore_schema_migrations", err);
  if (rc == 0)
    rc = load_rows(conn, &set, err);
  if (rc == 0)
    rc = report_build(rep, &set, err);
  if (rc == 0)
    rc = report_check(rep, &set, err);

  for (i = 0; rc == 0 && i < rep->count; i++) {
    fc_migration_t *m = &rep->items[i];
    if (m->state != FC_MIGRATION_PENDING)
      continue;
    rc = apply_one(conn, &set.files[m->version - 1], err);
    if (rc != 0)
      break;
    m->state = FC_MIGRATION_APPLIED;
    m->applied_now = 1;
    snprintf(m->applied_checksum, sizeof m->applied_checksum, "%s", m->checksum);
    m->applied_at_us = fc__wall_us(); /* close enough; status reads the server's */
  }
  report_count(rep);
  /* On a Citus coordinator: the history distributed (once; see citus.h). */
  if (rc == 0)
    rc = fc__citus_distribute(conn, err);

  if (locked && PQstatus(conn) == CONNECTION_OK) {
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%" PRId64 ")", FC_MIGRATE_LOCK_KEY);
    PQclear(PQexec(conn, sql));
  }
  PQfinish(conn);
  mig_set_free(&set);
  if (rep == &local)
    fc_migrate_report_free(&local);
  return rc;
}

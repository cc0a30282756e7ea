/* flowcore: schema migrations for the execution history
 * (migrations/, docs/cli.md).
 *
 * A migrations directory holds files named NNNN_name.sql: NNNN is a 4-digit
 * version (0001, 0002, ... without gaps or duplicates) and name is
 * [a-z0-9_]+. Any other *.sql file there is an error; files not ending in
 * .sql and hidden files are ignored. Each file is applied once, in version
 * order, in its own transaction, and recorded in the table
 * flowcore_schema_migrations (version, name, checksum = SHA-256 of the file's
 * bytes in hex, applied_at, flowcore_version, duration_ms). A file must
 * therefore not contain transaction control (BEGIN/COMMIT/ROLLBACK) nor
 * statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY),
 * and should use SET LOCAL rather than SET.
 *
 * The whole run holds the session-level advisory lock FC_MIGRATE_LOCK_KEY,
 * so two processes migrating the same database at once cannot race: the
 * second waits, then finds everything applied and does nothing. That lock
 * needs a direct (session-mode) connection, not a transaction-pooling
 * proxy. The lock is per database, but roles belong to the whole server:
 * when runners of several databases of one server create the same role at
 * once, all but one fail on it. The runner then rolls that migration back
 * and applies it again in a new transaction (which finds the role made),
 * at most 10 times in all. It does so only for a unique violation in a
 * catalog shared by all databases (pg_authid ...) and for a duplicate_object
 * error while the server's roles changed during the attempt; every other
 * error is returned at once. Re-running is a no-op. A migration that was applied and whose file
 * has changed since (checksum or name) is an error naming the file, never a
 * silent skip: add a new migration instead of editing a released one.
 *
 * These calls use blocking libpq: they are for `flowcore migrate`, tools and
 * tests, never for code running on an event loop. They are thread-safe (no
 * shared state). Error messages (fc_error_t) never contain the connection
 * string, so a password in it does not leak.
 */
#ifndef FLOWCORE_MIGRATE_H
#define FLOWCORE_MIGRATE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The advisory lock key held while migrating: "flowcore" in ASCII. */
#define FC_MIGRATE_LOCK_KEY INT64_C(0x666c6f77636f7265)

#define FC_MIGRATE_NAME_LENGTH 128
#define FC_MIGRATE_CHECKSUM_LENGTH 65 /* 64 hex digits + NUL */

typedef enum {
  FC_MIGRATION_PENDING = 0, /* the file is not applied yet */
  FC_MIGRATION_APPLIED,     /* applied, and the file still matches */
  FC_MIGRATION_MODIFIED,    /* applied, but the file changed since (name or checksum) */
  FC_MIGRATION_MISSING      /* applied, but no file for it (a newer flowcore's?) */
} fc_migration_state_t;

typedef struct {
  int version;
  fc_migration_state_t state;
  int applied_now;                                   /* 1 if this fc_migrate_run() applied it */
  char name[FC_MIGRATE_NAME_LENGTH];                 /* "history"; for MISSING the recorded name */
  char file[FC_MIGRATE_NAME_LENGTH];                 /* "0001_history.sql"; "" when MISSING */
  char checksum[FC_MIGRATE_CHECKSUM_LENGTH];         /* the file's; "" when MISSING */
  char applied_checksum[FC_MIGRATE_CHECKSUM_LENGTH]; /* recorded; "" when PENDING */
  int64_t applied_at_us; /* server time of applying, µs since the epoch; 0 if PENDING */
} fc_migration_t;

typedef struct {
  fc_migration_t *items; /* sorted by version; owned by the report */
  size_t count;
  size_t applied;     /* items APPLIED or MODIFIED, including those applied now */
  size_t applied_now; /* items this call applied */
  size_t pending;     /* items still PENDING */
  size_t modified;    /* items MODIFIED */
  size_t missing;     /* items MISSING */
} fc_migrate_report_t;

/* Applies the pending migrations of `dir` to the database named by
 * `conninfo` (a libpq connection string or URL; NULL or "" uses libpq's PG*
 * environment defaults). `dir` NULL means fc_migrate_default_dir().
 *
 * Checks first, then applies: a badly named file, a gap or duplicate
 * version, an applied migration whose file changed (FC_MIGRATION_MODIFIED),
 * or a pending migration older than an applied one fails with
 * FC_EMIGRATION before anything is applied. A migration that fails to apply
 * is rolled back (FC_EDB, message naming the file and line); those before
 * it stay applied. Migrations applied by a newer flowcore (no file here) are
 * reported as MISSING and are not an error.
 *
 * Then, still under the lock, on a database with the citus extension (a
 * Citus coordinator): the history tables are distributed by workflow_id,
 * co-located, the small ones made reference tables, once (recorded in the
 * table flowcore_distribution; docs/scaling.md §2); an error there is
 * FC_EDB with `where` = "citus". Without Citus nothing more happens.
 *
 * `rep` (may be NULL) is always initialized, even on failure, and must then
 * be released with fc_migrate_report_free(). `err` (may be NULL) receives the
 * first error: code, `where` = the file concerned (or ""), and a message.
 * Returns 0, FC_EINVAL (no dir), FC_EMIGRATION, FC_EDB (connection or SQL
 * error), FC_ENOMEM, or a libuv error code for file system errors. Blocks
 * (waits for the advisory lock while another process migrates). */
FC_EXTERN int fc_migrate_run(const char *conninfo, const char *dir, fc_migrate_report_t *rep,
                             fc_error_t *err);

/* Lists the migrations of `dir` and of the database with their states,
 * without changing anything and without taking the lock. A changed file is
 * reported as FC_MIGRATION_MODIFIED (not an error here). Arguments and
 * return values as fc_migrate_run(); `rep` must not be NULL. */
FC_EXTERN int fc_migrate_status(const char *conninfo, const char *dir, fc_migrate_report_t *rep,
                                fc_error_t *err);

/* Frees what a report holds and clears it; NULL is fine. The struct itself
 * is the caller's. */
FC_EXTERN void fc_migrate_report_free(fc_migrate_report_t *rep);

/* The default migrations directory: $FLOWCORE_MIGRATIONS_DIR if set and not
 * empty, else the compile-time FLOWCORE_MIGRATIONS_DIR if the build defined
 * one, else NULL (then pass a directory explicitly, e.g. the source tree's
 * migrations/). The `flowcore` command looks beside its executable before
 * this (docs/cli.md). Returns borrowed static or environment storage. */
FC_EXTERN const char *fc_migrate_default_dir(void);

/* "pending", "applied", "modified", "missing" (static storage). */
FC_EXTERN const char *fc_migration_state_name(fc_migration_state_t state);

#ifdef __cplusplus
}
#endif
#endif

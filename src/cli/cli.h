/* flowcore command line: what the src/cli/ files share.
 *
 * The command uses only the public API (flowcore.h) and, for the history
 * and migrate commands, blocking libpq (no event loop runs there).
 *
 * Output rule: every line the command prints itself goes through
 * cli_printf()/cli_puts(), which remove known secrets (the password of the
 * connection string, PGPASSWORD) before writing, so that no message built
 * from a libpq error, a writer error or user data can leak them.
 */
#ifndef FLOWCORE_CLI_H
#define FLOWCORE_CLI_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "flowcore.h"

/* Exit codes (docs/cli.md, "Exit codes"). */
enum {
  CLI_EXIT_OK = 0,     /* workflow completed / command succeeded */
  CLI_EXIT_FAILED = 1, /* workflow failed or cancelled / command failed */
  CLI_EXIT_USAGE = 2,  /* usage error, invalid workflow file */
  CLI_EXIT_HISTORY = 3 /* history lost: neither written nor spooled */
};

/* ---- commands (each returns an exit code) --------------------------------- */

int cli_cmd_run(int argc, char **argv);
int cli_cmd_validate(int argc, char **argv);
int cli_cmd_migrate(int argc, char **argv);
int cli_cmd_history(int argc, char **argv);

/* main() has mimalloc keep freed memory for a second while a file loads,
 * for the run to use it again; `run` calls this once the run has started
 * to set mimalloc's default back (main.c says why). */
void cli_malloc_settle(void);

/* Usage texts, each in its command's file (main.c, run.c, migrate.c, history.c). */
void cli_usage_main(FILE *out);
void cli_usage_run(FILE *out);
void cli_usage_validate(FILE *out);
void cli_usage_migrate(FILE *out);
void cli_usage_history(FILE *out);
void cli_usage_history_sub(FILE *out, const char *sub);
/* Prints "flowcore: <msg>\nTry 'flowcore <cmd> --help'." and returns
 * CLI_EXIT_USAGE. `cmd` may be NULL (top level). In util.c. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- output with secrets removed (util.c) --------------------------------- */

/* Registers a secret to be replaced by "***" in everything printed. Copied;
 * strings shorter than 3 bytes are ignored (they would mangle the text). */
void cli_secret_add(const char *secret);
/* Replaces every registered secret in the malloc'd string s (in place or by
 * reallocating); returns the string to use (free it) or NULL on ENOMEM. */
char *cli_redact(char *s);
void cli_printf(FILE *out, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void cli_vprintf(FILE *out, const char *fmt, va_list ap);
/* "flowcore: <message>" on stderr (stdout flushed first), password-free. */
void cli_verror(const char *fmt, va_list ap);
/* "flowcore: <msg>\n" on stderr. */
void cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Makes a multi-line message (libpq's) one line in place: line breaks and
 * tabs become single spaces, trailing blanks go. Returns s. */
char *cli_one_line(char *s);
/* Prints a JSON value with a final newline to out: indented, or on one
 * line when `compact`. Returns 0 or -1 (an error message was printed). */
int cli_print_json(FILE *out, const json_t *value, int compact);

/* ---- standard output and the locale (util.c) ------------------------------- */

/* fflush(stdout), remembering the first write error (errno) for
 * cli_close_stdout. Returns 0, or -1 when stdout had a write error. */
int cli_flush_stdout(void);
/* Called once, at exit: flushes and closes stdout. On a write error (e.g.
 * ENOSPC, EPIPE with SIGPIPE ignored) prints "flowcore: write error on
 * standard output: <strerror>" and returns CLI_EXIT_FAILED when exit_code
 * was CLI_EXIT_OK; a more specific non-zero exit_code (2, 3) is kept.
 * Otherwise returns exit_code. */
int cli_close_stdout(int exit_code);
/* Whether the output may use UTF-8 ("µs" rather than "us"): set once by
 * main from the locale (LC_CTYPE's codeset). Default 0. */
void cli_set_utf8(int on);
int cli_utf8(void);

/* ---- the database (util.c) --------------------------------------------------- */

typedef struct {
  /* The connection string to use: --db, FLOWCORE_DB, DATABASE_URL, else ""
   * (libpq's PG* environment defaults). Borrowed from argv/environ. */
  const char *conninfo;
  /* Where it came from: "--db", "FLOWCORE_DB", "DATABASE_URL", "PG*
   * environment" or "libpq defaults". */
  const char *source;
  /* 1 when a database is configured: --db given, or FLOWCORE_DB,
   * DATABASE_URL or one of PGHOST, PGHOSTADDR, PGPORT, PGDATABASE, PGUSER,
   * PGSERVICE set and not empty. */
  int configured;
} cli_db_t;

/* Resolves the database and registers its password (and PGPASSWORD) as
 * secrets. Returns 0, or CLI_EXIT_USAGE when the connection string does not
 * parse (PQconninfoParse) or holds a value libpq would refuse when
 * connecting (a port or an integer option that is not a number, also
 * PGPORT): a message naming it, without the password, was printed.
 * CLI_EXIT_FAILED when libpq cannot be loaded (src/pg/pq.h), said too:
 * after a 0, the command's own libpq calls may connect. */
int cli_db_resolve(const char *opt_db, cli_db_t *out);
/* 1 when a libpq or server message says the database itself does not exist
 * ('database "x" does not exist', SQLSTATE 3D000). */
int cli_db_missing(const char *msg);
/* After a failed connection with libpq's message msg: "hint: the database
 * "x" does not exist: create it (createdb 'x') ..." when it says so, else
 * the --db hint when no database is configured; else nothing. db may be
 * NULL. */
void cli_db_hint(const cli_db_t *db, const char *msg);

/* ---- option parsing (util.c) ------------------------------------------------- */

typedef struct {
  const char *name; /* long name without "--", e.g. "db" */
  char short_name;  /* 0 if none */
  int has_arg;      /* 1: takes a value ("--db URL" or "--db=URL") */
  int id;           /* returned by cli_opt_next */
} cli_opt_t;

typedef struct {
  int argc;
  char **argv;
  int index;              /* next argument */
  const char *cmd;        /* for messages, e.g. "run" or "history runs" */
  const char *value;      /* the option's value after cli_opt_next */
  const char *positional; /* a non-option argument after cli_opt_next */
  int only_positional;    /* after "--" */
} cli_opts_t;

#define CLI_OPT_END (-1)
#define CLI_OPT_POSITIONAL (-2)
#define CLI_OPT_ERROR (-3) /* a usage message was printed */

/* Starts parsing argv[start..argc). */
void cli_opts_init(cli_opts_t *p, int argc, char **argv, int start, const char *cmd);
/* Next option id, CLI_OPT_POSITIONAL (p->positional set), CLI_OPT_END or
 * CLI_OPT_ERROR. "-h"/"--help" must be in the table to be accepted. */
int cli_opt_next(cli_opts_t *p, const cli_opt_t *table);

/* Parses a non-negative integer in [min, max]; returns 0 or -1. */
int cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Parses a size in bytes: an integer, optionally followed by K, M or G
 * (or KiB, MiB, GiB: powers of 1024), in [min, max]; "256M" is 268435456.
 * Returns 0 or -1. */
int cli_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* ---- formatting (util.c) ------------------------------------------------------- */

/* "850ms", "1.25s", "2m05s", "3h04m", "2d03h"; negative: "-". */
void cli_format_duration_ms(double ms, char *buf, size_t size);
/* Local time "2026-11-27 04:30:53" from µs since the epoch. */
void cli_format_local_time(int64_t us, char *buf, size_t size);
/* RFC 3339 UTC with microseconds: "2026-11-27T04:30:53.123456Z". */
void cli_format_utc_time(int64_t us, char *buf, size_t size);
/* Wall clock now, µs since the epoch. */
int64_t cli_now_us(void);
/* Parses a duration ("90s", "15m", "2h", "7d", "1w", "1h30m", "1.5h") into
 * seconds. Returns 0 or -1. */
int cli_parse_duration(const char *s, double *out_seconds);
/* Parses --since: a duration ("90s", "15m", "2h", "7d", "1w", "1h30m";
 * decimals allowed: "1.5h") back from now, or a time "YYYY-MM-DD",
 * "YYYY-MM-DD HH:MM[:SS[.frac]]" or with 'T', optionally followed by "Z" or
 * "+HH[:MM]"/"-HH[:MM]" (no zone: local time). Returns 0 and the time in
 * µs since the epoch, or -1. */
int cli_parse_since(const char *s, int64_t now_us, int64_t *out_us);

/* ---- liveness of running runs (liveness.c) -------------------------------------- */

enum { CLI_RUN_LIVE = 0, CLI_RUN_GONE = 1, CLI_RUN_STALE = 2 };
/* This host's name (gethostname), as the writer records it. 0 or -1. */
int cli_local_host(char *buf, size_t size);
/* Judges a run still marked running: host and pid as recorded (NULL, 0:
 * unknown), its start (µs since the epoch), how long nothing was heard of
 * it and the stale threshold (ms). Returns CLI_RUN_LIVE, CLI_RUN_GONE (on
 * this host, its process is gone) or CLI_RUN_STALE (elsewhere or unknown,
 * idle longer than the threshold), with a one-line reason in why. */
int cli_run_liveness(const char *host, long long pid, int64_t started_us, double idle_ms,
                     double stale_ms, char *why, size_t size);

/* ---- text tables (table.c) ------------------------------------------------------ */

typedef struct cli_table_s cli_table_t;

/* A table with ncols columns, headers (copied) and an alignment string of
 * ncols characters: 'l' or 'r'. Returns NULL on ENOMEM. */
cli_table_t *cli_table_new(size_t ncols, const char *const *headers, const char *align);
/* Caps a column's width in display columns (longer cells end with "..."). */
void cli_table_max_width(cli_table_t *t, size_t col, size_t width);
/* Adds a row of ncols cells (copied; NULL prints as ""). Control characters
 * become spaces. Returns 0 or -1 (ENOMEM). */
int cli_table_add(cli_table_t *t, const char *const *cells);
size_t cli_table_rows(const cli_table_t *t);
/* Prints the header and the rows, columns separated by two spaces and
 * aligned by display width (wide characters count two columns, combining
 * marks none), the last column not padded. */
void cli_table_print(const cli_table_t *t, FILE *out);
void cli_table_free(cli_table_t *t);

#endif

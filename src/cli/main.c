/* flowcore command line: dispatch, help, version, exit codes.
 *
 *   flowcore run FILE        run a workflow file (exit 0/1/2/3)
 *   flowcore validate FILE   check a workflow file (exit 0/2)
 *   flowcore migrate         apply or list the history migrations
 *   flowcore history ...     query the execution history
 *   flowcore version | help
 *
 * docs/cli.md is the manual; each command's usage text is in its own file. */
#include <langinfo.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#if defined(FLOWCORE_MIMALLOC)
#include <mimalloc.h>
#elif defined(__GLIBC__)
#include <malloc.h>
#endif

#include <uv.h>

#include "../pg/pq.h"
#include "cli.h"

static void print_version(void) {
  printf("flowcore %s (libuv %s, jansson %s, ", fc_version_string(), uv_version_string(),
         JANSSON_VERSION);
  if (fc__pq_load(NULL) == 0) {
    int pq = PQlibVersion();
    printf("libpq %d.%d", pq / 10000, pq % 10000);
  } else {
    printf("libpq not found");
  }
#if defined(FLOWCORE_MIMALLOC)
  printf(", mimalloc %d.%d.%d", mi_version() / 100, mi_version() / 10 % 10, mi_version() % 10);
#endif
  printf(")\n");
}

static int is_help(const char *arg) { return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0; }

static void usage_version(FILE *out) {
  fputs("Usage: flowcore version\n\nPrints the version of flowcore and of its libraries.\n", out);
}

static void usage_help(FILE *out) {
  fputs("Usage: flowcore help [COMMAND]\n\nPrints the help of flowcore or of a command.\n", out);
}

/* flowcore version */
static int cmd_version(int argc, char **argv) {
  if (argc > 2) {
    if (is_help(argv[2])) {
      usage_version(stdout);
      return CLI_EXIT_OK;
    }
    return cli_usage_error("version", "unexpected argument '%s'", argv[2]);
  }
  print_version();
  return CLI_EXIT_OK;
}

static int cmd_help(int argc, char **argv);

/* The subcommands: `flowcore --help` lists them in this order, `flowcore
 * help NAME` prints their usage, dispatch() runs their handler. */
static const struct cli_command {
  const char *name;
  const char *synopsis; /* the name and its arguments, as listed */
  const char *summary;  /* may span lines (indented by the caller's text) */
  int (*handler)(int argc, char **argv);
  void (*usage)(FILE *out);
} commands[] = {
    {"run", "run FILE", "run a workflow file, recording its history", cli_cmd_run, cli_usage_run},
    {"validate", "validate FILE", "check a workflow file without running it", cli_cmd_validate,
     cli_usage_validate},
    {"migrate", "migrate", "apply (or with --status list) the history schema migrations",
     cli_cmd_migrate, cli_usage_migrate},
    {"history", "history SUB",
     "query (reap, prune) the execution history:\n"
     "                      runs, show ID, report, errors, stats, running, reap, losses,\n"
     "                      prune",
     cli_cmd_history, cli_usage_history},
    {"version", "version", "print the version", cmd_version, usage_version},
    {"help", "help [COMMAND]", "print this help, or a command's help", cmd_help, usage_help},
};

static const struct cli_command *find_command(const char *name) {
  size_t i;
  for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

void cli_usage_main(FILE *out) {
  size_t i;
  fputs("Usage: flowcore <command> [options]\n"
        "\n"
        "Commands:\n",
        out);
  for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(out, "  %-18s%s\n", commands[i].synopsis, commands[i].summary);
  fputs("\n"
        "Run 'flowcore <command> --help' for a command's options.\n"
        "\n"
        "Exit codes: 0 success (workflow completed); 1 workflow failed or cancelled,\n"
        "or a command failed, or stdout could not be written; 2 usage error (also a\n"
        "connection string libpq would refuse) or invalid workflow file; 3 history\n"
        "records were lost (neither written nor spooled).\n"
        "\n"
        "Database: --db, else FLOWCORE_DB, else DATABASE_URL, else libpq's PG*\n"
        "environment (PGHOST, PGDATABASE, ...). The password is never printed.\n"
        "libpq (libpq.so.5, or the file FLOWCORE_LIBPQ names) is loaded only by\n"
        "what speaks to a server: validate and run --no-history work without it.\n"
        "\n"
        "Durations under 1 ms end in the micro sign only in a UTF-8 locale (LC_ALL,\n"
        "LC_CTYPE, LANG), else in \"us\".\n",
        out);
}

/* flowcore help [COMMAND [SUB]] */
static int cmd_help(int argc, char **argv) {
  const struct cli_command *c;
  if (argc > 4)
    return cli_usage_error("help", "too many arguments");
  if (argc <= 2) {
    cli_usage_main(stdout);
    return CLI_EXIT_OK;
  }
  c = find_command(argv[2]);
  if (c == NULL)
    return cli_usage_error(NULL, "unknown command '%s'", argv[2]);
  if (c->handler == cli_cmd_history && argc > 3)
    cli_usage_history_sub(stdout, argv[3]);
  else
    c->usage(stdout);
  return CLI_EXIT_OK;
}

/* UTF-8 output ("µs") only when the locale's character set is UTF-8
 * (LC_ALL, LC_CTYPE, LANG). LC_CTYPE goes back to "C" afterwards: nothing
 * else in the command depends on the locale. */
static void detect_utf8(void) {
  const char *codeset;
  if (setlocale(LC_CTYPE, "") == NULL)
    return;
  codeset = nl_langinfo(CODESET);
  cli_set_utf8(codeset != NULL && (strcmp(codeset, "UTF-8") == 0 || strcmp(codeset, "utf-8") == 0 ||
                                   strcmp(codeset, "utf8") == 0 || strcmp(codeset, "UTF8") == 0));
  (void)setlocale(LC_CTYPE, "C");
}

static int dispatch(int argc, char **argv) {
  const struct cli_command *c;
  const char *cmd;
  if (argc < 2) {
    cli_usage_main(stderr);
    return CLI_EXIT_USAGE;
  }
  cmd = argv[1];
  if (is_help(cmd))
    return cmd_help(argc, argv);
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
    print_version();
    return CLI_EXIT_OK;
  }
  c = find_command(cmd);
  if (c != NULL)
    return c->handler(argc, argv);
  if (cmd[0] == '-')
    return cli_usage_error(NULL, "unknown option '%s'", cmd);
  return cli_usage_error(NULL, "unknown command '%s'", cmd);
}

#define MALLOC_LOAD_DELAY_MS 1000
#define MALLOC_DEFAULT_DELAY_MS 25 /* mimalloc's own */

/* glibc's malloc grows its heap by what is asked plus a pad of 128 KiB,
 * one system call each time (brk; mprotect for the heaps of threads other
 * than the main one, whose new heaps start with the pad). Loading a
 * 200,000-node file (its second half on another thread, loader.c) made 489
 * brk and 13,681 mprotect calls; with a 32 MiB pad, 6 and 6,088, and
 * `flowcore validate` took 210 ms instead of 229 (medians of 15). The pad
 * is address space: pages are used only when touched. A pad the user set
 * (MALLOC_TOP_PAD_, GLIBC_TUNABLES) is kept.
 *
 * The command built with mimalloc (FLOWCORE_MIMALLOC, the default:
 * docs/performance.md) does not use glibc's malloc at all. mimalloc gives
 * memory freed in a page back to the system 25 ms later by default; what
 * the load frees (each node's JSON, the second loader thread's heap) is
 * then faulted in again by the run a few milliseconds on. Kept for a
 * second, it is used again: 3,550 fewer page faults and 7 ms less for
 * `flowcore run --no-history` of the 200,000-node chain. Once the run has
 * started, cli_malloc_settle sets mimalloc's default again: kept longer,
 * what the history writer frees and takes again made the peak RSS of a
 * 1,000,000-node fan-out with history 544 MB instead of 508. A delay the
 * user set (MIMALLOC_DECOMMIT_DELAY, or MIMALLOC_PURGE_DELAY in newer
 * mimalloc) is kept. */
#if defined(FLOWCORE_MIMALLOC)
static int user_delay(void) {
  return getenv("MIMALLOC_DECOMMIT_DELAY") != NULL || getenv("MIMALLOC_PURGE_DELAY") != NULL;
}
#endif

void cli_malloc_settle(void) {
#if defined(FLOWCORE_MIMALLOC)
  if (!user_delay())
    mi_option_set(mi_option_decommit_delay, MALLOC_DEFAULT_DELAY_MS);
#endif
}

static void malloc_tune(void) {
#if defined(FLOWCORE_MIMALLOC)
  if (!user_delay())
    mi_option_set(mi_option_decommit_delay, MALLOC_LOAD_DELAY_MS);
#elif defined(__GLIBC__)
  const char *t = getenv("GLIBC_TUNABLES");
  if (getenv("MALLOC_TOP_PAD_") == NULL && (t == NULL || strstr(t, "top_pad") == NULL))
    (void)mallopt(M_TOP_PAD, 32 << 20);
#endif
}

/* Every command's output ends here: a write error on stdout (a full disk,
 * /dev/full, a closed pipe) is reported and fails the command. */
int main(int argc, char **argv) {
  malloc_tune();
  detect_utf8();
  return cli_close_stdout(dispatch(argc, argv));
}

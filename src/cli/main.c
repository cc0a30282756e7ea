/* flowcore command line: dispatch, help, version, exit codes.
 *
 *   flowcore run FILE        run a workflow file (exit 0/1/2/3)
 *   flowcore validate FILE   check a workflow file (exit 0/2)
 *   flowcore migrate         apply or list the history migrations
 *   flowcore history ...     query the execution history
 *   flowcore version | help
 *
 * docs/cli.md is the manual; the usage texts below are its summary. */
#include <langinfo.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <uv.h>

#include "cli.h"

void cli_usage_main(FILE *out) {
  fputs("Usage: flowcore <command> [options]\n"
        "\n"
        "Commands:\n"
        "  run FILE          run a workflow file, recording its history\n"
        "  validate FILE     check a workflow file without running it\n"
        "  migrate           apply (or with --status list) the history schema migrations\n"
        "  history SUB       query (and reap) the execution history:\n"
        "                      runs, show ID, errors, stats, running, reap, losses\n"
        "  version           print the version\n"
        "  help [COMMAND]    print this help, or a command's help\n"
        "\n"
        "Run 'flowcore <command> --help' for a command's options.\n"
        "\n"
        "Exit codes: 0 success (workflow completed); 1 workflow failed or cancelled,\n"
        "or a command failed, or stdout could not be written; 2 usage error (also a\n"
        "connection string libpq would refuse) or invalid workflow file; 3 history\n"
        "records were lost (neither written nor spooled).\n"
        "\n"
        "Database: --db, else FLOWCORE_DB, else DATABASE_URL, else libpq's PG*\n"
        "environment (PGHOST, PGDATABASE, ...). The password is never printed.\n"
        "\n"
        "Durations under 1 ms end in the micro sign only in a UTF-8 locale (LC_ALL,\n"
        "LC_CTYPE, LANG), else in \"us\".\n",
        out);
}

void cli_usage_run(FILE *out) {
  fputs("Usage: flowcore run FILE [options]\n"
        "\n"
        "Runs the workflow file FILE ('-' reads standard input). Progress goes to\n"
        "stderr (a bar on a terminal, plain lines otherwise), then a summary; the\n"
        "workflow's output (JSON) goes to stdout. History is recorded when a\n"
        "database is configured. SIGINT/SIGTERM cancel the run cleanly and the\n"
        "history is still written; a second signal stops waiting for nodes that\n"
        "are still stopping, a third stops waiting for the history writer.\n"
        "\n"
        "Options:\n"
        "  --input JSON|@FILE      the workflow input (replaces the file's \"input\";\n"
        "                          @FILE reads it from a file, @- from stdin)\n"
        "  --db CONNINFO           PostgreSQL connection string or URL for the history\n"
        "  --no-history            do not record history, even if a database is set\n"
        "  --quiet, -q             no progress, and no summary unless something failed\n"
        "  --json                  print one JSON object with the result on stdout\n"
        "                          instead of the output and the summary\n"
        "  --metrics-file PATH     write Prometheus metrics to PATH at the end (atomic;\n"
        "                          this run's counters, and per workflow the\n"
        "                          flowcore_last_run_* and _last_success_* gauges)\n"
        "  --spool-dir DIR         keep history in DIR while the database is down (it\n"
        "                          is replayed once reachable); without it, history\n"
        "                          not written by the deadline is lost\n"
        "  --max-parallel N        run at most N nodes at once (0: unlimited)\n"
        "  --shutdown-deadline MS  wait at most MS ms for the history at the end\n"
        "                          (default $FLOWCORE_SHUTDOWN_DEADLINE_MS, else 10000)\n"
        "  --help, -h              this help\n"
        "\n"
        "Exit codes: 0 completed; 1 failed or cancelled, or stdout could not be\n"
        "written; 2 usage error or invalid workflow file; 3 history records lost\n"
        "(printed), whatever the status or a write error.\n",
        out);
}

void cli_usage_validate(FILE *out) {
  fputs("Usage: flowcore validate FILE\n"
        "\n"
        "Checks the workflow file FILE ('-' reads standard input): JSON syntax,\n"
        "fields, node types, ids, dependencies, routes and cycles. Prints every\n"
        "error with its JSON path or node id, or \"FILE: ok (N nodes)\". Nothing runs.\n"
        "\n"
        "Options:\n"
        "  --help, -h   this help\n"
        "\n"
        "Exit codes: 0 valid; 2 invalid (or a usage error).\n",
        out);
}

void cli_usage_migrate(FILE *out) {
  fputs("Usage: flowcore migrate [--status] [--db CONNINFO] [--dir DIR]\n"
        "\n"
        "Applies the pending history schema migrations (each once, in order, under\n"
        "an advisory lock), or with --status lists them without changing anything.\n"
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

void cli_usage_history(FILE *out) {
  fputs("Usage: flowcore history <subcommand> [options]\n"
        "\n"
        "Subcommands:\n"
        "  runs      recent runs with their duration and node counts\n"
        "  show ID   one run's nodes in start order (an unambiguous id prefix is enough)\n"
        "  errors    errors by workflow, node, type and severity\n"
        "  stats     duration statistics per workflow and node (runs, failures, p50, p95)\n"
        "  running   progress of the runs still marked running, live or abandoned\n"
        "  reap      mark running runs whose process is gone (or stale) abandoned\n"
        "  losses    history records the writers reported lost\n"
        "\n"
        "Common options: --db CONNINFO, --json (arrays of objects for scripts),\n"
        "--help. Run 'flowcore history <subcommand> --help' for the others.\n"
        "\n"
        "Exit codes: 0 done; 1 database error, or stdout could not be written;\n"
        "2 usage error (also a malformed, unknown or ambiguous run id).\n",
        out);
}

void cli_usage_history_sub(FILE *out, const char *sub) {
  if (strcmp(sub, "runs") == 0) {
    fputs("Usage: flowcore history runs [options]\n"
          "\n"
          "Lists runs, newest first (view flowcore_recent_runs). A run marked running\n"
          "whose process is gone shows as 'running (abandoned)' (see 'history reap\n"
          "--help'; JSON: \"liveness\" and \"liveness_reason\").\n"
          "\n"
          "Options:\n"
          "  --workflow NAME   only runs of this workflow\n"
          "  --status S        only runs with status S: running, completed, failed,\n"
          "                    cancelled, abandoned\n"
          "  --since WHEN      only runs started since WHEN: a duration back from now\n"
          "                    (90s, 15m, 2h, 7d, 1w, 1h30m) or a time (2026-11-27,\n"
          "                    \"2026-11-27 08:00\", 2026-11-27T08:00:00Z; no zone: local)\n"
          "  --limit N         at most N runs (default 20)\n"
          "  --stale DURATION  a running run on another host (or without host/pid) is\n"
          "                    taken for abandoned after DURATION without activity\n"
          "                    (default 60m)\n"
          "  --json            a JSON array of objects\n"
          "  --db CONNINFO     PostgreSQL connection string or URL\n"
          "  --help, -h        this help\n",
          out);
  } else if (strcmp(sub, "show") == 0) {
    fputs("Usage: flowcore history show ID [options]\n"
          "\n"
          "Shows one run and its node attempts in start order, with attempt, status,\n"
          "duration and error (views flowcore_recent_runs, flowcore_run_timeline).\n"
          "ID may be a prefix of the run id when only one run matches. Also where the\n"
          "run ran (host, pid), whether a running run is live or abandoned, and for\n"
          "an abandoned run who marked it so, when and why (table flowcore_reaps).\n"
          "\n"
          "Options:\n"
          "  --stale DURATION  see 'history running --help' (default 60m)\n"
          "  --json            a JSON object: the run's fields, \"liveness\", \"reap\"\n"
          "                    and \"nodes\" (an array)\n"
          "  --db CONNINFO     PostgreSQL connection string or URL\n"
          "  --help, -h        this help\n",
          out);
  } else if (strcmp(sub, "errors") == 0) {
    fputs("Usage: flowcore history errors [options]\n"
          "\n"
          "Errors grouped by workflow, node, error type and severity, with their\n"
          "count, first and last time seen and the latest message, most recently\n"
          "seen first (view flowcore_error_rollup; counts cover the whole history).\n"
          "\n"
          "Options:\n"
          "  --workflow NAME   only errors of this workflow\n"
          "  --since WHEN      only groups seen since WHEN (see 'history runs --help')\n"
          "  --limit N         at most N groups (default 20)\n"
          "  --json            a JSON array of objects\n"
          "  --db CONNINFO     PostgreSQL connection string or URL\n"
          "  --help, -h        this help\n",
          out);
  } else if (strcmp(sub, "stats") == 0) {
    fputs("Usage: flowcore history stats [options]\n"
          "\n"
          "Duration statistics per workflow and node over all finished attempts:\n"
          "runs, attempts, failures, timeouts, p50, p95, mean and max\n"
          "(view flowcore_node_stats).\n"
          "\n"
          "Options:\n"
          "  --workflow NAME   only this workflow\n"
          "  --json            a JSON array of objects\n"
          "  --db CONNINFO     PostgreSQL connection string or URL\n"
          "  --help, -h        this help\n",
          out);
  } else if (strcmp(sub, "running") == 0) {
    fputs("Usage: flowcore history running [options]\n"
          "\n"
          "Runs still marked running, oldest first, with how far along they are\n"
          "(view flowcore_running_progress) and their LIVENESS:\n"
          "  abandoned  the run's host is this host and its process is gone (no such\n"
          "             pid, or the pid now belongs to a later process), or the run\n"
          "             is elsewhere (or its host/pid is unknown) and nothing was\n"
          "             heard of it for longer than --stale\n"
          "  live       otherwise (on this host: its process is alive, however idle)\n"
          "A run whose process died stays here until 'flowcore history reap'.\n"
          "\n"
          "Options:\n"
          "  --stale DURATION  threshold of the stale rule (default 60m; 90s, 10m, 2h)\n"
          "  --json            a JSON array of objects\n"
          "  --db CONNINFO     PostgreSQL connection string or URL\n"
          "  --help, -h        this help\n",
          out);
  } else if (strcmp(sub, "reap") == 0) {
    fputs("Usage: flowcore history reap [options]\n"
          "\n"
          "Marks the runs that 'history running' calls abandoned as status\n"
          "'abandoned' (error_type 'abandoned', completed_at = their last activity)\n"
          "and records each in the table flowcore_reaps: who (role, host, pid),\n"
          "when, by which rule (process_gone or stale) and why. Live runs are never\n"
          "touched: a run on this host whose process is alive, or one heard of\n"
          "within --stale; a run that finishes or shows activity meanwhile is left\n"
          "alone. Run it on the host where the runs ran for the exact pid check;\n"
          "elsewhere only the stale rule applies. Needs a role that may update\n"
          "workflow_executions and insert into flowcore_reaps (the owner, or a\n"
          "login in flowcore_writer).\n"
          "\n"
          "Options:\n"
          "  --stale DURATION  threshold of the stale rule (default 60m; 90s, 10m, 2h)\n"
          "  --dry-run         list what would be marked, change nothing\n"
          "  --json            a JSON array of objects (\"reaped\": true when marked)\n"
          "  --db CONNINFO     PostgreSQL connection string or URL\n"
          "  --help, -h        this help\n",
          out);
  } else if (strcmp(sub, "losses") == 0) {
    fputs("Usage: flowcore history losses [options]\n"
          "\n"
          "History records that writers reported lost, per writer, record kind and\n"
          "reason (view flowcore_writer_loss_summary). No rows: nothing was lost.\n"
          "\n"
          "Options:\n"
          "  --json            a JSON array of objects\n"
          "  --db CONNINFO     PostgreSQL connection string or URL\n"
          "  --help, -h        this help\n",
          out);
  } else {
    cli_usage_history(out);
  }
}

static void print_version(void) {
  int pq = PQlibVersion();
  printf("flowcore %s (libuv %s, jansson %s, libpq %d.%d)\n", fc_version_string(),
         uv_version_string(), JANSSON_VERSION, pq / 10000, pq % 10000);
}

static int is_help(const char *arg) { return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0; }

/* flowcore help [COMMAND [SUB]] */
static int cmd_help(int argc, char **argv) {
  const char *cmd = argc > 2 ? argv[2] : NULL;
  if (argc > 4)
    return cli_usage_error("help", "too many arguments");
  if (cmd == NULL) {
    cli_usage_main(stdout);
  } else if (strcmp(cmd, "run") == 0) {
    cli_usage_run(stdout);
  } else if (strcmp(cmd, "validate") == 0) {
    cli_usage_validate(stdout);
  } else if (strcmp(cmd, "migrate") == 0) {
    cli_usage_migrate(stdout);
  } else if (strcmp(cmd, "history") == 0) {
    if (argc > 3)
      cli_usage_history_sub(stdout, argv[3]);
    else
      cli_usage_history(stdout);
  } else if (strcmp(cmd, "version") == 0) {
    fputs("Usage: flowcore version\n\nPrints the version of flowcore and of its libraries.\n",
          stdout);
  } else if (strcmp(cmd, "help") == 0) {
    fputs("Usage: flowcore help [COMMAND]\n\nPrints the help of flowcore or of a command.\n",
          stdout);
  } else {
    return cli_usage_error(NULL, "unknown command '%s'", cmd);
  }
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
  const char *cmd;
  if (argc < 2) {
    cli_usage_main(stderr);
    return CLI_EXIT_USAGE;
  }
  cmd = argv[1];
  if (is_help(cmd) || strcmp(cmd, "help") == 0)
    return cmd_help(argc, argv);
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
    print_version();
    return CLI_EXIT_OK;
  }
  if (strcmp(cmd, "version") == 0) {
    if (argc > 2) {
      if (is_help(argv[2])) {
        fputs("Usage: flowcore version\n\nPrints the version of flowcore and of its libraries.\n",
              stdout);
        return CLI_EXIT_OK;
      }
      return cli_usage_error("version", "unexpected argument '%s'", argv[2]);
    }
    print_version();
    return CLI_EXIT_OK;
  }
  if (strcmp(cmd, "run") == 0)
    return cli_cmd_run(argc, argv);
  if (strcmp(cmd, "validate") == 0)
    return cli_cmd_validate(argc, argv);
  if (strcmp(cmd, "migrate") == 0)
    return cli_cmd_migrate(argc, argv);
  if (strcmp(cmd, "history") == 0)
    return cli_cmd_history(argc, argv);
  if (cmd[0] == '-')
    return cli_usage_error(NULL, "unknown option '%s'", cmd);
  return cli_usage_error(NULL, "unknown command '%s'", cmd);
}

/* Every command's output ends here: a write error on stdout (a full disk,
 * /dev/full, a closed pipe) is reported and fails the command. */
int main(int argc, char **argv) {
  detect_utf8();
  return cli_close_stdout(dispatch(argc, argv));
}

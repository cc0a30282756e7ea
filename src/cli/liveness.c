/* flowcore command line: is a run still marked `running` alive, or
 * abandoned (its process gone, or nothing heard of it for too long)?
 *
 * The rules (docs/history.md, "Abandoned runs"):
 *  - the run's host is this host (same hostname) and its pid is recorded:
 *    the process decides. Gone (no such pid, a zombie, or a pid that now
 *    belongs to a process started after the run started: pid reuse) means
 *    abandoned at once; alive means live, however long it has been idle.
 *  - else (another host, or host/pid not recorded): abandoned when nothing
 *    was heard of the run for longer than the stale threshold.
 * Limits: "same host" is the hostname, so two hosts (or containers) with
 * the same hostname but separate pid namespaces must not judge each other's
 * runs; a pid reused by a process that started within 2 s of the run's
 * start is taken for the run's process. Without /proc (not Linux) only the
 * existence of the pid is checked.
 */
#define _DEFAULT_SOURCE /* kill, gethostname */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "cli.h"

/* Slack for comparing a process's start time with the run's start: btime
 * is whole seconds, starttime is in clock ticks. */
#define START_SLACK_US INT64_C(2000000)

/* The start time of pid in µs since the epoch from /proc, its state letter
 * in *state. Returns 0, or -1 when /proc cannot tell. */
static int proc_start(long long pid, int64_t *start_us, char *state) {
  char path[64], buf[1024], *p;
  unsigned long long starttime = 0, btime = 0;
  long ticks = sysconf(_SC_CLK_TCK);
  FILE *f;
  size_t n;
  int field;
  snprintf(path, sizeof path, "/proc/%lld/stat", pid);
  f = fopen(path, "r");
  if (f == NULL)
    return -1;
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* "pid (comm) S ppid ...": comm may hold spaces and parentheses, so
   * fields are counted from the last ')'. State is field 3, starttime 22. */
  p = strrchr(buf, ')');
  if (p == NULL || p[1] != ' ' || p[2] == '\0')
    return -1;
  *state = p[2];
  p += 2;
  for (field = 3; field < 22 && p != NULL; field++) {
    p = strchr(p, ' ');
    if (p != NULL)
      p++;
  }
  if (p == NULL || sscanf(p, "%llu", &starttime) != 1)
    return -1;
  f = fopen("/proc/stat", "r");
  if (f == NULL)
    return -1;
  while (fgets(buf, sizeof buf, f) != NULL)
    if (sscanf(buf, "btime %llu", &btime) == 1)
      break;
  fclose(f);
  if (btime == 0 || ticks <= 0)
    return -1;
  *start_us = (int64_t)btime * 1000000 + (int64_t)(starttime * 1000000ULL / (unsigned long long)ticks);
  return 0;
}

/* 1 if the process of a run that started at started_us is alive, else 0. */
static int process_alive(long long pid, int64_t started_us) {
  int64_t start_us;
  char state = '?';
  if (pid <= 0 || (long long)(pid_t)pid != pid)
    return 0;
  if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
    return 0; /* ESRCH: no such process */
  if (proc_start(pid, &start_us, &state) != 0)
    return 1; /* exists; nothing more known */
  if (state == 'Z' || state == 'X')
    return 0; /* dead, not yet waited for */
  if (start_us > started_us + START_SLACK_US)
    return 0; /* the pid was reused by a later process */
  return 1;
}

int cli_local_host(char *buf, size_t size) {
  if (size == 0 || gethostname(buf, size) != 0)
    return -1;
  buf[size - 1] = '\0';
  return buf[0] != '\0' ? 0 : -1;
}

int cli_run_liveness(const char *host, long long pid, int64_t started_us, double idle_ms,
                     double stale_ms, char *why, size_t size) {
  char here[256], idle[32], stale[32];
  if (host != NULL && pid > 0 && cli_local_host(here, sizeof here) == 0 &&
      strcmp(host, here) == 0) {
    if (process_alive(pid, started_us)) {
      snprintf(why, size, "process %lld on %s is alive", pid, host);
      return CLI_RUN_LIVE;
    }
    snprintf(why, size, "process %lld on %s is gone", pid, host);
    return CLI_RUN_GONE;
  }
  cli_format_duration_ms(idle_ms, idle, sizeof idle);
  cli_format_duration_ms(stale_ms, stale, sizeof stale);
  if (idle_ms > stale_ms) {
    snprintf(why, size, "nothing heard of it for %s (stale after %s)%s%s", idle, stale,
             host != NULL ? "; runs on " : "", host != NULL ? host : "");
    return CLI_RUN_STALE;
  }
  snprintf(why, size, "last heard of %s ago%s%s", idle, host != NULL ? " on " : "",
           host != NULL ? host : "");
  return CLI_RUN_LIVE;
}

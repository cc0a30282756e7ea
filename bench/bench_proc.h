/* Timing whole processes, for the benchmarks in bench/ that run programs
 * (static, like bench_util.h). Define _DEFAULT_SOURCE (for wait4) before
 * any include in a file that includes this. */
#ifndef FLOWCORE_BENCH_PROC_H
#define FLOWCORE_BENCH_PROC_H

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

/* Monotonic clock, ns. */
static uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Runs argv (PATH searched) as a whole process with stdout to out_path
 * (NULL: /dev/null) and waits for it: *ns is the wall time from spawn to
 * exit, *maxrss_kb (when not NULL) its peak resident set. Returns 0, or -1
 * with a message naming prog when it cannot start or does not exit 0. */
static int bench_spawn(const char *prog, char *const argv[], const char *out_path, uint64_t *ns,
                       long *maxrss_kb) {
  posix_spawn_file_actions_t fa;
  struct rusage ru;
  pid_t pid;
  int status = 0, rc;
  uint64_t t0, t1;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path != NULL ? out_path : "/dev/null",
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  t0 = bench_now_ns();
  rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  if (rc == 0)
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
      ;
  t1 = bench_now_ns();
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    fprintf(stderr, "%s: cannot run %s: %s\n", prog, argv[0], strerror(rc));
    return -1;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "%s: %s %s failed (status %d)\n", prog, argv[0], argv[1] ? argv[1] : "",
            status);
    return -1;
  }
  *ns = t1 - t0;
  if (maxrss_kb != NULL)
    *maxrss_kb = ru.ru_maxrss;
  return 0;
}

#endif

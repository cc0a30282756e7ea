#define _DEFAULT_SOURCE /* mkdtemp */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "fc_test.h"

int fc_test_tmpdir_make(char *dir, size_t size, const char *tmpl) {
  if ((size_t)snprintf(dir, size, "%s", tmpl) >= size) {
    errno = ENAMETOOLONG;
    return -1;
  }
  return mkdtemp(dir) != NULL ? 0 : -1;
}

void fc_test_tmpdir_remove(const char *dir) {
  char cmd[4200];
  if (dir[0] == '\0')
    return;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
}

static void close_walk_cb(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

void fc_test_loop_close(uv_loop_t *loop) {
  uv_walk(loop, close_walk_cb, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(loop), 0);
}

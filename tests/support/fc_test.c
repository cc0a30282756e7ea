#define _DEFAULT_SOURCE /* mkdtemp */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_test.h"
#include "workflow_int.h"

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

void fc_test_put(fc_test_text_t *t, const char *fmt, ...) {
  va_list ap;
  int n;
  if (t->text == NULL) {
    t->cap = 4096;
    t->text = malloc(t->cap);
    assert_non_null(t->text);
  }
  for (;;) {
    va_start(ap, fmt);
    n = vsnprintf(t->text + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    if (t->len + (size_t)n < t->cap)
      break;
    t->cap = (t->cap + (size_t)n + 1) * 2;
    t->text = realloc(t->text, t->cap);
    assert_non_null(t->text);
  }
  t->len += (size_t)n;
}

size_t fc_test_node_index(const fc_workflow_t *wf, const char *id) {
  size_t i;
  for (i = 0; i < fc_workflow_node_count(wf); i++)
    if (strcmp(fc_node_id(fc_workflow_node_at(wf, i)), id) == 0)
      return i;
  fail_msg("no node %s", id);
  return 0;
}

void fc_test_same_edges(const fc_workflow_t *a, const fc_workflow_t *b) {
  size_t k, e;
  assert_int_equal(a->nnodes, b->nnodes);
  assert_int_equal(a->nroots, b->nroots);
  for (k = 0; k < a->nroots; k++)
    assert_int_equal(a->roots[k], b->roots[k]);
  for (k = 0; k < a->nnodes; k++) {
    const fc_node_t *x = a->nodes[k], *y = b->nodes[k];
    assert_int_equal(x->nout, y->nout);
    for (e = 0; e < x->nout; e++) {
      assert_int_equal(x->out[e].to, y->out[e].to);
      assert_int_equal(x->out[e].route_mask, y->out[e].route_mask);
    }
    assert_int_equal(x->nin, y->nin);
    for (e = 0; e < x->nin; e++)
      assert_int_equal(fc__node_in(x)[e], fc__node_in(y)[e]);
  }
}

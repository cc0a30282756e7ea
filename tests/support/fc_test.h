/* Shared helpers for flowcore's cmocka tests. */
#ifndef FC_TEST_H
#define FC_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "flowcore.h"
#include "flowcore/testing.h"

/* Closes every handle still open on loop, runs it until they are closed,
 * and asserts that uv_loop_close() returns 0. */
void fc_test_loop_close(uv_loop_t *loop);

/* A private directory for a test group: copies the mkdtemp(3) template
 * (e.g. "/tmp/fc-x-XXXXXX") into dir (size bytes) and makes it. Returns 0,
 * or -1 (errno set). */
int fc_test_tmpdir_make(char *dir, size_t size, const char *tmpl);
/* Removes dir and what it holds (rm -rf); says so on stderr if it cannot.
 * An empty dir is nothing to remove. */
void fc_test_tmpdir_remove(const char *dir);

/* A text built piece by piece (a generated workflow file): zero it, add
 * with fc_test_put, free(text) at the end. */
typedef struct {
  char *text;
  size_t len, cap;
} fc_test_text_t;

/* Appends printf(fmt, ...) to t (fails the test when out of memory). */
void fc_test_put(fc_test_text_t *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The index of the node called id in wf (fails the test when none). */
size_t fc_test_node_index(const fc_workflow_t *wf, const char *id);

/* Two validated workflows of as many nodes have the same roots and, node
 * by node, the same successors (in order, with their route masks) and
 * predecessors (fails the test otherwise). */
void fc_test_same_edges(const fc_workflow_t *a, const fc_workflow_t *b);

#endif

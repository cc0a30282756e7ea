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

#endif

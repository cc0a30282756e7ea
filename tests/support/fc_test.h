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

#endif

/* flowcore: assertion helpers over the recorder for cmocka tests.
 * Include after <cmocka.h>. Each macro fails the current test with a
 * message naming what differed. */
#ifndef FLOWCORE_TESTING_H
#define FLOWCORE_TESTING_H

#include "recorder.h"

/* "event `kind` was recorded `times` times" (any node). */
#define fc_assert_called(r, kind, times)                                       \
  fc_assert_node_called((r), (kind), NULL, (times))

/* "event `kind` for node `node` (NULL: any) was recorded `times` times". */
#define fc_assert_node_called(r, kind, node, times)                            \
  do {                                                                         \
    size_t fc_n_ = fc_recorder_count((r), (kind), (node));                     \
    size_t fc_want_ = (size_t)(times);                                         \
    if (fc_n_ != fc_want_)                                                     \
      fail_msg("%s%s%s called %zu times, expected %zu",                        \
               fc_event_kind_name(kind), (node) != NULL ? " for node " : "",   \
               (node) != NULL ? (const char *)(node) : "", fc_n_, fc_want_);   \
  } while (0)

/* "these events came in this order" (a subsequence of the recording). */
#define fc_assert_in_order(r, kinds, nodes, n)                                 \
  do {                                                                         \
    char fc_msg_[256];                                                         \
    if (!fc_recorder_in_order((r), (kinds), (nodes), (n), fc_msg_,             \
                              sizeof fc_msg_))                                 \
      fail_msg("order: %s", fc_msg_);                                          \
  } while (0)

/* The whole event-order contract of the engine holds. */
#define fc_assert_contract(r)                                                  \
  do {                                                                         \
    char fc_msg_[256];                                                         \
    if (!fc_recorder_check_contract((r), fc_msg_, sizeof fc_msg_))             \
      fail_msg("contract: %s", fc_msg_);                                       \
  } while (0)

#endif

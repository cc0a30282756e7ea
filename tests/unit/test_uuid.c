/* UUIDv7: layout, monotonicity, formatting and parsing. */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fc_test.h"

static uint64_t uuid_ms(const uint8_t u[16]) {
  uint64_t ms = 0;
  int i;
  for (i = 0; i < 6; i++)
    ms = ms << 8 | u[i];
  return ms;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void test_version_variant_time(void **state) {
  uint8_t u[16];
  int i;
  (void)state;
  for (i = 0; i < 1000; i++) {
    uint64_t before = now_ms(), after;
    assert_int_equal(fc_uuid7(u), 0);
    after = now_ms();
    assert_int_equal(u[6] >> 4, 7); /* version */
    assert_int_equal(u[8] >> 6, 2); /* variant 10 */
    /* the timestamp is the wall clock (it may run ahead by the monotonic
     * increments, but not by a whole second) */
    assert_true(uuid_ms(u) >= before);
    assert_true(uuid_ms(u) <= after + 1000);
  }
  assert_int_equal(fc_uuid7(NULL), FC_EINVAL);
}

static void test_random_bits_differ(void **state) {
  uint8_t a[16], b[16];
  (void)state;
  assert_int_equal(fc_uuid7(a), 0);
  assert_int_equal(fc_uuid7(b), 0);
  /* rand_b (bytes 8..15) of two ids: equal with probability 2^-62 */
  assert_memory_not_equal(a + 8, b + 8, 8);
}

static void test_monotonic_10000(void **state) {
  enum { N = 10000 };
  uint8_t(*ids)[16] = malloc(N * 16);
  char prev[37], cur[37];
  int i;
  (void)state;
  assert_non_null(ids);
  for (i = 0; i < N; i++)
    assert_int_equal(fc_uuid7(ids[i]), 0);
  fc_uuid_format(ids[0], prev);
  for (i = 1; i < N; i++) {
    assert_true(memcmp(ids[i - 1], ids[i], 16) < 0);
    fc_uuid_format(ids[i], cur);
    assert_true(strcmp(prev, cur) < 0); /* text sorts the same way */
    memcpy(prev, cur, sizeof cur);
  }
  free(ids);
}

enum { THREADS = 4, PER_THREAD = 5000 };

typedef struct {
  uint8_t ids[PER_THREAD][16];
  int ok;
} thread_job_t;

static void uuid_thread(void *arg) {
  thread_job_t *job = arg;
  int i;
  job->ok = 1;
  for (i = 0; i < PER_THREAD; i++) {
    if (fc_uuid7(job->ids[i]) != 0)
      job->ok = 0;
    if (i > 0 && memcmp(job->ids[i - 1], job->ids[i], 16) >= 0)
      job->ok = 0;
  }
}

static int cmp16(const void *a, const void *b) { return memcmp(a, b, 16); }

static void test_threads_unique(void **state) {
  thread_job_t *jobs = calloc(THREADS, sizeof *jobs);
  uint8_t(*all)[16] = malloc(THREADS * PER_THREAD * 16);
  uv_thread_t th[THREADS];
  int i;
  (void)state;
  assert_non_null(jobs);
  assert_non_null(all);
  for (i = 0; i < THREADS; i++)
    assert_int_equal(uv_thread_create(&th[i], uuid_thread, &jobs[i]), 0);
  for (i = 0; i < THREADS; i++) {
    assert_int_equal(uv_thread_join(&th[i]), 0);
    assert_true(jobs[i].ok);
    memcpy(all[i * PER_THREAD], jobs[i].ids, sizeof jobs[i].ids);
  }
  qsort(all, THREADS * PER_THREAD, 16, cmp16);
  /* strictly increasing across threads too: the timestamps never repeat */
  for (i = 1; i < THREADS * PER_THREAD; i++)
    assert_true(memcmp(all[i - 1], all[i], 16) < 0);
  free(all);
  free(jobs);
}

/* A forked child reseeds: its random bits are not the parent's. */
static void test_fork_reseeds(void **state) {
  uint8_t warm[16], parent[16], child[16];
  int fds[2], status;
  pid_t pid;
  (void)state;
  assert_int_equal(fc_uuid7(warm), 0); /* seeded before the fork */
  assert_int_equal(pipe(fds), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    uint8_t u[16];
    int rc = fc_uuid7(u);
    ssize_t w = write(fds[1], u, sizeof u);
    _exit(rc == 0 && w == (ssize_t)sizeof u ? 0 : 1);
  }
  close(fds[1]);
  assert_int_equal(fc_uuid7(parent), 0);
  assert_int_equal(read(fds[0], child, sizeof child), (ssize_t)sizeof child);
  close(fds[0]);
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_int_equal(child[6] >> 4, 7);
  assert_memory_not_equal(parent + 8, child + 8, 8);
}

static void test_format_parse(void **state) {
  /* the UUIDv7 example of RFC 9562, appendix A.6 */
  static const uint8_t example[16] = {0x01, 0x7f, 0x22, 0xe2, 0x79, 0xb0, 0x7c, 0xc3,
                                      0x98, 0xc4, 0xdc, 0x0c, 0x0c, 0x07, 0x39, 0x8f};
  uint8_t u[16], v[16];
  char text[37];
  int i;
  (void)state;
  fc_uuid_format(example, text);
  assert_string_equal(text, "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
  assert_int_equal(fc_uuid_parse("017F22E2-79B0-7CC3-98C4-DC0C0C07398F", u), 0);
  assert_memory_equal(u, example, 16);

  for (i = 0; i < 100; i++) {
    assert_int_equal(fc_uuid7(u), 0);
    memset(text, 'x', sizeof text);
    fc_uuid_format(u, text);
    assert_int_equal(strlen(text), 36);
    assert_int_equal(text[8], '-');
    assert_int_equal(text[13], '-');
    assert_int_equal(text[18], '-');
    assert_int_equal(text[23], '-');
    assert_int_equal(text[14], '7');
    assert_non_null(strchr("89ab", text[19]));
    assert_int_equal(strspn(text, "0123456789abcdef-"), 36);
    memset(v, 0, sizeof v);
    assert_int_equal(fc_uuid_parse(text, v), 0);
    assert_memory_equal(u, v, 16);
  }
}

static void test_parse_errors(void **state) {
  static const char *const bad[] = {
      "",
      "017f22e2-79b0-7cc3-98c4-dc0c0c07398",   /* short */
      "017f22e2-79b0-7cc3-98c4-dc0c0c07398f0", /* long */
      "017f22e2-79b0-7cc3-98c4-dc0c0c07398f ", /* trailing space */
      " 017f22e2-79b0-7cc3-98c4-dc0c0c07398f",
      "017f22e279b0-7cc3-98c4-dc0c0c07398f0", /* dash missing */
      "017f22e2-79b07-cc3-98c4-dc0c0c07398f", /* dash misplaced */
      "017f22e2_79b0_7cc3_98c4_dc0c0c07398f",
      "017f22g2-79b0-7cc3-98c4-dc0c0c07398f", /* not hex */
      "{017f22e2-79b0-7cc3-98c4-dc0c0c07398f}",
      "017f22e279b07cc398c4dc0c0c07398f", /* no dashes */
      "urn:uuid:017f22e2-79b0-7cc3-98c4-dc0c0c07398f",
  };
  uint8_t u[16], zero[16] = {0};
  size_t i;
  (void)state;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(u, 0, sizeof u);
    if (fc_uuid_parse(bad[i], u) != FC_EINVAL)
      fail_msg("accepted \"%s\"", bad[i]);
    assert_memory_equal(u, zero, 16); /* untouched */
  }
  assert_int_equal(fc_uuid_parse(NULL, u), FC_EINVAL);
  assert_int_equal(fc_uuid_parse("017f22e2-79b0-7cc3-98c4-dc0c0c07398f", NULL), FC_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_version_variant_time), cmocka_unit_test(test_random_bits_differ),
      cmocka_unit_test(test_monotonic_10000),      cmocka_unit_test(test_threads_unique),
      cmocka_unit_test(test_fork_reseeds),         cmocka_unit_test(test_format_parse),
      cmocka_unit_test(test_parse_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

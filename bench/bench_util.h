/* Helpers shared by the benchmarks in bench/ (each bench/NAME.c is its own
 * program; these are static so each includes its copy). */
#ifndef FLOWCORE_BENCH_UTIL_H
#define FLOWCORE_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bench_cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a;
  uint64_t y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* Sorts v[0..n), n >= 1, and returns its median. */
static uint64_t bench_median(uint64_t *v, size_t n) {
  qsort(v, n, sizeof *v, bench_cmp_u64);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* 1234567 -> "1,234,567" (negative values print as 0). */
static const char *group(double value, char *buf, size_t size) {
  char digits[32];
  snprintf(digits, sizeof digits, "%.0f", value < 0 ? 0 : value);
  size_t len = strlen(digits), o = 0;
  for (size_t i = 0; i < len && o + 2 < size; i++) {
    if (i > 0 && (len - i) % 3 == 0)
      buf[o++] = ',';
    buf[o++] = digits[i];
  }
  buf[o] = '\0';
  return buf;
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

static inline double per_second(size_t count, uint64_t ns) {
  return ns ? (double)count * 1e9 / (double)ns : 0.0;
}

/* Parses an integer option value >= min; prints "<prog>: <flag> needs ..."
 * and returns -1 otherwise. */
static int parse_count(const char *prog, const char *flag, const char *text, long min, long *out) {
  char *end;
  long v = text ? strtol(text, &end, 10) : 0;
  if (text == NULL || *text == '\0' || *end != '\0' || v < min) {
    fprintf(stderr, "%s: %s needs an integer >= %ld\n", prog, flag, min);
    return -1;
  }
  *out = v;
  return 0;
}

#endif

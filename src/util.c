/* Small shared helpers: allocation, clocks, names, error details. */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "internal.h"

void *fc__malloc(size_t size) { return malloc(size ? size : 1); }

void *fc__calloc(size_t n, size_t size) { return calloc(n ? n : 1, size ? size : 1); }

void *fc__realloc(void *ptr, size_t size) { return realloc(ptr, size ? size : 1); }

void fc__free(void *ptr) { free(ptr); }

char *fc__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = fc__malloc(n);
  if (p != NULL)
    memcpy(p, s, n);
  return p;
}

DIR *fc__opendir(const char *path) {
  DIR *d;
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  d = fdopendir(fd);
  if (d == NULL) {
    int e = errno;
    close(fd);
    errno = e;
  }
  return d;
}

int fc__thread_create(uv_thread_t *tid, void (*entry)(void *arg), void *arg) {
  sigset_t all, old;
  int rc;
  sigfillset(&all);
  /* The new thread inherits the mask of the thread that creates it. */
  if (pthread_sigmask(SIG_SETMASK, &all, &old) != 0)
    return uv_thread_create(tid, entry, arg);
  rc = uv_thread_create(tid, entry, arg);
  (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

void fc__run_both(void (*a)(void *), void *arg_a, void (*b)(void *), void *arg_b) {
  uv_thread_t tid;
  if (fc__thread_create(&tid, b, arg_b) != 0) {
    a(arg_a);
    b(arg_b);
    return;
  }
  a(arg_a);
  (void)uv_thread_join(&tid);
}

static int grow_from(void **items, size_t *cap, size_t need, size_t elem_size, size_t first) {
  size_t ncap;
  void *p;
  if (need <= *cap)
    return 0;
  ncap = *cap ? *cap : first;
  while (ncap < need) {
    if (ncap > SIZE_MAX / 2 / elem_size)
      return FC_ENOMEM;
    ncap *= 2;
  }
  p = fc__realloc(*items, ncap * elem_size);
  if (p == NULL)
    return FC_ENOMEM;
  *items = p;
  *cap = ncap;
  return 0;
}

int fc__grow(void **items, size_t *cap, size_t need, size_t elem_size) {
  return grow_from(items, cap, need, elem_size, 8);
}

int fc__grow_small(void **items, size_t *cap, size_t need, size_t elem_size) {
  return grow_from(items, cap, need, elem_size, 1);
}

int64_t fc__wall_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t fc__mono_ns(void) { return uv_hrtime(); }

int fc__name_valid(const char *s, size_t max, int allow_space) {
  size_t i;
  if (s == NULL || s[0] == '\0')
    return 0;
  for (i = 0; s[i] != '\0'; i++) {
    unsigned char c = (unsigned char)s[i];
    if (i >= max)
      return 0;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        c == '_' || c == '.' || c == ':' || c == '-')
      continue;
    if (allow_space && c == ' ' && i > 0 && s[i + 1] != '\0')
      continue;
    return 0;
  }
  return 1;
}

int fc__error_set(fc_error_t *err, int code, const char *where, const char *fmt, ...) {
  va_list ap;
  if (err == NULL || err->code != 0)
    return code;
  err->code = code;
  snprintf(err->where, sizeof err->where, "%s", where ? where : "");
  va_start(ap, fmt);
  vsnprintf(err->text, sizeof err->text, fmt, ap);
  va_end(ap);
  return code;
}

void fc_error_clear(fc_error_t *err) {
  if (err == NULL)
    return;
  err->code = 0;
  err->where[0] = '\0';
  err->text[0] = '\0';
}

const char *fc_version_string(void) { return FC_VERSION_STRING; }

uint64_t fc__mem_hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  while (n-- > 0) {
    h ^= (unsigned char)*s++;
    h *= 1099511628211ULL;
  }
  return h;
}

uint64_t fc__str_hash(const char *s) { return fc__mem_hash(s, strlen(s)); }

/* flowcore command line: output with secrets removed, the database
 * configuration, option parsing, and formatting of times and durations. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../pg/pq.h"
#include "cli.h"

/* ---- secrets ------------------------------------------------------------- */

static int g_stdout_errno; /* the first write error on stdout, or 0 */

/* Keeps the reason of the first failed write to stdout (the stream's error
 * flag stays, errno does not). */
static void note_stdout_error(int e) {
  if (g_stdout_errno == 0)
    g_stdout_errno = e != 0 ? e : EIO;
}

#define MAX_SECRETS 16

static char *g_secrets[MAX_SECRETS];
static size_t g_nsecrets;

static void secret_add_n(const char *s, size_t len) {
  size_t i;
  char *copy;
  if (s == NULL || len < 3 || g_nsecrets == MAX_SECRETS)
    return;
  for (i = 0; i < g_nsecrets; i++)
    if (strlen(g_secrets[i]) == len && memcmp(g_secrets[i], s, len) == 0)
      return;
  copy = malloc(len + 1);
  if (copy == NULL)
    return;
  memcpy(copy, s, len);
  copy[len] = '\0';
  g_secrets[g_nsecrets++] = copy;
}

void cli_secret_add(const char *secret) {
  if (secret != NULL)
    secret_add_n(secret, strlen(secret));
}

/* Replaces every occurrence of `secret` in s by "***". */
static char *redact_one(char *s, const char *secret) {
  size_t slen = strlen(secret), count = 0, n;
  const char *p;
  char *out, *q;
  for (p = strstr(s, secret); p != NULL; p = strstr(p + slen, secret))
    count++;
  if (count == 0)
    return s;
  n = strlen(s) - count * slen + count * 3;
  out = malloc(n + 1);
  if (out == NULL) {
    /* Cannot grow: blank the secret in place (same length). */
    for (q = strstr(s, secret); q != NULL; q = strstr(q + slen, secret))
      memset(q, '*', slen);
    return s;
  }
  q = out;
  p = s;
  for (;;) {
    const char *hit = strstr(p, secret);
    if (hit == NULL)
      break;
    memcpy(q, p, (size_t)(hit - p));
    q += hit - p;
    memcpy(q, "***", 3);
    q += 3;
    p = hit + slen;
  }
  strcpy(q, p);
  free(s);
  return out;
}

char *cli_redact(char *s) {
  size_t i;
  if (s == NULL)
    return NULL;
  for (i = 0; i < g_nsecrets; i++)
    s = redact_one(s, g_secrets[i]);
  return s;
}

void cli_vprintf(FILE *out, const char *fmt, va_list ap) {
  va_list ap2;
  char small[1024], *buf;
  int n;
  va_copy(ap2, ap);
  n = vsnprintf(small, sizeof small, fmt, ap);
  if (n < 0) {
    va_end(ap2);
    return;
  }
  buf = malloc((size_t)n + 1);
  if (buf == NULL) {
    va_end(ap2);
    fputs("flowcore: out of memory\n", stderr);
    return;
  }
  if ((size_t)n < sizeof small)
    memcpy(buf, small, (size_t)n + 1);
  else
    (void)vsnprintf(buf, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  buf = cli_redact(buf);
  if (buf != NULL) {
    if (fputs(buf, out) == EOF && out == stdout)
      note_stdout_error(errno);
    free(buf);
  }
}

void cli_printf(FILE *out, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  cli_vprintf(out, fmt, ap);
  va_end(ap);
}

void cli_verror(const char *fmt, va_list ap) {
  (void)cli_flush_stdout();
  fputs("flowcore: ", stderr);
  cli_vprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

void cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  cli_verror(fmt, ap);
  va_end(ap);
}

/* ---- standard output ------------------------------------------------------ */

int cli_flush_stdout(void) {
  if (fflush(stdout) != 0) {
    note_stdout_error(errno);
    return -1;
  }
  return ferror(stdout) ? -1 : 0;
}

int cli_close_stdout(int exit_code) {
  int failed = cli_flush_stdout() != 0;
  if (fclose(stdout) != 0) {
    note_stdout_error(errno);
    failed = 1;
  }
  if (!failed)
    return exit_code;
  fprintf(stderr, "flowcore: write error on standard output: %s\n",
          strerror(g_stdout_errno != 0 ? g_stdout_errno : EIO));
  return exit_code == CLI_EXIT_OK ? CLI_EXIT_FAILED : exit_code;
}

/* ---- UTF-8 output ----------------------------------------------------------- */

static int g_utf8;

void cli_set_utf8(int on) { g_utf8 = on != 0; }

int cli_utf8(void) { return g_utf8; }

int cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  cli_verror(fmt, ap);
  va_end(ap);
  if (cmd != NULL)
    fprintf(stderr, "Try 'flowcore %s --help'.\n", cmd);
  else
    fputs("Try 'flowcore --help'.\n", stderr);
  return CLI_EXIT_USAGE;
}

char *cli_one_line(char *s) {
  char *r = s, *w = s;
  int blank = 0;
  if (s == NULL)
    return NULL;
  for (; *r != '\0'; r++) {
    if (*r == '\n' || *r == '\r' || *r == '\t' || *r == ' ') {
      blank = 1;
      continue;
    }
    if (blank && w != s)
      *w++ = ' ';
    blank = 0;
    *w++ = *r;
  }
  *w = '\0';
  return s;
}

/* JSON text on its way to a stream, secrets removed: jansson hands it over
 * in small pieces (json_dump_callback), kept in `buf` until 64 KiB are
 * there; then all but the last (longest secret - 1) bytes are written, so
 * that a secret split between two pieces is still found whole. At each
 * position the first secret (in the order they were added) that starts
 * there becomes "***", as cli_redact does for text without overlapping
 * secrets. Memory stays bounded however large the value's text is. */
typedef struct {
  FILE *out;
  char *buf;
  size_t len, cap, keep; /* keep: longest secret - 1 */
  int failed;
} json_out_t;

#define JSON_OUT_CHUNK 65536

/* Writes buf[0..upto) (more when a secret starting before upto ends
 * after it) and moves the rest to the front. */
static void json_out_flush(json_out_t *o, size_t upto) {
  size_t i = 0, start = 0, k;
  while (i < upto) {
    for (k = 0; k < g_nsecrets; k++) {
      size_t n = strlen(g_secrets[k]);
      if (n <= o->len - i && memcmp(o->buf + i, g_secrets[k], n) == 0)
        break;
    }
    if (k == g_nsecrets) {
      i++;
      continue;
    }
    if (fwrite(o->buf + start, 1, i - start, o->out) != i - start || fputs("***", o->out) == EOF)
      o->failed = 1;
    i += strlen(g_secrets[k]);
    start = i;
  }
  if (fwrite(o->buf + start, 1, i - start, o->out) != i - start)
    o->failed = 1;
  memmove(o->buf, o->buf + i, o->len - i);
  o->len -= i;
}

static int json_out_piece(const char *piece, size_t size, void *data) {
  json_out_t *o = data;
  while (size > 0) {
    size_t n = o->cap - o->len < size ? o->cap - o->len : size;
    memcpy(o->buf + o->len, piece, n);
    o->len += n;
    piece += n;
    size -= n;
    if (o->len == o->cap)
      json_out_flush(o, o->len - o->keep);
  }
  return o->failed ? -1 : 0;
}

int cli_print_json(FILE *out, const json_t *value, int compact) {
  json_out_t o;
  size_t i;
  int rc;
  memset(&o, 0, sizeof o);
  o.out = out;
  for (i = 0; i < g_nsecrets; i++)
    if (strlen(g_secrets[i]) - 1 > o.keep)
      o.keep = strlen(g_secrets[i]) - 1;
  o.cap = JSON_OUT_CHUNK + o.keep;
  o.buf = malloc(o.cap);
  if (o.buf == NULL) {
    cli_error("out of memory formatting JSON");
    return -1;
  }
  rc = json_dump_callback(value, json_out_piece, &o,
                          (compact ? JSON_COMPACT : JSON_INDENT(2)) | JSON_PRESERVE_ORDER |
                              JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
  if (rc == 0)
    (void)json_out_piece("\n", 1, &o);
  json_out_flush(&o, o.len);
  free(o.buf);
  if (o.failed && out == stdout)
    note_stdout_error(errno);
  if (rc != 0 && !o.failed) {
    cli_error("out of memory formatting JSON");
    return -1;
  }
  return 0;
}

/* ---- the database -------------------------------------------------------- */

static int env_set(const char *name) {
  const char *v = getenv(name);
  return v != NULL && v[0] != '\0';
}

/* Registers the password of a connection string: the value libpq parses
 * (decoded) and the raw text as written in a URL or key=value string. */
static void register_conninfo_secrets(const char *conninfo) {
  PQconninfoOption *opts, *o;
  char *errmsg = NULL;
  const char *p;
  if (conninfo == NULL || conninfo[0] == '\0')
    return;
  opts = PQconninfoParse(conninfo, &errmsg);
  if (opts != NULL) {
    for (o = opts; o->keyword != NULL; o++)
      if (strcmp(o->keyword, "password") == 0 && o->val != NULL)
        cli_secret_add(o->val);
    PQconninfoFree(opts);
  }
  PQfreemem(errmsg);
  /* URL user info: scheme://user:password@host... (as libpq scans it: the
   * user info ends at the first '@' before any '/'). */
  p = strstr(conninfo, "://");
  if (p != NULL) {
    const char *start = p + 3, *q = start, *colon = NULL;
    while (*q != '\0' && *q != '@' && *q != '/') {
      if (*q == ':' && colon == NULL)
        colon = q;
      q++;
    }
    if (*q == '@' && colon != NULL)
      secret_add_n(colon + 1, (size_t)(q - colon - 1));
  }
  /* "password=..." as a URL parameter or a keyword (raw, up to a
   * separator). */
  for (p = strstr(conninfo, "password"); p != NULL; p = strstr(p + 8, "password")) {
    const char *v = p + 8, *end;
    while (*v == ' ')
      v++;
    if (*v != '=')
      continue;
    v++;
    while (*v == ' ')
      v++;
    if (*v == '\'') {
      v++;
      for (end = v; *end != '\0' && *end != '\''; end++)
        if (*end == '\\' && end[1] != '\0')
          end++;
    } else {
      for (end = v; *end != '\0' && *end != '&' && *end != ' ' && *end != '\t'; end++) {
      }
    }
    secret_add_n(v, (size_t)(end - v));
  }
}

/* libpq parses integer options only when it connects: a bad one would make
 * every connection attempt fail. The same check here (an integer, blanks
 * around it allowed), before anything runs. */
static int int_option_ok(const char *v, long min, long max) {
  char *end;
  long n;
  errno = 0;
  n = strtol(v, &end, 10);
  if (end == v || errno != 0 || n < min || n > max)
    return 0;
  while (isspace((unsigned char)*end))
    end++;
  return *end == '\0';
}

/* A port list as libpq takes it: comma-separated, each empty (the default
 * port) or a number from 1 to 65535. */
static int port_ok(const char *v) {
  char piece[32];
  const char *p = v;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
    if (n >= sizeof piece)
      return 0;
    memcpy(piece, p, n);
    piece[n] = '\0';
    if (n > 0 && !int_option_ok(piece, 1, 65535))
      return 0;
    if (comma == NULL)
      return 1;
    p = comma + 1;
  }
}

/* Checks the values libpq would refuse at connection time. Returns 0, or
 * CLI_EXIT_USAGE after a message naming the option (passwords redacted). */
static int check_conninfo_values(const cli_db_t *db, const PQconninfoOption *opts) {
  static const char *const int_keys[] = {"connect_timeout",  "keepalives",
                                         "keepalives_idle",  "keepalives_interval",
                                         "keepalives_count", "tcp_user_timeout"};
  const PQconninfoOption *o;
  const char *port_env = getenv("PGPORT");
  int has_port = 0;
  size_t i;
  for (o = opts; o != NULL && o->keyword != NULL; o++) {
    if (o->val == NULL)
      continue;
    if (strcmp(o->keyword, "port") == 0) {
      has_port = 1;
      if (!port_ok(o->val)) {
        cli_error("invalid database connection string (from %s): port \"%s\" is not a number "
                  "from 1 to 65535",
                  db->source, o->val);
        return CLI_EXIT_USAGE;
      }
    }
    for (i = 0; i < sizeof int_keys / sizeof int_keys[0]; i++)
      if (strcmp(o->keyword, int_keys[i]) == 0 && !int_option_ok(o->val, INT_MIN, INT_MAX)) {
        cli_error("invalid database connection string (from %s): %s \"%s\" is not an integer",
                  db->source, o->keyword, o->val);
        return CLI_EXIT_USAGE;
      }
  }
  if (!has_port && port_env != NULL && port_env[0] != '\0' && !port_ok(port_env)) {
    cli_error("invalid PGPORT \"%s\": not a number from 1 to 65535", port_env);
    return CLI_EXIT_USAGE;
  }
  return 0;
}

int cli_db_missing(const char *msg) {
  const char *p = msg != NULL ? strstr(msg, "database \"") : NULL;
  return p != NULL && strstr(p + 10, "\" does not exist") != NULL;
}

void cli_db_hint(const cli_db_t *db, const char *msg) {
  if (cli_db_missing(msg)) {
    const char *name = strstr(msg, "database \"") + 10;
    int len = (int)(strstr(name, "\" does not exist") - name);
    cli_error("hint: the database \"%.*s\" does not exist: create it (createdb '%.*s') or "
              "name another one",
              len, name, len, name);
  } else if (db != NULL && !db->configured) {
    cli_error("hint: name the database with --db, FLOWCORE_DB or DATABASE_URL");
  }
}

int cli_db_resolve(const char *opt_db, cli_db_t *out) {
  static const char *const pg_vars[] = {"PGHOST",     "PGHOSTADDR", "PGPORT",
                                        "PGDATABASE", "PGUSER",     "PGSERVICE"};
  PQconninfoOption *opts;
  char *errmsg = NULL;
  size_t i;
  const char *why;
  memset(out, 0, sizeof *out);
  /* Every command that resolves a database goes on to connect to it. */
  if (fc__pq_load(&why) != 0) {
    cli_error("%s", why);
    return CLI_EXIT_FAILED;
  }
  cli_secret_add(getenv("PGPASSWORD"));
  register_conninfo_secrets(opt_db);
  register_conninfo_secrets(getenv("FLOWCORE_DB"));
  register_conninfo_secrets(getenv("DATABASE_URL"));
  if (opt_db != NULL) {
    out->conninfo = opt_db;
    out->source = "--db";
    out->configured = 1;
  } else if (env_set("FLOWCORE_DB")) {
    out->conninfo = getenv("FLOWCORE_DB");
    out->source = "FLOWCORE_DB";
    out->configured = 1;
  } else if (env_set("DATABASE_URL")) {
    out->conninfo = getenv("DATABASE_URL");
    out->source = "DATABASE_URL";
    out->configured = 1;
  } else {
    out->conninfo = "";
    out->source = "libpq defaults";
    for (i = 0; i < sizeof pg_vars / sizeof pg_vars[0]; i++)
      if (env_set(pg_vars[i])) {
        out->source = "PG* environment";
        out->configured = 1;
        break;
      }
  }
  if (out->conninfo[0] == '\0')
    return check_conninfo_values(out, NULL);
  opts = PQconninfoParse(out->conninfo, &errmsg);
  if (opts == NULL) {
    char *msg = errmsg != NULL ? strdup(errmsg) : NULL;
    size_t n;
    if (msg != NULL) {
      n = strlen(msg);
      while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    }
    cli_error("invalid database connection string (from %s): %s", out->source,
              msg != NULL ? msg : "out of memory");
    free(msg);
    PQfreemem(errmsg);
    return CLI_EXIT_USAGE;
  }
  {
    int rc = check_conninfo_values(out, opts);
    PQconninfoFree(opts);
    return rc;
  }
}

/* ---- options ------------------------------------------------------------- */

void cli_opts_init(cli_opts_t *p, int argc, char **argv, int start, const char *cmd) {
  memset(p, 0, sizeof *p);
  p->argc = argc;
  p->argv = argv;
  p->index = start;
  p->cmd = cmd;
}

int cli_opt_next(cli_opts_t *p, const cli_opt_t *table) {
  const char *arg, *name, *eq;
  size_t len;
  const cli_opt_t *o;
  p->value = NULL;
  p->positional = NULL;
  if (p->index >= p->argc)
    return CLI_OPT_END;
  arg = p->argv[p->index++];
  if (p->only_positional || arg[0] != '-' || arg[1] == '\0') {
    p->positional = arg;
    return CLI_OPT_POSITIONAL;
  }
  if (strcmp(arg, "--") == 0) {
    p->only_positional = 1;
    return cli_opt_next(p, table);
  }
  if (arg[1] != '-') {
    /* A short option: "-h", or "-n 4" / "-n4" for one taking a value. */
    for (o = table; o->name != NULL; o++)
      if (o->short_name != 0 && o->short_name == arg[1])
        break;
    if (o->name == NULL) {
      cli_usage_error(p->cmd, "unknown option '%s' for '%s'", arg, p->cmd);
      return CLI_OPT_ERROR;
    }
    if (!o->has_arg) {
      if (arg[2] != '\0') {
        cli_usage_error(p->cmd, "unknown option '%s' for '%s'", arg, p->cmd);
        return CLI_OPT_ERROR;
      }
      return o->id;
    }
    if (arg[2] != '\0') {
      p->value = arg + 2;
      return o->id;
    }
    if (p->index >= p->argc) {
      cli_usage_error(p->cmd, "option '-%c' needs a value", o->short_name);
      return CLI_OPT_ERROR;
    }
    p->value = p->argv[p->index++];
    return o->id;
  }
  name = arg + 2;
  eq = strchr(name, '=');
  len = eq != NULL ? (size_t)(eq - name) : strlen(name);
  for (o = table; o->name != NULL; o++)
    if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
      break;
  if (o->name == NULL) {
    cli_usage_error(p->cmd, "unknown option '--%.*s' for '%s'", (int)(len > 64 ? 64 : len), name,
                    p->cmd);
    return CLI_OPT_ERROR;
  }
  if (!o->has_arg) {
    if (eq != NULL) {
      cli_usage_error(p->cmd, "option '--%s' takes no value", o->name);
      return CLI_OPT_ERROR;
    }
    return o->id;
  }
  if (eq != NULL) {
    p->value = eq + 1;
    return o->id;
  }
  if (p->index >= p->argc) {
    cli_usage_error(p->cmd, "option '--%s' needs a value", o->name);
    return CLI_OPT_ERROR;
  }
  p->value = p->argv[p->index++];
  return o->id;
}

int cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
  unsigned long long v;
  char *end;
  if (s == NULL || !isdigit((unsigned char)s[0]))
    return -1;
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max)
    return -1;
  *out = (uint64_t)v;
  return 0;
}

int cli_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
  static const struct {
    const char *suffix;
    unsigned shift;
  } units[] = {{"", 0},     {"K", 10},   {"KiB", 10}, {"M", 20},
               {"MiB", 20}, {"G", 30},   {"GiB", 30}};
  unsigned long long v;
  char *end;
  size_t i;
  if (s == NULL || !isdigit((unsigned char)s[0]))
    return -1;
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno != 0)
    return -1;
  for (i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcmp(end, units[i].suffix) != 0)
      continue;
    if (v > (UINT64_MAX >> units[i].shift))
      return -1;
    v <<= units[i].shift;
    if (v < min || v > max)
      return -1;
    *out = (uint64_t)v;
    return 0;
  }
  return -1;
}

/* ---- formatting ------------------------------------------------------------ */

void cli_format_duration_ms(double ms, char *buf, size_t size) {
  double s = ms / 1000.0;
  if (!(ms >= 0)) {
    snprintf(buf, size, "-");
  } else if (ms < 1) {
    /* µs (in UTF-8) only where the locale says the terminal shows it. */
    snprintf(buf, size, g_utf8 ? "%.0f\xc2\xb5s" : "%.0fus", ms * 1000.0);
  } else if (ms < 10) {
    snprintf(buf, size, "%.1fms", ms);
  } else if (ms < 1000) {
    snprintf(buf, size, "%.0fms", ms);
  } else if (s < 60) {
    snprintf(buf, size, "%.2fs", s);
  } else if (s < 3600) {
    long t = (long)s;
    snprintf(buf, size, "%ldm%02lds", t / 60, t % 60);
  } else if (s < 86400) {
    long t = (long)s / 60;
    snprintf(buf, size, "%ldh%02ldm", t / 60, t % 60);
  } else {
    long t = (long)(s / 3600);
    snprintf(buf, size, "%ldd%02ldh", t / 24, t % 24);
  }
}

static void split_us(int64_t us, time_t *sec, long *frac) {
  int64_t s = us / 1000000, f = us % 1000000;
  if (f < 0) {
    f += 1000000;
    s--;
  }
  *sec = (time_t)s;
  *frac = (long)f;
}

void cli_format_local_time(int64_t us, char *buf, size_t size) {
  struct tm tm;
  time_t sec;
  long frac;
  split_us(us, &sec, &frac);
  if (localtime_r(&sec, &tm) == NULL || strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
    snprintf(buf, size, "?");
}

void cli_format_utc_time(int64_t us, char *buf, size_t size) {
  struct tm tm;
  time_t sec;
  long frac;
  char base[32];
  split_us(us, &sec, &frac);
  if (gmtime_r(&sec, &tm) == NULL || strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
    snprintf(buf, size, "?");
    return;
  }
  snprintf(buf, size, "%s.%06ldZ", base, frac);
}

int64_t cli_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d) {
  int64_t era, yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* Reads exactly n digits. */
static int digits(const char **p, int n, int *out) {
  int v = 0, i;
  for (i = 0; i < n; i++) {
    if (!isdigit((unsigned char)(*p)[i]))
      return -1;
    v = v * 10 + ((*p)[i] - '0');
  }
  *p += n;
  *out = v;
  return 0;
}

static int parse_duration(const char *s, double *out_seconds) {
  double total = 0;
  int parts = 0;
  while (*s != '\0') {
    char *end;
    double v, unit;
    if (!isdigit((unsigned char)*s))
      return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s)
      return -1;
    s = end;
    switch (*s) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    case 'w':
      unit = 7 * 86400;
      break;
    default:
      return -1;
    }
    s++;
    total += v * unit;
    parts++;
  }
  if (parts == 0 || total > 1e11)
    return -1;
  *out_seconds = total;
  return 0;
}

static int parse_time(const char *s, int64_t *out_us) {
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int y, mo, d, h = 0, mi = 0, sec = 0, zone = 0, zsign = 0, zh = 0, zm = 0;
  long frac_us = 0;
  int64_t days, secs;
  const char *p = s;
  if (digits(&p, 4, &y) != 0 || *p++ != '-' || digits(&p, 2, &mo) != 0 || *p++ != '-' ||
      digits(&p, 2, &d) != 0)
    return -1;
  if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
      (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)))
    return -1;
  if (*p == 'T' || *p == 't' || *p == ' ') {
    p++;
    if (digits(&p, 2, &h) != 0 || *p++ != ':' || digits(&p, 2, &mi) != 0)
      return -1;
    if (*p == ':') {
      p++;
      if (digits(&p, 2, &sec) != 0)
        return -1;
      if (*p == '.') {
        long scale = 100000;
        p++;
        if (!isdigit((unsigned char)*p))
          return -1;
        while (isdigit((unsigned char)*p)) {
          frac_us += (*p - '0') * scale;
          scale /= 10;
          p++;
        }
      }
    }
    if (h > 23 || mi > 59 || sec > 60)
      return -1;
  }
  if (*p == 'Z' || *p == 'z') {
    zone = 1;
    p++;
  } else if (*p == '+' || *p == '-') {
    zone = 1;
    zsign = *p == '-' ? -1 : 1;
    p++;
    if (digits(&p, 2, &zh) != 0)
      return -1;
    if (*p == ':')
      p++;
    if (isdigit((unsigned char)*p) && digits(&p, 2, &zm) != 0)
      return -1;
    if (zh > 23 || zm > 59)
      return -1;
  }
  if (*p != '\0')
    return -1;
  if (zone) {
    days = days_from_civil(y, mo, d);
    secs = days * 86400 + h * 3600 + mi * 60 + sec - zsign * (zh * 3600 + zm * 60);
  } else {
    struct tm tm;
    time_t t;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    tm.tm_isdst = -1;
    t = mktime(&tm);
    if (t == (time_t)-1)
      return -1;
    secs = (int64_t)t;
  }
  *out_us = secs * 1000000 + frac_us;
  return 0;
}

int cli_parse_duration(const char *s, double *out_seconds) {
  if (s == NULL || s[0] == '\0')
    return -1;
  return parse_duration(s, out_seconds);
}

int cli_parse_since(const char *s, int64_t now_us, int64_t *out_us) {
  double seconds;
  if (s == NULL || s[0] == '\0')
    return -1;
  if (parse_duration(s, &seconds) == 0) {
    *out_us = now_us - (int64_t)(seconds * 1e6);
    return 0;
  }
  return parse_time(s, out_us);
}

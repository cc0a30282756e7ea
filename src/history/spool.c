/* The writer's disk spool (see spool.h). */
#define _DEFAULT_SOURCE /* flock, DT_REG */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "history/spool.h"

#define MAGIC "FCSPOOL1"
#define MAGIC_LEN 8
#define FILE_MAX_BYTES (16u * 1024 * 1024) /* rotate past this */
#define RECORD_MAX_BYTES (64u * 1024 * 1024)
#define NODE_COUNT_MAX 50000000
#define NO_STRING 0xFFFFFFFFu
/* Record types: 1 a history record of format 1 (written before compact
 * storage; still read), 2 a loss report, 3 a history record of format 2:
 * format 1 followed by a byte of flags (1: output_is_input) and the
 * references of a node start (a string, JSON, or none). */
#define REC_HISTORY 1
#define REC_LOSS 2
#define REC_HISTORY2 3
#define LOSS_BYTES 56
#define LOSSES_PER_READ 64

typedef struct {
  fc__hrun_t *run;
} cached_run;

struct fc__spool_s {
  char *dir;
  uint8_t wid[16];
  uint64_t max_bytes;
  uint64_t bytes;   /* on disk (written, or found at open), not yet replayed */
  uint64_t corrupt; /* records skipped */
  /* appending */
  int fd;
  char path[1024];
  unsigned seq;
  uint64_t file_bytes; /* of the append file, on disk (fsync'd) */
  fc__buf_t wbuf;      /* not yet written; starts with MAGIC when file_bytes is 0 */
  size_t wrecs;        /* history records in wbuf */
  fc__buf_t scratch;
  /* replaying */
  int rfd;
  char rpath[1024];
  char *rdata;
  size_t rlen;
  size_t roff;  /* next unread */
  size_t rpend; /* end of records handed out and not acked */
  size_t rstart; /* start of records handed out */
  cached_run *runs;
  size_t nruns, cap_runs;
  fc__spool_loss_t losses[LOSSES_PER_READ]; /* read with the pending records */
  size_t nlosses;
};

/* ---- CRC-32C (Castagnoli), table driven ---------------------------------- */

static uint32_t crc_table[256];

static void crc_init(void) {
  uint32_t i, j;
  if (crc_table[1] != 0)
    return;
  for (i = 0; i < 256; i++) {
    uint32_t c = i;
    for (j = 0; j < 8; j++)
      c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    crc_table[i] = c;
  }
}

static uint32_t crc32c(const void *p, size_t n) {
  const unsigned char *s = p;
  uint32_t c = 0xFFFFFFFFu;
  while (n--)
    c = crc_table[(c ^ *s++) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

/* ---- little-endian encoding -------------------------------------------------- */

static void put_u32(fc__buf_t *b, uint32_t v) {
  unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                        (unsigned char)(v >> 24)};
  fc__buf_append(b, x, 4);
}

static void put_u64(fc__buf_t *b, uint64_t v) {
  put_u32(b, (uint32_t)v);
  put_u32(b, (uint32_t)(v >> 32));
}

static void put_str(fc__buf_t *b, const char *s, size_t n) {
  if (s == NULL) {
    put_u32(b, NO_STRING);
    return;
  }
  put_u32(b, (uint32_t)n);
  fc__buf_append(b, s, n);
}

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p) {
  return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* ---- opening ---------------------------------------------------------------- */

static int is_spool_name(const char *name) {
  size_t n = strlen(name);
  return strncmp(name, "fc-", 3) == 0 && n > 9 && strcmp(name + n - 6, ".spool") == 0;
}

int fc__spool_open(fc__spool_t **out, const char *dir, const uint8_t writer_id[16],
                   uint64_t max_bytes, fc_error_t *err) {
  fc__spool_t *s;
  DIR *d;
  struct dirent *de;
  *out = NULL;
  crc_init();
  if (dir == NULL || dir[0] == '\0')
    return fc__error_set(err, FC_EINVAL, "spool_dir", "the spool policy needs a spool directory");
  if (strlen(dir) > 900)
    return fc__error_set(err, FC_EINVAL, "spool_dir", "spool directory path too long");
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    return fc__error_set(err, -errno, "spool_dir", "cannot create spool directory %s: %s", dir,
                         strerror(errno));
  d = fc__opendir(dir);
  if (d == NULL)
    return fc__error_set(err, -errno, "spool_dir", "cannot open spool directory %s: %s", dir,
                         strerror(errno));
  s = fc__calloc(1, sizeof *s);
  if (s == NULL || (s->dir = fc__strdup(dir)) == NULL) {
    closedir(d);
    fc__free(s);
    return fc__error_set(err, FC_ENOMEM, "", "out of memory");
  }
  memcpy(s->wid, writer_id, 16);
  s->max_bytes = max_bytes;
  s->fd = -1;
  s->rfd = -1;
  fc__buf_init(&s->wbuf);
  fc__buf_init(&s->scratch);
  while ((de = readdir(d)) != NULL) {
    char p[1300];
    struct stat st;
    if (!is_spool_name(de->d_name))
      continue;
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
      s->bytes += (uint64_t)st.st_size;
  }
  closedir(d);
  *out = s;
  return 0;
}

static void runs_clear(fc__spool_t *s) {
  size_t i;
  for (i = 0; i < s->nruns; i++)
    fc__hrun_decref(s->runs[i].run);
  s->nruns = 0;
}

static void replay_close(fc__spool_t *s, int remove_file) {
  if (s->rfd < 0)
    return;
  if (remove_file)
    unlink(s->rpath);
  flock(s->rfd, LOCK_UN);
  close(s->rfd);
  s->rfd = -1;
  fc__free(s->rdata);
  s->rdata = NULL;
  s->rlen = s->roff = s->rpend = s->rstart = 0;
  runs_clear(s);
}

void fc__spool_close(fc__spool_t *s) {
  if (s == NULL)
    return;
  fc__spool_sync(s, NULL);
  fc__spool_rotate(s); /* nothing is buffered after a sync */
  replay_close(s, 0);
  fc__free(s->runs);
  fc__buf_free(&s->wbuf);
  fc__buf_free(&s->scratch);
  fc__free(s->dir);
  fc__free(s);
}

/* ---- appending ------------------------------------------------------------------ */

static int open_append(fc__spool_t *s) {
  char id[FC_UUID_STRING_LENGTH];
  fc_uuid_format(s->wid, id);
  for (;;) {
    snprintf(s->path, sizeof s->path, "%s/fc-%s-%06u.spool", s->dir, id, s->seq++);
    s->fd = open(s->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (s->fd >= 0)
      break;
    if (errno != EEXIST)
      return -errno;
  }
  if (flock(s->fd, LOCK_EX | LOCK_NB) != 0) {
    int e = -errno;
    close(s->fd);
    s->fd = -1;
    return e;
  }
  fc__buf_reset(&s->wbuf);
  fc__buf_append(&s->wbuf, MAGIC, MAGIC_LEN);
  s->wrecs = 0;
  s->file_bytes = 0;
  return 0;
}

/* A JSON value as a string of its text; v NULL: no string. */
static void put_json(fc__buf_t *p, json_t *v) {
  size_t at = p->len;
  if (v == NULL) {
    put_str(p, NULL, 0);
    return;
  }
  put_u32(p, 0);
  fc__json_encode(p, v, 0);
  if (!p->oom) {
    uint32_t n = (uint32_t)(p->len - at - 4);
    unsigned char x[4] = {(unsigned char)n, (unsigned char)(n >> 8), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 24)};
    memcpy(p->data + at, x, 4);
  }
}

int fc__spool_append(fc__spool_t *s, const fc__hrec_t *rec) {
  fc__buf_t *p = &s->scratch;
  const fc__hrun_t *run = rec->run;
  const char *err_end = NULL;
  size_t need;
  int rc;
  if (s->fd < 0 && (rc = open_append(s)) != 0)
    return rc;
  fc__buf_reset(p);
  {
    unsigned char head[4] = {REC_HISTORY2, rec->kind, rec->status, rec->severity};
    fc__buf_append(p, head, 4);
  }
  put_u32(p, (uint32_t)rec->attempt);
  put_u32(p, (uint32_t)rec->node);
  put_u32(p, (uint32_t)rec->count);
  put_u32(p, (uint32_t)run->node_count);
  put_u64(p, (uint64_t)rec->t_us);
  put_u64(p, (uint64_t)rec->started_us);
  put_u64(p, (uint64_t)rec->duration_us);
  fc__buf_append(p, run->uuid, 16);
  {
    /* Only an error record has an id: the handler leaves the others'
     * bytes unset, and unset bytes must not reach the file (nor its CRC). */
    static const uint8_t no_id[16];
    fc__buf_append(p, rec->kind == FC_EVENT_ERROR ? rec->error_id : no_id, 16);
  }
  put_str(p, run->name, strlen(run->name));
  if (rec->node >= 0) {
    put_str(p, run->node_ids[rec->node], strlen(run->node_ids[rec->node]));
    put_str(p, run->node_types[rec->node], strlen(run->node_types[rec->node]));
  } else {
    put_str(p, NULL, 0);
    put_str(p, NULL, 0);
  }
  if (rec->err != NULL) {
    err_end = rec->err + strlen(rec->err) + 1;
    err_end += strlen(err_end) + 1;
    err_end += strlen(err_end) + 1;
  }
  put_str(p, rec->err, rec->err != NULL ? (size_t)(err_end - rec->err) : 0);
  put_json(p, rec->payload);
  {
    unsigned char flags = rec->output_is_input ? 1 : 0;
    fc__buf_append(p, &flags, 1);
  }
  if (rec->refs_text) /* read back as the refs object itself */
    put_str(p, json_string_value(rec->refs), json_string_length(rec->refs));
  else
    put_json(p, rec->refs);
  if (p->oom)
    return FC_ENOMEM;
  need = p->len + 8;
  if (s->max_bytes > 0 && s->bytes + s->wbuf.len + need > s->max_bytes)
    return UV_ENOSPC;
  put_u32(&s->wbuf, (uint32_t)p->len);
  put_u32(&s->wbuf, crc32c(p->data, p->len));
  fc__buf_append(&s->wbuf, p->data, p->len);
  if (s->wbuf.oom)
    return FC_ENOMEM;
  s->wrecs++;
  return 0;
}

size_t fc__spool_buffered(const fc__spool_t *s) { return s->wbuf.len; }

static int write_buffered(fc__spool_t *s, uint64_t lost[FC_REC_KIND_COUNT]);

int fc__spool_append_loss(fc__spool_t *s, const fc__spool_loss_t *loss) {
  fc__buf_t *p = &s->scratch;
  int rc;
  if (s->wrecs > 0)
    return UV_EBUSY; /* fc__spool_sync first: their losses would go uncounted */
  if (s->fd < 0 && (rc = open_append(s)) != 0)
    return rc;
  fc__buf_reset(p);
  {
    unsigned char head[4] = {REC_LOSS, loss->kind, loss->reason, 0};
    fc__buf_append(p, head, 4);
  }
  put_u32(p, (uint32_t)loss->pid);
  put_u64(p, loss->count);
  put_u64(p, (uint64_t)loss->recorded_us);
  fc__buf_append(p, loss->loss_id, 16);
  fc__buf_append(p, loss->writer, 16);
  put_u32(&s->wbuf, (uint32_t)p->len);
  put_u32(&s->wbuf, crc32c(p->data, p->len));
  fc__buf_append(&s->wbuf, p->data, p->len);
  if (p->oom || s->wbuf.oom)
    return FC_ENOMEM;
  return write_buffered(s, NULL);
}

/* Writes n bytes; *done receives how many were written, also on failure. */
static int write_all(int fd, const char *p, size_t n, size_t *done) {
  *done = 0;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += w;
    n -= (size_t)w;
    *done += (size_t)w;
  }
  return 0;
}

/* Where the records of wbuf start (after the magic of a new file). */
static size_t wbuf_records_start(const fc__spool_t *s) {
  return s->file_bytes == 0 ? MAGIC_LEN : 0;
}

/* The bytes of wbuf up to the end of its last record wholly within the
 * first `done` (0 when even the magic of a new file is not). */
static size_t wbuf_whole(const fc__spool_t *s, size_t done) {
  size_t off = wbuf_records_start(s), keep;
  if (done < off)
    return 0;
  keep = off;
  while (off + 8 <= s->wbuf.len) {
    off += 8 + (size_t)get_u32((const unsigned char *)s->wbuf.data + off);
    if (off > done)
      break;
    keep = off;
  }
  return keep;
}

/* Counts by kind the history records of wbuf from byte `from` on. */
static void wbuf_count(const fc__spool_t *s, size_t from, uint64_t lost[FC_REC_KIND_COUNT]) {
  size_t off = from > wbuf_records_start(s) ? from : wbuf_records_start(s);
  while (off + 10 <= s->wbuf.len) { /* a frame header and the payload's type and kind */
    const unsigned char *p = (const unsigned char *)s->wbuf.data + off;
    if (p[8] == REC_HISTORY || p[8] == REC_HISTORY2) {
      fc__hrec_t r;
      r.kind = p[9];
      lost[fc__hrec_kind(&r)]++;
    }
    off += 8 + (size_t)get_u32(p);
  }
}

/* Writes the buffered records to the append file and fsyncs it. When that
 * fails (a full disk, an I/O error), the file is cut back to its last whole
 * record: what a short write got to disk whole is kept (and fsync'd), the
 * rest of the buffer is given up, its history records counted by kind in
 * lost (may be NULL). After a failed fsync nothing written since the last
 * good one is trusted. */
static int write_buffered(fc__spool_t *s, uint64_t lost[FC_REC_KIND_COUNT]) {
  size_t done = 0, keep;
  int rc;
  if (s->wbuf.len == 0)
    return 0;
  rc = write_all(s->fd, s->wbuf.data, s->wbuf.len, &done);
  if (rc == 0 && fsync(s->fd) != 0) {
    rc = -errno;
    done = 0;
  }
  keep = rc == 0 ? s->wbuf.len : wbuf_whole(s, done);
  if (rc != 0 && (ftruncate(s->fd, (off_t)(s->file_bytes + keep)) != 0 ||
                  (keep > 0 && fsync(s->fd) != 0))) {
    /* The file cannot be cut back: append no more to it (what follows a
     * torn record is never read). Whole records of the buffer in it may
     * still be replayed although counted as lost: counted, never lost. */
    struct stat st;
    if (fstat(s->fd, &st) == 0 && (uint64_t)st.st_size > s->file_bytes)
      s->bytes += (uint64_t)st.st_size - s->file_bytes;
    flock(s->fd, LOCK_UN);
    close(s->fd);
    s->fd = -1;
    keep = 0;
  }
  if (rc != 0 && lost != NULL)
    wbuf_count(s, keep, lost);
  s->file_bytes += keep;
  s->bytes += keep;
  fc__buf_reset(&s->wbuf);
  s->wrecs = 0;
  if (s->fd >= 0 && s->file_bytes == 0)
    fc__buf_append(&s->wbuf, MAGIC, MAGIC_LEN); /* not written yet */
  return rc;
}

int fc__spool_sync(fc__spool_t *s, uint64_t lost[FC_REC_KIND_COUNT]) {
  int rc;
  if (s->fd < 0)
    return 0;
  rc = write_buffered(s, lost);
  if (rc == 0 && s->file_bytes >= FILE_MAX_BYTES)
    rc = fc__spool_rotate(s);
  return rc;
}

int fc__spool_rotate(fc__spool_t *s) {
  if (s->fd < 0)
    return 0;
  if (s->wrecs > 0)
    return UV_EBUSY; /* fc__spool_sync first */
  flock(s->fd, LOCK_UN);
  close(s->fd);
  s->fd = -1;
  fc__buf_reset(&s->wbuf); /* at most the magic */
  if (s->file_bytes <= MAGIC_LEN) {
    unlink(s->path);
    s->bytes -= s->file_bytes < s->bytes ? s->file_bytes : s->bytes;
  }
  return 0;
}

uint64_t fc__spool_bytes(const fc__spool_t *s) { return s->bytes; }

int fc__spool_read_own(const fc__spool_t *s) {
  char id[FC_UUID_STRING_LENGTH];
  const char *base = strrchr(s->rpath, '/');
  fc_uuid_format(s->wid, id);
  base = base != NULL ? base + 1 : s->rpath;
  /* fc-<writer uuid>-<seq>.spool */
  return strncmp(base, "fc-", 3) == 0 && strncmp(base + 3, id, strlen(id)) == 0;
}
uint64_t fc__spool_corrupt(const fc__spool_t *s) { return s->corrupt; }

/* ---- replaying ------------------------------------------------------------------ */

/* Picks the oldest replayable file, locks it and reads it whole. */
static int replay_open(fc__spool_t *s) {
  DIR *d = fc__opendir(s->dir);
  struct dirent *de;
  char best[256] = "";
  const char *own = strrchr(s->path, '/');
  char tried[16][256];
  int ntried = 0;
  if (d == NULL)
    return -errno;
again:
  best[0] = '\0';
  rewinddir(d);
  while ((de = readdir(d)) != NULL) {
    int k, skip = 0;
    if (!is_spool_name(de->d_name) || strlen(de->d_name) >= sizeof best)
      continue;
    if (s->fd >= 0 && own != NULL && strcmp(own + 1, de->d_name) == 0)
      continue; /* being appended to */
    for (k = 0; k < ntried; k++)
      skip |= strcmp(tried[k], de->d_name) == 0;
    if (skip)
      continue;
    if (best[0] == '\0' || strcmp(de->d_name, best) < 0)
      snprintf(best, sizeof best, "%s", de->d_name);
  }
  if (best[0] == '\0') {
    closedir(d);
    return 0;
  }
  snprintf(s->rpath, sizeof s->rpath, "%s/%s", s->dir, best);
  s->rfd = open(s->rpath, O_RDONLY | O_CLOEXEC);
  if (s->rfd < 0 || flock(s->rfd, LOCK_EX | LOCK_NB) != 0) {
    /* another process holds it (it is appending or replaying it) */
    if (s->rfd >= 0)
      close(s->rfd);
    s->rfd = -1;
    if (ntried < 16)
      snprintf(tried[ntried++], sizeof tried[0], "%s", best);
    if (ntried < 16)
      goto again;
    closedir(d);
    return 0;
  }
  closedir(d);
  {
    struct stat st;
    ssize_t r;
    size_t got = 0;
    if (fstat(s->rfd, &st) != 0 || st.st_size < 0) {
      replay_close(s, 0);
      return -errno;
    }
    s->rlen = (size_t)st.st_size;
    s->rdata = fc__malloc(s->rlen + 1);
    if (s->rdata == NULL) {
      replay_close(s, 0);
      return FC_ENOMEM;
    }
    while (got < s->rlen && (r = read(s->rfd, s->rdata + got, s->rlen - got)) > 0)
      got += (size_t)r;
    s->rlen = got;
  }
  if (s->rlen < MAGIC_LEN || memcmp(s->rdata, MAGIC, MAGIC_LEN) != 0) {
    s->corrupt++;
    s->bytes -= s->rlen < s->bytes ? s->rlen : s->bytes;
    replay_close(s, 1); /* not ours or empty: nothing to replay */
    return 1;
  }
  s->roff = s->rpend = s->rstart = MAGIC_LEN;
  return 1;
}

static fc__hrun_t *replay_run(fc__spool_t *s, const uint8_t uuid[16], int node_count,
                              const char *name, size_t name_len) {
  size_t i, bytes;
  fc__hrun_t *r;
  for (i = 0; i < s->nruns; i++)
    if (memcmp(s->runs[i].run->uuid, uuid, 16) == 0)
      return s->runs[i].run;
  if (fc__grow((void **)&s->runs, &s->cap_runs, s->nruns + 1, sizeof *s->runs) != 0)
    return NULL;
  bytes = sizeof *r + 2 * (size_t)node_count * sizeof(char *) + name_len + 1;
  r = fc__calloc(1, bytes);
  if (r == NULL)
    return NULL;
  atomic_init(&r->refs, 1);
  memcpy(r->uuid, uuid, 16);
  r->node_count = node_count;
  r->node_ids = (char **)(void *)(r + 1);
  r->node_types = r->node_ids + node_count;
  r->name = (char *)(r->node_types + node_count);
  memcpy(r->name, name, name_len);
  r->name[name_len] = '\0';
  r->owns_strings = 1;
  s->runs[s->nruns++].run = r;
  return r;
}

/* Parses a loss report at p (n bytes); 0 or -1 (corrupt). */
static int parse_loss(const unsigned char *p, size_t n, fc__spool_loss_t *loss) {
  if (n != LOSS_BYTES || p[0] != REC_LOSS || p[1] >= FC_REC_KIND_COUNT ||
      p[2] >= FC_DROP_REASON_COUNT)
    return -1;
  loss->kind = p[1];
  loss->reason = p[2];
  loss->pid = (int32_t)get_u32(p + 4);
  loss->count = get_u64(p + 8);
  loss->recorded_us = (int64_t)get_u64(p + 16);
  memcpy(loss->loss_id, p + 24, 16);
  memcpy(loss->writer, p + 40, 16);
  return loss->count > 0 && loss->count <= INT64_MAX ? 0 : -1;
}

/* Parses one record at p (n bytes); 0 or -1 (corrupt). */
static int parse_record(fc__spool_t *s, const unsigned char *p, size_t n, fc__hrec_t *rec) {
  const unsigned char *end = p + n;
  const char *str[5];
  uint32_t len[5];
  uint8_t uuid[16];
  int node_count, i;
  fc__hrun_t *run;
  int format2 = n > 0 && p[0] == REC_HISTORY2;
  const char *refs_text = NULL;
  uint32_t refs_len = NO_STRING;
  if (n < 4 + 16 + 24 + 32 || (p[0] != REC_HISTORY && !format2))
    return -1;
  memset(rec, 0, sizeof *rec);
  rec->kind = p[1];
  rec->status = p[2];
  rec->severity = p[3];
  rec->attempt = (int32_t)get_u32(p + 4);
  rec->node = (int32_t)get_u32(p + 8);
  rec->count = (int32_t)get_u32(p + 12);
  node_count = (int32_t)get_u32(p + 16);
  rec->t_us = (int64_t)get_u64(p + 20);
  rec->started_us = (int64_t)get_u64(p + 28);
  rec->duration_us = (int64_t)get_u64(p + 36);
  memcpy(uuid, p + 44, 16);
  memcpy(rec->error_id, p + 60, 16);
  p += 76;
  for (i = 0; i < 5; i++) {
    if (end - p < 4)
      return -1;
    len[i] = get_u32(p);
    p += 4;
    if (len[i] == NO_STRING) {
      str[i] = NULL;
      continue;
    }
    if ((size_t)(end - p) < len[i])
      return -1;
    str[i] = (const char *)p;
    p += len[i];
  }
  if (format2) {
    if (end - p < 5)
      return -1;
    rec->output_is_input = p[0] & 1;
    refs_len = get_u32(p + 1);
    refs_text = (const char *)p + 5;
    if (refs_len != NO_STRING && (size_t)(end - p - 5) < refs_len)
      return -1;
  }
  if (rec->kind >= FC_EVENT_KIND_COUNT || node_count < 0 || node_count > NODE_COUNT_MAX ||
      str[0] == NULL || (rec->node >= 0 && (rec->node >= node_count || str[1] == NULL)))
    return -1;
  run = replay_run(s, uuid, node_count, str[0], len[0]);
  if (run == NULL)
    return -1;
  if (rec->node >= 0 && run->node_ids[rec->node] == NULL) {
    char *id = fc__malloc(len[1] + 1), *type = fc__malloc((str[2] ? len[2] : 0) + 1);
    if (id == NULL || type == NULL) {
      fc__free(id);
      fc__free(type);
      return -1;
    }
    memcpy(id, str[1], len[1]);
    id[len[1]] = '\0';
    if (str[2] != NULL)
      memcpy(type, str[2], len[2]);
    type[str[2] ? len[2] : 0] = '\0';
    run->node_ids[rec->node] = id;
    run->node_types[rec->node] = type;
  }
  if (str[3] != NULL) {
    rec->err = fc__malloc(len[3] + 3);
    if (rec->err == NULL)
      return -1;
    memcpy(rec->err, str[3], len[3]);
    memset(rec->err + len[3], 0, 3); /* always three terminated strings */
  } else if (rec->kind == FC_EVENT_ERROR) {
    return -1;
  }
  if (str[4] != NULL) {
    json_error_t jerr;
    rec->payload = json_loadb(str[4], len[4], JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (rec->payload == NULL) {
      fc__free(rec->err);
      rec->err = NULL;
      return -1;
    }
  }
  if (refs_len != NO_STRING) {
    json_error_t jerr;
    rec->refs = json_loadb(refs_text, refs_len, 0, &jerr);
    if (rec->refs == NULL) {
      json_decref(rec->payload);
      rec->payload = NULL;
      fc__free(rec->err);
      rec->err = NULL;
      return -1;
    }
  }
  fc__hrun_incref(run);
  rec->run = run;
  return 0;
}

long fc__spool_read(fc__spool_t *s, fc__hrec_t *out, size_t max) {
  size_t n = 0;
  if (s->rfd >= 0 && s->rstart != s->rpend)
    return 0; /* records handed out and not acked yet */
  while (s->rfd < 0) {
    int rc = replay_open(s);
    if (rc <= 0)
      return rc;
  }
  s->rstart = s->roff;
  s->nlosses = 0;
  while (n < max && s->nlosses < LOSSES_PER_READ && s->roff + 8 <= s->rlen) {
    const unsigned char *p = (const unsigned char *)s->rdata + s->roff;
    uint32_t len = get_u32(p), crc = get_u32(p + 4);
    int bad = len == 0 || len > RECORD_MAX_BYTES || s->roff + 8 + len > s->rlen ||
              crc32c(p + 8, len) != crc;
    if (!bad && p[8] == REC_LOSS)
      bad = parse_loss(p + 8, len, &s->losses[s->nlosses]) != 0;
    else if (!bad)
      bad = parse_record(s, p + 8, len, &out[n]) != 0;
    if (bad) {
      /* Torn or corrupt: the rest of this file cannot be trusted. */
      s->corrupt++;
      s->roff = s->rlen;
      break;
    }
    s->roff += 8 + len;
    if (p[8] == REC_LOSS)
      s->nlosses++;
    else
      n++;
  }
  if (s->roff + 8 > s->rlen && s->roff < s->rlen) {
    s->corrupt++; /* a few stray bytes at the end: a cut header */
    s->roff = s->rlen;
  }
  s->rpend = s->roff;
  if (n == 0 && s->nlosses == 0) {
    /* The file is done (or nothing valid was left in it). */
    s->bytes -= s->rlen < s->bytes ? s->rlen : s->bytes;
    replay_close(s, 1);
    return fc__spool_read(s, out, max);
  }
  return (long)(n + s->nlosses);
}

size_t fc__spool_losses(const fc__spool_t *s, const fc__spool_loss_t **out) {
  *out = s->losses;
  return s->nlosses;
}

void fc__spool_ack(fc__spool_t *s) {
  s->nlosses = 0;
  if (s->rfd < 0)
    return;
  s->rstart = s->rpend;
  if (s->rpend >= s->rlen) {
    s->bytes -= s->rlen < s->bytes ? s->rlen : s->bytes;
    replay_close(s, 1);
  }
}

void fc__spool_nack(fc__spool_t *s) {
  s->nlosses = 0;
  if (s->rfd < 0)
    return;
  s->roff = s->rpend = s->rstart;
}

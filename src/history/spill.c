/* The spool policy on the writer's side: batches to disk, and replayed back.
 *
 * Sealed batches go to the spool while their connection is down or memory
 * runs short; once the server is back they are read back as replay batches.
 * At close, losses the database has not recorded go to the spool too.
 */
#include <stdio.h>

#include "history/writer_int.h"

/* A part of a spool read is through (committed, or refused and counted):
 * once all parts are, the read is acknowledged (its file deleted when
 * finished). */
void fc__replay_part_done(fc_history_writer_t *w) {
  if (--w->replay_parts <= 0) {
    w->replay_parts = 0;
    fc__spool_ack(w->spool);
  }
}

/* Under the spool policy: the next records to replay as a batch, queued on
 * shard s, or NULL. What this process spooled during an outage becomes
 * replayable once its file is rotated, here, when the server is back. */
batch_t *fc__replay_batch(fc_history_writer_t *w, shard_t *s) {
  batch_t *b;
  const fc__spool_loss_t *losses;
  size_t nlosses;
  long n, i;
  fc__spill_sync(w); /* what it buffered becomes replayable too */
  fc__spool_rotate(w->spool);
  n = fc__spool_read(w->spool, w->replay_buf, w->cfg.batch_size);
  w->replay_idle = n <= 0;
  if (n <= 0)
    return NULL;
  nlosses = fc__spool_losses(w->spool, &losses);
  n -= (long)nlosses; /* the records */
  b = fc__batch_new();
  if (b != NULL && nlosses > 0) {
    /* Loss reports a writer spooled at its close: recorded now, under
     * their own loss_ids (and writer, pid), so a replay counts once. */
    size_t cap = nlosses * LOSS_ROW_MAX + 200;
    b->spooled_losses_sql = fc__malloc(cap);
    if (b->spooled_losses_sql == NULL) {
      fc__batch_free(b);
      b = NULL;
    } else {
      fc__losses_render_sql(losses, nlosses, b->spooled_losses_sql, cap);
    }
  }
  for (i = 0; i < n; i++)
    if (b == NULL || fc__batch_add(b, &w->replay_buf[i]) < 0)
      break;
  if (i < n || b == NULL) {
    /* Out of memory: try again later. */
    for (; i < n; i++)
      fc__hrec_clear(&w->replay_buf[i]);
    fc__batch_free(b);
    fc__spool_nack(w->spool);
    return NULL;
  }
  b->safe = 1;
  b->replay = 1;
  b->foreign = !fc__spool_read_own(w->spool);
  w->replay_parts = 1;
  s->sealed_head = s->sealed_tail = b;
  return b;
}

/* Writes and fsyncs what the spool buffers: its records leave custody as
 * spooled, or as dropped (spool_full) when the disk fails them (full, an
 * I/O error). */
int fc__spill_sync(fc_history_writer_t *w) {
  uint64_t lost[FC_REC_KIND_COUNT] = {0, 0, 0}, nlost = 0;
  int rc, k;
  if (w->unsynced_n == 0)
    return 0;
  rc = fc__spool_sync(w->spool, lost);
  if (rc != 0) {
    char msg[128];
    snprintf(msg, sizeof msg, "cannot write the spool: %s", uv_strerror(rc));
    fc__writer_set_error(w, msg);
  }
  uv_mutex_lock(&w->mu);
  for (k = 0; k < FC_REC_KIND_COUNT; k++)
    if (lost[k] > 0) {
      fc__count_drop_locked(w, k, FC_DROP_SPOOL_FULL, lost[k]);
      nlost += lost[k];
    }
  w->stats.spooled += w->unsynced_n - nlost;
  w->stats.spool_bytes = fc__spool_bytes(w->spool);
  fc__leave_custody_locked(w, w->unsynced_n);
  uv_mutex_unlock(&w->mu);
  memset(w->unsynced, 0, sizeof w->unsynced);
  w->unsynced_n = 0;
  return rc;
}

/* Moves a batch's records to the spool's buffer (they stay in custody
 * until fc__spill_sync); what the spool cannot take is dropped and counted
 * (spool_full). */
int fc__spill_batch(fc_history_writer_t *w, batch_t *b) {
  size_t i;
  int rc = 0, e, h;
  uint64_t failed[FC_REC_KIND_COUNT] = {0, 0, 0}, nfailed;
  for (i = 0; i < b->nrows; i++) {
    row_t *r = &b->rows[i];
    int k = fc__hrec_kind(fc__row_rec(r));
    for (h = 0; h < 2; h++) {
      if (!(h == 0 ? r->has_start : r->has_end))
        continue;
      if ((e = fc__spool_append(w->spool, h == 0 ? &r->start : &r->end)) != 0) {
        failed[k]++;
        rc = e;
      } else {
        w->unsynced[k]++;
        w->unsynced_n++;
      }
    }
    if (fc__spool_buffered(w->spool) >= SPOOL_BUFFER_MAX)
      fc__spill_sync(w);
  }
  nfailed = failed[0] + failed[1] + failed[2];
  if (nfailed > 0)
    fc__writer_set_error(w,
                         rc == UV_ENOSPC ? "spool is at its byte cap" : "cannot write the spool");
  uv_mutex_lock(&w->mu);
  for (i = 0; i < FC_REC_KIND_COUNT; i++)
    if (failed[i] > 0)
      fc__count_drop_locked(w, (int)i, FC_DROP_SPOOL_FULL, failed[i]);
  if (nfailed > 0)
    fc__leave_custody_locked(w, nfailed);
  if (!b->replay) /* the records are in the spool's buffer now, or dropped */
    fc__leave_bytes_locked(w, b->nbytes);
  uv_mutex_unlock(&w->mu);
  fc__batch_free(b);
  return rc;
}

/* Under the spool policy, sealed batches go to disk while their
 * connection is down or memory runs short. Returns 1 when memory is short
 * (what was spooled should be synced at once, to make room). */
int fc__spill_if_needed(fc_history_writer_t *w) {
  int i, mem_short = 0;
  uint64_t custody, bytes;
  if (w->spool == NULL)
    return 0;
  uv_mutex_lock(&w->mu);
  custody = w->custody - w->unsynced_n; /* those are on their way to disk */
  bytes = w->custody_bytes;
  uv_mutex_unlock(&w->mu);
  /* Short of memory: past half the record capacity or half the byte
   * budget. */
#define SHORT() (custody > w->cfg.queue_capacity / 2 || bytes > w->cfg.max_bytes / 2)
  mem_short = SHORT();
  for (i = 0; i < w->nshards; i++) {
    shard_t *s = &w->shards[i];
    /* Down: the server failed us (a first connection attempt in progress,
     * for up to a second, is not an outage). */
    int down = s->inflight == NULL && fc__pgconn_down(&s->conn, 1000);
    if (!down && !SHORT())
      continue;
    if (down)
      fc__shard_seal(s);
    while (s->sealed_head != NULL && !s->sealed_head->replay) {
      batch_t *b = s->sealed_head;
      s->sealed_head = b->next;
      if (s->sealed_head == NULL)
        s->sealed_tail = NULL;
      custody -= b->nrecs;
      bytes -= b->nbytes < bytes ? b->nbytes : bytes;
      fc__spill_batch(w, b);
      if (!down && !SHORT())
        break;
    }
  }
#undef SHORT
  return mem_short;
}

void fc__spill_timer_cb(uv_timer_t *t) { fc__spill_sync(t->data); }

/* At close, under the spool policy: losses the database has not recorded
 * (the server is away, or time ran out) go to the spool, for the next
 * writer to record. A report already built goes as it is, under the same
 * loss_ids: it may have been committed without our knowing. */
void fc__spill_losses(fc_history_writer_t *w) {
  size_t i;
  int rc;
  if (w->spool == NULL || w->losses_inflight)
    return;
  fc__spill_sync(w); /* its drops are reported too */
  while (fc__losses_pending(w)) {
    if (!w->loss_report_ready)
      fc__losses_build(w);
    for (i = 0; i < w->loss_report_n; i++)
      if ((rc = fc__spool_append_loss(w->spool, &w->loss_report[i])) != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "cannot write a loss report to the spool: %s", uv_strerror(rc));
        fc__writer_set_error(w, msg);
        return;
      }
    fc__losses_recorded(w);
  }
}

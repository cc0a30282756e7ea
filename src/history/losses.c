/* Custody and loss accounting: records leaving the writer, and loss reports.
 *
 * A record leaves custody written, spooled or dropped; drops are counted by
 * kind and reason and recorded in flowcore_writer_losses by loss reports.
 */
#include <stdio.h>
#include <unistd.h>

#include "history/writer_int.h"

/* Records of this kind lost for this reason: what the loss reports are
 * made of. */
static uint64_t lost_locked(const fc_history_writer_t *w, int kind, int reason) {
  return w->stats.dropped[kind][reason] +
         (reason == FC_DROP_REJECTED ? w->replay_rejected[kind] : 0);
}

void fc__count_drop_locked(fc_history_writer_t *w, int kind, int reason, uint64_t n) {
  w->stats.dropped[kind][reason] += n;
  w->stats.dropped_total += n;
}

/* n records leave the writer's custody (written, spooled or dropped): room
 * for producers, progress for flushers. */
void fc__leave_custody_locked(fc_history_writer_t *w, uint64_t n) {
  w->custody -= n;
  w->done += n;
  w->stats.queue_depth = w->custody;
  uv_cond_broadcast(&w->space_cv);
  uv_cond_broadcast(&w->done_cv);
}

void fc__leave_bytes_locked(fc_history_writer_t *w, uint64_t bytes) {
  w->custody_bytes -= bytes < w->custody_bytes ? bytes : w->custody_bytes;
  w->stats.bytes_held = w->custody_bytes;
  uv_cond_broadcast(&w->space_cv);
}

/* Records of a batch leave custody: written or dropped(reason).
 * A replayed batch was never in custody: it is counted as replayed. */
void fc__batch_account(fc_history_writer_t *w, batch_t *b, int outcome, int reason) {
  size_t i, coalesced = 0;
  uint64_t per_kind[FC_REC_KIND_COUNT] = {0, 0, 0};
  for (i = 0; i < b->nrows; i++) {
    const row_t *r = &b->rows[i];
    int k = fc__hrec_kind(fc__row_rec(r));
    per_kind[k] += (uint64_t)(r->has_start + r->has_end);
    if (r->has_start && r->has_end)
      coalesced++;
  }
  uv_mutex_lock(&w->mu);
  if (outcome == OUT_WRITTEN) {
    if (b->replay)
      w->stats.replayed += b->nrecs;
    else
      w->stats.written += b->nrecs;
    w->stats.coalesced += coalesced;
    w->stats.batches++;
  } else if (b->replay) {
    for (i = 0; i < FC_REC_KIND_COUNT; i++) {
      w->replay_rejected[i] += per_kind[i];
      w->stats.replay_rejected += per_kind[i];
    }
  } else {
    for (i = 0; i < FC_REC_KIND_COUNT; i++)
      if (per_kind[i] > 0)
        fc__count_drop_locked(w, (int)i, reason, per_kind[i]);
  }
  if (!b->replay)
    fc__leave_custody_locked(w, b->nrecs);
  uv_mutex_unlock(&w->mu);
}

void fc__batch_free_held(fc_history_writer_t *w, batch_t *b) {
  if (!b->replay) {
    uv_mutex_lock(&w->mu);
    fc__leave_bytes_locked(w, b->nbytes);
    uv_mutex_unlock(&w->mu);
  }
  fc__batch_free(b);
}

void fc__batch_release(fc_history_writer_t *w, batch_t *b, int outcome, int reason) {
  fc__batch_account(w, b, outcome, reason);
  fc__batch_free_held(w, b);
}

void fc__writer_set_error(fc_history_writer_t *w, const char *msg) {
  uv_mutex_lock(&w->mu);
  snprintf(w->stats.last_error, sizeof w->stats.last_error, "%s", msg);
  uv_mutex_unlock(&w->mu);
}

/* Renders loss reports as one INSERT into flowcore_writer_losses. Only
 * numbers, UUIDs and fixed words go into the SQL text. ON CONFLICT on the
 * client-made loss_id makes a report sent twice count once. */
void fc__losses_render_sql(const fc__spool_loss_t *e, size_t n, char *buf, size_t cap) {
  size_t i, used;
  used = (size_t)snprintf(buf, cap,
                          "INSERT INTO flowcore_writer_losses (loss_id, writer, pid, kind, "
                          "reason, count, recorded_at) VALUES ");
  for (i = 0; i < n; i++) {
    char lid[FC_UUID_STRING_LENGTH], wid[FC_UUID_STRING_LENGTH];
    fc_uuid_format(e[i].loss_id, lid);
    fc_uuid_format(e[i].writer, wid);
    used += (size_t)snprintf(buf + used, cap - used,
                             "%s('%s', '%s', %d, '%s', '%s', %llu, to_timestamp(%lld / 1e6))",
                             i > 0 ? ", " : "", lid, wid, (int)e[i].pid,
                             fc_record_kind_name((fc_record_kind_t)e[i].kind),
                             fc_drop_reason_name((fc_drop_reason_t)e[i].reason),
                             (unsigned long long)e[i].count, (long long)e[i].recorded_us);
  }
  snprintf(buf + used, cap - used, " ON CONFLICT (loss_id) DO NOTHING");
}

/* Builds the report of what was dropped and not yet recorded, each count
 * with its own new loss_id. It is kept, unchanged, until it is recorded
 * (committed, or at close handed to the spool). */
void fc__losses_build(fc_history_writer_t *w) {
  int64_t now = fc__wall_us();
  int k, r;
  uv_mutex_lock(&w->mu);
  for (k = 0; k < FC_REC_KIND_COUNT; k++)
    for (r = 0; r < FC_DROP_REASON_COUNT; r++)
      w->losses_sending[k][r] = lost_locked(w, k, r);
  uv_mutex_unlock(&w->mu);
  w->loss_report_n = 0;
  for (k = 0; k < FC_REC_KIND_COUNT; k++)
    for (r = 0; r < FC_DROP_REASON_COUNT; r++) {
      fc__spool_loss_t *e = &w->loss_report[w->loss_report_n];
      uint64_t n = w->losses_sending[k][r] - w->losses_recorded[k][r];
      if (n == 0 || fc_uuid7(e->loss_id) != 0)
        continue;
      memcpy(e->writer, w->writer_id, 16);
      e->pid = (int32_t)getpid();
      e->kind = (uint8_t)k;
      e->reason = (uint8_t)r;
      e->count = n;
      e->recorded_us = now;
      w->loss_report_n++;
    }
  w->loss_report_ready = 1;
}

void fc__losses_recorded(fc_history_writer_t *w) {
  int k, r;
  for (k = 0; k < FC_REC_KIND_COUNT; k++)
    for (r = 0; r < FC_DROP_REASON_COUNT; r++)
      w->losses_recorded[k][r] = w->losses_sending[k][r];
  w->loss_report_ready = 0;
}

/* Attaches the loss-accounting insert to the batch if there is news. The
 * report is resent unchanged until a COMMIT including it is reported: a
 * report whose acknowledgement was lost cannot count twice. */
void fc__losses_attach(fc_history_writer_t *w, batch_t *b) {
  if (w->losses_inflight)
    return;
  if (!w->loss_report_ready) {
    fc__losses_build(w);
    if (w->loss_report_n == 0) {
      fc__losses_recorded(w);
      return;
    }
    fc__losses_render_sql(w->loss_report, w->loss_report_n, w->loss_sql, sizeof w->loss_sql);
  }
  b->with_losses = 1;
  w->losses_inflight = 1;
}

void fc__losses_done(fc_history_writer_t *w, batch_t *b, int ok) {
  if (!b->with_losses)
    return;
  b->with_losses = 0;
  w->losses_inflight = 0;
  if (ok)
    fc__losses_recorded(w);
  /* else the same report goes with a later batch */
}

int fc__losses_pending(fc_history_writer_t *w) {
  int k, r, any = 0;
  uv_mutex_lock(&w->mu);
  for (k = 0; k < FC_REC_KIND_COUNT; k++)
    for (r = 0; r < FC_DROP_REASON_COUNT; r++)
      if (lost_locked(w, k, r) != w->losses_recorded[k][r])
        any = 1;
  uv_mutex_unlock(&w->mu);
  return any;
}

/* The history writer: its thread, the intake, the public API and shutdown.
 *
 * Why a thread of its own: serializing payloads, encoding COPY data and
 * parsing libpq results cost CPU; on the engine's loop they would show up
 * as node latency. The producer side is a block handoff under a mutex held
 * for a few pointer writes (never across I/O).
 *
 * Records are sharded over the connections by (workflow, node), so every
 * record of one node attempt goes through one connection, in order, one
 * transaction at a time: a start is always committed before its end.
 * writer_int.h has the state and the map of the other files.
 */
#include <stdio.h>
#include <unistd.h>

#include "history/writer_int.h"

static shard_t *shard_for(fc_history_writer_t *w, const fc__hrec_t *rec) {
  uint64_t h;
  const uint8_t *u = rec->run->uuid;
  if (w->nshards == 1)
    return &w->shards[0];
  memcpy(&h, u + 8, 8); /* random bits of the UUIDv7 */
  if (rec->node >= 0)
    h ^= ((uint64_t)(uint32_t)rec->node + 1) * 0x9E3779B97F4A7C15ULL;
  h ^= h >> 31;
  return &w->shards[h % (uint64_t)w->nshards];
}

static void take_block(fc_history_writer_t *w, fc__hblock_t *blk, uint64_t now) {
  size_t i;
  int merged;
  for (i = 0; i < blk->n; i++) {
    fc__hrec_t *rec = &blk->recs[i];
    shard_t *s = shard_for(w, rec);
    if (s->building == NULL) {
      s->building = fc__batch_new();
      if (s->building == NULL)
        goto oom;
      s->building->first_ns = now;
    }
    fc__partitions_note(w, rec);
    merged = fc__batch_add(s->building, rec);
    if (merged < 0)
      goto oom;
    s->building->nbytes += rec->bytes;
    /* A full batch is sealed after a record that completes a row (an end
     * merged into its start, an error), not right after a start: the end
     * that usually follows at once then coalesces into the same row instead
     * of needing an upsert in the next batch. Starts alone cannot grow a
     * batch past twice its size. */
    if ((s->building->nrows >= w->cfg.batch_size &&
         (merged == 1 ||
          (rec->kind != FC_EVENT_NODE_START && rec->kind != FC_EVENT_WORKFLOW_START))) ||
        s->building->nrows >= 2 * w->cfg.batch_size)
      fc__shard_seal(s);
    continue;
  oom:
    /* Cannot hold it: count it as rejected, never silently. */
    uv_mutex_lock(&w->mu);
    fc__count_drop_locked(w, fc__hrec_kind(rec), FC_DROP_REJECTED, 1);
    fc__leave_custody_locked(w, 1);
    fc__leave_bytes_locked(w, rec->bytes);
    uv_mutex_unlock(&w->mu);
    fc__hrec_clear(rec);
  }
  fc__free(blk);
}

static void close_check_cb(uv_timer_t *t);

/* Rows per slice of work_cb: about a tenth of a millisecond of encoding or
 * releasing, so a connection waiting for data is served soon. */
#define WORK_ROWS 256

/* Releases up to `max` more rows' records of b; 1 when b is gone. */
static int trash_some(fc_history_writer_t *w, batch_t *b, size_t max) {
  if (!fc__batch_free_records(b, max))
    return 0;
  fc__batch_free_held(w, b); /* rows cleared: the buffers and the shell */
  return 1;
}

/* One slice of the work the loop does between its I/O: first the records
 * of written batches, then the next batch of a shard whose connection is
 * busy, so that it is ready when that connection is. */
static void work_cb(uv_idle_t *h) {
  fc_history_writer_t *w = h->data;
  int i;
  if (w->trash != NULL) {
    batch_t *b = w->trash;
    w->trash = b->next;
    b->next = NULL;
    if (!trash_some(w, b, WORK_ROWS)) {
      b->next = w->trash;
      w->trash = b;
    }
    return;
  }
  for (i = 0; i < w->nshards; i++) {
    shard_t *s = &w->shards[i];
    batch_t *b = s->sealed_head;
    if (s->inflight != NULL && b != NULL && !(b->enc_done && b->enc_safe == b->safe)) {
      (void)fc__batch_encode_some(w, b, WORK_ROWS);
      return;
    }
  }
  uv_idle_stop(h);
}

void fc__writer_work(fc_history_writer_t *w) {
  if (!w->stopped_work)
    uv_idle_start(&w->work, work_cb);
}

static void process(fc_history_writer_t *w) {
  fc__hblock_t *blk;
  uint64_t now = fc__mono_ns();
  int closing, flushing, i;
  uv_mutex_lock(&w->mu);
  blk = w->head;
  w->head = w->tail = NULL;
  closing = w->closing;
  flushing = w->flush_target > w->done;
  uv_mutex_unlock(&w->mu);
  while (blk != NULL) {
    fc__hblock_t *next = blk->next;
    take_block(w, blk, now);
    blk = next;
  }
  for (i = 0; i < w->nshards; i++) {
    shard_t *s = &w->shards[i];
    if (s->building != NULL &&
        (closing || flushing ||
         now - s->building->first_ns >= w->cfg.flush_interval_ms * 1000000ULL))
      fc__shard_seal(s);
  }
  if (fc__spill_if_needed(w) || closing || flushing)
    fc__spill_sync(w);
  for (i = 0; i < w->nshards; i++)
    fc__shard_pump(&w->shards[i]);
  if (closing && !w->close_started) {
    /* From now on the tick checks every 10 ms whether all is written, and
     * enforces the deadline. */
    w->close_started = 1;
    uv_timer_stop(&w->tick);
    uv_timer_start(&w->tick, close_check_cb, 0, 10);
  }
}

static void wake_cb(uv_async_t *a) { process(a->data); }

/* Copies what lives on this thread into the shared stats (under mu): the
 * connections' counters and their newest error. */
static void sync_conn_stats_locked(fc_history_writer_t *w) {
  int i;
  w->stats.reconnects = 0;
  w->stats.connected = 0;
  for (i = 0; i < w->nshards; i++) {
    shard_t *s = &w->shards[i];
    w->stats.reconnects += s->conn.reconnects;
    w->stats.connected += fc__pgconn_ready(&s->conn) || s->inflight != NULL;
    if (s->conn.error_seq != s->error_seq_seen) {
      s->error_seq_seen = s->conn.error_seq;
      snprintf(w->stats.last_error, sizeof w->stats.last_error, "%s", s->conn.last_error);
    }
  }
  /* Every record written, nothing lost or spooled, every connection up: an
   * earlier (transient) error is over and no longer reported. */
  if (w->custody == 0 && w->stats.connected == w->nshards && w->stats.dropped_total == 0 &&
      (w->spool == NULL || fc__spool_bytes(w->spool) == 0))
    w->stats.last_error[0] = '\0';
}

static void tick_cb(uv_timer_t *t) {
  fc_history_writer_t *w = t->data;
  process(w);
  /* Stats that live on this thread. */
  uv_mutex_lock(&w->mu);
  if (w->spool != NULL) {
    w->stats.spool_bytes = fc__spool_bytes(w->spool);
    w->stats.spool_corrupt = fc__spool_corrupt(w->spool);
  }
  sync_conn_stats_locked(w);
  uv_mutex_unlock(&w->mu);
}

static void conn_closed(fc__pgconn_t *c, void *data) {
  (void)c;
  (void)data;
}

/* Gives up on a batch at the deadline: a replayed one stays in the spool
 * for later; under the spool policy the others are spooled (replaying them
 * is harmless even if their transaction did commit); else dropped. */
static void abandon(fc_history_writer_t *w, batch_t *b, int reason) {
  fc__losses_done(w, b, 0);
  if (b->replay) {
    fc__spool_nack(w->spool); /* all of the read comes again */
    w->replay_parts = 0;
    fc__batch_free(b);
  } else if (w->spool != NULL) {
    fc__spill_batch(w, b);
  } else {
    fc__batch_release(w, b, OUT_DROPPED, reason);
  }
}

static void drop_everything(fc_history_writer_t *w, int reason) {
  int i;
  for (i = 0; i < w->nshards; i++) {
    shard_t *s = &w->shards[i];
    fc__shard_seal(s);
    while (s->sealed_head != NULL) {
      batch_t *b = s->sealed_head;
      s->sealed_head = b->next;
      abandon(w, b, reason);
    }
    s->sealed_tail = NULL;
    if (s->inflight != NULL) {
      /* Its outcome is unknown: closing the connection makes the server
       * abort the transaction only if it has not received the COMMIT yet
       * (a stalled backend may commit it later). Counted apart. */
      batch_t *b = s->inflight;
      s->inflight = NULL;
      abandon(w, b, reason == FC_DROP_DEADLINE ? FC_DROP_UNCONFIRMED : reason);
    }
  }
  if (w->spool != NULL)
    fc__spill_sync(w);
}

static void writer_thread(void *arg) {
  fc_history_writer_t *w = arg;
  uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* Called on the writer thread when close was requested and everything in
 * custody is written or dropped (or the deadline passed). */
static void stop_loop(fc_history_writer_t *w) {
  int i;
  uv_timer_stop(&w->tick);
  for (i = 0; i < w->nshards; i++) {
    shard_t *s = &w->shards[i];
    /* batch_done would requeue an in-flight batch; it was dropped already. */
    s->inflight = NULL;
    fc__pgconn_close(&s->conn, conn_closed, w);
    uv_close((uv_handle_t *)&s->retry, NULL);
  }
  uv_close((uv_handle_t *)&w->tick, NULL);
  w->stopped_work = 1;
  uv_close((uv_handle_t *)&w->work, NULL);
  uv_close((uv_handle_t *)&w->wake, NULL);
  uv_close((uv_handle_t *)&w->spool_timer, NULL);
}

static char *pick_conninfo(const char *given) {
  const char *s = given;
  if (s == NULL)
    s = getenv("FLOWCORE_DB");
  if (s == NULL || s[0] == '\0')
    s = getenv("DATABASE_URL");
  if (s == NULL)
    s = ""; /* libpq's PG* environment defaults */
  return fc__strdup(s);
}

/* One unwind path: whatever was made so far is released at `err`. */
int fc_history_writer_new(fc_history_writer_t **out, const fc_history_config_t *cfg,
                          fc_error_t *err) {
  fc_history_writer_t *w;
  int i, rc, loop_up = 0;
  if (out == NULL)
    return fc__error_set(err, FC_EINVAL, "", "no output pointer");
  *out = NULL;
  w = fc__calloc(1, sizeof *w);
  if (w == NULL)
    return fc__error_set(err, FC_ENOMEM, "", "out of memory");
  if ((rc = fc__history_config_resolve(cfg, &w->cfg, err)) != 0)
    goto err;
  { /* the connections are made on the writer's thread, libpq opened here */
    const char *why;
    if ((rc = fc__pq_load(&why)) != 0) {
      rc = fc__error_set(err, rc, "", "%s", why);
      goto err;
    }
  }
  (void)fc_uuid7(w->writer_id);
  if (gethostname(w->host, sizeof w->host) != 0)
    w->host[0] = '\0';
  w->host[sizeof w->host - 1] = '\0';
  w->pid = (int32_t)getpid();
  w->part_wanted = 1; /* once connected */
  if (w->cfg.policy == FC_QUEUE_SPOOL) {
    rc = fc__spool_open(&w->spool, w->cfg.spool_dir, w->writer_id, w->cfg.spool_max_bytes, err);
    if (rc != 0)
      goto err;
    if ((w->replay_buf = fc__calloc(w->cfg.batch_size, sizeof *w->replay_buf)) == NULL)
      goto oom;
  }
  w->conninfo = pick_conninfo(w->cfg.conninfo);
  w->cfg.spool_dir = NULL; /* borrowed from the caller: not kept */
  w->cfg.conninfo = NULL;
  w->nshards = w->cfg.connections;
  w->shards = fc__calloc((size_t)w->nshards, sizeof *w->shards);
  if (w->conninfo == NULL || w->shards == NULL)
    goto oom;
  uv_mutex_init(&w->mu);
  uv_cond_init(&w->space_cv);
  uv_cond_init(&w->done_cv);
  uv_loop_init(&w->loop);
  loop_up = 1;
  uv_async_init(&w->loop, &w->wake, wake_cb);
  w->wake.data = w;
  uv_timer_init(&w->loop, &w->tick);
  w->tick.data = w;
  uv_idle_init(&w->loop, &w->work);
  w->work.data = w;
  uv_timer_start(&w->tick, tick_cb, w->cfg.flush_interval_ms, w->cfg.flush_interval_ms);
  uv_timer_init(&w->loop, &w->spool_timer);
  w->spool_timer.data = w;
  if (w->spool != NULL)
    uv_timer_start(&w->spool_timer, fc__spill_timer_cb, w->cfg.spool_fsync_ms,
                   w->cfg.spool_fsync_ms);
  for (i = 0; i < w->nshards; i++) {
    shard_t *s = &w->shards[i];
    s->w = w;
    s->id = i;
    uv_timer_init(&w->loop, &s->retry);
    s->retry.data = s;
    fc__pgconn_init(&s->conn, &w->loop, w->conninfo, fc__sql_setup, w->cfg.reconnect_min_ms,
                    w->cfg.reconnect_max_ms, fc__shard_conn_ready, s);
  }
  if ((rc = fc__thread_create(&w->thread, writer_thread, w)) != 0) {
    rc = fc__error_set(err, rc, "", "cannot start the writer thread: %s", uv_strerror(rc));
    goto err;
  }
  *out = w;
  return 0;

oom:
  rc = fc__error_set(err, FC_ENOMEM, "", "out of memory");
err:
  if (loop_up) { /* the thread never ran: close the loop's handles here */
    stop_loop(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    uv_mutex_destroy(&w->mu);
    uv_cond_destroy(&w->space_cv);
    uv_cond_destroy(&w->done_cv);
  }
  fc__spool_close(w->spool);
  fc__free(w->replay_buf);
  fc__free(w->shards);
  fc__free(w->conninfo);
  fc__free(w);
  return rc;
}

/* Drops a whole block at the door (counted; under mu, which it releases). */
static void drop_block_unlock(fc_history_writer_t *w, fc__hblock_t *b, int reason) {
  size_t i;
  for (i = 0; i < b->n; i++)
    fc__count_drop_locked(w, fc__hrec_kind(&b->recs[i]), reason, 1);
  w->stats.accepted += b->n;
  w->done += b->n;
  uv_cond_broadcast(&w->done_cv);
  uv_mutex_unlock(&w->mu);
  for (i = 0; i < b->n; i++)
    fc__hrec_clear(&b->recs[i]);
  fc__free(b);
}

/* Every record handed over counts as accepted, so that at any time
 * accepted == written + spooled + dropped_total + queue_depth. */
static int over_budget(const fc_history_writer_t *w, uint64_t n, uint64_t bytes) {
  return w->custody > 0 && (w->custody + n > w->cfg.queue_capacity ||
                            w->custody_bytes + bytes > w->cfg.max_bytes);
}

void fc__writer_submit(fc_history_writer_t *w, fc__hblock_t *b) {
  uint64_t n = b->n, bytes = 0;
  size_t i;
  for (i = 0; i < b->n; i++)
    bytes += b->recs[i].bytes;
  uv_mutex_lock(&w->mu);
  if (w->closing) {
    drop_block_unlock(w, b, FC_DROP_DEADLINE);
    return;
  }
  if (over_budget(w, n, bytes)) {
    if (w->cfg.policy == FC_QUEUE_DROP) {
      if (w->custody + n <= w->cfg.queue_capacity) /* the bytes, not the count */
        w->stats.dropped_byte_budget += n;
      drop_block_unlock(w, b, FC_DROP_QUEUE_FULL);
      return;
    }
    while (over_budget(w, n, bytes) && !w->closing)
      uv_cond_wait(&w->space_cv, &w->mu);
  }
  b->next = NULL;
  if (w->tail != NULL)
    w->tail->next = b;
  else
    w->head = b;
  w->tail = b;
  w->custody += n;
  w->custody_bytes += bytes;
  w->stats.bytes_held = w->custody_bytes;
  if (w->custody_bytes > w->stats.bytes_held_peak)
    w->stats.bytes_held_peak = w->custody_bytes;
  w->stats.accepted += n;
  w->stats.queue_depth = w->custody;
  if (w->custody > w->stats.queue_high_water)
    w->stats.queue_high_water = w->custody;
  uv_mutex_unlock(&w->mu);
  uv_async_send(&w->wake);
}

int fc_history_writer_flush(fc_history_writer_t *w, uint64_t timeout_ms) {
  uint64_t target, deadline = fc__mono_ns() + timeout_ms * 1000000ULL;
  int rc = 0;
  uv_mutex_lock(&w->mu);
  target = w->stats.accepted;
  if (target > w->flush_target)
    w->flush_target = target;
  uv_mutex_unlock(&w->mu);
  uv_async_send(&w->wake);
  uv_mutex_lock(&w->mu);
  while (w->done < target) {
    uint64_t now = fc__mono_ns();
    if (now >= deadline) {
      rc = FC_ETIMEDOUT;
      break;
    }
    (void)uv_cond_timedwait(&w->done_cv, &w->mu, deadline - now);
  }
  uv_mutex_unlock(&w->mu);
  return rc;
}

void fc_history_writer_stats(fc_history_writer_t *w, fc_history_stats_t *out) {
  uv_mutex_lock(&w->mu);
  *out = w->stats;
  uv_mutex_unlock(&w->mu);
}

/* Runs on the writer thread after close was requested: finish when all is
 * written, or at the deadline. */
static void sync_stats_final(fc_history_writer_t *w) {
  uv_mutex_lock(&w->mu);
  sync_conn_stats_locked(w);
  uv_mutex_unlock(&w->mu);
}

static void close_check_cb(uv_timer_t *t) {
  fc_history_writer_t *w = t->data;
  uint64_t custody;
  int i, busy = 0;
  process(w);
  uv_mutex_lock(&w->mu);
  custody = w->custody;
  uv_mutex_unlock(&w->mu);
  for (i = 0; i < w->nshards; i++)
    busy |= w->shards[i].inflight != NULL;
  busy |= w->part_inflight;
  if (custody == 0 && !busy) {
    /* While the server is there and time is left: record the losses, and
     * replay what the spool holds (what cannot be replayed now stays on
     * disk for the next writer). */
    shard_t *s0 = &w->shards[0];
    int up = !fc__pgconn_down(&s0->conn, 1000);
    if (up && fc__mono_ns() < w->deadline_ns &&
        (fc__losses_pending(w) || (w->spool != NULL && !w->replay_idle))) {
      fc__shard_pump(s0);
      return;
    }
    fc__spill_losses(w);
    sync_stats_final(w);
    stop_loop(w);
  } else if (fc__mono_ns() >= w->deadline_ns) {
    drop_everything(w, FC_DROP_DEADLINE);
    fc__spill_losses(w);
    sync_stats_final(w);
    stop_loop(w);
  }
}

int fc_history_writer_close(fc_history_writer_t *w, fc_history_stats_t *report) {
  fc_history_stats_t st;
  int i;
  if (w == NULL)
    return FC_EINVAL;
  uv_mutex_lock(&w->mu);
  w->closing = 1;
  w->deadline_ns = fc__mono_ns() + w->cfg.shutdown_deadline_ms * 1000000ULL;
  uv_cond_broadcast(&w->space_cv);
  uv_mutex_unlock(&w->mu);
  /* The writer's thread sees `closing` and switches to closing mode. */
  uv_async_send(&w->wake);
  uv_thread_join(&w->thread);
  uv_run(&w->loop, UV_RUN_DEFAULT); /* close callbacks left, if any */
  uv_loop_close(&w->loop);
  for (i = 0; i < w->nshards; i++)
    fc__batch_free(w->shards[i].building); /* empty: sealed at close */
  while (w->trash != NULL) {                /* written batches not yet released */
    batch_t *b = w->trash;
    w->trash = b->next;
    fc__batch_free_held(w, b);
  }
  st = w->stats;                           /* the thread is gone: no lock needed */
  st.queue_depth = 0;
  st.connected = 0;
  st.bytes_held = 0;
  if (w->spool != NULL) {
    fc__spool_rotate(w->spool); /* a file left empty goes */
    st.spool_bytes = fc__spool_bytes(w->spool);
    st.spool_corrupt = fc__spool_corrupt(w->spool);
    fc__spool_close(w->spool); /* nothing left to sync: done on the thread */
  }
  if (report != NULL)
    *report = st;
  fc__free(w->replay_buf);
  uv_mutex_destroy(&w->mu);
  uv_cond_destroy(&w->space_cv);
  uv_cond_destroy(&w->done_cv);
  fc__free(w->shards);
  fc__free(w->conninfo);
  fc__free(w);
  {
    uint64_t deadline_drops = 0;
    for (i = 0; i < FC_REC_KIND_COUNT; i++)
      deadline_drops += st.dropped[i][FC_DROP_DEADLINE] + st.dropped[i][FC_DROP_UNCONFIRMED];
    if (deadline_drops > 0)
      return FC_ETIMEDOUT;
    return st.dropped_total > 0 ? FC_ELOST : 0;
  }
}

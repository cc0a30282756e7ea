/* Sending: one transaction per batch, and retry, split or redo on failure.
 *
 * Each shard sends its sealed batches in order on its own connection; a
 * batch refused for its data is split until the bad record is alone.
 */
#include "history/writer_int.h"

/* Splits a batch rejected for its data into two halves (front of the
 * queue), so one bad record cannot block the records around it. */
static int split_batch(shard_t *s, batch_t *b) {
  batch_t *h1 = fc__batch_new(), *h2 = fc__batch_new();
  size_t i, half = b->nrows / 2;
  if (h1 == NULL || h2 == NULL) {
    fc__batch_free(h1);
    fc__batch_free(h2);
    return FC_ENOMEM;
  }
  for (i = 0; i < b->nrows; i++) {
    batch_t *dst = i < half ? h1 : h2;
    if (fc__grow((void **)&dst->rows, &dst->cap, dst->nrows + 1, sizeof *dst->rows) != 0) {
      /* leave b intact: give back what was moved */
      fc__batch_free(h1);
      fc__batch_free(h2);
      return FC_ENOMEM;
    }
    dst->rows[dst->nrows++] = b->rows[i];
    dst->nrecs += (size_t)(b->rows[i].has_start + b->rows[i].has_end);
  }
  h1->safe = h2->safe = 1;
  h1->replay = h2->replay = b->replay;
  h1->foreign = h2->foreign = b->foreign;
  h1->spooled_losses_sql = b->spooled_losses_sql; /* goes with the first half */
  b->spooled_losses_sql = NULL;
  h2->next = s->sealed_head;
  h1->next = h2;
  s->sealed_head = h1;
  if (s->sealed_tail == NULL)
    s->sealed_tail = h2;
  b->nrows = 0; /* the rows moved; free only the shell */
  b->nrecs = 0;
  fc__batch_free(b);
  return 0;
}

static int sqlstate_is_data_error(const char *st) {
  /* 21: cardinality (a key twice in one upsert); 22: data exception; 23:
   * integrity (23505 is handled apart); 54: program limit exceeded (e.g.
   * a row too large). */
  return st[0] != '\0' && ((st[0] == '2' && (st[1] == '1' || st[1] == '2' || st[1] == '3')) ||
                           (st[0] == '5' && st[1] == '4'));
}

static void retry_cb(uv_timer_t *t) {
  shard_t *s = t->data;
  s->retry_wait = 0;
  fc__shard_pump(s);
}

/* A replayed batch of one row (or none) the server refuses for its data:
 * the row is counted as rejected; loss reports read with it go again on
 * their own. */
static void replay_rejected(fc_history_writer_t *w, shard_t *s, batch_t *b) {
  batch_t *lb = b->nrows > 0 && b->spooled_losses_sql != NULL ? fc__batch_new() : NULL;
  if (lb != NULL) {
    lb->spooled_losses_sql = b->spooled_losses_sql;
    b->spooled_losses_sql = NULL;
    lb->replay = lb->safe = 1;
    lb->next = s->sealed_head;
    s->sealed_head = lb;
    if (s->sealed_tail == NULL)
      s->sealed_tail = lb;
  } else {
    fc__replay_part_done(w);
  }
  fc__batch_release(w, b, OUT_DROPPED, FC_DROP_REJECTED);
}

static void batch_done(fc__pgconn_t *c, int ok, const char *sqlstate, const char *msg, void *data) {
  shard_t *s = data;
  fc_history_writer_t *w = s->w;
  batch_t *b = s->inflight;
  (void)c;
  if (b == NULL)
    return; /* dropped at the deadline; the connection is closing */
  s->inflight = NULL;
  fc__losses_done(w, b, ok);
  if (ok) {
    if (b->replay)
      fc__replay_part_done(w);
    /* Counted now (room for producers); its records are released between
     * the loop's I/O, after the next batch is on its way. */
    fc__batch_account(w, b, OUT_WRITTEN, 0);
    b->next = w->trash;
    w->trash = b;
    fc__writer_work(w);
    return; /* the connection's ready callback sends the next batch */
  }
  b->attempts++;
  fc__writer_set_error(w, msg);
  uv_mutex_lock(&w->mu);
  w->stats.retries++;
  uv_mutex_unlock(&w->mu);
  /* Put it back at the front, in replay mode. */
  b->safe = 1;
  b->next = s->sealed_head;
  s->sealed_head = b;
  if (s->sealed_tail == NULL)
    s->sealed_tail = b;
  if (strcmp(sqlstate, "23505") == 0 && b->attempts < 3) {
    /* a replay met rows already committed: redo through the upserts */
  } else if (sqlstate_is_data_error(sqlstate)) {
    s->sealed_head = b->next;
    if (s->sealed_head == NULL)
      s->sealed_tail = NULL;
    b->next = NULL;
    if (b->nrows > 1) {
      int replay = b->replay;
      if (split_batch(s, b) == 0) {
        w->replay_parts += replay; /* halves queued */
        b = NULL;
      }
    }
    if (b == NULL) {
      /* split */
    } else if (b->replay) {
      replay_rejected(w, s, b);
    } else {
      fc__batch_release(w, b, OUT_DROPPED, FC_DROP_REJECTED);
    }
  } else if (sqlstate[0] != '\0') {
    /* The server refused for another reason (schema missing, permissions,
     * resources): wait a little before trying again. */
    s->retry_wait = 1;
    uv_timer_start(&s->retry, retry_cb, w->cfg.reconnect_max_ms / 5 + 1, 0);
  }
  /* sqlstate "" means the connection went away: it reconnects by itself
   * and calls ready, which resends. */
  if (fc__pgconn_ready(&s->conn))
    fc__shard_pump(s);
}

void fc__shard_pump(shard_t *s) {
  fc_history_writer_t *w = s->w;
  batch_t *b;
  if (s->inflight != NULL || s->retry_wait || !fc__pgconn_ready(&s->conn))
    return;
  if (fc__partitions_pump(s))
    return;
  b = s->sealed_head;
  if (b == NULL && s->id == 0 && w->spool != NULL)
    b = fc__replay_batch(w, s);
  if (b == NULL) {
    /* Nothing queued; record losses on their own if there are any news. */
    if (s->id == 0 && !w->losses_inflight && fc__losses_pending(w)) {
      b = fc__batch_new();
      if (b == NULL)
        return;
      s->sealed_head = s->sealed_tail = b;
    } else {
      return;
    }
  }
  if (s->id == 0 && fc__losses_pending(w))
    fc__losses_attach(w, b);
  if (fc__batch_encode(w, b) != 0) {
    fc__writer_set_error(w, "out of memory encoding a batch");
    return; /* the tick retries */
  }
  if (b->nsteps == 0) { /* empty (e.g. a losses-only batch with no news) */
    s->sealed_head = b->next;
    if (s->sealed_head == NULL)
      s->sealed_tail = NULL;
    fc__losses_done(w, b, 0);
    fc__batch_free(b);
    return;
  }
  s->sealed_head = b->next;
  if (s->sealed_head == NULL)
    s->sealed_tail = NULL;
  b->next = NULL;
  s->inflight = b;
  if (s->sealed_head != NULL)
    fc__writer_work(w); /* encode the next one while this one is written */
  if (fc__pgconn_exec(&s->conn, b->steps, b->nsteps, batch_done, s) != 0) {
    s->inflight = NULL;
    b->next = s->sealed_head;
    s->sealed_head = b;
    if (s->sealed_tail == NULL)
      s->sealed_tail = b;
  }
}

void fc__shard_conn_ready(fc__pgconn_t *c, void *data) {
  shard_t *s = data;
  (void)c;
  fc__shard_pump(s);
}

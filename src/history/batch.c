/* Batches: records merged into rows by key, the row index, the COPY steps.
 *
 * A start and its end that meet in a batch become one row. New rows go
 * straight into node_executions with binary COPY (the fast path); ends whose
 * start was committed earlier, and every row of a batch that is replayed, go
 * through a temporary staging table and an upsert that never moves a
 * finished row back to `running`. A replay that meets an existing row on the
 * fast path fails with unique_violation and is redone at once through the
 * upsert path (send.c).
 */
#include "history/writer_int.h"

batch_t *fc__batch_new(void) {
  batch_t *b = fc__calloc(1, sizeof *b);
  if (b == NULL)
    return NULL;
  fc__buf_init(&b->copy_new);
  fc__buf_init(&b->copy_upd);
  fc__buf_init(&b->copy_wf);
  fc__buf_init(&b->copy_err);
  return b;
}

int fc__batch_free_records(batch_t *b, size_t max) {
  size_t end = b->nrows - b->freed_rows < max ? b->nrows : b->freed_rows + max;
  for (; b->freed_rows < end; b->freed_rows++) {
    row_t *r = &b->rows[b->freed_rows];
    if (r->has_start)
      fc__hrec_clear(&r->start);
    if (r->has_end)
      fc__hrec_clear(&r->end);
    r->has_start = r->has_end = 0;
  }
  return b->freed_rows == b->nrows;
}

void fc__batch_free(batch_t *b) {
  if (b == NULL)
    return;
  (void)fc__batch_free_records(b, SIZE_MAX);
  fc__free(b->rows);
  fc__free(b->index);
  fc__buf_free(&b->copy_new);
  fc__buf_free(&b->copy_upd);
  fc__buf_free(&b->copy_wf);
  fc__buf_free(&b->copy_err);
  fc__free(b->spooled_losses_sql);
  fc__free(b);
}

static uint64_t key_hash(const fc__hrun_t *run, int32_t node, int32_t attempt) {
  uint64_t h = (uint64_t)(uintptr_t)run * 0x9E3779B97F4A7C15ULL;
  h ^= ((uint64_t)(uint32_t)node + 1) * 0xC2B2AE3D27D4EB4FULL;
  h ^= ((uint64_t)(uint32_t)attempt + 7) * 0x165667B19E3779F9ULL;
  return h ^ (h >> 29);
}

static int row_matches(const row_t *r, int type, const fc__hrun_t *run, int32_t node,
                       int32_t attempt) {
  const fc__hrec_t *k = fc__row_rec(r);
  return r->type == type && k->run == run && k->node == node && k->attempt == attempt;
}

static int index_grow(batch_t *b) {
  size_t cap = b->index_cap ? b->index_cap * 2 : 256, i;
  uint32_t *idx = fc__calloc(cap, sizeof *idx);
  if (idx == NULL)
    return FC_ENOMEM;
  for (i = 0; i < b->nrows; i++) {
    const row_t *r = &b->rows[i];
    const fc__hrec_t *k;
    size_t j;
    if (r->type == ROW_ERR)
      continue;
    k = fc__row_rec(r);
    for (j = (size_t)key_hash(k->run, k->node, k->attempt) & (cap - 1); idx[j] != 0;
         j = (j + 1) & (cap - 1))
      ;
    idx[j] = (uint32_t)(i + 1);
  }
  fc__free(b->index);
  b->index = idx;
  b->index_cap = cap;
  return 0;
}

/* Finds the row for a key; *slot receives where to insert when absent. */
static row_t *index_find(batch_t *b, int type, const fc__hrun_t *run, int32_t node, int32_t attempt,
                         size_t *slot) {
  size_t mask = b->index_cap - 1, j;
  for (j = (size_t)key_hash(run, node, attempt) & mask; b->index[j] != 0; j = (j + 1) & mask) {
    row_t *r = &b->rows[b->index[j] - 1];
    if (row_matches(r, type, run, node, attempt))
      return r;
  }
  *slot = j;
  return NULL;
}

/* The references of compact storage (docs/history.md): a JSON string
 * holding their text (the handler's form, text = 1) or an object (read
 * back from a spool). */
static void put_refs(fc__buf_t *buf, json_t *refs, int text) {
  if (text)
    fc__copy_jsonb_text(buf, json_string_value(refs), json_string_length(refs));
  else
    fc__copy_jsonb(buf, refs, 0);
}

/* Adds a record to the batch, merging a start with its end. Takes the
 * record's contents (the caller's copy is left to be forgotten). Returns 1
 * when merged into an existing row, 0 when a row was added, <0 on ENOMEM. */
int fc__batch_add(batch_t *b, const fc__hrec_t *rec) {
  int type;
  int is_end;
  row_t *r = NULL;
  size_t slot = 0;
  switch (rec->kind) {
  case FC_EVENT_WORKFLOW_START:
  case FC_EVENT_WORKFLOW_END:
    type = ROW_WF;
    break;
  case FC_EVENT_ERROR:
    type = ROW_ERR;
    break;
  default:
    type = ROW_NODE;
  }
  is_end = rec->kind == FC_EVENT_WORKFLOW_END || rec->kind == FC_EVENT_NODE_END;
  if (type != ROW_ERR) {
    int32_t node = type == ROW_WF ? -1 : rec->node;
    int32_t attempt = type == ROW_WF ? 0 : rec->attempt;
    if ((b->nrows + 1) * 2 > b->index_cap && index_grow(b) != 0)
      return FC_ENOMEM;
    r = index_find(b, type, rec->run, node, attempt, &slot);
    if (r != NULL && is_end && r->has_start && !r->has_end) {
      r->end = *rec;
      r->has_end = 1;
      b->nrecs++;
      return 1;
    }
    if (r != NULL) {
      /* The same key twice in one batch (a duplicate record): keep the
       * batch's keys unique, as ON CONFLICT requires, by the later record
       * replacing the earlier one's half. */
      if (is_end) {
        if (r->has_end)
          fc__hrec_clear(&r->end);
        else
          b->nrecs++;
        r->end = *rec;
        r->has_end = 1;
      } else {
        if (r->has_start)
          fc__hrec_clear(&r->start);
        else
          b->nrecs++;
        r->start = *rec;
        r->has_start = 1;
      }
      return 1;
    }
  }
  if (fc__grow((void **)&b->rows, &b->cap, b->nrows + 1, sizeof *b->rows) != 0)
    return FC_ENOMEM;
  r = &b->rows[b->nrows];
  memset(r, 0, sizeof *r);
  r->type = (uint8_t)type;
  if (is_end) {
    r->end = *rec;
    r->has_end = 1;
  } else {
    r->start = *rec;
    r->has_start = 1;
  }
  b->nrows++;
  b->nrecs++;
  if (type != ROW_ERR)
    b->index[slot] = (uint32_t)b->nrows; /* position + 1 */
  return 0;
}

static const char *node_status_text(int s) { return fc_node_status_name((fc_node_status_t)s); }

static void put_ts_or_null(fc__buf_t *buf, int64_t us) {
  if (us != 0)
    fc__copy_timestamptz(buf, us);
  else
    fc__copy_null(buf);
}

static void encode_node(fc__buf_t *buf, const row_t *r, size_t max_payload) {
  const fc__hrec_t *k = fc__row_rec(r);
  const fc__hrun_t *run = k->run;
  fc__copy_row(buf, 12);
  fc__copy_uuid(buf, run->uuid);
  fc__copy_text(buf, run->node_ids[k->node]);
  fc__copy_int4(buf, k->attempt);
  fc__copy_text(buf, run->node_types[k->node]);
  fc__copy_text(buf, node_status_text(r->has_end ? r->end.status : FC_NODE_RUNNING));
  if (r->has_start)
    fc__copy_jsonb(buf, r->start.payload, max_payload);
  else
    fc__copy_null(buf);
  if (r->has_end && r->end.payload != NULL)
    fc__copy_jsonb(buf, r->end.payload, max_payload);
  else
    fc__copy_null(buf);
  put_ts_or_null(buf, r->has_start ? r->start.t_us : r->end.started_us);
  if (r->has_end) {
    fc__copy_timestamptz(buf, r->end.t_us);
    if (r->end.attempt > 0)
      fc__copy_float8(buf, (double)r->end.duration_us / 1000.0);
    else
      fc__copy_null(buf);
  } else {
    fc__copy_null(buf);
    fc__copy_null(buf);
  }
  /* Compact storage (docs/history.md): the references of the input, and
   * whether the output is the input itself. */
  if (r->has_start && r->start.refs != NULL)
    put_refs(buf, r->start.refs, r->start.refs_text);
  else
    fc__copy_null(buf);
  fc__copy_bool(buf, r->has_end && r->end.output_is_input);
}

/* host and pid: where the run happened (this process), or NULL and 0 for
 * rows replayed from another writer's spool file. */
static void encode_wf(fc__buf_t *buf, const row_t *r, size_t max_payload, const char *host,
                      int32_t pid) {
  const fc__hrec_t *k = fc__row_rec(r);
  const fc__hrun_t *run = k->run;
  int64_t started = r->has_start ? r->start.t_us : r->end.started_us;
  fc__copy_row(buf, 14);
  fc__copy_uuid(buf, run->uuid);
  fc__copy_text(buf, run->name);
  fc__copy_text(buf, fc_workflow_status_name(
                         (fc_workflow_status_t)(r->has_end ? r->end.status : FC_WORKFLOW_RUNNING)));
  if (r->has_start)
    fc__copy_jsonb(buf, r->start.payload, max_payload);
  else
    fc__copy_null(buf);
  if (r->has_end)
    fc__copy_jsonb(buf, r->end.payload, max_payload);
  else
    fc__copy_null(buf);
  fc__copy_timestamptz(buf, started);
  if (r->has_end)
    fc__copy_timestamptz(buf, r->end.t_us);
  else
    fc__copy_null(buf);
  fc__copy_int4(buf, run->node_count);
  fc__copy_int4(buf, r->has_end ? r->end.count : 0);
  if (r->has_end)
    fc__copy_float8(buf, (double)r->end.duration_us / 1000.0);
  else
    fc__copy_null(buf);
  fc__copy_timestamptz(buf, r->has_end ? r->end.t_us : r->start.t_us);
  fc__copy_text(buf, host);
  if (host != NULL)
    fc__copy_int4(buf, pid);
  else
    fc__copy_null(buf);
  if (r->has_end && r->end.refs != NULL) /* of the run's output */
    put_refs(buf, r->end.refs, r->end.refs_text);
  else
    fc__copy_null(buf);
}

static void encode_err(fc__buf_t *buf, const row_t *r) {
  const fc__hrec_t *e = &r->start;
  const fc__hrun_t *run = e->run;
  const char *type = e->err;
  const char *msg = type + strlen(type) + 1;
  const char *stack = msg + strlen(msg) + 1;
  fc__copy_row(buf, 10);
  fc__copy_uuid(buf, run->uuid);
  fc__copy_uuid(buf, e->error_id);
  if (e->node >= 0) {
    fc__copy_text(buf, run->node_ids[e->node]);
    fc__copy_text(buf, run->node_types[e->node]);
    fc__copy_int4(buf, e->attempt);
  } else {
    fc__copy_null(buf);
    fc__copy_null(buf);
    fc__copy_null(buf);
  }
  fc__copy_text(buf, type);
  fc__copy_text(buf, msg);
  fc__copy_text(buf, stack[0] != '\0' ? stack : NULL);
  fc__copy_text(buf, fc_severity_name((fc_severity_t)e->severity));
  fc__copy_timestamptz(buf, e->t_us);
}

/* Encodes rows [b->enc_rows, b->enc_rows + max) into the COPY buffers,
 * starting over when the batch was encoded for the other path (b->safe
 * changed after a failure). Returns 1 once every row is encoded. */
int fc__batch_encode_some(fc_history_writer_t *w, batch_t *b, size_t max) {
  size_t max_payload = w->cfg.max_payload_bytes, end;
  if (!b->enc_started || b->enc_safe != b->safe) {
    fc__buf_reset(&b->copy_new);
    fc__buf_reset(&b->copy_upd);
    fc__buf_reset(&b->copy_wf);
    fc__buf_reset(&b->copy_err);
    fc__copy_header(&b->copy_new);
    fc__copy_header(&b->copy_upd);
    fc__copy_header(&b->copy_wf);
    fc__copy_header(&b->copy_err);
    b->enc_rows = b->nnew = b->nupd = b->nwf = b->nerr = 0;
    b->enc_started = 1;
    b->enc_done = 0;
    b->enc_safe = b->safe;
  }
  end = b->nrows - b->enc_rows < max ? b->nrows : b->enc_rows + max;
  for (; b->enc_rows < end; b->enc_rows++) {
    const row_t *r = &b->rows[b->enc_rows];
    switch (r->type) {
    case ROW_NODE:
      /* An end without its start in this batch, of an attempt that ran:
       * its start was committed before; update it. */
      if (b->safe || (!r->has_start && r->end.attempt > 0)) {
        encode_node(&b->copy_upd, r, max_payload);
        b->nupd++;
      } else {
        encode_node(&b->copy_new, r, max_payload);
        b->nnew++;
      }
      break;
    case ROW_WF:
      encode_wf(&b->copy_wf, r, max_payload, b->foreign || w->host[0] == '\0' ? NULL : w->host,
                w->pid);
      b->nwf++;
      break;
    default:
      encode_err(&b->copy_err, r);
      b->nerr++;
    }
  }
  if (b->enc_rows < b->nrows)
    return 0;
  if (!b->enc_done) {
    fc__copy_trailer(&b->copy_new);
    fc__copy_trailer(&b->copy_upd);
    fc__copy_trailer(&b->copy_wf);
    fc__copy_trailer(&b->copy_err);
    b->enc_done = 1;
  }
  return 1;
}

/* Fills b->steps for one transaction, encoding what is not yet. Returns 0
 * or FC_ENOMEM. */
int fc__batch_encode(fc_history_writer_t *w, batch_t *b) {
  (void)fc__batch_encode_some(w, b, SIZE_MAX);
  if (b->copy_new.oom || b->copy_upd.oom || b->copy_wf.oom || b->copy_err.oom) {
    b->enc_started = 0; /* start over next time */
    return FC_ENOMEM;
  }
  b->nsteps = 0;
  b->upsert_sql[0] = '\0';
  if (b->nnew > 0) {
    b->steps[b->nsteps].sql = fc__sql_copy_nodes;
    b->steps[b->nsteps++].copy = &b->copy_new;
  }
  if (b->nupd > 0) {
    b->steps[b->nsteps].sql = fc__sql_copy_stage_nodes;
    b->steps[b->nsteps++].copy = &b->copy_upd;
    strcat(b->upsert_sql, fc__sql_upsert_nodes);
  }
  if (b->nwf > 0) {
    b->steps[b->nsteps].sql = fc__sql_copy_stage_wf;
    b->steps[b->nsteps++].copy = &b->copy_wf;
    strcat(b->upsert_sql, fc__sql_upsert_wf);
  }
  if (b->nerr > 0) {
    b->steps[b->nsteps].sql = fc__sql_copy_stage_err;
    b->steps[b->nsteps++].copy = &b->copy_err;
    strcat(b->upsert_sql, fc__sql_insert_err);
  }
  if (b->upsert_sql[0] != '\0') {
    b->steps[b->nsteps].sql = b->upsert_sql;
    b->steps[b->nsteps++].copy = NULL;
  }
  if (b->with_losses) {
    b->steps[b->nsteps].sql = w->loss_sql;
    b->steps[b->nsteps++].copy = NULL;
  }
  if (b->spooled_losses_sql != NULL) {
    b->steps[b->nsteps].sql = b->spooled_losses_sql;
    b->steps[b->nsteps++].copy = NULL;
  }
  return 0;
}

void fc__shard_seal(shard_t *s) {
  batch_t *b = s->building;
  if (b == NULL || b->nrows == 0)
    return;
  s->building = NULL;
  if (s->sealed_tail != NULL)
    s->sealed_tail->next = b;
  else
    s->sealed_head = b;
  s->sealed_tail = b;
}

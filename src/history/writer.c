/* The history writer: its own thread and libuv loop, a bounded queue fed by
 * database handlers, batches per connection, one transaction per batch.
 *
 * Why a thread of its own: serializing payloads, encoding COPY data and
 * parsing libpq results cost CPU; on the engine's loop they would show up
 * as node latency. The producer side is a block handoff under a mutex held
 * for a few pointer writes (never across I/O).
 *
 * Records are sharded over the connections by (workflow, node), so every
 * record of one node attempt goes through one connection, in order, one
 * transaction at a time: a start is always committed before its end.
 *
 * Rows: the start and end of one node attempt (or of one run) that meet in a
 * batch become one row. New rows go straight into node_executions with
 * binary COPY (the fast path); ends whose start was committed earlier, and
 * every row of a batch that is replayed, go through a temporary staging
 * table and an upsert that never moves a finished row back to `running`.
 * A replay that meets an existing row on the fast path fails with
 * unique_violation and is redone at once through the upsert path.
 */
#include <stdio.h>
#include <unistd.h>

#include "pg/conn.h"
#include "history/copy.h"
#include "history/record.h"
#include "history/spool.h"

/* One rendered row of a loss report is at most about 190 bytes. */
#define LOSS_ROW_MAX 224
/* The spool's buffer is written and fsync'd once it holds this much. */
#define SPOOL_BUFFER_MAX (1024 * 1024)

enum { ROW_NODE, ROW_WF, ROW_ERR };

typedef struct {
  uint8_t type;
  uint8_t has_start, has_end;
  fc__hrec_t start; /* the start record, or the only record (errors) */
  fc__hrec_t end;
} row_t;

typedef struct batch_s {
  struct batch_s *next;
  row_t *rows;
  size_t nrows, cap;
  uint32_t *index; /* open addressing: row index + 1 */
  size_t index_cap;
  size_t nrecs;
  int safe;      /* replay: every row through the upsert path */
  int replay;    /* read back from the spool: outside custody, acked there */
  int foreign;   /* replay of another writer's spool file: host/pid unknown */
  int attempts;
  int with_losses; /* carries the writer's loss-accounting insert */
  char *spooled_losses_sql; /* replay: loss reports read back from the spool */
  uint64_t first_ns;
  fc__buf_t copy_new, copy_upd, copy_wf, copy_err;
  char upsert_sql[4096];
  fc__pgstep_t steps[8];
  size_t nsteps;
} batch_t;

typedef struct {
  struct fc_history_writer_s *w;
  int id;
  fc__pgconn_t conn;
  batch_t *building;      /* accumulating rows */
  batch_t *sealed_head;   /* waiting to be sent, in order */
  batch_t *sealed_tail;
  batch_t *inflight;      /* sent, waiting for its COMMIT */
  uv_timer_t retry;       /* delay before resending after a server error */
  int retry_wait;
  uint64_t error_seq_seen; /* of conn.last_error, copied into the stats */
} shard_t;

struct fc_history_writer_s {
  fc_history_config_t cfg;
  char *conninfo;
  uv_thread_t thread;
  uv_loop_t loop;
  uv_async_t wake;
  uv_timer_t tick;
  shard_t *shards;
  int nshards;
  /* shared with producers and flushers, under mu */
  uv_mutex_t mu;
  uv_cond_t space_cv; /* producers waiting for capacity */
  uv_cond_t done_cv;  /* flushers and close waiting for progress */
  fc__hblock_t *head, *tail;
  fc_history_stats_t stats;
  uint64_t custody; /* records accepted and not yet written or dropped */
  uint64_t replay_rejected[FC_REC_KIND_COUNT]; /* stats.replay_rejected by kind */
  uint64_t done;    /* records accepted and since written or dropped */
  uint64_t flush_target;
  int closing;
  int stopped;
  uint64_t deadline_ns;
  /* loss accounting already recorded in the database */
  uint64_t losses_recorded[FC_REC_KIND_COUNT][FC_DROP_REASON_COUNT];
  uint64_t losses_sending[FC_REC_KIND_COUNT][FC_DROP_REASON_COUNT];
  int losses_inflight;
  int loss_report_ready;  /* loss_report built and not yet committed */
  fc__spool_loss_t loss_report[FC_REC_KIND_COUNT * FC_DROP_REASON_COUNT];
  size_t loss_report_n;
  char loss_sql[FC_REC_KIND_COUNT * FC_DROP_REASON_COUNT * LOSS_ROW_MAX + 200];
  int close_started;
  int replay_idle; /* the spool had nothing to replay at the last look */
  /* The batches the last spool read became (more after a split): the read
   * is acknowledged to the spool once every one of them is through. */
  int replay_parts;
  fc__spool_t *spool;       /* FC_QUEUE_SPOOL only */
  uv_timer_t spool_timer;   /* fsync interval */
  /* Records in the spool's buffer, not yet fsync'd: still in custody. */
  uint64_t unsynced[FC_REC_KIND_COUNT];
  uint64_t unsynced_n;
  fc__hrec_t *replay_buf;   /* batch_size records */
  uint8_t writer_id[16];
  /* Where the runs of this process happen: workflow_executions.host/pid. */
  char host[256];
  int32_t pid;
};

static const char *const kind_names[FC_REC_KIND_COUNT] = {"workflow", "node", "error"};
static const char *const reason_names[FC_DROP_REASON_COUNT] = {
    "queue_full", "deadline", "spool_full", "rejected", "unconfirmed"};

const char *fc_record_kind_name(fc_record_kind_t kind) {
  return (unsigned)kind < FC_REC_KIND_COUNT ? kind_names[kind] : "unknown";
}

const char *fc_drop_reason_name(fc_drop_reason_t reason) {
  return (unsigned)reason < FC_DROP_REASON_COUNT ? reason_names[reason] : "unknown";
}

/* ---- SQL ------------------------------------------------------------------ */

#define NODE_COLS                                                                         \
  "workflow_id, node_id, attempt, node_type, status, input_data, output_data, started_at, " \
  "completed_at, duration_ms"
#define WF_COLS                                                                           \
  "workflow_id, workflow_name, status, input_data, output_data, started_at, completed_at, " \
  "node_count, error_count, duration_ms, updated_at, host, pid"
#define ERR_COLS                                                                          \
  "workflow_id, error_id, node_id, node_type, attempt, error_type, error_message, "         \
  "stack_trace, severity, occurred_at"

static const char SETUP_SQL[] =
    "SET client_encoding = 'UTF8';"
    /* A backend blocked (on a lock, say) notices within a second that the
     * writer closed its connection, and frees its locks and slot. */
    "SET client_connection_check_interval = '1s';"
    "CREATE TEMP TABLE IF NOT EXISTS fc_stage_nodes (LIKE node_executions) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS fc_stage_wf (LIKE workflow_executions) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS fc_stage_err (LIKE execution_errors) ON COMMIT DELETE ROWS;";

static const char COPY_NODES_SQL[] = "COPY node_executions (" NODE_COLS ") FROM STDIN (FORMAT binary)";
static const char COPY_STAGE_NODES_SQL[] =
    "COPY fc_stage_nodes (" NODE_COLS ") FROM STDIN (FORMAT binary)";
static const char COPY_STAGE_WF_SQL[] = "COPY fc_stage_wf (" WF_COLS ") FROM STDIN (FORMAT binary)";
static const char COPY_STAGE_ERR_SQL[] =
    "COPY fc_stage_err (" ERR_COLS ") FROM STDIN (FORMAT binary)";

/* Ends fill what starts lack in a running row. A finished row keeps every
 * value it has (the history is append-only: migration 0005's trigger
 * refuses changes to finished rows); only what its start carries, if
 * missing, is filled in (a replay may bring a start after its end). The
 * WHERE makes a replay that meets a finished row with nothing to fill a
 * no-op, never an error. */
#define RUNNING_THEN(a, b) "CASE WHEN t.status = 'running' THEN " a " ELSE " b " END"
static const char UPSERT_NODES_SQL[] =
    "INSERT INTO node_executions AS t (" NODE_COLS ") SELECT " NODE_COLS " FROM fc_stage_nodes "
    "ON CONFLICT (workflow_id, node_id, attempt) DO UPDATE SET "
    "status = " RUNNING_THEN("EXCLUDED.status", "t.status") ", "
    "node_type = COALESCE(t.node_type, EXCLUDED.node_type), "
    "input_data = COALESCE(t.input_data, EXCLUDED.input_data), "
    "output_data = " RUNNING_THEN("COALESCE(EXCLUDED.output_data, t.output_data)",
                                  "t.output_data") ", "
    "started_at = COALESCE(t.started_at, EXCLUDED.started_at), "
    "completed_at = " RUNNING_THEN("COALESCE(EXCLUDED.completed_at, t.completed_at)",
                                   "t.completed_at") ", "
    "duration_ms = " RUNNING_THEN("COALESCE(EXCLUDED.duration_ms, t.duration_ms)",
                                  "t.duration_ms") " "
    "WHERE t.status = 'running' "
    "OR (t.input_data IS NULL AND EXCLUDED.input_data IS NOT NULL) "
    "OR (t.started_at IS NULL AND EXCLUDED.started_at IS NOT NULL) "
    "OR (t.node_type IS NULL AND EXCLUDED.node_type IS NOT NULL);";
static const char UPSERT_WF_SQL[] =
    "INSERT INTO workflow_executions AS t (" WF_COLS ") SELECT " WF_COLS " FROM fc_stage_wf "
    "ON CONFLICT (workflow_id) DO UPDATE SET "
    "status = " RUNNING_THEN("EXCLUDED.status", "t.status") ", "
    "input_data = COALESCE(t.input_data, EXCLUDED.input_data), "
    "output_data = " RUNNING_THEN("COALESCE(EXCLUDED.output_data, t.output_data)",
                                  "t.output_data") ", "
    "started_at = " RUNNING_THEN("LEAST(t.started_at, EXCLUDED.started_at)", "t.started_at") ", "
    "completed_at = " RUNNING_THEN("COALESCE(EXCLUDED.completed_at, t.completed_at)",
                                   "t.completed_at") ", "
    "node_count = " RUNNING_THEN("GREATEST(t.node_count, EXCLUDED.node_count)",
                                 "t.node_count") ", "
    "error_count = " RUNNING_THEN("GREATEST(t.error_count, EXCLUDED.error_count)",
                                  "t.error_count") ", "
    "duration_ms = " RUNNING_THEN("COALESCE(EXCLUDED.duration_ms, t.duration_ms)",
                                  "t.duration_ms") ", "
    "updated_at = " RUNNING_THEN("GREATEST(t.updated_at, EXCLUDED.updated_at)",
                                 "t.updated_at") ", "
    "host = COALESCE(t.host, EXCLUDED.host), "
    "pid = CASE WHEN t.host IS NULL THEN EXCLUDED.pid ELSE t.pid END "
    "WHERE t.status = 'running' "
    "OR (t.input_data IS NULL AND EXCLUDED.input_data IS NOT NULL) "
    "OR (t.host IS NULL AND EXCLUDED.host IS NOT NULL);";
static const char INSERT_ERR_SQL[] =
    "INSERT INTO execution_errors (" ERR_COLS ") SELECT " ERR_COLS " FROM fc_stage_err "
    "ON CONFLICT (workflow_id, error_id) DO NOTHING;";
_Static_assert(sizeof UPSERT_NODES_SQL + sizeof UPSERT_WF_SQL + sizeof INSERT_ERR_SQL <=
                   sizeof ((batch_t *)0)->upsert_sql,
               "batch_t.upsert_sql holds the three statements");

/* ---- configuration ------------------------------------------------------- */

void fc_history_config_init(fc_history_config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->batch_size = 2000;
  cfg->flush_interval_ms = 100;
  cfg->queue_capacity = 200000;
  cfg->policy = FC_QUEUE_BLOCK;
  cfg->spool_fsync_ms = 200;
  cfg->spool_max_bytes = (uint64_t)1 << 30;
  cfg->shutdown_deadline_ms = 10000;
  cfg->connections = 2;
  cfg->max_payload_bytes = 1024 * 1024;
  cfg->reconnect_min_ms = 100;
  cfg->reconnect_max_ms = 5000;
}

const char *fc_queue_policy_name(fc_queue_policy_t p) {
  switch (p) {
  case FC_QUEUE_BLOCK:
    return "block";
  case FC_QUEUE_DROP:
    return "drop";
  case FC_QUEUE_SPOOL:
    return "spool";
  }
  return "unknown";
}

int fc_queue_policy_parse(const char *name, fc_queue_policy_t *out) {
  if (name == NULL)
    return FC_EINVAL;
  if (strcmp(name, "block") == 0)
    *out = FC_QUEUE_BLOCK;
  else if (strcmp(name, "drop") == 0)
    *out = FC_QUEUE_DROP;
  else if (strcmp(name, "spool") == 0)
    *out = FC_QUEUE_SPOOL;
  else
    return FC_EINVAL;
  return 0;
}

/* ---- batches --------------------------------------------------------------- */

static batch_t *batch_new(void) {
  batch_t *b = fc__calloc(1, sizeof *b);
  if (b == NULL)
    return NULL;
  fc__buf_init(&b->copy_new);
  fc__buf_init(&b->copy_upd);
  fc__buf_init(&b->copy_wf);
  fc__buf_init(&b->copy_err);
  return b;
}

static void batch_free(batch_t *b) {
  size_t i;
  if (b == NULL)
    return;
  for (i = 0; i < b->nrows; i++) {
    if (b->rows[i].has_start)
      fc__hrec_clear(&b->rows[i].start);
    if (b->rows[i].has_end)
      fc__hrec_clear(&b->rows[i].end);
  }
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

static const fc__hrec_t *row_rec(const row_t *r) { return r->has_start ? &r->start : &r->end; }

static int row_matches(const row_t *r, int type, const fc__hrun_t *run, int32_t node,
                       int32_t attempt) {
  const fc__hrec_t *k = row_rec(r);
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
    k = row_rec(r);
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
static row_t *index_find(batch_t *b, int type, const fc__hrun_t *run, int32_t node,
                         int32_t attempt, size_t *slot) {
  size_t mask = b->index_cap - 1, j;
  for (j = (size_t)key_hash(run, node, attempt) & mask; b->index[j] != 0; j = (j + 1) & mask) {
    row_t *r = &b->rows[b->index[j] - 1];
    if (row_matches(r, type, run, node, attempt))
      return r;
  }
  *slot = j;
  return NULL;
}

/* Adds a record to the batch, merging a start with its end. Takes the
 * record's contents (the caller's copy is left to be forgotten). Returns 1
 * when merged into an existing row, 0 when a row was added, <0 on ENOMEM. */
static int batch_add(batch_t *b, const fc__hrec_t *rec) {
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

/* ---- encoding ------------------------------------------------------------------ */

static const char *node_status_text(int s) { return fc_node_status_name((fc_node_status_t)s); }

static void put_ts_or_null(fc__buf_t *buf, int64_t us) {
  if (us != 0)
    fc__copy_timestamptz(buf, us);
  else
    fc__copy_null(buf);
}

static void encode_node(fc__buf_t *buf, const row_t *r, size_t max_payload) {
  const fc__hrec_t *k = row_rec(r);
  const fc__hrun_t *run = k->run;
  fc__copy_row(buf, 10);
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
}

/* host and pid: where the run happened (this process), or NULL and 0 for
 * rows replayed from another writer's spool file. */
static void encode_wf(fc__buf_t *buf, const row_t *r, size_t max_payload, const char *host,
                      int32_t pid) {
  const fc__hrec_t *k = row_rec(r);
  const fc__hrun_t *run = k->run;
  int64_t started = r->has_start ? r->start.t_us : r->end.started_us;
  fc__copy_row(buf, 13);
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

/* Fills b->steps for one transaction. Returns 0 or FC_ENOMEM. */
static int batch_encode(fc_history_writer_t *w, batch_t *b) {
  size_t i, nnew = 0, nupd = 0, nwf = 0, nerr = 0;
  size_t max_payload = w->cfg.max_payload_bytes;
  fc__buf_reset(&b->copy_new);
  fc__buf_reset(&b->copy_upd);
  fc__buf_reset(&b->copy_wf);
  fc__buf_reset(&b->copy_err);
  fc__copy_header(&b->copy_new);
  fc__copy_header(&b->copy_upd);
  fc__copy_header(&b->copy_wf);
  fc__copy_header(&b->copy_err);
  for (i = 0; i < b->nrows; i++) {
    const row_t *r = &b->rows[i];
    switch (r->type) {
    case ROW_NODE:
      /* An end without its start in this batch, of an attempt that ran:
       * its start was committed before; update it. */
      if (b->safe || (!r->has_start && r->end.attempt > 0)) {
        encode_node(&b->copy_upd, r, max_payload);
        nupd++;
      } else {
        encode_node(&b->copy_new, r, max_payload);
        nnew++;
      }
      break;
    case ROW_WF:
      encode_wf(&b->copy_wf, r, max_payload,
                b->foreign || w->host[0] == '\0' ? NULL : w->host, w->pid);
      nwf++;
      break;
    default:
      encode_err(&b->copy_err, r);
      nerr++;
    }
  }
  fc__copy_trailer(&b->copy_new);
  fc__copy_trailer(&b->copy_upd);
  fc__copy_trailer(&b->copy_wf);
  fc__copy_trailer(&b->copy_err);
  if (b->copy_new.oom || b->copy_upd.oom || b->copy_wf.oom || b->copy_err.oom)
    return FC_ENOMEM;
  b->nsteps = 0;
  b->upsert_sql[0] = '\0';
  if (nnew > 0) {
    b->steps[b->nsteps].sql = COPY_NODES_SQL;
    b->steps[b->nsteps++].copy = &b->copy_new;
  }
  if (nupd > 0) {
    b->steps[b->nsteps].sql = COPY_STAGE_NODES_SQL;
    b->steps[b->nsteps++].copy = &b->copy_upd;
    strcat(b->upsert_sql, UPSERT_NODES_SQL);
  }
  if (nwf > 0) {
    b->steps[b->nsteps].sql = COPY_STAGE_WF_SQL;
    b->steps[b->nsteps++].copy = &b->copy_wf;
    strcat(b->upsert_sql, UPSERT_WF_SQL);
  }
  if (nerr > 0) {
    b->steps[b->nsteps].sql = COPY_STAGE_ERR_SQL;
    b->steps[b->nsteps++].copy = &b->copy_err;
    strcat(b->upsert_sql, INSERT_ERR_SQL);
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

/* ---- custody accounting (under mu) ---------------------------------------------- */

/* Records of this kind lost for this reason: what the loss reports are
 * made of. */
static uint64_t lost_locked(const fc_history_writer_t *w, int kind, int reason) {
  return w->stats.dropped[kind][reason] +
         (reason == FC_DROP_REJECTED ? w->replay_rejected[kind] : 0);
}

static void count_drop_locked(fc_history_writer_t *w, int kind, int reason, uint64_t n) {
  w->stats.dropped[kind][reason] += n;
  w->stats.dropped_total += n;
}

/* n records leave the writer's custody (written, spooled or dropped): room
 * for producers, progress for flushers. */
static void leave_custody_locked(fc_history_writer_t *w, uint64_t n) {
  w->custody -= n;
  w->done += n;
  w->stats.queue_depth = w->custody;
  uv_cond_broadcast(&w->space_cv);
  uv_cond_broadcast(&w->done_cv);
}

enum { OUT_DROPPED, OUT_WRITTEN };

/* Records of a batch leave custody: written or dropped(reason).
 * A replayed batch was never in custody: it is counted as replayed. */
static void batch_release(fc_history_writer_t *w, batch_t *b, int outcome, int reason) {
  size_t i, coalesced = 0;
  uint64_t per_kind[FC_REC_KIND_COUNT] = {0, 0, 0};
  for (i = 0; i < b->nrows; i++) {
    const row_t *r = &b->rows[i];
    int k = fc__hrec_kind(row_rec(r));
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
        count_drop_locked(w, (int)i, reason, per_kind[i]);
  }
  if (!b->replay)
    leave_custody_locked(w, b->nrecs);
  uv_mutex_unlock(&w->mu);
  batch_free(b);
}

static void set_last_error(fc_history_writer_t *w, const char *msg) {
  uv_mutex_lock(&w->mu);
  snprintf(w->stats.last_error, sizeof w->stats.last_error, "%s", msg);
  uv_mutex_unlock(&w->mu);
}

/* ---- sending ------------------------------------------------------------------------ */

static void shard_pump(shard_t *s);

static void seal(shard_t *s) {
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

/* Renders loss reports as one INSERT into flowcore_writer_losses. Only
 * numbers, UUIDs and fixed words go into the SQL text. ON CONFLICT on the
 * client-made loss_id makes a report sent twice count once. */
static void render_losses_sql(const fc__spool_loss_t *e, size_t n, char *buf, size_t cap) {
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
                             i > 0 ? ", " : "", lid, wid, (int)e[i].pid, kind_names[e[i].kind],
                             reason_names[e[i].reason], (unsigned long long)e[i].count,
                             (long long)e[i].recorded_us);
  }
  snprintf(buf + used, cap - used, " ON CONFLICT (loss_id) DO NOTHING");
}

/* Builds the report of what was dropped and not yet recorded, each count
 * with its own new loss_id. It is kept, unchanged, until it is recorded
 * (committed, or at close handed to the spool). */
static void build_loss_report(fc_history_writer_t *w) {
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

static void loss_report_recorded(fc_history_writer_t *w) {
  int k, r;
  for (k = 0; k < FC_REC_KIND_COUNT; k++)
    for (r = 0; r < FC_DROP_REASON_COUNT; r++)
      w->losses_recorded[k][r] = w->losses_sending[k][r];
  w->loss_report_ready = 0;
}

/* Attaches the loss-accounting insert to the batch if there is news. The
 * report is resent unchanged until a COMMIT including it is reported: a
 * report whose acknowledgement was lost cannot count twice. */
static void attach_losses(fc_history_writer_t *w, batch_t *b) {
  if (w->losses_inflight)
    return;
  if (!w->loss_report_ready) {
    build_loss_report(w);
    if (w->loss_report_n == 0) {
      loss_report_recorded(w);
      return;
    }
    render_losses_sql(w->loss_report, w->loss_report_n, w->loss_sql, sizeof w->loss_sql);
  }
  b->with_losses = 1;
  w->losses_inflight = 1;
}

static void losses_done(fc_history_writer_t *w, batch_t *b, int ok) {
  if (!b->with_losses)
    return;
  b->with_losses = 0;
  w->losses_inflight = 0;
  if (ok)
    loss_report_recorded(w);
  /* else the same report goes with a later batch */
}

static int losses_pending(fc_history_writer_t *w) {
  int k, r, any = 0;
  uv_mutex_lock(&w->mu);
  for (k = 0; k < FC_REC_KIND_COUNT; k++)
    for (r = 0; r < FC_DROP_REASON_COUNT; r++)
      if (lost_locked(w, k, r) != w->losses_recorded[k][r])
        any = 1;
  uv_mutex_unlock(&w->mu);
  return any;
}

/* Splits a batch rejected for its data into two halves (front of the
 * queue), so one bad record cannot block the records around it. */
static int split_batch(shard_t *s, batch_t *b) {
  batch_t *h1 = batch_new(), *h2 = batch_new();
  size_t i, half = b->nrows / 2;
  if (h1 == NULL || h2 == NULL) {
    batch_free(h1);
    batch_free(h2);
    return FC_ENOMEM;
  }
  for (i = 0; i < b->nrows; i++) {
    batch_t *dst = i < half ? h1 : h2;
    if (fc__grow((void **)&dst->rows, &dst->cap, dst->nrows + 1, sizeof *dst->rows) != 0) {
      /* leave b intact: give back what was moved */
      batch_free(h1);
      batch_free(h2);
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
  batch_free(b);
  return 0;
}

static int sqlstate_is_data_error(const char *st) {
  /* 21: cardinality (a key twice in one upsert); 22: data exception; 23:
   * integrity (23505 is handled apart); 54: program limit exceeded (e.g.
   * a row too large). */
  return st[0] != '\0' &&
         ((st[0] == '2' && (st[1] == '1' || st[1] == '2' || st[1] == '3')) ||
          (st[0] == '5' && st[1] == '4'));
}

static void retry_cb(uv_timer_t *t) {
  shard_t *s = t->data;
  s->retry_wait = 0;
  shard_pump(s);
}

/* A part of a spool read is through (committed, or refused and counted):
 * once all parts are, the read is acknowledged (its file deleted when
 * finished). */
static void replay_part_done(fc_history_writer_t *w) {
  if (--w->replay_parts <= 0) {
    w->replay_parts = 0;
    fc__spool_ack(w->spool);
  }
}

/* A replayed batch of one row (or none) the server refuses for its data:
 * the row is counted as rejected; loss reports read with it go again on
 * their own. */
static void replay_rejected(fc_history_writer_t *w, shard_t *s, batch_t *b) {
  batch_t *lb = b->nrows > 0 && b->spooled_losses_sql != NULL ? batch_new() : NULL;
  if (lb != NULL) {
    lb->spooled_losses_sql = b->spooled_losses_sql;
    b->spooled_losses_sql = NULL;
    lb->replay = lb->safe = 1;
    lb->next = s->sealed_head;
    s->sealed_head = lb;
    if (s->sealed_tail == NULL)
      s->sealed_tail = lb;
  } else {
    replay_part_done(w);
  }
  batch_release(w, b, OUT_DROPPED, FC_DROP_REJECTED);
}

static void batch_done(fc__pgconn_t *c, int ok, const char *sqlstate, const char *msg,
                       void *data) {
  shard_t *s = data;
  fc_history_writer_t *w = s->w;
  batch_t *b = s->inflight;
  (void)c;
  if (b == NULL)
    return; /* dropped at the deadline; the connection is closing */
  s->inflight = NULL;
  losses_done(w, b, ok);
  if (ok) {
    if (b->replay)
      replay_part_done(w);
    batch_release(w, b, OUT_WRITTEN, 0);
    return; /* the connection's ready callback sends the next batch */
  }
  b->attempts++;
  set_last_error(w, msg);
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
      batch_release(w, b, OUT_DROPPED, FC_DROP_REJECTED);
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
    shard_pump(s);
}

static int spool_sync(fc_history_writer_t *w);

/* Under the spool policy: the next records to replay as a batch, queued on
 * shard s, or NULL. What this process spooled during an outage becomes
 * replayable once its file is rotated, here, when the server is back. */
static batch_t *replay_batch(fc_history_writer_t *w, shard_t *s) {
  batch_t *b;
  const fc__spool_loss_t *losses;
  size_t nlosses;
  long n, i;
  spool_sync(w); /* what it buffered becomes replayable too */
  fc__spool_rotate(w->spool);
  n = fc__spool_read(w->spool, w->replay_buf, w->cfg.batch_size);
  w->replay_idle = n <= 0;
  if (n <= 0)
    return NULL;
  nlosses = fc__spool_losses(w->spool, &losses);
  n -= (long)nlosses; /* the records */
  b = batch_new();
  if (b != NULL && nlosses > 0) {
    /* Loss reports a writer spooled at its close: recorded now, under
     * their own loss_ids (and writer, pid), so a replay counts once. */
    size_t cap = nlosses * LOSS_ROW_MAX + 200;
    b->spooled_losses_sql = fc__malloc(cap);
    if (b->spooled_losses_sql == NULL) {
      batch_free(b);
      b = NULL;
    } else {
      render_losses_sql(losses, nlosses, b->spooled_losses_sql, cap);
    }
  }
  for (i = 0; i < n; i++)
    if (b == NULL || batch_add(b, &w->replay_buf[i]) < 0)
      break;
  if (i < n || b == NULL) {
    /* Out of memory: try again later. */
    for (; i < n; i++)
      fc__hrec_clear(&w->replay_buf[i]);
    batch_free(b);
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

static void shard_pump(shard_t *s) {
  fc_history_writer_t *w = s->w;
  batch_t *b;
  if (s->inflight != NULL || s->retry_wait || !fc__pgconn_ready(&s->conn))
    return;
  b = s->sealed_head;
  if (b == NULL && s->id == 0 && w->spool != NULL)
    b = replay_batch(w, s);
  if (b == NULL) {
    /* Nothing queued; record losses on their own if there are any news. */
    if (s->id == 0 && !w->losses_inflight && losses_pending(w)) {
      b = batch_new();
      if (b == NULL)
        return;
      s->sealed_head = s->sealed_tail = b;
    } else {
      return;
    }
  }
  if (s->id == 0 && losses_pending(w))
    attach_losses(w, b);
  if (batch_encode(w, b) != 0) {
    set_last_error(w, "out of memory encoding a batch");
    return; /* the tick retries */
  }
  if (b->nsteps == 0) { /* empty (e.g. a losses-only batch with no news) */
    s->sealed_head = b->next;
    if (s->sealed_head == NULL)
      s->sealed_tail = NULL;
    losses_done(w, b, 0);
    batch_free(b);
    return;
  }
  s->sealed_head = b->next;
  if (s->sealed_head == NULL)
    s->sealed_tail = NULL;
  b->next = NULL;
  s->inflight = b;
  if (fc__pgconn_exec(&s->conn, b->steps, b->nsteps, batch_done, s) != 0) {
    s->inflight = NULL;
    b->next = s->sealed_head;
    s->sealed_head = b;
    if (s->sealed_tail == NULL)
      s->sealed_tail = b;
  }
}

static void conn_ready(fc__pgconn_t *c, void *data) {
  shard_t *s = data;
  (void)c;
  shard_pump(s);
}

/* ---- intake ------------------------------------------------------------------------ */

/* Writes and fsyncs what the spool buffers: its records leave custody as
 * spooled, or as dropped (spool_full) when the disk fails them (full, an
 * I/O error). */
static int spool_sync(fc_history_writer_t *w) {
  uint64_t lost[FC_REC_KIND_COUNT] = {0, 0, 0}, nlost = 0;
  int rc, k;
  if (w->unsynced_n == 0)
    return 0;
  rc = fc__spool_sync(w->spool, lost);
  if (rc != 0) {
    char msg[128];
    snprintf(msg, sizeof msg, "cannot write the spool: %s", uv_strerror(rc));
    set_last_error(w, msg);
  }
  uv_mutex_lock(&w->mu);
  for (k = 0; k < FC_REC_KIND_COUNT; k++)
    if (lost[k] > 0) {
      count_drop_locked(w, k, FC_DROP_SPOOL_FULL, lost[k]);
      nlost += lost[k];
    }
  w->stats.spooled += w->unsynced_n - nlost;
  w->stats.spool_bytes = fc__spool_bytes(w->spool);
  leave_custody_locked(w, w->unsynced_n);
  uv_mutex_unlock(&w->mu);
  memset(w->unsynced, 0, sizeof w->unsynced);
  w->unsynced_n = 0;
  return rc;
}

/* Moves a batch's records to the spool's buffer (they stay in custody
 * until spool_sync); what the spool cannot take is dropped and counted
 * (spool_full). */
static int spool_batch(fc_history_writer_t *w, batch_t *b) {
  size_t i;
  int rc = 0, e, h;
  uint64_t failed[FC_REC_KIND_COUNT] = {0, 0, 0}, nfailed;
  for (i = 0; i < b->nrows; i++) {
    row_t *r = &b->rows[i];
    int k = fc__hrec_kind(row_rec(r));
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
      spool_sync(w);
  }
  nfailed = failed[0] + failed[1] + failed[2];
  if (nfailed > 0)
    set_last_error(w, rc == UV_ENOSPC ? "spool is at its byte cap" : "cannot write the spool");
  uv_mutex_lock(&w->mu);
  for (i = 0; i < FC_REC_KIND_COUNT; i++)
    if (failed[i] > 0)
      count_drop_locked(w, (int)i, FC_DROP_SPOOL_FULL, failed[i]);
  if (nfailed > 0)
    leave_custody_locked(w, nfailed);
  uv_mutex_unlock(&w->mu);
  batch_free(b);
  return rc;
}

/* Under the spool policy, sealed batches go to disk while their
 * connection is down or memory runs short. Returns 1 when memory is short
 * (what was spooled should be synced at once, to make room). */
static int spool_if_needed(fc_history_writer_t *w) {
  int i, mem_short = 0;
  uint64_t custody;
  if (w->spool == NULL)
    return 0;
  uv_mutex_lock(&w->mu);
  custody = w->custody - w->unsynced_n; /* those are on their way to disk */
  uv_mutex_unlock(&w->mu);
  mem_short = custody > w->cfg.queue_capacity / 2;
  for (i = 0; i < w->nshards; i++) {
    shard_t *s = &w->shards[i];
    /* Down: the server failed us (a first connection attempt in progress,
     * for up to a second, is not an outage). */
    int down = s->inflight == NULL && fc__pgconn_down(&s->conn, 1000);
    if (!down && custody <= w->cfg.queue_capacity / 2)
      continue;
    if (down)
      seal(s);
    while (s->sealed_head != NULL && !s->sealed_head->replay) {
      batch_t *b = s->sealed_head;
      s->sealed_head = b->next;
      if (s->sealed_head == NULL)
        s->sealed_tail = NULL;
      custody -= b->nrecs;
      spool_batch(w, b);
      if (!down && custody <= w->cfg.queue_capacity / 2)
        break;
    }
  }
  return mem_short;
}

static void spool_timer_cb(uv_timer_t *t) { spool_sync(t->data); }

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
      s->building = batch_new();
      if (s->building == NULL)
        goto oom;
      s->building->first_ns = now;
    }
    merged = batch_add(s->building, rec);
    if (merged < 0)
      goto oom;
    /* A full batch is sealed after a record that completes a row (an end
     * merged into its start, an error), not right after a start: the end
     * that usually follows at once then coalesces into the same row instead
     * of needing an upsert in the next batch. Starts alone cannot grow a
     * batch past twice its size. */
    if ((s->building->nrows >= w->cfg.batch_size &&
         (merged == 1 || (rec->kind != FC_EVENT_NODE_START &&
                          rec->kind != FC_EVENT_WORKFLOW_START))) ||
        s->building->nrows >= 2 * w->cfg.batch_size)
      seal(s);
    continue;
  oom:
    /* Cannot hold it: count it as rejected, never silently. */
    uv_mutex_lock(&w->mu);
    count_drop_locked(w, fc__hrec_kind(rec), FC_DROP_REJECTED, 1);
    leave_custody_locked(w, 1);
    uv_mutex_unlock(&w->mu);
    fc__hrec_clear(rec);
  }
  fc__free(blk);
}

static void close_check_cb(uv_timer_t *t);

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
      seal(s);
  }
  if (spool_if_needed(w) || closing || flushing)
    spool_sync(w);
  for (i = 0; i < w->nshards; i++)
    shard_pump(&w->shards[i]);
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

/* ---- shutdown ------------------------------------------------------------------------ */

static void conn_closed(fc__pgconn_t *c, void *data) {
  (void)c;
  (void)data;
}

static int spool_batch(fc_history_writer_t *w, batch_t *b);

/* Gives up on a batch at the deadline: a replayed one stays in the spool
 * for later; under the spool policy the others are spooled (replaying them
 * is harmless even if their transaction did commit); else dropped. */
static void abandon(fc_history_writer_t *w, batch_t *b, int reason) {
  losses_done(w, b, 0);
  if (b->replay) {
    fc__spool_nack(w->spool); /* all of the read comes again */
    w->replay_parts = 0;
    batch_free(b);
  } else if (w->spool != NULL) {
    spool_batch(w, b);
  } else {
    batch_release(w, b, OUT_DROPPED, reason);
  }
}

static void drop_everything(fc_history_writer_t *w, int reason) {
  int i;
  for (i = 0; i < w->nshards; i++) {
    shard_t *s = &w->shards[i];
    seal(s);
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
    spool_sync(w);
}

/* At close, under the spool policy: losses the database has not recorded
 * (the server is away, or time ran out) go to the spool, for the next
 * writer to record. A report already built goes as it is, under the same
 * loss_ids: it may have been committed without our knowing. */
static void spool_losses(fc_history_writer_t *w) {
  size_t i;
  int rc;
  if (w->spool == NULL || w->losses_inflight)
    return;
  spool_sync(w); /* its drops are reported too */
  while (losses_pending(w)) {
    if (!w->loss_report_ready)
      build_loss_report(w);
    for (i = 0; i < w->loss_report_n; i++)
      if ((rc = fc__spool_append_loss(w->spool, &w->loss_report[i])) != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "cannot write a loss report to the spool: %s", uv_strerror(rc));
        set_last_error(w, msg);
        return;
      }
    loss_report_recorded(w);
  }
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
  uv_close((uv_handle_t *)&w->wake, NULL);
  uv_close((uv_handle_t *)&w->spool_timer, NULL);
}

/* ---- public API ------------------------------------------------------------------------ */

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

int fc_history_writer_new(fc_history_writer_t **out, const fc_history_config_t *cfg,
                          fc_error_t *err) {
  fc_history_writer_t *w;
  int i, rc;
  if (out == NULL)
    return fc__error_set(err, FC_EINVAL, "", "no output pointer");
  *out = NULL;
  w = fc__calloc(1, sizeof *w);
  if (w == NULL)
    return fc__error_set(err, FC_ENOMEM, "", "out of memory");
  if (cfg != NULL)
    w->cfg = *cfg;
  else
    fc_history_config_init(&w->cfg);
  if (w->cfg.batch_size == 0)
    w->cfg.batch_size = 2000;
  if (w->cfg.flush_interval_ms == 0)
    w->cfg.flush_interval_ms = 100;
  if (w->cfg.queue_capacity == 0)
    w->cfg.queue_capacity = 200000;
  if (w->cfg.connections <= 0)
    w->cfg.connections = 2;
  if (w->cfg.connections > 16) {
    fc__free(w);
    return fc__error_set(err, FC_EINVAL, "connections", "connections: at most 16, got %d",
                         cfg->connections);
  }
  if (w->cfg.reconnect_min_ms == 0)
    w->cfg.reconnect_min_ms = 100;
  if (w->cfg.reconnect_max_ms < w->cfg.reconnect_min_ms)
    w->cfg.reconnect_max_ms = w->cfg.reconnect_min_ms;
  if (w->cfg.spool_fsync_ms == 0)
    w->cfg.spool_fsync_ms = 200;
  (void)fc_uuid7(w->writer_id);
  if (gethostname(w->host, sizeof w->host) != 0)
    w->host[0] = '\0';
  w->host[sizeof w->host - 1] = '\0';
  w->pid = (int32_t)getpid();
  if (w->cfg.policy == FC_QUEUE_SPOOL) {
    rc = fc__spool_open(&w->spool, w->cfg.spool_dir, w->writer_id, w->cfg.spool_max_bytes, err);
    w->replay_buf = fc__calloc(w->cfg.batch_size, sizeof *w->replay_buf);
    if (rc != 0 || w->replay_buf == NULL) {
      fc__spool_close(w->spool);
      fc__free(w->replay_buf);
      fc__free(w);
      return rc != 0 ? rc : fc__error_set(err, FC_ENOMEM, "", "out of memory");
    }
  }
  w->cfg.spool_dir = NULL;
  w->conninfo = pick_conninfo(cfg != NULL ? cfg->conninfo : NULL);
  w->cfg.conninfo = NULL;
  w->nshards = w->cfg.connections;
  w->shards = fc__calloc((size_t)w->nshards, sizeof *w->shards);
  if (w->conninfo == NULL || w->shards == NULL) {
    fc__free(w->conninfo);
    fc__free(w->shards);
    fc__spool_close(w->spool);
    fc__free(w->replay_buf);
    fc__free(w);
    return fc__error_set(err, FC_ENOMEM, "", "out of memory");
  }
  uv_mutex_init(&w->mu);
  uv_cond_init(&w->space_cv);
  uv_cond_init(&w->done_cv);
  uv_loop_init(&w->loop);
  uv_async_init(&w->loop, &w->wake, wake_cb);
  w->wake.data = w;
  uv_timer_init(&w->loop, &w->tick);
  w->tick.data = w;
  uv_timer_start(&w->tick, tick_cb, w->cfg.flush_interval_ms, w->cfg.flush_interval_ms);
  uv_timer_init(&w->loop, &w->spool_timer);
  w->spool_timer.data = w;
  if (w->spool != NULL)
    uv_timer_start(&w->spool_timer, spool_timer_cb, w->cfg.spool_fsync_ms, w->cfg.spool_fsync_ms);
  for (i = 0; i < w->nshards; i++) {
    shard_t *s = &w->shards[i];
    s->w = w;
    s->id = i;
    uv_timer_init(&w->loop, &s->retry);
    s->retry.data = s;
    fc__pgconn_init(&s->conn, &w->loop, w->conninfo, SETUP_SQL, w->cfg.reconnect_min_ms,
                    w->cfg.reconnect_max_ms, conn_ready, s);
  }
  rc = uv_thread_create(&w->thread, writer_thread, w);
  if (rc != 0) {
    /* Not started: tear the loop down here. */
    for (i = 0; i < w->nshards; i++) {
      fc__pgconn_close(&w->shards[i].conn, conn_closed, w);
      uv_close((uv_handle_t *)&w->shards[i].retry, NULL);
    }
    uv_close((uv_handle_t *)&w->tick, NULL);
    uv_close((uv_handle_t *)&w->wake, NULL);
    uv_close((uv_handle_t *)&w->spool_timer, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    fc__spool_close(w->spool);
    fc__free(w->replay_buf);
    fc__free(w->shards);
    fc__free(w->conninfo);
    fc__free(w);
    return fc__error_set(err, rc, "", "cannot start the writer thread: %s", uv_strerror(rc));
  }
  *out = w;
  return 0;
}

/* Drops a whole block at the door (counted; under mu, which it releases). */
static void drop_block_unlock(fc_history_writer_t *w, fc__hblock_t *b, int reason) {
  size_t i;
  for (i = 0; i < b->n; i++)
    count_drop_locked(w, fc__hrec_kind(&b->recs[i]), reason, 1);
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
void fc__writer_submit(fc_history_writer_t *w, fc__hblock_t *b) {
  uint64_t n = b->n;
  uv_mutex_lock(&w->mu);
  if (w->closing) {
    drop_block_unlock(w, b, FC_DROP_DEADLINE);
    return;
  }
  if (w->custody + n > w->cfg.queue_capacity && w->custody > 0) {
    if (w->cfg.policy == FC_QUEUE_DROP) {
      drop_block_unlock(w, b, FC_DROP_QUEUE_FULL);
      return;
    }
    while (w->custody + n > w->cfg.queue_capacity && w->custody > 0 && !w->closing)
      uv_cond_wait(&w->space_cv, &w->mu);
  }
  b->next = NULL;
  if (w->tail != NULL)
    w->tail->next = b;
  else
    w->head = b;
  w->tail = b;
  w->custody += n;
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
  if (custody == 0 && !busy) {
    /* While the server is there and time is left: record the losses, and
     * replay what the spool holds (what cannot be replayed now stays on
     * disk for the next writer). */
    shard_t *s0 = &w->shards[0];
    int up = !fc__pgconn_down(&s0->conn, 1000);
    if (up && fc__mono_ns() < w->deadline_ns &&
        (losses_pending(w) || (w->spool != NULL && !w->replay_idle))) {
      shard_pump(s0);
      return;
    }
    spool_losses(w);
    sync_stats_final(w);
    stop_loop(w);
  } else if (fc__mono_ns() >= w->deadline_ns) {
    drop_everything(w, FC_DROP_DEADLINE);
    spool_losses(w);
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
    batch_free(w->shards[i].building); /* empty: sealed at close */
  st = w->stats; /* the thread is gone: no lock needed */
  st.queue_depth = 0;
  st.connected = 0;
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

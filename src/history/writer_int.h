/* The history writer's state and its files' internal functions (src/history/ only).
 *
 * The files of the writer, each one concern; calls go one way, down this list:
 *
 *   writer.c  the thread, intake of blocks, the public API, shutdown
 *   send.c    one transaction per batch; retry, split, redo on failure
 *   spill.c   the spool policy: batches to disk, replay batches back
 *   losses.c  custody and loss accounting, loss reports
 *   batch.c   rows merged by key, their index, the COPY steps
 *   copy.c, sql.c, config.c, record.c, spool.c: the encoder, the SQL texts,
 *             the configuration, the records, the spool files
 *
 * The database handler (handler.c) only hands blocks to writer.c
 * (fc__writer_submit); nothing calls back into it.
 *
 * Everything here runs on the writer's thread except what is marked
 * "under mu" (shared with producers and flushers).
 */
#ifndef FLOWCORE_HISTORY_WRITER_INT_H
#define FLOWCORE_HISTORY_WRITER_INT_H

#include "history/copy.h"
#include "history/record.h"
#include "history/spool.h"
#include "pg/conn.h"

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

/* The record that names the row (its start, else its end). */
static inline const fc__hrec_t *fc__row_rec(const row_t *r) {
  return r->has_start ? &r->start : &r->end;
}

typedef struct batch_s {
  struct batch_s *next;
  row_t *rows;
  size_t nrows, cap;
  uint32_t *index; /* open addressing: row index + 1 */
  size_t index_cap;
  size_t nrecs;
  uint64_t nbytes; /* the records' fc__hrec_t.bytes (byte budget) */
  int safe;    /* replay: every row through the upsert path */
  int replay;  /* read back from the spool: outside custody, acked there */
  int foreign; /* replay of another writer's spool file: host/pid unknown */
  int attempts;
  int with_losses;          /* carries the writer's loss-accounting insert */
  char *spooled_losses_sql; /* replay: loss reports read back from the spool */
  uint64_t first_ns;
  fc__buf_t copy_new, copy_upd, copy_wf, copy_err;
  char upsert_sql[4096];
  fc__pgstep_t steps[8];
  size_t nsteps;
  /* encoding, possibly ahead of sending and in slices (batch.c) */
  size_t enc_rows;                /* rows in the COPY buffers */
  size_t nnew, nupd, nwf, nerr;   /* ... per buffer */
  int enc_started, enc_done;      /* buffers begun; every row in, trailers too */
  int enc_safe;                   /* the `safe` they were encoded for */
  size_t freed_rows;              /* rows whose records were released (trash) */
} batch_t;

typedef struct {
  struct fc_history_writer_s *w;
  int id;
  fc__pgconn_t conn;
  batch_t *building;    /* accumulating rows */
  batch_t *sealed_head; /* waiting to be sent, in order */
  batch_t *sealed_tail;
  batch_t *inflight; /* sent, waiting for its COMMIT */
  uv_timer_t retry;  /* delay before resending after a server error */
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
  /* Work done in slices between the loop's I/O (writer.c, work_cb): the
   * records of written batches to release (trash), and the next batch of
   * each busy shard to encode. Active only while there is some. */
  uv_idle_t work;
  int stopped_work; /* work is closing: not to be started again */
  batch_t *trash;
  shard_t *shards;
  int nshards;
  /* shared with producers and flushers, under mu */
  uv_mutex_t mu;
  uv_cond_t space_cv; /* producers waiting for capacity */
  uv_cond_t done_cv;  /* flushers and close waiting for progress */
  fc__hblock_t *head, *tail;
  fc_history_stats_t stats;
  uint64_t custody_bytes; /* their fc__hrec_t.bytes, held in memory */
  uint64_t custody;                            /* records accepted and not yet written or dropped */
  uint64_t replay_rejected[FC_REC_KIND_COUNT]; /* stats.replay_rejected by kind */
  uint64_t done;                               /* records accepted and since written or dropped */
  uint64_t flush_target;
  int closing;
  int stopped;
  uint64_t deadline_ns;
  /* loss accounting already recorded in the database */
  uint64_t losses_recorded[FC_REC_KIND_COUNT][FC_DROP_REASON_COUNT];
  uint64_t losses_sending[FC_REC_KIND_COUNT][FC_DROP_REASON_COUNT];
  int losses_inflight;
  int loss_report_ready; /* loss_report built and not yet committed */
  fc__spool_loss_t loss_report[FC_REC_KIND_COUNT * FC_DROP_REASON_COUNT];
  size_t loss_report_n;
  char loss_sql[FC_REC_KIND_COUNT * FC_DROP_REASON_COUNT * LOSS_ROW_MAX + 200];
  int close_started;
  int replay_idle; /* the spool had nothing to replay at the last look */
  /* The batches the last spool read became (more after a split): the read
   * is acknowledged to the spool once every one of them is through. */
  int replay_parts;
  fc__spool_t *spool;     /* FC_QUEUE_SPOOL only */
  uv_timer_t spool_timer; /* fsync interval */
  /* Records in the spool's buffer, not yet fsync'd: still in custody. */
  uint64_t unsynced[FC_REC_KIND_COUNT];
  uint64_t unsynced_n;
  fc__hrec_t *replay_buf; /* batch_size records */
  uint8_t writer_id[16];
  /* Where the runs of this process happen: workflow_executions.host/pid. */
  char host[256];
  int32_t pid;
  /* partitions.c: day partitions ahead of the runs (writer thread only) */
  int part_wanted;            /* a flowcore_ensure_partitions call is due */
  int part_inflight;          /* ... and running on shard 0 */
  int64_t part_edge_ms;       /* partitions known to exist up to here */
  int64_t part_asked_edge_ms; /* ... once the running call commits */
  uint64_t part_next_ns;      /* no new try before (after a failure) */
  fc__pgstep_t part_step;
};

/* ---- config.c ---- */

/* The configuration a writer runs with: cfg (NULL: the defaults), each
 * field left 0 taking its default from fc_history_config_init. Returns 0,
 * or FC_EINVAL with details in *err. conninfo and spool_dir are borrowed
 * from cfg. */
int fc__history_config_resolve(const fc_history_config_t *cfg, fc_history_config_t *out,
                               fc_error_t *err);

/* ---- sql.c: the statements the writer sends ---- */
extern const char fc__sql_setup[]; /* per connection: encoding, staging tables */
extern const char fc__sql_copy_nodes[];
extern const char fc__sql_copy_stage_nodes[];
extern const char fc__sql_copy_stage_wf[];
extern const char fc__sql_copy_stage_err[];
extern const char fc__sql_upsert_nodes[];
extern const char fc__sql_upsert_wf[];
extern const char fc__sql_insert_err[];

/* ---- batch.c ---- */
batch_t *fc__batch_new(void);
void fc__batch_free(batch_t *b); /* releases the rows' records too; NULL is fine */
/* Releases the records of up to `max` more rows of b (from b->freed_rows);
 * 1 once every row's are. */
int fc__batch_free_records(batch_t *b, size_t max);
/* Adds a record to the batch, merging a start with its end. Takes the
 * record's contents (the caller's copy is left to be forgotten). Returns 1
 * when merged into an existing row, 0 when a row was added, <0 on ENOMEM. */
int fc__batch_add(batch_t *b, const fc__hrec_t *rec);
/* Encodes up to max more rows of b into its COPY buffers; 1 when all are. */
int fc__batch_encode_some(fc_history_writer_t *w, batch_t *b, size_t max);
/* Fills b->steps for one transaction, encoding what is not yet. Returns 0
 * or FC_ENOMEM. */
int fc__batch_encode(fc_history_writer_t *w, batch_t *b);
/* Moves the shard's building batch (if any rows) to its sealed queue. */
void fc__shard_seal(shard_t *s);

/* ---- losses.c ---- */
enum { OUT_DROPPED, OUT_WRITTEN };
void fc__count_drop_locked(fc_history_writer_t *w, int kind, int reason, uint64_t n);
void fc__leave_custody_locked(fc_history_writer_t *w, uint64_t n);
/* Bytes (fc__hrec_t.bytes) the writer no longer holds: room for producers
 * under the byte budget. */
void fc__leave_bytes_locked(fc_history_writer_t *w, uint64_t bytes);
/* Records of a batch leave custody: written, or dropped(reason); frees b. */
void fc__batch_release(fc_history_writer_t *w, batch_t *b, int outcome, int reason);
/* Its first half: the records leave custody (written or dropped), but b
 * and the bytes its records hold stay until fc__batch_free_held. */
void fc__batch_account(fc_history_writer_t *w, batch_t *b, int outcome, int reason);
/* Frees b, whose records' bytes then leave the byte budget. */
void fc__batch_free_held(fc_history_writer_t *w, batch_t *b);
void fc__writer_set_error(fc_history_writer_t *w, const char *msg);
void fc__losses_render_sql(const fc__spool_loss_t *e, size_t n, char *buf, size_t cap);
void fc__losses_build(fc_history_writer_t *w);
void fc__losses_recorded(fc_history_writer_t *w);
void fc__losses_attach(fc_history_writer_t *w, batch_t *b);
void fc__losses_done(fc_history_writer_t *w, batch_t *b, int ok);
int fc__losses_pending(fc_history_writer_t *w);

/* ---- spill.c ---- */
int fc__spill_sync(fc_history_writer_t *w);
int fc__spill_batch(fc_history_writer_t *w, batch_t *b);
int fc__spill_if_needed(fc_history_writer_t *w);
void fc__spill_timer_cb(uv_timer_t *t);
void fc__spill_losses(fc_history_writer_t *w);
batch_t *fc__replay_batch(fc_history_writer_t *w, shard_t *s);
void fc__replay_part_done(fc_history_writer_t *w);

/* ---- partitions.c ---- */
/* Partitions are asked for this many days ahead (as `flowcore migrate`
 * does), again when a run starts within FC__PART_MARGIN_DAYS of their
 * edge, and after a failure not before FC__PART_RETRY_MS. */
#define FC__PART_AHEAD_DAYS 7
#define FC__PART_AHEAD_STR "7"
#define FC__PART_MARGIN_DAYS 2
#define FC__PART_RETRY_MS 60000
/* Looks at a record taken in: a run start near the edge makes a call due. */
void fc__partitions_note(fc_history_writer_t *w, const fc__hrec_t *rec);
/* On shard 0: runs the call when due and the connection is idle. Returns
 * 1 while it runs (the shard sends nothing else meanwhile). */
int fc__partitions_pump(shard_t *s);

/* ---- writer.c ---- */
/* Makes sure work_cb runs: there is trash, or a batch to encode ahead. */
void fc__writer_work(fc_history_writer_t *w);

/* ---- send.c ---- */
/* Sends the shard's next batch when its connection is idle. */
void fc__shard_pump(shard_t *s);
/* fc__pgconn_t's ready callback (data: the shard). */
void fc__shard_conn_ready(fc__pgconn_t *c, void *data);

#endif

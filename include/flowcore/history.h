/* flowcore: the PostgreSQL history writer and the database handler.
 *
 * The writer runs on its own thread with its own libuv loop: libpq's
 * nonblocking connection, COPY encoding and JSON serialization never take
 * time from the engine's loop. The database handler (fc_history_handler)
 * turns events into compact records and hands them to the writer in blocks:
 * its on_* calls do no I/O and take no lock held across I/O.
 *
 * Promises (docs/history.md, docs/reliability.md): a record leaves the writer's custody only after the
 * COMMIT of the transaction holding it was reported; replays never duplicate
 * a row (client-made ids and upserts that never move a finished row back to
 * running); every record dropped is counted by kind and reason; memory is
 * bounded by queue_capacity and max_bytes; close keeps its deadline and reports exactly.
 */
#ifndef FLOWCORE_HISTORY_H
#define FLOWCORE_HISTORY_H

#include <uv.h>

#include "handler.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  FC_QUEUE_BLOCK = 0, /* default: the producer waits; lossless */
  FC_QUEUE_DROP = 1,  /* the record is dropped and counted */
  FC_QUEUE_SPOOL = 2  /* overflow and outages go to an append-only file */
} fc_queue_policy_t;

/* Record kinds, for per-kind counters. */
typedef enum {
  FC_REC_WORKFLOW = 0, /* workflow start/end */
  FC_REC_NODE = 1,     /* node start/end */
  FC_REC_ERROR = 2,
  FC_REC_KIND_COUNT = 3
} fc_record_kind_t;

/* Why records were dropped. */
typedef enum {
  FC_DROP_QUEUE_FULL = 0, /* policy drop, queue at capacity */
  FC_DROP_DEADLINE = 1,   /* still unwritten when the shutdown deadline hit */
  FC_DROP_SPOOL_FULL = 2, /* spool at its byte cap or failing */
  FC_DROP_REJECTED = 3,   /* the server refused a record even alone */
  /* In a transaction whose COMMIT was not confirmed when the deadline hit:
   * the server may still commit it (a stalled backend with the COMMIT in
   * its socket buffer). Counted apart: "not known to be written". */
  FC_DROP_UNCONFIRMED = 4,
  FC_DROP_REASON_COUNT = 5
} fc_drop_reason_t;

/* "workflow", "node", "error" (static storage). */
FC_EXTERN const char *fc_record_kind_name(fc_record_kind_t kind);
/* "queue_full", "deadline", "spool_full", "rejected", "unconfirmed". */
FC_EXTERN const char *fc_drop_reason_name(fc_drop_reason_t reason);

typedef struct {
  /* libpq connection string or URL; NULL: FLOWCORE_DB, then DATABASE_URL,
   * then libpq's PG* defaults. Copied. Never logged. */
  const char *conninfo;
  size_t batch_size;          /* rows per transaction, default 8000 */
  uint64_t flush_interval_ms; /* a partial batch waits at most this, default 100 */
  size_t queue_capacity;      /* records held in memory, default 200000 */
  fc_queue_policy_t policy;   /* default FC_QUEUE_BLOCK */
  const char *spool_dir;      /* required for FC_QUEUE_SPOOL; copied */
  uint64_t spool_fsync_ms;    /* default 200 */
  uint64_t spool_max_bytes;   /* byte cap of the spool directory, default 1 GiB; 0 = none */
  uint64_t shutdown_deadline_ms; /* default 10000 */
  int connections;            /* parallel connections, default 2 */
  size_t max_payload_bytes;   /* larger JSON payloads are replaced, default 1 MiB */
  uint64_t reconnect_min_ms;  /* backoff, default 100 */
  uint64_t reconnect_max_ms;  /* default 5000 */
  /* Bytes of payload the writer holds at most, beside queue_capacity
   * (same policy when reached): default 256 MiB, 0 = default. A record
   * counts 64 bytes plus an estimate of its JSON's size (docs/history.md
   * "Byte budget"). */
  uint64_t max_bytes;
} fc_history_config_t;

/* Fills cfg with the defaults above (conninfo NULL). */
FC_EXTERN void fc_history_config_init(fc_history_config_t *cfg);

typedef struct {
  /* Every record handed to the writer, including those dropped at the door,
   * so that accepted == written + spooled + dropped_total + queue_depth. */
  uint64_t accepted;
  uint64_t written;   /* records whose COMMIT was reported */
  uint64_t coalesced; /* start+end pairs merged into one row */
  uint64_t batches;   /* committed transactions */
  uint64_t retries;   /* batch attempts that failed and were retried */
  uint64_t reconnects; /* connection attempts that failed or connections lost */
  uint64_t spooled;   /* records written to the spool and fsync'd */
  uint64_t replayed;  /* spooled records read back and committed */
  /* Spooled records read back that the server refused for their data:
   * lost, and recorded in flowcore_writer_losses as `rejected`, but not in
   * dropped_total (they were accepted and spooled before, maybe by another
   * process). */
  uint64_t replay_rejected;
  uint64_t spool_bytes;   /* bytes waiting in the spool directory */
  uint64_t spool_corrupt; /* torn or corrupt spool records skipped */
  uint64_t dropped[FC_REC_KIND_COUNT][FC_DROP_REASON_COUNT];
  uint64_t dropped_total;
  uint64_t queue_depth;      /* now */
  uint64_t queue_high_water; /* most records queued at once */
  int connected;             /* connections up now */
  /* Calls of flowcore_ensure_partitions the writer made (at connect, and
   * when a run starts within 2 days of the last day partition), and those
   * that failed (e.g. a role without EXECUTE on it): rows then go to the
   * default partition, nothing is lost. */
  uint64_t partition_checks;
  uint64_t partition_failures;
  /* The byte budget (max_bytes): bytes of records held now and at most
   * (fc__hrec_t estimates, docs/history.md "Byte budget"), and the records
   * dropped at the door because the budget was reached (policy drop; also
   * counted in dropped[][FC_DROP_QUEUE_FULL]). */
  uint64_t bytes_held;
  uint64_t bytes_held_peak;
  uint64_t dropped_byte_budget;
  /* The newest database or spool error, never with the password; "" when
   * none, and cleared once every record is written (nothing dropped or
   * spooled, every connection up) after a transient error. */
  char last_error[256];
} fc_history_stats_t;

typedef struct fc_history_writer_s fc_history_writer_t;

/* Creates a writer and starts its thread (which connects in the
 * background: an absent server is not an error here). cfg is copied.
 * Returns 0, FC_EINVAL (bad config, details in *err), FC_EDB (libpq,
 * libpq.so.5, cannot be loaded: *err says why) or FC_ENOMEM. */
FC_EXTERN int fc_history_writer_new(fc_history_writer_t **out, const fc_history_config_t *cfg,
                                    fc_error_t *err) FC_WARN_UNUSED;

/* Waits until every record accepted before the call is committed (or
 * spooled), at most timeout_ms. Returns 0 or FC_ETIMEDOUT. Thread-safe;
 * blocks the caller: for tests, read-your-writes and shutdown. */
FC_EXTERN int fc_history_writer_flush(fc_history_writer_t *w, uint64_t timeout_ms);

/* A copy of the stats. Thread-safe. */
FC_EXTERN void fc_history_writer_stats(fc_history_writer_t *w, fc_history_stats_t *out);

/* Stops accepting, drains within the shutdown deadline, records any loss in
 * the database when reachable, stops the thread and frees the writer. The
 * final report goes to *report (may be NULL). Every handler made from this
 * writer must have been destroyed first. Returns 0 when nothing was lost,
 * FC_ETIMEDOUT when the deadline forced records out, FC_ELOST when records
 * were dropped for another reason (all counted in the report). */
FC_EXTERN int fc_history_writer_close(fc_history_writer_t *w, fc_history_stats_t *report);

/* Makes the database handler in *out. Borrowed: the handler borrows w (w
 * must outlive the handler; fc_history_writer_close comes after it).
 * `loop` is the engine's loop (borrowed): records are handed to the writer
 * in blocks, and a uv_prepare_t on that loop hands over a partial block
 * before the loop waits, so nothing sits in the handler while the engine is
 * idle. The handler owns its state; destroy (by the manager) hands over what
 * is left and closes the prepare handle (its memory is freed in the close
 * callback, so run the loop once after removing the handler).
 * Returns 0, FC_EINVAL or FC_ENOMEM. */
FC_EXTERN int fc_history_handler(fc_history_writer_t *w, uv_loop_t *loop, fc_handler_t *out);

/* "block", "drop", "spool"; parse returns 0 or FC_EINVAL. */
FC_EXTERN const char *fc_queue_policy_name(fc_queue_policy_t p);
FC_EXTERN int fc_queue_policy_parse(const char *name, fc_queue_policy_t *out);

#ifdef __cplusplus
}
#endif
#endif

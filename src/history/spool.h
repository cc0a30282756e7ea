/* The writer's disk spool: an append-only file of history records, used
 * under the `spool` policy during outages and when memory runs short, and
 * replayed in order once the server is reachable (also by the next process
 * that starts with the same spool directory).
 *
 * File: "FCSPOOL1" then records of
 *   u32 length | u32 CRC-32C of the payload | payload
 * (little-endian). The payload's first byte says what it is: 1 a history
 * record, 2 a loss report (what a writer dropped, so that losses counted
 * while the server was away still reach flowcore_writer_losses). A record
 * cut short or with a wrong checksum (a crash in mid-write) ends the
 * readable part of its file: it is skipped and counted, never replayed as
 * garbage.
 *
 * Files are named fc-<writer uuid>-<seq>.spool, so sorting by name is
 * oldest first. A writer holds an exclusive flock on the file it appends
 * to; a replayer locks a file before reading it, so two processes sharing
 * a directory never replay the same file at once. A file is deleted once
 * every record in it was committed. Single-threaded (the writer's thread).
 */
#ifndef FLOWCORE_HISTORY_SPOOL_H
#define FLOWCORE_HISTORY_SPOOL_H

#include "history/copy.h"
#include "history/record.h"

typedef struct fc__spool_s fc__spool_t;

/* A loss report: what a writer dropped, bound for flowcore_writer_losses.
 * loss_id is made once by the writer, so a report sent twice (a lost
 * acknowledgement, a replay) counts once. */
typedef struct {
  uint8_t loss_id[16];
  uint8_t writer[16];
  int32_t pid;
  uint8_t kind;   /* fc_record_kind_t */
  uint8_t reason; /* fc_drop_reason_t */
  uint64_t count;
  int64_t recorded_us; /* the writer's wall clock when it built the report */
} fc__spool_loss_t;

/* Opens (creating if needed, mode 0700) the directory. Returns 0 or an
 * error code with details in *err. */
int fc__spool_open(fc__spool_t **out, const char *dir, const uint8_t writer_id[16],
                   uint64_t max_bytes, fc_error_t *err);
/* Syncs and closes the append file, releases everything. Call
 * fc__spool_sync first to learn what the last sync lost. */
void fc__spool_close(fc__spool_t *s);

/* Appends one record to the buffer: it is on disk only once a later
 * fc__spool_sync succeeds. Returns 0, FC_ENOMEM, or a negative
 * errno-style code (e.g. the byte cap reached: UV_ENOSPC). */
int fc__spool_append(fc__spool_t *s, const fc__hrec_t *rec);
/* Bytes buffered by fc__spool_append and not yet written. */
size_t fc__spool_buffered(const fc__spool_t *s);
/* Appends a loss report and fsyncs it. Loss reports may go past the byte
 * cap (each is 64 bytes, and the cap is what they often report on). Only
 * with no record buffered (UV_EBUSY: sync first). Returns 0 or an error
 * code (then the report is not in the file). */
int fc__spool_append_loss(fc__spool_t *s, const fc__spool_loss_t *loss);
/* Writes the buffer and fsyncs the file. Returns 0, or an error code (a
 * full disk: UV_ENOSPC; UV_EIO): then the file is cut back to its last
 * whole record, what a short write got to disk whole is kept, and the
 * records given up are added by kind (fc_record_kind_t) to lost (may be
 * NULL). Either way the buffer is empty afterwards. */
int fc__spool_sync(fc__spool_t *s, uint64_t lost[FC_REC_KIND_COUNT]);
/* Closes the append file so it can be replayed; the next append opens a
 * new one. UV_EBUSY while records are buffered (sync first). */
int fc__spool_rotate(fc__spool_t *s);
/* Bytes on disk and not yet replayed (all files of this directory). */
uint64_t fc__spool_bytes(const fc__spool_t *s);
/* Records skipped as torn or corrupt so far. */
uint64_t fc__spool_corrupt(const fc__spool_t *s);

/* Replay. fc__spool_read takes up to `max` records from the oldest file
 * that is not being appended to and not locked by another process, with
 * the loss reports among them; the records are new (each holds its
 * references). Returns the number of records plus loss reports read (0:
 * nothing to replay now; the records are that minus fc__spool_losses) or
 * an error code. The records stay pending until fc__spool_ack (they were
 * committed: the file is deleted once finished) or fc__spool_nack (they
 * will be read again). */
long fc__spool_read(fc__spool_t *s, fc__hrec_t *out, size_t max);
void fc__spool_ack(fc__spool_t *s);
/* The loss reports read by the last fc__spool_read (pending with its
 * records: a read may return 0 records and only loss reports). Borrowed,
 * valid until the next read, ack or nack. */
size_t fc__spool_losses(const fc__spool_t *s, const fc__spool_loss_t **out);
void fc__spool_nack(fc__spool_t *s);
/* 1 if the records of the last fc__spool_read come from a file this
 * writer (this process) appended to, 0 if another writer's: the history
 * then records no host and pid for them (they are not this process's). */
int fc__spool_read_own(const fc__spool_t *s);

#endif

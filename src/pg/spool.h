/* The writer's disk spool: an append-only file of history records, used
 * under the `spool` policy during outages and when memory runs short, and
 * replayed in order once the server is reachable (also by the next process
 * that starts with the same spool directory).
 *
 * File: "FCSPOOL1" then records of
 *   u32 length | u32 CRC-32C of the payload | payload
 * (little-endian). A record cut short or with a wrong checksum (a crash in
 * mid-write) ends the readable part of its file: it is skipped and counted,
 * never replayed as garbage.
 *
 * Files are named fc-<writer uuid>-<seq>.spool, so sorting by name is
 * oldest first. A writer holds an exclusive flock on the file it appends
 * to; a replayer locks a file before reading it, so two processes sharing
 * a directory never replay the same file at once. A file is deleted once
 * every record in it was committed. Single-threaded (the writer's thread).
 */
#ifndef FLOWCORE_PG_SPOOL_H
#define FLOWCORE_PG_SPOOL_H

#include "pg/copy.h"
#include "pg/record.h"

typedef struct fc__spool_s fc__spool_t;

/* Opens (creating if needed, mode 0700) the directory. Returns 0 or an
 * error code with details in *err. */
int fc__spool_open(fc__spool_t **out, const char *dir, const uint8_t writer_id[16],
                   uint64_t max_bytes, fc_error_t *err);
/* Syncs and closes the append file, releases everything. */
void fc__spool_close(fc__spool_t *s);

/* Appends one record (buffered; see fc__spool_sync). Returns 0, FC_ENOMEM,
 * or a negative errno-style code (e.g. the byte cap reached: UV_ENOSPC). */
int fc__spool_append(fc__spool_t *s, const fc__hrec_t *rec);
/* Writes the buffer and fsyncs the file. Returns 0 or an error code. */
int fc__spool_sync(fc__spool_t *s);
/* Closes the append file (after a sync) so it can be replayed; the next
 * append opens a new one. */
int fc__spool_rotate(fc__spool_t *s);
/* Bytes appended and not yet replayed (all files of this directory). */
uint64_t fc__spool_bytes(const fc__spool_t *s);
/* Records skipped as torn or corrupt so far. */
uint64_t fc__spool_corrupt(const fc__spool_t *s);

/* Replay. fc__spool_read takes up to `max` records from the oldest file
 * that is not being appended to and not locked by another process; the
 * records are new (each holds its references). Returns the number read
 * (0: nothing to replay now) or an error code. The records stay pending
 * until fc__spool_ack (they were committed: the file is deleted once
 * finished) or fc__spool_nack (they will be read again). */
long fc__spool_read(fc__spool_t *s, fc__hrec_t *out, size_t max);
void fc__spool_ack(fc__spool_t *s);
void fc__spool_nack(fc__spool_t *s);

#endif

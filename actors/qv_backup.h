//  Online backup: a consistent snapshot of one collection written to a directory (or
//  any object-store URL qv_store_new takes), and the checks a restore makes before it
//  reads one. The writer runs on its own thread at a low priority; the searcher takes
//  the snapshot on its thread (qv_searcher_backup.c) and reports the progress.
//
//  A backup is self-describing and checksummed. Its objects, each in the envelope
//  (schemas/qv_envelope.h, so each has its own CRC32C):
//
//    rows/00000001 ...   kind BACKUP_ROWS: msgpack {"partition": name, "rows": [row
//                        maps]}, each row map as `query` returns it with every field
//                        (dynamic keys beside them), but for float vectors, each a
//                        `bin` of little-endian float32 (version 2; version 1 wrote
//                        lists of numbers, and is still read): the body of an `insert`
//    manifest            kind BACKUP, written last: msgpack {"format": "quiver-backup",
//                        "version", "collection", "snapshot_ts", "rows", "created_ms",
//                        "describe" (describe_collection's map at the snapshot),
//                        "partitions" (names, creation order), "files": [{"key",
//                        "partition", "rows", "bytes", "crc32c" (of the whole object)}]}
//
//  A backup killed before its manifest was written has none, and is refused as
//  incomplete; a file that is missing, of another size or checksum is refused by name.
#ifndef QV_BACKUP_H_INCLUDED
#define QV_BACKUP_H_INCLUDED

#include "qv_catalog.h"
#include "qv_codec.h"
#include "qv_store.h"

#define QV_BACKUP_MANIFEST "manifest"
#define QV_BACKUP_FORMAT "quiver-backup"
#define QV_BACKUP_VERSION 2         //  read: 1 and 2

typedef struct _qv_backup_t qv_backup_t;

typedef enum { QV_BACKUP_EXECUTING, QV_BACKUP_COMPLETED, QV_BACKUP_FAILED } qv_backup_state_t;

//  A backup's state as `get_backup_state` reports it (and qv_backup_state.h keeps).
typedef struct {
    uint64_t id;
    char collection [QV_NAME_MAX + 1];
    char to [1024];
    uint64_t ts;
    qv_backup_state_t state;
    uint64_t done;                  //  rows written
    uint64_t total;                 //  rows visible at the snapshot
    char error [1280];              //  why it failed, "" otherwise
    int64_t updated_ms;             //  wall clock
} qv_backup_record_t;

//  The snapshot of coll at ts (every row inserted at or before ts and not deleted at
//  or before it), to be written to `to` (a path or an object-store URL); id names it.
//  durable: the newest durable manifest (for the index states in `describe`); stopping
//  (borrowed, may be NULL): the writer stops before its next file once it is up;
//  states (borrowed, may be NULL; it must outlive the backup): the store where the
//  writer records the backup's state when it starts and ends (qv_backup_state.h).
//  Takes links
//  to coll's segments, so compaction and garbage collection never take a row from
//  under it. Called on the thread that owns coll. NULL on out of memory.
qv_backup_t *
    qv_backup_new (qv_collection_t *coll, uint64_t ts, uint64_t id, const char *to,
                   uint64_t durable, int delay_ms, const atomic_bool *stopping,
                   qv_store_t *states);
//  Starts writing on a thread of its own. 0, or QV_ENOMEM (the backup is failed).
int
    qv_backup_start (qv_backup_t *self);
//  Asks the writer to stop before its next file (the backup then fails, without a
//  manifest); does not wait. Any thread.
void
    qv_backup_cancel (qv_backup_t *self);
//  Stops the writer if it runs (what it wrote stays without a manifest), waits for it,
//  frees. Nulls *self_p; safe twice.
void
    qv_backup_destroy (qv_backup_t **self_p);

//  Its figures, safe while the writer runs: the state, rows written and to write,
//  and the error of a failed one (into error, "" otherwise).
qv_backup_state_t
    qv_backup_state (qv_backup_t *self, uint64_t *done, uint64_t *total, char *error,
                     size_t size);
//  Its state as a record (safe while the writer runs).
void
    qv_backup_record_of (qv_backup_t *self, qv_backup_record_t *rec);
uint64_t
    qv_backup_ts (const qv_backup_t *self);
const char *
    qv_backup_collection (const qv_backup_t *self);
const char *
    qv_backup_state_name (qv_backup_state_t state);

//  Restore's side. Reads the manifest of the backup in store (where: its name for
//  messages) and checks every file it lists (present, its size, its CRC32C, its
//  envelope) before anything is restored. 0 with *manifest the manifest's document,
//  or QV_ENOTFOUND (no manifest: not a backup, or an incomplete one) / QV_ECORRUPT /
//  QV_EINVAL (a newer format) with a message naming the file.
int
    qv_backup_verify (qv_store_t *store, const char *where, qv_doc_t **manifest);
//  Reads file entry (one of the manifest's `files`) and checks it again; *rows gets
//  its document ({"partition", "rows"}). 0 or the code, with a message naming it.
int
    qv_backup_read (qv_store_t *store, const char *where, const qv_val_t *entry,
                    qv_doc_t **rows);

#endif

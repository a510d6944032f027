//  The write-ahead log of one shard: numbered WAL objects in the object store.
#ifndef QV_WAL_H_INCLUDED
#define QV_WAL_H_INCLUDED

#include "qv_store.h"

//  One record: an opaque byte string (the codec encodes it).
typedef struct {
    const void *data;
    size_t size;
} qv_wal_rec_t;

typedef struct _qv_wal_t qv_wal_t;

//  Called for each record during replay, in log order. Returning non-zero stops the
//  replay, and qv_wal_open returns that value.
typedef int (qv_wal_replay_fn) (void *arg, uint64_t seq, uint32_t index,
                                const void *data, size_t size);

//  A WAL over store for shard (objects "wal/<shard>/<seq, 20 digits>"). Borrows store.
qv_wal_t *
    qv_wal_new (qv_store_t *store, uint32_t shard);

void
    qv_wal_destroy (qv_wal_t **self_p);

//  Replays every WAL object with seq >= checkpoint, in order, calling fn per record,
//  deletes objects below checkpoint, and positions the log to append after the last
//  object. A bad checksum, a truncated object, a wrong magic/version/shard/seq or a
//  gap in the sequence returns QV_ECORRUPT with a message naming the object. A gap
//  counts from the checkpoint: if the first object is above it, the objects between
//  were acknowledged and are gone, so that is QV_ECORRUPT too. An object in wal/<shard>/
//  not named by a 20-digit number is QV_ECORRUPT. With no object at or above the
//  checkpoint, the next append gets the checkpoint's number.
int
    qv_wal_open (qv_wal_t *self, uint64_t checkpoint, qv_wal_replay_fn *fn, void *arg);

//  Writes recs [0..n) as one WAL object, durably (qv_store_put), and returns 0 with
//  *seq_p set to its sequence number. On failure (QV_EIO) nothing was logged and the
//  same sequence number is used by the next append. Returns QV_EINVAL unless
//  qv_wal_open has succeeded (without it the end of the log is unknown, and an
//  append could overwrite an acknowledged object).
int
    qv_wal_append (qv_wal_t *self, const qv_wal_rec_t *recs, size_t n, uint64_t *seq_p);

//  Deletes every WAL object with seq < below (the durable checkpoint). If below is
//  past the end of an open log, the next append gets below.
int
    qv_wal_truncate (qv_wal_t *self, uint64_t below);

//  The sequence number the next append will get.
uint64_t
    qv_wal_next_seq (qv_wal_t *self);

//  Encoding of one WAL object (exposed for tests and tools). Layout, little-endian:
//    the stored-object envelope (qv_envelope.h, kind WAL, version 2) around
//    shard u32 | seq u64 | count u32 | count x (size u32 | bytes); the decoder also
//    reads version 1 (before the envelope, qv_wal.c).
//  qv_wal_encode returns a new zchunk. qv_wal_decode checks everything and calls fn per
//  record; name is used in error messages. Returns 0, QV_ECORRUPT for a damaged or
//  malformed object, QV_EINVAL for a format version newer than this release reads
//  (qv_wal_open passes either on), or what fn returned.
zchunk_t *
    qv_wal_encode (uint32_t shard, uint64_t seq, const qv_wal_rec_t *recs, size_t n);
int
    qv_wal_decode (const char *name, const void *data, size_t size, uint32_t shard,
                   uint64_t seq, qv_wal_replay_fn *fn, void *arg);

#endif

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

//  At most this many appends are in flight at once (qv_wal_reserve), and so a replay
//  accepts a gap this close to the end of the log as a torn tail (qv_wal_open). The
//  readers' rule: never lower it (an older log's tail must still read).
#define QV_WAL_WINDOW 4

//  Called for each record during replay, in log order. Returning non-zero stops the
//  replay, and qv_wal_open returns that value.
typedef int (qv_wal_replay_fn) (void *arg, uint64_t seq, uint32_t index,
                                const void *data, size_t size);

//  A WAL over store for shard (objects "wal/<shard>/<seq, 20 digits>", and
//  "wal/<shard>/<seq>-<epoch, 20 digits>" for writer epochs >= 1). Borrows store.
qv_wal_t *
    qv_wal_new (qv_store_t *store, uint32_t shard);

void
    qv_wal_destroy (qv_wal_t **self_p);

//  Replays every WAL object with seq >= checkpoint, in order, calling fn per record,
//  deletes objects below checkpoint (not in a read-only store), and positions the log
//  to append after the last object. A bad checksum, a truncated object, a wrong magic/version/shard/seq or a
//  gap in the sequence returns QV_ECORRUPT with a message naming the object. A gap
//  counts from the checkpoint: if the first object is above it, the objects between
//  were acknowledged and are gone, so that is QV_ECORRUPT too. The one exception is
//  a torn tail: a gap (a missing object, or one listed but not readable) at seq g
//  with no object at or after g + QV_WAL_WINDOW is where a window of appends in
//  flight was cut (none of it acknowledged): the replay ends before g, the objects
//  from g on are ignored and, in a writable store, deleted before open returns, and
//  the next append gets g. In a read-only store a gap at the checkpoint itself is
//  never a torn tail (a reader's checkpoint is where it got to, and the writer may
//  have truncated past it): QV_ECORRUPT. An object in wal/<shard>/
//  not named by a 20-digit number is QV_ECORRUPT. With no object at or above the
//  checkpoint, the next append gets the checkpoint's number.
//  Fencing (qv_wal.c): at each seq only the object of the highest writer epoch is
//  replayed, and only if its epoch is at least the highest epoch replayed (or deleted
//  as below the checkpoint) before it; every other object is a deposed writer's and is
//  ignored, with a warning naming it. Until qv_wal_fence, appends write at the highest
//  epoch found.
int
    qv_wal_open (qv_wal_t *self, uint64_t checkpoint, qv_wal_replay_fn *fn, void *arg);

//  Makes this opener the log's writer: its epoch becomes one more than the highest
//  epoch in the log, or min_epoch if larger (a lease's fencing epoch), and it writes a
//  fence object (that epoch, no records) at the next seq, so that whatever a deposed
//  writer appends after it is ignored by every reader. Call after qv_wal_open and
//  while holding the store's writer lock, before the first append. Returns 0 or the
//  put's error; the fence is then written before the next append (which fails with
//  the put's error if it cannot be).
int
    qv_wal_fence (qv_wal_t *self, uint64_t min_epoch);

//  The epoch appends write (0 for a log of old objects, until qv_wal_fence; after it,
//  this writer's epoch, also while its fence object is still to be written).
uint64_t
    qv_wal_epoch (qv_wal_t *self);

//  The highest writer epoch of any object in the log, read from the keys (one list
//  call per page, no object read; qv_wal_open is not needed): what a lease's epoch
//  must exceed. 0 and *epoch_p, or the list's error.
int
    qv_wal_top_epoch (qv_wal_t *self, uint64_t *epoch_p);

//  Writes recs [0..n) as one WAL object, durably (qv_store_put), and returns 0 with
//  *seq_p set to its sequence number. On failure (QV_EIO) nothing was logged and the
//  same sequence number is used by the next append. Returns QV_EINVAL unless
//  qv_wal_open has succeeded (without it the end of the log is unknown, and an
//  append could overwrite an acknowledged object). After qv_wal_fence, a put that
//  succeeded is confirmed with qv_store_lock_check: if the store's writer lock was
//  lost (another server took it over), the append returns QV_EUNAVAIL ("this server
//  lost the write lock ...": the caller must not acknowledge) and every later append
//  returns it too; if the lock could not be confirmed (the store failing), it returns
//  that error and the next append writes the same seq again.
int
    qv_wal_append (qv_wal_t *self, const qv_wal_rec_t *recs, size_t n, uint64_t *seq_p);

//  The pipelined append, for up to QV_WAL_WINDOW objects in flight (qv_wal_append is
//  the three in one). qv_wal_reserve (the owner's thread) takes the next seq and the
//  epoch to write it at (writing a pending fence first, and first deleting what a
//  failed window left, see qv_wal_abort): 0, QV_EINVAL if the log is not open or the
//  window is full, QV_EUNAVAIL if deposed, or the store's error (nothing reserved).
//  qv_wal_put (any thread, several at once) writes recs as that object. Then, in seq
//  order, on the owner's thread: qv_wal_confirm (self, seq) once every put up to seq
//  succeeded: after qv_wal_fence it checks the store's writer lock (one check covers
//  every put that completed before it); 0 means objects <= seq may be acknowledged;
//  QV_EUNAVAIL means deposed (as qv_wal_append; never acknowledge); another error
//  means not confirmed: abort. qv_wal_abort (self, seq) when the put of seq failed or
//  could not be confirmed, once no put of the window is under way: nothing at or
//  after seq may be acknowledged, the next reserve deletes the objects from seq to
//  the last reserved (objects of a failed window must never follow a new object at
//  seq; while that delete fails, reserve returns its error) and gives seq again.
int
    qv_wal_reserve (qv_wal_t *self, uint64_t *seq_p, uint64_t *epoch_p);
int
    qv_wal_put (qv_wal_t *self, uint64_t seq, uint64_t epoch, const qv_wal_rec_t *recs,
                size_t n);
int
    qv_wal_confirm (qv_wal_t *self, uint64_t seq);
void
    qv_wal_abort (qv_wal_t *self, uint64_t seq);

//  Deletes every WAL object with seq < below (the durable checkpoint). If below is
//  past the end of an open log, the next append gets below.
int
    qv_wal_truncate (qv_wal_t *self, uint64_t below);

//  The sequence number the next append will get.
uint64_t
    qv_wal_next_seq (qv_wal_t *self);

//  A WAL object built in place, for a writer that encodes its records straight into
//  one buffer it keeps for the next object (the object is written as it lies: no copy
//  into a fresh buffer, whose pages the kernel would have to clear first). Layout of
//  the buffer: QV_WAL_OBJECT_HEAD bytes of room, then per record QV_WAL_RECORD_HEAD
//  bytes of room and the record's bytes. qv_wal_object_record fills a record's room
//  once its size is known (0, or QV_EINVAL for a record over 4 GiB);
//  qv_wal_put_object (any thread, as qv_wal_put) checks that the n records fill the
//  buffer exactly, fills the head (shard, seq, epoch, count), seals the envelope and
//  writes the object: the same bytes as qv_wal_put of the same records.
#define QV_WAL_OBJECT_HEAD 56       //  the envelope header and the fields
#define QV_WAL_RECORD_HEAD 4        //  the record's size, u32
int
    qv_wal_object_record (void *room, size_t size);
int
    qv_wal_put_object (qv_wal_t *self, uint64_t seq, uint64_t epoch, void *object,
                       size_t size, size_t n);

//  Encoding of one WAL object (exposed for tests and tools). Layout, little-endian:
//    the stored-object envelope (qv_envelope.h, kind WAL, version 3) around
//    shard u32 | seq u64 | epoch u64 | count u32 | count x (size u32 | bytes); the
//    decoder also reads version 2 (no epoch: epoch 0) and version 1 (before the
//    envelope, qv_wal.c). qv_wal_encode writes epoch 0.
//  qv_wal_encode returns a new zchunk. qv_wal_decode checks everything and calls fn per
//  record; name is used in error messages. Returns 0, QV_ECORRUPT for a damaged or
//  malformed object, QV_EINVAL for a format version newer than this release reads
//  (qv_wal_open passes either on), or what fn returned.
zchunk_t *
    qv_wal_encode (uint32_t shard, uint64_t seq, const qv_wal_rec_t *recs, size_t n);
int
    qv_wal_decode (const char *name, const void *data, size_t size, uint32_t shard,
                   uint64_t seq, qv_wal_replay_fn *fn, void *arg);
zchunk_t *
    qv_wal_encode_epoch (uint32_t shard, uint64_t seq, uint64_t epoch,
                         const qv_wal_rec_t *recs, size_t n);
//  As qv_wal_decode; with epoch_p, the object's epoch must equal *epoch_p (what its
//  key says), else QV_ECORRUPT.
int
    qv_wal_decode_epoch (const char *name, const void *data, size_t size, uint32_t shard,
                         uint64_t seq, uint64_t *epoch_p, qv_wal_replay_fn *fn, void *arg);

#endif

//  WAL records: every change to the database, as logged and replayed.
#ifndef QV_RECORD_H_INCLUDED
#define QV_RECORD_H_INCLUDED

#include "qv_batch.h"
#include "qv_partition.h"

typedef enum {
    QV_REC_CREATE_COLLECTION = 1,
    QV_REC_DROP_COLLECTION = 2,
    QV_REC_INSERT = 3,              //  insert or upsert: a live key is replaced
    QV_REC_DELETE = 4,
    QV_REC_CREATE_INDEX = 5,
    QV_REC_DROP_INDEX = 6,
    QV_REC_CREATE_PARTITION = 7,
    QV_REC_DROP_PARTITION = 8,
    //  The segment manager sealed growing segment seg_id (no rows, no reply): a
    //  follower that writes segments (the metadata coordinator's) learns it from the
    //  log; replay marks the segment sealed
    QV_REC_SEAL = 9,
    //  alter_collection: the properties in `alters` (QV_ALTER_*) take the values here
    QV_REC_ALTER_COLLECTION = 10,
    //  compaction: flushed segments `olds` of one shard and partition are replaced by
    //  segment seg_id, the rows they hold that are neither deleted at or before
    //  snap_ts nor inserted before expire_cut (qv_merge.h), `rows` of them; its object
    //  (and its indexes') were written at writer epoch `epoch` before this was logged
    QV_REC_COMPACT = 11,
    //  A change to the users, roles and privileges (`user`, actors/qv_users.c); no
    //  collection (coll_id 0)
    QV_REC_USER = 12
} qv_rec_type_t;

//  What a QV_REC_USER record does (one auth op of PROTOCOL.md each).
typedef enum {
    QV_USER_CREATE = 1,             //  user, hash
    QV_USER_DROP = 2,               //  user
    QV_USER_PASSWORD = 3,           //  user, hash (update_password)
    QV_ROLE_CREATE = 4,             //  role
    QV_ROLE_DROP = 5,               //  role (and its grants to users)
    QV_ROLE_GRANT = 6,              //  user, role
    QV_ROLE_REVOKE = 7,             //  user, role
    QV_PRIV_GRANT = 8,              //  role, collection ("*": all), privilege
    QV_PRIV_REVOKE = 9              //  role, collection, privilege
} qv_user_action_t;

//  The fields of a QV_REC_USER record; those its action does not use are "" / NULL.
typedef struct {
    qv_user_action_t action;
    char user [QV_NAME_MAX + 1];
    char role [QV_NAME_MAX + 1];
    char collection [QV_NAME_MAX + 1];
    char privilege [16];            //  Search, Query, Insert, Delete, CreateIndex, DDL, Admin, *
    char *hash;                     //  owned: crypto_pwhash_str of the password, never the password
    char grantor [QV_NAME_MAX + 1]; //  QV_PRIV_GRANT: the user who granted it ("" with
                                    //  authentication off, and in records before it was kept)
} qv_user_change_t;

//  What an alter_collection record changes.
#define QV_ALTER_TTL            1
#define QV_ALTER_CONSISTENCY    2
#define QV_ALTER_DESCRIPTION    4

//  An index definition on a field (PROTOCOL.md create_index): a vector index, or a
//  scalar one (INVERTED, STL_SORT; no parameters).
typedef struct {
    char field [QV_NAME_MAX + 1];
    char type [16];                 //  FLAT, HNSW, HNSW_SQ8, IVF_FLAT, IVF_SQ8, IVF_PQ; INVERTED, STL_SORT
    uint32_t M, ef_construction, nlist, pq_m, pq_nbits;   //  0 = default
} qv_index_def_t;

//  Primary keys of a delete: int64 or varchar.
typedef struct {
    uint32_t n;
    int64_t *ints;                  //  n keys, when the key is int64
    qv_bytes_t *strs;               //  n keys, when the key is varchar
} qv_keys_t;

//  Where the rows of an insert into a partition-key collection go: one growing segment
//  per internal partition the batch touches.
typedef struct {
    uint32_t partition;
    uint64_t seg_id;
} qv_pseg_t;

typedef struct {
    qv_rec_type_t type;
    uint64_t ts;                    //  hybrid timestamp of the change
    uint32_t coll_id;
    //  create_collection (create_partition / drop_partition: the partition's name)
    char name [QV_NAME_MAX + 1];
    qv_schema_t *schema;            //  owned
    uint32_t shards;
    char consistency [16];
    char *description;              //  owned, may be NULL
    uint64_t ttl_seconds;
    uint32_t num_partitions;        //  of a partition-key collection (0: not one)
    uint32_t alters;                //  alter_collection: QV_ALTER_* of the fields above set
    //  the partition of an insert, of a delete when in_partition (only keys living
    //  there), of create_partition / drop_partition; 0 is `_default`
    uint32_t partition;
    bool in_partition;
    //  insert
    bool upsert;
    uint32_t shard;
    uint64_t seg_id;                //  growing segment the rows go to (seal: sealed)
    qv_batch_t *batch;              //  owned
    qv_pseg_t *psegs;               //  owned; partition-key collections: the segment of
    uint32_t npsegs;                //  each partition the rows hash to (seg_id unused)
    //  delete
    qv_keys_t keys;                 //  owned
    //  create_index / drop_index (drop uses index.field only)
    qv_index_def_t index;
    //  insert / delete taken from a JetStream stream: the message's stream sequence
    //  (0 otherwise), logged with the rows so ingestion resumes exactly after it
    uint64_t sseq;
    //  compact (and shard, partition, seg_id above)
    uint64_t *olds;                 //  owned
    uint32_t nolds;
    uint64_t snap_ts;
    uint64_t expire_cut;
    uint64_t epoch;
    uint64_t rows;
    qv_user_change_t *user;         //  owned: QV_REC_USER's change
} qv_record_t;

qv_record_t *
    qv_record_new (qv_rec_type_t type);
void
    qv_record_destroy (qv_record_t **self_p);

//  Encodes a record as one msgpack map.
void
    qv_record_write (const qv_record_t *self, qv_wr_t *w);

//  Looks up the schema of a collection id while decoding an insert (NULL if unknown).
typedef const qv_schema_t *(qv_schema_lookup_fn) (void *arg, uint32_t coll_id);

//  Decodes a record. An insert or delete of an unknown collection (dropped since)
//  decodes with batch/keys NULL and returns QV_ENOTFOUND. Malformed bytes: QV_ECORRUPT.
int
    qv_record_read (const void *data, size_t size, qv_schema_lookup_fn *lookup, void *arg,
                    qv_record_t **out);

//  Reads create_index's index_type / params into def (QV_EINVAL naming a bad value).
int
    qv_index_def_from_request (const qv_val_t *type, const qv_val_t *params, qv_index_def_t *def);
//  Writes an index definition as its params map {"M", "efConstruction", "nlist", "m", "nbits"}
//  (only the non-default values).
void
    qv_index_def_write_params (const qv_index_def_t *def, qv_wr_t *w);

//  Keys: read from a request's `ids` list against the key field; free.
int
    qv_keys_from_request (const qv_field_t *pk, const qv_val_t *ids, uint32_t max, qv_keys_t *keys);
void
    qv_keys_free (qv_keys_t *keys);
void
    qv_keys_write (const qv_keys_t *keys, qv_wr_t *w);

#endif

//  Change events (PROTOCOL.md `quiver.cdc.<collection>`): built from a committed WAL
//  record, encoded in parts that each fit the NATS payload limit.
#ifndef QV_CDC_H_INCLUDED
#define QV_CDC_H_INCLUDED

#include "qv_record.h"

typedef struct {
    char op [24];                   //  insert, upsert, delete, create_collection, ...
    char collection [QV_NAME_MAX + 1];
    uint32_t shard;
    uint64_t seq;                   //  strictly increasing per shard, never reused
    uint64_t ts;                    //  the record's hybrid timestamp
    char field [QV_NAME_MAX + 1];   //  create_index / drop_index: the vector field
    char index_type [16];           //  create_index: the index type
    char partition [QV_NAME_MAX + 1];   //  the partition named by the change (insert into,
                                    //  delete from, create, drop), "" if none
    uint32_t n;                     //  ids carried (0 for DDL)
    bool with_rows;                 //  rows carried beside the ids
    uint8_t *buf;                   //  each id as msgpack, then each row map
    size_t *offs;                   //  2n + 1 offsets into buf: ids, rows, end
} qv_cdc_t;

//  The sequence number of record `index` of WAL object wal_seq: (wal_seq << 24 | index)
//  + 1, so it starts at 1, increases in log order and is never reused (a WAL sequence
//  never is; a WAL object holds fewer than 2^24 records).
#define QV_CDC_SEQ(wal_seq, index) ((((uint64_t) (wal_seq) << 24) | (uint64_t) (index)) + 1)

//  The event of rec (logged at cdc seq `seq`) in collection `collection`; rows when
//  with_rows and rec is an insert. Call before the record is applied (applying moves
//  its rows). NULL if out of memory.
qv_cdc_t *
    qv_cdc_from_record (const qv_record_t *rec, const char *collection, uint64_t seq,
                        bool with_rows);
void
    qv_cdc_destroy (qv_cdc_t **self_p);

//  Splits the event into parts of at most max_bytes encoded: *bounds_p gets parts + 1
//  item indexes (malloc'd), part i holding items [bounds [i], bounds [i + 1]). Returns
//  the number of parts (at least 1); an item bigger than max_bytes gets a part alone.
uint32_t
    qv_cdc_split (const qv_cdc_t *self, size_t max_bytes, uint32_t **bounds_p);

//  Encodes items [from, to) as part `part` of `parts` (1-based; part/parts only when
//  parts > 1): {"op", "collection", "shard", "seq", "ts", "ids", "rows"?, "field"?,
//  "index_type"?, "partition"?, "part"?, "parts"?}.
void
    qv_cdc_write (const qv_cdc_t *self, uint32_t from, uint32_t to, uint32_t part,
                  uint32_t parts, qv_wr_t *w);

#endif

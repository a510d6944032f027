//  Partitions: the limits, the partition-key field of a schema, and the hash that places
//  a row of a partition-key collection in one of its internal partitions.
#ifndef QV_PARTITION_H_INCLUDED
#define QV_PARTITION_H_INCLUDED

#include "qv_batch.h"

#define QV_PARTITIONS_MAX 1024      //  partitions of one collection, `_default` included
#define QV_PARTITIONS_KEYED 16      //  default num_partitions of a partition-key collection
#define QV_PARTITION_DEFAULT "_default"

//  One partition of a collection. `_default` is id 0; ids are never reused.
typedef struct {
    uint32_t id;
    char name [QV_NAME_MAX + 1];
} qv_partition_t;

//  INVALID_ARGUMENT (naming the field) unless the schema's partition_key flags mark
//  at most one field, of type int64 or varchar, neither the primary key nor nullable.
int
    qv_partition_check_schema (const qv_schema_t *schema);

//  Index of the schema's partition-key field, or -1. Only a key that passes
//  qv_partition_check_schema counts (older schemas may carry the flag on other fields).
int
    qv_partition_key_field (const qv_schema_t *schema);

//  The internal partition (0..n-1) of a partition-key value: CRC32C of the value's
//  bytes (int64: 8 bytes little-endian; varchar: its bytes) modulo n. Stable: it is
//  recomputed on WAL replay and by read pruning, so it must never change.
uint32_t
    qv_partition_of_int (int64_t value, uint32_t n);
uint32_t
    qv_partition_of_str (const void *bytes, size_t len, uint32_t n);
//  The internal partition of row of batch b, whose partition key is field.
uint32_t
    qv_partition_of_row (const qv_batch_t *b, int field, uint32_t row, uint32_t n);

//  Names of a keyed collection's internal partitions: "_default_<i>".
void
    qv_partition_keyed_name (uint32_t i, char *out, size_t size);

#endif

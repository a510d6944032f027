//  Replies about a collection, written into the searcher's msgpack replies:
//  describe_collection, describe_index, partition statistics, and the rows of
//  get / query / search with their output_fields.
#ifndef QV_COLL_REPLY_H_INCLUDED
#define QV_COLL_REPLY_H_INCLUDED

#include "qv_catalog.h"

//  Writes describe_index's fields for field fi (index_type, metric, params, state,
//  indexed_rows, total_rows, field, build_error: why the build failed, "" unless
//  state is failed): 8 pairs. An index counts as built once a durable
//  manifest (version <= durable) names it, so "finished" survives a crash.
void
    qv_collection_describe_index (qv_collection_t *coll, int fi, uint64_t durable, qv_wr_t *w);
#define QV_DESCRIBE_INDEX_FIELDS 8

//  Writes a list of {"name", "rows" (live), "segments"} per partition of coll.
void
    qv_collection_partition_stats (qv_collection_t *coll, qv_wr_t *w);

#define QV_OUTPUT_KEYS_MAX 128      //  most dynamic keys named in one output_fields

//  What output_fields asks for: schema fields, and in a collection with the dynamic
//  field, keys of `$meta` (every key for "*" or "$meta", else the named ones). Names
//  point into the request, which must outlive it.
typedef struct {
    int fids [QV_FIELDS_MAX];       //  schema fields in request order, once, `$meta` never
    int nfids;
    bool meta_all;                  //  every `$meta` key
    bool vectors_bin;               //  float vectors as one `bin` of float32 each (a
                                    //  backup's rows: 4 bytes a dimension, no parse of numbers)
    const char *keys [QV_OUTPUT_KEYS_MAX];  //  named `$meta` keys (not NUL-terminated)
    size_t key_lens [QV_OUTPUT_KEYS_MAX];
    int nkeys;
} qv_output_t;

//  Reads output_fields (a list of names, or NULL for none) into out. Returns QV_EPROTO
//  for a name that is not a string, QV_EINVAL for an unknown field name (message names
//  it; in a dynamic-field collection an unknown name is a `$meta` key, never an error).
int
    qv_collection_check_fields (qv_collection_t *coll, const qv_val_t *output_fields,
                                qv_output_t *out);
//  Writes the fields of out of (seg, row) as a flat map, with the primary key when
//  with_pk; `$meta` keys are written beside the fields (a row without a named key
//  has no entry for it).
void
    qv_collection_write_row (qv_collection_t *coll, qv_segment_t *seg, uint32_t row,
                             const qv_output_t *out, bool with_pk, qv_wr_t *w);

//  Looks up the live row of each key (in one of parts, NULL: any); writes found rows
//  (flat maps) into w as a list.
int
    qv_collection_get (qv_collection_t *coll, const qv_keys_t *keys, const roaring_bitmap_t *parts,
                       const qv_output_t *out, qv_wr_t *w);

//  Writes describe_collection's fields (collection, collection_id, fields, shards, consistency, rows,
//  segments, indexes, description, ttl_seconds, num_partitions: the partitions a
//  partition key hashes to, else the named ones, `_default` included;
//  enable_dynamic_field): 12 pairs. `fields` leaves out the hidden `$meta`.
void
    qv_collection_describe (qv_collection_t *coll, uint64_t durable, qv_wr_t *w);
#define QV_DESCRIBE_FIELDS 12

#endif

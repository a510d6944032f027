//  Recovery's segment loading on threads: the segment objects a manifest lists and
//  their index objects are fetched and decoded on a pool of threads (the store takes
//  concurrent requests, decoding takes every core), while the catalog takes the
//  results in manifest order and does what must be done on one thread (checks
//  against the manifest, deletes, primary keys). Downloads overlap decoding, and a
//  start no longer waits for one object after another.
#ifndef QV_SEGLOAD_H_INCLUDED
#define QV_SEGLOAD_H_INCLUDED

#include "qv_index.h"
#include "qv_scalar.h"
#include "qv_schema.h"
#include "qv_segment.h"
#include "qv_store.h"

//  One index object of a segment to load.
typedef struct {
    int field;                      //  field number in the schema
    uint64_t epoch;                 //  the writer epoch in its object's key
    bool is_scalar;                 //  scalar index (else vector index)
    bool record_only;               //  not loaded: the caller keeps only its record
    qv_type_t type;                 //  the field's type (scalar indexes)
    //  Results
    int rc;                         //  0: index or scalar set
    char *error;                    //  rc != 0: the message (owned)
    qv_index_t *index;
    qv_scalar_t *scalar;
} qv_segload_idx_t;

//  One segment object to load, with its indexes.
typedef struct {
    uint32_t coll_id;
    uint64_t seg_id;
    uint64_t epoch;                 //  the writer epoch in its object's key
    int nidx;
    qv_segload_idx_t idx [QV_FIELDS_MAX];
    //  Results
    int rc;                         //  0: seg set
    char *error;                    //  rc != 0: the message (owned)
    qv_segment_t *seg;
} qv_segload_job_t;

typedef struct _qv_segload_t qv_segload_t;

//  Starts loading jobs [0, n) on up to threads threads (the jobs stay the caller's
//  and must outlive the loader).
qv_segload_t *
    qv_segload_new (qv_store_t *store, qv_segload_job_t *jobs, size_t n, int threads);

//  Waits until job i is loaded; its results are then the caller's to take (a taken
//  seg, index or scalar is set to NULL in the job).
void
    qv_segload_wait (qv_segload_t *self, size_t i);

//  Stops taking new jobs, waits for the threads, frees every result not taken and
//  the jobs' messages, and prints the time spent to the log (with what).
void
    qv_segload_destroy (qv_segload_t **self_p, const char *what);

#endif

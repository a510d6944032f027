//  Process-wide histograms of durations and sizes that several actors record (WAL
//  commits, segment and manifest writes, index builds), for the metrics endpoint
//  (bus/qv_metrics.h), in the Prometheus text format.
//
//  DESIGN
//  A fixed table, one entry per histogram, each with fixed bucket bounds; recording is
//  a few relaxed atomic adds (no lock, no allocation) from whichever thread does the
//  work; a scrape reads every counter once (a scrape racing a record may see its
//  count before its sum). Requests per op have their own table (bus/qv_opstats.h).
#ifndef QV_HIST_H_INCLUDED
#define QV_HIST_H_INCLUDED

#include <stdio.h>

typedef enum {
    QV_HIST_WAL_COMMIT_SECONDS,     //  one WAL object written (group commit), acknowledged
    QV_HIST_WAL_COMMIT_RECORDS,     //  records in it
    QV_HIST_WAL_COMMIT_BYTES,       //  its size
    QV_HIST_SEGMENT_WRITE_SECONDS,  //  a sealed segment encoded and written to the store
    QV_HIST_MANIFEST_WRITE_SECONDS, //  a manifest written
    QV_HIST_INDEX_BUILD_SECONDS,    //  an index built (not counting its write)
    QV_HIST_COUNT
} qv_hist_id_t;

void
    qv_hist_record (qv_hist_id_t id, double value);

//  Appends every histogram that has a sample to out (# HELP, # TYPE, buckets, sum,
//  count).
void
    qv_hist_write (FILE *out);

//  Samples recorded so far in id (tests).
unsigned long long
    qv_hist_count (qv_hist_id_t id);

#endif

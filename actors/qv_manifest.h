//  Manifests as readers find them in the object store: keys, the fencing rule that
//  picks the live ones, the newest read and opened (its body left to the caller to
//  decode), and, for searcher processes, what a writer's manifest says of the
//  segments a catalog already holds from the committed feed.
//  The format is described in qv_manifest.c; the catalog writes it
//  (qv_catalog_manifest) and rebuilds itself from it (qv_catalog_recover).
#ifndef QV_MANIFEST_H_INCLUDED
#define QV_MANIFEST_H_INCLUDED

#include "qv_catalog.h"
#include "qv_store.h"

#define QV_MANIFEST_PREFIX "meta/manifest/"
#define QV_MANIFEST_VERSION 4           //  the envelope's payload version written

//  A manifest object read from the store and opened (envelope or version 1 checked).
typedef struct {
    uint64_t version;               //  from its key
    uint64_t epoch;                 //  the writer epoch its key names (0: none)
    bool has_epoch;                 //  format version >= 3: the body holds "epoch"
    const uint8_t *body;            //  the msgpack body, inside data
    size_t body_size;
    void *data;                     //  the object (owned)
    char where [512];               //  the object's location, for messages
} qv_manifest_t;

//  The key of manifest version written at epoch: "meta/manifest/<version>" for epoch
//  0, "meta/manifest/<version>-<epoch>" (20 digits each) otherwise.
void
    qv_manifest_key (uint64_t version, uint64_t epoch, char *out, size_t size);

//  Reads the newest live manifest (the WAL's fencing rule: a deposed writer's late
//  manifest is ignored, with a warning) if its version is above newer_than; *out is
//  NULL when there is none (a new database) or none newer. A manifest listed but not
//  readable (an interrupted write, never acknowledged) is passed over for the live one
//  before it, or for none if it was the first (its WAL is all still there).
int
    qv_manifest_read_newest (qv_store_t *store, uint64_t newer_than, qv_manifest_t **out);
void
    qv_manifest_destroy (qv_manifest_t **self_p);

//  In a searcher process, whose catalog holds every row from the committed feed: takes
//  what the writer's manifest body (qv_manifest_t.body) says of segments the catalog
//  holds. A segment the manifest lists with as many rows as the catalog holds is
//  complete: it becomes flushed here too (immutable, as on the writer), and fn is
//  called (with the object's writer epoch, for its key) for each index object the
//  manifest lists for it at the collection's current
//  index version that the segment lacks. Returns how many things the manifest names
//  that the catalog has not caught up with yet (a collection not created here, a
//  segment with fewer rows or none, an index definition not applied): call again once
//  it has applied more. -1 if the body does not decode (logged).
//  A number at the top of a manifest body (0 if absent or the body does not decode):
//  "checkpoint" (every WAL object below it is in the manifest's segments), "epoch"
//  (its writer's).
uint64_t
    qv_manifest_body_uint (const void *body, size_t size, const char *key);

typedef void (qv_adopt_fn) (void *arg, qv_collection_t *coll, qv_segment_t *seg, int fi,
                            uint64_t epoch);
int
    qv_manifest_adopt (qv_catalog_t *catalog, const void *body, size_t size,
                       qv_adopt_fn *fn, void *arg);

//  Garbage collection: adds "coll/seg" (decimal) to refs for every segment each
//  manifest in the store names, live or not (a recovery may fall back to an older
//  one). A manifest listed but gone meanwhile is passed over; any other failure to
//  read one is returned (the caller must then delete nothing).
int
    qv_manifest_referenced (qv_store_t *store, zhashx_t *refs);

//  A new writer's manifest fence: the catalog's manifest (recovered) written again at
//  the next version with the writer's epoch (qv_catalog_set_epoch done), before
//  anything else is written, so that a deposed writer's manifest still on its way
//  (same version, lower epoch) is ignored by every recovery. If it cannot be written
//  now (logged), the first flush's manifest fences instead.
void
    qv_manifest_fence (qv_store_t *store, qv_catalog_t *catalog, uint64_t epoch);

#endif

//  Integration-test helpers for the storage and fencing suites: a 'docs' collection
//  (int64 `id`, float vector `v`) filled in numbered batches, checked by id and by
//  count, and the object store a server writes to, read from the test.
//  Like the other helpers, nothing here uses cmocka: functions return values and the
//  tests assert.
#ifndef QV_IT_DOCS_H_INCLUDED
#define QV_IT_DOCS_H_INCLUDED

#include "qv_it_server.h"
#include "qv_store.h"

//  True if the test command's S3 server is there (QV_S3_ENDPOINT): then every server
//  the calling test starts runs on S3 (QV_IT_S3=1) with s3rver's credentials. Else
//  prints why the test is skipped and returns false.
bool
    qv_it_need_s3 (void);

//  The NATS URL of the test command's nats-server (QV_NATS_URL), or NULL after
//  printing why the test is skipped.
const char *
    qv_it_need_nats (void);

//  The object store server writes to, opened from the test (no lock, no cache): its
//  S3 prefix in S3 mode, else its data directory. Destroy it with qv_store_destroy.
qv_store_t *
    qv_it_server_store (qv_it_server_t *server);

//  The keys under prefix in server's store, with the prefix cut off, joined by ','
//  (malloc'd; "" if none, NULL if the store cannot be listed).
char *
    qv_it_store_keys (qv_it_server_t *server, const char *prefix);

//  A new server description (qv_it_server_new (extra)) on the object store of `like`:
//  its S3 prefix in S3 mode (with a data directory of its own). NULL on failure.
qv_it_server_t *
    qv_it_server_same_store (qv_it_server_t *like, const char *const *extra);

//  True when the server's process is stopped (SIGSTOP: state T in /proc).
bool
    qv_it_server_stopped (qv_it_server_t *server);

//  Creates collection 'docs' with a dim-dimensional `v`. True if it was created.
bool
    qv_it_docs_create (qv_it_client_t *c, int dim);

//  Inserts batch b of `batch` rows (ids b*batch ..), vectors of dim components that
//  depend only on the id. The reply (caller destroys), NULL without one.
qv_doc_t *
    qv_it_docs_insert (qv_it_client_t *c, uint32_t b, uint32_t batch, int dim);

//  As qv_it_docs_insert; true if acknowledged, else false with the reason on stderr.
bool
    qv_it_docs_insert_ok (qv_it_client_t *c, uint32_t b, uint32_t batch, int dim);

//  How many rows of batch b are there (a get of its ids); -1 if the get failed.
int64_t
    qv_it_docs_batch_rows (qv_it_client_t *c, uint32_t b, uint32_t batch);

//  The collection's row count (describe_collection); -1 if that failed.
int64_t
    qv_it_docs_rows (qv_it_client_t *c);

//  The ids of the top 10 for a fixed query (a 4-dim `v`), as text ("" if the search
//  failed): two servers that hold the same rows answer the same.
void
    qv_it_docs_top10 (qv_it_client_t *c, char *out, size_t size);

#endif

//  The public protocol (PROTOCOL.md): ops, their request fields, and reply framing.
//  Each op's fields are declared once here; qv_req_parse checks them all.
#ifndef QV_PROTO_H_INCLUDED
#define QV_PROTO_H_INCLUDED

#include "qv_codec.h"

#define QV_PROTO_VERSION "quiver/1"
#define QV_LIMIT_TOPK 16384         //  limit, nq, offset + limit (as in Milvus)
#define QV_TTL_MAX_SECONDS 3153600000ull    //  ttl_seconds at most 100 years (365-day)

//  Request fields: name, expected msgpack kind.
//  Kinds: STR, UINT, NUM (int or float), BOOL, ARRAY, MAP, ANY, VEC (list or bin).
#define QV_FIELDS(X)                                                                    \
    X (op, STR) X (rid, ANY) X (token, STR) X (collection, STR) X (fields, ARRAY)        \
    X (shards, UINT) X (consistency, STR) X (description, STR) X (ttl_seconds, UINT)     \
    X (partition, STR) X (field, STR) X (index_type, STR) X (metric, STR)                \
    X (params, MAP) X (rows, ARRAY) X (columns, MAP) X (ids, ARRAY) X (filter, STR)      \
    X (vectors, VEC) X (dim, UINT) X (limit, UINT) X (output_fields, ARRAY)              \
    X (partitions, ARRAY) X (guarantee_ts, UINT) X (offset, UINT) X (radius, NUM)        \
    X (range_filter, NUM) X (compaction_id, UINT) X (num_partitions, UINT)               \
    X (dimension, UINT) X (primary_field_name, STR) X (vector_field_name, STR)           \
    X (id_type, STR) X (auto_id, BOOL) X (max_length, UINT) X (enable_dynamic_field, BOOL) \
    X (user, STR) X (password, STR) X (old_password, STR) X (new_password, STR)         \
    X (role, STR) X (privilege, STR) X (to, STR) X (backup_id, UINT)                     \
    X (keep_ids, BOOL)

typedef enum {
#define QV_F_ENUM(name, kind) QV_F_##name,
    QV_FIELDS (QV_F_ENUM)
#undef QV_F_ENUM
    QV_F_COUNT
} qv_fid_t;

#define QV_F(name) (1ull << QV_F_##name)
#define QV_F_COMMON (QV_F (op) | QV_F (rid) | QV_F (token))

//  Ops: name, required fields, optional fields.
#define QV_OPS(X)                                                                       \
    X (ping, 0, 0)                                                                      \
    X (create_collection, QV_F (collection),                                            \
       QV_F (fields) | QV_F (shards) | QV_F (consistency) | QV_F (description)          \
       | QV_F (ttl_seconds) | QV_F (num_partitions) | QV_F (enable_dynamic_field)        \
       | QV_F (dimension) | QV_F (metric) | QV_F (primary_field_name)                   \
       | QV_F (vector_field_name) | QV_F (id_type) | QV_F (auto_id) | QV_F (max_length)) \
    X (drop_collection, QV_F (collection), 0)                                           \
    X (has_collection, QV_F (collection), 0)                                            \
    X (list_collections, 0, 0)                                                          \
    X (describe_collection, QV_F (collection), 0)                                       \
    X (insert, QV_F (collection), QV_F (partition) | QV_F (rows) | QV_F (columns)      \
       | QV_F (keep_ids))                                                               \
    X (upsert, QV_F (collection), QV_F (partition) | QV_F (rows) | QV_F (columns))     \
    X (delete, QV_F (collection), QV_F (ids) | QV_F (filter) | QV_F (partition))       \
    X (flush, QV_F (collection), 0)                                                     \
    X (create_index, QV_F (collection) | QV_F (field) | QV_F (index_type),              \
       QV_F (metric) | QV_F (params))                                                   \
    X (describe_index, QV_F (collection), QV_F (field))                                 \
    X (drop_index, QV_F (collection), QV_F (field))                                     \
    X (search, QV_F (collection) | QV_F (vectors),                                      \
       QV_F (dim) | QV_F (limit) | QV_F (field) | QV_F (filter) | QV_F (output_fields)  \
       | QV_F (params) | QV_F (partitions) | QV_F (consistency) | QV_F (guarantee_ts)   \
       | QV_F (offset) | QV_F (radius) | QV_F (range_filter))                           \
    X (get, QV_F (collection) | QV_F (ids), QV_F (output_fields) | QV_F (partitions)    \
       | QV_F (consistency) | QV_F (guarantee_ts))                                      \
    X (query, QV_F (collection), QV_F (filter) | QV_F (output_fields) | QV_F (limit)    \
       | QV_F (offset) | QV_F (partitions) | QV_F (consistency) | QV_F (guarantee_ts))  \
    X (list_partitions, QV_F (collection), 0)                                           \
    X (create_partition, QV_F (collection) | QV_F (partition), 0)                       \
    X (drop_partition, QV_F (collection) | QV_F (partition), 0)                         \
    X (stats, 0, QV_F (collection))                                                     \
    X (alter_collection, QV_F (collection),                                             \
       QV_F (ttl_seconds) | QV_F (consistency) | QV_F (description))                    \
    X (compact, QV_F (collection), 0)                                                   \
    X (get_compaction_state, QV_F (collection) | QV_F (compaction_id), 0)          \
    X (backup, QV_F (collection) | QV_F (to), 0)                                        \
    X (get_backup_state, QV_F (backup_id), 0)                                           \
    QV_OPS_AUTH (X)

//  Users, roles and privileges (PROTOCOL.md "Authentication"; actors/qv_users.c).
//  grant_privilege / revoke_privilege take collection "*" (every collection).
#define QV_OPS_AUTH(X)                                                                  \
    X (create_user, QV_F (user) | QV_F (password), 0)                                   \
    X (drop_user, QV_F (user), 0)                                                       \
    X (update_password, QV_F (user) | QV_F (new_password), QV_F (old_password))      \
    X (create_role, QV_F (role), 0)                                                     \
    X (drop_role, QV_F (role), 0)                                                       \
    X (grant_role, QV_F (user) | QV_F (role), 0)                                        \
    X (revoke_role, QV_F (user) | QV_F (role), 0)                                       \
    X (grant_privilege, QV_F (role) | QV_F (collection) | QV_F (privilege), 0)          \
    X (revoke_privilege, QV_F (role) | QV_F (collection) | QV_F (privilege), 0)         \
    X (list_users, 0, 0)                                                                \
    X (list_roles, 0, 0)                                                                \
    X (describe_user, QV_F (user), 0)                                                   \
    X (describe_role, QV_F (role), 0)

typedef enum {
#define QV_OP_ENUM(name, req, opt) QV_OP_##name,
    QV_OPS (QV_OP_ENUM)
#undef QV_OP_ENUM
    QV_OP_COUNT
} qv_op_t;

//  A decoded request: the document and a pointer to each field present.
typedef struct {
    qv_doc_t *doc;
    qv_op_t op;
    const qv_val_t *f [QV_F_COUNT];  //  NULL when absent
    char collection [256];          //  copy of `collection`, "" if absent
    char user [256];                //  the user its token authenticated (set by the proxy
                                    //  that admitted it; "" with authentication off)
} qv_req_t;

//  Decodes and checks a request: a map, valid UTF-8 everywhere and no key twice in any
//  map (MALFORMED), `op` known, every field known to that op and of the right kind,
//  numbers finite, `params` keys known to the op, `ttl_seconds` at most
//  QV_TTL_MAX_SECONDS, required fields present, a valid collection name. On failure
//  returns the code (QV_EPROTO, QV_EINVAL, QV_ELIMIT) with the reason in qv_err_msg (),
//  and *rid_p points at the `rid` if one could be read (the document stays in req->doc
//  so the error reply can echo it; qv_req_free releases it either way).
int
    qv_req_parse (const void *data, size_t size, size_t max_elems, qv_req_t *req);
//  The same without copying data: the request decodes it where it lies and releases
//  owner, which holds it, with release when it is freed (at once if decoding fails).
int
    qv_req_parse_owned (const void *data, size_t size, size_t max_elems,
                        void (*release) (void *owner), void *owner, qv_req_t *req);
//  The same for a payload whose op and collection are named outside it (a NATS
//  subject's last two tokens): the payload may leave them out, or repeat them
//  unchanged (INVALID_ARGUMENT otherwise). Such a request's document lacks them:
//  whoever encodes it again uses qv_req_write_pairs.
int
    qv_req_parse_named (const void *data, size_t size, size_t max_elems, const char *op,
                        const char *collection, void (*release) (void *owner), void *owner,
                        qv_req_t *req);
//  Writes the request's key/value pairs into an open map of w (qv_wr_map_open): op and
//  collection as parsed, then every other field of the document but those in skip
//  (QV_F (name) bits), as they came.
void
    qv_req_write_pairs (const qv_req_t *req, qv_wr_t *w, uint64_t skip);
//  The query vectors of a search's `vectors`: a list's length, or a bin's bytes over
//  dim x 4 (0 when the bin is not a whole number of vectors, or there are none).
size_t
    qv_req_nq (const qv_req_t *req, uint32_t dim);
void
    qv_req_free (qv_req_t *req);

const char *
    qv_op_name (qv_op_t op);

//  Reply framing: qv_reply_ok starts {"ok": true, "rid": ..., <nfields more>}; the
//  caller then writes nfields key/value pairs. qv_reply_error writes a whole error reply,
//  with the bytes of message that are not valid UTF-8 escaped (\xNN) and without a rid
//  that is not valid UTF-8.
void
    qv_reply_ok (qv_wr_t *w, const qv_val_t *rid, size_t nfields);
void
    qv_reply_error (qv_wr_t *w, const qv_val_t *rid, int rc, const char *message);
//  A success reply whose fields count themselves (the codec's map builder):
//  qv_reply_open writes {"ok": true, "rid": ...; the caller writes each field with
//  qv_wr_key + its value (or qv_wr_map_add for pairs a helper writes), then
//  qv_reply_close ends the map with the count it reached.
void
    qv_reply_open (qv_wr_t *w, const qv_val_t *rid);
void
    qv_reply_close (qv_wr_t *w);

//  Reads a reply's ok, code and error (code INTERNAL and an error saying so if it
//  does not decode; error "" on success). Returns ok.
bool
    qv_reply_status (const void *reply, size_t size, char *code, size_t code_size,
                     char *error, size_t error_size);

//  Whether a request refused with code and error may succeed when sent again: for
//  now UNAVAILABLE, TIMEOUT, INTERNAL, and RESOURCE_EXHAUSTED about memory; anything
//  else is refused for good. The NATS bridge rewinds a stream after the first kind and
//  skips a message refused for good; the proxy holds the stream's later writes
//  behind the first kind.
bool
    qv_reply_retryable (const char *code, const char *error);

#endif

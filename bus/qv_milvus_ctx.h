//  What the Milvus REST gateway's endpoint files share (internal to bus/): the
//  request being answered and the helpers of qv_milvus.c that read its body, call the
//  native protocol and set the reply.
#ifndef QV_MILVUS_CTX_H_INCLUDED
#define QV_MILVUS_CTX_H_INCLUDED

#include "qv_milvus.h"

#include <jansson.h>

#define QV_MILVUS_ANSWERED 1        //  the request failed and the reply says why

typedef struct {
    const qv_milvus_req_t *req;
    json_t *body;                   //  the request (an object)
    json_t *reply;                  //  the Milvus reply, once known
} qv_milvus_ctx_t;

//  Sets the reply to an error (the first one wins). Returns QV_MILVUS_ANSWERED.
int
    qv_milvus_fail (qv_milvus_ctx_t *c, int code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Sets the reply to {"code": 0, "data": data} (takes data; NULL: {}).
void
    qv_milvus_ok (qv_milvus_ctx_t *c, json_t *data);

//  Sends {"op": op, "token": ..., args...} (args taken); the reply in *reply_p (the
//  caller destroys it). 0 when it is ok; QV_MILVUS_ANSWERED when it is not (the
//  Milvus error reply is set).
int
    qv_milvus_call (qv_milvus_ctx_t *c, const char *op, json_t *args, qv_doc_t **reply_p);

//  The body's key: NULL when absent (or null). *bad is set (and the reply says why)
//  when present with another type than want, or absent when required.
json_t *
    qv_milvus_field (qv_milvus_ctx_t *c, const char *key, json_type want, bool required,
                     bool *bad);

//  A native value as JSON (new reference).
json_t *
    qv_milvus_to_json (const qv_val_t *v);

//  users/<action> and roles/<action> (qv_milvus_rbac.c).
void
    qv_milvus_users (qv_milvus_ctx_t *c, const char *action);
void
    qv_milvus_roles (qv_milvus_ctx_t *c, const char *action);

#endif

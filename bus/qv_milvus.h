//  Milvus REST API v2 (POST /v2/vectordb/...) mapped onto the native protocol: one
//  HTTP request body in, one JSON reply out, through a native client.
//
//  DESIGN
//  Every endpoint turns its Milvus request into one or a few native requests, sends
//  them through a qv_client_t connected to the proxy (so validation, limits and
//  authentication are exactly those of ZeroMQ clients), and turns the native replies
//  into Milvus's reply shapes: {"code": 0, "data": ...} on success, {"code": N,
//  "message": ...} on failure with Milvus's error numbers (merr), always HTTP 200 as
//  Milvus does. JSON is read and written with jansson; native messages go through the
//  codec. Nothing here keeps state between requests.
#ifndef QV_MILVUS_H_INCLUDED
#define QV_MILVUS_H_INCLUDED

#include "qv_client.h"

#include <stdbool.h>
#include <stddef.h>

#define QV_MILVUS_PREFIX "/v2/vectordb/"

//  Milvus error numbers (pkg/util/merr) the gateway answers with.
#define QV_MILVUS_UNAVAILABLE     2       //  service unavailable
#define QV_MILVUS_INTERNAL        5       //  service internal error
#define QV_MILVUS_COLL_NOT_FOUND  100     //  collection not found
#define QV_MILVUS_PART_NOT_FOUND  200     //  partition not found
#define QV_MILVUS_INDEX_NOT_FOUND 700     //  index not found
#define QV_MILVUS_DB_NOT_FOUND    800     //  database not found
#define QV_MILVUS_INVALID         1100    //  invalid parameter
#define QV_MILVUS_TOO_LARGE       1102    //  parameter too large
#define QV_MILVUS_NOT_PERMITTED   1401    //  privilege not permitted
#define QV_MILVUS_NEED_AUTH       1800    //  user hasn't authenticated
#define QV_MILVUS_BAD_FORMAT      1801    //  can only accept json format request
#define QV_MILVUS_MISSING         1802    //  missing required parameters
#define QV_MILVUS_TIMEOUT         10001   //  timeout

//  How one request is answered.
typedef struct {
    qv_client_t *client;            //  connected to the proxy; one per HTTP connection
    const char *token;              //  from `Authorization: Bearer ...`, or NULL
    bool int64_strings;             //  `Accept-Type-Allow-Int64: false`: int64 ids as strings
} qv_milvus_req_t;

//  Answers the Milvus request for path (e.g. "/v2/vectordb/entities/search") with
//  body (size bytes of JSON). *json_out receives the reply text (malloc'd, caller
//  frees). Returns the HTTP status: 200 for every request of a known endpoint,
//  successful or not; 404 for an unknown path. Called on the HTTP connection's thread.
int
    qv_milvus_handle (const qv_milvus_req_t *req, const char *path, const void *body,
                      size_t size, char **json_out);

//  The reply for a request refused before it reached an endpoint: {"code": code,
//  "message": message} as malloc'd JSON text.
char *
    qv_milvus_error_json (int code, const char *message);

#endif

//  The Milvus REST API v2 gateway against a real `quiver serve --http`: Milvus's REST
//  quickstart with every answer checked, each endpoint with real HTTP requests
//  (libcurl, keep-alive), Milvus's error codes, headers, limits and concurrent clients.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "qv_it_rest.h"
#include "qv_it_server.h"

static qv_it_server_t *s_server;
static int s_port;

static int
s_group_setup (void **state)
{
    (void) state;
    s_port = qv_it_rest_free_port ();
    char http [32];
    snprintf (http, sizeof http, "127.0.0.1:%d", s_port);
    const char *extra [] = { "--http", http, "--max-request-mb", "1", NULL };
    s_server = qv_it_server_new (extra);
    return !s_port || !s_server || qv_it_server_start (s_server) ? -1 : 0;
}

static int
s_group_teardown (void **state)
{
    (void) state;
    qv_it_server_destroy (&s_server);
    return 0;
}

static qv_it_rest_t *
s_rest (void)
{
    qv_it_rest_t *rest = qv_it_rest_new (s_port);
    assert_non_null (rest);
    return rest;
}

//  POSTs body (printf-style) to /v2/vectordb/<path>; fails the test unless the HTTP
//  status is 200 and the reply is {"code": 0, "data": ...}. Returns the whole reply.
static json_t *
s_post_ok (int line, qv_it_rest_t *rest, const char *path, const char *fmt, ...)
{
    char *body;
    va_list ap;
    va_start (ap, fmt);
    assert_true (vasprintf (&body, fmt, ap) >= 0);
    va_end (ap);
    char url [128];
    snprintf (url, sizeof url, "/v2/vectordb/%s", path);
    long status;
    json_t *r = qv_it_rest_send (rest, "POST", url, body, &status);
    if (!r || status != 200 || json_integer_value (json_object_get (r, "code")) != 0
    ||  !json_is_integer (json_object_get (r, "code")) || !json_object_get (r, "data")) {
        char *text = r ? json_dumps (r, JSON_COMPACT) : NULL;
        fail_msg ("line %d: %s %s -> HTTP %ld %s", line, path, body, status, text ? text : "(no JSON)");
    }
    free (body);
    return r;
}

//  Same, expecting HTTP status (200 for every API error, as Milvus) and {"code": code,
//  "message": ...} with needle in the message.
static void
s_post_err (int line, qv_it_rest_t *rest, long want_status, int code, const char *needle,
            const char *path, const char *fmt, ...)
{
    char *body;
    va_list ap;
    va_start (ap, fmt);
    assert_true (vasprintf (&body, fmt, ap) >= 0);
    va_end (ap);
    char url [128];
    snprintf (url, sizeof url, "/v2/vectordb/%s", path);
    long status;
    json_t *r = qv_it_rest_send (rest, "POST", url, body, &status);
    const char *msg = json_string_value (json_object_get (r, "message"));
    if (!r || status != want_status || json_integer_value (json_object_get (r, "code")) != code
    ||  !msg || !strstr (msg, needle) || json_object_get (r, "data")) {
        char *text = r ? json_dumps (r, JSON_COMPACT) : NULL;
        fail_msg ("line %d: %s %s -> HTTP %ld %s; expected HTTP %ld, code %d, a message with '%s'",
                  line, path, body, status, text ? text : "(no JSON)", want_status, code, needle);
    }
    json_decref (r);
    free (body);
}

#define POST_OK(rest, path, ...) s_post_ok (__LINE__, rest, path, __VA_ARGS__)
#define POST_ERR(rest, code, needle, path, ...) \
    s_post_err (__LINE__, rest, 200, code, needle, path, __VA_ARGS__)
#define MATCH(what, got, want) assert_true (qv_it_rest_match ((what), (got), (want)))
#define DATA(r) json_object_get ((r), "data")

//  Milvus's REST quickstart: quick setup from a dimension, rows with a key outside the
//  schema, search (with filter and output fields), query, get, delete.
#define QS_N 10
#define QS_DIM 5
static const float s_vecs [QS_N][QS_DIM] = {
    { 0.36f, -0.60f, 0.18f, -0.26f, 0.90f }, { 0.19f, 0.06f, 0.70f, 0.26f, 0.84f },
    { 0.43f, -0.26f, 0.84f, 0.47f, 0.53f }, { 0.32f, -0.52f, 0.21f, 0.21f, -0.91f },
    { 0.45f, 0.40f, -0.59f, 0.77f, 0.10f }, { -0.78f, -0.55f, 0.40f, -0.46f, 0.12f },
    { 0.98f, 0.70f, -0.02f, 0.87f, 0.41f }, { -0.35f, -0.45f, 0.04f, 0.48f, -0.62f },
    { 0.42f, -0.12f, -0.86f, 0.84f, 0.76f }, { 0.18f, -0.45f, 0.28f, 0.03f, -0.03f },
};
static const char *s_colors [QS_N] = {
    "pink_8682", "red_7025", "orange_6781", "pink_9298", "red_4794",
    "yellow_4222", "red_9392", "grey_8510", "white_9381", "purple_4976"
};

static double
s_cosine (const float *a, const float *b)
{
    double ab = 0, aa = 0, bb = 0;
    for (int d = 0; d < QS_DIM; d++) {
        ab += (double) a [d] * b [d];
        aa += (double) a [d] * a [d];
        bb += (double) b [d] * b [d];
    }
    return ab / sqrt (aa * bb);
}

//  The expected hits of query q among rows whose color starts with prefix (NULL: all),
//  best first: ids into out, k at most; returns how many.
static int
s_expected (const float *q, const char *prefix, int k, int *out, double *sims)
{
    int n = 0;
    int ids [QS_N];
    for (int i = 0; i < QS_N; i++)
        if (!prefix || strncmp (s_colors [i], prefix, strlen (prefix)) == 0)
            ids [n++] = i;
    for (int i = 0; i < n; i++)         //  selection sort by similarity, descending
        for (int j = i + 1; j < n; j++)
            if (s_cosine (q, s_vecs [ids [j]]) > s_cosine (q, s_vecs [ids [i]])) {
                int t = ids [i];
                ids [i] = ids [j];
                ids [j] = t;
            }
    for (int i = 0; i < n && i < k; i++) {
        out [i] = ids [i];
        sims [i] = s_cosine (q, s_vecs [ids [i]]);
    }
    return n < k ? n : k;
}

//  Asserts a search reply: hits are the expected ids with their cosine, and color.
static void
s_assert_hits (json_t *r, const float *q, const char *prefix, int k)
{
    int ids [QS_N];
    double sims [QS_N];
    int n = s_expected (q, prefix, k, ids, sims);
    json_t *data = DATA (r);
    assert_int_equal (json_array_size (data), n);
    MATCH ("topks", json_object_get (r, "topks"), n == 3 ? "[3]" : n == 2 ? "[2]" : "[1]");
    for (int i = 0; i < n; i++) {
        json_t *hit = json_array_get (data, i);
        assert_int_equal (json_integer_value (json_object_get (hit, "id")), ids [i]);
        assert_string_equal (json_string_value (json_object_get (hit, "color")), s_colors [ids [i]]);
        double got = json_number_value (json_object_get (hit, "distance"));
        if (fabs (got - sims [i]) > 1e-5)
            fail_msg ("hit %d (id %d): distance %.7f, expected cosine %.7f", i, ids [i], got, sims [i]);
        assert_int_equal (json_object_size (hit), 3);      //  id, distance, color
    }
}

static void
test_rest_quickstart (void **state)
{
    (void) state;
    qv_it_rest_t *rest = s_rest ();
    json_t *r = POST_OK (rest, "collections/create", "{\"collectionName\": \"quick_setup\", \"dimension\": %d}", QS_DIM);
    MATCH ("create", DATA (r), "{}");
    json_decref (r);
    //  Milvus's defaults: id + vector, COSINE, AUTOINDEX (HNSW here), dynamic field on
    r = POST_OK (rest, "collections/describe", "{\"collectionName\": \"quick_setup\"}");
    json_t *d = DATA (r);
    MATCH ("enableDynamicField", json_object_get (d, "enableDynamicField"), "true");
    MATCH ("fields", json_object_get (d, "fields"),
           "[{\"name\": \"id\", \"type\": \"Int64\", \"primaryKey\": true, \"autoId\": false,"
           "  \"partitionKey\": false, \"nullable\": false, \"params\": [], \"description\": \"\"},"
           " {\"name\": \"vector\", \"type\": \"FloatVector\", \"primaryKey\": false, \"autoId\": false,"
           "  \"partitionKey\": false, \"nullable\": false, \"params\": [{\"key\": \"dim\", \"value\": \"5\"}],"
           "  \"description\": \"\"}]");
    MATCH ("indexes", json_object_get (d, "indexes"),
           "[{\"fieldName\": \"vector\", \"indexName\": \"vector\", \"metricType\": \"COSINE\"}]");
    MATCH ("load", json_object_get (d, "load"), "\"LoadStateLoaded\"");
    json_decref (r);
    r = POST_OK (rest, "indexes/describe", "{\"collectionName\": \"quick_setup\", \"indexName\": \"vector\"}");
    MATCH ("indexType", json_object_get (json_array_get (DATA (r), 0), "indexType"), "\"HNSW\"");
    json_decref (r);

    //  Insert rows with a `color` the schema does not have
    char body [8192];
    int at = snprintf (body, sizeof body, "{\"collectionName\": \"quick_setup\", \"data\": [");
    for (int i = 0; i < QS_N; i++) {
        at += snprintf (body + at, sizeof body - (size_t) at, "%s{\"id\": %d, \"vector\": [", i ? ", " : "", i);
        for (int d = 0; d < QS_DIM; d++)
            at += snprintf (body + at, sizeof body - (size_t) at, "%s%.2f", d ? ", " : "", (double) s_vecs [i][d]);
        at += snprintf (body + at, sizeof body - (size_t) at, "], \"color\": \"%s\"}", s_colors [i]);
    }
    snprintf (body + at, sizeof body - (size_t) at, "]}");
    r = POST_OK (rest, "entities/insert", "%s", body);
    MATCH ("insert", DATA (r), "{\"insertCount\": 10, \"insertIds\": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}");
    json_decref (r);

    //  Search: the 3 nearest by cosine, with the dynamic `color`
    const float *q = s_vecs [0];
    r = POST_OK (rest, "entities/search", "{\"collectionName\": \"quick_setup\", \"data\": [[%.2f, %.2f, %.2f, %.2f, %.2f]],"
                 " \"annsField\": \"vector\", \"limit\": 3, \"outputFields\": [\"color\"]}",
                 (double) q [0], (double) q [1], (double) q [2], (double) q [3], (double) q [4]);
    s_assert_hits (r, q, NULL, 3);
    json_decref (r);
    //  ... filtered on the dynamic key
    r = POST_OK (rest, "entities/search", "{\"collectionName\": \"quick_setup\", \"data\": [[%.2f, %.2f, %.2f, %.2f, %.2f]],"
                 " \"limit\": 3, \"filter\": \"color like \\\"red%%\\\"\", \"outputFields\": [\"color\"]}",
                 (double) q [0], (double) q [1], (double) q [2], (double) q [3], (double) q [4]);
    s_assert_hits (r, q, "red", 3);
    json_decref (r);

    //  Query by the dynamic key: rows with id and color
    r = POST_OK (rest, "entities/query", "{\"collectionName\": \"quick_setup\", \"filter\": \"color like \\\"red%%\\\"\","
                 " \"outputFields\": [\"color\"], \"limit\": 3}");
    MATCH ("query", DATA (r), "[{\"id\": 1, \"color\": \"red_7025\"}, {\"id\": 4, \"color\": \"red_4794\"},"
                              " {\"id\": 6, \"color\": \"red_9392\"}]");
    json_decref (r);
    //  Get: every field by default, the dynamic key among them
    r = POST_OK (rest, "entities/get", "{\"collectionName\": \"quick_setup\", \"id\": [0, 3]}");
    MATCH ("get", DATA (r), "[{\"id\": 0, \"vector\": [0.36, -0.6, 0.18, -0.26, 0.9], \"color\": \"pink_8682\"},"
                            " {\"id\": 3, \"vector\": [0.32, -0.52, 0.21, 0.21, -0.91], \"color\": \"pink_9298\"}]");
    json_decref (r);
    //  Delete by filter, then the rows are gone everywhere
    r = POST_OK (rest, "entities/delete", "{\"collectionName\": \"quick_setup\", \"filter\": \"id in [0, 1]\"}");
    MATCH ("delete", DATA (r), "{}");
    json_decref (r);
    r = POST_OK (rest, "entities/get", "{\"collectionName\": \"quick_setup\", \"id\": [0, 1, 2], \"outputFields\": [\"color\"]}");
    MATCH ("get after delete", DATA (r), "[{\"id\": 2, \"color\": \"orange_6781\"}]");
    json_decref (r);
    r = POST_OK (rest, "entities/query", "{\"collectionName\": \"quick_setup\", \"filter\": \"\", \"outputFields\": [\"count(*)\"]}");
    MATCH ("count", DATA (r), "[{\"count(*)\": 8}]");
    json_decref (r);
    r = POST_OK (rest, "collections/drop", "{\"collectionName\": \"quick_setup\"}");
    json_decref (r);
    qv_it_rest_destroy (&rest);
}

static void
test_rest_collections (void **state)
{
    (void) state;
    qv_it_rest_t *rest = s_rest ();
    //  With a schema and index parameters (the metric comes from the index, as in Milvus)
    json_t *r = POST_OK (rest, "collections/create",
        "{\"collectionName\": \"books\", \"dbName\": \"default\", \"description\": \"a shelf\","
        " \"schema\": {\"autoID\": false, \"enableDynamicField\": false, \"fields\": ["
        "  {\"fieldName\": \"book_id\", \"dataType\": \"Int64\", \"isPrimary\": true},"
        "  {\"fieldName\": \"title\", \"dataType\": \"VarChar\", \"elementTypeParams\": {\"max_length\": \"64\"}},"
        "  {\"fieldName\": \"year\", \"dataType\": \"Int32\", \"nullable\": true},"
        "  {\"fieldName\": \"embedding\", \"dataType\": \"FloatVector\", \"elementTypeParams\": {\"dim\": 4}}]},"
        " \"indexParams\": [{\"fieldName\": \"embedding\", \"metricType\": \"L2\", \"indexType\": \"IVF_FLAT\","
        "  \"params\": {\"nlist\": \"8\"}}, {\"fieldName\": \"year\", \"indexName\": \"year\"}],"
        " \"params\": {\"consistencyLevel\": \"Bounded\", \"ttlSeconds\": 0}}");
    json_decref (r);
    r = POST_OK (rest, "collections/describe", "{\"collectionName\": \"books\", \"dbName\": \"_default\"}");
    json_t *d = DATA (r);
    MATCH ("name", json_object_get (d, "collectionName"), "\"books\"");
    MATCH ("description", json_object_get (d, "description"), "\"a shelf\"");
    MATCH ("dynamic", json_object_get (d, "enableDynamicField"), "false");
    MATCH ("consistency", json_object_get (d, "consistencyLevel"), "\"Bounded\"");
    MATCH ("autoId", json_object_get (d, "autoId"), "false");
    MATCH ("title", json_array_get (json_object_get (d, "fields"), 1),
           "{\"name\": \"title\", \"type\": \"VarChar\", \"primaryKey\": false, \"autoId\": false,"
           " \"partitionKey\": false, \"nullable\": false, \"params\": [{\"key\": \"max_length\", \"value\": \"64\"}],"
           " \"description\": \"\"}");
    MATCH ("year nullable", json_object_get (json_array_get (json_object_get (d, "fields"), 2), "nullable"), "true");
    MATCH ("indexes", json_object_get (d, "indexes"),
           "[{\"fieldName\": \"year\", \"indexName\": \"year\", \"metricType\": \"\"},"
           " {\"fieldName\": \"embedding\", \"indexName\": \"embedding\", \"metricType\": \"L2\"}]");
    json_decref (r);
    r = POST_OK (rest, "indexes/describe", "{\"collectionName\": \"books\", \"indexName\": \"year\"}");
    MATCH ("AUTOINDEX on an int", json_object_get (json_array_get (DATA (r), 0), "indexType"), "\"INVERTED\"");
    json_decref (r);
    r = POST_OK (rest, "indexes/describe", "{\"collectionName\": \"books\", \"indexName\": \"embedding\"}");
    MATCH ("IVF_FLAT", json_object_get (json_array_get (DATA (r), 0), "indexType"), "\"IVF_FLAT\"");
    MATCH ("nlist", json_object_get (json_object_get (json_array_get (DATA (r), 0), "params"), "nlist"), "8");
    json_decref (r);

    r = POST_OK (rest, "collections/has", "{\"collectionName\": \"books\"}");
    MATCH ("has", DATA (r), "{\"has\": true}");
    json_decref (r);
    r = POST_OK (rest, "collections/has", "{\"collectionName\": \"nothing_here\"}");
    MATCH ("has not", DATA (r), "{\"has\": false}");
    json_decref (r);
    r = POST_OK (rest, "collections/list", "{}");
    assert_true (json_is_array (DATA (r)));
    bool listed = false;
    size_t i;
    json_t *name;
    json_array_foreach (DATA (r), i, name)
        listed |= json_is_string (name) && !strcmp (json_string_value (name), "books");
    assert_true (listed);
    json_decref (r);
    r = POST_OK (rest, "collections/load", "{\"collectionName\": \"books\"}");
    MATCH ("load", DATA (r), "{}");
    json_decref (r);
    r = POST_OK (rest, "collections/get_load_state", "{\"collectionName\": \"books\"}");
    MATCH ("load state", DATA (r), "{\"loadState\": \"LoadStateLoaded\", \"loadProgress\": 100}");
    json_decref (r);
    r = POST_OK (rest, "collections/release", "{\"collectionName\": \"books\"}");
    MATCH ("release", DATA (r), "{}");
    json_decref (r);
    //  alter_properties: the TTL, as a number or a string of digits
    r = POST_OK (rest, "collections/alter_properties",
                 "{\"collectionName\": \"books\", \"properties\": {\"collection.ttl.seconds\": 3600}}");
    MATCH ("alter", DATA (r), "{}");
    json_decref (r);
    r = POST_OK (rest, "collections/describe", "{\"collectionName\": \"books\"}");
    MATCH ("ttl", json_object_get (DATA (r), "properties"),
           "[{\"key\": \"collection.ttl.seconds\", \"value\": \"3600\"}]");
    json_decref (r);
    r = POST_OK (rest, "collections/alter_properties",
                 "{\"collectionName\": \"books\", \"properties\": {\"collection.ttl.seconds\": \"0\"}}");
    json_decref (r);
    r = POST_OK (rest, "collections/describe", "{\"collectionName\": \"books\"}");
    MATCH ("ttl off", json_object_get (DATA (r), "properties"), "[]");
    json_decref (r);
    POST_ERR (rest, 1100, "mmap.enabled", "collections/alter_properties",
              "{\"collectionName\": \"books\", \"properties\": {\"mmap.enabled\": true}}");
    POST_ERR (rest, 1100, "non-negative", "collections/alter_properties",
              "{\"collectionName\": \"books\", \"properties\": {\"collection.ttl.seconds\": \"soon\"}}");
    POST_ERR (rest, 1802, "'properties' is required", "collections/alter_properties",
              "{\"collectionName\": \"books\"}");
    POST_ERR (rest, 100, "nothing_here", "collections/alter_properties",
              "{\"collectionName\": \"nothing_here\", \"properties\": {\"collection.ttl.seconds\": 5}}");

    //  Errors, with Milvus's numbers
    POST_ERR (rest, 100, "collection not found", "collections/describe", "{\"collectionName\": \"nothing_here\"}");
    POST_ERR (rest, 100, "nothing_here", "collections/load", "{\"collectionName\": \"nothing_here\"}");
    POST_ERR (rest, 100, "nothing_here", "collections/get_load_state", "{\"collectionName\": \"nothing_here\"}");
    POST_ERR (rest, 100, "nothing_here", "collections/drop", "{\"collectionName\": \"nothing_here\"}");
    POST_ERR (rest, 1802, "'collectionName' is required", "collections/describe", "{}");
    POST_ERR (rest, 1801, "'collectionName' must be a string", "collections/has", "{\"collectionName\": 5}");
    POST_ERR (rest, 1100, "already exists", "collections/create", "{\"collectionName\": \"books\", \"dimension\": 4}");
    POST_ERR (rest, 1802, "'dimension' is required", "collections/create", "{\"collectionName\": \"nodim\"}");
    POST_ERR (rest, 1100, "is not valid", "collections/create", "{\"collectionName\": \"bad-name\", \"dimension\": 4}");
    POST_ERR (rest, 1100, "data type Array is not supported", "collections/create",
              "{\"collectionName\": \"arr\", \"schema\": {\"fields\": [{\"fieldName\": \"a\", \"dataType\": \"Array\"}]}}");
    //  A failed index creation leaves no collection behind
    POST_ERR (rest, 1100, "index", "collections/create",
              "{\"collectionName\": \"badidx\", \"schema\": {\"fields\": ["
              " {\"fieldName\": \"id\", \"dataType\": \"Int64\", \"isPrimary\": true},"
              " {\"fieldName\": \"v\", \"dataType\": \"FloatVector\", \"elementTypeParams\": {\"dim\": 4}}]},"
              " \"indexParams\": [{\"fieldName\": \"v\", \"indexType\": \"NO_SUCH_INDEX\"}]}");
    r = POST_OK (rest, "collections/has", "{\"collectionName\": \"badidx\"}");
    MATCH ("rolled back", DATA (r), "{\"has\": false}");
    json_decref (r);

    r = POST_OK (rest, "collections/drop", "{\"collectionName\": \"books\"}");
    MATCH ("drop", DATA (r), "{}");
    json_decref (r);
    r = POST_OK (rest, "collections/has", "{\"collectionName\": \"books\"}");
    MATCH ("dropped", DATA (r), "{\"has\": false}");
    json_decref (r);
    qv_it_rest_destroy (&rest);
}

static void
test_rest_entities (void **state)
{
    (void) state;
    qv_it_rest_t *rest = s_rest ();
    json_t *r = POST_OK (rest, "collections/create",
        "{\"collectionName\": \"ents\", \"schema\": {\"fields\": ["
        "  {\"fieldName\": \"pk\", \"dataType\": \"VarChar\", \"isPrimary\": true, \"elementTypeParams\": {\"max_length\": 16}},"
        "  {\"fieldName\": \"n\", \"dataType\": \"Int64\"},"
        "  {\"fieldName\": \"v\", \"dataType\": \"FloatVector\", \"elementTypeParams\": {\"dim\": 2}}]},"
        " \"indexParams\": [{\"fieldName\": \"v\", \"metricType\": \"L2\", \"indexType\": \"FLAT\"}]}");
    json_decref (r);
    r = POST_OK (rest, "entities/insert", "{\"collectionName\": \"ents\", \"data\": ["
                 "{\"pk\": \"a\", \"n\": 1, \"v\": [0, 0]}, {\"pk\": \"b\", \"n\": 2, \"v\": [1, 0]},"
                 "{\"pk\": \"c\", \"n\": 3, \"v\": [2, 0]}, {\"pk\": \"d\", \"n\": 4, \"v\": [3, 0]}]}");
    MATCH ("insert", DATA (r), "{\"insertCount\": 4, \"insertIds\": [\"a\", \"b\", \"c\", \"d\"]}");
    json_decref (r);
    r = POST_OK (rest, "entities/upsert", "{\"collectionName\": \"ents\", \"data\": [{\"pk\": \"b\", \"n\": 20, \"v\": [1, 1]}]}");
    MATCH ("upsert", DATA (r), "{\"upsertCount\": 1, \"upsertIds\": [\"b\"]}");
    json_decref (r);
    r = POST_OK (rest, "entities/get", "{\"collectionName\": \"ents\", \"id\": \"b\", \"outputFields\": [\"n\"]}");
    MATCH ("get upserted", DATA (r), "[{\"pk\": \"b\", \"n\": 20}]");
    json_decref (r);
    //  Two query vectors: results flattened, topks says where each query's hits are
    r = POST_OK (rest, "entities/search", "{\"collectionName\": \"ents\", \"data\": [[0, 0], [3.1, 0]], \"limit\": 2,"
                 " \"outputFields\": [\"n\"], \"searchParams\": {\"metricType\": \"L2\", \"params\": {\"nprobe\": 4}}}");
    MATCH ("topks", json_object_get (r, "topks"), "[2, 2]");
    static const char *want_ids [] = { "a", "b", "d", "c" };
    static const int want_n [] = { 1, 20, 4, 3 };
    static const double want_d [] = { 0, 2, 0.01, 1.21 };     //  squared L2
    assert_int_equal (json_array_size (DATA (r)), 4);
    for (int i = 0; i < 4; i++) {
        json_t *hit = json_array_get (DATA (r), (size_t) i);
        assert_string_equal (json_string_value (json_object_get (hit, "id")), want_ids [i]);
        assert_int_equal (json_integer_value (json_object_get (hit, "n")), want_n [i]);
        assert_true (fabs (json_number_value (json_object_get (hit, "distance")) - want_d [i]) < 1e-4);
        assert_int_equal (json_object_size (hit), 3);
    }
    json_decref (r);
    //  offset, filter, range search
    r = POST_OK (rest, "entities/search", "{\"collectionName\": \"ents\", \"data\": [[0, 0]], \"limit\": 2, \"offset\": 1,"
                 " \"filter\": \"n < 10\"}");
    MATCH ("offset + filter", DATA (r), "[{\"id\": \"c\", \"distance\": 4.0}, {\"id\": \"d\", \"distance\": 9.0}]");
    json_decref (r);
    r = POST_OK (rest, "entities/search", "{\"collectionName\": \"ents\", \"data\": [[0, 0]], \"limit\": 10,"
                 " \"searchParams\": {\"params\": {\"radius\": 5, \"range_filter\": 1}}}");
    MATCH ("range", DATA (r), "[{\"id\": \"b\", \"distance\": 2.0}, {\"id\": \"c\", \"distance\": 4.0}]");
    json_decref (r);
    //  query: limit, offset, default output fields ("*")
    r = POST_OK (rest, "entities/query", "{\"collectionName\": \"ents\", \"filter\": \"n >= 3\", \"limit\": 1, \"offset\": 1}");
    MATCH ("query page", DATA (r), "[{\"pk\": \"d\", \"n\": 4, \"v\": [3.0, 0.0]}]");
    json_decref (r);
    //  delete by id (one, or a list)
    r = POST_OK (rest, "entities/delete", "{\"collectionName\": \"ents\", \"id\": [\"a\", \"c\"]}");
    json_decref (r);
    r = POST_OK (rest, "entities/query", "{\"collectionName\": \"ents\", \"filter\": \"\", \"outputFields\": [\"pk\"]}");
    MATCH ("after delete", DATA (r), "[{\"pk\": \"d\"}, {\"pk\": \"b\"}]");   //  b's upsert is the newest row
    json_decref (r);

    //  Errors: the proxy's checks, in Milvus's numbers
    POST_ERR (rest, 1100, "vector has 3 values, expected dim 2", "entities/insert",
              "{\"collectionName\": \"ents\", \"data\": [{\"pk\": \"x\", \"n\": 1, \"v\": [1, 2, 3]}]}");
    POST_ERR (rest, 1100, "unknown field 'extra'", "entities/insert",
              "{\"collectionName\": \"ents\", \"data\": [{\"pk\": \"x\", \"n\": 1, \"v\": [1, 2], \"extra\": 1}]}");
    POST_ERR (rest, 1802, "'data' is required", "entities/insert", "{\"collectionName\": \"ents\"}");
    POST_ERR (rest, 1801, "'data' must be an array", "entities/insert", "{\"collectionName\": \"ents\", \"data\": 5}");
    r = POST_OK (rest, "entities/insert", "{\"collectionName\": \"ents\", \"data\": {\"pk\": \"e\", \"n\": 5, \"v\": [4, 0]}}");
    MATCH ("one row", DATA (r), "{\"insertCount\": 1, \"insertIds\": [\"e\"]}");
    json_decref (r);
    POST_ERR (rest, 100, "collection not found", "entities/insert",
              "{\"collectionName\": \"nowhere\", \"data\": [{\"pk\": \"x\"}]}");
    POST_ERR (rest, 1100, "unknown field 'nope'", "entities/query", "{\"collectionName\": \"ents\", \"filter\": \"nope > 1\"}");
    POST_ERR (rest, 1100, "limit", "entities/search", "{\"collectionName\": \"ents\", \"data\": [[0, 0]], \"limit\": 20000}");
    POST_ERR (rest, 1100, "grouping", "entities/search",
              "{\"collectionName\": \"ents\", \"data\": [[0, 0]], \"groupingField\": \"n\"}");
    POST_ERR (rest, 1100, "consistencyLevel", "entities/query",
              "{\"collectionName\": \"ents\", \"filter\": \"\", \"consistencyLevel\": \"Sometimes\"}");
    POST_ERR (rest, 1802, "'id' is required", "entities/get", "{\"collectionName\": \"ents\"}");
    POST_ERR (rest, 1802, "'id' is required", "entities/delete", "{\"collectionName\": \"ents\"}");
    r = POST_OK (rest, "collections/drop", "{\"collectionName\": \"ents\"}");
    json_decref (r);
    qv_it_rest_destroy (&rest);
}

static void
test_rest_indexes_and_partitions (void **state)
{
    (void) state;
    qv_it_rest_t *rest = s_rest ();
    json_t *r = POST_OK (rest, "collections/create",
        "{\"collectionName\": \"parts\", \"schema\": {\"enableDynamicField\": true, \"fields\": ["
        "  {\"fieldName\": \"id\", \"dataType\": \"Int64\", \"isPrimary\": true},"
        "  {\"fieldName\": \"price\", \"dataType\": \"Double\"},"
        "  {\"fieldName\": \"v\", \"dataType\": \"FloatVector\", \"elementTypeParams\": {\"dim\": 2}}]}}");
    json_decref (r);
    r = POST_OK (rest, "indexes/list", "{\"collectionName\": \"parts\"}");
    MATCH ("no index", DATA (r), "[]");
    json_decref (r);
    r = POST_OK (rest, "indexes/create", "{\"collectionName\": \"parts\", \"indexParams\": ["
                 "{\"fieldName\": \"v\", \"indexName\": \"v\", \"metricType\": \"COSINE\", \"indexType\": \"HNSW\","
                 " \"params\": {\"M\": 8, \"efConstruction\": 64}}, {\"fieldName\": \"price\", \"indexType\": \"AUTOINDEX\"}]}");
    MATCH ("create index", DATA (r), "{}");
    json_decref (r);
    r = POST_OK (rest, "indexes/list", "{\"collectionName\": \"parts\"}");
    MATCH ("indexes", DATA (r), "[\"price\", \"v\"]");
    json_decref (r);
    r = POST_OK (rest, "indexes/describe", "{\"collectionName\": \"parts\", \"indexName\": \"v\"}");
    json_t *ix = json_array_get (DATA (r), 0);
    MATCH ("hnsw", json_object_get (ix, "indexType"), "\"HNSW\"");
    MATCH ("metric", json_object_get (ix, "metricType"), "\"COSINE\"");
    MATCH ("M", json_object_get (json_object_get (ix, "params"), "M"), "8");
    MATCH ("state", json_object_get (ix, "indexState"), "\"Finished\"");
    MATCH ("field", json_object_get (ix, "fieldName"), "\"v\"");
    json_decref (r);
    r = POST_OK (rest, "indexes/describe", "{\"collectionName\": \"parts\", \"indexName\": \"price\"}");
    MATCH ("STL_SORT", json_object_get (json_array_get (DATA (r), 0), "indexType"), "\"STL_SORT\"");
    json_decref (r);
    r = POST_OK (rest, "indexes/drop", "{\"collectionName\": \"parts\", \"indexName\": \"price\"}");
    json_decref (r);
    r = POST_OK (rest, "indexes/list", "{\"collectionName\": \"parts\"}");
    MATCH ("after drop", DATA (r), "[\"v\"]");
    json_decref (r);
    POST_ERR (rest, 1100, "metric must equal", "indexes/create",
              "{\"collectionName\": \"parts\", \"indexParams\": [{\"fieldName\": \"v\", \"metricType\": \"L2\"}]}");
    POST_ERR (rest, 700, "index not found", "indexes/describe", "{\"collectionName\": \"parts\", \"indexName\": \"nope\"}");
    POST_ERR (rest, 700, "no index", "indexes/drop", "{\"collectionName\": \"parts\", \"indexName\": \"price\"}");
    POST_ERR (rest, 1802, "'indexName' is required", "indexes/drop", "{\"collectionName\": \"parts\"}");
    POST_ERR (rest, 1802, "'indexParams' is required", "indexes/create", "{\"collectionName\": \"parts\"}");

    //  Partitions
    r = POST_OK (rest, "partitions/create", "{\"collectionName\": \"parts\", \"partitionName\": \"p2024\"}");
    MATCH ("create partition", DATA (r), "{}");
    json_decref (r);
    r = POST_OK (rest, "partitions/list", "{\"collectionName\": \"parts\"}");
    MATCH ("partitions", DATA (r), "[\"_default\", \"p2024\"]");
    json_decref (r);
    r = POST_OK (rest, "partitions/has", "{\"collectionName\": \"parts\", \"partitionName\": \"p2024\"}");
    MATCH ("has partition", DATA (r), "{\"has\": true}");
    json_decref (r);
    r = POST_OK (rest, "partitions/has", "{\"collectionName\": \"parts\", \"partitionName\": \"p1999\"}");
    MATCH ("has no partition", DATA (r), "{\"has\": false}");
    json_decref (r);
    r = POST_OK (rest, "entities/insert", "{\"collectionName\": \"parts\", \"partitionName\": \"p2024\", \"data\": ["
                 "{\"id\": 1, \"price\": 9.5, \"v\": [1, 0], \"shop\": \"north\"}]}");
    json_decref (r);
    r = POST_OK (rest, "entities/insert", "{\"collectionName\": \"parts\", \"data\": [{\"id\": 2, \"price\": 3, \"v\": [0, 1]}]}");
    json_decref (r);
    r = POST_OK (rest, "entities/search", "{\"collectionName\": \"parts\", \"data\": [[1, 1]], \"partitionNames\": [\"p2024\"],"
                 " \"outputFields\": [\"*\"]}");
    assert_int_equal (json_array_size (DATA (r)), 1);
    json_t *hit = json_array_get (DATA (r), 0);
    MATCH ("partition hit", json_object_get (hit, "shop"), "\"north\"");
    MATCH ("partition hit price", json_object_get (hit, "price"), "9.5");
    json_decref (r);
    r = POST_OK (rest, "entities/query", "{\"collectionName\": \"parts\", \"filter\": \"shop == \\\"north\\\"\","
                 " \"partitionNames\": [\"_default\"]}");
    MATCH ("other partition", DATA (r), "[]");
    json_decref (r);
    POST_ERR (rest, 200, "partition", "entities/insert",
              "{\"collectionName\": \"parts\", \"partitionName\": \"p1999\", \"data\": [{\"id\": 3, \"price\": 1, \"v\": [1, 1]}]}");
    POST_ERR (rest, 200, "p1999", "partitions/drop", "{\"collectionName\": \"parts\", \"partitionName\": \"p1999\"}");
    POST_ERR (rest, 1100, "already exists", "partitions/create", "{\"collectionName\": \"parts\", \"partitionName\": \"p2024\"}");
    POST_ERR (rest, 1802, "'partitionName' is required", "partitions/create", "{\"collectionName\": \"parts\"}");
    r = POST_OK (rest, "partitions/drop", "{\"collectionName\": \"parts\", \"partitionName\": \"p2024\"}");
    json_decref (r);
    r = POST_OK (rest, "partitions/list", "{\"collectionName\": \"parts\"}");
    MATCH ("after drop", DATA (r), "[\"_default\"]");
    json_decref (r);
    r = POST_OK (rest, "collections/drop", "{\"collectionName\": \"parts\"}");
    json_decref (r);
    qv_it_rest_destroy (&rest);
}

static void
test_rest_protocol_edges (void **state)
{
    (void) state;
    qv_it_rest_t *rest = s_rest ();
    long status;
    //  Keep-alive: later requests reuse the connection
    json_t *r = POST_OK (rest, "collections/list", "{}");
    json_decref (r);
    r = POST_OK (rest, "collections/list", "");        //  an empty body is {}
    json_decref (r);
    assert_int_equal (qv_it_rest_connects (rest), 0);
    //  Unknown path, wrong method, bad JSON, another database
    r = qv_it_rest_send (rest, "POST", "/v2/vectordb/collections/rename", "{}", &status);
    assert_int_equal (status, 404);
    assert_non_null (strstr (json_string_value (json_object_get (r, "message")), "no endpoint"));
    json_decref (r);
    r = qv_it_rest_send (rest, "POST", "/v1/vector/collections", "{}", &status);
    assert_int_equal (status, 404);
    json_decref (r);
    r = qv_it_rest_send (rest, "GET", "/v2/vectordb/collections/list", NULL, &status);
    assert_int_equal (status, 405);
    json_decref (r);
    POST_ERR (rest, 1801, "can only accept json", "collections/list", "{\"dbName\": ");
    POST_ERR (rest, 1801, "must be a JSON object", "collections/list", "[1, 2]");
    POST_ERR (rest, 1801, "duplicate", "collections/has", "{\"collectionName\": \"a\", \"collectionName\": \"b\"}");
    POST_ERR (rest, 800, "database not found", "collections/list", "{\"dbName\": \"analytics\"}");
    //  Bearer token: accepted and passed on (ignored by a server without --auth)
    qv_it_rest_t *authed = s_rest ();
    qv_it_rest_header (authed, "Authorization: Bearer root:Milvus");
    r = POST_OK (authed, "collections/create", "{\"collectionName\": \"edges\", \"dimension\": 2, \"autoID\": true}");
    json_decref (r);
    //  auto ids as strings for clients that cannot hold int64 (Accept-Type-Allow-Int64: false)
    qv_it_rest_header (authed, "Accept-Type-Allow-Int64: false");
    r = POST_OK (authed, "entities/insert", "{\"collectionName\": \"edges\", \"data\": [{\"vector\": [1, 2]}]}");
    json_t *id = json_array_get (json_object_get (DATA (r), "insertIds"), 0);
    assert_true (json_is_string (id));
    char want [96];
    snprintf (want, sizeof want, "{\"id\": %s}", json_string_value (id));
    json_decref (r);
    r = POST_OK (rest, "entities/query", "{\"collectionName\": \"edges\", \"filter\": \"\", \"outputFields\": [\"id\"]}");
    MATCH ("numeric id by default", json_array_get (DATA (r), 0), want);
    json_decref (r);
    qv_it_rest_destroy (&authed);
    //  A body over the request limit (1 MiB here) is refused with Milvus's "too large"
    size_t big = (1u << 20) + 100;
    char *body = malloc (big + 64);
    int at = snprintf (body, big + 64, "{\"collectionName\": \"edges\", \"pad\": \"");
    memset (body + at, 'x', big);
    strcpy (body + at + big, "\"}");
    r = qv_it_rest_send (rest, "POST", "/v2/vectordb/collections/has", body, &status);
    assert_int_equal (status, 413);
    MATCH ("too large", json_object_get (r, "code"), "1102");
    json_decref (r);
    free (body);
    r = POST_OK (rest, "collections/drop", "{\"collectionName\": \"edges\"}");
    json_decref (r);
    qv_it_rest_destroy (&rest);
}

//  Clients on their own connections at once: each gets its own answers.
#define S_THREADS 4
#define S_ROUNDS 40
static void *
s_racer (void *arg)
{
    int t = (int) (intptr_t) arg;
    qv_it_rest_t *rest = qv_it_rest_new (s_port);
    char body [256], path [] = "/v2/vectordb/entities/get";
    int wrong = 0;
    for (int i = 0; rest && i < S_ROUNDS; i++) {
        int id = t * S_ROUNDS + i;
        snprintf (body, sizeof body, "{\"collectionName\": \"race\", \"id\": %d, \"outputFields\": [\"tag\"]}", id);
        long status;
        json_t *r = qv_it_rest_send (rest, "POST", path, body, &status);
        json_t *row = json_array_get (json_object_get (r, "data"), 0);
        wrong += status != 200 || json_integer_value (json_object_get (row, "id")) != id
               || json_integer_value (json_object_get (row, "tag")) != id * 7;
        json_decref (r);
    }
    bool made = rest != NULL;
    qv_it_rest_destroy (&rest);
    return (void *) (intptr_t) (made ? wrong : -1);
}

static void
test_rest_concurrent_clients (void **state)
{
    (void) state;
    qv_it_rest_t *rest = s_rest ();
    json_t *r = POST_OK (rest, "collections/create", "{\"collectionName\": \"race\", \"dimension\": 2}");
    json_decref (r);
    char *body = malloc (64 * S_THREADS * S_ROUNDS + 64);
    int at = sprintf (body, "{\"collectionName\": \"race\", \"data\": [");
    for (int i = 0; i < S_THREADS * S_ROUNDS; i++)
        at += sprintf (body + at, "%s{\"id\": %d, \"vector\": [1, %d], \"tag\": %d}", i ? ", " : "", i, i, i * 7);
    strcpy (body + at, "]}");
    r = POST_OK (rest, "entities/insert", "%s", body);
    free (body);
    json_decref (r);
    pthread_t th [S_THREADS];
    for (int t = 0; t < S_THREADS; t++)
        assert_int_equal (pthread_create (&th [t], NULL, s_racer, (void *) (intptr_t) t), 0);
    for (int t = 0; t < S_THREADS; t++) {
        void *res;
        pthread_join (th [t], &res);
        assert_int_equal ((int) (intptr_t) res, 0);
    }
    qv_it_rest_destroy (&rest);
}

//  A bad --http address stops the server at start with a message saying what to give.
static void
test_rest_bad_address (void **state)
{
    (void) state;
    static const char *bad [] = { "nonsense", "127.0.0.1:99999", "example.org:80", NULL };
    qv_it_assert_option_refused ("--http", bad);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_rest_quickstart),
        cmocka_unit_test (test_rest_collections),
        cmocka_unit_test (test_rest_entities),
        cmocka_unit_test (test_rest_indexes_and_partitions),
        cmocka_unit_test (test_rest_protocol_edges),
        cmocka_unit_test (test_rest_concurrent_clients),
        cmocka_unit_test (test_rest_bad_address),
    };
    if (getenv ("QV_IT_ONLY"))
        cmocka_set_test_filter (getenv ("QV_IT_ONLY"));
    return cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
}

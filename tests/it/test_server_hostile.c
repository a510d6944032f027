//  Hostile input and hostile conditions against a real `quiver serve`: encodings
//  (a key twice, invalid UTF-8, NaN, unknown params keys, huge offset and ttl),
//  credentials in URLs kept out of logs and replies, and a full disk (a small tmpfs,
//  when the test may mount one): requests that wait on storage answer UNAVAILABLE
//  naming the cause, the log counts repeated failures, and nothing acknowledged is lost.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qv_codec.h"
#include "qv_it_server.h"

#define CALL_OK QV_IT_CALL_OK
#define CALL_ERR QV_IT_CALL_ERR

static qv_it_server_t *s_server;

static int
s_group_setup (void **state)
{
    (void) state;
    s_server = qv_it_server_new (NULL);
    return s_server && qv_it_server_start (s_server) == 0 ? 0 : -1;
}

static int
s_group_teardown (void **state)
{
    (void) state;
    qv_it_server_destroy (&s_server);
    return 0;
}

//  Sends the bytes written to w; the reply must be strictly valid msgpack (UTF-8, no
//  key twice), an error with code, and its message must contain part.
static void
s_expect_error (qv_it_client_t *c, qv_wr_t *w, const char *code, const char *part, int line)
{
    qv_doc_t *r = qv_it_call (c, w);
    if (!r)
        fail_msg ("line %d: no reply (or one a decoder refuses)", line);
    if (qv_val_check_strict (qv_doc_root (r)))
        fail_msg ("line %d: the reply breaks the encoding rules", line);
    if (qv_it_ok (r) || strcmp (qv_it_code (r), code) || (part && !strstr (qv_it_error (r), part)))
        fail_msg ("line %d: got %s '%s', expected %s mentioning '%s'", line,
                  qv_it_ok (r) ? "ok" : qv_it_code (r), qv_it_error (r), code, part ? part : "");
    qv_doc_destroy (&r);
}
#define EXPECT_ERROR(c, w, code, part) s_expect_error ((c), (w), (code), (part), __LINE__)

//  A search of collection e with one query vector (DIM 2) and one extra field,
//  written by the caller after this (nextra more key/value pairs).
static void
s_search_head (qv_wr_t *w, size_t nextra)
{
    qv_wr_map (w, 3 + nextra);
    qv_wr_str (w, "op"); qv_wr_str (w, "search");
    qv_wr_str (w, "collection"); qv_wr_str (w, "e");
    qv_wr_str (w, "vectors"); qv_wr_array (w, 1); qv_wr_array (w, 2);
    qv_wr_float (w, 1); qv_wr_float (w, 2);
}

static void
test_encodings (void **state)
{
    (void) state;
    qv_it_client_t *c = qv_it_client_new (s_server->endpoint, QV_IT_CALL_MS);
    qv_doc_t *r = CALL_OK (c, "{op: 'create_collection', collection: 'd', fields: ["
                              "{name: 'id', type: 'int64', primary: true},"
                              "{name: 'v', type: 'float_vector', dim: 2}]}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'create_collection', collection: 'e', fields: ["
                    "{name: 'id', type: 'int64', primary: true},"
                    "{name: 'v', type: 'float_vector', dim: 2}]}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'insert', collection: 'e', rows: [{id: 1, v: [1, 2]}, {id: 2, v: [3, 4]}]}");
    qv_doc_destroy (&r);
    qv_wr_t *w = qv_wr_new ();

    //  (3) {op: ping, op: drop_collection, collection: d}: MALFORMED, d stays
    qv_wr_map (w, 3);
    qv_wr_str (w, "op"); qv_wr_str (w, "ping");
    qv_wr_str (w, "op"); qv_wr_str (w, "drop_collection");
    qv_wr_str (w, "collection"); qv_wr_str (w, "d");
    EXPECT_ERROR (c, w, "MALFORMED", "'op' twice");
    r = CALL_OK (c, "{op: 'has_collection', collection: 'd'}");
    assert_true (qv_it_bool (qv_it_path (r, "exists")));
    qv_doc_destroy (&r);
    //  ... and a row with its key twice
    qv_wr_map (w, 3);
    qv_wr_str (w, "op"); qv_wr_str (w, "insert");
    qv_wr_str (w, "collection"); qv_wr_str (w, "e");
    qv_wr_str (w, "rows"); qv_wr_array (w, 1); qv_wr_map (w, 3);
    qv_wr_str (w, "id"); qv_wr_int (w, 9);
    qv_wr_str (w, "v"); qv_wr_array (w, 2); qv_wr_float (w, 0); qv_wr_float (w, 0);
    qv_wr_str (w, "id"); qv_wr_int (w, 10);
    EXPECT_ERROR (c, w, "MALFORMED", "'id' twice");

    //  (2) invalid UTF-8 in op, in a collection name, in a key: escaped, never echoed raw
    qv_wr_map (w, 2);
    qv_wr_str (w, "op"); qv_wr_strn (w, "dro\xff\xfe", 5);
    qv_wr_str (w, "rid"); qv_wr_uint (w, 77);
    EXPECT_ERROR (c, w, "MALFORMED", "dro\\xff\\xfe");
    qv_wr_map (w, 2);
    qv_wr_str (w, "op"); qv_wr_str (w, "has_collection");
    qv_wr_str (w, "collection"); qv_wr_strn (w, "d\xc3", 2);
    EXPECT_ERROR (c, w, "MALFORMED", "d\\xc3");
    qv_wr_map (w, 2);
    qv_wr_str (w, "op"); qv_wr_str (w, "ping");
    qv_wr_strn (w, "k\xe2\x82", 3); qv_wr_int (w, 1);
    EXPECT_ERROR (c, w, "MALFORMED", "k\\xe2\\x82");
    //  ... and a rid that is not UTF-8 is not echoed
    qv_wr_map (w, 2);
    qv_wr_str (w, "op"); qv_wr_str (w, "ping");
    qv_wr_str (w, "rid"); qv_wr_strn (w, "\x80", 1);
    EXPECT_ERROR (c, w, "MALFORMED", "UTF-8");

    //  (4) offset + limit must not wrap around 2^64
    uint64_t offsets [] = { UINT64_MAX, UINT64_MAX - 4, (uint64_t) INT64_MAX, 16384 };
    for (int i = 0; i < 4; i++) {
        s_search_head (w, 1);
        qv_wr_str (w, "offset"); qv_wr_uint (w, offsets [i]);
        EXPECT_ERROR (c, w, "INVALID_ARGUMENT", "offset");
        qv_wr_map (w, 4);
        qv_wr_str (w, "op"); qv_wr_str (w, "query");
        qv_wr_str (w, "collection"); qv_wr_str (w, "e");
        qv_wr_str (w, "filter"); qv_wr_str (w, "id > 0");
        qv_wr_str (w, "offset"); qv_wr_uint (w, offsets [i]);
        EXPECT_ERROR (c, w, "INVALID_ARGUMENT", "offset");
    }
    r = CALL_OK (c, "{op: 'search', collection: 'e', vectors: [[1, 2]], offset: 1, limit: 16383}");
    assert_int_equal (qv_val_len (qv_it_path (r, "results.0")), 1);
    qv_doc_destroy (&r);

    //  (5) NaN and infinity, unknown params keys (named), ttl_seconds beyond 100 years
    double bad [] = { NAN, INFINITY, -INFINITY };
    for (int i = 0; i < 3; i++) {
        s_search_head (w, 1);
        qv_wr_str (w, "radius"); qv_wr_double (w, bad [i]);
        EXPECT_ERROR (c, w, "INVALID_ARGUMENT", "radius");
        s_search_head (w, 2);
        qv_wr_str (w, "radius"); qv_wr_double (w, 10);
        qv_wr_str (w, "range_filter"); qv_wr_double (w, bad [i]);
        EXPECT_ERROR (c, w, "INVALID_ARGUMENT", "range_filter");
    }
    s_search_head (w, 1);
    qv_wr_str (w, "params"); qv_wr_map (w, 2);
    qv_wr_str (w, "ef"); qv_wr_uint (w, 16);
    qv_wr_str (w, "nprob"); qv_wr_uint (w, 4);
    EXPECT_ERROR (c, w, "INVALID_ARGUMENT", "'nprob'");
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'create_index', collection: 'e', field: 'v', "
                  "index_type: 'HNSW', params: {M: 8, efconstruction: 40}}");
    assert_non_null (strstr (qv_it_error (r), "'efconstruction'"));
    qv_doc_destroy (&r);
    qv_wr_map (w, 4);
    qv_wr_str (w, "op"); qv_wr_str (w, "create_collection");
    qv_wr_str (w, "collection"); qv_wr_str (w, "ttl");
    qv_wr_str (w, "fields"); qv_it_json_write (w, "[{name: 'id', type: 'int64', primary: true},"
                                                  "{name: 'v', type: 'float_vector', dim: 2}]");
    qv_wr_str (w, "ttl_seconds"); qv_wr_uint (w, UINT64_MAX);
    EXPECT_ERROR (c, w, "INVALID_ARGUMENT", "ttl_seconds must be at most 3153600000");
    r = CALL_OK (c, "{op: 'has_collection', collection: 'ttl'}");
    assert_false (qv_it_bool (qv_it_path (r, "exists")));
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'create_collection', collection: 'ttl', ttl_seconds: 3153600000, fields: ["
                    "{name: 'id', type: 'int64', primary: true}, {name: 'v', type: 'float_vector', dim: 2}]}");
    qv_doc_destroy (&r);

    //  Still serving, and the well-formed requests work as before
    r = CALL_OK (c, "{op: 'search', collection: 'e', vectors: [[1, 2]], radius: 100.0, params: {ef: 16}}");
    assert_int_equal (qv_val_len (qv_it_path (r, "results.0")), 2);
    qv_doc_destroy (&r);
    qv_wr_destroy (&w);
    qv_it_client_destroy (&c);
}

//  Whether the log of server's current run or text contains secret; fails naming it.
static void
s_assert_hidden (const char *where, const char *text, const char *secret)
{
    const char *p = strstr (text, secret);
    if (p) {
        const char *line = p;
        while (line > text && line [-1] != '\n')
            line--;
        fail_msg ("%s shows the secret: %.*s", where, (int) strcspn (line, "\n"), line);
    }
}

//  (6) `--nats nats://user:password@host` (and a token URL): the password is in no log
//  line and no reply (stats, errors), also while NATS cannot be reached.
static void
test_secrets_redacted (void **state)
{
    (void) state;
    const char *nats = getenv ("QV_NATS_URL");     //  nats://127.0.0.1:PORT, no auth
    char url [256];
    for (int round = 0; round < 2; round++) {
        const char *hostport = "127.0.0.1:1";     //  nobody listens: connection errors
        if (round == 1 && nats && strncmp (nats, "nats://", 7) == 0)
            hostport = nats + 7;
        else
        if (round == 1)
            break;
        snprintf (url, sizeof url, "nats://alice:s3cr3t-pw@%s,nats://t0ken-s3cr3t@%s", hostport, hostport);
        const char *extra [] = { "--nats", url, NULL };
        qv_it_server_t *server = qv_it_server_new (extra);
        assert_non_null (server);
        assert_int_equal (qv_it_server_spawn (server), 0);
        qv_it_client_t *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
        if (round == 0) {
            //  Not live: every request is refused with the URL in the message
            assert_int_equal (qv_it_server_wait_error (server, "connecting to NATS", QV_IT_READY_MS), 0);
            qv_doc_t *r = CALL_ERR (c, "UNAVAILABLE", "{op: 'stats'}");
            s_assert_hidden ("an error reply", qv_it_error (r), "s3cr3t");
            assert_non_null (strstr (qv_it_error (r), "nats://***@127.0.0.1:1"));
            qv_doc_destroy (&r);
        }
        else {
            assert_int_equal (qv_it_server_wait_ready (server, QV_IT_READY_MS), 0);
            qv_doc_t *r = CALL_OK (c, "{op: 'stats'}");
            size_t size;
            void *bytes = qv_val_encode (qv_doc_root (r), &size);
            char *text = calloc (1, size + 1);
            memcpy (text, bytes, size);
            for (size_t i = 0; i < size; i++)
                text [i] = text [i] ? text [i] : ' ';
            s_assert_hidden ("stats", text, "s3cr3t");
            free (text);
            free (bytes);
            qv_doc_destroy (&r);
        }
        qv_it_client_destroy (&c);
        assert_int_equal (qv_it_server_signal (server, SIGTERM, 30000), 0);
        char *log = qv_it_server_log_text (server);
        assert_non_null (strstr (log, "nats://***@"));      //  the start-up line is there
        s_assert_hidden ("the server log", log, "s3cr3t");
        free (log);
        qv_it_server_destroy (&server);
    }
}

//  Counts the lines of text containing needle.
static int
s_count_lines (const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr (p, needle)); p += strlen (needle))
        n++;
    return n;
}

//  Inserts rows first..first+n-1 (dim 64) into `full`; the reply.
static qv_doc_t *
s_insert_full (qv_it_client_t *c, int64_t first, int n)
{
    enum { FDIM = 64 };
    float *vecs = malloc ((size_t) n * FDIM * sizeof (float));
    for (int i = 0; i < n * FDIM; i++)
        vecs [i] = (float) ((first * FDIM + i) % 977) / 977.0f;
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 3);
    qv_wr_str (w, "op"); qv_wr_str (w, "insert");
    qv_wr_str (w, "collection"); qv_wr_str (w, "full");
    qv_wr_str (w, "columns"); qv_wr_map (w, 2);
    qv_wr_str (w, "id"); qv_wr_array (w, (size_t) n);
    for (int i = 0; i < n; i++)
        qv_wr_int (w, first + i);
    qv_wr_str (w, "v"); qv_wr_bin (w, vecs, (size_t) n * FDIM * sizeof (float));
    qv_doc_t *r = qv_it_call (c, w);
    qv_wr_destroy (&w);
    free (vecs);
    return r;
}

//  (7) A full disk (a 6 MiB tmpfs; skipped when the test may not mount one): inserts
//  and flush answer UNAVAILABLE naming the cause, promptly (flush used to wait until
//  space was freed); the log tells a repeated failure once with a count, not once per
//  retry; once space is back (remount larger), flush succeeds and every acknowledged
//  row is there, no refused one.
static void
test_full_disk (void **state)
{
    (void) state;
    char base [] = "/tmp/qv-full.XXXXXX", data [64];
    assert_non_null (mkdtemp (base));
    snprintf (data, sizeof data, "%s/data", base);
    assert_int_equal (mkdir (data, 0700), 0);
    if (mount ("tmpfs", data, "tmpfs", 0, "size=6m") != 0) {
        fprintf (stderr, "test_full_disk: cannot mount a tmpfs (%s): skipped\n", strerror (errno));
        rmdir (data);
        rmdir (base);
        skip ();
    }
    //  The log stays outside the full file system
    qv_it_server_t *server = qv_it_server_new_at (data, "../quiver.log", NULL);
    assert_non_null (server);
    assert_int_equal (qv_it_server_start (server), 0);
    qv_it_client_t *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    qv_doc_t *r = CALL_OK (c, "{op: 'create_collection', collection: 'full', fields: ["
                              "{name: 'id', type: 'int64', primary: true},"
                              "{name: 'v', type: 'float_vector', dim: 64}]}");
    qv_doc_destroy (&r);
    //  Fill the disk: 500 rows (128 KiB) a batch until one is refused
    int64_t acked = 0, next = 0;
    bool refused = false;
    for (int i = 0; i < 200 && !refused; i++) {
        r = s_insert_full (c, next, 500);
        assert_non_null (r);
        if (qv_it_ok (r))
            acked = next + 500;
        else {
            assert_string_equal (qv_it_code (r), "UNAVAILABLE");
            refused = true;
        }
        next += 500;
        qv_doc_destroy (&r);
    }
    assert_true (refused);
    //  flush answers, UNAVAILABLE with the cause (it waited for free space before)
    r = CALL_ERR (c, "UNAVAILABLE", "{op: 'flush', collection: 'full'}");
    if (!strstr (qv_it_error (r), "space") && !strstr (qv_it_error (r), "I/O"))
        fail_msg ("flush error names no cause: %s", qv_it_error (r));
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "UNAVAILABLE", "{op: 'flush', collection: 'full'}");
    qv_doc_destroy (&r);
    //  The segment write is retried every second: the log tells it once per 10 s with
    //  the count of repeats (the inserts' failures the same way)
    zclock_sleep (11000);
    r = CALL_ERR (c, "UNAVAILABLE", "{op: 'flush', collection: 'full'}");
    qv_doc_destroy (&r);
    r = s_insert_full (c, next, 500);
    assert_false (qv_it_ok (r));
    qv_doc_destroy (&r);
    char *log = qv_it_server_log_text (server);
    int failures = s_count_lines (log, "flush of segment");
    if (failures < 1 || failures > 3 || !strstr (log, "more times in the last"))
        fail_msg ("%d 'flush of segment' lines in 11 s of retries, or no count of repeats:\n%s",
                  failures, log);
    free (log);
    //  Space again: the flush succeeds and the acknowledged rows are all there
    assert_int_equal (mount ("tmpfs", data, "tmpfs", MS_REMOUNT, "size=256m"), 0);
    int64_t deadline = zclock_mono () + 60000;
    bool flushed = false;
    while (!flushed && zclock_mono () < deadline) {
        r = qv_it_callf (c, "{op: 'flush', collection: 'full'}");
        flushed = qv_it_ok (r);
        qv_doc_destroy (&r);
        if (!flushed)
            zclock_sleep (500);
    }
    assert_true (flushed);
    r = CALL_OK (c, "{op: 'query', collection: 'full', filter: 'id >= 0', output_fields: ['count(*)']}");
    assert_int_equal (qv_it_int (qv_it_path (r, "rows.0.count(*)")), acked);
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'get', collection: 'full', ids: [%lld, %lld]}", (long long) acked - 1,
                 (long long) acked);
    assert_int_equal (qv_val_len (qv_it_path (r, "rows")), 1);
    qv_doc_destroy (&r);
    //  ... also after a restart
    qv_it_client_destroy (&c);
    assert_int_equal (qv_it_server_kill (server), 0);
    assert_int_equal (qv_it_server_restart (server), 0);
    c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    r = CALL_OK (c, "{op: 'query', collection: 'full', filter: 'id >= 0', output_fields: ['count(*)']}");
    assert_int_equal (qv_it_int (qv_it_path (r, "rows.0.count(*)")), acked);
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
    qv_it_server_destroy (&server);
    assert_int_equal (umount2 (data, MNT_DETACH), 0);
    rmdir (data);
    char path [96];
    snprintf (path, sizeof path, "%s/quiver.log", base);
    unlink (path);
    rmdir (base);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_encodings),
        cmocka_unit_test (test_secrets_redacted),
        cmocka_unit_test (test_full_disk),
    };
    return cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
}

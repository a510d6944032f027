//  Partitions and scalar indexes together, through a real server: reads that take no
//  segment at all (an empty collection, an empty partition, a partition key pruned to
//  an empty partition), partition names with stray bytes, inserts that reach the
//  segment manager after their partition was dropped (pipelined, or held back by
//  memory pressure) and must not leak unflushed memory, and a partition dropped while
//  its segments' scalar and vector indexes build, across kill -9 and a clean restart,
//  and kill -9 during concurrent writes into partitions being created and dropped,
//  against an oracle of the rows kept here.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_codec.h"
#include "qv_it_server.h"

#define CALL_OK QV_IT_CALL_OK
#define CALL_ERR QV_IT_CALL_ERR
#define STOP_MS 30000

//  CRC32C, bit by bit: the documented partition of an int64 key among n.
static uint32_t
s_part_of_int (int64_t value, uint32_t n)
{
    uint32_t crc = 0xffffffff;
    for (int i = 0; i < 8; i++) {
        crc ^= (uint8_t) ((uint64_t) value >> (8 * i));
        for (int b = 0; b < 8; b++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
    }
    return ~crc % n;
}

static qv_it_server_t *
s_start (const char *const *extra)
{
    qv_it_server_t *server = qv_it_server_new (extra);
    assert_non_null (server);
    assert_int_equal (qv_it_server_start (server), 0);
    return server;
}

static qv_it_client_t *
s_client (qv_it_server_t *server)
{
    qv_it_client_t *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    assert_non_null (c);
    return c;
}

//  Creates collection name: id (int64 primary key), n (int64), v (dim floats).
static void
s_create (qv_it_client_t *c, const char *name, int dim)
{
    qv_doc_t *r = CALL_OK (c, "{op: 'create_collection', collection: '%s', fields: ["
                              "{name: 'id', type: 'int64', primary: true}, {name: 'n', type: 'int64'},"
                              "{name: 'v', type: 'float_vector', dim: %d}]}", name, dim);
    qv_doc_destroy (&r);
}

//  The number of hits of query 0 of a search reply.
static size_t
s_hits (qv_doc_t *r)
{
    const qv_val_t *hits = qv_it_path (r, "results.0");
    assert_non_null (hits);
    return qv_val_len (hits);
}

static int64_t
s_count (qv_it_client_t *c, const char *coll, const char *filter, const char *parts)
{
    qv_doc_t *r = CALL_OK (c, "{op: 'query', collection: '%s', filter: '%s', partitions: %s, "
                              "output_fields: ['count(*)']}", coll, filter, parts);
    int64_t n = qv_it_int (qv_it_path (r, "rows.0.count(*)"));
    qv_doc_destroy (&r);
    return n;
}

//  Inserts rows [from, to) (id, v, n = id % 10) into coll / part as columns, with
//  vectors of dim floats; returns the reply (NULL part: none named).
static qv_doc_t *
s_insert (qv_it_client_t *c, const char *coll, const char *part, int from, int to, int dim)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 3 + (part != NULL));
    qv_wr_str (w, "op"); qv_wr_str (w, "insert");
    qv_wr_str (w, "collection"); qv_wr_str (w, coll);
    if (part) {
        qv_wr_str (w, "partition"); qv_wr_str (w, part);
    }
    qv_wr_str (w, "columns");
    qv_wr_map (w, 3);
    qv_wr_str (w, "id");
    qv_wr_array (w, (size_t) (to - from));
    for (int i = from; i < to; i++)
        qv_wr_int (w, i);
    qv_wr_str (w, "n");
    qv_wr_array (w, (size_t) (to - from));
    for (int i = from; i < to; i++)
        qv_wr_int (w, i % 10);
    qv_wr_str (w, "v");
    size_t nf = (size_t) (to - from) * (size_t) dim;
    float *vecs = malloc (nf * sizeof (float));
    for (size_t i = 0; i < nf; i++)
        vecs [i] = (float) ((i * 2654435761u) % 1000) / 1000.0f;
    qv_wr_bin (w, vecs, nf * 4);
    free (vecs);
    qv_doc_t *r = qv_it_call (c, w);
    qv_wr_destroy (&w);
    assert_non_null (r);
    return r;
}

static void
s_insert_ok (qv_it_client_t *c, const char *coll, const char *part, int from, int to, int dim)
{
    qv_doc_t *r = s_insert (c, coll, part, from, to, dim);
    if (!qv_it_ok (r))
        fail_msg ("insert [%d, %d) into %s/%s: %s %s", from, to, coll, part ? part : "-",
                  qv_it_code (r), qv_it_error (r));
    qv_doc_destroy (&r);
}

//  A search, query or delete whose snapshot holds no segment answers with nothing
//  (and the server stays up): an empty collection, an empty partition, a filter that
//  pins the partition key to a partition without rows, with and without a scalar index.
static void
test_reads_of_no_segment (void **state)
{
    (void) state;
    qv_it_server_t *server = s_start (NULL);
    qv_it_client_t *c = s_client (server);
    s_create (c, "e", 4);
    qv_doc_t *r = CALL_OK (c, "{op: 'create_index', collection: 'e', field: 'n', index_type: 'INVERTED'}");
    qv_doc_destroy (&r);
    const char *filters [] = { "", "n == 3", "n > 1 and n < 5" };
    for (int f = 0; f < 3; f++) {
        r = CALL_OK (c, "{op: 'search', collection: 'e', vectors: [[1, 2, 3, 4]], limit: 5, filter: '%s'}",
                     filters [f]);
        assert_int_equal (s_hits (r), 0);
        qv_doc_destroy (&r);
    }
    //  Rows in _default (flushed and growing), none in p.
    r = CALL_OK (c, "{op: 'create_partition', collection: 'e', partition: 'p'}");
    qv_doc_destroy (&r);
    s_insert_ok (c, "e", NULL, 0, 100, 4);
    r = CALL_OK (c, "{op: 'flush', collection: 'e'}");
    qv_doc_destroy (&r);
    s_insert_ok (c, "e", NULL, 100, 120, 4);
    for (int f = 0; f < 3; f++) {
        r = CALL_OK (c, "{op: 'search', collection: 'e', vectors: [[1, 2, 3, 4]], limit: 5, filter: '%s', "
                        "partitions: ['p']}", filters [f]);
        assert_int_equal (s_hits (r), 0);
        qv_doc_destroy (&r);
        //  The same search over every partition finds its 5 (brute force: 120 rows,
        //  n == 3 on 12 of them, 1 < n < 5 on 36).
        r = CALL_OK (c, "{op: 'search', collection: 'e', vectors: [[1, 2, 3, 4]], limit: 5, filter: '%s'}",
                     filters [f]);
        assert_int_equal (s_hits (r), 5);
        qv_doc_destroy (&r);
    }
    assert_int_equal (s_count (c, "e", "n == 3", "['p']"), 0);
    assert_int_equal (s_count (c, "e", "n == 3", "[]"), 12);
    r = CALL_OK (c, "{op: 'delete', collection: 'e', partition: 'p', filter: 'n == 3'}");
    assert_int_equal (qv_it_int (qv_it_path (r, "deleted")), 0);
    qv_doc_destroy (&r);

    //  Partition key: 8 partitions; keys 0..2 fill at most 3 of them.
    r = CALL_OK (c, "{op: 'create_collection', collection: 'ek', num_partitions: 8, fields: ["
                    "{name: 'id', type: 'int64', primary: true}, {name: 'k', type: 'int64', partition_key: true},"
                    "{name: 'v', type: 'float_vector', dim: 4}]}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'create_index', collection: 'ek', field: 'k', index_type: 'STL_SORT'}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'describe_collection', collection: 'ek'}");
    assert_int_equal (qv_it_int (qv_it_path (r, "num_partitions")), 8);
    qv_doc_destroy (&r);
    bool used [8] = { false };
    for (int i = 0; i < 30; i++) {
        used [s_part_of_int (i % 3, 8)] = true;
        r = CALL_OK (c, "{op: 'insert', collection: 'ek', rows: [{id: %d, k: %d, v: [%d, 0, 0, 1]}]}",
                     i, i % 3, i);
        qv_doc_destroy (&r);
    }
    r = CALL_OK (c, "{op: 'flush', collection: 'ek'}");
    qv_doc_destroy (&r);
    int64_t empty_key = -1;
    for (int64_t k = 3; empty_key < 0; k++)
        if (!used [s_part_of_int (k, 8)])
            empty_key = k;
    r = CALL_OK (c, "{op: 'search', collection: 'ek', vectors: [[1, 2, 3, 4]], filter: 'k == %lld'}",
                 (long long) empty_key);
    assert_int_equal (s_hits (r), 0);
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'search', collection: 'ek', vectors: [[1, 2, 3, 4]], filter: 'k == 1'}");
    assert_int_equal (s_hits (r), 10);
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'ping'}");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
    qv_it_server_destroy (&server);
}

//  Sends {op, collection: 'b', <field>: <name of len bytes>, ...rest} and expects code
//  with a message containing needle.
static void
s_expect_name (qv_it_client_t *c, const char *op, const char *field, bool list, const char *name,
               size_t len, const char *rest_key, const char *code, const char *needle)
{
    qv_wr_t *w = qv_wr_new ();
    bool search = streq (op, "search");
    qv_wr_map (w, 3 + (rest_key != NULL) + search);
    qv_wr_str (w, "op"); qv_wr_str (w, op);
    qv_wr_str (w, "collection"); qv_wr_str (w, "b");
    qv_wr_str (w, field);
    if (list)
        qv_wr_array (w, 1);
    qv_wr_strn (w, name, len);
    if (search) {
        float q [4] = { 0, 0, 0, 0 };
        qv_wr_str (w, "vectors");
        qv_wr_array (w, 1);
        qv_wr_bin (w, q, sizeof q);
    }
    if (rest_key && streq (rest_key, "ids")) {
        qv_wr_str (w, "ids");
        qv_wr_array (w, 1);
        qv_wr_int (w, 1);
    }
    else
    if (rest_key && streq (rest_key, "filter")) {
        qv_wr_str (w, "filter"); qv_wr_str (w, "n >= 0");
    }
    else
    if (rest_key) {
        qv_wr_str (w, "rows");
        qv_wr_array (w, 1);
        qv_wr_map (w, 3);
        qv_wr_str (w, "id"); qv_wr_int (w, 1);
        qv_wr_str (w, "n"); qv_wr_int (w, 1);
        qv_wr_str (w, "v");
        qv_wr_array (w, 4);
        for (int d = 0; d < 4; d++)
            qv_wr_float (w, 0);
    }
    qv_doc_t *r = qv_it_call (c, w);
    qv_wr_destroy (&w);
    if (qv_it_ok (r) || strcmp (qv_it_code (r), code) || !strstr (qv_it_error (r), needle))
        fail_msg ("%s with %s '%.*s' (%zu bytes): %s %s, expected %s naming %s", op, field,
                  (int) len, name, len, r ? qv_it_code (r) : "no reply",
                  qv_it_ok (r) ? "ok" : qv_it_error (r), code, needle);
    qv_doc_destroy (&r);
}

//  A partition name is a name: bytes after a NUL never make it match the partition
//  its first bytes name, and a bad one is INVALID_ARGUMENT showing the stray byte,
//  in every request that names one. create_index names the field it cannot find.
static void
test_partition_name_bytes (void **state)
{
    (void) state;
    qv_it_server_t *server = s_start (NULL);
    qv_it_client_t *c = s_client (server);
    s_create (c, "b", 4);
    qv_doc_t *r = CALL_OK (c, "{op: 'create_partition', collection: 'b', partition: 'a'}");
    qv_doc_destroy (&r);
    static const char nul [] = "a\0b";
    static const char ctl [] = "a\nb";
    char longname [301];
    memset (longname, 'x', 300);
    longname [300] = 0;
    struct { const char *name; size_t len; const char *needle; } names [] = {
        { nul, 3, "'a\\x00b'" }, { ctl, 3, "'a\\x0ab'" }, { longname, 300, "at most 255" },
        { "", 0, "partition name ''" }, { "1a", 2, "'1a'" }
    };
    for (size_t i = 0; i < sizeof names / sizeof names [0]; i++) {
        const char *nm = names [i].name, *nd = names [i].needle;
        size_t len = names [i].len;
        s_expect_name (c, "insert", "partition", false, nm, len, "rows", "INVALID_ARGUMENT", nd);
        s_expect_name (c, "upsert", "partition", false, nm, len, "rows", "INVALID_ARGUMENT", nd);
        s_expect_name (c, "delete", "partition", false, nm, len, "ids", "INVALID_ARGUMENT", nd);
        s_expect_name (c, "delete", "partition", false, nm, len, "filter", "INVALID_ARGUMENT", nd);
        s_expect_name (c, "create_partition", "partition", false, nm, len, NULL, "INVALID_ARGUMENT", nd);
        s_expect_name (c, "drop_partition", "partition", false, nm, len, NULL, "INVALID_ARGUMENT", nd);
        s_expect_name (c, "query", "partitions", true, nm, len, "filter", "INVALID_ARGUMENT", nd);
        s_expect_name (c, "get", "partitions", true, nm, len, "ids", "INVALID_ARGUMENT", nd);
        s_expect_name (c, "search", "partitions", true, nm, len, NULL, "INVALID_ARGUMENT", nd);
    }
    //  Nothing reached 'a' (nor '_default'), and 'a' still exists.
    assert_int_equal (s_count (c, "b", "n >= 0", "['a']"), 0);
    assert_int_equal (s_count (c, "b", "n >= 0", "[]"), 0);
    r = CALL_OK (c, "{op: 'list_partitions', collection: 'b'}");
    assert_int_equal (qv_val_len (qv_it_path (r, "partitions")), 2);
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "MALFORMED", "{op: 'query', collection: 'b', filter: 'n > 0', partitions: ['a', 1]}");
    assert_non_null (strstr (qv_it_error (r), "partitions"));
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'create_index', collection: 'b', field: 'nosuch', "
                                         "index_type: 'INVERTED'}");
    assert_non_null (strstr (qv_it_error (r), "'nosuch'"));
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
    qv_it_server_destroy (&server);
}

//  Sends a request on a DEALER (pipelined, no wait) as text; the reply is read later.
static void
s_send_pipelined (zsock_t *dealer, const char *fmt, ...)
{
    char text [512];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (text, sizeof text, fmt, ap);
    va_end (ap);
    qv_wr_t *w = qv_wr_new ();
    assert_int_equal (qv_it_json_write (w, text), 0);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    assert_int_equal (zsock_send (dealer, "b", data, size), 0);
    qv_wr_destroy (&w);
}

//  Sends an insert of rows [from, to) into part on a DEALER, with rid.
static void
s_insert_pipelined (zsock_t *dealer, const char *part, int from, int to, int dim, int rid)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 5);
    qv_wr_str (w, "op"); qv_wr_str (w, "insert");
    qv_wr_str (w, "rid"); qv_wr_int (w, rid);
    qv_wr_str (w, "collection"); qv_wr_str (w, "m");
    qv_wr_str (w, "partition"); qv_wr_str (w, part);
    qv_wr_str (w, "columns");
    qv_wr_map (w, 3);
    qv_wr_str (w, "id");
    qv_wr_array (w, (size_t) (to - from));
    for (int i = from; i < to; i++)
        qv_wr_int (w, i);
    qv_wr_str (w, "n");
    qv_wr_array (w, (size_t) (to - from));
    for (int i = from; i < to; i++)
        qv_wr_int (w, i % 10);
    qv_wr_str (w, "v");
    size_t nf = (size_t) (to - from) * (size_t) dim;
    float *vecs = calloc (nf, sizeof (float));
    qv_wr_bin (w, vecs, nf * 4);
    free (vecs);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    assert_int_equal (zsock_send (dealer, "b", data, size), 0);
    qv_wr_destroy (&w);
}

//  Receives n pipelined replies; returns the ok flags by rid (0..n-1) in oks.
static void
s_recv_pipelined (zsock_t *dealer, int n, bool *oks, char codes [][32])
{
    for (int i = 0; i < n; i++) {
        zframe_t *f = zframe_recv (dealer);
        assert_non_null (f);
        int rc;
        qv_doc_t *r = qv_doc_parse (zframe_data (f), zframe_size (f), 1000, &rc);
        zframe_destroy (&f);
        assert_non_null (r);
        int64_t rid = qv_it_int (qv_it_path (r, "rid"));
        assert_true (rid >= 0 && rid < n);
        oks [rid] = qv_it_ok (r);
        snprintf (codes [rid], 32, "%s", qv_it_code (r));
        qv_doc_destroy (&r);
    }
}

#define MDIM 128
#define MROWS 1000                  //  512 KB of vectors: half the server's unflushed memory

//  An insert that reaches the segment manager after its partition's drop (sent right
//  behind the drop, or held back by memory pressure while the drop went ahead) is
//  refused, and leaves no growing segment behind whose memory would never be released:
//  with 1 MiB for unflushed rows, writes into the live partition keep succeeding.
static void
test_insert_behind_drop (void **state)
{
    (void) state;
    const char *extra [] = { "--max-unflushed-mb", "1", NULL };
    qv_it_server_t *server = s_start (extra);
    qv_it_client_t *c = s_client (server);
    zsock_t *dealer = zsock_new_dealer (server->endpoint);
    assert_non_null (dealer);
    zsock_set_rcvtimeo (dealer, QV_IT_CALL_MS);
    s_create (c, "m", MDIM);
    qv_doc_t *r;
    int next_id = 0;
    int64_t live = 0;
    //  Pipelined: drop p, then insert into p, in one burst.
    for (int i = 0; i < 3; i++) {
        r = CALL_OK (c, "{op: 'create_partition', collection: 'm', partition: 'p%d'}", i);
        qv_doc_destroy (&r);
        s_send_pipelined (dealer, "{op: 'drop_partition', rid: 0, collection: 'm', partition: 'p%d'}", i);
        char part [16];
        snprintf (part, sizeof part, "p%d", i);
        s_insert_pipelined (dealer, part, next_id, next_id + MROWS / 2, MDIM, 1);
        next_id += MROWS / 2;
        bool oks [2];
        char codes [2][32];
        s_recv_pipelined (dealer, 2, oks, codes);
        assert_true (oks [0]);
        assert_false (oks [1]);
        assert_string_equal (codes [1], "NOT_FOUND");
    }
    //  Held back: _default holds 3/4 of the memory; an insert into q waits for memory,
    //  the drop of q goes ahead, the flush frees the memory and lets the insert in.
    r = CALL_OK (c, "{op: 'create_partition', collection: 'm', partition: 'q'}");
    qv_doc_destroy (&r);
    s_insert_ok (c, "m", NULL, next_id, next_id + MROWS * 3 / 2, MDIM);
    live += MROWS * 3 / 2;
    next_id += MROWS * 3 / 2;
    s_insert_pipelined (dealer, "q", next_id, next_id + MROWS / 2, MDIM, 0);
    next_id += MROWS / 2;
    s_send_pipelined (dealer, "{op: 'drop_partition', rid: 1, collection: 'm', partition: 'q'}");
    s_send_pipelined (dealer, "{op: 'flush', rid: 2, collection: 'm'}");
    bool oks [3];
    char codes [3][32];
    s_recv_pipelined (dealer, 3, oks, codes);
    assert_true (oks [1]);
    assert_true (oks [2]);
    if (oks [0])                    //  it got in before the drop: dropped with q
        assert_int_equal (s_count (c, "m", "n >= 0", "[]"), live);
    //  The memory of everything above is released: more writes and flushes fit.
    for (int i = 0; i < 4; i++) {
        qv_doc_t *ins = s_insert (c, "m", NULL, next_id, next_id + MROWS * 3 / 2, MDIM);
        if (!qv_it_ok (ins))
            fail_msg ("insert %d into _default after the drops: %s %s (unflushed memory leaked?)",
                      i, qv_it_code (ins), qv_it_error (ins));
        qv_doc_destroy (&ins);
        live += MROWS * 3 / 2;
        next_id += MROWS * 3 / 2;
        r = CALL_OK (c, "{op: 'flush', collection: 'm'}");
        qv_doc_destroy (&r);
    }
    assert_int_equal (s_count (c, "m", "n >= 0", "[]"), live);
    zsock_destroy (&dealer);
    qv_it_client_destroy (&c);
    qv_it_server_destroy (&server);
}

#define XROWS 3000                  //  per partition

//  The oracle of test_drop_while_indexing: partition of each id (0 _default, 1 p1,
//  2 p2, -1 gone), n = id % 10.
static int s_part [3 * XROWS];

static int64_t
s_oracle_count (int part, int n)
{
    int64_t count = 0;
    for (int i = 0; i < 3 * XROWS; i++)
        count += s_part [i] >= 0 && (part < 0 || s_part [i] == part) && (n < 0 || i % 10 == n);
    return count;
}

//  Reads agree with the oracle: counts by partition and by the indexed n, the ids of
//  one indexed equality, describe_collection's rows and stats per partition.
static void
s_check_oracle (qv_it_client_t *c, const char *when)
{
    for (int n = 0; n < 10; n += 3) {
        char filter [32];
        snprintf (filter, sizeof filter, "n == %d", n);
        int64_t got = s_count (c, "x", filter, "[]"), want = s_oracle_count (-1, n);
        if (got != want)
            fail_msg ("%s: %s counts %lld, the oracle %lld", when, filter, (long long) got, (long long) want);
        got = s_count (c, "x", filter, "['p2']");
        want = s_oracle_count (2, n);
        if (got != want)
            fail_msg ("%s: %s in p2 counts %lld, the oracle %lld", when, filter, (long long) got, (long long) want);
    }
    qv_doc_t *r = CALL_OK (c, "{op: 'query', collection: 'x', filter: 'n == 7 and id < 6000', "
                              "output_fields: ['id'], limit: 16384}");
    const qv_val_t *rows = qv_it_path (r, "rows");
    int64_t want = 0;
    for (int i = 0; i < 6000; i++)
        want += s_part [i] >= 0 && i % 10 == 7;
    assert_int_equal (qv_val_len (rows), want);
    for (size_t i = 0; i < qv_val_len (rows); i++) {
        int64_t id = qv_it_int (qv_it_vpath (qv_val_at (rows, i), "id"));
        assert_true (id >= 0 && id < 6000 && s_part [id] >= 0 && id % 10 == 7);
    }
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'describe_collection', collection: 'x'}");
    assert_int_equal (qv_it_int (qv_it_path (r, "rows")), s_oracle_count (-1, -1));
    assert_int_equal (qv_it_int (qv_it_path (r, "num_partitions")), 2);
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'list_partitions', collection: 'x'}");
    const qv_val_t *names = qv_it_path (r, "partitions");
    assert_int_equal (qv_val_len (names), 2);
    assert_true (qv_it_str_is (qv_val_at (names, 0), "_default"));
    assert_true (qv_it_str_is (qv_val_at (names, 1), "p2"));
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'stats', collection: 'x'}");
    const qv_val_t *parts = qv_it_path (r, "partitions");
    assert_int_equal (qv_val_len (parts), 2);
    for (size_t i = 0; i < 2; i++)
        assert_int_equal (qv_it_int (qv_it_vpath (qv_val_at (parts, i), "rows")), s_oracle_count ((int) i * 2, -1));
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "NOT_FOUND", "{op: 'query', collection: 'x', filter: 'n >= 0', partitions: ['p1']}");
    qv_doc_destroy (&r);
}

//  A partition dropped while the scalar (n) and vector (v) indexes of its flushed
//  segments build: reads, deletes by an indexed filter restricted to a partition,
//  describe and stats agree with the oracle before and after kill -9, and after a
//  clean restart once the indexes are built.
static void
test_drop_while_indexing (void **state)
{
    (void) state;
    qv_it_server_t *server = s_start (NULL);
    qv_it_client_t *c = s_client (server);
    s_create (c, "x", 16);
    qv_doc_t *r;
    const char *names [] = { NULL, "p1", "p2" };
    for (int p = 1; p < 3; p++) {
        r = CALL_OK (c, "{op: 'create_partition', collection: 'x', partition: '%s'}", names [p]);
        qv_doc_destroy (&r);
    }
    for (int p = 0; p < 3; p++) {
        s_insert_ok (c, "x", names [p], p * XROWS, (p + 1) * XROWS, 16);
        for (int i = p * XROWS; i < (p + 1) * XROWS; i++)
            s_part [i] = p;
    }
    r = CALL_OK (c, "{op: 'flush', collection: 'x'}");
    qv_doc_destroy (&r);
    //  A growing tail in every partition too: rows upserted in place (same n).
    for (int p = 0; p < 3; p++) {
        r = CALL_OK (c, "{op: 'upsert', collection: 'x', partition: '%s', rows: [{id: %d, n: %d, v: [%s]}]}",
                     names [p] ? names [p] : "_default", p * XROWS + 1, (p * XROWS + 1) % 10,
                     "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1");
        qv_doc_destroy (&r);
    }
    r = CALL_OK (c, "{op: 'create_index', collection: 'x', field: 'n', index_type: 'STL_SORT'}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'create_index', collection: 'x', field: 'v', index_type: 'HNSW'}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'drop_partition', collection: 'x', partition: 'p1'}");
    qv_doc_destroy (&r);
    for (int i = XROWS; i < 2 * XROWS; i++)
        s_part [i] = -1;
    //  The dropped partition's keys left the key index: deleting them deletes nothing.
    r = CALL_OK (c, "{op: 'delete', collection: 'x', ids: [1, %d, %d]}", XROWS + 1, 2 * XROWS + 1);
    assert_int_equal (qv_it_int (qv_it_path (r, "deleted")), 2);
    qv_doc_destroy (&r);
    s_part [1] = s_part [2 * XROWS + 1] = -1;
    //  Delete by an indexed filter, restricted to p2: only p2's rows go.
    r = CALL_OK (c, "{op: 'delete', collection: 'x', partition: 'p2', filter: 'n == 4'}");
    int64_t deleted = 0;
    for (int i = 0; i < 3 * XROWS; i++)
        if (s_part [i] == 2 && i % 10 == 4) {
            s_part [i] = -1;
            deleted++;
        }
    assert_int_equal (qv_it_int (qv_it_path (r, "deleted")), deleted);
    qv_doc_destroy (&r);
    s_check_oracle (c, "before the kill");
    assert_int_equal (qv_it_server_kill (server), 0);
    assert_int_equal (qv_it_server_restart (server), 0);
    s_check_oracle (c, "after kill -9");
    //  Wait for both indexes, then a clean restart reads them back.
    for (int tries = 0; tries < 600; tries++) {
        qv_doc_t *n = CALL_OK (c, "{op: 'describe_index', collection: 'x', field: 'n'}");
        qv_doc_t *v = CALL_OK (c, "{op: 'describe_index', collection: 'x', field: 'v'}");
        bool done = qv_it_str_is (qv_it_path (n, "state"), "finished")
                 && qv_it_str_is (qv_it_path (v, "state"), "finished");
        if (done)
            assert_true (qv_it_int (qv_it_path (n, "indexed_rows")) > 0);
        qv_doc_destroy (&n);
        qv_doc_destroy (&v);
        if (done)
            break;
        zclock_sleep (100);
    }
    assert_int_equal (qv_it_server_signal (server, SIGTERM, STOP_MS), 0);
    assert_int_equal (qv_it_server_restart (server), 0);
    s_check_oracle (c, "after a clean restart");
    //  p1 again is a new, empty partition.
    r = CALL_OK (c, "{op: 'create_partition', collection: 'x', partition: 'p1'}");
    qv_doc_destroy (&r);
    assert_int_equal (s_count (c, "x", "n >= 0", "['p1']"), 0);
    qv_it_client_destroy (&c);
    qv_it_server_destroy (&server);
}

//  A row moved into a partition (upsert with `partition`) that is then dropped stays
//  gone after kill -9, also when a manifest written after the drop (here by a flush of
//  another collection) makes recovery replay the move from a WAL position before it:
//  replaying a write into a partition dropped since must still delete the rows it
//  replaced. Keys are int64 and varchar.
static void
test_moved_then_dropped (void **state)
{
    (void) state;
    qv_it_server_t *server = s_start (NULL);
    qv_it_client_t *c = s_client (server);
    const char *pks [] = { "type: 'int64'", "type: 'varchar', max_length: 8" };
    const char *keys [][3] = { { "1", "2", "3" }, { "'k1'", "'k2'", "'k3'" } };
    for (int k = 0; k < 2; k++) {
        qv_doc_t *r = CALL_OK (c, "{op: 'create_collection', collection: 'mv%d', fields: ["
                                  "{name: 'id', %s, primary: true},"
                                  "{name: 'v', type: 'float_vector', dim: 4}]}", k, pks [k]);
        qv_doc_destroy (&r);
        r = CALL_OK (c, "{op: 'insert', collection: 'mv%d', rows: [{id: %s, v: [1, 2, 3, 4]}, "
                        "{id: %s, v: [1, 2, 3, 4]}, {id: %s, v: [1, 2, 3, 4]}]}", k,
                     keys [k][0], keys [k][1], keys [k][2]);
        qv_doc_destroy (&r);
        r = CALL_OK (c, "{op: 'create_partition', collection: 'mv%d', partition: 'p'}", k);
        qv_doc_destroy (&r);
        //  id 1 moves into p; id 3 goes there and comes back to _default.
        r = CALL_OK (c, "{op: 'upsert', collection: 'mv%d', partition: 'p', rows: [{id: %s, v: [0, 0, 0, 1]}, "
                        "{id: %s, v: [0, 0, 0, 1]}]}", k, keys [k][0], keys [k][2]);
        qv_doc_destroy (&r);
        r = CALL_OK (c, "{op: 'upsert', collection: 'mv%d', rows: [{id: %s, v: [0, 0, 1, 0]}]}", k, keys [k][2]);
        qv_doc_destroy (&r);
        r = CALL_OK (c, "{op: 'drop_partition', collection: 'mv%d', partition: 'p'}", k);
        qv_doc_destroy (&r);
    }
    qv_doc_t *r = CALL_OK (c, "{op: 'create_collection', collection: 'other', fields: ["
                              "{name: 'id', type: 'int64', primary: true}, {name: 'v', type: 'float_vector', dim: 4}]}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'insert', collection: 'other', rows: [{id: 1, v: [1, 2, 3, 4]}]}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'flush', collection: 'other'}");
    qv_doc_destroy (&r);
    for (int round = 0; round < 3; round++) {
        for (int k = 0; k < 2; k++) {
            r = CALL_OK (c, "{op: 'get', collection: 'mv%d', ids: [%s, %s, %s]}", k,
                         keys [k][0], keys [k][1], keys [k][2]);
            const qv_val_t *rows = qv_it_path (r, "rows");
            if (qv_val_len (rows) != 2)
                fail_msg ("round %d, mv%d: get finds %zu rows; ids 2 and 3 only are live", round, k,
                          qv_val_len (rows));
            qv_doc_destroy (&r);
            r = CALL_OK (c, "{op: 'describe_collection', collection: 'mv%d'}", k);
            assert_int_equal (qv_it_int (qv_it_path (r, "rows")), 2);
            qv_doc_destroy (&r);
            //  id 3's live row is its last write, v = [0, 0, 1, 0]: distance 0 to it.
            r = CALL_OK (c, "{op: 'search', collection: 'mv%d', vectors: [[0, 0, 1, 0]], limit: 3}", k);
            assert_int_equal (s_hits (r), 2);
            assert_true (qv_it_num (qv_it_path (r, "results.0.0.distance")) == 0);
            qv_doc_destroy (&r);
        }
        if (round == 0) {
            assert_int_equal (qv_it_server_kill (server), 0);
            assert_int_equal (qv_it_server_restart (server), 0);
        }
        if (round == 1) {
            assert_int_equal (qv_it_server_signal (server, SIGTERM, STOP_MS), 0);
            assert_int_equal (qv_it_server_restart (server), 0);
        }
    }
    qv_it_client_destroy (&c);
    qv_it_server_destroy (&server);
}

//  Upserts move ids 0..4 back and forth between partitions a and b (flushing now and
//  then) while readers search (filtered through a scalar index), query and get over
//  both: every read sees each id exactly once, never the old row beside the new one.
#define MOVES 200

typedef struct {
    const char *endpoint;
    int kind;                       //  0 search, 1 query, 2 get
    atomic_bool *stop;
    int reads;
    int bad;
} s_mover_reader_t;

static void *
s_mover_reader (void *arg)
{
    s_mover_reader_t *rd = arg;
    qv_it_client_t *c = qv_it_client_new (rd->endpoint, QV_IT_CALL_MS);
    while (!atomic_load (rd->stop)) {
        qv_doc_t *r = rd->kind == 0
            ? qv_it_callf (c, "{op: 'search', collection: 'mv', vectors: [[0, 0, 0, 0]], limit: 50, "
                              "filter: 'id < 5 and n >= 0', partitions: ['a', 'b']}")
            : rd->kind == 1
            ? qv_it_callf (c, "{op: 'query', collection: 'mv', filter: 'id < 5', output_fields: ['id'], "
                              "limit: 100, partitions: ['a', 'b']}")
            : qv_it_callf (c, "{op: 'get', collection: 'mv', ids: [0, 1, 2, 3, 4], partitions: ['a', 'b']}");
        const qv_val_t *list = qv_it_path (r, rd->kind == 0 ? "results.0" : "rows");
        int seen [5] = { 0 }, n = 0;
        for (size_t i = 0; list && i < qv_val_len (list); i++) {
            int64_t id = qv_it_int (qv_it_vpath (qv_val_at (list, i), "id"));
            if (id >= 0 && id < 5)
                seen [id]++;
            n++;
        }
        bool good = qv_it_ok (r) && n == 5;
        for (int i = 0; i < 5; i++)
            good &= seen [i] == 1;
        if (!good && rd->bad++ < 3)
            fprintf (stderr, "reader %d: %s %s, %d rows\n", rd->kind, qv_it_code (r), qv_it_error (r), n);
        rd->reads++;
        qv_doc_destroy (&r);
    }
    qv_it_client_destroy (&c);
    return NULL;
}

static void
test_moves_under_reads (void **state)
{
    (void) state;
    qv_it_server_t *server = s_start (NULL);
    qv_it_client_t *c = s_client (server);
    s_create (c, "mv", 4);
    qv_doc_t *r;
    for (int p = 0; p < 2; p++) {
        r = CALL_OK (c, "{op: 'create_partition', collection: 'mv', partition: '%c'}", 'a' + p);
        qv_doc_destroy (&r);
    }
    r = CALL_OK (c, "{op: 'create_index', collection: 'mv', field: 'n', index_type: 'INVERTED'}");
    qv_doc_destroy (&r);
    s_insert_ok (c, "mv", "a", 0, 5000, 4);
    r = CALL_OK (c, "{op: 'flush', collection: 'mv'}");
    qv_doc_destroy (&r);
    //  On the heap, and leaked if the test fails: cmocka then longjmps out of this frame
    //  while the readers run on, and they must not write into the next test's stack.
    atomic_bool *stop = calloc (1, sizeof *stop);
    s_mover_reader_t *readers = calloc (3, sizeof *readers);
    assert_true (stop && readers);
    pthread_t threads [3];
    for (int k = 0; k < 3; k++) {
        readers [k] = (s_mover_reader_t) { server->endpoint, k, stop, 0, 0 };
        pthread_create (&threads [k], NULL, s_mover_reader, &readers [k]);
    }
    for (int i = 0; i < MOVES; i++) {
        r = CALL_OK (c, "{op: 'upsert', collection: 'mv', partition: '%c', rows: ["
                        "{id: 0, n: %d, v: [0, 0, 0, 0]}, {id: 1, n: %d, v: [1, 0, 0, 0]},"
                        "{id: 2, n: %d, v: [2, 0, 0, 0]}, {id: 3, n: %d, v: [3, 0, 0, 0]},"
                        "{id: 4, n: %d, v: [4, 0, 0, 0]}]}", 'a' + i % 2, i, i, i, i, i);
        qv_doc_destroy (&r);
        if (i % 50 == 25) {
            r = CALL_OK (c, "{op: 'flush', collection: 'mv'}");
            qv_doc_destroy (&r);
        }
    }
    atomic_store (stop, true);
    for (int k = 0; k < 3; k++)
        pthread_join (threads [k], NULL);
    for (int k = 0; k < 3; k++) {
        assert_true (readers [k].reads > 0);
        if (readers [k].bad)
            fail_msg ("reader %d: %d of %d reads did not see ids 0..4 once each", k, readers [k].bad,
                      readers [k].reads);
    }
    free (readers);
    free (stop);
    //  Ids 0..4 end in b (the last move) and nowhere else.
    assert_int_equal (s_count (c, "mv", "id < 5", "['b']"), 5);
    assert_int_equal (s_count (c, "mv", "id < 5", "['a']"), 0);
    qv_it_client_destroy (&c);
    qv_it_server_destroy (&server);
}

//  Filters with extreme literals on scalar-indexed fields of a partitioned collection
//  answer exactly what the same filters answer by scan on an unindexed twin (same rows,
//  same partitions); literals out of a type's range are INVALID_ARGUMENT naming them.
#define EROWS 2000

static void
s_extreme_insert (qv_it_client_t *c, const char *coll, const char *part, int from, int to)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 4);
    qv_wr_str (w, "op"); qv_wr_str (w, "insert");
    qv_wr_str (w, "collection"); qv_wr_str (w, coll);
    qv_wr_str (w, "partition"); qv_wr_str (w, part);
    qv_wr_str (w, "columns");
    qv_wr_map (w, 7);
    const char *cols [] = { "id", "i64", "i8", "f", "d", "s" };
    for (int k = 0; k < 6; k++) {
        qv_wr_str (w, cols [k]);
        qv_wr_array (w, (size_t) (to - from));
        for (int i = from; i < to; i++) {
            int m = i % 20;         //  rare extremes, common ordinary values
            switch (k) {
                case 0: qv_wr_int (w, i); break;
                case 1: qv_wr_int (w, m == 0 ? INT64_MIN : m == 1 ? INT64_MAX : m == 2 ? 0 : (int64_t) i * 1000 - 7); break;
                case 2: qv_wr_int (w, m == 0 ? -128 : m == 1 ? 127 : i % 50 - 25); break;
                case 3: qv_wr_float (w, m == 0 ? -0.0f : m == 1 ? 0.0f : m == 2 ? 3.4e38f : m == 3 ? -3.4e38f
                                        : (float) (i % 97) / 8.0f - 6.0f); break;
                case 4: qv_wr_double (w, m == 0 ? -0.0 : m == 1 ? 1e308 : m == 2 ? -1e308 : (double) i / 3.0); break;
                case 5: {
                    char str [24];
                    snprintf (str, sizeof str, "%s", m == 0 ? "" : m == 1 ? "zzzzzzzzzzzzzzzz" : m == 2 ? "a" : "");
                    if (m > 2)
                        snprintf (str, sizeof str, "k%03d", i % 300);
                    qv_wr_str (w, str);
                    break;
                }
            }
        }
    }
    qv_wr_str (w, "v");
    float *vecs = calloc ((size_t) (to - from) * 4, sizeof (float));
    qv_wr_bin (w, vecs, (size_t) (to - from) * 16);
    free (vecs);
    qv_doc_t *r = qv_it_call (c, w);
    qv_wr_destroy (&w);
    if (!qv_it_ok (r))
        fail_msg ("insert into %s/%s: %s %s", coll, part, qv_it_code (r), qv_it_error (r));
    qv_doc_destroy (&r);
}

//  The sorted ids a query returns (n of them into ids), or -1 with the reply's code.
static int
s_query_ids (qv_it_client_t *c, const char *coll, const char *filter, const char *parts,
             int64_t *ids, char *code, size_t code_size)
{
    qv_doc_t *r = qv_it_callf (c, "{op: 'query', collection: '%s', filter: '%s', partitions: %s, "
                                  "output_fields: ['id'], limit: 16384}", coll, filter, parts);
    assert_non_null (r);
    snprintf (code, code_size, "%s", qv_it_code (r));
    int n = -1;
    if (qv_it_ok (r)) {
        const qv_val_t *rows = qv_it_path (r, "rows");
        n = (int) qv_val_len (rows);
        for (int i = 0; i < n; i++)
            ids [i] = qv_it_int (qv_it_vpath (qv_val_at (rows, (size_t) i), "id"));
        qsort (ids, (size_t) n, sizeof (int64_t), qv_it_cmp_i64);
    }
    qv_doc_destroy (&r);
    return n;
}

static void
test_indexed_extremes (void **state)
{
    (void) state;
    qv_it_server_t *server = s_start (NULL);
    qv_it_client_t *c = s_client (server);
    const char *colls [] = { "scan", "idx" };
    for (int k = 0; k < 2; k++) {
        qv_doc_t *r = CALL_OK (c, "{op: 'create_collection', collection: '%s', fields: ["
                                  "{name: 'id', type: 'int64', primary: true}, {name: 'i64', type: 'int64'},"
                                  "{name: 'i8', type: 'int8'}, {name: 'f', type: 'float'}, {name: 'd', type: 'double'},"
                                  "{name: 's', type: 'varchar', max_length: 16},"
                                  "{name: 'v', type: 'float_vector', dim: 4}]}", colls [k]);
        qv_doc_destroy (&r);
        r = CALL_OK (c, "{op: 'create_partition', collection: '%s', partition: 'p1'}", colls [k]);
        qv_doc_destroy (&r);
        s_extreme_insert (c, colls [k], "_default", 0, EROWS / 2);
        s_extreme_insert (c, colls [k], "p1", EROWS / 2, EROWS);
    }
    const char *indexes [][2] = { { "i64", "INVERTED" }, { "i8", "STL_SORT" }, { "f", "STL_SORT" },
                                  { "d", "STL_SORT" }, { "s", "INVERTED" } };
    for (int k = 0; k < 5; k++) {
        qv_doc_t *r = CALL_OK (c, "{op: 'create_index', collection: 'idx', field: '%s', index_type: '%s'}",
                               indexes [k][0], indexes [k][1]);
        qv_doc_destroy (&r);
    }
    for (int k = 0; k < 2; k++) {
        qv_doc_t *r = CALL_OK (c, "{op: 'flush', collection: '%s'}", colls [k]);
        qv_doc_destroy (&r);
    }
    for (int k = 0; k < 5; k++)
        for (int tries = 0; tries < 600; tries++) {
            qv_doc_t *r = CALL_OK (c, "{op: 'describe_index', collection: 'idx', field: '%s'}", indexes [k][0]);
            bool done = qv_it_str_is (qv_it_path (r, "state"), "finished");
            qv_doc_destroy (&r);
            if (done)
                break;
            zclock_sleep (50);
        }
    char huge [5003];
    memset (huge, 'k', sizeof huge - 1);
    huge [sizeof huge - 1] = 0;
    const char *filters [] = {
        "i64 == -9223372036854775808", "i64 <= -9223372036854775808", "i64 > 9223372036854775807",
        "i64 >= 9223372036854775807", "-9223372036854775808 < i64", "i64 != 0",
        "i64 in [-9223372036854775808, 9223372036854775807, 0]", "i64 not in [0]", "i64 > -1.5",
        "i64 == 0.5", "i8 > 127", "i8 < -128", "i8 == 300", "i8 >= -129", "i8 in [127, 128, -128]",
        "i8 != -128", "f == 0.0", "f == -0.0", "f < 0", "f <= -0.0", "f > 3e38", "f >= 3.4e38",
        "f == 1e39", "f < -1e39", "d == -0.0", "d > 1e307", "d < -1e307", "d >= 1e308",
        "s == \"\"", "s > \"zzzz\"", "s >= \"zzzzzzzzzzzzzzzz\"", "s < \"a\"", "s in [\"\", \"a\"]",
        "s not in [\"a\", \"k001\"]", "s == \"HUGE\"", "s < \"HUGE\"", "s > \"HUGE\"",
        "i8 == 127 and s == \"zzzzzzzzzzzzzzzz\"", "i64 == 0 and f == 3.4e38",
        "not (i64 == -9223372036854775808) and i8 < -127", "i8 in [] and s == \"a\""
    };
    static int64_t a [EROWS], b [EROWS];
    const char *parts [] = { "[]", "['p1']" };
    for (size_t f = 0; f < sizeof filters / sizeof filters [0]; f++) {
        char filter [5200];
        const char *at = strstr (filters [f], "HUGE");
        if (at)
            snprintf (filter, sizeof filter, "%.*s%s%s", (int) (at - filters [f]), filters [f], huge, at + 4);
        else
            snprintf (filter, sizeof filter, "%s", filters [f]);
        for (int p = 0; p < 2; p++) {
            char ca [32], cb [32];
            int na = s_query_ids (c, "scan", filter, parts [p], a, ca, sizeof ca);
            int nb = s_query_ids (c, "idx", filter, parts [p], b, cb, sizeof cb);
            if (na != nb || strcmp (ca, cb) || (na > 0 && memcmp (a, b, (size_t) na * sizeof (int64_t))))
                fail_msg ("'%.80s' partitions %s: scan %d rows (%s), index %d rows (%s)", filters [f],
                          parts [p], na, ca, nb, cb);
            if (na < 0 && strcmp (ca, "INVALID_ARGUMENT"))
                fail_msg ("'%.80s': %s", filters [f], ca);
        }
    }
    qv_doc_t *r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'query', collection: 'idx', "
                                                   "filter: 'i64 == 9223372036854775808'}");
    assert_non_null (strstr (qv_it_error (r), "9223372036854775808"));
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
    qv_it_server_destroy (&server);
}

//  kill -9 during concurrent inserts and upserts into several partitions, creates and
//  drops of partitions and flushes (scalar indexes on n and tag). The oracle keeps, per
//  id, the partition of its last acknowledged write and the partitions of writes
//  without a reply (either may hold it after the crash).
#define CWRITERS 3
#define CBATCH 40
#define CMAXIDS 60000               //  ids per writer
#define CMAXPARTS 400               //  partition k is "_default" (0) or "p<k>"

typedef enum { P_NONE, P_LIVE, P_DROPPED, P_UNKNOWN } s_pstate_t;

typedef struct {
    pthread_mutex_t mutex;
    s_pstate_t parts [CMAXPARTS];
    int nparts;
    int16_t last [CWRITERS][CMAXIDS];       //  partition of the last acknowledged write, -1
    uint64_t maybe [CWRITERS][CMAXIDS];     //  bit k % 64: a write into k got no reply
    int nids [CWRITERS];
    atomic_int acked;
    atomic_bool stop;
    atomic_int errors;
    const char *endpoint;
    unsigned seed;
} s_crash_t;

static s_crash_t s_cw;

static void
s_part_name (int k, char *out, size_t size)
{
    if (k == 0)
        snprintf (out, size, "_default");
    else
        snprintf (out, size, "p%d", k);
}

//  A random live partition (under the mutex).
static int
s_pick_live (unsigned *rng, bool allow_default)
{
    int live [CMAXPARTS], n = 0;
    for (int k = allow_default ? 0 : 1; k < s_cw.nparts; k++)
        if (s_cw.parts [k] == P_LIVE)
            live [n++] = k;
    return n ? live [rand_r (rng) % n] : -1;
}

static void *
s_crash_writer (void *arg)
{
    int wid = (int) (intptr_t) arg;
    unsigned rng = s_cw.seed * 31u + (unsigned) wid;
    qv_it_client_t *c = qv_it_client_new (s_cw.endpoint, 5000);
    qv_it_client_set_cancel (c, &s_cw.stop);
    qv_wr_t *w = qv_wr_new ();
    int64_t ids [CBATCH];
    while (!atomic_load (&s_cw.stop)) {
        pthread_mutex_lock (&s_cw.mutex);
        int part = s_pick_live (&rng, true);
        pthread_mutex_unlock (&s_cw.mutex);
        //  Upsert (and so move) earlier ids now and then, else new ones.
        bool moving = s_cw.nids [wid] > CBATCH && rand_r (&rng) % 4 == 0;
        if (!moving && s_cw.nids [wid] + CBATCH > CMAXIDS)
            break;
        int start = moving ? rand_r (&rng) % s_cw.nids [wid] : s_cw.nids [wid];
        for (int i = 0; i < CBATCH; i++)    //  distinct: nids > CBATCH
            ids [i] = moving ? (start + i) % s_cw.nids [wid] : start + i;
        if (!moving)
            s_cw.nids [wid] += CBATCH;
        char name [32];
        s_part_name (part, name, sizeof name);
        qv_wr_map (w, 4);
        qv_wr_str (w, "op"); qv_wr_str (w, "upsert");
        qv_wr_str (w, "collection"); qv_wr_str (w, "cr");
        qv_wr_str (w, "partition"); qv_wr_str (w, name);
        qv_wr_str (w, "rows");
        qv_wr_array (w, CBATCH);
        for (int i = 0; i < CBATCH; i++) {
            int64_t id = (int64_t) wid * CMAXIDS + ids [i];
            char tag [8];
            snprintf (tag, sizeof tag, "t%d", (int) (id % 7));
            qv_wr_map (w, 4);
            qv_wr_str (w, "id"); qv_wr_int (w, id);
            qv_wr_str (w, "n"); qv_wr_int (w, id % 100);
            qv_wr_str (w, "tag"); qv_wr_str (w, tag);
            qv_wr_str (w, "v");
            qv_wr_array (w, 4);
            for (int d = 0; d < 4; d++)
                qv_wr_float (w, (float) ((id * 7 + d) % 13));
        }
        qv_doc_t *r = qv_it_call (c, w);
        qv_wr_reset (w);
        pthread_mutex_lock (&s_cw.mutex);
        for (int i = 0; i < CBATCH; i++) {
            if (!r)
                s_cw.maybe [wid][ids [i]] |= 1ull << (part % 64);
            else
            if (qv_it_ok (r))
                s_cw.last [wid][ids [i]] = (int16_t) part;
        }
        pthread_mutex_unlock (&s_cw.mutex);
        if (r && !qv_it_ok (r) && strcmp (qv_it_code (r), "NOT_FOUND")) {
            //  NOT_FOUND: the partition was dropped meanwhile
            fprintf (stderr, "upsert into %s: %s %s\n", name, qv_it_code (r), qv_it_error (r));
            atomic_fetch_add (&s_cw.errors, 1);
        }
        if (r && qv_it_ok (r))
            atomic_fetch_add (&s_cw.acked, 1);
        bool gone = r == NULL;
        qv_doc_destroy (&r);
        if (gone)
            break;
    }
    qv_wr_destroy (&w);
    qv_it_client_destroy (&c);
    return NULL;
}

static void *
s_crash_ddl (void *arg)
{
    (void) arg;
    unsigned rng = s_cw.seed * 17u + 5;
    qv_it_client_t *c = qv_it_client_new (s_cw.endpoint, 20000);
    qv_it_client_set_cancel (c, &s_cw.stop);
    while (!atomic_load (&s_cw.stop)) {
        int what = rand_r (&rng) % 10, k = -1;
        qv_doc_t *r = NULL;
        char name [32];
        pthread_mutex_lock (&s_cw.mutex);
        if (what < 4 && s_cw.nparts < CMAXPARTS)
            s_cw.parts [k = s_cw.nparts++] = P_UNKNOWN;
        else
        if (what < 7 && (k = s_pick_live (&rng, false)) >= 0)
            s_cw.parts [k] = P_UNKNOWN;
        pthread_mutex_unlock (&s_cw.mutex);
        if (k >= 0) {
            s_part_name (k, name, sizeof name);
            r = qv_it_callf (c, "{op: '%s_partition', collection: 'cr', partition: '%s'}",
                             what < 4 ? "create" : "drop", name);
            pthread_mutex_lock (&s_cw.mutex);
            s_cw.parts [k] = !r ? P_UNKNOWN : !qv_it_ok (r) ? (what < 4 ? P_NONE : P_LIVE)
                           : what < 4 ? P_LIVE : P_DROPPED;
            pthread_mutex_unlock (&s_cw.mutex);
        }
        else
            r = qv_it_callf (c, "{op: 'flush', collection: 'cr'}");
        if (r && !qv_it_ok (r)) {
            fprintf (stderr, "ddl: %s %s\n", qv_it_code (r), qv_it_error (r));
            atomic_fetch_add (&s_cw.errors, 1);
        }
        bool gone = r == NULL;
        qv_doc_destroy (&r);
        if (gone)
            break;
        zclock_sleep (20);
    }
    qv_it_client_destroy (&c);
    return NULL;
}

//  After a restart: list_partitions holds every live partition and no dropped one; each
//  id is in the partition of its last acknowledged write if that one is live, or in one
//  it was written to without a reply; in no partition if that one was dropped (or a
//  write without a reply may have put it elsewhere). Indexed filters count right.
static void
s_crash_check (qv_it_client_t *c, const char *when)
{
    qv_doc_t *r = CALL_OK (c, "{op: 'list_partitions', collection: 'cr'}");
    const qv_val_t *names = qv_it_path (r, "partitions");
    bool listed [CMAXPARTS] = { false };
    for (size_t i = 0; i < qv_val_len (names); i++) {
        char name [32];
        assert_int_equal (qv_val_strcpy (qv_val_at (names, i), name, sizeof name), 0);
        int k = streq (name, "_default") ? 0 : atoi (name + 1);
        assert_true (k >= 0 && k < s_cw.nparts);
        listed [k] = true;
    }
    qv_doc_destroy (&r);
    for (int k = 0; k < s_cw.nparts; k++) {
        if ((s_cw.parts [k] == P_LIVE && !listed [k]) || (s_cw.parts [k] == P_DROPPED && listed [k])
        ||  (s_cw.parts [k] == P_NONE && listed [k]))
            fail_msg ("%s: partition p%d (state %d) is %slisted", when, k, s_cw.parts [k],
                      listed [k] ? "" : "not ");
        if (s_cw.parts [k] == P_UNKNOWN)        //  settled by what the server says
            s_cw.parts [k] = listed [k] ? P_LIVE : P_DROPPED;
    }
    //  Where each id is: found [w][id] = partition + 1, 0 if nowhere.
    static int16_t found [CWRITERS][CMAXIDS];
    memset (found, 0, sizeof found);
    int64_t total = 0;
    for (int k = 0; k < s_cw.nparts; k++) {
        if (!listed [k])
            continue;
        char name [32];
        s_part_name (k, name, sizeof name);
        for (int64_t lo = 0; lo < CWRITERS * CMAXIDS; lo += 16000) {
            r = CALL_OK (c, "{op: 'query', collection: 'cr', filter: 'id >= %lld and id < %lld', "
                            "partitions: ['%s'], output_fields: ['id'], limit: 16384}",
                         (long long) lo, (long long) lo + 16000, name);
            const qv_val_t *rows = qv_it_path (r, "rows");
            for (size_t i = 0; i < qv_val_len (rows); i++) {
                int64_t id = qv_it_int (qv_it_vpath (qv_val_at (rows, i), "id"));
                assert_true (id >= 0 && id < CWRITERS * CMAXIDS);
                if (found [id / CMAXIDS][id % CMAXIDS])
                    fail_msg ("%s: id %lld is in two partitions", when, (long long) id);
                found [id / CMAXIDS][id % CMAXIDS] = (int16_t) (k + 1);
                total++;
            }
            qv_doc_destroy (&r);
        }
    }
    int64_t n7 = 0;
    for (int wid = 0; wid < CWRITERS; wid++)
        for (int i = 0; i < CMAXIDS; i++) {
            int last = s_cw.last [wid][i], got = found [wid][i] - 1;
            uint64_t maybe = s_cw.maybe [wid][i];
            bool ok = got == last
                   || (got >= 0 && (maybe >> (got % 64)) & 1)
                   || (got < 0 && maybe);           //  moved by a write without a reply, then dropped
            if (last >= 0 && s_cw.parts [last] == P_DROPPED && got < 0)
                ok = true;
            if (last >= 0 && s_cw.parts [last] == P_DROPPED && got >= 0)
                ok = (maybe >> (got % 64)) & 1;
            if (!ok)
                fail_msg ("%s: id %lld is in partition %d; last acknowledged in %d (state %d), "
                          "unanswered writes 0x%llx", when, (long long) wid * CMAXIDS + i, got, last,
                          last >= 0 ? (int) s_cw.parts [last] : -1, (unsigned long long) maybe);
            if (got >= 0) {         //  settled: later rounds hold it to this
                s_cw.last [wid][i] = (int16_t) got;
                n7 += (wid * CMAXIDS + i) % 100 == 7 && (wid * CMAXIDS + i) % 7 == 3;
            }
            else
                s_cw.last [wid][i] = -1;
            s_cw.maybe [wid][i] = 0;
        }
    r = CALL_OK (c, "{op: 'describe_collection', collection: 'cr'}");
    assert_int_equal (qv_it_int (qv_it_path (r, "rows")), total);
    qv_doc_destroy (&r);
    assert_int_equal (s_count (c, "cr", "n == 7 and tag == \"t3\"", "[]"), n7);
}

static void
test_crash_partitions (void **state)
{
    (void) state;
    const char *env = getenv ("QV_IT_SEED");
    memset (&s_cw, 0, sizeof s_cw);
    s_cw.seed = env ? (unsigned) strtoul (env, NULL, 10) : (unsigned) (time (NULL) ^ getpid ());
    fprintf (stderr, "test_crash_partitions: QV_IT_SEED=%u\n", s_cw.seed);
    pthread_mutex_init (&s_cw.mutex, NULL);
    memset (s_cw.last, 0xff, sizeof s_cw.last);
    s_cw.parts [0] = P_LIVE;
    s_cw.nparts = 1;
    const char *extra [] = { "--segment-mb", "1", NULL };
    qv_it_server_t *server = s_start (extra);
    qv_it_client_t *c = s_client (server);
    qv_doc_t *r = CALL_OK (c, "{op: 'create_collection', collection: 'cr', fields: ["
                              "{name: 'id', type: 'int64', primary: true}, {name: 'n', type: 'int64'},"
                              "{name: 'tag', type: 'varchar', max_length: 8},"
                              "{name: 'v', type: 'float_vector', dim: 4}]}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'create_index', collection: 'cr', field: 'n', index_type: 'STL_SORT'}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'create_index', collection: 'cr', field: 'tag', index_type: 'INVERTED'}");
    qv_doc_destroy (&r);
    unsigned rng = s_cw.seed;
    for (int round = 0; round < 3; round++) {
        s_cw.endpoint = server->endpoint;
        atomic_store (&s_cw.stop, false);
        atomic_store (&s_cw.acked, 0);
        pthread_t threads [CWRITERS + 1];
        for (int i = 0; i < CWRITERS; i++)
            pthread_create (&threads [i], NULL, s_crash_writer, (void *) (intptr_t) i);
        pthread_create (&threads [CWRITERS], NULL, s_crash_ddl, NULL);
        int target = 300 + rand_r (&rng) % 500;
        int64_t deadline = zclock_mono () + 120000;
        while (atomic_load (&s_cw.acked) < target && zclock_mono () < deadline)
            zclock_sleep (1);
        assert_int_equal (qv_it_server_kill (server), 0);
        atomic_store (&s_cw.stop, true);
        for (int i = 0; i <= CWRITERS; i++)
            pthread_join (threads [i], NULL);
        assert_true (atomic_load (&s_cw.acked) >= target);
        assert_int_equal (atomic_load (&s_cw.errors), 0);
        int live = 0, dropped = 0;
        for (int k = 0; k < s_cw.nparts; k++) {
            live += s_cw.parts [k] == P_LIVE;
            dropped += s_cw.parts [k] == P_DROPPED;
        }
        fprintf (stderr, "round %d: %d batches acknowledged, %d partitions live, %d dropped\n",
                 round + 1, atomic_load (&s_cw.acked), live, dropped);
        assert_int_equal (qv_it_server_restart (server), 0);
        s_crash_check (c, round == 0 ? "round 1" : round == 1 ? "round 2" : "round 3");
    }
    //  Replayed once more without any new write: the same.
    assert_int_equal (qv_it_server_kill (server), 0);
    assert_int_equal (qv_it_server_restart (server), 0);
    s_crash_check (c, "a restart without writes");
    pthread_mutex_destroy (&s_cw.mutex);
    qv_it_client_destroy (&c);
    qv_it_server_destroy (&server);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_reads_of_no_segment),
        cmocka_unit_test (test_partition_name_bytes),
        cmocka_unit_test (test_insert_behind_drop),
        cmocka_unit_test (test_drop_while_indexing),
        cmocka_unit_test (test_moved_then_dropped),
        cmocka_unit_test (test_moves_under_reads),
        cmocka_unit_test (test_indexed_extremes),
        cmocka_unit_test (test_crash_partitions),
    };
    if (getenv ("QV_IT_ONLY"))
        cmocka_set_test_filter (getenv ("QV_IT_ONLY"));
    return cmocka_run_group_tests (tests, NULL, NULL);
}

//  A data directory written by the release before the stored-object envelope
//  (Quiver 06906df, tests/fixtures/v1-data, made by tests/fixtures/make_v1_data.py)
//  opens with this release: the flushed rows, the delete and the inserts in the WAL
//  tail, the HNSW and STL_SORT indexes loaded (not rebuilt), a search answer; then
//  new objects (envelopes) written beside the old ones, and a restart reads both.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_codec.h"
#include "qv_envelope.h"
#include "qv_it_server.h"

#define DIM 8
#define CALL_OK QV_IT_CALL_OK
#define INDEX_MS 60000

//  The vector of row i (tests/fixtures/make_v1_data.py's vec).
static void
s_vec (int64_t i, float *v)
{
    v [0] = (float) ((double) i / 100.0);
    for (int j = 1; j < DIM; j++)
        v [j] = (float) ((double) ((i * (j + 1) * 7919) % 1000) / 1000.0);
}

//  Searches for row i's vector; returns the top id, and its distance in *dist.
static int64_t
s_top (qv_it_client_t *c, int64_t i, double *dist)
{
    float q [DIM];
    s_vec (i, q);
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 4);
    qv_wr_str (w, "op"); qv_wr_str (w, "search");
    qv_wr_str (w, "collection"); qv_wr_str (w, "legacy");
    qv_wr_str (w, "vectors"); qv_wr_bin (w, q, sizeof q);
    qv_wr_str (w, "limit"); qv_wr_uint (w, 1);
    qv_doc_t *r = qv_it_call (c, w);
    qv_wr_destroy (&w);
    if (!qv_it_ok (r))
        fail_msg ("search: %s %s", qv_it_code (r), qv_it_error (r));
    int64_t id = qv_it_int (qv_it_path (r, "results.0.0.id"));
    *dist = qv_it_num (qv_it_path (r, "results.0.0.distance"));
    qv_doc_destroy (&r);
    return id;
}

static int64_t
s_count (qv_it_client_t *c, const char *filter)
{
    qv_doc_t *r = CALL_OK (c, "{op: 'query', collection: 'legacy', filter: '%s',"
                              " output_fields: ['count(*)']}", filter);
    int64_t n = qv_it_int (qv_it_path (r, "rows.0.count(*)"));
    qv_doc_destroy (&r);
    return n;
}

//  The answers the fixture must give, from any release that opens it.
static void
s_check_rows (qv_it_client_t *c, int64_t extra)
{
    //  300 flushed, 5, 6, 7 deleted in the WAL tail, 300..319 inserted there
    assert_int_equal (s_count (c, ""), 317 + extra);
    qv_doc_t *r = CALL_OK (c, "{op: 'get', collection: 'legacy', ids: [4, 5, 6, 7, 8, 123, 310],"
                              " output_fields: ['tag', 'n']}");
    const qv_val_t *rows = qv_it_path (r, "rows");
    assert_int_equal (qv_val_len (rows), 4);
    int64_t got [4];
    for (int i = 0; i < 4; i++) {
        got [i] = qv_it_int (qv_it_vpath (qv_val_at (rows, (size_t) i), "id"));
        int64_t id = got [i];
        assert_true (qv_it_str_is (qv_it_vpath (qv_val_at (rows, (size_t) i), "tag"),
                                   id % 2 ? "odd" : "even"));
        assert_int_equal (qv_it_int (qv_it_vpath (qv_val_at (rows, (size_t) i), "n")), id * 10);
    }
    qsort (got, 4, sizeof got [0], qv_it_cmp_i64);
    assert_int_equal (got [0], 4);
    assert_int_equal (got [1], 8);
    assert_int_equal (got [2], 123);
    assert_int_equal (got [3], 310);
    qv_doc_destroy (&r);
    //  The STL_SORT index's field: n = 10 id; ids 0..9 less the three deleted
    assert_int_equal (s_count (c, "n < 100"), 7);
    assert_int_equal (s_count (c, "n >= 3000"), 20);
    assert_int_equal (s_count (c, "tag == \"odd\" and n < 100"), 3);
    //  Searches: a flushed row through the HNSW index, a WAL-tail row, a deleted row
    double dist;
    assert_int_equal (s_top (c, 123, &dist), 123);
    assert_true (dist == 0);
    assert_int_equal (s_top (c, 310, &dist), 310);
    assert_true (dist == 0);
    int64_t top = s_top (c, 6, &dist);
    assert_true (top != 6);
    assert_true (dist > 0);
}

//  The index of field on legacy is finished over every row. The WAL tail's rows are
//  sealed into a segment of their own at start and indexed then: poll until done.
static void
s_check_index (qv_it_client_t *c, const char *field, const char *type)
{
    qv_doc_t *r = NULL;
    int64_t deadline = zclock_mono () + INDEX_MS;
    while (true) {
        r = CALL_OK (c, "{op: 'describe_index', collection: 'legacy', field: '%s'}", field);
        if ((qv_it_str_is (qv_it_path (r, "state"), "finished")
             && qv_it_int (qv_it_path (r, "indexed_rows")) == qv_it_int (qv_it_path (r, "total_rows")))
        ||  zclock_mono () > deadline)
            break;
        qv_doc_destroy (&r);
        zclock_sleep (20);
    }
    assert_true (qv_it_str_is (qv_it_path (r, "index_type"), type));
    assert_true (qv_it_str_is (qv_it_path (r, "state"), "finished"));
    //  (growing rows count as indexed: they are scanned exactly until flushed)
    assert_int_equal (qv_it_int (qv_it_path (r, "indexed_rows")),
                      qv_it_int (qv_it_path (r, "total_rows")));
    assert_int_equal (qv_it_int (qv_it_path (r, "total_rows")), 320);   //  stored rows
    qv_doc_destroy (&r);
}

//  Copies the committed fixture into the server's fresh data directory.
static void
s_copy_fixture (const char *dir)
{
    char src [1024], cmd [PATH_MAX + 1200];
    snprintf (src, sizeof src, "%s", __FILE__);
    char *cut = strstr (src, "tests/it/");
    assert_non_null (cut);
    snprintf (cut, sizeof src - (size_t) (cut - src), "tests/fixtures/v1-data");
    snprintf (cmd, sizeof cmd, "cp -R '%s/.' '%s/'", src, dir);
    assert_int_equal (system (cmd), 0);
}

//  Whether the file at path starts with magic.
static bool
s_starts_with (const char *path, const char *magic)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return false;
    char head [8] = { 0 };
    size_t n = fread (head, 1, sizeof head, f);
    fclose (f);
    return n >= strlen (magic) && memcmp (head, magic, strlen (magic)) == 0;
}

static void
test_v1_data_opens (void **state)
{
    (void) state;
    if (qv_it_s3 ())
        skip ();                    //  the fixture is a local data directory
    qv_it_server_t *server = qv_it_server_new (NULL);
    assert_non_null (server);
    s_copy_fixture (server->dir);
    char path [PATH_MAX + 64];
    snprintf (path, sizeof path, "%s/meta/manifest/00000000000000000005", server->dir);
    assert_true (s_starts_with (path, "QVMAN"));
    assert_int_equal (qv_it_server_start (server), 0);
    qv_it_client_t *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);

    s_check_index (c, "vector", "HNSW");
    s_check_index (c, "n", "STL_SORT");
    s_check_rows (c, 0);
    //  Segment 1's indexes were loaded from the old objects, not rebuilt or refused
    //  (the WAL tail's rows are sealed as segment 2 and indexed at start)
    char *log = qv_it_server_log_text (server);
    assert_null (strstr (log, "cannot be used"));
    assert_null (strstr (log, "of segment 1 ("));
    assert_non_null (strstr (log, "recovered manifest"));
    free (log);

    //  New writes go out as envelopes beside the old objects; a restart reads both
    qv_doc_t *r = CALL_OK (c, "{op: 'insert', collection: 'legacy', rows: [{id: 1000,"
                              " vector: [9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0], tag: 'new', n: 10000}]}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'delete', collection: 'legacy', ids: [8]}");
    qv_doc_destroy (&r);
    //  The delete was acknowledged, so its WAL object is there (until a flush
    //  checkpoints past it)
    char newest [PATH_MAX + 64];
    char waldir [PATH_MAX + 64];
    snprintf (waldir, sizeof waldir, "%s/wal", server->dir);
    assert_int_equal (qv_it_newest_file (waldir, newest, sizeof newest), 0);
    assert_true (s_starts_with (newest, QV_ENVELOPE_MAGIC));
    r = CALL_OK (c, "{op: 'flush', collection: 'legacy'}");
    qv_doc_destroy (&r);
    snprintf (waldir, sizeof waldir, "%s/meta/manifest", server->dir);
    assert_int_equal (qv_it_newest_file (waldir, newest, sizeof newest), 0);
    assert_true (s_starts_with (newest, QV_ENVELOPE_MAGIC));
    qv_it_client_destroy (&c);
    assert_int_equal (qv_it_server_kill (server), 0);
    assert_int_equal (qv_it_server_restart (server), 0);
    c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    assert_int_equal (s_count (c, ""), 317);   //  + 1000, - 8
    assert_int_equal (s_count (c, "n >= 3000"), 21);
    double dist;
    assert_int_equal (s_top (c, 123, &dist), 123);
    assert_true (dist == 0);
    r = CALL_OK (c, "{op: 'get', collection: 'legacy', ids: [8, 1000]}");
    assert_int_equal (qv_val_len (qv_it_path (r, "rows")), 1);
    assert_int_equal (qv_it_int (qv_it_path (r, "rows.0.id")), 1000);
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
    qv_it_server_destroy (&server);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_v1_data_opens),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}

//  The inter-actor message table: every message round-trips through the codec (every
//  field compared), handles refuse to cross processes, malformed messages (missing,
//  unknown, wrong-typed fields, truncated bytes) are refused with QV_EPROTO naming
//  the field, and in-process send/receive passes the very pointer.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_msg.h"
#include "qv_test_json.h"

static qv_schema_t *s_schema;       //  collection 7's schema

static const qv_schema_t *
s_lookup (void *arg, uint32_t coll_id)
{
    (void) arg;
    return coll_id == 7 ? s_schema : NULL;
}

static int
s_setup (void **state)
{
    (void) state;
    s_schema = qv_test_schema ("[{\"name\": \"id\", \"type\": \"int64\", \"primary\": true},"
                               " {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 2, \"metric\": \"IP\"},"
                               " {\"name\": \"tag\", \"type\": \"varchar\", \"nullable\": true}]");
    return s_schema ? 0 : -1;
}

static int
s_teardown (void **state)
{
    (void) state;
    qv_schema_destroy (&s_schema);
    return 0;
}

//  A job as the actors pass it: a decoded insert request, its record, a reply.
static qv_job_t *
s_job (uint64_t id)
{
    qv_job_t *job = qv_job_new (id);
    size_t size;
    void *req = qv_test_mp ("{\"op\": \"insert\", \"collection\": \"docs\", \"rid\": [1, \"x\"],"
                            " \"rows\": [{\"id\": 1, \"v\": [1, 2], \"tag\": \"a\"},"
                            " {\"id\": 2, \"v\": f32[3, 4]}]}", &size);
    assert_int_equal (qv_req_parse (req, size, 1000, &job->req), 0);
    free (req);
    qv_record_t *rec = job->rec = qv_record_new (QV_REC_INSERT);
    rec->ts = 123456789ull << 18;
    rec->coll_id = 7;
    rec->shard = 1;
    rec->seg_id = 1ull << 40;
    rec->sseq = 99;
    assert_int_equal (qv_batch_from_request (s_schema, job->req.f [QV_F_rows], NULL, 100, &rec->batch), 0);
    job->sseq = 99;
    job->bytes = 4096;
    job->deadline = -5;
    job->deleted = 12;
    job->rc = QV_EUNAVAIL;
    job->reply = malloc (3);
    memcpy (job->reply, "\x81\xa1" "a", 3);
    job->reply_size = 3;
    return job;
}

static void *
s_bytes (void (*write) (const void *, qv_wr_t *), const void *obj, size_t *size)
{
    qv_wr_t *w = qv_wr_new ();
    write (obj, w);
    void *data = qv_wr_detach (w, size);
    qv_wr_destroy (&w);
    return data;
}

static void
s_write_rec (const void *rec, qv_wr_t *w)
{
    qv_record_write (rec, w);
}

static void
s_write_req (const void *job, qv_wr_t *w)
{
    qv_wr_val (w, qv_doc_root (((const qv_job_t *) job)->req.doc));
}

static void
s_assert_same_bytes (void (*write) (const void *, qv_wr_t *), const void *a, const void *b)
{
    size_t na, nb;
    void *da = s_bytes (write, a, &na), *db = s_bytes (write, b, &nb);
    assert_int_equal (na, nb);
    assert_memory_equal (da, db, na);
    free (da);
    free (db);
}

static void
s_assert_same_job (const qv_job_t *a, const qv_job_t *b)
{
    if (!a) {
        assert_null (b);
        return;
    }
    assert_non_null (b);
    assert_int_equal (a->id, b->id);
    assert_int_equal (a->sseq, b->sseq);
    assert_int_equal (a->bytes, b->bytes);
    assert_int_equal (a->deadline, b->deadline);
    assert_int_equal (a->deleted, b->deleted);
    assert_int_equal (a->rc, b->rc);
    assert_int_equal (a->reply_size, b->reply_size);
    if (a->reply)
        assert_memory_equal (a->reply, b->reply, a->reply_size);
    else
        assert_null (b->reply);
    assert_int_equal (a->req.doc != NULL, b->req.doc != NULL);
    if (a->req.doc) {
        assert_int_equal (a->req.op, b->req.op);
        assert_string_equal (a->req.collection, b->req.collection);
        s_assert_same_bytes (s_write_req, a, b);
    }
    assert_int_equal (a->rec != NULL, b->rec != NULL);
    if (a->rec) {
        assert_int_equal (a->rec->type, b->rec->type);
        assert_int_equal (a->rec->batch->n, b->rec->batch->n);
        s_assert_same_bytes (s_write_rec, a->rec, b->rec);
    }
}

//  Fills every field of msg with a value that tells it apart; variant 1 leaves jobs
//  out and uses edge values.
static void
s_fill (qv_msg_t *msg, int variant)
{
    const qv_mdesc_t *d = qv_msg_desc (msg->id);
    for (size_t i = 0; i < d->nfields; i++) {
        const qv_mfield_t *f = &d->fields [i];
        void *at = (char *) msg + f->offset;
        switch (f->type) {
            case QV_MT_U64:  *(uint64_t *) at = variant ? UINT64_MAX - i : 1000 * msg->id + i; break;
            case QV_MT_I64:  *(int64_t *) at = variant ? INT64_MIN + (int64_t) i : -(int64_t) i - 7; break;
            case QV_MT_BOOL: *(bool *) at = variant == 0; break;
            case QV_MT_STR:
                free (*(char **) at);
                *(char **) at = strdup (variant ? "" : "segment 12 was not written: disk full \xc3\xa9");
                break;
            case QV_MT_BIN: {
                qv_msg_bin_t *b = at;
                b->size = variant ? 0 : 300;
                b->data = variant ? NULL : malloc (300);
                for (size_t j = 0; j < b->size; j++)
                    ((uint8_t *) b->data) [j] = (uint8_t) (j * 7);
                break;
            }
            case QV_MT_JOB:  *(qv_job_t **) at = variant ? NULL : s_job (msg->id); break;
            case QV_MT_PTR:  *(void **) at = msg; break;
        }
    }
}

static void
s_assert_same (const qv_msg_t *a, const qv_msg_t *b)
{
    assert_int_equal (a->id, b->id);
    const qv_mdesc_t *d = qv_msg_desc (a->id);
    for (size_t i = 0; i < d->nfields; i++) {
        const qv_mfield_t *f = &d->fields [i];
        const void *x = (const char *) a + f->offset, *y = (const char *) b + f->offset;
        switch (f->type) {
            case QV_MT_U64:  assert_int_equal (*(const uint64_t *) x, *(const uint64_t *) y); break;
            case QV_MT_I64:  assert_int_equal (*(const int64_t *) x, *(const int64_t *) y); break;
            case QV_MT_BOOL: assert_int_equal (*(const bool *) x, *(const bool *) y); break;
            case QV_MT_STR:  assert_string_equal (*(char * const *) x, *(char * const *) y); break;
            case QV_MT_BIN: {
                const qv_msg_bin_t *p = x, *q = y;
                assert_int_equal (p->size, q->size);
                if (p->size)
                    assert_memory_equal (p->data, q->data, p->size);
                break;
            }
            case QV_MT_JOB:
                s_assert_same_job (*(qv_job_t * const *) x, *(qv_job_t * const *) y);
                break;
            case QV_MT_PTR:  fail_msg ("a PTR field crossed the codec"); break;
        }
    }
}

static void
test_table (void **state)
{
    (void) state;
    assert_null (qv_msg_desc (QV_MSG_NONE));
    assert_null (qv_msg_desc (QV_MSG_COUNT));
    assert_string_equal (qv_msg_name (QV_MSG_COUNT), "?");
    for (int id = QV_MSG_NONE + 1; id < QV_MSG_COUNT; id++) {
        const qv_mdesc_t *d = qv_msg_desc (id);
        assert_non_null (d);
        assert_int_equal (d->id, id);
        assert_true (strlen (d->route) > 10);
        assert_true (d->nfields <= 16);
        for (int other = id + 1; other < QV_MSG_COUNT; other++)
            assert_string_not_equal (d->name, qv_msg_name (other));
        for (size_t i = 0; i < d->nfields; i++) {
            assert_string_not_equal (d->fields [i].name, "msg");
            assert_true (d->fields [i].offset >= sizeof (qv_msg_t));
            assert_true (d->fields [i].offset < d->size);
        }
    }
    //  The typed structs are the table's: SEAL is {coll, seg}
    qv_msg_seal_t *seal = qv_msg_seal_new ();
    assert_int_equal (seal->hdr.id, QV_MSG_SEAL);
    seal->coll = 3;
    seal->seg = 4;
    qv_msg_free (&seal);
    assert_null (seal);
    qv_msg_free (&seal);            //  safe twice
}

static void
test_round_trip_every_message (void **state)
{
    (void) state;
    int crossed = 0, local = 0;
    qv_wr_t *w = qv_wr_new ();
    for (int id = QV_MSG_NONE + 1; id < QV_MSG_COUNT; id++) {
        const qv_mdesc_t *d = qv_msg_desc (id);
        bool has_ptr = false;
        for (size_t i = 0; i < d->nfields; i++)
            has_ptr |= d->fields [i].type == QV_MT_PTR;
        for (int variant = 0; variant < 2; variant++) {
            qv_msg_t *msg = qv_msg_new (id);
            assert_non_null (msg);
            s_fill (msg, variant);
            qv_wr_reset (w);
            int rc = qv_msg_encode (msg, w);
            if (has_ptr) {
                //  A handle cannot cross processes: refused, naming the field
                assert_int_equal (rc, QV_EINVAL);
                assert_non_null (strstr (qv_err_msg (), d->name));
                assert_non_null (strstr (qv_err_msg (), "in-process handle"));
                local++;
                qv_msg_destroy (&msg);
                continue;
            }
            assert_int_equal (rc, 0);
            size_t size;
            const void *data = qv_wr_data (w, &size);
            qv_msg_t *out = NULL;
            rc = qv_msg_decode (data, size, s_lookup, NULL, &out);
            if (rc)
                fail_msg ("%s: %s %s", d->name, qv_rc_name (rc), qv_err_msg ());
            s_assert_same (msg, out);
            //  ... and it encodes to the same bytes again
            qv_wr_t *again = qv_wr_new ();
            assert_int_equal (qv_msg_encode (out, again), 0);
            size_t size2;
            const void *data2 = qv_wr_data (again, &size2);
            assert_int_equal (size, size2);
            assert_memory_equal (data, data2, size);
            qv_wr_destroy (&again);
            qv_msg_destroy (&out);
            qv_msg_destroy (&msg);
            crossed++;
        }
    }
    assert_true (crossed >= 2 * 10);
    assert_true (local >= 2 * 4);
    qv_wr_destroy (&w);
}

//  Decodes the msgpack of json, expecting rc with `needle` in the message.
static void
s_refused (const char *json, int want, const char *needle)
{
    size_t size;
    void *data = qv_test_mp (json, &size);
    qv_msg_t *out = (qv_msg_t *) 1;
    int rc = qv_msg_decode (data, size, s_lookup, NULL, &out);
    free (data);
    if (rc != want || !strstr (qv_err_msg (), needle))
        fail_msg ("%s: got %s '%s', want %s with '%s'", json, qv_rc_name (rc), qv_err_msg (),
                  qv_rc_name (want), needle);
    assert_null (out);
}

static void
test_malformed_refused (void **state)
{
    (void) state;
    //  The well-formed one first, so the refusals below are about their one fault
    size_t size;
    void *data = qv_test_mp ("{\"msg\": \"SEAL\", \"coll\": 1, \"seg\": 2}", &size);
    qv_msg_t *out = NULL;
    assert_int_equal (qv_msg_decode (data, size, NULL, NULL, &out), 0);
    assert_int_equal (((qv_msg_seal_t *) out)->seg, 2);
    qv_msg_destroy (&out);
    free (data);
    //  A job of a release before "deleted" decodes with deleted -1
    data = qv_test_mp ("{\"msg\": \"WRITE\", \"job\": {\"id\": 1, \"request\": null, \"record\": null,"
                       " \"sseq\": 0, \"bytes\": 0, \"deadline\": 0, \"rc\": 0, \"reply\": null}}", &size);
    assert_int_equal (qv_msg_decode (data, size, NULL, NULL, &out), 0);
    assert_int_equal (((qv_msg_write_t *) out)->job->deleted, -1);
    qv_msg_destroy (&out);
    free (data);

    s_refused ("{\"msg\": \"SEAL\", \"coll\": 1}", QV_EPROTO, "message SEAL: field 'seg' is missing");
    s_refused ("{\"msg\": \"SEAL\", \"coll\": \"1\", \"seg\": 2}", QV_EPROTO,
               "field 'coll' has type string, expected integer");
    s_refused ("{\"msg\": \"SEAL\", \"coll\": -1, \"seg\": 2}", QV_EPROTO, "field 'coll' is negative");
    s_refused ("{\"msg\": \"SEAL\", \"coll\": 1.5, \"seg\": 2}", QV_EPROTO, "'coll' has type float");
    s_refused ("{\"msg\": \"SEAL\", \"coll\": 1, \"seg\": 2, \"extra\": 3}", QV_EPROTO,
               "message SEAL: unknown field 'extra'");
    s_refused ("{\"msg\": \"SEAL\", \"coll\": 1, \"seg\": 2, 5: 3}", QV_EPROTO, "unknown field '(not a string)'");
    s_refused ("{\"msg\": \"SEAL\", \"coll\": 1, \"coll\": 1, \"seg\": 2}", QV_EPROTO, "twice");
    s_refused ("{\"msg\": \"NOPE\"}", QV_EPROTO, "unknown message 'NOPE'");
    s_refused ("{\"msg\": 3}", QV_EPROTO, "field 'msg' has type integer");
    s_refused ("{\"coll\": 1, \"seg\": 2}", QV_EPROTO, "field 'msg' is missing");
    s_refused ("[\"SEAL\", 1, 2]", QV_EPROTO, "must be a map");
    s_refused ("{\"msg\": \"APPLY\", \"job\": null, \"seq\": 1, \"wal_index\": 0, \"wal_last\": 1}",
               QV_EPROTO, "field 'wal_last' has type integer, expected bool");
    s_refused ("{\"msg\": \"MANIFESTED\", \"version\": 1, \"rc\": 18446744073709551615, \"error\": \"\"}",
               QV_EPROTO, "field 'rc' is out of range");
    s_refused ("{\"msg\": \"MANIFEST\", \"version\": 1, \"manifest\": \"text\"}", QV_EPROTO,
               "field 'manifest' has type string, expected bin");
    //  A handle never comes from the wire
    s_refused ("{\"msg\": \"BUILD\", \"build\": 1}", QV_EPROTO, "in-process handle ('build')");
    //  Jobs: their own fields checked the same way
    s_refused ("{\"msg\": \"WRITE\", \"job\": [1]}", QV_EPROTO, "field 'job' has type array, expected map");
    s_refused ("{\"msg\": \"WRITE\", \"job\": {\"id\": 1}}", QV_EPROTO, "field 'request' is missing");
    s_refused ("{\"msg\": \"WRITE\", \"job\": {\"id\": 1, \"request\": null, \"record\": null, \"sseq\": 0,"
               " \"bytes\": 0, \"deadline\": 0, \"deleted\": -1, \"rc\": 0, \"reply\": null, \"more\": 1}}", QV_EPROTO,
               "unknown field 'more'");
    s_refused ("{\"msg\": \"WRITE\", \"job\": {\"id\": 1, \"request\": \"x\", \"record\": null, \"sseq\": 0,"
               " \"bytes\": 0, \"deadline\": 0, \"deleted\": -1, \"rc\": 0, \"reply\": null}}", QV_EPROTO,
               "field 'request' has type string, expected bin");
    s_refused ("{\"msg\": \"WRITE\", \"job\": {\"id\": 1, \"request\": f32[1], \"record\": null, \"sseq\": 0,"
               " \"bytes\": 0, \"deadline\": 0, \"deleted\": -1, \"rc\": 0, \"reply\": null}}", QV_EPROTO,
               "its request does not decode");
    s_refused ("{\"msg\": \"WRITE\", \"job\": {\"id\": 1, \"request\": null, \"record\": f32[1, 2], \"sseq\": 0,"
               " \"bytes\": 0, \"deadline\": 0, \"deleted\": -1, \"rc\": 4294967296, \"reply\": null}}", QV_EPROTO,
               "out of range");
    s_refused ("{\"msg\": \"WRITE\", \"job\": {\"id\": 1, \"request\": null, \"record\": null, \"sseq\": 0,"
               " \"bytes\": 0, \"deadline\": 0, \"deleted\": -2, \"rc\": 0, \"reply\": null}}", QV_EPROTO,
               "out of range");
    s_refused ("{\"msg\": \"WRITE\", \"job\": {\"id\": 1, \"request\": null, \"record\": f32[1, 2], \"sseq\": 0,"
               " \"bytes\": 0, \"deadline\": 0, \"deleted\": -1, \"rc\": 0, \"reply\": null}}", QV_EPROTO,
               "its record does not decode");
}

//  Every prefix of every encodable message is refused (the codec's QV_EPROTO), and
//  a record of a collection the receiver does not know is QV_ENOTFOUND, not a crash.
static void
test_truncated_refused (void **state)
{
    (void) state;
    qv_wr_t *w = qv_wr_new ();
    int prefixes = 0;
    for (int id = QV_MSG_NONE + 1; id < QV_MSG_COUNT; id++) {
        qv_msg_t *msg = qv_msg_new (id);
        s_fill (msg, 0);
        qv_wr_reset (w);
        if (qv_msg_encode (msg, w) == 0) {
            size_t size;
            const uint8_t *data = qv_wr_data (w, &size);
            for (size_t n = 0; n < size; n++) {
                qv_msg_t *out = NULL;
                int rc = qv_msg_decode (data, n, s_lookup, NULL, &out);
                assert_int_equal (rc, QV_EPROTO);
                assert_null (out);
                prefixes++;
            }
            bool has_job = false;
            for (size_t i = 0; i < qv_msg_desc (id)->nfields; i++)
                has_job |= qv_msg_desc (id)->fields [i].type == QV_MT_JOB;
            if (has_job) {
                qv_msg_t *out = NULL;
                assert_int_equal (qv_msg_decode (data, size, NULL, NULL, &out), QV_ENOTFOUND);
                assert_null (out);
            }
        }
        qv_msg_destroy (&msg);
    }
    assert_true (prefixes > 1000);
    qv_wr_destroy (&w);
}

//  In one process the message travels by pointer: the receiver gets the same object.
//  A frame that is not a message is dropped (logged), and the next one still arrives.
static void
test_in_process (void **state)
{
    (void) state;
    zsock_t *pull = zsock_new_pull ("inproc://test_msg");
    zsock_t *push = zsock_new_push ("inproc://test_msg");
    assert_null (qv_msg_recv_nowait (pull));
    qv_msg_written_t *m = qv_msg_written_new ();
    m->seg = &m;
    m->rc = QV_EIO;
    qv_msg_t *sent = (qv_msg_t *) m;
    assert_int_equal (qv_msg_post (push, &m), 0);
    assert_null (m);
    qv_msg_t *got = qv_msg_recv (pull);
    assert_ptr_equal (got, sent);
    assert_int_equal (((qv_msg_written_t *) got)->rc, QV_EIO);
    assert_string_equal (((qv_msg_written_t *) got)->error, "");
    qv_msg_destroy (&got);

    zstr_send (push, "SEAL");       //  the old string command: not a message
    zstr_sendm (push, "12345678");  //  pointer-sized, but with a frame after it
    zstr_send (push, "x");
    qv_msg_live_t *live = qv_msg_live_new ();
    assert_int_equal (qv_msg_post (push, &live), 0);
    assert_null (qv_msg_recv (pull));
    assert_null (qv_msg_recv (pull));
    got = qv_msg_recv (pull);
    assert_non_null (got);
    assert_int_equal (got->id, QV_MSG_LIVE);
    qv_msg_destroy (&got);
    zsock_destroy (&push);
    zsock_destroy (&pull);
}

//  TICK, the committed feed's time tick: {shard, ts} through the codec, both fields
//  kept (a hybrid timestamp uses all 64 bits), and a malformed one refused.
static void
test_tick (void **state)
{
    (void) state;
    qv_msg_tick_t *tick = qv_msg_tick_new ();
    assert_int_equal (tick->hdr.id, QV_MSG_TICK);
    tick->shard = 3;
    tick->ts = (UINT64_C (1796000000000) << 18) | 262143;
    qv_wr_t *w = qv_wr_new ();
    assert_int_equal (qv_msg_encode ((qv_msg_t *) tick, w), 0);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    qv_msg_t *out = NULL;
    assert_int_equal (qv_msg_decode (data, size, NULL, NULL, &out), 0);
    assert_int_equal (out->id, QV_MSG_TICK);
    assert_int_equal (((qv_msg_tick_t *) out)->shard, 3);
    assert_true (((qv_msg_tick_t *) out)->ts == tick->ts);
    assert_string_equal (qv_msg_name (out->id), "TICK");
    qv_msg_destroy (&out);
    qv_msg_free (&tick);
    qv_wr_destroy (&w);
    s_refused ("{\"msg\": \"TICK\", \"shard\": 0}", QV_EPROTO, "message TICK: field 'ts' is missing");
    s_refused ("{\"msg\": \"TICK\", \"shard\": 0, \"ts\": -5}", QV_EPROTO, "field 'ts' is negative");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_tick),
        cmocka_unit_test (test_table),
        cmocka_unit_test (test_round_trip_every_message),
        cmocka_unit_test (test_malformed_refused),
        cmocka_unit_test (test_truncated_refused),
        cmocka_unit_test (test_in_process),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}

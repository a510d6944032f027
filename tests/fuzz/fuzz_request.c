//  libFuzzer harness for qv_req_parse: any input returns 0 or a request error code
//  (QV_EPROTO, QV_EINVAL, QV_ELIMIT), never crashes; a parsed request's fields can
//  all be read, and the error reply echoing its rid is itself valid msgpack.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qv_proto.h"
#include "qv_rc.h"
#include "qv_schema.h"

static unsigned
s_touch (const qv_val_t *v, int depth)
{
    unsigned sum = (unsigned) qv_val_type (v);
    const char *s;
    const void *p;
    size_t n;
    if (depth > 40)
        abort ();
    if (qv_val_str (v, &s, &n) == 0)
        for (size_t i = 0; i < n; i++)
            sum += (unsigned char) s [i];       //  ASan flags bytes outside the input
    if (qv_val_bin (v, &p, &n) == 0)
        for (size_t i = 0; i < n; i++)
            sum += ((const unsigned char *) p) [i];
    if (qv_val_type (v) == QV_V_ARRAY)
        for (size_t i = 0; i < qv_val_len (v); i++)
            sum += s_touch (qv_val_at (v, i), depth + 1);
    if (qv_val_type (v) == QV_V_MAP)
        for (size_t i = 0; i < qv_val_len (v); i++)
            sum += s_touch (qv_val_key (v, i), depth + 1) + s_touch (qv_val_value (v, i), depth + 1);
    return sum;
}

int
LLVMFuzzerTestOneInput (const uint8_t *input, size_t size)
{
    //  An exact-size copy, freed before the document is used: the document must
    //  own everything it points at
    unsigned char *buf = (unsigned char *) malloc (size ? size : 1);
    if (!buf)
        return 0;
    memcpy (buf, input, size);
    qv_req_t req;
    int rc = qv_req_parse (buf, size, 1 << 16, &req);
    free (buf);
    if (rc != 0 && rc != QV_EPROTO && rc != QV_EINVAL && rc != QV_ELIMIT)
        abort ();
    if (rc != 0 && !*qv_err_msg ())
        abort ();                       //  every refusal says why
    if (rc == 0) {
        if (req.op >= QV_OP_COUNT || !req.f [QV_F_op])
            abort ();
        for (int f = 0; f < QV_F_COUNT; f++)
            if (req.f [f])
                (void) s_touch (req.f [f], 0);
        if (req.f [QV_F_collection] && !qv_name_valid (req.collection, strlen (req.collection)))
            abort ();
    }
    const qv_val_t *rid = req.doc ? req.f [QV_F_rid] : NULL;
    qv_wr_t *w = qv_wr_new ();
    if (rc)
        qv_reply_error (w, rid, rc, qv_err_msg ());
    else
        qv_reply_ok (w, rid, 0);
    size_t rsize;
    const void *reply = qv_wr_data (w, &rsize);
    int rc2;
    qv_doc_t *doc = qv_doc_parse (reply, rsize, SIZE_MAX, &rc2);
    if (!doc && rc2 != QV_EPROTO)
        abort ();                       //  a rid nested 32 deep may not fit in a reply
    qv_doc_destroy (&doc);
    qv_wr_destroy (&w);
    qv_req_free (&req);
    return 0;
}

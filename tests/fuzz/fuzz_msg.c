//  libFuzzer harness for qv_msg_decode, the inter-process decoder of the inter-actor
//  messages: any input returns 0, QV_EPROTO or (a record of a collection the
//  receiver does not know) QV_ENOTFOUND, never crashes or leaks; a decoded message
//  encodes again, and those bytes decode and encode to the same bytes.
//
//  Collection 7 has an int64 key, a vector of dim 2 (IP) and a nullable varchar.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qv_msg.h"
#include "qv_rc.h"

static qv_schema_t *s_schema;

static const qv_schema_t *
s_lookup (void *arg, uint32_t coll_id)
{
    (void) arg;
    if (!s_schema) {
        qv_wr_t *w = qv_wr_new ();
        qv_wr_array (w, 3);
        qv_wr_map (w, 3);
        qv_wr_str (w, "name"); qv_wr_str (w, "id");
        qv_wr_str (w, "type"); qv_wr_str (w, "int64");
        qv_wr_str (w, "primary"); qv_wr_bool (w, true);
        qv_wr_map (w, 4);
        qv_wr_str (w, "name"); qv_wr_str (w, "v");
        qv_wr_str (w, "type"); qv_wr_str (w, "float_vector");
        qv_wr_str (w, "dim"); qv_wr_uint (w, 2);
        qv_wr_str (w, "metric"); qv_wr_str (w, "IP");
        qv_wr_map (w, 3);
        qv_wr_str (w, "name"); qv_wr_str (w, "tag");
        qv_wr_str (w, "type"); qv_wr_str (w, "varchar");
        qv_wr_str (w, "nullable"); qv_wr_bool (w, true);
        size_t size;
        const void *data = qv_wr_data (w, &size);
        int rc;
        qv_doc_t *doc = qv_doc_parse (data, size, SIZE_MAX, &rc);
        s_schema = doc ? qv_schema_parse (qv_doc_root (doc), &rc) : NULL;
        qv_doc_destroy (&doc);
        qv_wr_destroy (&w);
        if (!s_schema)
            abort ();
    }
    return coll_id == 7 ? s_schema : NULL;
}

static void *
s_encode (const qv_msg_t *msg, size_t *size)
{
    qv_wr_t *w = qv_wr_new ();
    if (qv_msg_encode (msg, w) != 0)
        abort ();                   //  a decoded message holds no handle
    void *data = qv_wr_detach (w, size);
    qv_wr_destroy (&w);
    return data;
}

int
LLVMFuzzerTestOneInput (const uint8_t *input, size_t size)
{
    //  A copy of exactly size bytes, so reading past the end is caught
    unsigned char *buf = (unsigned char *) malloc (size ? size : 1);
    if (!buf)
        return 0;
    memcpy (buf, input, size);
    qv_msg_t *msg = NULL;
    int rc = qv_msg_decode (buf, size, s_lookup, NULL, &msg);
    free (buf);
    if (rc != 0 && rc != QV_EPROTO && rc != QV_ENOTFOUND)
        abort ();
    if (rc != 0) {
        if (msg)
            abort ();               //  a failed decode hands nothing out
        return 0;
    }
    size_t n1, n2;
    void *once = s_encode (msg, &n1);
    qv_msg_t *again = NULL;
    if (qv_msg_decode (once, n1, s_lookup, NULL, &again) != 0)
        abort ();
    void *twice = s_encode (again, &n2);
    if (n1 != n2 || memcmp (once, twice, n1) != 0)
        abort ();
    free (once);
    free (twice);
    qv_msg_destroy (&again);
    qv_msg_destroy (&msg);
    return 0;
}

//  libFuzzer harness for qv_record_read: any input returns 0, QV_ECORRUPT or (an
//  insert into an unknown collection) QV_ENOTFOUND, never crashes; a decoded record
//  encodes again and decodes to the same bytes.
//
//  Collection 7 has an int64 key, a vector of dim 2, a nullable varchar and a json
//  field; collection 8 a varchar key and a COSINE vector of dim 3.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qv_rc.h"
#include "qv_record.h"

static qv_schema_t *s_schemas [2];

static qv_schema_t *
s_schema (const char *pk_type, uint32_t dim, const char *metric)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_array (w, 4);
    qv_wr_map (w, 3);
    qv_wr_str (w, "name"); qv_wr_str (w, "id");
    qv_wr_str (w, "type"); qv_wr_str (w, pk_type);
    qv_wr_str (w, "primary"); qv_wr_bool (w, true);
    qv_wr_map (w, 4);
    qv_wr_str (w, "name"); qv_wr_str (w, "v");
    qv_wr_str (w, "type"); qv_wr_str (w, "float_vector");
    qv_wr_str (w, "dim"); qv_wr_uint (w, dim);
    qv_wr_str (w, "metric"); qv_wr_str (w, metric);
    qv_wr_map (w, 3);
    qv_wr_str (w, "name"); qv_wr_str (w, "tag");
    qv_wr_str (w, "type"); qv_wr_str (w, "varchar");
    qv_wr_str (w, "nullable"); qv_wr_bool (w, true);
    qv_wr_map (w, 2);
    qv_wr_str (w, "name"); qv_wr_str (w, "meta");
    qv_wr_str (w, "type"); qv_wr_str (w, "json");
    size_t size;
    const void *data = qv_wr_data (w, &size);
    int rc;
    qv_doc_t *doc = qv_doc_parse (data, size, SIZE_MAX, &rc);
    qv_schema_t *schema = doc ? qv_schema_parse (qv_doc_root (doc), &rc) : NULL;
    qv_doc_destroy (&doc);
    qv_wr_destroy (&w);
    if (!schema)
        abort ();
    return schema;
}

static const qv_schema_t *
s_lookup (void *arg, uint32_t coll_id)
{
    (void) arg;
    if (!s_schemas [0]) {
        s_schemas [0] = s_schema ("int64", 2, "L2");
        s_schemas [1] = s_schema ("varchar", 3, "COSINE");
    }
    return coll_id == 7 ? s_schemas [0] : coll_id == 8 ? s_schemas [1] : NULL;
}

static void *
s_encode (const qv_record_t *rec, size_t *size)
{
    qv_wr_t *w = qv_wr_new ();
    qv_record_write (rec, w);
    void *data = qv_wr_detach (w, size);
    qv_wr_destroy (&w);
    return data;
}

int
LLVMFuzzerTestOneInput (const uint8_t *input, size_t size)
{
    unsigned char *buf = (unsigned char *) malloc (size ? size : 1);
    if (!buf)
        return 0;
    memcpy (buf, input, size);
    qv_record_t *rec = NULL;
    int rc = qv_record_read (buf, size, s_lookup, NULL, &rec);
    free (buf);
    if (rc != 0 && rc != QV_ECORRUPT && rc != QV_ENOTFOUND)
        abort ();
    if (rc == QV_ECORRUPT && rec)
        abort ();
    if (rc == 0) {
        if (!rec || (rec->type == QV_REC_INSERT && !rec->batch)
        ||  (rec->type == QV_REC_CREATE_COLLECTION && !rec->schema))
            abort ();
        size_t s1, s2;
        void *e1 = s_encode (rec, &s1);
        qv_record_t *again = NULL;
        if (qv_record_read (e1, s1, s_lookup, NULL, &again) != 0)
            abort ();
        void *e2 = s_encode (again, &s2);
        if (s1 != s2 || memcmp (e1, e2, s1) != 0)
            abort ();
        free (e1);
        free (e2);
        qv_record_destroy (&again);
    }
    qv_record_destroy (&rec);
    return 0;
}

//  The schema a create_collection request asks for: its `fields`, or quick setup
//  from `dimension` alone, with or without the dynamic field (PROTOCOL.md 1.1).
#ifndef QV_SCHEMA_REQ_H_INCLUDED
#define QV_SCHEMA_REQ_H_INCLUDED

#include "qv_proto.h"
#include "qv_schema.h"

//  Builds the schema of a create_collection request: from `fields` (plus the hidden
//  `$meta` field when `enable_dynamic_field` is true), or from `dimension` (quick
//  setup: `id` int64 primary, or varchar with `id_type: "varchar"` and `max_length`,
//  `auto_id` as given; `vector` float_vector of that dimension with `metric`, L2 by
//  default; names from `primary_field_name` / `vector_field_name`; the dynamic field
//  on unless `enable_dynamic_field` is false). Returns NULL with *rc_p = QV_EINVAL
//  (both or neither of fields / dimension, quick-setup options next to fields, a bad
//  name or value, `$meta` declared by hand) or QV_EPROTO, the message naming the
//  field. Called by the proxy.
qv_schema_t *
    qv_schema_from_request (const qv_req_t *req, int *rc_p);

#endif

//  The metric of a vector field: part of a schema, understood by every layer above.
#ifndef QV_METRIC_H_INCLUDED
#define QV_METRIC_H_INCLUDED

//  The metric of a vector field. Distances follow PROTOCOL.md: squared L2 (smaller is
//  better), inner product and cosine similarity (larger is better).
typedef enum {
    QV_METRIC_L2 = 0,
    QV_METRIC_IP = 1,
    QV_METRIC_COSINE = 2
} qv_metric_t;

//  "L2" / "IP" / "COSINE" <-> qv_metric_t. qv_metric_parse returns -1 for an unknown name.
const char *
    qv_metric_name (qv_metric_t metric);
int
    qv_metric_parse (const char *name);

#endif

//  Metric names.
#include "qv_metric.h"

#include <strings.h>

const char *
qv_metric_name (qv_metric_t metric)
{
    switch (metric) {
        case QV_METRIC_L2:     return "L2";
        case QV_METRIC_IP:     return "IP";
        case QV_METRIC_COSINE: return "COSINE";
    }
    return "UNKNOWN";
}

int
qv_metric_parse (const char *name)
{
    if (!name)
        return -1;
    if (strcasecmp (name, "L2") == 0)
        return QV_METRIC_L2;
    if (strcasecmp (name, "IP") == 0)
        return QV_METRIC_IP;
    if (strcasecmp (name, "COSINE") == 0)
        return QV_METRIC_COSINE;
    return -1;
}

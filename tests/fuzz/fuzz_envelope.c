//  libFuzzer harness for qv_envelope_open, and through it the WAL and segment
//  readers: any input returns 0, QV_ECORRUPT or QV_EINVAL, never crashes, and an
//  accepted payload lies inside the input.
//
//  Input: one mode byte, then the object. Mode bits 0-2 choose the kind expected
//  (1..5; 0 and 6-7 mean WAL). Bit 3 set: the harness rewrites the payload length
//  (to what is there) and bit 4 both checksums, so the fuzzer gets past them to the
//  kind, version and payload checks. Bit 5 set: an accepted WAL or segment object is
//  handed on to qv_wal_decode / qv_segment_load.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qv_crc.h"
#include "qv_envelope.h"
#include "qv_le.h"
#include "qv_rc.h"
#include "qv_segfile.h"
#include "qv_wal.h"

//  The highest version any of these kinds is written in (segment objects: 3); the
//  WAL and segment readers check their own bounds again
#define S_VERSION_MAX 3

static int
s_touch (void *arg, uint64_t seq, uint32_t index, const void *data, size_t size)
{
    (void) seq; (void) index;
    unsigned *sum = (unsigned *) arg;
    const unsigned char *p = (const unsigned char *) data;
    for (size_t k = 0; k < size; k++)
        *sum += p [k];              //  ASan flags any byte outside the input
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *input, size_t input_size)
{
    if (input_size < 1)
        return 0;
    int mode = input [0];
    size_t size = input_size - 1;
    //  An exact-size copy, so that reading one byte too far is caught
    uint8_t *buf = (uint8_t *) malloc (size ? size : 1);
    if (!buf)
        return 0;
    memcpy (buf, input + 1, size);
    int kind = mode & 7;
    if (kind < 1 || kind > QV_ENVELOPE_KIND_MAX)
        kind = QV_ENVELOPE_WAL;
    if (size >= QV_ENVELOPE_HEADER_SIZE) {
        if (mode & 8)
            qv_le_put64 (buf + 8, size - QV_ENVELOPE_HEADER_SIZE);
        if (mode & 16) {
            qv_le_put32 (buf + 24, qv_crc32c (buf + QV_ENVELOPE_HEADER_SIZE,
                                              size - QV_ENVELOPE_HEADER_SIZE));
            qv_le_put32 (buf + 28, qv_crc32c (buf, 28));
        }
    }
    qv_envelope_t env;
    int rc = qv_envelope_open ("fuzz", buf, size, (qv_envelope_kind_t) kind, S_VERSION_MAX, &env);
    if (rc != 0 && rc != QV_ECORRUPT && rc != QV_EINVAL)
        abort ();
    unsigned sum = 0;
    if (rc == 0) {
        if (env.payload != buf + QV_ENVELOPE_HEADER_SIZE
        ||  env.size != size - QV_ENVELOPE_HEADER_SIZE || env.version < 1 || env.version > S_VERSION_MAX)
            abort ();
        s_touch (&sum, 0, 0, env.payload, env.size);
    }
    if (rc == 0 && (mode & 32) && kind == QV_ENVELOPE_WAL && env.size >= 12) {
        uint32_t shard = qv_le_get32 (env.payload);
        uint64_t seq = qv_le_get64 (env.payload + 4);
        rc = qv_wal_decode ("fuzz", buf, size, shard, seq, s_touch, &sum);
        if (rc != 0 && rc != QV_ECORRUPT)
            abort ();
    }
    if (rc == 0 && (mode & 32) && kind == QV_ENVELOPE_SEGMENT) {
        qv_segment_t *seg = NULL;
        rc = qv_segment_load ("fuzz", buf, size, &seg);
        if (rc != 0 && rc != QV_ECORRUPT)
            abort ();
        qv_segment_unlink (&seg);
    }
    free (buf);
    return 0;
}

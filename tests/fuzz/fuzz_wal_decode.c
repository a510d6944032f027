//  libFuzzer harness for qv_wal_decode: any input returns 0, QV_ECORRUPT or QV_EINVAL, never
//  crashes, and every record handed to the callback lies inside the input.
//
//  Input: one mode byte, then the object. Mode bit 0 set: the harness rewrites the
//  trailing CRC32C so the fuzzer gets past the checksum to the structural checks.
//  The expected shard and seq are taken from the object's own header, so those
//  checks pass too and the record walk is reached.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qv_crc.h"
#include "qv_rc.h"
#include "qv_wal.h"

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

static uint64_t
s_le (const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p [i];
    return v;
}

int
LLVMFuzzerTestOneInput (const uint8_t *input, size_t input_size)
{
    if (input_size < 1)
        return 0;
    int mode = input [0];
    size_t size = input_size - 1;
    //  An exact-size copy, so that reading one byte too far is caught
    unsigned char *buf = (unsigned char *) malloc (size ? size : 1);
    if (!buf)
        return 0;
    memcpy (buf, input + 1, size);
    if ((mode & 1) && size >= 4) {
        uint32_t crc = qv_crc32c (buf, size - 4);
        for (int i = 0; i < 4; i++)
            buf [size - 4 + i] = (unsigned char) (crc >> (8 * i));
    }
    uint32_t shard = size >= 16 ? (uint32_t) s_le (buf + 12, 4) : 0;
    uint64_t seq = size >= 24 ? s_le (buf + 16, 8) : 0;
    unsigned sum = 0;
    int rc = qv_wal_decode ("fuzz", buf, size, shard, seq, s_touch, &sum);
    if (rc != 0 && rc != QV_ECORRUPT && rc != QV_EINVAL)     //  EINVAL: newer version
        abort ();
    free (buf);
    return 0;
}

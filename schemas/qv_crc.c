//  CRC32C through ISA-L (crc32_iscsi works on the pre-inverted register).
#include "qv_crc.h"

#include <isa-l/crc.h>

uint32_t
qv_crc32c_update (uint32_t crc, const void *data, size_t size)
{
    const unsigned char *p = data;
    crc = ~crc;
    while (size > 0) {
        int chunk = size > (1u << 30) ? (1 << 30) : (int) size;
        crc = crc32_iscsi ((unsigned char *) p, chunk, crc);
        p += chunk;
        size -= (size_t) chunk;
    }
    return ~crc;
}

uint32_t
qv_crc32c (const void *data, size_t size)
{
    return qv_crc32c_update (0, data, size);
}

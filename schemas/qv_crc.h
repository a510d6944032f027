//  CRC32C (Castagnoli) of a byte string, by ISA-L's hardware-accelerated crc32_iscsi.
#ifndef QV_CRC_H_INCLUDED
#define QV_CRC_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

//  The standard CRC32C ("123456789" -> 0xE3069283). Extend with qv_crc32c_update.
uint32_t
    qv_crc32c (const void *data, size_t size);
uint32_t
    qv_crc32c_update (uint32_t crc, const void *data, size_t size);

#endif

/*
 * crc32c.c - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78); see crc32c.h.
 *
 * The software path is slicing-by-8: eight 256-entry tables built once (pthread_once) let
 * the loop fold 8 input bytes per step. The hardware path lives in the backend chosen by
 * the build (crc32c_x86.c or crc32c_generic.c). The public value is the usual one: the
 * register starts at ~crc and the result is inverted, so crc 0 starts a new checksum and
 * feeding a previous result continues it.
 */
#include "base/crc32c.h"

#include <pthread.h>

#include "base/assert.h"
#include "base/crc32c_internal.h"

#define SPL_CRC32C_POLY 0x82F63B78u

static uint32_t spl_crc32c_table[8][256];
static pthread_once_t spl_crc32c_table_once = PTHREAD_ONCE_INIT;

static void spl_crc32c_table_build(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (SPL_CRC32C_POLY & (0u - (c & 1u)));
        spl_crc32c_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = spl_crc32c_table[0][n];
        for (int t = 1; t < 8; t++) {
            c = spl_crc32c_table[0][c & 0xffu] ^ (c >> 8);
            spl_crc32c_table[t][n] = c;
        }
    }
    ASSERT(spl_crc32c_table[0][1] == 0xF26B8303u);
}

/* Little-endian load in any byte order; compilers turn it into one mov on x86. */
static inline uint32_t spl_load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t spl_crc32c_sw_raw(uint32_t reg, const uint8_t *p, size_t len)
{
    const uint32_t(*t)[256] = (const uint32_t(*)[256])spl_crc32c_table;
    while (len > 0 && ((uintptr_t)p & 7u) != 0) {
        reg = t[0][(reg ^ *p++) & 0xffu] ^ (reg >> 8);
        len--;
    }
    while (len >= 8) {
        uint32_t lo = spl_load_le32(p) ^ reg;
        uint32_t hi = spl_load_le32(p + 4);
        reg = t[7][lo & 0xffu] ^ t[6][(lo >> 8) & 0xffu] ^ t[5][(lo >> 16) & 0xffu] ^
              t[4][lo >> 24] ^ t[3][hi & 0xffu] ^ t[2][(hi >> 8) & 0xffu] ^
              t[1][(hi >> 16) & 0xffu] ^ t[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        reg = t[0][(reg ^ *p++) & 0xffu] ^ (reg >> 8);
        len--;
    }
    return reg;
}

uint32_t spl__crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    ASSERT(data != NULL || len == 0);
    pthread_once(&spl_crc32c_table_once, spl_crc32c_table_build);
    return ~spl_crc32c_sw_raw(~crc, data, len);
}

/* 0: not probed yet, 1: software, 2: hardware. Racing first callers probe twice and
 * store the same answer. */
static _Atomic int spl_crc32c_mode;

static int spl_crc32c_mode_get(void)
{
    int mode = spl_crc32c_mode;
    if (__builtin_expect(mode == 0, 0)) {
        mode = spl__crc32c_hw_probe() ? 2 : 1;
        spl_crc32c_mode = mode;
    }
    return mode;
}

bool spl_crc32c_hw_available(void) { return spl_crc32c_mode_get() == 2; }

uint32_t spl_crc32c(uint32_t crc, const void *data, size_t len)
{
    ASSERT(data != NULL || len == 0);
    if (spl_crc32c_mode_get() == 2)
        return ~spl__crc32c_hw_raw(~crc, data, len);
    return spl__crc32c_sw(crc, data, len);
}

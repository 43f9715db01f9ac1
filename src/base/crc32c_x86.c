/* crc32c_x86.c - the SSE4.2 crc32 instruction backend (x86-64 builds); see
 * crc32c_internal.h. Compiled for the baseline ISA: only the functions marked
 * target("sse4.2") use the instruction, and the caller checks the CPU first. */
#include "base/crc32c_internal.h"

#include <nmmintrin.h>
#include <string.h>

bool spl__crc32c_hw_probe(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2"))) uint32_t spl__crc32c_hw_raw(uint32_t reg, const uint8_t *p,
                                                              size_t len)
{
    while (len > 0 && ((uintptr_t)p & 7u) != 0) {
        reg = _mm_crc32_u8(reg, *p++);
        len--;
    }
    uint64_t r64 = reg;
    while (len >= 32) {
        uint64_t w[4];
        memcpy(w, p, sizeof(w));
        r64 = _mm_crc32_u64(r64, w[0]);
        r64 = _mm_crc32_u64(r64, w[1]);
        r64 = _mm_crc32_u64(r64, w[2]);
        r64 = _mm_crc32_u64(r64, w[3]);
        p += 32;
        len -= 32;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, sizeof(w));
        r64 = _mm_crc32_u64(r64, w);
        p += 8;
        len -= 8;
    }
    reg = (uint32_t)r64;
    while (len > 0) {
        reg = _mm_crc32_u8(reg, *p++);
        len--;
    }
    return reg;
}

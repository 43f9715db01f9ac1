/*
 * crc32c_internal.h - the seam between crc32c.c and its hardware backend.
 *
 * crc32c.c owns the software path and the dispatch; exactly one backend file is linked
 * beside it, chosen by the build from CMAKE_SYSTEM_PROCESSOR: crc32c_x86.c (SSE4.2 crc32
 * instruction, detected at runtime) or crc32c_generic.c (no hardware path). The backend
 * works on the raw (pre-inverted) CRC register; crc32c.c does the inversions.
 * Thread-safe: pure functions.
 */
#ifndef SPL_BASE_CRC32C_INTERNAL_H
#define SPL_BASE_CRC32C_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* spl__crc32c_hw_probe - true when this CPU can run spl__crc32c_hw_raw. */
bool spl__crc32c_hw_probe(void);

/* spl__crc32c_hw_raw - update the raw register over len bytes with the crc32 instruction.
 * Only call after spl__crc32c_hw_probe() returned true. */
uint32_t spl__crc32c_hw_raw(uint32_t reg, const uint8_t *p, size_t len);

#endif

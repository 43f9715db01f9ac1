/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of every log record, frame and chunk
 * header. Uses the SSE4.2 crc32 instruction when the CPU has it (checked once at first
 * use), else a table-driven software version; both give identical results.
 * Thread-safe.
 */
#ifndef SPL_BASE_CRC32C_H
#define SPL_BASE_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* spl_crc32c - extend crc (0 to start) over len bytes: spl_crc32c(0, "123456789", 9)
 * == 0xE3069283. Chaining spl_crc32c(spl_crc32c(0, a), b) equals the crc of a||b. */
uint32_t spl_crc32c(uint32_t crc, const void *data, size_t len);

/* The software path, for tests that compare both. */
uint32_t spl__crc32c_sw(uint32_t crc, const void *data, size_t len);
/* True when the hardware path is in use. */
bool spl_crc32c_hw_available(void);

#endif

/* crc32c_generic.c - the backend for processors without a crc32 instruction we use:
 * there is no hardware path, so crc32c.c always takes the software one. */
#include "base/crc32c_internal.h"

#include "base/assert.h"

bool spl__crc32c_hw_probe(void) { return false; }

uint32_t spl__crc32c_hw_raw(uint32_t reg, const uint8_t *p, size_t len)
{
    (void)reg;
    (void)p;
    (void)len;
    ASSERTF(false, "crc32c: no hardware path on this processor");
}

/*
 * test_bytes.h - byte helpers shared by the unit tests and the fuzz
 * targets (plain C, no test framework): a deterministic pattern and a
 * bit-at-a-time CRC-32 to check the fast one against.
 */
#ifndef WFS_TEST_BYTES_H
#define WFS_TEST_BYTES_H

#include <stddef.h>
#include <stdint.h>

/* Deterministic, position-dependent bytes (so shifted data is caught). */
static inline void test_pattern(uint8_t *p, size_t n, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

/* zlib's CRC-32 (IEEE, reflected 0xedb88320), one bit at a time: slow and
 * obviously right, the reference for the journal's word-at-a-time one. */
static inline uint32_t test_crc32_ref(const void *buf, size_t n)
{
	const uint8_t *p = buf;
	uint32_t c = 0xffffffffu;

	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
	}
	return c ^ 0xffffffffu;
}

#endif

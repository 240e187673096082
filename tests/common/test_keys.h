/*
 * test_keys.h - fixed keys for the unit tests that encrypt (crypto's,
 * the daemon's stream test). Include after cmocka.h.
 */
#ifndef WFS_TEST_KEYS_H
#define WFS_TEST_KEYS_H

#include <stdint.h>

#include "crypto.h"
#include "crypto_internal.h" /* wfs__keys_from_master */

/* Keys from a master key of bytes seed, seed+1, ... */
static inline struct wfs_keys *test_keys(uint8_t seed)
{
	uint8_t mk[WFS_KEY_LEN];
	struct wfs_keys *k = NULL;

	for (size_t i = 0; i < sizeof(mk); i++)
		mk[i] = (uint8_t)(seed + i);
	assert_int_equal(wfs__keys_from_master(mk, &k), 0);
	assert_non_null(k);
	return k;
}

#endif

/*
 * fuzz_seal.c - libFuzzer target for the three texts sealing reads from
 * outside (seal.c): the verification key an admin pastes, the host's state
 * file and checkpoint lines from a syslog file anyone can write to. Each
 * parser must refuse or accept without reading past the input, and what it
 * accepts must survive a round trip through its formatter.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit_internal.h"

/* libFuzzer calls it; declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void vkey(const char *p, size_t n)
{
	char id[WFS_AUDIT_ID_LEN + 1], id2[WFS_AUDIT_ID_LEN + 1], why[160];
	char text[AUD_VKEY_TEXT_LEN + 1];
	unsigned char k0[AUD_SEAL_KEY_LEN], k2[AUD_SEAL_KEY_LEN];
	int r = aud_vkey_parse(p, n, id, k0, why, sizeof why);
	if (r != 0 && r != -EINVAL)
		abort();
	if (r)
		return;
	if (aud_vkey_format(id, k0, text, sizeof text) ||
	    aud_vkey_parse(text, strlen(text), id2, k2, why, sizeof why) || strcmp(id, id2) ||
	    memcmp(k0, k2, sizeof k0))
		abort();
}

static void state(const char *p, size_t n)
{
	char why[128];
	struct aud_seal_state *s = aud_seal_state_new();
	if (!s)
		abort();
	int r = aud_seal_state_parse(p, n, s, why, sizeof why);
	if (r != 0 && r != -EINVAL)
		abort();
	if (!r && (!s->rows || !s->interval_s || strlen(s->db_id) != WFS_AUDIT_ID_LEN))
		abort();
	aud_seal_state_free(s);
}

static void checkpoint(const char *p, size_t n)
{
	struct aud_checkpoint c, c2;
	int r = aud_checkpoint_parse(p, n, &c);
	if (r < -EINVAL || r > 1 || (r < 0 && r != -EINVAL))
		abort();
	if (r != 1)
		return;
	struct aud_seal s = {.epoch = c.epoch, .last_id = c.last_id};
	char line[512];
	memcpy(s.db_id, c.db_id, sizeof s.db_id);
	memcpy(s.head, c.head, sizeof s.head);
	if (aud_checkpoint_format(&s, c.tag, line, sizeof line) ||
	    aud_checkpoint_parse(line, strlen(line), &c2) != 1 || memcmp(&c, &c2, sizeof c))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of exactly size bytes: ASan catches any read past it */
	char *p = malloc(size ? size : 1);
	if (!p)
		return 0;
	memcpy(p, data, size);
	vkey(p, size);
	state(p, size);
	checkpoint(p, size);
	free(p);
	return 0;
}

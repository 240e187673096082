/*
 * fuzz_journal.c - libFuzzer target for what the audit journal reads back
 * after a crash (journal.c): the record reader, walked over a ring of
 * arbitrary bytes the way the writer replays it, and the header's two
 * consumed-position slots. Input: flags (bit 0: after a crash, bit 1: an
 * 8 KiB ring, else 4 KiB), the start position / 8 (u16 LE), the expected
 * seq (u16 LE), the 80-byte header, then the ring (zero-padded).
 *
 * The reader must never read outside the ring, and what it returns must
 * be what is there: a record inside the ring and the scan window, an
 * 8-aligned length, a seq not behind the one expected, a valid payload
 * whose bytes are the ring's (across the wrap) and whose CRC-32 is the
 * stored one (checked against a plain bitwise CRC).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit_internal.h"
#include "test_bytes.h" /* tests/common: test_crc32_ref */

/* libFuzzer calls it; declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PREFIX	  5
#define HDR_BYTES 80 /* magic, version, hdr_size, cap, id, 2 slots */

static void ring_bytes(const struct aud_journal *j, uint64_t pos, uint8_t *dst, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = j->ring[(pos + i) % j->cap];
}

static void check_header(const uint8_t *h)
{
	/* The header page as journal.c maps it (aligned, zero past the slots). */
	uint8_t *page = aligned_alloc(4096, 4096);
	struct aud_journal j = {.map = page};
	uint64_t off, seq, s[2][2];

	if (!page)
		abort();
	memset(page, 0, 4096);
	memcpy(page, h, HDR_BYTES);
	for (int k = 0; k < 2; k++) {
		memcpy(&s[k][0], h + 32 + 24 * k, 8);
		memcpy(&s[k][1], h + 40 + 24 * k, 8);
	}
	aud_journal_consumed(&j, &off, &seq);
	/* Either nothing (0, 0) or one of the slots as written. */
	if (!(off == 0 && seq == 0) && !(off == s[0][0] && seq == s[0][1]) &&
	    !(off == s[1][0] && seq == s[1][1]))
		abort();
	free(page);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < PREFIX + HDR_BYTES)
		return 0;
	bool crashed = data[0] & 1;
	uint64_t cap = data[0] & 2 ? 8192 : 4096;
	uint64_t pos = (uint64_t)(data[1] | data[2] << 8) * 8 % cap;
	uint64_t seq = (uint64_t)(data[3] | data[4] << 8);
	check_header(data + PREFIX);
	data += PREFIX + HDR_BYTES;
	size -= PREFIX + HDR_BYTES;

	/* Exactly cap bytes, so a read past the ring is ASan's. */
	struct aud_journal j = {.cap = cap, .ring = aligned_alloc(8, cap)};
	struct aud_buf scratch = {0};
	uint8_t *want = malloc(cap);
	if (!j.ring || !want)
		abort();
	memset(j.ring, 0, cap);
	memcpy(j.ring, data, size < cap ? size : cap);

	/* Positions grow without bound; start in a later lap of the ring. */
	pos += 3 * cap;
	const uint64_t end = pos + cap;
	for (int n = 0; pos < end; n++) {
		struct aud_jrec r;
		int rc = aud_jrec_read(&j, pos, seq, end, crashed, &scratch, &r);
		if (rc != 1) {
			if (rc != 0 && rc != -1)
				abort();
			break;
		}
		if (r.len < AUD_JREC_HDR || r.len % 8 || r.len > cap || r.pos < pos || r.pos % 8 ||
		    r.seq < seq)
			abort();
		if (r.hole ? !crashed || r.pos + AUD_JREC_HDR > end || r.pos - pos >= AUD_JHOLE_SCAN
			   : r.pos != pos)
			abort(); /* only replay skips holes, and within its window */
		if (r.valid) {
			uint32_t w[2];
			ring_bytes(&j, r.pos + 16, (uint8_t *)w, sizeof w);
			if (!r.payload || r.plen != w[1] || r.plen > r.len - AUD_JREC_HDR)
				abort();
			bool in_ring = r.payload >= j.ring && r.payload + r.plen <= j.ring + cap;
			bool in_scratch = r.payload == scratch.p && r.plen <= scratch.cap;
			if (!in_ring && !in_scratch)
				abort();
			ring_bytes(&j, r.pos + AUD_JREC_HDR, want, r.plen);
			if (memcmp(r.payload, want, r.plen) ||
			    test_crc32_ref(r.payload, r.plen) != w[0] ||
			    aud_crc32(r.payload, r.plen) != w[0])
				abort();
			/* A payload that is a row is the canonical encoding of it. */
			struct aud_row row;
			struct aud_buf b = {0};
			if (aud_row_decode(r.payload, r.plen, &row) == 0 &&
			    (aud_row_encode(&b, &row) || b.len != r.plen ||
			     memcmp(b.p, r.payload, r.plen)))
				abort();
			aud_buf_free(&b);
		}
		if (!crashed && r.seq != seq)
			abort(); /* a live read is in order */
		pos = r.pos + r.len;
		seq = r.seq + 1;
		if (n > (int)(cap / 8))
			abort(); /* positions only move forward */
	}
	aud_buf_free(&scratch);
	free(want);
	free(j.ring);
	return 0;
}

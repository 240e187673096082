/*
 * encode.c - the canonical value encoding shared by the journal payload and
 * the row MAC, plus a growable buffer and CRC-32 for journal records.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "audit_internal.h"

int aud_buf_reserve(struct aud_buf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more)
		cap *= 2;
	unsigned char *p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

void aud_buf_free(struct aud_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

static void put_be(unsigned char *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (unsigned char)v;
		v >>= 8;
	}
}

static uint64_t get_be(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

int aud_enc_int(struct aud_buf *b, int64_t v)
{
	if (aud_buf_reserve(b, 9))
		return -ENOMEM;
	b->p[b->len] = AUD_V_INT;
	put_be(b->p + b->len + 1, (uint64_t)v, 8);
	b->len += 9;
	return 0;
}

int aud_enc_text(struct aud_buf *b, const char *s, size_t len)
{
	if (!s)
		return aud_enc_null(b);
	if (len > UINT32_MAX || aud_buf_reserve(b, 5 + len))
		return -ENOMEM;
	b->p[b->len] = AUD_V_TEXT;
	put_be(b->p + b->len + 1, len, 4);
	memcpy(b->p + b->len + 5, s, len);
	b->len += 5 + len;
	return 0;
}

int aud_enc_null(struct aud_buf *b)
{
	if (aud_buf_reserve(b, 1))
		return -ENOMEM;
	b->p[b->len++] = AUD_V_NULL;
	return 0;
}

int aud_enc_column(struct aud_buf *b, sqlite3_stmt *st, int col)
{
	switch (sqlite3_column_type(st, col)) {
	case SQLITE_NULL:
		return aud_enc_null(b);
	case SQLITE_INTEGER:
		return aud_enc_int(b, sqlite3_column_int64(st, col));
	case SQLITE_TEXT: {
		const char *s = (const char *)sqlite3_column_text(st, col);
		return aud_enc_text(b, s ? s : "", (size_t)sqlite3_column_bytes(st, col));
	}
	default: /* REAL or BLOB: never written by wardfs */
		if (aud_buf_reserve(b, 1))
			return -ENOMEM;
		b->p[b->len++] = 0xff;
		return 0;
	}
}

int aud_dec_vals(const unsigned char *p, size_t len, struct aud_val *v, int n)
{
	size_t o = 0;
	for (int k = 0; k < n; k++) {
		if (o >= len)
			return -EINVAL;
		v[k].type = p[o++];
		v[k].s = NULL;
		v[k].len = 0;
		v[k].i = 0;
		switch (v[k].type) {
		case AUD_V_NULL:
			break;
		case AUD_V_INT:
			if (len - o < 8)
				return -EINVAL;
			v[k].i = (int64_t)get_be(p + o, 8);
			o += 8;
			break;
		case AUD_V_TEXT:
			if (len - o < 4)
				return -EINVAL;
			v[k].len = (uint32_t)get_be(p + o, 4);
			o += 4;
			if (len - o < v[k].len)
				return -EINVAL;
			v[k].s = (const char *)p + o;
			o += v[k].len;
			break;
		default:
			return -EINVAL;
		}
	}
	return o == len ? 0 : -EINVAL;
}

/* CRC-32 (IEEE, as zlib), slicing by 8: every open computes one over its
 * journal record and the writer another, so the byte-at-a-time loop showed
 * up in profiles of open-heavy loads. */
static uint32_t crc_table[8][256];

__attribute__((constructor)) static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = crc_table[0][crc_table[t - 1][i] & 0xff] ^
					  (crc_table[t - 1][i] >> 8);
}

uint32_t aud_crc32(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint32_t c = 0xffffffffu;
	for (; n >= 8; n -= 8, s += 8) {
		uint32_t lo = c ^ ((uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 |
				   (uint32_t)s[3] << 24);
		uint32_t hi = (uint32_t)s[4] | (uint32_t)s[5] << 8 | (uint32_t)s[6] << 16 |
			      (uint32_t)s[7] << 24;
		c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		    crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		    crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
		    crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
	}
	while (n--)
		c = crc_table[0][(c ^ *s++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

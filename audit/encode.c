/*
 * encode.c - the canonical row encoding: the one encoder of the bytes the
 * journal carries and the row MAC covers, its decoder, and the row read
 * back from stored columns for verify; plus a growable buffer and CRC-32
 * for journal records.
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

/* The encoding of one value: 1, 9 or 5 + len bytes. */
static size_t val_size(const struct aud_val *v)
{
	switch (v->type) {
	case AUD_V_INT:
		return 9;
	case AUD_V_TEXT:
		return 5 + (size_t)v->len;
	default: /* AUD_V_NULL, AUD_V_OTHER */
		return 1;
	}
}

static size_t val_write(const struct aud_val *v, unsigned char *p)
{
	switch (v->type) {
	case AUD_V_INT:
		p[0] = AUD_V_INT;
		put_be(p + 1, (uint64_t)v->i, 8);
		return 9;
	case AUD_V_TEXT:
		p[0] = AUD_V_TEXT;
		put_be(p + 1, v->len, 4);
		if (v->len)
			memcpy(p + 5, v->s, v->len);
		return 5 + (size_t)v->len;
	case AUD_V_NULL:
		p[0] = AUD_V_NULL;
		return 1;
	default:
		p[0] = AUD_V_OTHER;
		return 1;
	}
}

static int enc_val(struct aud_buf *b, const struct aud_val *v)
{
	if (aud_buf_reserve(b, val_size(v)))
		return -ENOMEM;
	b->len += val_write(v, b->p + b->len);
	return 0;
}

int aud_enc_int(struct aud_buf *b, int64_t v)
{
	struct aud_val x = aud_int(v);
	return enc_val(b, &x);
}

int aud_enc_text(struct aud_buf *b, const char *s, size_t len)
{
	if (len > UINT32_MAX)
		return -ENOMEM;
	struct aud_val x = aud_text(s, (uint32_t)len);
	return enc_val(b, &x);
}

size_t aud_row_size(const struct aud_row *r)
{
	size_t n = 0;
	for (int k = 0; k < AUD_ROW_NFIELDS; k++)
		n += val_size(&r->v[k]);
	return n;
}

void aud_row_write(const struct aud_row *r, unsigned char *out)
{
	for (int k = 0; k < AUD_ROW_NFIELDS; k++)
		out += val_write(&r->v[k], out);
}

int aud_row_encode(struct aud_buf *b, const struct aud_row *r)
{
	size_t n = aud_row_size(r);
	if (aud_buf_reserve(b, n))
		return -ENOMEM;
	aud_row_write(r, b->p + b->len);
	b->len += n;
	return 0;
}

void aud_row_from_columns(sqlite3_stmt *st, int first, struct aud_row *r)
{
	for (int k = 0; k < AUD_ROW_NFIELDS; k++) {
		int col = first + k;
		switch (sqlite3_column_type(st, col)) {
		case SQLITE_NULL:
			r->v[k] = aud_null();
			break;
		case SQLITE_INTEGER:
			r->v[k] = aud_int(sqlite3_column_int64(st, col));
			break;
		case SQLITE_TEXT: {
			const char *s = (const char *)sqlite3_column_text(st, col);
			r->v[k] = aud_text(s ? s : "", (uint32_t)sqlite3_column_bytes(st, col));
			break;
		}
		default: /* REAL or BLOB: never written by wardfs */
			r->v[k] = (struct aud_val){.type = AUD_V_OTHER};
			break;
		}
	}
}

int aud_row_decode(const unsigned char *p, size_t len, struct aud_row *r)
{
	size_t o = 0;
	for (int k = 0; k < AUD_ROW_NFIELDS; k++) {
		struct aud_val *v = &r->v[k];
		if (o >= len)
			return -EINVAL;
		*v = (struct aud_val){.type = p[o++]};
		switch (v->type) {
		case AUD_V_NULL:
			break;
		case AUD_V_INT:
			if (len - o < 8)
				return -EINVAL;
			v->i = (int64_t)get_be(p + o, 8);
			o += 8;
			break;
		case AUD_V_TEXT:
			if (len - o < 4)
				return -EINVAL;
			v->len = (uint32_t)get_be(p + o, 4);
			o += 4;
			if (len - o < v->len)
				return -EINVAL;
			v->s = (const char *)p + o;
			o += v->len;
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

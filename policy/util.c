/*
 * util.c - small helpers of the policy library: the arena that owns a
 * compiled policy's memory, the string hash of the match index and UTF-8
 * decoding/validation.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct pol_arena_chunk {
	struct pol_arena_chunk *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

#define ARENA_CHUNK 16384u

void *pol_arena_alloc(struct pol_arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (n == 0)
		n = 16;
	struct pol_arena_chunk *c = a->head;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > ARENA_CHUNK / 2 ? n : ARENA_CHUNK;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		if (n > ARENA_CHUNK / 2 && a->head) {
			/* big block: keep the current chunk in front for small ones */
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = a->head;
			a->head = c;
		}
	}
	void *p = c->data + c->used;
	c->used += n;
	memset(p, 0, n);
	return p;
}

char *pol_arena_strndup(struct pol_arena *a, const char *s, size_t n)
{
	char *d = pol_arena_alloc(a, n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = 0;
	}
	return d;
}

void pol_arena_free(struct pol_arena *a)
{
	struct pol_arena_chunk *c = a->head;
	while (c) {
		struct pol_arena_chunk *n = c->next;
		free(c);
		c = n;
	}
	a->head = NULL;
}

uint64_t pol_hash(const char *s, size_t n)
{
	/* FNV-1a, 64-bit: components are short, so byte-at-a-time is fine */
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

uint32_t pol_utf8_next(const char *t, const char *te, size_t *n)
{
	const unsigned char *s = (const unsigned char *)t;
	size_t avail = (size_t)(te - t);
	unsigned c = s[0];
	if (c < 0x80) {
		*n = 1;
		return c;
	}
	size_t len;
	uint32_t cp, min;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		goto bad;
	}
	if (avail < len)
		goto bad;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			goto bad;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		goto bad;
	*n = len;
	return cp;
bad:
	*n = 1;
	return 0x110000u + c;
}

size_t pol_utf8_check(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		size_t n;
		if (pol_utf8_next(s + i, s + len, &n) >= 0x110000u)
			return i;
		i += n;
	}
	return len;
}

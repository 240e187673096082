/*
 * fuzz_row.c - libFuzzer target for the audit row decoder (encode.c), the
 * one the writer runs on every journal payload before it binds the
 * columns and MACs the payload. Its contract is what makes that MAC the
 * one verify recomputes: it accepts exactly the encoder's output, so a
 * decoded row encodes back to the very same bytes, with every text inside
 * the input. And the encoder's output always decodes back to its row.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit_internal.h"

/* libFuzzer calls it; declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_row(const struct aud_row *a, const struct aud_row *b)
{
	for (int k = 0; k < AUD_ROW_NFIELDS; k++) {
		const struct aud_val *x = &a->v[k], *y = &b->v[k];
		if (x->type != y->type || x->i != y->i || x->len != y->len ||
		    (x->len && memcmp(x->s, y->s, x->len)))
			abort();
	}
}

/* A row made from the input: each value's type, integer and text length
 * from its bytes, texts taken from the input itself. */
static void row_from(const uint8_t *data, size_t size, struct aud_row *r)
{
	size_t o = 0;
	for (int k = 0; k < AUD_ROW_NFIELDS; k++) {
		uint8_t t = o < size ? data[o++] : 0;
		int64_t i = 0;
		for (int b = 0; b < 8 && o < size; b++)
			i = (int64_t)((uint64_t)i << 8 | data[o++]);
		size_t n = o < size ? data[o++] : 0;
		if (n > size - o)
			n = size - o;
		r->v[k] = t % 3 == 0   ? aud_null()
			  : t % 3 == 1 ? aud_int(i)
				       : aud_text((const char *)data + o, (uint32_t)n);
		o += t % 3 == 2 ? n : 0;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes: a read past it is ASan's. */
	uint8_t *p = malloc(size ? size : 1);
	struct aud_row r, back;
	struct aud_buf b = {0};

	if (!p)
		abort();
	memcpy(p, data, size);
	int rc = aud_row_decode(p, size, &r);
	if (rc != 0 && rc != -EINVAL)
		abort();
	if (rc == 0) {
		for (int k = 0; k < AUD_ROW_NFIELDS; k++) {
			const struct aud_val *v = &r.v[k];
			if (v->type != AUD_V_NULL && v->type != AUD_V_INT && v->type != AUD_V_TEXT)
				abort();
			if (v->type == AUD_V_TEXT && ((const uint8_t *)v->s < p ||
						      (const uint8_t *)v->s + v->len > p + size))
				abort(); /* a text outside the input */
		}
		if (aud_row_size(&r) != size || aud_row_encode(&b, &r) || b.len != size ||
		    memcmp(b.p, p, size))
			abort(); /* not canonical: the MAC would differ from verify's */
		if (aud_row_decode(b.p, b.len, &back))
			abort();
		same_row(&r, &back);
	}

	/* The other way: any row encodes to bytes that decode to it. */
	row_from(p, size, &r);
	b.len = 0;
	if (aud_row_encode(&b, &r) || b.len != aud_row_size(&r))
		abort();
	if (aud_row_decode(b.p, b.len, &back))
		abort();
	same_row(&r, &back);
	/* A byte more or less is never a row. */
	if (aud_row_decode(b.p, b.len - 1, &back) != -EINVAL)
		abort();
	if (aud_buf_reserve(&b, 1))
		abort();
	b.p[b.len] = 0;
	if (aud_row_decode(b.p, b.len + 1, &back) != -EINVAL)
		abort();
	aud_buf_free(&b);
	free(p);
	return 0;
}

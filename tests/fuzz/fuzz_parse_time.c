/*
 * fuzz_parse_time.c - libFuzzer target for the times `wardfs audit` takes
 * (--since, --until, prune --older-than): wfs_audit_parse_time and
 * wfs_audit_parse_duration (format.c) on the input as a string. Their
 * contract: 0 or -EINVAL (a duration may also be -ERANGE); a relative
 * time is now minus the duration; and an absolute time printed the way
 * `audit query` prints it parses back to the same nanosecond.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"

/* libFuzzer calls it; declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 1678-01-01T00:00:00Z and the ns before 2262-01-01: whole years that
 * int64 nanoseconds since the epoch hold. */
#define FIRST_NS (-9214560000LL * 1000000000)
#define LAST_NS	 (9214646400LL * 1000000000 - 1)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const int64_t now = 1764000000123456789LL;
	char *s = malloc(size + 1);
	int64_t t = 0, d = 0, back = 0;
	char buf[64];

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	int rd = wfs_audit_parse_duration(s, &d);
	if (rd != 0 && rd != -EINVAL && rd != -ERANGE)
		abort();
	if (rd == 0 && (d < 0 || d % 1000000000))
		abort(); /* whole seconds, never negative */
	int rt = wfs_audit_parse_time(s, now, &t);
	if (rt != 0 && rt != -EINVAL)
		abort();
	if (rd == 0 && s[0] >= '0' && s[0] <= '9' && (rt != 0 || t != now - d))
		abort(); /* a relative time is that long before now */
	if (rt == 0 && t >= FIRST_NS && t <= LAST_NS) {
		wfs_audit_format_time(t, buf, sizeof buf);
		if (wfs_audit_parse_time(buf, now, &back) != 0 || back != t)
			abort(); /* what query prints, --since takes back */
	}
	free(s);
	return 0;
}

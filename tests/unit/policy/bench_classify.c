/*
 * bench_classify.c - classify throughput: a generated 1,000-rule policy of
 * realistic shapes against 1,000,000 generated home-directory paths, on one
 * core. Prints the median paths/s of ROUNDS runs. Built with the unit
 * tests, not run by ctest; bench/run.sh runs it and also mounts wardfs with
 * the same policy (--print-policy) to price a large policy on the mount.
 *
 * usage: bench_classify [PATHS] [ROUNDS]
 *        bench_classify --print-policy
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"

static uint64_t rng = 88172645463325252ull;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static size_t gen_policy(char *out, size_t cap)
{
	size_t o = 0;
	int n = 0;
#define R(...) (o += (size_t)snprintf(out + o, cap - o, __VA_ARGS__), n++)
	o += (size_t)snprintf(out + o, cap - o, "default public\n");
	R("sensitive /.ssh/**\npublic /.ssh/*.pub\nsensitive *.pem\nsensitive /.gnupg/\n");
	n += 3;
	R("deny /.netrc\nsensitive /.aws/credentials allow-exe=/usr/bin/aws\n");
	n++;
	while (n < 1000) {
		int k = n;
		switch (k % 10) {
		case 0:
		case 1:
		case 2: /* anchored directory trees */
			R("sensitive /projects/p%03d/secrets/**\n", k);
			break;
		case 3:
		case 4: /* anchored files */
			R("sensitive /.config/app%03d/token\n", k);
			break;
		case 5: /* basenames anywhere */
			R("sensitive secret%03d.txt\n", k);
			break;
		case 6: /* extensions */
			R("sensitive *.k%03d\n", k);
			break;
		case 7: /* prefixes */
			R("sensitive key%03d_*\n", k);
			break;
		case 8: /* deeper anchored globs */
			R("public /projects/p%03d/secrets/*.pub\n", k - 8 + 2);
			break;
		case 9:
			if (k % 100 == 9) /* a few rules that no index can key */
				R("sensitive *cred%03d*\n", k);
			else if (k % 50 == 19)
				R("deny /work/**/build%03d/**\n", k);
			else
				R("sensitive /Documents/c%03d/**/*.doc\n", k);
			break;
		}
	}
#undef R
	return o;
}

static size_t gen_path(char *out, size_t cap)
{
	switch (rnd(20)) {
	case 0:
	case 1:
	case 2:
	case 3:
	case 4:
	case 5:
	case 6:
	case 7:
		return (size_t)snprintf(out, cap, "/src/proj%u/src/mod%u/file%u.c", rnd(50),
					rnd(30), rnd(1000));
	case 8:
	case 9:
	case 10:
	case 11:
		return (size_t)snprintf(out, cap,
					"/.cache/mozilla/firefox/prof%u/cache2/entries/%08X",
					rnd(4), rnd(1u << 30));
	case 12:
	case 13:
	case 14:
		return (size_t)snprintf(out, cap, "/projects/p%03u/%s/x%u.%s", rnd(1000),
					rnd(2) ? "secrets" : "src", rnd(100), rnd(2) ? "pub" : "c");
	case 15:
	case 16:
		return (size_t)snprintf(out, cap, "/.config/app%03u/%s", rnd(1000),
					rnd(2) ? "token" : "settings.json");
	case 17:
		return (size_t)snprintf(out, cap, "/Downloads/secret%03u.txt", rnd(1000));
	case 18:
		return (size_t)snprintf(out, cap, "/Documents/c%03u/a/b/r%u.doc", rnd(1000),
					rnd(100));
	default:
		return (size_t)snprintf(out, cap, "/.ssh/id_ed25519%s", rnd(2) ? ".pub" : "");
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	static char src[1 << 20];
	size_t sl = gen_policy(src, sizeof(src));
	if (argc > 1 && !strcmp(argv[1], "--print-policy")) {
		fwrite(src, 1, sl, stdout);
		return 0;
	}
	size_t npaths = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	long rounds = argc > 2 ? strtol(argv[2], NULL, 10) : 5;
	if (npaths == 0 || rounds < 1 || rounds > 100) {
		fprintf(stderr, "usage: bench_classify [PATHS] [ROUNDS 1-100] | --print-policy\n");
		return 2;
	}
	struct wfs_policy *p = NULL;
	struct wfs_policy_diags d = {0};
	if (wfs_policy_parse_buffer("bench", src, sl, WFS_POLICY_NO_INCLUDE, &p, &d)) {
		char b[1200];
		for (size_t i = 0; i < d.n; i++) {
			wfs_policy_diag_format(&d.v[i], b, sizeof(b));
			fprintf(stderr, "%s\n", b);
		}
		return 1;
	}
	wfs_policy_diags_free(&d);

	char *buf = malloc(npaths * 96);
	size_t *off = malloc((npaths + 1) * sizeof(size_t));
	size_t o = 0;
	for (size_t i = 0; i < npaths; i++) {
		off[i] = o;
		o += gen_path(buf + o, 96);
	}
	off[npaths] = o;

	double rates[100];
	unsigned long counts[3] = {0, 0, 0};
	for (int r = 0; r < rounds; r++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		for (size_t i = 0; i < npaths; i++) {
			struct wfs_decision dec;
			wfs_policy_classify(p, buf + off[i], off[i + 1] - off[i], &dec);
			counts[dec.cls]++;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
		rates[r] = (double)npaths / s;
	}
	qsort(rates, (size_t)rounds, sizeof(rates[0]), cmp_double);
	printf("rules=%zu paths=%zu public=%lu sensitive=%lu deny=%lu\n", wfs_policy_rule_count(p),
	       npaths, counts[0] / (unsigned long)rounds, counts[1] / (unsigned long)rounds,
	       counts[2] / (unsigned long)rounds);
	printf("classify: %.0f paths/s (median of %ld)\n", rates[rounds / 2], rounds);
	free(buf);
	free(off);
	wfs_policy_free(p);
	return 0;
}

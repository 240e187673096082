/*
 * fuzz_mount_opts.c - libFuzzer target for the mount helper's -o
 * translation (cli/mount_opts.c). The helper runs as root from mount(8)
 * and fstab lines, and what it builds is the command line of `wardfs
 * mount`: it must only ever be the long options listed below (a value
 * exactly after the ones that take one, and a value being a piece of the
 * input without a comma), and a -o list for FUSE of known kernel flags
 * only. Input: flags (bit 0: sloppy, mount -s), then the option string.
 * Translating is also deterministic, and sloppy mode accepts a superset
 * of what strict mode accepts, with the same result.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mount_opts.h"

/* libFuzzer calls it; declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The contract, written out again apart from the code under test. */
static const struct {
	const char *opt;
	bool value;
} longopts[] = {
	{"--passfile", true},	     {"--extpass", true},
	{"--policy", true},	     {"--audit-db", true},
	{"--audit-failure", true},   {"--audit-journal-size", true},
	{"--audit-forward", true},   {"--log", true},
	{"--recovery-key", false},   {"--recovery-key-file", true},
	{"--no-passthrough", false}, {"--strict-forms", false},
	{"--io-uring", false},	     {"--no-io-uring", false},
	{"--audit-seal", true},
};

static const char *const kernel_flags[] = {
	"ro",	      "suid",	    "nosuid",	     "dev",	  "nodev",
	"exec",	      "noexec",	    "async",	     "sync",	  "noatime",
	"nodiratime", "norelatime", "nostrictatime", "symfollow", "nosymfollow",
	"dirsync",    "nonempty",
};

struct run {
	struct helper h;
	char *buf;
	size_t len;
	int rc;
};

static void translate(struct run *r, const char *s, size_t len, bool sloppy)
{
	memset(&r->h, 0, sizeof r->h);
	r->h.prog = "mount.wardfs";
	r->h.msg = NULL; /* no output: the function has no effect but its result */
	r->buf = malloc(len + 1);
	if (!r->buf)
		abort();
	memcpy(r->buf, s, len);
	r->buf[len] = '\0';
	r->len = len;
	r->rc = helper_translate(&r->h, r->buf, sloppy);
	if (r->rc != 0 && r->rc != -EINVAL && r->rc != -E2BIG)
		abort();
	if (r->h.argc < 0 || r->h.argc >= HELPER_ARGS_MAX || r->h.argv[r->h.argc] != NULL)
		abort();
	if (strnlen(r->h.fuse, sizeof r->h.fuse) >= sizeof r->h.fuse)
		abort();
}

static int longopt(const char *a)
{
	for (size_t i = 0; i < sizeof longopts / sizeof longopts[0]; i++)
		if (!strcmp(a, longopts[i].opt))
			return (int)i;
	return -1;
}

static bool inside(const struct run *r, const char *p)
{
	return p >= r->buf && p + strlen(p) <= r->buf + r->len;
}

static void check_result(const struct run *r)
{
	const struct helper *h = &r->h;
	for (int i = 0; i < h->argc; i++) {
		int k = longopt(h->argv[i]);
		if (k < 0 || inside(r, h->argv[i]))
			abort(); /* only the listed options, never input as one */
		if (!longopts[k].value)
			continue;
		if (++i >= h->argc)
			abort(); /* a value option without its value */
		if (!inside(r, h->argv[i]) || strchr(h->argv[i], ','))
			abort();
	}
	char fuse[sizeof h->fuse];
	memcpy(fuse, h->fuse, sizeof fuse);
	if (fuse[0] == ',' || (fuse[0] && fuse[strlen(fuse) - 1] == ','))
		abort();
	char *save = NULL;
	for (char *t = strtok_r(fuse, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		size_t i = 0;
		while (i < sizeof kernel_flags / sizeof kernel_flags[0] &&
		       strcmp(t, kernel_flags[i]))
			i++;
		if (i == sizeof kernel_flags / sizeof kernel_flags[0])
			abort(); /* only known kernel flags reach FUSE */
	}
}

static void same(const struct run *a, const struct run *b)
{
	if (a->h.argc != b->h.argc || strcmp(a->h.fuse, b->h.fuse))
		abort();
	for (int i = 0; i < a->h.argc; i++)
		if (strcmp(a->h.argv[i], b->h.argv[i]))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool sloppy = data[0] & 1;
	const char *s = (const char *)data + 1;
	size_t len = strnlen(s, size - 1);
	struct run a, b, c;

	translate(&a, s, len, sloppy);
	if (a.rc == 0)
		check_result(&a);
	translate(&b, s, len, sloppy);
	if (b.rc != a.rc)
		abort();
	same(&a, &b);
	if (!sloppy && a.rc == 0) {
		translate(&c, s, len, true);
		if (c.rc != 0)
			abort();
		check_result(&c);
		same(&a, &c);
		free(c.buf);
	}
	free(a.buf);
	free(b.buf);
	return 0;
}

/*
 * vault_args.c - the command line the vault commands share (vault_args.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vault_args.h"

int parse_args(struct args *a, int argc, char **argv, const struct opt *opts, const char *help,
	       int *status)
{
	int i = parse_options(argc, argv, opts, help, 0, status);

	if (i < 0)
		return -1;
	if ((*status = check_pass_opts(&a->po)) != 0)
		return -1;
	if (i >= argc) {
		*status = usage_error("missing BACKING directory");
		return -1;
	}
	if (a->operand2_name != NULL) {
		if (i + 1 >= argc) {
			*status = usage_error("missing %s", a->operand2_name);
			return -1;
		}
		a->operand2 = argv[i + 1];
	}
	if (i + 1 + (a->operand2 != NULL) < argc) {
		*status = usage_error("unexpected argument '%s'",
				      argv[i + 1 + (a->operand2 != NULL)]);
		return -1;
	}
	if ((a->backing = strdup(argv[i])) == NULL) {
		*status = error("out of memory") + 1;
		return -1;
	}
	for (size_t n = strlen(a->backing); n > 1 && a->backing[n - 1] == '/'; n--)
		a->backing[n - 1] = '\0';
	return 0;
}

/* A usable backing directory, or 1 after one line of error. */
int check_backing(const struct args *a)
{
	struct stat st;

	if (stat(a->backing, &st) != 0) {
		error("cannot access '%s': %s", a->backing, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		error("'%s' is not a directory", a->backing);
		return 1;
	}
	return 0;
}

int crypto_start(void)
{
	int r = wfs_crypto_init();

	if (r != 0)
		error("cannot start the crypto library: %s", strerror(-r));
	return r;
}

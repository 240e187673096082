/*
 * usage.c - the CLI's messages and options (usage.h). Every message is one
 * line that starts with the program name, so that a script's log says
 * which command failed; bad usage says so in one line and points at
 * --help instead of printing all of it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usage.h"
#include "vault.h"

static char name[128] = "wardfs";
/* A progress bar's line is open on stderr: a message first ends it. */
static bool progress_open;

/* The vault library's messages, printed as the CLI's own. */
static void report_vault(enum wfs_vault_say kind, const char *line)
{
	bool progress = kind == WFS_SAY_PROGRESS || kind == WFS_SAY_PROGRESS_LAST;

	if (progress_open && !progress)
		fputc('\n', stderr);
	switch (kind) {
	case WFS_SAY_PROGRESS:
	case WFS_SAY_PROGRESS_LAST:
		fprintf(stderr, "\r%s: %s%s", name, line,
			kind == WFS_SAY_PROGRESS_LAST ? "\n" : "");
		break;
	case WFS_SAY_DETAIL:
		fprintf(stderr, "%s\n", line);
		break;
	case WFS_SAY_WARNING:
		warning("%s", line);
		break;
	case WFS_SAY_ERROR:
	default:
		error("%s", line);
		break;
	}
	progress_open = kind == WFS_SAY_PROGRESS;
}

void set_prog(const char *p)
{
	snprintf(name, sizeof(name), "%s", p);
	wfs_vault_set_reporter(report_vault);
}

void push_prog(const char *sub)
{
	size_t n = strlen(name);

	snprintf(name + n, sizeof(name) - n, " %s", sub);
}

const char *prog_name(void)
{
	return name;
}

static void say(const char *what, const char *fmt, va_list ap, const char *tail)
{
	fprintf(stderr, "%s: %s", name, what);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "%s\n", tail);
}

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say("", fmt, ap, "");
	va_end(ap);
	exit(1);
}

int error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say("", fmt, ap, "");
	va_end(ap);
	return 1;
}

int error_errno(const char *fmt, ...)
{
	char tail[160];
	va_list ap;

	snprintf(tail, sizeof(tail), ": %s", strerror(errno));
	va_start(ap, fmt);
	say("", fmt, ap, tail);
	va_end(ap);
	return 1;
}

void warning(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say("warning: ", fmt, ap, "");
	va_end(ap);
}

int usage_error(const char *fmt, ...)
{
	char tail[160];
	va_list ap;

	snprintf(tail, sizeof(tail), "; see '%s --help'", name);
	va_start(ap, fmt);
	say("", fmt, ap, tail);
	va_end(ap);
	return 2;
}

/* ---- options ----------------------------------------------------------- */

#define MAX_OPTS 64

static bool takes_arg(const struct opt *o)
{
	return o->type == OPT_STRING || (o->type == OPT_FN && o->takes_arg);
}

int parse_options(int argc, char **argv, const struct opt *opts, const char *help, unsigned flags,
		  int *status)
{
	struct option longs[MAX_OPTS + 2];
	char shorts[2 * MAX_OPTS + 8] = "";
	size_t nl = 0, ns = 0;
	int c, idx;

	shorts[ns++] = (flags & PARSE_STOP_AT_OPERAND) ? '+' : ':';
	if (flags & PARSE_STOP_AT_OPERAND)
		shorts[ns++] = ':';
	shorts[ns++] = 'h';
	for (size_t i = 0; opts[i].type != OPT_END && i < MAX_OPTS; i++) {
		/* a long option's val is 256 + its index: never a short name */
		if (opts[i].long_name)
			longs[nl++] = (struct option){opts[i].long_name,
						      takes_arg(&opts[i]) ? required_argument
									  : no_argument,
						      NULL, 256 + (int)i};
		if (opts[i].short_name) {
			shorts[ns++] = (char)opts[i].short_name;
			if (takes_arg(&opts[i]))
				shorts[ns++] = ':';
		}
	}
	shorts[ns] = '\0';
	longs[nl++] = (struct option){"help", no_argument, NULL, 'h'};
	longs[nl] = (struct option){NULL, 0, NULL, 0};
	optind = 0; /* 0: glibc starts afresh, also after an earlier parse */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, longs, &idx)) != -1) {
		const struct opt *o = NULL;
		const char *arg = argv[optind - 1];

		if (c == 'h') {
			fputs(help, stdout);
			*status = 0;
			return -1;
		}
		if (c == ':') {
			*status = usage_error("option '%s' needs a value", arg);
			return -1;
		}
		if (c == '?') {
			if (optopt != 0 && optopt < 256)
				*status = usage_error("unknown option '-%c'", optopt);
			else
				*status = usage_error("unknown option '%.*s'",
						      (int)strcspn(arg, "="), arg);
			return -1;
		}
		if (c >= 256)
			o = &opts[c - 256];
		else
			for (size_t i = 0; opts[i].type != OPT_END; i++)
				if (opts[i].short_name == c)
					o = &opts[i];
		/* o is set: getopt_long returns only the short names of `shorts`,
		 * each one in opts */
		/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
		switch (o->type) {
		case OPT_BOOL:
			*(bool *)o->value = true;
			break;
		case OPT_STRING:
			*(const char **)o->value = optarg;
			break;
		case OPT_FN:
			if ((*status = o->fn(o->value, takes_arg(o) ? optarg : NULL)) != 0)
				return -1;
			break;
		case OPT_END:
			break;
		}
	}
	return optind;
}

int opt_kdf_memory(void *value, const char *arg)
{
	if (parse_uint(arg, 1, 4096, value) != 0)
		return usage_error("--kdf-memory takes MiB from 1 to 4096, not '%s'", arg);
	return 0;
}

int opt_kdf_ops(void *value, const char *arg)
{
	if (parse_uint(arg, 1, 64, value) != 0)
		return usage_error("--kdf-ops takes 1 to 64 passes, not '%s'", arg);
	return 0;
}

const char *unlock_failed_detail(const struct wfs_pass_opts *po)
{
	if (po->recovery_key_file || po->recovery_from_stdin)
		return "unlock failed: wrong recovery key";
	if (po->escrow_key_file)
		return "unlock failed: wrong escrow key";
	return "unlock failed: wrong passphrase";
}

int check_pass_opts(const struct wfs_pass_opts *po)
{
	if (po->passfile && po->extpass)
		return usage_error("give --passfile or --extpass, not both");
	if (po->recovery_key_file && po->recovery_from_stdin)
		return usage_error("give --recovery-key or --recovery-key-file, not both");
	if ((po->recovery_key_file || po->recovery_from_stdin) && (po->passfile || po->extpass))
		return usage_error("a recovery key replaces the passphrase options");
	if (po->escrow_key_file &&
	    (po->passfile || po->extpass || po->recovery_key_file || po->recovery_from_stdin))
		return usage_error(
			"an escrow key replaces the passphrase and recovery key options");
	return 0;
}

int parse_uint(const char *s, unsigned long long min, unsigned long long max,
	       unsigned long long *out)
{
	char *end;
	unsigned long long v;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int run_subcommand(const struct subcommand *cmds, size_t n, int argc, char **argv,
		   const char *usage)
{
	char names[256] = "";
	size_t len = 0;

	if (argc >= 2 &&
	    (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
		fputs(usage, stdout);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (argc >= 2 && !strcmp(argv[1], cmds[i].name)) {
			push_prog(cmds[i].name);
			return cmds[i].fn(argc - 1, argv + 1);
		}
		len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s",
					i == 0	    ? ""
					: i + 1 < n ? ", "
						    : " or ",
					cmds[i].name);
		if (len >= sizeof(names))
			len = sizeof(names) - 1;
	}
	if (argc < 2)
		return usage_error("missing command (%s)", names);
	return usage_error("'%.200s' is not a '%s' command (%s)", argv[1], prog_name(), names);
}

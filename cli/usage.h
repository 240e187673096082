/*
 * usage.h - how the CLI speaks: one program name ("wardfs mount", "wardfs
 * audit query", "mount.wardfs") in front of every message, git's die(),
 * error(), error_errno() and warning(), and one option parser for every
 * subcommand (getopt_long underneath).
 */
#ifndef WARDFS_USAGE_H
#define WARDFS_USAGE_H

#include <stdbool.h>
#include <stddef.h>

/* Sets the name messages start with: "wardfs", then "wardfs mount" when
 * main dispatches, "wardfs audit query" below that. It also makes the
 * vault library's messages come out as the CLI's (its reporter). */
void set_prog(const char *name);
/* Appends " sub" to the name ("wardfs audit" -> "wardfs audit query"). */
void push_prog(const char *sub);
const char *prog_name(void);

/* "PROG: MSG\n" on stderr, then exit(1). */
__attribute__((format(printf, 1, 2), noreturn)) void die(const char *fmt, ...);
/* "PROG: MSG\n" on stderr; returns 1, the exit status of a failed command. */
__attribute__((format(printf, 1, 2))) int error(const char *fmt, ...);
/* "PROG: MSG: strerror(errno)\n"; returns 1. */
__attribute__((format(printf, 1, 2))) int error_errno(const char *fmt, ...);
/* "PROG: warning: MSG\n". */
__attribute__((format(printf, 1, 2))) void warning(const char *fmt, ...);
/* "PROG: MSG; see 'PROG --help'\n": one line, not the whole help; returns
 * 2, the exit status of bad usage. */
__attribute__((format(printf, 1, 2))) int usage_error(const char *fmt, ...);

/* ---- subcommands (audit, policy, key) ----------------------------------- */

struct subcommand {
	const char *name;
	int (*fn)(int argc, char **argv); /* argv[0] is its own name */
};
/*
 * Runs the subcommand argv[1] names, with " NAME" added to the program
 * name. --help, -h and help print usage on stdout (0); no name, or one not
 * in cmds, is one line of usage error (2) that lists the names.
 */
int run_subcommand(const struct subcommand *cmds, size_t n, int argc, char **argv,
		   const char *usage);

/* ---- options ----------------------------------------------------------- */

enum opt_type {
	OPT_END = 0,
	OPT_BOOL,   /* sets *(bool *)value */
	OPT_STRING, /* sets *(const char **)value to the argument */
	OPT_FN,	    /* calls fn(value, arg) (arg NULL for an option without one) */
};

struct opt {
	enum opt_type type;
	const char *long_name; /* without "--"; NULL: none */
	int short_name;	       /* 0: none */
	void *value;
	/* OPT_FN: 0, or the exit status after a message (2 after usage_error) */
	int (*fn)(void *value, const char *arg);
	bool takes_arg; /* OPT_FN only: whether it takes an argument */
};

#define OPT_BOOL(l, s, v)                                                                          \
	{                                                                                          \
		OPT_BOOL, (l), (s), (v), NULL, false                                               \
	}
#define OPT_STRING(l, s, v)                                                                        \
	{                                                                                          \
		OPT_STRING, (l), (s), (v), NULL, true                                              \
	}
#define OPT_FN(l, s, v, f)                                                                         \
	{                                                                                          \
		OPT_FN, (l), (s), (v), (f), true                                                   \
	}
#define OPT_FN_NOARG(l, s, v, f)                                                                   \
	{                                                                                          \
		OPT_FN, (l), (s), (v), (f), false                                                  \
	}
#define OPT_END()                                                                                  \
	{                                                                                          \
		OPT_END, NULL, 0, NULL, NULL, false                                                \
	}

/* Stop at the first operand (as mount(8) and `policy explain PATH...`
 * want: what follows is not theirs); otherwise options and operands mix. */
#define PARSE_STOP_AT_OPERAND 0x1

/*
 * Parses the options of argv (argv[0] is the command's own name) by the
 * table opts. -h and --help print help on stdout. Returns the index of the
 * first operand, or -1 with *status set: 0 after --help, 2 after a usage
 * error (one line: unknown option, missing value), or what an OPT_FN
 * returned.
 */
int parse_options(int argc, char **argv, const struct opt *opts, const char *help, unsigned flags,
		  int *status);

/* The passphrase sources (struct wfs_pass_opts *po) of init, passwd,
 * migrate, fsck, mount, setup-home and key, and the recovery key or an
 * admin's escrow secret key in their place. */
#define OPT_PASSPHRASE(po)                                                                         \
	OPT_STRING("passfile", 0, &(po)->passfile), OPT_STRING("extpass", 0, &(po)->extpass)
#define OPT_RECOVERY(po)                                                                           \
	OPT_BOOL("recovery-key", 0, &(po)->recovery_from_stdin),                                   \
		OPT_STRING("recovery-key-file", 0, &(po)->recovery_key_file)
#define OPT_ESCROW(po) OPT_STRING("escrow-key", 0, &(po)->escrow_key_file)
/* the TPM that tpm2 slots are unsealed by (a TCTI; default $WARDFS_TPM2_TCTI
 * or device:/dev/tpmrm0) */
#define OPT_TPM2(po)	     OPT_STRING("tpm2-tcti", 0, &(po)->tpm2_tcti)
#define OPT_PASS_SOURCES(po) OPT_PASSPHRASE(po), OPT_RECOVERY(po), OPT_ESCROW(po), OPT_TPM2(po)

/* --kdf-memory MIB and --kdf-ops N (unsigned long long *, 0 when not given). */
#define OPT_KDF(mib, ops)                                                                          \
	OPT_FN("kdf-memory", 0, (mib), opt_kdf_memory), OPT_FN("kdf-ops", 0, (ops), opt_kdf_ops)
int opt_kdf_memory(void *value, const char *arg);
int opt_kdf_ops(void *value, const char *arg);

struct wfs_pass_opts;
/* 0 when po names at most one source; else 2 after a usage error. */
int check_pass_opts(const struct wfs_pass_opts *po);
/* The audit row's detail for an unlock with po's secret that failed. */
const char *unlock_failed_detail(const struct wfs_pass_opts *po);

/* Parses a decimal number from min to max into *out: 0, or -1. */
int parse_uint(const char *s, unsigned long long min, unsigned long long max,
	       unsigned long long *out);

#endif

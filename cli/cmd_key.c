/*
 * cmd_key.c - `wardfs key list|add|remove|escrow-keygen`: the key slots of
 * a vault (crypto/keyfile.c has the format, docs/admin.md "Keys in an
 * organisation" the practice). Adding and removing a slot unlocks with any
 * existing slot first, writes the keyfile atomically and records an audit
 * row; listing needs no secret and says that what it shows is unchecked.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "commands.h"
#include "crypto.h"
#include "usage.h"
#include "vault.h"
#include "vault_args.h"

static const char usage[] =
	"usage: wardfs key <command> [<options>]\n"
	"\n"
	"  list BACKING           show the vault's key slots\n"
	"  add BACKING --type T   add a slot (passphrase, recovery, escrow or tpm2)\n"
	"  remove BACKING SLOT    remove a slot (never the last one)\n"
	"  escrow-keygen          make an organisation's escrow key pair\n"
	"\n"
	"'wardfs key <command> --help' shows a command's options.\n";

static const char list_usage[] =
	"usage: wardfs key list BACKING\n"
	"\n"
	"Shows every key slot of the vault in BACKING: id, type, label, when it was\n"
	"made and last unlocked, and its parameters. Any slot opens the whole vault.\n"
	"No secret is asked: what is shown is checked (the keyfile's MAC) only when\n"
	"a slot unlocks. The last line says which slots an unlock tries without\n"
	"asking (tpm2: the TPM unseals them) before it asks for a secret.\n";

static const char add_usage[] =
	"usage: wardfs key add BACKING --type passphrase|recovery|escrow|tpm2 [options]\n"
	"\n"
	"Adds a key slot to the vault in BACKING after unlocking it with any existing\n"
	"slot. A passphrase slot asks for the new passphrase (or reads\n"
	"--new-passfile); a recovery slot prints a new recovery key once (or writes it\n"
	"to --recovery-key-out); an escrow slot wraps the master key to the public key\n"
	"in --public FILE (from 'wardfs key escrow-keygen'), so whoever holds the\n"
	"secret half can unlock with --escrow-key. A tpm2 slot seals a random secret\n"
	"to this machine's TPM (bound to --tpm2-pcrs, if given): every unlock tries it\n"
	"first, without asking.\n"
	"\n"
	"  --type T                 passphrase, recovery, escrow or tpm2\n"
	"  --label L                a name for the slot (default: its type; 64 bytes)\n"
	"  --public FILE            escrow: the organisation's public key\n"
	"  --new-passfile FILE      passphrase: the new passphrase from FILE\n"
	"  --recovery-key-out FILE  recovery: write the new key to FILE (0600, new)\n"
	"  --kdf-memory MIB         passphrase: Argon2id memory (default 512)\n"
	"  --kdf-ops N              passphrase: Argon2id passes (default 3)\n"
	"  --tpm2-pcrs LIST         tpm2: bind to these sha256 PCRs (e.g. 7 or 0,7)\n"
	"  --tpm2-tcti TCTI         the TPM (default $WARDFS_TPM2_TCTI, else\n"
	"                           device:/dev/tpmrm0; e.g. swtpm:host=H,port=P)\n"
	"  --passfile FILE          unlock: passphrase from the first line of FILE\n"
	"  --extpass CMD            unlock: passphrase from CMD's first output line\n"
	"  --recovery-key           unlock with the recovery key (stdin or terminal)\n"
	"  --recovery-key-file FILE unlock with the recovery key in FILE\n"
	"  --escrow-key FILE        unlock with the escrow secret key in FILE\n"
	"  -h, --help               show this help\n";

static const char remove_usage[] =
	"usage: wardfs key remove BACKING SLOT [unlock options]\n"
	"\n"
	"Removes key slot SLOT (an id from 'wardfs key list') after unlocking with\n"
	"any slot: its secret no longer opens the vault. The last slot is never\n"
	"removed. Unlock options as for 'wardfs key add' (tpm2 slots are tried\n"
	"first). Files are not rewritten:\n"
	"someone who kept a copy of the old keyfile and knows the removed secret can\n"
	"still read copies of the files they kept (see docs/admin.md).\n";

static const char keygen_usage[] =
	"usage: wardfs key escrow-keygen --secret-out FILE [--public-out FILE]\n"
	"\n"
	"Makes an escrow key pair for an organisation: the secret key is written to\n"
	"FILE (mode 0600, a new file: keep it off the machines, e.g. offline), the\n"
	"public key is printed (and written to --public-out). Give the public key to\n"
	"'wardfs key add --type escrow --public' or 'wardfs setup-home\n"
	"--escrow-public'. Each key is one line with a checksum.\n";

/* "YYYY-MM-DD HH:MM" UTC, or what to show without a time. */
static void put_time(char *buf, size_t len, uint64_t t, const char *none)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0 || gmtime_r(&tt, &tm) == NULL)
		snprintf(buf, len, "%s", none);
	else
		strftime(buf, len, "%Y-%m-%d %H:%M", &tm);
}

static int cmd_list(int argc, char **argv)
{
	const struct opt opts[] = {OPT_END()};
	struct wfs_keyfile_info info;
	struct args a = {0};
	uint8_t *kf = NULL;
	char unattended[WFS_SLOTS_MAX * 7 + 8] = "";
	size_t kflen, un = 0;
	int r, status;

	if (parse_args(&a, argc, argv, opts, list_usage, &status) != 0)
		return status;
	status = 1;
	if (check_backing(&a) != 0)
		goto out;
	if ((r = wfs_vault_read_keyfile(a.backing, &kf, &kflen)) != 0) {
		error("cannot read the keyfile of '%s': %s", a.backing,
		      r == -ENOENT ? "it is not a wardfs vault" : strerror(-r));
		goto out;
	}
	if (wfs_keyfile_parse(kf, kflen, &info) != 0) {
		error("the keyfile of '%s' is corrupt or from a newer wardfs", a.backing);
		goto out;
	}
	printf("%-5s %-11s %-24s %-17s %-17s %s\n", "SLOT", "TYPE", "LABEL", "CREATED (UTC)",
	       "LAST USED (UTC)", "DETAILS");
	for (size_t i = 0; i < info.nslots; i++) {
		const struct wfs_slot_info *s = &info.slot[i];
		char made[32], used[32], details[96] = "";

		put_time(made, sizeof(made), s->created, s->legacy ? "(version 1)" : "-");
		put_time(used, sizeof(used), wfs_vault_slot_last_used(a.backing, s->id), "never");
		if (s->type == WFS_SLOT_PASSPHRASE)
			snprintf(details, sizeof(details), "argon2id, %" PRIu64 " passes, %zu MiB",
				 s->kdf.opslimit, s->kdf.memlimit >> 20);
		else if (s->type == WFS_SLOT_ESCROW) {
			char fp[WFS_FINGERPRINT_LEN];
			wfs_escrow_fingerprint(s->escrow_public, fp);
			snprintf(details, sizeof(details), "public key %s", fp);
		} else if (s->type == WFS_SLOT_TPM2) {
			char pcrs[64]; /* "0,1,...,23": 62 bytes */
			wfs_tpm2_pcrs_format(s->tpm2.pcrs, pcrs, sizeof(pcrs));
			if (s->tpm2.pcrs)
				snprintf(details, sizeof(details), "unattended; sha256 PCRs %s",
					 pcrs);
			else
				snprintf(details, sizeof(details), "unattended; no PCRs");
		}
		if (wfs_slot_type_unattended(s->type))
			un += (size_t)snprintf(unattended + un, sizeof(unattended) - un, "%s%u",
					       un ? ", " : "", (unsigned)s->id);
		printf("%-5u %-11s %-24s %-17s %-17s %s\n", (unsigned)s->id,
		       wfs_slot_type_name(s->type), s->label, made, used, details);
	}
	/* tpm2 slots are tried first, by the TPM, without asking anyone; every
	 * other type needs its secret typed or given as a file. */
	if (un == 0)
		printf("\nkeyfile version %u; no slot is tried without asking: mount asks for a "
		       "passphrase\n(or takes --passfile, --recovery-key-file or --escrow-key).\n",
		       info.version);
	else {
		bool many = strchr(unattended, ',') != NULL;
		printf("\nkeyfile version %u; tried without asking: tpm2 slot%s %s (the TPM "
		       "unseals %s);\n",
		       info.version, many ? "s" : "", unattended, many ? "them" : "it");
		printf("if none opens, mount asks for a passphrase (or takes --passfile,\n"
		       "--recovery-key-file or --escrow-key).\n");
	}
	status = 0;
out:
	free(kf);
	free(a.backing);
	return status;
}

/* A slot id operand: 0, or 2 after a usage error. */
static int slot_operand(const char *s, uint16_t *id)
{
	unsigned long long v;

	if (parse_uint(s, 0, UINT16_MAX, &v) != 0)
		return usage_error("'%s' is not a slot id (see 'wardfs key list')", s);
	*id = (uint16_t)v;
	return 0;
}

/* The unlock every edit starts with, audited when it fails. */
static int edit_unlock(const struct args *a, const char *what, struct wfs_keys **keys,
		       uint16_t *used, uint8_t **kf, size_t *kflen)
{
	struct wfs_pass_opts po = a->po;
	char detail[128];
	int r;

	if (check_backing(a) != 0 || crypto_start() != 0)
		return 1;
	po.may_write = true; /* it writes the keyfile anyway */
	if ((r = wfs_vault_unlock_slot(a->backing, &po, keys, used)) != 0) {
		if (r == -EACCES) {
			snprintf(detail, sizeof(detail), "key %s: unlock failed", what);
			wfs_vault_audit(a->backing, NULL, prog_name(), WFS_AUDIT_VAULT, EACCES,
					detail);
		}
		return 1;
	}
	if ((r = wfs_vault_read_keyfile(a->backing, kf, kflen)) != 0)
		return error("cannot read the keyfile of '%s': %s", a->backing, strerror(-r));
	return 0;
}

/* Writes the edited keyfile: 0, or 1 after one line of error. */
static int edit_write(const struct args *a, const uint8_t *nkf, size_t nlen)
{
	int r = wfs_vault_write(a->backing, WFS_VAULT_KEYFILE, nkf, nlen, 0600);

	if (r != 0)
		return error("cannot write '%s/" WFS_VAULT_DIR "/" WFS_VAULT_KEYFILE
			     "': %s (the keyfile is as it was)",
			     a->backing, strerror(-r));
	return 0;
}

static int cmd_add(int argc, char **argv)
{
	struct args a = {0};
	const char *recovery_out = NULL, *pcrs_text = NULL;
	unsigned long long kdf_mib = 0, kdf_ops = 0;
	const struct opt opts[] = {
		OPT_PASS_SOURCES(&a.po),
		OPT_STRING("type", 0, &a.type),
		OPT_STRING("label", 0, &a.label),
		OPT_STRING("public", 0, &a.escrow_public),
		OPT_STRING("new-passfile", 0, &a.new_passfile),
		OPT_STRING("recovery-key-out", 0, &recovery_out),
		OPT_STRING("tpm2-pcrs", 0, &pcrs_text),
		OPT_KDF(&kdf_mib, &kdf_ops),
		OPT_END(),
	};
	char rec[WFS_RECOVERY_LEN] = "", detail[200], err[256], pcrs_list[96];
	uint8_t pk[WFS_ESCROW_KEY_LEN], *kf = NULL, *nkf = NULL, *tsecret = NULL;
	struct wfs_tpm2_seal seal;
	uint32_t pcrs = 0;
	struct wfs_slot_new ns = {0};
	struct wfs_kdf_params kp;
	struct wfs_keys *keys = NULL;
	size_t kflen, nlen;
	char *pass = NULL;
	uint16_t used = 0, id = 0;
	bool rec_written = false;
	int type, r, status;

	if (parse_args(&a, argc, argv, opts, add_usage, &status) != 0)
		return status;
	status = 2;
	if (a.type == NULL) {
		usage_error("missing --type (passphrase, recovery, escrow or tpm2)");
		goto out;
	}
	if ((type = wfs_slot_type_parse(a.type)) < 0) {
		usage_error("'%s' is not a slot type (passphrase, recovery, escrow or tpm2)",
			    a.type);
		goto out;
	}
	if ((type == WFS_SLOT_ESCROW) != (a.escrow_public != NULL)) {
		usage_error("--public FILE goes with --type escrow, and only with it");
		goto out;
	}
	if ((a.new_passfile || kdf_mib || kdf_ops) && type != WFS_SLOT_PASSPHRASE) {
		usage_error("--new-passfile and --kdf-* go with --type passphrase");
		goto out;
	}
	if (recovery_out && type != WFS_SLOT_RECOVERY) {
		usage_error("--recovery-key-out goes with --type recovery");
		goto out;
	}
	if (pcrs_text && type != WFS_SLOT_TPM2) {
		usage_error("--tpm2-pcrs goes with --type tpm2");
		goto out;
	}
	if (pcrs_text && wfs_tpm2_pcrs_parse(pcrs_text, &pcrs) != 0) {
		usage_error("'%s' is not a list of PCRs (0 to 23, comma-separated, e.g. 7 or 0,7)",
			    pcrs_text);
		goto out;
	}
	status = 1;
	ns.type = (enum wfs_slot_type)type;
	ns.label = a.label;
	/* a new passphrase read from stdin comes after the current secret's
	 * line: the TPM must not take that line's place */
	a.po.no_tpm2 =
		type == WFS_SLOT_PASSPHRASE && a.new_passfile == NULL && !isatty(STDIN_FILENO);
	if (type == WFS_SLOT_ESCROW && wfs_escrow_public_read(a.escrow_public, pk) != 0)
		goto out;
	if (edit_unlock(&a, "add", &keys, &used, &kf, &kflen) != 0)
		goto out;
	if (type == WFS_SLOT_PASSPHRASE) {
		wfs_kdf_params_default(&kp);
		if (kdf_mib)
			kp.memlimit = (size_t)kdf_mib << 20;
		if (kdf_ops)
			kp.opslimit = kdf_ops;
		if (wfs_secret_read(a.new_passfile, NULL, "New passphrase: ", true, &pass,
				    &ns.passlen, NULL) != 0)
			goto out;
		ns.pass = pass;
		ns.kdf = &kp;
	}
	if (type == WFS_SLOT_TPM2) {
		/* the secret only ever in locked memory, wiped at the end */
		if ((tsecret = wfs_secure_alloc(WFS_TPM2_SECRET_LEN)) == NULL) {
			error("out of secure memory");
			goto out;
		}
		if (wfs_tpm2_seal_new(a.po.tpm2_tcti, pcrs, tsecret, &seal, err, sizeof(err)) !=
		    0) {
			error("cannot seal a key to the TPM: %s (the keyfile is as it was)", err);
			goto out;
		}
		ns.tpm2 = &seal;
		ns.tpm2_secret = tsecret;
	}
	ns.escrow_public = pk;
	ns.recovery_out = rec;
	if ((r = wfs_keyfile_add(kf, kflen, keys, &ns, &nkf, &nlen, &id)) != 0) {
		error("cannot add the slot: %s",
		      r == -ENOSPC   ? "the vault has the most slots it can hold (32); remove one"
		      : r == -EINVAL ? "the label must be at most 64 printable bytes"
				     : strerror(-r));
		goto out;
	}
	/* A recovery key kept in a file before the keyfile names it, as at init:
	 * no slot exists whose key was not kept where the admin asked. */
	if (recovery_out) {
		if ((r = wfs_write_new_file(recovery_out, rec)) != 0) {
			error("cannot write the recovery key to '%s': %s%s", recovery_out,
			      strerror(-r),
			      r == -EEXIST ? " (it exists; wardfs never overwrites one)" : "");
			goto out;
		}
		rec_written = true;
	}
	if (edit_write(&a, nkf, nlen) != 0) {
		if (rec_written)
			unlink(recovery_out);
		goto out;
	}
	printf("Added slot %u (%s, '%s') to %s.\n", (unsigned)id, wfs_slot_type_name(ns.type),
	       a.label ? a.label : wfs_slot_type_name(ns.type), a.backing);
	if (type == WFS_SLOT_RECOVERY && !recovery_out)
		printf("\nRecovery key (shown once; store it offline):\n\n    %s\n\n", rec);
	else if (type == WFS_SLOT_RECOVERY)
		printf("Recovery key written to %s (mode 0600).\n", recovery_out);
	else if (type == WFS_SLOT_TPM2) {
		wfs_tpm2_pcrs_format(pcrs, pcrs_list, sizeof(pcrs_list));
		printf(pcrs ? "It unlocks without asking on this machine while sha256 PCRs %s "
			      "keep their values.\n"
			    : "It unlocks without asking on this machine%s (bound to no PCR).\n",
		       pcrs ? pcrs_list : "");
	}
	snprintf(detail, sizeof(detail), "key add: slot %u (%s) added (unlocked with slot %u)",
		 (unsigned)id, wfs_slot_type_name(ns.type), (unsigned)used);
	wfs_vault_audit(a.backing, NULL, prog_name(), WFS_AUDIT_VAULT, 0, detail);
	status = 0;
out:
	wfs_secret_free(pass);
	wfs_secure_free(tsecret);
	wfs_keys_free(keys);
	sodium_memzero(rec, sizeof(rec));
	free(kf);
	free(nkf);
	free(a.backing);
	return status;
}

static int cmd_remove(int argc, char **argv)
{
	struct args a = {.operand2_name = "SLOT"};
	const struct opt opts[] = {OPT_PASS_SOURCES(&a.po), OPT_END()};
	struct wfs_keyfile_info info;
	uint8_t *kf = NULL, *nkf = NULL;
	struct wfs_keys *keys = NULL;
	const char *type = "?";
	char detail[160];
	size_t kflen, nlen;
	uint16_t used = 0, id = 0;
	int r, status;

	if (parse_args(&a, argc, argv, opts, remove_usage, &status) != 0)
		return status;
	if ((status = slot_operand(a.operand2, &id)) != 0)
		goto out;
	status = 1;
	if (edit_unlock(&a, "remove", &keys, &used, &kf, &kflen) != 0)
		goto out;
	if (wfs_keyfile_parse(kf, kflen, &info) == 0)
		for (size_t i = 0; i < info.nslots; i++)
			if (info.slot[i].id == id)
				type = wfs_slot_type_name(info.slot[i].type);
	if ((r = wfs_keyfile_remove(kf, kflen, keys, id, &nkf, &nlen)) != 0) {
		if (r == -ENOENT)
			error("'%s' has no slot %u (see 'wardfs key list %s')", a.backing,
			      (unsigned)id, a.backing);
		else if (r == -EBUSY)
			error("slot %u is the last key slot of '%s': removing it would lock the "
			      "vault for good; add another first",
			      (unsigned)id, a.backing);
		else
			error("cannot remove slot %u: %s", (unsigned)id, strerror(-r));
		goto out;
	}
	if (edit_write(&a, nkf, nlen) != 0)
		goto out;
	printf("Removed slot %u (%s) from %s.\n", (unsigned)id, type, a.backing);
	snprintf(detail, sizeof(detail), "key remove: slot %u (%s) removed (unlocked with slot %u)",
		 (unsigned)id, type, (unsigned)used);
	wfs_vault_audit(a.backing, NULL, prog_name(), WFS_AUDIT_VAULT, 0, detail);
	status = 0;
out:
	wfs_keys_free(keys);
	free(kf);
	free(nkf);
	free(a.backing);
	return status;
}

static int cmd_escrow_keygen(int argc, char **argv)
{
	const char *secret_out = NULL, *public_out = NULL;
	const struct opt opts[] = {
		OPT_STRING("secret-out", 0, &secret_out),
		OPT_STRING("public-out", 0, &public_out),
		OPT_END(),
	};
	char pub[WFS_ESCROW_TEXT_LEN], sec[WFS_ESCROW_TEXT_LEN];
	int i, r, status;

	if ((i = parse_options(argc, argv, opts, keygen_usage, 0, &status)) < 0)
		return status;
	status = 1;
	if (i < argc)
		return usage_error("unexpected argument '%s'", argv[i]);
	if (secret_out == NULL)
		return usage_error("missing --secret-out FILE (the secret key is never printed)");
	if (crypto_start() != 0)
		return 1;
	if (wfs_escrow_keygen(pub, sec) != 0) {
		error("out of secure memory");
		goto out;
	}
	if ((r = wfs_write_new_file(secret_out, sec)) != 0) {
		error("cannot write the secret key to '%s': %s%s", secret_out, strerror(-r),
		      r == -EEXIST ? " (it exists; wardfs never overwrites one)" : "");
		goto out;
	}
	if (public_out && (r = wfs_write_new_file(public_out, pub)) != 0) {
		error("cannot write the public key to '%s': %s", public_out, strerror(-r));
		unlink(secret_out); /* no pair half made */
		goto out;
	}
	printf("%s\n", pub);
	fprintf(stderr, "Escrow secret key written to %s (mode 0600): keep it off the machines.\n",
		secret_out);
	status = 0;
out:
	sodium_memzero(sec, sizeof(sec));
	return status;
}

int wfs_cmd_key(int argc, char **argv)
{
	static const struct subcommand cmds[] = {{"list", cmd_list},
						 {"add", cmd_add},
						 {"remove", cmd_remove},
						 {"escrow-keygen", cmd_escrow_keygen}};

	return run_subcommand(cmds, sizeof(cmds) / sizeof(cmds[0]), argc, argv, usage);
}

/*
 * crypto.h - wardfs keys, secure memory and the encrypted file format.
 *
 * No FUSE and no path I/O: callers pass buffers and file descriptors.
 * Layering follows gocryptfs: a crypto core (AEAD, HKDF, secure memory),
 * key handling (keyfile, Argon2id, recovery key) and content encryption
 * (header + fixed-size authenticated blocks over pread/pwrite on an fd).
 */
#ifndef WARDFS_CRYPTO_H
#define WARDFS_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Call once before anything else: sodium_init, OpenSSL checks. 0 or -errno. */
int wfs_crypto_init(void);

/* Secure memory: locked, guarded, wiped on free (sodium_malloc). */
void *wfs_secure_alloc(size_t n);
void wfs_secure_free(void *p);
/* Wipes then frees an ordinary heap buffer (like OpenSSH's freezero). */
void wfs_freezero(void *p, size_t n);
/* Wipes a buffer in a way the compiler keeps (sodium_memzero). */
void wfs_memzero(void *p, size_t n);
/* Constant-time compare: 0 when equal. */
int wfs_ct_compare(const void *a, const void *b, size_t n);

/* ---- converting a file (convert.c) -------------------------------- */

struct wfs_keys;
/* Copies src's content (size bytes on disk) into the empty file dst in the
 * other form: encrypt, plain -> encrypted (a new header, marked); else
 * encrypted -> plain. buf is scratch of len bytes. 0; -EIO for damage;
 * -EAGAIN when src changed meanwhile; -errno. */
int wfs_convert_content(const struct wfs_keys *k, int src, int dst, off_t size, bool encrypt,
			void *buf, size_t len);
/* Gives dst src's owner, group, mode, ACLs, extended attributes (but the
 * mark) and times, st being src's stat. 0 or -errno. */
int wfs_copy_file_attrs(int src, int dst, const struct stat *st);
/* Makes dst's POSIX ACLs src's (access; default for a directory), removing
 * any dst inherited that src does not have. 0 or -errno. */
int wfs_copy_acls(int src, int dst);

/* ---- keys ---------------------------------------------------------- */

struct wfs_kdf_params {
	uint64_t opslimit;
	size_t memlimit; /* bytes */
};
void wfs_kdf_params_default(struct wfs_kdf_params *p);

/* Unlocked key material: master key and per-purpose HKDF subkeys, all in
 * secure memory. Opaque. */
struct wfs_keys;
void wfs_keys_free(struct wfs_keys *k); /* wipes; NULL is fine */
/* Locks k's memory again (it is locked when built): a child made by fork
 * does not inherit the parent's locks. 0 or -errno (errno set too). */
int wfs_keys_lock(const struct wfs_keys *k);
/* The WFS_VAULT_* flags of the keyfile k was unlocked from (0 for keys
 * made otherwise, as wfs_keys_import's). */
unsigned wfs_keys_vault_flags(const struct wfs_keys *k);

/* For a running mount's lock and unlock (`wardfs lock`/`unlock`): */
#define WFS_MASTER_KEY_LEN 32
/* The master key's bytes, to hand to a daemon that was locked: the
 * caller keeps them in locked memory and wipes them. */
void wfs_keys_export(const struct wfs_keys *k, uint8_t master[WFS_MASTER_KEY_LEN]);
/* Keys from master key bytes (as an unlock of the keyfile builds them). */
int wfs_keys_import(const uint8_t master[WFS_MASTER_KEY_LEN], struct wfs_keys **out);
/* HKDF(master, "wardfs v1 key id"): one-way, tells a master key brought
 * back from another vault's. 0 or -EIO. */
int wfs_keys_id(const struct wfs_keys *k, uint8_t id[WFS_MASTER_KEY_LEN]);
/* Wipes every thread's cached key schedules and scratch buffers. The
 * caller makes sure no thread is inside the library meanwhile (the
 * daemon holds its keys lock exclusively). */
void wfs_crypto_forget(void);

/* ---- the keyfile and its key slots (keyfile.c, keyslot.c) ----------- */

#define WFS_RECOVERY_LEN    64	  /* printable recovery key incl. NUL, groups of hex */
#define WFS_KEYFILE_MAX	    16384 /* longest keyfile read */
#define WFS_SLOTS_MAX	    32
#define WFS_SLOT_LABEL_MAX  64 /* bytes, printable */
#define WFS_ESCROW_KEY_LEN  32 /* X25519 */
#define WFS_ESCROW_TEXT_LEN 96 /* "wardfs-escrow-...-1:" + 72 hex digits + NUL */
#define WFS_FINGERPRINT_LEN 17 /* 16 hex digits + NUL */

/*
 * A slot wraps the vault's one master key under one secret. Every slot
 * opens the whole vault; removing one is revoking that secret.
 */
enum wfs_slot_type {
	WFS_SLOT_PASSPHRASE = 1, /* Argon2id(passphrase) */
	WFS_SLOT_RECOVERY = 2,	 /* HKDF(random 192-bit key, printed once) */
	WFS_SLOT_ESCROW = 3,	 /* X25519 to an organisation's escrow public key */
	WFS_SLOT_TPM2 = 4,	 /* a random secret sealed by this machine's TPM (tpm2.c) */
};
const char *wfs_slot_type_name(enum wfs_slot_type t); /* "passphrase", ... */
int wfs_slot_type_parse(const char *name);	      /* the type, or -EINVAL */
/* Whether unlock tries slots of type t without asking anyone (tpm2). */
bool wfs_slot_type_unattended(enum wfs_slot_type t);

/*
 * What a tpm2 slot keeps of the TPM's seal (docs/format.md): the sealed
 * object (its public and private areas as the TPM marshals them), the PCRs
 * its policy binds it to (none: any process with the TPM may unseal), and
 * the template of the parent key the TPM re-creates from its owner seed.
 */
#define WFS_TPM2_SECRET_LEN   32     /* the random secret the TPM seals */
#define WFS_TPM2_PUB_MAX      160    /* marshalled TPM2B_PUBLIC, bytes */
#define WFS_TPM2_PRIV_MAX     192    /* marshalled TPM2B_PRIVATE, bytes */
#define WFS_TPM2_PRIMARY_ECC  1	     /* parent: ECC NIST P-256 storage key, owner hierarchy */
#define WFS_TPM2_BANK_SHA256  0x000b /* TPM2_ALG_SHA256 */
#define WFS_TPM2_PCRS	      24     /* PCRs 0..23 */
#define WFS_TPM2_DEFAULT_TCTI "device:/dev/tpmrm0"
struct wfs_tpm2_seal {
	uint8_t primary;   /* WFS_TPM2_PRIMARY_ECC */
	uint16_t pcr_bank; /* WFS_TPM2_BANK_SHA256 */
	uint32_t pcrs;	   /* bit n: PCR n; 0: no PCR policy */
	uint16_t publen, privlen;
	uint8_t pub[WFS_TPM2_PUB_MAX];
	uint8_t priv[WFS_TPM2_PRIV_MAX];
};

struct wfs_slot_info {
	uint16_t id;
	enum wfs_slot_type type;
	bool legacy;	  /* carried over as it was from a version-1 keyfile */
	uint64_t created; /* Unix seconds; 0 for a legacy slot */
	char label[WFS_SLOT_LABEL_MAX + 1];
	struct wfs_kdf_params kdf;		   /* passphrase slots */
	uint8_t escrow_public[WFS_ESCROW_KEY_LEN]; /* escrow slots */
	struct wfs_tpm2_seal tpm2;		   /* tpm2 slots */
};
/* The vault's flags, in a version-2 keyfile's header (docs/format.md):
 * authenticated with it, so a flag cannot be cleared or set without the
 * master key. A keyfile with a flag this build does not know is refused. */
#define WFS_VAULT_ENCRYPT_NAMES 0x0001u /* names of sensitive paths encrypted on disk */
#define WFS_VAULT_FLAGS_KNOWN	WFS_VAULT_ENCRYPT_NAMES

struct wfs_keyfile_info {
	unsigned version; /* 1: the fixed 188-byte keyfile; 2: key slots */
	unsigned flags;	  /* WFS_VAULT_*; unauthenticated until a slot opens */
	size_t nslots;
	struct wfs_slot_info slot[WFS_SLOTS_MAX];
};

/*
 * Parses without unlocking (`key list`, the fuzzer): 0 or -EINVAL. Nothing
 * in it is authenticated until a slot opens: a version-2 keyfile's slots
 * and labels are checked by its MAC (under the master key) at unlock.
 */
int wfs_keyfile_parse(const uint8_t *buf, size_t len, struct wfs_keyfile_info *info);
/* The same, telling only the first passphrase slot's cost (zero if none). */
int wfs_keyfile_check(const uint8_t *buf, size_t len, struct wfs_kdf_params *params);

/*
 * Creates a new vault key: a random master key in a version-2 keyfile with
 * two slots, 0 a recovery key and 1 a passphrase. Returns the keyfile in
 * *out (malloc, caller frees), the recovery key text, and the keys.
 */
int wfs_keyfile_create(const char *pass, size_t passlen, const struct wfs_kdf_params *params,
		       uint8_t **out, size_t *outlen, char recovery[WFS_RECOVERY_LEN],
		       struct wfs_keys **keys);
/* The same with the vault's WFS_VAULT_* flags (-EINVAL for unknown ones). */
int wfs_keyfile_create_flags(const char *pass, size_t passlen, const struct wfs_kdf_params *params,
			     unsigned flags, uint8_t **out, size_t *outlen,
			     char recovery[WFS_RECOVERY_LEN], struct wfs_keys **keys);
/*
 * Unlocks with secret, trying every slot of type in order: a passphrase
 * (secretlen bytes), a recovery key's text, an escrow secret key's text, or
 * the WFS_TPM2_SECRET_LEN bytes a TPM unsealed (wfs_tpm2_unseal).
 * *slot (may be NULL) tells which slot opened. 0; -EACCES when none did;
 * -EINVAL for a malformed keyfile, or one whose MAC fails once a slot
 * opened (a slot or label was changed, added or swapped in).
 */
int wfs_keyfile_open(const uint8_t *buf, size_t len, enum wfs_slot_type type, const void *secret,
		     size_t secretlen, struct wfs_keys **keys, uint16_t *slot);
int wfs_keyfile_unlock(const uint8_t *buf, size_t len, const char *pass, size_t passlen,
		       struct wfs_keys **keys);
int wfs_keyfile_unlock_recovery(const uint8_t *buf, size_t len, const char *recovery,
				struct wfs_keys **keys);

/* What a new slot is made from. */
struct wfs_slot_new {
	enum wfs_slot_type type;
	const char *label; /* NULL: the type's name */
	const char *pass;  /* passphrase */
	size_t passlen;
	const struct wfs_kdf_params *kdf; /* passphrase; NULL: the default cost */
	const uint8_t *escrow_public;	  /* escrow: WFS_ESCROW_KEY_LEN bytes */
	char *recovery_out;		  /* recovery: gets the new key's text (WFS_RECOVERY_LEN) */
	const struct wfs_tpm2_seal *tpm2; /* tpm2: what the TPM sealed (wfs_tpm2_seal_new) */
	const uint8_t *tpm2_secret;	  /* tpm2: ... and the secret it sealed */
};
/*
 * The edits below take the unlocked keys and return a new version-2
 * keyfile in *out (malloc); a version-1 keyfile comes out upgraded, its
 * two sections kept as legacy slots 0 and 1 that open as before.
 */
/* Adds a slot (its id is one more than the highest; in *id). -ENOSPC: full. */
int wfs_keyfile_add(const uint8_t *buf, size_t len, const struct wfs_keys *keys,
		    const struct wfs_slot_new *ns, uint8_t **out, size_t *outlen, uint16_t *id);
/* Sets the vault's WFS_VAULT_* flags (every slot kept: they are under the
 * MAC, not in a slot's AAD). -EINVAL for unknown flags. */
int wfs_keyfile_set_flags(const uint8_t *buf, size_t len, const struct wfs_keys *keys,
			  unsigned flags, uint8_t **out, size_t *outlen);
/* Removes slot id. -ENOENT: no such slot; -EBUSY: it is the last one. */
int wfs_keyfile_remove(const uint8_t *buf, size_t len, const struct wfs_keys *keys, uint16_t id,
		       uint8_t **out, size_t *outlen);
/* Replaces passphrase slot id with a new passphrase (id, label and, when
 * params is NULL, cost kept). -ENOENT / -EINVAL: no such passphrase slot. */
int wfs_keyfile_rewrap(const uint8_t *buf, size_t len, const struct wfs_keys *keys, uint16_t id,
		       const char *newpass, size_t newpasslen, const struct wfs_kdf_params *params,
		       uint8_t **out, size_t *outlen);
/* The same keyfile as version 2 (a copy when it is one already). */
int wfs_keyfile_upgrade(const uint8_t *buf, size_t len, const struct wfs_keys *keys, uint8_t **out,
			size_t *outlen);

/* True when text has the shape of a recovery key (48 hex digits; '-', white
 * space and case ignored), so callers can tell a typo from a wrong key. */
bool wfs_recovery_wellformed(const char *text);

/* An escrow key pair as text (one line each, with a checksum): 0 or -ENOMEM. */
int wfs_escrow_keygen(char public_text[WFS_ESCROW_TEXT_LEN], char secret_text[WFS_ESCROW_TEXT_LEN]);
/* 0, or -EINVAL: not such a key, or mistyped (the checksum fails). */
int wfs_escrow_public_parse(const char *text, uint8_t pk[WFS_ESCROW_KEY_LEN]);
int wfs_escrow_secret_parse(const char *text, uint8_t sk[WFS_ESCROW_KEY_LEN]);
void wfs_escrow_public_of(const uint8_t sk[WFS_ESCROW_KEY_LEN], uint8_t pk[WFS_ESCROW_KEY_LEN]);
/* A short name for a public key, as `key list` shows it. */
void wfs_escrow_fingerprint(const uint8_t pk[WFS_ESCROW_KEY_LEN], char out[WFS_FINGERPRINT_LEN]);

/* ---- the TPM (tpm2.c) ----------------------------------------------- */

/*
 * A TPM is reached through a TCTI string as tpm2-tss's tctildr reads it:
 * "device:/dev/tpmrm0" (the default), "swtpm:host=127.0.0.1,port=2321".
 * wfs_tpm2_tcti gives `given`, else $WARDFS_TPM2_TCTI, else the default.
 * tpm2-tss's own logging is turned off (TSS2_LOG, unless set) so that the
 * caller's one line says what failed.
 *
 * Errors: -ENODEV no TPM there (no device, nothing listening); -EXDEV the
 * TPM does not know the sealed object (another TPM, or this one cleared);
 * -EPERM the PCRs it is bound to changed; -EINVAL the stored object is
 * garbled; -EACCES the owner hierarchy has a password or the TPM is in
 * dictionary-attack lockout; -EIO anything else. err gets one line
 * (lowercase, no newline) saying what failed.
 */
const char *wfs_tpm2_tcti(const char *given);
/* Seals a fresh random secret (into secret, which should be secure memory)
 * to the TPM, bound to the sha256 PCRs of the mask pcrs (0: none). Seal
 * and unseal each talk to the TPM from a child process that lives for the
 * one operation (tpm2-tss leaves copies of the secret it does not wipe);
 * the caller's memory gets only the result. */
int wfs_tpm2_seal_new(const char *tcti, uint32_t pcrs, uint8_t secret[WFS_TPM2_SECRET_LEN],
		      struct wfs_tpm2_seal *out, char *err, size_t errlen);
/* Unseals what seal_new made: the secret, or an error (above). */
int wfs_tpm2_unseal(const char *tcti, const struct wfs_tpm2_seal *in,
		    uint8_t secret[WFS_TPM2_SECRET_LEN], char *err, size_t errlen);
/* 0 when in's blobs are a TPM2B_PUBLIC and a TPM2B_PRIVATE, each exactly
 * its stored length (no TPM needed); -EINVAL otherwise. */
int wfs_tpm2_check(const struct wfs_tpm2_seal *in);
/* "7,11" for a PCR mask ("none" for 0). */
void wfs_tpm2_pcrs_format(uint32_t pcrs, char *out, size_t len);
/* Parses "7,11" (PCRs 0..23, no repeats) into a mask: 0 or -EINVAL. */
int wfs_tpm2_pcrs_parse(const char *text, uint32_t *pcrs);

/* ---- encrypted file format ---------------------------------------- */

#define WFS_BLOCK_SIZE	   4096u /* plaintext bytes per block */
#define WFS_BLOCK_OVERHEAD 28u	 /* 12-byte nonce + 16-byte GCM tag */
#define WFS_CBLOCK_SIZE	   (WFS_BLOCK_SIZE + WFS_BLOCK_OVERHEAD)
#define WFS_HDR_SIZE	   64u

enum wfs_form {
	WFS_FORM_EMPTY = 0,	/* zero-length file: fine in either class */
	WFS_FORM_PLAIN = 1,	/* no wardfs header */
	WFS_FORM_ENCRYPTED = 2, /* valid, authenticated header */
};
const char *wfs_form_name(enum wfs_form f);

struct wfs_undo_file;
struct wfs_file_hdr {
	uint8_t file_id[16];
	uint16_t version; /* format: 1 (read and written as it is) or 2 */
	/* the file's undo journal state, or NULL (no journal): set by the
	 * caller after wfs_hdr_read / wfs_hdr_write, which clear it */
	struct wfs_undo_file *undo;
};

/*
 * Whether the first bytes look like a header (magic only, no keys). Never
 * the form of a file: bytes a user wrote can look like anything. Used to
 * find ciphertext that lost its mark (a restore without xattrs).
 */
enum wfs_form wfs_form_sniff(const void *buf, size_t len, off_t file_size);

/*
 * The mark (mark.c): an extended attribute that only CAP_SYS_ADMIN can
 * write, set on every file a wardfs tool encrypted. A file is encrypted
 * when it has the mark, whatever its bytes. fd may be O_PATH.
 */
#define WFS_MARK_XATTR "trusted.wardfs.encrypted"
/* 1 marked, 0 not, -EIO for a mark this build does not know, -errno. */
int wfs_mark_get(int fd);
int wfs_mark_set(int fd);
int wfs_mark_clear(int fd); /* 0 also when there was none */
/* The form of file fd of size bytes by its mark: empty, encrypted, plain.
 * Returns 1 when marked (an empty file can be: a crash between the mark
 * and the header), 0 when not, or -errno. */
int wfs_form_of(int fd, off_t size, enum wfs_form *form);
/* The same for the file name in dirfd (not following a symlink): one
 * getxattrat(2) where the kernel has it (Linux 6.13), for lookups. */
int wfs_mark_get_at(int dirfd, const char *name);
int wfs_form_of_at(int dirfd, const char *name, off_t size, enum wfs_form *form);

/*
 * Reads and authenticates the header at offset 0. Returns the form
 * (>= 0), or -EIO for a header that has the magic but fails authentication
 * (tampered, or from another vault), or another -errno from pread.
 */
int wfs_hdr_read(const struct wfs_keys *k, int fd, struct wfs_file_hdr *h);
/* Marks fd (wfs_mark_set), then writes a fresh header with a random
 * file id at offset 0 and the empty end block after it (fd must be
 * empty): a crash between the two leaves a marked file without a header,
 * which reads as empty or EIO, never as plaintext. */
int wfs_hdr_write(const struct wfs_keys *k, int fd, struct wfs_file_hdr *h);

/* Size mapping. wfs_plain_size of a size cut mid-block counts the cut block's
 * bytes (reading them gives -EIO); it holds for both formats.
 * wfs_cipher_size is the size in the format new files get (2). */
off_t wfs_plain_size(off_t cipher_size);
off_t wfs_cipher_size(off_t plain_size);
/* Can a file of h's format have this cipher size? False for a format-2
 * file that does not end in an end block (cut, or a torn write). */
bool wfs_cipher_size_ok(const struct wfs_file_hdr *h, off_t cipher_size);

/*
 * Block geometry, for callers that move stored bytes themselves (read
 * ahead, write-behind): where plaintext block i is stored, and the stored
 * range [*start, *end) a write of plaintext [off, off + len) rewrites, from
 * the block holding off to the file's new end.
 */
off_t wfs_block_cipher_off(uint64_t i);
void wfs_write_cipher_span(off_t off, size_t len, off_t *start, off_t *end);

/*
 * A write that grows an encrypted file rewrites its last partial block in
 * place and appends new blocks. If that fails half way (ENOSPC, EIO), the
 * old last block may be half overwritten, and bytes already acknowledged
 * would read as EIO. wfs_grow_guard_begin saves the stored bytes of the
 * old last block when a write to new_plain_end grows the file (cipher_size:
 * its size now); wfs_grow_guard_end(failed) puts them back and cuts the
 * file to its old size, so a failed growing write leaves it as it was.
 * The caller holds the file's bytes still between the two.
 */
struct wfs_grow_guard {
	bool grows;
	off_t old_size;	  /* cipher size before the write */
	off_t tail_off;	  /* cipher offset of the saved tail block */
	ssize_t tail_len; /* bytes saved, 0 when the old end is block-aligned */
	unsigned char tail[WFS_CBLOCK_SIZE];
};
void wfs_grow_guard_begin(int fd, off_t cipher_size, off_t new_plain_end, struct wfs_grow_guard *g);
void wfs_grow_guard_end(int fd, struct wfs_grow_guard *g, bool failed);

/*
 * Content I/O on an encrypted file (fd opened O_RDWR or O_RDONLY for reads).
 * Per-thread cipher contexts and scratch buffers: no allocation per call.
 * Reads return bytes read (short at EOF) or -EIO when a needed block fails
 * authentication. Writes do read-modify-write of partial blocks, fill any gap
 * past EOF with encrypted zero blocks, and return bytes written or -errno
 * (-ENOSPC leaves earlier blocks intact). The caller serializes writers and
 * truncates per file.
 */
ssize_t wfs_content_pread(const struct wfs_keys *k, int fd, const struct wfs_file_hdr *h, void *buf,
			  size_t n, off_t off);
/*
 * The same as wfs_content_pread for a caller that already holds the
 * ciphertext: cipher has the file's bytes [coff, coff + clen), and the
 * blocks of [off, off + n) must lie in it. eof: cipher ends where the file
 * ends (the range may then end short); otherwise a partial block at its
 * end is ignored. -EINVAL when the range's first block does not start
 * inside cipher.
 */
ssize_t wfs_content_open(const struct wfs_keys *k, const struct wfs_file_hdr *h, const void *cipher,
			 size_t clen, off_t coff, bool eof, void *buf, size_t n, off_t off);
ssize_t wfs_content_pwrite(const struct wfs_keys *k, int fd, const struct wfs_file_hdr *h,
			   const void *buf, size_t n, off_t off);
int wfs_content_truncate(const struct wfs_keys *k, int fd, const struct wfs_file_hdr *h,
			 off_t new_plain_size);

/*
 * Holes (format 2; -EOPNOTSUPP for format 1, whose blocks are all stored).
 * wfs_content_zero makes plaintext [off, off + len) read as zeros without
 * changing the size: whole blocks become holes (punched in the backing
 * file, so they take no space), partly covered ones are rewritten.
 * wfs_content_seek answers SEEK_DATA / SEEK_HOLE over the plaintext from
 * the backing file's own holes: a block is a hole when all its stored
 * bytes lie in one. -ENXIO past the end, as lseek(2).
 */
int wfs_content_zero(const struct wfs_keys *k, int fd, const struct wfs_file_hdr *h, off_t off,
		     off_t len);
off_t wfs_content_seek(int fd, const struct wfs_file_hdr *h, off_t off, int whence);
/* Reserves backing space for plaintext [off, off + len) (fallocate(2) mode
 * 0 or FALLOC_FL_KEEP_SIZE on the blocks' cipher range) without writing. */
int wfs_content_reserve(int fd, const struct wfs_file_hdr *h, off_t off, off_t len, int mode);

/*
 * The undo journal (undo.c): before a write changes an encrypted file's
 * stored bytes, their old copy goes to BACKING/.wardfs/undo, so that a
 * crash in the middle of the write loses nothing written before it.
 * wfs_undo_replay puts back what a crash left there (call it at mount,
 * before wfs_undo_open, which empties the journal); it returns the
 * entries applied or -errno, and reports each. wfs_undo_close syncs the
 * file system and empties the journal (unmount). A file's state
 * (wfs_undo_file_new, from its name_to_handle_at(2) handle) goes in its
 * header's undo field; wfs_undo_file_synced after each successful fsync.
 */
struct wfs_undo;
/* redo: a write the daemon had acknowledged was finished (n bytes written
 * at at); else a write cut short was undone (n old bytes put back) */
typedef void (*wfs_undo_report_fn)(void *arg, const char *path, bool redo, off_t at, size_t n,
				   off_t size_was, off_t size_now);
long wfs_undo_replay(const struct wfs_keys *k, int dirfd, const char *name, int mount_fd,
		     wfs_undo_report_fn fn, void *arg);
int wfs_undo_open(int dirfd, const char *name, struct wfs_undo **out);
void wfs_undo_close(struct wfs_undo *u);
/* size: the file's cipher size now, all of it taken as durable (written
 * before this mount, or synced) until the first fsync says otherwise; 0
 * for a file just created */
struct wfs_undo_file *wfs_undo_file_new(struct wfs_undo *u, int handle_type, const void *handle,
					unsigned handle_bytes, off_t size);
void wfs_undo_file_free(struct wfs_undo_file *f);
void wfs_undo_file_synced(struct wfs_undo_file *f, off_t cipher_size);
/* Whole-block overwrites of durable bytes wait in redo entries (undo.c).
 * wfs_undo_file_pending: does one lie in cipher range [lo, hi)?
 * wfs_undo_file_settle writes them in place if one does: call it, with
 * the file's writers and readers kept out, before reading such a range
 * (the library does the same itself, without knowing the caller's
 * read-ahead). wfs_undo_file_flush writes them in place and makes the
 * file durable, so that the journal can let go of them: before its fsync
 * and at its last close. Both: 0 or -errno. */
bool wfs_undo_file_pending(struct wfs_undo_file *f, off_t lo, off_t hi);
int wfs_undo_file_settle(struct wfs_undo_file *f, off_t lo, off_t hi);
int wfs_undo_file_flush(struct wfs_undo_file *f);

/* Called for each damaged block found by wfs_content_verify; block is
 * WFS_BLOCK_HEADER (cipher_off 0) when the header fails authentication. */
#define WFS_BLOCK_HEADER UINT64_MAX
typedef void (*wfs_damage_fn)(void *arg, uint64_t block, off_t cipher_off, const char *why);
/* Verifies every block; returns the number of damaged blocks or -errno. */
long wfs_content_verify(const struct wfs_keys *k, int fd, wfs_damage_fn fn, void *arg);
/*
 * Repairs a file whose damage is all at its end (a crash in the middle of
 * a write that grew it): cuts it back to the whole blocks before the first
 * damaged one and gives it an end block. Returns the plaintext size kept
 * (*was: the size before), -EIO when intact blocks follow the damage
 * (nothing changed: trimming would lose them), or -errno. A file (marked
 * encrypted: the caller knows) without a header is cut to 0 bytes.
 */
off_t wfs_content_trim_tail(const struct wfs_keys *k, int fd, off_t *was);
/*
 * Turns each damaged block of a format 2 file that is not its end block
 * into a hole: it reads as zeros from then on, and the bytes it held are
 * gone. For what a power cut leaves in a file whose writes nobody fsync'ed
 * (writeback reaches the disk in any order): torn blocks with intact ones
 * after them. Returns the number of blocks made holes, -EOPNOTSUPP for
 * format 1 (no holes), or -errno. The end block is left to trim_tail.
 */
long wfs_content_hole_damaged(const struct wfs_keys *k, int fd);

/* ---- encrypted names (names.c, dirid.c; docs/format.md) ------------ */

#define WFS_NAME_MAX	   255	  /* a plaintext name, and a backing name, in bytes */
#define WFS_NAME_SHORT_MAX 160	  /* longest plaintext name kept in one backing name */
#define WFS_NAME_PREFIX	   "wfs~" /* every name of wardfs's own starts with it */
#define WFS_NAME_LONG_LEN  27	  /* "wfs~l" or "wfs~n" and 22 base64url characters */
#define WFS_SIDECAR_MAX	   368	  /* a sidecar's text: "wfs~e" + base64url of 272 bytes */
#define WFS_DIRID_NAME	   "wfs~dirid"
#define WFS_DIRID_LEN	   16
#define WFS_DIRID_FILE_LEN 48

/* What a backing name is, by its bytes alone (docs/format.md). */
enum wfs_name_kind {
	WFS_NAME_PLAIN = 0,	/* a plain name, shown as it is */
	WFS_NAME_ESCAPED = 1,	/* "wfs~p" + S: the plain name "wfs~" + S */
	WFS_NAME_ENCRYPTED = 2, /* "wfs~e" + base64url: a short encrypted name */
	WFS_NAME_LONG = 3,	/* "wfs~l" + id: a long name's entry */
	WFS_NAME_SIDECAR = 4,	/* "wfs~n" + id: a long name's sidecar, never listed */
	WFS_NAME_DIRID = 5,	/* "wfs~dirid", never listed */
	WFS_NAME_RESERVED = 6,	/* ".", "..", other "wfs~" names, empty or with '/' or NUL */
};
enum wfs_name_kind wfs_name_classify(const char *name, size_t len);
/* Whether a backing name is in the encrypted form (a short encrypted
 * name or a long name's entry), by its bytes alone. */
bool wfs_name_is_encrypted(const char *name, size_t len);

/* A plaintext name's backing form in a directory. A long one is two
 * entries: name (the file itself) and sidecar_name holding sidecar. */
struct wfs_name_enc {
	char name[WFS_NAME_MAX + 1]; /* NUL-terminated */
	size_t len;
	bool is_long;
	char sidecar_name[WFS_NAME_LONG_LEN + 1];
	char sidecar[WFS_SIDECAR_MAX + 1];
	size_t sidecar_len;
};

/*
 * Encrypts the plaintext name plain (len bytes, not NUL-terminated) for the
 * directory whose id is dirid: deterministic, no allocation, thread-safe
 * (per-thread cipher contexts, keyed once per thread and key). 0; -EINVAL
 * for an empty name, ".", "..", or one holding '/' or NUL; -ENAMETOOLONG
 * past WFS_NAME_MAX; -ENOMEM, -EIO from the cipher.
 */
int wfs_name_encrypt(const struct wfs_keys *k, const uint8_t dirid[WFS_DIRID_LEN],
		     const char *plain, size_t len, struct wfs_name_enc *out);
/*
 * Decrypts a short encrypted backing name (WFS_NAME_ENCRYPTED) into plain
 * (NUL-terminated): its length; -EINVAL when name is not a canonical
 * encrypted name or its plaintext is not a valid name; -EBADMSG when it
 * does not authenticate under this key and directory id. plain is wiped
 * on failure: never a guess.
 */
ssize_t wfs_name_decrypt(const struct wfs_keys *k, const uint8_t dirid[WFS_DIRID_LEN],
			 const char *name, size_t len, char plain[WFS_NAME_MAX + 1]);
/* The same for a long name: its entry's name and its sidecar's bytes. */
ssize_t wfs_name_decrypt_long(const struct wfs_keys *k, const uint8_t dirid[WFS_DIRID_LEN],
			      const char *entry, size_t len, const char *sidecar, size_t slen,
			      char plain[WFS_NAME_MAX + 1]);
/* The other half of a long name: a sidecar's name for an entry's, an
 * entry's for a sidecar's. 0 or -EINVAL. */
int wfs_name_long_pair(const char *name, size_t len, char out[WFS_NAME_LONG_LEN + 1]);

/* The backing form of a plain (public) name: itself, or escaped when it
 * starts with "wfs~". Its length; -EINVAL as wfs_name_encrypt;
 * -ENAMETOOLONG when the escape does not fit. */
ssize_t wfs_name_escape(const char *plain, size_t len, char out[WFS_NAME_MAX + 1]);
/* The plain name a WFS_NAME_PLAIN or WFS_NAME_ESCAPED backing name shows
 * as: its length, or -EINVAL for any other kind. */
ssize_t wfs_name_unescape(const char *name, size_t len, char out[WFS_NAME_MAX + 1]);

/*
 * Directory ids (dirid.c): the file wfs~dirid in a backing directory.
 * dirfd may be O_PATH. wfs_dirid_read: 0; -ENOENT when there is none;
 * -EUCLEAN when it is corrupt (or not a regular file); -errno.
 * wfs_dirid_create: the id, made crash-safely when there is none (a new
 * random one, written to an O_TMPFILE, fsynced, linked without replacing
 * and the directory fsynced); when another writer linked one first, that
 * one. -EUCLEAN for a corrupt one, or when the directory holds encrypted
 * names but no id (never made then: a restored id would bring them back).
 */
void wfs_dirid_format(const uint8_t id[WFS_DIRID_LEN], uint8_t out[WFS_DIRID_FILE_LEN]);
int wfs_dirid_parse(const uint8_t *buf, size_t len, uint8_t id[WFS_DIRID_LEN]);
int wfs_dirid_read(int dirfd, uint8_t id[WFS_DIRID_LEN]);
int wfs_dirid_create(int dirfd, uint8_t id[WFS_DIRID_LEN]);
/*
 * Before rmdir(2) of the backing directory dirfd (the caller holds it
 * against creates): when nothing but wardfs's own files is left in it
 * (the id, orphan sidecars, temporaries), removes them, the id last, and
 * returns 0; -ENOTEMPTY, leaving all as it was, when it holds any name a
 * listing shows, any encrypted name (good or bad) or an unknown wfs~ name.
 */
int wfs_names_rmdir_prepare(int dirfd);
/* A temporary of wardfs's own: "wfs~t" and 16 hex digits (a directory id
 * or sidecar made without O_TMPFILE, or a file migrate converts), which
 * only a crash leaves behind. */
bool wfs_name_is_temp(const char *name);

/*
 * A long name's sidecar in the backing directory dirfd. write: links it
 * crash-safely (O_TMPFILE, fsync, linkat, fsync of the directory) before
 * the caller makes the entry; one already there with the same bytes is
 * kept, one with other bytes replaced. read_long: reads the sidecar of
 * the entry and decrypts the name (as wfs_name_decrypt_long; -ENOENT
 * without a sidecar). remove: after the entry is gone (-ENOENT is 0).
 */
int wfs_name_sidecar_write(int dirfd, const struct wfs_name_enc *e);
ssize_t wfs_name_read_long(const struct wfs_keys *k, const uint8_t dirid[WFS_DIRID_LEN], int dirfd,
			   const char *entry, size_t len, char plain[WFS_NAME_MAX + 1]);
int wfs_name_sidecar_remove(int dirfd, const char *entry, size_t len);

/*
 * What a listing shows for the backing name in the backing directory
 * dirfd, whose id is dirid (NULL: it has none, or a corrupt one): the
 * length of the plaintext name in plain (NUL-terminated); 0 for a name
 * never listed (a sidecar, the id, a reserved name); for an encrypted
 * name that cannot be shown, which the listing skips and fsck reports:
 * -EBADMSG (does not authenticate), -EINVAL (malformed), -ENOENT (a long
 * name without its sidecar), -EUCLEAN (no regular sidecar), -ENOKEY (no
 * directory id). *kind (may be NULL): wfs_name_classify's answer.
 */
ssize_t wfs_name_show(const struct wfs_keys *k, const uint8_t *dirid, int dirfd, const char *name,
		      size_t len, enum wfs_name_kind *kind, char plain[WFS_NAME_MAX + 1]);

#endif

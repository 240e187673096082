/*
 * tpm2.c - a tpm2 key slot's secret sealed by this machine's TPM, through
 * tpm2-tss's ESAPI (libtss2-esys) on a TCTI its loader opens
 * (libtss2-tctildr), with the sealed object kept as the TPM marshals it
 * (libtss2-mu). As systemd-cryptenroll does: the parent is a primary
 * storage key the TPM re-creates from its owner seed with a fixed template
 * (ECC NIST P-256), so nothing is stored in the TPM; the secret is a
 * keyed-hash object under it, bound by a PolicyPCR policy to the PCRs
 * asked for, or to nothing (then an empty password unseals it). Every
 * command that carries the secret runs in a session salted to the parent
 * key with AES-128-CFB parameter encryption, so it never crosses the bus
 * in the clear, and all of it runs in a child process that lives for one
 * seal or unseal (in_child, at the end: tpm2-tss leaves copies of the
 * secret in memory it does not wipe). docs/format.md has the slot;
 * keyfile.c turns the secret into the slot's KEK.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "crypto_internal.h"

_Static_assert(WFS_TPM2_BANK_SHA256 == TPM2_ALG_SHA256, "the stored bank is TPM2_ALG_SHA256");

/* A connection to one TPM and the transient objects made on it. */
struct tpm {
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *ctx;
	ESYS_TR primary, object, session;
};

static void err_set(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void err_set(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

const char *wfs_tpm2_tcti(const char *given)
{
	const char *env = getenv("WARDFS_TPM2_TCTI");

	if (given != NULL && given[0] != '\0')
		return given;
	return env != NULL && env[0] != '\0' ? env : WFS_TPM2_DEFAULT_TCTI;
}

void wfs_tpm2_pcrs_format(uint32_t pcrs, char *out, size_t len)
{
	size_t n = 0;

	if (len == 0)
		return;
	out[0] = '\0';
	if (pcrs == 0) {
		snprintf(out, len, "none");
		return;
	}
	for (unsigned i = 0; i < WFS_TPM2_PCRS && n < len; i++)
		if (pcrs & (1u << i)) {
			int w = snprintf(out + n, len - n, "%s%u", n ? "," : "", i);
			if (w < 0)
				break;
			n += (size_t)w;
		}
}

int wfs_tpm2_pcrs_parse(const char *text, uint32_t *pcrs)
{
	uint32_t m = 0;
	const char *p = text;

	if (text == NULL || *text == '\0')
		return -EINVAL;
	for (;;) {
		unsigned v = 0;
		int digits = 0;

		while (*p >= '0' && *p <= '9' && digits < 3) {
			v = v * 10 + (unsigned)(*p++ - '0');
			digits++;
		}
		if (digits == 0 || v >= WFS_TPM2_PCRS || (m & (1u << v)))
			return -EINVAL;
		m |= 1u << v;
		if (*p == '\0')
			break;
		if (*p++ != ',')
			return -EINVAL;
	}
	*pcrs = m;
	return 0;
}

/* tpm2-tss logs its failures to stderr; wardfs says them in one line. An
 * admin who sets TSS2_LOG (debugging) keeps it. */
static void quiet_logs(void)
{
	(void)setenv("TSS2_LOG", "all+none", 0);
}

/* The error number of a TPM response code, without its handle, session
 * or parameter number; the whole code for the software layers. */
static TSS2_RC rc_base(TSS2_RC rc)
{
	if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER &&
	    (rc & TSS2_RC_LAYER_MASK) != TSS2_RESMGR_TPM_RC_LAYER)
		return rc;
	rc &= ~(TSS2_RC)TSS2_RC_LAYER_MASK;
	return (rc & TPM2_RC_FMT1) ? (rc & (TPM2_RC_FMT1 | 0x3f)) : rc;
}

/* Says what a failed TPM command means: -errno and one line in err. */
static int tpm_fail(TSS2_RC rc, const char *what, char *err, size_t len)
{
	switch (rc_base(rc)) {
	case TPM2_RC_INTEGRITY:
		err_set(err, len,
			"the TPM does not know the sealed key: it was sealed by another TPM, or "
			"this TPM was cleared since");
		return -EXDEV;
	case TPM2_RC_BAD_AUTH:
	case TPM2_RC_AUTH_FAIL:
		err_set(err, len,
			"the TPM's owner hierarchy has a password (wardfs needs it empty, as "
			"systemd-cryptenroll does)");
		return -EACCES;
	case TPM2_RC_LOCKOUT:
		err_set(err, len, "the TPM is in dictionary-attack lockout");
		return -EACCES;
	case TPM2_RC_INITIALIZE:
		err_set(err, len, "the TPM was not started (no TPM2_Startup)");
		return -EIO;
	default:
		err_set(err, len, "the TPM failed to %s: %s", what, Tss2_RC_Decode(rc));
		return -EIO;
	}
}

/* /dev/tpmrm0 for "device:/dev/tpmrm0" or "device" (tpm2-tss's default
 * device), else NULL. */
static const char *device_path(const char *tcti, char *buf, size_t len)
{
	if (strcmp(tcti, "device") == 0)
		return "/dev/tpmrm0";
	if (strncmp(tcti, "device:", 7) != 0)
		return NULL;
	snprintf(buf, len, "%s", tcti + 7);
	return buf[0] ? buf : "/dev/tpmrm0";
}

static int tpm_open(const char *tcti, struct tpm *t, char *err, size_t len)
{
	char dev[256];
	const char *path = device_path(tcti, dev, sizeof(dev));
	TSS2_RC rc;

	memset(t, 0, sizeof(*t));
	t->primary = t->object = t->session = ESYS_TR_NONE;
	quiet_logs();
	if (path != NULL && access(path, F_OK) != 0) {
		err_set(err, len, "no TPM on this machine ('%s' does not exist)", path);
		return -ENODEV;
	}
	if ((rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti)) != TSS2_RC_SUCCESS) {
		t->tcti = NULL;
		err_set(err, len, "cannot reach the TPM at '%s' (%s)", tcti, Tss2_RC_Decode(rc));
		return -ENODEV;
	}
	if ((rc = Esys_Initialize(&t->ctx, t->tcti, NULL)) != TSS2_RC_SUCCESS) {
		t->ctx = NULL;
		err_set(err, len, "cannot talk to the TPM at '%s' (%s)", tcti, Tss2_RC_Decode(rc));
		return -ENODEV;
	}
	return 0;
}

static void tpm_close(struct tpm *t)
{
	ESYS_TR *h[] = {&t->session, &t->object, &t->primary};

	for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++)
		if (*h[i] != ESYS_TR_NONE && t->ctx != NULL) {
			(void)Esys_FlushContext(t->ctx, *h[i]);
			*h[i] = ESYS_TR_NONE;
		}
	if (t->ctx != NULL)
		Esys_Finalize(&t->ctx);
	if (t->tcti != NULL)
		Tss2_TctiLdr_Finalize(&t->tcti);
}

/*
 * The parent: a primary storage key under the owner hierarchy (empty
 * password), the same every time on the same TPM (its owner seed and this
 * template): ECC NIST P-256, restricted decrypt, AES-128-CFB, SHA-256,
 * fixedTPM, fixedParent, sensitiveDataOrigin, userWithAuth, noDA, an empty
 * unique field.
 */
static int make_primary(struct tpm *t, char *err, size_t len)
{
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_PUBLIC tmpl = {0};
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION none = {0};
	TPMT_PUBLIC *p = &tmpl.publicArea;
	TSS2_RC rc;

	p->type = TPM2_ALG_ECC;
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
			      TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
			      TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
	p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
	p->parameters.eccDetail.symmetric.keyBits.aes = 128;
	p->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
	p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	rc = Esys_CreatePrimary(t->ctx, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
				ESYS_TR_NONE, &sens, &tmpl, &outside, &none, &t->primary, NULL,
				NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		t->primary = ESYS_TR_NONE;
		return tpm_fail(rc, "make its storage key", err, len);
	}
	return 0;
}

/* A session of type (TPM2_SE_HMAC or _POLICY) salted to the parent key,
 * with AES-128-CFB parameter encryption set by attrs (decrypt: the
 * command's first parameter, encrypt: the response's). */
static int start_session(struct tpm *t, TPM2_SE type, TPMA_SESSION attrs, char *err, size_t len)
{
	TPMT_SYM_DEF sym = {
		.algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB};
	TSS2_RC rc;

	rc = Esys_StartAuthSession(t->ctx, t->primary, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
				   ESYS_TR_NONE, NULL, type, &sym, TPM2_ALG_SHA256, &t->session);
	if (rc != TSS2_RC_SUCCESS) {
		t->session = ESYS_TR_NONE;
		return tpm_fail(rc, "start a session", err, len);
	}
	rc = Esys_TRSess_SetAttributes(t->ctx, t->session, attrs | TPMA_SESSION_CONTINUESESSION,
				       0xff);
	return rc == TSS2_RC_SUCCESS ? 0 : tpm_fail(rc, "start a session", err, len);
}

static void pcr_selection(uint32_t pcrs, TPML_PCR_SELECTION *sel)
{
	memset(sel, 0, sizeof(*sel));
	sel->count = 1;
	sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
	sel->pcrSelections[0].sizeofSelect = 3;
	for (int i = 0; i < 3; i++)
		sel->pcrSelections[0].pcrSelect[i] = (uint8_t)(pcrs >> (8 * i));
}

/* The policy digest of PolicyPCR over the PCRs' values now (a trial
 * session: the TPM computes it). */
static int pcr_policy(struct tpm *t, uint32_t pcrs, TPM2B_DIGEST *out, char *err, size_t len)
{
	TPMT_SYM_DEF none = {.algorithm = TPM2_ALG_NULL};
	TPM2B_DIGEST now = {0}, *d = NULL;
	TPML_PCR_SELECTION sel;
	ESYS_TR trial = ESYS_TR_NONE;
	TSS2_RC rc;

	pcr_selection(pcrs, &sel);
	rc = Esys_StartAuthSession(t->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
				   ESYS_TR_NONE, NULL, TPM2_SE_TRIAL, &none, TPM2_ALG_SHA256,
				   &trial);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(rc, "start a trial session", err, len);
	rc = Esys_PolicyPCR(t->ctx, trial, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &now, &sel);
	if (rc == TSS2_RC_SUCCESS)
		rc = Esys_PolicyGetDigest(t->ctx, trial, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
					  &d);
	(void)Esys_FlushContext(t->ctx, trial);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(rc, "compute the PCR policy", err, len);
	*out = *d;
	Esys_Free(d);
	return 0;
}

int wfs_tpm2_check(const struct wfs_tpm2_seal *in)
{
	TPM2B_PUBLIC pub = {0}; /* tpm2-tss unmarshals only into an empty one */
	TPM2B_PRIVATE priv = {0};
	size_t off = 0;

	quiet_logs();
	if (in->publen > WFS_TPM2_PUB_MAX || in->privlen > WFS_TPM2_PRIV_MAX ||
	    Tss2_MU_TPM2B_PUBLIC_Unmarshal(in->pub, in->publen, &off, &pub) != TSS2_RC_SUCCESS ||
	    off != in->publen)
		return -EINVAL;
	off = 0;
	if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(in->priv, in->privlen, &off, &priv) !=
		    TSS2_RC_SUCCESS ||
	    off != in->privlen)
		return -EINVAL;
	/* a sealed data object, as seal_new makes it */
	if (pub.publicArea.type != TPM2_ALG_KEYEDHASH || pub.publicArea.nameAlg != TPM2_ALG_SHA256)
		return -EINVAL;
	return 0;
}

/* Seals secret (given) to the TPM, in this process: see in_child. */
static int seal_here(const char *tcti, uint32_t pcrs, const uint8_t secret[WFS_TPM2_SECRET_LEN],
		     struct wfs_tpm2_seal *out, char *err, size_t errlen)
{
	TPM2B_SENSITIVE_CREATE *sens = NULL;
	TPM2B_PUBLIC tmpl = {0}, *pub = NULL;
	TPM2B_PRIVATE *priv = NULL;
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION none = {0};
	TPMT_PUBLIC *p = &tmpl.publicArea;
	struct tpm t;
	size_t off;
	TSS2_RC rc;
	int r;

	memset(out, 0, sizeof(*out));
	if ((pcrs >> WFS_TPM2_PCRS) != 0) {
		err_set(err, errlen, "there are only PCRs 0 to %d", WFS_TPM2_PCRS - 1);
		return -EINVAL;
	}
	/* the secret, while tpm2-tss marshals it, in locked memory */
	if ((sens = wfs_secure_alloc(sizeof(*sens))) == NULL) {
		err_set(err, errlen, "out of secure memory");
		return -ENOMEM;
	}
	if ((r = tpm_open(wfs_tpm2_tcti(tcti), &t, err, errlen)) != 0 ||
	    (r = make_primary(&t, err, errlen)) != 0)
		goto out;
	p->type = TPM2_ALG_KEYEDHASH;
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_NODA;
	p->parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
	if (pcrs == 0)
		p->objectAttributes |= TPMA_OBJECT_USERWITHAUTH; /* an empty password */
	else if ((r = pcr_policy(&t, pcrs, &p->authPolicy, err, errlen)) != 0)
		goto out; /* and only the policy unseals it */
	sens->sensitive.data.size = WFS_TPM2_SECRET_LEN;
	memcpy(sens->sensitive.data.buffer, secret, WFS_TPM2_SECRET_LEN);
	if ((r = start_session(&t, TPM2_SE_HMAC, TPMA_SESSION_DECRYPT, err, errlen)) != 0)
		goto out;
	rc = Esys_Create(t.ctx, t.primary, t.session, ESYS_TR_NONE, ESYS_TR_NONE, sens, &tmpl,
			 &outside, &none, &priv, &pub, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		r = tpm_fail(rc, "seal the key", err, errlen);
		goto out;
	}
	out->primary = WFS_TPM2_PRIMARY_ECC;
	out->pcr_bank = WFS_TPM2_BANK_SHA256;
	out->pcrs = pcrs;
	off = 0;
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, out->pub, sizeof(out->pub), &off) !=
	    TSS2_RC_SUCCESS) {
		err_set(err, errlen, "the TPM's sealed object is larger than a slot holds");
		r = -EIO;
		goto out;
	}
	out->publen = (uint16_t)off;
	off = 0;
	if (Tss2_MU_TPM2B_PRIVATE_Marshal(priv, out->priv, sizeof(out->priv), &off) !=
	    TSS2_RC_SUCCESS) {
		err_set(err, errlen, "the TPM's sealed object is larger than a slot holds");
		r = -EIO;
		goto out;
	}
	out->privlen = (uint16_t)off;
	r = 0;
out:
	if (r != 0)
		memset(out, 0, sizeof(*out));
	Esys_Free(pub);
	Esys_Free(priv);
	wfs_secure_free(sens);
	tpm_close(&t);
	return r;
}

/* Unseals in, in this process: see in_child. */
static int unseal_here(const char *tcti, const struct wfs_tpm2_seal *in,
		       uint8_t secret[WFS_TPM2_SECRET_LEN], char *err, size_t errlen)
{
	TPM2B_SENSITIVE_DATA *data = NULL;
	TPM2B_PUBLIC pub = {0};
	TPM2B_PRIVATE priv = {0};
	TPM2B_DIGEST now = {0};
	TPML_PCR_SELECTION sel;
	struct tpm t;
	size_t off = 0;
	TSS2_RC rc;
	int r;

	memset(&t, 0, sizeof(t));
	t.primary = t.object = t.session = ESYS_TR_NONE;
	if (in->primary != WFS_TPM2_PRIMARY_ECC || in->pcr_bank != WFS_TPM2_BANK_SHA256 ||
	    wfs_tpm2_check(in) != 0 ||
	    Tss2_MU_TPM2B_PUBLIC_Unmarshal(in->pub, in->publen, &off, &pub) != TSS2_RC_SUCCESS ||
	    (off = 0, Tss2_MU_TPM2B_PRIVATE_Unmarshal(in->priv, in->privlen, &off, &priv)) !=
		    TSS2_RC_SUCCESS) {
		err_set(err, errlen, "the sealed key stored in the slot is garbled");
		return -EINVAL;
	}
	if ((r = tpm_open(wfs_tpm2_tcti(tcti), &t, err, errlen)) != 0 ||
	    (r = make_primary(&t, err, errlen)) != 0)
		goto out;
	rc = Esys_Load(t.ctx, t.primary, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub,
		       &t.object);
	if (rc != TSS2_RC_SUCCESS) {
		t.object = ESYS_TR_NONE;
		r = tpm_fail(rc, "load the sealed key", err, errlen);
		goto out;
	}
	if (in->pcrs != 0) {
		if ((r = start_session(&t, TPM2_SE_POLICY, 0, err, errlen)) != 0)
			goto out;
		pcr_selection(in->pcrs, &sel);
		rc = Esys_PolicyPCR(t.ctx, t.session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
				    &now, &sel);
		if (rc != TSS2_RC_SUCCESS) {
			r = tpm_fail(rc, "check the PCRs", err, errlen);
			goto out;
		}
		rc = Esys_TRSess_SetAttributes(t.ctx, t.session,
					       TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION,
					       0xff);
	} else {
		r = start_session(&t, TPM2_SE_HMAC, TPMA_SESSION_ENCRYPT, err, errlen);
		if (r != 0)
			goto out;
		rc = TSS2_RC_SUCCESS;
	}
	if (rc == TSS2_RC_SUCCESS)
		rc = Esys_Unseal(t.ctx, t.object, t.session, ESYS_TR_NONE, ESYS_TR_NONE, &data);
	if (rc != TSS2_RC_SUCCESS) {
		TSS2_RC b = rc_base(rc);
		if (b == TPM2_RC_POLICY_FAIL || b == TPM2_RC_PCR_CHANGED) {
			char list[96];
			wfs_tpm2_pcrs_format(in->pcrs, list, sizeof(list));
			err_set(err, errlen, "%s %s (sha256) changed since the slot was sealed",
				(in->pcrs & (in->pcrs - 1)) ? "one of PCRs" : "PCR", list);
			r = -EPERM;
		} else
			r = tpm_fail(rc, "unseal the key", err, errlen);
		goto out;
	}
	if (data->size != WFS_TPM2_SECRET_LEN) {
		err_set(err, errlen, "the TPM unsealed %u bytes, not %d", (unsigned)data->size,
			WFS_TPM2_SECRET_LEN);
		r = -EINVAL;
		goto out;
	}
	memcpy(secret, data->buffer, WFS_TPM2_SECRET_LEN);
	r = 0;
out:
	if (data != NULL) {
		sodium_memzero(data, sizeof(*data));
		Esys_Free(data);
	}
	sodium_memzero(&priv, sizeof(priv));
	tpm_close(&t);
	return r;
}

/* ---- in a child process ------------------------------------------------ */

/*
 * tpm2-tss (and OpenSSL under it, for the sessions' parameter encryption)
 * keeps copies of what it sends and receives in its own heap and stack,
 * which it frees without wiping: after a seal, the secret was still in
 * this process's freed heap. So the TPM is talked to by a child process
 * that lives for one seal or unseal: it gets the secret (a seal) from the
 * memory it shares with its parent at fork, hands back only the result
 * (the sealed object, or the unsealed secret) through a pipe into the
 * parent's locked memory, and exits, its memory going with it. It dies
 * with its parent, and locks its memory first.
 */
struct reply {
	int32_t r;
	char err[256];
	struct wfs_tpm2_seal seal;	     /* seal */
	uint8_t secret[WFS_TPM2_SECRET_LEN]; /* unseal */
};

static int write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static size_t read_all(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

/* Seals secret (seal != NULL) or unseals in, in a child; the reply in
 * *rep (the caller's locked memory). 0, or -errno with rep->err said. */
static int in_child(const char *tcti, uint32_t pcrs, const uint8_t *secret,
		    const struct wfs_tpm2_seal *in, struct reply *rep)
{
	int p[2], status;
	pid_t pid, parent = getpid();
	size_t got;

	memset(rep, 0, sizeof(*rep));
	if (pipe2(p, O_CLOEXEC) != 0) {
		err_set(rep->err, sizeof(rep->err), "cannot make a pipe: %s", strerror(errno));
		return -errno;
	}
	if ((pid = fork()) < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		err_set(rep->err, sizeof(rep->err), "cannot start a process: %s", strerror(e));
		return -e;
	}
	if (pid == 0) {
		struct reply *c = wfs_secure_alloc(sizeof(*c));

		close(p[0]);
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		(void)mlockall(MCL_CURRENT | MCL_FUTURE); /* nothing of it swapped out */
		if (c == NULL || getppid() != parent)	  /* the parent died before prctl */
			_exit(1);
		if (in == NULL)
			c->r = seal_here(tcti, pcrs, secret, &c->seal, c->err, sizeof(c->err));
		else
			c->r = unseal_here(tcti, in, c->secret, c->err, sizeof(c->err));
		_exit(write_all(p[1], c, sizeof(*c)) == 0 ? 0 : 1);
	}
	close(p[1]);
	got = read_all(p[0], rep, sizeof(*rep));
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (got != sizeof(*rep)) {
		sodium_memzero(rep, sizeof(*rep));
		err_set(rep->err, sizeof(rep->err), "the process talking to the TPM died");
		return -EIO;
	}
	rep->err[sizeof(rep->err) - 1] = '\0';
	return rep->r;
}

int wfs_tpm2_seal_new(const char *tcti, uint32_t pcrs, uint8_t secret[WFS_TPM2_SECRET_LEN],
		      struct wfs_tpm2_seal *out, char *err, size_t errlen)
{
	struct reply *rep = wfs_secure_alloc(sizeof(*rep));
	int r;

	memset(out, 0, sizeof(*out));
	if (rep == NULL) {
		err_set(err, errlen, "out of secure memory");
		return -ENOMEM;
	}
	if ((pcrs >> WFS_TPM2_PCRS) != 0) {
		err_set(err, errlen, "there are only PCRs 0 to %d", WFS_TPM2_PCRS - 1);
		r = -EINVAL;
		goto out;
	}
	randombytes_buf(secret, WFS_TPM2_SECRET_LEN);
	r = in_child(wfs_tpm2_tcti(tcti), pcrs, secret, NULL, rep);
	if (r == 0)
		*out = rep->seal;
	else {
		sodium_memzero(secret, WFS_TPM2_SECRET_LEN);
		err_set(err, errlen, "%s", rep->err);
	}
out:
	wfs_secure_free(rep);
	return r;
}

int wfs_tpm2_unseal(const char *tcti, const struct wfs_tpm2_seal *in,
		    uint8_t secret[WFS_TPM2_SECRET_LEN], char *err, size_t errlen)
{
	struct reply *rep;
	int r;

	if (wfs_tpm2_check(in) != 0 || in->primary != WFS_TPM2_PRIMARY_ECC ||
	    in->pcr_bank != WFS_TPM2_BANK_SHA256) {
		err_set(err, errlen, "the sealed key stored in the slot is garbled");
		return -EINVAL; /* no process started for that */
	}
	if ((rep = wfs_secure_alloc(sizeof(*rep))) == NULL) {
		err_set(err, errlen, "out of secure memory");
		return -ENOMEM;
	}
	r = in_child(wfs_tpm2_tcti(tcti), 0, NULL, in, rep);
	if (r == 0)
		memcpy(secret, rep->secret, WFS_TPM2_SECRET_LEN);
	else
		err_set(err, errlen, "%s", rep->err);
	wfs_secure_free(rep);
	return r;
}

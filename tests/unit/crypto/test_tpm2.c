/*
 * test_tpm2.c - crypto/tpm2.c on a real software TPM: the test starts its
 * own swtpm (TCP on two free ports, a fresh state directory) and kills it
 * at the end. Seal and unseal round trip, with and without PCRs; a PCR
 * extended, another TPM, no TPM and garbled blobs each give their error
 * and one line; and after a seal, and after an unseal, the secret is
 * nowhere in the process's heap or stack (tpm2-tss does not wipe its
 * buffers: tpm2.c talks to the TPM from a short-lived child process).
 * Without /usr/bin/swtpm the TPM tests are skipped.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>

#include <sodium.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include "helpers.h"

#define SWTPM "/usr/bin/swtpm"

/* A sanitizer's allocator is not the heap, and its redzones on the stack
 * may not be read: the search for copies is for plain builds. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

struct swtpm {
	pid_t pid;
	int port;
	char dir[64], tcti[96];
};

/* Two free ports P, P + 1 (the swtpm TCTI's command and control ports). */
static int free_ports(void)
{
	for (int tries = 0; tries < 100; tries++) {
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t al = sizeof(a);
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), s2, ok;

		assert_true(s >= 0);
		assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
		assert_int_equal(getsockname(s, (struct sockaddr *)&a, &al), 0);
		close(s);
		int port = ntohs(a.sin_port);
		a.sin_port = htons((uint16_t)(port + 1));
		s2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ok = bind(s2, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(s2);
		if (ok && port < 65535)
			return port;
	}
	fail_msg("no two free ports in a row");
	return -1;
}

static bool connectable(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;

	close(s);
	return ok;
}

/* Starts a swtpm on state dir t->dir (made when empty). */
static void swtpm_start(struct swtpm *t)
{
	char server[64], ctrl[64], state[96];

	if (t->dir[0] == '\0')
		test_tmpdir_make(t->dir, "tpm2");
	t->port = free_ports();
	snprintf(server, sizeof(server), "type=tcp,port=%d,bindaddr=127.0.0.1", t->port);
	snprintf(ctrl, sizeof(ctrl), "type=tcp,port=%d,bindaddr=127.0.0.1", t->port + 1);
	snprintf(state, sizeof(state), "dir=%s", t->dir);
	snprintf(t->tcti, sizeof(t->tcti), "swtpm:host=127.0.0.1,port=%d", t->port);
	t->pid = fork();
	assert_true(t->pid >= 0);
	if (t->pid == 0) {
		/* gone with the test, however it ends (an abort skips teardown) */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execl(SWTPM, "swtpm", "socket", "--tpm2", "--server", server, "--ctrl", ctrl,
		      "--tpmstate", state, "--flags", "not-need-init,startup-clear", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && !connectable(t->port); i++)
		usleep(50 * 1000);
	assert_true(connectable(t->port));
}

static void swtpm_stop(struct swtpm *t)
{
	if (t->pid > 0) {
		kill(t->pid, SIGTERM);
		waitpid(t->pid, NULL, 0);
		t->pid = 0;
	}
}

static void swtpm_free(struct swtpm *t)
{
	swtpm_stop(t);
	if (t->dir[0] != '\0')
		test_tmpdir_remove(t->dir);
}

static struct swtpm tpm_a, tpm_b;

static int setup(void **state)
{
	(void)state;
	if (access(SWTPM, X_OK) != 0)
		return 0; /* each test skips */
	swtpm_start(&tpm_a);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	swtpm_free(&tpm_a);
	swtpm_free(&tpm_b);
	return 0;
}

static void need_tpm(void)
{
	if (tpm_a.pid <= 0)
		skip();
}

/* Extends sha256 PCR pcr of the TPM at tcti with a digest of bytes v. */
static void pcr_extend(const char *tcti, unsigned pcr, uint8_t v)
{
	TSS2_TCTI_CONTEXT *tc = NULL;
	ESYS_CONTEXT *ctx = NULL;
	TPML_DIGEST_VALUES d = {.count = 1};

	d.digests[0].hashAlg = TPM2_ALG_SHA256;
	memset(d.digests[0].digest.sha256, v, 32);
	assert_int_equal(Tss2_TctiLdr_Initialize(tcti, &tc), 0);
	assert_int_equal(Esys_Initialize(&ctx, tc, NULL), 0);
	assert_int_equal(Esys_PCR_Extend(ctx, ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
					 ESYS_TR_NONE, &d),
			 0);
	Esys_Finalize(&ctx);
	Tss2_TctiLdr_Finalize(&tc);
}

static void one_line(const char *err)
{
	assert_true(err[0] != '\0');
	assert_null(strchr(err, '\n'));
	assert_true(err[0] >= 'a' && err[0] <= 'z'); /* git style: lowercase */
}

static void test_round_trip(void **state)
{
	uint8_t *sec = wfs_secure_alloc(32), *got = wfs_secure_alloc(32);
	struct wfs_tpm2_seal s, s7;
	char err[256] = "";

	(void)state;
	need_tpm();
	assert_int_equal(wfs_tpm2_seal_new(tpm_a.tcti, 0, sec, &s, err, sizeof(err)), 0);
	assert_int_equal(s.primary, WFS_TPM2_PRIMARY_ECC);
	assert_int_equal(s.pcr_bank, WFS_TPM2_BANK_SHA256);
	assert_int_equal(s.pcrs, 0);
	assert_true(s.publen > 0 && s.publen <= WFS_TPM2_PUB_MAX);
	assert_true(s.privlen > 0 && s.privlen <= WFS_TPM2_PRIV_MAX);
	assert_int_equal(wfs_tpm2_check(&s), 0);
	assert_int_equal(wfs_tpm2_unseal(tpm_a.tcti, &s, got, err, sizeof(err)), 0);
	assert_memory_equal(sec, got, 32);
	/* a second seal: another secret, another object */
	assert_int_equal(
		wfs_tpm2_seal_new(tpm_a.tcti, (1u << 7) | (1u << 16), got, &s7, err, sizeof(err)),
		0);
	assert_memory_not_equal(sec, got, 32);
	assert_memory_not_equal(s.priv, s7.priv, s7.privlen < s.privlen ? s7.privlen : s.privlen);
	assert_int_equal(s7.pcrs, (1u << 7) | (1u << 16));
	memset(sec, 0, 32);
	assert_int_equal(wfs_tpm2_unseal(tpm_a.tcti, &s7, sec, err, sizeof(err)), 0);
	assert_memory_equal(sec, got, 32);

	/* a PCR outside the policy changes nothing; one in it refuses */
	pcr_extend(tpm_a.tcti, 23, 1);
	assert_int_equal(wfs_tpm2_unseal(tpm_a.tcti, &s7, sec, err, sizeof(err)), 0);
	pcr_extend(tpm_a.tcti, 16, 2);
	err[0] = '\0';
	assert_int_equal(wfs_tpm2_unseal(tpm_a.tcti, &s7, sec, err, sizeof(err)), -EPERM);
	assert_string_equal(err, "one of PCRs 7,16 (sha256) changed since the slot was sealed");
	/* the one without PCRs still opens */
	assert_int_equal(wfs_tpm2_unseal(tpm_a.tcti, &s, sec, err, sizeof(err)), 0);
	/* a reboot (the same state, PCRs reset) opens the PCR one again */
	swtpm_stop(&tpm_a);
	swtpm_start(&tpm_a);
	assert_int_equal(wfs_tpm2_unseal(tpm_a.tcti, &s7, sec, err, sizeof(err)), 0);
	assert_memory_equal(sec, got, 32);
	wfs_secure_free(sec);
	wfs_secure_free(got);
}

static void test_refusals(void **state)
{
	uint8_t *sec = wfs_secure_alloc(32), *got = wfs_secure_alloc(32);
	struct wfs_tpm2_seal s, g;
	char err[256] = "", tcti[128];

	(void)state;
	need_tpm();
	assert_int_equal(wfs_tpm2_seal_new(tpm_a.tcti, 0, sec, &s, err, sizeof(err)), 0);
	/* another TPM */
	if (tpm_b.pid <= 0)
		swtpm_start(&tpm_b);
	assert_int_equal(wfs_tpm2_unseal(tpm_b.tcti, &s, got, err, sizeof(err)), -EXDEV);
	one_line(err);
	assert_non_null(strstr(err, "sealed by another TPM"));
	/* no TPM: nothing listening, no device */
	snprintf(tcti, sizeof(tcti), "%s", tpm_b.tcti);
	swtpm_stop(&tpm_b);
	assert_int_equal(wfs_tpm2_unseal(tcti, &s, got, err, sizeof(err)), -ENODEV);
	one_line(err);
	assert_non_null(strstr(err, "cannot reach the TPM at 'swtpm:"));
	assert_int_equal(wfs_tpm2_seal_new(tcti, 0, got, &g, err, sizeof(err)), -ENODEV);
	assert_int_equal(g.publen, 0); /* nothing half made */
	assert_int_equal(wfs_tpm2_unseal("device:/nonexistent/tpmrm0", &s, got, err, sizeof(err)),
			 -ENODEV);
	assert_string_equal(err, "no TPM on this machine ('/nonexistent/tpmrm0' does not exist)");
	/* garbled blobs: refused before the TPM, or by its integrity check */
	g = s;
	g.pub[4] ^= 0xff; /* the public area's type */
	assert_int_equal(wfs_tpm2_unseal(tpm_a.tcti, &g, got, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "the sealed key stored in the slot is garbled");
	g = s;
	g.priv[g.privlen - 1] ^= 1;
	assert_int_equal(wfs_tpm2_unseal(tpm_a.tcti, &g, got, err, sizeof(err)), -EXDEV);
	g = s;
	g.pub[g.publen - 1] ^= 1; /* the unique field: another name */
	assert_int_equal(wfs_tpm2_unseal(tpm_a.tcti, &g, got, err, sizeof(err)), -EXDEV);
	/* PCRs that are not there */
	assert_int_equal(wfs_tpm2_seal_new(tpm_a.tcti, 1u << 24, got, &g, err, sizeof(err)),
			 -EINVAL);
	/* and the good one still opens */
	assert_int_equal(wfs_tpm2_unseal(tpm_a.tcti, &s, got, err, sizeof(err)), 0);
	assert_memory_equal(sec, got, 32);
	wfs_secure_free(sec);
	wfs_secure_free(got);
}

/* Counts copies of the 32 bytes at needle (outside skip) in the heap and
 * the stack. */
static int copies(const uint8_t *needle, const uint8_t *skip)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int hits = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		/* "START-END PERMS ...", the addresses in hex */
		char *end;
		unsigned long a = strtoul(line, &end, 16), b;

		if (*end != '-')
			continue;
		b = strtoul(end + 1, &end, 16);
		if (strncmp(end, " rw", 3) != 0 ||
		    (strstr(line, "[heap]") == NULL && strstr(line, "[stack]") == NULL))
			continue;
		for (const uint8_t *p = (const uint8_t *)a; p + 32 <= (const uint8_t *)b; p++)
			if (p != skip && p[0] == needle[0] && memcmp(p, needle, 32) == 0)
				hits++;
	}
	fclose(f);
	return hits;
}

/* A seal (unseal false) or an unseal in a frame of its own, bound to PCRs
 * (a policy session) or not (an HMAC session). */
__attribute__((noinline)) static void tpm_op(bool unseal, uint32_t pcrs, uint8_t *sec, uint8_t *got,
					     struct wfs_tpm2_seal *s)
{
	char err[256];

	if (!unseal)
		assert_int_equal(wfs_tpm2_seal_new(tpm_a.tcti, pcrs, sec, s, err, sizeof(err)), 0);
	else
		assert_int_equal(wfs_tpm2_unseal(tpm_a.tcti, s, got, err, sizeof(err)), 0);
}

/* The same, 32 KiB deeper on the stack than the search will reach with
 * its own calls (fopen, fgets), so that what was left there would still
 * be there to find. */
__attribute__((noinline)) static void tpm_op_deep(bool unseal, uint32_t pcrs, uint8_t *sec,
						  uint8_t *got, struct wfs_tpm2_seal *s)
{
	uint8_t pad[32 * 1024];

	memset(pad, 0, sizeof(pad));
	__asm__ volatile("" : : "r"(pad) : "memory");
	tpm_op(unseal, pcrs, sec, got, s);
	__asm__ volatile("" : : "r"(pad) : "memory");
}

/* Copies of the secret in sec outside locked memory: the search looks for
 * it made again from a copy that is not itself, so it finds only what
 * tpm2-tss, OpenSSL or tpm2.c left behind. */
static int copies_of(const uint8_t *sec)
{
	static uint8_t flipped[32];
	uint8_t needle[32];
	int n;

	for (int i = 0; i < 32; i++)
		flipped[i] = (uint8_t)(sec[i] ^ 0xff);
	for (int i = 0; i < 32; i++)
		needle[i] = (uint8_t)(flipped[i] ^ 0xff);
	n = copies(needle, needle);
	sodium_memzero(needle, sizeof(needle));
	return n;
}

static void test_no_copies_left(void **state)
{
	uint8_t *sec = wfs_secure_alloc(32), *got = wfs_secure_alloc(32);
	struct wfs_tpm2_seal s;

	(void)state;
	need_tpm();
	if (SANITIZED) {
		wfs_secure_free(sec);
		wfs_secure_free(got);
		skip();
	}
	for (uint32_t pcrs = 0; pcrs <= 1u << 7; pcrs += 1u << 7) {
		tpm_op_deep(false, pcrs, sec, got, &s);
		assert_int_equal(copies_of(sec), 0); /* after a seal (key add) */
		tpm_op_deep(true, pcrs, sec, got, &s);
		assert_memory_equal(sec, got, 32);
		assert_int_equal(copies_of(sec), 0); /* after an unseal (every unlock) */
	}
	wfs_secure_free(sec);
	wfs_secure_free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_no_copies_left),
	};

	assert_int_equal(wfs_crypto_init(), 0);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}

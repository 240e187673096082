/*
 * journal.c - the crash-safe record journal: a file mapped MAP_SHARED
 * (header page + ring). A record written to the mapping survives a SIGKILL
 * of the daemon because the kernel keeps the dirty pages of a shared file
 * mapping. Positions are monotonic 64-bit offsets; ring index = pos % cap.
 *
 * Record (8-aligned, every 8-byte word contiguous in the ring):
 *   u32 commit (AUD_JREC_MAGIC once complete) | u32 len | u64 seq |
 *   u32 crc32(payload) | u32 plen | payload | pad to 8
 * A producer claims its space and seq first (audit.c), then writes len,
 * seq, payload and, last, commit. Free space is always zero, so a scan
 * stops at len == 0. After a crash a record without its commit word is torn
 * (its caller never returned) and is skipped using len; one killed between
 * its claim and its len store left a hole of zeros, and replay looks past
 * it for the records claimed after it.
 *
 * The header keeps the consumed position (off, last drained seq) in two
 * checked slots written alternately, so a kill mid-update leaves the older
 * slot valid; replaying from an older slot is harmless because the db keeps
 * each journal's drained seq.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_internal.h"

#define HDR_SIZE 4096u
static const char jmagic[8] = {'W', 'F', 'S', 'A', 'J', 'N', 'L', 1};

struct jslot {
	uint64_t off, seq, check;
};

struct jhdr {
	char magic[8];
	uint32_t version, hdr_size;
	uint64_t cap;
	int64_t id;
	struct jslot slot[2];
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ull;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dull;
	x ^= x >> 33;
	return x;
}

static uint64_t slot_check(const struct jhdr *h, uint64_t off, uint64_t seq)
{
	return mix(off ^ mix(seq ^ mix((uint64_t)h->id ^ 0x5741524446534a4eull)));
}

static struct jhdr *hdr(struct aud_journal *j)
{
	return (struct jhdr *)j->map;
}

static void write_slot(struct aud_journal *j, unsigned k, uint64_t off, uint64_t seq)
{
	struct jhdr *h = hdr(j);
	h->slot[k].check = 0;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	h->slot[k].off = off;
	h->slot[k].seq = seq;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	h->slot[k].check = slot_check(h, off, seq);
}

static int map_file(struct aud_journal *j, size_t len)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, j->fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	j->map = m;
	j->map_len = len;
	return 0;
}

static int init_file(struct aud_journal *j, uint64_t cap)
{
	if (ftruncate(j->fd, 0) < 0)
		return -errno;
	/* Allocate the blocks now: a store into a hole on a full fs is SIGBUS. */
	int r = posix_fallocate(j->fd, 0, (off_t)(HDR_SIZE + cap));
	if (r)
		return -r;
	if ((r = map_file(j, HDR_SIZE + cap)))
		return r;
	struct jhdr *h = hdr(j);
	int64_t id;
	if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id)
		return -EIO;
	id &= INT64_MAX;
	/* No memset: the file was just cut to 0 and allocated, so it reads as
	 * zeros (free space must be zero), and a memset would dirty, and write
	 * back, every page of the ring at each mount. */
	h->version = 1;
	h->hdr_size = HDR_SIZE;
	h->cap = cap;
	h->id = id ? id : 1;
	write_slot(j, 0, 0, 0);
	write_slot(j, 1, 0, 0);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memcpy(h->magic, jmagic, sizeof jmagic);
	return 0;
}

int aud_journal_open(struct aud_journal *j, const char *path, uint64_t cap, char *err,
		     size_t errlen)
{
	memset(j, 0, sizeof *j);
	j->fd = -1;
	err[0] = 0;
	cap = (cap + 4095) & ~(uint64_t)4095;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot open audit journal '%s': %s", path, strerror(e));
		return -e;
	}
	j->fd = fd;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno == EWOULDBLOCK ? EBUSY : errno;
		snprintf(err, errlen, "audit journal '%s' is in use", path);
		aud_journal_close(j);
		return -e;
	}
	struct stat st;
	int r = fstat(fd, &st) < 0 ? -errno : 0;
	if (!r && st.st_size >= (off_t)HDR_SIZE) {
		r = map_file(j, (size_t)st.st_size);
		if (!r) {
			struct jhdr *h = hdr(j);
			bool blank = true;
			for (size_t i = 0; i < sizeof *h; i++)
				blank &= j->map[i] == 0;
			bool ok = !memcmp(h->magic, jmagic, sizeof jmagic) && h->version == 1 &&
				  h->hdr_size == HDR_SIZE && h->cap >= 4096 && h->cap % 8 == 0 &&
				  h->cap + HDR_SIZE == (uint64_t)st.st_size;
			if (ok) {
				j->cap = h->cap;
				j->id = h->id;
				j->ring = j->map + HDR_SIZE;
				uint64_t off, seq;
				aud_journal_consumed(j, &off, &seq);
				j->next_slot = (h->slot[0].seq == seq && h->slot[0].off == off &&
						h->slot[0].check == slot_check(h, off, seq))
						       ? 1
						       : 0;
				return 0;
			}
			munmap(j->map, j->map_len);
			j->map = NULL;
			if (!blank) {
				/* Keep it for a human; start a fresh journal. */
				char aside[4200];
				snprintf(aside, sizeof aside, "%s.corrupt", path);
				if (rename(path, aside) == 0) {
					snprintf(err, errlen,
						 "audit journal '%s' was damaged; moved to '%s'",
						 path, aside);
					close(fd);
					j->fd = -1;
					char e2[256];
					return aud_journal_open(j, path, cap, e2, sizeof e2);
				}
			}
		}
	}
	if (!r)
		r = init_file(j, cap);
	if (r) {
		snprintf(err, errlen, "cannot create audit journal '%s': %s", path, strerror(-r));
		aud_journal_close(j);
		return r;
	}
	j->cap = cap;
	j->id = hdr(j)->id;
	j->ring = j->map + HDR_SIZE;
	j->next_slot = 0;
	return 0;
}

void aud_journal_close(struct aud_journal *j)
{
	if (j->map)
		munmap(j->map, j->map_len);
	if (j->fd >= 0)
		close(j->fd); /* releases the flock */
	j->map = NULL;
	j->fd = -1;
}

void aud_journal_consumed(struct aud_journal *j, uint64_t *off, uint64_t *seq)
{
	struct jhdr *h = hdr(j);
	*off = *seq = 0;
	bool found = false;
	for (int k = 0; k < 2; k++) {
		struct jslot s = h->slot[k];
		if (s.check != slot_check(h, s.off, s.seq))
			continue;
		if (!found || s.seq > *seq || (s.seq == *seq && s.off > *off)) {
			*off = s.off;
			*seq = s.seq;
			found = true;
		}
	}
}

void aud_journal_set_consumed(struct aud_journal *j, uint64_t off, uint64_t seq)
{
	write_slot(j, j->next_slot, off, seq);
	j->next_slot ^= 1;
}

void aud_ring_write(struct aud_journal *j, uint64_t pos, const void *src, size_t n)
{
	size_t o = (size_t)(pos % j->cap), first = n < j->cap - o ? n : j->cap - o;
	memcpy(j->ring + o, src, first);
	if (n > first)
		memcpy(j->ring, (const char *)src + first, n - first);
}

void aud_ring_read(const struct aud_journal *j, uint64_t pos, void *dst, size_t n)
{
	size_t o = (size_t)(pos % j->cap), first = n < j->cap - o ? n : j->cap - o;
	memcpy(dst, j->ring + o, first);
	if (n > first)
		memcpy((char *)dst + first, j->ring, n - first);
}

void aud_journal_zero(struct aud_journal *j, uint64_t from, uint64_t to)
{
	while (from < to) {
		size_t o = (size_t)(from % j->cap), n = j->cap - o;
		if (n > to - from)
			n = (size_t)(to - from);
		memset(j->ring + o, 0, n);
		from += n;
	}
}

static uint32_t *word32(struct aud_journal *j, uint64_t pos)
{
	return (uint32_t *)(j->ring + pos % j->cap);
}

void aud_jrec_reserve(struct aud_journal *j, uint64_t pos, uint32_t len, uint64_t seq)
{
	/* len first: once it is there, replay can step over the record. */
	__atomic_store_n(word32(j, pos + 4), len, __ATOMIC_RELEASE);
	__atomic_store_n((uint64_t *)(j->ring + (pos + 8) % j->cap), seq, __ATOMIC_RELEASE);
}

void aud_jrec_commit(struct aud_journal *j, uint64_t pos, const void *payload, size_t plen)
{
	uint32_t w[2] = {aud_crc32(payload, plen), (uint32_t)plen};
	aud_ring_write(j, pos + 16, w, sizeof w);
	aud_ring_write(j, pos + AUD_JREC_HDR, payload, plen);
	__atomic_store_n(word32(j, pos), AUD_JREC_MAGIC, __ATOMIC_RELEASE);
}

/* After a crash: the first record header after the hole at pos, before end
 * and within AUD_JHOLE_SCAN; 0 if there is none. */
static uint64_t past_hole(struct aud_journal *j, uint64_t pos, uint64_t end)
{
	uint64_t stop = pos + AUD_JHOLE_SCAN < end ? pos + AUD_JHOLE_SCAN : end;
	for (uint64_t p = pos + 8; p + AUD_JREC_HDR <= stop; p += 8)
		if (__atomic_load_n(word32(j, p + 4), __ATOMIC_ACQUIRE))
			return p; /* a len: headers are written from len on */
	return 0;
}

int aud_jrec_read(struct aud_journal *j, uint64_t pos, uint64_t expect_seq, uint64_t end,
		  bool crashed, struct aud_buf *scratch, struct aud_jrec *r)
{
	memset(r, 0, sizeof *r);
	uint32_t len = __atomic_load_n(word32(j, pos + 4), __ATOMIC_ACQUIRE);
	if (len == 0 && crashed) {
		uint64_t next = past_hole(j, pos, end);
		if (!next)
			return 0;
		pos = next;
		len = __atomic_load_n(word32(j, pos + 4), __ATOMIC_ACQUIRE);
		r->hole = true;
	}
	if (len == 0)
		return 0;
	if (len < AUD_JREC_HDR || len > j->cap || len % 8)
		return crashed ? 0 : -1;
	uint32_t commit = __atomic_load_n(word32(j, pos), __ATOMIC_ACQUIRE);
	if (commit != AUD_JREC_MAGIC && !crashed)
		return 0; /* claimed, the producer is still writing it */
	uint64_t seq =
		__atomic_load_n((uint64_t *)(j->ring + (pos + 8) % j->cap), __ATOMIC_ACQUIRE);
	r->pos = pos;
	r->len = len;
	if (commit != AUD_JREC_MAGIC) {
		/* Torn: its seq may not be written yet. */
		r->seq = seq > expect_seq ? seq : expect_seq;
		return 1;
	}
	/* Past a hole the seqs of the holes are missing: later is fine. */
	if (seq != expect_seq && !(r->hole && seq > expect_seq))
		return crashed ? 0 : -1;
	r->seq = seq;
	uint32_t w[2];
	aud_ring_read(j, pos + 16, w, sizeof w);
	if (w[1] > len - AUD_JREC_HDR)
		return 1;
	size_t o = (size_t)((pos + AUD_JREC_HDR) % j->cap);
	if (o + w[1] <= j->cap) {
		r->payload = j->ring + o;
	} else {
		scratch->len = 0;
		if (aud_buf_reserve(scratch, w[1]))
			return -1;
		aud_ring_read(j, pos + AUD_JREC_HDR, scratch->p, w[1]);
		r->payload = scratch->p;
	}
	r->plen = w[1];
	r->valid = aud_crc32(r->payload, r->plen) == w[0];
	return 1;
}

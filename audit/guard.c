/*
 * guard.c - keeps a SIGBUS in the audit's file mappings from killing the
 * daemon (issue 22.7).
 *
 * Two mappings of files that admins can touch are written through memory:
 * the journal (by every thread that records a row) and SQLite's -shm, the
 * WAL index, which SQLite maps MAP_SHARED in every process that uses the
 * db, and which readers (`wardfs audit query`, sqlite3) need. A store into
 * a page of such a mapping that has been written back faults, and when the
 * file was made immutable (`chattr +i`) or truncated under the mapping the
 * kernel answers with SIGBUS: without a handler the whole daemon dies and
 * every process on the mount gets ENOTCONN.
 *
 * The other ways out are worse: keeping the WAL index in heap memory
 * (locking_mode=EXCLUSIVE, the unix-excl VFS) locks every reader out of
 * the db while mounted; a rollback journal instead of WAL makes a long
 * query block the writer (and closed mode refuse opens). So the daemon
 * keeps WAL and survives the fault instead: the writer checks the files'
 * attributes before each transaction (writer.c), which catches nearly every
 * case with a clear message, and this handler covers the rest (a chattr
 * between the check and the store, a truncated file).
 *
 * The handler replaces the faulting page with a private anonymous copy of
 * it, so the faulting store completes in memory that never reaches the
 * file, and counts the fault. That is only sound where the caller then
 * treats the mapping as lost: a fault in the writer thread (SQLite's -shm)
 * makes the writer fail its transaction and reopen its connection (the rows
 * stay in the journal; the db's per-journal drained seq keeps the replay
 * exactly-once); a fault in a registered range (the journal) marks the
 * journal unsafe until remount. Any other SIGBUS goes to the previous
 * disposition (by default: the process dies, as before).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "audit_internal.h"

#define MAX_RANGES 16

static struct {
	_Atomic uintptr_t start, end;
	_Atomic unsigned *faults;
} ranges[MAX_RANGES];

static struct sigaction old_action;
static long page_size;
static __thread bool guarded;		/* this thread's SIGBUS is the caller's to handle */
static __thread unsigned thread_faults; /* faults taken while guarded */

/*
 * Replaces the page holding addr with a private copy of what it holds (a
 * page that cannot be read, past the end of a truncated file, becomes
 * zeros). The copy is made into a fresh anonymous page by the kernel
 * (process_vm_readv returns EFAULT instead of faulting again), then moved
 * over the faulting page in one mremap. All system calls: no locks, no
 * malloc, safe in a signal handler.
 */
static int replace_page(uintptr_t addr)
{
	uintptr_t page = addr & ~((uintptr_t)page_size - 1);
	void *tmp = mmap(NULL, (size_t)page_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (tmp == MAP_FAILED)
		return -1;
	struct iovec local = {tmp, (size_t)page_size};
	struct iovec remote = {(void *)page, (size_t)page_size};
	(void)process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	if (mremap(tmp, (size_t)page_size, (size_t)page_size, MREMAP_MAYMOVE | MREMAP_FIXED,
		   (void *)page) == MAP_FAILED) {
		munmap(tmp, (size_t)page_size);
		return -1;
	}
	return 0;
}

static void pass_on(int sig, siginfo_t *si, void *uc)
{
	if (old_action.sa_flags & SA_SIGINFO) {
		old_action.sa_sigaction(sig, si, uc);
		return;
	}
	if (old_action.sa_handler != SIG_DFL && old_action.sa_handler != SIG_IGN) {
		old_action.sa_handler(sig);
		return;
	}
	/* Default: back to it, and the faulting instruction runs again. */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGBUS, &dfl, NULL);
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	uintptr_t addr = (uintptr_t)si->si_addr;
	_Atomic unsigned *counter = NULL;
	for (int i = 0; i < MAX_RANGES && !counter; i++)
		if (addr >= atomic_load(&ranges[i].start) && addr < atomic_load(&ranges[i].end))
			counter = ranges[i].faults;
	bool ours = counter || guarded;
	if (!ours || si->si_code <= 0 || replace_page(addr) < 0) {
		pass_on(sig, si, uc);
		errno = saved;
		return;
	}
	if (counter)
		atomic_fetch_add(counter, 1);
	if (guarded)
		thread_faults++;
	errno = saved;
}

/*
 * Installs the handler unless it is the one in place, keeping the previous
 * one for the faults that are not ours. Called at every audit open, so a
 * handler someone else installed since (a test harness) is chained, not
 * left to take the audit's faults.
 */
void aud_guard_install(void)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&lock);
	struct sigaction cur;
	if (sigaction(SIGBUS, NULL, &cur) == 0 &&
	    !((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigbus)) {
		page_size = sysconf(_SC_PAGESIZE);
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = on_sigbus;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGBUS, &sa, &old_action);
	}
	pthread_mutex_unlock(&lock);
}

void aud_guard_thread(bool on)
{
	guarded = on;
}

unsigned aud_guard_thread_faults(void)
{
	return thread_faults;
}

int aud_guard_add(const void *p, size_t len, _Atomic unsigned *faults)
{
	for (int i = 0; i < MAX_RANGES; i++) {
		uintptr_t none = 0;
		/* claim a free slot by its end, then publish start */
		if (atomic_compare_exchange_strong(&ranges[i].end, &none, 1)) {
			ranges[i].faults = faults;
			atomic_store(&ranges[i].start, (uintptr_t)p);
			atomic_store(&ranges[i].end, (uintptr_t)p + len);
			return 0;
		}
	}
	return -ENOSPC;
}

void aud_guard_remove(const void *p)
{
	for (int i = 0; i < MAX_RANGES; i++)
		if (atomic_load(&ranges[i].start) == (uintptr_t)p &&
		    atomic_load(&ranges[i].end) > 1) {
			atomic_store(&ranges[i].start, 0);
			ranges[i].faults = NULL;
			atomic_store(&ranges[i].end, 0);
		}
}

/*
 * parallel.c - splits the blocks of one large request between the calling
 * thread and one helper thread, so that a single sequential reader or
 * writer (cp, tar, a database dump) keeps two cores busy with AES-GCM
 * instead of one. Small requests, single-CPU machines, and requests that
 * find the helper busy with another thread's job run on the caller alone:
 * the split is an optimisation and never makes anyone wait for it.
 *
 * Lock order: job_lock (owns the helper for one job) -> state_lock.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <unistd.h>

#include "crypto_internal.h"

static struct {
	pthread_mutex_t job_lock;   /* held by the thread whose job the helper runs */
	pthread_mutex_t state_lock; /* guards everything below */
	pthread_cond_t cv;
	pthread_t thread;
	pid_t owner; /* process that started the helper (0: none); a fork has none */
	bool posted, done, quit;
	wfs_range_fn fn;
	void *arg;
	size_t lo, hi;
	int result;
} H = {
	.job_lock = PTHREAD_MUTEX_INITIALIZER,
	.state_lock = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
};

static void *helper_main(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&H.state_lock);
	for (;;) {
		while (!H.posted && !H.quit)
			pthread_cond_wait(&H.cv, &H.state_lock);
		if (H.quit)
			break;
		H.posted = false;
		pthread_mutex_unlock(&H.state_lock);
		int r = H.fn(H.arg, H.lo, H.hi);
		pthread_mutex_lock(&H.state_lock);
		H.result = r;
		H.done = true;
		pthread_cond_broadcast(&H.cv);
	}
	pthread_mutex_unlock(&H.state_lock);
	return NULL; /* the thread's cipher contexts are wiped by their destructor */
}

/* Called with job_lock held: is there a helper in this process? */
static bool helper_ready(void)
{
	if (H.owner == getpid())
		return true;
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return false;
	if (H.owner != 0) {
		/* A child of fork: the helper stayed with the parent, and the
		 * parent's lock state may have come along mid-job. */
		pthread_mutex_init(&H.state_lock, NULL);
		pthread_cond_init(&H.cv, NULL);
		H.owner = 0;
	}
	/* The helper takes no signals: they belong to the daemon's threads. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	H.posted = H.done = H.quit = false;
	int r = pthread_create(&H.thread, NULL, helper_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return false;
	H.owner = getpid();
	return true;
}

int wfs__par_range(size_t n, size_t min_split, wfs_range_fn fn, void *arg)
{
	if (n < min_split || n < 2 || pthread_mutex_trylock(&H.job_lock) != 0)
		return fn(arg, 0, n);
	if (!helper_ready()) {
		pthread_mutex_unlock(&H.job_lock);
		return fn(arg, 0, n);
	}
	size_t mid = n / 2;
	pthread_mutex_lock(&H.state_lock);
	H.fn = fn;
	H.arg = arg;
	H.lo = mid;
	H.hi = n;
	H.done = false;
	H.posted = true;
	pthread_cond_broadcast(&H.cv);
	pthread_mutex_unlock(&H.state_lock);

	int r = fn(arg, 0, mid);

	pthread_mutex_lock(&H.state_lock);
	while (!H.done)
		pthread_cond_wait(&H.cv, &H.state_lock);
	int r2 = H.result;
	pthread_mutex_unlock(&H.state_lock);
	pthread_mutex_unlock(&H.job_lock);
	return r != 0 ? r : r2;
}

void wfs__par_stop(void)
{
	pthread_mutex_lock(&H.job_lock);
	if (H.owner == getpid()) {
		pthread_mutex_lock(&H.state_lock);
		H.quit = true;
		pthread_cond_broadcast(&H.cv);
		pthread_mutex_unlock(&H.state_lock);
		pthread_join(H.thread, NULL);
		H.owner = 0;
	}
	pthread_mutex_unlock(&H.job_lock);
}

/*
 * thread_state.c - the list of every thread's crypto state (aead.c's
 * cipher contexts and scratch, names.c's SIV state), so that
 * wfs_crypto_forget can wipe them all at once when a running daemon is
 * locked (`wardfs lock`), not only as each thread ends.
 */
#include <pthread.h>

#include "crypto_internal.h"

static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct wfs__tstate *head;

void wfs__tstate_add(struct wfs__tstate *s)
{
	pthread_mutex_lock(&list_lock);
	s->prev = NULL;
	s->next = head;
	if (head)
		head->prev = s;
	head = s;
	pthread_mutex_unlock(&list_lock);
}

void wfs__tstate_remove(struct wfs__tstate *s)
{
	pthread_mutex_lock(&list_lock);
	if (s->prev)
		s->prev->next = s->next;
	else if (head == s)
		head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	pthread_mutex_unlock(&list_lock);
}

void wfs_crypto_forget(void)
{
	pthread_mutex_lock(&list_lock);
	for (struct wfs__tstate *s = head; s; s = s->next)
		s->forget(s);
	pthread_mutex_unlock(&list_lock);
}

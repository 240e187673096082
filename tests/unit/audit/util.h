/*
 * util.h - helpers shared by the audit unit tests: temp dirs, sample
 * events, and plain-SQL access to the db (for checks and tampering).
 */
#ifndef WFS_AUDIT_TEST_UTIL_H
#define WFS_AUDIT_TEST_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "audit.h"

struct tenv {
	char dir[96];
	char db[192];
};

void tenv_init(struct tenv *t);
void tenv_fini(struct tenv *t);
/* cmocka fixtures: *state becomes a fresh struct tenv, then is removed. */
int tenv_setup(void **state);
int tenv_teardown(void **state);
struct wfs_audit *topen(const struct tenv *t, const char *mount, bool fail_open,
			unsigned journal_kib);
/* A fully populated event; path "/f/<i>", pid 1000+i. */
struct wfs_audit_event tevent(int i, char *pathbuf, size_t len);
int64_t sql_int(const char *db, const char *sql);
int sql_exec(const char *db, const char *sql);
/* Waits until every accepted record is in the db (up to 5 s). */
bool drained(struct wfs_audit *a);
int64_t now_ns(void);

#endif

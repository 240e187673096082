/*
 * paths.c - the writer's path -> paths.id lookup (schema v3): each distinct
 * path is one row of `paths`, found or added inside the writer's
 * transaction, with a direct-mapped cache in front so that the files a home
 * opens again and again cost no SQL at all.
 *
 * The cache must never hand out an id the db does not hold. Two things
 * remove ids: a rollback of the writer's own transaction (the cache is
 * cleared on every failed batch), and `wardfs audit prune` deleting paths
 * no row uses any more. Prune always moves the anchor's pruned_to in the
 * transaction that deletes them, so the writer compares it at the start of
 * each batch and starts afresh when it moved.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "audit_internal.h"

#define CACHE_SLOTS 16384 /* a power of two */

struct aud_path_slot {
	uint64_t hash;
	int64_t id;
	uint32_t len;
	char *path; /* NULL: empty slot */
};

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

int aud_paths_prepare(struct wfs_audit *a)
{
	static const char *sql[] = {
		"SELECT id FROM paths WHERE path = ?",
		"INSERT INTO paths (path, rpath) VALUES (?, ?)",
		"SELECT coalesce(max(pruned_to), 0) FROM anchors",
	};
	sqlite3_stmt **st[] = {&a->st_pget, &a->st_pins, &a->st_pgen};
	for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
		int rc = sqlite3_prepare_v3(a->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, st[i],
					    NULL);
		if (rc)
			return rc;
	}
	a->pcache = calloc(CACHE_SLOTS, sizeof *a->pcache);
	return a->pcache ? SQLITE_OK : SQLITE_NOMEM;
}

void aud_paths_clear(struct wfs_audit *a)
{
	if (!a->pcache)
		return;
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		free(a->pcache[i].path);
		a->pcache[i].path = NULL;
	}
}

void aud_paths_finalize(struct wfs_audit *a)
{
	sqlite3_stmt **st[] = {&a->st_pget, &a->st_pins, &a->st_pgen};
	for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
		sqlite3_finalize(*st[i]);
		*st[i] = NULL;
	}
	aud_paths_clear(a);
	free(a->pcache);
	a->pcache = NULL;
}

int aud_paths_begin(struct wfs_audit *a)
{
	int rc = sqlite3_step(a->st_pgen);
	int64_t gen = rc == SQLITE_ROW ? sqlite3_column_int64(a->st_pgen, 0) : 0;
	sqlite3_reset(a->st_pgen);
	if (rc != SQLITE_ROW)
		return rc;
	if (gen != a->pcache_gen) {
		aud_paths_clear(a);
		a->pcache_gen = gen;
	}
	return SQLITE_OK;
}

static int lookup(struct wfs_audit *a, const char *path, uint32_t len, int64_t *id)
{
	sqlite3_stmt *st = a->st_pget;
	sqlite3_bind_text(st, 1, path, (int)len, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? SQLITE_NOTFOUND : rc;
	return SQLITE_OK;
}

static int add(struct wfs_audit *a, const char *path, uint32_t len, int64_t *id)
{
	if (aud_buf_reserve(&a->rpath, len + 1))
		return SQLITE_NOMEM;
	aud_reverse_bytes((char *)a->rpath.p, path, len);
	sqlite3_stmt *st = a->st_pins;
	sqlite3_bind_text(st, 1, path, (int)len, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, (const char *)a->rpath.p, (int)len, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return rc;
	*id = sqlite3_last_insert_rowid(a->db);
	return SQLITE_OK;
}

int aud_paths_id(struct wfs_audit *a, const char *path, uint32_t len, int64_t *id)
{
	uint64_t h = fnv1a(path, len);
	struct aud_path_slot *s = &a->pcache[h & (CACHE_SLOTS - 1)];
	if (s->path && s->hash == h && s->len == len && !memcmp(s->path, path, len)) {
		*id = s->id;
		return SQLITE_OK;
	}
	int rc = lookup(a, path, len, id);
	if (rc == SQLITE_NOTFOUND)
		rc = add(a, path, len, id);
	if (rc)
		return rc;
	char *copy = malloc(len ? len : 1);
	if (!copy)
		return SQLITE_OK; /* the id is right; it is just not cached */
	memcpy(copy, path, len);
	free(s->path);
	*s = (struct aud_path_slot){h, *id, len, copy};
	return SQLITE_OK;
}

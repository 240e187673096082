/*
 * load.c - loading policies: reading files (with sshd-style ownership
 * checks), resolving includes (relative paths, globs, cycles), hashing the
 * sources, and the public entry points that build and free a policy.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Reports a file-level problem: at the include line when there is one,
 * else against the file itself (line 0). */
#define FILE_ERR(L, path, wf, wl, wc, ...)                                                         \
	do {                                                                                       \
		if (wf)                                                                            \
			pol_diag(&(L)->diag, true, wf, wl, wc, __VA_ARGS__);                       \
		else                                                                               \
			pol_diag(&(L)->diag, true, path, 0, 0, __VA_ARGS__);                       \
	} while (0)

static int read_all(int fd, char **out, size_t *outlen)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			if (cap > POL_MAX_FILE) {
				free(buf);
				return -EFBIG;
			}
			char *b = realloc(buf, cap * 2);
			if (!b) {
				free(buf);
				return -ENOMEM;
			}
			buf = b;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = -errno;
			free(buf);
			return e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > POL_MAX_FILE) {
		free(buf);
		return -EFBIG;
	}
	*out = buf;
	*outlen = n;
	return 0;
}

/* Remembers a source (a file read, or a directory an include glob looked
 * in) for wfs_policy_sources; path is copied into the arena. */
static void add_source(struct pol_loader *L, const char *path, size_t len, bool is_dir)
{
	struct wfs_policy *p = L->p;
	for (size_t i = 0; i < p->nsources; i++)
		if (p->sources[i].is_dir == is_dir && strlen(p->sources[i].path) == len &&
		    !memcmp(p->sources[i].path, path, len))
			return;
	if (p->nsources == p->capsources) {
		size_t cap = p->capsources ? 2 * p->capsources : 8;
		struct wfs_policy_source *v = realloc(p->sources, cap * sizeof(*v));
		if (!v) {
			L->oom = true;
			return;
		}
		p->sources = v;
		p->capsources = cap;
	}
	const char *s = pol_arena_strndup(&p->arena, path, len);
	if (!s) {
		L->oom = true;
		return;
	}
	p->sources[p->nsources++] = (struct wfs_policy_source){.path = s, .is_dir = is_dir};
}

int pol_load_file(struct pol_loader *L, const char *path, const char *wf, unsigned wl, unsigned wc)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT) {
			if (wf)
				pol_diag(&L->diag, true, wf, wl, wc,
					 "missing include '%s': no such file; expected an existing "
					 "file or a glob",
					 path);
			else
				pol_diag(&L->diag, true, path, 0, 0,
					 "cannot open policy: no such file or directory");
			return -ENOENT;
		}
		FILE_ERR(L, path, wf, wl, wc, "cannot open '%s': %s", path, strerror(e));
		return -1;
	}
	struct stat st;
	int rc = -1;
	char *buf = NULL;
	size_t len = 0;
	if (fstat(fd, &st)) {
		FILE_ERR(L, path, wf, wl, wc, "cannot stat '%s': %s", path, strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		FILE_ERR(L, path, wf, wl, wc, "'%s' is a directory; expected a policy file", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		FILE_ERR(L, path, wf, wl, wc, "'%s' is not a regular file; expected a policy file",
			 path);
		goto out;
	}
	if (L->flags & WFS_POLICY_STRICT_OWNER) {
		if (st.st_uid != 0) {
			FILE_ERR(L, path, wf, wl, wc,
				 "refusing '%s': owned by uid %u; expected a file owned by root",
				 path, (unsigned)st.st_uid);
			goto out;
		}
		if (st.st_mode & (S_IWGRP | S_IWOTH)) {
			FILE_ERR(L, path, wf, wl, wc,
				 "refusing '%s': writable by %s (mode %04o); expected a file only "
				 "root can write, such as mode 0644",
				 path,
				 (st.st_mode & S_IWGRP) && (st.st_mode & S_IWOTH)
					 ? "group and others"
				 : (st.st_mode & S_IWGRP) ? "group"
							  : "others",
				 (unsigned)(st.st_mode & 07777));
			goto out;
		}
	}
	for (unsigned i = 0; i < L->depth; i++) {
		if (L->chain[i].dev != st.st_dev || L->chain[i].ino != st.st_ino)
			continue;
		char chain[1024];
		size_t o = 0;
		for (unsigned k = i; k < L->depth && o < sizeof(chain); k++)
			o += (size_t)snprintf(chain + o, sizeof(chain) - o, "%s -> ",
					      L->chain[k].name);
		if (o < sizeof(chain))
			snprintf(chain + o, sizeof(chain) - o, "%s", path);
		FILE_ERR(L, path, wf, wl, wc,
			 "include cycle: %s; expected includes that do not lead back to an "
			 "including file",
			 chain);
		goto out;
	}
	if (L->depth >= POL_MAX_DEPTH) {
		FILE_ERR(L, path, wf, wl, wc,
			 "includes nested too deeply at '%s'; expected at most %u levels", path,
			 POL_MAX_DEPTH);
		goto out;
	}
	if (st.st_size > (off_t)POL_MAX_FILE) {
		FILE_ERR(L, path, wf, wl, wc, "'%s' is too large; expected at most %u bytes", path,
			 POL_MAX_FILE);
		goto out;
	}
	int e = read_all(fd, &buf, &len);
	if (e) {
		if (e == -EFBIG)
			FILE_ERR(L, path, wf, wl, wc,
				 "'%s' is too large; expected at most %u bytes", path,
				 POL_MAX_FILE);
		else
			FILE_ERR(L, path, wf, wl, wc, "cannot read '%s': %s", path, strerror(-e));
		goto out;
	}
	const char *name = pol_arena_strndup(&L->p->arena, path, strlen(path));
	if (!name) {
		L->oom = true;
		goto out;
	}
	pol_sha256_update(&L->sha, buf, len);
	add_source(L, name, strlen(name), false);
	L->chain[L->depth++] = (struct pol_chain){.dev = st.st_dev, .ino = st.st_ino, .name = name};
	pol_parse_text(L, name, buf, len);
	L->depth--;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

/* Copies s escaping glob metacharacters, so a directory name is literal. */
static size_t glob_escape(const char *s, char *out, size_t cap)
{
	size_t o = 0;
	for (; *s && o + 2 < cap; s++) {
		if (strchr("*?[]\\", *s))
			out[o++] = '\\';
		out[o++] = *s;
	}
	out[o] = 0;
	return o;
}

void pol_include(struct pol_loader *L, const char *file, unsigned line, unsigned col,
		 const char *raw, size_t rawlen)
{
	char arg[POL_MAX_LINE + 1], full[PATH_MAX * 2 + 2];
	pol_unescape(raw, rawlen, arg);
	bool is_glob = false;
	for (size_t i = 0; i < rawlen; i++) {
		if (raw[i] == '\\')
			i++;
		else if (raw[i] == '*' || raw[i] == '?' || raw[i] == '[')
			is_glob = true;
	}
	/* directory of the including file */
	char dir[PATH_MAX];
	const char *slash = strrchr(file, '/');
	if (arg[0] == '/')
		dir[0] = 0;
	else if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == file)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - file), file);
	size_t dl = strlen(dir);
	const char *sep = dl && dir[dl - 1] != '/' ? "/" : "";
	if (!is_glob) {
		int n = snprintf(full, sizeof(full), "%s%s%s", dir, sep, arg);
		if (n < 0 || (size_t)n >= PATH_MAX) {
			pol_diag(&L->diag, true, file, line, col,
				 "include path is too long; expected at most %d bytes", PATH_MAX);
			return;
		}
		pol_load_file(L, full, file, line, col);
		return;
	}
	size_t o = glob_escape(dir, full, sizeof(full));
	int n = snprintf(full + o, sizeof(full) - o, "%s%.*s", sep, (int)rawlen, raw);
	if (n < 0 || o + (size_t)n >= PATH_MAX) {
		pol_diag(&L->diag, true, file, line, col,
			 "include path is too long; expected at most %d bytes", PATH_MAX);
		return;
	}
	/* The directory the glob lists: up to the last '/' before its first
	 * wildcard (unescaped), where an added file would appear. */
	char plain[PATH_MAX * 2 + 2];
	size_t pl = 0, last_slash = 0;
	for (const char *c = full; *c && pl + 1 < sizeof(plain); c++) {
		if (*c == '\\' && c[1]) {
			plain[pl++] = *++c;
			continue;
		}
		if (*c == '*' || *c == '?' || *c == '[')
			break;
		if (*c == '/')
			last_slash = pl;
		plain[pl++] = *c;
	}
	add_source(L, plain, last_slash ? last_slash : 1, true);
	glob_t g;
	memset(&g, 0, sizeof(g));
	int rc = glob(full, 0, NULL, &g);
	if (rc == GLOB_NOMATCH) {
		globfree(&g);
		return; /* an include glob may match nothing */
	}
	if (rc) {
		if (rc == GLOB_NOSPACE)
			L->oom = true;
		else
			pol_diag(&L->diag, true, file, line, col,
				 "cannot expand include '%s'; expected a readable directory", arg);
		globfree(&g);
		return;
	}
	for (size_t i = 0; i < g.gl_pathc && !L->diag.stopped && !L->oom; i++)
		pol_load_file(L, g.gl_pathv[i], file, line, col);
	globfree(&g);
}

static struct wfs_policy *policy_new(void)
{
	struct wfs_policy *p = calloc(1, sizeof(*p));
	if (p) {
		atomic_init(&p->refs, 1);
		p->def = WFS_PUBLIC;
	}
	return p;
}

const struct wfs_policy *wfs_policy_hold(const struct wfs_policy *p)
{
	if (p)
		atomic_fetch_add(&((struct wfs_policy *)p)->refs, 1);
	return p;
}

void wfs_policy_free(const struct wfs_policy *cp)
{
	/* The count is the one mutable part of a shared policy: const
	 * holders may drop their reference. */
	struct wfs_policy *p = (struct wfs_policy *)cp;
	if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	pol_index_free(&p->ix);
	free(p->rules);
	free(p->sources);
	pol_arena_free(&p->arena);
	free(p);
}

static void loader_init(struct pol_loader *L, struct wfs_policy *p, unsigned flags,
			struct wfs_policy_diags *diags)
{
	memset(L, 0, sizeof(*L));
	L->p = p;
	L->flags = flags;
	L->diag.d = diags;
	pol_sha256_init(&L->sha);
}

/* Final checks, hash and index; frees the policy on any error. */
static int finish(struct pol_loader *L, int rc, const char *top, struct wfs_policy **out)
{
	struct wfs_policy *p = L->p;
	if (!L->oom && !L->diag.nerrors) {
		uint8_t d[32];
		pol_sha256_final(&L->sha, d);
		pol_sha256_hex(d, p->sha_hex);
		if (!p->nrules && !p->has_default)
			pol_diag(&L->diag, false, top, 0, 0,
				 "policy has no rules; every path is public");
		if (pol_compile(p, &L->diag))
			L->oom = true;
	}
	if (L->oom)
		pol_diag(&L->diag, true, top, 0, 0, "out of memory");
	if (L->diag.nerrors) {
		wfs_policy_free(p);
		*out = NULL;
		return rc < 0 ? rc : -1;
	}
	*out = p;
	return 0;
}

unsigned wfs_policy_caller_flags(void)
{
	return geteuid() == 0 ? WFS_POLICY_STRICT_OWNER : 0;
}

int wfs_policy_load(const char *path, unsigned flags, struct wfs_policy **out,
		    struct wfs_policy_diags *diags)
{
	struct pol_loader L;
	*out = NULL;
	struct wfs_policy *p = policy_new();
	if (!p)
		return -ENOMEM;
	loader_init(&L, p, flags, diags);
	p->path = pol_arena_strndup(&p->arena, path, strlen(path));
	if (!p->path)
		L.oom = true;
	int rc = L.oom ? -1 : pol_load_file(&L, path, NULL, 0, 0);
	return finish(&L, rc, path, out);
}

int wfs_policy_parse_buffer(const char *name, const char *buf, size_t len, unsigned flags,
			    struct wfs_policy **out, struct wfs_policy_diags *diags)
{
	struct pol_loader L;
	*out = NULL;
	struct wfs_policy *p = policy_new();
	if (!p)
		return -ENOMEM;
	loader_init(&L, p, flags, diags);
	const char *nm = pol_arena_strndup(&p->arena, name, strlen(name));
	p->path = nm;
	if (!nm) {
		L.oom = true;
	} else if (len > POL_MAX_FILE) {
		pol_diag(&L.diag, true, nm, 0, 0, "policy is too large; expected at most %u bytes",
			 POL_MAX_FILE);
	} else {
		pol_sha256_update(&L.sha, buf, len);
		L.chain[L.depth++] = (struct pol_chain){.dev = 0, .ino = 0, .name = nm};
		pol_parse_text(&L, nm, buf, len);
		L.depth--;
	}
	return finish(&L, 0, name, out);
}

struct wfs_policy *wfs_policy_default(void)
{
	struct wfs_policy *p = policy_new();
	if (!p)
		return NULL;
	struct pol_sha256 s;
	uint8_t d[32];
	pol_sha256_init(&s);
	pol_sha256_final(&s, d);
	pol_sha256_hex(d, p->sha_hex);
	p->path = "";
	if (pol_compile(p, NULL)) {
		wfs_policy_free(p);
		return NULL;
	}
	return p;
}

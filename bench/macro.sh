#!/usr/bin/env bash
# bench/macro.sh - the macro benchmarks (issue 21): what a person does in a
# home, on a Linux kernel source tree: `tar xf`, `ls -lR` cold, `find | xargs
# md5sum` cold, `git init && git add -A && git commit`, `git status` warm and
# cold, `make -j2` of a real C project, `rm -rf`; on ext4, wardfs (public,
# sensitive, the example policy; each with and without --io-uring) and the
# peers gocryptfs and passthrough_hp. Prints one Markdown table (median of
# BENCH_REPEAT runs, ratio to ext4) and, for wardfs, the FUSE requests each
# workload cost (from `wardfs status`), in total and per file.
#
# The sources are Debian's, fetched once with `apt-get source --download-only`
# (deb-src of Debian 12 in a private apt state) into BENCH_CACHE, outside the
# repository, and never committed. Needs root (mounts, drop_caches,
# enable_uring). Leaves nothing mounted, restores enable_uring, removes
# BENCH_DIR. Knobs: docs/benchmarks.md, "Macro benchmarks".
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS_DIR="$ROOT/bench/results"

ALL_SYSTEMS="ext4 wardfs wardfs-uring wardfs-sensitive wardfs-sensitive-uring wardfs-example wardfs-example-uring gocryptfs passthrough_hp"
ALL_WORKLOADS="untar lsr md5 gitcommit gitstatus build rm"

BENCH_DIR=${BENCH_DIR:-/var/tmp/wardfs-macro}
BENCH_CACHE=${BENCH_CACHE:-/var/cache/wardfs-bench}
BENCH_SYSTEMS=${BENCH_SYSTEMS:-$ALL_SYSTEMS}
BENCH_WORKLOADS=${BENCH_WORKLOADS:-$ALL_WORKLOADS}
BENCH_REPEAT=${BENCH_REPEAT:-3}
# A path inside the kernel tree (e.g. Documentation/admin-guide): only that
# part is unpacked and worked on. For validating the script, not a result.
BENCH_MACRO_SUBSET=${BENCH_MACRO_SUBSET:-}
BENCH_KERNEL_PKG=${BENCH_KERNEL_PKG:-linux}
BENCH_BUILD_PKG=${BENCH_BUILD_PKG:-zlib}
BENCH_BUILD_CMD=${BENCH_BUILD_CMD:-"./configure >/dev/null && make -j2"}
BENCH_STEP_TIMEOUT=${BENCH_STEP_TIMEOUT:-3600}
WARDFS=${WARDFS:-$ROOT/build/wardfs}
PASSTHROUGH_HP=${PASSTHROUGH_HP:-$ROOT/deps/libfuse/bin/passthrough_hp}

CUR_MNT="" CUR_PID="" CUR_SYS="" CUR_INST="" TARGET=""

BENCH_NAME=macro
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
is_wardfs() { case $1 in wardfs*) return 0 ;; esac; return 1; }
is_uring() { case $1 in *-uring) return 0 ;; esac; return 1; }

check() {
	[ "$(id -u)" = 0 ] || die "run as root (mounts, drop_caches, enable_uring)"
	local s
	for s in $BENCH_SYSTEMS; do
		case " $ALL_SYSTEMS " in *" $s "*) ;; *) die "unknown system '$s' (known: $ALL_SYSTEMS)" ;; esac
		if is_wardfs "$s"; then
			[ -x "$WARDFS" ] || die "$WARDFS is missing: run 'make' first"
		fi
	done
	for s in $BENCH_WORKLOADS; do
		case " $ALL_WORKLOADS " in *" $s "*) ;; *) die "unknown workload '$s' (known: $ALL_WORKLOADS)" ;; esac
	done
	if want_system passthrough_hp && [ ! -x "$PASSTHROUGH_HP" ]; then
		die "$PASSTHROUGH_HP is missing: run 'make' first"
	fi
	case "$BENCH_DIR" in /*) ;; *) die "BENCH_DIR must be an absolute path" ;; esac
	case "$BENCH_DIR" in *[[:space:]]*) die "BENCH_DIR must not contain white space" ;; esac
	case "$BENCH_MACRO_SUBSET" in *..* | /*) die "BENCH_MACRO_SUBSET must be a relative path inside the tree, not '$BENCH_MACRO_SUBSET'" ;; esac
}

# ---- sources ----------------------------------------------------------------

# fetch PKG: its orig tarball in BENCH_CACHE/src (downloaded once, from
# Debian 12's deb-src through a private apt state: the system's sources are
# neither read nor changed); prints its path.
fetch() {
	local pkg=$1 apt="$BENCH_CACHE/apt" f
	f=$(find "$BENCH_CACHE/src" -maxdepth 1 -name "${pkg}_*.orig.tar.*" ! -name '*.asc' 2>/dev/null | sort -V | tail -n 1)
	if [ -z "$f" ]; then
		log "fetching Debian's source package '$pkg' into $BENCH_CACHE/src"
		mkdir -p "$apt/lists/partial" "$BENCH_CACHE/src"
		echo "deb-src http://deb.debian.org/debian bookworm main" >"$apt/sources.list"
		local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
			-o "Dir::State::Lists=$apt/lists" -o "APT::Sandbox::User=root")
		apt-get -qq "${opts[@]}" update >&2 || die "apt-get update of the deb-src list failed"
		(cd "$BENCH_CACHE/src" && apt-get -qq "${opts[@]}" source --download-only "$pkg" >&2) ||
			die "apt-get source --download-only $pkg failed"
		f=$(find "$BENCH_CACHE/src" -maxdepth 1 -name "${pkg}_*.orig.tar.*" ! -name '*.asc' | sort -V | tail -n 1)
		[ -n "$f" ] || die "apt-get source gave no orig tarball for $pkg"
	fi
	echo "$f"
}

# The kernel tree as an uncompressed tar in BENCH_CACHE (so that `tar xf`
# times the file system, not xz), cut to BENCH_MACRO_SUBSET if set. Sets
# TREE_TAR, TREE_TOP (its top directory) and TREE_FILES (regular files).
prepare_tree() {
	local orig top name
	orig=$(fetch "$BENCH_KERNEL_PKG") || exit 1
	top=$(tar tf "$orig" 2>/dev/null | head -n 1)
	top=${top%%/*}
	[ -n "$top" ] || die "cannot list $orig"
	name=$top
	[ -n "$BENCH_MACRO_SUBSET" ] && name="$top-$(echo "$BENCH_MACRO_SUBSET" | tr / _)"
	TREE_TAR="$BENCH_CACHE/$name.tar"
	TREE_TOP=$top
	if [ ! -s "$TREE_TAR" ]; then
		log "unpacking $orig into $TREE_TAR (once)"
		if [ -z "$BENCH_MACRO_SUBSET" ]; then
			xz -dc "$orig" >"$TREE_TAR.tmp" || die "cannot decompress $orig"
		else
			local tmp="$BENCH_CACHE/subset.tmp"
			rm -rf "$tmp" && mkdir -p "$tmp"
			tar xf "$orig" -C "$tmp" "$top/$BENCH_MACRO_SUBSET" ||
				die "'$BENCH_MACRO_SUBSET' is not in $orig"
			tar cf "$TREE_TAR.tmp" -C "$tmp" "$top" || die "cannot write $TREE_TAR"
			rm -rf "$tmp"
		fi
		mv "$TREE_TAR.tmp" "$TREE_TAR"
	fi
	TREE_FILES=$(tar tvf "$TREE_TAR" | grep -c '^-')
	TREE_ENTRIES=$(tar tf "$TREE_TAR" | wc -l)
	BUILD_TAR=$(fetch "$BENCH_BUILD_PKG") || exit 1
}

# ---- mounts -----------------------------------------------------------------

# mount_system SYSTEM INST: mounts SYSTEM's instance INST (made on first
# use) and sets TARGET, the directory the workloads run in.
mount_system() {
	local sys=$1 inst=$2
	CUR_SYS=$sys CUR_INST=$inst CUR_MNT="" CUR_PID="" TARGET=""
	mkdir -p "$inst"
	# io_uring only where asked for: the other systems see the kernel as found
	is_uring "$sys" || uring_restore
	case $sys in
	ext4)
		mkdir -p "$inst/data"
		TARGET=$inst/data
		;;
	passthrough_hp)
		mkdir -p "$inst/src" "$inst/mnt"
		# it holds an fd per inode it knows: as many as the kernel allows
		(ulimit -n "$(ulimit -Hn)" && exec "$PASSTHROUGH_HP" --foreground "$inst/src" "$inst/mnt") \
			</dev/null >>"$inst/daemon.log" 2>&1 &
		CUR_PID=$! CUR_MNT=$inst/mnt
		wait_mounted "$inst/mnt" "$CUR_PID" || return 1
		TARGET=$inst/mnt
		;;
	gocryptfs)
		mkdir -p "$inst/cipher" "$inst/mnt"
		[ -e "$inst/cipher/gocryptfs.conf" ] ||
			gocryptfs -init -q -extpass 'echo pw' "$inst/cipher" >>"$inst/daemon.log" 2>&1 || return 1
		gocryptfs -fg -q -extpass 'echo pw' "$inst/cipher" "$inst/mnt" </dev/null >>"$inst/daemon.log" 2>&1 &
		CUR_PID=$! CUR_MNT=$inst/mnt
		wait_mounted "$inst/mnt" "$CUR_PID" || return 1
		TARGET=$inst/mnt
		;;
	wardfs*)
		# the rows without -uring never use it, whatever the kernel offers
		local policy=$BENCH_DIR/policy sub=home extra=(--no-io-uring)
		case $sys in wardfs-sensitive*) sub=sensitive ;; wardfs-example*) policy=$BENCH_DIR/policy-example ;; esac
		if is_uring "$sys"; then
			uring_set Y || return 1
			extra=(--io-uring)
		fi
		mkdir -p "$inst/mnt"
		if [ ! -e "$inst/.vault-ok" ]; then
			wardfs_vault "$inst/backing" "$BENCH_DIR/passfile" >>"$inst/daemon.log" 2>&1 || return 1
			touch "$inst/.vault-ok"
		fi
		"$WARDFS" mount --passfile "$BENCH_DIR/passfile" --policy "$policy" \
			--audit-db "$inst/audit.db" --log "$inst/wardfs.log" "${extra[@]}" \
			"$inst/backing" "$inst/mnt" >>"$inst/daemon.log" 2>&1 || return 1
		CUR_MNT=$inst/mnt
		CUR_PID=$(wardfs_status "$inst/mnt" pid)
		if is_uring "$sys" && [ "$(wardfs_status "$inst/mnt" io-uring)" != on ]; then
			log "  $sys: io_uring is not in use: $(wardfs_status "$inst/mnt" io-uring)"
			return 1
		fi
		mkdir -p "$inst/mnt/$sub"
		TARGET=$inst/mnt/$sub
		;;
	esac
}

# A mount a workload left busy (a process still inside it) is detached
# lazily, and said: its daemon lives on until that process is gone, and
# whatever the process still does runs beside the next workloads.
busy_unmount() {
	log "  $CUR_SYS: $CUR_MNT is busy after the workload: $(fuser -m "$CUR_MNT" 2>&1 | tr -s ' \n' ' ')"
	umount -l "$CUR_MNT"
}

unmount_system() {
	if [ -n "$CUR_MNT" ] && mountpoint -q "$CUR_MNT"; then
		if is_wardfs "$CUR_SYS"; then
			"$WARDFS" umount "$CUR_MNT" >/dev/null 2>&1 || busy_unmount
		else
			fusermount3 -u "$CUR_MNT" 2>/dev/null || busy_unmount
		fi
	fi
	# The daemon holds the vault until it has exited (its audit rows
	# written, its inodes freed): the next mount of the same vault waits
	# for that, however long it takes, and says how long it was.
	if [ -n "$CUR_PID" ]; then
		local i=0
		while kill -0 "$CUR_PID" 2>/dev/null && [ $((i++)) -lt 12000 ]; do sleep 0.05; done
		[ "$i" -gt 100 ] && log "  $CUR_SYS: the daemon took $((i / 20)) s to exit after the unmount"
	fi
	CUR_MNT="" CUR_PID="" TARGET=""
}

# The cold runs: the mount taken down and made again, every cache dropped.
remount_cold() {
	local sys=$CUR_SYS inst=$CUR_INST
	unmount_system
	sync
	echo 3 >/proc/sys/vm/drop_caches
	mount_system "$sys" "$inst"
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	unmount_system
	findmnt -rn -o TARGET | grep -E "^$BENCH_DIR/" | sort -r | while read -r m; do
		"$WARDFS" umount "$m" >/dev/null 2>&1 || fusermount3 -u "$m" 2>/dev/null || umount -l "$m"
	done
	uring_restore
	rm -rf --one-file-system "$BENCH_DIR"
	exit "$rc"
}

# ---- workloads --------------------------------------------------------------

# requests: the request counts of the current wardfs mount ("kind=N ...").
requests() {
	is_wardfs "$CUR_SYS" || return 0
	wardfs_status "$CUR_MNT" requests
}

# timed NAME CMD: runs CMD (bash -c) in TARGET, records its wall time in
# seconds and, on wardfs, the requests it cost.
timed() {
	local name=$1 cmd=$2 before after t0 t1 rc
	# never in the caller's directory: a step whose mount failed stops
	[ -n "$TARGET" ] && [ -d "$TARGET" ] || die "no target directory for $name on $CUR_SYS"
	before=$(requests)
	t0=$(date +%s.%N)
	(cd "$TARGET" && timeout "$BENCH_STEP_TIMEOUT" bash -c "$cmd") >>"$CUR_INST/work.log" 2>&1
	rc=$?
	t1=$(date +%s.%N)
	after=$(requests)
	if [ "$rc" -ne 0 ]; then
		log "  $name on $CUR_SYS failed (exit $rc): $(tail -n 1 "$CUR_INST/work.log")"
		printf '%s\t%s\t%s\tFAIL\n' "$CUR_SYS" "$name" "$REP" >>"$TSV"
		return 1
	fi
	printf '%s\t%s\t%s\t%.3f\n' "$CUR_SYS" "$name" "$REP" "$(awk "BEGIN { print $t1 - $t0 }")" >>"$TSV"
	is_wardfs "$CUR_SYS" && printf '%s\t%s\t%s\t%s\t%s\n' "$CUR_SYS" "$name" "$REP" "$before" "$after" >>"$REQ"
	return 0
}

# One repeat of every workload on one system, in order: each needs the
# tree the one before left.
run_system() {
	local sys=$1 inst="$BENCH_DIR/run/$1/$REP"
	log "$sys, run $REP"
	mount_system "$sys" "$inst" || {
		log "  cannot mount $sys: $(tail -n 1 "$inst/daemon.log" 2>/dev/null)"
		printf '%s\tmount\t%s\tFAIL\n' "$sys" "$REP" >>"$TSV"
		unmount_system
		return
	}
	# A remount that fails ends this system's run (recorded), never a
	# workload run elsewhere.
	cold() {
		remount_cold && return 0
		log "  cannot mount $sys again: $(tail -n 1 "$inst/daemon.log" 2>/dev/null)"
		printf '%s\tremount\t%s\tFAIL\n' "$sys" "$REP" >>"$TSV"
		unmount_system
		return 1
	}
	want_workload untar && timed untar "tar xf '$TREE_TAR'"
	[ -d "$TARGET/$TREE_TOP" ] || timed untar-setup "tar xf '$TREE_TAR'"
	if want_workload lsr; then
		cold || return
		timed lsr "ls -lR '$TREE_TOP' >/dev/null"
	fi
	if want_workload md5; then
		cold || return
		timed md5 "find '$TREE_TOP' -type f -print0 | xargs -0 md5sum >/dev/null"
	fi
	if want_workload gitcommit || want_workload gitstatus; then
		# gc.auto=0: with more than 6,700 loose objects, `git commit`
		# starts `git gc --auto` in the background, which repacks the
		# tree (80-110 s here) while the next workloads run and keeps
		# the mount busy, so the unmount after them fails.
		timed gitcommit "cd '$TREE_TOP' && git init -q && git add -A &&
			git -c gc.auto=0 -c user.name=bench -c user.email=bench@localhost commit -q -m tree"
		if want_workload gitstatus; then
			timed gitstatus-warm "cd '$TREE_TOP' && git status --porcelain >/dev/null"
			cold || return
			timed gitstatus-cold "cd '$TREE_TOP' && git status --porcelain >/dev/null"
		fi
	fi
	if want_workload build; then
		local top
		top=$(tar tf "$BUILD_TAR" | head -n 1)
		top=${top%%/*}
		(cd "$TARGET" && tar xf "$BUILD_TAR") && timed build "cd '$top' && $BENCH_BUILD_CMD"
		want_workload rm && timed rm-build "rm -rf '$top'"
	fi
	want_workload rm && timed rm "rm -rf '$TREE_TOP'"
	unmount_system
}

# ---- report -----------------------------------------------------------------

report() {
	"${PY:-python3}" - "$TSV" "$REQ" "$TREE_FILES" "$TREE_ENTRIES" <<'EOF'
import collections, statistics, sys
tsv, req, files, entries = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
times = collections.defaultdict(list)
systems, works = [], []
for line in open(tsv):
    sys_, work, rep, t = line.rstrip("\n").split("\t")
    if work in ("mount", "untar-setup"):
        continue
    systems.append(sys_) if sys_ not in systems else None
    works.append(work) if work not in works else None
    times[(sys_, work)].append(t)
def cell(s, w):
    ts = times.get((s, w))
    if not ts:
        return None, "–"
    if "FAIL" in ts:
        return None, "FAIL"
    return statistics.median(float(t) for t in ts), None
print(f"Tree: {files} files, {entries} entries. Seconds, median of the runs; "
      "(x) = ratio to ext4, lower is better.\n")
print("| workload | " + " | ".join(systems) + " |")
print("| --- |" + " --- |" * len(systems))
for w in works:
    base, _ = cell("ext4", w)
    row = []
    for s in systems:
        v, bad = cell(s, w)
        if bad:
            row.append(bad)
        elif base:
            row.append(f"{v:.2f} ({v / base:.2f}x)")
        else:
            row.append(f"{v:.2f}")
    print(f"| {w} | " + " | ".join(row) + " |")
# Requests per workload: the first run of each (counts barely move between
# runs), as totals and per file of the tree.
def parse(s):
    return collections.Counter({k: int(v) for k, v in (kv.split("=") for kv in s.split())})
seen = set()
rows = []
for line in open(req):
    sys_, work, rep, before, after = (line.rstrip("\n").split("\t") + ["", ""])[:5]
    if (sys_, work) in seen or work == "untar-setup":
        continue
    seen.add((sys_, work))
    d = parse(after)
    d.subtract(parse(before))
    d = +d
    rows.append((sys_, work, sum(d.values()), d))
if rows:
    print(f"\nFUSE requests per workload on wardfs (first run; per file = / {files}):\n")
    print("| system | workload | requests | per file | by kind (per file) |")
    print("| --- | --- | --- | --- | --- |")
    for sys_, work, total, d in rows:
        shown = [(k, v) for k, v in d.most_common() if v / files >= 0.01]
        rest = total - sum(v for _, v in shown)
        kinds = ", ".join(f"{k} {v / files:.2f}" for k, v in shown)
        kinds += f", other {rest / files:.2f}" if rest else ""
        print(f"| {sys_} | {work} | {total} | {total / files:.2f} | {kinds} |")
EOF
}

main() {
	check
	install_packages gocryptfs git make gcc dpkg-dev xz-utils bzip2
	PY=$(command -v /usr/bin/python3 || command -v python3) || die "python3 is needed for the report"
	prepare_tree
	if [ -e "$BENCH_DIR" ]; then
		[ -e "$BENCH_DIR/.wardfs-macro" ] || die "$BENCH_DIR exists and was not made by bench/macro.sh"
		rm -rf --one-file-system "$BENCH_DIR"
	fi
	trap cleanup EXIT INT TERM
	mkdir -p "$BENCH_DIR/run" && chmod 700 "$BENCH_DIR" && touch "$BENCH_DIR/.wardfs-macro"
	[ "$(findmnt -n -o FSTYPE -T "$BENCH_DIR")" = ext4 ] || die "$BENCH_DIR must be on ext4 (set BENCH_DIR)"
	printf 'default public\nsensitive /sensitive/**\n' >"$BENCH_DIR/policy"
	grep -v '^include' "$ROOT/etc/policy.example" >"$BENCH_DIR/policy-example"
	chmod 644 "$BENCH_DIR/policy" "$BENCH_DIR/policy-example"
	printf 'wardfs-macro-passphrase\n' >"$BENCH_DIR/passfile"
	chmod 600 "$BENCH_DIR/passfile"
	local systems="" s
	for s in $BENCH_SYSTEMS; do
		if is_uring "$s" && [ ! -w "$ENABLE_URING" ]; then
			log "leaving out $s: this kernel has no $ENABLE_URING"
			continue
		fi
		systems="$systems $s"
	done
	mkdir -p "$RESULTS_DIR"
	TSV="$RESULTS_DIR/macro-latest.tsv" REQ="$RESULTS_DIR/macro-latest-requests.tsv"
	: >"$TSV"
	: >"$REQ"
	for ((REP = 1; REP <= BENCH_REPEAT; REP++)); do
		for s in $systems; do
			run_system "$s"
			# the next system creates files: not right after a mass delete
			sync
		done
	done
	{
		echo "# wardfs macro benchmarks"
		echo
		echo "Command: \`BENCH_SYSTEMS=\"$BENCH_SYSTEMS\" BENCH_WORKLOADS=\"$BENCH_WORKLOADS\"" \
			"BENCH_REPEAT=$BENCH_REPEAT BENCH_MACRO_SUBSET=\"$BENCH_MACRO_SUBSET\" bash bench/macro.sh\`"
		echo "Date: $(date -u +%FT%TZ); kernel $(uname -r); tree $(basename "$TREE_TAR");" \
			"build $(basename "$BUILD_TAR") with \`$BENCH_BUILD_CMD\`"
		if [ -n "$BENCH_MACRO_SUBSET" ] || [ "$BENCH_REPEAT" -lt 3 ]; then
			echo
			echo "**A smoke run (a subset of the tree or fewer than 3 runs): not a result.**"
		fi
		echo
		report
	} | tee "$RESULTS_DIR/macro-latest.md"
}

main "$@"

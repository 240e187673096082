#!/usr/bin/env bash
# bench/run.sh - wardfs benchmark harness (`make bench` runs it).
#
# Runs the same fio / metadata / open-heavy workloads on native ext4, wardfs
# (public passthrough, --no-passthrough, sensitive) and the peers
# passthrough_hp, gocryptfs and LoggedFS, one benchmark at a time, and prints
# one Markdown table per workload (median of BENCH_REPEAT runs, ratios to
# ext4 and to the relevant peer). The report also goes to
# bench/results/latest.md, the raw numbers to bench/results/latest.tsv.
#
# Every knob is an environment variable; see docs/benchmarks.md. Needs root
# (mounts, drop_caches). Leaves nothing mounted and removes BENCH_DIR.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_SRC="$ROOT/bench"
RESULTS_DIR="$BENCH_SRC/results"

# ---- knobs ------------------------------------------------------------------
ALL_SYSTEMS="ext4 wardfs wardfs-uring wardfs-noaudit wardfs-sealed wardfs-sealonly wardfs-fwdonly wardfs-policy1k wardfs-nopt wardfs-sensitive wardfs-names passthrough_hp gocryptfs loggedfs"
ALL_WORKLOADS="seqwrite seqread randread randwrite metadata open"

BENCH_DIR=${BENCH_DIR:-/var/tmp/wardfs-bench}
BENCH_SYSTEMS=${BENCH_SYSTEMS:-$ALL_SYSTEMS}
BENCH_WORKLOADS=${BENCH_WORKLOADS:-$ALL_WORKLOADS}
BENCH_REPEAT=${BENCH_REPEAT:-3}
BENCH_SIZE=${BENCH_SIZE:-1G}               # sequential file size (fio syntax)
BENCH_RAND_SIZE=${BENCH_RAND_SIZE:-256M}   # random I/O file size
BENCH_RUNTIME=${BENCH_RUNTIME:-10}         # seconds per random I/O run
BENCH_RAND_COLD=${BENCH_RAND_COLD:-0}      # 1: drop caches before the random read run
# metadata: number of small files. 19,000, not the 20,000 of the issue:
# passthrough_hp holds an fd per known inode and fails past ~19,880 files
# (100 dirs + files + its own fds hit the 20,000 fd limit); wardfs does not.
BENCH_FILES=${BENCH_FILES:-19000}
BENCH_DIRS=${BENCH_DIRS:-100}              # metadata/open: directories they spread over
BENCH_FILE_SIZE=${BENCH_FILE_SIZE:-4096}   # metadata: bytes per small file
BENCH_OPEN_FILES=${BENCH_OPEN_FILES:-100000}
BENCH_OPEN_THREADS=${BENCH_OPEN_THREADS:-"1 8"}
BENCH_LOGGEDFS_MEM=${BENCH_LOGGEDFS_MEM:-2G}   # memory cap for the leaky LoggedFS 0.9
BENCH_SETTLE=${BENCH_SETTLE:-300}          # seconds to leave between a mass delete and a run
BENCH_STEP_TIMEOUT=${BENCH_STEP_TIMEOUT:-1800}
BENCH_KEEP=${BENCH_KEEP:-0}                # 1: keep BENCH_DIR (still unmounted) for debugging
WARDFS=${WARDFS:-$ROOT/build/wardfs}
PASSTHROUGH_HP=${PASSTHROUGH_HP:-$ROOT/deps/libfuse/bin/passthrough_hp}
CLASSIFY=${CLASSIFY:-$ROOT/build/tests/unit/policy/bench_classify}

# Defaults, to flag a report made with other sizes as "not a result".
DEFAULT_SIZES="BENCH_REPEAT=3 BENCH_SIZE=1G BENCH_RAND_SIZE=256M BENCH_RUNTIME=10 BENCH_FILES=19000 BENCH_DIRS=100 BENCH_FILE_SIZE=4096 BENCH_OPEN_FILES=100000"

# State of the one mount in use (one benchmark at a time, so one mount at a time).
CUR_MNT="" CUR_PID="" TARGET="" FWD_READER=""
STEP_ERR=""      # why the last mount/step failed, for the report
STEP_PID=""      # the running workload subshell, stopped by the trap

BENCH_NAME=bench
# shellcheck source=bench/lib.sh
. "$BENCH_SRC/lib.sh"

# ---- set-up -----------------------------------------------------------------

check_tools() {
	[ "$(id -u)" = 0 ] || die "run as root (mounts, drop_caches, passthrough needs CAP_SYS_ADMIN)"
	PY=$(command -v /usr/bin/python3 || command -v python3) || die "python3 is needed for the report"
	local s
	for s in $BENCH_SYSTEMS; do
		case " $ALL_SYSTEMS " in *" $s "*) ;; *) die "unknown system '$s' (known: $ALL_SYSTEMS)" ;; esac
	done
	for s in $BENCH_WORKLOADS; do
		case " $ALL_WORKLOADS " in *" $s "*) ;; *) die "unknown workload '$s' (known: $ALL_WORKLOADS)" ;; esac
	done
	if want_system passthrough_hp && [ ! -x "$PASSTHROUGH_HP" ]; then
		die "$PASSTHROUGH_HP is missing: run 'make' first (it builds libfuse and its examples)"
	fi
	if want_system wardfs || want_system wardfs-noaudit || want_system wardfs-nopt ||
		want_system wardfs-sensitive || want_system wardfs-names || want_system wardfs-policy1k ||
		want_system wardfs-sealed || want_system wardfs-sealonly || want_system wardfs-fwdonly ||
		want_system wardfs-uring; then
		[ -x "$WARDFS" ] || die "$WARDFS is missing: run 'make' first"
		"$WARDFS" init --help >/dev/null 2>&1 ||
			die "'$WARDFS init' does not work yet; leave the wardfs systems out, e.g. BENCH_SYSTEMS=\"ext4 passthrough_hp gocryptfs loggedfs\""
	fi
}

# The work dir must be ext4 (the reference system is "native ext4") and must
# be ours before we rm -rf it.
prepare_bench_dir() {
	case "$BENCH_DIR" in *[[:space:]]*) die "BENCH_DIR must not contain white space" ;; esac
	case "$BENCH_DIR" in /*) ;; *) die "BENCH_DIR must be an absolute path" ;; esac
	if [ -d "$BENCH_DIR" ] && [ -n "$(ls -A "$BENCH_DIR")" ]; then
		[ -e "$BENCH_DIR/.wardfs-bench" ] ||
			die "$BENCH_DIR exists, is not empty and was not made by bench/run.sh; choose another BENCH_DIR"
		log "removing leftovers of an earlier run in $BENCH_DIR"
		unmount_all
		rm -rf --one-file-system "$BENCH_DIR"
	fi
	mkdir -p "$BENCH_DIR" || die "cannot create $BENCH_DIR"
	local fstype
	fstype=$(findmnt -n -o FSTYPE -T "$BENCH_DIR")
	[ "$fstype" = ext4 ] || die "$BENCH_DIR is on $fstype; it must be on ext4 (set BENCH_DIR)"
	chmod 0700 "$BENCH_DIR"
	touch "$BENCH_DIR/.wardfs-bench"
	mkdir -p "$BENCH_DIR/bin" "$BENCH_DIR/run" "$BENCH_DIR/tmp"

	# wardfs refuses a policy that is not root-owned or is group/other-writable.
	printf 'default public\nsensitive /sensitive/**\n' >"$BENCH_DIR/policy"
	chown root:root "$BENCH_DIR/policy"
	chmod 0644 "$BENCH_DIR/policy"
	# wardfs-policy1k: the 1,000-rule policy of bench_classify, same classes
	# for public/ and sensitive/ as the 2-rule one.
	if [ -x "$CLASSIFY" ]; then
		{ "$CLASSIFY" --print-policy && echo 'sensitive /sensitive/**'; } >"$BENCH_DIR/policy1k"
		chmod 0644 "$BENCH_DIR/policy1k"
	fi
	printf 'wardfs-bench-passphrase\n' >"$BENCH_DIR/passfile"
	chmod 0600 "$BENCH_DIR/passfile"
}

build_helpers() {
	cc -O2 -Wall -o "$BENCH_DIR/bin/metabench" "$BENCH_SRC/metabench.c" ||
		die "cannot compile bench/metabench.c"
	cc -O2 -Wall -pthread -o "$BENCH_DIR/bin/openbench" "$BENCH_SRC/openbench.c" ||
		die "cannot compile bench/openbench.c"
}

# Creating files within minutes of a mass delete is 10-30x slower on this
# ext4 (docs/benchmarks.md, "Hygiene"); our own final rm -rf is one, so wait
# out BENCH_SETTLE seconds after the previous run's clean-up.
settle_after_previous_run() {
	local stamp="$RESULTS_DIR/.last-cleanup" age wait
	[ -e "$stamp" ] || return 0
	age=$(($(date +%s) - $(stat -c %Y "$stamp")))
	wait=$((BENCH_SETTLE - age))
	if [ "$wait" -gt 0 ]; then
		log "the last run deleted its files ${age}s ago; waiting ${wait}s (BENCH_SETTLE) so creates are not slowed"
		sleep "$wait"
	fi
}

# ---- mounting ---------------------------------------------------------------

# Drop every cache so the next read comes from disk (also the backing files
# under a FUSE mount). Global: it also evicts other users' pages.
drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# Starts a foreground FUSE daemon in the background (so we know its pid and
# can wait for it to exit after unmounting) and waits for the mount.
start_daemon() {
	local mnt=$1 logf=$2
	shift 2
	"$@" </dev/null >>"$logf" 2>&1 &
	CUR_PID=$!
	CUR_MNT=$mnt
	if ! wait_mounted "$mnt" "$CUR_PID"; then
		STEP_ERR="mount failed: $(tail -n 1 "$logf" 2>/dev/null)"
		return 1
	fi
}

# The memory cap for LoggedFS, as a command prefix: a cgroup limit when
# systemd runs the machine, else an address-space rlimit (with few malloc
# arenas, or glibc's 64 MiB per-thread arena reservations would exhaust it
# without any leak). Both exec the daemon, so $! stays the daemon's pid.
set_memory_cap() {
	if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null; then
		CAP_CMD=(systemd-run --scope --quiet -p MemoryMax="$BENCH_LOGGEDFS_MEM" --)
		CAP_HOW="systemd-run --scope -p MemoryMax=$BENCH_LOGGEDFS_MEM"
	else
		CAP_CMD=(prlimit --as="$(numfmt --from=iec "$BENCH_LOGGEDFS_MEM")" -- env MALLOC_ARENA_MAX=2)
		CAP_HOW="prlimit --as=$BENCH_LOGGEDFS_MEM, MALLOC_ARENA_MAX=2 (no systemd here)"
	fi
}

# mount_system SYSTEM INSTANCE_DIR: mounts (creating on first use) one
# instance of SYSTEM and sets TARGET to the directory benchmarks use.
mount_system() {
	local sys=$1 inst=$2
	CUR_MNT="" CUR_PID="" TARGET="" STEP_ERR=""
	mkdir -p "$inst"
	case $sys in
	ext4)
		mkdir -p "$inst/data"
		TARGET=$inst/data
		;;
	passthrough_hp)
		# Defaults (passthrough on, 86400 s attr/entry cache); --foreground
		# only so that we hold its pid.
		mkdir -p "$inst/src" "$inst/mnt"
		start_daemon "$inst/mnt" "$inst/daemon.log" \
			"$PASSTHROUGH_HP" --foreground "$inst/src" "$inst/mnt" || return 1
		TARGET=$inst/mnt
		;;
	gocryptfs)
		mkdir -p "$inst/cipher" "$inst/mnt"
		if [ ! -e "$inst/cipher/gocryptfs.conf" ]; then
			gocryptfs -init -q -extpass 'echo pw' "$inst/cipher" >>"$inst/daemon.log" 2>&1 ||
				{ STEP_ERR="gocryptfs -init failed"; return 1; }
		fi
		start_daemon "$inst/mnt" "$inst/daemon.log" \
			gocryptfs -fg -q -extpass 'echo pw' "$inst/cipher" "$inst/mnt" || return 1
		TARGET=$inst/mnt
		;;
	loggedfs)
		# LoggedFS mounts over the directory itself (it keeps an fd to the
		# directory underneath). -p: allow_other, as a real deployment would.
		mkdir -p "$inst/data"
		start_daemon "$inst/data" "$inst/daemon.log" \
			"${CAP_CMD[@]}" loggedfs -f -p -l "$inst/loggedfs.log" "$inst/data" || return 1
		TARGET=$inst/data
		;;
	wardfs | wardfs-uring | wardfs-noaudit | wardfs-sealed | wardfs-sealonly | wardfs-fwdonly | wardfs-policy1k | wardfs-nopt | wardfs-sensitive | wardfs-names)
		# Only wardfs-uring serves through FUSE over io_uring: the kernel's
		# switch on for it alone, the others never (--no-io-uring).
		local extra=(--no-io-uring) sub=public policy=$BENCH_DIR/policy
		if [ "$sys" = wardfs-uring ]; then
			uring_set Y || { STEP_ERR="cannot turn on $ENABLE_URING"; return 1; }
			extra=(--io-uring)
		else
			uring_restore
		fi
		[ "$sys" = wardfs-policy1k ] && policy=$BENCH_DIR/policy1k
		[ "$sys" = wardfs-nopt ] && extra+=(--no-passthrough)
		[ "$sys" = wardfs-noaudit ] && extra+=(--no-audit) # the audit's own cost
		[ "$sys" = wardfs-sensitive ] && sub=sensitive
		# wardfs-names: the sensitive tree in a vault that encrypts names
		# (issue 18), priced against wardfs-sensitive
		local initx=()
		[ "$sys" = wardfs-names ] && sub=sensitive && initx=(--encrypt-names)
		mkdir -p "$inst/mnt"
		if [ ! -e "$inst/.vault-ok" ]; then
			wardfs_vault "$inst/backing" "$BENCH_DIR/passfile" "${initx[@]}" >>"$inst/daemon.log" 2>&1 ||
				{ STEP_ERR="wardfs init failed: $(tail -n 1 "$inst/daemon.log")"; return 1; }
			touch "$inst/.vault-ok"
		fi
		# wardfs-sealed: the audit sealed (seal-init's defaults: every 1,000 rows
		# or 15 min) and every row forwarded to a syslog socket a reader drains,
		# to price both against the plain audit (issue 19).
		# wardfs-sealonly and wardfs-fwdonly price each half on its own.
		if [ "$sys" = wardfs-sealed ] || [ "$sys" = wardfs-sealonly ]; then
			if [ ! -e "$inst/.sealed" ]; then
				"$WARDFS" mount --passfile "$BENCH_DIR/passfile" --policy "$policy" \
					--audit-db "$inst/audit.db" --log "$inst/wardfs.log" \
					"$inst/backing" "$inst/mnt" >>"$inst/daemon.log" 2>&1 &&
					"$WARDFS" umount "$inst/mnt" >>"$inst/daemon.log" 2>&1 &&
					"$WARDFS" audit seal-init --db "$inst/audit.db" \
						--verify-key-out "$inst/vk" >>"$inst/daemon.log" 2>&1 ||
					{ STEP_ERR="wardfs seal-init failed: $(tail -n 1 "$inst/daemon.log")"; return 1; }
				touch "$inst/.sealed"
			fi
		fi
		if [ "$sys" = wardfs-sealed ] || [ "$sys" = wardfs-fwdonly ]; then
			rm -f "$inst/fwd.sock"
			python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    s.recv(65536)' "$inst/fwd.sock" &
			FWD_READER=$!
			local i=0
			while [ ! -S "$inst/fwd.sock" ] && [ $((i++)) -lt 100 ]; do sleep 0.05; done
			extra+=(--audit-forward="syslog:$inst/fwd.sock")
		fi
		# wardfs mount daemonizes and its exit status says whether it mounted.
		CUR_MNT=$inst/mnt
		"$WARDFS" mount --passfile "$BENCH_DIR/passfile" --policy "$policy" \
			--audit-db "$inst/audit.db" --log "$inst/wardfs.log" "${extra[@]}" \
			"$inst/backing" "$inst/mnt" >>"$inst/daemon.log" 2>&1 ||
			{ STEP_ERR="wardfs mount failed: $(tail -n 1 "$inst/daemon.log")"; return 1; }
		if [ "$sys" = wardfs-uring ] &&
			[ "$(wardfs_status "$inst/mnt" io-uring)" != on ]; then
			STEP_ERR="wardfs-uring is not served through io_uring (wardfs status)"
			return 1
		fi
		mkdir -p "$inst/mnt/public" "$inst/mnt/sensitive" ||
			{ STEP_ERR="cannot create public/ and sensitive/ in the mount"; return 1; }
		TARGET=$inst/mnt/$sub
		;;
	esac
	return 0
}

# Unmounts one mount point: wardfs's own umount (it waits for the audit rows
# to drain), else fusermount3, umount, and as a last resort a lazy umount.
unmount_one() {
	local mnt=$1 fstype
	mountpoint -q "$mnt" || return 0
	fstype=$(findmnt -n -o FSTYPE -M "$mnt" 2>/dev/null)
	# fuse.wardfs (the daemon sets subtype=wardfs)
	if [[ "$fstype" == *wardfs* ]] && [ -x "$WARDFS" ]; then
		"$WARDFS" umount "$mnt" 2>/dev/null && return 0
	fi
	fusermount3 -u "$mnt" 2>/dev/null || fusermount -u "$mnt" 2>/dev/null ||
		umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || {
		log "warning: cannot unmount $mnt"
		return 1
	}
}

# Unmounts the current instance and waits for its daemon to exit, so the
# next benchmark does not share the CPUs with a dying daemon.
unmount_system() {
	# Peak memory of our daemon: shows LoggedFS's leak approaching its cap.
	if [ -n "$CUR_PID" ] && [ -r "/proc/$CUR_PID/status" ]; then
		log "  daemon peak RSS: $(awk '/VmHWM/ { printf "%d MiB", $2 / 1024 }' "/proc/$CUR_PID/status")"
	fi
	[ -n "$CUR_MNT" ] && unmount_one "$CUR_MNT"
	if [ -n "$CUR_PID" ]; then
		local i=0
		while kill -0 "$CUR_PID" 2>/dev/null && [ $((i++)) -lt 600 ]; do
			sleep 0.05
		done
		if kill -0 "$CUR_PID" 2>/dev/null; then
			log "warning: daemon $CUR_PID still running 30 s after unmount"
		else
			wait "$CUR_PID" 2>/dev/null
		fi
	fi
	# wardfs-sealed's syslog reader, after the daemon's last rows
	if [ -n "$FWD_READER" ]; then
		kill "$FWD_READER" 2>/dev/null
		wait "$FWD_READER" 2>/dev/null
	fi
	CUR_MNT="" CUR_PID="" TARGET="" FWD_READER=""
}

# Safety net for the trap: everything still mounted under BENCH_DIR, deepest first.
unmount_all() {
	local m
	[ -n "${CUR_MNT:-}" ] && unmount_one "$CUR_MNT"
	findmnt -rn -o TARGET | grep -E "^$BENCH_DIR/" | sort -r | while read -r m; do
		unmount_one "$m"
	done
}

# Pids of every process below $1.
descendants() {
	local child
	for child in $(pgrep -P "$1"); do
		echo "$child"
		descendants "$child"
	done
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	# Stop an interrupted workload: the subshell and everything under it
	# (fio, metabench, timeout, pipeline subshells), by pid.
	if [ -n "${STEP_PID:-}" ]; then
		local pids
		pids=$(descendants "$STEP_PID")
		# shellcheck disable=SC2086
		kill -TERM "$STEP_PID" $pids 2>/dev/null
		wait "$STEP_PID" 2>/dev/null
	fi
	unmount_all
	uring_restore
	# Our own daemons (by pid) that outlived their mount.
	[ -n "${CUR_PID:-}" ] && kill "$CUR_PID" 2>/dev/null
	if findmnt -rn -o TARGET | grep -qE "^$BENCH_DIR/"; then
		log "warning: something is still mounted under $BENCH_DIR; not removing it"
	elif [ "$BENCH_KEEP" = 1 ]; then
		log "keeping $BENCH_DIR (BENCH_KEEP=1)"
	elif [ -e "$BENCH_DIR/.wardfs-bench" ]; then
		log "removing $BENCH_DIR"
		rm -rf --one-file-system "$BENCH_DIR"
		mkdir -p "$RESULTS_DIR" && touch "$RESULTS_DIR/.last-cleanup"
	fi
	exit "$rc"
}

# ---- workloads --------------------------------------------------------------
# Each runs in a subshell of run_step; a hung FUSE daemon must not hang the
# whole run, so every external benchmark command runs under a time limit.
tmo() {
	timeout --kill-after=30 "$BENCH_STEP_TIMEOUT" "$@"
	local rc=$?
	[ "$rc" = 124 ] && echo "$1 timed out after ${BENCH_STEP_TIMEOUT}s (BENCH_STEP_TIMEOUT)" >&2
	return "$rc"
}
# Each wl_* runs in the mounted TARGET and prints "METRIC VALUE" lines.

FIO_COMMON=(--ioengine=psync --numjobs=1 --fallocate=none --output-format=json)

# fio_run NAME ARGS...: runs one fio job, prints nothing, leaves JSON in tmp.
fio_run() {
	local name=$1
	shift
	tmo fio --name="$name" "${FIO_COMMON[@]}" "$@" >"$BENCH_DIR/tmp/$name.json" 2>"$BENCH_DIR/tmp/$name.err" ||
		{ cat "$BENCH_DIR/tmp/$name.err" >&2; return 1; }
}
fio_get() { "$PY" "$BENCH_SRC/report.py" fio "$BENCH_DIR/tmp/$1.json" "$2" "$3"; }

# Untimed: writes a file for the read workloads.
fio_layout() {
	fio_run layout --filename="$1" --rw=write --bs=1M --size="$2" --end_fsync=1
}

wl_seqwrite() {
	sync
	fio_run seqwrite --filename="$TARGET/seq" --rw=write --bs=1M --size="$BENCH_SIZE" --end_fsync=1 || return 1
	echo "seqwrite $(fio_get seqwrite write bw)"
	rm -f "$TARGET/seq"
}

wl_seqread() {
	fio_layout "$TARGET/seq" "$BENCH_SIZE" || return 1
	drop_caches
	fio_run seqread-cold --filename="$TARGET/seq" --rw=read --bs=1M --size="$BENCH_SIZE" || return 1
	echo "seqread-cold $(fio_get seqread-cold read bw)"
	# Warm: read it once right before (the VM evicts pages idle for ~60 s),
	# and tell fio not to invalidate the cache at start.
	fio_run warmup --filename="$TARGET/seq" --rw=read --bs=1M --size="$BENCH_SIZE" --invalidate=0 || return 1
	fio_run seqread-warm --filename="$TARGET/seq" --rw=read --bs=1M --size="$BENCH_SIZE" --invalidate=0 || return 1
	echo "seqread-warm $(fio_get seqread-warm read bw)"
	rm -f "$TARGET/seq"
}

# By default the file was just written, so systems that keep their page
# cache serve most reads from it; BENCH_RAND_COLD=1 starts from disk instead.
wl_randread() {
	fio_layout "$TARGET/rand" "$BENCH_RAND_SIZE" || return 1
	if [ "$BENCH_RAND_COLD" = 1 ]; then drop_caches; else sync; fi
	fio_run randread --filename="$TARGET/rand" --rw=randread --bs=4k --size="$BENCH_RAND_SIZE" \
		--time_based --runtime="$BENCH_RUNTIME" --invalidate=0 || return 1
	echo "randread $(fio_get randread read iops)"
	# Misses only: from a dropped cache, 20,000 reads of distinct blocks
	# (fio's random map), each one a round trip to the daemon. The run
	# above is mostly page-cache hits, which are the kernel's work alike
	# for every FUSE mount.
	drop_caches
	fio_run randread-miss --filename="$TARGET/rand" --rw=randread --bs=4k --size="$BENCH_RAND_SIZE" \
		--number_ios=20000 --invalidate=0 || return 1
	echo "randread-miss $(fio_get randread-miss read iops)"
	rm -f "$TARGET/rand"
}

wl_randwrite() {
	fio_layout "$TARGET/rand" "$BENCH_RAND_SIZE" || return 1
	sync
	fio_run randwrite --filename="$TARGET/rand" --rw=randwrite --bs=4k --size="$BENCH_RAND_SIZE" \
		--time_based --runtime="$BENCH_RUNTIME" --invalidate=0 || return 1
	echo "randwrite $(fio_get randwrite write iops)"
	rm -f "$TARGET/rand"
}

# create, stat and read in a fresh directory; delete comes at the very end
# (wl_metadata_delete) so that no timed create follows a mass delete.
wl_metadata() {
	sync
	tmo "$BENCH_DIR/bin/metabench" csr "$TARGET" "$BENCH_FILES" "$BENCH_DIRS" "$BENCH_FILE_SIZE" |
		awk '{ print $1, $3 }'
	[ "${PIPESTATUS[0]}" = 0 ] || return 1
	touch "$INST/.csr-ok"
}

wl_metadata_delete() {
	[ -e "$INST/.csr-ok" ] || { echo "create phase failed" >&2; return 1; }
	drop_caches # every system deletes with cold caches (FUSE ones were just remounted)
	tmo "$BENCH_DIR/bin/metabench" delete "$TARGET" "$BENCH_FILES" "$BENCH_DIRS" | awk '{ print $1, $3 }'
	[ "${PIPESTATUS[0]}" = 0 ]
}

# The file tree is made once per system (untimed) and reused by every repeat:
# the files only need to exist; each repeat still gets a fresh mount.
wl_open() {
	if [ ! -e "$INST/.tree-ok" ]; then
		log "  creating $BENCH_OPEN_FILES files (untimed)"
		tmo "$BENCH_DIR/bin/openbench" create "$TARGET" "$BENCH_OPEN_FILES" "$BENCH_DIRS" || return 1
		touch "$INST/.tree-ok"
		sync
	fi
	local t
	for t in $BENCH_OPEN_THREADS; do
		audit_idle || return 1
		tmo "$BENCH_DIR/bin/openbench" open "$TARGET" "$BENCH_OPEN_FILES" "$BENCH_DIRS" "$t" |
			awk '{ print $1, $3 }'
		[ "${PIPESTATUS[0]}" = 0 ] || return 1
	done
}

# Each open-heavy run is one burst of opens on an idle mount: a wardfs mount
# first finishes writing the previous run's audit rows (its writer defers
# them during a burst; docs/audit.md). Without this the 8-thread run would
# also pay for the 1-thread run's rows. The sustained rate, beyond the
# journal, is a different number (docs/benchmarks.md).
audit_idle() {
	case $CUR_MNT in "") return 0 ;; esac
	"$WARDFS" status "$CUR_MNT" >/dev/null 2>&1 || return 0 # not a wardfs mount
	local i
	for ((i = 0; i < 1200; i++)); do
		"$WARDFS" status "$CUR_MNT" 2>/dev/null | grep -q '^audit-pending: [1-9]' || return 0
		sleep 0.1
	done
	log "  the audit rows of the previous run did not drain in 120 s"
	return 1
}

# ---- driver -----------------------------------------------------------------

# The variants that price one feature run only the workload it touches:
# wardfs-noaudit the audit of opens, wardfs-policy1k a large policy.
skip_step() {
	case $1 in
	wardfs-noaudit | wardfs-sealed | wardfs-sealonly | wardfs-fwdonly) [ "$2" != open ] ;;
	wardfs-uring) [ "$2" != open ] && [ "$2" != metadata ] ;;
	wardfs-policy1k | wardfs-names) [ "$2" != metadata ] ;;
	*) return 1 ;;
	esac
}

record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS_TSV"; }

# run_step WORKLOAD SYSTEM REPEAT INSTANCE_TAG: mount, run, record, unmount.
# A failure is recorded (and shown in the table) but does not stop the run.
run_step() {
	local wl=$1 sys=$2 rep=$3 tag=$4 rc errf outf
	INST=$BENCH_DIR/run/$sys/$tag
	errf=$BENCH_DIR/tmp/step.err
	outf=$BENCH_DIR/tmp/step.out
	log "$wl  run $rep/$BENCH_REPEAT  $sys"
	if ! mount_system "$sys" "$INST"; then
		log "  FAIL: $STEP_ERR"
		record "$wl" "*" "$sys" "$rep" FAIL "$STEP_ERR"
		unmount_system
		return
	fi
	# In the background plus wait, because bash runs a signal trap only
	# when the foreground command ends, but interrupts a wait at once.
	"wl_${wl//-/_}" >"$outf" 2>"$errf" &
	STEP_PID=$!
	wait "$STEP_PID"
	rc=$?
	STEP_PID=""
	local metric value
	while read -r metric value; do
		[ -n "$metric" ] || continue
		record "$wl" "$metric" "$sys" "$rep" "$value" ""
		log "  $metric = $value"
	done <"$outf"
	if [ "$rc" != 0 ]; then
		local why
		# Last error line, paths shortened, fit for a table cell.
		why=$(grep -v '^\s*$' "$errf" | tail -n 1 | sed "s|$BENCH_DIR/run/||g" | tr '\t' ' ' | cut -c1-160)
		[ -n "$CUR_PID" ] && ! kill -0 "$CUR_PID" 2>/dev/null && why="daemon died ($why)"
		log "  FAIL (exit $rc): $why"
		record "$wl" "*" "$sys" "$rep" FAIL "${why:-exit $rc}"
	fi
	unmount_system
}

write_header() {
	local cmd non_default="" kv
	cmd="$(env | grep -E '^(BENCH_[A-Z_]+|WARDFS|PASSTHROUGH_HP)=' | sort | sed "s/=\(.*\)/='\1'/" | tr '\n' ' ')bash bench/run.sh"
	for kv in $DEFAULT_SIZES; do
		local name=${kv%%=*}
		[ "$name=${!name}" = "$kv" ] || non_default+=" $name=${!name}"
	done
	{
		echo "## wardfs benchmark"
		echo
		if [ -n "$non_default" ]; then
			echo "**Non-default sizes ($non_default ): a smoke/custom run, not a result.**"
			echo
		fi
		echo "- command: \`$cmd\`"
		echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
		echo "- kernel: $(uname -r); $(nproc) CPUs; $(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
		echo "- work dir: $BENCH_DIR ($(findmnt -n -o FSTYPE,SOURCE,OPTIONS -T "$BENCH_DIR"))"
		echo "- sizes: sequential $BENCH_SIZE; random $BENCH_RAND_SIZE for ${BENCH_RUNTIME}s ($([ "$BENCH_RAND_COLD" = 1 ] && echo cold || echo warm) cache);" \
			"metadata $BENCH_FILES files of $BENCH_FILE_SIZE B in $BENCH_DIRS dirs;" \
			"open-heavy $BENCH_OPEN_FILES files, threads: $BENCH_OPEN_THREADS; median of $BENCH_REPEAT runs"
		echo "- versions: $(fio --version), gocryptfs $(gocryptfs -version 2>/dev/null | awk '{ sub(";", "", $2); print $2 }')," \
			"loggedfs $(dpkg-query -W -f='${Version}' loggedfs 2>/dev/null), wardfs $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
		echo "- LoggedFS memory cap: $CAP_HOW; remounted for every step"
		if [ -x "$CLASSIFY" ]; then
			echo "- policy classify (one core, bench_classify, 1,000 rules, 1,000,000 paths): $("$CLASSIFY" 1000000 5 | tail -n 1 | sed 's/^classify: //')"
		fi
	} >"$HEADER"
}

main() {
	RESULTS_TSV=$BENCH_DIR/results.tsv
	HEADER=$BENCH_DIR/header.md
	install_packages fio hyperfine gocryptfs loggedfs
	check_tools
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	prepare_bench_dir
	build_helpers
	set_memory_cap
	settle_after_previous_run
	: >"$RESULTS_TSV"
	write_header

	# Loop order: workload, then repeat, then system, so that slow drift of a
	# shared machine spreads over all systems instead of hitting one. Every
	# step gets a fresh mount (LoggedFS must be remounted because it leaks)
	# and, except open-heavy, a fresh directory.
	local wl rep sys
	for wl in $ALL_WORKLOADS; do
		want_workload "$wl" || continue
		for ((rep = 1; rep <= BENCH_REPEAT; rep++)); do
			for sys in $BENCH_SYSTEMS; do
				skip_step "$sys" "$wl" && continue
				if [ "$wl" = open ]; then
					run_step "$wl" "$sys" "$rep" open
				else
					run_step "$wl" "$sys" "$rep" "$wl-r$rep"
				fi
			done
		done
	done
	# Metadata delete phases last: after them nothing creates files.
	if want_workload metadata; then
		for ((rep = 1; rep <= BENCH_REPEAT; rep++)); do
			for sys in $BENCH_SYSTEMS; do
				skip_step "$sys" metadata && continue
				run_step metadata-delete "$sys" "$rep" "metadata-r$rep"
			done
		done
	fi

	mkdir -p "$RESULTS_DIR"
	# shellcheck disable=SC2086
	"$PY" "$BENCH_SRC/report.py" table "$RESULTS_TSV" "$HEADER" $BENCH_SYSTEMS >"$RESULTS_DIR/latest.md" ||
		die "cannot write the report"
	cp "$RESULTS_TSV" "$RESULTS_DIR/latest.tsv"
	cat "$RESULTS_DIR/latest.md"
	log "report written to bench/results/latest.md"
}

main "$@"

# shellcheck shell=bash
# bench/lib.sh - what the benchmark scripts share: their messages, the
# systems and workloads a run was asked for, the Debian packages of the
# peers, waiting for a FUSE mount, the kernel's FUSE-over-io_uring switch
# (always put back as found), and a wardfs vault made for a benchmark.
# Sourced by bench/*.sh, never run. The sourcing script sets BENCH_NAME
# (the prefix of its messages) and WARDFS (the binary) first.

log() { printf '[%s %(%H:%M:%S)T] %s\n' "${BENCH_NAME:-bench}" -1 "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# Whether a run asked for a system or a workload (BENCH_SYSTEMS and
# BENCH_WORKLOADS are space-separated names).
want_system() { case " $BENCH_SYSTEMS " in *" $1 "*) return 0 ;; esac; return 1; }
want_workload() { case " $BENCH_WORKLOADS " in *" $1 "*) return 0 ;; esac; return 1; }

# install_packages PKG...: the Debian packages the benchmarks need and the
# machine lacks. Installed here, by the bench set-up; never by tests.
install_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing ${missing[*]}"
	apt-get install -y -qq "${missing[@]}" >&2 ||
		{ apt-get update -qq >&2 && apt-get install -y -qq "${missing[@]}" >&2; } ||
		die "cannot install ${missing[*]}"
}

# wait_mounted MNT [PID]: waits up to 10 s for MNT to be a mount point;
# fails early when the daemon PID (if given) has died.
wait_mounted() {
	local mnt=$1 pid=${2:-} i
	for ((i = 0; i < 200; i++)); do
		mountpoint -q "$mnt" && return 0
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		sleep 0.05
	done
	return 1
}

# The kernel's switch for FUSE over io_uring: uring_set turns it to Y or N
# for the rows that ask, remembering what it found; uring_restore puts that
# back. Callers restore on every exit (their trap) and before each row that
# does not ask for io_uring, so the other rows see the kernel as found.
ENABLE_URING=/sys/module/fuse/parameters/enable_uring
URING_WAS=""
uring_set() {
	[ -w "$ENABLE_URING" ] || return 1
	[ -z "$URING_WAS" ] && URING_WAS=$(cat "$ENABLE_URING")
	echo "$1" >"$ENABLE_URING"
}
uring_restore() {
	[ -n "$URING_WAS" ] && echo "$URING_WAS" >"$ENABLE_URING"
	URING_WAS=""
}

# wardfs_status MNT KEY: the value of KEY in `wardfs status MNT` (the
# line "KEY: VALUE"), empty when the mount or the key is not there.
wardfs_status() { "$WARDFS" status "$1" 2>/dev/null | sed -n "s/^$2: //p"; }

# wardfs_vault BACKING PASSFILE [INIT-OPTION...]: makes a vault in BACKING
# (mode 0700: init and mount refuse a backing dir other users reach), with
# the cheapest key derivation, since a benchmark times the file system and
# not the unlock. Its output goes to stderr.
wardfs_vault() {
	local backing=$1 passfile=$2
	shift 2
	mkdir -p "$backing" && chmod 700 "$backing" &&
		"$WARDFS" init --passfile "$passfile" --kdf-memory 8 --kdf-ops 1 "$@" "$backing" >&2
}

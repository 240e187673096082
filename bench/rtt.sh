#!/usr/bin/env bash
# bench/rtt.sh - the price of one FUSE round trip on this machine: the
# time of a getxattr of a missing user.* name, which ext4 answers from
# memory and which every time reaches the wardfs daemon (nothing in FUSE
# caches a missing attribute), through /dev/fuse and through io_uring.
# The difference is what each request of the macro table's counts costs
# before the daemon does any work for it (docs/benchmarks.md, "The
# full-size table"). Needs root; leaves nothing mounted, restores
# enable_uring, removes its directory.
#
#   sudo bash bench/rtt.sh
#   sudo RTT_CALLER_CPUS=0 RTT_DAEMON_CPUS=1 bash bench/rtt.sh  # where each runs
#
# RTT_CALLER_CPUS and RTT_DAEMON_CPUS (taskset lists, default: anywhere)
# pin the calling process and the daemon, to see what the placement costs:
# a caller and a daemon on one CPU switch to each other, on two CPUs they
# wake each other. libfuse pins its io_uring threads itself, one per CPU,
# and the kernel queues a request on the caller's CPU, so the io_uring row
# always serves on the caller's CPU whatever RTT_DAEMON_CPUS says.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WARDFS=${WARDFS:-$ROOT/build/wardfs}
RTT_DIR=${RTT_DIR:-/var/tmp/wardfs-rtt}
RTT_CALLS=${RTT_CALLS:-200000}
RTT_REPEAT=${RTT_REPEAT:-3}
RTT_CALLER_CPUS=${RTT_CALLER_CPUS:-}
RTT_DAEMON_CPUS=${RTT_DAEMON_CPUS:-}

BENCH_NAME=rtt
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (mounts, enable_uring)"
[ -x "$WARDFS" ] || die "$WARDFS is missing: run 'make' first"
case "$RTT_DIR" in /*) ;; *) die "RTT_DIR must be an absolute path" ;; esac

cleanup() {
	mountpoint -q "$RTT_DIR/mnt" && { "$WARDFS" umount "$RTT_DIR/mnt" >/dev/null 2>&1 || umount -l "$RTT_DIR/mnt"; }
	uring_restore
	rm -rf --one-file-system "$RTT_DIR"
}
trap cleanup EXIT INT TERM

rm -rf --one-file-system "$RTT_DIR"
mkdir -p "$RTT_DIR/mnt" "$RTT_DIR/ext4"
printf 'wardfs-rtt-passphrase\n' >"$RTT_DIR/pass"
chmod 600 "$RTT_DIR/pass"
printf 'default public\n' >"$RTT_DIR/policy"
wardfs_vault "$RTT_DIR/backing" "$RTT_DIR/pass" --policy "$RTT_DIR/policy" >"$RTT_DIR/init.log" 2>&1 ||
	die "wardfs init failed: $(tail -n 2 "$RTT_DIR/init.log")"

# pin CPUS CMD...: runs CMD on CPUS (a taskset list), or anywhere if empty
pin() {
	local cpus=$1
	shift
	if [ -n "$cpus" ]; then taskset -c "$cpus" "$@"; else "$@"; fi
}

# per_call FILE: microseconds per getxattr, the median of RTT_REPEAT loops
per_call() {
	pin "$RTT_CALLER_CPUS" python3 - "$1" "$RTT_CALLS" "$RTT_REPEAT" <<'EOF'
import os, sys, time
path, calls, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
open(path, "w").close()
runs = []
for _ in range(repeat):
    t = time.perf_counter()
    for _ in range(calls):
        try:
            os.getxattr(path, "user.wardfs-rtt-none")
        except OSError:
            pass
    runs.append((time.perf_counter() - t) / calls * 1e6)
print("%.1f" % sorted(runs)[len(runs) // 2])
EOF
}

ext4=$(per_call "$RTT_DIR/ext4/f")
echo "Caller on CPUs ${RTT_CALLER_CPUS:-any}, daemon on CPUs ${RTT_DAEMON_CPUS:-any}; $(nproc) CPUs."
echo
printf '| path | us per getxattr | FUSE round trip (minus ext4) |\n| --- | ---: | ---: |\n'
printf '| ext4 | %s | |\n' "$ext4"
for mode in /dev/fuse io_uring; do
	opt=--no-io-uring
	if [ $mode = io_uring ]; then
		uring_set Y || { echo "| io_uring | (the kernel has no $ENABLE_URING) | |"; continue; }
		opt=--io-uring
	fi
	pin "$RTT_DAEMON_CPUS" "$WARDFS" mount --passfile "$RTT_DIR/pass" --policy "$RTT_DIR/policy" --audit-db "$RTT_DIR/audit.db" \
		--log "$RTT_DIR/wardfs.log" $opt "$RTT_DIR/backing" "$RTT_DIR/mnt" 2>/dev/null ||
		die "mount ($mode) failed: $(tail -n 3 "$RTT_DIR/wardfs.log" 2>/dev/null)"
	if [ $mode = io_uring ] && [ "$(wardfs_status "$RTT_DIR/mnt" io-uring)" != on ]; then
		die "io_uring is not in use: $(wardfs_status "$RTT_DIR/mnt" io-uring)"
	fi
	us=$(per_call "$RTT_DIR/mnt/f")
	n=$(wardfs_status "$RTT_DIR/mnt" requests | grep -o 'getxattr=[0-9]*')
	[ "${n#getxattr=}" -ge "$((RTT_CALLS * RTT_REPEAT))" ] || die "the daemon saw $n, not every call"
	"$WARDFS" umount "$RTT_DIR/mnt" >/dev/null || die "unmount failed"
	printf '| wardfs, %s | %s | %s |\n' "$mode" "$us" "$(awk "BEGIN { printf \"%.1f\", $us - $ext4 }")"
done

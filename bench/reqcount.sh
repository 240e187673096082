#!/usr/bin/env bash
# bench/reqcount.sh - FUSE requests per file (issue 21): a small realistic
# workload (unpack a tar of /usr/include, ls -lR cold, find | xargs stat,
# git init/add/commit, git status warm and cold, rm -rf) into the public
# and into the sensitive part of one wardfs mount, counted with the
# daemon's per-kind request counters (`wardfs status`, daemon/reqcount.c).
# Prints one Markdown table: requests per regular file of the tree, by
# kind, per workload and class. Not a timing benchmark: counts barely move
# between runs, so one run is enough and it may run on a busy machine.
#
#   sudo bash bench/reqcount.sh                  # build/wardfs, /usr/include
#   sudo WARDFS=build-dev/wardfs REQ_SRC=/usr/include/linux bash bench/reqcount.sh
#   sudo REQ_USER=nobody bash bench/reqcount.sh  # the workloads as that user
#
# Knobs: WARDFS (binary), REQ_SRC (the tree to tar), REQ_DIR (work dir, on
# ext4, removed at the end), REQ_CLASSES ("public sensitive"), REQ_USER (run
# the workloads as this user instead of root: tar then keeps no owners),
# REQ_STRACE=1 (also count the workloads' syscalls on plain ext4 with
# strace -c -f, in REQ_DIR/strace-*.txt, shown at the end).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WARDFS=${WARDFS:-$ROOT/build/wardfs}
REQ_SRC=${REQ_SRC:-/usr/include}
REQ_DIR=${REQ_DIR:-/var/tmp/wardfs-reqcount}
REQ_CLASSES=${REQ_CLASSES:-public sensitive}
REQ_USER=${REQ_USER:-}
REQ_STRACE=${REQ_STRACE:-0}

BENCH_NAME=reqcount
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (it mounts)"
[ -x "$WARDFS" ] || die "$WARDFS is missing: build it first"
[ -d "$REQ_SRC" ] || die "$REQ_SRC is not a directory"
if [ -e "$REQ_DIR" ]; then
	[ -e "$REQ_DIR/.wardfs-reqcount" ] || die "$REQ_DIR exists and was not made by this script"
	rm -rf --one-file-system "$REQ_DIR"
fi
MNT=$REQ_DIR/mnt BACKING=$REQ_DIR/vault/backing

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if mountpoint -q "$MNT"; then
		"$WARDFS" umount "$MNT" >/dev/null 2>&1 || umount -l "$MNT"
	fi
	rm -rf --one-file-system "$REQ_DIR"
	exit "$rc"
}
trap cleanup EXIT INT TERM

mkdir -p "$REQ_DIR/vault" "$MNT" && chmod 700 "$REQ_DIR/vault" && touch "$REQ_DIR/.wardfs-reqcount"
[ "$(findmnt -n -o FSTYPE -T "$REQ_DIR")" = ext4 ] || die "$REQ_DIR must be on ext4 (set REQ_DIR)"
printf 'default public\nsensitive /sensitive/**\n' >"$REQ_DIR/policy"
chmod 644 "$REQ_DIR/policy"
printf 'wardfs-reqcount-passphrase\n' >"$REQ_DIR/passfile"
chmod 600 "$REQ_DIR/passfile"
TAR=$REQ_DIR/tree.tar
tar cf "$TAR" -C "$(dirname "$REQ_SRC")" "$(basename "$REQ_SRC")" 2>/dev/null || die "cannot tar $REQ_SRC"
chmod 644 "$TAR"
TOP=$(basename "$REQ_SRC")
FILES=$(tar tvf "$TAR" | grep -c '^-')
ENTRIES=$(tar tf "$TAR" | wc -l)
wardfs_vault "$BACKING" "$REQ_DIR/passfile" >"$REQ_DIR/init.log" 2>&1 ||
	die "wardfs init failed: $(tail -n 2 "$REQ_DIR/init.log")"

mount_it() {
	"$WARDFS" mount --passfile "$REQ_DIR/passfile" --policy "$REQ_DIR/policy" \
		--audit-db "$REQ_DIR/audit.db" --log "$REQ_DIR/wardfs.log" "$BACKING" "$MNT" \
		>>"$REQ_DIR/mount.log" 2>&1 || die "wardfs mount failed: $(tail -n 2 "$REQ_DIR/mount.log")"
}
unmount_it() {
	"$WARDFS" umount "$MNT" >/dev/null 2>&1 || die "wardfs umount failed"
}
# Cold for the counts: the kernel's dentries, inodes, attributes and ACLs
# of the mount go with it (the backing file system's page cache does not
# change what reaches the daemon, so it is not dropped).
cold() {
	unmount_it
	mount_it
}
requests() { wardfs_status "$MNT" requests; }

# as_user [strace -c ... --] CMD: runs CMD with bash as REQ_USER (or root)
as_user() {
	local pre=()
	[ -n "$REQ_USER" ] && pre=(setpriv --reuid="$REQ_USER" --regid="$(id -g "$REQ_USER")" --init-groups --
		env HOME="$REQ_DIR")
	"${@:1:$#-1}" "${pre[@]}" bash -c "${!#}"
}

GIT="git -c user.name=bench -c user.email=bench@localhost -c safe.directory=* -c gc.auto=0"
# NAME CMD (run in DIR/TOP except untar), in this order
WORKLOADS=(
	"untar|tar xf '$TAR'"
	"lsr-cold|ls -lR '$TOP' >/dev/null"
	"stat-warm|find '$TOP' -print0 | xargs -0 stat >/dev/null"
	"gitcommit|cd '$TOP' && $GIT init -q && $GIT add -A && $GIT commit -q -m tree"
	"gitstatus-warm|cd '$TOP' && $GIT status --porcelain >/dev/null"
	"gitstatus-cold|cd '$TOP' && $GIT status --porcelain >/dev/null"
	"rm|rm -rf '$TOP'"
)

OUT=$REQ_DIR/counts.tsv
: >"$OUT"
mount_it
# the mount's root is the vault's (0700, root's): open to REQ_USER's walk
[ -n "$REQ_USER" ] && chmod 755 "$MNT"
for class in $REQ_CLASSES; do
	DIR=$MNT/$class
	mkdir -p "$DIR"
	[ -n "$REQ_USER" ] && chown "$REQ_USER:" "$DIR"
	for w in "${WORKLOADS[@]}"; do
		name=${w%%|*} cmd=${w#*|}
		case $name in *-cold) cold ;; esac
		before=$(requests)
		(cd "$DIR" && as_user "$cmd") >>"$REQ_DIR/work.log" 2>&1 ||
			die "$name in $class failed: $(tail -n 2 "$REQ_DIR/work.log")"
		after=$(requests)
		printf '%s\t%s\t%s\t%s\n' "$class" "$name" "$before" "$after" >>"$OUT"
		log "$class $name done"
		# the cold runs start from what the run before left: lsr after untar
		[ "$name" = untar ] && cold
	done
done
unmount_it

if [ "$REQ_STRACE" = 1 ]; then
	E=$REQ_DIR/ext4
	mkdir -p "$E"
	[ -n "$REQ_USER" ] && chown "$REQ_USER:" "$E"
	for w in "${WORKLOADS[@]}"; do
		name=${w%%|*} cmd=${w#*|}
		(cd "$E" && as_user strace -c -f -o "$REQ_DIR/strace-$name.txt" "$cmd") >>"$REQ_DIR/work.log" 2>&1
	done
fi

echo "Tree: $REQ_SRC, $FILES files, $ENTRIES entries; wardfs $("$WARDFS" --version 2>/dev/null | head -n 1);" \
	"kernel $(uname -r); workloads as ${REQ_USER:-root}"
echo
/usr/bin/python3 - "$OUT" "$FILES" <<'EOF'
import collections, sys
out, files = sys.argv[1], int(sys.argv[2])
def parse(s):
    return collections.Counter({k: int(v) for k, v in (kv.split("=") for kv in s.split())})
print("Requests per regular file of the tree (kinds under 0.01 per file are in `other`):\n")
print("| class | workload | per file | by kind |")
print("| --- | --- | ---: | --- |")
for line in open(out):
    cls, work, before, after = line.rstrip("\n").split("\t")
    d = parse(after)
    d.subtract(parse(before))
    d = +d
    total = sum(d.values())
    shown = [(k, v) for k, v in sorted(d.items()) if v / files >= 0.01]
    rest = total - sum(v for _, v in shown)
    kinds = [f"{k} {v / files:.2f}" for k, v in shown]
    kinds += [f"other {rest / files:.2f}"] if rest else []
    kinds = ", ".join(kinds)
    print(f"| {cls} | {work} | {total / files:.2f} | {kinds} |")
EOF
if [ "$REQ_STRACE" = 1 ]; then
	echo
	echo "Syscalls on plain ext4 (strace -c -f), per file:"
	for w in "${WORKLOADS[@]}"; do
		name=${w%%|*}
		printf '%s: ' "$name"
		# columns: % time, seconds, usecs/call, calls, [errors,] syscall
		awk -v f="$FILES" '$4 ~ /^[0-9]+$/ && $NF != "total" && $4 / f >= 0.05 {
			printf "%s %.2f, ", $NF, $4 / f }' "$REQ_DIR/strace-$name.txt"
		echo
	done
fi

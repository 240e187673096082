#!/usr/bin/env bash
# bench/writes.sh - what format 2 and the undo journal cost writes of
# sensitive files: the same fio jobs on sensitive files of two wardfs builds
# (BEFORE and AFTER, e.g. the commit before the change and HEAD), one mount
# at a time, median of BENCH_REPEAT runs, as a Markdown table.
#
#   BEFORE=/path/to/old/wardfs AFTER=build/wardfs bash bench/writes.sh
#
# Needs root and fio (installed by bench/run.sh's set-up). Leaves nothing
# mounted and removes its directory.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BEFORE=${BEFORE:?set BEFORE to the old wardfs binary}
AFTER=${AFTER:-$ROOT/build/wardfs}
BENCH_REPEAT=${BENCH_REPEAT:-3}
DIR=$(mktemp -d /var/tmp/wardfs-writes.XXXXXX)
MNT=$DIR/mnt

cleanup() {
	if findmnt -rn -o TARGET | grep -q "^$MNT\$"; then
		"$AFTER" umount "$MNT" 2>/dev/null || umount -l "$MNT"
	fi
	rm -rf --one-file-system "$DIR"
}
trap cleanup EXIT

printf 'correct horse battery staple\n' >"$DIR/pass"
chmod 600 "$DIR/pass"
printf 'default public\nsensitive /secret/**\n' >"$DIR/policy"

# job NAME FIO-ARGS...: prints the job's write bandwidth in KiB/s
job() {
	local name=$1
	shift
	fio --name="$name" --ioengine=psync --numjobs=1 --fallocate=none --output-format=json \
		--filename="$MNT/secret/$name" "$@" >"$DIR/$name.json"
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["jobs"][0]["write"]["bw"])' \
		"$DIR/$name.json"
	rm -f "$MNT/secret/$name"
}

run_build() {
	local bin=$1 label=$2
	rm -rf "$DIR/vault" "$DIR/audit.db"* && mkdir -m 700 "$DIR/vault" && mkdir -p "$MNT"
	"$bin" init --passfile "$DIR/pass" --kdf-memory 8 --kdf-ops 1 --policy "$DIR/policy" \
		"$DIR/vault/backing" >/dev/null
	"$bin" mount --passfile "$DIR/pass" --policy "$DIR/policy" --audit-db "$DIR/audit.db" \
		--log "$DIR/log" "$DIR/vault/backing" "$MNT"
	mkdir -p "$MNT/secret"
	for r in $(seq "$BENCH_REPEAT"); do
		echo "$label seqwrite $(job seq --rw=write --bs=1M --size=1G --end_fsync=1)"
		echo "$label randwrite $(job rand --rw=randwrite --bs=4k --size=64M --time_based \
			--runtime=10 --end_fsync=1)"
		echo "$label append-fsync $(job app --rw=write --bs=512 --size=2M --fsync=1)"
		echo "$label append $(job log --rw=write --bs=100 --size=4M)"
		sync
		echo 3 >/proc/sys/vm/drop_caches
	done
	"$bin" umount "$MNT"
}

{
	run_build "$BEFORE" before
	run_build "$AFTER" after
} | tee "$DIR/raw"

python3 - "$DIR/raw" <<'EOF'
import statistics, sys
vals = {}
for line in open(sys.argv[1]):
    label, wl, v = line.split()
    vals.setdefault(wl, {}).setdefault(label, []).append(float(v))
print("| workload (sensitive file) | before KiB/s | after KiB/s | after / before |")
print("| --- | ---: | ---: | ---: |")
for wl, d in vals.items():
    b, a = statistics.median(d["before"]), statistics.median(d["after"])
    print(f"| {wl} | {b:,.0f} | {a:,.0f} | {a / b:.2f} |")
EOF

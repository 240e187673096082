#!/bin/bash
# sustained-open.sh - the audit's cost under an open-heavy load that does not
# stop: ROUNDS x 100,000 opens back to back on one mount (more rows than the
# 64 MiB journal holds), with the audit and with --no-audit, alternating,
# REPEAT times; prints the median opens/s of each and their ratio, and how
# long the unmount then waits for the rows still in the journal.
#
#   sudo bash bench/sustained-open.sh [ROUNDS [THREADS [REPEAT]]]   (10 8 3)
#
# bench/run.sh measures single bursts on an idle mount; this measures what a
# burst longer than the journal costs. Run it on a quiet machine, like run.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WARDFS=${WARDFS:-$ROOT/build/wardfs}
ROUNDS=${1:-10} THREADS=${2:-8} REPEAT=${3:-3}
FILES=100000 DIRS=100
DIR=$(mktemp -d /var/tmp/wardfs-sustained.XXXXXX)
MNT=$DIR/mnt

cleanup() {
	mountpoint -q "$MNT" 2>/dev/null && { "$WARDFS" umount "$MNT" || umount -l "$MNT"; }
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ "$(id -u)" = 0 ] || { echo "sustained-open.sh: run as root" >&2; exit 1; }
[ -x "$WARDFS" ] || { echo "sustained-open.sh: $WARDFS is missing: run 'make'" >&2; exit 1; }
cc -O2 -Wall -pthread -o "$DIR/openbench" "$ROOT/bench/openbench.c"
echo pw >"$DIR/pass"
chmod 600 "$DIR/pass"
printf 'default public\n' >"$DIR/policy"
mkdir "$DIR/back" "$MNT"
chmod 700 "$DIR/back"
"$WARDFS" init --passfile "$DIR/pass" --kdf-memory 8 --kdf-ops 1 "$DIR/back" >/dev/null 2>&1

mnt() {
	rm -f "$DIR"/db*
	"$WARDFS" mount --passfile "$DIR/pass" --policy "$DIR/policy" --audit-db "$DIR/db" \
		--log "$DIR/log" "$@" "$DIR/back" "$MNT"
}
now() { date +%s.%N; }

mnt --no-audit
"$DIR/openbench" create "$MNT" $FILES $DIRS >/dev/null
"$WARDFS" umount "$MNT"
sync

: >"$DIR/results"
for ((r = 1; r <= REPEAT; r++)); do
	for mode in audit no-audit; do
		if [ $mode = audit ]; then mnt; else mnt --no-audit; fi
		"$DIR/openbench" open "$MNT" $FILES $DIRS 1 >/dev/null # stat + warm up, untimed
		t0=$(now)
		for ((i = 0; i < ROUNDS; i++)); do
			"$DIR/openbench" open "$MNT" $FILES $DIRS "$THREADS" >/dev/null
		done
		t1=$(now)
		"$WARDFS" umount "$MNT"
		t2=$(now)
		echo "$mode $(echo "$ROUNDS * $FILES / ($t1 - $t0)" | bc) $(echo "$t2 - $t1" | bc)" |
			tee -a "$DIR/results" >&2
	done
done
python3 - "$DIR/results" "$ROUNDS" "$THREADS" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
rate = {m: [float(r[1]) for r in rows if r[0] == m] for m in ("audit", "no-audit")}
drain = [float(r[2]) for r in rows if r[0] == "audit"]
a, n = statistics.median(rate["audit"]), statistics.median(rate["no-audit"])
print(f"{int(sys.argv[2]) * 100000} opens, {sys.argv[3]} threads, one mount: "
      f"audit {a:,.0f} opens/s, no audit {n:,.0f} opens/s, ratio {a / n:.2f}x; "
      f"unmount waited {statistics.median(drain):.1f} s for the rest of the rows "
      f"(runs: audit {sorted(int(x) for x in rate['audit'])}, "
      f"no audit {sorted(int(x) for x in rate['no-audit'])})")
EOF

#!/bin/bash
# Builds every libFuzzer target with clang (ASan+UBSan) and runs each for a
# short, bounded time: FUZZ_SECONDS (default 20) per target. Crashes fail.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/build-fuzz"
secs=${FUZZ_SECONDS:-20}
mkdir -p "$out"

# target:module:extra link flags
targets=(
	"fuzz_policy:policy:"
	"fuzz_header:crypto:-lcrypto -lsodium"
	"fuzz_keyfile:crypto:-lcrypto -lsodium"
)

failed=0 ran=0
for t in "${targets[@]}"; do
	IFS=: read -r name mod libs <<<"$t"
	src="$root/tests/fuzz/$name.c"
	[ -f "$src" ] || continue
	# shellcheck disable=SC2086
	clang -g -O1 -std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DWFS_FUZZING \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-I"$root/$mod" "$src" $(ls "$root/$mod"/*.c) $libs -lpthread -o "$out/$name"
	corpus="$out/corpus-$name"
	mkdir -p "$corpus"
	if [ -d "$root/tests/fuzz/seeds/$name" ]; then
		cp -n "$root/tests/fuzz/seeds/$name"/* "$corpus"/ 2>/dev/null || true
	fi
	echo "fuzz: $name for ${secs}s"
	ran=$((ran + 1))
	if ! (cd "$out" && ASAN_OPTIONS=detect_leaks=1 "./$name" -max_total_time="$secs" \
		-max_len=65536 -rss_limit_mb=2048 "$corpus" >"$out/$name.log" 2>&1); then
		echo "fuzz: $name FAILED; see $out/$name.log"
		tail -40 "$out/$name.log"
		failed=$((failed + 1))
	fi
done
echo "fuzz: $ran targets, $failed failed"
[ "$failed" -eq 0 ]

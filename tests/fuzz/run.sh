#!/bin/bash
# Builds every libFuzzer target with clang (ASan+UBSan) through CMake
# (-DWARDFS_FUZZ=ON, in build-fuzz/) and runs each for a short, bounded
# time: FUZZ_SECONDS (default 20) per target. Crashes fail.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/build-fuzz"
secs=${FUZZ_SECONDS:-20}
export PKG_CONFIG_PATH="$root/deps/libfuse/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

mkdir -p "$out"
cmake -S "$root" -B "$out" -DCMAKE_C_COMPILER=clang -DWARDFS_FUZZ=ON -DWARDFS_TESTS=OFF \
	>"$out/cmake.log" 2>&1 || {
	cat "$out/cmake.log"
	exit 1
}
cmake --build "$out" -j2 --target fuzzers >/dev/null

failed=0 ran=0
for src in "$root"/tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
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

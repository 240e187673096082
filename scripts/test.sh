#!/bin/bash
# Runs every test: clang-tidy (scripts/lint.sh), unit tests (ctest), the
# same under ASan/UBSan together with integration tests on a mount of the
# ASan binary, the concurrent integration tests on a mount of a
# ThreadSanitizer binary, the fuzz targets for a bounded time, and the
# integration tests on real mounts of build/wardfs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PKG_CONFIG_PATH="$root/deps/libfuse/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
fails=0
step() { printf '\n== %s\n' "$*"; }

step "code format (.clang-format)"
git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror || fails=$((fails + 1))

step "clang-tidy (.clang-tidy)"
bash scripts/lint.sh || fails=$((fails + 1))

step "unit tests"
(cd build && ctest --output-on-failure -j2) || fails=$((fails + 1))

step "ASan/UBSan build and unit tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DWARDFS_SANITIZE=ON >/dev/null
cmake --build build-asan -j2 >/dev/null
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j2) || fails=$((fails + 1))

step "integration tests on the ASan binary"
WARDFS_BIN="$root/build-asan/wardfs" ASAN_OPTIONS=detect_leaks=0 \
	/usr/bin/python3 -m pytest -q -p no:cacheprovider -m "not long" tests/integration \
	-k "not many_files and not git_and_c and not sigkill_during_appends" || fails=$((fails + 1))

step "integration tests on the TSan binary (the concurrent ones)"
bash scripts/tsan.sh || fails=$((fails + 1))

step "fuzz targets (${FUZZ_SECONDS:=15}s each)"
FUZZ_SECONDS=$FUZZ_SECONDS bash tests/fuzz/run.sh || fails=$((fails + 1))

step "integration tests"
/usr/bin/python3 -m pytest -q -p no:cacheprovider -m "not long" tests/integration ||
	fails=$((fails + 1))

if [ "$fails" -ne 0 ]; then
	echo "test: $fails step(s) failed"
	exit 1
fi
echo "test: all steps passed"

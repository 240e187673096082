#!/bin/bash
# clang-tidy with the checks of .clang-tidy over every first-party .c in
# build/compile_commands.json, the unit tests' too; fails on any finding
# (WarningsAsErrors '*').
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${BUILD:-build}
if [ ! -f "$build/compile_commands.json" ]; then
	echo "lint: no $build/compile_commands.json; run make first" >&2
	exit 1
fi
files=$(python3 -c '
import json, sys
for e in json.load(open(sys.argv[1])):
    print(e["file"])' "$build/compile_commands.json" |
	grep -E "^$root/(policy|crypto|audit|vault|daemon|cli|pam|tests)/" | sort -u)
# On failure show the findings, not the command lines nor the per-file
# "N warnings generated" (warnings in system headers, never shown).
run-clang-tidy -j2 -quiet -p "$build" $files >"$build/lint.log" 2>&1 || {
	grep -vE '^(clang-tidy|[0-9]+ warnings? (and [0-9]+ errors? )?generated|Suppressed)' \
		"$build/lint.log" >&2
	echo "lint: clang-tidy found problems (full log: $build/lint.log)" >&2
	exit 1
}
echo "lint: clean ($(echo "$files" | wc -l) files)"

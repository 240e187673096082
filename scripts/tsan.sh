#!/bin/bash
# Builds build-tsan/wardfs with ThreadSanitizer and runs the integration
# tests that put requests of one mount in flight at once on it. Fails when a
# test fails or when any process of the binary reported anything.
# Run by scripts/test.sh (make test); alone: make tsan.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PKG_CONFIG_PATH="$root/deps/libfuse/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWARDFS_TSAN=ON \
	-DWARDFS_TESTS=OFF >/dev/null
cmake --build build-tsan -j2 >/dev/null

# Writers and readers of one file, saves by rename, policy reloads under
# load, read-ahead streams, many users: about 3 minutes here (2 cores),
# where the whole suite takes 15 on this binary.
it=tests/integration
tests=(
	$it/test_fs.py::test_concurrent_writers
	$it/test_fs.py::test_status_while_files_come_and_go
	$it/test_fs.py::test_editor_save_by_rename
	$it/test_fs.py::test_rename_noreplace_and_exchange
	$it/test_fs.py::test_directory_rename_keeps_children
	$it/test_fs.py::test_no_passthrough_forwards
	$it/test_sensitive.py::test_concurrent_writers_and_readers
	$it/test_sensitive.py::test_bursts_of_concurrent_readers_do_not_grow_the_daemon
	$it/test_sensitive.py::test_stream_sees_writes_made_while_it_reads_ahead
	$it/test_sensitive.py::test_stream_tampered_block_reads_eio
	$it/test_sensitive.py::test_stream_never_serves_bytes_older_than_a_finished_write
	$it/test_sensitive.py::test_streams_end_with_their_files
	$it/test_sensitive.py::test_editor_save_by_rename
	$it/test_sensitive.py::test_sqlite_database
	$it/test_sensitive.py::test_truncate_shrink_grow
	$it/test_data_safety.py::test_atomic_save_never_stale
	$it/test_data_safety.py::test_policy_flips_under_random_operations
	$it/test_audit.py::test_exact_rows_for_concurrent_opens
	"$it/test_audit.py::test_failure_open_serves_and_counts_lost[full]" # [ ] quoted: a glob
	$it/test_users.py::test_permissions_are_the_callers
	$it/test_names.py::test_concurrent_creates_renames_and_listings
	$it/test_users.py::test_allow_exe_real_program_works
	$it/test_policy.py::test_reload_on_edit_and_bad_policy_keeps_old
	$it/test_policy.py::test_status_shows_policy
	$it/test_hostile.py::test_open_is_never_recorded_under_a_removed_name
	$it/test_requests.py::test_concurrent_listings_while_names_come_and_go # readdirs without handles
	$it/test_forward.py::test_host_outage_cursor # the forwarder thread, woken by the writer, during opens
	$it/test_lock.py::test_lock_under_load_loses_nothing # keys wiped and back under readers and writers
)

# Mounts use io_uring whenever the kernel offers it, and TSan cannot see
# the order io_uring gives (below): with the switch on, turn it off for the
# run and put it back, whatever happens.
uring=/sys/module/fuse/parameters/enable_uring uring_was=
if [ -w "$uring" ] && [ "$(cat "$uring")" = Y ]; then
	uring_was=Y
	echo N >"$uring"
fi
restore_uring() { [ -z "$uring_was" ] || echo "$uring_was" >"$uring"; }
trap restore_uring EXIT

# What TSan can see: it takes every read(2) of a file as ordered after every
# earlier write(2) to any file (io_sync=1), which is how it learns that the
# kernel answered an open before it sent the reads of that handle, through
# /dev/fuse. The same rule orders two requests whenever one's backing I/O
# came before the other's, so only races between requests that really run
# at once are reported: hence tests that run many at once. test_uring.py
# is left out: requests answered through io_uring are not read(2)/write(2)
# that TSan sees, so a FORGET read from /dev/fuse looks unordered with the
# CREATE a ring thread answered, which the kernel orders (it learns the node
# from that answer): a false report, seen once when tried.
#
# The daemon runs detached with its stderr in a --log file that most tests
# never read, and its exit status is nobody's: every process of the binary
# (daemon and CLI) writes its reports to tsan.PID in a directory of their
# own instead, and any such file fails the step. halt_on_error=0: one run
# lists every race, not only the first, and a daemon is not killed mid-test.
logs=$(mktemp -d /tmp/wardfs-tsan.XXXXXX)
trap 'rm -rf "$logs"; restore_uring' EXIT
fails=0
WARDFS_BIN="$root/build-tsan/wardfs" \
	TSAN_OPTIONS="log_path=$logs/tsan halt_on_error=0 second_deadlock_stack=1 suppressions=$root/tests/tsan.supp" \
	/usr/bin/python3 -m pytest -q -p no:cacheprovider "${tests[@]}" "$@" || fails=1
if compgen -G "$logs/tsan.*" >/dev/null; then
	cat "$logs"/tsan.*
	echo "tsan: ThreadSanitizer reported the above ($(ls "$logs" | wc -l) process(es))"
	fails=1
fi
exit $fails

#!/bin/bash
# Installs what wardfs needs to build and test on Debian 12, idempotently:
# apt packages, and libfuse >= 3.18 with FUSE over io_uring built from
# Debian's source package into a project-local prefix (deps/) when the
# system's libfuse is older. Never replaces or upgrades a system package.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
deps="$root/deps"
fuse_min=3.18
# What deps/libfuse/.done must say for the build there to be reused: a
# checkout that wants another libfuse (a new minimum, another suite, built
# without io_uring) rebuilds it instead of linking against the old one.
fuse_stamp="fuse3>=$fuse_min from sid source, io_uring"

apt_pkgs=(build-essential cmake pkg-config meson ninja-build dpkg-dev
	  libssl-dev libsodium-dev libsqlite3-dev sqlite3 libcmocka-dev
	  clang clang-format fuse3 attr acl python3 python3-pytest git rsync
	  clang-tidy # clang-tidy: the lint step of `make test` (scripts/lint.sh)
	  libpam-mount # libpam-mount: the login-unlock test (tests/integration/test_pam.py)
	  libpam0g-dev # libpam0g-dev: builds pam/pam_wardfs.so (tests/integration/test_pam_passwd.py)
	  hxtools # hxtools: ofl, which pam_mount's <logout> signals leftover processes with
	  strace # strace: a traced allowed program is refused (tests/integration/test_users.py)
	  chromium # chromium: the audit report rendered headless (tests/integration/test_report.py)
	  # liburing-dev, libnuma-dev: libfuse's FUSE over io_uring (meson
	  # needs liburing with IORING_SETUP_SQE128, which 2.3 has, and libnuma);
	  # tests/integration/test_uring.py mounts with it
	  liburing-dev libnuma-dev
	  libsystemd-dev # libsystemd-dev: sd_journal_sendv for --audit-forward=journal (audit/fwd_journal.c)
	  libtss2-dev # libtss2-dev: tpm2-tss (ESAPI, tctildr, mu, rc) for tpm2 key slots (crypto/tpm2.c)
	  # swtpm, swtpm-tools, tpm2-tools: a software TPM each test starts, and
	  # tpm2_pcrextend to change a PCR under a sealed slot (tests/integration/test_tpm2.py)
	  swtpm swtpm-tools tpm2-tools
	  rsyslog rsyslog-relp) # rsyslog, rsyslog-relp: the host and central rsyslogd of tests/integration/test_forward.py (their own instances; the system service is not used)

log() { printf 'setup: %s\n' "$*" >&2; }

install_apt() {
	local missing=()
	for p in "${apt_pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		return
	fi
	log "installing: ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		log "need root to install packages; run as root"; exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-upgrade "${missing[@]}" >/dev/null
}

# A system libfuse is used only when it is new enough and built with FUSE
# over io_uring (liburing among its private requirements).
system_fuse_ok() {
	pkg-config --exists "fuse3 >= $fuse_min" 2>/dev/null &&
		pkg-config --print-requires-private fuse3 2>/dev/null | grep -q '^liburing'
}

# Builds libfuse from Debian sid's source package (deb-src only: no binary of
# the next release is ever installed; Debian 13 has 3.17, without io_uring)
# into deps/libfuse, against bookworm's liburing and libnuma. Skipped when
# .done holds this checkout's stamp; otherwise the prefix is emptied first so
# that no library of an older build (3.17's libfuse3.so.3.17.2) stays beside the
# new one.
build_libfuse() {
	local prefix="$deps/libfuse"
	if [ -f "$prefix/.done" ] && [ "$(cat "$prefix/.done")" = "$fuse_stamp" ]; then
		return
	fi
	log "building libfuse >= $fuse_min from Debian's source package into $prefix"
	local apt="$deps/apt"
	rm -rf "$apt" "$deps/src" "$prefix"
	mkdir -p "$apt/lists/partial" "$deps/src"
	echo "deb-src http://deb.debian.org/debian sid main" >"$apt/sources.list"
	local opts=(-o "Dir::Etc::SourceList=$apt/sources.list"
		    -o "Dir::Etc::SourceParts=/dev/null"
		    -o "Dir::State::Lists=$apt/lists"
		    -o "APT::Sandbox::User=root")
	apt-get -qq "${opts[@]}" update
	(cd "$deps/src" && apt-get -qq "${opts[@]}" source fuse3 >/dev/null)
	local src
	src=$(find "$deps/src" -maxdepth 1 -type d -name 'fuse3-*' | head -n1)
	[ -n "$src" ] || { log "apt-get source fuse3 gave no source tree"; exit 1; }
	local version=${src##*/fuse3-}
	if [ "$(printf '%s\n' "$fuse_min" "$version" | sort -V | head -n1)" != "$fuse_min" ]; then
		log "Debian's source package has libfuse $version; wardfs needs >= $fuse_min"
		exit 1
	fi
	meson setup "$src/build" "$src" --prefix="$prefix" --libdir=lib \
		-Dexamples=true -Dutils=false -Dtests=false \
		-Ddisable-mtab=true -Denable-io-uring=true -Dbuildtype=release \
		>"$deps/libfuse-build.log" 2>&1 ||
		{ tail -20 "$deps/libfuse-build.log"; exit 1; }
	# meson leaves io_uring out quietly when liburing falls short: say so
	# instead of building a libfuse that cannot do what --io-uring asks.
	grep -q '^#define HAVE_URING' "$src/build/fuse_config.h" ||
		{ log "libfuse $version was configured without io_uring (see $deps/libfuse-build.log)"; exit 1; }
	ninja -C "$src/build" >>"$deps/libfuse-build.log" 2>&1 ||
		{ tail -20 "$deps/libfuse-build.log"; exit 1; }
	ninja -C "$src/build" install >>"$deps/libfuse-build.log" 2>&1
	# passthrough_hp is the benchmark's reference peer.
	install -m755 "$src/build/example/passthrough_hp" "$prefix/bin/passthrough_hp" 2>/dev/null ||
		{ mkdir -p "$prefix/bin"; install -m755 "$src/build/example/passthrough_hp" "$prefix/bin/"; }
	echo "$fuse_stamp" >"$prefix/.done"
}

install_apt
mkdir -p "$deps"
if system_fuse_ok; then
	log "system libfuse is new enough"
else
	build_libfuse
fi
modprobe fuse 2>/dev/null || true

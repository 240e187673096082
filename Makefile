# Thin wrapper over CMake: `make` sets up and builds build/wardfs,
# `make demo` runs the demo, `make test` runs every test, `make lint` clang-tidy, `make test-long` the soaks, `make install`
# installs (PREFIX, default /usr/local, under DESTDIR if set).
BUILD ?= build
PREFIX ?= /usr/local
DESTDIR ?=
ROOT := $(CURDIR)
export PKG_CONFIG_PATH := $(ROOT)/deps/libfuse/lib/pkgconfig:$(PKG_CONFIG_PATH)

.PHONY: all setup build install demo test test-long unit integration asan tsan fuzz bench format lint clean

all: build

setup:
	@bash scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j2

install: build
	@DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

demo: build
	@bash scripts/demo.sh

test: build
	@bash scripts/test.sh

# Soak and long crash loops (pytest marker `long`), kept out of `make test`.
test-long: build
	@/usr/bin/python3 -m pytest -q -p no:cacheprovider -m long tests/integration

asan: setup
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DWARDFS_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j2

# The concurrent integration tests on a ThreadSanitizer build (part of `make test`).
tsan: setup
	@bash scripts/tsan.sh

fuzz: setup
	@bash tests/fuzz/run.sh

bench: build
	@bash bench/run.sh

# clang-tidy with .clang-tidy's checks (part of `make test`).
lint: build
	@bash scripts/lint.sh

format:
	@find policy crypto audit vault daemon cli pam include tests bench -name '*.[ch]' | xargs clang-format -i

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz

# rehome top-level Makefile. `make demo` and `make test` work on a fresh Debian 12 machine as root:
# they install what is missing (apt), configure, build and run.
SHELL := /bin/bash
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
DEB_PACKAGES := cmake ninja-build g++ pkg-config libabsl-dev libboost-dev nlohmann-json3-dev \
  libxml2-dev libxml2-utils libvirt-dev libvirt-clients libgtest-dev libgmock-dev \
  libbenchmark-dev libseccomp-dev zlib1g-dev qemu-system-x86 python3 python3-matplotlib \
  acpica-tools busybox-static cpio

.PHONY: all deps build build-asan test test-asan test-fast test-nested demo bench clean format tidy

all: build

deps:
	@bash scripts/install-deps.sh $(DEB_PACKAGES)

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD) -j $(JOBS)

# The sanitizer build reuses the guest image of the normal build (the guest is freestanding).
build-asan: build
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DREHOME_SANITIZE=ON \
	  -DREHOME_GUEST_ELF=$(abspath $(BUILD))/guest/rehome-guest.elf $(CMAKE_FLAGS)
	ninja -C $(ASAN_BUILD) -j $(JOBS)

# All tests: the GoogleTest suite and peer tests on the normal build, then the suite again under
# ASan+UBSan.
test: build build-asan
	ctest --test-dir $(BUILD) --output-on-failure -j 1
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j 1 -LE no-asan

test-fast: build
	ctest --test-dir $(BUILD) --output-on-failure -j 1

# The nested tests on the emulated AMD host (QEMU TCG with SVM; docs/nested.md): boots it with
# a time bound and fails when a test inside fails. Not part of `make test` (docs/benchmarks.md
# records its run). NESTED_TESTS=name,name,... selects tests (default all).
NESTED_TESTS ?= all
test-nested: build
	bash scripts/nested-host/run.sh $(BUILD) $(NESTED_TESTS)

demo: build
	bash scripts/demo.sh $(BUILD)

bench: build
	bash bench/run-all.sh $(BUILD)

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i --style=file

tidy: build
	git ls-files '*.cc' | grep -v '^guest/' | xargs clang-tidy -p $(BUILD) --quiet

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

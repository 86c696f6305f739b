# rehome top-level Makefile. `make demo` and `make test` work on a fresh Debian 12 machine as root:
# they install what is missing (apt), configure, build and run.
SHELL := /bin/bash
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
# `make fuzz` runs each fuzz target this long; `make test` runs each for CI_FUZZ_SECONDS.
FUZZ_SECONDS ?= 60
CI_FUZZ_SECONDS ?= 5
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
DEB_PACKAGES := cmake ninja-build g++ pkg-config libabsl-dev libboost-dev nlohmann-json3-dev \
  libxml2-dev libxml2-utils libvirt-dev libvirt-clients libgtest-dev libgmock-dev \
  libbenchmark-dev libseccomp-dev zlib1g-dev qemu-system-x86 python3 python3-matplotlib \
  iproute2 iputils-ping acpica-tools busybox-static cpio clang libclang-rt-14-dev

.PHONY: all deps build build-asan build-tsan fuzz-build fuzz test test-asan test-tsan test-fuzz \
  test-fast test-nested demo bench clean format tidy

all: build

deps:
	@bash scripts/install-deps.sh $(DEB_PACKAGES)

# The normal build compiles -O2 with line tables (-g1: perf, backtraces and file:line, no
# variables; 20-35% less CPU per source than -g, which CI feels). Full debug information:
# CMAKE_FLAGS="-DCMAKE_CXX_FLAGS_RELWITHDEBINFO='-O2 -g -DNDEBUG'".
NORMAL_FLAGS := "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" \
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja $(NORMAL_FLAGS) $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD) -j $(JOBS)

# The sanitizer builds reuse the guest image of the normal build (the guest is freestanding).
# They compile with -O1 -g1 (line tables: sanitizer reports keep file:line): 37% less CPU than
# -O2 -g for the ASan build (12.3 vs 19.5 CPU minutes on the 2-core host), which CI feels.
SANITIZER_FLAGS := "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" \
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
build-asan: build
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DREHOME_SANITIZE=ON $(SANITIZER_FLAGS) \
	  -DREHOME_GUEST_ELF=$(abspath $(BUILD))/guest/rehome-guest.elf $(CMAKE_FLAGS)
	ninja -C $(ASAN_BUILD) -j $(JOBS)

# The ThreadSanitizer build: only the tests labelled tsan (the concurrent parts) and the
# binaries they run.
build-tsan: build
	cmake -S . -B $(TSAN_BUILD) -G Ninja -DREHOME_TSAN=ON $(SANITIZER_FLAGS) \
	  -DREHOME_GUEST_ELF=$(abspath $(BUILD))/guest/rehome-guest.elf $(CMAKE_FLAGS)
	ninja -C $(TSAN_BUILD) -j $(JOBS) rehome_tsan_tests

# The libFuzzer targets (tests/fuzz/, clang, ASan+UBSan; docs/fuzzing.md).
fuzz-build: deps
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DREHOME_FUZZ=ON -DREHOME_BUILD_GUEST=OFF \
	  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ $(CMAKE_FLAGS)
	ninja -C $(FUZZ_BUILD) -j $(JOBS) rehome_fuzzers

fuzz: fuzz-build
	bash scripts/run-fuzzers.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# All tests: the GoogleTest suite and peer tests on the normal build, the suite again under
# ASan+UBSan, the concurrent parts' tests under TSan, and every fuzz target briefly.
test: build build-asan build-tsan fuzz-build
	ctest --test-dir $(BUILD) --output-on-failure -j 1
	$(MAKE) --no-print-directory test-asan test-tsan test-fuzz

test-asan:
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j 1 -LE no-asan

# TSan reports of every process (the tests and the L1s they start) go to files, which must be
# absent or empty afterwards: an L1's report would otherwise only look like a crash L0 recovers
# from. A confined L1 opens its report file before confinement (vmm/l1/l1_sanitizer_reports.h).
test-tsan:
	rm -rf $(TSAN_BUILD)/tsan-reports && mkdir -p $(TSAN_BUILD)/tsan-reports
	status=0; \
	TSAN_OPTIONS="log_path=$(abspath $(TSAN_BUILD))/tsan-reports/report second_deadlock_stack=1 \
	  suppressions=$(abspath scripts/tsan.supp)" \
	  ctest --test-dir $(TSAN_BUILD) --output-on-failure -j 1 -L tsan || status=$$?; \
	reports=$$(find $(TSAN_BUILD)/tsan-reports -name 'report.*' -size +0c); \
	if [ -n "$$reports" ]; then \
	  cat $$reports; echo "make: ThreadSanitizer reported the above"; status=1; fi; \
	exit $$status

test-fuzz:
	bash scripts/run-fuzzers.sh $(FUZZ_BUILD) $(CI_FUZZ_SECONDS)

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

# clang-tidy reads the compile commands of a configuration without precompiled headers (clang
# cannot read GCC's); nothing is built there (no source includes a generated file).
TIDY_BUILD ?= build-tidy
tidy: deps
	cmake -S . -B $(TIDY_BUILD) -G Ninja -DCMAKE_DISABLE_PRECOMPILE_HEADERS=ON $(CMAKE_FLAGS) >/dev/null
	git ls-files '*.cc' | grep -v '^guest/' | xargs clang-tidy -p $(TIDY_BUILD) --quiet

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD) $(TIDY_BUILD)

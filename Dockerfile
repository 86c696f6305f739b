# rehome container image (Debian 12 "bookworm").
#
#   docker build -t rehome .
#       stage `build`: installs the build dependencies (the Makefile's DEB_PACKAGES), builds
#       rehome and the test guest (CMake + Ninja, Release) and runs every test that does not
#       need /dev/kvm (`ctest -LE kvm`; a docker build cannot be given a device);
#       stage `runtime` (the default target): the rehome binary, the test guest and the
#       runtime libraries only.
#   docker run --rm --device /dev/kvm rehome run \
#       --kernel /usr/local/share/rehome/rehome-guest.elf --cpus 2 \
#       --cmdline "workload=counter steps=2000000"
#   docker build --target build -t rehome-build . &&
#   docker run --rm --device /dev/kvm rehome-build ctest --test-dir /src/build --output-on-failure
#       the whole suite, KVM tests included.
#
# rehome spawns its L1 hypervisor processes from its own binary (/proc/self/exe) and needs no
# other file at run time. Without CAP_SYS_NICE the L1s cannot use SCHED_FIFO (nor nice -10) and
# run at normal priority, which makes exit round trips, failovers and hang detection on a loaded
# host slower and noisier; `--cap-add SYS_NICE` restores it.

FROM debian:12 AS build
ARG JOBS=2
ENV DEBIAN_FRONTEND=noninteractive
# Keep in sync with DEB_PACKAGES in the Makefile.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake ninja-build g++ pkg-config libabsl-dev libboost-dev nlohmann-json3-dev \
      libxml2-dev libxml2-utils libvirt-dev libvirt-clients libgtest-dev libgmock-dev \
      libbenchmark-dev libseccomp-dev zlib1g-dev qemu-system-x86 python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . /src
RUN cmake -S /src -B /src/build -G Ninja -DCMAKE_BUILD_TYPE=Release \
 && ninja -C /src/build -j "${JOBS}"
# Tests labelled `kvm` need --device /dev/kvm (run them with `docker run`, see above); the rest
# run here. Tests that need something else the container lacks skip with a one-line reason.
RUN ctest --test-dir /src/build --output-on-failure -j 1 -LE kvm

FROM debian:12 AS runtime
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libabsl20220623 libvirt0 libxml2 zlib1g libstdc++6 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/rehome /usr/local/bin/rehome
COPY --from=build /src/build/guest/rehome-guest.elf /usr/local/share/rehome/rehome-guest.elf
ENTRYPOINT ["rehome"]
CMD ["help"]

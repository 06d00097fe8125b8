#!/bin/sh
# Installs hetrun's build and test dependencies from Debian 12 packages.
# Run as root, or as a user with sudo. The CUDA Toolkit is not a Debian package: when
# nvcc is installed (e.g. /usr/local/cuda) the CUDA backend is built, else it is skipped.
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential cmake pkg-config git ca-certificates \
    libyaml-dev libhwloc-dev hwloc libopenmpi-dev openmpi-bin \
    libopenblas-dev libcjson-dev libssl-dev zlib1g-dev libcmocka-dev libutf8proc-dev \
    ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo libclblast-dev \
    clang libclang-rt-14-dev clang-format \
    python3 python3-jsonschema python3-matplotlib \
    fortunes fortunes-min fortunes-zh libdnnl2 \
    slurm-wlm munge man-db groff-base lmod tcl > /dev/null
# slurm-wlm, munge: tests/slurm starts its own single-node Slurm (the packaged services are unused).
# libdnnl2: the cpu backend's native bf16 GEMM on AVX512-BF16/AMX CPUs (dlopen'ed, optional).
# man-db, groff-base, lmod, tcl: tests/install renders the man pages and loads the modulefiles.
echo "install-deps: done"

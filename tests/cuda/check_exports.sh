#!/bin/sh
# The CUDA module must export exactly one dynamic symbol: hetrun_backend_entry (the
# static CUDA runtime and hetrun_kernels must stay hidden), and must not need libcudart.
set -eu
mod="$1"
syms=$(nm -D --defined-only "$mod" | awk '{print $3}' | sort -u)
if [ "$syms" != "hetrun_backend_entry" ]; then
    echo "FAIL: $mod exports more than hetrun_backend_entry:" >&2
    echo "$syms" >&2
    exit 1
fi
if readelf -d "$mod" | grep -q 'NEEDED.*libcudart'; then
    echo "FAIL: $mod needs libcudart at load time (must link cudart_static)" >&2
    exit 1
fi
echo "ok: $mod exports only hetrun_backend_entry and links the CUDA runtime statically"

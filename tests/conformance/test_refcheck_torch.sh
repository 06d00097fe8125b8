#!/bin/bash
# Runs refcheck_torch.py with the first python3 that has numpy and torch (77: none has).
# usage: test_refcheck_torch.sh LIBHETRUN_KERNELS_REFCHECK.so SOURCE_DIR
. "$2/tests/report/pick_python.sh"
pick_python "numpy torch" || { echo "skipped: no python3 with numpy and torch"; exit 77; }
exec "$PY" "$2/tests/conformance/refcheck_torch.py" "$1"

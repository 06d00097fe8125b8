#!/bin/bash
# Every C/CUDA source follows .clang-format (skipped, 77, when clang-format is absent).
# One clang-format process for all files: one per file took minutes on a loaded node.
# usage: check_format.sh SOURCE_DIR
cd "$1" || exit 1
command -v clang-format > /dev/null || { echo "clang-format not installed"; exit 77; }
mapfile -t files < <(git ls-files '*.c' '*.h' '*.cu' '*.cuh' 2>/dev/null ||
    find . -name '*.[ch]' -o -name '*.cu' -o -name '*.cuh')
[ ${#files[@]} -gt 0 ] || { echo "no sources found under $1"; exit 1; }
if out=$(clang-format --dry-run -Werror "${files[@]}" 2>&1); then
    echo "all ${#files[@]} sources formatted"
    exit 0
fi
# Violations read "FILE:LINE:COL: error: code should be clang-formatted".
bad=$(printf '%s\n' "$out" | grep -oE '^[^:]+:[0-9]+:[0-9]+: error' | cut -d: -f1 | sort -u)
[ -n "$bad" ] || { echo "clang-format failed:"; printf '%s\n' "$out"; exit 1; }
for f in $bad; do echo "not formatted: $f (run clang-format -i $f)"; done
exit 1

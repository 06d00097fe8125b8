#!/bin/bash
# Every C/CUDA source follows .clang-format (skipped, 77, when clang-format is absent).
# usage: check_format.sh SOURCE_DIR
cd "$1" || exit 1
command -v clang-format > /dev/null || { echo "clang-format not installed"; exit 77; }
bad=0
while IFS= read -r f; do
    clang-format --dry-run -Werror "$f" > /dev/null 2>&1 || { echo "not formatted: $f (run clang-format -i $f)"; bad=1; }
done < <(git ls-files '*.c' '*.h' '*.cu' '*.cuh' 2>/dev/null || find . -name '*.[ch]' -o -name '*.cu' -o -name '*.cuh')
[ $bad -eq 0 ] && echo "all sources formatted"
exit $bad

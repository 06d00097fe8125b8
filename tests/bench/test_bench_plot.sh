#!/bin/bash
# bench/plot.py turns a small bench run's CSV (ops, GEMM sweep, collectives) into the
# three plots, PNG and SVG, non-empty; and refuses a CSV with nothing to plot (exit 1).
# Skipped (77) when no python3 has matplotlib. usage: test_bench_plot.sh HETRUN SOURCE_DIR
set -u
hetrun=$1 src=$2
. "$src/tests/report/pick_python.sh"
pick_python "matplotlib" || { echo "SKIP: no python3 with matplotlib (apt-get install python3-matplotlib)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
export HETRUN_CACHE_DIR="$tmp/cache"
fail=0
cat > p.yaml <<'YAML'
version: 1
job: {name: plot}
backend: cpu
workloads:
  - bench: {op: gemm, size: [32, 64, 128], dtype: [fp32, fp64], warmup: 1, iterations: 3, probe_size: 128}
  - bench: {op: [scale, softmax, layernorm], size: 64, cols: 256, warmup: 1, iterations: 3, probe_size: 128}
  - bench: {op: allreduce, min_bytes: 8, max_bytes: 64KiB, step_factor: 8, iterations: 5}
report: {formats: [json, csv]}
YAML
mpirun -np 2 "$hetrun" run -q --report "$tmp/p.json" p.yaml > p.out 2>&1 || { cat p.out; echo "FAIL: job"; fail=1; }
"$PY" "$src/bench/plot.py" --out plots p.csv p.collectives.csv > plot.out 2>&1
rc=$?
[ $rc -eq 0 ] || { cat plot.out; echo "FAIL: plot.py exited $rc"; fail=1; }
for f in gemm_gflops roofline busbw; do
    for e in png svg; do
        [ -s "plots/$f.$e" ] || { echo "FAIL: plots/$f.$e missing or empty"; fail=1; }
    done
done
head -c 8 plots/roofline.png | od -An -c | grep -q "P   N   G" || { echo "FAIL: roofline.png is not a PNG"; fail=1; }
# A python3 without matplotlib (pyenv's, first on the PATH here) re-runs plot.py with one
# that has it, and says so.
for other in $(which -a python3); do
    "$other" -c "import matplotlib" 2> /dev/null && continue
    "$other" "$src/bench/plot.py" --format png --out plots3 p.csv > re.out 2>&1 ||
        { cat re.out; echo "FAIL: plot.py under $other (no matplotlib) exited $?"; fail=1; }
    grep -q "has no matplotlib; using" re.out || { cat re.out; echo "FAIL: no word of the re-run"; fail=1; }
    [ -s plots3/roofline.png ] || { echo "FAIL: plots3/roofline.png missing after the re-run"; fail=1; }
    break
done
"$PY" "$src/bench/plot.py" --out plots2 p.usage.csv > /dev/null 2>&1
[ $? -eq 1 ] || { echo "FAIL: plot.py on a usage CSV should exit 1 (nothing to plot)"; fail=1; }
exit $fail

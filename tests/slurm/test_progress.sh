#!/bin/bash
# The progress line (util/progress.h): rank 0 only; plain lines off a terminal (here every
# update: HETRUN_PROGRESS_INTERVAL=0) naming the point i/N, the units done/total, the job's
# percentage (never going back) and, for train, the loss; \r-rewritten on a terminal and
# cleared before the table; nothing with HETRUN_PROGRESS=0.
# usage: test_progress.sh HETRUN SOURCE_DIR
set -u
hetrun=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fail=0
cat > sweep.yaml << 'YAML'
version: 1
job: {name: progress}
backend: cpu
workloads:
  - gemm: {m: [32, 64], n: 32, k: 32, warmup: 1, iterations: 4}
  - bench: {op: allreduce, min_bytes: 64, max_bytes: 4KiB, step_factor: 4, iterations: 2}
  - train: {data: {source: synthetic, samples: 256, features: 8, classes: 3}, hidden: [8], batch: 32, epochs: 1}
YAML
HETRUN_PROGRESS_INTERVAL=0 mpirun -np 2 "$hetrun" run -q -r r.json sweep.yaml > out.txt 2> err.txt ||
    { cat err.txt; echo "FAIL: the job failed"; fail=1; }
grep '^\[rank 0\] progress: ' err.txt > lines.txt
for want in 'point 1/4 gemm.*iterations 4/4' 'point 3/4 .*sizes' 'point 3/4 bench: sizes 4/4' 'point 4/4 .*steps 6/6 .*loss [0-9]' \
    'job 100%'; do
    grep -q "$want" lines.txt || { cat err.txt; echo "FAIL: no progress line matching '$want'"; fail=1; }
done
grep -q 'progress' out.txt && { echo "FAIL: progress on stdout"; fail=1; }
grep -v '^\[rank 0\]' err.txt | grep -q 'progress:' && { echo "FAIL: a rank but 0 printed progress"; fail=1; }
# The job's percentage never goes back.
sed -n 's/.* job \([0-9]*\)% .*/\1/p' lines.txt | awk 'NR > 1 && $1 < p { bad = 1 } { p = $1 } END { exit bad }' ||
    { echo "FAIL: the job percentage went back"; fail=1; }

HETRUN_PROGRESS=0 HETRUN_PROGRESS_INTERVAL=0 "$hetrun" run -q -r r0.json sweep.yaml 2> err0.txt ||
    { cat err0.txt; echo "FAIL: the job failed with HETRUN_PROGRESS=0"; fail=1; }
grep -q 'progress:' err0.txt && { echo "FAIL: HETRUN_PROGRESS=0 still printed progress"; fail=1; }

# On a terminal (script(1) gives one): rewritten in place, cleared before the table.
if command -v script > /dev/null; then
    script -qec "'$hetrun' run -r rt.json sweep.yaml" /dev/null > tty.txt 2>&1 ||
        { cat tty.txt; echo "FAIL: the job failed on a terminal"; fail=1; }
    grep -q $'\r\033\\[Kpoint 1/4' tty.txt || { echo "FAIL: no in-place line on a terminal"; fail=1; }
    grep -q '\[rank 0\] progress:' tty.txt && { echo "FAIL: plain lines on a terminal"; fail=1; }
    python3 -c "import sys; s = open('tty.txt', errors='replace').read(); \
sys.exit(s.rfind('\x1b[K') < 0 or s[s.rfind('\x1b[K') + 3:].lstrip().startswith('point'))" ||
        { echo "FAIL: the live line was not cleared before the table"; fail=1; }
fi
[ $fail -eq 0 ] && echo "ok: $(wc -l < lines.txt) progress lines, rank 0 only, quiet with HETRUN_PROGRESS=0"
exit $fail

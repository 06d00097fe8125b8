#!/bin/bash
# Data-parallel scaling of the MLP (issue 14's goal: 2 ranks x 1 thread at global batch 512
# <= 1.15x the 1-rank batch-256 step, i.e. the gradient sum hidden or cheap). Each round runs,
# back to back, 1 rank x 1 thread at batch 256 (a 1-core hwloc topology), then each 2-rank
# variant at global batch 512 (each rank 1 core, 256 rows: the same compute per rank). It
# prints per round the slowest rank's median step (ms) and allreduce_ms_per_step (the part of
# the sum the step waited for), and at the end min / median / max over rounds of the step
# ratio 2-rank / 1-rank per variant: of the median steps (the goal's measure) and of the
# fastest steps (the least disturbed by other load: on a shared machine a descheduled peer
# stretches every 2-rank step it waits for). Read ratios, not milliseconds.
# usage: bench/train/overlap.sh BUILD_DIR [ROUNDS] [HIDDEN] [LABEL:VAR=VAL,VAR=VAL ...]
#   HIDDEN: hidden width (default 1024; 4096 for the issue-15 shape). Each LABEL:... is a
#   2-rank variant run with those environment variables; default one variant "2x1" as built.
set -u
build=$1 rounds=${2:-5} hidden=${3:-1024}
shift $(($# < 3 ? $# : 3))
variants=("$@")
[ ${#variants[@]} -eq 0 ] && variants=("2x1:")
here=$(cd "$(dirname "$0")" && pwd)
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
echo "OPENBLAS_CORETYPE='${OPENBLAS_CORETYPE:-}' OPENBLAS_L2_SIZE='${OPENBLAS_L2_SIZE:-}' (cleared)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) x $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export HETRUN_BACKEND_PATH=$build/lib/hetrun HIDDEN=$hidden STEPS=${STEPS:-30}
H=$build/bin/hetrun
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
lstopo-no-graphics --restrict 0x1 --of xml "$tmp/one-core.xml"
# slowest rank's median step, its allreduce ms per step, and the slowest rank's fastest step
read_report() {
    python3 -c "
import json,sys
r=json.load(open(sys.argv[1])); res=[k['results'][0] for k in r['ranks']]
print('%.3f %.3f %.3f' % (max(x['step_time_ms']['median'] for x in res),
                          max(x['allreduce_ms_per_step'] for x in res),
                          max(x['step_time_ms']['min'] for x in res)))" "$1"
}
for i in $(seq 1 "$rounds"); do
    HWLOC_XMLFILE=$tmp/one-core.xml HWLOC_THISSYSTEM=1 BATCH=256 \
        "$H" run -q --report "$tmp/one.json" "$here/train-mlp-dp.yaml" > "$tmp/one.log" 2>&1 ||
        { cat "$tmp/one.log"; exit 1; }
    read -r one _ one_min < <(read_report "$tmp/one.json")
    line="round $i: 1x1 batch256 step $one ms"
    for v in "${variants[@]}"; do
        label=${v%%:*} envs=${v#*:}
        # shellcheck disable=SC2086
        env ${envs//,/ } BATCH=512 mpirun -np 2 "$H" run -q --report "$tmp/two.json" \
            "$here/train-mlp-dp.yaml" > "$tmp/two.log" 2>&1 || { cat "$tmp/two.log"; exit 1; }
        read -r two red two_min < <(read_report "$tmp/two.json")
        line="$line | $label batch512 step $two ms allreduce $red ms ratio $(python3 -c "print('%.3f' % ($two / $one))")"
        echo "$label $one $two $red $one_min $two_min" >> "$tmp/all.txt"
    done
    echo "$line"
done
python3 - "$tmp/all.txt" << 'PYEOF'
import statistics, sys
rows = {}
for ln in open(sys.argv[1]):
    label, *v = ln.split()
    rows.setdefault(label, []).append([float(x) for x in v])
def mmm(v):
    return "%.3f / %.3f / %.3f" % (min(v), statistics.median(v), max(v))
for label, r in rows.items():
    print("%s (min / median / max over %d rounds): ratio of median steps %s | of fastest steps %s"
          " | 1-rank median step ms %s | 2-rank median step ms %s | allreduce ms %s"
          % (label, len(r), mmm([t / o for o, t, *_ in r]), mmm([tm / om for _, _, _, om, tm in r]),
             mmm([o for o, *_ in r]), mmm([t for _, t, *_ in r]), mmm([x for _, _, x, *_ in r])))
PYEOF

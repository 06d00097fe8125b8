#!/bin/bash
# hetrun vs PyTorch (CPU) on the same work: MLP 784-1024-1024-10 fp32, SGD momentum,
# batch 256, synthetic data; inference at batch 1 and 64. Thread counts matched: hetrun
# 1 thread via a 1-core hwloc topology (HWLOC_XMLFILE), 2 threads = the whole machine;
# torch via torch.set_num_threads plus OPENBLAS_NUM_THREADS (Debian's torch GEMMs run in
# OpenBLAS, which otherwise takes every core). OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are cleared.
# usage: bench/train/run.sh BUILD_DIR [REPEATS]   (prints one line per measurement)
set -u
build=$1 reps=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export HETRUN_BACKEND_PATH=$build/lib/hetrun
H=$build/bin/hetrun
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
lstopo-no-graphics --restrict 0x1 --of xml "$tmp/one-core.xml"
one="HWLOC_XMLFILE=$tmp/one-core.xml HWLOC_THISSYSTEM=1"
med() { python3 -c "
import json,sys
r=json.load(open(sys.argv[1])); res=[k['results'][0] for k in r['ranks']]
if sys.argv[2]=='train': print(max(x['step_time_ms']['median'] for x in res), max(x['allreduce_ms_per_step'] for x in res))
else:
  for b in res[0]['batches']: print(b['batch'], b['latency_ms_p50'], b['samples_per_s'])" "$@"; }
for i in $(seq 1 "$reps"); do
    env $one BATCH=256 STEPS=30 "$H" run -q --report "$tmp/t1.json" "$here/train-mlp.yaml" > /dev/null 2>&1
    echo "hetrun train 1x1 batch256 step_ms allreduce_ms: $(med "$tmp/t1.json" train)"
    BATCH=256 STEPS=30 "$H" run -q --report "$tmp/t2.json" "$here/train-mlp.yaml" > /dev/null 2>&1
    echo "hetrun train 1x2 batch256 step_ms allreduce_ms: $(med "$tmp/t2.json" train)"
    BATCH=512 STEPS=30 mpirun -np 2 "$H" run -q --report "$tmp/t3.json" "$here/train-mlp.yaml" > /dev/null 2>&1
    echo "hetrun train 2x1 batch512 step_ms allreduce_ms: $(med "$tmp/t3.json" train)"
    env $one ITERS=300 "$H" run -q --report "$tmp/i1.json" "$here/infer-mlp.yaml" > /dev/null 2>&1
    med "$tmp/i1.json" infer | sed 's/^/hetrun infer 1 thread batch p50_ms samples_per_s: /'
    ITERS=300 "$H" run -q --report "$tmp/i2.json" "$here/infer-mlp.yaml" > /dev/null 2>&1
    med "$tmp/i2.json" infer | sed 's/^/hetrun infer 2 threads batch p50_ms samples_per_s: /'
    # Debian's torch calls OpenBLAS (BLAS_INFO=generic -> libblas.so.3), whose own thread
    # count is not torch.set_num_threads: match it too, and pin the 1-thread run to one
    # core as hetrun's 1-thread rank is.
    echo "torch 1 thread(s): $(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 taskset -c 0 /usr/bin/python3 "$here/torch_mlp.py" 1 30 300)"
    echo "torch 2 thread(s): $(OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 /usr/bin/python3 "$here/torch_mlp.py" 2 30 300)"
done

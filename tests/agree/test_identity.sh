#!/bin/bash
# Identity checked against MPI after MPI_Init, node index and count from MPI:
# 1. a faked Slurm environment (rank 3 of 4) in a single process MPI calls rank 0 of 1 is
#    refused: exit 4, the variable source and both views named, a failed report;
# 2. under mpirun -np 2 an environment claiming 4 ranks is refused naming both ranks;
# 3. a Slurm environment that agrees on rank and size but says node 1 of 2: the report's
#    node_index/nnodes come from MPI (node 0 of 1), not from the environment;
# 4. a plain mpirun -np 2 job passes, node 0 of 1 on both ranks;
# 5. two "nodes" on this machine (Open MPI daemons started through local_rsh.sh, shared
#    memory off): with --map-by node ranks 0,2 are node 0 and 1,3 node 1; with uneven nodes
#    (1 + 2 slots) ranks 1 and 2 are node 1. Block arithmetic (rank / local size) gets both
#    wrong.
# Every report validates against docs/report.schema.json (when python3-jsonschema is there).
# usage: test_identity.sh HETRUN SOURCE_DIR
set -u
hetrun=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fail=0
cat > job.yaml <<YAML
version: 1
job: {name: identity}
backend: cpu
limits: {timeout: 100}
workloads:
  - gemm: {m: 16, n: 8, k: 24, warmup: 1, iterations: 1}
YAML
host=$(hostname | cut -c1-63)
# Only the variables set here: no launcher's leftovers from the caller.
clean="env -u OMPI_COMM_WORLD_LOCAL_RANK -u MPI_LOCALRANKID -u PMI_LOCAL_RANK -u FLUX_TASK_LOCAL_ID"

$clean SLURM_LOCALID=0 SLURM_PROCID=3 SLURM_NTASKS=4 SLURM_NODEID=0 SLURM_NNODES=1 \
    SLURM_TASKS_PER_NODE=4 timeout 60 "$hetrun" run --report fake.json job.yaml > fake.txt 2>&1
rc=$?
[ $rc -eq 4 ] || { cat fake.txt; echo "FAIL: a faked identity exited $rc, expected 4"; fail=1; }
grep -qF "rank 0 on host $host: SLURM_LOCALID says rank 3 of 4, local 0 of 4; MPI says rank 0 of 1, local 0 of 1" fake.txt ||
    { cat fake.txt; echo "FAIL: the refusal does not name the source and both views"; fail=1; }
grep -q '"status":\s*"failed"' fake.json && grep -q 'disagrees with MPI' fake.json ||
    { cat fake.json; echo "FAIL: no failed report with the cause"; fail=1; }

timeout 60 mpirun -np 2 --oversubscribe sh -c \
    'OMPI_COMM_WORLD_SIZE=4 exec "$0" run --report size.json job.yaml' "$hetrun" > size.txt 2>&1
rc=$?
[ $rc -eq 4 ] || { cat size.txt; echo "FAIL: a wrong job size exited $rc, expected 4"; fail=1; }
for r in 0 1; do
    grep -qF "rank $r on host $host: OMPI_COMM_WORLD_LOCAL_RANK says rank $r of 4" size.txt ||
        { cat size.txt; echo "FAIL: rank $r not named"; fail=1; }
done

$clean SLURM_LOCALID=0 SLURM_PROCID=0 SLURM_NTASKS=1 SLURM_NODEID=1 SLURM_NNODES=2 \
    SLURM_TASKS_PER_NODE=0,1 timeout 60 "$hetrun" run --report node.json job.yaml > node.txt 2>&1 ||
    { cat node.txt; echo "FAIL: a consistent Slurm identity was refused"; fail=1; }
grep -q '"node_index":\s*0,' node.json && grep -q '"nnodes":\s*1,' node.json ||
    { grep -E 'node_index|nnodes' node.json; echo "FAIL: node index/count not MPI's (node 0 of 1)"; fail=1; }

timeout 60 mpirun -np 2 --oversubscribe "$hetrun" run --report ok.json job.yaml > ok.txt 2>&1 ||
    { cat ok.txt; echo "FAIL: a plain 2-rank job failed"; fail=1; }
[ "$(grep -c '"node_index":\s*0,' ok.json)" -eq 2 ] && [ "$(grep -c '"nnodes":\s*1,' ok.json)" -eq 2 ] ||
    { echo "FAIL: 2 ranks on one host: not node 0 of 1 each"; fail=1; }
# 5. Two daemons, two nodes: node_index per rank, in rank order, must be $2.
nodes() { # nodes NAME WANT MPIRUN_ARGS...
    local name=$1 want=$2
    shift 2
    AGREE_RSH_TMP="$tmp/rsh" timeout 100 mpirun --mca btl tcp,self --mca plm_rsh_agent "$src/tests/agree/local_rsh.sh" \
        "$@" "$hetrun" run -q --report "$name.json" job.yaml > "$name.txt" 2>&1 ||
        { cat "$name.txt"; echo "FAIL: $name: the job failed"; fail=1; }
    local got
    got=$(grep -o '"node_index":\s*[0-9]*' "$name.json" | grep -o '[0-9]*$' | tr '\n' ' ')
    echo "$name: node_index per rank: $got"
    [ "$got" = "$want " ] || { echo "FAIL: $name: node_index per rank '$got', expected '$want'"; fail=1; }
    [ "$(grep -c '"nnodes":\s*2,' "$name.json")" -eq "$(echo $want | wc -w)" ] ||
        { echo "FAIL: $name: nnodes is not 2 on every rank"; fail=1; }
}
nodes bynode "0 1 0 1" --host nodea:2,nodeb:2 --map-by node -np 4
nodes uneven "0 1 1" --host nodea:1,nodeb:2 -np 3

. "$src/tests/report/pick_python.sh"
if pick_python jsonschema; then
    "$PY" "$src/tests/report/validate_report.py" "$src/docs/report.schema.json" fake.json size.json node.json ok.json bynode.json uneven.json ||
        { echo "FAIL: a report does not validate against the schema"; fail=1; }
else
    echo "note: no python3 with jsonschema: reports not validated against the schema"
fi
exit $fail

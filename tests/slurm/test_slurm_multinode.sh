#!/bin/bash
# hetrun under a real two-node Slurm: one slurmd on each of two namespace test hosts
# (tests/multinode/hosts.sh: own network, hostname and node-local folder), slurmctld on the
# first. Checks `srun -N 2 -n 4 --mpi=pmix`, `mpirun` inside `sbatch -N 2` (the example's
# mpirun form: Open MPI starts its daemon on the second node through Slurm), and `scancel` of
# a two-node job: ranks on both hosts, node indices that follow the hosts, one report, and a
# failed report that `hetrun usage --parsable` bills rank by rank on both hosts.
# Skipped (77) where Slurm or network namespaces are not available.
# usage: test_slurm_multinode.sh HETRUN CHECK_REPORT SOURCE_DIR
set -u
hetrun=$(realpath "$1") check=$(realpath "$2") src=$(realpath "$3")
SLURM_HOSTS="nodea nodeb"
SLURM_WATCHDOG_S=250
. "$(dirname "$0")/slurm_start.sh"

w=$tmp/work
cat > "$w/job.yaml" << 'YAML'
version: 1
job: {name: slurm-2nodes}
backend: cpu
workloads:
  - gemm: {m: 64, n: 48, k: 96, warmup: 1, iterations: 3}
YAML
fail=0

# two_nodes REPORT NRANKS WHAT: ok, ranks on both hosts, node index by host, cores disjoint
# within a host.
two_nodes() {
    "$check" "$1" "$2" ok 1 3 || fail=1
    python3 - "$@" << 'PY' || fail=1
import json, sys
path, n, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
r = json.load(open(path))
bad, node_of, used = [], {}, {}
for k in r["ranks"]:
    h = k["host"]
    node_of.setdefault(h, set()).add(k.get("node"))
    cpus = set(k.get("cpus") or [])
    if used.get(h, set()) & cpus: bad.append(f"rank {k['rank']} shares cores {sorted(cpus)} on {h}")
    used.setdefault(h, set()).update(cpus)
if sorted(node_of) != ["nodea", "nodeb"]: bad.append(f"hosts {sorted(node_of)}")
if any(len(v) != 1 for v in node_of.values()) or len({min(v) for v in node_of.values()}) != 2:
    bad.append(f"node indices by host {node_of}")
if bad: sys.exit(f"FAIL: {what}: " + "; ".join(bad))
print(f"ok: {what}: " + ", ".join(f"rank {k['rank']} {k['host']} node {k['node']} cpus {k['cpus']}"
                                  for k in r["ranks"]))
PY
}

sl timeout 90 srun -N 2 -n 4 --mpi=pmix "$hetrun" run -q --report "$w/a.json" "$w/job.yaml" ||
    { echo "FAIL: srun -N 2 -n 4 --mpi=pmix exited $?"; fail=1; }
two_nodes "$w/a.json" 4 "srun -N 2 -n 4 --mpi=pmix"

id=$(sl env HETRUN="$hetrun" HETRUN_LAUNCH=mpirun HETRUN_REPORT_DIR="$w" timeout 120 sbatch \
    --parsable --wait -N 2 -n 4 -o "$w/mpirun-%j.out" "$src/examples/slurm/hetrun.sbatch" "$w/job.yaml")
rc=$?
id=${id%%;*}
[ $rc -eq 0 ] || { cat "$w/mpirun-$id.out"; echo "FAIL: sbatch -N 2, mpirun form, exited $rc"; fail=1; }
two_nodes "$w/hetrun-$id.json" 4 "sbatch -N 2 -n 4, mpirun form"

# scancel of a job on two nodes: one failed report billing the ranks of both.
cat > "$w/long.yaml" << 'YAML'
version: 1
job: {name: slurm-2nodes-cancel, account: proj-mn}
backend: cpu
workloads:
  - train:
      data: {source: synthetic, samples: 2000, features: 32, classes: 4}
      hidden: [64]
      epochs: 100000
YAML
id=$(sl sbatch --parsable -N 2 -n 2 -o "$w/cancel.out" \
    --wrap "srun --mpi=pmix '$hetrun' run -q --report '$w/cancel.json' '$w/long.yaml'")
id=${id%%;*}
for _ in $(seq 300); do # until the job runs and its placeholder report exists
    [ -s "$w/cancel.json" ] && sl squeue -h -j "$id" -o %T 2> /dev/null | grep -qx RUNNING && break
    sleep 0.1
done
sleep 5
sl scancel "$id"
for _ in $(seq 300); do
    sl squeue -h -j "$id" 2> /dev/null | grep -q . || break
    sleep 0.1
done
"$hetrun" usage --parsable "$w/cancel.json" > "$w/bill.txt" 2> "$w/bill.err" ||
    { cat "$w/bill.err"; echo "FAIL: hetrun usage"; fail=1; }
python3 - "$w/cancel.json" "$w/bill.txt" "$id" << 'PY' || { cat "$w/cancel.out"; fail=1; }
import json, sys
r = json.load(open(sys.argv[1]))
if r.get("status") != "failed" or "signal" not in (r.get("reason") or ""):
    sys.exit(f"FAIL: scancel on 2 nodes: status {r.get('status')!r}, reason {r.get('reason')!r}")
lines = [l.rstrip("\n").split("|") for l in open(sys.argv[2]) if l.strip()]
col = {h: i for i, h in enumerate(lines[0])}
rows = lines[1:]
hosts = sorted({x[col["host"]] for x in rows})
bad = [x for x in rows if x[col["job_id"]] != sys.argv[3] or x[col["account"]] != "proj-mn"
       or float(x[col["wall_seconds"]] or 0) <= 0 or x[col["device"]] in ("", "unknown")
       or float(x[col["cpu_core_seconds"]] or 0) <= 0]
if len(rows) != 2 or hosts != ["nodea", "nodeb"] or bad:
    sys.exit(f"FAIL: scancel on 2 nodes: billed {len(rows)} rank line(s) on {hosts}: {rows}")
print(f"ok: scancel on 2 nodes: {r['reason'][:50]!r}; billed ranks on {hosts}, wall " +
      ", ".join(x[col["wall_seconds"]] for x in rows) + " s")
PY
exit $fail

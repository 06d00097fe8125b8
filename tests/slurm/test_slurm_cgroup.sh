#!/bin/bash
# hetrun under a real single-node Slurm with the plugins centres run: proctrack/cgroup,
# task/cgroup (ConstrainCores) and task/affinity (cgroup v1). Each rank must stay inside
# the cores its step's cgroup allows (its report's cpus equal what the kernel allows it,
# disjoint between ranks, threads = --cpus-per-task), through srun --mpi=pmix and through
# mpirun in an sbatch allocation; and a job cancelled with scancel (SIGTERM, then SIGKILL
# after KillWait) leaves a failed report that `hetrun usage --parsable` bills.
# Skipped (77) where Slurm or writable cgroup v1 controllers are missing.
# usage: test_slurm_cgroup.sh HETRUN SOURCE_DIR
set -u
hetrun=$(realpath "$1") src=$(realpath "$2")
SLURM_MODE=cgroup
. "$(dirname "$0")/slurm_start.sh"

cd work || exit 1
cat > job.yaml << 'YAML'
version: 1
job: {name: slurm-cgroup}
backend: cpu
workloads:
  - gemm: {m: 128, n: 96, k: 64, warmup: 1, iterations: 3}
YAML
fail=0

# check REPORT NRANKS THREADS WHAT: status ok, every rank's cpus = the cpus the kernel
# allowed that rank (written by the rank's wrapper as allowed.RANK), disjoint, threads.
check() {
    python3 - "$@" << 'PY' || fail=1
import json, sys
path, n, threads, what = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def cpus(text):
    out = set()
    for part in text.strip().split(","):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out
try:
    r = json.load(open(path))
except Exception as e:
    sys.exit(f"FAIL: {what}: no readable report: {e}")
bad, seen = [], set()
if r.get("status") != "ok": bad.append(f"status {r.get('status')!r}: {r.get('reason')}")
ranks = r.get("ranks") or []
if len(ranks) != n: bad.append(f"{len(ranks)} rank records, want {n}")
for k in ranks:
    rank, got = k["rank"], set(k.get("cpus") or [])
    allowed = cpus(open(f"allowed.{rank}").read())
    if got != allowed: bad.append(f"rank {rank}: report cpus {sorted(got)}, cgroup allows {sorted(allowed)}")
    if got & seen: bad.append(f"rank {rank}: cpus {sorted(got)} shared with another rank")
    seen |= got
    t = (k.get("placement") or {}).get("threads")
    if t != threads: bad.append(f"rank {rank}: {t} threads, want {threads}")
if bad: sys.exit(f"FAIL: {what}: " + "; ".join(bad))
print(f"ok: {what}: " + ", ".join(f"rank {k['rank']} cpus {k['cpus']}" for k in ranks))
PY
}
# A wrapper records what the kernel allows each rank, then becomes hetrun.
cat > wrap.sh << WRAP
#!/bin/bash
r=\${OMPI_COMM_WORLD_RANK:-\${PMIX_RANK:-\$SLURM_PROCID}}
sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status > "$PWD/allowed.\$r"
exec "$hetrun" "\$@"
WRAP
chmod +x wrap.sh

rm -f allowed.*
timeout 60 srun -n 2 -c 1 --mpi=pmix ./wrap.sh run -q --report a.json job.yaml ||
    { echo "FAIL: srun -n 2 -c 1 exited $?"; fail=1; }
check a.json 2 1 "srun -n 2 -c 1 --mpi=pmix"

rm -f allowed.*
timeout 60 srun -n 1 -c 1 --mpi=pmix ./wrap.sh run -q --report b.json job.yaml ||
    { echo "FAIL: srun -n 1 -c 1 exited $?"; fail=1; }
check b.json 1 1 "srun -n 1 -c 1 (one of the node's CPUs)"

rm -f allowed.*
id=$(HETRUN=$PWD/wrap.sh HETRUN_LAUNCH=mpirun HETRUN_REPORT_DIR=$PWD timeout 90 sbatch --parsable \
    --wait -o "mpirun-%j.out" "$src/examples/slurm/hetrun.sbatch" job.yaml)
rc=$?
id=${id%%;*}
[ $rc -eq 0 ] || { cat "mpirun-$id.out"; echo "FAIL: sbatch, mpirun form, exited $rc"; fail=1; }
check "hetrun-$id.json" 2 1 "sbatch -n 2 -c 1, mpirun form"

# scancel: Slurm signals the step (SIGTERM), the cgroup holds every process of it, and after
# KillWait SIGKILL. The report must say failed and still bill the ranks' time.
cat > long.yaml << 'YAML'
version: 1
job: {name: slurm-cancel, account: proj-cg}
backend: cpu
workloads:
  - train:
      data: {source: synthetic, samples: 2000, features: 32, classes: 4}
      hidden: [64]
      epochs: 100000
YAML
id=$(sbatch --parsable -n 2 -c 1 -o cancel.out \
    --wrap "srun --mpi=pmix '$hetrun' run -q --report '$PWD/cancel.json' long.yaml")
id=${id%%;*}
for _ in $(seq 300); do # until the job runs and its placeholder report exists
    [ -s cancel.json ] && squeue -h -j "$id" -o %T 2> /dev/null | grep -qx RUNNING && break
    sleep 0.1
done
sleep 4
scancel "$id"
for _ in $(seq 300); do
    squeue -h -j "$id" 2> /dev/null | grep -q . || break
    sleep 0.1
done
python3 - cancel.json << 'PY' || { cat cancel.out; fail=1; }
import json, sys
r = json.load(open(sys.argv[1]))
bad = []
if r.get("status") != "failed": bad.append(f"status {r.get('status')!r}")
if "signal" not in (r.get("reason") or ""): bad.append(f"reason {r.get('reason')!r}")
if bad: sys.exit("FAIL: scancel: " + "; ".join(bad))
print(f"ok: scancel: failed report, reason {r['reason'][:70]!r}")
PY
"$hetrun" usage --parsable cancel.json > bill.txt 2> bill.err || { cat bill.err; echo "FAIL: hetrun usage"; fail=1; }
python3 - bill.txt "$id" << 'PY' || { cat bill.txt; fail=1; }
import sys
lines = [l.rstrip("\n").split("|") for l in open(sys.argv[1]) if l.strip()]
head, rows = lines[0], lines[1:]
col = {h: i for i, h in enumerate(head)}
missing = [c for c in ("job_id", "account", "wall_seconds", "device", "cpu_core_seconds")
           if c not in col]
if missing: sys.exit(f"FAIL: usage --parsable lacks {missing}: {head}")
rows = [r for r in rows if len(r) == len(head)]
if not rows: sys.exit("FAIL: usage --parsable: no rank lines")
# A cancelled job is billed like a finished one: its device and cores, not "unknown" and 0.
bad = [r for r in rows if r[col["job_id"]] != sys.argv[2] or r[col["account"]] != "proj-cg"
       or float(r[col["wall_seconds"]] or 0) <= 0 or r[col["device"]] in ("", "unknown")
       or float(r[col["cpu_core_seconds"]] or 0) <= 0]
if bad: sys.exit("FAIL: usage lines without the job id, account, wall time, device or core "
                 f"seconds: {bad}")
print(f"ok: scancel billed: {len(rows)} rank line(s), wall " +
      ", ".join(r[col["wall_seconds"]] for r in rows) + " s")
PY
exit $fail

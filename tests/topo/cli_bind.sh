#!/bin/sh
# Binding under an inherited affinity, end to end: `hetrun run` under taskset keeps the
# mask and reports the affinity the kernel shows; two jobs (or two mpirun ranks) started
# on different cpus never share one; thread-count precedence; HWLOC_XMLFILE is not bound;
# `hetrun plan` gives no rank to a display adapter and plans CPU ranks for --backend cpu.
# Usage: cli_bind.sh HETRUN TEST_BIND DATA_DIR [MPIEXEC]   (77: skipped)
set -u
HETRUN=$1
TEST_BIND=$2
DATA=$3
MPIEXEC=${4:-}
XML=$DATA/2socket-aspeed-4gpu.xml
command -v taskset > /dev/null 2>&1 || { echo "SKIP: no taskset"; exit 77; }
command -v python3 > /dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
taskset -c 0,1 true 2> /dev/null || { echo "SKIP: cpus 0 and 1 are not both usable here"; exit 77; }
unset OMP_NUM_THREADS OPENBLAS_NUM_THREADS MKL_NUM_THREADS SLURM_CPUS_PER_TASK HWLOC_XMLFILE
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
cd "$tmp" || exit 1
printf 'version: 1\njob:\n  name: bind-test\nbackend: cpu\nworkloads:\n  - gemm: {m: 48, n: 40, k: 32}\n' > job.yaml

# check.py REPORT EXPR...: each EXPR (Python, over r = the report, p = rank 0's placement,
# ranks = r["ranks"]) must be true; prints the failing one.
cat > check.py << 'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ranks = r["ranks"] if isinstance(r.get("ranks"), list) else []  # a plan's is a count
p = (ranks[0].get("placement") or {}) if ranks else {}
ok = True
for e in sys.argv[2:]:
    try:
        good = eval(e)
    except Exception as x:
        good = False
        e += " (%s)" % x
    if not good:
        ok = False
        print("FAIL: %s: %s" % (sys.argv[1], e))
if not ok:
    print(json.dumps([x.get("placement") for x in ranks] if ranks else r, indent=1)[:3000])
sys.exit(0 if ok else 1)
PY
check() { python3 check.py "$@" || fail=1; }
run() { # run REPORT [ENV...] -- launches hetrun run quietly, fails on a non-zero exit
    rep=$1; shift
    env "$@" "$HETRUN" run -q job.yaml -r "$rep" > "$rep.out" 2>&1 ||
        { echo "FAIL: hetrun run ($*) exited $?"; cat "$rep.out"; fail=1; }
}

# 1. In-process: the placement's cpus are /proc/self/status's, and not wider than taskset's.
for c in 1 0; do
    taskset -c $c "$TEST_BIND" $c || fail=1
done

# 2. `taskset -c 1 hetrun run`: cpu 1 only, read back, and the plan kept as planned_cpus.
run r1.json taskset -c 1
check r1.json 'r["status"] == "ok"' 'ranks[0]["cpus"] == [1]' 'p["cpus"] == [1]' \
    'p["inherited_cpus"] == [1]' 'p["bound"] is True' 'p["threads"] == 1'

# `hetrun plan` of this machine shows the same fitting.
taskset -c 1 "$HETRUN" plan job.yaml --ranks 1 --format json > p1.json 2> p1.err ||
    { echo "FAIL: taskset -c 1 hetrun plan exited $?"; cat p1.err; fail=1; }
check p1.json 'r["plan"][0]["cpus"] == [1]' 'r["plan"][0]["threads"] == 1'

# 3. Two single-rank jobs side by side, as Slurm task/affinity starts them (0x1 and 0x2).
env taskset -c 0 "$HETRUN" run -q job.yaml -r ja.json > ja.out 2>&1 &
a=$!
env taskset -c 1 "$HETRUN" run -q job.yaml -r jb.json > jb.out 2>&1 &
b=$!
wait $a || { echo "FAIL: job on cpu 0 failed"; cat ja.out; fail=1; }
wait $b || { echo "FAIL: job on cpu 1 failed"; cat jb.out; fail=1; }
check ja.json 'ranks[0]["cpus"] == [0]'
check jb.json 'ranks[0]["cpus"] == [1]'

# 4. mpirun, each rank started under its own mask (rank 0 on cpu 1, rank 1 on cpu 0:
#    the opposite of what the planner would pick): no cpu given to both, masks kept.
if [ -n "$MPIEXEC" ]; then
    "$MPIEXEC" -np 2 --bind-to none sh -c \
        'exec taskset -c $((1 - ${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}})) "$0" run -q job.yaml -r mpi.json' \
        "$HETRUN" > mpi.out 2>&1 || { echo "FAIL: mpirun exited $?"; cat mpi.out; fail=1; }
    check mpi.json 'len(ranks) == 2' \
        'sorted(ranks, key=lambda x: x["rank"])[0]["cpus"] == [1]' \
        'sorted(ranks, key=lambda x: x["rank"])[1]["cpus"] == [0]' \
        'not set(ranks[0]["cpus"]) & set(ranks[1]["cpus"])' \
        'all(x["placement"]["fit"] == "inherited" and x["placement"]["bound"] for x in ranks)'
    # One mask shared by both ranks (taskset around mpirun --bind-to none): the ranks learn
    # it is shared and plan within it instead of fitting a whole-machine plan into it.
    # The exchange file is removed once both ranks are past placement, and so are earlier
    # jobs' start-up files over an hour old; a fresh one (a job starting now) and other
    # cache files stay.
    mkdir -p "$tmp/cache"
    touch -d '2 hours ago' "$tmp/cache/mask-old-job.txt" "$tmp/cache/.topo-old-job.xml.tmp.1.x" \
        "$tmp/cache/cpu-peak-kept.txt"
    touch "$tmp/cache/mask-starting-job.txt"
    taskset -c 1 env HETRUN_CACHE_DIR="$tmp/cache" "$MPIEXEC" -np 2 --bind-to none \
        "$HETRUN" run -q job.yaml -r sh.json > sh.out 2>&1 ||
        { echo "FAIL: taskset -c 1 mpirun exited $?"; cat sh.out; fail=1; }
    check sh.json 'len(ranks) == 2' 'all(x["cpus"] == [1] for x in ranks)' \
        'all(x["placement"]["fit"] == "plan" and "share" in x["placement"]["bind_note"] for x in ranks)'
    grep -q "warning: placement" sh.out && { echo "FAIL: shared mask warned"; cat sh.out; fail=1; }
    left=$(cd "$tmp/cache" && ls -A | grep -E '^\.?(mask|topo)-|-kept' | sort | tr '\n' ' ')
    [ "$left" = "cpu-peak-kept.txt mask-starting-job.txt " ] ||
        { echo "FAIL: start-up files after the job: $left"; fail=1; }

    # The launcher's own binding (Open MPI rankfile, like Slurm's map_cpu:1,0) is kept too.
    if "$MPIEXEC" --version 2>&1 | grep -q "Open MPI"; then
        printf 'rank 0=localhost slot=1\nrank 1=localhost slot=0\n' > rankfile
        "$MPIEXEC" -np 2 --rankfile rankfile "$HETRUN" run -q job.yaml -r rf.json > rf.out 2>&1 ||
            { echo "FAIL: mpirun --rankfile exited $?"; cat rf.out; fail=1; }
        check rf.json 'len(ranks) == 2' \
            'sorted(ranks, key=lambda x: x["rank"])[0]["cpus"] == [1]' \
            'sorted(ranks, key=lambda x: x["rank"])[1]["cpus"] == [0]'
    fi
else
    echo "note: no mpiexec: the two-rank mpirun case is not run"
fi

# 5. Threads: OMP_NUM_THREADS beats OPENBLAS_NUM_THREADS; SLURM_CPUS_PER_TASK beats cores.
run t0.json taskset -c 0,1
run t1.json OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=2 taskset -c 0,1
check t1.json 'p["threads"] == 1' 'p["threads_source"] == "OMP_NUM_THREADS"'
if python3 check.py t0.json 'p["threads"] == 2' > /dev/null; then
    run t2.json SLURM_CPUS_PER_TASK=1 taskset -c 0,1
    check t2.json 'p["threads"] == 1' 'p["threads_source"] == "SLURM_CPUS_PER_TASK"'
else
    echo "note: cpus 0-1 are one core here: the SLURM_CPUS_PER_TASK case would not tell"
fi

# 6. HWLOC_XMLFILE: planning on a foreign topology binds nothing and says so; the cpus
#    reported are the process's real ones (here: taskset's 0,1).
run x.json HWLOC_XMLFILE="$XML" taskset -c 0,1
check x.json 'r["status"] == "ok"' 'p["bound"] is False' '"HWLOC_XMLFILE" in p["bind_note"]' \
    'ranks[0]["cpus"] == [0, 1]'

# 7. Plans on a topology with a BMC's ASPEED VGA (card0 on 0000:05:03.0) and 4 GPUs.
"$HETRUN" plan job.yaml --ranks 8 --topology "$XML" --format json > plan.json 2> plan.err ||
    { echo "FAIL: plan exited $?"; cat plan.err; fail=1; }
check plan.json 'len(r["devices"]) == 4' \
    'all(d["pci_bus_id"] != "0000:05:03.0" for d in r["devices"])' \
    'all(x["device"] and x["device"]["pci_bus_id"] != "0000:05:03.0" for x in r["plan"])' \
    'sorted(x["device"]["pci_bus_id"] for x in r["plan"]) == sorted(["0000:03:00.0", "0000:06:00.0", "0000:83:00.0", "0000:84:00.0"] * 2)'
"$HETRUN" plan job.yaml --ranks 4 --topology "$XML" --backend cpu --format json > cpu.json \
    2> cpu.err || { echo "FAIL: plan --backend cpu exited $?"; cat cpu.err; fail=1; }
check cpu.json 'r["backend"] == "cpu"' 'len(r["plan"]) == 4' \
    'all(x["device"] and x["device"]["kind"] == "cpu" for x in r["plan"])' \
    'len(set(sum((x["cpus"] for x in r["plan"]), []))) == 32' 'all(x["threads"] == 4 for x in r["plan"])'

[ $fail -eq 0 ] && echo "cli_bind: all checks passed"
exit $fail

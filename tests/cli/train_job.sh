# Sourced by the failure tests of tests/cli: a training job that runs until it is stopped,
# and the clean-up of its ranks.

# train_job NAME LIMITS: writes job.yaml (LIMITS: the spec's limits mapping).
train_job() {
    cat > job.yaml << YAML
version: 1
job: {name: $1}
backend: cpu
limits: $2
workloads:
  - train:
      data: {source: synthetic, samples: 2000, features: 32, classes: 4}
      hidden: [64]
      epochs: 100000
YAML
}

# kill_ranks REPORT: kills the ranks of this test's jobs that outlived mpirun (stopped ones
# included), found by their report path: other jobs may run the same test.
kill_ranks() {
    local p
    for p in $(pgrep -f "hetrun run -q --report $1"); do kill -KILL "$p" 2> /dev/null; done
}

#!/bin/bash
# Nothing false: a run whose loss or weights go non-finite, or whose data is partial or
# out of range, ends failed with the cause named (step, tensor, file, line); crafted
# checkpoints are refused, not trusted, not crashed on.
# usage: test_truthful.sh HETRUN SOURCE_DIR
set -u
hetrun=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fail=0
zcat "$src/examples/data/digits.csv.gz" > digits.csv
spec() { # spec NAME DATA_MAPPING EXTRA_TRAIN_KEYS [TOP_LEVEL]
    cat > "$1.yaml" <<YAML
version: 1
job: {name: truth-$1}
backend: cpu
seed: 5
${4:-}
workloads:
  - train:
      data: $2
      hidden: [32]
      optimizer: sgd
      batch: 64
      epochs: 2
$3
YAML
}
refused() { # refused NAME MESSAGE-REGEX: exit 1, failed report, message on stderr and in it
    timeout 60 "$hetrun" run -q --report "$1.report.json" "$1.yaml" > "$1.txt" 2>&1
    local rc=$?
    [ $rc -eq 1 ] || { cat "$1.txt"; echo "FAIL: $1: exit $rc, expected 1"; fail=1; }
    grep -q "\"status\":[[:space:]]*\"failed\"" "$1.report.json" 2> /dev/null ||
        { echo "FAIL: $1: report is not failed"; fail=1; }
    grep -Eq -- "$2" "$1.txt" || { cat "$1.txt"; echo "FAIL: $1: stderr lacks '$2'"; fail=1; }
    grep -Eq -- "$2" "$1.report.json" || { echo "FAIL: $1: report lacks '$2'"; fail=1; }
    [ $fail = 1 ] || echo "ok:   $1"
}
# Divergence: lr 100 (allowed) goes to NaN; the guard stops a rising loss before that.
spec lr100 "{source: csv, path: digits.csv}" "      lr: 100"
# The step is checked before the optimizer applies it: the weights that produced the NaN are finite.
refused lr100 "step [0-9]+: the loss is -?nan \(not finite\); weights are still finite: the forward or backward pass overflowed"
spec guard "{source: csv, path: digits.csv}" "      lr: 5
      divergence: {max_loss_ratio: 3, after_steps: 5}"
refused guard "step [0-9]+: the loss diverged: smoothed loss .*max_loss_ratio 3"
# Data: finite in float32, trailer-checked gzip, regular files, header hint, class limits.
{ head -2 digits.csv; sed -n 3p digits.csv | sed 's/^[0-9.]*,/1e39,/'; tail -n +4 digits.csv; } > big.csv
spec big "{source: csv, path: big.csv}" ""
refused big "big.csv line 3 column 1: 1e\+?39 does not fit a float32"
gzip -c digits.csv > full.csv.gz
head -c $(($(stat -c %s full.csv.gz) - 6)) full.csv.gz > cut.csv.gz
spec cut "{source: csv, path: cut.csv.gz}" ""
refused cut "cut.csv.gz is truncated"
head -c 20000 full.csv.gz > cut2.csv.gz
spec cut2 "{source: csv, path: cut2.csv.gz}" ""
refused cut2 "cut2.csv.gz is truncated"
mkfifo fifo.csv
spec fifo "{source: csv, path: fifo.csv}" ""
start=$(date +%s)
refused fifo "fifo.csv: is a FIFO"
[ $(($(date +%s) - start)) -lt $((30 * ${HETRUN_TEST_TIME_SCALE:-1})) ] || { echo "FAIL: FIFO data took too long"; fail=1; }
{ echo "a,b,c"; echo "1,2,0"; echo "3,4,1"; } > hdr.csv
spec hdr "{source: csv, path: hdr.csv}" ""
refused hdr "hdr.csv line 1 column 1: not a finite number \(if line 1 is a header row.*data.header: true\)"
{ echo "1,2,0"; echo "3,4,1000000"; echo "5,6,1"; } > huge.csv
spec huge "{source: csv, path: huge.csv}" ""
refused huge "huge.csv line 2: label 1e\+?06 is not a class index \(integer 0..65535\)"
{ echo "1,2,0"; echo "3,4,7"; echo "5,6,1"; } > sparse.csv
spec sparse "{source: csv, path: sparse.csv}" ""
refused sparse "sparse.csv: largest label 7 means 8 classes, more than its 3 rows"
# Checkpoints: train once, then craft copies with a valid CRC over bad contents.
ck="checkpoint: {dir: ck, every: 0, resume: true}"
spec base "{source: csv, path: digits.csv}" "      lr: 0.05" "$ck"
sh -c 'exit 0' & dead=$!
wait $dead
mkdir ck && touch "ck/.ckpt-000000000007.safetensors.tmp.$dead" "ck/.ckpt-000000000009.safetensors.tmp.$dead.x1Y2z3"
"$hetrun" run -q --report base.json base.yaml > base.txt 2>&1 || { cat base.txt; echo "FAIL: base run"; fail=1; }
[ -z "$(ls -A ck | grep tmp)" ] || { ls -A ck; echo "FAIL: stale checkpoint temp files stayed"; fail=1; }
good=$(ls ck/ckpt-*.safetensors | tail -1)
craft() { # craft FILE step|nan: a crafted value under a valid CRC32 (safetensors __metadata__)
    python3 - "$@" <<'PY'
import json, struct, sys, zlib
path, what = sys.argv[1], sys.argv[2]
d = open(path, "rb").read()
n = struct.unpack("<Q", d[:8])[0]
h, data = json.loads(d[8:8 + n]), bytearray(d[8 + n:])
if what == "step":
    h["__metadata__"]["step"] = "-1"
else:
    begin = h["layers.0.weight"]["data_offsets"][0]
    data[begin:begin + 4] = struct.pack("<f", float("nan"))
h["__metadata__"]["crc32"] = "%08x" % (zlib.crc32(bytes(data)) & 0xffffffff)
head = json.dumps(h).encode()
head += b" " * (-len(head) % 8)
open(path, "wb").write(struct.pack("<Q", len(head)) + head + bytes(data))
PY
}
for case in step nan; do
    rm -rf ck.$case && mkdir ck.$case && cp "$good" ck.$case/
    craft "$(ls ck.$case/ckpt-*.safetensors)" $case
    spec "ck$case" "{source: csv, path: digits.csv}" "      lr: 0.05" "checkpoint: {dir: ck.$case, every: 0, resume: true}"
done
refused ckstep "__metadata__ step .{1,2}-1.{1,2} is out of range"
refused cknan "tensor layers.0.weight value 0 is nan, not finite"
exit $fail

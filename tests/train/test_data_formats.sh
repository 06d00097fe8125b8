#!/bin/bash
# Data sources of the train workload on the cpu backend: IDX (digits converted to MNIST's
# format, gzipped), CSV with a header row and the label in column 0, synthetic clusters;
# and refusals that name the file, line and cause (ragged row, bad label, missing file).
# usage: test_data_formats.sh HETRUN CHECK_TRAIN SOURCE_DIR
set -u
hetrun=$1 check=$2 src=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fail=0
zcat "$src/examples/data/digits.csv.gz" > digits.csv
# IDX: images 1797 x 8 x 8 ubyte (0..16 scaled by 15), labels 1797 ubyte; big-endian dims.
perl -e '
  open(my $in, "<", "digits.csv") or die; my (@img, @lab);
  while (<$in>) { chomp; my @v = split /,/; push @lab, pop @v; push @img, map { $_ * 15 } @v; }
  my $n = scalar @lab;
  open(my $i, ">:raw", "images.idx3-ubyte"); print $i pack("CCCCNNN", 0, 0, 8, 3, $n, 8, 8), pack("C*", @img);
  open(my $l, ">:raw", "labels.idx1-ubyte"); print $l pack("CCCCN", 0, 0, 8, 1, $n), pack("C*", @lab);'
gzip images.idx3-ubyte
# CSV with a header and the label first.
{ echo "label,$(seq -s, -f 'px%g' 0 63)"; awk -F, -v OFS=, '{l=$NF; $NF=""; sub(/,$/, ""); print l, $0}' digits.csv; } > header.csv
spec() { # spec NAME DATA_MAPPING
    cat > "$1.yaml" <<YAML
version: 1
job: {name: data-$1}
backend: cpu
seed: 3
workloads:
  - train:
      data: $2
      hidden: [96]
      lr: 0.003
      batch: 64
      epochs: 25
      min_accuracy: 0.96
YAML
}
spec idx "{source: idx, path: images.idx3-ubyte.gz, labels: labels.idx1-ubyte}"
spec header "{source: csv, path: header.csv, header: true, label_column: 0}"
spec synthetic "{source: synthetic, samples: 3000, features: 40, classes: 5, spread: 1.0}"
for name in idx header synthetic; do
    "$hetrun" run --report "$name.report.json" "$name.yaml" > "$name.txt" 2>&1 ||
        { tail -5 "$name.txt"; echo "FAIL: $name run"; fail=1; }
    acc=$("$check" "$name.report.json" 1 0.96) || { echo "$acc"; echo "FAIL: $name accuracy"; fail=1; }
    echo "$name: ($(grep -o '"final_test_accuracy":[^,]*' "$name.report.json"))"
done
# Refusals: each names the file and the cause.
head -3 digits.csv > ragged.csv; echo "1,2,3" >> ragged.csv
spec ragged "{source: csv, path: ragged.csv}"
"$hetrun" run --report rg.json ragged.yaml > ragged.txt 2>&1 && { echo "FAIL: ragged CSV accepted"; fail=1; }
grep -q "ragged.csv line 4: 2 features, earlier rows have 64" ragged.txt || { cat ragged.txt; echo "FAIL: ragged message"; fail=1; }
head -3 digits.csv > badlabel.csv; sed -n 4p digits.csv | sed 's/,[0-9]*$/,2.5/' >> badlabel.csv
spec badlabel "{source: csv, path: badlabel.csv}"
"$hetrun" run --report bl.json badlabel.yaml > bl.txt 2>&1 && { echo "FAIL: fractional label accepted"; fail=1; }
grep -q "badlabel.csv line 4: label 2.5 is not a class index" bl.txt || { cat bl.txt; echo "FAIL: label message"; fail=1; }
spec missing "{source: idx, path: nothing.gz, labels: labels.idx1-ubyte}"
"$hetrun" run --report m.json missing.yaml > m.txt 2>&1 && { echo "FAIL: missing file accepted"; fail=1; }
grep -q "IDX .*nothing.gz: cannot open: No such file" m.txt || { cat m.txt; echo "FAIL: missing-file message"; fail=1; }
# Devices and binary data and endless lines end with an error, not a hang or unbounded memory.
spec devzero "{source: csv, path: /dev/zero}"
timeout 30 "$hetrun" run --report z.json devzero.yaml > z.txt 2>&1
[ $? -eq 1 ] || { cat z.txt; echo "FAIL: /dev/zero as CSV did not fail cleanly"; fail=1; }
grep -q "/dev/zero: is a character device" z.txt || { cat z.txt; echo "FAIL: device message"; fail=1; }
head -c 100000 /dev/zero > zeros.csv
spec zeros "{source: csv, path: zeros.csv}"
timeout 30 "$hetrun" run --report zz.json zeros.yaml > zz.txt 2>&1
[ $? -eq 1 ] || { cat zz.txt; echo "FAIL: NUL bytes as CSV did not fail cleanly"; fail=1; }
grep -q "zeros.csv line 1: NUL byte" zz.txt || { cat zz.txt; echo "FAIL: NUL-byte message"; fail=1; }
head -c 17000000 /dev/zero | tr '\000' '1' > longline.csv
spec longline "{source: csv, path: longline.csv}"
timeout 30 "$hetrun" run --report l.json longline.yaml > l.txt 2>&1
grep -q "longline.csv line 1: line longer than 16 MiB" l.txt || { cat l.txt; echo "FAIL: long-line message"; fail=1; }
exit $fail

#!/bin/bash
# Bad text input for model gpt: each is refused with the file (and key) named and exit 1
# (a run-time input error, docs/exit-codes.md), leaving no token file behind for an
# unreadable corpus:
# a missing corpus, an empty one, one that is not UTF-8, one shorter than a context; and
# a corrupt token file.
# usage: test_gpt_bad_input.sh HETRUN SOURCE_DIR
set -u
hetrun=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fail=0
spec() { # spec NAME CORPUS
    cat > "$1.yaml" <<YAML
version: 1
job: {name: gpt-bad-$1}
backend: cpu
workloads:
  - train:
      model: gpt
      gpt: {layers: 1, heads: 2, width: 32, context: 16, batch_tokens: 64, sample_tokens: 0}
      text: {corpus: [$2], tokens: $1.tok}
      steps: 1
YAML
}
expect() { # expect NAME CORPUS PATTERN
    spec "$1" "$2"
    "$hetrun" run --report "$1.json" "$1.yaml" > "$1.out" 2>&1
    rc=$?
    if [ $rc -ne 1 ] || ! grep -q "$3" "$1.out"; then
        echo "FAIL: $1: exit $rc, expected 1 and /$3/:"
        grep -i error "$1.out" | head -3
        fail=1
    else
        echo "ok: $1: $(grep -o "$3.*" "$1.out" | head -1)"
    fi
    # A corpus that tokenises but is too short keeps its (valid) token file.
    [ "$1" = short ] || [ ! -e "$1.tok" ] || { echo "FAIL: $1: token file left behind"; fail=1; }
}
expect missing nothere.txt "corpus .*nothere.txt: cannot open"
: > empty.txt
expect empty empty.txt "corpus .*empty.txt: is empty"
printf 'caf\xe9 latin-1\n' > latin1.txt
expect latin1 latin1.txt "corpus .*latin1.txt: is not valid UTF-8 (byte 0xe9 at offset 3)"
printf 'too short\n' > short.txt
expect short short.txt "token file .*short.tok holds 10 tokens.*gpt.context 16"
rm -f short.tok
# A token file with one flipped byte: refused by its CRC.
cp "$src/README.md" good.txt
spec good good.txt
"$hetrun" run --report good.json good.yaml > good.txt.out 2>&1 || { echo "FAIL: good corpus"; fail=1; }
printf '\x00' | dd of=good.tok bs=1 seek=100 conv=notrunc status=none
"$hetrun" run --report good2.json good.yaml > bad.txt 2>&1
[ $? -eq 1 ] && grep -q "token file .*good.tok: CRC32" bad.txt ||
    { echo "FAIL: corrupt token file not refused"; grep -i error bad.txt | head -2; fail=1; }
[ $fail -eq 0 ] && echo PASS
exit $fail

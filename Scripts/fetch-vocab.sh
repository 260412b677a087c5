#!/usr/bin/env bash
# Fetches CLIP's BPE merge list `bpe_simple_vocab_16e6.txt.gz` (the tokenizer vocabulary).
#
# Usage: Scripts/fetch-vocab.sh [DEST_DIR]     (default: <repo>/Weights)
#
# The file is byte-identical in openai/CLIP, ActionCLIP and open_clip; open_clip ships it inside
# its wheel on PyPI, so we take it from there with the ordinary pip client and verify its sha256.
# Idempotent: prints nothing and exits 0 when the verified file is already in place.
set -euo pipefail

readonly FILE_NAME="bpe_simple_vocab_16e6.txt.gz"
readonly EXPECTED_SHA256="924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
# Newest first; any of these wheels contains the identical vocabulary file.
readonly OPEN_CLIP_VERSIONS=("" "2.32.0" "2.30.0" "2.24.0" "2.20.0")

fail() { echo "fetch-vocab: error: $*" >&2; exit 1; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "$script_dir/.." && pwd)"
dest_dir="${1:-$repo_dir/Weights}"
dest="$dest_dir/$FILE_NAME"

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | awk '{print $1}'
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | awk '{print $1}'
    else
        fail "neither sha256sum nor shasum is available to verify $FILE_NAME"
    fi
}

if [[ -f "$dest" && "$(sha256_of "$dest")" == "$EXPECTED_SHA256" ]]; then
    exit 0
fi

command -v python3 >/dev/null 2>&1 || fail "python3 is required (to run pip download)"
python3 -m pip --version >/dev/null 2>&1 || fail "python3 -m pip is not available"
mkdir -p "$dest_dir" || fail "cannot create destination directory $dest_dir"

work_dir="$(mktemp -d "${TMPDIR:-/tmp}/fetch-vocab.XXXXXX")" || fail "cannot create a temporary directory"
trap 'rm -rf "$work_dir"' EXIT

wheel=""
for version in "${OPEN_CLIP_VERSIONS[@]}"; do
    spec="open_clip_torch${version:+==$version}"
    rm -rf "$work_dir/wheel" && mkdir -p "$work_dir/wheel"
    if python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$work_dir/wheel" "$spec" \
        >"$work_dir/pip.log" 2>&1; then
        wheel="$(find "$work_dir/wheel" -name 'open_clip_torch-*.whl' | head -n 1)"
        [[ -n "$wheel" ]] && break
    fi
    echo "fetch-vocab: pip download $spec failed, trying another version" >&2
done
[[ -n "$wheel" ]] || fail "could not download an open_clip_torch wheel with pip (last log: $(tail -n 3 "$work_dir/pip.log" | tr '\n' ' '))"

extracted="$work_dir/$FILE_NAME"
python3 - "$wheel" "open_clip/$FILE_NAME" "$extracted" <<'PY' || fail "could not extract open_clip/$FILE_NAME from $(basename "$wheel")"
import sys, zipfile
wheel, member, target = sys.argv[1:4]
with zipfile.ZipFile(wheel) as archive, archive.open(member) as source, open(target, "wb") as sink:
    while chunk := source.read(1 << 20):
        sink.write(chunk)
PY

actual="$(sha256_of "$extracted")"
[[ "$actual" == "$EXPECTED_SHA256" ]] || fail "$FILE_NAME from $(basename "$wheel") has sha256 $actual, expected $EXPECTED_SHA256"

# Temporary file in the destination directory, then rename: readers never see a partial file.
partial="$(mktemp "$dest_dir/.$FILE_NAME.XXXXXX")" || fail "cannot write to $dest_dir"
cp "$extracted" "$partial" && chmod 644 "$partial" && mv -f "$partial" "$dest" || { rm -f "$partial"; fail "cannot move $FILE_NAME into $dest_dir"; }
echo "fetch-vocab: installed $dest (sha256 verified)"

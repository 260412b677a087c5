#!/usr/bin/env bash
# Makes the stand-in ActionCLIP models (random weights, Reference/export_standins.py) available in
# .cache/standins/<size>-<variant>/ and prints that directory on stdout. Shared by Scripts/test.sh,
# Scripts/check-pipeline.sh and Scripts/demo.sh so the cache and its key live in one place.
# The cache key is the exporter's sha256: a changed exporter re-exports, anything else reuses.
# The vocabulary (Weights/bpe_simple_vocab_16e6.txt.gz) is linked in so the directory works as
# `action-clip --model-dir`. Needs the project venv (.venv, Reference/setup_venv.sh).
# Usage: Scripts/standins.sh full|tiny emu181|default
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

size="${1:?usage: standins.sh full|tiny emu181|default}"
variant="${2:?usage: standins.sh full|tiny emu181|default}"
python="$root/.venv/bin/python"
out="$root/.cache/standins/$size-$variant"
key="$(sha256sum Reference/export_standins.py | cut -c1-16)"

if [[ "$(cat "$out/.key" 2>/dev/null)" != "$key" ]]; then
    [[ -x "$python" ]] || { echo "standins.sh: error: $python missing (run Reference/setup_venv.sh)" >&2; exit 1; }
    rm -rf "$out"
    mkdir -p "$root/.cache"
    echo "exporting $size $variant stand-ins (cached in $out)" >&2
    log="$root/.cache/export-$size-$variant.log"
    if ! "$python" Reference/export_standins.py --size "$size" --variant "$variant" --out "$out" > "$log" 2>&1; then
        echo "standins.sh: error: export failed, see $log" >&2
        tail -5 "$log" >&2
        exit 1
    fi
    echo "$key" > "$out/.key"
fi
vocab="$root/Weights/bpe_simple_vocab_16e6.txt.gz"
if [[ -f "$vocab" && ! -e "$out/bpe_simple_vocab_16e6.txt.gz" ]]; then
    ln -s "$vocab" "$out/bpe_simple_vocab_16e6.txt.gz"
fi
echo "$out"

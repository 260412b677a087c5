#!/usr/bin/env bash
# Create (if missing) the project's Python venv at <repo>/.venv and install Reference/requirements.txt
# plus torch (torch==2.13.0+cpu if pip can find it, else plain `torch`).
# Idempotent: .venv/.reference-stamp holds a hash of the requirements and the torch pin; when it matches,
# nothing is reinstalled. Needs only python3 (with venv + pip) and pip access to PyPI (or a find-links
# folder holding the torch wheel). Exits non-zero with a one-line reason on failure.
# Usage: Reference/setup_venv.sh [--force]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
venv="$repo/.venv"
req="$here/requirements.txt"
torch_pin="torch==2.13.0+cpu"
stamp="$venv/.reference-stamp"

fail() { echo "setup_venv.sh: error: $*" >&2; exit 1; }

command -v python3 >/dev/null 2>&1 || fail "python3 not found on PATH"
[ -f "$req" ] || fail "missing $req"

hash_of_inputs() {
    { cat "$req"; echo "$torch_pin"; python3 --version 2>&1; } | python3 -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
}
want="$(hash_of_inputs)"

if [ "${1:-}" != "--force" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
    echo "setup_venv.sh: $venv is up to date"
    exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "setup_venv.sh: creating $venv"
    python3 -m venv "$venv" || fail "python3 -m venv $venv failed (install the python3-venv package?)"
fi
py="$venv/bin/python"
pipq=("$py" -m pip install --quiet --disable-pip-version-check)

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

echo "setup_venv.sh: installing torch"
# The +cpu build lives on the PyTorch index or in a local find-links folder (pip config / PIP_FIND_LINKS /
# PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu); PyPI itself only has plain `torch`.
if "${pipq[@]}" "$torch_pin" >"$log" 2>&1; then
    :
else
    echo "setup_venv.sh: $torch_pin not available, installing plain torch" >&2
    "${pipq[@]}" torch >>"$log" 2>&1 || { tail -n 20 "$log" >&2; fail "pip could not install torch"; }
fi

echo "setup_venv.sh: installing $(basename "$req")"
"${pipq[@]}" -r "$req" >>"$log" 2>&1 || { tail -n 20 "$log" >&2; fail "pip could not install $req"; }

"$py" -c 'import torch, onnx, onnxruntime, numpy, cv2, ftfy, regex' >>"$log" 2>&1 \
    || { tail -n 20 "$log" >&2; fail "packages installed but an import failed"; }

echo "$want" > "$stamp"
echo "setup_venv.sh: ready: $("$py" -c 'import torch, onnx, onnxruntime, numpy; print("torch", torch.__version__, "onnx", onnx.__version__, "onnxruntime", onnxruntime.__version__, "numpy", numpy.__version__)')"

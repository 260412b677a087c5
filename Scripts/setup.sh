#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian machine that has only the Swift
# toolchain, gcc and Python: system libraries (apt), the Python reference venv (.venv) and the
# CLIP BPE vocabulary (Weights/). Idempotent: each step is skipped when already done.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

packages=(pkg-config libopenblas-dev libprotobuf-c-dev libgif-dev zlib1g-dev
          libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg
          graphviz)  # graphviz: test.sh checks that `dot` accepts `inspect --dot` output
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
    sudo_cmd=""
    [[ "$(id -u)" -ne 0 ]] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ "${SETUP_SKIP_PYTHON:-0}" != "1" ]]; then
    bash Reference/setup_venv.sh
fi
bash Scripts/fetch-vocab.sh "$root/Weights"

#!/usr/bin/env bash
# Regenerates Sources/ONNXProto/{onnx.pb-c.c,include/onnx.pb-c.h} from onnx.proto.
# Dev-time only: the generated files are committed, so building needs just libprotobuf-c-dev.
#   Scripts/gen-onnx-proto.sh            regenerate from the committed Sources/ONNXProto/onnx.proto
#   Scripts/gen-onnx-proto.sh --fetch V  first replace onnx.proto with the one in the onnx==V wheel from PyPI
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dir="$here/Sources/ONNXProto"
if [[ "${1:-}" == "--fetch" ]]; then
    version="${2:?usage: $0 --fetch ONNX_VERSION}"
    tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download "onnx==$version" --no-deps -q -d "$tmp"
    (cd "$tmp" && python3 -m zipfile -e onnx-*.whl extracted >/dev/null)
    cp "$tmp/extracted/onnx/onnx.proto" "$dir/onnx.proto"
fi
command -v protoc-c >/dev/null || { echo "protoc-c not found: apt-get install protobuf-c-compiler" >&2; exit 1; }
cd "$dir"
protoc-c --c_out=. onnx.proto
mv onnx.pb-c.h include/onnx.pb-c.h
echo "regenerated $(wc -l < onnx.pb-c.c) + $(wc -l < include/onnx.pb-c.h) lines from $(sha256sum onnx.proto | cut -c1-16)…"

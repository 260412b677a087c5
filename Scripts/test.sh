#!/usr/bin/env bash
# The project's test command (README, .ci/run). On a fresh machine it installs what it needs
# (Scripts/setup.sh), builds, runs the Swift unit and numerical tests, then checks the engine
# against ONNX Runtime: every node of the three tiny stand-in graphs at several batch sizes, and
# the final outputs of the full-size stand-ins at text N=160, image batch 16, fusion batch 2,
# in both export styles. Full-size stand-ins and reference dumps are cached in .cache/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

bash Scripts/setup.sh
python="$root/.venv/bin/python"
cache="$root/.cache"
mkdir -p "$cache"

echo "== build (release) =="
swift build -c release --product action-clip 2>&1 | tail -1
cli="$root/.build/release/action-clip"

echo "== swift test =="
swift test 2>&1 | tee "$cache/swift-test.log" | grep -E "✘|error:|Executed|Test run with" || true
# swift test's exit status is lost in the pipe; read it from the log's closing line instead.
if ! grep -qE "Test run with [0-9]+ tests? .*passed" "$cache/swift-test.log" || grep -q "✘" "$cache/swift-test.log"; then
    echo "swift test failed; full log in $cache/swift-test.log" >&2
    tail -40 "$cache/swift-test.log" >&2
    exit 1
fi

passed=0
failed=0
check() {  # check LABEL COMMAND...: runs one reference check and counts it
    local label="$1"; shift
    if "$@" > "$cache/last-check.log" 2>&1; then
        passed=$((passed + 1))
        echo "ok    $label ($(tail -1 "$cache/last-check.log"))"
    else
        failed=$((failed + 1))
        echo "FAIL  $label"
        grep -E "FAIL|error" "$cache/last-check.log" | head -20 || tail -20 "$cache/last-check.log"
    fi
}

dump() {  # dump MODEL OUT [args...]: ONNX Runtime reference dump, cached by model and arguments
    local model="$1" out="$2"; shift 2
    local key
    key="$(cat "$model" Reference/dump_reference.py | sha256sum | cut -c1-16) $*"
    if [[ -f "$out/manifest.json" && "$(cat "$out/.key" 2>/dev/null)" == "$key" ]]; then return 0; fi
    rm -rf "$out"
    "$python" Reference/dump_reference.py "$model" --out "$out" "$@" > /dev/null
    echo "$key" > "$out/.key"
}

echo "== tiny stand-ins, every node against ONNX Runtime =="
tiny="$root/Tests/Fixtures/tiny"
for spec in "image_clip 8" "image_clip 16" "text_clip 1" "text_clip 5" "fusion 1" "fusion 3"; do
    set -- $spec
    out="$cache/reference/tiny-$1-b$2"
    dump "$tiny/vit-32-8f-$1.onnx" "$out" --batch "$2" --seed 7 --all-nodes
    check "tiny $1 batch $2, all nodes" "$cli" validate "$tiny/vit-32-8f-$1.onnx" --reference "$out"
done

echo "== full-size stand-ins against ONNX Runtime =="
for variant in emu181 default; do
    standins="$cache/standins/full-$variant"
    key="$(sha256sum Reference/export_standins.py | cut -c1-16)"
    if [[ "$(cat "$standins/.key" 2>/dev/null)" != "$key" ]]; then
        rm -rf "$standins"
        echo "exporting full-size $variant stand-ins (cached in $standins)"
        "$python" Reference/export_standins.py --size full --variant "$variant" --out "$standins" > "$cache/export-$variant.log" 2>&1
        echo "$key" > "$standins/.key"
    fi
done
full="$cache/standins/full-emu181"
for spec in "text_clip 160" "image_clip 16" "fusion 2"; do
    set -- $spec
    out="$cache/reference/full-$1-b$2"
    dump "$full/vit-32-8f-$1.onnx" "$out" --batch "$2" --seed 11
    check "full emu181 $1 batch $2" "$cli" validate "$full/vit-32-8f-$1.onnx" --reference "$out" --rtol 1e-4
done
# The default exporter bakes the export batch into Reshape constants, so it runs at its declared batch.
static="$cache/standins/full-default"
for graph in text_clip image_clip fusion; do
    out="$cache/reference/full-default-$graph"
    dump "$static/vit-32-8f-$graph.onnx" "$out" --seed 13
    check "full default-export $graph" "$cli" validate "$static/vit-32-8f-$graph.onnx" --reference "$out" --rtol 1e-4
done

# Fuzz smoke run (docs/ROBUSTNESS.md): 10 s per libFuzzer harness. 30 s each plus the first release
# ASan+fuzzer build does not fit reliably in ~3 minutes on a shared 2-core machine; run
# `Scripts/fuzz.sh --seconds 300` for a real campaign.
echo "== fuzz smoke (10 s per harness) =="
check "fuzz smoke, 4 harnesses x 10 s" bash Scripts/fuzz.sh --seconds 10

echo "reference: $passed passed, $failed failed"
[[ $failed -eq 0 ]]

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

swift_tests() {  # swift_tests LABEL [VAR=value...]: the Swift suite, failing the script on any failure
    local label="$1"; shift
    echo "== swift test ($label) =="
    env "$@" swift test 2>&1 | tee "$cache/swift-test.log" | grep -E "✘|error:|Test run with" || true
    # swift test's exit status is lost in the pipe; read it from the log's closing line instead.
    if ! grep -qE "Test run with [0-9]+ tests? .*passed" "$cache/swift-test.log" || grep -q "✘" "$cache/swift-test.log"; then
        echo "swift test ($label) failed; full log in $cache/swift-test.log" >&2
        tail -40 "$cache/swift-test.log" >&2
        exit 1
    fi
}
swift_tests "every rewrite on"
swift_tests "every rewrite off" ACTION_CLIP_FUSE=0

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
full="$(bash Scripts/standins.sh full emu181)"
static="$(bash Scripts/standins.sh full default)"
for spec in "text_clip 160" "image_clip 16" "fusion 2"; do
    set -- $spec
    out="$cache/reference/full-$1-b$2"
    dump "$full/vit-32-8f-$1.onnx" "$out" --batch "$2" --seed 11
    check "full emu181 $1 batch $2" "$cli" validate "$full/vit-32-8f-$1.onnx" --reference "$out" --rtol 1e-4
    check "full emu181 $1 batch $2, fused" "$cli" validate "$full/vit-32-8f-$1.onnx" --reference "$out" --rtol 1e-4 --fused
    # Both weight layouts whatever the machine's default (WeightPacking: packed on AVX-512 CPUs):
    # row-major (OpenBLAS and the skinny kernel) and packed strips (the packed GEMM's AVX-512 or
    # AVX2 kernel, whichever this CPU has).
    check "full emu181 $1 batch $2, fused, weights not packed" env ACTION_CLIP_PACK_WEIGHTS=0 \
        "$cli" validate "$full/vit-32-8f-$1.onnx" --reference "$out" --rtol 1e-4 --fused
    check "full emu181 $1 batch $2, fused, weights packed" env ACTION_CLIP_PACK_WEIGHTS=1 \
        "$cli" validate "$full/vit-32-8f-$1.onnx" --reference "$out" --rtol 1e-4 --fused
done
# The default exporter bakes the export batch into Reshape constants, so it runs at its declared batch.
for graph in text_clip image_clip fusion; do
    out="$cache/reference/full-default-$graph"
    dump "$static/vit-32-8f-$graph.onnx" "$out" --seed 13
    check "full default-export $graph" "$cli" validate "$static/vit-32-8f-$graph.onnx" --reference "$out" --rtol 1e-4
    check "full default-export $graph, fused" "$cli" validate "$static/vit-32-8f-$graph.onnx" --reference "$out" --rtol 1e-4 --fused
done

echo "== study views (inspect --dot/--summary, run --trace/--stop-after) =="
study="$cache/study"
rm -rf "$study" && mkdir -p "$study"
declare -A tiny_input=([image_clip]="image=$tiny/dump-image/inputs/image.npy"
                       [text_clip]="text=$tiny/dump-text/inputs/text.npy"
                       [fusion]="image_features=$tiny/dump-fusion/inputs/image_features.npy")
for graph in image_clip text_clip fusion; do
    model="$tiny/vit-32-8f-$graph.onnx"
    check "tiny $graph --dot accepted by graphviz" bash -c \
        '"$1" inspect "$2" --dot "$3.dot" && dot -Tsvg "$3.dot" -o "$3.svg" && echo "$(grep -c cluster_block "$3.dot") block clusters"' \
        _ "$cli" "$model" "$study/$graph"
    check "tiny $graph --trace lists every node" bash -c \
        'nodes=$("$1" inspect "$2" --json | "$4" -c "import json,sys; print(json.load(sys.stdin)[\"node_count\"])")
         lines=$("$1" run "$2" --input "$3" --output-dir "$5/trace" --trace | grep -c "^node ")
         echo "$lines trace lines, $nodes nodes"; [[ "$lines" -eq "$nodes" && "$nodes" -gt 0 ]]' \
        _ "$cli" "$model" "${tiny_input[$graph]}" "$python" "$study/$graph"
    check "tiny $graph --stop-after writes the node's output" bash -c \
        'node="$5/transformer/resblocks/resblocks.1/attn/Softmax_output_0"
         "$1" run "$2" --input "$3" --output-dir "$4/all" --all-nodes > /dev/null
         "$1" run "$2" --input "$3" --output-dir "$4/stop" --stop-after "$node" > /dev/null
         files=$(ls "$4/stop"); [[ "$files" == "$(echo "$node" | tr / _).npy" ]] &&
         cmp "$4/all/$files" "$4/stop/$files" && echo "$files identical"' \
        _ "$cli" "$model" "${tiny_input[$graph]}" "$study/$graph" "$([[ $graph == image_clip ]] && echo /visual)"
done
# Published compute of the real networks: ViT-B/32 4.41 GMACs per frame, CLIP text 2.98 GMACs per 77 tokens.
for spec in "image_clip 4.41e9" "text_clip 2.98e9"; do
    set -- $spec
    check "full emu181 $1 --summary MACs within 1% of $2" bash -c \
        '"$1" inspect --summary --json "$2" | "$3" -c "import json,sys; t=json.load(sys.stdin)[\"totals\"][\"macs_per_sample\"]; print(t, \"MACs per sample\"); sys.exit(abs(t/$4-1) > 0.01)"' \
        _ "$cli" "$full/vit-32-8f-$1.onnx" "$python" "$2"
done

# Fuzz smoke run (docs/ROBUSTNESS.md): 10 s per libFuzzer harness. 30 s each plus the first release
# ASan+fuzzer build does not fit reliably in ~3 minutes on a shared 2-core machine; run
# `Scripts/fuzz.sh --seconds 300` for a real campaign.
echo "== fuzz smoke (10 s per harness) =="
check "fuzz smoke, 4 harnesses x 10 s" bash Scripts/fuzz.sh --seconds 10

echo "reference: $passed passed, $failed failed"

echo "== whole pipeline: action-clip --json against Reference/action_clip_reference.py =="
# check-pipeline.sh prints one ok/FAIL line per case and ends with "pipeline: N passed, M failed".
set +e
bash Scripts/check-pipeline.sh 2>&1 | tee "$cache/check-pipeline.log"
set -e
summary="$(grep -E "^pipeline: [0-9]+ passed, [0-9]+ failed" "$cache/check-pipeline.log" | tail -1)"
if [[ -n "$summary" ]]; then
    read -r pipeline_passed pipeline_failed < <(sed -E 's/^pipeline: ([0-9]+) passed, ([0-9]+) failed.*/\1 \2/' <<< "$summary")
else
    pipeline_passed=0; pipeline_failed=1  # the script died before its summary
fi
passed=$((passed + pipeline_passed))
failed=$((failed + pipeline_failed))

echo "total: $passed passed, $failed failed"
[[ $failed -eq 0 ]]

#!/usr/bin/env bash
# Whole-pipeline check: `action-clip --json` against Reference/action_clip_reference.py (ailia's
# action_clip.py pipeline in numpy + OpenCV + ONNX Runtime) on the stand-in models.
#
# Builds nothing: Scripts/test.sh has built .build/release/action-clip and set up .venv and the
# vocabulary. Stand-ins come from Scripts/standins.sh (tiny emu181 for the case matrix, full-size
# emu181 for a few cases). Test clips are made with ffmpeg's lavfi testsrc2 (GIF, H.264 MP4 incl.
# odd-sized 4:4:4, VP9 WebM) plus the committed fixture clips of Tests/ModelsTests/Fixtures/frames.
#
# Per case: identical frame_count/frame_ids/seed/labels/warnings, scores within 1e-5 absolute, the
# same top labels in the same order except where the reference's probabilities of two swapped labels
# differ by at most 1e-5, and, for every video of the case, the network input written by
# `action-clip preprocess` equal to the reference's (max abs difference printed as "input").
# Prints one ok/FAIL line per case and ends with "pipeline: N passed, M failed"; exits 1 on a failure.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

python="$root/.venv/bin/python"
cli="$root/.build/release/action-clip"
vocab="$root/Weights/bpe_simple_vocab_16e6.txt.gz"
work="$root/.cache/pipeline"
[[ -x "$cli" ]] || { echo "check-pipeline.sh: error: $cli missing (swift build -c release first)" >&2; exit 1; }
[[ -x "$python" ]] || { echo "check-pipeline.sh: error: $python missing (Reference/setup_venv.sh)" >&2; exit 1; }
[[ -f "$vocab" ]] || { echo "check-pipeline.sh: error: $vocab missing (Scripts/fetch-vocab.sh)" >&2; exit 1; }
started=$SECONDS

tiny="$(bash Scripts/standins.sh tiny emu181)"
full="$(bash Scripts/standins.sh full emu181)"

# ---- test clips ------------------------------------------------------------------------------------
clips="$root/.cache/clips"
fixtures="$root/Tests/ModelsTests/Fixtures/frames"
make_clip() {  # make_clip NAME FFMPEG-ARGS...: cached, re-made when the arguments change
    local name="$1"; shift
    local key="$*"
    if [[ -f "$clips/$name" && "$(cat "$clips/$name.key" 2>/dev/null)" == "$key" ]]; then return 0; fi
    mkdir -p "$clips"
    ffmpeg -nostdin -y -loglevel error "$@" "$clips/$name"
    echo "$key" > "$clips/$name.key"
}
src() { echo "-f lavfi -i testsrc2=size=$1:rate=$2"; }
# shellcheck disable=SC2046
{
make_clip gif23_97x61.gif $(src 98x62 10) -vf scale=97:61 -frames:v 23
make_clip gif5_97x61.gif $(src 98x62 10) -vf scale=97:61 -frames:v 5
make_clip gif50_331x187.gif $(src 332x188 12) -vf scale=331:187 -frames:v 50
make_clip h264_37_150x94.mp4 $(src 150x94 25) -frames:v 37 -c:v libx264 -pix_fmt yuv420p
make_clip h264_5_101x67.mp4 $(src 102x68 25) -vf scale=101:67 -frames:v 5 -c:v libx264 -pix_fmt yuv444p
make_clip h264_61_320x180.mp4 $(src 320x180 30) -frames:v 61 -c:v libx264 -pix_fmt yuv420p -g 12 -bf 2
make_clip vp9_30_80x48.webm $(src 80x48 24) -frames:v 30 -c:v libvpx-vp9 -b:v 200k
}
gif23="$clips/gif23_97x61.gif"; gif5="$clips/gif5_97x61.gif"; gif50="$clips/gif50_331x187.gif"
mp4="$clips/h264_37_150x94.mp4"; mp4short="$clips/h264_5_101x67.mp4"; mp4big="$clips/h264_61_320x180.mp4"
webm="$clips/vp9_30_80x48.webm"
fixgif="$fixtures/clip_small.gif"; fixmp4="$fixtures/video_h264.mp4"; fixwebm="$fixtures/video_vp9.webm"
fixavi="$fixtures/video_mjpeg.avi"

mkdir -p "$work"
labels_file="$work/labels.txt"
printf '  playing guitar  \n\nswimming\n\t riding a bike\r\ncooking, in a kitchen\n   \nwriting\n' > "$labels_file"

# ---- comparison ------------------------------------------------------------------------------------
compare="$work/compare.py"
cat > "$compare" <<'EOF'
"""compare.py SWIFT.json REFERENCE.json INPUT-PAIRS...: prints 'score <max abs diff> input <max abs diff>'
or the first mismatch (exit 1). INPUT-PAIRS are 'swift.npy=reference.npy'."""
import json, sys
import numpy as np

TOLERANCE = 1e-5
swift, reference = (json.load(open(path)) for path in sys.argv[1:3])
problems = []
score_diff = 0.0
if len(swift["results"]) != len(reference["results"]):
    problems.append(f"{len(swift['results'])} results vs {len(reference['results'])}")
for ours, theirs in zip(swift["results"], reference["results"]):
    name = theirs["video"].rsplit("/", 1)[-1]
    for key in ("video", "frame_count", "frame_ids", "seed", "labels", "warnings"):
        if ours.get(key) != theirs.get(key):
            problems.append(f"{name}: {key} {ours.get(key)} vs {theirs.get(key)}")
    a, b = np.array(ours["scores"]), np.array(theirs["scores"])
    if a.shape != b.shape:
        problems.append(f"{name}: {a.size} scores vs {b.size}")
        continue
    score_diff = max(score_diff, float(np.max(np.abs(a - b))))
    if abs(a.sum() - 1) > 1e-5:
        problems.append(f"{name}: scores sum to {a.sum()}")
    top_ours = [entry["index"] for entry in ours["top"]]
    top_theirs = [entry["index"] for entry in theirs["top"]]
    if len(top_ours) != len(top_theirs):
        problems.append(f"{name}: top has {len(top_ours)} entries vs {len(top_theirs)}")
    for rank, (i, j) in enumerate(zip(top_ours, top_theirs)):
        if i != j and abs(b[i] - b[j]) > TOLERANCE:
            problems.append(f"{name}: rank {rank} is label {i} vs {j} (reference probabilities {b[i]} vs {b[j]})")
    for entry in ours["top"]:
        if entry["label"] != ours["labels"][entry["index"]] or entry["prob"] != ours["scores"][entry["index"]]:
            problems.append(f"{name}: top entry {entry} disagrees with labels/scores")
if score_diff > TOLERANCE:
    problems.append(f"scores differ by {score_diff:.3g} > {TOLERANCE}")
input_diff = 0.0
for pair in sys.argv[3:]:
    ours_path, theirs_path = pair.split("=", 1)
    x, y = np.load(ours_path), np.load(theirs_path)
    if x.shape != y.shape or x.dtype != y.dtype:
        problems.append(f"input {x.dtype}{list(x.shape)} vs {y.dtype}{list(y.shape)}")
        continue
    input_diff = max(input_diff, float(np.max(np.abs(x - y))))
if input_diff > 1e-6:
    problems.append(f"network inputs differ by {input_diff:.3g}")
summary = f"max|score diff| {score_diff:.2e}  max|input diff| {input_diff:.2e}"
if problems:
    print(summary + "; " + "; ".join(problems[:4]))
    sys.exit(1)
print(summary)
EOF

passed=0
failed=0
case_number=0
run_case() {  # run_case NAME MODEL-DIR ARGS... (classify arguments shared by both sides)
    local name="$1" models="$2"; shift 2
    case_number=$((case_number + 1))
    local dir="$work/case-$case_number"
    rm -rf "$dir"; mkdir -p "$dir"
    local start=$SECONDS
    local status=0 detail sampling=() arguments=("$@") pairs=() videos=() extra=() k=0 index
    for ((index = 0; index < ${#arguments[@]}; index++)); do
        case "${arguments[$index]}" in
            -v|--video) videos+=("${arguments[$((index + 1))]}") ;;
            --seed|--sampling) sampling+=("${arguments[$index]}" "${arguments[$((index + 1))]}") ;;
            --bgr) sampling+=(--bgr) ;;
        esac
    done
    if ! "$cli" --model-dir "$models" --vocab "$vocab" --json "$@" > "$dir/swift.json" 2> "$dir/swift.err"; then
        detail="action-clip failed: $(grep -v warning "$dir/swift.err" | tail -1)"; status=1
    else
        # Unseeded random sampling: the reference and `preprocess` reuse the seed action-clip drew.
        if [[ ! " ${arguments[*]} " =~ " --seed " && ! " ${arguments[*]} " =~ " center " ]]; then
            extra=(--seed "$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["seed"])' "$dir/swift.json")")
            sampling+=("${extra[@]}")
        fi
        if ! "$python" Reference/action_clip_reference.py --model-dir "$models" --vocab "$vocab" --json \
                --dump-inputs "$dir/reference-inputs" "$@" "${extra[@]}" > "$dir/reference.json" 2> "$dir/reference.err"; then
            detail="reference failed: $(tail -1 "$dir/reference.err")"; status=1
        fi
    fi
    if [[ $status -eq 0 ]]; then
        # The network input of every video through `action-clip preprocess`, with the same sampling.
        for video in "${videos[@]}"; do
            if ! "$cli" preprocess "$video" "${sampling[@]}" --output "$dir/swift-input-$k.npy" > /dev/null 2>> "$dir/swift.err"; then
                detail="action-clip preprocess $video failed: $(tail -1 "$dir/swift.err")"; status=1; break
            fi
            pairs+=("$dir/swift-input-$k.npy=$dir/reference-inputs/input-$k.npy")
            k=$((k + 1))
        done
        if [[ $status -eq 0 ]]; then
            detail="$("$python" "$compare" "$dir/swift.json" "$dir/reference.json" "${pairs[@]}")" || status=1
        fi
    fi
    if [[ $status -eq 0 ]]; then
        passed=$((passed + 1))
        printf 'ok    %-52s %s  (%ds)\n' "$name" "$detail" $((SECONDS - start))
    else
        failed=$((failed + 1))
        printf 'FAIL  %-52s %s  (%ds; files in %s)\n' "$name" "$detail" $((SECONDS - start)) "$dir"
    fi
}

echo "-- tiny emu181 stand-ins ($tiny)"
run_case "gif 23f 97x61 seed 0 rgb" "$tiny" -v "$gif23" --seed 0
run_case "gif 23f 97x61 seed 1 bgr" "$tiny" -v "$gif23" --seed 1 --bgr
run_case "gif 5f (short clip) seed 42" "$tiny" -v "$gif5" --seed 42
run_case "gif 50f 331x187 seed 1234567 bgr" "$tiny" -v "$gif50" --seed 1234567 --bgr
run_case "gif fixture clip_small seed 0" "$tiny" -v "$fixgif" --seed 0
run_case "mp4 h264 37f 150x94 seed 1234567" "$tiny" -v "$mp4" --seed 1234567
run_case "mp4 h264 37f 150x94 seed 0 bgr" "$tiny" -v "$mp4" --seed 0 --bgr
run_case "mp4 h264 4:4:4 5f 101x67 (short clip) seed 1" "$tiny" -v "$mp4short" --seed 1
run_case "mp4 h264 61f 320x180 B-frames seed 42" "$tiny" -v "$mp4big" --seed 42
run_case "mp4 fixture h264 12f seed 1 bgr" "$tiny" -v "$fixmp4" --seed 1 --bgr
run_case "webm vp9 30f 80x48 seed 42" "$tiny" -v "$webm" --seed 42
run_case "webm fixture vp9 12f seed 0" "$tiny" -v "$fixwebm" --seed 0
run_case "avi fixture mjpeg 12f seed 1234567 bgr" "$tiny" -v "$fixavi" --seed 1234567 --bgr
run_case "sampling center gif 23f" "$tiny" -v "$gif23" --sampling center
run_case "sampling center mp4 5f bgr" "$tiny" -v "$mp4short" --sampling center --bgr
run_case "custom labels -t (3)" "$tiny" -v "$gif23" --seed 42 -t "playing guitar" -t "swimming" -t "doing a kind of dance, fast!"
run_case "labels --desc_file (5, blank lines, CRLF)" "$tiny" -v "$mp4" --seed 1 --desc_file "$labels_file"
run_case "--desc_file overrides -t" "$tiny" -v "$gif5" --seed 0 -t ignored --desc_file "$labels_file" --bgr
run_case "5 videos at once seed 1234567" "$tiny" -v "$gif23" -v "$mp4" -v "$gif5" -v "$webm" -v "$mp4short" --seed 1234567
run_case "4 videos at once center bgr -t" "$tiny" -v "$fixgif" -v "$fixavi" -v "$mp4big" -v "$gif50" --sampling center --bgr -t running -t jumping
run_case "unseeded (seed drawn and reported)" "$tiny" -v "$gif23"

echo "-- full-size emu181 stand-ins ($full)"
run_case "full: gif 50f 331x187 seed 0" "$full" -v "$gif50" --seed 0
run_case "full: mp4 + gif + webm seed 42 bgr, -t labels" "$full" -v "$mp4" -v "$gif23" -v "$webm" --seed 42 --bgr -t "playing guitar" -t swimming -t "riding a bike"

echo "pipeline: $passed passed, $failed failed ($((SECONDS - started)) s)"
[[ $failed -eq 0 ]]

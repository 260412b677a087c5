#!/usr/bin/env bash
# The README's main job on a fresh machine: install what is needed (Scripts/setup.sh), build the
# release CLI, then classify a clip against ailia's 10 default labels.
#
# * With ailia's real models in Weights/ (vit-32-8f-image_clip.onnx, vit-32-8f-fusion.onnx and
#   vit-32-8f-text_clip.onnx or .opt.onnx) it runs the real default job: `action-clip` on the
#   sample GIF (Weights/action_recognition.gif, fetched by the CLI if missing).
# * Otherwise (a machine that reaches only the package registries) it runs the same job on the
#   full-size stand-in models with RANDOM weights (Scripts/standins.sh, cached in
#   .cache/standins/full-emu181) and a sample clip (Weights/action_recognition.gif if present, else a
#   clip made with ffmpeg's lavfi testsrc2 in .cache/). Those scores mean nothing; the run shows that
#   the whole pipeline works, and action-clip itself warns that the models are stand-ins.
# Extra arguments are passed to action-clip (e.g. --seed 0, -t "label", --json).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

bash Scripts/setup.sh
echo "demo: building action-clip (release)" >&2
swift build -c release --product action-clip 2>&1 | tail -1 >&2
cli="$root/.build/release/action-clip"

weights="$root/Weights"
text_model=""
for name in vit-32-8f-text_clip.opt.onnx vit-32-8f-text_clip.onnx; do
    [[ -f "$weights/$name" ]] && { text_model="$name"; break; }
done
if [[ -n "$text_model" && -f "$weights/vit-32-8f-image_clip.onnx" && -f "$weights/vit-32-8f-fusion.onnx" ]]; then
    echo "demo: using ailia's models in $weights" >&2
    exec "$cli" --model-dir "$weights" "$@"
fi
# The real job downloads the models (and the sample GIF) into Weights/ on first use. Where ailia's
# storage cannot be reached, that fails at once with a one-line error, and the demo falls back to
# stand-ins. A failed download leaves nothing behind, so a later run simply tries again.
echo "demo: running the real job (models and sample clip are fetched into $weights on first use)" >&2
if "$cli" --model-dir "$weights" "$@"; then exit 0; fi
echo "demo: the real job could not fetch what it needs (error above); falling back to stand-in models" >&2

standins="$(bash Scripts/standins.sh full emu181)"
clip="$weights/action_recognition.gif"
if [[ ! -f "$clip" ]]; then
    clip="$root/.cache/demo-clip.gif"
    if [[ ! -f "$clip" ]]; then
        ffmpeg -nostdin -y -loglevel error -f lavfi -i testsrc2=size=600x340:rate=16 -frames:v 50 "$clip"
    fi
fi
cat >&2 <<EOF
demo: ailia's models are not in $weights, so this runs on STAND-IN models with RANDOM weights
demo: ($standins, made by Reference/export_standins.py). The pipeline is the real one, but the
demo: scores below mean nothing. Put the three vit-32-8f-*.onnx files in Weights/ for real results.
demo: clip: $clip
EOF
exec "$cli" --model-dir "$standins" -v "$clip" "$@"

#!/usr/bin/env python3
"""Python reference of ailia-models' action_clip.py zero-shot pipeline, written from
Shared spec pipeline.md (sections 1-9); none of ailia's code is copied.

It checks `action-clip --json` end to end: the same inputs give the same JSON schema
(results[].video/frame_count/frame_ids/seed/labels/scores/top/warnings, timings_ms).

Pipeline (float32 like the script, unless noted):
  * frames: cv2.VideoCapture, CAP_PROP_FRAME_COUNT, then per sampled id
    set(CAP_PROP_POS_FRAMES, id) + read() (BGR uint8), as ailia seeks;
  * sampling: `np.random.seed(S)` then one `np.random.randint(lo, hi)` per segment with
    lo/hi = round(linspace(0, N, 9)). Every video gets a FRESH `np.random.seed(S)`: that is what
    `action-clip` does (each video's frames are the ones ailia's script would pick for that video
    alone), whereas ailia seeds once per run and handles one video. `--sampling center` uses
    ActionCLIP's segment centres as in Sources/Models/ActionCLIP/Preprocessing/FrameSampling.swift.
    Videos with fewer than 8 frames (ailia raises ValueError) take the last frame of the previous
    segment for an empty segment, without drawing, as FrameSampling.swift does;
  * resize shorter side to 256 with cv2.INTER_CUBIC on uint8 with IPP off (OpenCV's generic path,
    pipeline.md 4.2), centre crop 224, /255 (float64 -> float32), normalise with CLIP's mean/std in
    float64 and hand float32 to the network. `--bgr` keeps ailia's B,G,R order; the default converts
    to RGB (cv2.cvtColor) before normalising, as `action-clip` does by default;
  * text: the 16 templates, rows template-major, tokenized by Reference/clip_tokenizer.py (ftfy);
  * networks: ONNX Runtime (CPU, no graph optimisations) on the image, fusion and text models
    (`vit-32-8f-text_clip.opt.onnx` if present, else `vit-32-8f-text_clip.onnx`). Declared batch
    dims are made symbolic so the (16n, 77) text batch runs in one call;
  * scores: L2-normalise rows, logits = (100 * img) @ text.T, reshape (videos, 16, n), softmax over
    labels per template (exp(x - max) / sum), mean over the templates.

Usage:
  action_clip_reference.py --model-dir DIR -v VIDEO [-v ...] [-t LABEL ...] [--desc_file F]
      [--seed S] [--sampling random|center] [--bgr] [--vocab PATH] [--top K] [--json]
      [--dump-inputs DIR]
Without --json it prints ailia's result block per video. --dump-inputs saves each video's network
input (compare with `action-clip preprocess`).
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clip_tokenizer import Tokenizer  # noqa: E402

SEGMENTS = 8
CROP = 224
SCALE_SIZE = 224 * 256 // 224
MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
STD = np.array([0.26862954, 0.26130258, 0.27577711])
LOGIT_SCALE = 100.0
DEFAULT_LABELS = ["applauding", "dancing", "driving", "driving car", "driving truck",
                  "eating", "punching", "reading", "surfing", "talking phone"]
TEMPLATES = [
    "a photo of action {}", "a picture of action {}", "Human action of {}", "{}, an action",
    "{} this is an action", "{}, a video of action", "Playing action of {}", "{}",
    "Playing a kind of action, {}", "Doing a kind of action, {}", "Look, the human is {}",
    "Can you recognize the action of {}?", "Video classification of {}", "A video of {}",
    "The man is {}", "The woman is {}",
]
MODEL_FILES = {"image": "vit-32-8f-image_clip.onnx", "fusion": "vit-32-8f-fusion.onnx",
               "text": "vit-32-8f-text_clip.onnx", "text_opt": "vit-32-8f-text_clip.opt.onnx"}


class Failure(Exception):
    """One-line user-facing error."""


# ------------------------------------------------------------------------------------------------
# Frames
# ------------------------------------------------------------------------------------------------

def segment_bounds(frame_count: int) -> np.ndarray:
    return np.linspace(0, frame_count, SEGMENTS + 1).round().astype(np.int64)


def sample_random(frame_count: int, seed: int) -> tuple[list[int], str | None]:
    np.random.seed(seed)
    bounds = segment_bounds(frame_count)
    ids = []
    for i in range(SEGMENTS):
        low, high = int(bounds[i]), int(bounds[i + 1])
        if high <= low:  # only for N < 8, where ailia's randint raises; FrameSampling.swift's rule
            ids.append(max(low - 1, 0))
        else:
            ids.append(int(np.random.randint(low, high)))
    return ids, short_warning(frame_count)


def sample_center(frame_count: int) -> tuple[list[int], str | None]:
    n = frame_count
    if n <= SEGMENTS:
        return [i * n // SEGMENTS for i in range(SEGMENTS)], short_warning(n)
    offset = (n / SEGMENTS - 1) / 2.0
    return [int(i * n / SEGMENTS + offset) for i in range(SEGMENTS)], None


def short_warning(frame_count: int) -> str | None:
    if frame_count < SEGMENTS:
        return (f"the video has only {frame_count} frames (fewer than {SEGMENTS}); "
                "some frames are used more than once")
    return None


def open_video(path: str) -> tuple[cv2.VideoCapture, int]:
    if not os.path.isfile(path):
        raise Failure(f"{path}: no such file")
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise Failure(f"{path}: OpenCV cannot open it")
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    if count <= 0:
        raise Failure(f"{path}: no frames")
    return capture, count


def read_frames(capture: cv2.VideoCapture, path: str, ids: list[int]) -> list[np.ndarray]:
    frames = []
    for index in ids:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        if not ok or frame is None:  # ailia ignores the flag and crashes later
            raise Failure(f"{path}: cannot read frame {index}")
        frames.append(frame)
    return frames


def resize_shorter_side(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    scale = SCALE_SIZE / min(h, w)
    new_h, new_w = np.round(scale * np.array([h, w])).astype(np.int64)
    return cv2.resize(image, (int(new_w), int(new_h)), interpolation=cv2.INTER_CUBIC)


def center_crop(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    y0, x0 = (h - CROP) // 2, (w - CROP) // 2
    return image[y0:y0 + CROP, x0:x0 + CROP]


def preprocess(frames: list[np.ndarray], bgr: bool) -> np.ndarray:
    """(8, 3, 224, 224) float32 network input."""
    crops = [center_crop(resize_shorter_side(frame)) for frame in frames]
    if not bgr:
        crops = [cv2.cvtColor(crop, cv2.COLOR_BGR2RGB) for crop in crops]
    x = (np.stack(crops) / 255.0).astype(np.float32).transpose(0, 3, 1, 2)
    x = (x - MEAN[None, :, None, None]) / STD[None, :, None, None]  # float64, as ailia
    return np.ascontiguousarray(x, dtype=np.float32)


# ------------------------------------------------------------------------------------------------
# Networks
# ------------------------------------------------------------------------------------------------

class Network:
    """One ONNX model in ONNX Runtime, first I/O dims made symbolic (ailia's text model is
    declared [1, 77] but fed [16n, 77]). Falls back to running in chunks of the declared batch
    if the graph cannot run at another batch."""

    def __init__(self, path: str):
        import onnx
        if not os.path.isfile(path):
            raise Failure(f"{path}: model file not found")
        model = onnx.load(path)
        self.declared = None
        first = model.graph.input[0].type.tensor_type.shape.dim
        if len(first) and first[0].HasField("dim_value"):
            self.declared = first[0].dim_value
        self.input_name = model.graph.input[0].name
        self.model = model
        self.sessions = {}

    def session(self, relaxed: bool):
        """The model as declared, or with the first dim of every graph input/output symbolic."""
        import onnx
        import onnxruntime as ort
        if relaxed not in self.sessions:
            model = self.model
            if relaxed:
                model = onnx.ModelProto()
                model.CopyFrom(self.model)
                for value in list(model.graph.input) + list(model.graph.output):
                    dims = value.type.tensor_type.shape.dim
                    if len(dims):
                        dims[0].Clear()
                        dims[0].dim_param = "batch"
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            options.intra_op_num_threads = 2
            options.log_severity_level = 3
            self.sessions[relaxed] = ort.InferenceSession(model.SerializeToString(), options,
                                                          providers=["CPUExecutionProvider"])
        return self.sessions[relaxed]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.declared is None or x.shape[0] == self.declared:
            return self.session(False).run(None, {self.input_name: x})[0]
        try:
            return self.session(True).run(None, {self.input_name: x})[0]
        except Exception:
            if x.shape[0] % self.declared:
                raise
            parts = [self.session(False).run(None, {self.input_name: x[i:i + self.declared]})[0]
                     for i in range(0, x.shape[0], self.declared)]
            return np.concatenate(parts, axis=0)


def load_networks(model_dir: str) -> dict[str, Network]:
    text = MODEL_FILES["text_opt"] if os.path.isfile(os.path.join(model_dir, MODEL_FILES["text_opt"])) \
        else MODEL_FILES["text"]
    return {"image": Network(os.path.join(model_dir, MODEL_FILES["image"])),
            "fusion": Network(os.path.join(model_dir, MODEL_FILES["fusion"])),
            "text": Network(os.path.join(model_dir, text))}


def prompt_tokens(tokenizer: Tokenizer, labels: list[str]) -> np.ndarray:
    rows = []
    for template in TEMPLATES:
        for label in labels:
            try:
                rows.append(tokenizer.tokenize(template.format(label)))
            except RuntimeError as error:
                raise Failure(f"label '{label}': {error}") from None
    return np.array(rows, dtype=np.int64)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def scores(video_features: np.ndarray, text_features: np.ndarray, label_count: int) -> np.ndarray:
    """(videos, n) float32 probabilities."""
    image = l2_normalize(video_features)
    text = l2_normalize(text_features)
    similarity = (LOGIT_SCALE * image) @ text.T
    similarity = similarity.reshape(image.shape[0], len(TEMPLATES), label_count)
    return softmax(similarity, axis=-1).mean(axis=1)


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------

def resolve_labels(args) -> list[str]:
    if args.desc_file:
        try:
            with open(args.desc_file, encoding="utf-8") as handle:
                labels = [line.strip() for line in handle.readlines()]
        except OSError as error:
            raise Failure(f"{args.desc_file}: cannot read the label file ({error.strerror})") from None
        labels = [label for label in labels if label]
        if not labels:
            raise Failure(f"{args.desc_file}: the label file has no labels")
        return labels
    return args.text or list(DEFAULT_LABELS)


def ranking(probabilities: np.ndarray) -> list[int]:
    """Descending, ties by lower index (stable), as action-clip."""
    return sorted(range(len(probabilities)), key=lambda i: (-float(probabilities[i]), i))


def classify(args) -> dict:
    cv2.ipp.setUseIPP(False)  # OpenCV's generic INTER_CUBIC path (pipeline.md 4.2)
    labels = resolve_labels(args)
    vocab = args.vocab or os.path.join(args.model_dir, "bpe_simple_vocab_16e6.txt.gz")
    if not os.path.isfile(vocab):
        raise Failure(f"{vocab}: vocabulary not found")
    networks = load_networks(args.model_dir)
    tokenizer = Tokenizer(vocab)
    seed = None
    if args.sampling == "random":
        seed = args.seed if args.seed is not None else secrets.randbits(32)
    timings = []

    start = time.perf_counter()
    prepared = []
    for path in args.video:
        capture, count = open_video(path)
        ids, warning = sample_random(count, seed) if seed is not None else sample_center(count)
        frames = read_frames(capture, path, ids)
        capture.release()
        warnings = [f"{path}: {warning}"] if warning else []
        prepared.append((path, count, ids, preprocess(frames, args.bgr), warnings))
    timings.append(("decode_and_preprocess", time.perf_counter() - start))
    if args.dump_inputs:
        os.makedirs(args.dump_inputs, exist_ok=True)
        for index, item in enumerate(prepared):
            np.save(os.path.join(args.dump_inputs, f"input-{index}.npy"), item[3])

    start = time.perf_counter()
    fused = []
    for _, _, _, x, _ in prepared:  # one video at a time, as ailia
        features = networks["image"](x)
        fused.append(networks["fusion"](features.reshape(1, SEGMENTS, -1)))
    video_features = np.concatenate(fused, axis=0)
    timings.append(("image_and_fusion", time.perf_counter() - start))

    start = time.perf_counter()
    text_features = networks["text"](prompt_tokens(tokenizer, labels))
    timings.append(("text", time.perf_counter() - start))

    start = time.perf_counter()
    probabilities = scores(video_features, text_features, len(labels))
    timings.append(("scoring", time.perf_counter() - start))

    top = min(args.top or 5, len(labels))
    results = []
    for (path, count, ids, _, warnings), row in zip(prepared, probabilities):
        order = ranking(row)[:top]
        results.append({
            "video": path, "frame_count": count, "frame_ids": ids, "seed": seed, "labels": labels,
            "scores": [float(p) for p in row],
            "top": [{"index": i, "label": labels[i], "prob": float(row[i])} for i in order],
            "warnings": warnings,
        })
    return {"results": results, "timings_ms": {name: round(seconds * 1000, 3) for name, seconds in timings}}


def ailia_block(result: dict) -> str:
    lines = ["=" * 62, f"class_count = {len(result['labels'])}"]
    for rank, entry in enumerate(result["top"]):
        lines += [f"+ idx = {rank}", f"  category = {entry['index']} [{entry['label']}]", f"  prob = {entry['prob']}"]
    return "\n".join(lines) + "\n\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("-v", "--video", action="append", required=True)
    parser.add_argument("-t", "--text", action="append")
    parser.add_argument("--desc_file", "--desc-file", dest="desc_file")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--sampling", choices=["random", "center"], default="random")
    parser.add_argument("--bgr", action="store_true")
    parser.add_argument("--vocab")
    parser.add_argument("--top", type=int)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--dump-inputs", metavar="DIR",
                        help="also save each video's (8, 3, 224, 224) network input as DIR/input-<k>.npy")
    args = parser.parse_args(argv)
    if args.seed is not None and args.sampling == "center":
        parser.error("--seed applies to random sampling, not --sampling center")
    if args.seed is not None and not 0 <= args.seed <= 0xFFFFFFFF:
        parser.error("--seed must be in [0, 2**32 - 1]")
    if args.top is not None and args.top < 1:
        parser.error("--top must be at least 1")
    try:
        report = classify(args)
    except Failure as error:
        print(f"action_clip_reference: error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report))
    else:
        for result in report["results"]:
            sys.stdout.write(ailia_block(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""ailia ActionCLIP preprocessing (action_clip.py `recognize_from_video` + `preprocess_image`) with
numpy + OpenCV, used to check the Swift implementation (spec pipeline.md §3-§4).

Frames are read the way ailia reads them: cv2.VideoCapture, CAP_PROP_FRAME_COUNT, then for each sampled
id `set(CAP_PROP_POS_FRAMES, id)` + `read()`. The resize uses OpenCV's generic (non-IPP) path, which is
what the Swift code reproduces; pass --ipp to use the default (IPP) path instead.

Usage:
  preprocess_reference.py --video PATH [--seed S | --center] [--bgr | --rgb] --output FILE.npy
                          [--crops FILE.npy]
Prints the frame count and the frame ids. FILE.npy is float32 (8, 3, 224, 224); --crops also saves the
(8, 224, 224, 3) uint8 BGR crops.
"""
import argparse
import sys

import cv2
import numpy as np

MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
STD = np.array([0.26862954, 0.26130258, 0.27577711])
SEGMENTS = 8
CROP = 224
SCALE_SIZE = 224 * 256 // 224


def use_generic_path(enable_ipp=False):
    # The IPP switch alone selects the generic C++ resize (checked against the golden crop, see
    # make_frame_cases.py); setUseOptimized(False) is not needed for resize.
    cv2.ipp.setUseIPP(enable_ipp)


def sample_ids(frame_count, seed=None, center=False):
    if center:
        n = frame_count
        if n <= SEGMENTS:
            return [i * n // SEGMENTS for i in range(SEGMENTS)]
        offset = (n / SEGMENTS - 1) / 2.0
        return [int(i * n / SEGMENTS + offset) for i in range(SEGMENTS)]
    if seed is not None:
        np.random.seed(seed)
    intervals = np.linspace(0, frame_count, SEGMENTS + 1).round().astype(np.int64)
    return [int(np.random.randint(intervals[i], intervals[i + 1])) for i in range(SEGMENTS)]


def read_frames(path, ids):
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise SystemExit(f"{path}: cannot open")
    frames = []
    for idx in ids:
        capture.set(cv2.CAP_PROP_POS_FRAMES, idx)
        ok, frame = capture.read()
        if not ok:
            raise SystemExit(f"{path}: cannot read frame {idx}")
        frames.append(frame)
    capture.release()
    return frames


def frame_count(path):
    capture = cv2.VideoCapture(path)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    return count


def resize_shorter(image):
    h, w = image.shape[:2]
    scale = SCALE_SIZE / min(h, w)
    new_h, new_w = np.round(scale * np.array([h, w])).astype(np.int64)
    return cv2.resize(image, (int(new_w), int(new_h)), interpolation=cv2.INTER_CUBIC)


def center_crop(image):
    h, w = image.shape[:2]
    y0, x0 = (h - CROP) // 2, (w - CROP) // 2
    return image[y0:y0 + CROP, x0:x0 + CROP]


def preprocess(frames, rgb):
    crops = np.stack([center_crop(resize_shorter(f)) for f in frames])  # (8,224,224,3) BGR uint8
    x = crops
    if rgb:
        x = x[..., ::-1]
    x = (x / 255.0).astype(np.float32).transpose(0, 3, 1, 2)
    x = (x - MEAN[None, :, None, None]) / STD[None, :, None, None]  # float64, as ailia
    return crops, x.astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", required=True)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--center", action="store_true")
    order = parser.add_mutually_exclusive_group()
    order.add_argument("--bgr", action="store_true", help="ailia's order (default)")
    order.add_argument("--rgb", action="store_true")
    parser.add_argument("--ipp", action="store_true", help="use OpenCV's default IPP resize")
    parser.add_argument("--output", required=True)
    parser.add_argument("--crops")
    args = parser.parse_args()
    use_generic_path(args.ipp)
    count = frame_count(args.video)
    if count <= 0:
        raise SystemExit(f"{args.video}: no frames")
    ids = sample_ids(count, args.seed, args.center)
    crops, x = preprocess(read_frames(args.video, ids), args.rgb)
    np.save(args.output, x)
    if args.crops:
        np.save(args.crops, crops)
    print(f"frame_count {count}")
    print("frame_ids " + " ".join(str(i) for i in ids))
    return 0


if __name__ == "__main__":
    sys.exit(main())

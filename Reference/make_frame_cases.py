#!/usr/bin/env python3
"""Generates the committed fixtures in Tests/ModelsTests/Fixtures/frames/ (numpy + OpenCV + ffmpeg).

- sampling.json   numpy legacy RandomState segment sampling (ailia) and ActionCLIP centre sampling for
                  many seeds x frame counts, plus shorter-side-256 target sizes.
- resize.json + resize.bin   small random uint8 BGR images and OpenCV's generic-path (IPP off)
                  INTER_CUBIC output for them (offsets/sizes in the JSON).
- gif_*.gif + gifs.json + gif_*.bgr   GIFs written by the tiny encoder below to exercise disposal
                  0/1/2/3, transparency, local/global palettes, stale local-palette entries, out-of-range
                  indices, interlacing and sub-rectangles; expected frames are FFmpeg's decode
                  (`ffmpeg -f rawvideo -pix_fmt bgr24`), cross-checked against cv2.VideoCapture.
                  gif_lzw holds real LZW compression (table growth, full tables, KwKwK codes) and
                  damaged frames: an early end code, an invalid code, an interlaced frame cut short.
- video_*.{mp4,webm,avi} + videos.json + video_*.bgr   lavfi testsrc clips (H.264, VP9, MJPEG) and the
                  BGR24 frames cv2.VideoCapture reads (cross-checked with `ffmpeg -sws_flags bicubic`).
- clip_small.gif + crop_cases.json   a small committed GIF and FNV-1a-64 checksums of the preprocessing
                  (crops and float32 input) from Reference/preprocess_reference.py, for several seeds.

Run from the repository root: python Reference/make_frame_cases.py (`--gifs`: only the gif_* files)
"""
import json
import os
import subprocess
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import preprocess_reference as ref  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "ModelsTests", "Fixtures", "frames")
cv2.ipp.setUseIPP(False)


def fnv1a64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


# ---------------------------------------------------------------- sampling
def sampling_cases():
    seeds = [0, 1, 2, 3, 7, 42, 99, 123, 1024, 4321, 65535, 123456789, 2**31 - 1, 2**32 - 1]
    counts = [8, 9, 10, 12, 15, 16, 17, 23, 50, 51, 64, 100, 333, 1000, 4096, 65536, 1000003]
    random_cases = []
    for seed in seeds:
        for n in counts:
            np.random.seed(seed)
            intervals = np.linspace(0, n, 9).round().astype(np.int64)
            ids = [int(np.random.randint(intervals[i], intervals[i + 1])) for i in range(8)]
            random_cases.append({"seed": seed, "frame_count": n, "intervals": intervals.tolist(), "sample_ids": ids})
    center_cases = [{"frame_count": n, "sample_ids": ref.sample_ids(n, center=True)} for n in list(range(1, 40)) + counts]
    bounds = [{"frame_count": n, "intervals": np.linspace(0, n, 9).round().astype(np.int64).tolist()}
              for n in range(1, 8)]
    sizes = []
    for h, w in [(339, 600), (600, 339), (256, 256), (100, 100), (480, 640), (1080, 1920), (1, 5), (7, 3),
                 (333, 500), (45, 70), (240, 427), (101, 203), (513, 1025), (300, 300)]:
        scale = 256 / min(h, w)
        nh, nw = np.round(scale * np.array([h, w])).astype(np.int64)
        sizes.append({"height": h, "width": w, "resized_height": int(nh), "resized_width": int(nw)})
    with open(os.path.join(OUT, "sampling.json"), "w") as f:
        json.dump({"random": random_cases, "center": center_cases, "short_bounds": bounds, "resized_sizes": sizes}, f)


# ---------------------------------------------------------------- resize
def resize_cases():
    rng = np.random.default_rng(20261126)
    shapes = [  # (src h, src w) -> (dst h, dst w)
        ((7, 5), (13, 11)), ((20, 33), (9, 14)), ((1, 9), (4, 20)), ((9, 1), (20, 4)), ((1, 1), (3, 5)),
        ((50, 77), (37, 101)), ((31, 17), (256, 140)), ((16, 16), (16, 16)), ((64, 48), (8, 6)),
        ((12, 40), (5, 3)), ((3, 3), (1, 1)), ((45, 70), (256, 398)), ((29, 11), (29, 37)),
    ]
    blob = bytearray()
    cases = []
    for (sh, sw), (dh, dw) in shapes:
        if len(cases) % 2 == 0:
            src = rng.integers(0, 256, size=(sh, sw, 3), dtype=np.uint8)
        else:  # high-contrast content drives the saturation paths
            src = (rng.integers(0, 2, size=(sh, sw, 3)) * 255).astype(np.uint8)
        dst = cv2.resize(src, (dw, dh), interpolation=cv2.INTER_CUBIC)
        case = {"src_height": sh, "src_width": sw, "dst_height": dh, "dst_width": dw,
                "src_offset": len(blob)}
        blob += src.tobytes()
        case["dst_offset"] = len(blob)
        blob += dst.tobytes()
        cases.append(case)
    with open(os.path.join(OUT, "resize.bin"), "wb") as f:
        f.write(blob)
    with open(os.path.join(OUT, "resize.json"), "w") as f:
        json.dump(cases, f, indent=0)


# ---------------------------------------------------------------- GIF encoder
def lzw_encode(indices, min_code_size):
    """LZW data without compression: literal codes only, a clear code before the table would grow
    past the initial code width, so every code is min_code_size+1 bits."""
    clear = 1 << min_code_size
    eoi = clear + 1
    width = min_code_size + 1
    per_clear = (1 << width) - clear - 3
    codes = [clear]
    run = 0
    for value in indices:
        if run == per_clear:
            codes.append(clear)
            run = 0
        codes.append(int(value))
        run += 1
    codes.append(eoi)
    return image_data([(code, width) for code in codes], min_code_size)


def image_data(codes, min_code_size):
    """An image's data: the code size byte, then (code, width) pairs packed least significant bit
    first into sub-blocks of at most 255 bytes, then the block terminator."""
    out = bytearray()
    acc = 0
    bits = 0
    for code, width in codes:
        acc |= code << bits
        bits += width
        while bits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            bits -= 8
    if bits:
        out.append(acc & 0xFF)
    blocks = bytearray([min_code_size])
    for i in range(0, len(out), 255):
        chunk = out[i:i + 255]
        blocks.append(len(chunk))
        blocks += chunk
    blocks.append(0)
    return bytes(blocks)


def lzw_compress(indices, min_code_size, stop_after=None, damage="end"):
    """Real GIF LZW compression. The encoder mirrors the decoder's table state so each code has the width
    the decoder expects, and lets the table fill up and stay full (the deferred clear). `stop_after`:
    encode only that many pixels, then end with `damage`: "end" (an early end code) or "invalid" (a
    clear code, then a code the fresh table cannot hold yet)."""
    clear = 1 << min_code_size
    eoi, first_free = clear + 1, clear + 2
    state = {"next": first_free, "width": min_code_size + 1, "previous": False}
    codes = []

    def emit(code):
        codes.append((code, state["width"]))
        if code == clear:
            state.update(next=first_free, width=min_code_size + 1, previous=False)
            return
        if state["previous"] and state["next"] < (1 << state["width"]):
            state["next"] += 1
        if state["next"] >= (1 << state["width"]) and state["width"] < 12:
            state["width"] += 1
        state["previous"] = True

    pixels = [int(v) for v in indices]
    if stop_after is not None:
        pixels = pixels[:stop_after]
    table = {}
    emit(clear)
    current = ()
    for value in pixels:
        extended = current + (value,)
        if not current or len(extended) == 1 or extended in table:
            current = extended
            continue
        emit(current[0] if len(current) == 1 else table[current])
        if first_free + len(table) < 4096:
            table[extended] = first_free + len(table)
        current = (value,)
    if current:
        emit(current[0] if len(current) == 1 else table[current])
    if stop_after is not None and damage == "invalid":
        emit(clear)
        emit(clear + 3)
    emit(eoi)
    return image_data(codes, min_code_size)


def palette_bytes(colors):
    bits = max(1, int(np.ceil(np.log2(max(2, len(colors))))))
    padded = list(colors) + [(0, 0, 0)] * ((1 << bits) - len(colors))
    return bits, bytes(c for rgb in padded for c in rgb)


def interlace_order(height):
    return list(range(0, height, 8)) + list(range(4, height, 8)) + list(range(2, height, 4)) + list(range(1, height, 2))


def encode_gif(width, height, global_palette, background, frames):
    data = bytearray(b"GIF89a")
    data += width.to_bytes(2, "little") + height.to_bytes(2, "little")
    if global_palette is not None:
        bits, table = palette_bytes(global_palette)
        data += bytes([0x80 | 0x70 | (bits - 1), background, 0]) + table
    else:
        data += bytes([0x70, background, 0])
    for frame in frames:
        transparent = frame.get("transparent")
        disposal = frame.get("disposal", 0)
        flags = (disposal << 2) | (1 if transparent is not None else 0)
        data += bytes([0x21, 0xF9, 4, flags]) + (frame.get("delay", 10)).to_bytes(2, "little")
        data += bytes([transparent or 0, 0])
        pixels = np.asarray(frame["pixels"], dtype=np.uint8)
        fh, fw = pixels.shape
        flags = 0
        local = frame.get("palette")
        code_bits = frame.get("code_size")
        if local is not None:
            bits, table = palette_bytes(local)
            flags |= 0x80 | (bits - 1)
        else:
            bits, table = palette_bytes(global_palette), b""
            bits = bits[0]
        if frame.get("interlace"):
            flags |= 0x40
            rows = pixels[interlace_order(fh)]
        else:
            rows = pixels
        data += bytes([0x2C]) + frame["left"].to_bytes(2, "little") + frame["top"].to_bytes(2, "little")
        data += fw.to_bytes(2, "little") + fh.to_bytes(2, "little") + bytes([flags]) + table
        if frame.get("compress"):
            data += lzw_compress(rows.reshape(-1), max(2, code_bits or bits), frame.get("stop_after"),
                                 frame.get("damage", "end"))
        else:
            data += lzw_encode(rows.reshape(-1), max(2, code_bits or bits))
    data += b"\x3B"
    return bytes(data)


def palette(rng, n):
    return [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(n)]


def gif_cases(rng):
    gifs = {}
    g16 = palette(rng, 16)
    W, H = 24, 16
    gifs["gif_disposals"] = (W, H, g16, 3, [
        dict(left=0, top=0, pixels=rng.integers(0, 16, (H, W)), disposal=1),
        dict(left=4, top=2, pixels=rng.integers(0, 16, (8, 10)), transparent=5, disposal=2),
        dict(left=10, top=6, pixels=rng.integers(0, 8, (9, 12)), palette=palette(rng, 8), transparent=2, disposal=3),
        dict(left=0, top=0, pixels=rng.integers(0, 16, (8, 8)), disposal=0),
        dict(left=18, top=10, pixels=rng.integers(0, 16, (6, 6)), disposal=2),
        dict(left=0, top=0, pixels=rng.integers(0, 16, (H, W)), transparent=0, disposal=1, interlace=True),
        dict(left=3, top=3, pixels=rng.integers(0, 16, (10, 15)), palette=palette(rng, 16), disposal=3),
        # 2-colour local palette but 2-bit codes: indices 2, 3 read FFmpeg's stale local entries.
        dict(left=5, top=1, pixels=rng.integers(0, 4, (7, 9)), palette=palette(rng, 2), code_size=2, disposal=0),
        dict(left=1, top=1, pixels=rng.integers(0, 16, (5, 5)), transparent=7, disposal=3),
        dict(left=2, top=9, pixels=rng.integers(0, 16, (7, 20)), disposal=1),
    ])
    # First frame transparent, no global palette: initial canvas is transparent white.
    gifs["gif_first_transparent"] = (20, 13, None, 0, [
        dict(left=2, top=3, pixels=rng.integers(0, 4, (6, 9)), palette=palette(rng, 4), transparent=1, disposal=2),
        dict(left=0, top=0, pixels=rng.integers(0, 4, (13, 20)), palette=palette(rng, 4), transparent=3, disposal=2),
        dict(left=7, top=5, pixels=rng.integers(0, 4, (8, 13)), palette=palette(rng, 4), disposal=2),
        dict(left=1, top=0, pixels=rng.integers(0, 4, (13, 6)), palette=palette(rng, 4), transparent=0, interlace=True, disposal=0),
    ])
    # Global 4-colour palette with 3-bit codes (indices 4..7 out of range -> black), background fill.
    g4 = palette(rng, 4)
    gifs["gif_background"] = (17, 11, g4, 2, [
        dict(left=3, top=2, pixels=rng.integers(0, 8, (5, 7)), code_size=3, disposal=2),
        dict(left=8, top=4, pixels=rng.integers(0, 4, (7, 9)), transparent=1, disposal=3),
        dict(left=0, top=0, pixels=rng.integers(0, 4, (4, 17)), disposal=2),
        dict(left=10, top=7, pixels=rng.integers(0, 4, (4, 7)), transparent=0, disposal=1),
        dict(left=0, top=0, pixels=rng.integers(0, 4, (11, 17)), transparent=2, interlace=True, disposal=0),
    ])
    # Frames hanging over the right/bottom edge (clipped), interlaced odd heights.
    gifs["gif_clipping"] = (15, 9, g16, 1, [
        dict(left=0, top=0, pixels=rng.integers(0, 16, (9, 15)), interlace=True, disposal=1),
        dict(left=10, top=5, pixels=rng.integers(0, 16, (7, 9)), transparent=4, disposal=2),
        dict(left=12, top=0, pixels=rng.integers(0, 16, (13, 3)), interlace=True, disposal=3),
        dict(left=0, top=7, pixels=rng.integers(0, 16, (3, 16)), disposal=0),
    ])
    # Compressed frames: runs and blocks of few colours make long table strings; a 256-colour noise frame
    # fills the table (4096 entries) and keeps going with it full. Frames 2-4 are damaged: the stream
    # stops 2.5 lines in (end code), an invalid code 3.5 lines in, and an interlaced frame stops after
    # 3 of its lines; FFmpeg draws each up to its last complete line.
    g256 = palette(rng, 256)
    W, H = 40, 30
    runs = np.repeat(rng.integers(0, 256, (H, 5)), 8, axis=1)
    blocks = np.kron(rng.integers(0, 4, (6, 8)), np.ones((5, 5), dtype=np.int64))
    gifs["gif_lzw"] = (W, H, g256, 9, [
        dict(left=0, top=0, pixels=runs, compress=True, disposal=1),
        dict(left=0, top=0, pixels=rng.integers(0, 256, (H, W)), compress=True, disposal=1),
        dict(left=2, top=3, pixels=blocks[:20, :30], compress=True, stop_after=30 * 2 + 15, disposal=1),
        dict(left=5, top=1, pixels=rng.integers(0, 16, (12, 20)), compress=True, stop_after=20 * 3 + 10,
             damage="invalid", transparent=3, disposal=2),
        dict(left=1, top=2, pixels=rng.integers(0, 256, (25, 30)), compress=True, interlace=True,
             stop_after=30 * 3, disposal=1),
        dict(left=0, top=0, pixels=blocks, compress=True, transparent=0, disposal=0),
    ])
    return gifs


def decode_ffmpeg(path, w, h):
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "bgr24",
                          "-fps_mode", "passthrough", "-sws_flags", "bicubic", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def decode_cv2(path):
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    return np.stack(frames), count


def write_gifs():
    rng = np.random.default_rng(7)
    index = []
    for name, (w, h, gpal, bg, frames) in gif_cases(rng).items():
        path = os.path.join(OUT, name + ".gif")
        with open(path, "wb") as f:
            f.write(encode_gif(w, h, gpal, bg, frames))
        expected = decode_ffmpeg(path, w, h)
        via_cv2, count = decode_cv2(path)
        agree = via_cv2.shape == expected.shape and bool((via_cv2 == expected).all())
        print(f"{name}: {len(expected)} frames, cv2 count {count}, cv2 == ffmpeg: {agree}")
        with open(os.path.join(OUT, name + ".bgr"), "wb") as f:
            f.write(expected.tobytes())
        index.append({"name": name, "width": w, "height": h, "frames": int(len(expected)), "cv2_agrees": agree})
    with open(os.path.join(OUT, "gifs.json"), "w") as f:
        json.dump(index, f, indent=0)


def write_videos():
    specs = [
        ("video_h264.mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-crf", "30"]),
        ("video_vp9.webm", ["-c:v", "libvpx-vp9", "-pix_fmt", "yuv420p", "-b:v", "100k", "-deadline", "realtime"]),
        ("video_mjpeg.avi", ["-c:v", "mjpeg", "-q:v", "8"]),
    ]
    index = []
    for name, codec in specs:
        path = os.path.join(OUT, name)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=70x46:rate=10",
                        "-frames:v", "12", *codec, path], check=True)
        frames, count = decode_cv2(path)
        h, w = frames.shape[1:3]
        via_ffmpeg = decode_ffmpeg(path, w, h)
        agree = via_ffmpeg.shape == frames.shape and bool((via_ffmpeg == frames).all())
        maxdiff = int(np.abs(via_ffmpeg.astype(int) - frames).max()) if via_ffmpeg.shape == frames.shape else -1
        print(f"{name}: {len(frames)} frames {w}x{h}, cv2 count {count}, ffmpeg CLI == cv2: {agree} (max diff {maxdiff}), "
              f"{os.path.getsize(path)} bytes")
        stem = os.path.splitext(name)[0]
        with open(os.path.join(OUT, stem + ".bgr"), "wb") as f:
            f.write(frames.tobytes())
        index.append({"name": name, "expected": stem + ".bgr", "width": int(w), "height": int(h),
                      "frames": int(len(frames)), "cv2_frame_count": count, "ffmpeg_cli_agrees": agree})
    with open(os.path.join(OUT, "videos.json"), "w") as f:
        json.dump(index, f, indent=0)


def write_crop_cases():
    rng = np.random.default_rng(11)
    w, h = 52, 36
    pal = palette(rng, 64)
    base = rng.integers(0, 64, (h, w))
    frames = [dict(left=0, top=0, pixels=base, disposal=1)]
    for k in range(1, 12):
        fw, fh = int(rng.integers(5, 20)), int(rng.integers(5, 15))
        frames.append(dict(left=int(rng.integers(0, w - fw)), top=int(rng.integers(0, h - fh)),
                           pixels=rng.integers(0, 64, (fh, fw)), transparent=int(rng.integers(0, 64)),
                           disposal=int(k % 4)))
    path = os.path.join(OUT, "clip_small.gif")
    with open(path, "wb") as f:
        f.write(encode_gif(w, h, pal, 0, frames))
    cases = []
    for seed, center, rgb in [(0, False, False), (1, False, True), (42, False, False), (None, True, True)]:
        count = ref.frame_count(path)
        ids = ref.sample_ids(count, seed, center)
        crops, x = ref.preprocess(ref.read_frames(path, ids), rgb)
        cases.append({"seed": seed, "center": center, "order": "rgb" if rgb else "bgr", "frame_count": count,
                      "frame_ids": ids, "crops_fnv1a64": fnv1a64(np.ascontiguousarray(crops).tobytes()),
                      "input_fnv1a64": fnv1a64(np.ascontiguousarray(x).tobytes()),
                      "input_sum": float(x.astype(np.float64).sum()),
                      "input_first": [float(v) for v in x[0, 0, 0, :4]]})
    with open(os.path.join(OUT, "crop_cases.json"), "w") as f:
        json.dump(cases, f, indent=1)


def main():
    os.makedirs(OUT, exist_ok=True)
    if sys.argv[1:] == ["--gifs"]:
        write_gifs()
        return 0
    sampling_cases()
    resize_cases()
    write_gifs()
    write_videos()
    write_crop_cases()
    return 0


if __name__ == "__main__":
    sys.exit(main())

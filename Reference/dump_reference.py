#!/usr/bin/env python3
"""Run an ONNX model in onnxruntime and dump inputs, outputs and (optionally) every node output as .npy.

Usage:
  dump_reference.py MODEL.onnx --out DIR [--input NAME=FILE.npy ...] [--seed S] [--batch B] [--all-nodes]

Writes DIR/manifest.json, DIR/inputs/<name>.npy, DIR/outputs/<name>.npy and, with --all-nodes,
DIR/nodes/<name>.npy for every node output of the graph in graph order (Constant outputs and graph outputs
included). <name> is the tensor name with every character outside [A-Za-z0-9._-] replaced by '_'; when two
names in one directory collide after that (compared case-insensitively, so the files also survive a
case-insensitive file system), the later ones get '__2', '__3', ...; the manifest records the file of each
entry and lists the renamed ones under "renamed".

onnxruntime runs on the CPU execution provider with graph optimizations DISABLED (so every node exists and
is executed as written) and 2 intra-op threads.

Inputs not given with --input are generated from --seed: float inputs are standard normal, except an input
named `image` (or any rank-4 float input), which gets a normalized-image-like distribution; int64 inputs
whose last dim is 77 get CLIP token rows [49406, k ids in [1, 49405] (k in [1, 40]), 49407, 0...] so
the EOT token is the unique maximum; other int64 inputs get small non-negative integers.
--batch B replaces the first dimension of every generated input and makes the first dimension of every
graph input and output symbolic, so a model declared with a static batch can run at another batch.

manifest.json:
  {"model": path, "inputs": [{"name", "file", "dtype", "shape"}], "outputs": [...],
   "nodes": [{"name", "file", "dtype", "shape", "node", "op_type"}],
   "renamed": {"inputs": {name: file}, "outputs": {...}, "nodes": {...}}}
File paths in the manifest are relative to DIR. Arrays are saved C-order little-endian with np.save.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

import numpy as np

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def sanitize(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return s if s else "_"


class FileNamer:
    """Maps tensor names to unique sanitized file stems within one directory."""

    def __init__(self):
        self.used: set[str] = set()
        self.renamed: dict[str, str] = {}

    def stem(self, name: str) -> str:
        base = sanitize(name)
        stem, n = base, 1
        while stem.lower() in self.used:  # case-insensitive: safe on case-insensitive file systems too
            n += 1
            stem = f"{base}__{n}"
        self.used.add(stem.lower())
        if n > 1:
            self.renamed[name] = stem
        return stem


def np_dtype(elem_type: int) -> np.dtype:
    from onnx import helper
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))


def make_text_tokens(rng: np.random.Generator, rows: int, context: int) -> np.ndarray:
    out = np.zeros((rows, context), dtype=np.int64)
    for r in range(rows):
        k = int(rng.integers(1, 41))
        k = min(k, context - 2)
        out[r, 0] = 49406
        out[r, 1:1 + k] = rng.integers(1, 49406, size=k)
        out[r, 1 + k] = 49407
    return out


def make_image_like(rng: np.random.Generator, shape: list[int]) -> np.ndarray:
    n, c, h, w = shape
    low = rng.random((n, c, max(1, h // 16), max(1, w // 16)), dtype=np.float32)
    img = np.repeat(np.repeat(low, 16, axis=2), 16, axis=3)
    img = np.pad(img, ((0, 0), (0, 0), (0, max(0, h - img.shape[2])), (0, max(0, w - img.shape[3]))), mode="edge")
    img = img[:, :, :h, :w]
    img = np.clip(img + 0.08 * rng.standard_normal(img.shape, dtype=np.float32), 0.0, 1.0)
    if c == 3:
        img = (img - CLIP_MEAN[None, :, None, None]) / CLIP_STD[None, :, None, None]
    return np.ascontiguousarray(img, dtype=np.float32)


def generate_input(vi, rng: np.random.Generator, batch: int | None) -> np.ndarray:
    tt = vi.type.tensor_type
    dt = np_dtype(tt.elem_type)
    shape = []
    for i, d in enumerate(tt.shape.dim):
        if i == 0 and batch is not None:
            shape.append(batch)
        elif d.HasField("dim_value"):
            shape.append(d.dim_value)
        else:
            raise SystemExit(f"input {vi.name}: dim {i} is symbolic ({d.dim_param!r}); give --batch or --input")
    if dt == np.float32 or dt == np.float64 or dt == np.float16:
        if vi.name == "image" or len(shape) == 4:
            return make_image_like(rng, shape).astype(dt)
        return rng.standard_normal(shape).astype(dt)
    if dt == np.int64 or dt == np.int32:
        if len(shape) >= 1 and shape[-1] == 77:
            rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            return make_text_tokens(rng, rows, 77).reshape(shape).astype(dt)
        return rng.integers(0, 10, size=shape).astype(dt)
    if dt == np.bool_:
        return rng.random(shape) < 0.5
    raise SystemExit(f"input {vi.name}: cannot generate dtype {dt}")


def relax_batch(model) -> None:
    """Make the first dim of every graph input and output symbolic (in place)."""
    for vi in list(model.graph.input) + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if len(dims):
            dims[0].Clear()
            dims[0].dim_param = "batch"


def tensor_types(model) -> dict[str, int]:
    """Element type of every tensor, from ONNX shape inference plus Constant/initializer/input facts."""
    import onnx
    types: dict[str, int] = {}
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
        for vi in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input):
            if vi.type.tensor_type.elem_type:
                types[vi.name] = vi.type.tensor_type.elem_type
    except Exception as e:  # noqa: BLE001 - fall back to the local propagation below
        print(f"warning: shape inference failed ({e}); using local type propagation", file=sys.stderr)
    for init in model.graph.initializer:
        types.setdefault(init.name, init.data_type)
    for n in model.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    types.setdefault(n.output[0], a.t.data_type)
    return types


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--out", required=True)
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int)
    p.add_argument("--all-nodes", action="store_true")
    a = p.parse_args(argv)

    import onnx
    import onnxruntime as ort
    from onnx import helper

    model = onnx.load(a.model)
    graph = model.graph
    init_names = {i.name for i in graph.initializer}
    real_inputs = [vi for vi in graph.input if vi.name not in init_names]

    given: dict[str, np.ndarray] = {}
    for spec in a.input:
        if "=" not in spec:
            raise SystemExit(f"--input {spec!r}: expected NAME=FILE.npy")
        name, path = spec.split("=", 1)
        if name not in {vi.name for vi in real_inputs}:
            raise SystemExit(f"--input {name}: the model has no such input "
                             f"(inputs: {', '.join(vi.name for vi in real_inputs)})")
        given[name] = np.load(path)

    rng = np.random.default_rng(a.seed)
    feeds: dict[str, np.ndarray] = {}
    for vi in real_inputs:
        if vi.name in given:
            arr = given[vi.name]
            want = np_dtype(vi.type.tensor_type.elem_type)
            if arr.dtype != want:
                raise SystemExit(f"--input {vi.name}: dtype {arr.dtype}, the model wants {want}")
            rank = len(vi.type.tensor_type.shape.dim)
            if arr.ndim != rank:
                raise SystemExit(f"--input {vi.name}: rank {arr.ndim} (shape {list(arr.shape)}), the model wants rank {rank}")
        else:
            arr = generate_input(vi, rng, a.batch)
        feeds[vi.name] = np.require(arr, requirements="C")

    # Let any input shape through (the declared dims may be static at another batch).
    if a.batch is not None or any(
            any(d.HasField("dim_value") and d.dim_value != s
                for d, s in zip(vi.type.tensor_type.shape.dim, feeds[vi.name].shape))
            for vi in real_inputs):
        relax_batch(model)

    output_names = [o.name for o in graph.output]
    node_entries = []  # (tensor name, node name, op_type) in graph order
    if a.all_nodes:
        types = tensor_types(model)
        existing = set(output_names)
        for n in graph.node:
            for t in n.output:
                if not t:
                    continue
                node_entries.append((t, n.name, n.op_type))
                if t in existing:
                    continue
                if t not in types:
                    raise SystemExit(f"tensor {t} (output of {n.op_type} {n.name}): element type unknown")
                graph.output.append(helper.make_tensor_value_info(t, types[t], None))
                existing.add(t)

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        fetch = [o.name for o in sess.get_outputs()]
        results = dict(zip(fetch, sess.run(fetch, feeds)))
    except Exception as e:  # noqa: BLE001 - onnxruntime raises several unrelated types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SystemExit(f"{a.model}: onnxruntime failed: {first}") from None

    # Sanity: every Constant's fetched value must equal its attribute (dtype, shape and bits).
    if a.all_nodes:
        from onnx import numpy_helper
        for n in graph.node:
            if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
                want = numpy_helper.to_array(n.attribute[0].t)
                got = np.asarray(results[n.output[0]])
                if got.dtype != want.dtype or got.shape != want.shape or not np.array_equal(got, want, equal_nan=True):
                    raise SystemExit(f"Constant {n.name}: onnxruntime returned {got.dtype}{list(got.shape)}, "
                                     f"the attribute holds {want.dtype}{list(want.shape)}")

    os.makedirs(a.out, exist_ok=True)
    manifest = {"model": a.model, "inputs": [], "outputs": [], "nodes": [],
                "renamed": {"inputs": {}, "outputs": {}, "nodes": {}}}

    def save(sub: str, namer: FileNamer, name: str, arr: np.ndarray) -> dict:
        arr = np.asarray(arr)
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        arr = np.require(arr, requirements="C")  # not ascontiguousarray: that turns 0-d into shape (1,)
        os.makedirs(os.path.join(a.out, sub), exist_ok=True)
        rel = f"{sub}/{namer.stem(name)}.npy"
        np.save(os.path.join(a.out, rel), arr, allow_pickle=False)
        return {"name": name, "file": rel, "dtype": str(arr.dtype), "shape": list(arr.shape)}

    namer = FileNamer()
    for vi in real_inputs:
        manifest["inputs"].append(save("inputs", namer, vi.name, feeds[vi.name]))
    manifest["renamed"]["inputs"] = {k: f"inputs/{v}.npy" for k, v in namer.renamed.items()}
    namer = FileNamer()
    for name in output_names:
        manifest["outputs"].append(save("outputs", namer, name, results[name]))
    manifest["renamed"]["outputs"] = {k: f"outputs/{v}.npy" for k, v in namer.renamed.items()}
    if a.all_nodes:
        namer = FileNamer()
        for t, node_name, op_type in node_entries:
            entry = save("nodes", namer, t, results[t])
            entry["node"] = node_name
            entry["op_type"] = op_type
            manifest["nodes"].append(entry)
        manifest["renamed"]["nodes"] = {k: f"nodes/{v}.npy" for k, v in namer.renamed.items()}

    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    shapes = ", ".join(f"{e['name']} {e['shape']}" for e in manifest["outputs"])
    print(f"{a.model}: inputs {', '.join(e['name'] + ' ' + str(e['shape']) for e in manifest['inputs'])}; "
          f"outputs {shapes}; {len(manifest['nodes'])} node tensors -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

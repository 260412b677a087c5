#!/usr/bin/env python3
"""Times ONNX Runtime on the ActionCLIP graphs, for `action-clip bench --compare-ort`.

usage: bench_ort.py --inputs DIR [--image M.onnx] [--text M.onnx] [--fusion M.onnx]
                    [--runs N] [--warmup N] [--threads T] [--serve]

DIR holds one .npy per graph, named after it (image.npy, text.npy, fusion.npy); a graph runs only
when both its model and its input are given. Each model's first input/output dimension is made
symbolic first (as dump_reference.py does), so a file declared [1,77] runs at [160,77]. The
session is ONNX Runtime's CPU provider with its default graph optimizations (ORT_ENABLE_ALL),
`intra_op_num_threads=T`, one inter-op thread, sequential execution: what a user of ORT gets.

Prints one JSON object on stdout:
{"onnxruntime": "1.32.0", "threads": 2, "runs": 5, "warmup": 1,
 "graphs": {"text": {"median_ms": ..., "min_ms": ..., "times_ms": [...], "input_shape": [160, 77],
                     "output_shape": [160, 512]}, ...}}

With --serve, the sessions are created first and one line is printed,
{"onnxruntime": "1.32.0", "graphs": ["image", ...]}; then each line read from stdin names a graph
and optionally a repeat count ("fusion 10"); the graph is run that many times back to back and
answered with one line {"graph": "fusion", "ms": 5.4}, the mean time per run ("quit" or end of
input stops). `action-clip bench --compare-ort` uses this to alternate its runs with ONNX
Runtime's, so that both see the same machine: on a shared VM the speed of the second core drifts
by 10-20 % over minutes, which separate back-to-back blocks of runs turned into ratio noise.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def relax_batch(model) -> None:
    """Make the first dim of every graph input and output symbolic (in place)."""
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) > 0:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", required=True, help="directory with image.npy, text.npy, fusion.npy")
    for graph in ("image", "text", "fusion"):
        parser.add_argument(f"--{graph}", help=f"{graph} model file")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--serve", action="store_true", help="run graphs on request from stdin (see above)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--runs and --threads must be at least 1, --warmup at least 0")

    import numpy as np
    import onnx
    import onnxruntime as ort

    results = {}
    sessions = {}
    for graph in ("image", "text", "fusion"):
        model_path = getattr(args, graph)
        input_path = os.path.join(args.inputs, f"{graph}.npy")
        if not model_path or not os.path.exists(input_path):
            continue
        if not os.path.exists(model_path):
            print(f"bench_ort.py: error: {graph} model {model_path} does not exist", file=sys.stderr)
            return 1
        model = onnx.load(model_path)
        relax_batch(model)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        del model
        feed = {session.get_inputs()[0].name: np.load(input_path)}
        if args.serve:
            sessions[graph] = (session, feed)
            continue
        output = None
        for _ in range(args.warmup):
            output = session.run(None, feed)
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            output = session.run(None, feed)
            times.append((time.perf_counter() - start) * 1000)
        results[graph] = {
            "median_ms": statistics.median(times),
            "min_ms": min(times),
            "times_ms": times,
            "input_shape": list(next(iter(feed.values())).shape),
            "output_shape": list(output[0].shape) if output else None,
        }
        del session
    if args.serve:
        return serve(sessions, ort.__version__)
    print(json.dumps({"onnxruntime": ort.__version__, "threads": args.threads, "runs": args.runs,
                      "warmup": args.warmup, "graphs": results}))
    return 0


def serve(sessions, version: str) -> int:
    """Answer run requests from stdin, one graph run per line (see the module docstring)."""
    print(json.dumps({"onnxruntime": version, "graphs": sorted(sessions)}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        graph = words[0]
        repeats = int(words[1]) if len(words) > 1 and words[1].isdigit() and int(words[1]) > 0 else 1
        if graph not in sessions:
            print(json.dumps({"error": f"no session for graph {graph!r}"}), flush=True)
            continue
        session, feed = sessions[graph]
        start = time.perf_counter()
        for _ in range(repeats):
            session.run(None, feed)
        milliseconds = (time.perf_counter() - start) * 1000 / repeats
        # ORT's pool threads keep spinning after a run (measured here: about 60 ms of CPU time,
        # over 40-60 ms); let them go to sleep before the caller's own run starts, so that run
        # does not share the cores with them.
        time.sleep(0.15)
        print(json.dumps({"graph": graph, "ms": milliseconds}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

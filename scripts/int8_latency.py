#!/usr/bin/env python3
"""ONNX Runtime CPU latency, FP32 against INT8 variants, in one run (interleaved, medians).

    python scripts/int8_latency.py --model resnet18 --calib-coco ../shared/data/coco_train/person_keypoints.json

Without --int8 files, it makes the variants itself (minmax calibration on --crops crops; the method does not
change the speed): "tensorrt" (symmetric int8 activations), "cpu" (uint8 activations, the default CPU
exclusions), "cpu-xdw" (also the depthwise convolutions in float) and "cpu-xdw-resize" (and Resize), so the
table shows what each exclusion buys.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def session(path, threads):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def measure(models, inputs, threads_list, batches, repeats):
    """{(name, threads, batch): median ms}, the models interleaved within each repeat."""
    rows = {}
    for threads in threads_list:
        sessions = {name: session(path, threads) for name, path in models.items()}
        for batch in batches:
            x = inputs[:batch]
            feeds = {name: {s.get_inputs()[0].name: x} for name, s in sessions.items()}
            for name, s in sessions.items():  # warm up
                s.run(None, feeds[name])
            times = {name: [] for name in sessions}
            for _ in range(repeats):
                for name, s in sessions.items():
                    t0 = time.perf_counter()
                    s.run(None, feeds[name])
                    times[name].append(1000.0 * (time.perf_counter() - t0))
            for name in sessions:
                rows[(name, threads, batch)] = statistics.median(times[name])
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="FP32 ONNX: shipped name or path")
    p.add_argument("--int8", action="append", default=[], metavar="NAME=PATH", help="INT8 ONNX to compare")
    p.add_argument("--calib-coco", default=None, help="COCO json for the crops (calibration and timing input)")
    p.add_argument("--crops", type=int, default=64)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--batches", default="1,8")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--json-out", default=None)
    args = p.parse_args(argv)

    from edge_pose import runtime
    from edge_pose.quant import calibset, qdq

    src = runtime.resolve(args.model)
    if not args.calib_coco:
        raise SystemExit("--calib-coco is needed for real crops")
    crops = calibset.select(calibset.collect_candidates(coco=[args.calib_coco]), max(args.crops, 8), seed=0)
    inputs = calibset.make_crops(crops)
    models = {"fp32": src}
    with tempfile.TemporaryDirectory(prefix="edge_pose_lat_") as tmp:
        if args.int8:
            for item in args.int8:
                name, _, path = item.partition("=")
                models[name] = Path(path)
        else:
            for name, target, exclude in (("tensorrt", "tensorrt", None), ("cpu", "cpu", None),
                                          ("cpu-xdw", "cpu", ["ConvTranspose", "DepthwiseConv"]),
                                          ("cpu-xdw-resize", "cpu", ["ConvTranspose", "DepthwiseConv", "Resize"])):
                out = Path(tmp) / ("%s.onnx" % name)
                qdq.quantize(src, out, inputs, method="minmax", target=target, exclude_op_types=exclude, threads=1)
                models[name] = out
        threads = [int(t) for t in args.threads.split(",")]
        batches = [int(b) for b in args.batches.split(",")]
        rows = measure(models, inputs, threads, batches, args.repeats)
    print("model %s, ONNX Runtime CPU, median of %d (ms); ratio = INT8 / FP32" % (src, args.repeats))
    print("| variant | threads | batch 1 | ratio | batch 8 | ratio |" if batches == [1, 8] else "")
    out = []
    for name in models:
        for t in threads:
            cells = []
            for b in batches:
                ms = rows[(name, t, b)]
                ratio = ms / rows[("fp32", t, b)]
                cells.append("%.1f | %.2f" % (ms, ratio))
                out.append({"variant": name, "threads": t, "batch": b, "median_ms": round(ms, 2),
                            "ratio": round(ratio, 3)})
            print("| %s | %d | %s |" % (name, t, " | ".join(cells)))
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump({"model": str(src), "repeats": args.repeats, "rows": out}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

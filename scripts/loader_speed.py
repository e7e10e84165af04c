#!/usr/bin/env python3
"""Batch-building throughput (samples/s of crops, augmentation and heatmap targets, no model) of a training
config, with the images in memory or read from disk and with 0 / 1 / N workers, side by side in one run: what
`train.workers` and `train.image_cache_gb` cost or buy on this machine. A GPU trains faster than one core
builds batches; this says how many cores it takes to keep up.

    python scripts/loader_speed.py --config configs/resnet18_paste.yaml --workers 0 1 2
"""
import argparse
import json
import time

import numpy as np

from edge_pose.config import load_config
from edge_pose.train.loop import training_data


def samples_per_second(data, n, batch, workers):
    """One epoch of n samples through data.batches; workers 0 = no prefetch thread, 1 = the thread."""
    data.rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    count = sum(len(x) for x, _, _ in data.batches(n, batch, prefetch=workers == 1, workers=workers))
    return count / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--samples", type=int, default=640)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2, help="the modes alternate this many times (noisy machines)")
    ap.add_argument("--disk", action="store_true", help="also with every set read from disk (image_cache_gb 0)")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    sources = {"memory": training_data(cfg, progress=False)}
    if args.disk:
        cfg.train.image_cache_gb = 0.0
        sources["disk"] = training_data(cfg, progress=False)
    rates = {}
    for _ in range(args.rounds):
        for source, data in sources.items():
            for w in args.workers:
                rates.setdefault((source, w), []).append(samples_per_second(data, args.samples, args.batch, w))
    for (source, w), r in rates.items():
        print(json.dumps({"images": source, "workers": w, "samples_per_s": [round(v, 1) for v in r],
                          "median": round(float(np.median(r)), 1)}))


if __name__ == "__main__":
    main()

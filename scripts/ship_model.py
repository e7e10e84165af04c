#!/usr/bin/env python3
"""Ship a trained checkpoint as a default model: export ONNX into engines/, score it (ONNX Runtime, GT boxes,
flip) on a COCO set, time it, and write its entry in engines/manifest.json (sha256, AP, provenance).

    python scripts/ship_model.py --checkpoint runs/resnet18/last.pt --name resnet18 \
        --coco ../shared/data/coco_val_dev/person_keypoints.json --images ../shared/data/coco_val_dev/images
"""
import argparse
import csv
import json
import os
import statistics
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from edge_pose import runtime
from edge_pose.export import export_onnx, parity, store_weights_fp16
from edge_pose.models import load_checkpoint
from edge_pose.runtime.zoo import sha256
from edge_pose.train.evaluate import evaluate

MAX_BYTES = 40 * 1000 * 1000
EVAL_PROTOCOL = ("coco_val_dev, GT boxes, flip test, DARK decoding, ONNX Runtime CPU; person score: the mean of the "
                 "17 keypoint scores (the estimator's score); coco_val_dev_confident_mean: Simple Baselines' mean of "
                 "those above 0.2, the rule of every AP recorded before 2026-12-06, learning curves included")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def latency_ms(backend, batch, repeats=30):
    x = np.random.default_rng(0).standard_normal((batch, 3, 256, 192)).astype(np.float32)
    for _ in range(3):
        backend.infer(x)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        backend.infer(x)
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 2)


def init_provenance(init, engines):
    """What a fine-tune started from: the file, its sha256 and, when it is a shipped model, that entry's epoch,
    AP, provenance and learning curve (the manifest entry of the new model replaces it)."""
    out = {"file": os.path.basename(init)}
    if not os.path.exists(init):
        return out
    out["sha256"] = sha256(init)
    manifest_path = os.path.join(engines, "manifest.json")
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            for entry in json.load(f)["models"]:
                if entry["sha256"] == out["sha256"]:
                    out.update({k: entry.get(k) for k in ("name", "coco_val_dev", "provenance", "learning_curve")})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--coco", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--engines", default=os.path.join(REPO, "engines"))
    ap.add_argument("--log", default=None, help="the run's log.csv (learning curve), default: beside the checkpoint")
    ap.add_argument("--note", default=None, help="how the model was trained, in words (sittings, resumed schedules)")
    args = ap.parse_args()

    model = load_checkpoint(args.checkpoint)
    meta = model.checkpoint_meta
    cfg = meta["config"]
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(torch.zeros(1, 3, 256, 192))
    gflops = fc.get_total_flops() / 1e9
    params = sum(p.numel() for p in model.parameters())
    provenance = {"checkpoint": os.path.basename(args.checkpoint), "epoch": meta["epoch"],
                  "train_sets": [{"name": d["name"], "ann": os.path.basename(d["ann"]), "weight": d["weight"],
                                  "joint_weights": d.get("joint_weights")} for d in cfg["train_sets"]],
                  "schedule": {k: cfg["train"][k] for k in ("epochs", "samples_per_epoch", "batch_size", "lr",
                                                            "schedule", "resolution", "loss", "ema",
                                                            "final_phase_lr")},
                  "augment": cfg.get("augment")}
    if args.note:
        provenance["note"] = args.note
    distill = cfg.get("distill") or {}
    if distill.get("teacher"):  # distilled: name the teacher (a file outside the repo) by its bytes too
        teacher = distill["teacher"]
        provenance["distill"] = {"teacher": os.path.basename(teacher), "weight": distill.get("weight"),
                                 "flip": distill.get("flip"),
                                 "teacher_sha256": sha256(teacher) if os.path.exists(teacher) else None}
    if cfg.get("soup_of"):  # scripts/average_checkpoints.py: the weights are the mean of these checkpoints
        provenance["soup_of"] = cfg["soup_of"]
        provenance["soup_batchnorm"] = cfg.get("soup_batchnorm")
    init = (cfg.get("model") or {}).get("init")
    if init:  # a fine-tune of a shipped model (model.init): say which one, and keep its learning curve
        provenance["init"] = init_provenance(init, args.engines)
    os.makedirs(args.engines, exist_ok=True)
    path = os.path.join(args.engines, args.name + ".onnx")
    export_onnx(model, path, provenance)
    if os.path.getsize(path) > MAX_BYTES:  # the repository takes no file over 40 MB
        store_weights_fp16(path)
    crops = np.random.default_rng(0).standard_normal((4, 3, 256, 192)).astype(np.float32)
    diff = parity(load_checkpoint(args.checkpoint), path, crops)

    with runtime.open(path, backend="onnxruntime") as backend:
        metrics = evaluate(backend, args.coco, args.images, flip=True, progress=True)
        simple_baselines = evaluate(backend, args.coco, args.images, flip=True, progress=False,
                                    person_score="confident-mean")
        lat = {"batch1_ms": latency_ms(backend, 1), "batch8_ms": latency_ms(backend, 8)}
    curve = []
    log = args.log or os.path.join(os.path.dirname(args.checkpoint), "log.csv")
    if os.path.exists(log):
        with open(log) as f:
            curve = [{"epoch": int(r["epoch"]), "input": [int(r["input_w"]), int(r["input_h"])],
                      "AP": float(r["AP"]), "minutes": float(r["minutes"])} for r in csv.DictReader(f) if r["AP"]]
    entry = {
        "name": args.name, "file": os.path.basename(path), "sha256": sha256(path),
        "input_size": [192, 256], "heatmap_size": [48, 64], "backbone": model.arch["backbone"],
        "head": model.arch["head"], "params_m": round(params / 1e6, 2), "gflops": round(gflops, 2),
        "coco_val_dev": {k: round(metrics[k], 4) for k in ("AP", "AP50", "AP75", "APm", "APl", "AR")},
        "eval_protocol": EVAL_PROTOCOL,
        "coco_val_dev_confident_mean": {k: round(simple_baselines[k], 4) for k in ("AP", "AP50", "AP75", "APm",
                                                                                  "APl", "AR")},
        "onnxruntime_cpu_latency": lat, "onnx_torch_max_abs_diff": diff,
        "provenance": provenance, "learning_curve": curve,
    }
    manifest_path = os.path.join(args.engines, "manifest.json")
    manifest = {"models": []}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f)
    manifest["models"] = [m for m in manifest["models"] if m["name"] != args.name] + [entry]
    manifest["models"].sort(key=lambda m: m["name"])
    with open(manifest_path + ".tmp", "w") as f:
        json.dump(manifest, f, indent=2)
    os.replace(manifest_path + ".tmp", manifest_path)
    print(json.dumps({k: entry[k] for k in ("name", "sha256", "gflops", "coco_val_dev",
                                             "onnxruntime_cpu_latency")}, indent=2))


if __name__ == "__main__":
    main()

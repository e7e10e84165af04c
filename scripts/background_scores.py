"""How strongly a model "finds" a person where there is nobody: the person scores (mean keypoint score) it
gives the windows of the person source's acquisition scan (persons.WindowScan) that cover at most 10 % of any
annotated person, on images whose annotations are complete (`images[].annotations_complete`, default true).

    python scripts/background_scores.py engines/mobilenetv3.onnx other.onnx \\
        --coco ../shared/data/coco_val_dev/person_keypoints.json --images ../shared/data/coco_val_dev/images

A new person is only accepted above the acquisition's `new_score` (0.25 by default in FromKeypoints): the
share of background windows above it is the false-alarm rate of each scan.
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from edge_pose import PoseEstimator  # noqa: E402
from edge_pose.persons import WindowScan, box_coverage  # noqa: E402


def background_windows(coco_json, max_cover=0.1):
    """[(image file name, (k, 4) background windows)] for the completely annotated images of a COCO file."""
    with open(coco_json) as f:
        data = json.load(f)
    boxes = {}
    for ann in data["annotations"]:  # every annotation counts, crowds and people without keypoints too
        boxes.setdefault(ann["image_id"], []).append(ann["bbox"])
    scan, out = WindowScan(), []
    for im in data["images"]:
        if not im.get("annotations_complete", True):
            continue
        windows = scan.propose(np.empty((im["height"], im["width"], 0), np.uint8))  # only its shape is read
        others = np.asarray(boxes.get(im["id"], []), dtype=np.float64).reshape(-1, 4)
        if len(others):
            windows = windows[box_coverage(windows, others).max(axis=1) <= max_cover]
        if len(windows):
            out.append((im["file_name"], windows))
    return out


def window_scores(model, images_dir, windows, threads=1):
    """Person scores of the model on every background window."""
    scores = []
    with PoseEstimator(model, threads=threads) as est:
        for name, boxes in tqdm(windows, desc=os.path.basename(model), unit="image"):
            image = cv2.imread(os.path.join(images_dir, name))
            if image is None:
                raise FileNotFoundError(os.path.join(images_dir, name))
            scores.extend(p["score"] for p in est(image, boxes))
    return np.asarray(scores)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="model names or .onnx files")
    ap.add_argument("--coco", required=True, help="COCO keypoints json (complete images are used)")
    ap.add_argument("--images", required=True)
    ap.add_argument("--threshold", type=float, default=0.25, help="report the share of windows above this")
    ap.add_argument("--json-out")
    args = ap.parse_args(argv)
    windows = background_windows(args.coco)
    if not windows:
        sys.exit("no completely annotated image with room for a background window in %s" % args.coco)
    report = {}
    for model in args.models:
        s = window_scores(model, args.images, windows)
        p50, p90, p99 = np.percentile(s, [50, 90, 99])
        report[model] = {"windows": int(len(s)), "median": p50, "p90": p90, "p99": p99, "max": float(s.max()),
                         "above_threshold": float((s > args.threshold).mean())}
    print("%-40s %8s %7s %6s %6s %6s %9s" % ("model", "windows", "median", "p90", "p99", "max",
                                             "> %.2f" % args.threshold))
    for model, r in report.items():
        print("%-40s %8d %7.3f %6.3f %6.3f %6.3f %8.1f%%" % (os.path.basename(model)[:40], r["windows"], r["median"],
                                                            r["p90"], r["p99"], r["max"], 100 * r["above_threshold"]))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()

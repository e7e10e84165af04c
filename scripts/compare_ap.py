#!/usr/bin/env python3
"""Is model B really better than model A? Paired bootstrap over images of the COCO keypoint AP difference.

Both models are scored once (GT boxes, flip, ONNX Runtime; pycocotools), then the images are resampled with
replacement and both result sets are re-scored on each resample with pycocotools: the spread of AP(B) - AP(A)
says whether a difference on a set as small as coco_val_dev (50 images) is more than noise. `--boxes B` (a
person source of `edge-pose eval --boxes`: keypoints, windows, hog...) compares the full pipeline instead, as
`edge-pose eval --boxes B` scores it: no flip, the complete images only (26 of coco_val_dev), those resampled.

    python scripts/compare_ap.py engines/resnet18.onnx runs/resnet18.onnx \
        --coco ../shared/data/coco_val_dev/person_keypoints.json --images ../shared/data/coco_val_dev/images
    python scripts/compare_ap.py old.onnx mobilenetv3 --boxes keypoints --coco ... --images ...
"""
import argparse
import json
import os
import tempfile

import numpy as np
from tqdm import tqdm

from edge_pose import runtime
from edge_pose.train.evaluate import (
    check_boxes,
    complete_groups,
    evaluate_person_source,
    evaluate_predict_fn,
    load_coco,
    person_groups,
    score_results,
)


def model_results(path, coco, images, flip=True, boxes="gt", threads=None):
    """COCO keypoint results of a model (.onnx or shipped name) and its metrics: on the set's GT boxes, or with
    `boxes` a person source, the full pipeline on its complete images (no flip)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "results.json")
        if boxes == "gt":
            with runtime.open(path, backend="onnxruntime", threads=threads) as backend:
                metrics = evaluate_predict_fn(backend.infer, coco, images, flip=flip, progress=False,
                                              results_out=out)
        else:
            from edge_pose.estimator import PoseEstimator

            with PoseEstimator(path, backend="onnxruntime", threads=threads) as estimator:
                metrics = evaluate_person_source(estimator, coco, images, boxes=boxes, progress=False,
                                                 results_out=out)
        with open(out) as f:
            return json.load(f), metrics


def by_image(dataset, groups, results_list):
    """Annotations, groups and each result set keyed by image id: built once, used by every resample."""
    anns_of, res_of = {}, [{} for _ in results_list]
    for a in dataset["annotations"]:
        anns_of.setdefault(a["image_id"], []).append(a)
    for per, results in zip(res_of, results_list):
        for r in results:
            per.setdefault(r["image_id"], []).append(r)
    return anns_of, {im["id"]: (im, anns) for im, anns in groups}, res_of


def resample(dataset, groups, results_list, image_ids, index=None):
    """A dataset, groups and result sets in which image k of the resample is `image_ids[k]` renumbered k + 1
    (an image drawn twice appears twice, with its annotations and results copied). index: by_image(...)."""
    anns_of, group_of, res_of = index or by_image(dataset, groups, results_list)
    images, annotations, new_groups, new_results = [], [], [], [[] for _ in results_list]
    for k, old in enumerate(image_ids):
        new_id = k + 1
        im, predicted = group_of[old]
        image = dict(im, id=new_id)
        images.append(image)
        renamed = {}
        for a in anns_of.get(old, []):
            copy = dict(a, id=len(annotations) + 1, image_id=new_id)
            renamed[a["id"]] = copy
            annotations.append(copy)
        new_groups.append((image, [renamed[a["id"]] for a in predicted]))
        for out, per in zip(new_results, res_of):
            out.extend(dict(r, image_id=new_id) for r in per.get(old, []))
    return dict(dataset, images=images, annotations=annotations), new_groups, new_results


def bootstrap(dataset, results_a, results_b, n=200, seed=0, progress=True, groups=None):
    """AP(B) - AP(A) on `n` image resamples (paired: the same images for both). groups: the images scored and
    their annotations (default `person_groups`, as with GT boxes; `complete_groups` for the full pipeline)."""
    groups = person_groups(dataset) if groups is None else groups
    ids = [im["id"] for im, _ in groups]
    index = by_image(dataset, groups, [results_a, results_b])
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in tqdm(range(n), desc="bootstrap", disable=not progress, leave=False):
        d, g, (ra, rb) = resample(dataset, groups, [results_a, results_b], rng.choice(ids, len(ids)), index)
        diffs.append(score_results(d, rb, g)["AP"] - score_results(d, ra, g)["AP"])
    return np.asarray(diffs)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_a", help="baseline: .onnx or a shipped model name")
    ap.add_argument("model_b", help="candidate")
    ap.add_argument("--coco", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--resamples", type=int, default=200)
    ap.add_argument("--no-flip", action="store_true", help="GT boxes without the flip test")
    ap.add_argument("--boxes", default="gt", type=check_boxes, metavar="B",
                    help="gt (default), or a person source of `edge-pose eval --boxes`: the full pipeline")
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime CPU threads (default: all cores)")
    args = ap.parse_args(argv)
    dataset = load_coco(args.coco)
    (ra, ma), (rb, mb) = [model_results(m, dataset, args.images, not args.no_flip, args.boxes, args.threads)
                          for m in (args.model_a, args.model_b)]
    groups = person_groups(dataset) if args.boxes == "gt" else complete_groups(dataset)
    diffs = bootstrap(dataset, ra, rb, args.resamples, groups=groups)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    summary = {"AP_a": round(ma["AP"], 4), "AP_b": round(mb["AP"], 4), "diff": round(mb["AP"] - ma["AP"], 4),
               "ci95": [round(float(lo), 4), round(float(hi), 4)],
               "p_b_not_better": round(float(np.mean(diffs <= 0)), 3), "resamples": args.resamples,
               "images": len(groups), "boxes": args.boxes}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()

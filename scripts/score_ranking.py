#!/usr/bin/env python3
"""How much of a model's keypoint AP is its person score's ranking? The same results re-scored three ways.

COCOeval sorts every detection of the split by its score before it accumulates precision and recall, so the
score ranks people across images and matters for AP even with ground-truth boxes. The results of one model
(GT boxes, flip, ONNX Runtime) are scored with pycocotools as they are (the model's own score), with one
constant score (no ranking: what a useless score gives), and with each person's true OKS as its score (the
best ranking any score could give these keypoints: the ceiling of a better score; the keypoints themselves
have to improve to go past it).

    python scripts/score_ranking.py resnet18 \
        --coco ../shared/data/coco_val_dev/person_keypoints.json --images ../shared/data/coco_val_dev/images
"""
import argparse
import importlib.util
import json
import os

import numpy as np

from edge_pose.train.evaluate import PERSON_SCORES, coco_eval, load_coco, person_groups, person_scores, score_results

_spec = importlib.util.spec_from_file_location("compare_ap", os.path.join(os.path.dirname(__file__),
                                                                          "compare_ap.py"))
compare_ap = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare_ap)


def true_oks(dataset, results, groups):
    """Each result's OKS with the best-matching ground-truth person of its image (pycocotools' computeOks)."""
    tagged = [dict(r, _index=k) for k, r in enumerate(results)]
    ev = coco_eval(dataset, [im for im, _ in groups], [a for _, anns in groups for a in anns], tagged)
    oks = np.zeros(len(results))
    for (img, cat), ious in ev.ious.items():
        if len(ious) == 0:
            continue
        dts = ev._dts[img, cat]
        order = np.argsort([-d["score"] for d in dts], kind="mergesort")  # computeOks' row order
        for row, j in enumerate(order):
            oks[dts[j]["_index"]] = float(np.max(ious[row]))
    return oks


def rescored(results, scores):
    return [dict(r, score=float(s)) for r, s in zip(results, scores)]


def ranking_report(dataset, results):
    """AP of the results as scored, with one constant score, and scored by their true OKS."""
    groups = person_groups(dataset)
    oks = true_oks(dataset, results, groups)
    own = np.asarray([r["score"] for r in results])
    return {"AP": score_results(dataset, results, groups)["AP"],
            "AP_constant_score": score_results(dataset, rescored(results, np.ones(len(results))), groups)["AP"],
            "AP_oks_score": score_results(dataset, rescored(results, oks), groups)["AP"],
            "mean_oks": float(oks.mean()) if len(oks) else 0.0,
            "score_oks_spearman": spearman(own, oks), "persons": len(results)}


def spearman(a, b):
    """SciPy's rank correlation; 0 when either side is constant (where it is undefined)."""
    from scipy.stats import spearmanr

    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b)[0])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help=".onnx or a shipped model name")
    ap.add_argument("--coco", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--no-flip", action="store_true")
    ap.add_argument("--person-score", default="mean", choices=PERSON_SCORES, help="the model's own score rule")
    args = ap.parse_args(argv)
    dataset = load_coco(args.coco)
    results, _ = compare_ap.model_results(args.model, dataset, args.images, not args.no_flip)
    keypoint_scores = np.asarray([r["keypoints"][2::3] for r in results]).reshape(len(results), -1)
    results = rescored(results, person_scores(keypoint_scores, args.person_score))
    report = dict((k, round(v, 4) if isinstance(v, float) else v) for k, v in ranking_report(dataset, results).items())
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()

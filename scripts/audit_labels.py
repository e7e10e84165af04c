#!/usr/bin/env python3
"""Check a training set's keypoint labels against a reference model; write a copy without the swapped persons.

The reference runs on each labelled person's GT-box crop (as `edge-pose eval` does). The script prints, per set,
how many persons have left/right-swapped labels (whole body, arms or legs: the mirrored labels fit the reference
by a wide margin) and the median offset of the reference from the labels per joint in units of the person's
scale (a set's own convention for a joint shows as a large one). Give a set whose labels are known good (COCO)
with --baseline to see how often the reference alone is the one that is wrong.

    python scripts/audit_labels.py ../shared/data/lspet/person_keypoints.json --images ../shared/data/lspet/images \
        --reference teachers/movenet_thunder.onnx --out data/lspet_unswapped.json \
        --baseline ../shared/data/coco_train/person_keypoints.json ../shared/data/coco_train/images
"""
import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_pose.runtime.zoo import sha256  # noqa: E402
from edge_pose.train.evaluate import load_coco  # noqa: E402
from edge_pose.train.keypoint_teacher import open_predictor  # noqa: E402
from edge_pose.train.label_audit import (  # noqa: E402
    PART_MARGIN,
    WHOLE_MARGIN,
    joint_offsets,
    predict_persons,
    swap_flags,
    without_persons,
)


def audit(predict_fn, ann_path, images, limit=None):
    """(dataset, annotations, predictions, flags) of one set; `limit`: its first N images by id."""
    dataset = load_coco(ann_path)
    ids = sorted(im["id"] for im in dataset["images"])[:limit] if limit else None
    anns, preds = predict_persons(predict_fn, dataset, images, img_ids=ids)
    return dataset, anns, preds, swap_flags(anns, preds)


def report(name, anns, preds, flags):
    n = max(len(anns), 1)
    print("%s: %d persons; mirrored labels fit the reference better: whole body %.1f %%, arms %.1f %%, legs %.1f %%,"
          " any %.1f %%" % ((name, len(anns)) + tuple(100.0 * flags[:, j].sum() / n for j in range(3))
                            + (100.0 * flags.any(axis=1).sum() / n,)))
    print("  reference minus label, median, in units of the person's scale (joints scored >= 0.3):")
    for joint, (dx, dy, count) in joint_offsets(anns, preds).items():
        if count:
            mark = "  <-" if max(abs(dx), abs(dy)) >= 0.05 else ""
            print("  %-15s dx %+6.3f  dy %+6.3f  (%d)%s" % (joint, dx, dy, count, mark))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ann", help="COCO person_keypoints.json of the set to audit")
    ap.add_argument("--images", required=True, help="its image folder")
    ap.add_argument("--reference", required=True, help="MoveNet (teachers/movenet_thunder.onnx) or an edge-pose .onnx")
    ap.add_argument("--out", help="write the annotations without the persons flagged as swapped here")
    ap.add_argument("--baseline", nargs=2, metavar=("ANN", "IMAGES"), help="a set with trusted labels, for the "
                    "reference's own error rate")
    ap.add_argument("--limit", type=int, help="only the first N images (by id)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if not os.path.exists(args.reference):
        sys.exit("no reference model at %s (MoveNet: python scripts/movenet_onnx.py)" % args.reference)
    if args.out:  # fail now, not after minutes of inference
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    predict_fn, close = open_predictor(args.reference, args.threads)
    try:
        if args.baseline:
            report(args.baseline[0] + " (baseline)", *audit(predict_fn, args.baseline[0], args.baseline[1])[1:])
        dataset, anns, preds, flags = audit(predict_fn, args.ann, args.images, args.limit)
        report(args.ann, anns, preds, flags)
    finally:
        close()
    if args.out:
        flagged = [a["id"] for a, f in zip(anns, flags) if f.any()]
        rule = ("left/right-mirrored labels fit the reference by more than %.2f OKS (whole body) or %.2f (arms or "
                "legs alone)" % (WHOLE_MARGIN, PART_MARGIN))
        note = {"reference": str(args.reference), "reference_sha256": sha256(args.reference), "source": str(args.ann),
                "rule": rule, "persons_audited": len(anns)}
        if args.limit:
            note["limit_images"] = args.limit
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(without_persons(dataset, flagged, note), f)
        print("wrote %s: %d of %d persons removed" % (args.out, len(flagged), len(anns)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

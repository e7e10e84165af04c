#!/usr/bin/env python3
"""Label a training set's persons with a teacher once, for distillation without the teacher in the training loop.

The teacher (MoveNet Thunder from `scripts/movenet_onnx.py`, or any edge-pose .onnx) runs on each labelled person's
ground-truth box crop (--head-top: widened to LSPET's head top, as training crops it); the file it writes goes in
the train set's `teacher_labels:` (configs/resnet18_movenet_cached.yaml). Training then reads the keypoints instead
of running the teacher on every crop (about 0.8 s of each 32-crop step here with MoveNet).

    python scripts/teacher_labels.py ../shared/data/lspet/person_keypoints.json --images ../shared/data/lspet/images \
        --head-top --teacher teachers/movenet_thunder.onnx --out data/teacher/lspet_movenet.json

It then prints how far the teacher agrees with the set's own labels (pycocotools keypoint AP of the teacher's
keypoints against them); `--score-only` prints that for an existing --out file without running the teacher.
"""
import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_pose.runtime.zoo import sha256  # noqa: E402
from edge_pose.train import teacher_labels  # noqa: E402
from edge_pose.train.evaluate import load_coco  # noqa: E402
from edge_pose.train.keypoint_teacher import open_predictor  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ann", help="COCO person_keypoints.json of the train set")
    ap.add_argument("--images", required=True, help="its image folder")
    ap.add_argument("--teacher", help="MoveNet (teachers/movenet_thunder.onnx) or an edge-pose .onnx")
    ap.add_argument("--out", required=True, help="the labels file to write (JSON)")
    ap.add_argument("--head-top", action="store_true", help="widen boxes to lsp_extra_keypoints' head top (LSPET; "
                    "the set's `head_top: true` in a config)")
    ap.add_argument("--flip", action="store_true", help="the teacher's flip test (twice the time)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--score-only", action="store_true", help="score the existing --out file against the set's "
                    "labels instead of making it (--teacher not needed)")
    args = ap.parse_args(argv)
    if not args.score_only and not args.teacher:
        ap.error("--teacher is required unless --score-only")
    needed = [(args.ann, "annotations")]
    needed += [(args.out, "labels file")] if args.score_only else [
        (args.teacher, "teacher (MoveNet: python scripts/movenet_onnx.py)"), (args.images, "image folder")]
    for path, what in needed:
        if not os.path.exists(path):
            sys.exit("no %s at %s" % (what, path))
    coco = load_coco(args.ann)
    if args.score_only:
        try:
            labels, _ = teacher_labels.load(args.out)
        except ValueError as e:
            sys.exit(str(e))
        return report(coco, labels)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)  # fail now, not after minutes of inference
    predict_fn, close = open_predictor(args.teacher, args.threads)
    try:
        labels = teacher_labels.predict_labels(predict_fn, coco, args.images, args.head_top, args.flip)
    finally:
        close()
    info = {"teacher": str(args.teacher), "teacher_sha256": sha256(args.teacher), "annotations": str(args.ann),
            "annotations_sha256": sha256(args.ann), "crop": "ground-truth box" + (" widened to the head top"
                                                                                  if args.head_top else ""),
            "flip_test": bool(args.flip), "persons": len(labels)}
    teacher_labels.save(args.out, labels, info)
    print("wrote %s: %d persons" % (args.out, len(labels)))
    return report(coco, labels)


def report(coco, labels):
    try:
        m = teacher_labels.score(coco, labels)
    except ValueError as e:
        sys.exit(str(e))
    print("agreement with the set's labels (pycocotools, %d persons on %d images): AP %.3f  AP50 %.3f  AP75 %.3f  "
          "AR %.3f" % (m["n_persons"], m["n_images"], m["AP"], m["AP50"], m["AP75"], m["AR"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Make a training set of teacher-labelled people from unlabelled videos and photos (edge_pose.train.pseudo_set).

    python scripts/pseudo_set.py ../shared/data/videos/opencv_vtest_pedestrians.avi ../shared/data/images \
        --teacher teachers/movenet_thunder.onnx --every 5 --out data/pseudo

writes data/pseudo/images/*.jpg, data/pseudo/person_keypoints.json (COCO format: the teacher's keypoints as
labels) and data/pseudo/teacher_labels.json (the same keypoints with their scores, for a config's
`teacher_labels:`); configs/resnet18_pseudo.yaml trains on it. Keep the clips the product is checked on
(samples/two_people.mp4 = sports2d_two_people.mp4, the smoothing report's) out of it.
"""
import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_pose.runtime.zoo import sha256  # noqa: E402
from edge_pose.train import pseudo_set, teacher_labels  # noqa: E402
from edge_pose.train.keypoint_teacher import open_predictor  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+", help="video files, photo folders or photos")
    ap.add_argument("--teacher", required=True, help="MoveNet (teachers/movenet_thunder.onnx: python "
                    "scripts/movenet_onnx.py) or an edge-pose .onnx")
    ap.add_argument("--out", required=True, help="the set's folder (images/, person_keypoints.json, "
                    "teacher_labels.json)")
    ap.add_argument("--every", type=int, default=5, help="one video frame in N (default 5; photos: all)")
    ap.add_argument("--max-frames", type=int, default=None, help="at most N frames of each input")
    ap.add_argument("--detector", default="hog", help="person proposals besides the window scan: hog, a "
                    "YOLO-layout .onnx, or none (default hog)")
    ap.add_argument("--min-person", type=float, default=0.4, help="least mean keypoint score of a kept person "
                    "(default 0.4)")
    ap.add_argument("--min-joints", type=int, default=8, help="least count of joints scored >= --min-keypoint "
                    "(default 8)")
    ap.add_argument("--min-keypoint", type=float, default=0.3, help="joints under this score are not labelled "
                    "(default 0.3)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--overwrite", action="store_true", help="replace an existing set in --out")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    for path in [args.teacher] + args.inputs:
        if not os.path.exists(path):
            sys.exit("no such file or folder: %s" % path)
    if args.every < 1:
        sys.exit("--every must be >= 1")
    out = Path(args.out)
    ann_path, labels_path = out / "person_keypoints.json", out / "teacher_labels.json"
    if ann_path.exists() and not args.overwrite:
        sys.exit("%s exists: pass --overwrite to make it again" % ann_path)
    detector = None
    if args.detector != "none":
        from edge_pose.detectors import make_detector

        try:
            detector = make_detector(args.detector, **({"threads": args.threads}
                                                       if args.detector.endswith(".onnx") else {}))
        except (RuntimeError, ValueError, OSError) as e:
            sys.exit("detector %s: %s" % (args.detector, e))
    predict_fn, close = open_predictor(args.teacher, args.threads)
    try:
        coco, labels = pseudo_set.build(args.inputs, predict_fn, out, every=args.every, detector=detector,
                                        min_person=args.min_person, min_joints=args.min_joints,
                                        min_keypoint=args.min_keypoint, max_frames=args.max_frames,
                                        progress=not args.quiet)
    finally:
        close()
    coco["info"].update(teacher=str(args.teacher), teacher_sha256=sha256(args.teacher), detector=args.detector)
    tmp = str(ann_path) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(coco, f)
    os.replace(tmp, ann_path)
    teacher_labels.save(str(labels_path), labels, {
        "teacher": str(args.teacher), "teacher_sha256": sha256(args.teacher), "annotations": str(ann_path),
        "annotations_sha256": sha256(ann_path), "crop": "the box of the teacher's own keypoints", "flip_test": False,
        "persons": len(labels)})
    by_source = {}
    for im in coco["images"]:
        by_source.setdefault(im["source"], [0, 0])[0] += 1
    for a in coco["annotations"]:
        by_source[coco["images"][a["image_id"] - 1]["source"]][1] += 1
    for name, (n_img, n_ann) in sorted(by_source.items()):
        print("%-32s %5d frames %6d persons" % (name, n_img, n_ann))
    print("wrote %s (%d images, %d persons) and %s" % (ann_path, len(coco["images"]), len(coco["annotations"]),
                                                        labels_path))
    return 0 if coco["annotations"] else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Fill in missing face keypoints (nose, eyes, ears) of a COCO-format set with MediaPipe BlazePose as the teacher.

LSPET labels 12 body joints and no face: a model trained on it learns the face from the ~340 COCO/pfg people
only. This runs BlazePose (`pip install mediapipe==0.10.21`, CPU, Apache-2.0; a separate venv is fine: the
script needs only mediapipe, OpenCV and numpy) on a crop around each person and writes a copy of the
annotation file where the face keypoints the person lacks are set from BlazePose's landmarks, kept only when

- BlazePose found this person: its 12 body landmarks agree with the labelled ones (OKS >= --min-oks with the
  person's box area as scale), and
- the landmark's own visibility is >= --min-visibility.

Filled keypoints get v=2 and are listed per annotation in `teacher_keypoints` (names); everything else is
unchanged, so the file loads wherever the original did. With --report on a set that already has face labels
(coco_train), it instead measures the teacher against them (no file written).

    python scripts/teacher_face.py ../shared/data/lspet/person_keypoints.json \
        --images ../shared/data/lspet/images --out /work/data/lspet_face.json
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from edge_pose.skeleton import OKS_SIGMAS  # noqa: E402  (numpy only: runs in a MediaPipe-only venv)

FACE = ["nose", "left_eye", "right_eye", "left_ear", "right_ear"]
# COCO-17 index -> BlazePose-33 landmark index (same person-centric left/right)
COCO_FROM_BLAZE = {0: 0, 1: 2, 2: 5, 3: 7, 4: 8, 5: 11, 6: 12, 7: 13, 8: 14, 9: 15, 10: 16,
                   11: 23, 12: 24, 13: 25, 14: 26, 15: 27, 16: 28}
MIN_SIDE = 256  # LSPET images are small (median 252x238): upscale crops so BlazePose sees enough pixels


def crop_box(ann, width, height, enlarge=1.5):
    """The person's box (widened to its head-top point where there is one) enlarged, square, in the image."""
    x, y, w, h = ann["bbox"]
    x0, y0, x1, y1 = x, y, x + w, y + h
    extra = ann.get("lsp_extra_keypoints")
    if extra:
        for px, py, v in np.asarray(extra, np.float64).reshape(-1, 3):
            if v > 0:
                x0, y0, x1, y1 = min(x0, px), min(y0, py), max(x1, px), max(y1, py)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = max(x1 - x0, y1 - y0) * enlarge
    bx0, by0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    bx1, by1 = int(min(width, cx + side / 2)), int(min(height, cy + side / 2))
    return bx0, by0, bx1, by1


def teacher_keypoints(pose, image, box):
    """BlazePose on the crop -> (17, 3) COCO keypoints x, y, visibility in image pixels, or None."""
    bx0, by0, bx1, by1 = box
    crop = image[by0:by1, bx0:bx1]
    if crop.size == 0:
        return None
    scale = max(1.0, MIN_SIDE / min(crop.shape[:2]))
    if scale > 1.0:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    result = pose.process(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
    if result.pose_landmarks is None:
        return None
    lm = result.pose_landmarks.landmark
    ch, cw = crop.shape[:2]
    out = np.zeros((17, 3))
    for c, b in COCO_FROM_BLAZE.items():
        out[c] = (bx0 + lm[b].x * cw / scale, by0 + lm[b].y * ch / scale, lm[b].visibility)
    return out


def oks(pred, gt, area, joints):
    """COCO OKS of pred against the labelled gt joints in `joints` (v > 0)."""
    gt = np.asarray(gt, np.float64).reshape(17, 3)
    use = [j for j in joints if gt[j, 2] > 0]
    if not use:
        return 0.0
    d2 = ((pred[use, :2] - gt[use, :2]) ** 2).sum(axis=1)
    var = (2 * OKS_SIGMAS[use]) ** 2
    return float(np.mean(np.exp(-d2 / (2 * max(area, 1.0) * var))))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ann", help="COCO person_keypoints.json")
    ap.add_argument("--images", required=True, help="its image folder")
    ap.add_argument("--out", help="annotation file to write (required unless --report)")
    ap.add_argument("--min-oks", type=float, default=0.5, help="body agreement needed to trust the face")
    ap.add_argument("--min-visibility", type=float, default=0.5)
    ap.add_argument("--complexity", type=int, default=1, choices=(0, 1, 2), help="BlazePose lite/full/heavy")
    ap.add_argument("--report", action="store_true", help="score the teacher's face points against the labels")
    ap.add_argument("--limit", type=int, help="only the first N annotations")
    args = ap.parse_args(argv)
    if args.out:  # fail now, not after minutes of teacher runs
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if not args.report and not args.out:
        ap.error("--out is required unless --report")
    try:
        import mediapipe as mp
    except ImportError:
        sys.exit("needs MediaPipe: pip install mediapipe==0.10.21 (a separate venv is fine)")

    data = json.load(open(args.ann))
    images = {im["id"]: im for im in data["images"]}
    anns = data["annotations"][: args.limit] if args.limit else data["annotations"]
    body = list(range(5, 17))
    counts = {"people": 0, "found": 0, "agree": 0, "filled_people": 0, "filled_points": 0}
    face_oks, body_oks = [], []
    cache = {}
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=args.complexity) as pose:
        for ann in tqdm(anns, desc="teacher", unit="person"):
            if not ann.get("num_keypoints"):
                continue
            counts["people"] += 1
            im = images[ann["image_id"]]
            if im["id"] not in cache:
                cache = {im["id"]: cv2.imread("%s/%s" % (args.images, im["file_name"]))}
            image = cache[im["id"]]
            if image is None:
                sys.exit("cannot read image %s/%s" % (args.images, im["file_name"]))
            kp = teacher_keypoints(pose, image, crop_box(ann, image.shape[1], image.shape[0]))
            if kp is None:
                continue
            counts["found"] += 1
            area = ann["bbox"][2] * ann["bbox"][3]
            agreement = oks(kp, ann["keypoints"], area, body)
            body_oks.append(agreement)
            if agreement < args.min_oks:
                continue
            counts["agree"] += 1
            gt = np.asarray(ann["keypoints"], np.float64).reshape(17, 3)
            if args.report:
                face_oks.append(oks(kp, gt, area, range(5)))
                continue
            filled = []
            for j in range(5):
                if gt[j, 2] == 0 and kp[j, 2] >= args.min_visibility:
                    gt[j] = (round(kp[j, 0], 2), round(kp[j, 1], 2), 2)
                    filled.append(FACE[j])
            if filled:
                ann["keypoints"] = [float(v) if i % 3 < 2 else int(v) for i, v in enumerate(gt.ravel())]
                ann["num_keypoints"] = int((gt[:, 2] > 0).sum())
                ann["teacher_keypoints"] = filled
                counts["filled_people"] += 1
                counts["filled_points"] += len(filled)
    summary = dict(counts, body_oks_median=round(float(np.median(body_oks)), 3) if body_oks else None)
    if args.report:
        summary["face_oks_mean"] = round(float(np.mean(face_oks)), 3) if face_oks else None
    else:
        model = "MediaPipe BlazePose %s complexity %d" % (mp.__version__, args.complexity)
        data.setdefault("info", {})["teacher"] = {"model": model, "min_oks": args.min_oks,
                                                  "min_visibility": args.min_visibility, "summary": summary}
        with open(args.out + ".tmp", "w") as f:
            json.dump(data, f)
        os.replace(args.out + ".tmp", args.out)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

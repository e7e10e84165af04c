"""A training set made from unlabelled videos and photos of people, labelled by a teacher (`scripts/pseudo_set.py`).

    frames: every `every`-th frame of each video, every photo (sources.open_source)
      -> proposals: the window scan of the product's person source (persons.WindowScan, with a smaller scale
         for far-away people) and OpenCV's HOG people detector
      -> the teacher (MoveNet Thunder, or any edge-pose .onnx) on every proposal; the product's selection keeps
         the poses it is sure of, one per person, each confirmed in the box of its own keypoints
      -> persons whose mean keypoint score is >= min_person with >= min_joints joints >= min_keypoint, labelled
         with the teacher's keypoints of that second look (joints under min_keypoint: v = 0, no supervision)
      -> a COCO-format set (frames written as JPEG) and a teacher labels file of the same keypoints with their
         scores (teacher_labels.save), for a config's `teacher_labels:`.

People the teacher was not sure of stay unlabelled in their frames, so such a set is never `complete:` (no
background crops from it).
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from edge_pose.decode import decode
from edge_pose.persons import WindowScan, keypoint_boxes
from edge_pose.preprocess import INPUT_SIZE, make_batch
from edge_pose.skeleton import KEYPOINT_NAMES, NUM_KEYPOINTS

WINDOW_SCALES = (1.0, 0.6, 0.35)  # the product scans 1.0 and 0.6; 0.35 reaches the walkers of a street scene
BOX_ENLARGE = 1.2  # a label's box: its confident keypoints' extent this much larger (persons.keypoint_boxes)


def teacher_pose_fn(predict_fn, batch=16):
    """A pose_fn (frame, boxes) -> person dicts, as PoseEstimator's, of `predict_fn` (normalised crops ->
    heatmaps; keypoint_teacher.open_predictor)."""
    def pose(frame, boxes):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        people = []
        for i in range(0, len(boxes), batch):
            x, mats = make_batch(frame, boxes[i:i + batch], INPUT_SIZE)
            coords, scores = decode(np.asarray(predict_fn(x), np.float32), mats)
            for box, c, s in zip(boxes[i:i + batch], coords, scores):
                kp = np.concatenate([c, s[:, None]], axis=1).astype(np.float32)
                people.append({"box": [float(v) for v in box], "score": float(s.mean()), "keypoints": kp})
        return people
    return pose


class Proposals(WindowScan):
    """WindowScan whose proposals also hold a person detector's boxes (detectors.make_detector; None: none)."""

    name = "proposals"

    def __init__(self, detector=None, scales=WINDOW_SCALES, **options):
        super().__init__(scales=scales, **options)
        self.detector = detector

    def propose(self, frame, previous=()):
        boxes = super().propose(frame, previous)
        if self.detector is not None:
            found, _ = self.detector(frame)
            if len(found):
                boxes = np.concatenate([boxes, np.asarray(found, np.float64).reshape(-1, 4)])
        return boxes


def sure(person, min_person=0.4, min_joints=8, min_keypoint=0.3):
    """Whether a person's pose is one to learn from: mean keypoint score and count of confident joints."""
    kp = np.asarray(person["keypoints"]).reshape(NUM_KEYPOINTS, 3)
    return kp[:, 2].mean() >= min_person and int((kp[:, 2] >= min_keypoint).sum()) >= min_joints


def label_people(frame, source, pose_fn, min_person=0.4, min_joints=8, min_keypoint=0.3):
    """The people of one frame to learn from: source's selection, each seen again by pose_fn in the box of its
    own keypoints (the label), kept when `sure`."""
    source.reset()
    people = source(frame, pose_fn)
    if not people:
        return []
    boxes, valid = keypoint_boxes(np.stack([p["keypoints"] for p in people]), min_keypoint, 4, BOX_ENLARGE)
    again = pose_fn(frame, boxes[valid]) if valid.any() else []
    return [p for p in again if sure(p, min_person, min_joints, min_keypoint)]


def annotation(ann_id, image_id, keypoints, shape, min_keypoint=0.3):
    """The COCO annotation of a teacher-labelled person: joints >= min_keypoint are v = 2, the rest 0; the box is
    their extent enlarged BOX_ENLARGE times, clipped to the image of `shape`."""
    kp = np.asarray(keypoints, np.float64).reshape(NUM_KEYPOINTS, 3)
    box, _ = keypoint_boxes(kp[None], min_keypoint, 1, BOX_ENLARGE)
    x0, y0 = np.maximum(box[0, :2], 0.0)
    x1 = min(box[0, 0] + box[0, 2], shape[1])
    y1 = min(box[0, 1] + box[0, 3], shape[0])
    conf = kp[:, 2] >= min_keypoint
    flat = np.where(conf[:, None], np.concatenate([np.round(kp[:, :2], 2), np.full((NUM_KEYPOINTS, 1), 2.0)], 1),
                    0.0)
    bbox = [round(float(x0), 2), round(float(y0), 2), round(float(x1 - x0), 2), round(float(y1 - y0), 2)]
    return {"id": int(ann_id), "image_id": int(image_id), "category_id": 1, "iscrowd": 0,
            "keypoints": [float(v) if i % 3 < 2 else int(v) for i, v in enumerate(flat.ravel())],
            "num_keypoints": int(conf.sum()), "bbox": bbox, "area": round(bbox[2] * bbox[3], 2)}


def iter_frames(inputs, every=1, max_frames=None):
    """(source name, Frame) of every `every`-th frame of each video and every image of each photo folder or file
    (at most max_frames per input)."""
    from edge_pose.sources import open_source

    for uri in inputs:
        with open_source(str(uri)) as src:
            step = max(1, int(every)) if src.kind != "images" else 1
            kept = 0
            for frame in src:
                if frame.index % step:
                    continue
                yield src.name, frame
                kept += 1
                if max_frames and kept >= max_frames:
                    break


def build(inputs, predict_fn, out_dir, every=5, detector=None, min_person=0.4, min_joints=8, min_keypoint=0.3,
          max_frames=None, quality=92, progress=True):
    """Label the people of `inputs` (videos, photo folders or files) with predict_fn and write out_dir/images/*.jpg.
    Returns (COCO dict, teacher labels {annotation id: (17, 3)}); frames without a sure person are not kept."""
    from tqdm import tqdm

    images_dir = Path(out_dir) / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    pose_fn = teacher_pose_fn(predict_fn)
    source = Proposals(detector)
    coco = {"images": [], "annotations": [], "categories": [{
        "id": 1, "name": "person", "supercategory": "person", "keypoints": list(KEYPOINT_NAMES),
        "skeleton": []}]}
    labels = {}
    bar = tqdm(iter_frames(inputs, every, max_frames), desc="label", unit="frame", disable=not progress)
    for name, frame in bar:
        people = label_people(frame.image, source, pose_fn, min_person, min_joints, min_keypoint)
        if not people:
            continue
        stem = Path(frame.name).stem if frame.name else "%s_%05d" % (name, frame.index)
        file_name = "%s.jpg" % stem
        if not cv2.imwrite(str(images_dir / file_name), frame.image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)]):
            raise OSError("cannot write %s" % (images_dir / file_name))
        image_id = len(coco["images"]) + 1
        h, w = frame.image.shape[:2]
        coco["images"].append({"id": image_id, "file_name": file_name, "width": w, "height": h,
                               "source": name, "frame": int(frame.index)})
        for p in people:
            ann = annotation(len(coco["annotations"]) + 1, image_id, p["keypoints"], (h, w), min_keypoint)
            coco["annotations"].append(ann)
            labels[ann["id"]] = np.asarray(p["keypoints"], np.float32)
        bar.set_postfix(persons=len(coco["annotations"]))
    coco["info"] = {"description": "persons labelled by a teacher (edge_pose.train.pseudo_set)",
                    "date_created": time.strftime("%Y-%m-%d"),
                    "inputs": [str(i) for i in inputs], "every": int(every),
                    "min_person": min_person, "min_joints": min_joints, "min_keypoint": min_keypoint}
    return coco, labels

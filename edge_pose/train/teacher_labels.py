"""A teacher's keypoints of a training set's persons, made once and kept in a file (`scripts/teacher_labels.py`).

Distillation (`distill.teacher`) runs the teacher on every augmented crop while training: MoveNet Thunder adds
about 0.8 s to each batch of 32 on this 2-core CPU, 40 % of a MobileNetV3 step. Made ahead instead, each person's
keypoints are predicted once on its ground-truth box crop (widened to the head top where the set says so, as
training crops it) and follow the augmentation's affine and flip as the labels do (`dataset.TopDownDataset`),
with the same soft or hard targets and loss weight (`targets.teacher_targets`, `targets.blend_targets`).
What differs from the online teacher: it sees each person once, unaugmented (no rotation, occlusion, glare,
pasted people), and does not label background crops (soft: zero maps there).

File: JSON {"info": {...provenance...}, "keypoints": {"<annotation id>": [x, y, score] x 17 flattened}},
x, y in the image's pixels.
"""
from __future__ import annotations

import json
import os

import numpy as np

from edge_pose.skeleton import NUM_KEYPOINTS
from edge_pose.train.dataset import head_top_box


def with_head_top_boxes(coco):
    """A shallow copy of a COCO dict whose annotations' bboxes hold their head tops (dataset.head_top_box)."""
    anns = [dict(a, bbox=[float(v) for v in head_top_box(a)]) for a in coco["annotations"]]
    return dict(coco, annotations=anns)


def predict_labels(predict_fn, coco, images_dir, head_top=False, flip=False, batch=8, progress=True):
    """{annotation id: (17, 3) x, y, score} of `predict_fn` (normalised crops -> heatmaps) on the ground-truth box
    crop of every labelled person of `coco` (with `flip`: the teacher's flip test)."""
    from edge_pose.train.label_audit import predict_persons

    coco = with_head_top_boxes(coco) if head_top else coco
    anns, preds = predict_persons(predict_fn, coco, images_dir, batch=batch, flip=flip, progress=progress)
    return {a["id"]: p.astype(np.float32) for a, p in zip(anns, preds)}


def save(path, labels, info):
    """Write labels ({annotation id: (17, 3)}) and their provenance `info` (a dict) atomically."""
    doc = {"info": info, "keypoints": {str(k): [round(float(v), 2) for v in np.asarray(kp).ravel()]
                                       for k, kp in labels.items()}}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


def load(path):
    """({annotation id: (17, 3) float32}, info) of a teacher labels file; ValueError naming the file when it is
    not one."""
    try:
        with open(path) as f:
            doc = json.load(f)
        labels = {int(k): np.asarray(v, np.float32).reshape(NUM_KEYPOINTS, 3) for k, v in doc["keypoints"].items()}
    except (KeyError, TypeError, ValueError) as e:
        msg = "%s is not a teacher labels file (scripts/teacher_labels.py writes them): %s" % (path, e)
        raise ValueError(msg) from None
    return labels, doc.get("info", {})

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


def score(coco, labels):
    """pycocotools keypoint metrics (AP, AP50, ... as evaluate.STAT_NAMES) of `labels` ({annotation id: (17, 3)})
    against `coco`'s own labels: how far the teacher agrees with the set's annotators. Each labelled person is one
    result, scored by the mean of its 17 keypoint scores as the estimator scores people; persons without a label
    are left out of the ground truth, so the number measures the labels made, not the ones missing."""
    from edge_pose.train.evaluate import person_groups, score_results, to_results

    groups = []
    for image, anns in person_groups(coco):
        anns = [a for a in anns if a["id"] in labels]
        if anns:
            groups.append((image, anns))
    anns = [a for _, group in groups for a in group]
    if not anns:
        raise ValueError("no labelled person of the set has a teacher label: is it the labels file of this set?")
    kps = np.stack([np.asarray(labels[a["id"]], np.float32).reshape(NUM_KEYPOINTS, 3) for a in anns])
    metrics = score_results(coco, to_results(kps[..., :2], kps[..., 2], anns), groups)
    metrics.update(n_persons=len(anns), n_images=len(groups))
    return metrics


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

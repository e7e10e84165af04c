"""Audit a training set's keypoint labels against a stronger model's predictions on the same GT-box crops.

Two faults this finds in the sets of `../shared/data` (docs/training_log.md, twenty-seventh sitting):
- left/right swaps: LSPET's Mechanical Turk labels are sometimes given from the viewer's side. A person is flagged
  when the mirrored labels (left and right exchanged) fit the reference model much better than the labels do, for
  the whole body or for the arms or the legs alone (`swap_flags`).
- a set's own convention for a joint: pfg marks the hips at the belt, about a tenth of the person's scale above
  COCO's hips (`joint_offsets`: the median offset of the reference model from the labels, per joint).

The reference is MoveNet Thunder (`teachers/`, a keypoint model) or any edge-pose model; `scripts/audit_labels.py`
runs it and writes a copy of the annotations without the flagged persons.
"""
from __future__ import annotations

import numpy as np

from edge_pose.decode import decode
from edge_pose.skeleton import FLIP_INDEX, KEYPOINT_NAMES, NUM_KEYPOINTS, OKS_SIGMAS
from edge_pose.train.evaluate import iter_batches, person_groups, predict_heatmaps

ARMS = np.array([5, 6, 7, 8, 9, 10])
LEGS = np.array([11, 12, 13, 14, 15, 16])
ALL = np.arange(NUM_KEYPOINTS)
WHOLE_MARGIN = 0.15  # whole body: mirrored labels' OKS this much above the labels' own
PART_MARGIN = 0.2  # arms or legs alone


def predict_persons(predict_fn, dataset, images_dir, img_ids=None, batch=8, flip=False, progress=False):
    """(annotations, (N, 17, 3) predicted x, y, score) of predict_fn on the GT-box crops of every labelled person
    (`flip`: its flip test; `progress`: a bar over the persons)."""
    from tqdm import tqdm

    groups = person_groups(dataset, img_ids)
    anns, preds = [], []
    with tqdm(total=sum(len(g[1]) for g in groups), desc="predict", disable=not progress) as bar:
        for inputs, mats, batch_anns in iter_batches(groups, images_dir, batch):
            keypoints, scores = decode(predict_heatmaps(predict_fn, inputs, flip=flip), mats)
            preds.append(np.concatenate([keypoints, scores[..., None]], axis=2))
            anns.extend(batch_anns)
            bar.update(len(batch_anns))
    return anns, (np.concatenate(preds) if preds else np.zeros((0, NUM_KEYPOINTS, 3), np.float32))


def person_area(ann):
    """The area OKS normalises by: the annotation's `area`, else its box's."""
    area = ann.get("area") or 0
    return float(area) if area > 0 else float(ann["bbox"][2] * ann["bbox"][3])


def oks_parts(pred, labels, area, joints=ALL):
    """Mean keypoint similarity (COCO's per-joint OKS term) of `pred` to the labelled ones among `joints`;
    NaN when none of them is labelled."""
    joints = np.asarray(joints)
    seen = labels[joints, 2] > 0
    if not seen.any():
        return float("nan")
    d2 = ((pred[joints, :2] - labels[joints, :2]) ** 2).sum(axis=1)
    ks = np.exp(-d2 / (2.0 * area * (2.0 * OKS_SIGMAS[joints]) ** 2 + np.spacing(1)))
    return float(ks[seen].mean())


def swap_flags(anns, preds):
    """(N, 3) bool: for each person, do the mirrored labels fit `preds` better (whole body, arms, legs)?"""
    flags = np.zeros((len(anns), 3), bool)
    for i, (ann, pred) in enumerate(zip(anns, preds)):
        labels = np.asarray(ann["keypoints"], np.float64).reshape(NUM_KEYPOINTS, 3)
        mirrored = labels[list(FLIP_INDEX)]
        area = person_area(ann)
        for j, (joints, margin) in enumerate(((ALL, WHOLE_MARGIN), (ARMS, PART_MARGIN), (LEGS, PART_MARGIN))):
            own, other = oks_parts(pred, labels, area, joints), oks_parts(pred, mirrored, area, joints)
            flags[i, j] = bool(other > own + margin)  # NaN compares False: nothing labelled, nothing flagged
    return flags


def joint_offsets(anns, preds, min_score=0.3):
    """{joint name: (median dx, median dy, n)} of the prediction minus the label, in units of the person's scale
    (the square root of its area), over labelled joints predicted with at least `min_score`."""
    rows = []
    for ann, pred in zip(anns, preds):
        labels = np.asarray(ann["keypoints"], np.float64).reshape(NUM_KEYPOINTS, 3)
        use = (labels[:, 2] > 0) & (pred[:, 2] >= min_score)
        rows.append(np.where(use[:, None], (pred[:, :2] - labels[:, :2]) / np.sqrt(person_area(ann)), np.nan))
    offsets = np.array(rows).reshape(-1, NUM_KEYPOINTS, 2)
    out = {}
    for j, name in enumerate(KEYPOINT_NAMES):
        d = offsets[:, j]
        d = d[~np.isnan(d[:, 0])]
        out[name] = (float(np.median(d[:, 0])), float(np.median(d[:, 1])), len(d)) if len(d) else (0.0, 0.0, 0)
    return out


def without_persons(dataset, ann_ids, note):
    """A copy of a COCO dataset dict without the annotations `ann_ids`; `note` goes into info.audit."""
    drop = set(int(i) for i in ann_ids)
    out = dict(dataset)
    out["annotations"] = [a for a in dataset["annotations"] if a["id"] not in drop]
    info = dict(dataset.get("info") or {})
    info["audit"] = dict(note, removed_annotation_ids=sorted(drop))
    out["info"] = info
    return out

"""The shipped models on real COCO val images: decoded keypoints land near the ground truth.

Skips when ../shared/data (or EDGE_POSE_SHARED_DATA) or the shipped model (engines/ or EDGE_POSE_ENGINES)
is missing. Persons: the three largest non-crowd persons of coco_val_dev with at least 14 labelled keypoints
(clearly visible, large), each cropped from its ground-truth box through PoseEstimator as annotate does.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edge_pose.runtime import ModelNotFound, zoo

# distances of labelled keypoints to the ground truth, as fractions of the person's box diagonal: the median
# over all labelled keypoints of the persons, and the median of each person (a back view, where left and
# right are easily swapped, is among them: 000000343803, 0.14-0.21 with the first trained models)
TOLERANCE = 0.10
PER_PERSON_MAX = 0.25
N_PERSONS = 3
MIN_LABELLED = 14


def clear_persons(shared):
    with open(shared / "coco_val_dev" / "person_keypoints.json", encoding="utf-8") as f:
        data = json.load(f)
    images = dict((im["id"], im) for im in data["images"])
    anns = [a for a in data["annotations"] if not a.get("iscrowd", 0) and a.get("num_keypoints", 0) >= MIN_LABELLED]
    anns.sort(key=lambda a: -a["area"])
    return [(images[a["image_id"]], a) for a in anns[:N_PERSONS]]


@pytest.mark.parametrize("name", ["mobilenetv3", "resnet18"])
def test_shipped_model_finds_keypoints_of_clear_persons(name, shared_data):
    pytest.importorskip("onnxruntime")
    try:
        path = zoo.resolve(name)
    except ModelNotFound as exc:
        pytest.skip("shipped model not available: %s" % exc)
    from edge_pose import PoseEstimator

    persons = clear_persons(shared_data)
    assert len(persons) == N_PERSONS
    report, pooled = [], []
    with PoseEstimator(str(path)) as est:
        for image, ann in persons:
            frame = cv2.imread(str(shared_data / "coco_val_dev" / "images" / image["file_name"]))
            assert frame is not None
            (person,) = est(frame, boxes=[ann["bbox"]])
            gt = np.asarray(ann["keypoints"], dtype=np.float64).reshape(17, 3)
            labelled = gt[:, 2] > 0
            dist = np.linalg.norm(person["keypoints"][:, :2] - gt[:, :2], axis=1)[labelled]
            diag = float(np.hypot(ann["bbox"][2], ann["bbox"][3]))
            pooled.extend(dist / diag)
            report.append((image["file_name"], ann["id"], float(np.median(dist) / diag),
                           float(np.mean(dist / diag < 0.1))))
    text = "; ".join("%s ann %d: median %.3f x diag, %.0f%% within 0.1" % (f, a, m, 100 * w)
                     for f, a, m, w in report)
    text = "all: median %.3f x diag; %s" % (float(np.median(pooled)), text)
    print("%s (%s): %s" % (name, path, text))
    assert np.median(pooled) < TOLERANCE, text
    for _, _, median, _ in report:
        assert median < PER_PERSON_MAX, text

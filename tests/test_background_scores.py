"""scripts/background_scores.py: acquisition windows that hold nobody (checked with pycocotools), and the
shipped model's person score on them against its score on the annotated people."""
import importlib.util
import json

import numpy as np
import pytest
from conftest import REPO

from edge_pose.persons import box_coverage

spec = importlib.util.spec_from_file_location("background_scores", REPO / "scripts" / "background_scores.py")
background_scores = importlib.util.module_from_spec(spec)
spec.loader.exec_module(background_scores)


def test_box_coverage_matches_pycocotools_iou_with_iscrowd():
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(0)
    a = np.column_stack([rng.uniform(0, 300, (20, 2)), rng.uniform(1, 200, (20, 2))])
    b = np.column_stack([rng.uniform(0, 300, (15, 2)), rng.uniform(1, 200, (15, 2))])
    # pycocotools' iou(dt, gt, iscrowd=1) divides the intersection by dt's own area: the share of dt covered
    expected = np.asarray(mask_utils.iou(b.tolist(), a.tolist(), [1] * len(a))).T
    np.testing.assert_allclose(box_coverage(a, b), expected, atol=1e-9)


@pytest.fixture(scope="module")
def val(shared_data):
    root = shared_data / "coco_val_dev"
    return root / "person_keypoints.json", root / "images"


def test_background_windows_cover_nobody_and_come_from_complete_images(val):
    from pycocotools import mask as mask_utils

    data = json.loads(val[0].read_text())
    complete = {im["file_name"]: im["id"] for im in data["images"] if im.get("annotations_complete", True)}
    windows = background_scores.background_windows(str(val[0]))
    assert len(windows) >= 10 and sum(len(w) for _, w in windows) >= 50
    for name, boxes in windows:
        assert name in complete
        anns = [a["bbox"] for a in data["annotations"] if a["image_id"] == complete[name]]
        if anns:
            covered = np.asarray(mask_utils.iou(anns, boxes.tolist(), [1] * len(boxes)))  # share of each person
            assert covered.max() <= 0.1 + 1e-9


def test_shipped_model_scores_people_above_background(val):
    import cv2

    from edge_pose import PoseEstimator

    windows = background_scores.background_windows(str(val[0]))[:12]
    background = background_scores.window_scores("mobilenetv3", str(val[1]), windows)
    assert len(background) == sum(len(w) for _, w in windows) and ((background >= 0) & (background <= 1)).all()
    data = json.loads(val[0].read_text())
    names = {im["id"]: im["file_name"] for im in data["images"]}
    people = []
    with PoseEstimator("mobilenetv3", threads=1) as est:
        for image_id in sorted({a["image_id"] for a in data["annotations"]})[:12]:
            boxes = [a["bbox"] for a in data["annotations"] if a["image_id"] == image_id and a["num_keypoints"] >= 8]
            if boxes:
                image = cv2.imread(str(val[1] / names[image_id]))
                people.extend(p["score"] for p in est(image, np.asarray(boxes, np.float64)))
    assert len(people) >= 10
    print("median person %.3f background %.3f" % (np.median(people), np.median(background)))
    assert np.median(people) > np.median(background) + 0.05

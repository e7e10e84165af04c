import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGE_POSE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data():
    if not (SHARED / "coco_val_dev" / "person_keypoints.json").exists():
        pytest.skip("shared data not found at %s (set EDGE_POSE_SHARED_DATA)" % SHARED)
    return SHARED


@pytest.fixture(scope="session")
def coco_train_set(shared_data):
    """coco_train as a training PersonSet."""
    from edge_pose.train.dataset import PersonSet
    root = shared_data / "coco_train"
    return PersonSet(str(root / "person_keypoints.json"), str(root / "images"), "coco_train", progress=False)


@pytest.fixture(scope="session")
def check_model():
    """The model the product checks on real video run with (two ids on sports2d, the smoothing contract): the
    default mobilenetv3, or EDGE_POSE_CHECK_MODEL (a shipped name or a path) to screen a candidate with the
    very same tests before shipping it."""
    return os.environ.get("EDGE_POSE_CHECK_MODEL", "mobilenetv3")

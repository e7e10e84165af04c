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

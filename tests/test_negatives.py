"""Background crops for training (augment.negative_prob): taken only from sets whose images are completely
annotated, overlapping no annotated person, with all-zero heatmaps at full weight."""
import numpy as np
import pytest

from edge_pose.config import AugmentCfg
from edge_pose.train.dataset import PersonSet, TopDownDataset


@pytest.fixture(scope="module")
def coco_train(shared_data):
    root = shared_data / "coco_train"
    return root / "person_keypoints.json", root / "images"


def _dataset(ann, images, complete, negative_prob):
    ps = PersonSet(str(ann), str(images), "coco_train", progress=False, complete=complete)
    return ps, TopDownDataset([ps], [1.0], AugmentCfg(negative_prob=negative_prob), seed=3)


def test_background_boxes_overlap_nobody(coco_train):
    from pycocotools import mask as mask_utils

    ps, data = _dataset(*coco_train, complete=True, negative_prob=1.0)
    found = 0
    for person in range(0, len(ps), 3):
        box = data.background_box(ps, person)
        if box is None:
            continue
        found += 1
        (cx, cy), (w, h) = box
        crop = [[cx - w / 2, cy - h / 2, w, h]]
        others = ps.person_boxes[ps.image_index[person]].tolist()
        # with iscrowd the "union" is the first box's own area: the share of each person covered by the crop
        covered = np.asarray(mask_utils.iou(others, crop, [1]))
        assert covered.max() <= 0.1 + 1e-6
    assert found >= len(range(0, len(ps), 3)) // 3  # most images have room for a background crop


def test_negative_samples_have_zero_targets_at_full_weight(coco_train):
    ps, data = _dataset(*coco_train, complete=True, negative_prob=1.0)
    items = [data.item(0, p) for p in range(0, len(ps), 7)]
    negatives = [(x, heat, weight) for x, heat, weight in items if heat.max() == 0]
    assert len(negatives) >= len(items) // 2
    for x, heat, weight in negatives:
        assert x.shape == (3, 256, 192) and np.isfinite(x).all() and x.std() > 0  # a real image crop
        assert heat.shape == (17, 64, 48) and np.all(weight == 1.0)


def test_no_negatives_from_incomplete_sets_or_by_default(coco_train):
    _, incomplete = _dataset(*coco_train, complete=False, negative_prob=1.0)
    _, default = _dataset(*coco_train, complete=True, negative_prob=0.0)
    for data in (incomplete, default):
        for p in range(0, 40, 4):
            _, heat, weight = data.item(0, p)
            assert heat.max() > 0.5 and weight.max() > 0  # a person, as before


def test_negative_scale_sets_the_background_crop_size(coco_train):
    from edge_pose import preprocess as pre

    ps = PersonSet(str(coco_train[0]), str(coco_train[1]), "coco_train", progress=False, complete=True)
    data = TopDownDataset([ps], [1.0], AugmentCfg(negative_prob=1.0, negative_scale=[2.0, 2.0]), seed=5)
    sizes = []
    for person in range(0, len(ps), 5):
        found = data.background_box(ps, person)
        if found is not None:
            _, own = pre.box_to_center_scale(ps.boxes[person], data.input_size)
            sizes.append(np.asarray(found[1]) / own)
    assert len(sizes) >= 5
    np.testing.assert_allclose(sizes, 2.0, rtol=1e-6)  # twice the size of the person it stands in for

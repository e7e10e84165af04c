"""augment.zoom_out_prob: person crops zoomed out (the window scan's view), the person whole and anywhere inside."""
import numpy as np
import pytest

from edge_pose import preprocess as pre
from edge_pose.config import AugmentCfg
from edge_pose.train.augment import sample_transform
from edge_pose.train.dataset import TopDownDataset


def test_zoomed_crop_holds_the_whole_person_anywhere(coco_train_set):
    cfg = AugmentCfg(zoom_out_prob=1.0, zoom_out_scale=[1.5, 3.0], scale=[1.0, 1.0], shift=0.0,
                     half_body_prob=0.0, rotation=0.0)
    rng = np.random.default_rng(0)
    offsets = []
    for i in range(len(coco_train_set)):
        box = coco_train_set.boxes[i]
        base_center, base_size = pre.box_to_center_scale(box, (192, 256))
        center, size, _, _ = sample_transform(box, coco_train_set.joints[i], coco_train_set.visible[i], (192, 256),
                                              cfg, rng)
        zoom = size / base_size
        assert zoom[0] == pytest.approx(zoom[1]) and 1.5 <= zoom[0] <= 3.0
        # the person's own (fitted) box lies inside the crop
        assert np.all(np.abs(center - base_center) <= (size - base_size) / 2 + 1e-6)
        offsets.append((center - base_center) / size)
    offsets = np.abs(np.asarray(offsets))
    assert offsets.max() > 0.2  # not always centred: sometimes near the crop's edge


def _extent(heat, joints):
    """Area (heatmap cells) of the box around the peaks of these joints' heatmaps."""
    return np.ptp(np.argwhere(heat[joints].max(axis=0) > 0.5), axis=0).prod()


def test_zoomed_samples_keep_every_labelled_joint(coco_train_set):
    fixed = dict(rotation=0.0, half_body_prob=0.0, occlusion_prob=0.0, flip=False)
    data = TopDownDataset([coco_train_set], [1.0], AugmentCfg(zoom_out_prob=1.0, **fixed), seed=1)
    plain = TopDownDataset([coco_train_set], [1.0], AugmentCfg(**fixed), seed=1)
    spread = []
    for i in range(0, len(coco_train_set), 4):
        _, heat, weight = data.item(0, i)
        labelled = coco_train_set.visible[i] > 0
        assert np.all(weight[labelled] > 0)  # the whole person is inside the crop
        _, heat_plain, _ = plain.item(0, i)
        if labelled.sum() >= 8:
            spread.append(_extent(heat, labelled) / max(_extent(heat_plain, labelled), 1))
    assert np.median(spread) < 0.6  # the person covers a smaller part of the heatmap than in a fitted crop


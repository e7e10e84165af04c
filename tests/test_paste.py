"""train/paste.py: people cut out along COCO polygons and pasted beside the person of real training crops."""
import json

import cv2
import numpy as np
import pytest

from edge_pose import preprocess as pre
from edge_pose.config import AugmentCfg, ConfigError
from edge_pose.train.paste import HEIGHT, OFFSET, image_cutouts, paste_person, placement


@pytest.fixture(scope="module")
def coco_train(shared_data):
    root = shared_data / "coco_train"
    with open(root / "person_keypoints.json") as f:
        return root, json.load(f)


@pytest.fixture(scope="module")
def paste_set(shared_data):
    from edge_pose.train.dataset import PersonSet
    root = shared_data / "coco_train"
    return PersonSet(str(root / "person_keypoints.json"), str(root / "images"), "coco_train", progress=False,
                     cutouts=True)


def test_cutouts_follow_the_polygons_at_the_cached_scale(coco_train):
    root, coco = coco_train
    checked = 0
    for im in coco["images"][:20]:
        img = cv2.imread(str(root / "images" / im["file_name"]))
        anns = [a for a in coco["annotations"] if a["image_id"] == im["id"]]
        for scale in (1.0, 0.5):
            small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else img
            cuts = image_cutouts(small, anns, scale)
            tall = [a for a in anns if not a.get("iscrowd", 0) and isinstance(a.get("segmentation"), list)
                    and a["bbox"][3] * scale >= 66]  # clearly above MIN_HEIGHT: each must give a cutout
            assert len(cuts) >= len(tall)
            for a in tall:
                w, h = a["bbox"][2] * scale, a["bbox"][3] * scale
                # the cutout of this annotation: its box size (thin tips of a polygon may rasterise to nothing)
                # and, within the rasterised boundary, its area
                tol = max(2.5, 0.06 * max(w, h))
                match = [(rgb, alpha) for rgb, alpha in cuts
                         if abs(alpha.shape[1] - w) <= tol and abs(alpha.shape[0] - h) <= tol]
                assert match, "no cutout of %gx%g px for annotation %d" % (w, h, a["id"])
                areas = [alpha.sum() for _, alpha in match]
                assert min(abs(s / (a["area"] * scale ** 2) - 1) for s in areas) < 0.15
                checked += 1
    assert checked >= 20


def test_placement_sits_beside_the_middle_at_the_configured_size():
    rng = np.random.default_rng(0)
    for _ in range(500):
        cut_h, cut_w = int(rng.integers(64, 400)), int(rng.integers(20, 200))
        x0, y0, pw, ph = placement((256, 192, 3), (cut_h, cut_w), rng)
        assert HEIGHT[0] * 256 - 1 <= ph <= HEIGHT[1] * 256 + 1
        assert abs(pw / ph - cut_w / cut_h) < 0.05 + 1.0 / ph  # the cutout's aspect, up to rounding
        offset = abs(x0 + pw / 2 - 96) / 192
        assert OFFSET[0] - 0.01 <= offset <= OFFSET[1] + 0.01


def test_paste_changes_only_the_placed_box_and_covers_the_mask(paste_set):
    cuts = paste_set.cutouts
    assert len(cuts) > 50
    pasted = 0
    for seed in range(30):
        i = (seed * 7) % len(paste_set)
        center, size = pre.box_to_center_scale(paste_set.boxes[i], (192, 256))
        crop = pre.crop(paste_set.images[paste_set.image_index[i]], pre.affine_matrix(center, size, (192, 256), 0.0),
                        (192, 256))
        out = paste_person(crop, cuts, 1.0, np.random.default_rng(seed))
        replay = np.random.default_rng(seed)
        replay.random()
        rgb, alpha = cuts[int(replay.integers(len(cuts)))]
        x0, y0, pw, ph = placement(crop.shape, rgb.shape, replay)
        alpha = cv2.resize(alpha, (pw, ph))
        if replay.random() < 0.5:
            alpha = alpha[:, ::-1]
        changed = np.abs(out.astype(int) - crop.astype(int)).sum(axis=2) > 0
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + pw, 192), min(y0 + ph, 256)
        inside = np.zeros_like(changed)
        if cx1 <= cx0 or cy1 <= cy0:  # placed wholly beyond the crop's edge
            assert not changed.any()
            continue
        inside[cy0:cy1, cx0:cx1] = True
        assert not (changed & ~inside).any()  # nothing outside the pasted box
        vis = alpha[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        in_box = changed[cy0:cy1, cx0:cx1]
        assert not in_box[vis == 0].any()  # the person's mask, not its box, is pasted
        if (vis > 0.99).sum() > 200:  # the opaque person pixels take the pasted colours (mirrored with the mask)
            assert in_box[vis > 0.99].mean() > 0.9
            pasted += 1
    assert pasted >= 15


def test_paste_prob_zero_or_no_cutouts_draw_nothing(paste_set):
    rng = np.random.default_rng(0)
    crop = np.zeros((256, 192, 3), np.uint8)
    state = rng.bit_generator.state
    assert paste_person(crop, paste_set.cutouts, 0.0, rng) is crop
    assert paste_person(crop, [], 1.0, rng) is crop
    assert rng.bit_generator.state == state  # configs without paste_prob train exactly as before


def test_pasting_leaves_the_targets_alone(paste_set):
    from edge_pose.train.dataset import TopDownDataset
    plain = TopDownDataset([paste_set], [1.0], AugmentCfg(), seed=5)
    pasted = TopDownDataset([paste_set], [1.0], AugmentCfg(paste_prob=1.0), seed=5)
    differ = 0
    for i in range(0, len(paste_set), 9):
        x0, heat0, w0 = plain.item(0, i)
        x1, heat1, w1 = pasted.item(0, i)
        np.testing.assert_array_equal(heat0, heat1)
        np.testing.assert_array_equal(w0, w1)
        differ += not np.array_equal(x0, x1)
        pasted.rng.bit_generator.state = plain.rng.bit_generator.state  # in step for the next person
    assert differ >= 0.8 * len(range(0, len(paste_set), 9))


def test_paste_needs_a_set_with_polygons(shared_data):
    from edge_pose.train.dataset import PersonSet, TopDownDataset
    root = shared_data / "lspet"
    lspet = PersonSet(str(root / "person_keypoints.json"), str(root / "images"), "lspet", progress=False, limit=20,
                      cutouts=True)
    assert lspet.cutouts == []  # LSPET has joints only
    with pytest.raises(ConfigError, match="paste_prob"):
        TopDownDataset([lspet], [1.0], AugmentCfg(paste_prob=0.3))

"""augment.sun_flare: a warm-white glare blended into real training crops (augment.flare_prob)."""
import numpy as np
import pytest

from edge_pose import preprocess as pre
from edge_pose.train.augment import sun_flare


@pytest.fixture(scope="module")
def crops(shared_data):
    from edge_pose.train.dataset import PersonSet

    root = shared_data / "coco_train"
    ps = PersonSet(str(root / "person_keypoints.json"), str(root / "images"), "coco_train", progress=False)
    out = []
    for i in range(0, len(ps), 12):
        center, size = pre.box_to_center_scale(ps.boxes[i], (192, 256))
        out.append(pre.crop(ps.images[ps.image_index[i]], pre.affine_matrix(center, size, (192, 256), 0.0), (192, 256)))
    assert len(out) >= 10
    return out


def test_flare_is_warm_white_at_its_centre_and_fades_with_distance(crops):
    for seed, crop in enumerate(crops):
        out = sun_flare(crop, 1.0, np.random.default_rng(seed))
        replay = np.random.default_rng(seed)
        replay.random()  # the probability draw
        cx, cy = replay.uniform(0, 192), replay.uniform(0, 256)
        core = replay.uniform(0.02, 0.12) * 192
        r, g, b = out[int(cy), int(cx)].astype(int)
        assert r == 255 and g >= 224 and b >= 189  # saturated, warm white (RGB crop)
        assert out.shape == crop.shape and out.dtype == np.uint8
        yy, xx = np.mgrid[0:256, 0:192]
        dist = np.hypot(xx - cx, yy - cy)
        change = np.abs(out.astype(int) - crop.astype(int)).sum(axis=2)
        near, far = change[dist <= core], change[dist > 8 * core]
        if far.size:
            assert near.mean() > 3 * far.mean()  # the core changes most; the rest of the crop keeps its content


def test_flare_prob_zero_leaves_the_crop_alone(crops):
    rng = np.random.default_rng(0)
    assert all(sun_flare(c, 0.0, rng) is c for c in crops)
    state = rng.bit_generator.state
    sun_flare(crops[0], 0.0, rng)
    assert rng.bit_generator.state == state  # no random draw: configs without flares train as before

from __future__ import annotations

import numpy as np
import pytest

from edge_pose.decode import (
    HEATMAP_SIZE,
    decode,
    decode_heatmaps,
    flip_heatmaps,
    input_to_heatmap,
    invert_affines,
    to_image,
)
from edge_pose.preprocess import INPUT_SIZE, affine_matrix, apply_affine, box_to_center_scale, make_batch
from edge_pose.skeleton import FLIP_INDEX, NUM_KEYPOINTS
from edge_pose.train.targets import encode_heatmaps

W, H = HEATMAP_SIZE


def _render(points, sigma=2.0):
    """(M, 2) heatmap points -> (M, H, W) maps, one Gaussian each."""
    return np.stack([encode_heatmaps(p[None], np.ones(1), (W, H), sigma)[0][0] for p in points])


def test_heatmap_size_contract():
    assert HEATMAP_SIZE == (48, 64)


def test_dark_round_trip_beats_argmax():
    rng = np.random.default_rng(0)
    pts = np.stack([rng.uniform(0, W - 1, 1700), rng.uniform(0, H - 1, 1700)], axis=1)
    maps = _render(pts).reshape(100, NUM_KEYPOINTS, H, W)
    truth = pts.reshape(100, NUM_KEYPOINTS, 2)

    dark, scores = decode_heatmaps(maps, "dark")
    err_dark = np.linalg.norm(dark - truth, axis=-1)
    assert dark.shape == (100, NUM_KEYPOINTS, 2) and scores.shape == (100, NUM_KEYPOINTS)
    assert err_dark.max() < 0.1, err_dark.max()
    np.testing.assert_allclose(scores, maps.reshape(100, NUM_KEYPOINTS, -1).max(-1))

    quarter, _ = decode_heatmaps(maps, "argmax")
    err_q = np.linalg.norm(quarter - truth, axis=-1)
    assert err_q.max() > 0.25 and err_q.mean() > 10 * err_dark.mean()


def test_decoders_on_edge_cases():
    maps = np.zeros((2, NUM_KEYPOINTS, H, W), np.float32)
    coords, scores = decode_heatmaps(maps)  # flat maps: argmax (0, 0), score 0, no NaN
    assert np.isfinite(coords).all() and (scores == 0).all()
    with pytest.raises(ValueError, match="decoder"):
        decode_heatmaps(maps, "soft-argmax")


def test_to_image_inverts_preprocess():
    rng = np.random.default_rng(1)
    n = 6
    boxes = np.stack([rng.uniform(0, 500, n), rng.uniform(0, 300, n), rng.uniform(20, 300, n),
                      rng.uniform(40, 400, n)], axis=1)
    mats = []
    for i, box in enumerate(boxes):
        center, size = box_to_center_scale(box)
        mats.append(affine_matrix(center, size, INPUT_SIZE, rot_deg=30.0 * (i % 3 - 1)))
    mats = np.stack(mats)
    pts = boxes[:, None, :2] + rng.uniform(0, 1, (n, NUM_KEYPOINTS, 2)) * boxes[:, None, 2:]
    crop_pts = np.stack([apply_affine(p, m) for p, m in zip(pts, mats)])
    back = to_image(input_to_heatmap(crop_pts), mats)
    assert np.abs(back - pts).max() < 1e-3
    np.testing.assert_allclose(invert_affines(invert_affines(mats)), mats, atol=1e-9)


def test_decode_end_to_end_with_make_batch():
    image = np.zeros((480, 640, 3), np.uint8)
    boxes = [[100, 50, 120, 300], [400, 200, 200, 150]]
    _, mats = make_batch(image, boxes)
    rng = np.random.default_rng(2)
    pts = np.stack([np.asarray(b[:2]) + rng.uniform(0.1, 0.9, (NUM_KEYPOINTS, 2)) * b[2:] for b in boxes])
    joints_hm = np.stack([input_to_heatmap(apply_affine(p, m)) for p, m in zip(pts, mats)])
    maps = _render(joints_hm.reshape(-1, 2)).reshape(2, NUM_KEYPOINTS, H, W)
    keypoints, scores = decode(maps, mats)
    px_per_hm = np.array([box_to_center_scale(b)[1][1] / (H - 1) for b in boxes])  # image px per heatmap px
    err = np.linalg.norm(keypoints - pts, axis=-1)
    assert (err < 0.1 * px_per_hm[:, None]).all()
    assert scores.min() > 0.8


def test_flip_heatmaps():
    rng = np.random.default_rng(3)
    maps = rng.random((2, NUM_KEYPOINTS, H, W)).astype(np.float32)
    flipped = flip_heatmaps(maps)
    np.testing.assert_array_equal(flip_heatmaps(flipped), maps)
    for k in range(NUM_KEYPOINTS):
        np.testing.assert_array_equal(flipped[:, FLIP_INDEX[k]], maps[:, k, :, ::-1])
    assert FLIP_INDEX[5] == 6 and FLIP_INDEX[0] == 0


def test_flip_test_needs_no_shift():
    """Heatmaps predicted on the mirrored crop, flipped back, decode to the original points (UDP)."""
    rng = np.random.default_rng(4)
    pts_in = np.stack([rng.uniform(10, INPUT_SIZE[0] - 10, NUM_KEYPOINTS),
                       rng.uniform(10, INPUT_SIZE[1] - 10, NUM_KEYPOINTS)], axis=1)
    mirrored = pts_in.copy()
    mirrored[:, 0] = INPUT_SIZE[0] - 1 - mirrored[:, 0]
    mirrored = mirrored[list(FLIP_INDEX)]  # the left wrist of the mirrored crop is the original right wrist
    maps = _render(input_to_heatmap(mirrored))[None]
    coords, _ = decode_heatmaps(flip_heatmaps(maps))
    np.testing.assert_allclose(coords[0], input_to_heatmap(pts_in), atol=0.05)

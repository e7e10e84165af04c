from __future__ import annotations

import numpy as np
import pytest
from _pose_helpers import person_at

from edge_pose.draw import LIMB_SIDE, SIDE_COLORS, Style, draw_people, id_color
from edge_pose.skeleton import LIMBS, SIDE


def near_color(img, color, tol=40):
    return (np.abs(img.astype(int) - np.array(color)).sum(axis=2) < tol)


def test_style_scales_with_the_frame():
    small, hd, uhd = (Style.for_frame(s) for s in ((480, 854), (720, 1280), (2160, 3840)))
    assert small.line >= 1 and small.dot >= 3 and small.font_scale >= 0.4
    assert small.line <= hd.line < uhd.line and small.dot < hd.dot < uhd.dot
    assert uhd.line == pytest.approx(3 * hd.line, abs=1) and uhd.font_scale == pytest.approx(3 * hd.font_scale)


def test_limb_sides():
    for (a, b), side in zip(LIMBS, LIMB_SIDE):
        if SIDE[a] == SIDE[b]:
            assert side == SIDE[a]
        elif 0 in (SIDE[a], SIDE[b]):
            assert side == max(SIDE[a], SIDE[b])
        else:
            assert side == 0  # e.g. shoulder to shoulder


@pytest.mark.parametrize("shape", [(480, 854, 3), (2160, 3840, 3)])
def test_draws_sides_ids_and_threshold(shape):
    frame = np.zeros(shape, np.uint8)
    h = 0.6 * shape[0]
    kp = person_at(shape[1] / 2, shape[0] / 2, h)
    kp[15:, 2] = 0.1  # ankles below the threshold
    out = draw_people(frame, [{"id": 7, "box": [0, 0, 10, 10], "score": 0.9, "keypoints": kp}], threshold=0.3,
                      copy=True)
    assert not frame.any()  # copy=True leaves the input alone
    left, right = near_color(out, SIDE_COLORS[1]), near_color(out, SIDE_COLORS[2])
    assert left.any() and right.any()
    ys, xs = np.nonzero(left)
    # the person faces the camera: its left side is on the image's right
    assert np.median(xs) > shape[1] / 2
    ys, xs = np.nonzero(right)
    assert np.median(xs) < shape[1] / 2
    # nothing drawn at the ankles (score 0.1), but at the knees
    r = Style.for_frame(shape).dot
    ax, ay = kp[15, :2].astype(int)
    kx, ky = kp[13, :2].astype(int)
    assert not out[ay + r:ay + 3 * r, ax - r:ax + r].any()
    assert out[ky - r // 2:ky + r // 2 + 1, kx - r // 2:kx + r // 2 + 1].any()
    # the id label in the id's colour above the head
    label = near_color(out, id_color(7), tol=10)
    ys, xs = np.nonzero(label)
    assert len(ys) and ys.max() < kp[:15, 1].min()


def test_nothing_to_draw_and_fps_overlay():
    frame = np.zeros((480, 640, 3), np.uint8)
    kp = person_at(320, 240, 300, score=0.1)
    assert not draw_people(frame.copy(), [{"box": [0, 0, 1, 1], "score": 0.1, "keypoints": kp}]).any()
    out = draw_people(frame.copy(), [], fps=31.4)
    assert out[:60, :200].any() and not out[200:].any()
    assert id_color(3) == id_color(3) and id_color(3) != id_color(4)

"""Skeleton rendering: limbs coloured by body side, keypoints above a threshold, track ids, an FPS overlay.

Sizes follow the frame (`Style.for_frame`): lines, dots and text stay readable from 480p to 4K. Drawing is
grouped by colour, one OpenCV call per group (a dot is a zero-length polyline with round caps), with a
dark outline under each group so skeletons show on bright and dark backgrounds alike.
"""
from __future__ import annotations

from collections import namedtuple

import cv2
import numpy as np

from edge_pose.skeleton import LIMBS, NUM_KEYPOINTS, SIDE

# BGR colours by side: 0 centre, 1 left, 2 right
SIDE_COLORS = ((80, 220, 80), (255, 160, 0), (0, 128, 255))
OUTLINE = (20, 20, 20)
TEXT = (255, 255, 255)
SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << SHIFT

_LIMB_A = np.array([a for a, _ in LIMBS])
_LIMB_B = np.array([b for _, b in LIMBS])


def _limb_side(a, b):
    sa, sb = SIDE[a], SIDE[b]
    if sa == sb:
        return sa
    return sb if sa == 0 else (sa if sb == 0 else 0)


LIMB_SIDE = np.array([_limb_side(a, b) for a, b in LIMBS])
KEYPOINT_SIDE = np.array(SIDE)


class Style(namedtuple("Style", "line dot outline font_scale font_thickness pad")):
    """Pixel sizes for one frame size."""

    @classmethod
    def for_frame(cls, shape):
        """Sizes scaled with the frame's short side (720 px -> 3 px lines, 9 px dots, font 0.6)."""
        s = min(shape[0], shape[1]) / 720.0
        line = max(1, int(round(3 * s)))
        dot = max(3, int(round(9 * s)))  # diameter
        outline = max(1, int(round(1.5 * s)))
        font_scale = max(0.4, 0.6 * s)
        font_thickness = max(1, int(round(1.6 * s)))
        pad = max(2, int(round(4 * s)))
        return cls(line, dot, outline, font_scale, font_thickness, pad)


def _fixed(points):
    """Float pixel coordinates (..., 2) -> int32 with SHIFT fractional bits."""
    return np.round(np.asarray(points, dtype=np.float64) * _ONE).astype(np.int32)


def _segments(pts_a, pts_b):
    """(M, 2) start and end points -> list of (2, 2) int32 polylines in fixed point."""
    return list(_fixed(np.stack([pts_a, pts_b], axis=1)))


def _polylines(img, segs, color, thickness):
    if segs:
        cv2.polylines(img, segs, False, color, thickness, cv2.LINE_AA, SHIFT)


def draw_skeletons(img, keypoints, threshold=0.3, style=None):
    """Draw (P, 17, 3) keypoints on img in place: limbs whose two ends score >= threshold, dots >= threshold."""
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, NUM_KEYPOINTS, 3)
    if not len(kp):
        return img
    style = style or Style.for_frame(img.shape)
    ok = kp[:, :, 2] >= threshold
    ok &= np.isfinite(kp[:, :, :2]).all(axis=2)
    limb_ok = ok[:, _LIMB_A] & ok[:, _LIMB_B]  # (P, L)
    sides = np.broadcast_to(LIMB_SIDE, limb_ok.shape)
    pa, pb = kp[:, _LIMB_A, :2], kp[:, _LIMB_B, :2]  # (P, L, 2)
    dots = kp[:, :, :2][ok]
    dot_sides = np.broadcast_to(KEYPOINT_SIDE, ok.shape)[ok]
    limb_groups = [_segments(pa[limb_ok & (sides == s)], pb[limb_ok & (sides == s)]) for s in range(3)]
    dot_groups = [_segments(dots[dot_sides == s], dots[dot_sides == s]) for s in range(3)]
    all_limbs = [seg for group in limb_groups for seg in group]
    _polylines(img, all_limbs, OUTLINE, style.line + 2 * style.outline)
    for s in range(3):
        _polylines(img, limb_groups[s], SIDE_COLORS[s], style.line)
    all_dots = [seg for group in dot_groups for seg in group]
    _polylines(img, all_dots, OUTLINE, style.dot + 2 * style.outline)
    for s in range(3):
        _polylines(img, dot_groups[s], SIDE_COLORS[s], style.dot)
    return img


def id_color(track_id):
    """A stable, distinct BGR colour per id (golden-ratio hue steps)."""
    hue = int((int(track_id) * 0.618033988749895 % 1.0) * 180)
    hsv = np.uint8([[[hue, 200, 200]]])
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def draw_label(img, text, origin, style=None, background=(40, 40, 40), anchor="bottom"):
    """Text on a filled box. origin: (x, y) of the box's bottom-left (anchor "bottom") or top-left ("top");
    the box is moved inside the frame."""
    style = style or Style.for_frame(img.shape)
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, style.font_scale, style.font_thickness)
    bw, bh = tw + 2 * style.pad, th + base + 2 * style.pad
    x, y = int(origin[0]), int(origin[1])
    if anchor == "bottom":
        y -= bh
    h, w = img.shape[:2]
    x = min(max(x, 0), max(w - bw, 0))
    y = min(max(y, 0), max(h - bh, 0))
    cv2.rectangle(img, (x, y), (x + bw, y + bh), background, -1)
    cv2.putText(img, text, (x + style.pad, y + style.pad + th), font, style.font_scale, TEXT,
                style.font_thickness, cv2.LINE_AA)
    return img


def draw_people(frame, people, threshold=0.3, fps=None, draw_boxes=False, copy=False):
    """Draw person dicts (keypoints (17, 3), optional "id", "box") on a BGR frame and return it.

    threshold: the least keypoint score drawn; fps: a number to show top-left (None: no overlay);
    draw_boxes: also the boxes the poses were estimated in; copy: draw on a copy, leave `frame` alone.
    """
    img = frame.copy() if copy else frame
    style = Style.for_frame(img.shape)
    if people:
        kp = np.stack([np.asarray(p["keypoints"], dtype=np.float64).reshape(NUM_KEYPOINTS, 3) for p in people])
        if draw_boxes:
            for p in people:
                x, y, w, h = [float(v) for v in p["box"]]
                color = id_color(p.get("id") or 0)
                p0 = tuple(int(v) for v in _fixed((x, y)))
                p1 = tuple(int(v) for v in _fixed((x + w, y + h)))
                cv2.rectangle(img, p0, p1, color, max(1, style.line // 2), cv2.LINE_AA, SHIFT)
        draw_skeletons(img, kp, threshold, style)
        for p, pts in zip(people, kp):
            if p.get("id") is None:
                continue
            ok = pts[:, 2] >= threshold
            if ok.any():
                x0, y0 = pts[ok, 0].min(), pts[ok, 1].min()
                origin = (x0, y0 - 2 * style.dot)
            else:
                origin = p["box"][:2]
            draw_label(img, "%d" % p["id"], origin, style, background=id_color(p["id"]))
    if fps is not None:
        draw_label(img, "%.1f FPS" % fps, (0, 0), style, anchor="top")
    return img

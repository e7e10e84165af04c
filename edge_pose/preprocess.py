"""Person box -> affine crop -> normalised NCHW batch. Shared by training, evaluation and inference."""
from __future__ import annotations

import cv2
import numpy as np

INPUT_SIZE = (192, 256)  # (width, height) of the model input
HEATMAP_STRIDE = 4
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
BOX_ENLARGE = 1.25


def box_to_center_scale(box, input_size=INPUT_SIZE, enlarge=BOX_ENLARGE):
    """COCO box [x, y, w, h] -> (center (2,), size (2,) in pixels) with the model's aspect ratio, enlarged."""
    x, y, w, h = [float(v) for v in box[:4]]
    aspect = input_size[0] / input_size[1]
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    if w > aspect * h:
        h = w / aspect
    else:
        w = h * aspect
    return center, np.array([w, h], dtype=np.float32) * enlarge


def affine_matrix(center, size, out_size, rot_deg=0.0):
    """2x3 matrix mapping the (rotated) region `size` around `center` onto an image of `out_size` (w, h).

    Uses the unbiased (UDP) convention: pixel centres at integer coordinates, the region's extent
    maps to (out - 1), so that crop -> heatmap -> image round-trips without a half-pixel shift.
    """
    out_w, out_h = float(out_size[0]), float(out_size[1])
    sx = (out_w - 1.0) / float(size[0]) if out_w > 1 else 1.0
    sy = (out_h - 1.0) / float(size[1]) if out_h > 1 else 1.0
    theta = np.deg2rad(rot_deg)
    c, s = np.cos(theta), np.sin(theta)
    # rotate about center (counter-clockwise in image coordinates), scale, move center to output centre
    a = np.array([[c * sx, s * sx], [-s * sy, c * sy]], dtype=np.float64)
    t = np.array([(out_w - 1.0) * 0.5, (out_h - 1.0) * 0.5]) - a @ np.asarray(center, dtype=np.float64)
    return np.hstack([a, t[:, None]]).astype(np.float64)


def invert_affine(mat):
    return cv2.invertAffineTransform(np.asarray(mat, dtype=np.float64))


def apply_affine(points, mat):
    """points (..., 2) -> transformed points (..., 2)."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ mat[:, :2].T + mat[:, 2]


def crop(image, mat, input_size=INPUT_SIZE):
    return cv2.warpAffine(image, mat, (int(input_size[0]), int(input_size[1])), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def normalize(crops_rgb_uint8):
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32 normalised with ImageNet mean/std."""
    x = np.asarray(crops_rgb_uint8, dtype=np.float32) * (1.0 / 255.0)
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def make_batch(image_bgr, boxes, input_size=INPUT_SIZE):
    """Crop every box of one BGR frame; returns (batch NCHW float32, affine matrices (N, 2, 3))."""
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
    crops, mats = [], []
    for box in boxes:
        center, size = box_to_center_scale(box, input_size)
        mat = affine_matrix(center, size, input_size)
        crops.append(crop(rgb, mat, input_size))
        mats.append(mat)
    if not crops:
        return np.zeros((0, 3, input_size[1], input_size[0]), np.float32), np.zeros((0, 2, 3))
    return normalize(np.stack(crops)), np.stack(mats)

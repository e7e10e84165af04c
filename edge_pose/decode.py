"""Heatmaps -> keypoints: argmax with sub-pixel refinement, then back to image coordinates.

Coordinates follow the unbiased (UDP) convention used by `preprocess` and `train.targets`: pixel centres
sit at integer coordinates, and the heatmap spans the input with scale (in - 1) / (hm - 1).

Everything is vectorised over all N*K maps; there is no per-keypoint Python loop.
"""
from __future__ import annotations

import numpy as np

from edge_pose.preprocess import HEATMAP_STRIDE, INPUT_SIZE
from edge_pose.skeleton import FLIP_INDEX

HEATMAP_SIZE = (INPUT_SIZE[0] // HEATMAP_STRIDE, INPUT_SIZE[1] // HEATMAP_STRIDE)  # (width, height)
METHODS = ("dark", "argmax")
DARK_BLUR_KERNEL = 11  # cv2's default sigma for an 11-tap kernel is 2.0: the training target sigma
DARK_BORDER = 4  # px from the map's edge where DARK refines on the raw map instead of the blurred one


def _argmax(heatmaps):
    """(M, H, W) -> integer x (M,), y (M,), max value (M,)."""
    m, h, w = heatmaps.shape
    flat = heatmaps.reshape(m, h * w)
    idx = np.argmax(flat, axis=1)
    maxval = flat[np.arange(m), idx]
    return idx % w, idx // w, maxval


def _blur_matrix(n, kernel):
    """(n, n) matrix of a 1-D Gaussian blur (cv2's sigma for `kernel` taps) over a zero-padded signal."""
    sigma = 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8
    d = np.arange(n)[None, :] - np.arange(n)[:, None]
    mat = np.where(np.abs(d) <= kernel // 2, np.exp(-0.5 * (d / sigma) ** 2), 0.0)
    return mat / np.exp(-0.5 * (np.arange(-(kernel // 2), kernel // 2 + 1) / sigma) ** 2).sum()


def gaussian_blur(heatmaps, kernel=DARK_BLUR_KERNEL):
    """Separable Gaussian blur of (M, H, W) maps (zero padding) as two matrix products; keeps each map's max."""
    m, h, w = heatmaps.shape
    hm = heatmaps.astype(np.float32, copy=False)
    blurred = _blur_matrix(h, kernel).astype(np.float32) @ hm @ _blur_matrix(w, kernel).T.astype(np.float32)
    old_max = hm.reshape(m, -1).max(axis=1)
    new_max = blurred.reshape(m, -1).max(axis=1)
    scale = np.where(new_max > 0, old_max / np.where(new_max > 0, new_max, 1.0), 1.0)
    return blurred * scale[:, None, None]


def _quarter_offset(heatmaps, x, y):
    """Classic Simple Baselines refinement: move 0.25 px towards the higher neighbour (interior peaks)."""
    m, h, w = heatmaps.shape
    rows = np.arange(m)
    xl, xr = np.clip(x - 1, 0, w - 1), np.clip(x + 1, 0, w - 1)
    yu, yd = np.clip(y - 1, 0, h - 1), np.clip(y + 1, 0, h - 1)
    dx = heatmaps[rows, y, xr] - heatmaps[rows, y, xl]
    dy = heatmaps[rows, yd, x] - heatmaps[rows, yu, x]
    ox = np.where((x > 0) & (x < w - 1), 0.25 * np.sign(dx), 0.0)
    oy = np.where((y > 0) & (y < h - 1), 0.25 * np.sign(dy), 0.0)
    return np.stack([ox, oy], axis=1)


def _newton_offset(maps, x, y):
    """Taylor/Newton step -H^-1 g on the log of maps (M, H, W) around integer points (x, y).

    Derivatives are central differences at the nearest interior pixel, so a peak on the map's edge is
    still refined. Returns the refined positions (M, 2) and a mask of where the step is valid
    (Hessian negative definite).
    """
    m, h, w = maps.shape
    rows = np.arange(m)
    ex, ey = np.clip(x, 1, max(w - 2, 0)), np.clip(y, 1, max(h - 2, 0))

    def at(dy, dx):  # log only where it is needed: 9 values per map
        v = maps[rows, np.clip(ey + dy, 0, h - 1), np.clip(ex + dx, 0, w - 1)]
        return np.log(np.maximum(v.astype(np.float64), 1e-10))

    c = at(0, 0)
    gx = 0.5 * (at(0, 1) - at(0, -1))
    gy = 0.5 * (at(1, 0) - at(-1, 0))
    hxx = at(0, 1) - 2.0 * c + at(0, -1)
    hyy = at(1, 0) - 2.0 * c + at(-1, 0)
    hxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    det = hxx * hyy - hxy * hxy
    ok = (det > 1e-12) & (hxx < 0) & (w >= 3) & (h >= 3)
    safe = np.where(ok, det, 1.0)
    px = ex - (hyy * gx - hxy * gy) / safe
    py = ey - (hxx * gy - hxy * gx) / safe
    return np.stack([px, py], axis=1), ok


def _dark(heatmaps, x, y, kernel=DARK_BLUR_KERNEL, border=DARK_BORDER):
    """DARK (Zhang et al., CVPR 2020): Newton step on the log of the Gaussian-blurred heatmap at the argmax.

    Within `border` pixels of the map's edge the zero-padded blur pulls peaks inwards, so there the
    step is taken on the log of the raw heatmap (exact for a Gaussian peak, only noisier).
    The refined position stays within 1 px of the argmax on each axis; invalid steps keep the argmax.
    """
    m, h, w = heatmaps.shape
    blurred, ok_b = _newton_offset(gaussian_blur(heatmaps, kernel), x, y)
    raw, ok_r = _newton_offset(heatmaps, x, y)
    near = (x < border) | (x > w - 1 - border) | (y < border) | (y > h - 1 - border)
    pos = np.where(near[:, None], raw, blurred)
    ok = np.where(near, ok_r, ok_b)
    argmax = np.stack([x, y], axis=1).astype(np.float64)
    return np.where(ok[:, None], np.clip(pos, argmax - 1.0, argmax + 1.0), argmax)


def decode_heatmaps(heatmaps, method="dark"):
    """Heatmaps (N, K, H, W) -> (coords (N, K, 2) float32 in heatmap pixels, scores (N, K) float32).

    method "dark": argmax refined by DARK's Taylor expansion (best on smooth Gaussian peaks);
    "argmax": argmax + a quarter pixel towards the higher neighbour (Simple Baselines).
    The score is the heatmap's maximum value (before any blurring).
    """
    if method not in METHODS:
        raise ValueError("unknown decoder %r (choose from %s)" % (method, ", ".join(METHODS)))
    hm = np.asarray(heatmaps)
    if hm.ndim != 4:
        raise ValueError("heatmaps must be (N, K, H, W), got shape %s" % (hm.shape,))
    n, k, h, w = hm.shape
    if n * k == 0:
        return np.zeros((n, k, 2), np.float32), np.zeros((n, k), np.float32)
    flat = hm.reshape(n * k, h, w).astype(np.float32, copy=False)
    x, y, maxval = _argmax(flat)
    if method == "dark":
        coords = _dark(flat, x, y)
    else:
        coords = np.stack([x, y], axis=1) + _quarter_offset(flat, x, y)
    return coords.reshape(n, k, 2).astype(np.float32), maxval.reshape(n, k).astype(np.float32)


def heatmap_to_input(coords_hm, input_size=INPUT_SIZE, heatmap_size=HEATMAP_SIZE):
    """Heatmap pixels -> model-input pixels (UDP: scale (in - 1) / (hm - 1) per axis)."""
    scale = np.array([(input_size[0] - 1.0) / (heatmap_size[0] - 1.0),
                      (input_size[1] - 1.0) / (heatmap_size[1] - 1.0)])
    return np.asarray(coords_hm, dtype=np.float64) * scale


def input_to_heatmap(coords_in, input_size=INPUT_SIZE, heatmap_size=HEATMAP_SIZE):
    """Model-input pixels -> heatmap pixels (inverse of `heatmap_to_input`)."""
    scale = np.array([(heatmap_size[0] - 1.0) / (input_size[0] - 1.0),
                      (heatmap_size[1] - 1.0) / (input_size[1] - 1.0)])
    return np.asarray(coords_in, dtype=np.float64) * scale


def invert_affines(mats):
    """(N, 2, 3) affine matrices -> their inverses (N, 2, 3), vectorised."""
    mats = np.asarray(mats, dtype=np.float64).reshape(-1, 2, 3)
    a_inv = np.linalg.inv(mats[:, :, :2])
    t_inv = -np.einsum("nij,nj->ni", a_inv, mats[:, :, 2])
    return np.concatenate([a_inv, t_inv[:, :, None]], axis=2)


def to_image(coords_hm, mats, input_size=INPUT_SIZE, heatmap_size=HEATMAP_SIZE):
    """Heatmap coords (N, K, 2) -> image coords (N, K, 2) float64.

    mats: (N, 2, 3) image -> input-pixel affine matrices, as returned by `preprocess.make_batch`.
    input_size and heatmap_size are (width, height).
    """
    pts = heatmap_to_input(coords_hm, input_size, heatmap_size)
    inv = invert_affines(mats)
    return np.einsum("nij,nkj->nki", inv[:, :, :2], pts) + inv[:, None, :, 2]


def flip_heatmaps(heatmaps, flip_index=FLIP_INDEX):
    """Heatmaps of a horizontally flipped crop -> heatmaps in the original crop's frame.

    Mirrors the width axis and swaps left/right channels. With the UDP convention no pixel shift is
    needed: input x -> (in_w - 1 - x) corresponds exactly to heatmap x -> (hm_w - 1 - x).
    The operation is its own inverse.
    """
    hm = np.asarray(heatmaps)
    return np.ascontiguousarray(hm[:, list(flip_index), :, ::-1])


def decode(heatmaps, mats, method="dark", input_size=INPUT_SIZE):
    """Heatmaps (N, K, H, W) + crop matrices (N, 2, 3) -> (keypoints (N, K, 2) image coords, scores (N, K))."""
    hm = np.asarray(heatmaps)
    coords, scores = decode_heatmaps(hm, method)
    heatmap_size = (hm.shape[3], hm.shape[2])
    return to_image(coords, mats, input_size, heatmap_size), scores

"""Gaussian heatmap targets with per-joint target weights (unbiased: sub-pixel centres, no rounding)."""
from __future__ import annotations

import numpy as np


def encode_heatmaps(joints_hm, visible, heatmap_size, sigma=2.0):
    """Render one Gaussian per joint at its exact sub-pixel position (UDP / DARK style, no quantisation).

    joints_hm: (K, 2) joint positions in heatmap pixel coordinates (pixel centres at integers).
    visible:   (K,) > 0 where the joint is labelled.
    Returns heatmaps (K, H, W) float32 with peak 1 at the joint, and target weights (K,) float32:
    0 for unlabelled joints and for joints whose Gaussian would fall entirely outside the map.
    """
    w, h = int(heatmap_size[0]), int(heatmap_size[1])
    k = joints_hm.shape[0]
    xs = np.arange(w, dtype=np.float32)
    ys = np.arange(h, dtype=np.float32)
    mu = np.asarray(joints_hm, dtype=np.float32)
    weight = (np.asarray(visible) > 0).astype(np.float32)
    radius = 3.0 * sigma
    inside = (mu[:, 0] >= -radius) & (mu[:, 0] <= w - 1 + radius) & (mu[:, 1] >= -radius) & (mu[:, 1] <= h - 1 + radius)
    weight *= inside.astype(np.float32)
    gx = np.exp(-((xs[None, :] - mu[:, 0:1]) ** 2) / (2 * sigma ** 2))  # (K, W)
    gy = np.exp(-((ys[None, :] - mu[:, 1:2]) ** 2) / (2 * sigma ** 2))  # (K, H)
    heat = gy[:, :, None] * gx[:, None, :]
    heat *= weight[:, None, None]
    return heat.astype(np.float32).reshape(k, h, w), weight

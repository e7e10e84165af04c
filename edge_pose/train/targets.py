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


def teacher_targets(joints_hm, scores, heatmap_size, sigma=2.0, min_score=None):
    """A keypoint teacher's labels of one crop as heatmaps and weights, as `losses.distill_loss` treats a teacher's
    rendered heatmaps. Soft (`min_score` None): Gaussians with the teacher's scores as peaks, every joint at weight
    1 (a joint out of the crop: a zero map, the teacher saying it is not there). Hard: unit Gaussians of the joints
    scored >= `min_score`, the others at weight 0."""
    scores = np.asarray(scores, np.float32)
    if min_score is None:
        heat, _ = encode_heatmaps(joints_hm, np.ones(len(scores)), heatmap_size, sigma)
        return heat * scores[:, None, None], np.ones(len(scores), np.float32)
    return encode_heatmaps(joints_hm, scores >= min_score, heatmap_size, sigma)


def blend_targets(gt, gt_weight, teacher, teacher_weight, share):
    """One (heatmaps, weights) whose weighted MSE has the gradient of (1 - share) x the ground truth's weighted MSE
    plus share x the teacher's (a x (p - g)^2 + b x (p - t)^2 = (a + b) x (p - (a g + b t) / (a + b))^2 + const):
    the distillation loss of `train.loop` with the teacher's targets made ahead of time."""
    a = (1.0 - share) * np.asarray(gt_weight, np.float32)
    b = share * np.asarray(teacher_weight, np.float32)
    weight = a + b
    mix = (a[:, None, None] * gt + b[:, None, None] * teacher) / np.where(weight > 0, weight, 1.0)[:, None, None]
    return mix.astype(np.float32), weight.astype(np.float32)

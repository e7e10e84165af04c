"""Heatmap losses with per-joint target weights: MSE (default), Wing, Adaptive Wing."""
from __future__ import annotations

import math

import torch


def mse_loss(pred, target, weight):
    """Mean over joints of weighted MSE (Simple Baselines' JointsMSELoss, times 0.5)."""
    w = weight[:, :, None, None]
    return 0.5 * ((pred - target) ** 2 * w).mean()


def wing_loss(pred, target, weight, w=10.0, eps=2.0):
    """Wing loss (Feng et al. 2018) applied per heatmap pixel."""
    x = (pred - target).abs()
    c = w - w * math.log(1 + w / eps)
    loss = torch.where(x < w, w * torch.log1p(x / eps), x - c)
    return (loss * weight[:, :, None, None]).mean()


def adaptive_wing_loss(pred, target, weight, alpha=2.1, omega=14.0, epsilon=1.0, theta=0.5):
    """Adaptive Wing loss (Wang et al. 2019) for heatmap regression."""
    delta = (target - pred).abs()
    a_minus_y = alpha - target
    r = theta / epsilon
    a = omega * (1 / (1 + r ** a_minus_y)) * a_minus_y * (r ** (a_minus_y - 1)) / epsilon
    c = theta * a - omega * torch.log1p((theta / epsilon) ** a_minus_y)
    loss = torch.where(delta < theta, omega * torch.log1p((delta / epsilon) ** a_minus_y), a * delta - c)
    return (loss * weight[:, :, None, None]).mean()


LOSSES = {"mse": mse_loss, "wing": wing_loss, "adaptive_wing": adaptive_wing_loss}


def distill_loss(pred, teacher, min_score=None):
    """Student imitates the teacher's heatmaps.

    Soft (`min_score` None): every joint, the teacher's heatmap as it is (a keypoint teacher's peaks are its
    scores). Hard (`min_score` a number): pseudo-labels; each joint whose teacher peak reaches `min_score` becomes
    a unit-peak target (its heatmap divided by its peak), the others are left out of the loss, so the student's
    scores keep the ground truth's scale instead of learning the teacher's lower ones."""
    if min_score is None:
        return mse_loss(pred, teacher, torch.ones(teacher.shape[:2], device=teacher.device))
    peak = teacher.amax(dim=(2, 3))
    keep = (peak >= min_score).to(teacher.dtype)
    target = teacher / peak.clamp_min(1e-6)[:, :, None, None] * keep[:, :, None, None]
    return mse_loss(pred, target, keep)

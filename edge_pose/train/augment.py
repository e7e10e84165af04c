"""Training augmentation: random box jitter (scale, rotation, flip, half-body) and pixel noise (colour, occlusion)."""
from __future__ import annotations

import cv2
import numpy as np

from edge_pose.preprocess import box_to_center_scale
from edge_pose.skeleton import LOWER_BODY, UPPER_BODY


def half_body_box(joints, visible, rng, min_joints=3):
    """Box around the upper or the lower body's labelled joints, or None when too few are labelled."""
    upper = [j for j in UPPER_BODY if visible[j] > 0]
    lower = [j for j in LOWER_BODY if visible[j] > 0]
    if len(upper) < min_joints and len(lower) < min_joints:
        return None
    pick = upper if (rng.random() < 0.5 and len(upper) >= min_joints) or len(lower) < min_joints else lower
    pts = joints[pick]
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    return [x0 - 0.25 * w, y0 - 0.25 * h, w * 1.5, h * 1.5]


def sample_transform(box, joints, visible, input_size, cfg, rng):
    """Random (center, size, rotation degrees, flip) for one person."""
    if cfg.half_body_prob > 0 and (visible > 0).sum() > 8 and rng.random() < cfg.half_body_prob:
        hb = half_body_box(joints, visible, rng)
        if hb is not None:
            box = hb
    center, size = box_to_center_scale(box, input_size)
    lo, hi = cfg.scale
    size = size * rng.uniform(lo, hi)
    center = center + size * rng.uniform(-cfg.shift, cfg.shift, size=2)
    rot = 0.0
    if cfg.rotation > 0 and rng.random() < cfg.rotation_prob:
        rot = float(np.clip(rng.normal(0, cfg.rotation / 2), -cfg.rotation, cfg.rotation))
    flip = bool(cfg.flip and rng.random() < 0.5)
    if cfg.zoom_out_prob > 0 and rng.random() < cfg.zoom_out_prob:
        # a window much larger than the person, who may sit anywhere in it (kept whole): what the person
        # source's window scan shows the model, which otherwise makes every window one crop-filling person
        zoom = rng.uniform(*cfg.zoom_out_scale)
        center = center + rng.uniform(-1.0, 1.0, size=2) * size * (zoom - 1.0) / 2.0
        size = size * zoom
    return center, size, rot, flip


def flip_matrix(mat, width):
    """Compose an image->crop affine with a horizontal flip of the crop (width in crop pixels)."""
    out = mat.copy()
    out[0] = -out[0]
    out[0, 2] += width - 1
    return out


def color_jitter(img, strength, rng):
    if strength <= 0:
        return img
    x = img.astype(np.float32)
    b = 1.0 + rng.uniform(-strength, strength)
    c = 1.0 + rng.uniform(-strength, strength)
    s = 1.0 + rng.uniform(-strength, strength)
    x = x * b
    mean = x.mean()
    x = (x - mean) * c + mean
    gray = x.mean(axis=2, keepdims=True)
    x = (x - gray) * s + gray
    return np.clip(x, 0, 255).astype(np.uint8)


def occlude(img, prob, rng):
    """Paste a random-coloured noisy rectangle (10-35 % of each side) somewhere on the crop."""
    if rng.random() >= prob:
        return img
    h, w = img.shape[:2]
    rh, rw = int(h * rng.uniform(0.1, 0.35)), int(w * rng.uniform(0.1, 0.35))
    y, x = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
    patch = rng.integers(0, 256, size=(1, 1, 3)) + rng.normal(0, 20, size=(rh, rw, 3))
    img = img.copy()
    img[y:y + rh, x:x + rw] = np.clip(patch, 0, 255).astype(np.uint8)
    return img


def blur_like(img, rng, prob):
    if rng.random() >= prob:
        return img
    return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))


def sun_flare(img, prob, rng):
    """Blend a sun glare into the crop at a random place: a saturated warm-white core, a soft halo of a warm
    colour (white to orange), sometimes a coloured ring and a few faint rays. Outdoor cameras facing the sun
    see one, and a model never shown one takes it for a face.

    Written here rather than taken from albumentations (RandomSunFlare): that library pulls in
    opencv-python-headless, which clashes with the opencv-contrib-python edge-pose installs.
    """
    if prob <= 0 or rng.random() >= prob:
        return img
    h, w = img.shape[:2]
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    core = rng.uniform(0.02, 0.12) * min(h, w)
    halo = core * rng.uniform(2.5, 6.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d2 = (xx - cx) ** 2 + (yy - cy) ** 2
    glow = np.exp(-d2 / (2 * halo ** 2)) * rng.uniform(0.2, 0.6)
    if rng.random() < 0.5:  # a lens-flare ring around the sun
        radius, width = halo * rng.uniform(0.4, 1.0), max(1.0, core * rng.uniform(0.3, 1.0))
        glow += np.exp(-(np.sqrt(d2) - radius) ** 2 / (2 * width ** 2)) * rng.uniform(0.3, 0.7)
    rays = np.zeros((h, w), np.float32)
    for angle in rng.uniform(0, np.pi, size=int(rng.integers(0, 4))):
        dx, dy = np.cos(angle) * 2 * max(h, w), np.sin(angle) * 2 * max(h, w)
        cv2.line(rays, (int(cx - dx), int(cy - dy)), (int(cx + dx), int(cy + dy)), 1.0, max(1, int(core / 3)))
    if rays.any():
        glow += cv2.GaussianBlur(rays, (0, 0), max(1.0, core / 4)) * np.exp(-d2 / (2 * (3 * halo) ** 2)) * 0.5
    # colours are RGB (training crops are RGB)
    halo_colour = np.array([255.0, rng.uniform(110, 240), rng.uniform(40, 200)], np.float32)
    core_colour = np.array([255.0, rng.uniform(225, 255), rng.uniform(190, 255)], np.float32)
    out = img.astype(np.float32)
    for alpha, colour in ((glow, halo_colour), (np.exp(-d2 / (2 * core ** 2)) * 1.6, core_colour)):
        alpha = np.clip(alpha, 0.0, 1.0)[:, :, None]
        out = out * (1.0 - alpha) + colour * alpha
    return np.clip(out, 0, 255).astype(np.uint8)

"""Copy-paste of real people: persons with a segmentation polygon are cut out of their images once, and one is
pasted beside the person of a training crop (augment.paste_prob), a real distractor and occluder as in crowds.

The crop's own person sits in its middle (top-down training), so a pasted person is centred off to one side and
may cover part of it; the crop's targets do not change (COCO labels occluded joints too).
"""
from __future__ import annotations

import warnings

import cv2
import numpy as np
from pycocotools import mask as mask_utils

MIN_HEIGHT = 64  # px in the cached image: smaller people would be blown up into a blur
HEIGHT = (0.5, 1.1)  # pasted height as a fraction of the crop's height
OFFSET = (0.3, 0.7)  # horizontal distance of the pasted centre from the crop's centre, fraction of its width


def image_cutouts(img, anns, scale, min_height=MIN_HEIGHT):
    """(RGB patch uint8, alpha float32 in [0, 1]) of every non-crowd person in `anns` (COCO annotations of this
    image) that has a polygon segmentation and is at least `min_height` px tall in `img`, which is the original
    image resized by `scale`."""
    h, w = img.shape[:2]
    out = []
    for a in anns:
        seg = a.get("segmentation")
        if a.get("iscrowd", 0) or not isinstance(seg, list) or not seg:
            continue
        polys = [list(np.asarray(p, np.float64) * scale) for p in seg if len(p) >= 6]
        if not polys:
            continue
        with warnings.catch_warnings():  # pycocotools' decode under NumPy 2: a DeprecationWarning per call
            warnings.simplefilter("ignore", DeprecationWarning)
            mask = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, h, w)))
        ys, xs = np.nonzero(mask)
        if not len(ys) or ys.max() - ys.min() + 1 < min_height:
            continue
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        out.append((img[y0:y1, x0:x1].copy(), mask[y0:y1, x0:x1].astype(np.float32)))
    return out


def placement(crop_shape, cutout_shape, rng):
    """(x0, y0, width, height) of a pasted person in a crop: its height a random share HEIGHT of the crop's, its
    centre OFFSET of the crop's width left or right of the middle and within a quarter of the height of it."""
    h, w = crop_shape[:2]
    ph = max(2, int(round(h * rng.uniform(*HEIGHT))))
    pw = max(2, int(round(cutout_shape[1] * ph / cutout_shape[0])))
    side = 1.0 if rng.random() < 0.5 else -1.0
    cx = w / 2.0 + side * w * rng.uniform(*OFFSET)
    cy = h / 2.0 + h * rng.uniform(-0.25, 0.25)
    return int(round(cx - pw / 2.0)), int(round(cy - ph / 2.0)), pw, ph


def paste_person(crop, cutouts, prob, rng):
    """With probability `prob`, a random cutout (mirrored half the time) alpha-blended into the crop at a
    `placement`; no random draw at all when prob is 0 or there are no cutouts."""
    if prob <= 0 or not cutouts or rng.random() >= prob:
        return crop
    rgb, alpha = cutouts[int(rng.integers(len(cutouts)))]
    x0, y0, pw, ph = placement(crop.shape, rgb.shape, rng)
    rgb = cv2.resize(rgb, (pw, ph), interpolation=cv2.INTER_LINEAR)
    alpha = cv2.resize(alpha, (pw, ph), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        rgb, alpha = rgb[:, ::-1], alpha[:, ::-1]
    h, w = crop.shape[:2]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + pw, w), min(y0 + ph, h)
    if cx1 <= cx0 or cy1 <= cy0:
        return crop
    a = alpha[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0, None]
    out = crop.copy()
    region = out[cy0:cy1, cx0:cx1].astype(np.float32)
    region = region * (1.0 - a) + rgb[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0].astype(np.float32) * a
    out[cy0:cy1, cx0:cx1] = np.clip(region + 0.5, 0, 255).astype(np.uint8)
    return out

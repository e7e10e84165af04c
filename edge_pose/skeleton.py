"""COCO-17 keypoint definitions: the one place for names, limbs, flip pairs and OKS sigmas."""
import numpy as np

KEYPOINT_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)

# limbs as 0-based index pairs (COCO's 1-based skeleton list, minus one)
LIMBS = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
    (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)

FLIP_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))


def _flip_index():
    idx = list(range(NUM_KEYPOINTS))
    for a, b in FLIP_PAIRS:
        idx[a], idx[b] = b, a
    return tuple(idx)


# keypoint k of a horizontally flipped image is keypoint FLIP_INDEX[k] of the original
FLIP_INDEX = _flip_index()

# COCO OKS per-keypoint sigmas (as in pycocotools)
OKS_SIGMAS = np.array(
    [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]
) / 10.0

FACE = (0, 1, 2, 3, 4)
UPPER_BODY = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
LOWER_BODY = (11, 12, 13, 14, 15, 16)

# side of each keypoint: 0 centre, 1 left, 2 right (used for colouring)
SIDE = tuple(0 if i == 0 else (1 if n.startswith("left") else 2) for i, n in enumerate(KEYPOINT_NAMES))

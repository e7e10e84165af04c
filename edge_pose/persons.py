"""Where person boxes come from: the whole frame, windows over it, a person detector, or each person's own
pose in the last frame.

A person source has two steps around the pose model:

    boxes = source.propose(frame, source.people)     # (M, 4) float [x, y, w, h] to estimate poses in
    people = pose_fn(frame, boxes)                   # e.g. a PoseEstimator: person dicts, one per box
    people = source.update(people, frame, pose_fn)   # keep, drop, de-duplicate, give ids; remembered
                                                     # (pose_fn: to look again at new people, optional)

or in one call `people = source(frame, pose_fn)`. A person is a dict {"box": [x, y, w, h], "score": float,
"keypoints": (17, 3) x, y, score, "id": int}; `score` is the mean of the 17 keypoint scores.

- `FullFrame`: one person, the whole frame (a webcam user filling the picture).
- `WindowScan`: the full frame plus overlapping windows of the model's aspect ratio at a few scales; the
  pose model itself tells, by its keypoint scores, which windows hold a person. Slow (one crop per window)
  and blind to small people: an acquisition step, not a detector.
- `FromKeypoints`: BlazePose-style tracking. The box of a person in frame t+1 is the box around all its
  keypoints in frame t (as BlazePose takes its ROI from all predicted landmarks: low-scoring joints are still
  roughly placed, and a box from the confident ones only collapses onto the head when the legs score low),
  enlarged. A person whose mean keypoint score falls below `min_score`, or with fewer than `min_keypoints`
  confident keypoints, is dropped. While nobody is tracked, and every `reacquire_every` frames, an
  acquisition source (WindowScan by default) proposes more boxes; a new person is kept only if it is seen
  again in the box of its own keypoints with the same pose (`confirm`), does not repeat a tracked one, and
  has its face within MAX_HEAD_REACH trunks of its shoulders (`head_reach`).
- `DetectorSource`: boxes from a person detector (edge_pose.detectors: HOG, or a YOLO-layout ONNX). Mode
  "detector" is FromKeypoints with it as acquisition, re-run every N frames and after a person is lost.

Ids given here (`id`) only follow a person while its box is carried; stable ids across losses come from
track.Tracker, run after the person source.
"""
from __future__ import annotations

import math

import numpy as np

from edge_pose.preprocess import BOX_ENLARGE, INPUT_SIZE
from edge_pose.skeleton import FACE, NUM_KEYPOINTS, OKS_SIGMAS

MODEL_ASPECT = INPUT_SIZE[0] / float(INPUT_SIZE[1])  # width / height of a crop
# a new person whose face is further than this from its shoulders, in trunks (head_reach), is not a person
MAX_HEAD_REACH = 3.0


def frame_box(frame):
    """[x, y, w, h] of the whole frame (an image array or a (h, w) shape)."""
    h, w = (frame.shape[:2] if hasattr(frame, "shape") else frame[:2])
    return np.array([0.0, 0.0, float(w), float(h)])


def keypoints_array(people):
    """(P, 17, 3) float64 array of the people's keypoints."""
    if not people:
        return np.zeros((0, NUM_KEYPOINTS, 3))
    return np.stack([np.asarray(p["keypoints"], dtype=np.float64).reshape(NUM_KEYPOINTS, 3) for p in people])


def keypoint_boxes(keypoints, threshold=0.3, min_keypoints=4, enlarge=1.2):
    """Boxes around confident keypoints: (P, 17, 3) -> (boxes (P, 4) [x, y, w, h], valid (P,) bool).

    The tight box of keypoints with score >= threshold, enlarged `enlarge` times about its centre (the crop
    adds preprocess.BOX_ENLARGE on top, as for a detector's box). A person with fewer than min_keypoints
    confident keypoints is not valid (its box is all zeros).
    """
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, NUM_KEYPOINTS, 3)
    conf = kp[:, :, 2] >= threshold
    valid = conf.sum(axis=1) >= max(1, int(min_keypoints))
    xy = kp[:, :, :2]
    lo = np.where(conf[:, :, None], xy, np.inf).min(axis=1)
    hi = np.where(conf[:, :, None], xy, -np.inf).max(axis=1)
    lo = np.where(valid[:, None], lo, 0.0)
    hi = np.where(valid[:, None], hi, 0.0)
    center = 0.5 * (lo + hi)
    size = (hi - lo) * enlarge
    boxes = np.concatenate([center - 0.5 * size, size], axis=1)
    return np.where(valid[:, None], boxes, 0.0), valid


def _intersections(a, b):
    """(n, 4) and (m, 4) [x, y, w, h] boxes as float arrays, and their pairwise intersection areas (n, m)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
    y1 = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
    return a, b, np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)


def box_iou(a, b):
    """Pairwise IoU of [x, y, w, h] boxes: (n, 4) x (m, 4) -> (n, m)."""
    a, b, inter = _intersections(a, b)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def box_coverage(a, b):
    """Share of each box b covered by each box a: (n, 4) x (m, 4) -> (n, m) (pycocotools' iou with iscrowd)."""
    a, b, inter = _intersections(a, b)
    area = (b[:, 2] * b[:, 3])[None, :]
    return np.where(area > 0, inter / np.where(area > 0, area, 1.0), 0.0)


def pose_similarity(a, b, threshold=0.3):
    """Pairwise OKS-style similarity of poses: (n, 17, 3) x (m, 17, 3) -> (n, m) in [0, 1].

    Averaged over keypoints confident (>= threshold) in both poses, with the area of the larger of the
    two poses' keypoint boxes as scale; 0 where the poses share no confident keypoint.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, NUM_KEYPOINTS, 3)
    b = np.asarray(b, dtype=np.float64).reshape(-1, NUM_KEYPOINTS, 3)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    box_a, _ = keypoint_boxes(a, threshold, 1, 1.0)
    box_b, _ = keypoint_boxes(b, threshold, 1, 1.0)
    area = np.maximum((box_a[:, 2] * box_a[:, 3])[:, None], (box_b[:, 2] * box_b[:, 3])[None, :])
    d2 = ((a[:, None, :, :2] - b[None, :, :, :2]) ** 2).sum(axis=3)  # (n, m, 17)
    var = (2.0 * OKS_SIGMAS) ** 2
    e = np.exp(-d2 / (2.0 * np.maximum(area, 1.0)[:, :, None] * var))
    both = (a[:, None, :, 2] >= threshold) & (b[None, :, :, 2] >= threshold)
    n = both.sum(axis=2)
    return np.where(n > 0, (e * both).sum(axis=2) / np.maximum(n, 1), 0.0)


def head_reach(keypoints, threshold=0.3, trunk_threshold=None):
    """How far each pose's head is from its shoulders, in units of its trunk: (P, 17, 3) -> (P,).

    The distance from the mean of the confident (>= threshold) face keypoints to the midpoint of the
    shoulders, over the largest of shoulder width, hip width and torso length (shoulder midpoint to hip
    midpoint); NaN where no face keypoint is confident or a shoulder or hip scores under trunk_threshold
    (default: threshold; 0 takes them wherever the model puts them, as a pose model places every joint).
    On the ground truth of the COCO and PFG persons in ../shared/data with those joints labelled the largest
    is 0.67 (a head stays close to the shoulders at any view; LSPET's athletes, with their head top in the
    nose's place, 2.91); a pose whose face is put far up in the background scores several times that.
    """
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, NUM_KEYPOINTS, 3)
    conf = kp[:, :, 2] >= threshold
    face = conf[:, list(FACE)]
    head = (kp[:, list(FACE), :2] * face[:, :, None]).sum(axis=1) / np.maximum(face.sum(axis=1), 1)[:, None]
    shoulders, hips = kp[:, [5, 6], :2], kp[:, [11, 12], :2]
    trunk = np.stack([np.linalg.norm(shoulders[:, 0] - shoulders[:, 1], axis=1),
                      np.linalg.norm(hips[:, 0] - hips[:, 1], axis=1),
                      np.linalg.norm(shoulders.mean(axis=1) - hips.mean(axis=1), axis=1)], axis=1).max(axis=1)
    reach = np.linalg.norm(head - shoulders.mean(axis=1), axis=1) / np.maximum(trunk, 1e-6)
    trunk_threshold = threshold if trunk_threshold is None else trunk_threshold
    judged = face.any(axis=1) & (kp[:, [5, 6, 11, 12], 2] >= trunk_threshold).all(axis=1)
    return np.where(judged, reach, np.nan)


def _model_window(box):
    """A proposal [x, y, w, h] whose crop (model aspect, enlarged BOX_ENLARGE times) is exactly `box`."""
    x, y, w, h = box
    return [x + 0.5 * w * (1 - 1 / BOX_ENLARGE), y + 0.5 * h * (1 - 1 / BOX_ENLARGE), w / BOX_ENLARGE, h / BOX_ENLARGE]


def _fitted_height(boxes):
    """Height of each box once fitted to the model's aspect ratio (the crop's scale, up to BOX_ENLARGE)."""
    return np.maximum(boxes[:, 3], boxes[:, 2] / MODEL_ASPECT)


def carry_boxes(people, shape, threshold=0.3, min_keypoints=4, enlarge=1.2, min_scale=None):
    """Boxes to look for `people` in the next frame (or again in this one): their keypoint boxes, enlarged,
    centres kept inside the frame. Returns (boxes (M, 4), the M people that have one).

    min_scale: a box may not shrink below this fraction of the person's current "box" (at the model's aspect
    ratio). Without it, a person whose legs score low gets an upper-body box, then a head box, then is
    lost; people do not shrink by 20 % from one frame to the next.
    """
    if not people:
        return np.zeros((0, 4)), []
    boxes, valid = keypoint_boxes(keypoints_array(people), threshold, min_keypoints, enlarge)
    if min_scale:
        prev = np.asarray([p["box"] for p in people], dtype=np.float64).reshape(-1, 4)
        grow = np.maximum(1.0, min_scale * _fitted_height(prev) / np.maximum(_fitted_height(boxes), 1e-6))
        centre = boxes[:, :2] + 0.5 * boxes[:, 2:]
        size = boxes[:, 2:] * grow[:, None]
        boxes = np.concatenate([centre - 0.5 * size, size], axis=1)
    h, w = shape[:2]
    cx = np.clip(boxes[:, 0] + 0.5 * boxes[:, 2], 0, w - 1)
    cy = np.clip(boxes[:, 1] + 0.5 * boxes[:, 3], 0, h - 1)
    boxes = np.stack([cx - 0.5 * boxes[:, 2], cy - 0.5 * boxes[:, 3], boxes[:, 2], boxes[:, 3]], axis=1)
    keep = np.flatnonzero(valid & (boxes[:, 2] > 1) & (boxes[:, 3] > 1))
    return boxes[keep], [people[i] for i in keep]


def confirm(frame, people, pose_fn, agree=0.5, min_score=0.2, threshold=0.3, min_keypoints=4, enlarge=1.2):
    """Re-estimate `people` in the boxes of their own keypoints (one batched call) and keep the new poses
    that agree with the old ones (pose similarity >= agree) and score >= min_score.

    A real person looks the same in two different crops; a pose hallucinated on background does not
    (measured on the sample clip: similarity 0.5-0.98 for people, under 0.05 for background windows).
    """
    boxes, owners = carry_boxes(people, frame.shape, threshold, min_keypoints, enlarge)
    if not len(boxes):
        return []
    again = pose_fn(frame, boxes)
    sim = np.diag(pose_similarity(keypoints_array(owners), keypoints_array(again), threshold))
    return [p for p, s in zip(again, sim) if s >= agree and p["score"] >= min_score]


class PersonSource:
    """Base of person sources. Subclasses implement `propose`; `update` here keeps everyone and numbers them
    1, 2, ... in each frame (no tracking)."""

    name = "base"

    def __init__(self):
        self.people = []

    def propose(self, frame, previous=()):
        """Boxes (M, 4) float [x, y, w, h] to estimate poses in, for this frame."""
        raise NotImplementedError

    def update(self, people, frame):
        """The people estimated in the proposed boxes -> the people kept for this frame (remembered)."""
        for i, person in enumerate(people):
            person["id"] = i + 1
        self.people = list(people)
        return self.people

    def reset(self):
        """Forget the people of earlier frames (a new video)."""
        self.people = []

    def __call__(self, frame, pose_fn):
        """One frame: propose, estimate with pose_fn(frame, boxes) -> person dicts, update."""
        boxes = self.propose(frame, self.people)
        return self.update(pose_fn(frame, boxes) if len(boxes) else [], frame)


class FullFrame(PersonSource):
    """One person: the whole frame (always kept, id 1)."""

    name = "full-frame"

    def propose(self, frame, previous=()):
        return frame_box(frame)[None, :]


class SelectingSource(PersonSource):
    """Base of sources whose boxes may hold anyone or no one (windows, detections). `update` keeps the poses
    with a mean keypoint score >= min_score, best first, dropping those that repeat a kept pose (pose
    similarity > `same_pose`, or IoU of their keypoint boxes > `same_box`) and those whose head is more than
    `max_head_reach` trunks from their shoulders (`head_reach`; 0: no check); with a pose_fn (as in
    `__call__`), only those whose pose is found again in the box of their own keypoints (similarity >=
    `confirm`; 0: no check)."""

    def __init__(self, min_score=0.2, same_pose=0.3, same_box=0.5, keypoint_threshold=0.3, confirm=0.5,
                 max_head_reach=MAX_HEAD_REACH):
        super().__init__()
        self.max_head_reach = float(max_head_reach or 0.0)
        self.confirm = float(confirm or 0.0)
        self.min_score = float(min_score)
        self.same_pose = float(same_pose)
        self.same_box = float(same_box)
        self.keypoint_threshold = float(keypoint_threshold)

    def select(self, people, kept=()):
        """People above min_score that do not repeat a pose in `kept` or a better one among themselves."""
        kept = list(kept)
        cands = [p for p in people if p["score"] >= self.min_score]
        if cands and self.max_head_reach:
            # the trunk wherever the model puts it: the ghost seen had its shoulders and hips scored 0.17-0.24
            reach = head_reach(keypoints_array(cands), self.keypoint_threshold, 0.0)
            cands = [p for p, r in zip(cands, reach) if not r > self.max_head_reach]  # NaN: not judged, kept
        cands.sort(key=lambda p: -p["score"])
        if not cands:
            return []
        kp = keypoints_array(cands)
        boxes, _ = keypoint_boxes(kp, self.keypoint_threshold, 1, 1.0)
        sim = pose_similarity(kp, kp, self.keypoint_threshold)
        iou = box_iou(boxes, boxes)
        if kept:
            kkp = keypoints_array(kept)
            kboxes, _ = keypoint_boxes(kkp, self.keypoint_threshold, 1, 1.0)
            dup_kept = ((pose_similarity(kp, kkp, self.keypoint_threshold) > self.same_pose)
                        | (box_iou(boxes, kboxes) > self.same_box)).any(axis=1)
        else:
            dup_kept = np.zeros(len(cands), bool)
        same = (sim > self.same_pose) | (iou > self.same_box)
        chosen = []
        for i in range(len(cands)):  # greedy NMS over a handful of candidates
            if not dup_kept[i] and not any(same[i, j] for j in chosen):
                chosen.append(i)
        return [cands[i] for i in chosen]

    def update(self, people, frame, pose_fn=None):
        kept = self.select(people)
        if kept and pose_fn is not None and self.confirm:
            kept = self.select(confirm(frame, kept, pose_fn, self.confirm, self.min_score, self.keypoint_threshold))
        return super().update(kept, frame)

    def __call__(self, frame, pose_fn):
        boxes = self.propose(frame, self.people)
        return self.update(pose_fn(frame, boxes) if len(boxes) else [], frame, pose_fn)


class WindowScan(SelectingSource):
    """The full frame plus overlapping windows of the model's aspect ratio at `scales` (1.0: the tallest
    such window that fits in the frame), `overlap` between neighbours; poses kept as in SelectingSource."""

    name = "windows"

    def __init__(self, scales=(1.0, 0.6), overlap=0.5, min_score=0.2, same_pose=0.3, same_box=0.5,
                 keypoint_threshold=0.3, confirm=0.5, max_head_reach=MAX_HEAD_REACH):
        super().__init__(min_score, same_pose, same_box, keypoint_threshold, confirm, max_head_reach)
        self.scales = tuple(float(s) for s in scales)
        self.overlap = float(overlap)

    def windows(self, shape):
        """Window crops [x, y, w, h] (before the 1/BOX_ENLARGE shrink) for a frame of `shape`."""
        h, w = shape[:2]
        base_h = min(float(h), w / MODEL_ASPECT)
        out = []
        for s in self.scales:
            wh, ww = s * base_h, s * base_h * MODEL_ASPECT
            xs = self._positions(w, ww)
            ys = self._positions(h, wh)
            out.extend([x, y, ww, wh] for y in ys for x in xs)
        return out

    def _positions(self, length, window):
        if window >= length - 1:
            return [0.5 * (length - window)]
        step = window * (1.0 - self.overlap)
        n = int(math.ceil((length - window) / max(step, 1.0))) + 1
        return list(np.linspace(0.0, length - window, n))

    def propose(self, frame, previous=()):
        boxes = [frame_box(frame)] + [_model_window(b) for b in self.windows(frame.shape)]
        boxes = np.round(np.asarray(boxes, dtype=np.float64), 1)
        _, first = np.unique(boxes, axis=0, return_index=True)
        return boxes[np.sort(first)]


class DetectorSource(SelectingSource):
    """Boxes from a person detector (`detectors.make_detector`: "hog" or a YOLO-layout .onnx; options go to
    it); poses kept as in SelectingSource.

    As FromKeypoints' acquisition source, a detection of a person already tracked is estimated again and then
    dropped as a repeat (a detector's box and a keypoint box differ too much in extent to tell beforehand).
    `scores` holds the last detection scores (best first, at most max_detections), `ms` the detector's time.
    """

    name = "detector"

    def __init__(self, detector="hog", min_score=0.2, same_pose=0.3, same_box=0.5, keypoint_threshold=0.3,
                 confirm=0.5, max_detections=20, max_head_reach=MAX_HEAD_REACH, **detector_options):
        from edge_pose.detectors import make_detector

        super().__init__(min_score, same_pose, same_box, keypoint_threshold, confirm, max_head_reach)
        self.detector = make_detector(detector, **detector_options)
        if self.detector is None:
            raise ValueError("the detector person source needs a detector (hog or a .onnx path), not none")
        self.max_detections = int(max_detections)
        self.scores = np.zeros(0)

    @property
    def ms(self):
        return self.detector.ms

    def propose(self, frame, previous=()):
        boxes, scores = self.detector(frame)
        self.scores = np.asarray(scores, dtype=np.float64).reshape(-1)[:self.max_detections]
        return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[:self.max_detections]


class FromKeypoints(PersonSource):
    """Boxes carried from the previous frame's keypoints (BlazePose-style), with an acquisition source.

    min_score: a tracked person whose mean keypoint score falls below it is dropped (lost), as is one with
    fewer than min_keypoints keypoints scoring >= keypoint_threshold. new_score: the least score of a new
    person (higher than min_score: hysteresis, as trackers start tracks on stronger evidence than they keep them).
    box_threshold / enlarge / min_scale: the carried box is the box of the keypoints scoring >= box_threshold
    (0: all of them), enlarged `enlarge` times, and at least min_scale times the size of the person's
    current box.
    acquire: the source proposing boxes while nobody is tracked and every `reacquire_every` frames
    (0: only while nobody is tracked); default WindowScan(). confirm_new: a new person is re-estimated in
    the box of its own keypoints in the same frame and kept when both poses agree at least this much (pose
    similarity, 0..1; 0 turns the check off). max_persons: at most that many people (None: no cap).
    reacquire_on_loss: also acquire in the frame after a tracked person was lost (as MediaPipe and RTMPose
    re-run their detector when a track is lost).
    """

    name = "keypoints"

    def __init__(self, acquire=None, min_score=0.2, new_score=0.25, keypoint_threshold=0.3, min_keypoints=4,
                 enlarge=1.2, reacquire_every=15, max_persons=None, confirm_new=0.5, min_scale=0.8,
                 box_threshold=0.0, reacquire_on_loss=False):
        super().__init__()
        # the acquisition source only proposes and selects here: confirmation is done below, once
        self.acquire = WindowScan(min_score=new_score, confirm=0) if acquire is None else acquire
        self.min_score = float(min_score)
        self.new_score = max(float(new_score), self.min_score)
        self.keypoint_threshold = float(keypoint_threshold)
        self.min_keypoints = int(min_keypoints)
        self.enlarge = float(enlarge)
        self.reacquire_every = int(reacquire_every or 0)
        self.max_persons = None if max_persons is None else int(max_persons)
        self.confirm_new = float(confirm_new or 0.0)
        self.min_scale = float(min_scale or 0.0)
        self.box_threshold = float(box_threshold)
        self.reacquire_on_loss = bool(reacquire_on_loss)
        self.reset()

    def reset(self):
        self.people = []
        self._next_id = 1
        self._since_acquire = 0
        self._carried_ids = []
        self._lost = False
        self.acquired = False
        if hasattr(self, "acquire"):
            self.acquire.reset()

    def carried_boxes(self, people, shape):
        """Boxes for the next frame from `people`'s keypoints, with the people they belong to."""
        boxes, kept = carry_boxes(people, shape, self.box_threshold, 1, self.enlarge, self.min_scale)
        if not kept:
            return boxes, kept
        _, valid = keypoint_boxes(keypoints_array(kept), self.keypoint_threshold, self.min_keypoints)
        return boxes[valid], [p for p, ok in zip(kept, valid) if ok]

    def _acquiring(self, n_tracked):
        if n_tracked == 0:
            return True
        if self.max_persons is not None and n_tracked >= self.max_persons:
            return False
        if self.reacquire_on_loss and self._lost:
            return True
        return self.reacquire_every > 0 and self._since_acquire >= self.reacquire_every

    def propose(self, frame, previous=()):
        boxes, tracked = self.carried_boxes(list(previous), frame.shape)
        self._carried_ids = [p.get("id") for p in tracked]
        self._since_acquire += 1
        self.acquired = self._acquiring(len(tracked))
        if self.acquired:
            self._since_acquire = 0
            extra = np.asarray(self.acquire.propose(frame, tracked), dtype=np.float64).reshape(-1, 4)
            boxes = np.concatenate([boxes, extra])
        return boxes

    def update(self, people, frame, pose_fn=None):
        """Keep the carried people still alive (one per person), add new people from acquisition, give ids.

        With pose_fn (and confirm_new), each new person is re-estimated in the box of its own keypoints and
        kept only if the two poses agree (pose similarity >= confirm_new): a real person looks the same in
        two different crops, a pose hallucinated on background does not.
        """
        n = len(self._carried_ids)
        carried = []
        for person, pid in zip(people[:n], self._carried_ids):
            person["id"] = pid
            carried.append(person)
        alive = self._alive(carried)
        self._lost = len(alive) < len(self._carried_ids)
        carried = sorted(alive, key=lambda p: -p["score"])
        kept = []  # drop a track that has drifted onto a better-scoring track's person
        for person in carried:
            if not kept or not self._duplicates([person], kept)[0]:
                kept.append(person)
        new = self.acquire.select(people[n:], kept) if len(people) > n else []
        if new and pose_fn is not None and self.confirm_new:
            new = self.acquire.select(confirm(frame, new, pose_fn, self.confirm_new, self.new_score,
                                              self.keypoint_threshold, self.min_keypoints, self.enlarge), kept)
        for person in new:
            person["id"] = None
        kept = kept + new
        if self.max_persons is not None:
            kept = kept[:self.max_persons]
        for person in kept:
            if person["id"] is None:
                person["id"] = self._next_id
                self._next_id += 1
        kept.sort(key=lambda p: p["id"])
        self.people = kept
        return kept

    def _alive(self, people):
        if not people:
            return []
        _, valid = keypoint_boxes(keypoints_array(people), self.keypoint_threshold, self.min_keypoints)
        return [p for p, ok in zip(people, valid) if ok and p["score"] >= self.min_score]

    def _duplicates(self, people, kept):
        a, b = keypoints_array(people), keypoints_array(kept)
        ba, _ = keypoint_boxes(a, self.keypoint_threshold, 1, 1.0)
        bb, _ = keypoint_boxes(b, self.keypoint_threshold, 1, 1.0)
        return ((pose_similarity(a, b, self.keypoint_threshold) > self.acquire.same_pose)
                | (box_iou(ba, bb) > self.acquire.same_box)).any(axis=1)

    def __call__(self, frame, pose_fn):
        boxes = self.propose(frame, self.people)
        return self.update(pose_fn(frame, boxes) if len(boxes) else [], frame, pose_fn)


MODES = ("keypoints", "full-frame", "windows", "detector")


def detector_tracking(detector="hog", every=15, new_score=0.25, detector_options=None, **options):
    """FromKeypoints with a person detector as its acquisition: the detector runs while nobody is tracked,
    every `every` frames and in the frame after a person was lost; between, each person is followed by the
    box of its own keypoints. detector: "hog" or a YOLO-layout .onnx path (see detectors.make_detector)."""
    acquire = DetectorSource(detector, min_score=new_score, confirm=0, **dict(detector_options or {}))
    options.setdefault("reacquire_on_loss", True)
    return FromKeypoints(acquire=acquire, new_score=new_score, reacquire_every=every, **options)


def make_person_source(mode="keypoints", **options):
    """A person source by name: "keypoints" (FromKeypoints, window-scan acquisition), "full-frame"
    (FullFrame), "windows" (WindowScan), "detector" (FromKeypoints with a detector's acquisition: options
    detector="hog" or a .onnx path, every=15 frames; see detector_tracking)."""
    if mode == "keypoints":
        return FromKeypoints(**options)
    if mode == "detector":
        return detector_tracking(**options)
    if mode == "full-frame":
        return FullFrame(**options)
    if mode == "windows":
        return WindowScan(**options)
    raise ValueError("unknown person source %r (choose from %s)" % (mode, ", ".join(MODES)))

"""Track ids across frames: each person keeps a `track_id` while it stays in view.

    tracker = Tracker(TrackerParams())
    people = tracker.update(people, frame_index)    # sets p["track_id"] on each person dict
    tracker.removed                                 # ids that ended in that update (forget their state)

Each update matches the people of the frame to the tracks in two rounds, each a minimum-cost assignment
(scipy's Hungarian, `assign`) with gating:
1. live tracks (matched within the last `max_misses` updates) by pose: cost 1 - OKS-style pose similarity to
   the track's last pose ("oks"), 1 - IoU of keypoint boxes ("iou"), or their mean ("both"); pairs costing
   more than `max_cost` are never matched;
2. people still unmatched against tracks that were given an id but missed in this frame or earlier, by
   position (re-identification): distance from where the track is predicted to be (a straight line fitted to
   its last box centres, extrapolated for up to `reid_motion` updates: a running person lost for a few frames
   is found ahead of where it was last seen) / the track's size (the median over its last matches: a pose
   that collapses onto part of the body for a frame or two does not shrink the gate), allowed up to
   `reid_distance` plus `reid_growth` per update since the track was last seen (people move while unseen).
A person left over starts a tentative track, reported with `track_id` None until it has been matched
`min_hits` times in a row (a tentative track is dropped at its first miss); then it gets the next id.
A track with an id that is not matched stops being matched by pose after `max_misses` updates, and ends
(`removed`) after `max_misses + reid_frames` updates without a match: until then, a person coming back near
where it was seen takes its id back. Misses are counted in updates (processed frames), not in time.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from edge_pose.persons import box_iou, keypoint_boxes, keypoints_array, pose_similarity

COSTS = ("oks", "iou", "both")
MOTION_HISTORY = 10  # matches a track's motion is fitted to


@dataclass
class TrackerParams:
    """Tracker settings (the `tracking:` section of the config)."""

    cost: str = "oks"  # "oks" (1 - pose similarity), "iou" (1 - IoU of keypoint boxes) or "both" (their mean)
    max_cost: float = 0.9  # pose round gate: pairs costing more are not matched
    min_hits: int = 3  # matches in a row before a new track gets an id (1: at once)
    max_misses: int = 5  # updates a track with an id stays matched by pose while unseen
    reid_frames: int = 45  # further updates an unseen track keeps its id for re-identification by position
    reid_distance: float = 0.5  # position round gate: centre distance in track sizes ...
    reid_growth: float = 0.05  # ... plus this much per update since the track was last seen
    reid_motion: int = 10  # updates over which a lost track's position is extrapolated on its path (0: none)
    keypoint_threshold: float = 0.3  # keypoints scoring at least this count for pose similarity
    box_threshold: float = 0.0  # a person's box is the box of its keypoints scoring at least this (0: all 17,
    # which the model places roughly even when unsure: steadier than the few confident ones)

    def __post_init__(self):
        if self.cost not in COSTS:
            raise ValueError("tracking cost must be one of %s, not %r" % (", ".join(COSTS), self.cost))
        if self.min_hits < 1 or self.max_misses < 0 or self.reid_frames < 0 or self.reid_motion < 0:
            raise ValueError("tracking: min_hits must be >= 1, max_misses, reid_frames and reid_motion >= 0")


class Track:
    """One person followed across frames: `id` (None while tentative), last pose, box (keypoint box, [x, y, w,
    h]), `size` (its larger side), `hits` (matches in a row), `misses` (updates since the last match),
    `last_seen` (the frame or time value of the last match), `path` (update number, box centre and size of the
    last MOTION_HISTORY matches: where `predict` extrapolates from, and `typical_size`)."""

    __slots__ = ("id", "keypoints", "box", "size", "hits", "misses", "last_seen", "path")

    def __init__(self, keypoints, box, frame, update=0):
        self.id = None
        self.hits, self.misses = 1, 0
        self.path = deque(maxlen=MOTION_HISTORY)
        self.see(keypoints, box, frame, update)

    def see(self, keypoints, box, frame, update=0):
        """A match in the tracker's update number `update`: the new pose and box."""
        self.keypoints = keypoints
        self.box = np.asarray(box, dtype=np.float64)
        self.size = float(max(box[2], box[3], 1.0))
        self.last_seen = frame
        self.path.append((float(update),) + tuple(self.centre) + (self.size,))

    @property
    def centre(self):
        return self.box[:2] + 0.5 * self.box[2:]

    def motion(self):
        """(centre, velocity per update) of the least-squares line through `path` at its last update: steadier
        than the last box, whose centre jumps with the pose. Fewer than 3 points: the last centre, no motion."""
        if len(self.path) < 3:
            return self.centre, np.zeros(2)
        path = np.array(self.path)
        t = path[:, 0] - path[-1, 0]
        velocity, centre = np.polyfit(t, path[:, 1:3], 1)  # one line per coordinate: slopes, then intercepts
        return centre, velocity

    @property
    def typical_size(self):
        """The median of the sizes over `path`: steadier than the last box when the pose flickers."""
        return float(np.median([q[3] for q in self.path]))

    @property
    def velocity(self):
        return self.motion()[1]

    def predict(self, update, horizon):
        """Where the centre is expected in update number `update`, extrapolated for at most `horizon` updates
        past the last match (horizon 0: where it was last seen)."""
        if horizon <= 0:
            return self.centre
        centre, velocity = self.motion()
        return centre + min(max(update - self.path[-1][0], 0.0), horizon) * velocity

    def __repr__(self):
        return "Track(id=%r, hits=%d, misses=%d, box=%s)" % (self.id, self.hits, self.misses,
                                                              np.round(self.box, 1).tolist())


def assign(cost, max_cost):
    """Minimum-total-cost matching of rows to columns (Hungarian, scipy.optimize.linear_sum_assignment)
    among the pairs costing at most max_cost: as many such pairs as possible, then the cheapest.
    Returns (rows, cols) int arrays."""
    from scipy.optimize import linear_sum_assignment

    cost = np.asarray(cost, dtype=np.float64)
    if cost.size == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    allowed = cost <= max_cost
    rows, cols = linear_sum_assignment(np.where(allowed, cost, 1e6 + np.abs(cost[allowed]).sum()))
    ok = allowed[rows, cols]
    return rows[ok], cols[ok]


def person_boxes(people, keypoints, threshold=0.0):
    """[x, y, w, h] of each person's keypoints scoring >= threshold (at least 3), else its "box"."""
    boxes, valid = keypoint_boxes(keypoints, threshold, 3, 1.0)
    for i in np.flatnonzero(~valid):
        boxes[i] = np.asarray(people[i].get("box", (0, 0, 1, 1)), dtype=np.float64)[:4]
    return boxes


class Tracker:
    """Gives the people of successive frames stable `track_id`s (see the module docstring)."""

    def __init__(self, params=None):
        self.params = params if params is not None else TrackerParams()
        import scipy.optimize  # noqa: F401  loaded here, not in the first frame's update (~0.5 s)
        self.reset()

    def reset(self):
        """Forget all tracks (a new video); ids start again at 1."""
        self.tracks = []
        self.removed = []
        self.frame = -1
        self.updates = -1  # number of the current update (0 for the first)
        self._next_id = 1

    def cost(self, tracks, keypoints, boxes):
        """(tracks, people) pose-round cost matrix."""
        p = self.params
        tk = np.stack([t.keypoints for t in tracks])
        tb = np.stack([t.box for t in tracks])
        if p.cost == "oks":
            return 1.0 - pose_similarity(tk, keypoints, p.keypoint_threshold)
        if p.cost == "iou":
            return 1.0 - box_iou(tb, boxes)
        return 1.0 - 0.5 * (pose_similarity(tk, keypoints, p.keypoint_threshold) + box_iou(tb, boxes))

    def reid_cost(self, tracks, boxes):
        """(tracks, people) position-round cost: centre distance over each track's gate (match when <= 1)."""
        p = self.params
        gap = np.array([t.misses + 1 for t in tracks], dtype=np.float64)
        tc = np.stack([t.predict(self.updates, p.reid_motion) for t in tracks])
        size = np.array([t.typical_size for t in tracks])
        centres = boxes[:, :2] + 0.5 * boxes[:, 2:]
        dist = np.sqrt(((tc[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2))
        gate = size * (p.reid_distance + p.reid_growth * gap)
        return dist / gate[:, None]

    def update(self, people, frame=None):
        """Match this frame's people to the tracks; sets each person's "track_id" (None while tentative).

        frame: the frame index or time, kept as the tracks' `last_seen` (None: count updates).
        Returns `people` (the same list). `removed` lists the ids that ended in this update.
        """
        p = self.params
        self.frame = self.frame + 1 if frame is None else frame
        self.updates += 1
        self.removed = []
        people = list(people)
        keypoints = keypoints_array(people)
        boxes = person_boxes(people, keypoints, p.box_threshold) if people else np.zeros((0, 4))
        owner = [None] * len(people)  # the track of each person

        live = [t for t in self.tracks if t.misses <= p.max_misses]
        if live and people:
            rows, cols = assign(self.cost(live, keypoints, boxes), p.max_cost)
            for r, c in zip(rows, cols):
                owner[c] = live[r]
        matched = set(id(t) for t in owner if t is not None)
        unseen = [t for t in self.tracks if t.id is not None and id(t) not in matched]
        free = [i for i, t in enumerate(owner) if t is None]
        if unseen and free:
            rows, cols = assign(self.reid_cost(unseen, boxes[free]), 1.0)
            for r, c in zip(rows, cols):
                owner[free[c]] = unseen[r]

        seen = set()
        for i, track in enumerate(owner):
            if track is None:
                track = Track(keypoints[i], boxes[i], self.frame, self.updates)
                self.tracks.append(track)
                owner[i] = track
            else:
                track.hits = track.hits + 1 if track.misses == 0 else 1
                track.misses = 0
                track.see(keypoints[i], boxes[i], self.frame, self.updates)
            if track.id is None and track.hits >= p.min_hits:
                track.id = self._next_id
                self._next_id += 1
            seen.add(id(track))
            people[i]["track_id"] = track.id

        kept = []
        for track in self.tracks:
            if id(track) not in seen:
                track.misses += 1
                if track.id is None:
                    continue  # a tentative track ends at its first miss
                if track.misses > p.max_misses + p.reid_frames:
                    self.removed.append(track.id)
                    continue
            kept.append(track)
        self.tracks = kept
        return people

    @property
    def active_ids(self):
        """Ids of the tracks matched in the last update."""
        return [t.id for t in self.tracks if t.id is not None and t.misses == 0]

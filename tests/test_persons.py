from __future__ import annotations

import numpy as np
import pytest
from _pose_helpers import person_at

from edge_pose.detectors import Detector
from edge_pose.persons import (
    DetectorSource,
    FromKeypoints,
    FullFrame,
    WindowScan,
    box_iou,
    keypoint_boxes,
    make_person_source,
    pose_similarity,
)
from edge_pose.preprocess import box_to_center_scale


class FakeModel:
    """A stand-in for PoseEstimator over a scene of people (centre x, y, height): a crop whose box holds a
    person's centre and is not much larger than them sees that person; any other crop sees nobody."""

    def __init__(self, scene, ghosts=False):
        self.scene = scene  # the test moves people in this list
        self.ghosts = ghosts  # hallucinate a confident pose in large crops that hold nobody
        self.calls = []

    def __call__(self, frame, boxes):
        self.calls.append(len(boxes))
        people = []
        for box in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
            center, size = box_to_center_scale(box)
            kp = np.zeros((17, 3), np.float32)
            kp[:, :2] = center
            kp[:, 2] = 0.05
            if self.ghosts and size[1] >= 500:
                kp = person_at(center[0], center[1], 0.5 * size[1])
            for (x, y, h) in self.scene:
                inside = abs(x - center[0]) < 0.5 * size[0] and abs(y - center[1]) < 0.5 * size[1]
                if inside and size[1] < 3.0 * h:
                    kp = person_at(x, y, h)
                    break
            people.append({"box": [float(v) for v in box], "score": float(kp[:, 2].mean()), "keypoints": kp})
        return people


class FakeDetector(Detector):
    """A person detector over the same scene: one box per person (a HOG-like box, a little loose)."""

    def __init__(self, scene):
        self.scene = scene
        self.calls = 0

    def detect(self, frame):
        self.calls += 1
        boxes = [[x - 0.35 * h, y - 0.55 * h, 0.7 * h, 1.1 * h] for x, y, h in self.scene]
        return np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.linspace(2.0, 1.0, len(boxes))


FRAME = np.zeros((540, 960, 3), np.uint8)


def test_keypoint_boxes():
    kp = person_at(300, 200, 100)[None]
    boxes, valid = keypoint_boxes(kp, threshold=0.3, min_keypoints=4, enlarge=1.0)
    assert valid.tolist() == [True]
    x0, y0 = kp[0, :, :2].min(axis=0)
    x1, y1 = kp[0, :, :2].max(axis=0)
    np.testing.assert_allclose(boxes[0], [x0, y0, x1 - x0, y1 - y0], atol=1e-4)
    big, _ = keypoint_boxes(kp, enlarge=1.5)
    np.testing.assert_allclose(big[0, :2] + big[0, 2:] / 2, boxes[0, :2] + boxes[0, 2:] / 2, atol=1e-4)
    np.testing.assert_allclose(big[0, 2:], 1.5 * boxes[0, 2:], atol=1e-4)
    weak = kp.copy()
    weak[0, 3:, 2] = 0.1  # only 3 confident keypoints
    boxes, valid = keypoint_boxes(weak, threshold=0.3, min_keypoints=4)
    assert valid.tolist() == [False] and not boxes.any()


def test_similarity_and_iou():
    a = person_at(300, 200, 100)[None]
    b = person_at(302, 201, 100)[None]
    far = person_at(700, 200, 100)[None]
    assert pose_similarity(a, a)[0, 0] == pytest.approx(1.0)
    assert pose_similarity(a, b)[0, 0] > 0.9
    assert pose_similarity(a, far)[0, 0] < 0.01
    assert pose_similarity(a, np.zeros((0, 17, 3))).shape == (1, 0)
    assert box_iou([[0, 0, 10, 10]], [[5, 0, 10, 10], [20, 20, 5, 5]]).tolist() == [[pytest.approx(1 / 3), 0.0]]


def test_full_frame():
    src = make_person_source("full-frame")
    assert isinstance(src, FullFrame)
    np.testing.assert_array_equal(src.propose(FRAME), [[0, 0, 960, 540]])
    people = src(FRAME, FakeModel([]))
    assert len(people) == 1 and people[0]["id"] == 1  # the whole frame is always one person


def test_window_scan_covers_the_frame():
    scan = WindowScan(scales=(1.0, 0.6), overlap=0.5)
    wins = np.array(scan.windows(FRAME.shape))
    assert (wins[:, 0] >= -1e-6).all() and (wins[:, 0] + wins[:, 2] <= 960 + 1e-6).all()
    assert (wins[:, 1] >= -1e-6).all() and (wins[:, 1] + wins[:, 3] <= 540 + 1e-6).all()
    np.testing.assert_allclose(wins[:, 2] / wins[:, 3], 0.75)
    # every point of the frame is inside some window of each scale
    for s in (540.0, 0.6 * 540.0):
        at_scale = wins[np.isclose(wins[:, 3], s)]
        xs, ys = np.meshgrid(np.linspace(0, 959, 25), np.linspace(0, 539, 15))
        pts = np.stack([xs.ravel(), ys.ravel()], 1)
        lo, hi = at_scale[None, :, :2], at_scale[None, :, :2] + at_scale[None, :, 2:]
        inside = ((pts[:, None, :] >= lo) & (pts[:, None, :] <= hi)).all(axis=2)
        assert inside.any(axis=1).all()
    boxes = scan.propose(FRAME)
    np.testing.assert_array_equal(boxes[0], [0, 0, 960, 540])
    assert len(boxes) == 1 + len(wins)
    # a portrait frame the model's shape: the scale-1 window is the frame itself (no duplicate proposal)
    portrait = np.zeros((256, 192, 3), np.uint8)
    assert len(WindowScan(scales=(1.0,)).propose(portrait)) == 2


def test_window_scan_finds_each_person_once():
    model = FakeModel([(250, 300, 300), (700, 280, 320)])
    scan = WindowScan()
    people = scan(FRAME, model)
    assert len(people) == 2
    centres = sorted(float(p["keypoints"][:, 0].mean()) for p in people)
    assert centres == pytest.approx([250, 700], abs=1)
    assert sorted(p["id"] for p in people) == [1, 2]


def test_from_keypoints_tracks_drops_and_reacquires():
    scene = [(300, 280, 300)]
    model = FakeModel(scene)
    src = FromKeypoints(reacquire_every=3)
    people = src(FRAME, model)  # frame 0: nobody tracked -> window scan, then one refinement call
    assert [p["id"] for p in people] == [1]
    assert model.calls[0] > 5 and model.calls[1] == 1
    for step in range(1, 3):  # the person walks right; one crop per frame, carried from the keypoints
        scene[0] = (300 + 10 * step, 280, 300)
        people = src(FRAME, model)
        assert [p["id"] for p in people] == [1]
        assert model.calls[-1] == 1
        assert people[0]["keypoints"][:, 0].mean() == pytest.approx(300 + 10 * step, abs=1)
        cx = people[0]["box"][0] + people[0]["box"][2] / 2
        assert cx == pytest.approx(300 + 10 * (step - 1), abs=1)  # box from the previous frame's keypoints
    # a second person appears: found at the next re-acquisition, with a new id; the first keeps its id
    scene.append((750, 280, 300))
    people = src(FRAME, model)
    assert [p["id"] for p in people] == [1, 2]
    assert model.calls[-2] > 5  # re-acquisition frame: carried box + windows in one call
    # both leave: dropped (mean score below min_score), then acquisition runs again and finds nobody
    scene.clear()
    assert src(FRAME, model) == []
    assert src.people == []
    assert src(FRAME, model) == [] and model.calls[-1] > 5
    # someone new: a fresh id
    scene.append((400, 280, 300))
    people = src(FRAME, model)
    assert [p["id"] for p in people] == [3]


def test_new_people_must_look_the_same_in_their_own_box():
    ghosts = FakeModel([], ghosts=True)
    assert len(WindowScan(confirm=0)(FRAME, ghosts)) > 0  # without the check, hallucinations pass
    assert WindowScan()(FRAME, ghosts) == []
    src = FromKeypoints()
    assert src(FRAME, ghosts) == [] and src(FRAME, ghosts) == []
    assert len(FromKeypoints(confirm_new=0)(FRAME, ghosts)) > 0
    real = FakeModel([(300, 280, 300)], ghosts=True)
    people = FromKeypoints()(FRAME, real)
    assert len(people) == 1 and people[0]["keypoints"][:, 0].mean() == pytest.approx(300, abs=1)


def test_from_keypoints_drops_duplicate_tracks():
    src = FromKeypoints()
    same = [{"id": 1, "score": 0.8, "keypoints": person_at(300, 280, 300), "box": [0, 0, 1, 1]},
            {"id": 2, "score": 0.9, "keypoints": person_at(303, 281, 300), "box": [0, 0, 1, 1]}]
    boxes = src.propose(FRAME, same)
    assert len(boxes) == 2 and not src.acquired
    kept = src.update([dict(p) for p in same], FRAME)
    assert [p["id"] for p in kept] == [2]  # the better-scoring of two tracks on one person


def test_detector_source_finds_each_person_once():
    scene = [(250, 300, 300), (700, 280, 320)]
    model = FakeModel(scene)
    src = DetectorSource(FakeDetector(scene))
    people = src(FRAME, model)
    assert sorted(p["id"] for p in people) == [1, 2]
    assert sorted(round(float(p["keypoints"][:, 0].mean())) for p in people) == [250, 700]
    assert model.calls == [2, 2]  # the detections, then each new person again in its own keypoints' box
    assert src.ms >= 0 and len(src.scores) == 2
    with pytest.raises(ValueError, match="needs a detector"):
        DetectorSource("none")


def test_detector_mode_tracks_by_keypoints_between_detections():
    scene = [(300, 280, 300)]
    model, det = FakeModel(scene), FakeDetector(scene)
    src = make_person_source("detector", detector=det, every=4)
    assert isinstance(src, FromKeypoints) and isinstance(src.acquire, DetectorSource)
    assert [p["id"] for p in src(FRAME, model)] == [1] and det.calls == 1
    for step in range(1, 4):  # followed by its keypoints: one crop a frame, no detector
        scene[0] = (300 + 10 * step, 280, 300)
        assert [p["id"] for p in src(FRAME, model)] == [1]
        assert det.calls == 1 and model.calls[-1] == 1
    scene.append((750, 280, 300))  # frame 4: the detector runs again; the tracked person is not repeated
    assert [p["id"] for p in src(FRAME, model)] == [1, 2]
    assert det.calls == 2 and model.calls[-2:] == [3, 1]  # carried box + 2 detections, then the new one again
    del scene[0]  # person 1 leaves: lost, so the detector runs in the very next frame (not 4 frames later)
    assert [p["id"] for p in src(FRAME, model)] == [2] and det.calls == 2
    scene.append((300, 280, 300))
    assert [p["id"] for p in src(FRAME, model)] == [2, 3] and det.calls == 3
    assert [p["id"] for p in src(FRAME, model)] == [2, 3] and det.calls == 3


def test_unknown_person_source():
    with pytest.raises(ValueError, match="keypoints, full-frame, windows"):
        make_person_source("yolo")

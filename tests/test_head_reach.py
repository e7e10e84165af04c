"""persons.head_reach: a new person whose face is far from its shoulders is not a person.

The limit (persons.MAX_HEAD_REACH trunks) is checked against the ground truth of real people in
../shared/data, and a pose with its face moved into the sky is turned away by the person sources."""
from __future__ import annotations

import json

import numpy as np
import pytest
from _pose_helpers import person_at

from edge_pose.persons import MAX_HEAD_REACH, FromKeypoints, WindowScan, head_reach

FRAME = np.zeros((540, 960, 3), np.uint8)


def ground_truth(shared_data, name):
    """(P, 17, 3) keypoints of the annotated persons of one set, labelled joints scoring 1, and the annotations."""
    anns = [a for a in json.loads((shared_data / name / "person_keypoints.json").read_text())["annotations"]
            if a.get("num_keypoints", 0) > 0]
    kp = np.array([a["keypoints"] for a in anns], np.float64).reshape(-1, 17, 3)
    kp[:, :, 2] = kp[:, :, 2] > 0
    return kp, anns


def sky_face(kp, trunks):
    """The same poses with the five face keypoints moved `trunks` trunk lengths straight up."""
    out = kp.copy()
    shoulders, hips = kp[:, [5, 6], :2].mean(axis=1), kp[:, [11, 12], :2].mean(axis=1)
    out[:, :5, 1] -= trunks * np.linalg.norm(shoulders - hips, axis=1)[:, None]
    return out


def test_real_heads_stay_within_a_trunk_of_the_shoulders(shared_data):
    kp = np.concatenate([ground_truth(shared_data, name)[0] for name in ("coco_train", "coco_val_dev", "pfg")])
    reach = head_reach(kp)
    judged = reach[~np.isnan(reach)]
    assert len(judged) >= 250  # those with a face keypoint, both shoulders and both hips labelled
    assert judged.max() < 1.0 < MAX_HEAD_REACH
    assert np.median(judged) > 0.2  # a distance, not a degenerate zero
    # unlabelled joints are not judged
    assert np.isnan(head_reach(np.where(np.arange(17)[None, :, None] == 11, 0.0, kp[:5]))).all()


def test_lspet_head_tops_of_athletes_stay_within_reach(shared_data):
    """LSPET has no face keypoints but labels the top of the head, further from the shoulders than any face
    keypoint, on 5,000 (later 10,000) athletes in every posture: put in the nose's place, it stays within
    the limit for all but a few in a thousand."""
    kp, anns = ground_truth(shared_data, "lspet")
    top = np.array([a["lsp_extra_keypoints"] for a in anns], np.float64).reshape(-1, 2, 3)[:, 1]
    kp[:, 0, :2], kp[:, 0, 2] = top[:, :2], top[:, 2] > 0
    reach = head_reach(kp)
    judged = reach[~np.isnan(reach)]
    assert len(judged) >= 2000
    assert np.mean(judged > MAX_HEAD_REACH) < 0.002


def test_a_face_in_the_sky_is_out_of_reach(shared_data):
    kp, _ = ground_truth(shared_data, "coco_val_dev")
    judged = ~np.isnan(head_reach(kp))
    ghosts = sky_face(kp[judged], 5.0)  # the ghost seen on the sample clip had its nose six torsos up
    assert (head_reach(ghosts) > MAX_HEAD_REACH).all()
    people = [{"box": [0, 0, 1, 1], "score": 0.5, "keypoints": k} for k in ghosts]
    assert WindowScan().select(people) == []
    assert len(WindowScan(max_head_reach=0).select(people)) > 0  # the check off


class SkyFaceModel:
    """A pose model that sees a person in crops about their size and, in any crop at least twice as tall,
    the same body with its face far above it (a tall window's hallucination, stable in its own box)."""

    def __init__(self, x, y, h):
        self.person = person_at(x, y, h)
        self.ghost = person_at(x + 0.6 * h, y, h)  # beside the person: not a repeat of them
        shoulders, hips = self.ghost[[5, 6], 1].mean(), self.ghost[[11, 12], 1].mean()
        self.ghost[:5, 1] -= 4.0 * (hips - shoulders)
        self.ghost[[5, 6, 11, 12], 2] = 0.2  # as the ghost seen on the sample clip: an unsure trunk
        self.h = h

    def __call__(self, frame, boxes):
        people = []
        for box in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
            kp = self.ghost if box[3] >= 1.5 * self.h else self.person
            people.append({"box": list(box), "score": float(kp[:, 2].mean()), "keypoints": kp.copy()})
        return people


def test_keypoint_tracking_does_not_take_on_a_sky_faced_ghost():
    model = SkyFaceModel(300, 300, 200)
    assert np.isnan(head_reach(model.ghost[None])[0])  # its trunk is not confident...
    assert head_reach(model.ghost[None], 0.3, 0.0)[0] > MAX_HEAD_REACH  # ...but placed: judged there
    assert head_reach(model.person[None])[0] < 1
    unchecked = FromKeypoints(acquire=WindowScan(min_score=0.25, confirm=0, max_head_reach=0))
    faces = sorted(float(p["keypoints"][0, 1]) for p in unchecked(FRAME, model))
    assert len(faces) == 2 and faces[0] < 0 < faces[1]  # the ghost (its face above the frame) and the person
    src = FromKeypoints()
    for _ in range(3):
        people = src(FRAME, model)
        assert len(people) == 1 and people[0]["keypoints"][0, 1] > 0 and people[0]["id"] == 1


@pytest.mark.parametrize("trunks", [0.5, 1.0])
def test_a_raised_head_is_still_a_person(trunks):
    kp = person_at(300, 300, 200)[None]
    up = sky_face(kp, trunks)  # a head lifted half a trunk or a trunk beyond its place: still within reach
    assert head_reach(up)[0] < MAX_HEAD_REACH
    person = {"box": [0, 0, 1, 1], "score": 0.9, "keypoints": up[0]}
    assert len(WindowScan().select([person])) == 1

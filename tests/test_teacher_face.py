"""scripts/teacher_face.py: the OKS it trusts the teacher by matches pycocotools; crops hold the head; and,
where MediaPipe is installed, BlazePose's face points on labelled COCO people score high."""
import copy
import importlib.util
import json

import numpy as np
import pytest
from conftest import REPO

spec = importlib.util.spec_from_file_location("teacher_face", REPO / "scripts" / "teacher_face.py")
teacher_face = importlib.util.module_from_spec(spec)
spec.loader.exec_module(teacher_face)


def test_oks_matches_pycocotools(shared_data):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO(str(shared_data / "coco_val_dev" / "person_keypoints.json"))
    rng = np.random.default_rng(0)
    image_id = next(i for i in gt.getImgIds() if len(gt.getAnnIds(imgIds=i, iscrowd=False)) >= 2)
    anns = [a for a in gt.loadAnns(gt.getAnnIds(imgIds=image_id, iscrowd=False)) if a["num_keypoints"] > 0]
    dets = []
    for a in anns:
        kp = np.asarray(a["keypoints"], np.float64).reshape(17, 3)
        noisy = kp.copy()
        noisy[:, :2] += rng.normal(0, 0.05 * np.sqrt(a["area"]), (17, 2))
        noisy[:, 2] = 1
        dets.append({"image_id": image_id, "category_id": 1, "keypoints": noisy.ravel().tolist(), "score": 1.0})
    ev = COCOeval(gt, gt.loadRes(copy.deepcopy(dets)), "keypoints")
    ev.params.imgIds = [image_id]
    ev.evaluate()
    theirs = ev.ious[(image_id, 1)]  # (detections, ground truths)
    gts = ev._gts[image_id, 1]
    for i, det in enumerate(ev._dts[image_id, 1]):
        pred = np.asarray(det["keypoints"], np.float64).reshape(17, 3)
        for j, g in enumerate(gts):
            if g["num_keypoints"] == 0:
                continue  # pycocotools measures those by distance to the box instead
            ours = teacher_face.oks(pred, g["keypoints"], g["area"], range(17))
            assert ours == pytest.approx(theirs[i, j], abs=1e-9)
    assert np.max(theirs) > 0.3  # the noise kept some agreement: the comparison is not all zeros


def test_crop_box_reaches_the_head_top():
    ann = {"bbox": [40, 50, 20, 40], "lsp_extra_keypoints": [50, 55, 2, 50, 10, 2]}
    x0, y0, x1, y1 = teacher_face.crop_box(ann, 200, 200)
    assert y0 <= 10 and y1 >= 90 and x0 <= 40 and x1 >= 60
    assert teacher_face.crop_box(ann, 60, 60) == (0, 0, 60, 60)  # clipped to the image


def test_blazepose_face_points_agree_with_coco_labels(shared_data, tmp_path, capsys):
    pytest.importorskip("mediapipe", reason="MediaPipe not installed (pip install mediapipe==0.10.21)")
    teacher_face.main([str(shared_data / "coco_train" / "person_keypoints.json"),
                       "--images", str(shared_data / "coco_train" / "images"), "--report", "--limit", "40"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["agree"] >= 5
    assert summary["face_oks_mean"] >= 0.6

"""A teacher-labelled set from unlabelled frames (scripts/pseudo_set.py) holds real people and trains as a set."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from edge_pose.persons import box_iou
from edge_pose.runtime.zoo import resolve
from edge_pose.train import pseudo_set, teacher_labels
from edge_pose.train.keypoint_teacher import open_predictor

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("pseudo_set_script", REPO / "scripts" / "pseudo_set.py")
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)


@pytest.fixture(scope="module")
def teacher():
    predict_fn, close = open_predictor(str(resolve("resnet18")), threads=2)
    yield predict_fn
    close()


def test_annotation_labels_only_the_sure_joints_and_boxes_them_inside_the_image():
    kp = np.zeros((17, 3))
    kp[:, 0] = np.linspace(-10, 50, 17)  # runs off the image's left edge
    kp[:, 1] = np.linspace(20, 100, 17)
    kp[:, 2] = 0.9
    kp[3, 2] = 0.1
    ann = pseudo_set.annotation(7, 3, kp, (80, 60), min_keypoint=0.3)
    flat = np.asarray(ann["keypoints"]).reshape(17, 3)
    assert ann["num_keypoints"] == 16 and (flat[3] == 0).all()
    assert set(flat[:, 2]) == {0, 2}
    np.testing.assert_allclose(flat[flat[:, 2] > 0, :2], np.round(kp[kp[:, 2] >= 0.3, :2], 2))
    x, y, w, h = ann["bbox"]
    assert x == 0 and y >= 0 and x + w <= 60 and y + h <= 80 + 1e-6 and w > 0 and h > 0
    assert ann["image_id"] == 3 and ann["id"] == 7 and ann["iscrowd"] == 0


def test_labelled_people_are_real_people(shared_data, teacher, tmp_path):
    """On the 26 complete coco_val_dev images, every person the set labels lies on a person of the ground truth (no
    ghosts from the window scan), and its label files agree. With the shipped resnet18 as the teacher it labels 8
    people here (MoveNet: 31, one of them off every annotated box)."""
    root = shared_data / "coco_val_dev"
    gt = json.loads((root / "person_keypoints.json").read_text())
    complete = [im for im in gt["images"] if im.get("annotations_complete")]
    folder = tmp_path / "photos"
    folder.mkdir()
    for im in complete:
        (folder / im["file_name"]).symlink_to(root / "images" / im["file_name"])
    coco, labels = pseudo_set.build([folder], teacher, tmp_path / "set", progress=False)
    assert len(coco["annotations"]) >= 5, "the teacher labelled %d people on 26 COCO images" % len(coco["annotations"])
    by_name = {im["file_name"]: im["id"] for im in gt["images"]}
    for ann in coco["annotations"]:
        image = coco["images"][ann["image_id"] - 1]
        gt_boxes = [a["bbox"] for a in gt["annotations"] if a["image_id"] == by_name[image["file_name"]]
                    and a.get("num_keypoints", 0) > 0]
        assert box_iou(np.asarray([ann["bbox"]]), np.asarray(gt_boxes)).max() > 0.3, (image["file_name"],
                                                                                      ann["bbox"])
        np.testing.assert_allclose(labels[ann["id"]][:, :2][np.asarray(ann["keypoints"])[2::3] > 0],
                                   np.asarray(ann["keypoints"]).reshape(17, 3)[:, :2][
                                       np.asarray(ann["keypoints"])[2::3] > 0], atol=0.01)
        assert (tmp_path / "set" / "images" / image["file_name"]).exists()


def test_the_script_writes_a_set_that_trains(shared_data, tmp_path, capsys):
    pytest.importorskip("torch")
    from edge_pose.config import AugmentCfg
    from edge_pose.train.dataset import PersonSet, TopDownDataset

    video = shared_data / "videos" / "opencv_vtest_pedestrians.avi"
    out = tmp_path / "set"
    args = [str(video), "--teacher", str(resolve("resnet18")), "--every", "50", "--max-frames", "2",
            "--detector", "none", "--out", str(out), "--threads", "2", "--quiet"]
    assert script.main(args) == 0
    printed = capsys.readouterr().out
    assert "opencv_vtest_pedestrians" in printed and "persons" in printed
    coco = json.loads((out / "person_keypoints.json").read_text())
    assert [im["frame"] for im in coco["images"]] == [0, 50][:len(coco["images"])]
    labels, info = teacher_labels.load(str(out / "teacher_labels.json"))
    assert sorted(labels) == [a["id"] for a in coco["annotations"]] and info["persons"] == len(labels)
    people = PersonSet(str(out / "person_keypoints.json"), str(out / "images"), "frames", progress=False,
                       teacher_labels=labels)
    data = TopDownDataset([people], [1.0], AugmentCfg(), distill_weight=0.5)
    image, heat, weight = data.item(0, 0)
    assert image.shape == (3, 256, 192) and heat.shape == (17, 64, 48) and weight.max() > 0
    with pytest.raises(SystemExit, match="--overwrite"):
        script.main(args)
    with pytest.raises(SystemExit, match="no such file"):
        script.main([str(tmp_path / "missing.mp4"), "--teacher", str(resolve("resnet18")), "--out", str(out)])

"""Label audit (edge_pose/train/label_audit.py, scripts/audit_labels.py): with the shipped mobilenetv3 as the
reference on coco_train (labels known good), persons whose labels are mirrored left/right are flagged and the
others are not, a joint's labels moved by a tenth of the person's scale show as that offset, and the script writes
the annotations without the flagged persons."""
import copy
import hashlib
import importlib.util
import json

import numpy as np
import pytest
from conftest import REPO

from edge_pose import runtime
from edge_pose.skeleton import FLIP_INDEX, KEYPOINT_NAMES
from edge_pose.train.evaluate import load_coco
from edge_pose.train.label_audit import joint_offsets, predict_persons, swap_flags, without_persons

MODEL = REPO / "engines" / "mobilenetv3.onnx"


@pytest.fixture(scope="module")
def coco_train_predictions(shared_data):
    root = shared_data / "coco_train"
    dataset = load_coco(str(root / "person_keypoints.json"))
    with runtime.open(str(MODEL), backend="onnxruntime", threads=1) as backend:
        anns, preds = predict_persons(backend.infer, dataset, str(root / "images"))
    return dataset, anns, preds


def _labels(ann):
    return np.asarray(ann["keypoints"], np.float64).reshape(17, 3)


def test_mirrored_labels_are_flagged_and_good_ones_are_not(coco_train_predictions):
    _, anns, preds = coco_train_predictions
    assert len(anns) == len(preds) > 100
    edited = copy.deepcopy(anns)
    mirrored = np.arange(len(anns)) % 2 == 0
    for ann, flip in zip(edited, mirrored):
        if flip:
            ann["keypoints"] = _labels(ann)[list(FLIP_INDEX)].ravel().tolist()
    flagged = swap_flags(edited, preds).any(axis=1)
    assert flagged[mirrored].mean() >= 0.8  # 0.92 measured (side views barely change when mirrored)
    assert flagged[~mirrored].mean() <= 0.05  # 0.01 measured
    # the untouched half is flagged the same way as on its own
    assert np.array_equal(flagged[~mirrored], swap_flags(anns, preds).any(axis=1)[~mirrored])


def test_a_joint_labelled_elsewhere_shows_as_its_offset(coco_train_predictions):
    _, anns, preds = coco_train_predictions
    hips = [KEYPOINT_NAMES.index("left_hip"), KEYPOINT_NAMES.index("right_hip")]
    moved = copy.deepcopy(anns)
    for ann in moved:
        labels = _labels(ann)
        labels[hips, 1] -= 0.1 * np.sqrt(ann["area"])  # hips labelled a tenth of the scale higher (pfg's belt)
        ann["keypoints"] = labels.ravel().tolist()
    before, after = joint_offsets(anns, preds), joint_offsets(moved, preds)
    for j, name in enumerate(KEYPOINT_NAMES):
        if j in hips:
            assert after[name][1] == pytest.approx(before[name][1] + 0.1, abs=0.02)
            assert after[name][2] > 50
        else:
            assert after[name] == before[name]
            assert abs(before[name][1]) < 0.03


def test_without_persons_drops_them_and_says_why(coco_train_predictions):
    dataset, anns, _ = coco_train_predictions
    drop = [anns[0]["id"], anns[3]["id"]]
    out = without_persons(dataset, drop, {"rule": "test"})
    assert len(out["annotations"]) == len(dataset["annotations"]) - 2
    assert not set(drop) & set(a["id"] for a in out["annotations"])
    assert out["info"]["audit"] == {"rule": "test", "removed_annotation_ids": sorted(drop)}
    assert out["images"] is dataset["images"] and "audit" not in (dataset.get("info") or {})


def test_script_writes_the_audited_annotations(shared_data, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("audit_labels", REPO / "scripts" / "audit_labels.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    root = shared_data / "coco_train"
    ann = root / "person_keypoints.json"
    source = load_coco(str(ann))
    mirrored = copy.deepcopy(source)  # a set whose labels are all mirrored: most persons go
    for a in mirrored["annotations"]:
        a["keypoints"] = _labels(a)[list(FLIP_INDEX)].ravel().tolist()
    bad = tmp_path / "mirrored.json"
    bad.write_text(json.dumps(mirrored))
    out = tmp_path / "audited" / "clean.json"
    assert script.main([str(bad), "--images", str(root / "images"), "--reference", str(MODEL), "--limit", "10",
                        "--threads", "1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "whole body" in text and "left_hip" in text
    clean = json.loads(out.read_text())
    first10 = set(sorted(im["id"] for im in source["images"])[:10])
    audited = [a for a in source["annotations"] if a["image_id"] in first10 and a.get("num_keypoints", 0) > 0]
    removed = clean["info"]["audit"]["removed_annotation_ids"]
    assert clean["info"]["audit"]["persons_audited"] == len(audited)
    assert clean["info"]["audit"]["reference_sha256"] == hashlib.sha256(MODEL.read_bytes()).hexdigest()
    assert len(removed) >= 0.7 * len(audited) and set(removed) <= set(a["id"] for a in audited)
    assert len(clean["annotations"]) == len(source["annotations"]) - len(removed)
    with pytest.raises(SystemExit):
        script.main([str(ann), "--images", str(root / "images"), "--reference", str(tmp_path / "none.onnx")])

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from edge_pose.decode import HEATMAP_SIZE, flip_heatmaps, input_to_heatmap
from edge_pose.preprocess import INPUT_SIZE, affine_matrix, apply_affine, box_to_center_scale
from edge_pose.skeleton import NUM_KEYPOINTS
from edge_pose.train import evaluate as ev
from edge_pose.train.targets import encode_heatmaps

pytest.importorskip("pycocotools")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco_val_dev"
needs_data = pytest.mark.skipif(not (DATA / "person_keypoints.json").is_file(),
                                reason="shared data not found at %s (only CI and dev machines have it)" % DATA)


def render_gt(ann):
    """Ground truth of one annotation as heatmaps of its GT-box crop (the evaluation's own crop)."""
    kps = np.asarray(ann["keypoints"], dtype=np.float64).reshape(NUM_KEYPOINTS, 3)
    center, size = box_to_center_scale(ann["bbox"])
    joints = input_to_heatmap(apply_affine(kps[:, :2], affine_matrix(center, size, INPUT_SIZE)))
    return encode_heatmaps(joints, kps[:, 2], HEATMAP_SIZE, sigma=2.0)[0]


class Oracle:
    """predict_fn that answers with the ground truth, in the order evaluate feeds the persons."""

    def __init__(self, groups):
        self.anns = [a for _, anns in groups for a in anns]
        self.last = None
        self.calls = 0

    def __call__(self, batch):
        self.calls += 1
        n = len(batch)
        if self.last is not None and self.last.shape == batch.shape and np.array_equal(self.last[..., ::-1], batch):
            return flip_heatmaps(self.previous)  # the flip test's mirrored batch
        self.previous = np.stack([render_gt(a) for a in self.anns[:n]])
        self.anns = self.anns[n:]
        self.last = batch
        return self.previous


@pytest.fixture(scope="module")
def dataset():
    if not (DATA / "person_keypoints.json").is_file():
        pytest.skip("shared data not found at %s" % DATA)
    return ev.load_coco(DATA / "person_keypoints.json")


@needs_data
@pytest.mark.parametrize("flip", [False, True])
def test_oracle_scores_high(dataset, flip):
    groups = ev.person_groups(dataset)
    oracle = Oracle(groups)
    m = ev.evaluate_predict_fn(oracle, dataset, DATA / "images", flip=flip, batch=8, progress=False)
    assert m["n_persons"] == 107 and not oracle.anns  # every annotated person with keypoints, once
    assert oracle.calls == (2 if flip else 1) * int(np.ceil(107 / 8))
    assert m["AP"] > 0.9, m
    assert m["AR"] > 0.9, m


@needs_data
def test_noise_scores_low(dataset):
    rng = np.random.default_rng(0)

    def noise(batch):
        return rng.random((len(batch), NUM_KEYPOINTS, HEATMAP_SIZE[1], HEATMAP_SIZE[0]), dtype=np.float32)

    m = ev.evaluate_predict_fn(noise, dataset, DATA / "images", decoder="argmax", batch=16, progress=False)
    assert m["AP"] < 0.1, m


def test_person_groups_and_batches(tmp_path):
    import cv2

    images = [{"id": i, "file_name": "%d.jpg" % i, "width": 64, "height": 48} for i in (3, 1, 2)]
    kps = [10, 10, 2] * NUM_KEYPOINTS
    anns = [
        {"id": 10, "image_id": 1, "bbox": [5, 5, 20, 30], "num_keypoints": 17, "keypoints": kps, "iscrowd": 0},
        {"id": 11, "image_id": 1, "bbox": [5, 5, 20, 30], "num_keypoints": 0, "keypoints": [0] * 51, "iscrowd": 0},
        {"id": 12, "image_id": 2, "bbox": [1, 1, 20, 30], "num_keypoints": 3, "keypoints": kps, "iscrowd": 1},
        {"id": 13, "image_id": 3, "bbox": [1, 2, 30, 40], "num_keypoints": 5, "keypoints": kps, "iscrowd": 0},
        {"id": 14, "image_id": 3, "bbox": [1, 2, 30, 40], "num_keypoints": 5, "keypoints": kps, "iscrowd": 0},
        {"id": 15, "image_id": 3, "bbox": [1, 2, 0, 40], "num_keypoints": 5, "keypoints": kps, "iscrowd": 0},
    ]
    dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    groups = ev.person_groups(dataset)
    assert [(im["id"], [a["id"] for a in a_list]) for im, a_list in groups] == [(1, [10]), (3, [13, 14])]
    for im in images:
        cv2.imwrite(str(tmp_path / im["file_name"]), np.full((48, 64, 3), 128, np.uint8))
    sizes = [(x.shape, m.shape, len(a)) for x, m, a in ev.iter_batches(groups, tmp_path, batch=2)]
    assert sizes == [((2, 3, 256, 192), (2, 2, 3), 2), ((1, 3, 256, 192), (1, 2, 3), 1)]
    with pytest.raises(FileNotFoundError, match="cannot read image"):
        list(ev.iter_batches(groups, tmp_path / "nowhere", batch=2))


def test_result_score():
    """Default: the mean of all keypoint scores (the estimator's person score); confident-mean: Simple
    Baselines' mean of those above 0.2, 0 when none is."""
    scores = np.array([[0.9, 0.1, 0.5], [0.1, 0.1, 0.1]])
    anns = [{"image_id": 1}, {"image_id": 2, "category_id": 1}]
    res = ev.to_results(np.zeros((2, 3, 2)), scores, anns)
    assert [r["score"] for r in res] == pytest.approx([0.5, 0.1])
    assert len(res[0]["keypoints"]) == 9 and res[0]["category_id"] == 1
    res = ev.to_results(np.zeros((2, 3, 2)), scores, anns, person_score="confident-mean")
    assert res[0]["score"] == pytest.approx(0.7) and res[1]["score"] == 0.0
    with pytest.raises(ValueError, match="person score"):
        ev.person_scores(scores, "max")


def tiny_onnx(path):
    """A stand-in model: AveragePool 4x4 to [N,3,64,48], then a 1x1 Conv to 17 channels."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(0).standard_normal((17, 3, 1, 1)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("AveragePool", ["input"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
         helper.make_node("Conv", ["pooled", "W"], ["heatmaps"])], "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 256, 192])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, ["N", 17, 64, 48])],
        initializer=[numpy_helper.from_array(weight, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@needs_data
def test_main_writes_json(tmp_path, dataset, capsys):
    small = dict(dataset)
    keep = set(im["id"] for im, _ in ev.person_groups(dataset)[:3])
    small["images"] = [im for im in dataset["images"] if im["id"] in keep]
    small["annotations"] = [a for a in dataset["annotations"] if a["image_id"] in keep]
    (tmp_path / "small.json").write_text(json.dumps(small))
    parser = argparse.ArgumentParser()
    ev.add_arguments(parser)
    out = tmp_path / "out" / "metrics.json"
    args = parser.parse_args(["--coco", str(tmp_path / "small.json"), "--images", str(DATA / "images"),
                              "--model", str(tiny_onnx(tmp_path / "tiny.onnx")), "--flip", "--threads", "1",
                              "--json-out", str(out), "--quiet"])
    assert ev.main(args) == 0
    assert "AP50" in capsys.readouterr().out
    written = json.loads(out.read_text())
    assert set(["AP", "AP50", "AP75", "APm", "APl", "AR", "n_persons"]) <= set(written["metrics"])
    assert written["options"]["flip"] is True and written["model"].endswith("tiny.onnx")


@needs_data
def test_sample_scores_a_seeded_draw_of_images(tmp_path, dataset):
    ids = [im["id"] for im, _ in ev.person_groups(dataset)]
    draw = ev.sample_image_ids(dataset, 5, seed=0)
    assert len(draw) == 5 and draw == sorted(draw) and set(draw) <= set(ids)
    assert ev.sample_image_ids(dataset, 5, seed=0) == draw and ev.sample_image_ids(dataset, 5, seed=1) != draw
    assert ev.sample_image_ids(dataset, 10 ** 6) == sorted(ids)
    parser = argparse.ArgumentParser()
    ev.add_arguments(parser)
    out = tmp_path / "metrics.json"
    args = parser.parse_args(["--coco", str(DATA / "person_keypoints.json"), "--images", str(DATA / "images"),
                              "--model", str(tiny_onnx(tmp_path / "tiny.onnx")), "--sample", "3", "--threads", "1",
                              "--json-out", str(out), "--quiet"])
    assert ev.main(args) == 0
    written = json.loads(out.read_text())
    assert written["metrics"]["n_images"] == 3 and written["options"]["sample"] == 3
    drawn = ev.person_groups(dataset, ev.sample_image_ids(dataset, 3))
    assert written["metrics"]["n_persons"] == sum(len(anns) for _, anns in drawn)
    args.boxes = "windows"
    with pytest.raises(SystemExit, match="--sample works with --boxes gt only"):
        ev.main(args)


def _one_person_set(tmp_path):
    """Two 120 x 160 images, one person each; only image 1's annotations are complete."""
    import cv2

    rng = np.random.default_rng(1)
    kps = np.zeros((NUM_KEYPOINTS, 3))
    kps[:, 0] = rng.uniform(40, 80, NUM_KEYPOINTS)
    kps[:, 1] = rng.uniform(20, 140, NUM_KEYPOINTS)
    kps[:, 2] = 2
    images, anns = [], []
    for i in (1, 2):
        images.append({"id": i, "file_name": "%d.jpg" % i, "width": 120, "height": 160,
                       "annotations_complete": i == 1})
        anns.append({"id": 10 + i, "image_id": i, "category_id": 1, "bbox": [35, 15, 50, 130], "area": 5000.0,
                     "num_keypoints": 17, "keypoints": kps.ravel().tolist(), "iscrowd": 0})
        cv2.imwrite(str(tmp_path / ("%d.jpg" % i)), np.full((160, 120, 3), 100, np.uint8))
    dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    return dataset, kps


class PoseOracle:
    """Estimator stand-in: in any box, the annotated pose shifted by `offset` pixels."""

    def __init__(self, kps, offset=0.0):
        self.kps, self.offset = kps, offset
        self.boxes = []

    def __call__(self, frame, boxes):
        self.boxes.extend(np.asarray(boxes).reshape(-1, 4).tolist())
        kp = self.kps.astype(np.float32).copy()
        kp[:, :2] += self.offset
        kp[:, 2] = 0.9
        return [{"box": list(b), "score": 0.9, "keypoints": kp} for b in np.asarray(boxes).reshape(-1, 4)]


def test_full_pipeline_scores_complete_images(tmp_path):
    dataset, kps = _one_person_set(tmp_path)
    assert ev.complete_image_ids(dataset) == [1]
    assert ev.complete_image_ids({"images": [{"id": 3}, {"id": 2}]}) == [2, 3]  # no flag: all complete
    oracle = PoseOracle(kps)
    m = ev.evaluate_person_source(oracle, dataset, tmp_path, boxes="full-frame", progress=False)
    assert m["n_images"] == 1 and m["n_persons"] == 1 and m["n_detections"] == 1
    assert oracle.boxes == [[0.0, 0.0, 120.0, 160.0]]  # the whole image, image 2 not looked at
    assert m["AP"] == pytest.approx(1.0)
    off = ev.evaluate_person_source(PoseOracle(kps, offset=25.0), dataset, tmp_path, boxes="full-frame",
                                    progress=False)
    assert off["AP"] < 0.2


def test_boxes_option():
    parser = argparse.ArgumentParser()
    ev.add_arguments(parser)
    base = ["--coco", "c.json", "--images", "d", "--model", "m"]
    assert parser.parse_args(base).boxes == "gt"
    assert parser.parse_args(base + ["--boxes", "hog"]).boxes == "hog"
    assert parser.parse_args(base + ["--boxes", "det/yolo11n.onnx"]).boxes == "det/yolo11n.onnx"
    with pytest.raises(SystemExit):
        parser.parse_args(base + ["--boxes", "ssd"])


@needs_data
def test_main_full_pipeline(tmp_path, dataset, capsys):
    small = dict(dataset)
    keep = [im["id"] for im in dataset["images"] if im.get("annotations_complete")][:2]
    small["images"] = [im for im in dataset["images"] if im["id"] in keep]
    small["annotations"] = [a for a in dataset["annotations"] if a["image_id"] in keep]
    (tmp_path / "small.json").write_text(json.dumps(small))
    parser = argparse.ArgumentParser()
    ev.add_arguments(parser)
    out = tmp_path / "metrics.json"
    args = parser.parse_args(["--coco", str(tmp_path / "small.json"), "--images", str(DATA / "images"),
                              "--model", str(tiny_onnx(tmp_path / "tiny.onnx")), "--boxes", "windows",
                              "--threads", "1", "--json-out", str(out), "--quiet"])
    assert ev.main(args) == 0
    assert "boxes windows" in capsys.readouterr().out
    written = json.loads(out.read_text())
    assert written["metrics"]["n_images"] == 2 and written["options"]["boxes"] == "windows"
    assert written["metrics"]["n_persons"] == sum(1 for a in small["annotations"] if a.get("num_keypoints", 0) > 0
                                                  and not a.get("iscrowd"))
    with pytest.raises(SystemExit, match="flip"):
        ev.main(parser.parse_args(["--coco", str(tmp_path / "small.json"), "--images", str(DATA / "images"),
                                   "--model", "mobilenetv3", "--boxes", "windows", "--flip"]))

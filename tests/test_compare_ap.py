"""scripts/compare_ap.py: the image resampling keeps pycocotools' AP, and the paired bootstrap tells a
better result set from a worse one (results built from the ground truth: no model needed); its full-pipeline
mode scores what `edge-pose eval --boxes` scores."""
import importlib.util

import numpy as np
import pytest
from conftest import REPO

spec = importlib.util.spec_from_file_location("compare_ap", REPO / "scripts" / "compare_ap.py")
compare_ap = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_ap)


def _results(groups, noise, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _, anns in groups:
        for a in anns:
            kp = np.asarray(a["keypoints"], np.float64).reshape(17, 3)
            kp[:, :2] += rng.normal(0, noise * np.sqrt(a["area"]), (17, 2))
            kp[:, 2] = 1
            out.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kp.ravel().tolist(),
                        "score": 1.0})
    return out


@pytest.fixture(scope="module")
def val(shared_data):
    dataset = compare_ap.load_coco(str(shared_data / "coco_val_dev" / "person_keypoints.json"))
    return dataset, compare_ap.person_groups(dataset)


@pytest.mark.parametrize("complete", [False, True], ids=["gt-boxes", "full-pipeline"])
def test_identity_resample_keeps_the_ap(val, complete):
    dataset, groups = val
    if complete:  # every annotation of the complete images: crowds and keypoint-less persons kept, as eval does
        groups = compare_ap.complete_groups(dataset)
        assert len(groups) < len(compare_ap.person_groups(dataset))
    results = _results([(im, [a for a in anns if a.get("num_keypoints", 0) > 0]) for im, anns in groups], 0.05)
    ids = [im["id"] for im, _ in groups]
    d, g, (r,) = compare_ap.resample(dataset, groups, [results], ids)
    assert [im["id"] for im in d["images"]] == list(range(1, len(ids) + 1))
    original = compare_ap.score_results(dataset, results, groups)["AP"]
    assert 0.1 < original < 0.99
    assert compare_ap.score_results(d, r, g)["AP"] == pytest.approx(original, abs=1e-12)


def test_bootstrap_separates_better_from_worse(val):
    dataset, groups = val
    worse, better = _results(groups, 0.08, seed=1), _results(groups, 0.02, seed=2)
    diffs = compare_ap.bootstrap(dataset, worse, better, n=20, progress=False)
    assert diffs.shape == (20,) and np.all(diffs > 0)
    same = compare_ap.bootstrap(dataset, worse, worse, n=5, progress=False)
    assert np.all(same == 0)


def test_full_pipeline_scores_as_eval_does(shared_data):
    """`--boxes keypoints`: the same model twice gives eval's full-pipeline AP twice and a zero difference."""
    from edge_pose.estimator import PoseEstimator
    from edge_pose.train.evaluate import evaluate_person_source

    val = shared_data / "coco_val_dev"
    summary = compare_ap.main(["mobilenetv3", "mobilenetv3", "--boxes", "keypoints", "--resamples", "3",
                               "--threads", "1", "--coco", str(val / "person_keypoints.json"),
                               "--images", str(val / "images")])
    with PoseEstimator("mobilenetv3", threads=1) as est:
        direct = evaluate_person_source(est, str(val / "person_keypoints.json"), str(val / "images"),
                                        boxes="keypoints", progress=False)
    assert summary["AP_a"] == summary["AP_b"] == round(direct["AP"], 4) > 0
    assert summary["diff"] == 0 and summary["ci95"] == [0, 0]
    assert summary["images"] == 26 and summary["boxes"] == "keypoints"

"""scripts/compare_ap.py: the image resampling keeps pycocotools' AP, and the paired bootstrap tells a
better result set from a worse one (results built from the ground truth: no model needed)."""
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


def test_identity_resample_keeps_the_ap(val):
    dataset, groups = val
    results = _results(groups, 0.05)
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

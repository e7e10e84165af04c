"""scripts/score_ranking.py on coco_val_dev with results made from the ground truth (no model needed): the
true-OKS ranking is the ceiling of every score, a constant score ranks nothing, and results already scored by
their OKS reach that ceiling."""
import importlib.util

import numpy as np
import pytest
from conftest import REPO

spec = importlib.util.spec_from_file_location("score_ranking", REPO / "scripts" / "score_ranking.py")
score_ranking = importlib.util.module_from_spec(spec)
spec.loader.exec_module(score_ranking)


@pytest.fixture(scope="module")
def val(shared_data):
    """coco_val_dev and its persons' keypoints moved by a noise that differs from person to person."""
    dataset = score_ranking.load_coco(str(shared_data / "coco_val_dev" / "person_keypoints.json"))
    rng = np.random.default_rng(0)
    results = []
    for _, anns in score_ranking.person_groups(dataset):
        for a in anns:
            kp = np.asarray(a["keypoints"], np.float64).reshape(17, 3)
            kp[:, :2] += rng.normal(0, rng.uniform(0.0, 0.15) * np.sqrt(a["area"]), (17, 2))
            kp[:, 2] = 1
            results.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kp.ravel().tolist(),
                            "score": float(rng.random())})
    return dataset, results


def test_true_oks_is_pycocotools_oks_of_each_persons_own_result(val):
    dataset, results = val
    oks = score_ranking.true_oks(dataset, results, score_ranking.person_groups(dataset))
    assert oks.shape == (len(results),) and 0.0 <= oks.min() and oks.max() <= 1.0
    assert oks.std() > 0.05  # the noise differs from person to person, so does the OKS
    # an unmoved person matches itself with OKS 1
    exact = [dict(r) for r in results]
    gt = [a for _, anns in score_ranking.person_groups(dataset) for a in anns]
    exact[0]["keypoints"] = [float(v) for v in gt[0]["keypoints"]]
    assert score_ranking.true_oks(dataset, exact, score_ranking.person_groups(dataset))[0] == pytest.approx(1.0)


def test_the_true_oks_ranking_is_the_ceiling(val):
    dataset, results = val
    random_scores = score_ranking.ranking_report(dataset, results)
    assert random_scores["AP_oks_score"] > random_scores["AP"] + 0.05
    assert random_scores["AP_oks_score"] > random_scores["AP_constant_score"] + 0.05
    assert abs(random_scores["score_oks_spearman"]) < 0.3
    oks = score_ranking.true_oks(dataset, results, score_ranking.person_groups(dataset))
    best = score_ranking.ranking_report(dataset, score_ranking.rescored(results, oks))
    assert best["AP"] == pytest.approx(best["AP_oks_score"])
    assert best["score_oks_spearman"] == pytest.approx(1.0)

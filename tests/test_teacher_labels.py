"""Teacher labels made ahead (scripts/teacher_labels.py) train as the teacher run in the loop does."""
import json

import numpy as np
import pytest

from edge_pose.config import AugmentCfg, ConfigError, load_config
from edge_pose.train import teacher_labels
from edge_pose.train.dataset import PersonSet, TopDownDataset
from edge_pose.train.targets import blend_targets, encode_heatmaps, teacher_targets

torch = pytest.importorskip("torch")

from edge_pose.train.losses import distill_loss, mse_loss  # noqa: E402


@pytest.mark.parametrize("min_score", [None, 0.3], ids=["soft", "hard"])
def test_blended_targets_give_the_gradient_of_the_two_losses(min_score):
    rng = np.random.default_rng(0)
    size, share = (48, 64), 0.5
    gt_pts = rng.uniform(5, 40, (17, 2))
    gt_heat, gt_weight = encode_heatmaps(gt_pts, rng.random(17) > 0.3, size)
    gt_weight *= np.where(np.arange(17) < 5, 0.0, 0.8).astype(np.float32)  # LSPET's joint weights
    # the teacher's keypoints at pixel centres: the heatmap the loop's teacher renders peaks at its score
    t_pts = rng.integers(5, 40, (17, 2)).astype(np.float32)
    scores = rng.uniform(0.05, 0.95, 17).astype(np.float32)
    rendered = encode_heatmaps(t_pts, np.ones(17), size)[0] * scores[:, None, None]

    base = rng.random((1, 17, 64, 48)).astype(np.float32)

    def grad(loss_of):
        pred = torch.tensor(base, requires_grad=True)
        loss_of(pred).backward()
        return pred.grad.numpy()

    t = torch.from_numpy
    online = grad(lambda p: (1 - share) * mse_loss(p, t(gt_heat[None]), t(gt_weight[None]))
                  + share * distill_loss(p, t(rendered[None]), min_score))
    heat, weight = blend_targets(gt_heat, gt_weight, *teacher_targets(t_pts, scores, size, min_score=min_score), share)
    cached = grad(lambda p: mse_loss(p, t(heat[None]), t(weight[None])))
    np.testing.assert_allclose(cached, online, atol=1e-9)
    assert np.abs(online).max() > 1e-6


def ground_truth_labels(ann_path):
    """Teacher labels that are the set's own labels (score 1 where labelled, 0 elsewhere)."""
    coco = json.loads(open(ann_path).read())
    labels = {}
    for a in coco["annotations"]:
        kp = np.asarray(a["keypoints"], np.float32).reshape(17, 3)
        labels[a["id"]] = np.concatenate([kp[:, :2], (kp[:, 2:] > 0).astype(np.float32)], axis=1)
    return labels


@pytest.mark.parametrize("set_name", ["coco_train", "pfg"])
def test_labels_follow_the_augmentation_as_the_ground_truth_does(shared_data, set_name):
    """With the ground truth as the teacher (hard labels), every augmented sample's blended target is the ground
    truth's wherever it is labelled (weight 1: half each): affine, rotation, flip (left/right swapped) and the image
    cache's downscaling move the teacher's keypoints exactly as they move the labels. pfg's images are downscaled in
    the cache."""
    root = shared_data / set_name
    ann = str(root / "person_keypoints.json")
    labels = ground_truth_labels(ann)
    people = PersonSet(ann, str(root / "images"), set_name, progress=False, limit=40, teacher_labels=labels)
    plain = TopDownDataset([people], [1.0], AugmentCfg(rotation=40, rotation_prob=1.0, zoom_out_prob=0.3),
                           input_size=(96, 128), seed=3)
    cached = TopDownDataset([people], [1.0], AugmentCfg(rotation=40, rotation_prob=1.0, zoom_out_prob=0.3),
                            input_size=(96, 128), seed=3, distill_weight=0.5, min_score=0.5)
    checked = 0
    for i in range(len(people)):
        rng_a, rng_b = np.random.default_rng(i), np.random.default_rng(i)
        x_a, heat_a, w_a = plain.item(0, i, rng_a)
        x_b, heat_b, w_b = cached.item(0, i, rng_b)
        np.testing.assert_array_equal(x_a, x_b)  # the same draw
        seen = w_a > 0
        np.testing.assert_allclose(heat_b[seen], heat_a[seen], atol=1e-6)
        np.testing.assert_allclose(w_b[seen], 1.0, atol=1e-6)
        checked += int(seen.sum())
    assert checked > 200  # half the samples are flipped (p = 0.5 each): a label not swapped with them fails


def test_negatives_keep_full_weight_soft_and_half_hard(coco_train_set):
    aug = AugmentCfg(negative_prob=1.0)
    weights = []
    for min_score in (None, 0.3):
        data = TopDownDataset([coco_train_set], [1.0], aug, input_size=(96, 128), distill_weight=0.5,
                              min_score=min_score)
        coco_train_set.complete = True
        try:
            _, heat, w = data.item(0, 0, np.random.default_rng(0))
        finally:
            coco_train_set.complete = False
        assert not heat.any()
        weights.append(float(w.mean()))
    assert weights == [1.0, 0.5]


def test_labels_file_round_trip_and_predictions(shared_data, tmp_path):
    """predict_labels with the shipped mobilenetv3 as the teacher finds the labelled joints of coco_train's people
    (its keypoints within a fifth of the box of the labels), and the file keeps them to 0.01 px."""
    from edge_pose import runtime
    from edge_pose.train.evaluate import load_coco

    coco = load_coco(str(shared_data / "coco_train" / "person_keypoints.json"))
    ids = sorted(im["id"] for im in coco["images"])[:4]
    sub = dict(coco, images=[im for im in coco["images"] if im["id"] in ids],
               annotations=[a for a in coco["annotations"] if a["image_id"] in ids])
    backend = runtime.open("mobilenetv3", backend="onnxruntime", threads=2)
    try:
        labels = teacher_labels.predict_labels(backend.infer, sub, str(shared_data / "coco_train" / "images"),
                                               progress=False)
    finally:
        backend.close()
    anns = {a["id"]: a for a in sub["annotations"] if a.get("num_keypoints", 0) > 0 and not a["iscrowd"]}
    assert set(labels) == set(anns)
    near = []
    for k, kp in labels.items():
        gt = np.asarray(anns[k]["keypoints"], np.float32).reshape(17, 3)
        seen = gt[:, 2] > 0
        near += list(np.linalg.norm(kp[seen, :2] - gt[seen, :2], axis=1) < 0.2 * max(anns[k]["bbox"][2:]))
    assert np.mean(near) > 0.6
    path = str(tmp_path / "labels.json")
    teacher_labels.save(path, labels, {"teacher": "mobilenetv3"})
    back, info = teacher_labels.load(path)
    assert info == {"teacher": "mobilenetv3"} and set(back) == set(labels)
    for k in labels:
        np.testing.assert_allclose(back[k], labels[k], atol=0.006)
    (tmp_path / "bad.json").write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="not a teacher labels file"):
        teacher_labels.load(str(tmp_path / "bad.json"))


def test_config_takes_one_teacher(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train_sets:\n  - {name: a, ann: a.json, images: img, teacher_labels: t.json}\n"
                    "distill: {teacher: teachers/movenet_thunder.onnx}\n")
    with pytest.raises(ConfigError, match="not both"):
        load_config(str(path))
    cfg = load_config(str(path), ["distill.teacher=null"])
    assert cfg.train_sets[0].teacher_labels == "t.json"


def test_missing_labels_file_is_a_config_error(shared_data, tmp_path):
    from edge_pose.train.loop import training_data

    root = shared_data / "coco_train"
    path = tmp_path / "c.yaml"
    path.write_text("train_sets:\n  - {name: a, ann: %s, images: %s, teacher_labels: %s}\n"
                    % (root / "person_keypoints.json", root / "images", tmp_path / "none.json"))
    with pytest.raises(ConfigError, match="no such file .*none.json"):
        training_data(load_config(str(path)), progress=False)


def test_score_measures_agreement_with_the_set(shared_data):
    """score() is pycocotools' AP of the labels against the set's own: the set's labels score 1, the same labels
    moved by a tenth of each box score far lower, and a labels file of another set is refused."""
    ann_path = str(shared_data / "coco_train" / "person_keypoints.json")
    coco = json.loads(open(ann_path).read())
    labels = ground_truth_labels(ann_path)
    perfect = teacher_labels.score(coco, labels)
    assert perfect["AP"] > 0.99 and perfect["n_persons"] == 143
    boxes = {a["id"]: a["bbox"] for a in coco["annotations"]}
    moved = {k: kp + np.array([0.1 * boxes[k][2], 0.1 * boxes[k][3], 0], np.float32) for k, kp in labels.items()}
    assert teacher_labels.score(coco, moved)["AP"] < 0.5 * perfect["AP"]
    some = dict([(a["id"], labels[a["id"]]) for a in coco["annotations"] if a["num_keypoints"] > 0][:20])
    assert teacher_labels.score(coco, some)["n_persons"] == 20
    with pytest.raises(ValueError, match="no labelled person"):
        teacher_labels.score(coco, {-1: labels[next(iter(labels))]})

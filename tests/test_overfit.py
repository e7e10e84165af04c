"""Targets, loss, decode and evaluation agree: a model trained on a handful of persons fits them (AP >= 0.9)."""
import json

import pytest

torch = pytest.importorskip("torch")

from edge_pose.config import AugmentCfg, Config, DatasetCfg, ModelCfg, TrainCfg  # noqa: E402
from edge_pose.models import load_checkpoint  # noqa: E402
from edge_pose.train.evaluate import evaluate_predict_fn  # noqa: E402
from edge_pose.train.loop import make_predict_fn, train  # noqa: E402


def tiny_subset(shared, tmp_path, n_persons=4):
    coco = json.loads((shared / "coco_train" / "person_keypoints.json").read_text())
    anns = sorted((a for a in coco["annotations"] if a.get("num_keypoints", 0) >= 12 and not a["iscrowd"]
                   and a["bbox"][3] > 150), key=lambda a: a["id"])[:n_persons]
    ids = {a["image_id"] for a in anns}
    keep = {a["id"] for a in anns}
    # other annotations of the chosen images are removed: the subset is what the model sees and is scored on
    sub = dict(coco, images=[im for im in coco["images"] if im["id"] in ids],
               annotations=[a for a in coco["annotations"] if a["id"] in keep])
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(sub))
    return path, len(anns)


@pytest.mark.parametrize("cpu_bf16", [False, True], ids=["float32", "bfloat16-autocast"])
def test_overfits_a_tiny_subset(shared_data, tmp_path, cpu_bf16):
    ann, n = tiny_subset(shared_data, tmp_path)
    images = str(shared_data / "coco_train" / "images")
    size = [96, 128]
    no_aug = AugmentCfg(rotation=0, scale=[1.0, 1.0], flip=False, half_body_prob=0, color_jitter=0,
                        occlusion_prob=0, shift=0, blur_prob=0)
    cfg = Config(name="tiny", out_dir=str(tmp_path / "runs"), model=ModelCfg("resnet18", "lite"),
                 train_sets=[DatasetCfg("tiny", str(ann), images)], augment=no_aug,
                 train=TrainCfg(epochs=6, samples_per_epoch=n * 16, batch_size=n, lr=2e-3, warmup_epochs=0,
                                resolution=[[0, size]], ema=0, eval_every=100, threads=2, cpu_bf16=cpu_bf16))
    history = train(cfg, progress=False)
    assert history[-1]["loss"] < history[0]["loss"]
    model = load_checkpoint(str(tmp_path / "runs" / "tiny" / "last.pt"))
    stats = evaluate_predict_fn(make_predict_fn(model, torch.device("cpu")), str(ann), images, progress=False,
                                input_size=tuple(size))
    assert stats["n_persons"] == n
    assert stats["AP"] >= 0.9, stats

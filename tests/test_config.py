import pytest

from edge_pose.config import ConfigError, load_config


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_defaults_and_overrides(tmp_path):
    p = write(tmp_path, "train_sets:\n  - {name: a, ann: a.json, images: img}\n")
    cfg = load_config(p, ["train.epochs=3", "model.backbone=mobilenetv3"])
    assert cfg.train.epochs == 3 and cfg.model.backbone == "mobilenetv3" and cfg.model.head == "lite"
    assert cfg.train_sets[0].weight == 1.0 and cfg.val_set is None


@pytest.mark.parametrize("text,needle", [
    ("train_sets: [{ann: a}]\ntrain: {epoch: 3}\n", "train.epoch"),
    ("train_sets: [{ann: a}]\nmodel: {head: big}\n", "model.head"),
    ("train_sets: [{ann: a, joint_weights: [1, 2]}]\n", "joint_weights"),
    ("model: {head: lite}\n", "train_sets"),
    ("train_sets: [{ann: a}]\ntrain: {workers: -1}\n", "train.workers"),
    ("train_sets: [{ann: a}]\ntrain: {image_cache_gb: -2}\n", "train.image_cache_gb"),
    ("train_sets: [{ann: a}]\ndistill: {min_score: 1.5}\n", "distill.min_score"),
])
def test_bad_config_names_the_key(tmp_path, text, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_config(write(tmp_path, text))


def test_shipped_configs_load():
    from pathlib import Path
    for p in sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")):
        cfg = load_config(p)
        assert cfg.val_set is not None and len(cfg.train_sets) >= 2

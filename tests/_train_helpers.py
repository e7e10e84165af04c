"""Helper for the training tests: the config of a short real run (2 epochs of 16 coco_train samples at 128x96)."""
from edge_pose.config import AugmentCfg, Config, DatasetCfg, ModelCfg, TrainCfg


def short_run_config(shared, tmp_path, name, **train):
    """Config of a short mobilenetv3-lite run on ../shared/data/coco_train into tmp_path/runs/<name>;
    keyword arguments override TrainCfg fields."""
    options = dict(epochs=2, samples_per_epoch=16, batch_size=8, lr=1e-3, warmup_epochs=0,
                   resolution=[[0, [96, 128]]], ema=0.99, threads=2)
    options.update(train)
    return Config(name=name, out_dir=str(tmp_path / "runs"), model=ModelCfg("mobilenetv3", "lite"),
                  train_sets=[DatasetCfg("coco_train", str(shared / "coco_train" / "person_keypoints.json"),
                                         str(shared / "coco_train" / "images"))],
                  augment=AugmentCfg(), val_set=None, train=TrainCfg(**options))

import pytest

pytest.importorskip("torch")

from edge_pose.config import Config, DatasetCfg, TrainCfg  # noqa: E402
from edge_pose.train.loop import lr_at, resolution_at  # noqa: E402


def cfg(**train):
    return Config(train_sets=[DatasetCfg("a", "a.json", "img")], train=TrainCfg(**train))


def test_resolution_phases_and_final_phase_lr():
    c = cfg(epochs=10, lr=1e-3, warmup_epochs=1, resolution=[[0, [96, 128]], [8, [192, 256]]], final_phase_lr=5e-4)
    assert resolution_at(c, 0) == (96, 128) and resolution_at(c, 7) == (96, 128) and resolution_at(c, 8) == (192, 256)
    assert lr_at(c, 0.5) == pytest.approx(5e-4)  # warm-up
    assert lr_at(c, 7.99) < 2e-4  # cosine (over all epochs) low before the last phase
    assert lr_at(c, 8.0) == pytest.approx(5e-4)  # the last phase starts again at final_phase_lr
    assert lr_at(c, 10.0) == pytest.approx(5e-5)
    single = cfg(epochs=10, lr=1e-3, warmup_epochs=0, final_phase_lr=5e-4)  # one phase: plain cosine
    assert lr_at(single, 0.0) == pytest.approx(1e-3) and lr_at(single, 10.0) == pytest.approx(1e-5)


def test_step_schedule():
    c = cfg(epochs=10, lr=1e-3, warmup_epochs=0, schedule="step", step_milestones=[4, 8])
    assert [round(lr_at(c, e), 7) for e in (0, 4, 9)] == [1e-3, 1e-4, 1e-5]

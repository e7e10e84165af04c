"""`train.channels_last` changes the memory layout of the training, not its results."""
import pytest

torch = pytest.importorskip("torch")

from _train_helpers import short_run_config  # noqa: E402

from edge_pose.models import load_checkpoint  # noqa: E402
from edge_pose.train.loop import train  # noqa: E402


def run(shared, tmp_path, channels_last):
    cfg = short_run_config(shared, tmp_path, "cl%d" % channels_last, seed=3, channels_last=channels_last)
    history = train(cfg, progress=False)
    return [h["loss"] for h in history], load_checkpoint(str(tmp_path / "runs" / cfg.name / "last.pt"))


def test_channels_last_trains_the_same_model(shared_data, tmp_path):
    loss_cl, model_cl = run(shared_data, tmp_path, True)
    loss_nchw, model_nchw = run(shared_data, tmp_path, False)
    # the second epoch's loss already carries the first epoch's rounding differences (0.25 % with seed 3)
    assert loss_cl == pytest.approx(loss_nchw, rel=5e-3)
    # the checkpoint loads into an ordinary model and predicts what the NCHW run's does (up to the float rounding
    # of another summation order, which Adam's normalised steps carry into the weights: 0.2 % after 4 steps)
    x = torch.rand(2, 3, 128, 96)
    with torch.no_grad():
        a, b = model_cl.eval()(x), model_nchw.eval()(x)
    assert float((a - b).abs().max()) < 0.02 * float(b.abs().max())
    assert all(p.is_contiguous() for p in model_cl.parameters())

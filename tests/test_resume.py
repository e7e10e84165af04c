"""A run stopped after an epoch (here by `max_minutes`) and resumed with `--resume auto` trains what one
uninterrupted run does: same losses, same weights, one log row per epoch."""
import csv

import pytest

torch = pytest.importorskip("torch")

from _train_helpers import short_run_config  # noqa: E402

from edge_pose.train.loop import train  # noqa: E402


def config(shared, tmp_path, name, max_minutes=None):
    return short_run_config(shared, tmp_path, name, seed=5, max_minutes=max_minutes)


def test_stopped_and_resumed_run_equals_one_run(shared_data, tmp_path, capfd):
    whole = train(config(shared_data, tmp_path, "whole"), progress=False)

    cfg = config(shared_data, tmp_path, "split", max_minutes=0.0)  # stops after its first epoch
    first = train(cfg, resume="auto", progress=False)
    err = capfd.readouterr().err
    assert "no checkpoint" in err and "max_minutes reached: stopped after epoch 0" in err
    assert [h["epoch"] for h in first] == [0]
    split = train(cfg, resume="auto", progress=False)
    assert "resumed from" in capfd.readouterr().err

    assert [h["epoch"] for h in split] == [0, 1]
    assert [h["loss"] for h in split] == pytest.approx([h["loss"] for h in whole], rel=1e-6)
    a = torch.load(str(tmp_path / "runs" / "whole" / "last.pt"), map_location="cpu", weights_only=False)
    b = torch.load(str(tmp_path / "runs" / "split" / "last.pt"), map_location="cpu", weights_only=False)
    for key in ("model", "ema"):
        for name, value in a[key].items():
            assert torch.allclose(value.float(), b[key][name].float(), atol=1e-6), (key, name)
    with open(tmp_path / "runs" / "split" / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1"]


def test_worker_processes_train_what_the_thread_trains(shared_data, tmp_path):
    """train.workers: 2 builds the batches in two processes; they are the same batches, so the same run."""
    thread = train(short_run_config(shared_data, tmp_path, "thread", seed=5), progress=False)
    workers = train(short_run_config(shared_data, tmp_path, "workers", seed=5, workers=2), progress=False)
    assert [h["loss"] for h in workers] == pytest.approx([h["loss"] for h in thread], rel=1e-6)


@pytest.mark.filterwarnings("ignore:.*torch.cuda.amp.GradScaler:FutureWarning")
def test_the_loss_scaler_of_an_older_torch(monkeypatch):
    """torch < 2.3 has no torch.amp.GradScaler: the CUDA one of torch.cuda.amp stands in (disabled on a CPU)."""
    from edge_pose.train.loop import grad_scaler

    assert not grad_scaler(False).is_enabled()
    monkeypatch.delattr(torch.amp, "GradScaler")
    old = grad_scaler(False)
    assert isinstance(old, torch.cuda.amp.GradScaler) and not old.is_enabled()


def test_a_cpu_checkpoint_resumes_with_mixed_precision(capfd):
    """A CPU run saves its disabled loss scaler's empty state; an enabled scaler (a GPU resuming it) starts afresh
    instead of refusing it, and a saved state is restored."""
    from edge_pose.train.loop import grad_scaler, restore_scaler

    saved_on_cpu = grad_scaler(False).state_dict()
    assert saved_on_cpu == {}
    enabled = torch.amp.GradScaler("cpu", enabled=True, init_scale=1024.0)
    with pytest.raises(RuntimeError):
        enabled.load_state_dict(saved_on_cpu)
    restore_scaler(enabled, saved_on_cpu)
    assert "starting it afresh" in capfd.readouterr().err and enabled.get_scale() == 1024.0
    other = torch.amp.GradScaler("cpu", enabled=True, init_scale=8.0)
    restore_scaler(other, enabled.state_dict())
    assert other.get_scale() == 1024.0
    restore_scaler(grad_scaler(False), enabled.state_dict())  # a GPU checkpoint resumed on a CPU

"""Knowledge distillation (distill.teacher): the teacher's heatmaps, flip test included, line up with the
student's crops and enter the training loss."""
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from _train_helpers import short_run_config  # noqa: E402
from test_export import real_crops, realistic  # noqa: E402

from edge_pose.config import ConfigError  # noqa: E402
from edge_pose.decode import flip_heatmaps  # noqa: E402
from edge_pose.export import export_onnx  # noqa: E402
from edge_pose.models import build_model  # noqa: E402
from edge_pose.train.loop import load_teacher, train  # noqa: E402

ENGINES = Path(__file__).resolve().parents[1] / "engines"
CPU = torch.device("cpu")


def mirrored(x):
    return torch.flip(x, dims=[3])


def test_flip_teacher_is_mirror_symmetric(shared_data):
    """With flip the teacher answers a mirrored crop with exactly the mirrored heatmaps (left/right swapped);
    the plain model does not, so the test can tell the two apart."""
    x = torch.from_numpy(real_crops(shared_data, 8)).contiguous(memory_format=torch.channels_last)
    gaps = {}
    for flip in (False, True):
        teacher = load_teacher(str(ENGINES / "mobilenetv3.onnx"), CPU, flip=flip)
        gaps[flip] = np.abs(teacher(mirrored(x)).numpy() - flip_heatmaps(teacher(x).numpy())).max()
    assert gaps[True] <= 1e-5
    assert gaps[False] > 1e-3


def test_checkpoint_and_onnx_teachers_agree(shared_data, tmp_path):
    crops = real_crops(shared_data, 12)
    model = realistic(build_model("mobilenetv3", "lite"), crops[:8])
    torch.save({"arch": model.arch, "model": model.state_dict()}, tmp_path / "t.pt")
    onnx_path = export_onnx(model, str(tmp_path / "t.onnx"))
    x = torch.from_numpy(crops[8:]).contiguous(memory_format=torch.channels_last)
    from_pt = load_teacher(str(tmp_path / "t.pt"), CPU, flip=True)(x).numpy()
    from_onnx = load_teacher(onnx_path, CPU, flip=True)(x).numpy()
    assert from_pt.shape == (4, 17, 64, 48)
    assert np.abs(from_pt - from_onnx).max() <= 1e-4


def test_onnx_teacher_refuses_other_training_sizes():
    path = str(ENGINES / "mobilenetv3.onnx")
    load_teacher(path, CPU, sizes=[(192, 256)])
    with pytest.raises(ConfigError, match="96x128"):
        load_teacher(path, CPU, sizes=[(96, 128), (192, 256)])


def _first_epoch_loss(shared, tmp_path, name, teacher, weight):
    """Training loss of one epoch at a vanishing learning rate, starting from the shipped mobilenetv3."""
    cfg = short_run_config(shared, tmp_path, name, epochs=1, lr=1e-9, ema=0, resolution=[[0, [192, 256]]])
    cfg.model.init = str(ENGINES / "mobilenetv3.onnx")
    cfg.distill.teacher = teacher and str(ENGINES / teacher)
    cfg.distill.weight = weight
    cfg.distill.flip = True
    return train(cfg, progress=False)[-1]["loss"]


def test_the_teacher_is_what_the_student_is_trained_towards(shared_data, tmp_path):
    """Distilling only (weight 1) from the student's own weights costs far less than from another model or
    than the ground truth: the loss compares the student with the teacher's heatmaps of the same crops."""
    itself = _first_epoch_loss(shared_data, tmp_path, "self", "mobilenetv3.onnx", 1.0)
    other = _first_epoch_loss(shared_data, tmp_path, "other", "resnet18.onnx", 1.0)
    ground_truth = _first_epoch_loss(shared_data, tmp_path, "gt", None, 0.0)
    assert itself < 0.7 * other
    assert itself < 0.5 * ground_truth

"""model.init: a BatchNorm-folded ONNX back into a trainable PoseNet (edge_pose/models/unfold.py)."""
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from _train_helpers import short_run_config  # noqa: E402
from test_export import real_crops, realistic  # noqa: E402

from edge_pose.config import DatasetCfg  # noqa: E402
from edge_pose.export import export_onnx  # noqa: E402
from edge_pose.models import build_model  # noqa: E402
from edge_pose.models.unfold import load_folded, model_from_onnx, onnx_convs  # noqa: E402
from edge_pose.runtime import open as open_runtime  # noqa: E402
from edge_pose.train.loop import train  # noqa: E402

ENGINES = Path(__file__).resolve().parents[1] / "engines"


@pytest.mark.parametrize("backbone", ["mobilenetv3", "resnet18"])
def test_export_then_unfold_gives_back_the_model(shared_data, tmp_path, backbone):
    crops = real_crops(shared_data, 16)
    model = realistic(build_model(backbone, "lite"), crops[:8])
    with torch.no_grad():
        want = model(torch.from_numpy(crops[8:])).numpy()
    path = export_onnx(model, str(tmp_path / "m.onnx"))
    back = model_from_onnx(path, crops[:8])
    with torch.no_grad():
        got = back(torch.from_numpy(crops[8:])).numpy()
    assert np.abs(got - want).max() <= 1e-4
    # every BatchNorm is back, with the statistics of its input on the calibration crops
    bns = [m for m in back.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == sum(isinstance(m, torch.nn.BatchNorm2d) for m in build_model(backbone, "lite").modules())
    first = back.backbone.bn1 if backbone == "resnet18" else back.backbone.features[0][1]
    conv = back.backbone.conv1 if backbone == "resnet18" else back.backbone.features[0][0]
    with torch.no_grad():
        y = conv(torch.from_numpy(crops[:8]))
    assert torch.allclose(first.running_mean, y.mean(dim=(0, 2, 3)), atol=1e-4)
    assert torch.allclose(first.running_var, y.var(dim=(0, 2, 3), unbiased=False), rtol=1e-3, atol=1e-5)


def test_shipped_model_unfolds_to_what_onnxruntime_computes(shared_data):
    crops = real_crops(shared_data, 16)
    path = str(ENGINES / "mobilenetv3.onnx")
    model = model_from_onnx(path, crops[:8])
    want = open_runtime(path).infer(crops[8:])
    with torch.no_grad():
        got = model(torch.from_numpy(crops[8:])).numpy()
    assert np.abs(got - want).max() <= 1e-4


def test_weights_of_another_architecture_are_refused(shared_data):
    crops = real_crops(shared_data, 4)
    with pytest.raises(ValueError, match="convolutions"):
        load_folded(build_model("mobilenetv3", "lite"), onnx_convs(ENGINES / "resnet18.onnx"), crops)


def _val_ap(shared, tmp_path, name, init):
    cfg = short_run_config(shared, tmp_path, name, epochs=1, lr=1e-7, resolution=[[0, [192, 256]]])
    cfg.model.init = init
    cfg.val_set = DatasetCfg("coco_val_dev", str(shared / "coco_val_dev" / "person_keypoints.json"),
                             str(shared / "coco_val_dev" / "images"))
    return train(cfg, progress=False)[-1]["AP"]


def test_training_from_a_shipped_onnx_starts_where_it_is(shared_data, tmp_path):
    """One near-zero-lr epoch from engines/mobilenetv3.onnx keeps its validation AP; from scratch it is ~0."""
    shipped = json.loads((ENGINES / "manifest.json").read_text())
    shipped_ap = next(m for m in shipped["models"] if m["name"] == "mobilenetv3")["coco_val_dev"]["AP"]
    from_onnx = _val_ap(shared_data, tmp_path, "init", str(ENGINES / "mobilenetv3.onnx"))
    scratch = _val_ap(shared_data, tmp_path, "scratch", None)
    assert from_onnx >= 0.8 * shipped_ap
    assert scratch < 0.2 * shipped_ap


def test_ema_of_an_initialised_model_starts_at_full_decay():
    """From trained weights (model.init) the EMA averages at its decay at once instead of following the raw
    weights through its warm-up."""
    from edge_pose.train.loop import Ema

    model = build_model("mobilenetv3", "lite")
    cold, warm = Ema(model, 0.998), Ema(model, 0.998)
    warm.warm()
    before = model.head.final.weight.detach().clone()
    with torch.no_grad():
        model.head.final.weight.add_(1.0)
    cold.update(model)
    warm.update(model)
    moved = {name: float((e.model.head.final.weight - before).mean()) for name, e in (("cold", cold), ("warm", warm))}
    assert moved["warm"] == pytest.approx(0.002, rel=1e-3)
    assert moved["cold"] > 0.99  # warming up: decay ~0 at the first update

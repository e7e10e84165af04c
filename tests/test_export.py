"""ONNX export: BatchNorm folded, dynamic batch, metadata, and ONNX Runtime matches torch on real crops."""
import json

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from edge_pose.export import export_onnx, parity  # noqa: E402
from edge_pose.models import build_model  # noqa: E402
from edge_pose.preprocess import make_batch  # noqa: E402
from edge_pose.skeleton import KEYPOINT_NAMES  # noqa: E402


def real_crops(shared, n=8):
    coco = json.loads((shared / "coco_val_dev" / "person_keypoints.json").read_text())
    files = {im["id"]: im["file_name"] for im in coco["images"]}
    batches = []
    for a in [a for a in coco["annotations"] if a.get("num_keypoints", 0) > 0][:n]:
        img = cv2.imread(str(shared / "coco_val_dev" / "images" / files[a["image_id"]]))
        batches.append(make_batch(img, [a["bbox"]])[0])
    return np.concatenate(batches)


def realistic(model, crops):
    """Random weights, BN statistics gathered on real crops, a final layer scaled to heatmaps peaking at 1
    (trained heatmaps live in [0, 1]: the 1e-4 tolerance is meant at that scale)."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average
            m.reset_running_stats()
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(crops))
        model.eval()
        peak = model(torch.from_numpy(crops)).abs().max()
        model.head.final.weight /= peak
        model.head.final.bias /= peak
    return model


@pytest.mark.parametrize("backbone,head", [("resnet18", "lite"), ("mobilenetv3", "lite"), ("mobilenetv3", "deconv")])
def test_onnx_matches_torch_on_real_crops(shared_data, tmp_path, backbone, head):
    crops = real_crops(shared_data)
    torch.manual_seed(0)
    model = realistic(build_model(backbone, head), crops)
    reference = build_model(backbone, head)
    reference.load_state_dict(model.state_dict())
    path = export_onnx(model, str(tmp_path / "m.onnx"), provenance={"test": True})
    g = onnx.load(path)
    assert "BatchNormalization" not in {n.op_type for n in g.graph.node}
    meta = {p.key: p.value for p in g.metadata_props}
    assert json.loads(meta["edge_pose.input_size"]) == [192, 256]
    assert tuple(json.loads(meta["edge_pose.keypoint_names"])) == KEYPOINT_NAMES
    assert meta["edge_pose.head"] == head and json.loads(meta["edge_pose.provenance"]) == {"test": True}
    dims = [d.dim_param or d.dim_value for d in g.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [3, 256, 192] and isinstance(dims[0], str)  # dynamic batch
    with torch.no_grad():
        assert float(reference.eval()(torch.from_numpy(crops)).abs().max()) > 0.1  # a real signal is compared
    assert parity(reference, path, crops) <= 1e-4
    assert parity(reference, path, crops[:1]) <= 1e-4


def test_fp16_weight_storage_round_trips_and_quantizer_sees_weights(tmp_path):
    """Shipped ResNet-18 stores float16 weights + Cast (40 MB limit); restoring them gives float32 initializers."""
    import onnxruntime as ort

    from edge_pose.export import restore_fp32_weights, store_weights_fp16

    torch.manual_seed(0)
    model = build_model("mobilenetv3", "lite").eval()
    path = export_onnx(model, str(tmp_path / "m.onnx"))
    size32 = (tmp_path / "m.onnx").stat().st_size
    store_weights_fp16(path)
    assert (tmp_path / "m.onnx").stat().st_size < 0.6 * size32
    x = np.random.default_rng(0).standard_normal((2, 3, 256, 192)).astype(np.float32)
    out16 = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    restored = restore_fp32_weights(onnx.load(path))
    assert "Cast" not in {n.op_type for n in restored.graph.node}
    assert all(i.data_type == onnx.TensorProto.FLOAT for i in restored.graph.initializer)
    sess = ort.InferenceSession(restored.SerializeToString(), providers=["CPUExecutionProvider"])
    assert np.abs(sess.run(None, {"input": x})[0] - out16).max() < 1e-6  # the same float16-rounded weights

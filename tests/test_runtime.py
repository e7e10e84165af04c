from __future__ import annotations

import json
import logging
import sys
import types

import numpy as np
import pytest

from edge_pose import runtime
from edge_pose.runtime import ModelNotFound, zoo

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(0)
WEIGHT = RNG.standard_normal((17, 3, 1, 1)).astype(np.float32)
BIAS = RNG.standard_normal(17).astype(np.float32)


def tiny_model(path, input_shape=("batch", 3, 256, 192)):
    """AveragePool 4x4 / stride 4, then a 1x1 Conv to 17 channels: [N,3,256,192] -> [N,17,64,48]."""
    h, w = input_shape[2] // 4, input_shape[3] // 4
    graph = helper.make_graph(
        [helper.make_node("AveragePool", ["input"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
         helper.make_node("Conv", ["pooled", "W", "B"], ["heatmaps"])],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [input_shape[0], 17, h, w])],
        initializer=[numpy_helper.from_array(WEIGHT, "W"), numpy_helper.from_array(BIAS, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def reference(x):
    n, c, h, w = x.shape
    pooled = x.reshape(n, c, h // 4, 4, w // 4, 4).mean(axis=(3, 5))
    return np.einsum("kc,nchw->nkhw", WEIGHT[:, :, 0, 0], pooled) + BIAS[None, :, None, None]


def test_onnxruntime_backend(tmp_path, caplog):
    path = tiny_model(tmp_path / "tiny.onnx")
    x = RNG.standard_normal((3, 3, 256, 192)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="edge_pose.runtime"):
        backend = runtime.open(str(path), threads=1)
    with backend:
        assert backend.name == "onnxruntime"
        assert backend.input_shape == (-1, 3, 256, 192)
        assert "CPUExecutionProvider" in backend.providers
        out = backend.infer(x)
        assert out.shape == (3, 17, 64, 48) and out.dtype == np.float32
        np.testing.assert_allclose(out, reference(x), rtol=1e-4, atol=1e-4)
        with pytest.raises(ValueError, match="does not fit"):
            backend.infer(np.zeros((1, 3, 128, 96), np.float32))
    assert "onnxruntime" in caplog.text


def test_fixed_batch_model_is_fed_in_chunks(tmp_path):
    path = tiny_model(tmp_path / "b1.onnx", (1, 3, 256, 192))
    x = RNG.standard_normal((3, 3, 256, 192)).astype(np.float32)
    with runtime.open(path) as backend:
        assert backend.input_shape == (1, 3, 256, 192)
        np.testing.assert_allclose(backend.infer(x), reference(x), rtol=1e-4, atol=1e-4)


def test_wrong_input_shape_is_refused(tmp_path):
    path = tiny_model(tmp_path / "square.onnx", ("batch", 3, 224, 224))
    with pytest.raises(ValueError, match=r"\[N,3,224,224\].*not compatible with \[N,3,256,192\]"):
        runtime.open(path)


def test_backend_choice(tmp_path):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"")
    with pytest.raises((RuntimeError, ImportError), match="TensorRT"):  # no GPU / no TensorRT here
        runtime.open(engine)
    onnx_path = tiny_model(tmp_path / "tiny.onnx")
    with pytest.raises(ValueError, match="cannot run"):
        runtime.open(onnx_path, backend="torch")
    other = tmp_path / "model.bin"
    other.write_bytes(b"")
    with pytest.raises(ValueError, match="cannot tell"):
        runtime.open(other)


def test_zoo_unknown_name_lists_shipped_models(tmp_path):
    with pytest.raises(ModelNotFound) as err:
        zoo.resolve("no-such-model", folder=tmp_path)
    assert "resnet18" in str(err.value) and "mobilenetv3" in str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    with pytest.raises(ModelNotFound, match="no model file"):
        runtime.open(str(tmp_path / "missing.onnx"))


def test_zoo_manifest(tmp_path):
    tiny_model(tmp_path / "resnet18.onnx")
    manifest = {"models": [
        {"name": "resnet18", "file": "resnet18.onnx", "sha256": zoo.sha256(tmp_path / "resnet18.onnx")},
        {"name": "mobilenetv3", "file": "mobilenetv3.onnx", "sha256": "0" * 64}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert zoo.resolve("resnet18", folder=tmp_path, verify=True) == tmp_path / "resnet18.onnx"
    assert zoo.shipped_names(tmp_path) == ("resnet18", "mobilenetv3")
    with pytest.raises(ModelNotFound, match="missing"):
        zoo.resolve("mobilenetv3", folder=tmp_path)
    with pytest.raises(ModelNotFound, match="resnet18, mobilenetv3"):
        zoo.resolve("hrnet", folder=tmp_path)
    # existing paths pass through untouched
    assert zoo.resolve(tmp_path / "resnet18.onnx") == tmp_path / "resnet18.onnx"


def test_torch_backend(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")

    def make_module():
        conv = torch.nn.Conv2d(3, 17, 1)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(WEIGHT))
            conv.bias.copy_(torch.from_numpy(BIAS))
        return torch.nn.Sequential(torch.nn.AvgPool2d(4), conv)

    # runtime.open(.pt) goes through edge_pose.models.load_checkpoint: stand in for it
    fake = types.ModuleType("edge_pose.models")
    fake.load_checkpoint = lambda path: make_module().eval()
    monkeypatch.setitem(sys.modules, "edge_pose.models", fake)
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"")
    x = RNG.standard_normal((2, 3, 256, 192)).astype(np.float32)
    with runtime.open(ckpt) as backend:
        assert backend.name == "torch" and backend.input_shape == (-1, 3, 256, 192)
        np.testing.assert_allclose(backend.infer(x), reference(x), rtol=1e-4, atol=1e-4)
    from edge_pose.runtime.torch_backend import TorchBackend

    with TorchBackend.from_module(make_module(), precision="fp16") as backend:  # fp16 on CPU: stays fp32
        np.testing.assert_allclose(backend(x), reference(x), rtol=1e-4, atol=1e-4)

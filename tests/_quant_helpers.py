"""A small real-shaped heatmap ONNX model for the quantization and TensorRT tests."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def small_model(path, depthwise=False, seed=0):
    """A small real-shaped heatmap model: [N,3,256,192] -> Conv 4x4/4 (16 ch) -> Relu -> [depthwise 3x3 ->
    Relu ->] Conv 1x1 (17 ch) -> [N,17,64,48]. Fixed random weights (the same for a seed, whatever ran before)."""
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((16, 3, 4, 4)) * 0.2).astype(np.float32)
    b1 = (rng.standard_normal(16) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((17, 16, 1, 1)) * 0.3).astype(np.float32)
    b2 = (rng.standard_normal(17) * 0.1).astype(np.float32)
    nodes = [helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], kernel_shape=[4, 4], strides=[4, 4], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1")]
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"),
             numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(b2, "b2")]
    last = "r1"
    if depthwise:
        wd = (rng.standard_normal((16, 1, 3, 3)) * 0.3).astype(np.float32)
        inits += [numpy_helper.from_array(wd, "wd")]
        nodes += [helper.make_node("Conv", ["r1", "wd"], ["cd"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=16,
                                   name="dwconv"),
                  helper.make_node("Relu", ["cd"], ["rd"], name="relu_dw")]
        last = "rd"
    nodes.append(helper.make_node("Conv", [last, "w2", "b2"], ["heatmaps"], name="conv2"))
    graph = helper.make_graph(
        nodes, "small",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 256, 192])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, ["batch", 17, 64, 48])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"edge_pose.input_size": "[192, 256]"})
    onnx.save(model, str(path))
    return path

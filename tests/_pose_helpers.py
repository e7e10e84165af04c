"""Helpers for the annotate / persons / draw tests: tiny ONNX pose models and short clips (no training needed)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "two_people.mp4"


def tiny_pose_model(path, input_shape=("batch", 3, 256, 192), seed=0):
    """AveragePool 4x4/4 -> 1x1 Conv to 17 maps -> Sigmoid: [N,3,256,192] -> [N,17,64,48] in (0, 1).

    Not a pose model, but its peaks are confident, so people are found, tracked, drawn and written.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((17, 3, 1, 1)).astype(np.float32)
    bias = rng.standard_normal(17).astype(np.float32)
    h, w = input_shape[2] // 4, input_shape[3] // 4
    graph = helper.make_graph(
        [helper.make_node("AveragePool", ["input"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
         helper.make_node("Conv", ["pooled", "W", "B"], ["logits"]),
         helper.make_node("Sigmoid", ["logits"], ["heatmaps"])],
        "tiny_pose",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [input_shape[0], 17, h, w])],
        initializer=[numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return Path(path)


def short_clip(path, frames=12, width=320, src=SAMPLE):
    """The first `frames` frames of the sample clip, resized to `width`, as H.264 through the package's writer."""
    from edge_pose.sinks import VideoWriter

    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    writer = VideoWriter(path, fps)
    with writer:
        for _ in range(frames):
            ok, img = cap.read()
            if not ok:
                break
            h = int(round(img.shape[0] * width / float(img.shape[1]) / 2)) * 2
            writer.write(cv2.resize(img, (width, h), interpolation=cv2.INTER_AREA))
    cap.release()
    return Path(path)


def count_frames_pyav(path):
    """Decoded video frames of a file, counted with PyAV, and its average frame rate."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        n = sum(1 for _ in container.decode(stream))
        return n, float(stream.average_rate), stream.codec_context.name


# a standing person's keypoints in a unit box (x right, y down), COCO order
UNIT_POSE = np.array([
    [.50, .08], [.53, .06], [.47, .06], [.56, .08], [.44, .08], [.62, .22], [.38, .22], [.66, .38], [.34, .38],
    [.68, .52], [.32, .52], [.58, .55], [.42, .55], [.58, .76], [.42, .76], [.58, .96], [.42, .96]])


def person_at(x, y, h, score=0.9):
    kp = np.zeros((17, 3), np.float32)
    kp[:, :2] = UNIT_POSE * h + [x - 0.5 * h, y - 0.5 * h]
    kp[:, 2] = score
    return kp

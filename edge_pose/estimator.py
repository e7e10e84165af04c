"""`PoseEstimator`: a model and its pre/post-processing as one callable, the library entry point.

    est = edge_pose.PoseEstimator("mobilenetv3")      # a shipped name or a .onnx / .pt path
    people = est(frame_bgr)                           # whole frame as one person
    people = est(frame_bgr, boxes=[[x, y, w, h], ...])

Each person is {"box": [x, y, w, h], "score": float, "keypoints": float32 (17, 3) x, y, score} in frame
pixels; `score` is the mean of the 17 keypoint scores. All persons of a frame go through the model in one
batch (split in chunks of `max_batch`).
"""
from __future__ import annotations

import time

import numpy as np

from edge_pose import runtime
from edge_pose.decode import decode
from edge_pose.preprocess import INPUT_SIZE, make_batch


class PoseEstimator:
    """A pose model ready to run on frames.

    model: shipped name (`mobilenetv3`, `resnet18`) or a model path; backend: "auto", "onnxruntime" or
    "torch"; device: "cpu", "cuda" or "cuda:N"; threads: CPU inference threads (None: the backend's
    default); decoder: "dark" or "argmax"; max_batch: most crops per inference call; precision: "fp32",
    "fp16" (torch on CUDA; an engine's precision is fixed when it is built).
    `timings` holds the milliseconds of the last call's stages (preprocess, infer, decode).
    """

    def __init__(self, model="mobilenetv3", backend="auto", device="cpu", threads=None, decoder="dark",
                 max_batch=8, precision="fp32"):
        if decoder not in ("dark", "argmax"):
            raise ValueError("unknown decoder %r (choose from dark, argmax)" % (decoder,))
        self.model = model
        self.decoder = decoder
        self.max_batch = max(1, int(max_batch))
        self.backend = runtime.open(model, backend=backend, device=device, threads=threads, precision=precision)
        self.timings = {}

    def infer(self, batch):
        """float32 (N, 3, 256, 192) crops -> heatmaps, in chunks of max_batch."""
        if len(batch) <= self.max_batch:
            return self.backend.infer(batch)
        return np.concatenate([self.backend.infer(batch[i:i + self.max_batch])
                               for i in range(0, len(batch), self.max_batch)])

    def __call__(self, frame_bgr, boxes=None):
        """Persons in `boxes` ([x, y, w, h] each; None: the whole frame) of a BGR uint8 frame."""
        if boxes is None:
            h, w = frame_bgr.shape[:2]
            boxes = [[0.0, 0.0, float(w), float(h)]]
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            self.timings = {"preprocess": 0.0, "infer": 0.0, "decode": 0.0}
            return []
        t0 = time.perf_counter()
        batch, mats = make_batch(frame_bgr, boxes, INPUT_SIZE)
        t1 = time.perf_counter()
        heatmaps = self.infer(batch)
        t2 = time.perf_counter()
        coords, scores = decode(heatmaps, mats, method=self.decoder)
        keypoints = np.concatenate([coords, scores[..., None]], axis=2).astype(np.float32)
        person_scores = scores.mean(axis=1)
        t3 = time.perf_counter()
        self.timings = {"preprocess": 1e3 * (t1 - t0), "infer": 1e3 * (t2 - t1), "decode": 1e3 * (t3 - t2)}
        return [{"box": [float(v) for v in box], "score": float(s), "keypoints": kp}
                for box, s, kp in zip(boxes, person_scores, keypoints)]

    @property
    def name(self):
        return getattr(self.backend, "name", "?")

    def describe(self):
        """One line: model path, backend and where it runs."""
        b = self.backend
        where = ", ".join(getattr(b, "providers", ())) or str(getattr(b, "device", ""))
        return "%s (%s, %s)" % (getattr(b, "path", self.model), b.name, where)

    def close(self):
        if self.backend is not None:
            self.backend.close()
            self.backend = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

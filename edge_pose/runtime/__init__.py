"""Inference backends behind one small protocol (`Backend`): onnxruntime, torch, tensorrt.

    with runtime.open("mobilenetv3") as model:      # a shipped name or a path
        heatmaps = model.infer(batch)                # float32 (N,3,256,192) -> (N,17,64,48)
"""
from __future__ import annotations

import logging
from pathlib import Path

from edge_pose.runtime.base import Backend
from edge_pose.runtime.zoo import ModelNotFound, resolve, shipped_names

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnxruntime", "torch", "tensorrt")
_BY_SUFFIX = {".onnx": "onnxruntime", ".pt": "torch", ".pth": "torch",
              ".engine": "tensorrt", ".plan": "tensorrt", ".trt": "tensorrt"}

__all__ = ["BACKENDS", "Backend", "ModelNotFound", "open", "resolve", "shipped_names"]


def choose_backend(path, backend="auto"):
    """The backend name for a model file: by suffix for "auto", else checked against the suffix."""
    if backend not in BACKENDS:
        raise ValueError("unknown backend %r (choose from %s)" % (backend, ", ".join(BACKENDS)))
    suffix = Path(path).suffix.lower()
    by_suffix = _BY_SUFFIX.get(suffix)
    if backend == "auto":
        if by_suffix is None:
            raise ValueError("cannot tell the backend of %s: expected .onnx, .pt or .engine (or pass backend=)"
                             % path)
        return by_suffix
    if by_suffix is not None and by_suffix != backend:
        raise ValueError("backend %r cannot run %s (a %s model)" % (backend, path, by_suffix))
    return backend


# `open` shadows the builtin inside this module only, as io.open does
def open(model, backend="auto", device="cpu", threads=None, precision="fp32"):
    """A shipped model name or a model path -> a ready Backend (use it as a context manager).

    .onnx -> ONNX Runtime (CPU, or CUDA/TensorRT EP with device="cuda" when installed), .pt -> torch,
    .engine -> TensorRT (on a CUDA GPU: device "cpu" means "cuda" there). Logs the choice at INFO level.
    """
    path = resolve(model)
    name = choose_backend(path, backend)
    if name == "tensorrt":
        from edge_pose.runtime.tensorrt import TensorRTBackend as cls

        device = "cuda" if str(device) == "cpu" else device
    elif name == "onnxruntime":
        from edge_pose.runtime.ort_backend import OnnxRuntimeBackend as cls
    else:
        from edge_pose.runtime.torch_backend import TorchBackend as cls
    instance = cls.load(path, precision=precision, device=device, threads=threads)
    log.info("model %s -> %s backend (%s)", path, name,
             ", ".join(getattr(instance, "providers", ())) or getattr(instance, "device", device))
    return instance

"""ONNX Runtime backend: CPU by default; CUDA / TensorRT execution providers when installed and asked for."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from edge_pose.runtime.base import INPUT_CHW, OUTPUT_CHW, Backend, check_batch, shape_str

log = logging.getLogger(__name__)


def _dims(shape):
    """ONNX Runtime shape (ints, strings, None) -> tuple of ints, -1 for symbolic dimensions."""
    return tuple(int(d) if isinstance(d, (int, np.integer)) and d > 0 else -1 for d in shape)


def _compatible(dims, chw):
    return len(dims) == 4 and all(d < 0 or d == want for d, want in zip(dims[1:], chw))


def _device_id(device):
    text = str(device)
    return int(text.split(":", 1)[1]) if ":" in text else 0


def choose_providers(device="cpu", precision="fp32", input_name="input", max_batch=8):
    """Execution providers (with options) for `device`: CPU; or TensorRT / CUDA EP where installed, CPU last."""
    import onnxruntime as ort

    if not str(device).startswith(("cuda", "gpu")):
        return ["CPUExecutionProvider"]
    available = ort.get_available_providers()
    dev = _device_id(device)
    providers = []
    if "TensorrtExecutionProvider" in available:
        cache = Path(os.environ.get("EDGE_POSE_CACHE", "~/.cache/edge_pose")).expanduser() / "ort_trt"
        c, h, w = INPUT_CHW
        providers.append(("TensorrtExecutionProvider", {
            "device_id": dev,
            "trt_fp16_enable": precision == "fp16",
            "trt_int8_enable": precision == "int8",
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache),
            "trt_profile_min_shapes": "%s:1x%dx%dx%d" % (input_name, c, h, w),
            "trt_profile_opt_shapes": "%s:%dx%dx%dx%d" % (input_name, max_batch, c, h, w),
            "trt_profile_max_shapes": "%s:%dx%dx%dx%d" % (input_name, max_batch, c, h, w),
        }))
    if "CUDAExecutionProvider" in available:
        providers.append(("CUDAExecutionProvider", {"device_id": dev}))
    if not providers:
        log.warning("device %s asked for, but this onnxruntime has no CUDA/TensorRT provider (%s): using CPU",
                    device, ", ".join(available))
    providers.append("CPUExecutionProvider")
    return providers


def session_options(threads=None):
    """Quiet ONNX Runtime session options, with `threads` intra-op threads (None: one per core)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = int(threads)
    return opts


def open_session(path, device="cpu", threads=None):
    """A plain InferenceSession for any ONNX model (a person detector, ...): no pose I/O check.

    CPU, or with device "cuda[:N]" the CUDA execution provider where installed (CPU last). The TensorRT EP
    is left to the pose backend, whose input shapes it knows.
    """
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if str(device).startswith(("cuda", "gpu")):
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": _device_id(device)}))
        else:
            log.warning("device %s asked for, but this onnxruntime has no CUDA provider: using CPU", device)
    return ort.InferenceSession(str(path), session_options(threads), providers=providers)


class OnnxRuntimeBackend(Backend):
    """An ONNX model through ONNX Runtime.

    threads: intra-op threads (None: ONNX Runtime's default, one per core).
    A model with a fixed batch dimension is fed in chunks of that size (the last chunk padded).
    """

    name = "onnxruntime"

    def __init__(self, path, precision="fp32", device="cpu", threads=None, max_batch=8):
        import onnxruntime as ort

        self.path = str(path)
        opts = session_options(threads)
        # read the input name first (the TensorRT EP's profile shapes need it) with a light CPU session
        first = ort.InferenceSession(self.path, opts, providers=["CPUExecutionProvider"])
        self._check_io(first)
        providers = choose_providers(device, precision, first.get_inputs()[0].name, max_batch)
        self.session = first if providers == ["CPUExecutionProvider"] else \
            ort.InferenceSession(self.path, opts, providers=providers)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = _dims(inp.shape)
        self.output_name = self.session.get_outputs()[0].name
        self.providers = tuple(self.session.get_providers())
        self.device = "cpu" if self.providers[0] == "CPUExecutionProvider" else str(device)
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def _check_io(self, session):
        inputs = session.get_inputs()
        want = shape_str((-1,) + INPUT_CHW)
        if len(inputs) != 1:
            raise ValueError("%s has %d inputs; an edge-pose model has one input %s"
                             % (self.path, len(inputs), want))
        dims = _dims(inputs[0].shape)
        if not _compatible(dims, INPUT_CHW):
            raise ValueError("%s takes input %r of shape %s, not compatible with %s (RGB crops, height 256, width 192)"
                             % (self.path, inputs[0].name, shape_str(dims), want))
        if "float" not in inputs[0].type or "16" in inputs[0].type:
            raise ValueError("%s takes input of type %s; expected float32 %s" % (self.path, inputs[0].type, want))
        out = _dims(session.get_outputs()[0].shape)
        if not _compatible(out, OUTPUT_CHW):
            log.warning("%s outputs shape %s, expected heatmaps %s", self.path, shape_str(out),
                        shape_str((-1,) + OUTPUT_CHW))

    def infer(self, batch):
        x = check_batch(batch, self.input_shape)
        fixed = self.input_shape[0]
        if fixed < 0 or x.shape[0] == fixed:
            return self._run(x)
        outs = []
        for start in range(0, x.shape[0], fixed):  # a static-batch model: feed it whole batches
            chunk = x[start:start + fixed]
            n = chunk.shape[0]
            if n < fixed:
                chunk = np.concatenate([chunk, np.zeros((fixed - n,) + chunk.shape[1:], np.float32)])
            outs.append(self._run(chunk)[:n])
        return np.concatenate(outs) if outs else np.zeros((0,) + OUTPUT_CHW, np.float32)

    def _run(self, x):
        out = self.session.run([self.output_name], {self.input_name: x})[0]
        return np.asarray(out, dtype=np.float32)

    def close(self):
        self.session = None

    def __repr__(self):
        return "OnnxRuntimeBackend(%r, providers=%s)" % (self.path, list(self.providers))

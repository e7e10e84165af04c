"""TensorRT backend: a serialized engine (`.engine`) run through the name-based API (TensorRT 8.5 and later).

    with runtime.open("engines/resnet18.int8.engine") as model:   # device "cuda" / "cuda:N"
        heatmaps = model.infer(batch)

- Before anything touches TensorRT, `cuda_api.gpu_count()` asks the driver whether there is a GPU: without
  one, deserialising an engine segfaults; here it is a clear `NoGpuError` instead.
- The sidecar `X.engine.json` written by `edge-pose build-engine` names the TensorRT version and the GPU the
  engine was built for. An engine only runs on the TensorRT version (and GPU model) that built it, so a
  mismatch is refused with `EngineMismatch`, whose message holds the command that rebuilds it here.
- One worker thread owns everything CUDA: the context (pycuda) or current device (cuda-python), the engine,
  the execution context, one stream, pinned host and device buffers sized for the profile's largest batch.
  `infer` may be called from any thread; the work runs on the owner thread (the known pycuda failure is a
  context made in one thread and used from another).
- Per call: copy in (pinned -> device, async), `set_input_shape`, `execute_async_v3`, copy out, synchronize.
  Batches above the profile's maximum are split; below its minimum, padded.
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from edge_pose.runtime import cuda_api
from edge_pose.runtime.base import INPUT_CHW, OUTPUT_CHW, Backend, check_batch

log = logging.getLogger(__name__)

# import names tried in order: NVIDIA's TensorRT, TensorRT-RTX (its own wheel, and the split PyPI wheels)
TRT_MODULES = ("tensorrt", "tensorrt_rtx", "tensorrt_rtx_bindings")


class TensorRTUnavailable(ImportError):
    """No TensorRT Python package can be imported."""


class NoGpuError(RuntimeError):
    """No CUDA GPU is visible: a TensorRT engine cannot be loaded (and trying would crash the process)."""


class EngineMismatch(RuntimeError):
    """The engine was built for another TensorRT version or GPU; the message holds the rebuild command."""


def import_tensorrt(names=None):
    """The TensorRT module: EDGE_POSE_TENSORRT_MODULE if set, else the first of TRT_MODULES that imports."""
    env = os.environ.get("EDGE_POSE_TENSORRT_MODULE")
    names = [env] if env else list(names or TRT_MODULES)
    errors = []
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError as err:
            errors.append("%s: %s" % (name, err))
    raise TensorRTUnavailable("TensorRT's Python package is not installed (%s). On a Jetson it comes with "
                              "JetPack (python3-libnvinfer); on a desktop: NVIDIA's tensorrt wheel. Without it, "
                              "use the .onnx model (ONNX Runtime)." % "; ".join(errors))


def trt_flavor(trt):
    """"tensorrt-rtx" for TensorRT-RTX, else "tensorrt"."""
    return "tensorrt-rtx" if "rtx" in getattr(trt, "__name__", "") else "tensorrt"


def trt_version(trt):
    return str(getattr(trt, "__version__", "unknown"))


def sidecar_path(engine_path):
    return Path(str(engine_path) + ".json")


def load_sidecar(engine_path):
    path = sidecar_path(engine_path)
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def rebuild_command(sidecar, engine_path):
    if sidecar and sidecar.get("rebuild_command"):
        return sidecar["rebuild_command"]
    onnx = (sidecar or {}).get("onnx", {}).get("path") or "MODEL.onnx"
    precision = (sidecar or {}).get("precision") or "int8"
    return "edge-pose build-engine --onnx %s --precision %s --out %s" % (onnx, precision, engine_path)


def _same_version(a, b):
    # 8.6.1.6 and 8.6.1 are the same release; compare the first three fields
    return str(a).split(".")[:3] == str(b).split(".")[:3]


def check_sidecar(sidecar, engine_path, flavor, version, gpu_name=None, compute_capability=None):
    """Raise EngineMismatch when the sidecar names another TensorRT (flavor / version) or GPU than here.

    gpu_name / compute_capability: this machine's (None: not checked). A sidecar without a GPU (an engine
    built without one, e.g. TensorRT-RTX ahead of time) is checked on compute capability only if it lists any.
    """
    if sidecar is None:
        return
    built = sidecar.get("tensorrt", {})
    problems = []
    if built.get("flavor", "tensorrt") != flavor:
        problems.append("it was built with %s, this is %s" % (built.get("flavor"), flavor))
    elif built.get("version") and not _same_version(built["version"], version):
        problems.append("it was built with TensorRT %s, this machine has %s" % (built["version"], version))
    gpu = sidecar.get("gpu") or {}
    if gpu_name is not None and gpu.get("name") and gpu["name"] != gpu_name:
        problems.append("it was built on a %s (compute %s), this GPU is a %s (compute %s)" % (
            gpu["name"], gpu.get("compute_capability"), gpu_name, _cc_text(compute_capability)))
    elif compute_capability is not None and gpu.get("compute_capability"):
        allowed = gpu["compute_capability"]
        allowed = allowed if isinstance(allowed, list) else [allowed]
        if _cc_text(compute_capability) not in [str(a) for a in allowed]:
            problems.append("it was built for compute capability %s, this GPU is %s"
                            % (", ".join(str(a) for a in allowed), _cc_text(compute_capability)))
    if problems:
        raise EngineMismatch("%s cannot run here: %s. A TensorRT engine only runs with the TensorRT version and "
                             "on the GPU model it was built for; rebuild it on this machine:\n    %s"
                             % (engine_path, "; ".join(problems), rebuild_command(sidecar, engine_path)))


def _cc_text(cc):
    if cc is None:
        return "?"
    return "%d.%d" % tuple(cc) if isinstance(cc, (tuple, list)) else str(cc)


class TensorRTBackend(Backend):
    """A TensorRT engine on one GPU. See the module doc.

    device: "cuda" / "cuda:N". cuda: "cuda-python" / "pycuda" / None (cuda-python when installed, else pycuda).
    strict: refuse engines whose sidecar names another TensorRT or GPU (EngineMismatch); False only warns.
    """

    name = "tensorrt"

    def __init__(self, path, precision=None, device="cuda", threads=None, cuda=None, strict=True, trt_module=None):
        self.path = str(path)
        self.sidecar = load_sidecar(self.path)
        if self.sidecar is None:
            log.warning("%s has no sidecar %s: cannot check that it was built for this TensorRT and GPU",
                        self.path, sidecar_path(self.path).name)
        self.precision = (self.sidecar or {}).get("precision", precision)
        if precision and self.sidecar and precision != self.sidecar.get("precision") and precision != "fp32":
            log.warning("%s is a %s engine; precision %r is ignored", self.path, self.precision, precision)
        self.device_index = cuda_api.device_index(device if str(device).startswith(("cuda", "gpu")) else "cuda")
        # 1. a GPU, before anything touches TensorRT (deserialising without one segfaults)
        count, reason = cuda_api.gpu_count()
        if count == 0:
            raise NoGpuError("cannot load %s: no CUDA GPU (%s). A TensorRT engine needs an NVIDIA GPU; on this "
                             "machine use the ONNX model with ONNX Runtime instead (e.g. --model resnet18)."
                             % (self.path, reason))
        if self.device_index >= count:
            raise NoGpuError("device cuda:%d asked for, but there are %d GPU(s)" % (self.device_index, count))
        self._cuda = cuda_api.choose_api(cuda)
        self._trt = trt_module or import_tensorrt()
        self.flavor, self.trt_version = trt_flavor(self._trt), trt_version(self._trt)
        self._strict = strict
        # 2. version check before any TensorRT object exists
        self._check_sidecar()
        # 3. everything CUDA / TensorRT on one owner thread
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-pose-trt")
        self._owner = None
        self._closed = False
        try:
            self._pool.submit(self._load).result()
        except BaseException:
            self._pool.submit(self._release).result()
            self._pool.shutdown(wait=True)
            raise

    def _check_sidecar(self, gpu_name=None, compute_capability=None):
        try:
            check_sidecar(self.sidecar, self.path, self.flavor, self.trt_version, gpu_name, compute_capability)
        except EngineMismatch as err:
            if self._strict:
                raise
            log.warning("%s (strict=False: trying anyway)", err)

    # ---- owner thread ------------------------------------------------------------------------------------
    def _load(self):
        trt, cu = self._trt, self._cuda
        self._owner = threading.current_thread()
        self._ctx = cu.thread_init(self.device_index)
        self.gpu_name, self.compute_capability = cu.device_properties(self.device_index)
        self._check_sidecar(self.gpu_name, self.compute_capability)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        with open(self.path, "rb") as f:
            self._engine = self._runtime.deserialize_cuda_engine(f.read())
        if self._engine is None:
            raise RuntimeError("TensorRT could not deserialise %s (see the TensorRT log above); rebuild it:\n    %s"
                               % (self.path, rebuild_command(self.sidecar, self.path)))
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise RuntimeError("TensorRT could not create an execution context for %s" % self.path)
        inputs, outputs = [], []
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            (inputs if self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(name)
        if len(inputs) != 1 or not outputs:
            raise ValueError("%s has inputs %s and outputs %s; an edge-pose engine has one input and heatmaps out"
                             % (self.path, inputs, outputs))
        self.input_name = inputs[0]
        shape = tuple(self._engine.get_tensor_shape(self.input_name))
        if len(shape) != 4 or any(d > 0 and d != want for d, want in zip(shape[1:], INPUT_CHW)):
            raise ValueError("%s takes input %s of shape %s, not [N,3,256,192]" % (self.path, self.input_name, shape))
        if shape[0] > 0:
            self.min_batch = self.max_batch = int(shape[0])
        else:
            lo, _, hi = self._engine.get_tensor_profile_shape(self.input_name, 0)
            self.min_batch, self.max_batch = int(lo[0]), int(hi[0])
        self.input_shape = (-1 if shape[0] < 0 else shape[0],) + INPUT_CHW
        self._in_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self.input_name)))
        self._context.set_input_shape(self.input_name, (self.max_batch,) + INPUT_CHW)
        self._buffers = {}
        self._host_handles = []
        self._device = []
        self._stream = cu.stream_create()
        for name in [self.input_name] + outputs:
            dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))
            full = tuple(int(d) for d in self._context.get_tensor_shape(name))
            host, handle = cu.host_empty(full, dtype)
            self._host_handles.append(handle)
            dptr = cu.malloc(host.nbytes)
            self._device.append(dptr)
            self._buffers[name] = (host, dptr)
            if not self._context.set_tensor_address(name, dptr):
                raise RuntimeError("set_tensor_address(%s) failed" % name)
        heat = [n for n in outputs if tuple(self._buffers[n][0].shape[1:]) == OUTPUT_CHW]
        self.output_name = heat[0] if heat else outputs[0]
        self._outputs = outputs
        log.info("TensorRT %s %s: %s on %s (compute %s), batch %d..%d, %s", self.flavor, self.trt_version,
                 self.path, self.gpu_name, _cc_text(self.compute_capability), self.min_batch, self.max_batch,
                 cu.name)

    def _run(self, x):
        assert threading.current_thread() is self._owner, "CUDA work must stay on the owner thread"
        cu, n = self._cuda, x.shape[0]
        host_in, d_in = self._buffers[self.input_name]
        host_in[:n] = x
        cu.htod_async(d_in, host_in[:n], self._stream)
        self._context.set_input_shape(self.input_name, (n,) + INPUT_CHW)
        if not self._context.execute_async_v3(cu.stream_handle(self._stream)):
            raise RuntimeError("TensorRT execute_async_v3 failed on %s" % self.path)
        host_out, d_out = self._buffers[self.output_name]
        cu.dtoh_async(host_out[:n], d_out, self._stream)
        cu.sync(self._stream)
        return np.array(host_out[:n], dtype=np.float32)

    def _release(self):
        cu = self._cuda
        if cu is None:
            return
        self._context = self._engine = self._runtime = None
        for dptr in getattr(self, "_device", []):
            cu.free(dptr)
        for handle in getattr(self, "_host_handles", []):
            cu.host_free(handle)
        self._device, self._host_handles, self._buffers = [], [], {}
        if getattr(self, "_stream", None) is not None:
            cu.stream_destroy(self._stream)
            self._stream = None
        if getattr(self, "_owner", None) is not None:
            cu.thread_close(getattr(self, "_ctx", None))
            self._ctx = None

    # ---- any thread --------------------------------------------------------------------------------------
    def infer(self, batch):
        if self._closed:
            raise RuntimeError("%s is closed" % self.path)
        x = check_batch(batch, self.input_shape).astype(self._in_dtype, copy=False)
        outs = []
        for start in range(0, x.shape[0], self.max_batch):
            chunk = x[start:start + self.max_batch]
            n = chunk.shape[0]
            if n < self.min_batch:
                chunk = np.concatenate([chunk, np.zeros((self.min_batch - n,) + chunk.shape[1:], chunk.dtype)])
            outs.append(self._pool.submit(self._run, chunk).result()[:n])
        return np.concatenate(outs) if outs else np.zeros((0,) + OUTPUT_CHW, np.float32)

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            self._pool.submit(self._release).result()
        finally:
            self._pool.shutdown(wait=True)

    def __repr__(self):
        return "TensorRTBackend(%r, %s %s, %s)" % (self.path, self.flavor, self.trt_version, self.precision)

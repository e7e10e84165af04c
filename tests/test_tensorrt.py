"""TensorRT: build plans per version, real builds with TensorRT-RTX (no GPU needed), the sidecar check, the GPU
check, and the backend's own logic (threads, buffers, name-based API) against a stand-in TensorRT + CUDA."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import types

import numpy as np
import pytest

from edge_pose import cli, runtime
from edge_pose.quant import trt_build
from edge_pose.runtime import cuda_api
from edge_pose.runtime import tensorrt as trt_backend
from edge_pose.runtime.tensorrt import EngineMismatch, NoGpuError, check_sidecar


def caps(version, flavor="tensorrt"):
    """Capabilities of a TensorRT release as its Python module exposes them (see trt_build.capabilities)."""
    mm = trt_build._major_minor(version)
    legacy = flavor == "tensorrt" and mm < (11, 0)
    return {"flavor": flavor, "version": version, "major_minor": mm, "legacy_precision_flags": legacy,
            "implicit_calibrator": legacy, "strongly_typed": flavor != "tensorrt" or mm >= (9, 0),
            "explicit_batch_flag": flavor == "tensorrt", "dla": flavor == "tensorrt" and mm < (11, 0),
            "builds_without_gpu": flavor == "tensorrt-rtx"}


# ---- plans ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["8.5.2", "8.6.2", "10.3.0", "10.13.0"])
def test_plan_tensorrt_8_to_10(version):
    c = caps(version)
    fp32 = trt_build.plan(c, "fp32", False)
    assert fp32["network"] == "weak" and fp32["builder_flags"] == []
    assert fp32["network_flags"] == (["EXPLICIT_BATCH"] if version.startswith("8.") else [])
    assert trt_build.plan(c, "fp16", False)["builder_flags"] == ["FP16"]
    qdq = trt_build.plan(c, "int8", True)
    assert qdq["int8_mode"] == "qdq" and qdq["builder_flags"] == ["INT8", "FP16"]
    implicit = trt_build.plan(c, "int8", False)
    assert implicit["int8_mode"] == "implicit" and "INT8" in implicit["builder_flags"]
    with pytest.raises(trt_build.BuildError, match="already quantized"):
        trt_build.plan(c, "int8", True, calibration="implicit")
    with pytest.raises(trt_build.BuildError, match="needs a QDQ ONNX"):
        trt_build.plan(c, "int8", False, calibration="qdq")
    assert "GPU_FALLBACK" in trt_build.plan(c, "int8", True, dla_core=0)["builder_flags"]
    with pytest.raises(trt_build.BuildError, match="FP16 or INT8"):
        trt_build.plan(c, "fp32", False, dla_core=0)


@pytest.mark.parametrize("version,flavor", [("11.0.0", "tensorrt"), ("1.7.1.116", "tensorrt-rtx")])
def test_plan_strongly_typed(version, flavor):
    c = caps(version, flavor)
    assert trt_build.plan(c, "fp32", False)["network_flags"] == ["STRONGLY_TYPED"]
    fp16 = trt_build.plan(c, "fp16", False)
    assert fp16["onnx_fp16"] and fp16["builder_flags"] == []
    qdq = trt_build.plan(c, "int8", True)
    assert qdq["int8_mode"] == "qdq" and qdq["builder_flags"] == [] and qdq["network_flags"] == ["STRONGLY_TYPED"]
    with pytest.raises(trt_build.BuildError, match="no implicit INT8 calibrator.*edge-pose calibrate"):
        trt_build.plan(c, "int8", False)
    with pytest.raises(trt_build.BuildError, match="Q/DQ"):
        trt_build.plan(c, "fp32", True)


def test_profile_shapes():
    assert trt_build.profile_shapes((1, 4, 8)) == ((1, 3, 256, 192), (4, 3, 256, 192), (8, 3, 256, 192))
    assert trt_build.profile_shapes((1, 4, 8), dla=True)[0] == (4, 3, 256, 192)
    with pytest.raises(trt_build.BuildError):
        trt_build.profile_shapes((4, 1, 8))
    assert trt_build.default_out("engines/resnet18.int8.onnx", "int8").name == "resnet18.int8.engine"
    assert trt_build.default_out("resnet18.onnx", "fp16").name == "resnet18.fp16.engine"


# ---- real TensorRT-RTX builds ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rtx():
    try:
        return pytest.importorskip("tensorrt_rtx_bindings", reason="TensorRT-RTX not installed (pip install "
                                   "tensorrt-rtx-cu13-libs tensorrt-rtx-cu13-bindings; Linux/Windows x86-64)")
    except OSError as err:  # the wheel is there but its libraries do not load on this platform
        pytest.skip("TensorRT-RTX does not load here: %s" % err)


def test_rtx_capabilities(rtx):
    c = trt_build.capabilities(rtx)
    assert c["flavor"] == "tensorrt-rtx" and c["builds_without_gpu"] and c["strongly_typed"]
    assert not c["legacy_precision_flags"] and not c["implicit_calibrator"]


def _small(tmp_path, name="m.onnx"):
    pytest.importorskip("onnxruntime.quantization")
    from _quant_helpers import small_model

    return small_model(tmp_path / name)


def test_rtx_accepts_the_tensorrt_target_and_refuses_the_cpu_target(tmp_path, rtx, shared_data):
    """What the TensorRT family accepts: symmetric int8 Q/DQ with float bias; not uint8 zero points."""
    from edge_pose.quant import calibset, qdq

    src = _small(tmp_path)
    x = calibset.make_crops(calibset.select(calibset.collect_candidates(
        coco=[shared_data / "coco_val_dev" / "person_keypoints.json"]), 8))
    for target in ("tensorrt", "cpu"):
        q = tmp_path / ("m.%s.onnx" % target)
        qdq.quantize(src, q, x, method="minmax", target=target, threads=1)
        out = tmp_path / ("m.%s.engine" % target)
        if target == "tensorrt":
            sidecar = trt_build.build_engine(q, out, precision="int8", trt=rtx)
            assert out.stat().st_size > 0 and sidecar["int8_mode"] == "qdq"
        else:
            with pytest.raises(trt_build.BuildError, match="could not (parse|build)"):
                trt_build.build_engine(q, out, precision="int8", trt=rtx)


def test_rtx_build_engine_cli_and_sidecar(tmp_path, rtx, monkeypatch):
    monkeypatch.setenv("EDGE_POSE_TENSORRT_MODULE", rtx.__name__)  # even where NVIDIA's tensorrt is installed too
    src = _small(tmp_path)
    out = tmp_path / "e" / "m.fp16.engine"
    assert cli.main(["build-engine", "--onnx", str(src), "--precision", "fp16", "--out", str(out),
                     "--batch-sizes", "1,2,8"]) == 0
    side = json.loads((tmp_path / "e" / "m.fp16.engine.json").read_text())
    assert side["tensorrt"] == {"flavor": "tensorrt-rtx", "version": rtx.__version__}
    assert side["precision"] == "fp16" and side["onnx_fp16"] and side["network"] == "strongly typed"
    assert side["input"]["shape"] == [-1, 3, 256, 192] and side["input"]["profile"]["opt"] == [2, 3, 256, 192]
    assert side["onnx"]["sha256"] == trt_build.sha256(src) and side["gpu"]["name"] is None
    assert "edge-pose build-engine --onnx" in side["rebuild_command"] and side["build_seconds"] >= 0
    with pytest.raises(SystemExit, match="no implicit INT8 calibrator"):
        cli.main(["build-engine", "--onnx", str(src), "--precision", "int8", "--out", str(out)])


def _default_models():
    from edge_pose.runtime import ModelNotFound, zoo

    found = []
    for name in zoo.DEFAULT_NAMES:
        try:
            found.append((name, zoo.resolve(name)))
        except ModelNotFound:
            pass
    return found


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv3"])
def test_rtx_builds_fp32_and_qdq_int8_of_the_default_models(tmp_path, rtx, shared_data, name):
    from edge_pose.quant import calibset, qdq

    models = dict(_default_models())
    if name not in models:
        pytest.skip("shipped model %s not installed (engines/ or EDGE_POSE_ENGINES)" % name)
    src = models[name]
    x = calibset.make_crops(calibset.select(calibset.collect_candidates(
        coco=[shared_data / "coco_train" / "person_keypoints.json"]), 16))
    q = tmp_path / ("%s.int8.onnx" % name)
    qdq.quantize(src, q, x, method="minmax", target="tensorrt", threads=1)
    for onnx_path, precision in ((src, "fp32"), (q, "int8")):
        out = tmp_path / ("%s.%s.engine" % (name, precision))
        side = trt_build.build_engine(onnx_path, out, precision=precision, trt=rtx)
        assert out.stat().st_size > 1000 and side["precision"] == precision
        assert side["int8_mode"] == ("qdq" if precision == "int8" else None)


# ---- sidecar and GPU checks ------------------------------------------------------------------------------------

SIDECAR = {"tensorrt": {"flavor": "tensorrt", "version": "8.6.2.3"},
           "gpu": {"name": "Orin", "compute_capability": "8.7"}, "precision": "int8",
           "onnx": {"path": "engines/resnet18.int8.onnx"},
           "rebuild_command": "edge-pose build-engine --onnx engines/resnet18.int8.onnx --precision int8 "
                              "--out r.engine"}


def test_sidecar_check():
    check_sidecar(SIDECAR, "r.engine", "tensorrt", "8.6.2")  # same release, GPU not checked
    check_sidecar(SIDECAR, "r.engine", "tensorrt", "8.6.2", "Orin", (8, 7))
    check_sidecar(None, "r.engine", "tensorrt", "10.3.0")  # no sidecar: nothing to check
    with pytest.raises(EngineMismatch) as err:
        check_sidecar(SIDECAR, "r.engine", "tensorrt", "10.3.0")
    text = str(err.value)
    assert "8.6.2.3" in text and "10.3.0" in text and SIDECAR["rebuild_command"] in text
    with pytest.raises(EngineMismatch, match="Orin.*RTX 3060"):
        check_sidecar(SIDECAR, "r.engine", "tensorrt", "8.6.2", "NVIDIA GeForce RTX 3060", (8, 6))
    with pytest.raises(EngineMismatch, match="tensorrt-rtx"):
        check_sidecar(SIDECAR, "r.engine", "tensorrt-rtx", "1.7.1")
    aot = {"tensorrt": {"flavor": "tensorrt-rtx", "version": "1.7.1.116"},
           "gpu": {"name": None, "compute_capability": ["8.6", "8.9"]}}
    check_sidecar(aot, "a.engine", "tensorrt-rtx", "1.7.1.116", "NVIDIA GeForce RTX 4090", (8, 9))
    with pytest.raises(EngineMismatch, match="compute capability 8.6, 8.9"):
        check_sidecar(aot, "a.engine", "tensorrt-rtx", "1.7.1.116", "NVIDIA A100", (8, 0))
    generic = trt_backend.rebuild_command({"onnx": {"path": "m.onnx"}, "precision": "fp16"}, "m.engine")
    assert generic == "edge-pose build-engine --onnx m.onnx --precision fp16 --out m.engine"


def test_no_gpu_is_a_clear_error_before_any_tensorrt_call(tmp_path, monkeypatch):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\0" * 64)

    def forbidden(*a, **k):
        raise AssertionError("TensorRT was touched without a GPU")

    monkeypatch.setattr(trt_backend, "import_tensorrt", forbidden)
    monkeypatch.setattr(cuda_api, "gpu_count", lambda: (0, "no NVIDIA driver (libcuda.so.1 not found)"))
    with pytest.raises(NoGpuError, match="no CUDA GPU.*ONNX Runtime"):
        runtime.open(engine)


def test_no_gpu_here_does_not_crash_the_process(tmp_path):
    """On this machine for real (no GPU): a clean error and exit status 1, not a segfault."""
    if cuda_api.gpu_count()[0] > 0:
        pytest.skip("a GPU is present")
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\0" * 64)
    code = ("from edge_pose import runtime\ntry:\n    runtime.open(%r)\nexcept Exception as e:\n"
            "    print(type(e).__name__, e)\n    raise SystemExit(1)\n" % str(engine))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-500:])
    assert "NoGpuError" in proc.stdout and "no CUDA GPU" in proc.stdout


# ---- backend logic against a stand-in TensorRT and CUDA --------------------------------------------------------

class FakeCuda:
    """Device memory as numpy bytes; records which thread does CUDA work."""

    name = "fake-cuda"

    def __init__(self):
        self.mem, self.next, self.threads, self.freed, self.contexts = {}, 4096, set(), [], []

    def _t(self):
        self.threads.add(threading.current_thread().name)

    def thread_init(self, device):
        self._t()
        self.contexts.append(("push", threading.current_thread().name))
        return "ctx"

    def thread_close(self, ctx):
        self._t()
        self.contexts.append(("pop", threading.current_thread().name))

    def device_properties(self, device):
        return "Fake GPU", (8, 7)

    def host_empty(self, shape, dtype):
        arr = np.zeros(shape, dtype)
        return arr, id(arr)

    def host_free(self, handle):
        self.freed.append(("host", handle))

    def malloc(self, nbytes):
        self._t()
        ptr, self.next = self.next, self.next + nbytes + 4096
        self.mem[ptr] = np.zeros(nbytes, np.uint8)
        return ptr

    def free(self, ptr):
        self.freed.append(("dev", ptr))
        del self.mem[ptr]

    def stream_create(self):
        return "stream"

    def stream_handle(self, stream):
        return 1234

    def stream_destroy(self, stream):
        pass

    def htod_async(self, dptr, host, stream):
        self._t()
        self.mem[dptr][:host.nbytes] = np.frombuffer(np.ascontiguousarray(host).tobytes(), np.uint8)

    def dtoh_async(self, host, dptr, stream):
        self._t()
        host[...] = np.frombuffer(self.mem[dptr][:host.nbytes].tobytes(), host.dtype).reshape(host.shape)

    def sync(self, stream):
        self._t()


def reference(x):
    """What the fake engine computes: 4x4 average pooling, channel mean, repeated on 17 heatmaps."""
    n = x.shape[0]
    pooled = x.reshape(n, 3, 64, 4, 48, 4).mean(axis=(3, 5)).mean(axis=1, keepdims=True)
    return np.repeat(pooled, 17, axis=1).astype(np.float32)


def fake_trt(cuda, version="10.3.0", calls=None):
    calls = calls if calls is not None else []
    mod = types.SimpleNamespace(__name__="tensorrt", __version__=version)
    mod.TensorIOMode = types.SimpleNamespace(INPUT="in", OUTPUT="out")
    mod.nptype = lambda dt: np.float32

    class Logger:
        WARNING = 2

        def __init__(self, level):
            calls.append("Logger")

    class Context:
        def __init__(self):
            self.shapes, self.addr = {}, {}

        def set_input_shape(self, name, shape):
            calls.append(("set_input_shape", tuple(shape)))
            self.shapes[name] = tuple(shape)
            return True

        def get_tensor_shape(self, name):
            n = self.shapes["input"][0]
            return (n, 3, 256, 192) if name == "input" else (n, 17, 64, 48)

        def set_tensor_address(self, name, ptr):
            self.addr[name] = ptr
            return True

        def execute_async_v3(self, stream_handle):
            calls.append(("execute", threading.current_thread().name, stream_handle))
            n = self.shapes["input"][0]
            x = np.frombuffer(cuda.mem[self.addr["input"]][:n * 3 * 256 * 192 * 4].tobytes(),
                              np.float32).reshape(n, 3, 256, 192)
            y = reference(x)
            cuda.mem[self.addr["heatmaps"]][:y.nbytes] = np.frombuffer(y.tobytes(), np.uint8)
            return True

    class Engine:
        num_io_tensors = 2

        def get_tensor_name(self, i):
            return ("input", "heatmaps")[i]

        def get_tensor_mode(self, name):
            return "in" if name == "input" else "out"

        def get_tensor_shape(self, name):
            return (-1, 3, 256, 192) if name == "input" else (-1, 17, 64, 48)

        def get_tensor_profile_shape(self, name, profile):
            return [(1, 3, 256, 192), (4, 3, 256, 192), (8, 3, 256, 192)]

        def get_tensor_dtype(self, name):
            return "float32"

        def create_execution_context(self):
            return Context()

    class Runtime:
        def __init__(self, logger):
            calls.append(("Runtime", threading.current_thread().name))

        def deserialize_cuda_engine(self, blob):
            calls.append("deserialize")
            return Engine()

    mod.Logger, mod.Runtime = Logger, Runtime
    return mod, calls


def _engine(tmp_path, version="10.3.0", gpu="Fake GPU"):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"engine")
    side = dict(SIDECAR, tensorrt={"flavor": "tensorrt", "version": version},
                gpu={"name": gpu, "compute_capability": "8.7"})
    (tmp_path / "m.engine.json").write_text(json.dumps(side))
    return engine


def test_backend_runs_everything_on_its_owner_thread(tmp_path, monkeypatch):
    cuda = FakeCuda()
    trt, calls = fake_trt(cuda)
    monkeypatch.setattr(cuda_api, "gpu_count", lambda: (1, ""))
    monkeypatch.setattr(cuda_api, "choose_api", lambda prefer=None: cuda)
    backend = trt_backend.TensorRTBackend(_engine(tmp_path), device="cuda:0", trt_module=trt)
    try:
        assert backend.input_shape == (-1, 3, 256, 192) and (backend.min_batch, backend.max_batch) == (1, 8)
        rng = np.random.default_rng(0)
        for n in (1, 3, 11):  # 11 = 8 + 3: split at the profile's maximum
            x = rng.standard_normal((n, 3, 256, 192)).astype(np.float32)
            np.testing.assert_allclose(backend.infer(x), reference(x), rtol=1e-5, atol=1e-6)
        shapes = [c[1] for c in calls if isinstance(c, tuple) and c[0] == "set_input_shape"]
        assert shapes[1:] == [(1, 3, 256, 192), (3, 3, 256, 192), (8, 3, 256, 192), (3, 3, 256, 192)]
        # infer from another thread: the work still runs on the owner thread
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("y", backend.infer(np.zeros((2, 3, 256, 192),
                                                                                       np.float32))))
        t.start()
        t.join()
        assert out["y"].shape == (2, 17, 64, 48)
        owners = set(c[1] for c in calls if isinstance(c, tuple) and c[0] in ("execute", "Runtime"))
        assert len(owners) == 1 and owners == cuda.threads
        assert threading.current_thread().name not in owners
        assert all(c[2] == 1234 for c in calls if isinstance(c, tuple) and c[0] == "execute")
    finally:
        backend.close()
    assert len([f for f in cuda.freed if f[0] == "dev"]) == 2 and not cuda.mem
    assert cuda.contexts == [("push", next(iter(owners))), ("pop", next(iter(owners)))]
    with pytest.raises(RuntimeError, match="closed"):
        backend.infer(np.zeros((1, 3, 256, 192), np.float32))


def test_backend_refuses_a_mismatched_engine_before_deserialising(tmp_path, monkeypatch):
    cuda = FakeCuda()
    monkeypatch.setattr(cuda_api, "gpu_count", lambda: (1, ""))
    monkeypatch.setattr(cuda_api, "choose_api", lambda prefer=None: cuda)
    trt, calls = fake_trt(cuda, version="10.3.0")
    with pytest.raises(EngineMismatch, match="(?s)8.6.2.*10.3.0.*edge-pose build-engine"):
        trt_backend.TensorRTBackend(_engine(tmp_path, version="8.6.2"), trt_module=trt)
    assert "deserialize" not in calls and not any(isinstance(c, tuple) and c[0] == "Runtime" for c in calls)
    trt, calls = fake_trt(cuda, version="10.3.0")
    with pytest.raises(EngineMismatch, match="Orin AGX.*Fake GPU"):
        trt_backend.TensorRTBackend(_engine(tmp_path, gpu="Orin AGX"), trt_module=trt)
    assert "deserialize" not in calls
    backend = trt_backend.TensorRTBackend(_engine(tmp_path, gpu="Orin AGX"), trt_module=trt, strict=False)
    backend.close()


def test_cuda_python_without_a_gpu_raises_a_named_error():
    pytest.importorskip("cuda.bindings.runtime", reason="cuda-python not installed")
    if cuda_api.gpu_count()[0] > 0:
        pytest.skip("a GPU is present")
    api = cuda_api.choose_api("cuda-python")
    with pytest.raises(cuda_api.CudaError, match="cudaGetDeviceCount failed: cudaError"):
        api._ok(api.cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")
    with pytest.raises(ValueError, match="unknown CUDA API"):
        cuda_api.choose_api("opencl")
    assert cuda_api.device_index("cuda:1") == 1 and cuda_api.device_index("cuda") == 0


def test_rtx_has_the_api_the_builder_and_backend_use(rtx):
    """The names edge-pose calls exist in a real TensorRT-family module (those that 11.x / RTX removed excepted)."""
    used = {
        "Builder": ["create_network", "create_builder_config", "create_optimization_profile",
                    "build_serialized_network", "num_DLA_cores"],
        "IBuilderConfig": ["set_memory_pool_limit", "set_flag", "add_optimization_profile", "create_timing_cache",
                           "set_timing_cache", "get_timing_cache", "default_device_type", "DLA_core",
                           "set_compute_capability", "num_compute_capabilities"],
        "INetworkDefinition": ["get_input", "get_output"],
        "OnnxParser": ["parse_from_file", "num_errors", "get_error"],
        "IOptimizationProfile": ["set_shape"],
        "ITimingCache": ["serialize"],
        "Runtime": ["deserialize_cuda_engine"],
        "ICudaEngine": ["num_io_tensors", "get_tensor_name", "get_tensor_mode", "get_tensor_shape",
                        "get_tensor_profile_shape", "get_tensor_dtype", "create_execution_context"],
        "IExecutionContext": ["set_input_shape", "get_tensor_shape", "set_tensor_address", "execute_async_v3"],
        "ILogger": ["log"],
    }
    missing = ["%s.%s" % (cls, attr) for cls, attrs in used.items() for attr in attrs
               if not hasattr(getattr(rtx, cls), attr)]
    assert not missing, missing
    assert rtx.TensorIOMode.INPUT and rtx.MemoryPoolType.WORKSPACE is not None and rtx.nptype(rtx.float32)
    assert {"ERROR", "WARNING", "INFO", "VERBOSE", "INTERNAL_ERROR"} <= set(rtx.ILogger.Severity.__members__)


@pytest.mark.parametrize("algorithm", sorted(trt_build.IMPLICIT_CALIBRATORS))
def test_implicit_calibrator_logic(tmp_path, algorithm):
    """The implicit-calibration class (TensorRT <= 10.x) against a stand-in base class and CUDA."""
    class Base:
        def __init__(self):
            self.base_init = True

    trt = types.SimpleNamespace(**{trt_build.IMPLICIT_CALIBRATORS[algorithm]: Base})
    cuda = FakeCuda()
    x = np.random.default_rng(0).standard_normal((10, 3, 256, 192)).astype(np.float32)
    loads = []
    cache = tmp_path / "calibration" / ("m.%s.cache" % algorithm)
    cal = trt_build.make_calibrator(trt, cuda, lambda: loads.append(1) or x, 4, cache, algorithm)
    assert isinstance(cal, Base) and cal.base_init and cal.get_batch_size() == 4
    assert cal.read_calibration_cache() is None
    ptrs = [cal.get_batch(["input"]) for _ in range(3)]
    assert ptrs[0] == ptrs[1] and ptrs[2] is None and loads == [1]  # 4 + 4, the last 2 left out; loaded once
    got = np.frombuffer(cuda.mem[ptrs[1][0]][:x[4:8].nbytes].tobytes(), np.float32).reshape(4, 3, 256, 192)
    np.testing.assert_array_equal(got, x[4:8])
    cal.write_calibration_cache(memoryview(b"TRT-8602-EntropyCalibration2\n"))
    assert cache.read_bytes().startswith(b"TRT-") and cal.read_calibration_cache() == cache.read_bytes()
    cal.release()
    assert not cuda.mem
    lonely = trt_build.make_calibrator(trt, cuda, None, 4, tmp_path / "none.cache", algorithm)
    assert lonely.get_batch(["input"]) is None  # a rejected cache and no calibration set: no batches
    with pytest.raises(trt_build.BuildError, match="no IInt8"):  # a TensorRT without that class
        trt_build.make_calibrator(types.SimpleNamespace(), cuda, None, 4, tmp_path / "x.cache", algorithm)
    with pytest.raises(trt_build.BuildError, match="unknown calibrator"):
        trt_build.make_calibrator(trt, cuda, None, 4, tmp_path / "x.cache", "percentile")


def test_rebuild_command_keeps_the_calibrator():
    """The sidecar's rebuild command repeats a non-default implicit calibrator (and leaves the default out)."""
    import argparse

    parser = argparse.ArgumentParser()
    trt_build.add_arguments(parser)
    args = parser.parse_args(["--onnx", "m.onnx", "--calibrator", "entropy", "--calib-list", "l.txt"])
    cmd = trt_build._rebuild_command(args, "m.onnx", "m.int8.engine", implicit=True)
    assert "--calibrator entropy" in cmd and "--calib-list l.txt" in cmd
    args = parser.parse_args(["--onnx", "m.onnx"])
    assert args.calibrator == "minmax"
    assert "--calibrator" not in trt_build._rebuild_command(args, "m.onnx", "m.int8.engine", implicit=True)

"""`edge-pose build-engine`: ONNX -> serialized TensorRT engine + `X.engine.json` sidecar.

How each precision is built depends on what the installed TensorRT offers (`capabilities`, `plan`):

| precision | TensorRT 8.5 ... 10.x (weakly typed network)     | TensorRT 11.x, TensorRT-RTX (strongly typed) |
|-----------|--------------------------------------------------|----------------------------------------------|
| fp32      | no flag                                          | STRONGLY_TYPED, the ONNX as is               |
| fp16      | BuilderFlag.FP16                                 | an FP16 copy of the ONNX (float32 I/O kept)  |
| int8, QDQ | BuilderFlag.INT8 + FP16 (explicit quantization)  | STRONGLY_TYPED: the Q/DQ nodes set the types |
| int8 from | implicit: IInt8MinMaxCalibrator (or Entropy2) on | refused (no implicit calibrator): make a QDQ |
| FP32 ONNX | the calibration set, cache in calibration/       | ONNX with `edge-pose calibrate`              |

Also: an optimisation profile over the batch (1, 4, 8 by default: min, opt, max), a workspace limit, a
timing cache file (reused and updated), and DLA (Jetson: --dla-core N, FP16/INT8, GPU fallback, a static
batch). NVIDIA's TensorRT builds only on a GPU; TensorRT-RTX builds without one (ahead of time), which is how
CI proves that the FP32 and QDQ INT8 ONNX files parse and build.
"""
from __future__ import annotations

import json
import logging
import platform
import shlex
import tempfile
import time
from pathlib import Path

import numpy as np

from edge_pose.preprocess import INPUT_SIZE
from edge_pose.runtime import cuda_api
from edge_pose.runtime.tensorrt import import_tensorrt, sidecar_path, trt_flavor, trt_version
from edge_pose.runtime.zoo import sha256

log = logging.getLogger(__name__)

DEFAULT_BATCHES = (1, 4, 8)
DEFAULT_WORKSPACE_MIB = 1024
PRECISIONS = ("fp32", "fp16", "int8")
CALIBRATION_MODES = ("auto", "qdq", "implicit")
# implicit INT8: the TensorRT calibrator class per --calibrator. minmax first: entropy calibration (KL divergence)
# cost both shipped models most of their AP in ONNX Runtime's calibrators (README, INT8), minmax kept it.
IMPLICIT_CALIBRATORS = {"minmax": "IInt8MinMaxCalibrator", "entropy": "IInt8EntropyCalibrator2"}
DEFAULT_CALIBRATOR = "minmax"
INPUT_CHW = (3, INPUT_SIZE[1], INPUT_SIZE[0])


class BuildError(RuntimeError):
    """The engine cannot be built as asked; the message says why and what to do."""


def _major_minor(version):
    parts = []
    for p in str(version).split(".")[:2]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts + [0] * (2 - len(parts)))


def capabilities(trt):
    """What the installed TensorRT offers, read from the module itself (not guessed from its version)."""
    flags = getattr(trt, "BuilderFlag", None)
    net_flags = getattr(trt, "NetworkDefinitionCreationFlag", None)
    device_type = getattr(trt, "DeviceType", None)
    flavor = trt_flavor(trt)
    return {
        "flavor": flavor,
        "version": trt_version(trt),
        "major_minor": _major_minor(trt_version(trt)),
        "legacy_precision_flags": bool(flags is not None and hasattr(flags, "INT8") and hasattr(flags, "FP16")),
        "implicit_calibrator": hasattr(trt, "IInt8EntropyCalibrator2"),
        "strongly_typed": bool(net_flags is not None and hasattr(net_flags, "STRONGLY_TYPED")),
        "explicit_batch_flag": bool(net_flags is not None and hasattr(net_flags, "EXPLICIT_BATCH")),
        "dla": bool(device_type is not None and hasattr(device_type, "DLA")),
        "builds_without_gpu": flavor == "tensorrt-rtx",
    }


def plan(caps, precision, onnx_is_qdq, calibration="auto", dla_core=None):
    """How to build: {"network": "weak"/"strong", "network_flags": [...], "builder_flags": [...],
    "onnx_fp16": bool, "int8_mode": None/"qdq"/"implicit"}. Raises BuildError for what cannot be built."""
    if precision not in PRECISIONS:
        raise BuildError("unknown precision %r (choose from %s)" % (precision, ", ".join(PRECISIONS)))
    if calibration not in CALIBRATION_MODES:
        raise BuildError("unknown calibration mode %r (choose from %s)" % (calibration, ", ".join(CALIBRATION_MODES)))
    weak = caps["legacy_precision_flags"]
    name = "%s %s" % ("TensorRT-RTX" if caps["flavor"] == "tensorrt-rtx" else "TensorRT", caps["version"])
    out = {"network": "weak" if weak else "strong", "network_flags": [], "builder_flags": [], "onnx_fp16": False,
           "int8_mode": None}
    if caps["explicit_batch_flag"] and caps["major_minor"] < (10, 0) and caps["flavor"] == "tensorrt":
        out["network_flags"].append("EXPLICIT_BATCH")  # required for ONNX before 10.0, deprecated after
    if not weak:
        if not caps["strongly_typed"]:
            raise BuildError("%s has neither the precision builder flags nor strongly typed networks" % name)
        out["network_flags"].append("STRONGLY_TYPED")
    if precision == "fp32" and onnx_is_qdq:
        raise BuildError("the ONNX is quantized (Q/DQ nodes): build it with --precision int8, or give the FP32 ONNX")
    if precision == "fp16":
        if onnx_is_qdq:
            raise BuildError("the ONNX is quantized (Q/DQ nodes): --precision int8, or give the FP32 ONNX for fp16")
        if weak:
            out["builder_flags"].append("FP16")
        else:
            out["onnx_fp16"] = True
    elif precision == "int8":
        if onnx_is_qdq:
            if calibration == "implicit":
                raise BuildError("the ONNX is already quantized (Q/DQ nodes); implicit calibration needs the FP32 "
                                 "ONNX (or use --calibration qdq)")
            out["int8_mode"] = "qdq"
            if weak:
                out["builder_flags"] += ["INT8", "FP16"]  # explicit quantization; FP16 for the float layers
        else:
            if calibration == "qdq":
                raise BuildError("--calibration qdq needs a QDQ ONNX: make one with `edge-pose calibrate --model M "
                                 "--target tensorrt`")
            if not (weak and caps["implicit_calibrator"]):
                raise BuildError("%s has no implicit INT8 calibrator (removed in TensorRT 11; TensorRT-RTX never had "
                                 "it): INT8 comes from a QDQ ONNX. Make one with `edge-pose calibrate --model M "
                                 "--target tensorrt` and build that file." % name)
            if caps["major_minor"] >= (10, 1):
                log.warning("%s: the implicit INT8 calibrator is deprecated since TensorRT 10.1; a QDQ ONNX "
                            "(edge-pose calibrate) works on every version", name)
            out["int8_mode"] = "implicit"
            out["builder_flags"] += ["INT8", "FP16"]
    if dla_core is not None:
        if not caps["dla"]:
            raise BuildError("%s has no DLA support" % name)
        if precision == "fp32":
            raise BuildError("DLA runs FP16 or INT8 only: --precision fp16 or int8")
        if weak:
            out["builder_flags"].append("GPU_FALLBACK")
    return out


def onnx_info(path):
    """(input name, input shape with -1 for symbolic dims, is_qdq) of an ONNX file."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = set(i.name for i in model.graph.initializer)
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise BuildError("%s has %d inputs; an edge-pose model has one" % (path, len(inputs)))
    dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in inputs[0].type.tensor_type.shape.dim)
    qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)
    return inputs[0].name, dims, qdq


def fp16_onnx(src, dst):
    """An FP16 copy of an FP32 ONNX with float32 inputs/outputs kept (for strongly typed TensorRT)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))
    return dst


def profile_shapes(batches, dla=False):
    """(min, opt, max) input shapes; DLA needs a static shape: min = opt = max = opt batch."""
    lo, opt, hi = (int(b) for b in batches)
    if not 1 <= lo <= opt <= hi:
        raise BuildError("--batch-sizes must be MIN,OPT,MAX with 1 <= MIN <= OPT <= MAX (got %s)" % (batches,))
    if dla:
        lo = hi = opt
    return tuple((b,) + INPUT_CHW for b in (lo, opt, hi))


def _make_logger(trt, messages):
    """A TensorRT ILogger that forwards to logging and keeps warnings and errors for the error message."""
    sev = trt.ILogger.Severity
    levels = {sev.INTERNAL_ERROR: logging.ERROR, sev.ERROR: logging.ERROR, sev.WARNING: logging.WARNING,
              sev.INFO: logging.DEBUG, sev.VERBOSE: logging.DEBUG}

    class _Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)

        def log(self, severity, msg):
            level = levels.get(severity, logging.INFO)
            if level >= logging.WARNING:
                messages.append(str(msg))
            log.log(level, "[TRT] %s", msg)

    return _Logger()


def make_calibrator(trt, cuda, load_inputs, batch, cache_path, algorithm=DEFAULT_CALIBRATOR, stream=None):
    """An implicit INT8 calibrator (TensorRT <= 10.x; IMPLICIT_CALIBRATORS[algorithm]) fed with the calibration
    crops, reading and writing `cache_path`. load_inputs() -> float32 (N,3,256,192) is called only when TensorRT
    asks for batches (no usable cache). Device memory through the `cuda` API object (cuda_api), in the calling
    thread's context."""

    if algorithm not in IMPLICIT_CALIBRATORS:
        raise BuildError("unknown calibrator %r (choose from %s)" % (algorithm, ", ".join(IMPLICIT_CALIBRATORS)))
    base = getattr(trt, IMPLICIT_CALIBRATORS[algorithm], None)
    if base is None:
        raise BuildError("this TensorRT has no %s: make a QDQ ONNX with edge-pose calibrate"
                         % IMPLICIT_CALIBRATORS[algorithm])

    class Calibrator(base):
        def __init__(self):
            base.__init__(self)
            self.batch = int(batch)
            self.cache_path = Path(cache_path)
            self.inputs = None
            self.index = 0
            self.host = self.dptr = None
            self.stream = stream if stream is not None else cuda.stream_create()

        def get_batch_size(self):
            return self.batch

        def get_batch(self, names, *args):
            if self.inputs is None:
                if load_inputs is None:
                    log.error("TensorRT did not accept the calibration cache %s and there is no calibration set "
                              "to calibrate again: give --calib-coco / --calib-images / --calib-video / --calib-list",
                              self.cache_path)
                    return None
                self.inputs = np.ascontiguousarray(load_inputs(), dtype=np.float32)
                log.info("implicit INT8 calibration on %d crops, batch %d", len(self.inputs), self.batch)
                self.host, self._host_handle = cuda.host_empty((self.batch,) + INPUT_CHW, np.float32)
                self.dptr = cuda.malloc(self.host.nbytes)
            if self.index + self.batch > len(self.inputs):  # the last partial batch is left out
                return None
            self.host[:] = self.inputs[self.index:self.index + self.batch]
            self.index += self.batch
            cuda.htod_async(self.dptr, self.host, self.stream)
            cuda.sync(self.stream)
            return [int(self.dptr)] * len(names)

        def read_calibration_cache(self, *args):
            if self.cache_path.is_file():
                log.info("reading the calibration cache %s", self.cache_path)
                return self.cache_path.read_bytes()
            return None

        def write_calibration_cache(self, cache, *args):
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            self.cache_path.write_bytes(bytes(cache))
            log.info("wrote the calibration cache %s", self.cache_path)

        def release(self):
            if self.dptr is not None:
                cuda.free(self.dptr)
                cuda.host_free(self._host_handle)
                self.dptr = None

    return Calibrator()


def _flag(enum, name):
    value = getattr(enum, name, None)
    if value is None:
        raise BuildError("this TensorRT has no %s.%s" % (enum.__name__, name))
    return value


def build_engine(onnx_path, out_path, precision="int8", batches=DEFAULT_BATCHES, workspace_mib=DEFAULT_WORKSPACE_MIB,
                 timing_cache=None, dla_core=None, calibration="auto", load_calib_inputs=None, calib_cache=None,
                 calib_list=None, calib_batch=8, calib_algorithm=DEFAULT_CALIBRATOR, compute_capabilities=(), device=0,
                 trt=None, rebuild_command=None):
    """Build and write the engine and its sidecar; returns the sidecar dict. See the module doc."""
    trt = trt or import_tensorrt()
    caps = capabilities(trt)
    onnx_path, out_path = Path(onnx_path), Path(out_path)
    input_name, input_dims, is_qdq = onnx_info(onnx_path)
    how = plan(caps, precision, is_qdq, calibration, dla_core)
    gpu = None
    count, reason = cuda_api.gpu_count()
    if count == 0 and not caps["builds_without_gpu"]:
        raise BuildError("TensorRT's builder needs an NVIDIA GPU (%s); build the engine on the machine that will "
                         "run it" % reason)
    cuda, ctx = None, None
    if count > 0:
        try:
            cuda = cuda_api.choose_api()
            ctx = cuda.thread_init(device)
            name, cc = cuda.device_properties(device)
            gpu = {"name": name, "compute_capability": "%d.%d" % cc, "device": int(device)}
        except cuda_api.CudaError as err:
            if how["int8_mode"] == "implicit":
                raise BuildError("implicit INT8 calibration runs the network on the GPU: %s" % err) from err
            cuda = None
            name, cc = cuda_api.driver_device_properties(device)
            gpu = {"name": name, "compute_capability": "%d.%d" % cc, "device": int(device)}
    if how["int8_mode"] == "implicit" and cuda is None:
        raise BuildError("implicit INT8 calibration needs a GPU and cuda-python or pycuda")
    messages = []
    logger = _make_logger(trt, messages)
    start = time.perf_counter()
    calibrator = None
    with tempfile.TemporaryDirectory(prefix="edge_pose_trt_") as tmp:
        parse_path = onnx_path
        if how["onnx_fp16"]:
            parse_path = fp16_onnx(onnx_path, Path(tmp) / "model.fp16.onnx")
        builder = trt.Builder(logger)
        flags = 0
        for f in how["network_flags"]:
            flags |= 1 << int(_flag(trt.NetworkDefinitionCreationFlag, f))
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(parse_path)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise BuildError("TensorRT %s could not parse %s:\n  %s" % (caps["version"], onnx_path,
                                                                       "\n  ".join(errors + messages[-5:])))
        config = builder.create_builder_config()
        if hasattr(config, "set_memory_pool_limit"):
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)
        for f in how["builder_flags"]:
            config.set_flag(_flag(trt.BuilderFlag, f))
        shapes = profile_shapes(batches, dla=dla_core is not None)
        profile = builder.create_optimization_profile()
        profile.set_shape(network.get_input(0).name, *shapes)
        config.add_optimization_profile(profile)
        if dla_core is not None:
            if builder.num_DLA_cores <= dla_core:
                raise BuildError("DLA core %d asked for, this device has %d" % (dla_core, builder.num_DLA_cores))
            config.default_device_type = trt.DeviceType.DLA
            config.DLA_core = int(dla_core)
            log.info("DLA core %d with GPU fallback; static batch %d (DLA has no dynamic shapes)", dla_core,
                     shapes[1][0])
        if compute_capabilities:
            if not hasattr(config, "set_compute_capability"):
                raise BuildError("--compute-capability is a TensorRT-RTX option")
            config.num_compute_capabilities = len(compute_capabilities)
            for i, cc in enumerate(compute_capabilities):
                config.set_compute_capability(_flag(trt.ComputeCapability, "SM%s" % str(cc).replace(".", "")), i)
        cache = None
        if timing_cache:
            timing_cache = Path(timing_cache)
            blob = timing_cache.read_bytes() if timing_cache.is_file() else b""
            cache = config.create_timing_cache(blob)
            if not config.set_timing_cache(cache, False):
                log.warning("timing cache %s does not match this TensorRT / GPU: starting a new one", timing_cache)
                cache = config.create_timing_cache(b"")
                config.set_timing_cache(cache, False)
        if how["int8_mode"] == "implicit":
            if calib_cache is None:
                raise BuildError("implicit INT8 calibration needs a calibration cache path")
            if load_calib_inputs is None and not Path(calib_cache).is_file():
                raise BuildError("implicit INT8 calibration needs a calibration set (--calib-coco / --calib-images /"
                                 " --calib-video / --calib-list) or an existing cache %s" % calib_cache)
            calibrator = make_calibrator(trt, cuda, load_calib_inputs, calib_batch, calib_cache, calib_algorithm)
            config.int8_calibrator = calibrator
            calib_profile = builder.create_optimization_profile()
            shape = (int(calib_batch),) + INPUT_CHW
            calib_profile.set_shape(network.get_input(0).name, shape, shape, shape)
            config.set_calibration_profile(calib_profile)
        try:
            serialized = builder.build_serialized_network(network, config)
        finally:
            if calibrator is not None:
                calibrator.release()
            if cuda is not None:
                cuda.thread_close(ctx)
        if serialized is None:
            raise BuildError("TensorRT %s could not build %s (%s):\n  %s" % (
                caps["version"], onnx_path, precision, "\n  ".join(messages[-8:]) or "no message"))
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = out_path.with_name(out_path.name + ".tmp")
        with open(tmp_out, "wb") as f:
            f.write(memoryview(serialized))
        tmp_out.replace(out_path)
        if cache is not None:
            timing_cache.parent.mkdir(parents=True, exist_ok=True)
            timing_cache.write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))
        out_name = network.get_output(0).name
    seconds = time.perf_counter() - start
    if gpu is None:
        gpu = {"name": None, "compute_capability": ["%s" % c for c in compute_capabilities] or None,
               "note": "built without a GPU (TensorRT-RTX ahead of time)"}
    from edge_pose import __version__

    sidecar = {
        "format": "edge-pose engine sidecar 1",
        "engine": out_path.name,
        "engine_bytes": out_path.stat().st_size,
        "tensorrt": {"flavor": caps["flavor"], "version": caps["version"]},
        "gpu": gpu,
        "precision": precision,
        "int8_mode": how["int8_mode"],
        "network": "strongly typed" if how["network"] == "strong" else "weakly typed",
        "builder_flags": how["builder_flags"],
        "onnx_fp16": how["onnx_fp16"],
        "input": {"name": input_name, "shape": list(input_dims), "dtype": "float32",
                  "profile": {"min": list(shapes[0]), "opt": list(shapes[1]), "max": list(shapes[2])}},
        "output": {"name": out_name},
        "onnx": {"path": str(onnx_path), "sha256": sha256(onnx_path), "qdq": is_qdq},
        "dla_core": dla_core,
        "workspace_mib": int(workspace_mib),
        "timing_cache": str(timing_cache) if timing_cache else None,
        "calibration_cache": str(calib_cache) if how["int8_mode"] == "implicit" else None,
        "calibrator": IMPLICIT_CALIBRATORS[calib_algorithm] if how["int8_mode"] == "implicit" else None,
        "calibration_list": str(calib_list) if calib_list and how["int8_mode"] == "implicit" else None,
        "build_seconds": round(seconds, 2),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {"machine": platform.machine(), "python": platform.python_version()},
        "edge_pose": __version__,
        "rebuild_command": rebuild_command or "edge-pose build-engine --onnx %s --precision %s --out %s" % (
            shlex.quote(str(onnx_path)), precision, shlex.quote(str(out_path))),
    }
    with open(sidecar_path(out_path), "w", encoding="utf-8") as f:
        json.dump(sidecar, f, indent=2)
    log.info("wrote %s (%s %s, %s, %.1f s)", out_path, caps["flavor"], caps["version"], precision, seconds)
    return sidecar


def default_out(onnx_path, precision):
    name = Path(onnx_path).name
    stem = name[:-len(".onnx")] if name.endswith(".onnx") else Path(name).stem
    for suffix in (".int8-cpu", ".int8", ".fp16", ".fp32"):
        if stem.endswith(suffix):
            stem = stem[:-len(suffix)]
    return Path(onnx_path).with_name("%s.%s.engine" % (stem, precision))


def default_timing_cache(out_path, trt):
    return Path(out_path).parent / ("timing.%s-%s.cache" % (trt_flavor(trt), trt_version(trt)))


def add_arguments(parser):
    from edge_pose.quant import calibset

    parser.add_argument("--onnx", "--model", dest="onnx", required=True, metavar="M",
                        help="ONNX model: shipped name or path; a QDQ ONNX (edge-pose calibrate) for INT8 on any "
                             "TensorRT, or the FP32 ONNX")
    parser.add_argument("--out", default=None, metavar="F",
                        help="engine file (default: next to the ONNX, <stem>.<precision>.engine); the sidecar "
                             "F.json goes next to it")
    parser.add_argument("--precision", default="int8", choices=PRECISIONS, help="(default %(default)s)")
    parser.add_argument("--calibration", default="auto", choices=CALIBRATION_MODES,
                        help="INT8: qdq = from the Q/DQ nodes of the ONNX; implicit = TensorRT's calibrator "
                             "(--calibrator) on the calibration set (TensorRT <= 10.x, FP32 ONNX); auto = qdq for a "
                             "QDQ ONNX, else implicit (default %(default)s)")
    parser.add_argument("--batch-sizes", default=",".join(str(b) for b in DEFAULT_BATCHES), metavar="MIN,OPT,MAX",
                        help="optimisation profile over the batch (default %(default)s)")
    parser.add_argument("--workspace", type=int, default=DEFAULT_WORKSPACE_MIB, metavar="MIB",
                        help="builder workspace limit in MiB (default %(default)s)")
    parser.add_argument("--timing-cache", default=None, metavar="F",
                        help="timing cache to reuse and update (default: timing.<tensorrt>-<version>.cache next "
                             "to the engine)")
    parser.add_argument("--no-timing-cache", action="store_true", help="no timing cache file")
    parser.add_argument("--dla-core", type=int, default=None, metavar="N",
                        help="Jetson: run on DLA core N (fp16/int8; GPU fallback; static batch = OPT)")
    parser.add_argument("--calib-cache", default=None, metavar="F",
                        help="implicit INT8: calibration cache to read / write (default calibration/<stem>.<calibrator>"
                             ".cache)")
    parser.add_argument("--calibrator", default=DEFAULT_CALIBRATOR, choices=sorted(IMPLICIT_CALIBRATORS),
                        help="implicit INT8: IInt8MinMaxCalibrator or IInt8EntropyCalibrator2 (default %(default)s: "
                             "entropy cost the shipped models most of their AP in ONNX Runtime's calibration)")
    parser.add_argument("--compute-capability", default="", metavar="86,89",
                        help="TensorRT-RTX: target compute capabilities (default: the library's)")
    parser.add_argument("--device", type=int, default=0, help="GPU index for the builder")
    calibset.add_arguments(parser)


def _rebuild_command(args, onnx_path, out, implicit):
    parts = ["edge-pose", "build-engine", "--onnx", str(onnx_path), "--precision", args.precision, "--out", str(out)]
    if args.batch_sizes != ",".join(str(b) for b in DEFAULT_BATCHES):
        parts += ["--batch-sizes", args.batch_sizes]
    if args.dla_core is not None:
        parts += ["--dla-core", str(args.dla_core)]
    if args.calibration != "auto":
        parts += ["--calibration", args.calibration]
    if implicit and args.calibrator != DEFAULT_CALIBRATOR:
        parts += ["--calibrator", args.calibrator]
    if implicit and (args.calib_list or args.calib_list_out):
        parts += ["--calib-list", str(args.calib_list or args.calib_list_out)]
    return " ".join(shlex.quote(p) for p in parts)


def main(args):
    if not logging.getLogger().handlers:  # progress of the long steps on stderr
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    from edge_pose import runtime
    from edge_pose.quant import calibset

    onnx_path = runtime.resolve(args.onnx)
    if onnx_path.suffix.lower() != ".onnx":
        raise SystemExit("build-engine needs an .onnx model, not %s" % onnx_path)
    try:
        batches = tuple(int(b) for b in args.batch_sizes.split(","))
        if len(batches) != 3:
            raise ValueError
    except ValueError:
        raise SystemExit("--batch-sizes takes MIN,OPT,MAX, e.g. 1,4,8") from None
    out = Path(args.out) if args.out else default_out(onnx_path, args.precision)
    try:
        trt = import_tensorrt()
    except ImportError as err:
        raise SystemExit(str(err)) from None
    if args.timing_cache:
        timing = Path(args.timing_cache)
    elif args.no_timing_cache or trt_flavor(trt) == "tensorrt-rtx":  # RTX times kernels at run time, not here
        timing = None
    else:
        timing = default_timing_cache(out, trt)
    implicit = args.precision == "int8" and not onnx_info(onnx_path)[2] and args.calibration != "qdq"
    stem = out.name.split(".")[0]
    calib_cache = Path(args.calib_cache) if args.calib_cache else Path("calibration") / (
        "%s.%s.cache" % (stem, args.calibrator))
    has_sources = bool(args.calib_list or args.calib_coco or args.calib_images or args.calib_video)
    if not args.calib_list_out and not args.calib_list:
        args.calib_list_out = str(calibset.default_list_path(stem))

    def load_inputs():
        return calibset.from_args(args, onnx_path)[1]

    try:
        sidecar = build_engine(onnx_path, out, precision=args.precision, batches=batches, workspace_mib=args.workspace,
                               timing_cache=timing, dla_core=args.dla_core, calibration=args.calibration,
                               load_calib_inputs=load_inputs if has_sources else None, calib_cache=calib_cache,
                               calib_list=args.calib_list or args.calib_list_out, calib_algorithm=args.calibrator,
                               compute_capabilities=[c for c in args.compute_capability.split(",") if c],
                               device=args.device, trt=trt,
                               rebuild_command=_rebuild_command(args, onnx_path, out, implicit))
    except BuildError as err:
        raise SystemExit("build-engine: %s" % err) from None
    gpu = sidecar["gpu"]
    print("wrote %s (%s %s, %s%s, %s, batch %s) and %s" % (
        out, sidecar["tensorrt"]["flavor"], sidecar["tensorrt"]["version"], args.precision,
        " " + sidecar["int8_mode"] if sidecar["int8_mode"] else "", gpu.get("name") or "no GPU (ahead of time)",
        args.batch_sizes, sidecar_path(out).name))
    return 0

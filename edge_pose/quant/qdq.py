"""Static INT8 quantization to a QDQ ONNX through ONNX Runtime's calibrators and QDQ quantizer.

Weights: int8, symmetric, per output channel. Bias: left in float (QuantizeBias=False): TensorRT rejects an
int32 bias DequantizeLinear, and ONNX Runtime CPU fuses DQ -> Conv(float bias) -> Q into QLinearConv as well.

Two targets differ only in the activations:
- "tensorrt" (default): int8, symmetric (zero point 0): what TensorRT's explicit quantization accepts (it
  refuses a non-zero zero point). The file also runs on ONNX Runtime CPU, but there a symmetric int8 ReLU
  output cannot be folded into the convolution, so it is not faster than FP32 there.
- "cpu": uint8, asymmetric: ONNX Runtime folds ReLU into the quantized convolutions (QLinearConv end to
  end): the fast CPU fallback. TensorRT refuses this file.

Weights on the "cpu" target: x86 CPUs without VNNI (AVX2 and AVX-512 without VNNI) multiply uint8 x int8 with
VPMADDUBSW, whose 16-bit sums saturate: ONNX Runtime's int8 kernels then drift far from the QDQ arithmetic (a
relative error of 0.11 instead of 0.02 on the test model). 7-bit weights (`reduce_range`) keep the sums in range.
`reduce_range="auto"` (the default) uses them for the cpu target when the quantizing machine is such a CPU;
TensorRT has no such limit, so the tensorrt target keeps 8 bits.

Calibration methods: minmax, percentile, entropy. The calibrators are driven directly (not through
quantize_static) so that the entropy calibrator gets a real histogram (num_bins 2048 against 128 quantized
bins; quantize_static leaves both at 128, which makes entropy the same as minmax), so that the collection
runs in chunks (the histogram calibrators otherwise keep every intermediate tensor of the whole set in
memory), and with a bounded number of threads.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

METHODS = ("minmax", "percentile", "entropy")
TARGETS = ("tensorrt", "cpu")
REDUCE_RANGE = ("auto", "on", "off")
# /proc/cpuinfo flags of non-saturating int8 products beyond AVX-512 VNNI (which NumPy's CPUID table has)
INT8_DOT_FLAGS = ("avx_vnni", "amx_int8")
DEPTHWISE = "DepthwiseConv"  # pseudo op type for exclusion lists: a Conv with one input channel per group
# op types left in float by default. CPU: ConvTranspose has no int8 kernel in ONNX Runtime (quantizing it makes
# the model slower). Measured with ONNX Runtime 1.31 on a 2-core AVX-512 VNNI CPU (see README): excluding the
# depthwise convolutions or Resize changed the lite-head ResNet-18 / MobileNetV3 latency by less than the noise,
# so they stay quantized (DepthwiseConv and Resize can still be excluded with --exclude-op-types).
DEFAULT_EXCLUDE = {"tensorrt": (), "cpu": ("ConvTranspose",)}
ENTROPY_BINS = 2048
ENTROPY_QUANTIZED_BINS = 128
DEFAULT_PERCENTILE = 99.99
CALIB_CHUNK = 16  # crops per collect_data call


class QuantizationError(RuntimeError):
    """Quantization could not be done; the message says why."""


def _ort_quant():
    try:
        from onnxruntime.quantization import QuantType, calibrate
        from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
        from onnxruntime.quantization.quant_utils import load_model_with_shape_infer
        from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry
    except ImportError as err:  # pragma: no cover - onnxruntime is a dependency
        raise QuantizationError("onnxruntime.quantization is not available (%s): pip install onnxruntime onnx"
                                % err) from err
    return QuantType, calibrate, QDQQuantizer, load_model_with_shape_infer, QDQRegistry, QLinearOpsRegistry


def _numpy_cpu_features():
    """NumPy's runtime CPU feature table (read with CPUID), or None where this NumPy does not expose it."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:
        try:
            from numpy.core._multiarray_umath import __cpu_features__
        except ImportError:
            return None
    return dict(__cpu_features__)


def cpu_int8_saturates(features=None, cpuinfo="/proc/cpuinfo"):
    """True on an x86 CPU without VNNI (ONNX Runtime's uint8 x int8 kernels can saturate there), False elsewhere
    (ARM's int8 kernels accumulate in 32 bits). AVX-512 VNNI is read from NumPy's CPUID table (`features`, by
    default NumPy's own), AVX-VNNI and AMX (absent from that table) from /proc/cpuinfo's flags. An x86 CPU with
    neither source readable counts as saturating."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return False
    features = _numpy_cpu_features() if features is None else features
    try:
        flags = set(Path(cpuinfo).read_text(errors="replace").split())
    except OSError:
        flags = set()
    avx512_vnni = features.get("AVX512VNNI") if features else "avx512_vnni" in flags
    return not (avx512_vnni or any(f in flags for f in INT8_DOT_FLAGS))


def resolve_reduce_range(reduce_range, target):
    """The `reduce_range` choice ("auto", "on", "off" or a bool) as a bool: auto is on for the cpu target on a
    CPU whose int8 kernels saturate (cpu_int8_saturates), off otherwise."""
    if isinstance(reduce_range, bool):
        return reduce_range
    if reduce_range not in REDUCE_RANGE:
        raise QuantizationError("reduce_range must be one of %s, not %r" % (", ".join(REDUCE_RANGE), reduce_range))
    if reduce_range == "auto":
        return target == "cpu" and cpu_int8_saturates()
    return reduce_range == "on"


def quantizable_op_types():
    _, _, _, _, qdq, qlinear = _ort_quant()
    return sorted(set(qdq) | set(qlinear))


def _is_depthwise(node, shapes):
    if node.op_type != "Conv":
        return False
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    if group <= 1:
        return False
    weight = shapes.get(node.input[1])
    return weight is not None and len(weight) == 4 and weight[1] == 1


def nodes_to_exclude(model, op_types=(), names=()):
    """Names of the nodes excluded from quantization: by op type (DepthwiseConv included) and by name."""
    op_types = set(op_types or ())
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    out = [n.name for n in model.graph.node if n.op_type in op_types
           or (DEPTHWISE in op_types and _is_depthwise(n, shapes))]
    known = set(n.name for n in model.graph.node)
    unknown = [n for n in (names or ()) if n not in known]
    if unknown:
        raise QuantizationError("--exclude-nodes: no node named %s in the model" % ", ".join(unknown))
    return sorted(set(out) | set(names or ()))


class _Chunk:
    """A CalibrationDataReader over one chunk of the calibration inputs."""

    def __init__(self, input_name, inputs, batch):
        self._items = iter([{input_name: inputs[i:i + batch]} for i in range(0, len(inputs), batch)])

    def get_next(self):
        return next(self._items, None)

    def __iter__(self):
        return self

    def __next__(self):
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item

    def __len__(self):  # pragma: no cover - quantize_static's strided mode only
        return 0


def _session(path, threads):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # as the calibrators do
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def compute_ranges(model_path, inputs, method="entropy", symmetric=True, percentile=DEFAULT_PERCENTILE,
                   num_bins=ENTROPY_BINS, batch=8, threads=1, workdir=None, op_types=None):
    """Activation ranges of a float model over the calibration inputs, by one of METHODS.

    Returns what the calibrator's compute_data returns (TensorsData), ready for the QDQ quantizer.
    """
    _, calibrate, _, _, _, _ = _ort_quant()
    if method not in METHODS:
        raise QuantizationError("unknown calibration method %r (choose from %s)" % (method, ", ".join(METHODS)))
    inputs = np.asarray(inputs, dtype=np.float32)
    if inputs.ndim != 4 or len(inputs) == 0:
        raise QuantizationError("calibration inputs must be a non-empty (N, 3, H, W) batch")
    op_types = list(op_types or quantizable_op_types())
    tmp = Path(workdir or tempfile.mkdtemp(prefix="edge_pose_calib_"))
    augmented = str(tmp / ("augmented_%s.onnx" % method))
    model_path = Path(model_path)
    if method == "minmax":
        cal = calibrate.MinMaxCalibrater(model_path, op_types, augmented, symmetric=symmetric)
    elif method == "percentile":
        cal = calibrate.PercentileCalibrater(model_path, op_types, augmented, symmetric=symmetric,
                                             num_bins=int(num_bins), percentile=float(percentile))
    else:
        cal = calibrate.EntropyCalibrater(model_path, op_types, augmented, symmetric=symmetric,
                                          num_bins=int(num_bins), num_quantized_bins=ENTROPY_QUANTIZED_BINS)
    cal.augment_graph()
    cal.infer_session = _session(augmented, threads)
    input_name = cal.infer_session.get_inputs()[0].name
    start = time.perf_counter()
    # the calibrators print progress on stdout for every chunk: keep it for the debug log
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        for i in range(0, len(inputs), CALIB_CHUNK):
            cal.collect_data(_Chunk(input_name, inputs[i:i + CALIB_CHUNK], batch))
        ranges = cal.compute_data()
    log.debug("calibrator output:\n%s", sink.getvalue()[-2000:])
    log.info("calibration %s: %d tensors from %d crops in %.1f s", method, len(list(ranges.keys())), len(inputs),
             time.perf_counter() - start)
    cal.infer_session = None
    return ranges


def _check_opset(model):
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < 13:
        raise QuantizationError("per-channel QDQ needs ONNX opset >= 13 (the model has %d): re-export it "
                                "(edge-pose export uses 17)" % opset)


def quantize(model_path, out_path, inputs, method="entropy", target="tensorrt", exclude_op_types=None,
             exclude_nodes=(), percentile=DEFAULT_PERCENTILE, num_bins=ENTROPY_BINS, threads=1, batch=8,
             provenance=None, reduce_range="auto"):
    """Calibrate `model_path` on `inputs` (float32 crops) and write the QDQ INT8 model to `out_path`.

    exclude_op_types: None for the target's defaults (DEFAULT_EXCLUDE), else the op types to keep in float
    (DepthwiseConv: depthwise convolutions). reduce_range: "auto", "on", "off" (7-bit weights, see the module
    docstring). Returns a dict describing what was done.
    """
    import onnx

    from edge_pose.export import restore_fp32_weights

    QuantType, _, QDQQuantizer, load_model_with_shape_infer, _, _ = _ort_quant()
    if target not in TARGETS:
        raise QuantizationError("unknown target %r (choose from %s)" % (target, ", ".join(TARGETS)))
    symmetric = target == "tensorrt"
    reduce = resolve_reduce_range(reduce_range, target)
    excluded_types = list(DEFAULT_EXCLUDE[target] if exclude_op_types is None else exclude_op_types)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edge_pose_quant_") as tmp:
        # ONNX Runtime writes shape-inferred copies next to the model: work on a copy in a folder of ours
        src = Path(tmp) / "model.onnx"
        # weights stored as float16 (+ Cast, see export.store_weights_fp16) go back to float32 initializers,
        # else the quantizer does not see them as Conv weights and leaves them in float
        source = restore_fp32_weights(onnx.load(str(model_path)))
        onnx.save(source, str(src))
        _check_opset(source)
        excluded = nodes_to_exclude(source, excluded_types, exclude_nodes)
        op_types = quantizable_op_types()
        ranges = compute_ranges(src, inputs, method, symmetric=symmetric, percentile=percentile,
                                num_bins=num_bins, batch=batch, threads=threads, workdir=tmp, op_types=op_types)
        model = load_model_with_shape_infer(src)
        extra = {
            "ActivationSymmetric": symmetric,
            "WeightSymmetric": True,
            "QuantizeBias": False,
        }
        quantizer = QDQQuantizer(model, True, reduce, QuantType.QInt8,
                                 QuantType.QInt8 if symmetric else QuantType.QUInt8,
                                 ranges, [], excluded, op_types, extra)
        with contextlib.redirect_stdout(io.StringIO()):
            quantizer.quantize_model()
        qmodel = quantizer.model.model
    # metadata: the float model's, plus how this one was made
    del qmodel.metadata_props[:]
    for prop in source.metadata_props:
        qmodel.metadata_props.add(key=prop.key, value=prop.value)
    info = {
        "method": method, "target": target, "activations": "int8 symmetric" if symmetric else "uint8 asymmetric",
        "weights": "int%d symmetric per-channel" % (7 if reduce else 8), "reduce_range": reduce, "bias": "float",
        "excluded_op_types": excluded_types,
        "excluded_nodes": len(excluded), "n_crops": int(len(inputs)),
        "percentile": float(percentile) if method == "percentile" else None,
        "num_bins": int(num_bins) if method != "minmax" else None,
        "source_model": str(model_path), "onnxruntime": _ort_version(),
    }
    info.update(provenance or {})
    qmodel.metadata_props.add(key="edge_pose.quantization", value=json.dumps(info, sort_keys=True))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(qmodel, str(out_path))
    info["seconds"] = round(time.perf_counter() - start, 1)
    info["summary"] = summarize(qmodel)
    log.info("quantized %s (%s, %s): %s", out_path.name, method, target, info["summary"])
    return info


def _ort_version():
    import onnxruntime

    return onnxruntime.__version__


def summarize(model):
    """Counts that tell what a QDQ model holds: Q/DQ nodes, quantized weights, per-channel weights, int32 DQ."""
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    inits = {i.name: i for i in model.graph.initializer}
    ops = Counter(n.op_type for n in model.graph.node)
    dq_weights = per_channel = int32_dq = 0
    for n in model.graph.node:
        if n.op_type != "DequantizeLinear" or n.input[0] not in inits:
            continue
        init = inits[n.input[0]]
        if init.data_type == onnx.TensorProto.INT32:
            int32_dq += 1
        elif len(init.dims) > 1:
            dq_weights += 1
            scale = inits.get(n.input[1])
            if scale is not None and len(scale.dims) == 1 and scale.dims[0] > 1:
                per_channel += 1
    return {"QuantizeLinear": ops.get("QuantizeLinear", 0), "DequantizeLinear": ops.get("DequantizeLinear", 0),
            "quantized_weights": dq_weights, "per_channel_weights": per_channel, "int32_dequantize": int32_dq,
            "float_ops": sum(v for k, v in ops.items() if k not in ("QuantizeLinear", "DequantizeLinear"))}


def is_qdq(model_path):
    """True when the ONNX file holds QuantizeLinear / DequantizeLinear nodes (an explicitly quantized model)."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)

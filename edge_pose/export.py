"""Training checkpoint -> ONNX: dynamic batch, BatchNorm folded, metadata_props describing the model."""
from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np

from edge_pose import preprocess as pre
from edge_pose.skeleton import KEYPOINT_NAMES

OPSET = 17  # TensorRT 8.5 (JetPack 5.1) parses up to opset 17


def fold_batchnorm(model):
    """Fold every BatchNorm2d that directly follows a Conv2d / ConvTranspose2d into it (eval mode, in place)."""
    import torch
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    from edge_pose.models.unfold import conv_bn_pairs

    model.eval()
    for parent, a, b in conv_bn_pairs(model):
        conv, bn = parent._modules[a], parent._modules[b]
        parent._modules[a] = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
        parent._modules[b] = nn.Identity()
    with torch.no_grad():
        return model


def metadata(model, provenance=None, input_size=pre.INPUT_SIZE):
    arch = getattr(model, "arch", {})
    meta = {
        "edge_pose.input_size": json.dumps(list(input_size)),
        "edge_pose.input_layout": "NCHW RGB float32",
        "edge_pose.mean": json.dumps([float(v) for v in pre.MEAN]),
        "edge_pose.std": json.dumps([float(v) for v in pre.STD]),
        "edge_pose.heatmap_stride": str(pre.HEATMAP_STRIDE),
        "edge_pose.keypoint_names": json.dumps(list(KEYPOINT_NAMES)),
        "edge_pose.backbone": str(arch.get("backbone", "")),
        "edge_pose.head": str(arch.get("head", "")),
        "edge_pose.provenance": json.dumps(provenance or {}),
    }
    return meta


def export_onnx(model, path, provenance=None, input_size=pre.INPUT_SIZE, opset=OPSET):
    """Export a PoseNet (eval mode) to `path`; returns the path. Written to a temporary name, then renamed."""
    import onnx
    import torch

    model = fold_batchnorm(model.cpu().eval())
    x = torch.zeros(1, 3, input_size[1], input_size[0])
    tmp = path + ".tmp.onnx"
    # the TorchScript exporter (deprecated since torch 2.9, still shipped) gives plain opset-17 graphs that
    # TensorRT 8.5+ parses; the dynamo exporter needs a newer opset for the same model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (x,), tmp, input_names=["input"], output_names=["heatmaps"], opset_version=opset,
                          dynamic_axes={"input": {0: "batch"}, "heatmaps": {0: "batch"}}, do_constant_folding=True,
                          dynamo=False)
    m = onnx.load(tmp)
    del m.metadata_props[:]
    for k, v in metadata(model, provenance, input_size).items():
        m.metadata_props.add(key=k, value=v)
    m.producer_name = "edge-pose"
    onnx.checker.check_model(m)
    onnx.save(m, tmp)
    os.replace(tmp, path)
    return path


def store_weights_fp16(path, min_elements=1024):
    """Store the large float32 initializers of an ONNX as float16, each followed by a Cast back to float32.

    The graph still computes in float32 (ONNX Runtime and TensorRT fold the casts into constants at load), the
    file is half the size: how a ResNet-18 stays under the repository's 40 MB limit. Weight rounding moves the
    heatmaps by about 1e-3.
    """
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(path)
    g = m.graph
    casts = []
    for init in g.initializer:
        if init.data_type != onnx.TensorProto.FLOAT or int(np.prod(init.dims)) < min_elements:
            continue
        w = numpy_helper.to_array(init)
        name = init.name
        init.CopyFrom(numpy_helper.from_array(w.astype(np.float16), name + "_fp16"))
        casts.append(helper.make_node("Cast", [name + "_fp16"], [name], to=onnx.TensorProto.FLOAT,
                                      name=name + "_to_fp32"))
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    m.metadata_props.add(key="edge_pose.weights", value="float16 storage, float32 compute")
    onnx.checker.check_model(m)
    tmp = path + ".tmp.onnx"
    onnx.save(m, tmp)
    os.replace(tmp, path)
    return path


def restore_fp32_weights(model):
    """Inverse of `store_weights_fp16` on a loaded ModelProto (in place): float32 initializers, no Cast nodes.

    Tools that look for weights as initializers of Conv (the INT8 quantizer) need this form.
    """
    import onnx
    from onnx import numpy_helper

    g = model.graph
    fp16 = {i.name: i for i in g.initializer if i.data_type == onnx.TensorProto.FLOAT16}
    folded = [n for n in g.node if n.op_type == "Cast" and len(n.input) == 1 and n.input[0] in fp16
              and n.attribute and n.attribute[0].i == onnx.TensorProto.FLOAT]
    for node in folded:
        init = fp16.pop(node.input[0])
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float32), node.output[0]))
    keep = [n for n in g.node if n not in folded]
    del g.node[:]
    g.node.extend(keep)
    return model


def parity(model, onnx_path, batch):
    """Max abs difference between torch and ONNX Runtime outputs on `batch` (N,3,H,W float32)."""
    import onnxruntime as ort
    import torch

    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(batch)).numpy()
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: batch})[0]
    return float(np.abs(out - ref).max())


def add_arguments(p):
    p.add_argument("--checkpoint", required=True, help="training checkpoint (.pt) from edge-pose train")
    p.add_argument("--out", required=True, help="ONNX file to write")
    p.add_argument("--opset", type=int, default=OPSET)


def main(args):
    from edge_pose.models import load_checkpoint

    if not os.path.exists(args.checkpoint):
        print("edge-pose export: no such checkpoint: %s" % args.checkpoint, file=sys.stderr)
        return 2
    model = load_checkpoint(args.checkpoint)
    meta = model.checkpoint_meta
    cfg = meta.get("config") or {}
    provenance = {"checkpoint": os.path.basename(args.checkpoint), "epoch": meta.get("epoch"),
                  "train_sets": [d.get("name") for d in cfg.get("train_sets", [])],
                  "schedule": cfg.get("train", {}), "metrics": meta.get("metrics")}
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    export_onnx(model, args.out, provenance, opset=args.opset)
    rng = np.random.default_rng(0)
    diff = parity(load_checkpoint(args.checkpoint), args.out, rng.standard_normal((2, 3, 256, 192)).astype(np.float32))
    print("wrote %s (max |onnx - torch| = %.2e on a random batch)" % (args.out, diff))
    return 0

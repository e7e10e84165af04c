"""Start training from a shipped ONNX: its BatchNorm-folded weights back into a PoseNet with BatchNorm layers.

`edge-pose export` folds every BatchNorm into the convolution before it, so an ONNX holds W' = W * g / s and
b' = beta - mean * g / s instead of W, g, beta, mean, var. Any BatchNorm with weight sqrt(var + eps), bias
b' + mean and running statistics (mean, var) gives back exactly W' x + b' in eval mode; choosing mean and
var as the statistics of W' x on real crops also makes train mode (batch statistics) start from nearly the
same function, so a fine-tune continues from the shipped model instead of from a broken one.

The shipped files are the only weights that outlive a machine (checkpoints are not committed): this is how
a later sitting, or a user with their own data, goes on from them (`model.init:` in a training config).
"""
from __future__ import annotations

import torch
from torch import nn

CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def conv_bn_pairs(model):
    """(parent module, conv attribute name, bn attribute name) for every BatchNorm2d that directly follows a
    Conv2d / ConvTranspose2d: consecutive entries of a Sequential, or ResNet-style convN / bnN attributes."""
    found = []
    for parent in model.modules():
        names = list(parent._modules)
        if isinstance(parent, nn.Sequential):
            pairs = list(zip(names, names[1:]))
        else:
            pairs = [("conv" + n[2:], n) for n in names if n.startswith("bn") and "conv" + n[2:] in parent._modules]
        for a, b in pairs:
            if isinstance(parent._modules[a], CONVS) and isinstance(parent._modules[b], nn.BatchNorm2d):
                found.append((parent, a, b))
    return found


def onnx_convs(path):
    """[(weight, bias or None) as float32 tensors] of every Conv / ConvTranspose of an ONNX, in graph order.

    Found through the graph, not by initializer names: the exporter shares identical initializers under one
    name (Identity nodes) and may rename folded ones; float16-stored weights (a Cast) come back as float32.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        elif node.op_type in ("Cast", "Identity") and node.input[0] in values:  # float16 storage, shared
            values[node.output[0]] = values[node.input[0]]

    def tensor(name):
        if name not in values:
            raise ValueError("%s: convolution input %s is not a constant" % (path, name))
        return torch.from_numpy(values[name].astype("float32"))

    return [(tensor(n.input[1]), tensor(n.input[2]) if len(n.input) > 2 and n.input[2] else None)
            for n in graph.node if n.op_type in ("Conv", "ConvTranspose")]


def onnx_arch(path):
    """backbone / head names from an edge-pose ONNX's metadata_props (ValueError when they are missing)."""
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    backbone, head = meta.get("edge_pose.backbone"), meta.get("edge_pose.head")
    if not backbone or not head:
        raise ValueError("%s: not an edge-pose ONNX (no edge_pose.backbone / edge_pose.head metadata)" % path)
    return {"backbone": backbone, "head": head}


@torch.no_grad()
def load_folded(model, convs, calib):
    """Load BatchNorm-folded convolutions (`onnx_convs`) into `model` (a PoseNet with BatchNorm layers).

    The i-th convolution of the ONNX goes to the i-th convolution the model runs; shapes must agree, and a
    conv followed by a BatchNorm takes the folded bias into it. calib: a float32 batch (N, 3, H, W) of real
    normalised crops; each BatchNorm gets the per-channel mean and variance of its input on it.
    ValueError when the ONNX is not this architecture. Returns the model in eval mode.
    """
    calib = torch.as_tensor(calib, dtype=torch.float32)
    bn_after = {id(parent._modules[a]): parent._modules[b] for parent, a, b in conv_bn_pairs(model)}
    restored = {id(bn) for bn in bn_after.values()}
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d) and id(module) not in restored:
            raise ValueError("BatchNorm %s does not follow a convolution: cannot be restored" % name)
    order = _run_order(model, calib[:1])
    if len(order) != len(convs):
        raise ValueError("the ONNX has %d convolutions, this architecture %d" % (len(convs), len(order)))
    for i, (module, (weight, bias)) in enumerate(zip(order, convs)):
        _copy(module.weight, weight, "convolution %d weight" % i)
        bn = bn_after.get(id(module))
        if module.bias is not None or bn is not None:
            if bias is None:
                raise ValueError("convolution %d has no bias in the ONNX" % i)
            if bn is None:
                _copy(module.bias, bias, "convolution %d bias" % i)
            else:  # the folded bias belongs to the BatchNorm that follows; identity until calibrated
                _copy(bn.bias, bias, "convolution %d bias" % i)
                bn.weight.fill_(1.0)
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
        elif bias is not None:
            raise ValueError("convolution %d has a bias in the ONNX but none in this architecture" % i)
    _calibrate(model, list(bn_after.values()), calib)
    return model.eval()


def _run_order(model, x):
    """The model's convolutions in the order a forward pass runs them."""
    order, hooks = [], []
    for module in model.modules():
        if isinstance(module, CONVS):
            hooks.append(module.register_forward_hook(lambda m, _i, _o: order.append(m)))
    model.eval()
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return order


def _copy(target, value, key):
    if value is None:
        raise ValueError("weight %s is missing from the ONNX" % key)
    if tuple(target.shape) != tuple(value.shape):
        raise ValueError("%s: shape %s in the ONNX, %s in the model" % (key, tuple(value.shape), tuple(target.shape)))
    target.copy_(value)


def _calibrate(model, bns, calib):
    """BatchNorm statistics = those of its input (the bias-free conv output) on `calib`, in one eval pass
    (eval mode is exact whatever the statistics, so one pass sees every layer's true input)."""
    stats, hooks = {}, []
    for bn in bns:
        def hook(_module, inputs, _bn=bn):
            y = inputs[0].float()
            stats[_bn] = (y.mean(dim=(0, 2, 3)), y.var(dim=(0, 2, 3), unbiased=False))
        hooks.append(bn.register_forward_pre_hook(hook))
    model.eval()
    try:
        model(calib)
    finally:
        for h in hooks:
            h.remove()
    for bn, (mean, var) in stats.items():
        bias = bn.bias - bn.running_mean * bn.weight / torch.sqrt(bn.running_var + bn.eps)  # the folded b'
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.weight.copy_(torch.sqrt(var + bn.eps))
        bn.bias.copy_(bias + mean)


def model_from_onnx(path, calib, head_channels=None):
    """A trainable PoseNet (BatchNorm restored) from an edge-pose ONNX; see load_folded for `calib`."""
    from edge_pose.models import build_model

    arch = onnx_arch(path)
    model = build_model(arch["backbone"], arch["head"], head_channels=head_channels)
    return load_folded(model, onnx_convs(path), calib)

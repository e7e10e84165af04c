"""Pose networks: backbone (ResNet-18, MobileNetV3-Large) + heatmap head (deconv, lite). Needs torch."""
from __future__ import annotations

import torch
from torch import nn

from edge_pose.models.heads import DeconvHead, LiteHead
from edge_pose.models.mobilenetv3 import MobileNetV3Large
from edge_pose.models.resnet import ResNet18

BACKBONES = {"resnet18": ResNet18, "mobilenetv3": MobileNetV3Large}
HEADS = {"deconv": DeconvHead, "lite": LiteHead}


class PoseNet(nn.Module):
    def __init__(self, backbone="resnet18", head="lite", num_keypoints=17, head_channels=None):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError("unknown backbone %r (choose from %s)" % (backbone, ", ".join(BACKBONES)))
        if head not in HEADS:
            raise ValueError("unknown head %r (choose from %s)" % (head, ", ".join(HEADS)))
        self.backbone = BACKBONES[backbone]()
        kwargs = {} if head_channels is None else {"channels": int(head_channels)}
        self.head = HEADS[head](self.backbone.channels, num_keypoints, **kwargs)
        self.arch = {"backbone": backbone, "head": head, "num_keypoints": num_keypoints, "head_channels": head_channels}

    def forward(self, x):
        return self.head(self.backbone(x))


def build_model(backbone="resnet18", head="lite", num_keypoints=17, head_channels=None):
    return PoseNet(backbone, head, num_keypoints, head_channels)


def load_backbone_weights(model, state_dict):
    """Load a torchvision ImageNet state dict (resnet18 / mobilenet_v3_large) into the backbone.

    The classifier (`fc.*` / `classifier.*`) is dropped; everything else must match exactly (strict=True).
    """
    sd = {k: v for k, v in state_dict.items() if not (k.startswith("fc.") or k.startswith("classifier."))}
    model.backbone.load_state_dict(sd, strict=True)
    return model


def load_checkpoint(path, map_location="cpu"):
    """A training checkpoint (`.pt` from edge-pose train) -> PoseNet in eval mode (EMA weights if present)."""
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    model = build_model(**ckpt["arch"])
    model.load_state_dict(ckpt.get("ema") or ckpt["model"])
    model.eval()
    model.checkpoint_meta = {k: ckpt.get(k) for k in ("arch", "epoch", "config", "metrics", "input_size")}
    return model

"""Heatmap heads: `deconv` (Simple Baselines) and `lite` (upsample + depthwise-separable, with skip features)."""
from __future__ import annotations

from torch import nn
from torch.nn import functional as F


class DeconvHead(nn.Module):
    """Simple Baselines: 3 x (ConvTranspose 4x4 stride 2, 256 ch, BN, ReLU), then 1x1 conv to K."""

    def __init__(self, in_channels, num_keypoints=17, channels=256, layers=3):
        super().__init__()
        mods = []
        cin = in_channels[-1]
        for _ in range(layers):
            mods += [nn.ConvTranspose2d(cin, channels, 4, 2, 1, bias=False), nn.BatchNorm2d(channels),
                     nn.ReLU(inplace=True)]
            cin = channels
        self.deconv = nn.Sequential(*mods)
        self.final = nn.Conv2d(channels, num_keypoints, 1)
        for m in self.deconv.modules():
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, std=0.001)
        nn.init.normal_(self.final.weight, std=0.001)
        nn.init.zeros_(self.final.bias)

    def forward(self, feats):
        return self.final(self.deconv(feats[-1]))


def dw_separable(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU(inplace=True),
        nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class LiteHead(nn.Module):
    """Stride-32 features reduced to `channels`, then 3 x (bilinear upsample 2x, add a 1x1 projection of the
    backbone feature at that stride when there is one, depthwise-separable 3x3 conv), then 1x1 conv to K.

    The skips (strides 16 and 8) give back the spatial detail the deconv head has to re-learn, for a
    fraction of its FLOPs.
    """

    def __init__(self, in_channels, num_keypoints=17, channels=128):
        super().__init__()
        c3, c4, c5 = in_channels
        self.reduce = nn.Sequential(nn.Conv2d(c5, channels, 1, bias=False), nn.BatchNorm2d(channels),
                                    nn.ReLU(inplace=True))
        self.skip16 = nn.Sequential(nn.Conv2d(c4, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.skip8 = nn.Sequential(nn.Conv2d(c3, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.up16 = dw_separable(channels, channels)
        self.up8 = dw_separable(channels, channels)
        self.up4 = dw_separable(channels, channels)
        self.final = nn.Conv2d(channels, num_keypoints, 1)
        nn.init.normal_(self.final.weight, std=0.001)
        nn.init.zeros_(self.final.bias)

    @staticmethod
    def _up(x):
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)

    def forward(self, feats):
        c3, c4, c5 = feats
        x = self.reduce(c5)
        x = self.up16(self._up(x) + self.skip16(c4))
        x = self.up8(self._up(x) + self.skip8(c3))
        x = self.up4(self._up(x))
        return self.final(x)

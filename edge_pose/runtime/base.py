"""The backend protocol: one small class per inference engine, all with the same surface."""
from __future__ import annotations

import numpy as np

from edge_pose.closing import Closing

# the model contract (see DESIGN.md): input float32[N,3,256,192], output heatmaps float32[N,17,64,48]
INPUT_CHW = (3, 256, 192)
OUTPUT_CHW = (17, 64, 48)


class Backend(Closing):
    """Base class of inference backends.

    Subclasses set `name` and `input_shape` (N, C, H, W; a dynamic dimension is -1) and implement
    `infer`. Use as a context manager, or call `close()` when done.
    """

    name = "base"
    input_shape = (-1,) + INPUT_CHW

    @classmethod
    def load(cls, path, precision="fp32", device="cpu", **options):
        """Protocol constructor: `Backend.load(path, precision, device)`."""
        return cls(path, precision=precision, device=device, **options)

    def infer(self, batch):
        """float32 (N, 3, H, W) normalised crops -> float32 heatmaps (N, 17, h, w)."""
        raise NotImplementedError

    def __call__(self, batch):
        return self.infer(batch)

    def __repr__(self):
        return "%s(name=%r, input_shape=%r)" % (type(self).__name__, self.name, self.input_shape)


def check_batch(batch, input_shape):
    """Return `batch` as a C-contiguous float32 NCHW array; ValueError if it cannot fit `input_shape`."""
    x = np.ascontiguousarray(batch, dtype=np.float32)
    if x.ndim != 4 or any(want > 0 and got != want for got, want in zip(x.shape[1:], input_shape[1:])):
        raise ValueError("input batch of shape %s does not fit the model input %s"
                         % (tuple(x.shape), shape_str(input_shape)))
    return x


def shape_str(shape):
    return "[" + ",".join("N" if i == 0 and (d is None or d < 0) else ("?" if d is None or d < 0 else str(d))
                          for i, d in enumerate(shape)) + "]"

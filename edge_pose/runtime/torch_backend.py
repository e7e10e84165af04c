"""PyTorch backend: a training checkpoint (`.pt`) or an in-memory module, on CPU or CUDA (FP16 optional)."""
from __future__ import annotations

import logging

import numpy as np

from edge_pose.runtime.base import INPUT_CHW, Backend, check_batch

log = logging.getLogger(__name__)


class TorchBackend(Backend):
    """Runs a PoseNet checkpoint through `edge_pose.models.load_checkpoint`.

    device: "cpu", "cuda" or "cuda:N" (falls back to CPU with a warning when CUDA is absent).
    precision: "fp32", or "fp16" (CUDA only; on CPU it stays fp32). threads: torch.set_num_threads,
    which is process-wide.
    """

    name = "torch"
    input_shape = (-1,) + INPUT_CHW

    def __init__(self, path=None, precision="fp32", device="cpu", threads=None, module=None):
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            log.warning("device %s asked for, but torch has no CUDA here: using CPU", device)
            device = "cpu"
        self.device = torch.device(device)
        if module is None:
            from edge_pose.models import load_checkpoint

            module = load_checkpoint(str(path))
        self.path = None if path is None else str(path)
        self.half = precision == "fp16" and self.device.type == "cuda"
        if precision == "fp16" and not self.half:
            log.warning("fp16 needs CUDA: running fp32 on %s", self.device)
        self.model = module.to(self.device).eval()
        self.dtype = torch.float16 if self.half else torch.float32
        if self.half:
            self.model = self.model.half()
        self._torch = torch

    @classmethod
    def from_module(cls, module, device="cpu", precision="fp32"):
        """Wrap an in-memory nn.Module (e.g. the model being trained); it is put in eval mode."""
        return cls(None, precision=precision, device=device, module=module)

    def infer(self, batch):
        torch = self._torch
        x = check_batch(batch, self.input_shape)
        with torch.inference_mode():
            t = torch.from_numpy(x).to(self.device, dtype=self.dtype, non_blocking=True)
            out = self.model(t)
        return out.float().cpu().numpy().astype(np.float32, copy=False)

    def close(self):
        self.model = None
        if self.device.type == "cuda":
            self._torch.cuda.empty_cache()

    def __repr__(self):
        return "TorchBackend(%r, device=%s, fp16=%s)" % (self.path, self.device, self.half)

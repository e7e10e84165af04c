"""Weight averaging ("model soup") of training checkpoints fine-tuned from the same weights, with BatchNorm
statistics re-estimated on training crops (torch.optim.swa_utils.update_bn): scripts/average_checkpoints.py."""
from __future__ import annotations

import torch


def average_state_dicts(dicts):
    """Element-wise mean of floating-point tensors; other tensors (BatchNorm's num_batches_tracked) from the first.
    Every dict must hold the same keys and shapes."""
    first = dicts[0]
    for i, d in enumerate(dicts[1:], 1):
        if d.keys() != first.keys():
            raise ValueError("checkpoint %d has other weights than the first (%s)" %
                             (i, sorted(set(d) ^ set(first))[:3]))
        for k, v in d.items():
            if v.shape != first[k].shape:
                raise ValueError("checkpoint %d: %s is %s, the first has %s" % (i, k, tuple(v.shape),
                                                                                 tuple(first[k].shape)))
    out = {}
    for k, v in first.items():
        if v.dtype.is_floating_point:
            out[k] = torch.stack([d[k].float() for d in dicts]).mean(0).to(v.dtype)
        else:
            out[k] = v.clone()
    return out


def recompute_batchnorm(model, batches):
    """Running statistics of every BatchNorm layer re-estimated over `batches` (NumPy (x, ...) tuples from
    TopDownDataset.batches) as a cumulative average, then the model back in eval mode."""
    from torch.optim.swa_utils import update_bn

    update_bn((torch.from_numpy(b[0]) for b in batches), model)
    model.eval()
    return model

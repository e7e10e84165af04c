"""train/soup.py and scripts/average_checkpoints.py: checkpoint weights averaged, BatchNorm re-estimated on
real training crops."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")

from edge_pose.config import AugmentCfg  # noqa: E402
from edge_pose.models import build_model, load_checkpoint  # noqa: E402
from edge_pose.train.dataset import TopDownDataset  # noqa: E402
from edge_pose.train.soup import average_state_dicts, recompute_batchnorm  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def seeded_model(seed, backbone="mobilenetv3"):
    torch.manual_seed(seed)
    return build_model(backbone, "lite")


def test_average_is_the_elementwise_mean_and_refuses_other_architectures():
    a, b = seeded_model(0).state_dict(), seeded_model(1).state_dict()
    for v in b.values():  # give the integer buffers other values, to see which are kept
        if not v.dtype.is_floating_point:
            v.fill_(7)
    avg = average_state_dicts([a, b])
    for k, v in avg.items():
        if v.dtype.is_floating_point:
            torch.testing.assert_close(v, (a[k] + b[k]) / 2)
        else:
            assert torch.equal(v, a[k])  # BatchNorm's num_batches_tracked: the first checkpoint's
    conv = next(k for k, v in a.items() if v.ndim == 4)
    assert not torch.equal(avg[conv], a[conv])
    with pytest.raises(ValueError, match="other weights"):
        average_state_dicts([a, seeded_model(0, "resnet18").state_dict()])


def test_batchnorm_statistics_are_those_of_the_crops(coco_train_set):
    model = seeded_model(0).eval()
    data = TopDownDataset([coco_train_set], [1.0], AugmentCfg(), augment_on=False, seed=0)
    batches = list(data.batches(64, 16, prefetch=False))
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    seen = []
    hook = bn.register_forward_pre_hook(lambda m, inp: seen.append(inp[0].detach()))
    with torch.no_grad():
        for x, _, _ in batches:
            model(torch.from_numpy(x))
    hook.remove()
    feats = torch.cat(seen)  # the first BatchNorm's input does not depend on any BatchNorm statistics
    mean, var = feats.mean(dim=(0, 2, 3)), feats.var(dim=(0, 2, 3), unbiased=False)
    assert not torch.allclose(bn.running_mean, mean, atol=1e-3)  # a fresh model's statistics are not these
    recompute_batchnorm(model, batches)
    assert not model.training
    torch.testing.assert_close(bn.running_mean, mean, rtol=1e-3, atol=1e-4)
    # update_bn averages each batch's unbiased variance: within a few per cent of the pooled one
    np.testing.assert_allclose(bn.running_var.numpy(), var.numpy(), rtol=0.05, atol=1e-4)


def test_script_writes_a_checkpoint_the_tools_load(shared_data, tmp_path):
    paths = []
    for seed in (0, 1):
        m = seeded_model(seed)
        path = tmp_path / ("ckpt%d.pt" % seed)
        torch.save({"arch": m.arch, "model": m.state_dict(), "ema": None, "epoch": seed,
                    "config": {"name": "r%d" % seed}, "input_size": [192, 256]}, path)
        paths.append(str(path))
    root = shared_data / "coco_train"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"train_sets": [{"name": "coco_train", "ann": str(root / "person_keypoints.json"),
                                                   "images": str(root / "images")}],
                                   "train": {"batch_size": 16}}))
    out = tmp_path / "soup" / "last.pt"
    cmd = [sys.executable, str(REPO / "scripts" / "average_checkpoints.py"), *paths, "--config", str(cfg),
           "--out", str(out), "--bn-samples", "32", "--threads", "1"]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    soup = load_checkpoint(str(out))
    a, b = (torch.load(p, weights_only=False)["model"] for p in paths)
    name = next(k for k, v in a.items() if v.ndim == 4)  # a convolution: the plain mean of the two
    torch.testing.assert_close(soup.state_dict()[name], (a[name] + b[name]) / 2)
    assert [s["run"] for s in soup.checkpoint_meta["config"]["soup_of"]] == ["r0", "r1"]

    other = tmp_path / "other.pt"
    m = seeded_model(0, "resnet18")
    torch.save({"arch": m.arch, "model": m.state_dict()}, other)
    run = subprocess.run(cmd[:2] + [paths[0], str(other)] + cmd[4:], capture_output=True, text=True)
    assert run.returncode != 0 and "one architecture" in run.stderr

"""The training loop: AdamW + warmup/cosine or step schedule, EMA weights, AMP on CUDA, resumable checkpoints,
CSV (and TensorBoard when installed) logs, validation AP through pycocotools after every `eval_every` epochs."""
from __future__ import annotations

import csv
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

from edge_pose.config import ConfigError, load_config, to_dict
from edge_pose.models import build_model, load_backbone_weights, load_checkpoint
from edge_pose.skeleton import FLIP_INDEX
from edge_pose.train.dataset import PersonSet, TopDownDataset, cached_bytes, read_coco
from edge_pose.train.losses import LOSSES, distill_loss


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolution_at(cfg, epoch):
    size = cfg.train.resolution[0][1]
    for first, wh in cfg.train.resolution:
        if epoch >= first:
            size = wh
    return (int(size[0]), int(size[1]))


def lr_at(cfg, epoch_float):
    t = cfg.train
    last_start = t.resolution[-1][0]
    if t.final_phase_lr is not None and len(t.resolution) > 1 and epoch_float >= last_start:
        p = (epoch_float - last_start) / max(t.epochs - last_start, 1e-9)
        return t.final_phase_lr * (1.0 - 0.9 * min(p, 1.0))
    if epoch_float < t.warmup_epochs:
        return t.lr * max(epoch_float / max(t.warmup_epochs, 1e-9), 0.01)
    if t.schedule == "cosine":
        p = (epoch_float - t.warmup_epochs) / max(t.epochs - t.warmup_epochs, 1e-9)
        return t.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(p, 1.0))))
    return t.lr * (0.1 ** sum(epoch_float >= m for m in t.step_milestones))


class Ema:
    """Exponential moving average of parameters and buffers (warms up over the first steps)."""

    def __init__(self, model, decay):
        self.decay = decay
        self.model = build_model(**model.arch)
        self.model.to(next(model.parameters()).device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.restart(model)

    def restart(self, model):
        """Start averaging afresh from the live weights (after a change of input resolution: the old average,
        BatchNorm statistics included, belongs to the old size)."""
        self.updates = 0
        self.model.load_state_dict(model.state_dict())

    def warm(self):
        """Average at the full decay from the first step: the live weights are already trained (model.init), so
        there is no random start to forget, and a short warm-up would make the EMA follow the raw weights."""
        self.updates = self.WARM_UPDATES

    WARM_UPDATES = 10000  # 1 - exp(-10000 / 500): the full decay

    @torch.no_grad()
    def update(self, model):
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / 500.0))
        msd = model.state_dict()
        for k, v in self.model.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach(), alpha=1 - d)
            else:
                v.copy_(msd[k])


def grad_scaler(enabled):
    """The CUDA loss scaler of mixed precision: torch.amp.GradScaler("cuda") from torch 2.3 on, before it
    torch.cuda.amp.GradScaler (setup.py allows torch 2.1, what JetPack 6 ships)."""
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)


def restore_scaler(scaler, state):
    """The loss scaler's state from a checkpoint. A run saved without mixed precision (on the CPU) saved an empty
    state, which an enabled scaler refuses: a CPU run resumed on a GPU starts its scale afresh instead."""
    if state:
        scaler.load_state_dict(state)
    elif scaler.is_enabled():
        print("resume: the checkpoint has no loss-scaler state (a run without mixed precision): starting it afresh",
              file=sys.stderr)


def save_atomic(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def planned_sets(cfg):
    """(train set config, its loaded json, whether its images are held in memory) in config order, each json
    read once: a set is cached while its decoded size (from the json's image sizes) fits what is left of
    train.image_cache_gb; a set whose json lacks image sizes is cached."""
    budget = cfg.train.image_cache_gb * 1e9
    for d in cfg.train_sets:
        coco = read_coco(d.ann)
        size = cached_bytes(coco)
        fits = size is None or size <= budget
        if fits and size:
            budget -= size
        yield d, coco, fits


def cache_plan(cfg):
    """Which train sets hold their images in memory (planned_sets)."""
    return [fits for _, _, fits in planned_sets(cfg)]


def training_data(cfg, progress=True):
    """The config's train sets, loaded, as one TopDownDataset with its augmentation (seeded by train.seed)."""
    sets = []
    for d, coco, cache in planned_sets(cfg):
        labels = load_teacher_labels(d.teacher_labels) if d.teacher_labels else None
        sets.append(PersonSet(d.ann, d.images, d.name, d.joint_weights, d.head_top, progress=progress,
                              complete=d.complete, cutouts=cfg.augment.paste_prob > 0, cache=cache, coco=coco,
                              teacher_labels=labels))
        if labels is not None:
            labelled = sum(t is not None for t in sets[-1].teacher)
            if labelled < len(sets[-1]) and progress:
                print("train set %s: %d of %d persons have teacher labels in %s (the rest: ground truth only)"
                      % (sets[-1].name, labelled, len(sets[-1]), d.teacher_labels), file=sys.stderr)
        if not cache and progress:
            print("train set %s: %d images read from disk at each sample (over train.image_cache_gb)"
                  % (sets[-1].name, len(sets[-1].images)), file=sys.stderr)
    cached = any(d.teacher_labels for d in cfg.train_sets)
    return TopDownDataset(sets, [d.weight for d in cfg.train_sets], cfg.augment, sigma=cfg.train.sigma,
                          seed=cfg.train.seed, distill_weight=cfg.distill.weight if cached else None,
                          min_score=cfg.distill.min_score)


def load_teacher_labels(path):
    """teacher_labels.load as a ConfigError naming the key when the file is missing or not a labels file."""
    from edge_pose.train import teacher_labels

    if not os.path.exists(path):
        raise ConfigError("train_sets[].teacher_labels: no such file %s (make it with scripts/teacher_labels.py)"
                          % path)
    try:
        return teacher_labels.load(path)[0]
    except ValueError as e:
        raise ConfigError("train_sets[].teacher_labels: %s" % e) from None


def load_teacher(path, device, flip=False, sizes=(), sigma=2.0, threads=None):
    """A teacher returning heatmaps for a normalised batch: a .pt checkpoint, an edge-pose .onnx (ONNX Runtime)
    or an .onnx keypoint model such as MoveNet (`keypoint_teacher`: its keypoints rendered as Gaussians of
    `sigma`, their peaks its scores).

    With flip the heatmaps are the teacher's flip test (as `edge-pose eval --flip` scores it): the mean of its
    prediction and the mirrored prediction on the mirrored crop. `sizes`, the (width, height) crops training
    will feed it, are checked against an ONNX teacher's fixed input size (ConfigError)."""
    if not os.path.isfile(path):
        hint = " (MoveNet: python scripts/movenet_onnx.py)" if "movenet" in os.path.basename(path).lower() else ""
        raise ConfigError("distill.teacher: no such file %s%s" % (path, hint))
    if path.endswith(".onnx"):
        from edge_pose.train.evaluate import predict_heatmaps
        from edge_pose.train.keypoint_teacher import KeypointTeacher, is_keypoint_model
        if is_keypoint_model(path):
            kp_teacher = KeypointTeacher(path, sigma=sigma, threads=threads)

            def teacher(x):
                heatmaps = predict_heatmaps(kp_teacher.infer, x.float().cpu().numpy(), flip=flip)
                return torch.from_numpy(heatmaps).to(device)
            return teacher
        from edge_pose.runtime import open as open_runtime
        backend = open_runtime(path)
        want_h, want_w = backend.input_shape[2:]
        wrong = sorted({(w, h) for w, h in sizes if (want_w > 0 and w != want_w) or (want_h > 0 and h != want_h)})
        if wrong:
            raise ConfigError("distill.teacher %s takes %dx%d crops (width x height); train.resolution also "
                              "trains at %s (a .pt teacher takes any size)"
                              % (path, want_w, want_h, ", ".join("%dx%d" % s for s in wrong)))

        def teacher(x):
            heatmaps = predict_heatmaps(backend.infer, np.ascontiguousarray(x.float().cpu().numpy()), flip=flip)
            return torch.from_numpy(heatmaps).to(device)
        return teacher
    model = load_checkpoint(path).to(device).eval()

    def teacher(x):  # on the training device, without a trip through NumPy: predict_heatmaps' flip test in torch
        with torch.no_grad():
            heatmaps = model(x).float()
            if flip:
                mirrored = model(torch.flip(x, dims=[3])).float()
                heatmaps = 0.5 * (heatmaps + torch.flip(mirrored[:, list(FLIP_INDEX)], dims=[3]))
        return heatmaps
    return teacher


def init_weights(model, cfg, data, calib_size=64):
    """model.init: the starting weights from an edge-pose ONNX (BatchNorm statistics re-estimated on
    `calib_size` training crops at the first epoch's resolution) or from a .pt checkpoint (EMA if present)."""
    path = cfg.model.init
    if not os.path.isfile(path):
        raise ConfigError("model.init: no such file %s" % path)
    if path.endswith(".onnx"):
        from edge_pose.models.unfold import load_folded, onnx_arch, onnx_convs
        arch = onnx_arch(path)
        if (arch["backbone"], arch["head"]) != (cfg.model.backbone, cfg.model.head):
            raise ConfigError("model.init: %s is a %s/%s model, the config asks for %s/%s"
                              % (path, arch["backbone"], arch["head"], cfg.model.backbone, cfg.model.head))
        data.input_size = resolution_at(cfg, 0)
        data.rng = np.random.default_rng([cfg.train.seed, 1 << 20])  # its own draws: epochs reseed anyway
        calib = next(iter(data.batches(calib_size, calib_size, prefetch=False)))[0]
        device = next(model.parameters()).device
        load_folded(model.cpu(), onnx_convs(path), calib).to(device)
    else:
        model.load_state_dict(load_checkpoint(path).state_dict())
    print("model.init: starting from %s" % path, file=sys.stderr)


def make_predict_fn(model, device):
    @torch.no_grad()
    def predict(batch):
        return model(torch.from_numpy(batch).to(device)).float().cpu().numpy()
    return predict


def validate(cfg, model, device, input_size):
    if cfg.val_set is None:
        return {}
    try:
        from edge_pose.train.evaluate import evaluate_predict_fn
        stats = evaluate_predict_fn(make_predict_fn(model, device), cfg.val_set.ann, cfg.val_set.images, flip=True,
                                    input_size=input_size, progress=False)
    except Exception as e:  # a failed validation must never cost the training run
        print("validation failed: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return {}
    return {k: float(stats[k]) for k in ("AP", "AP50", "AP75", "APm", "APl", "AR") if k in stats}


def train(cfg, resume=None, progress=True):
    t = cfg.train
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if t.device == "auto" else t.device)
    if t.threads:
        torch.set_num_threads(int(t.threads))
    seed_everything(t.seed)
    run_dir = os.path.join(cfg.out_dir, cfg.name)
    os.makedirs(run_dir, exist_ok=True)
    last_path = os.path.join(run_dir, "last.pt")
    if resume == "auto":
        resume = last_path if os.path.exists(last_path) else None
        if resume is None:
            print("--resume auto: no checkpoint at %s; starting at epoch 0" % last_path, file=sys.stderr)

    data = training_data(cfg, progress)
    model = build_model(cfg.model.backbone, cfg.model.head, head_channels=cfg.model.head_channels).to(device)
    if cfg.model.pretrained:
        load_backbone_weights(model, torch.load(cfg.model.pretrained, map_location="cpu"))
    from_init = bool(cfg.model.init) and not resume
    if from_init:
        init_weights(model, cfg, data)
    layout = torch.channels_last if t.channels_last else torch.contiguous_format
    model.to(memory_format=layout)
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": t.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=t.lr)
    use_amp = bool(t.amp and device.type == "cuda")
    use_bf16 = bool(t.cpu_bf16 and device.type == "cpu")
    if use_bf16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        print("train.cpu_bf16: this CPU has no native bfloat16 (AVX512-BF16/AMX): emulated, slower than float32",
              file=sys.stderr)
    scaler = grad_scaler(use_amp)
    ema = Ema(model, t.ema) if t.ema else None
    if ema is not None:
        ema.model.to(memory_format=layout)
        if from_init:
            ema.warm()
    loss_fn = LOSSES[t.loss]
    teacher = (load_teacher(cfg.distill.teacher, device, cfg.distill.flip, [tuple(size) for _, size in t.resolution],
                            sigma=t.sigma, threads=t.threads) if cfg.distill.teacher else None)

    start_epoch, best_ap, history = 0, -1.0, []
    if resume:
        ckpt = torch.load(resume, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        restore_scaler(scaler, ckpt.get("scaler"))
        if ema is not None and ckpt.get("ema"):
            ema.model.load_state_dict(ckpt["ema"])
            ema.updates = ckpt.get("ema_updates", 0)
        start_epoch, best_ap, history = ckpt["epoch"] + 1, ckpt.get("best_ap", -1.0), ckpt.get("history", [])
        torch.set_rng_state(ckpt["torch_rng"].cpu())  # map_location put it on the training device
        print("resumed from %s at epoch %d" % (resume, start_epoch), file=sys.stderr)

    log_path = os.path.join(run_dir, "log.csv")
    fields = ["epoch", "input_w", "input_h", "lr", "loss", "AP", "AP50", "AP75", "APm", "APl", "AR", "minutes"]
    if not os.path.exists(log_path) or not resume:
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(fields)
    try:
        from torch.utils.tensorboard import SummaryWriter
        tb = SummaryWriter(run_dir)
    except Exception:  # tensorboard is optional
        tb = None

    t0 = time.time()
    elapsed_before = history[-1]["minutes"] if history else 0.0
    steps_per_epoch = t.samples_per_epoch // t.batch_size
    for epoch in range(start_epoch, t.epochs):
        size = resolution_at(cfg, epoch)
        if ema is not None and epoch > 0 and size != resolution_at(cfg, epoch - 1):
            ema.restart(model)
        data.input_size = size
        # samples drawn from (seed, epoch): a run stopped and resumed at an epoch boundary trains what one
        # uninterrupted run does
        data.rng = np.random.default_rng([t.seed, epoch])
        model.train()
        total, count = 0.0, 0
        batches = data.batches(steps_per_epoch * t.batch_size, t.batch_size, workers=t.workers)
        bar = tqdm(batches, total=steps_per_epoch,
                   desc="epoch %d/%d %dx%d" % (epoch + 1, t.epochs, *data.input_size), disable=not progress,
                   leave=False)
        for step, (x, target, weight) in enumerate(bar):
            lr = lr_at(cfg, epoch + step / steps_per_epoch)
            for g in opt.param_groups:
                g["lr"] = lr
            x = torch.from_numpy(x).to(device, non_blocking=True).contiguous(memory_format=layout)
            target = torch.from_numpy(target).to(device, non_blocking=True)
            weight = torch.from_numpy(weight).to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16 if use_bf16 else torch.float16,
                                enabled=use_amp or use_bf16):
                pred = model(x)
                loss = loss_fn(pred.float(), target, weight)
                if teacher is not None:
                    with torch.no_grad():
                        th = teacher(x).float()
                    imitation = distill_loss(pred.float(), th, cfg.distill.min_score)
                    loss = (1 - cfg.distill.weight) * loss + cfg.distill.weight * imitation
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            if ema is not None:
                ema.update(model)
            total += float(loss.detach())
            count += 1
            bar.set_postfix(loss="%.3g" % (total / count), lr="%.2g" % lr)
        minutes = elapsed_before + (time.time() - t0) / 60.0
        row = {"epoch": epoch, "input_w": data.input_size[0], "input_h": data.input_size[1], "lr": lr,
               "loss": total / max(count, 1), "minutes": round(minutes, 2)}
        out_of_time = t.max_minutes is not None and minutes >= t.max_minutes
        last = epoch == t.epochs - 1 or out_of_time
        eval_model = ema.model if ema is not None else model
        if cfg.val_set is not None and ((epoch + 1) % t.eval_every == 0 or last):
            eval_model.eval()
            row.update(validate(cfg, eval_model, device, data.input_size))
            # keep the weights of every evaluated epoch: the learning curve can be re-scored later
            save_atomic({"arch": model.arch, "model": eval_model.state_dict(), "epoch": epoch,
                         "input_size": list(data.input_size)}, os.path.join(run_dir, "ema_e%03d.pt" % epoch))
        history.append(row)
        with open(log_path, "a", newline="") as f:
            csv.writer(f).writerow([row.get(k, "") for k in fields])
        if tb is not None:
            for k in ("loss", "lr", "AP"):
                if k in row:
                    tb.add_scalar(k, row[k], epoch)
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), file=sys.stderr)
        ckpt = {"arch": model.arch, "model": model.state_dict(), "ema": ema.model.state_dict() if ema else None,
                "ema_updates": ema.updates if ema else 0, "optimizer": opt.state_dict(), "scaler": scaler.state_dict(),
                "epoch": epoch, "best_ap": best_ap, "history": history, "config": to_dict(cfg),
                "input_size": list(data.input_size), "torch_rng": torch.get_rng_state(), "metrics": row}
        if "AP" in row and row["AP"] > best_ap and tuple(data.input_size) == resolution_at(cfg, t.epochs - 1):
            best_ap = ckpt["best_ap"] = row["AP"]
            save_atomic(ckpt, os.path.join(run_dir, "best.pt"))
        save_atomic(ckpt, last_path)
        if out_of_time:
            print("max_minutes reached: stopped after epoch %d; resume with --resume auto" % epoch, file=sys.stderr)
            break
    if tb is not None:
        tb.close()
    return history


def main(args):
    try:
        cfg = load_config(args.config, args.set)
    except ConfigError as e:
        print("edge-pose train: %s" % e, file=sys.stderr)
        return 2
    try:
        train(cfg, resume=args.resume)
    except ConfigError as e:  # found once the data is loaded (model.init)
        print("edge-pose train: %s" % e, file=sys.stderr)
        return 2
    return 0

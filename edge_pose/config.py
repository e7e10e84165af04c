"""YAML config -> typed dataclasses with defaults and validation that names the offending key."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import List, Optional

import yaml


class ConfigError(ValueError):
    pass


@dataclass
class ModelCfg:
    backbone: str = "resnet18"
    head: str = "lite"
    head_channels: Optional[int] = None
    pretrained: Optional[str] = None  # torchvision ImageNet state dict (.pth) for the backbone
    # starting weights of the whole model: an edge-pose ONNX (BatchNorm restored: models/unfold.py) or a .pt
    # checkpoint; a fine-tune of a shipped model starts here (ignored when resuming a run)
    init: Optional[str] = None


@dataclass
class DatasetCfg:
    name: str = ""
    ann: str = ""
    images: str = ""
    weight: float = 1.0  # sampling weight of this set in an epoch
    joint_weights: Optional[List[float]] = None  # per-joint target weight for this set (17 values)
    head_top: bool = False  # widen boxes with `lsp_extra_keypoints` head_top (LSPET)
    complete: bool = False  # every person in its images is annotated: background crops may come from it
    # a teacher's keypoints of its persons, made once (scripts/teacher_labels.py): distillation (distill.weight,
    # distill.min_score) without running the teacher while training; instead of distill.teacher
    teacher_labels: Optional[str] = None


@dataclass
class AugmentCfg:
    rotation: float = 40.0
    rotation_prob: float = 0.6
    scale: List[float] = field(default_factory=lambda: [0.7, 1.3])
    flip: bool = True
    half_body_prob: float = 0.3
    color_jitter: float = 0.3
    occlusion_prob: float = 0.3
    shift: float = 0.05  # random box-centre shift, fraction of the box size
    blur_prob: float = 0.1
    flare_prob: float = 0.0  # share of crops with a sun glare blended in (augment.sun_flare)
    # share of person crops zoomed out by a factor from zoom_out_scale, the person placed anywhere inside
    zoom_out_prob: float = 0.0
    zoom_out_scale: List[float] = field(default_factory=lambda: [1.5, 3.0])
    # share of samples that are background crops (from `complete` sets) with all-zero targets at full weight:
    # top-down training otherwise never sees a crop without a person and hallucinates one in every window
    negative_prob: float = 0.0
    # size of a background crop relative to the person it replaces (uniform in log scale): wider than `scale`
    # so that crops as large as the acquisition windows (persons.WindowScan) are seen empty too
    negative_scale: List[float] = field(default_factory=lambda: [0.7, 1.3])
    # share of person crops with a real person (cut out along a train set's segmentation polygon) pasted
    # beside the crop's own person: a distractor and occluder as in crowds (train/paste.py)
    paste_prob: float = 0.0


@dataclass
class DistillCfg:
    teacher: Optional[str] = None  # .pt checkpoint or .onnx (heatmaps, or keypoints as MoveNet) the student imitates
    weight: float = 0.5  # loss = (1 - w) * ground truth + w * teacher
    flip: bool = False  # teacher heatmaps averaged with its prediction on the mirrored crop (its flip test)
    min_score: Optional[float] = None  # None: soft targets (the teacher's heatmaps); a number: hard pseudo-labels


@dataclass
class TrainCfg:
    epochs: int = 60
    samples_per_epoch: int = 4000
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # cosine | step
    step_milestones: List[int] = field(default_factory=lambda: [40, 55])
    warmup_epochs: int = 1
    loss: str = "mse"  # mse | wing | adaptive_wing
    sigma: float = 2.0
    # [[first_epoch, [width, height]], ...]: train small first, finish at the model's input size
    resolution: List[list] = field(default_factory=lambda: [[0, [192, 256]]])
    # learning rate of the last `resolution` phase (decaying linearly to a tenth of it), when the schedule
    # has several phases: the model re-adapts to the new input size instead of finishing at the cosine's floor
    final_phase_lr: Optional[float] = None
    ema: float = 0.999
    amp: bool = True  # mixed precision on CUDA (ignored on CPU)
    # bfloat16 autocast on the CPU (oneDNN; fast where the CPU has AVX512-BF16 or AMX): ResNet-18 about 2x faster
    # per step here, MobileNetV3 not faster (scripts/train_speed.py, its +bf16 modes; README "Training")
    cpu_bf16: bool = False
    # NHWC activations and weights: same results, faster convolutions through oneDNN on the CPU
    # (scripts/train_speed.py here: MobileNetV3 1.8-2.4x, ResNet-18 1.2-1.4x; README "Training")
    channels_last: bool = True
    seed: int = 0
    eval_every: int = 1
    threads: Optional[int] = None
    device: str = "auto"
    max_minutes: Optional[float] = None  # stop cleanly (checkpoint written) after this wall time
    # batches built by this many processes (torch DataLoader) when >= 2: a GPU outruns one core (about 320
    # samples/s here); 0 or 1: one thread ahead of the training step, which is enough on a 2-core CPU
    workers: int = 0
    # train sets whose decoded images fit in this many GB together are held in memory (in config order);
    # the rest are read from disk at each sample (full COCO 2017: about 50 GB decoded)
    image_cache_gb: float = 8.0


@dataclass
class Config:
    name: str = "model"
    out_dir: str = "runs"
    model: ModelCfg = field(default_factory=ModelCfg)
    train_sets: List[DatasetCfg] = field(default_factory=list)
    val_set: Optional[DatasetCfg] = None
    augment: AugmentCfg = field(default_factory=AugmentCfg)
    train: TrainCfg = field(default_factory=TrainCfg)
    distill: DistillCfg = field(default_factory=DistillCfg)


_CHOICES = {
    "model.backbone": ("resnet18", "mobilenetv3"),
    "model.head": ("deconv", "lite"),
    "train.schedule": ("cosine", "step"),
    "train.loss": ("mse", "wing", "adaptive_wing"),
}


def _check_type(path, default, value):
    """A value whose default is a bool / number / string must be one too (None stays allowed)."""
    if value is None or default is None or isinstance(default, (list, dict)):
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
        want = "true or false"
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float):
            ok = value.is_integer()
        want = "a number"
    elif isinstance(default, str):
        ok = isinstance(value, str)
        want = "a string"
    else:
        return
    if not ok:
        raise ConfigError("%s: expected %s, got %r" % (path, want, value))


def _build(cls, data, where, nested=None, choices=None):
    """Mapping -> dataclass `cls`, recursively (nested: {(cls, key): sub-dataclass}); unknown keys, values
    outside `choices` ({dotted path: allowed}) and values of the wrong type raise ConfigError naming the key."""
    nested = _NESTED if nested is None else nested
    choices_by_path = _CHOICES if choices is None else choices
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise ConfigError("%s: expected a mapping, got %r" % (where or "config", data))
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        path = (where + "." if where else "") + key
        if key not in fields:
            raise ConfigError("unknown key %r (allowed: %s)" % (path, ", ".join(sorted(fields))))
        sub = nested.get((cls, key))
        if sub is not None and value is not None:
            if isinstance(value, list):
                kwargs[key] = [_build(sub, v, "%s[%d]" % (path, i), nested, choices_by_path)
                               for i, v in enumerate(value)]
            else:
                kwargs[key] = _build(sub, value, path, nested, choices_by_path)
        else:
            f = fields[key]
            default = f.default if f.default is not dataclasses.MISSING else None
            _check_type(path, default, value)
            kwargs[key] = value
        choices = choices_by_path.get(path)
        if choices and kwargs[key] not in choices:
            raise ConfigError("%s: %r is not one of %s" % (path, kwargs[key], ", ".join(choices)))
    return cls(**kwargs)


_NESTED = {
    (Config, "model"): ModelCfg, (Config, "train_sets"): DatasetCfg, (Config, "val_set"): DatasetCfg,
    (Config, "augment"): AugmentCfg, (Config, "train"): TrainCfg, (Config, "distill"): DistillCfg,
}


def _parse_value(text):
    return yaml.safe_load(text)


def apply_overrides(raw, overrides):
    """`train.epochs=5` style overrides on the raw YAML mapping."""
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError("override %r must look like key.sub=value" % item)
        key, value = item.split("=", 1)
        node = raw
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = _parse_value(value)
    return raw


def load_config(path, overrides=None):
    try:
        with open(path) as f:
            raw = yaml.safe_load(f) or {}
    except OSError as e:
        raise ConfigError("cannot read config %s: %s" % (path, e.strerror)) from None
    raw = apply_overrides(raw, overrides)
    cfg = _build(Config, raw, "")
    if not cfg.train_sets:
        raise ConfigError("train_sets: at least one COCO-format set is needed")
    for i, ds in enumerate(cfg.train_sets):
        if ds.joint_weights is not None and len(ds.joint_weights) != 17:
            raise ConfigError("train_sets[%d].joint_weights: 17 values needed, got %d" % (i, len(ds.joint_weights)))
    if cfg.train.workers < 0:
        raise ConfigError("train.workers: 0 or more, got %d" % cfg.train.workers)
    if cfg.train.image_cache_gb < 0:
        raise ConfigError("train.image_cache_gb: 0 or more, got %g" % cfg.train.image_cache_gb)
    if cfg.distill.min_score is not None and not 0 < cfg.distill.min_score <= 1:
        raise ConfigError("distill.min_score: a score in (0, 1] or null, got %g" % cfg.distill.min_score)
    if cfg.distill.teacher and any(ds.teacher_labels for ds in cfg.train_sets):
        raise ConfigError("distill.teacher and train_sets[].teacher_labels: one teacher, either run while training "
                          "(distill.teacher) or its labels made ahead (teacher_labels), not both")
    if not 0 <= cfg.distill.weight <= 1:
        raise ConfigError("distill.weight: a share in [0, 1], got %g" % cfg.distill.weight)
    return cfg


def to_dict(cfg):
    return dataclasses.asdict(cfg)

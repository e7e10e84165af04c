"""The runtime config of `edge-pose run` and the service: one YAML file -> typed dataclasses.

    source:    {uri: "0", realtime: false, width, height, fps, flip, wait, loop}
    model:     {name: mobilenetv3, backend: auto, device: cpu, precision: fp32, threads, decoder: dark, max_batch: 8}
    persons:   {mode: keypoints, detector: hog, detect_every: 15, max_persons}
    tracking:  track.TrackerParams
    smoothing: {method: kalman, kalman: smooth.KalmanParams, one_euro: smooth.OneEuroParams}
    outputs:   {window, record, jsonl, jsonl_max_bytes, jsonl_backups, draw_threshold, overlay, mqtt: {...}}
    http:      serve.server.ServeParams (host 127.0.0.1, token, limits...; port null: no server)

Every key is optional (defaults below); unknown keys, values of the wrong type and values outside a
fixed set are refused with a message naming the key and the allowed values. `edge-pose config print`
shows the effective config.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

import yaml

from edge_pose.config import ConfigError, _build, apply_overrides


@dataclass
class SourceCfg:
    uri: str = "0"  # camera index, /dev/videoN, v4l2://, csi://N, rtsp://, http://, a video file or image folder
    realtime: bool = False  # pace a file at its fps, newest-frame policy (as a live source)
    width: Optional[int] = None  # requested camera mode (cameras, csi://)
    height: Optional[int] = None
    fps: Optional[int] = None
    flip: int = 0  # csi:// nvvidconv flip-method
    wait: bool = False  # wait for a live source that is not there yet (a service started before its camera)
    loop: bool = False  # play a video file again and again


@dataclass
class ModelCfg:
    name: str = "mobilenetv3"  # shipped name (mobilenetv3, resnet18) or a .onnx / .engine / .pt path
    backend: str = "auto"
    device: str = "cpu"
    precision: str = "fp32"
    threads: Optional[int] = None
    decoder: str = "dark"
    max_batch: int = 8


@dataclass
class PersonsCfg:
    mode: str = "keypoints"  # keypoints | full-frame | windows | detector
    detector: str = "hog"  # for mode detector: hog or a YOLO-layout .onnx
    detect_every: int = 15  # re-run the acquisition every N frames (0: only while nobody is tracked)
    max_persons: Optional[int] = None


@dataclass
class MqttCfg:
    host: Optional[str] = None  # null: no MQTT
    port: int = 1883
    topic: str = "edge-pose/frames"
    qos: int = 0
    client_id: Optional[str] = None
    username: Optional[str] = None
    password: Optional[str] = None
    tls: bool = False
    max_rate: Optional[float] = None  # at most this many messages per second


@dataclass
class OutputsCfg:
    window: bool = True  # a window (needs an OpenCV with GUI); `--headless` turns it off
    record: Optional[str] = None  # annotated H.264 video
    jsonl: Optional[str] = None  # frame records, one per line, flushed per line
    jsonl_max_bytes: int = 0  # rotate the JSONL at this size (0: never)
    jsonl_backups: int = 5
    draw_threshold: float = 0.3
    overlay: bool = True  # FPS and latency on the shown / recorded frames
    mqtt: MqttCfg = field(default_factory=MqttCfg)


def _section_classes():
    """The sections owned by other modules (imported here so that the module stays light)."""
    from edge_pose.serve.server import ServeParams
    from edge_pose.smooth import KalmanParams, OneEuroParams
    from edge_pose.track import TrackerParams
    return TrackerParams, KalmanParams, OneEuroParams, ServeParams


def _make_classes():
    TrackerParams, KalmanParams, OneEuroParams, ServeParams = _section_classes()

    @dataclass
    class HttpCfg(ServeParams):
        port: Optional[int] = None  # null: no HTTP server (`--serve PORT` sets it)

    @dataclass
    class SmoothingCfg:
        method: str = "kalman"  # kalman | one_euro | none
        kalman: KalmanParams = field(default_factory=KalmanParams)
        one_euro: OneEuroParams = field(default_factory=OneEuroParams)

    @dataclass
    class RunConfig:
        source: SourceCfg = field(default_factory=SourceCfg)
        model: ModelCfg = field(default_factory=ModelCfg)
        persons: PersonsCfg = field(default_factory=PersonsCfg)
        tracking: TrackerParams = field(default_factory=TrackerParams)
        smoothing: SmoothingCfg = field(default_factory=SmoothingCfg)
        outputs: OutputsCfg = field(default_factory=OutputsCfg)
        http: HttpCfg = field(default_factory=HttpCfg)

    nested = {(RunConfig, "source"): SourceCfg, (RunConfig, "model"): ModelCfg, (RunConfig, "persons"): PersonsCfg,
              (RunConfig, "tracking"): TrackerParams, (RunConfig, "smoothing"): SmoothingCfg,
              (RunConfig, "outputs"): OutputsCfg, (RunConfig, "http"): HttpCfg,
              (SmoothingCfg, "kalman"): KalmanParams, (SmoothingCfg, "one_euro"): OneEuroParams,
              (OutputsCfg, "mqtt"): MqttCfg}
    return RunConfig, nested


def choices():
    from edge_pose.persons import MODES
    from edge_pose.runtime import BACKENDS
    return {"model.backend": BACKENDS, "model.precision": ("fp32", "fp16", "int8"),
            "model.decoder": ("dark", "argmax"), "persons.mode": MODES,
            "smoothing.method": ("kalman", "one_euro", "none")}


def parse_run_config(raw, overrides=None):
    """A mapping (the YAML's content) plus `key.sub=value` overrides -> RunConfig (ConfigError if invalid)."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError("config: expected a mapping at the top, got %r" % (raw,))
    raw = apply_overrides(dict(raw), overrides)
    RunConfig, nested = _make_classes()
    cfg = _build(RunConfig, raw, "", nested, choices())
    _check(cfg)
    return cfg


def _check(cfg):
    if cfg.model.max_batch < 1:
        raise ConfigError("model.max_batch: must be >= 1, got %r" % cfg.model.max_batch)
    if cfg.persons.detect_every < 0:
        raise ConfigError("persons.detect_every: must be >= 0, got %r" % cfg.persons.detect_every)
    if not 0.0 <= cfg.outputs.draw_threshold <= 1.0:
        raise ConfigError("outputs.draw_threshold: must be in [0, 1], got %r" % cfg.outputs.draw_threshold)
    if cfg.outputs.mqtt.qos not in (0, 1, 2):
        raise ConfigError("outputs.mqtt.qos: %r is not one of 0, 1, 2" % cfg.outputs.mqtt.qos)
    if cfg.http.port is not None:
        try:
            cfg.http.validate()
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


def load_run_config(path=None, overrides=None):
    """The YAML file at `path` (None: defaults only) with overrides -> RunConfig."""
    raw = {}
    if path is not None:
        try:
            with open(path) as f:
                raw = yaml.safe_load(f) or {}
        except OSError as exc:
            raise ConfigError("cannot read config %s: %s" % (path, exc.strerror or exc)) from None
        except yaml.YAMLError as exc:
            raise ConfigError("config %s is not valid YAML: %s" % (path, " ".join(str(exc).split()))) from None
    return parse_run_config(raw, overrides)


def to_yaml(cfg):
    """The effective config as YAML (every key, defaults merged)."""
    return yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False, default_flow_style=False)

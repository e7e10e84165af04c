"""`edge-pose run --source URI` and `edge-pose --camera 0`: the live front end of the pipeline.

Builds the objects the config names (source, model, person source, tracker, smoother, sinks: window,
recording, JSONL, HTTP live view, MQTT), runs `pipeline.Pipeline` until the input ends, the window is
closed with q / Esc, or Ctrl-C / SIGTERM arrives (the frames already taken in are finished and every
output is flushed and closed), then prints a summary line. Settings: the YAML `--config` (see
run_config.py), then `--set key=value`, then the explicit options below.
"""
from __future__ import annotations

import signal
import sys
import threading

PROG = "edge-pose run"


def error(message):
    print("%s: error: %s" % (PROG, " ".join(str(message).split())), file=sys.stderr, flush=True)


def add_arguments(p):
    p.add_argument("--source", default=None, metavar="URI",
                   help="camera index (0), /dev/videoN, v4l2:///dev/videoN, csi://N, rtsp://..., http://..., a video "
                        "file or an image folder (default: the config's, else camera 0)")
    p.add_argument("--camera", default=None, metavar="N", help="shorthand for --source N")
    p.add_argument("--config", default=None, metavar="F", help="YAML config (see `edge-pose config print`)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set smoothing.method=one_euro (repeatable)")
    p.add_argument("--headless", action="store_true", help="no window")
    p.add_argument("--record", default=None, metavar="OUT.mp4", help="write the annotated video (H.264)")
    p.add_argument("--jsonl", default=None, metavar="OUT.jsonl", help="write frame records, one JSON per line")
    p.add_argument("--serve", default=None, type=int, metavar="PORT",
                   help="HTTP live view, JSON API and metrics on this port (binds http.host, default 127.0.0.1)")
    p.add_argument("--realtime", action="store_true",
                   help="pace a video file at its native fps and keep only the newest frame, as a camera")
    p.add_argument("--loop", action="store_true", help="play a video file again and again")
    p.add_argument("--model", default=None, metavar="M", help="shipped model name or model path")
    p.add_argument("--backend", default=None, help="auto, onnxruntime, torch, tensorrt")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=None, help="CPU inference threads")
    p.add_argument("--persons", default=None, help="keypoints, full-frame, windows or detector")
    p.add_argument("--smoothing", default=None, help="kalman, one_euro or none")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N frames")


def config_from_args(args):
    """The RunConfig of the command line: --config, then --set, then the explicit options."""
    from edge_pose.run_config import load_run_config

    sets = list(args.set)
    explicit = (("source.uri", args.camera if args.camera is not None else args.source),
                ("outputs.record", args.record), ("outputs.jsonl", args.jsonl), ("http.port", args.serve),
                ("model.name", args.model), ("model.backend", args.backend), ("model.device", args.device),
                ("model.threads", args.threads), ("persons.mode", args.persons),
                ("smoothing.method", args.smoothing))
    cfg = load_run_config(args.config, sets)
    for key, value in explicit:
        if value is not None:
            section, name = key.split(".")
            setattr(getattr(cfg, section), name, value)
    if args.headless:
        cfg.outputs.window = False
    if args.realtime:
        cfg.source.realtime = True
    if args.loop:
        cfg.source.loop = True
    cfg.source.uri = str(cfg.source.uri)
    from edge_pose.run_config import _check

    _check(cfg)
    return cfg


def make_person_source(cfg):
    from edge_pose import persons

    p = cfg.persons
    if p.mode == "keypoints":
        return persons.make_person_source("keypoints", reacquire_every=p.detect_every, max_persons=p.max_persons)
    if p.mode == "detector":
        return persons.make_person_source("detector", detector=p.detector, every=p.detect_every,
                                          max_persons=p.max_persons)
    return persons.make_person_source(p.mode)


def make_smoother(cfg):
    from edge_pose.smooth import make_smoother as make

    s = cfg.smoothing
    if s.method == "none":
        return None
    return make(s.method, s.kalman if s.method == "kalman" else s.one_euro)


def make_tracker(cfg):
    from edge_pose.track import Tracker

    return Tracker(cfg.tracking)


def open_estimator(cfg):
    from edge_pose.estimator import PoseEstimator

    m = cfg.model
    return PoseEstimator(m.name, backend=m.backend, device=m.device, threads=m.threads, decoder=m.decoder,
                         max_batch=m.max_batch, precision=m.precision)


def make_sinks(cfg, source, estimator):
    """The outputs the config asks for, and the HTTP server (or None)."""
    from edge_pose import sinks

    out = cfg.outputs
    made, server = [], None
    try:
        if out.window:
            made.append(sinks.WindowSink("edge-pose: %s" % source.uri))
        if out.record:
            from pathlib import Path

            try:
                Path(out.record).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OSError("cannot write %s: %s" % (out.record, exc.strerror or exc)) from None
            made.append(sinks.ThreadedWriter(sinks.FrameVideoWriter(out.record, source.fps or 30.0), 4))
        if out.jsonl:
            from edge_pose.rotating import RotatingJsonlWriter

            made.append(RotatingJsonlWriter(out.jsonl, max_bytes=out.jsonl_max_bytes or None,
                                            backups=out.jsonl_backups))
        if out.mqtt.host:
            from edge_pose.push import MqttSink

            m = out.mqtt
            made.append(MqttSink(m.host, m.port, m.topic, qos=m.qos, client_id=m.client_id, username=m.username,
                                 password=m.password, tls=m.tls, max_rate=m.max_rate))
        if cfg.http.port is not None:
            from edge_pose.serve import LiveHub, PoseServer

            hub = LiveHub()
            made.append(hub)
            server = PoseServer(hub, cfg.http, pose_fn=_request_pose_fn(cfg))
    except BaseException:
        for sink in made:
            (getattr(sink, "abort", None) or sink.close)()
        raise
    return made, server


def _request_pose_fn(cfg):
    """POST /api/pose: people in one image (window scan), with a second instance of the model, loaded at the
    first request, so that requests never disturb the pipeline's own timings. The server serialises calls."""
    from edge_pose.serve import image_pose_fn

    state = {}
    lock = threading.Lock()

    def pose(image):
        with lock:
            if "fn" not in state:
                state["fn"] = image_pose_fn(open_estimator(cfg), "windows")
        return state["fn"](image)
    return pose


def main(args):
    from edge_pose.config import ConfigError
    from edge_pose.sources import SourceError, open_source, quiet_ffmpeg

    quiet_ffmpeg()
    try:
        cfg = config_from_args(args)
    except ConfigError as exc:
        error(exc)
        return 2
    s = cfg.source
    try:
        source = open_source(s.uri, width=s.width, height=s.height, fps=s.fps, flip=s.flip, wait=s.wait, loop=s.loop)
    except SourceError as exc:
        error(exc)
        return 2
    with source:
        return _run(cfg, source, args.max_frames)


def _run(cfg, source, max_frames=None):
    from edge_pose.pipeline import Pipeline

    try:
        estimator = open_estimator(cfg)
    except Exception as exc:
        error("model %s: %s" % (cfg.model.name, str(exc).strip().splitlines()[0] if str(exc).strip() else exc))
        return 2
    try:
        try:
            sinks, server = make_sinks(cfg, source, estimator)
        except (RuntimeError, OSError, ImportError) as exc:
            error(exc)
            return 2
        pipeline = Pipeline(source, estimator, make_person_source(cfg), tracker=make_tracker(cfg),
                            smoother=make_smoother(cfg), sinks=sinks, realtime=cfg.source.realtime,
                            draw_threshold=cfg.outputs.draw_threshold, overlay=cfg.outputs.overlay,
                            max_frames=max_frames)
        for sink in sinks:
            if hasattr(sink, "set_stats_fn"):
                sink.set_stats_fn(pipeline.stats)
        heartbeat = _heartbeat(pipeline)
        if server is not None:
            server.start()
            print("%s: serving %s" % (PROG, server.url), file=sys.stderr, flush=True)
        print("%s: %s -> model %s" % (PROG, source.uri, estimator.describe()), file=sys.stderr, flush=True)
        previous = _on_signals(pipeline.stop)
        try:
            summary = pipeline.run()
        except (OSError, RuntimeError, ValueError) as exc:  # a stage or an output failed: outputs aborted
            error(" ".join(str(exc).split()) or type(exc).__name__)
            return 1
        finally:
            _restore_signals(previous)
            if heartbeat is not None:
                heartbeat.stop()
            if server is not None:
                server.stop()
    finally:
        estimator.close()
    print("%s: %d frames finished, %d dropped, %.1f FPS, %d reconnects" % (
        PROG, summary.finished, summary.dropped, summary.fps, summary.reconnects), file=sys.stderr, flush=True)
    return 0


def _heartbeat(pipeline):
    """systemd: READY=1 now, WATCHDOG=1 while frames keep coming (only under a notify service)."""
    import os

    if not os.environ.get("NOTIFY_SOCKET"):
        return None
    from edge_pose.watchdog import Heartbeat

    beat = Heartbeat(status=lambda: "%.1f FPS, %d frames, %d dropped" % (
        pipeline.fps(), pipeline.finished, pipeline.capture.dropped))
    pipeline.on_record.append(lambda record: beat.beat())
    beat.start()
    beat.ready()  # the model is loaded and the outputs are open: frames are about to flow
    return beat


def _on_signals(stop):
    """SIGINT and SIGTERM -> a clean stop (finish what was taken in, close the outputs)."""
    previous = {}

    def handler(signum, frame):
        stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: the caller handles stopping
            pass
    return previous


def _restore_signals(previous):
    for sig, old in previous.items():
        signal.signal(sig, old)

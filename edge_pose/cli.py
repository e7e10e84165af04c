"""`edge-pose` entry point: parses arguments, then calls the modules that do the work."""
from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module with add_arguments(parser) and main(args), help, description); modules import lazily
COMMANDS = {
    "eval": ("edge_pose.train.evaluate", "COCO OKS keypoint AP through pycocotools", None),
    "export": ("edge_pose.export", "export a training checkpoint to ONNX", None),
    "annotate": ("edge_pose.annotate", "annotate videos / image folders: H.264 video, JSONL and COCO results",
                 "Annotate recorded videos or image folders: for each input DIR/<stem>.mp4, DIR/<stem>.jsonl and "
                 "DIR/<stem>.coco.json."),
    "bench": ("edge_pose.bench", "latency (batch 1 and 8) and end-to-end annotate FPS per model and backend",
              "Per model and backend: inference latency at batch 1 and 8 (median, p90) and the end-to-end annotate "
              "FPS on the first frames of a video."),
    "run": ("edge_pose.run", "live pose estimation: camera / stream / file -> window, recording, JSONL, HTTP",
            "Run the threaded pipeline on a live source (or a file) until it ends, q / Esc in the window, Ctrl-C or "
            "SIGTERM. `edge-pose --camera 0` is short for `edge-pose run --camera 0`."),
    "service": ("edge_pose.service", "install / uninstall / print the systemd unit of the headless service",
                "The systemd unit running `edge-pose run --config /etc/edge-pose/config.yaml --headless` at boot. "
                "print: the unit on stdout; install (root): user, default config, unit, enable + start; "
                "uninstall: stop, disable, remove (--purge: also config, data and user)."),
    "config": ("edge_pose.config_cmd", "show the effective runtime config (`edge-pose config print`)", None),
    "calibrate": ("edge_pose.quant.calibrate", "INT8 calibration: QDQ INT8 ONNX behind an FP32-vs-INT8 AP gate",
                  "Calibrate an FP32 ONNX on person crops (made as at inference) and write a QDQ INT8 ONNX, only if "
                  "its OKS AP is within --max-ap-drop of FP32 (or --force)."),
    "build-engine": ("edge_pose.quant.trt_build", "build a TensorRT engine (fp32 / fp16 / int8) with a JSON sidecar",
                     "ONNX -> TensorRT engine X.engine plus X.engine.json (TensorRT version, GPU, precision, input "
                     "shape, ONNX sha256). Run it on the machine that runs the engine."),
}


def _add_train(sub):
    # arguments here, not in train/loop.py: that module imports torch, which `edge-pose --help` must not need
    p = sub.add_parser("train", help="train a model from a YAML config")
    p.add_argument("--config", required=True, help="YAML training config (see configs/)")
    p.add_argument("--resume", default=None, help="checkpoint to resume from ('auto': the run folder's last.pt)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=5 (repeatable)")
    p.set_defaults(module="edge_pose.train.loop")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="edge-pose", description="Real-time human pose estimation (COCO 17 keypoints).",
        epilog="edge-pose --camera 0 opens the live view of camera 0 (short for `edge-pose run --camera 0`); "
               "`edge-pose COMMAND --help` for each command.")
    from edge_pose import __version__
    parser.add_argument("--version", action="version", version="edge-pose " + __version__)
    sub = parser.add_subparsers(dest="command")
    _add_train(sub)
    for name, (module, help_text, description) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=description or help_text)
        p.set_defaults(module=module)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv=None):
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].split("=", 1)[0] in ("--camera", "--source"):
        argv = ["run"] + argv  # `edge-pose --camera 0`: the live view
    args = parser.parse_args(argv)
    if not getattr(args, "module", None):
        parser.print_help()
        return 2
    try:
        rc = importlib.import_module(args.module).main(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
